"""Pareto/NBD: Schmittlein, Morrison and Colombo (1987), as derived by Fader and Hardie (2005).

While alive a customer buys at Poisson rate lambda ~ Gamma(r, alpha) and dies at an
exponential time with rate mu ~ Gamma(s, beta). The likelihood needs
A0 = integral over the unobserved death time, a difference of two Gauss hypergeometric
terms 2F1(r+s+x, s+1 | r+x; r+s+x+1; z). Euler's transformation
2F1(A, B; A+1; z) = (1-z)^(1-B) 2F1(1, A+1-B; A+1; z) takes the (1-z)^(1-B) growth out
analytically, leaving a series of positive terms bounded by 1/(1-z), and the difference
is taken in log space, so large frequencies neither overflow nor cancel.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import expit, gammaln, hyp2f1

from cx_pipelines.ml.btyd.base import DistinctColumn, sufficient_statistics
from cx_pipelines.ml.btyd.transactions import (
    RFM_COLUMNS,
    TransactionModel,
    by_customer,
    rfm_arrays,
)


def _log1mexp(value: np.ndarray) -> np.ndarray:
    """log(1 - exp(value)) for value <= 0, accurate near 0 and for very negative values."""
    with np.errstate(divide="ignore"):
        return np.where(value > -0.6931, np.log(-np.expm1(value)), np.log1p(-np.exp(value)))


def _log_term(params: np.ndarray, x: np.ndarray, t: np.ndarray) -> np.ndarray:
    """log of 2F1(r+s+x, B; r+s+x+1; z(t)) / (max(alpha, beta) + t)^(r+s+x), Euler-transformed."""
    r, alpha, s, beta = params
    rsx = r + s + x
    larger = max(alpha, beta)
    if alpha >= beta:
        exponent, series_b = -s, r + x
    else:
        exponent, series_b = 1.0 - r - x, s + 1.0
    z = abs(alpha - beta) / (larger + t)
    return (
        exponent * np.log1p(-z)
        + np.log(hyp2f1(1.0, series_b, rsx + 1.0, z))
        - rsx * np.log(larger + t)
    )


def log_a0(params: np.ndarray, x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> np.ndarray:
    """log A0 of Fader and Hardie (2005, eq. 19-20); -inf where recency equals T."""
    at_recency = _log_term(params, x, t_x)
    return at_recency + _log1mexp(np.minimum(_log_term(params, x, T) - at_recency, 0.0))


class _Pairs:
    """Distinct (frequency, time) pairs and each row's code: the hypergeometric terms
    depend on both, and distinct pairs are far fewer than customers."""

    __slots__ = ("codes", "t", "x")

    def __init__(self, x: DistinctColumn, t: DistinctColumn) -> None:
        key = x.codes.astype("int64") * len(t.distinct) + t.codes
        distinct, self.codes = np.unique(key, return_inverse=True)
        self.x = x.distinct[distinct // len(t.distinct)]
        self.t = t.distinct[distinct % len(t.distinct)]

    def log_term(self, params: np.ndarray) -> np.ndarray:
        return _log_term(params, self.x, self.t)[self.codes]


class ParetoNBDModel(TransactionModel):
    """Pareto/NBD with parameters ``r, alpha`` (purchase rate) and ``s, beta`` (dropout rate)."""

    parameter_names = ("r", "alpha", "s", "beta")

    def _statistics(self, data: pd.DataFrame):
        (x, t_x, T), weights = sufficient_statistics(data, self.required_columns)
        return [x, t_x, T, _Pairs(x, t_x), _Pairs(x, T)], weights

    def _log_likelihood(self, params, x, t_x, T, recency_pairs, age_pairs) -> np.ndarray:
        r, alpha, s, beta = params
        head = x.apply(lambda value: gammaln(r + value)) - gammaln(r)
        head += r * np.log(alpha) + s * np.log(beta)
        alive = -(r + x.values) * T.apply(lambda value: np.log(alpha + value))
        alive -= s * T.apply(lambda value: np.log(beta + value))
        at_recency = recency_pairs.log_term(params)
        at_age = age_pairs.log_term(params)
        log_a0 = at_recency + _log1mexp(np.minimum(at_age - at_recency, 0.0))
        dead = np.log(s) - x.apply(lambda value: np.log(r + s + value)) + log_a0
        return head + np.logaddexp(alive, dead)

    def _probability_alive(self, x, t_x, T) -> np.ndarray:
        params = self.params_.to_numpy()
        r, alpha, s, beta = params
        log_odds = (
            np.log(s)
            - np.log(r + s + x)
            + (r + x) * np.log(alpha + T)
            + s * np.log(beta + T)
            + log_a0(params, x, t_x, T)
        )
        return expit(-log_odds)

    def _conditional_purchases(self, x, t_x, T, t) -> np.ndarray:
        r, alpha, s, beta = self.params_.to_numpy()
        log_share = np.log(beta + T) - np.log(beta + T + t)  # <= 0
        # (1 - ((beta+T)/(beta+T+t))^(s-1)) / (s-1), with its limit -log_share at s = 1.
        if abs(s - 1.0) < 1e-8:
            growth = -log_share
        else:
            growth = -np.expm1((s - 1.0) * log_share) / (s - 1.0)
        return (r + x) * (beta + T) / (alpha + T) * growth * self._probability_alive(x, t_x, T)

    def expected_probability_ever_again(self, data: pd.DataFrame | None = None) -> pd.Series:
        """P(at least one more transaction before death) per customer.

        Alive at T with lambda ~ Gamma(k = r+x, A = alpha+T) and mu ~ Gamma(s, B = beta+T),
        the next purchase precedes death with probability lambda / (lambda + mu), whose
        expectation is k/(k+s) 2F1(s, 1; k+s+1; 1 - A/B) (Pfaff-transformed when A > B so
        the argument stays in [0, 1)); times P(alive).
        """
        data = self._prepare(data, RFM_COLUMNS)
        x, t_x, T = rfm_arrays(data)
        r, alpha, s, beta = self.params_.to_numpy()
        k = r + x
        rate_a, rate_b = alpha + T, beta + T
        direct = hyp2f1(s, 1.0, k + s + 1.0, 1.0 - np.minimum(rate_a / rate_b, 1.0))
        pfaff = (
            rate_b
            / rate_a
            * hyp2f1(k + 1.0, 1.0, k + s + 1.0, 1.0 - np.minimum(rate_b / rate_a, 1.0))
        )
        mean_share = k / (k + s) * np.where(rate_a <= rate_b, direct, pfaff)
        values = self._probability_alive(x, t_x, T) * mean_share
        return by_customer(data, values, "probability_ever_again")

    def expected_transactions_new_customer(self, *, t: float | np.ndarray) -> float | np.ndarray:
        """Expected repeat transactions in the first ``t`` time units of a new customer."""
        self._fitted()
        t = np.asarray(t, dtype="float64")
        zero = np.zeros_like(t)
        r, alpha, s, beta = self.params_.to_numpy()
        log_share = np.log(beta) - np.log(beta + t)
        if abs(s - 1.0) < 1e-8:
            growth = -log_share
        else:
            growth = -np.expm1((s - 1.0) * log_share) / (s - 1.0)
        values = r * beta / alpha * growth + zero
        return float(values) if values.ndim == 0 else values
