"""KPI clusters on planted groups: k from the data, deterministic, profiled, named uniquely."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cx_pipelines import source_schema
from cx_pipelines.ml.clusters import (
    ClusteringError,
    cluster_kpis,
    name_clusters,
    png_markdown,
    profile_heatmap_png,
)

GROUP_SIZE = 40


def planted_kpis(seed: int = 3) -> pd.DataFrame:
    """Three planted groups: big travel spenders, dormant grocery buyers, mid dining buyers."""
    rng = np.random.default_rng(seed)
    groups = [
        # recency, purchase days, spend, favourite category, balance
        (3.0, 80, 6000.0, "travel", 20_000.0),
        (400.0, 2, 60.0, "groceries", 100.0),
        (30.0, 20, 800.0, "dining", 2_000.0),
    ]
    frames = []
    for index, (recency, days, spend, favourite, balance) in enumerate(groups):
        noise = rng.normal(1.0, 0.05, size=(GROUP_SIZE, 4))
        total = spend * noise[:, 2]
        frame = pd.DataFrame(
            {
                "recency_days": recency * noise[:, 0],
                "purchase_days": np.round(days * noise[:, 1]).astype(int),
                "transaction_count": np.round(days * noise[:, 1]).astype(int) + 1,
                "total_spend": total,
                "average_transaction_amount": total / (days + 1),
                "category_count": 3,
                "spend_trend": 0.0,
                "tenure_days": 1500.0,
                "product_count": 2,
                "deposit_balance": balance * noise[:, 3],
                "credit_utilisation": 0.3,
                "max_days_past_due": 0,
                "interaction_count": 5,
            }
        )
        for category in source_schema.MERCHANT_CATEGORIES:
            frame[f"spend_category_{category}"] = 0.0
        frame[f"spend_category_{favourite}"] = total * 0.8
        frame["spend_category_home"] += total * 0.2
        frame.insert(0, "customer_id", np.arange(GROUP_SIZE) + 1000 * (index + 1))
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


@pytest.fixture(scope="module")
def planted_result():
    return cluster_kpis(planted_kpis())


def test_planted_groups_are_found_with_k_by_silhouette_and_named(planted_result):
    kpis, result = planted_kpis(), planted_result
    assert result.k == 3
    assert max(result.silhouette_by_k, key=result.silhouette_by_k.get) == 3
    assert set(result.silhouette_by_k) <= set(range(3, 9))
    labels = result.assignments["cluster_id"].to_numpy()
    for group in range(3):  # each planted group is one cluster
        assert len(set(labels[group * GROUP_SIZE : (group + 1) * GROUP_SIZE])) == 1
    # clusters are numbered by descending mean spend: the travel spenders are cluster 0
    assert labels[0] == 0 and labels[GROUP_SIZE] == 2
    names = result.profile.set_index("cluster_id")["cluster_name"]
    assert names.is_unique
    assert names[0].endswith("travel lovers")
    assert names[2].endswith("groceries lovers") and names[1].endswith("dining lovers")
    assert result.profile["customers"].sum() == len(kpis)


def test_clusters_are_deterministic_and_k_stays_in_range():
    kpis = planted_kpis(seed=11)
    first, second = cluster_kpis(kpis, k_range=(4, 5)), cluster_kpis(kpis, k_range=(4, 5))
    pd.testing.assert_frame_equal(first.assignments, second.assignments)
    assert 4 <= first.k <= 5
    assert first.assignments["cluster_name"].nunique() == first.k


def test_too_few_distinct_customers_form_one_cluster():
    kpis = planted_kpis().iloc[[0, 0, 0]].assign(customer_id=[1, 2, 3])
    result = cluster_kpis(kpis)
    assert result.k == 1
    assert result.assignments["cluster_id"].tolist() == [0, 0, 0]


def test_bad_inputs_are_named():
    with pytest.raises(ClusteringError, match="lacks column"):
        cluster_kpis(planted_kpis().drop(columns="total_spend"))
    with pytest.raises(ClusteringError, match="k_range"):
        cluster_kpis(planted_kpis(), k_range=(5, 3))


def test_names_are_unique_even_when_profiles_match():
    same = pd.DataFrame({"total_spend": [1.0, 1.0, 1.0], "purchase_days": [0.5, 0.5, 0.5]})
    names = name_clusters(same)
    assert len(set(names)) == 3
    assert names[0] == "high-spend frequent customers"


def test_heatmap_is_a_png_embedded_as_markdown(planted_result):
    png = profile_heatmap_png(planted_result.standardised_profile)
    assert png.startswith(b"\x89PNG")
    assert png_markdown(png, alt="profiles").startswith("![profiles](data:image/png;base64,iVBOR")
