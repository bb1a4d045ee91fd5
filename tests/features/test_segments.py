"""Rule-based segments: first matching rule wins; RFM quintile scores."""

from __future__ import annotations

import numpy as np
import pandas as pd

from cx_pipelines.features.customer_kpis import customer_kpis
from cx_pipelines.features.segments import SEGMENT_RULES, customer_segments, rfm_scores


def kpi_rows(**overrides: list) -> pd.DataFrame:
    """KPI frame of len(first override) customers, active by default."""
    size = len(next(iter(overrides.values())))
    base = {
        "customer_id": list(range(1, size + 1)),
        "recency_days": [5.0] * size,
        "purchase_days": [10] * size,
        "transaction_count": [12] * size,
        "total_spend": [100.0] * size,
        "spend_trend": [0.0] * size,
        "tenure_days": [1000.0] * size,
        "max_days_past_due": [0] * size,
    }
    base.update(overrides)
    return pd.DataFrame(base)


def test_each_rule_in_order():
    kpis = kpi_rows(
        recency_days=[5.0, 5.0, np.nan, 200.0, 300.0, 120.0, 5.0, 5.0, 5.0, 5.0, 5.0],
        purchase_days=[10, 10, 0, 1, 4, 4, 10, 10, 10, 10, 10],
        transaction_count=[12, 12, 0, 1, 4, 4, 12, 12, 12, 12, 12],
        total_spend=[100.0, 100, 0, 50, 80, 80, 100, 100, 100, 5000, 100],
        spend_trend=[0.0, 0, 0, 0, 0, 0, -0.5, 0.5, 0.0, 0.0, 0.0],
        tenure_days=[1000.0, 30, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000],
        max_days_past_due=[60, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    )
    segments = customer_segments(kpis)
    assert segments["segment"].tolist() == [
        "delinquent",
        "new",
        "never_spent",
        "hit_and_run",
        "dormant",
        "lapsing",
        "lapsing",
        "growing",
        "active",
        "high_value",
        "active",
    ]
    assert segments["segment_reason"].str.len().gt(0).all()


def test_delinquency_beats_every_later_rule():
    kpis = kpi_rows(max_days_past_due=[30, 29], tenure_days=[10.0, 10.0])
    assert customer_segments(kpis)["segment"].tolist() == ["delinquent", "new"]


def test_every_rule_has_a_unique_name_and_the_last_catches_all():
    names = [rule.name for rule in SEGMENT_RULES]
    assert len(names) == len(set(names))
    assert SEGMENT_RULES[-1].matches(kpi_rows(recency_days=[1.0, 2.0]), {}).all()


def test_rfm_scores_rank_the_best_customer_highest_and_non_spenders_zero():
    kpis = kpi_rows(
        recency_days=[1.0, 50, 100, 150, 200, np.nan],
        purchase_days=[50, 40, 30, 20, 10, 0],
        transaction_count=[60, 45, 35, 25, 12, 0],
        total_spend=[5000.0, 4000, 3000, 2000, 1000, 0],
    )
    scores = rfm_scores(kpis)
    assert scores["rfm_cell"].tolist() == ["555", "444", "333", "222", "111", "000"]


def test_segments_of_the_small_bank(small_bank):
    kpis = customer_kpis(**small_bank, as_of="2026-09-30")
    segments = customer_segments(kpis).set_index("customer_id")["segment"]
    assert segments.to_dict() == {1: "growing", 2: "delinquent", 3: "new", 4: "new", 5: "lapsing"}
