"""Category associations and trends on planted patterns, with answers worked out by hand."""

from __future__ import annotations

import pandas as pd
import pytest

from cx_pipelines.features.observation import FeatureInputError
from cx_pipelines.features.purchase_patterns import category_associations, category_trends


@pytest.fixture
def planted(build) -> pd.DataFrame:
    """100 customers: 0-39 buy travel and dining, 40-79 groceries, 80-99 groceries and travel."""
    rows = []
    for customer in range(100):
        if customer < 40:
            bought = ["travel", "dining"]
        elif customer < 80:
            bought = ["groceries"]
        else:
            bought = ["groceries", "travel"]
        rows += [(customer, "2026-03-05 10:00", 10.0, category, "pos") for category in bought]
    return build.transactions(rows)


def test_support_confidence_and_lift_of_a_planted_pair(planted):
    rules = category_associations(planted, basket="customer").set_index(
        ["antecedent", "consequent"]
    )
    travel_dining = rules.loc[("travel", "dining")]
    assert travel_dining["support"] == pytest.approx(0.40)
    assert travel_dining["confidence"] == pytest.approx(40 / 60)
    assert travel_dining["lift"] == pytest.approx(0.40 / (0.60 * 0.40))
    assert rules.loc[("dining", "travel"), "confidence"] == pytest.approx(1.0)
    assert ("dining", "groceries") not in rules.index  # never bought together
    assert rules.loc[("groceries", "travel"), "lift"] < 1  # less often together than chance
    assert (rules["baskets"] == 100).all()


def test_rules_are_sorted_by_lift_and_min_support_filters(planted):
    rules = category_associations(planted, basket="customer")
    assert rules["lift"].is_monotonic_decreasing
    assert rules.iloc[0][["antecedent", "consequent"]].tolist() in (
        ["dining", "travel"],
        ["travel", "dining"],
    )
    assert (
        category_associations(planted, basket="customer", min_support=0.3)["support"].min() >= 0.3
    )


def test_customer_month_baskets_separate_months(build):
    transactions = build.transactions(
        [
            (1, "2026-01-10", 5.0, "travel", "pos"),
            (1, "2026-02-10", 5.0, "dining", "pos"),
            (2, "2026-01-10", 5.0, "travel", "pos"),
            (2, "2026-01-20", 5.0, "dining", "pos"),
        ]
    )
    by_month = category_associations(transactions)
    assert by_month["baskets"].iloc[0] == 3
    assert by_month["baskets_with_both"].tolist() == [1, 1]
    by_customer = category_associations(transactions, basket="customer")
    assert by_customer["baskets_with_both"].tolist() == [2, 2]
    with pytest.raises(FeatureInputError, match="basket must be"):
        category_associations(transactions, basket="week")


def test_trends_label_growing_stable_and_shrinking(build):
    rows = []
    for customer in range(1, 5):  # travel doubles, fuel halves, groceries stays
        rows += [
            (customer, "2026-03-01", 100.0, "travel", "pos"),
            (customer, "2026-10-01", 200.0, "travel", "pos"),
            (customer, "2026-03-01", 100.0, "fuel", "pos"),
            (customer, "2026-10-01", 50.0, "fuel", "pos"),
            (customer, "2026-03-01", 100.0, "groceries", "pos"),
            (customer, "2026-10-01", 100.0, "groceries", "pos"),
        ]
    rows.append((9, "2026-11-01", 20.0, "dining", "pos"))  # a category that appears late
    trends = category_trends(
        build.transactions(rows), start="2026-01-01", as_of="2026-12-31"
    ).set_index("merchant_category")
    assert trends.loc["travel", "trend"] == "growing"
    assert trends.loc["travel", "spend_growth"] == pytest.approx(1.0)
    assert trends.loc["fuel", "trend"] == "shrinking"
    assert trends.loc["fuel", "spend_growth"] == pytest.approx(-0.5)
    assert trends.loc["groceries", "trend"] == "stable"
    assert trends.loc["travel", "customers_first_half"] == 4
    assert trends.loc["dining", "trend"] == "growing"  # from nothing
    assert trends.loc["travel", "slope_per_period"] > 0 > trends.loc["fuel", "slope_per_period"]
    assert trends.loc["health", "trend"] == "stable"  # never bought
    assert trends["share_second_half"].sum() == pytest.approx(1.0)


def test_trend_window_must_not_be_empty(build):
    transactions = build.transactions([(1, "2026-03-01", 1.0, "travel", "pos")])
    with pytest.raises(FeatureInputError, match="window is empty"):
        category_trends(transactions, start="2026-05-01", as_of="2026-04-01")
