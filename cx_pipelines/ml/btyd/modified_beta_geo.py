"""MBG/NBD: BG/NBD where a customer may also drop out right after the first purchase.

Batislam, Denizel and Filiztekin (2007). Unlike BG/NBD, a one-time buyer (frequency 0)
is not certainly alive, which makes it the model for the hit-and-run case: since dropout
happens only at purchase occasions, P(alive) is exactly the probability of ever buying
again, for x = 0: 1 / (1 + a/b * ((alpha + T) / alpha)^r).
"""

from __future__ import annotations

import numpy as np

from cx_pipelines.ml.btyd.beta_geo import BetaGeoModel


class ModifiedBetaGeoModel(BetaGeoModel):
    """MBG/NBD with parameters ``r, alpha, a, b``; same data contract and predictions as BG/NBD."""

    _dropout_offset = 0.0

    def _log_dropout_odds(self, params, x, t_x, T) -> np.ndarray:
        r, alpha, a, b = params
        return np.log(a) - np.log(b + x) + (r + x) * (np.log(alpha + T) - np.log(alpha + t_x))
