"""Rule-based customer segments over the customer KPIs, and RFM quintile scores.

Segments are mutually exclusive: each customer gets the first rule that matches, in the
order of :data:`SEGMENT_RULES`. The rules are data (name, description, predicate over
the KPI frame), so the UI and notebooks can show exactly why a customer is where it is.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from cx_pipelines.features.customer_kpis import DELINQUENT_DAYS
from cx_pipelines.features.observation import require_columns

NEW_CUSTOMER_DAYS = 90
LAPSING_DAYS = 90
DORMANT_DAYS = 180
HIGH_VALUE_QUANTILE = 0.9
TREND_THRESHOLD = 0.15


@dataclass(frozen=True)
class SegmentRule:
    """One segment: its name, a sentence saying who is in it, and the test over KPI rows."""

    name: str
    description: str
    matches: Callable[[pd.DataFrame, dict[str, float]], pd.Series]


def _recency(kpis: pd.DataFrame) -> pd.Series:
    return kpis["recency_days"].fillna(np.inf)


SEGMENT_RULES: tuple[SegmentRule, ...] = (
    SegmentRule(
        "delinquent",
        f"an open account is {DELINQUENT_DAYS}+ days past due",
        lambda k, _: k["max_days_past_due"] >= DELINQUENT_DAYS,
    ),
    SegmentRule(
        "new",
        f"joined less than {NEW_CUSTOMER_DAYS} days ago",
        lambda k, _: k["tenure_days"].fillna(np.inf) < NEW_CUSTOMER_DAYS,
    ),
    SegmentRule(
        "never_spent",
        "no transaction in the observation window",
        lambda k, _: k["transaction_count"] == 0,
    ),
    SegmentRule(
        "hit_and_run",
        f"one purchase day only, more than {LAPSING_DAYS} days ago",
        lambda k, _: (k["purchase_days"] == 1) & (_recency(k) > LAPSING_DAYS),
    ),
    SegmentRule(
        "dormant",
        f"no transaction in the last {DORMANT_DAYS} days",
        lambda k, _: _recency(k) > DORMANT_DAYS,
    ),
    SegmentRule(
        "lapsing",
        f"no transaction in the last {LAPSING_DAYS} days, or spend falling "
        f"(trend below -{TREND_THRESHOLD})",
        lambda k, _: (_recency(k) > LAPSING_DAYS) | (k["spend_trend"] < -TREND_THRESHOLD),
    ),
    SegmentRule(
        "high_value",
        f"total spend in the top {1 - HIGH_VALUE_QUANTILE:.0%} of spending customers",
        lambda k, t: k["total_spend"] >= t["high_value_spend"],
    ),
    SegmentRule(
        "growing",
        f"spend rising (trend above +{TREND_THRESHOLD})",
        lambda k, _: k["spend_trend"] > TREND_THRESHOLD,
    ),
    SegmentRule(
        "active",
        "every other customer with recent spending",
        lambda k, _: pd.Series(True, index=k.index),
    ),
)


def segment_thresholds(kpis: pd.DataFrame) -> dict[str, float]:
    """Population thresholds the rules use, computed from the data (spending customers only)."""
    spending = kpis.loc[kpis["transaction_count"] > 0, "total_spend"]
    high = float(spending.quantile(HIGH_VALUE_QUANTILE)) if len(spending) else np.inf
    return {"high_value_spend": high}


def rfm_scores(kpis: pd.DataFrame, *, bins: int = 5) -> pd.DataFrame:
    """Recency, frequency and monetary quintile scores (1 worst .. ``bins`` best; 0 = no spend).

    Ranks break ties by order of appearance so every bin is filled evenly.
    """
    spending = kpis["transaction_count"] > 0
    scores = {}
    for name, values in (
        ("recency_score", -kpis["recency_days"]),
        ("frequency_score", kpis["purchase_days"]),
        ("monetary_score", kpis["total_spend"]),
    ):
        ranks = values[spending].rank(method="first", pct=True)
        score = pd.Series(0, index=kpis.index, dtype=np.int64)
        score[spending] = np.ceil(ranks * bins).clip(1, bins).astype(np.int64)
        scores[name] = score
    frame = pd.DataFrame(scores)
    frame["rfm_cell"] = (
        frame["recency_score"].astype(str)
        + frame["frequency_score"].astype(str)
        + frame["monetary_score"].astype(str)
    )
    return frame


def customer_segments(
    kpis: pd.DataFrame, *, rules: tuple[SegmentRule, ...] = SEGMENT_RULES
) -> pd.DataFrame:
    """One row per customer: its segment (first matching rule), why, and its RFM scores."""
    require_columns(
        kpis,
        [
            "customer_id",
            "recency_days",
            "purchase_days",
            "transaction_count",
            "total_spend",
            "spend_trend",
            "tenure_days",
            "max_days_past_due",
        ],
        table="customer_kpis",
    )
    thresholds = segment_thresholds(kpis)
    segment = np.full(len(kpis), "", dtype=object)
    reason = np.full(len(kpis), "", dtype=object)
    unassigned = np.ones(len(kpis), dtype=bool)
    for rule in rules:
        hit = unassigned & rule.matches(kpis, thresholds).fillna(False).to_numpy(dtype=bool)
        segment[hit] = rule.name
        reason[hit] = rule.description
        unassigned &= ~hit
    segment[unassigned] = "unassigned"
    reason[unassigned] = "no rule matched"
    frame = pd.DataFrame(
        {
            "customer_id": kpis["customer_id"].to_numpy(),
            "segment": pd.array(segment, dtype="str"),
            "segment_reason": pd.array(reason, dtype="str"),
        }
    )
    return pd.concat([frame, rfm_scores(kpis).reset_index(drop=True)], axis=1)
