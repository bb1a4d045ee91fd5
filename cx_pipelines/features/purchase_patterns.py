"""Purchase patterns and trends (seed 002, claim 9): which categories go together, which grow.

- :func:`category_associations`: for every ordered pair of spending categories
  (antecedent -> consequent), the association-rule measures over baskets, where a basket
  is a customer-month (default) or a customer's whole history: support (share of baskets
  with both), confidence (share of antecedent baskets that also hold the consequent) and
  lift (confidence over the consequent's own support; above 1 = bought together more
  often than chance).
- :func:`category_trends`: per category, spend and buying customers in the first and
  second half of the observation window (equal durations), their growth, a least-squares
  slope over equal periods, and a label: growing / stable / shrinking.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd
from scipy import sparse

from cx_pipelines import source_schema
from cx_pipelines.features.observation import (
    FeatureInputError,
    category_codes,
    distinct_pairs,
    grouped_sum,
    observation_end,
    require_columns,
)

BasketUnit = Literal["customer_month", "customer"]
_DAY_NS = 86_400 * 10**9


def _basket_category_pairs(
    transactions: pd.DataFrame, *, basket: BasketUnit, categories: tuple[str, ...]
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Distinct (basket index, category code) pairs, baskets numbered 0..n-1."""
    codes, names = category_codes(transactions["merchant_category"], categories)
    customer, _ = pd.factorize(transactions["customer_id"])
    keep = codes >= 0
    if basket == "customer_month":
        month = transactions["occurred_at"].to_numpy(dtype="datetime64[M]")
        keep &= ~np.isnat(month)
        month = month.astype(np.int64)
        first = month[keep].min() if keep.any() else 0
        month_span = int(month[keep].max() - first + 1) if keep.any() else 1
        basket_key = customer.astype(np.int64) * month_span + (month - first)
    elif basket == "customer":
        basket_key = customer.astype(np.int64)
    else:
        raise FeatureInputError(f"basket must be 'customer_month' or 'customer', got {basket!r}")
    keys = distinct_pairs(basket_key[keep], codes[keep], len(names))
    basket_of_key, category = keys // len(names), keys % len(names)
    basket_index = np.cumsum(np.concatenate([[0], basket_of_key[1:] != basket_of_key[:-1]]))
    return basket_index, category, names


def category_associations(
    transactions: pd.DataFrame,
    *,
    basket: BasketUnit = "customer_month",
    min_support: float = 0.0,
    categories: tuple[str, ...] = source_schema.MERCHANT_CATEGORIES,
) -> pd.DataFrame:
    """Support, confidence and lift for every ordered pair of categories seen together."""
    require_columns(
        transactions, ["customer_id", "occurred_at", "merchant_category"], table="transactions"
    )
    basket_index, category, names = _basket_category_pairs(
        transactions, basket=basket, categories=categories
    )
    baskets = int(basket_index[-1]) + 1 if len(basket_index) else 0
    columns = [
        "antecedent",
        "consequent",
        "baskets_with_both",
        "support",
        "confidence",
        "lift",
        "antecedent_support",
        "consequent_support",
        "baskets",
    ]
    if baskets == 0:
        return pd.DataFrame({name: [] for name in columns})
    incidence = sparse.csr_array(
        (np.ones(len(category), dtype=np.int64), (basket_index, category)),
        shape=(baskets, len(names)),
    )
    together = (incidence.T @ incidence).toarray()
    alone = np.diag(together).astype(np.float64)
    first, second = np.nonzero(together)
    off_diagonal = first != second
    first, second = first[off_diagonal], second[off_diagonal]
    both = together[first, second].astype(np.float64)
    support_first, support_second = alone[first] / baskets, alone[second] / baskets
    frame = pd.DataFrame(
        {
            "antecedent": pd.array(np.array(names, dtype=object)[first], dtype="str"),
            "consequent": pd.array(np.array(names, dtype=object)[second], dtype="str"),
            "baskets_with_both": both.astype(np.int64),
            "support": both / baskets,
            "confidence": both / alone[first],
            "lift": (both / baskets) / (support_first * support_second),
            "antecedent_support": support_first,
            "consequent_support": support_second,
            "baskets": baskets,
        }
    )
    frame = frame[frame["support"] >= min_support]
    return frame.sort_values(
        ["lift", "antecedent", "consequent"], ascending=[False, True, True], ignore_index=True
    )


def category_trends(
    transactions: pd.DataFrame,
    *,
    as_of: str | None = None,
    start: str | None = None,
    periods: int = 12,
    threshold: float = 0.1,
    categories: tuple[str, ...] = source_schema.MERCHANT_CATEGORIES,
) -> pd.DataFrame:
    """Per category: growth between the window's halves, relative slope, and a trend label.

    The window runs from ``start`` (default: the day of the first transaction) to the
    as-of end. ``trend`` labels spend growth between halves: above ``threshold``
    growing, below ``-threshold`` shrinking, else stable; ``mix_trend`` labels the change
    of the category's share of all spend the same way, which separates a category's own
    trend from the growth or shrinkage of the whole book.
    """
    require_columns(
        transactions,
        ["customer_id", "occurred_at", "amount", "merchant_category"],
        table="transactions",
    )
    if periods < 2:
        raise FeatureInputError(f"periods must be at least 2 to fit a slope, got {periods}")
    end = observation_end(transactions, as_of=as_of)
    stamps = transactions["occurred_at"].to_numpy(dtype="datetime64[ns]").astype(np.int64)
    end_ns = end.as_unit("ns").value
    present = stamps != np.iinfo(np.int64).min  # NaT is int64 min
    begin_ns = (
        pd.Timestamp(start).as_unit("ns").value
        if start is not None
        else int(stamps[present].min() // _DAY_NS * _DAY_NS)
    )
    if begin_ns >= end_ns:
        raise FeatureInputError(
            f"Trend window is empty: start {pd.Timestamp(begin_ns)} is not "
            f"before the as-of end {end}"
        )
    inside = (stamps >= begin_ns) & (stamps < end_ns)
    codes, names = category_codes(transactions["merchant_category"], categories)
    inside &= codes >= 0
    codes, stamps = codes[inside], stamps[inside]
    amount = transactions["amount"].to_numpy(dtype=np.float64, na_value=0.0)[inside]
    customer, _ = pd.factorize(transactions["customer_id"].to_numpy()[inside])
    fraction = (stamps - begin_ns) / (end_ns - begin_ns)
    half = (fraction >= 0.5).astype(np.int64)
    period = np.minimum((fraction * periods).astype(np.int64), periods - 1)
    size = len(names)

    spend_half = grouped_sum(codes * 2 + half, amount, size * 2).reshape(size, 2)
    buyers = distinct_pairs(customer, codes * 2 + half, size * 2) % (size * 2)
    buyers_half = np.bincount(buyers, minlength=size * 2).reshape(size, 2).astype(np.float64)
    spend_period = grouped_sum(codes * periods + period, amount, size * periods).reshape(
        size, periods
    )
    time = np.arange(periods, dtype=np.float64)
    centred = time - time.mean()
    mean = spend_period.mean(axis=1)
    slope = np.divide(
        spend_period @ centred / (centred @ centred), mean, out=np.zeros(size), where=mean > 0
    )
    share = spend_half / np.maximum(spend_half.sum(axis=0, keepdims=True), 1e-12)

    def growth(values: np.ndarray) -> np.ndarray:
        return np.divide(
            values[:, 1] - values[:, 0],
            values[:, 0],
            out=np.where(values[:, 1] > 0, np.inf, 0.0),
            where=values[:, 0] > 0,
        )

    def label(change: np.ndarray) -> np.ndarray:
        return np.where(
            change > threshold, "growing", np.where(change < -threshold, "shrinking", "stable")
        )

    spend_growth = growth(spend_half)
    share_change = growth(share)
    return pd.DataFrame(
        {
            "merchant_category": pd.array(names, dtype="str"),
            "spend_first_half": spend_half[:, 0],
            "spend_second_half": spend_half[:, 1],
            "spend_growth": spend_growth,
            "customers_first_half": buyers_half[:, 0].astype(np.int64),
            "customers_second_half": buyers_half[:, 1].astype(np.int64),
            "customer_growth": growth(buyers_half),
            "share_first_half": share[:, 0],
            "share_second_half": share[:, 1],
            "share_change": share_change,
            "slope_per_period": slope,
            "trend": pd.array(label(spend_growth), dtype="str"),
            "mix_trend": pd.array(label(share_change), dtype="str"),
            "window_start": pd.Timestamp(begin_ns),
            "window_end": end,
        }
    )
