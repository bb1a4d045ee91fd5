"""Buy-till-you-die models by maximum likelihood: BG/NBD, MBG/NBD, Pareto/NBD, Gamma-Gamma."""

from cx_pipelines.ml.btyd.base import BTYDFitError, BTYDNotFittedError, check_data
from cx_pipelines.ml.btyd.beta_geo import BetaGeoModel
from cx_pipelines.ml.btyd.gamma_gamma import GammaGammaModel
from cx_pipelines.ml.btyd.modified_beta_geo import ModifiedBetaGeoModel
from cx_pipelines.ml.btyd.pareto_nbd import ParetoNBDModel

__all__ = [
    "BTYDFitError",
    "BTYDNotFittedError",
    "BetaGeoModel",
    "GammaGammaModel",
    "ModifiedBetaGeoModel",
    "ParetoNBDModel",
    "check_data",
]
