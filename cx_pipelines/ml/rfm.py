"""Recency-frequency-monetary summaries of a transaction log, in the BTYD convention.

For each customer, from the first purchase to the end of observation:

- ``frequency``: the number of *repeat* purchase occasions (occasions after the first;
  with ``merge_same_day`` an occasion is a day with at least one purchase);
- ``recency``: time from the first to the last purchase occasion (0 when frequency is 0);
- ``T``: time from the first purchase to the end of observation;
- ``monetary_value``: mean value of the repeat occasions (the first is left out, as in
  Fader, Hardie and Lee 2005; 0 when frequency is 0).

Time is measured in days (``time_unit="D"``) or weeks of seven days (``"W"``, fractional:
the papers' CDNOW figures use days / 7). Everything is vectorised (one sort, ``bincount``
and ``ufunc.at``), so tens of millions of transactions summarise in seconds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

_NANOSECONDS_PER_DAY = 86_400 * 10**9
_DAYS_PER_UNIT = {"D": 1.0, "W": 7.0}

RFM_COLUMNS = ["customer_id", "frequency", "recency", "T", "monetary_value"]
CALIBRATION_HOLDOUT_COLUMNS = [
    "customer_id",
    "frequency_cal",
    "recency_cal",
    "T_cal",
    "monetary_value_cal",
    "frequency_holdout",
    "monetary_value_holdout",
    "duration_holdout",
]


@dataclass(frozen=True)
class _Purchases:
    """Purchases with customers as dense codes; ``time`` is whole days when merging same-day."""

    customer_ids: np.ndarray  # sorted unique customer ids; code i is customer_ids[i]
    code: np.ndarray  # customer code per purchase
    time: np.ndarray  # int64: days since epoch (merged) or nanoseconds since epoch
    value: np.ndarray  # float64 value per purchase


def _time_scale(time_unit: str, merge_same_day: bool) -> float:
    if time_unit not in _DAYS_PER_UNIT:
        raise ValueError(f"time_unit must be 'D' or 'W', got {time_unit!r}")
    days = _DAYS_PER_UNIT[time_unit]
    return days if merge_same_day else days * _NANOSECONDS_PER_DAY


def _as_naive_datetime(values: pd.Series | pd.Timestamp) -> pd.Series | pd.Timestamp:
    """Timestamps as naive UTC, so aware and naive inputs compare the same way."""
    if isinstance(values, pd.Series):
        values = pd.to_datetime(values)
        if values.dt.tz is not None:
            values = values.dt.tz_convert("UTC").dt.tz_localize(None)
        return values
    stamp = pd.Timestamp(values)
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert("UTC").tz_localize(None)
    return stamp


def _to_int_time(stamp: pd.Timestamp, merge_same_day: bool) -> int:
    if merge_same_day:
        return int(np.datetime64(stamp.to_datetime64(), "D").astype("int64"))
    return int(np.datetime64(stamp.to_datetime64(), "ns").astype("int64"))


def _check_columns(transactions: pd.DataFrame, columns: list[str]) -> None:
    missing = [column for column in columns if column not in transactions.columns]
    if missing:
        raise ValueError(
            f"transactions has no column {missing[0]!r}; columns are {list(transactions.columns)}. "
            "Pass customer_id_col=, datetime_col= or monetary_value_col= to name yours."
        )
    for column in columns:
        missing_rows = int(transactions[column].isna().sum())
        if missing_rows:
            raise ValueError(f"Column {column} has {missing_rows} missing values")


def _purchases(
    transactions: pd.DataFrame,
    *,
    customer_id_col: str,
    datetime_col: str,
    monetary_value_col: str | None,
    merge_same_day: bool,
) -> _Purchases:
    columns = [customer_id_col, datetime_col] + ([monetary_value_col] if monetary_value_col else [])
    _check_columns(transactions, columns)
    when = _as_naive_datetime(transactions[datetime_col]).to_numpy()
    if merge_same_day:
        time = when.astype("datetime64[D]").astype("int64")
    else:
        time = when.astype("datetime64[ns]").astype("int64")
    if monetary_value_col:
        value = transactions[monetary_value_col].to_numpy(dtype="float64")
    else:
        value = np.zeros(len(transactions))
    code, customer_ids = pd.factorize(transactions[customer_id_col], sort=True)
    return _Purchases(np.asarray(customer_ids), code.astype("int64"), time, value)


def _restrict(purchases: _Purchases, keep: np.ndarray) -> _Purchases:
    return _Purchases(
        purchases.customer_ids, purchases.code[keep], purchases.time[keep], purchases.value[keep]
    )


def _occasion_counts(purchases: _Purchases, merge_same_day: bool) -> np.ndarray:
    """Purchase occasions per customer code: distinct days when merging, else purchases."""
    n_customers = len(purchases.customer_ids)
    if not merge_same_day or not len(purchases.time):
        return np.bincount(purchases.code, minlength=n_customers)
    start = purchases.time.min()
    span = int(purchases.time.max() - start) + 1
    # Sorting one int64 key is several times faster than hashing (code, day) pairs.
    key = np.sort(purchases.code * span + (purchases.time - start))
    distinct = np.empty(len(key), dtype=bool)
    distinct[0] = True
    np.not_equal(key[1:], key[:-1], out=distinct[1:])
    return np.bincount(key[distinct] // span, minlength=n_customers)


def _summarise(purchases: _Purchases, end: int, scale: float, merge_same_day: bool) -> pd.DataFrame:
    """Frequency, recency, T and monetary value per customer with a purchase in ``purchases``."""
    n_customers = len(purchases.customer_ids)
    code, time, value = purchases.code, purchases.time, purchases.value
    count = _occasion_counts(purchases, merge_same_day)
    first = np.full(n_customers, np.iinfo("int64").max)
    last = np.full(n_customers, np.iinfo("int64").min)
    np.minimum.at(first, code, time)
    np.maximum.at(last, code, time)
    total = np.bincount(code, weights=value, minlength=n_customers)
    # The first occasion's value is the sum of that day's purchases when merging; without
    # merging, purchases sharing the first instant count as one first purchase of mean value.
    is_first = time == first[code]
    first_value = np.bincount(code[is_first], weights=value[is_first], minlength=n_customers)
    if not merge_same_day:
        first_value = first_value / np.maximum(
            np.bincount(code[is_first], minlength=n_customers), 1
        )
    present = count > 0
    frequency = count[present] - 1
    repeat_value = total[present] - first_value[present]
    monetary = np.where(frequency > 0, repeat_value / np.maximum(frequency, 1), 0.0)
    return pd.DataFrame(
        {
            "customer_id": purchases.customer_ids[present],
            "frequency": frequency.astype("int64"),
            "recency": (last[present] - first[present]) / scale,
            "T": (end - first[present]) / scale,
            "monetary_value": monetary,
        }
    )


def _empty_summary(columns: list[str]) -> pd.DataFrame:
    frame = pd.DataFrame({column: pd.Series(dtype="float64") for column in columns})
    frame["customer_id"] = frame["customer_id"].astype("int64")
    return frame


def rfm_summary(
    transactions: pd.DataFrame,
    *,
    customer_id_col: str = "customer_id",
    datetime_col: str = "occurred_at",
    monetary_value_col: str | None = "amount",
    observation_period_end: object = None,
    time_unit: str = "W",
    merge_same_day: bool = True,
) -> pd.DataFrame:
    """One row per customer: ``customer_id, frequency, recency, T, monetary_value``.

    Transactions after ``observation_period_end`` (default: the last transaction) are left
    out. With ``merge_same_day`` (the papers' convention) purchases on the same day count
    as one occasion whose value is their sum, and the period end is taken as a day.
    ``monetary_value_col=None`` gives ``monetary_value`` 0 for everyone.
    """
    scale = _time_scale(time_unit, merge_same_day)
    purchases = _purchases(
        transactions,
        customer_id_col=customer_id_col,
        datetime_col=datetime_col,
        monetary_value_col=monetary_value_col,
        merge_same_day=merge_same_day,
    )
    if observation_period_end is None:
        if not len(purchases.time):
            return _empty_summary(RFM_COLUMNS)
        end = int(purchases.time.max())
    else:
        end = _to_int_time(_as_naive_datetime(observation_period_end), merge_same_day)
    purchases = _restrict(purchases, purchases.time <= end)
    return _summarise(purchases, end, scale, merge_same_day)


def calibration_and_holdout_data(
    transactions: pd.DataFrame,
    *,
    calibration_period_end: object,
    observation_period_end: object,
    customer_id_col: str = "customer_id",
    datetime_col: str = "occurred_at",
    monetary_value_col: str | None = "amount",
    time_unit: str = "W",
    merge_same_day: bool = True,
) -> pd.DataFrame:
    """RFM in a calibration period and what each of its customers did in the holdout after it.

    Calibration is up to and including ``calibration_period_end``; the holdout runs from
    then to ``observation_period_end``. Only customers who bought in calibration appear
    (BTYD models say nothing about customers not yet acquired). ``frequency_holdout``
    counts holdout occasions, ``monetary_value_holdout`` is their mean value (0 when
    none), ``duration_holdout`` the holdout length in ``time_unit``.
    """
    scale = _time_scale(time_unit, merge_same_day)
    calibration_end = _to_int_time(_as_naive_datetime(calibration_period_end), merge_same_day)
    observation_end = _to_int_time(_as_naive_datetime(observation_period_end), merge_same_day)
    if observation_end <= calibration_end:
        raise ValueError(
            f"observation_period_end ({observation_period_end}) must be after "
            f"calibration_period_end ({calibration_period_end})"
        )
    purchases = _purchases(
        transactions,
        customer_id_col=customer_id_col,
        datetime_col=datetime_col,
        monetary_value_col=monetary_value_col,
        merge_same_day=merge_same_day,
    )
    n_customers = len(purchases.customer_ids)
    calibration = _restrict(purchases, purchases.time <= calibration_end)
    holdout = _restrict(
        purchases, (purchases.time > calibration_end) & (purchases.time <= observation_end)
    )
    in_calibration = np.bincount(calibration.code, minlength=n_customers) > 0
    holdout_count = _occasion_counts(holdout, merge_same_day)
    holdout_total = np.bincount(holdout.code, weights=holdout.value, minlength=n_customers)
    summary = _summarise(calibration, calibration_end, scale, merge_same_day)
    count = holdout_count[in_calibration]
    mean_value = np.where(count > 0, holdout_total[in_calibration] / np.maximum(count, 1), 0.0)
    frame = pd.DataFrame(
        {
            "customer_id": summary["customer_id"].to_numpy(),
            "frequency_cal": summary["frequency"].to_numpy(),
            "recency_cal": summary["recency"].to_numpy(),
            "T_cal": summary["T"].to_numpy(),
            "monetary_value_cal": summary["monetary_value"].to_numpy(),
            "frequency_holdout": count.astype("int64"),
            "monetary_value_holdout": mean_value,
            "duration_holdout": np.full(len(count), (observation_end - calibration_end) / scale),
        }
    )
    return frame
