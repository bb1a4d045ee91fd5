"""Account-level KPIs: one row per account (seed 004 links accounts to customers, FIG. 8).

Same window conventions as :mod:`cx_pipelines.features.customer_kpis`: transactions and
events before ``end`` count; an account with no transactions has zero counts and spend
and null ``recency_days`` / ``last_transaction_at``. ``utilisation`` is balance over
credit limit (null where there is no positive limit); ``delinquency_bucket`` bands
``days_past_due`` into current / 1-29 / 30-59 / 60-89 / 90+.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cx_pipelines.features.customer_kpis import DELINQUENT_DAYS
from cx_pipelines.features.observation import (
    FeatureInputError,
    days_between,
    grouped_extreme,
    grouped_sum,
    observation_end,
    positions,
    require_columns,
)

DELINQUENCY_BUCKETS = ("current", "1-29", "30-59", "60-89", "90+")
_DAY_NS = 86_400 * 10**9


def delinquency_bucket(days_past_due: pd.Series) -> pd.Series:
    """Band days past due into :data:`DELINQUENCY_BUCKETS` (missing counts as current)."""
    days = days_past_due.fillna(0).to_numpy(dtype=np.float64)
    index = np.searchsorted(np.array([1, 30, 60, 90]), days, side="right")
    return pd.Series(
        np.array(DELINQUENCY_BUCKETS, dtype=object)[index], dtype="str", index=days_past_due.index
    )


def account_kpis(
    accounts: pd.DataFrame,
    transactions: pd.DataFrame,
    inbound_events: pd.DataFrame | None = None,
    *,
    as_of: str | None = None,
    recent_days: int = 90,
) -> pd.DataFrame:
    """One row of KPIs per account in ``accounts``."""
    require_columns(
        accounts,
        [
            "account_id",
            "customer_id",
            "product_type",
            "status",
            "opened_on",
            "balance",
            "credit_limit",
            "days_past_due",
        ],
        table="accounts",
    )
    require_columns(transactions, ["account_id", "occurred_at", "amount"], table="transactions")
    if accounts["account_id"].duplicated().any():
        duplicated = accounts["account_id"][accounts["account_id"].duplicated()].iloc[0]
        raise FeatureInputError(
            f"Column account_id of table 'accounts' has duplicate entries (e.g. {duplicated})"
        )
    end = observation_end(transactions, as_of=as_of)
    universe = pd.Index(accounts["account_id"].to_numpy(dtype=np.int64))
    size = len(universe)

    stamps = transactions["occurred_at"].to_numpy(dtype="datetime64[ns]").astype(np.int64)
    end_ns = end.as_unit("ns").value
    kept = (stamps < end_ns) & (stamps != np.iinfo(np.int64).min)  # NaT is int64 min
    position = np.where(kept, positions(transactions["account_id"], universe), -1)
    amount = transactions["amount"].to_numpy(dtype=np.float64, na_value=0.0)
    age_days = (end_ns - stamps) / _DAY_NS
    recent = kept & (age_days <= recent_days)
    previous = kept & (age_days > recent_days) & (age_days <= 2 * recent_days)

    count = grouped_sum(position, None, size)
    last_ns = grouped_extreme(position, stamps, size, np.maximum)
    has_any = count > 0
    balance = accounts["balance"].to_numpy(dtype=np.float64, na_value=np.nan)
    limit = accounts["credit_limit"].to_numpy(dtype=np.float64, na_value=np.nan)
    past_due = accounts["days_past_due"].fillna(0).to_numpy(dtype=np.int64)

    frame = pd.DataFrame(
        {
            "account_id": universe.to_numpy(),
            "customer_id": accounts["customer_id"].to_numpy(dtype=np.int64),
            "product_type": accounts["product_type"].to_numpy(),
            "status": accounts["status"].to_numpy(),
            "as_of": np.full(size, end.to_datetime64()),
            "tenure_days": days_between(accounts["opened_on"], end).to_numpy(),
            "balance": balance,
            "credit_limit": limit,
            "utilisation": np.divide(
                balance, limit, out=np.full(size, np.nan), where=np.nan_to_num(limit) > 0
            ),
            "days_past_due": past_due,
            "delinquency_bucket": delinquency_bucket(accounts["days_past_due"]).to_numpy(),
            "is_delinquent": past_due >= DELINQUENT_DAYS,
            "transaction_count": count.astype(np.int64),
            "total_spend": grouped_sum(position, amount, size),
            "last_transaction_at": np.where(has_any, last_ns, np.iinfo(np.int64).min).view(
                "datetime64[ns]"
            ),
            "recency_days": np.where(has_any, (end_ns - last_ns) / _DAY_NS, np.nan),
            f"spend_last_{recent_days}_days": grouped_sum(
                np.where(recent, position, -1), amount, size
            ),
            f"spend_previous_{recent_days}_days": grouped_sum(
                np.where(previous, position, -1), amount, size
            ),
        }
    )
    if inbound_events is not None:
        require_columns(
            inbound_events, ["account_id", "event_type", "occurred_at"], table="inbound_events"
        )
        late = inbound_events[
            (inbound_events["event_type"] == "late_payment") & (inbound_events["occurred_at"] < end)
        ]
        late_ids = late["account_id"].dropna()
        frame["late_payment_count"] = grouped_sum(
            positions(late_ids.astype(np.int64), universe), None, size
        ).astype(np.int64)
    return frame
