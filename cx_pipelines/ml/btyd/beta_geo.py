"""BG/NBD: the beta-geometric / negative binomial model of Fader, Hardie and Lee (2005).

While alive a customer buys at Poisson rate lambda ~ Gamma(r, alpha); after each repeat
purchase they drop out with probability p ~ Beta(a, b). Closed-form likelihood, so it fits
in a fraction of the time of Pareto/NBD. A customer with no repeat purchase is alive for
sure under BG/NBD; use ``ModifiedBetaGeoModel`` to score one-time buyers.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import betaln, digamma, expit, gammaln, hyp2f1

from cx_pipelines.ml.btyd.transactions import (
    RFM_COLUMNS,
    TransactionModel,
    by_customer,
    rfm_arrays,
)


class BetaGeoModel(TransactionModel):
    """BG/NBD with parameters ``r, alpha`` (purchase rate) and ``a, b`` (dropout).

    ``fit(data)`` takes one row per customer with ``customer_id, frequency, recency, T``
    (``rfm_summary`` output). Predictions accept such a frame, defaulting to the fitted one,
    and return Series indexed by ``customer_id``.
    """

    parameter_names = ("r", "alpha", "a", "b")
    # Offset of b in the dropout terms: b + x - 1 for BG/NBD, b + x for MBG/NBD.
    _dropout_offset = -1.0

    # -- likelihood -----------------------------------------------------------------
    def _log_dropout_odds(self, params, x, t_x, T) -> np.ndarray:
        """log of a/(b+x+offset) * ((alpha+T)/(alpha+t_x))^(r+x): the 'dead' to 'alive' odds."""
        r, alpha, a, b = params
        with np.errstate(divide="ignore", invalid="ignore"):
            odds = (
                np.log(a)
                - np.log(b + x + self._dropout_offset)
                + (r + x) * (np.log(alpha + T) - np.log(alpha + t_x))
            )
        return np.where(x > 0, odds, -np.inf)

    def _log_likelihood(self, params, x, t_x, T) -> np.ndarray:
        r, alpha, a, b = params
        offset = self._dropout_offset
        counts = x.values
        log_age = T.apply(lambda value: np.log(alpha + value))
        head = x.apply(
            lambda value: gammaln(r + value) - gammaln(r) + betaln(a, b + value + offset + 1.0)
        ) - betaln(a, b)
        head += r * np.log(alpha) - (r + counts) * log_age
        return head + np.logaddexp(0.0, self._coded_dropout_odds(params, x, t_x, log_age))

    def _coded_dropout_odds(self, params, x, t_x, log_age) -> np.ndarray:
        """``_log_dropout_odds`` on DistinctColumn inputs, log(alpha + T) given."""
        r, alpha, a, b = params
        offset = self._dropout_offset
        with np.errstate(divide="ignore", invalid="ignore"):
            odds = x.apply(lambda value: np.log(a) - np.log(b + value + offset))
            odds += (r + x.values) * (log_age - t_x.apply(lambda value: np.log(alpha + value)))
        if offset < 0:
            odds = np.where(x.values > 0, odds, -np.inf)
        return odds

    def _gradient(self, params, x, t_x, T) -> np.ndarray:
        r, alpha, a, b = params
        offset = self._dropout_offset
        counts = x.values
        log_age = T.apply(lambda value: np.log(alpha + value))
        weight = expit(self._coded_dropout_odds(params, x, t_x, log_age))  # dropout term share
        inverse_age = T.apply(lambda value: 1.0 / (alpha + value))
        inverse_recency = t_x.apply(lambda value: 1.0 / (alpha + value))
        log_ratio = log_age - t_x.apply(lambda value: np.log(alpha + value))
        with np.errstate(divide="ignore", invalid="ignore"):
            dropout_b = np.where(
                weight > 0, weight * x.apply(lambda v: 1.0 / (b + v + offset)), 0.0
            )
        b_terms = x.apply(
            lambda value: digamma(b + value + offset + 1.0) - digamma(a + b + value + offset + 1.0)
        )
        return np.stack(
            [
                x.apply(lambda value: digamma(r + value))
                - digamma(r)
                + np.log(alpha)
                - log_age
                + weight * log_ratio,
                r / alpha
                - (r + counts) * inverse_age
                + weight * (r + counts) * (inverse_age - inverse_recency),
                digamma(a + b)
                - x.apply(lambda value: digamma(a + b + value + offset + 1.0))
                + weight / a,
                b_terms - digamma(b) + digamma(a + b) - dropout_b,
            ]
        )

    # -- predictions ----------------------------------------------------------------
    def _probability_alive(self, x, t_x, T) -> np.ndarray:
        return expit(-self._log_dropout_odds(self.params_.to_numpy(), x, t_x, T))

    def _conditional_purchases(self, x, t_x, T, t) -> np.ndarray:
        r, alpha, a, b = self.params_.to_numpy()
        c = a + b + x + self._dropout_offset
        z = t / (alpha + T + t)
        # Euler's transformation of 2F1(r+x, b+x; c; z) * (1-z)^(r+x) into
        # (1-z)^(a-1) * 2F1(c-r-x, a-1; c; z): no overflow however large x is.
        bracket = 1.0 - (1.0 - z) ** (a - 1.0) * hyp2f1(c - r - x, a - 1.0, c, z)
        return c / (a - 1.0) * bracket * self._probability_alive(x, t_x, T)

    def expected_probability_ever_again(self, data: pd.DataFrame | None = None) -> pd.Series:
        """P(at least one more transaction, ever): equal to P(alive), since a live customer
        with a positive purchase rate buys again and dropout happens only at purchases."""
        data = self._prepare(data, RFM_COLUMNS)
        values = self._probability_alive(*rfm_arrays(data))
        return by_customer(data, values, "probability_ever_again")

    def expected_transactions_new_customer(self, *, t: float | np.ndarray) -> float | np.ndarray:
        """Expected repeat transactions in the first ``t`` time units of a new customer."""
        self._fitted()
        t = np.asarray(t, dtype="float64")
        zero = np.zeros_like(t)
        # A new customer is a customer with no history yet: x = t_x = T = 0.
        values = self._conditional_purchases(zero, zero, zero, t)
        return float(values) if values.ndim == 0 else values

    def expected_probability_of_transaction(
        self, data: pd.DataFrame | None = None, *, future_t: float
    ) -> pd.Series:
        """P(at least one transaction in (T, T + future_t]) given each customer's history.

        Alive at T (dropout happens only at purchases), lambda | history ~ Gamma(r+x, alpha+T),
        so P = P(alive) * (1 - ((alpha+T) / (alpha+T+future_t))^(r+x)).
        """
        data = self._prepare(data, RFM_COLUMNS)
        x, t_x, T = rfm_arrays(data)
        r, alpha = self.params_["r"], self.params_["alpha"]
        no_purchase = np.exp((r + x) * (np.log(alpha + T) - np.log(alpha + T + float(future_t))))
        values = self._probability_alive(x, t_x, T) * (1.0 - no_purchase)
        return by_customer(data, values, "probability_of_transaction")
