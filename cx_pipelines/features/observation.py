"""The observation window shared by every feature: when it ends and how to index into it."""

from __future__ import annotations

import numpy as np
import pandas as pd


class FeatureInputError(ValueError):
    """An input table lacks a column, or a value cannot be used to compute features."""


def require_columns(
    frame: pd.DataFrame, columns: list[str] | tuple[str, ...], *, table: str
) -> None:
    """Raise :class:`FeatureInputError` naming the table and the columns it lacks."""
    missing = [column for column in columns if column not in frame.columns]
    if missing:
        raise FeatureInputError(
            f"Table {table!r} lacks column(s) {missing}; it has {list(frame.columns)}"
        )


def observation_end(
    transactions: pd.DataFrame,
    *,
    as_of: str | pd.Timestamp | None = None,
    datetime_col: str = "occurred_at",
) -> pd.Timestamp:
    """End of the observation window (exclusive): ``as_of``, else the end of the last spend day.

    The synthetic world ends on 2026-09-30 but CDNOW ends in June 1998, so the default
    follows the data: midnight after the latest transaction, i.e. that day's end.
    An ``as_of`` date without a time also means the end of that day.
    """
    if as_of is not None:
        try:
            stamp = pd.Timestamp(as_of)
        except (ValueError, TypeError) as error:
            raise FeatureInputError(f"as_of {as_of!r} is not a date or timestamp") from error
        if isinstance(as_of, str) and len(as_of.strip()) <= 10:  # a date: its end
            stamp = stamp + pd.Timedelta(days=1)
        return stamp
    if len(transactions) == 0 or transactions[datetime_col].isna().all():
        raise FeatureInputError(
            "Cannot infer the as-of date: table 'transactions' has no timestamps; "
            "set as_of in the asset config"
        )
    return pd.Timestamp(transactions[datetime_col].max()).normalize() + pd.Timedelta(days=1)


def days_between(earlier: pd.Series, end: pd.Timestamp) -> pd.Series:
    """Whole days from each timestamp in ``earlier`` to ``end`` (float, NaN where missing)."""
    delta = end - pd.to_datetime(earlier)
    return delta / pd.Timedelta(days=1)


def positions(keys: pd.Series, universe: pd.Index) -> np.ndarray:
    """Row position of each key in ``universe`` (-1 where the key is not in it)."""
    return universe.get_indexer(keys.to_numpy())


def category_codes(values: pd.Series, known: tuple[str, ...]) -> tuple[np.ndarray, list[str]]:
    """Code per value over ``known`` plus any other categories seen (sorted); -1 if missing."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    observed = [str(value) for value in uniques]
    categories = list(known) + sorted(set(observed) - set(known))
    lookup = {name: index for index, name in enumerate(categories)}
    mapping = np.array([lookup[name] for name in observed] + [-1], dtype=np.int64)
    return mapping[codes], categories  # code -1 picks the trailing -1


def distinct_pairs(first: np.ndarray, second: np.ndarray, second_size: int) -> np.ndarray:
    """Sorted distinct keys ``first * second_size + second`` (both non-negative integers)."""
    keys = np.sort(first.astype(np.int64) * second_size + second)
    if len(keys) == 0:
        return keys
    return keys[np.concatenate([[True], keys[1:] != keys[:-1]])]


def grouped_sum(group: np.ndarray, weights: np.ndarray | None, size: int) -> np.ndarray:
    """Sum of ``weights`` (or count) per group position in 0..size-1, ignoring group -1."""
    keep = group >= 0
    if weights is None:
        return np.bincount(group[keep], minlength=size).astype(np.float64)
    return np.bincount(group[keep], weights=weights[keep], minlength=size)


def grouped_extreme(
    group: np.ndarray, values: np.ndarray, size: int, ufunc: np.ufunc
) -> np.ndarray:
    """Maximum (``np.maximum``) or minimum (``np.minimum``) of ``values`` per group position.

    Groups with no value hold the identity of the reduction (the dtype's min or max),
    so callers mask them with their own count.
    """
    info = np.iinfo(values.dtype) if values.dtype.kind in "iu" else np.finfo(values.dtype)
    start = info.min if ufunc is np.maximum else info.max
    result = np.full(size, start, dtype=values.dtype)
    keep = group >= 0
    ufunc.at(result, group[keep], values[keep])
    return result
