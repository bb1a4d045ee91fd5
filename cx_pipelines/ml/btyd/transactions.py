"""Shared predictions of the transaction models (BG/NBD, MBG/NBD, Pareto/NBD)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from cx_pipelines.ml.btyd.base import MaximumLikelihoodModel

RFM_COLUMNS = ("frequency", "recency", "T")


def rfm_arrays(data: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """frequency, recency and T of ``data`` as float arrays."""
    return (
        data["frequency"].to_numpy(dtype="float64"),
        data["recency"].to_numpy(dtype="float64"),
        data["T"].to_numpy(dtype="float64"),
    )


def by_customer(data: pd.DataFrame, values: np.ndarray, name: str) -> pd.Series:
    """``values`` as a Series indexed by the rows' ``customer_id``."""
    index = pd.Index(data["customer_id"].to_numpy(), name="customer_id")
    return pd.Series(values, index=index, name=name)


class TransactionModel(MaximumLikelihoodModel):
    """A model of purchase counts and dropout fitted on ``customer_id, frequency, recency, T``.

    Subclasses give ``_probability_alive(x, t_x, T)`` and
    ``_conditional_purchases(x, t_x, T, t)``. Predictions accept such a frame (checked),
    default to the fitted one, and return Series indexed by ``customer_id``.
    """

    required_columns = RFM_COLUMNS

    def _check_identifiable(self, data: pd.DataFrame) -> None:
        if (data["frequency"] == 0).all():
            raise ValueError(
                "All customers have frequency 0 (no repeat purchases): the purchase and "
                "dropout rates cannot be estimated. Use a longer observation period."
            )

    def _probability_alive(self, x, t_x, T) -> np.ndarray:
        raise NotImplementedError

    def _conditional_purchases(self, x, t_x, T, t) -> np.ndarray:
        raise NotImplementedError

    def expected_probability_alive(self, data: pd.DataFrame | None = None) -> pd.Series:
        """P(alive at T | frequency, recency, T) per customer."""
        data = self._prepare(data, RFM_COLUMNS)
        return by_customer(data, self._probability_alive(*rfm_arrays(data)), "probability_alive")

    def expected_transactions(
        self, data: pd.DataFrame | None = None, *, future_t: float
    ) -> pd.Series:
        """Expected number of transactions in (T, T + future_t] given each customer's history."""
        data = self._prepare(data, RFM_COLUMNS)
        values = self._conditional_purchases(*rfm_arrays(data), float(future_t))
        return by_customer(data, values, "expected_transactions")
