"""Training frames for the supervised models, their time-based holdouts, and the oracles.

Features are computed here from the source-level tables (customers, accounts,
transactions) *as of a date*, so that attrition can be trained at one cutoff and
evaluated at a later one without looking into the future:

* customer attributes: ``customer_type``, ``region``, ``age``, ``annual_income``,
  ``tenure_days``;
* holdings: ``holds_<product>`` (an open account at the world's end; for attrition,
  any account opened by the cutoff, since closures are only known at the end),
  ``holds_products``, ``delinquent``;
* behaviour up to the date: ``purchases_total``, ``purchases_90d``, ``purchases_365d``,
  ``spend_total``, ``spend_90d``, ``spend_mean``, ``days_since_last_purchase``;
* contact pressure: ``recent_treated_contacts``, the customer's treated contacts in the
  ``RECENCY_WINDOW_DAYS`` before a point in time (strictly before it), from the platform's
  own contact history: for a training contact at its ``contacted_at`` (never the contact
  itself, nor a later one), for scoring at the decision date (:func:`contact_recency`).

Labels and holdouts:

* **propensity**: treated contacts of past campaigns, ``responded``; **uplift**: all
  contacts (treated and randomised control). Holdout: within each campaign the latest
  ``fraction`` of contacts (by ``contacted_at``), so every offer × channel seen in
  training is also evaluated, and the holdout is later than the rows it is judged against.
* **attrition**: customers who bought by the cutoff; ``attrited`` = no purchase in the
  next ``window`` days. Training cutoff = end − 2 × window, holdout cutoff = end − window
  (labels from the final ``window`` days of the world).

Oracles score the same rows with the world's ground truth (``truth.parquet``).
"""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from cx_pipelines.ml.errors import InsufficientDataError, TrainingDataError
from cx_pipelines.source_schema import PRODUCT_TYPES

CONTACT_COLUMNS = ("customer_id", "offer_type", "channel", "treated", "contacted_at", "responded")
DAY = pd.Timedelta(days=1)
RECENCY_FEATURE = "recent_treated_contacts"
RECENCY_WINDOW_DAYS = 28
"""Treated contacts this many days before a point in time count as contact pressure."""


def _require(frame: pd.DataFrame, columns: tuple[str, ...] | list[str], *, table: str) -> None:
    missing = [column for column in columns if column not in frame.columns]
    if missing:
        raise TrainingDataError(f"table {table!r} lacks columns {missing}")


def customer_features(
    customers: pd.DataFrame,
    accounts: pd.DataFrame,
    transactions: pd.DataFrame,
    *,
    as_of: datetime,
    open_accounts_only: bool = True,
) -> pd.DataFrame:
    """One row per customer who joined by ``as_of``: attributes, holdings and behaviour."""
    _require(
        customers,
        ["customer_id", "customer_type", "region", "birth_year", "annual_income", "joined_on"],
        table="customers",
    )
    _require(
        accounts,
        ["customer_id", "product_type", "opened_on", "status", "days_past_due"],
        table="accounts",
    )
    _require(transactions, ["customer_id", "occurred_at", "amount"], table="transactions")
    if customers["customer_id"].duplicated().any():
        raise TrainingDataError("Column customer_id of table 'customers' has duplicate entries")
    cutoff = pd.Timestamp(as_of)
    joined = pd.to_datetime(customers["joined_on"])
    frame = customers.loc[joined <= cutoff, ["customer_id", "customer_type", "region"]].copy()
    frame["age"] = cutoff.year - pd.to_numeric(customers["birth_year"], errors="coerce")
    frame["annual_income"] = pd.to_numeric(customers["annual_income"], errors="coerce")
    frame["tenure_days"] = (cutoff - joined).dt.days.astype(float)
    frame = frame.set_index("customer_id")

    opened = accounts[pd.to_datetime(accounts["opened_on"]) <= cutoff]
    if open_accounts_only:
        opened = opened[opened["status"] == "open"]
    holdings = (
        pd.crosstab(opened["customer_id"], opened["product_type"])
        .clip(upper=1)
        .reindex(columns=list(PRODUCT_TYPES), fill_value=0)
    )
    for product in PRODUCT_TYPES:
        frame[f"holds_{product}"] = holdings[product].reindex(frame.index, fill_value=0)
    frame["holds_products"] = frame[[f"holds_{p}" for p in PRODUCT_TYPES]].sum(axis=1)
    late = opened.loc[pd.to_numeric(opened["days_past_due"], errors="coerce") > 0, "customer_id"]
    frame["delinquent"] = frame.index.isin(late.unique()).astype(int)

    occurred = pd.to_datetime(transactions["occurred_at"])
    past = transactions.loc[occurred <= cutoff, ["customer_id", "amount"]].assign(
        occurred_at=occurred[occurred <= cutoff]
    )
    age_days = (cutoff - past["occurred_at"]) / DAY
    grouped = past.groupby("customer_id")
    behaviour = pd.DataFrame(
        {
            "purchases_total": grouped.size(),
            "spend_total": grouped["amount"].sum(),
            "days_since_last_purchase": age_days.groupby(past["customer_id"]).min(),
        }
    )
    for days in (90, 365):
        recent = past[age_days <= days]
        behaviour[f"purchases_{days}d"] = recent.groupby("customer_id").size()
    behaviour["spend_90d"] = past[age_days <= 90].groupby("customer_id")["amount"].sum()
    behaviour = behaviour.reindex(frame.index)
    for column in (
        "purchases_total",
        "spend_total",
        "purchases_90d",
        "purchases_365d",
        "spend_90d",
    ):
        behaviour[column] = behaviour[column].fillna(0.0)
    behaviour["spend_mean"] = behaviour["spend_total"] / behaviour["purchases_total"].where(
        behaviour["purchases_total"] > 0
    )
    return frame.join(behaviour).reset_index()


def contacts(
    offer_history: pd.DataFrame, interaction_results: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Past contacts plus any interaction results fed back by the campaigns (same columns)."""
    _require(offer_history, CONTACT_COLUMNS, table="offer_history")
    frames = [offer_history]
    if interaction_results is not None and not interaction_results.empty:
        _require(interaction_results, CONTACT_COLUMNS, table="interaction_results")
        frames.append(interaction_results)
    columns = [*CONTACT_COLUMNS, "campaign_id"]
    combined = pd.concat([frame.reindex(columns=columns) for frame in frames], ignore_index=True)
    combined["campaign_id"] = combined["campaign_id"].fillna(
        combined["offer_type"].astype(str) + "_" + combined["channel"].astype(str)
    )
    combined["contacted_at"] = pd.to_datetime(combined["contacted_at"])
    for column in ("treated", "responded"):
        if combined[column].isna().any():
            missing = int(combined[column].isna().sum())
            raise TrainingDataError(f"contacts: column {column!r} has {missing} missing values")
        combined[column] = combined[column].astype(bool)
    return combined


def recent_treated_contacts(
    history: pd.DataFrame,
    customer_ids: pd.Series | np.ndarray,
    at: pd.Series | np.ndarray | pd.Timestamp,
    *,
    window_days: float = RECENCY_WINDOW_DAYS,
) -> np.ndarray:
    """Per query (customer, time): treated contacts of that customer in ``history`` with
    ``at − window ≤ contacted_at < at``. Strictly before ``at``: a contact at ``at`` (the
    query's own) or after it does not count."""
    _require(history, ["customer_id", "treated", "contacted_at"], table="contact history")
    ids = np.asarray(customer_ids)
    times = pd.to_datetime(
        pd.Series(np.broadcast_to(np.asarray(at, dtype="datetime64[ns]"), ids.shape))
    )
    if times.isna().any():
        raise TrainingDataError(
            f"contact recency: {int(times.isna().sum())} query times are missing"
        )
    treated = history.loc[history["treated"].astype(bool), ["customer_id", "contacted_at"]]
    events = pd.DataFrame(
        {
            "customer_id": treated["customer_id"].to_numpy(),
            "event_at": pd.to_datetime(treated["contacted_at"]).astype("datetime64[ns]").to_numpy(),
        }
    ).dropna()
    counts = np.zeros(len(ids), dtype=np.int64)
    if events.empty or not len(ids):
        return counts
    events["customer_id"] = events["customer_id"].astype(ids.dtype)
    events = events.sort_values("event_at", kind="stable")
    # Treated contacts of the customer up to each event, itself included.
    events["seen"] = events.groupby("customer_id").cumcount() + 1
    query = pd.DataFrame(
        {
            "customer_id": ids,
            "at": times.astype("datetime64[ns]").to_numpy(),
            "row": np.arange(len(ids)),
        }
    )

    def seen_before(limit: pd.Series) -> np.ndarray:
        """Treated contacts of each query's customer strictly before ``limit``."""
        keyed = query.assign(limit=limit.to_numpy()).sort_values("limit", kind="stable")
        matched = pd.merge_asof(
            keyed,
            events,
            left_on="limit",
            right_on="event_at",
            by="customer_id",
            allow_exact_matches=False,
        )
        result = np.zeros(len(ids), dtype=np.int64)
        result[matched["row"].to_numpy()] = matched["seen"].fillna(0).to_numpy(np.int64)
        return result

    window = pd.Timedelta(days=window_days)
    return seen_before(query["at"]) - seen_before(query["at"] - window)


def with_contact_recency(contacts_table: pd.DataFrame) -> pd.DataFrame:
    """Contacts with ``recent_treated_contacts`` at each row's ``contacted_at``, counted from
    the same table (every contact before the row; the row itself never counts)."""
    recent = recent_treated_contacts(
        contacts_table, contacts_table["customer_id"], contacts_table["contacted_at"]
    )
    return contacts_table.assign(**{RECENCY_FEATURE: recent.astype(float)})


def contact_recency(
    features: pd.DataFrame, history: pd.DataFrame, *, at: pd.Timestamp
) -> pd.DataFrame:
    """Customer features with ``recent_treated_contacts`` as of ``at`` (a decision date)."""
    recent = recent_treated_contacts(history, features["customer_id"], pd.Timestamp(at))
    return features.assign(**{RECENCY_FEATURE: recent.astype(float)})


def contact_frame(contacts_table: pd.DataFrame, features: pd.DataFrame) -> pd.DataFrame:
    """Contacts joined with the features of their customer (contacts of unknown customers dropped
    only if the features lack them, which is reported)."""
    if contacts_table.empty:
        raise InsufficientDataError(
            "there are no contacts of past campaigns (offer_history and interaction_results "
            "are empty, or every contact is after the as-of date)",
            counts={"contacts": 0},
            needed="models of offer response need randomised campaign history: load "
            "offer_history or run campaigns that feed back interaction_results",
        )
    joined = contacts_table.merge(features, on="customer_id", how="inner", validate="many_to_one")
    if joined.empty:
        raise TrainingDataError("no contact matches a customer with features")
    return joined


def split_latest_per_campaign(
    frame: pd.DataFrame,
    *,
    fraction: float,
    time_column: str = "contacted_at",
    group_column: str = "campaign_id",
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Hold out the latest ``fraction`` of rows of every campaign; returns (train, holdout)."""
    _require(frame, [time_column, group_column], table="contacts")
    order = frame.sort_values([group_column, time_column, "customer_id"], kind="stable")
    rank = order.groupby(group_column).cumcount()
    size = order.groupby(group_column)[time_column].transform("size")
    is_holdout = rank >= np.floor(size * (1 - fraction))
    return order[~is_holdout].reset_index(drop=True), order[is_holdout].reset_index(drop=True)


def attrition_frame(
    customers: pd.DataFrame,
    accounts: pd.DataFrame,
    transactions: pd.DataFrame,
    *,
    cutoff: datetime,
    window_days: int,
) -> pd.DataFrame:
    """Customers who bought by ``cutoff``, with features at the cutoff and the label
    ``attrited`` = no purchase in (cutoff, cutoff + window]."""
    features = customer_features(
        customers, accounts, transactions, as_of=cutoff, open_accounts_only=False
    )
    features = features[features["purchases_total"] > 0]
    occurred = pd.to_datetime(transactions["occurred_at"])
    window_end = pd.Timestamp(cutoff) + timedelta(days=window_days)
    buyers = transactions.loc[
        (occurred > pd.Timestamp(cutoff)) & (occurred <= window_end), "customer_id"
    ].unique()
    frame = features.assign(attrited=~features["customer_id"].isin(buyers))
    frame["cutoff"] = pd.Timestamp(cutoff)
    return frame.reset_index(drop=True)


def attrition_split(
    customers: pd.DataFrame,
    accounts: pd.DataFrame,
    transactions: pd.DataFrame,
    *,
    world_end: datetime,
    window_days: int,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train, holdout): cutoffs end − 2 × window and end − window."""
    train = attrition_frame(
        customers,
        accounts,
        transactions,
        cutoff=world_end - timedelta(days=2 * window_days),
        window_days=window_days,
    )
    holdout = attrition_frame(
        customers,
        accounts,
        transactions,
        cutoff=world_end - timedelta(days=window_days),
        window_days=window_days,
    )
    return train, holdout


# --- Oracles: the same rows scored with the world's ground truth ---------------------------


def oracle_response(frame: pd.DataFrame, truth: pd.DataFrame) -> np.ndarray:
    """True response probability of each contact: p_treated (or p_control), its offer × channel."""
    indexed = truth.set_index("customer_id")
    rows = indexed.index.get_indexer(frame["customer_id"])
    if (rows < 0).any():
        raise TrainingDataError(f"{int((rows < 0).sum())} contacts have no ground truth")
    treated_arm = (
        frame["treated"].to_numpy(dtype=bool) if "treated" in frame else np.ones(len(frame), bool)
    )
    result = np.empty(len(frame))
    for pair, positions in frame.groupby(["offer_type", "channel"]).indices.items():
        offer, channel = pair
        treated = indexed[f"p_treated__{offer}__{channel}"].to_numpy()[rows[positions]]
        control = indexed[f"p_control__{offer}__{channel}"].to_numpy()[rows[positions]]
        result[positions] = np.where(treated_arm[positions], treated, control)
    return result


def oracle_uplift(frame: pd.DataFrame, truth: pd.DataFrame) -> np.ndarray:
    """True uplift (p_treated − p_control) of each contact's offer × channel."""
    indexed = truth.set_index("customer_id")
    rows = indexed.index.get_indexer(frame["customer_id"])
    if (rows < 0).any():
        raise TrainingDataError(f"{int((rows < 0).sum())} contacts have no ground truth")
    result = np.empty(len(frame))
    for pair, positions in frame.groupby(["offer_type", "channel"]).indices.items():
        offer, channel = pair
        treated = indexed[f"p_treated__{offer}__{channel}"].to_numpy()
        control = indexed[f"p_control__{offer}__{channel}"].to_numpy()
        result[positions] = treated[rows[positions]] - control[rows[positions]]
    return result


def oracle_attrition(frame: pd.DataFrame, truth: pd.DataFrame, *, window_days: int) -> np.ndarray:
    """P(no purchase in the window | truth): 1 if dropped out by the cutoff, else exp(-λ·window).

    In the world's BG/NBD process a customer drops out only right after a purchase, so a
    customer alive at the cutoff makes no purchase in the window with probability exp(-λ w).
    """
    indexed = truth.set_index("customer_id")
    rows = indexed.index.get_indexer(frame["customer_id"])
    if (rows < 0).any():
        raise TrainingDataError(f"{int((rows < 0).sum())} customers have no ground truth")
    dropped_at = pd.to_datetime(indexed["dropped_out_at"]).to_numpy()[rows]
    rate_per_week = indexed["purchase_rate"].to_numpy()[rows]
    cutoff = pd.to_datetime(frame["cutoff"]).to_numpy()
    dead = ~pd.isna(dropped_at) & (dropped_at <= cutoff)
    return np.where(dead, 1.0, np.exp(-rate_per_week * window_days / 7))


# --- Holdouts of the buy-till-you-die scores -----------------------------------------------


def hit_and_run_holdout(
    transactions: pd.DataFrame, *, cutoff: datetime, as_of: datetime
) -> pd.DataFrame:
    """One-time buyers at ``cutoff`` scored from the history up to it, with ``returned`` =
    bought again in (cutoff, as_of]. Columns: customer_id, T, probability_ever_again, returned."""
    from cx_pipelines.ml import lifetime, rfm

    data = rfm.calibration_and_holdout_data(
        transactions,
        calibration_period_end=cutoff,
        observation_period_end=as_of,
        monetary_value_col=None,
    )
    calibration = data.rename(
        columns={"frequency_cal": "frequency", "recency_cal": "recency", "T_cal": "T"}
    )
    scores = lifetime.hit_and_run_scores(calibration).set_index("customer_id")
    one_time = calibration[calibration["frequency"] == 0].set_index("customer_id")
    return pd.DataFrame(
        {
            "T": one_time["T"],
            "probability_ever_again": scores["probability_ever_again"].reindex(one_time.index),
            "returned": (one_time["frequency_holdout"] > 0).astype(int),
            "holdout_weeks": data["duration_holdout"].iloc[0],
        }
    ).reset_index()


def dormancy_holdout(
    transactions: pd.DataFrame, *, cutoff: datetime, dormant_days: int, horizon_days: int
) -> pd.DataFrame:
    """Accounts dormant at ``cutoff`` scored from spending up to it, with ``reactivated`` =
    spent in the next ``horizon_days``. Columns of ``dormancy_scores`` plus reactivated."""
    from cx_pipelines.ml import lifetime

    occurred = pd.to_datetime(transactions["occurred_at"])
    scores = lifetime.dormancy_scores(
        transactions[occurred <= pd.Timestamp(cutoff)],
        as_of=cutoff,
        dormant_days=dormant_days,
        horizon_days=horizon_days,
    )
    window_end = pd.Timestamp(cutoff) + timedelta(days=horizon_days)
    in_horizon = (occurred > pd.Timestamp(cutoff)) & (occurred <= window_end)
    active = transactions.loc[in_horizon, "account_id"].unique()
    return scores.assign(reactivated=scores["account_id"].isin(active).astype(int))
