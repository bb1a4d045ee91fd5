"""Supervised models as scikit-learn estimators, one module per family: propensity, attrition,
uplift, and the covariate hit-and-run and dormancy models (with the pure BTYD ranking they
compete against). Importing the package registers every family under its spec kind."""

from cx_pipelines.ml.supervised import attrition, dormancy, hit_and_run, propensity, uplift
from cx_pipelines.ml.supervised.attrition import AttritionClassifier
from cx_pipelines.ml.supervised.btyd_covariates import LifetimeFit, fit_lifetime_model, score_frame
from cx_pipelines.ml.supervised.btyd_ranking import BTYDRankingClassifier
from cx_pipelines.ml.supervised.classifier import (
    ESTIMATOR_OF_KIND,
    CalibratedBoostingClassifier,
    fit_classifier,
)
from cx_pipelines.ml.supervised.dormancy import DormancyClassifier
from cx_pipelines.ml.supervised.hit_and_run import HitAndRunClassifier
from cx_pipelines.ml.supervised.propensity import PropensityClassifier
from cx_pipelines.ml.supervised.uplift import UpliftModel, fit_uplift_model

__all__ = [
    "ESTIMATOR_OF_KIND",
    "AttritionClassifier",
    "BTYDRankingClassifier",
    "CalibratedBoostingClassifier",
    "DormancyClassifier",
    "HitAndRunClassifier",
    "LifetimeFit",
    "PropensityClassifier",
    "UpliftModel",
    "attrition",
    "dormancy",
    "fit_classifier",
    "fit_lifetime_model",
    "fit_uplift_model",
    "hit_and_run",
    "propensity",
    "score_frame",
    "uplift",
]
