"""Frames of the covariate hit-and-run and dormancy models: BTYD signal plus who the customer is.

Everything is computed *as of a cutoff* from the source-level tables, so a model can be
trained at one cutoff and judged at a later one without looking into the future:

* the BTYD signal: an MBG/NBD (and a BG/NBD, pooled and one per customer type) fitted on
  every customer's (or account's) history up to the cutoff gives P(alive), P(a purchase
  within the horizon) and the expected purchases in it; for a dormant account, the
  owner's signal thinned to the account by its share of the owner's purchases;
* customer attributes and holdings (accounts opened by the cutoff, whatever their status
  at the end, since closures are only known at the end), tenure, spend so far;
* the first purchase: amount, merchant category and channel; the channel mix so far;
* interactions before the cutoff (per type, in total, in the last 90 days, and since the
  last purchase relative to the rate before it) and past campaign contacts with their
  responses.

A hit-and-run frame has one row per one-time buyer at the cutoff, a dormancy frame one
row per account without spending for ``dormant_days``; ``label_end`` adds the outcome
(bought again / spent again by then).
"""

from __future__ import annotations

import warnings
from datetime import datetime

import numpy as np
import pandas as pd

from cx_pipelines.ml.btyd import BetaGeoModel, ModifiedBetaGeoModel
from cx_pipelines.ml.errors import TrainingDataError
from cx_pipelines.ml.rfm import rfm_summary
from cx_pipelines.ml.training_data import customer_features
from cx_pipelines.source_schema import INTERACTION_TYPES

DAY = pd.Timedelta(days=1)
# Fewest customers of a segment worth its own BG/NBD (else it shares the pooled fit).
MIN_SEGMENT_CUSTOMERS = 300
DAYS_PER_WEEK = 7.0
TRANSACTION_CHANNELS = ("pos", "ecommerce", "mobile", "atm", "branch")


def _past(frame: pd.DataFrame, column: str, cutoff: pd.Timestamp) -> pd.DataFrame:
    when = pd.to_datetime(frame[column])
    return frame.loc[when <= cutoff].assign(**{column: when[when <= cutoff]})


def _btyd_columns(
    rfm: pd.DataFrame,
    *,
    horizon_weeks: float,
    prefix: str,
    share: pd.Series | None = None,
    model: BetaGeoModel | None = None,
) -> pd.DataFrame:
    """P(alive), P(purchase within the horizon) and expected purchases of a fitted BG/NBD or
    MBG/NBD (default: an MBG/NBD fitted on ``rfm``), by id.

    With ``share`` (an account's share of its owner's purchases, indexed like ``rfm``'s
    ids) also the probability that the owner, if alive, buys on that account within the
    horizon: P(alive) * (1 - ((alpha + T) / (alpha + T + share * t))^(r + x)), the
    owner's Poisson rate thinned to the account.
    """
    model = model or ModifiedBetaGeoModel().fit(rfm)
    frame = pd.DataFrame(
        {
            f"{prefix}probability_alive": model.expected_probability_alive(rfm).to_numpy(),
            f"{prefix}probability_in_horizon": model.expected_probability_of_transaction(
                rfm, future_t=horizon_weeks
            ).to_numpy(),
            f"{prefix}expected_purchases": model.expected_transactions(
                rfm, future_t=horizon_weeks
            ).to_numpy(),
        },
        index=rfm["customer_id"].to_numpy(),
    )
    if share is not None:
        r, alpha = model.params_["r"], model.params_["alpha"]
        x, T = rfm["frequency"].to_numpy(), rfm["T"].to_numpy()
        thinned = share.reindex(frame.index).to_numpy() * horizon_weeks
        frame[f"{prefix}account_probability"] = frame[f"{prefix}probability_alive"].to_numpy() * (
            1.0 - np.exp((r + x) * (np.log(alpha + T) - np.log(alpha + T + thinned)))
        )
    return frame


def segmented_btyd(
    rfm: pd.DataFrame,
    segments: pd.Series,
    *,
    horizon_weeks: float,
    prefix: str,
    score: pd.DataFrame | None = None,
    score_segments: pd.Series | None = None,
    share: pd.Series | None = None,
    min_customers: int = MIN_SEGMENT_CUSTOMERS,
) -> pd.DataFrame:
    """A BTYD model with a covariate: one BG/NBD per segment (e.g. customer type), so each
    segment has its own purchase-rate and dropout mixture; segments with fewer than
    ``min_customers`` (or few repeat buyers) share a BG/NBD fitted on all of ``rfm``.

    Fitted on ``rfm`` (``segments`` indexed by its ids); scores ``score`` (default
    ``rfm``; ``score_segments`` indexed by its ids), with ``share`` as in
    :func:`_btyd_columns`.
    """
    if score is None:
        score, score_segments = rfm, segments

    def labels_of(frame: pd.DataFrame, by: pd.Series) -> np.ndarray:
        values = by.reindex(frame["customer_id"].to_numpy()).fillna("(none)").astype(str)
        return values.to_numpy()

    fit_labels, score_labels = labels_of(rfm, segments), labels_of(score, score_segments)
    pooled = BetaGeoModel().fit(rfm)
    parts = []
    for label in pd.unique(score_labels):
        rows = rfm[fit_labels == label]
        model = pooled
        if len(rows) >= min_customers and (rows["frequency"] > 0).sum() >= min_customers // 10:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                model = BetaGeoModel().fit(rows)
        scored = score[score_labels == label]
        parts.append(
            _btyd_columns(
                scored, horizon_weeks=horizon_weeks, prefix=prefix, share=share, model=model
            )
        )
    return pd.concat(parts).reindex(score["customer_id"].to_numpy())


def _weekly_rfm(transactions: pd.DataFrame, *, id_column: str, cutoff: pd.Timestamp):
    rfm = rfm_summary(
        transactions,
        customer_id_col=id_column,
        datetime_col="occurred_at",
        monetary_value_col=None,
        observation_period_end=cutoff,
        time_unit="W",
    )
    return rfm


def _purchase_covariates(past: pd.DataFrame) -> pd.DataFrame:
    """First purchase (amount, category, channel) and the channel mix, per customer."""
    ordered = past.sort_values(["customer_id", "occurred_at"], kind="stable")
    first = ordered.drop_duplicates("customer_id").set_index("customer_id")
    frame = pd.DataFrame(
        {
            "first_purchase_amount": first["amount"].astype(float),
            "first_purchase_category": first["merchant_category"].astype(str),
            "first_purchase_channel": first["channel"].astype(str),
        }
    )
    mix = pd.crosstab(past["customer_id"], past["channel"], normalize="index")
    for channel in TRANSACTION_CHANNELS:
        frame[f"channel_share_{channel}"] = (
            mix[channel].reindex(frame.index) if channel in mix else 0.0
        )
    frame["spending_accounts"] = past.groupby("customer_id")["account_id"].nunique()
    return frame


def _interaction_covariates(
    interactions: pd.DataFrame | None, cutoff: pd.Timestamp, index: pd.Index
) -> pd.DataFrame:
    """Interactions per type before the cutoff, all of them and those in the last 90 days."""
    frame = pd.DataFrame(index=index)
    if interactions is None or interactions.empty:
        for column in ("interactions_total", "interactions_90d"):
            frame[column] = 0.0
        return frame
    past = _past(interactions, "occurred_at", cutoff)
    counts = pd.crosstab(past["customer_id"], past["interaction_type"])
    for kind in INTERACTION_TYPES:
        values = counts[kind] if kind in counts else pd.Series(dtype=float)
        frame[f"interactions_{kind}"] = values.reindex(index).fillna(0.0).astype(float)
    frame["interactions_total"] = past.groupby("customer_id").size().reindex(index).fillna(0.0)
    recent = past[(cutoff - past["occurred_at"]) / DAY <= 90]
    frame["interactions_90d"] = recent.groupby("customer_id").size().reindex(index).fillna(0.0)
    last = past.groupby("customer_id")["occurred_at"].max()
    frame["days_since_last_interaction"] = ((cutoff - last) / DAY).reindex(index)
    return frame


def _contact_covariates(
    offer_history: pd.DataFrame | None, cutoff: pd.Timestamp, index: pd.Index
) -> pd.DataFrame:
    frame = pd.DataFrame(index=index)
    if offer_history is None or offer_history.empty:
        frame["campaign_contacts"] = 0.0
        frame["campaign_responses"] = 0.0
        return frame
    past = _past(offer_history, "contacted_at", cutoff)
    grouped = past.groupby("customer_id")
    frame["campaign_contacts"] = grouped.size().reindex(index).fillna(0.0)
    frame["campaign_responses"] = (
        grouped["responded"].sum().astype(float).reindex(index).fillna(0.0)
    )
    return frame


def customer_covariates(
    customers: pd.DataFrame,
    accounts: pd.DataFrame,
    transactions: pd.DataFrame,
    *,
    cutoff: datetime,
    interactions: pd.DataFrame | None = None,
    offer_history: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Attributes, holdings, purchases, interactions and contacts at ``cutoff``, by customer_id."""
    moment = pd.Timestamp(cutoff)
    for column in ("account_id", "merchant_category", "channel"):
        if column not in transactions.columns:
            raise TrainingDataError(f"table 'transactions' lacks column {column!r}")
    features = customer_features(
        customers, accounts, transactions, as_of=moment, open_accounts_only=False
    ).set_index("customer_id")
    past = _past(transactions, "occurred_at", moment)
    features = features.join(_purchase_covariates(past))
    features = features.join(_interaction_covariates(interactions, moment, features.index))
    features = features.join(_quiet_interactions(interactions, past, moment, features))
    return features.join(_contact_covariates(offer_history, moment, features.index))


def _quiet_interactions(
    interactions: pd.DataFrame | None,
    past: pd.DataFrame,
    cutoff: pd.Timestamp,
    features: pd.DataFrame,
) -> pd.DataFrame:
    """Interactions since the last purchase, and their rate relative to the customer's rate
    before it: a customer who stopped buying *and* stopped interacting has likely left."""
    frame = pd.DataFrame(index=features.index)
    if interactions is None or interactions.empty or past.empty:
        frame["interactions_since_last_purchase"] = 0.0
        return frame
    seen = _past(interactions, "occurred_at", cutoff)
    last_purchase = past.groupby("customer_id")["occurred_at"].max()
    when = last_purchase.reindex(seen["customer_id"]).to_numpy()
    after = seen["occurred_at"].to_numpy() > when
    counts = pd.DataFrame({"customer_id": seen["customer_id"].to_numpy(), "after": after})
    grouped = counts.groupby("customer_id")["after"]
    since = grouped.sum().reindex(frame.index).fillna(0.0).astype(float)
    before = (grouped.size() - grouped.sum()).reindex(frame.index).fillna(0.0).astype(float)
    quiet_days = features["days_since_last_purchase"].clip(lower=1.0)
    active_days = (features["tenure_days"] - features["days_since_last_purchase"]).clip(lower=30.0)
    frame["interactions_since_last_purchase"] = since
    frame["interactions_rate_ratio"] = (since / quiet_days) / ((before + 1.0) / active_days)
    return frame


def _label(
    transactions: pd.DataFrame, id_column: str, start: pd.Timestamp, end: pd.Timestamp
) -> set:
    when = pd.to_datetime(transactions["occurred_at"])
    return set(transactions.loc[(when > start) & (when <= end), id_column].unique())


def hit_and_run_frame(
    tables: dict[str, pd.DataFrame],
    *,
    cutoff: datetime,
    horizon_days: int,
    label_end: datetime | None = None,
) -> pd.DataFrame:
    """One row per one-time buyer at ``cutoff``: BTYD signal and covariates; with
    ``label_end``, ``returned`` = bought again in (cutoff, label_end]."""
    moment = pd.Timestamp(cutoff)
    transactions = tables["transactions"]
    past = _past(transactions, "occurred_at", moment)
    if past.empty:
        raise TrainingDataError(f"no transactions up to {moment}: nobody to score")
    rfm = _weekly_rfm(past, id_column="customer_id", cutoff=moment)
    horizon = horizon_days / DAYS_PER_WEEK
    types = tables["customers"].set_index("customer_id")["customer_type"]
    mbg = _btyd_columns(rfm, horizon_weeks=horizon, prefix="btyd_")  # the pure ranking
    bg = _btyd_columns(rfm, horizon_weeks=horizon, prefix="btyd_bg_", model=BetaGeoModel().fit(rfm))
    by_type = segmented_btyd(rfm, types, horizon_weeks=horizon, prefix="btyd_bg_type_")
    one_time = rfm[rfm["frequency"] == 0].set_index("customer_id")[["T"]]
    frame = one_time.join(
        [
            mbg[["btyd_probability_alive", "btyd_probability_in_horizon"]],
            bg[["btyd_bg_probability_in_horizon"]],
            by_type[["btyd_bg_type_probability_in_horizon"]],
        ]
    )
    covariates = customer_covariates(
        tables["customers"],
        tables["accounts"],
        past,
        cutoff=moment,
        interactions=tables.get("interactions"),
        offer_history=tables.get("offer_history"),
    )
    frame = frame.join(covariates, how="inner")
    frame.index.name = "customer_id"
    frame = frame.reset_index()
    frame["cutoff"] = moment
    if label_end is not None:
        returned = _label(transactions, "customer_id", moment, pd.Timestamp(label_end))
        frame["returned"] = frame["customer_id"].isin(returned).astype(int)
    return frame


def dormancy_frame(
    tables: dict[str, pd.DataFrame],
    *,
    cutoff: datetime,
    dormant_days: int,
    horizon_days: int,
    label_end: datetime | None = None,
) -> pd.DataFrame:
    """One row per account without spending for ``dormant_days`` at ``cutoff``: the
    account's and its owner's BTYD signal, the account's product, the owner's covariates;
    with ``label_end``, ``reactivated`` = the account spent in (cutoff, label_end]."""
    moment = pd.Timestamp(cutoff)
    transactions = tables["transactions"]
    past = _past(transactions, "occurred_at", moment)
    if past.empty:
        raise TrainingDataError(f"no transactions up to {moment}: no account to score")
    horizon = horizon_days / DAYS_PER_WEEK
    accounts_rfm = _weekly_rfm(past, id_column="account_id", cutoff=moment)
    accounts_rfm = accounts_rfm.rename(columns={"customer_id": "account_id"})
    days_since = np.rint((accounts_rfm["T"] - accounts_rfm["recency"]) * DAYS_PER_WEEK)
    accounts_rfm["days_since_last_spend"] = days_since.astype("int64")
    dormant = accounts_rfm[accounts_rfm["days_since_last_spend"] >= dormant_days]
    account_btyd = _btyd_columns(
        accounts_rfm.rename(columns={"account_id": "customer_id"}),
        horizon_weeks=horizon,
        prefix="btyd_",
    )
    frame = dormant.set_index("account_id")[["frequency", "recency", "T", "days_since_last_spend"]]
    frame["btyd_probability_in_horizon"] = account_btyd["btyd_probability_in_horizon"]
    owners = past.drop_duplicates("account_id").set_index("account_id")["customer_id"]
    frame["customer_id"] = owners.reindex(frame.index).to_numpy()

    spend_share = past.groupby("account_id").size() / owners.map(past.groupby("customer_id").size())
    frame["account_spend_share"] = spend_share.reindex(frame.index)
    owner_rfm = _weekly_rfm(past, id_column="customer_id", cutoff=moment)
    owner = owner_rfm.set_index("customer_id")[["frequency", "recency", "T"]]
    owner["days_since_last_spend"] = np.rint((owner["T"] - owner["recency"]) * DAYS_PER_WEEK)
    owner_model = ModifiedBetaGeoModel().fit(owner_rfm)
    owner = owner.add_prefix("owner_").join(
        _btyd_columns(owner_rfm, horizon_weeks=horizon, prefix="owner_btyd_", model=owner_model)
    )
    # The owner's rate thinned to this account (an owner may have several dormant accounts,
    # so it is computed per account row, not per owner): MBG/NBD, and BG/NBD per type.
    account_owner_rfm = owner_rfm.set_index("customer_id").reindex(frame["customer_id"])
    account_owner_rfm = account_owner_rfm.reset_index(drop=True).assign(
        customer_id=frame.index.to_numpy()
    )
    thinned = _btyd_columns(
        account_owner_rfm,
        horizon_weeks=horizon,
        prefix="owner_btyd_",
        share=frame["account_spend_share"],
        model=owner_model,
    )
    frame["owner_btyd_account_probability"] = thinned["owner_btyd_account_probability"]
    types = tables["customers"].set_index("customer_id")["customer_type"]
    by_type = segmented_btyd(
        owner_rfm,
        types,
        horizon_weeks=horizon,
        prefix="owner_btyd_bg_type_",
        score=account_owner_rfm,
        score_segments=types.reindex(frame["customer_id"].to_numpy()).set_axis(frame.index),
        share=frame["account_spend_share"],
    )
    for column in ("probability_alive", "account_probability"):
        frame[f"owner_btyd_bg_type_{column}"] = by_type[f"owner_btyd_bg_type_{column}"]
    product = tables["accounts"].set_index("account_id")["product_type"]
    frame["product_type"] = product.reindex(frame.index).astype(str).to_numpy()
    covariates = customer_covariates(
        tables["customers"],
        tables["accounts"],
        past,
        cutoff=moment,
        interactions=tables.get("interactions"),
        offer_history=tables.get("offer_history"),
    )
    frame = frame.join(owner, on="customer_id").join(covariates, on="customer_id", how="inner")
    frame.index.name = "account_id"
    frame = frame.reset_index()
    frame["cutoff"] = moment
    if label_end is not None:
        active = _label(transactions, "account_id", moment, pd.Timestamp(label_end))
        frame["reactivated"] = frame["account_id"].isin(active).astype(int)
    return frame
