"""Spending opportunities: what the customer's KPI cluster buys and it does not."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cx_pipelines import source_schema
from cx_pipelines.ml.opportunities import OpportunityError, spending_opportunities

CATEGORIES = source_schema.MERCHANT_CATEGORIES


def spend_frame(rows: dict[int, dict[str, float]]) -> pd.DataFrame:
    frame = pd.DataFrame({"customer_id": list(rows)})
    for category in CATEGORIES:
        frame[f"spend_category_{category}"] = [rows[c].get(category, 0.0) for c in rows]
    return frame


def clusters_of(assignment: dict[int, int]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": list(assignment),
            "cluster_id": list(assignment.values()),
            "cluster_name": [f"cluster {c}" for c in assignment.values()],
        }
    )


def test_planted_category_is_recommended_with_its_peer_adoption():
    # cluster 0: customers 1-4 buy travel, customer 5 does not; cluster 1 buys only fuel
    rows = {c: {"groceries": 50.0, "travel": 100.0 * c} for c in range(1, 5)}
    rows[5] = {"groceries": 40.0}
    rows.update({c: {"fuel": 30.0} for c in range(6, 9)})
    kpis = spend_frame(rows)
    clusters = clusters_of({**{c: 0 for c in range(1, 6)}, **{c: 1 for c in range(6, 9)}})
    result = spending_opportunities(kpis, clusters, top=3, min_score=0.2)
    five = result[result["customer_id"] == 5]
    assert five["merchant_category"].tolist() == ["travel"]
    assert five["score"].iloc[0] == pytest.approx(4 / 5)
    assert five["expected_spend"].iloc[0] == pytest.approx(250.0)  # mean of 100..400
    assert five["rank"].tolist() == [1]
    assert result[result["customer_id"].isin([6, 7, 8])].empty  # their cluster buys only fuel


def test_never_recommends_a_category_already_bought_and_keeps_top():
    rng = np.random.default_rng(5)
    customers = range(1, 201)
    kpis = spend_frame(
        {
            c: {cat: float(rng.gamma(1, 50)) for cat in CATEGORIES if rng.random() < 0.4}
            for c in customers
        }
    )
    clusters = clusters_of({c: int(rng.integers(0, 4)) for c in customers})
    result = spending_opportunities(kpis, clusters, top=2, min_score=0.0)
    spend = kpis.set_index("customer_id")
    already = [
        spend.loc[row.customer_id, f"spend_category_{row.merchant_category}"]
        for row in result.itertuples()
    ]
    assert len(result) > 0 and max(already) == 0.0
    assert result.groupby("customer_id").size().max() == 2
    ranked = result.sort_values(["customer_id", "rank"])
    assert (ranked.groupby("customer_id")["score"].diff().dropna() <= 0).all()


def test_customer_without_cluster_is_an_error():
    kpis = spend_frame({1: {"travel": 1.0}, 2: {}})
    with pytest.raises(OpportunityError, match="no cluster"):
        spending_opportunities(kpis, clusters_of({1: 0}))
