"""Gamma-Gamma spend model of Fader, Hardie and Lee (2005, "RFM and CLV").

A customer's transaction values are Gamma(p, nu) with nu ~ Gamma(q, v) across customers,
independent of the purchase process. Fitted on customers with at least one repeat
purchase (``frequency > 0``) from their mean repeat value ``monetary_value``.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy.special import digamma, gammaln

from cx_pipelines.ml.btyd.base import MaximumLikelihoodModel, check_data

SPEND_COLUMNS = ("frequency", "monetary_value")


class GammaGammaModel(MaximumLikelihoodModel):
    """Gamma-Gamma with parameters ``p, q, v``; ``fit`` leaves out customers with frequency 0."""

    parameter_names = ("p", "q", "v")
    required_columns = SPEND_COLUMNS

    def fit(self, data: pd.DataFrame) -> GammaGammaModel:
        """Maximise the likelihood over the repeat buyers of ``data``; returns the model."""
        check_data(data, SPEND_COLUMNS)
        repeat = data[data["frequency"] > 0]
        if len(repeat) == 0:
            raise ValueError(
                "No customer has frequency > 0: the Gamma-Gamma model is fitted on the mean "
                "value of repeat purchases, so it needs repeat buyers"
            )
        if (repeat["monetary_value"] <= 0).any():
            raise ValueError(
                "Column monetary_value has entries <= 0 where frequency is greater than 0"
            )
        super().fit(repeat)
        self.fitted_data_ = data
        return self

    def _likelihood_rows(self, data: pd.DataFrame) -> pd.DataFrame:
        check_data(data, SPEND_COLUMNS)
        return data[data["frequency"] > 0]

    def _log_likelihood(self, params, x, m) -> np.ndarray:
        p, q, v = params
        counts, means = x.values, m.values
        by_count = x.apply(
            lambda value: gammaln(p * value + q) - gammaln(p * value) + p * value * np.log(value)
        )
        return (
            by_count
            - gammaln(q)
            + q * np.log(v)
            + (p * counts - 1.0) * m.apply(np.log)
            - (p * counts + q) * np.log(v + counts * means)
        )

    def _gradient(self, params, x, m) -> np.ndarray:
        p, q, v = params
        counts, means = x.values, m.values
        total = v + counts * means
        log_total = np.log(total)
        shared = x.apply(lambda value: digamma(p * value + q))
        return np.stack(
            [
                counts * (shared - x.apply(lambda value: digamma(p * value) - np.log(value)))
                + counts * (m.apply(np.log) - log_total),
                shared - digamma(q) + np.log(v) - log_total,
                q / v - (p * counts + q) / total,
            ]
        )

    def expected_average_spend(self, data: pd.DataFrame | None = None) -> pd.Series:
        """E[value of a transaction | frequency, monetary_value]: p (v + x m) / (p x + q - 1).

        For customers with frequency 0 this is the population mean p v / (q - 1), which is
        infinite when q <= 1 (reported as inf with a warning).
        """
        data = self._prepare(data, SPEND_COLUMNS)
        p, q, v = self.params_.to_numpy()
        x = data["frequency"].to_numpy(dtype="float64")
        m = data["monetary_value"].to_numpy(dtype="float64")
        denominator = p * x + q - 1.0
        with np.errstate(divide="ignore"):
            values = np.where(
                denominator > 0,
                p * (v + x * m) / np.where(denominator > 0, denominator, 1.0),
                np.inf,
            )
        if np.isinf(values).any():
            warnings.warn(
                f"GammaGammaModel: q = {q:.3g} <= 1 gives an infinite mean spend for customers "
                "with few repeat purchases; their expected average spend is inf",
                RuntimeWarning,
                stacklevel=2,
            )
        index = pd.Index(data["customer_id"].to_numpy(), name="customer_id")
        return pd.Series(values, index=index, name="expected_average_spend")

    def expected_customer_lifetime_value(
        self,
        transaction_model,
        data: pd.DataFrame | None = None,
        *,
        periods: int = 12,
        period_length: float = 4.345,
        discount_rate: float = 0.01,
    ) -> pd.Series:
        """Discounted expected spend over ``periods`` periods of ``period_length`` time units.

        CLV = sum_{i=1..periods} spend * (E[X(i L)] - E[X((i-1) L)]) / (1 + d)^i, with E[X]
        the ``transaction_model``'s conditional expected transactions (e.g. a fitted
        ``BetaGeoModel``), spend the expected average spend and d the per-period discount
        rate (defaults: twelve months of 4.345 weeks, 1% a month).
        """
        if periods < 1:
            raise ValueError(f"periods must be at least 1, got {periods}")
        if discount_rate <= -1:
            raise ValueError(f"discount_rate must be greater than -1, got {discount_rate}")
        data = self._prepare(data, SPEND_COLUMNS)
        check_data(data, ("frequency", "recency", "T", "monetary_value"))
        spend = self.expected_average_spend(data).to_numpy()
        total = np.zeros(len(data))
        previous = np.zeros(len(data))
        for period in range(1, periods + 1):
            cumulative = transaction_model.expected_transactions(
                data, future_t=period * period_length
            ).to_numpy()
            total += spend * (cumulative - previous) / (1.0 + discount_rate) ** period
            previous = cumulative
        index = pd.Index(data["customer_id"].to_numpy(), name="customer_id")
        return pd.Series(total, index=index, name="clv")
