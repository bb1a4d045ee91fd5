"""Customer-level KPIs: one row per customer, from every source table (seed 002, FIG. 3).

Conventions (the observation window ends at ``end``, exclusive; see
:func:`cx_pipelines.features.observation.observation_end`):

- only records before ``end`` count; accounts count when open and opened before ``end``;
- customers are the ``customers`` table plus any customer id seen in transactions;
- a customer with no transactions gets zeros for counts and spends, and nulls for
  ``recency_days``, ``first/last_transaction_at`` and ``average_transaction_amount``;
- ``recency_days``: days from the last transaction to ``end`` (the marketing RFM
  convention, not BTYD's; the BTYD summary is the ``rfm_summary`` asset);
- ``spend_trend``: least-squares slope of spend over the last ``trend_periods`` periods of
  ``period_days`` days, divided by the mean spend per period (e.g. +0.1 = spend grows by
  a tenth of its mean each period); 0 when the customer spent nothing in those periods;
- ``credit_utilisation``: credit-card balance over credit limit of open cards (null when
  the customer has no card with a positive limit);
- ``max_days_past_due`` over open accounts; ``delinquent_account_count`` counts open
  accounts at least ``DELINQUENT_DAYS`` past due.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cx_pipelines import source_schema
from cx_pipelines.features.observation import (
    FeatureInputError,
    category_codes,
    days_between,
    distinct_pairs,
    grouped_extreme,
    grouped_sum,
    observation_end,
    positions,
    require_columns,
)

DELINQUENT_DAYS = 30
DEPOSIT_PRODUCTS = ("checking", "savings")
LOAN_PRODUCTS = ("mortgage", "personal_loan")
_DAY_NS = 86_400 * 10**9
_NAT = np.iinfo(np.int64).min  # the int64 value of NaT in datetime64[ns]


def customer_universe(customers: pd.DataFrame, transactions: pd.DataFrame) -> pd.Index:
    """Sorted unique customer ids: every customer in ``customers`` and every one that transacted."""
    ids = customers["customer_id"].to_numpy(dtype=np.int64)
    if len(np.unique(ids)) != len(ids):
        duplicated = customers["customer_id"][customers["customer_id"].duplicated()].iloc[0]
        raise FeatureInputError(
            f"Column customer_id of table 'customers' has duplicate entries (e.g. {duplicated})"
        )
    known = pd.Index(ids)
    seen = transactions["customer_id"].to_numpy(dtype=np.int64)
    unknown = known.get_indexer(seen) < 0
    extra = np.unique(seen[unknown]) if unknown.any() else np.empty(0, dtype=np.int64)
    return pd.Index(np.sort(np.concatenate([ids, extra])), name="customer_id")


def _before(frame: pd.DataFrame, end: pd.Timestamp, column: str = "occurred_at") -> pd.DataFrame:
    """Rows whose ``column`` is before ``end`` (not missing); the frame itself when all are."""
    stamps = frame[column]
    if len(frame) == 0 or (stamps.max() < end and stamps.notna().all()):
        return frame
    return frame[stamps < end]


def _transaction_kpis(
    universe: pd.Index,
    transactions: pd.DataFrame,
    end: pd.Timestamp,
    *,
    recent_days: int,
    trend_periods: int,
    period_days: int,
) -> dict[str, object]:
    size = len(universe)
    position = positions(transactions["customer_id"], universe)
    amount = transactions["amount"].to_numpy(dtype=np.float64, na_value=0.0)
    stamp_ns = transactions["occurred_at"].to_numpy(dtype="datetime64[ns]").astype(np.int64)
    end_ns = end.as_unit("ns").value
    age_days = (end_ns - stamp_ns) / _DAY_NS  # > 0 for every kept row

    count = grouped_sum(position, None, size)
    total = grouped_sum(position, amount, size)
    has_any = count > 0
    last_ns = grouped_extreme(position, stamp_ns, size, np.maximum)
    first_ns = grouped_extreme(position, stamp_ns, size, np.minimum)

    day = stamp_ns // _DAY_NS
    day_span = int(day.max() - day.min() + 1) if len(day) else 1
    occasion = distinct_pairs(position, day - (day.min() if len(day) else 0), day_span)
    purchase_days = np.bincount(occasion // day_span, minlength=size).astype(np.float64)

    recent = age_days <= recent_days
    previous = (age_days > recent_days) & (age_days <= 2 * recent_days)
    columns: dict[str, object] = {
        "transaction_count": count.astype(np.int64),
        "purchase_days": purchase_days.astype(np.int64),
        "first_transaction_at": np.where(has_any, first_ns, _NAT).view("datetime64[ns]"),
        "last_transaction_at": np.where(has_any, last_ns, _NAT).view("datetime64[ns]"),
        "recency_days": np.where(has_any, (end_ns - last_ns) / _DAY_NS, np.nan),
        "total_spend": total,
        "average_transaction_amount": np.where(has_any, total / np.maximum(count, 1), np.nan),
        f"spend_last_{recent_days}_days": grouped_sum(position[recent], amount[recent], size),
        f"spend_previous_{recent_days}_days": grouped_sum(
            position[previous], amount[previous], size
        ),
        "spend_trend": _spend_trend(
            position, amount, age_days, size, periods=trend_periods, period_days=period_days
        ),
    }

    for column, prefix, known in (
        ("merchant_category", "spend_category_", source_schema.MERCHANT_CATEGORIES),
        ("channel", "spend_channel_", source_schema.TRANSACTION_CHANNELS),
    ):
        codes, names = category_codes(transactions[column], known)
        matrix = grouped_sum(
            np.where(codes >= 0, position * len(names) + codes, -1), amount, size * len(names)
        ).reshape(size, len(names))
        for index, name in enumerate(names):
            columns[f"{prefix}{name}"] = matrix[:, index]
        if column == "merchant_category":
            columns["category_count"] = (matrix > 0).sum(axis=1).astype(np.int64)
    return columns


def _spend_trend(
    position: np.ndarray,
    amount: np.ndarray,
    age_days: np.ndarray,
    size: int,
    *,
    periods: int,
    period_days: int,
) -> np.ndarray:
    """Relative least-squares slope of spend per period over the last ``periods`` periods."""
    period = np.floor(age_days / period_days).astype(np.int64)  # 0 = the latest period
    inside = period < periods
    spend = grouped_sum(
        position[inside] * periods + period[inside], amount[inside], size * periods
    ).reshape(size, periods)
    time = -np.arange(periods, dtype=np.float64)  # older periods further in the past
    centred = time - time.mean()
    slope = spend @ centred / (centred @ centred)
    mean = spend.mean(axis=1)
    return np.divide(slope, mean, out=np.zeros(size), where=mean > 0)


def _account_kpis(
    universe: pd.Index, accounts: pd.DataFrame, end: pd.Timestamp
) -> dict[str, object]:
    size = len(universe)
    opened = pd.to_datetime(accounts["opened_on"])
    open_accounts = accounts[(accounts["status"] == "open") & ~(opened >= end)]
    position = positions(open_accounts["customer_id"], universe)
    product = open_accounts["product_type"].astype("str").to_numpy()
    balance = open_accounts["balance"].to_numpy(dtype=np.float64, na_value=0.0)
    limit = open_accounts["credit_limit"].to_numpy(dtype=np.float64, na_value=0.0)
    past_due = open_accounts["days_past_due"].to_numpy(dtype=np.float64, na_value=0.0)

    codes, names = category_codes(open_accounts["product_type"], source_schema.PRODUCT_TYPES)
    holdings = grouped_sum(
        np.where(codes >= 0, position * len(names) + codes, -1), None, size * len(names)
    ).reshape(size, len(names))
    columns: dict[str, object] = {
        "open_account_count": grouped_sum(position, None, size).astype(np.int64),
        "product_count": (holdings > 0).sum(axis=1).astype(np.int64),
    }
    for index, name in enumerate(names):
        columns[f"holds_{name}"] = holdings[:, index].astype(np.int64)
    is_card = product == "credit_card"
    is_deposit = np.isin(product, DEPOSIT_PRODUCTS)
    is_loan = np.isin(product, LOAN_PRODUCTS)
    card_balance = grouped_sum(position[is_card], balance[is_card], size)
    card_limit = grouped_sum(position[is_card], limit[is_card], size)
    columns["deposit_balance"] = grouped_sum(position[is_deposit], balance[is_deposit], size)
    columns["credit_card_balance"] = card_balance
    columns["loan_balance"] = grouped_sum(position[is_loan], balance[is_loan], size)
    columns["credit_limit"] = card_limit
    columns["credit_utilisation"] = np.divide(
        card_balance, card_limit, out=np.full(size, np.nan), where=card_limit > 0
    )
    worst = grouped_extreme(position, past_due, size, np.maximum)
    columns["max_days_past_due"] = np.maximum(worst, 0).astype(np.int64)
    late = past_due >= DELINQUENT_DAYS
    columns["delinquent_account_count"] = grouped_sum(position[late], None, size).astype(np.int64)
    return columns


def _count_by_type(
    universe: pd.Index, frame: pd.DataFrame, column: str, known: tuple[str, ...], prefix: str
) -> dict[str, np.ndarray]:
    size = len(universe)
    position = positions(frame["customer_id"], universe)
    codes, names = category_codes(frame[column], known)
    matrix = grouped_sum(
        np.where((codes >= 0) & (position >= 0), position * len(names) + codes, -1),
        None,
        size * len(names),
    ).reshape(size, len(names))
    return {
        f"{prefix}{name}": matrix[:, index].astype(np.int64) for index, name in enumerate(names)
    }


def _interaction_kpis(
    universe: pd.Index, interactions: pd.DataFrame, end: pd.Timestamp, *, recent_days: int
) -> dict[str, object]:
    size = len(universe)
    position = positions(interactions["customer_id"], universe)
    recent = (end - interactions["occurred_at"]).to_numpy() <= np.timedelta64(recent_days, "D")
    columns: dict[str, object] = {
        "interaction_count": grouped_sum(position, None, size).astype(np.int64),
        f"interactions_last_{recent_days}_days": grouped_sum(position[recent], None, size).astype(
            np.int64
        ),
    }
    columns.update(
        _count_by_type(
            universe,
            interactions,
            "interaction_type",
            source_schema.INTERACTION_TYPES,
            "interactions_",
        )
    )
    by_channel = _count_by_type(
        universe, interactions, "channel", source_schema.INTERACTION_CHANNELS, ""
    )
    names = list(by_channel)
    matrix = np.column_stack([by_channel[name] for name in names]) if names else np.zeros((size, 0))
    preferred = (
        np.array(names, dtype=object)[matrix.argmax(axis=1)] if names else np.full(size, None)
    )
    has_any = matrix.sum(axis=1) > 0 if names else np.zeros(size, dtype=bool)
    # ties go to the channel listed first in source_schema.INTERACTION_CHANNELS
    columns["preferred_interaction_channel"] = pd.array(
        np.where(has_any, preferred, None), dtype="str"
    )
    return columns


def _offer_kpis(universe: pd.Index, offers: pd.DataFrame) -> dict[str, object]:
    size = len(universe)
    treated = offers[offers["treated"].fillna(False).astype(bool)]
    position = positions(treated["customer_id"], universe)
    responded = treated["responded"].fillna(False).to_numpy(dtype=bool)
    received = grouped_sum(position, None, size)
    accepted = grouped_sum(position[responded], None, size)
    return {
        "offers_received": received.astype(np.int64),
        "offers_responded": accepted.astype(np.int64),
        "offer_response_rate": np.divide(
            accepted, received, out=np.full(size, np.nan), where=received > 0
        ),
    }


def customer_kpis(
    customers: pd.DataFrame,
    accounts: pd.DataFrame,
    transactions: pd.DataFrame,
    interactions: pd.DataFrame,
    inbound_events: pd.DataFrame | None = None,
    offer_history: pd.DataFrame | None = None,
    *,
    as_of: str | None = None,
    recent_days: int = 90,
    trend_periods: int = 6,
    period_days: int = 30,
) -> pd.DataFrame:
    """One row of KPIs per customer (see the module docstring for every convention)."""
    require_columns(customers, ["customer_id", "joined_on"], table="customers")
    require_columns(
        accounts,
        [
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
    require_columns(
        transactions,
        ["customer_id", "occurred_at", "amount", "merchant_category", "channel"],
        table="transactions",
    )
    require_columns(
        interactions,
        ["customer_id", "occurred_at", "channel", "interaction_type"],
        table="interactions",
    )
    end = observation_end(transactions, as_of=as_of)
    transactions = _before(transactions, end)
    universe = customer_universe(customers, transactions)

    columns: dict[str, object] = {"customer_id": universe.to_numpy()}
    joined = pd.Series(
        pd.to_datetime(customers["joined_on"]).to_numpy(), index=customers["customer_id"].to_numpy()
    )
    joined = joined.reindex(universe)
    tx = _transaction_kpis(
        universe,
        transactions,
        end,
        recent_days=recent_days,
        trend_periods=trend_periods,
        period_days=period_days,
    )
    # customers missing from the customers table: tenure from their first transaction
    since = joined.fillna(pd.Series(tx["first_transaction_at"], index=universe))
    columns["as_of"] = np.full(len(universe), end.to_datetime64())
    columns["tenure_days"] = days_between(since, end).to_numpy()
    columns.update(tx)
    columns.update(_account_kpis(universe, accounts, end))
    columns.update(
        _interaction_kpis(universe, _before(interactions, end), end, recent_days=recent_days)
    )
    if inbound_events is not None:
        require_columns(
            inbound_events, ["customer_id", "event_type", "occurred_at"], table="inbound_events"
        )
        columns.update(
            _count_by_type(
                universe,
                _before(inbound_events, end),
                "event_type",
                source_schema.EVENT_TYPES,
                "events_",
            )
        )
    if offer_history is not None:
        require_columns(
            offer_history,
            ["customer_id", "treated", "responded", "contacted_at"],
            table="offer_history",
        )
        columns.update(_offer_kpis(universe, _before(offer_history, end, "contacted_at")))
    return pd.DataFrame(columns)
