"""What targeting reads about the population: rule attributes, scores and contact history.

* :func:`population_attributes` — one row per customer who joined by the decision date:
  the attributes of :data:`cx_pipelines.campaigns.rules.ATTRIBUTES`, from the training
  features (``cx_pipelines.ml.training_data.customer_features``) as of the decision date,
  the behavioural ``segment`` when ``customer_segments`` is given, and a few model scores.
* :func:`contact_history` — past treated and control contacts: ``offer_history`` plus the
  campaigns' ``interaction_results`` when that table exists.
* :func:`contact_policy` — the strategy's engagement policies applied to that history:
  a customer is blocked on a channel when its treated contacts on that channel (or on
  every channel, for a ``"*"`` cap) within the cap's period reach the cap's ``max``, and
  for an offer when its declines (treated contacts it did not respond to) of that offer
  within ``within_days`` reach ``declines``. Only contacts before the decision date count.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from cx_pipelines.campaigns.catalog import Campaign
from cx_pipelines.campaigns.rules import ATTRIBUTES
from cx_pipelines.ml import training_data

SCORE_ATTRIBUTES = ("attrition_risk", "probability_alive", "clv")


def population_attributes(
    customers: pd.DataFrame,
    accounts: pd.DataFrame,
    transactions: pd.DataFrame,
    *,
    as_of: pd.Timestamp,
    customer_scores: pd.DataFrame,
    segments: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Rule attributes of every customer who joined by ``as_of`` (sorted by customer_id)."""
    frame = training_data.customer_features(customers, accounts, transactions, as_of=as_of)
    scores = customer_scores.set_index("customer_id")
    for column in SCORE_ATTRIBUTES:
        source = scores[column] if column in scores else pd.Series(dtype=float)
        frame[column] = frame["customer_id"].map(source).astype(float)
    if segments is not None and "segment" in segments:
        frame["segment"] = frame["customer_id"].map(segments.set_index("customer_id")["segment"])
    else:
        frame["segment"] = None
    frame = frame.sort_values("customer_id", kind="stable").reset_index(drop=True)
    return frame[["customer_id", *ATTRIBUTES]]


def contact_history(
    offer_history: pd.DataFrame, interaction_results: pd.DataFrame | None
) -> pd.DataFrame:
    """Every past contact (treated and control): offer history plus interaction results."""
    return training_data.contacts(offer_history, interaction_results)


@dataclass(frozen=True)
class PolicyOutcome:
    """Which customers each campaign's engagement policies allow, and why not."""

    allowed: np.ndarray  # customers x campaigns, bool
    reasons: dict[str, dict[str, int]]  # campaign_id -> reason -> customers blocked


def contact_policy(
    customer_ids: np.ndarray,
    campaigns: list[Campaign],
    history: pd.DataFrame,
    *,
    decision_date: pd.Timestamp,
    caps: list[tuple[str, int, float]],
    decline_limit: tuple[int, float] | None,
) -> PolicyOutcome:
    """Apply contact caps ``(channel or "*", max, period_days)`` and decline suppression."""
    before = history[(history["contacted_at"] < decision_date) & history["treated"]]
    index = pd.Index(customer_ids)
    allowed = np.ones((len(customer_ids), len(campaigns)), dtype=bool)
    reasons: dict[str, dict[str, int]] = {c.campaign_id: {} for c in campaigns}

    for channel, maximum, period_days in caps:
        window = before[before["contacted_at"] >= decision_date - pd.Timedelta(days=period_days)]
        if channel != "*":
            window = window[window["channel"] == channel]
        counts = window.groupby("customer_id").size()
        full = np.zeros(len(customer_ids), dtype=bool)
        positions = index.get_indexer(counts.index[counts >= maximum])
        full[positions[positions >= 0]] = True
        for column, campaign in enumerate(campaigns):
            if channel in ("*", campaign.channel):
                reason = f"contact cap {channel}: {maximum} per {period_days:g} days"
                _block(allowed, reasons, column, campaign, full, reason)

    if decline_limit is not None:
        declines, within_days = decline_limit
        window = before[
            (before["contacted_at"] >= decision_date - pd.Timedelta(days=within_days))
            & ~before["responded"]
        ]
        counts = window.groupby(["customer_id", "offer_type"]).size()
        offers = set(counts.index.get_level_values("offer_type")) if len(counts) else set()
        for column, campaign in enumerate(campaigns):
            if campaign.offer not in offers:
                continue
            offer_counts = counts.xs(campaign.offer, level="offer_type", drop_level=True)
            suppressed = np.zeros(len(customer_ids), dtype=bool)
            positions = index.get_indexer(offer_counts.index[offer_counts >= declines])
            suppressed[positions[positions >= 0]] = True
            reason = f"suppressed: {declines} declines of {campaign.offer} in {within_days:g} days"
            _block(allowed, reasons, column, campaign, suppressed, reason)
    return PolicyOutcome(allowed=allowed, reasons=reasons)


def _block(allowed, reasons, column: int, campaign: Campaign, blocked, reason: str) -> None:
    newly = blocked & allowed[:, column]
    if newly.any():
        reasons[campaign.campaign_id][reason] = int(newly.sum())
    allowed[:, column] &= ~blocked
