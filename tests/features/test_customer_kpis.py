"""Customer and account KPIs on a hand-made bank with answers worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from cx_pipelines.features.account_kpis import account_kpis, delinquency_bucket
from cx_pipelines.features.customer_kpis import customer_kpis
from cx_pipelines.features.observation import FeatureInputError, observation_end

END = pd.Timestamp("2026-10-01")


@pytest.fixture
def kpis(small_bank) -> pd.DataFrame:
    return customer_kpis(**small_bank, as_of="2026-09-30").set_index("customer_id")


def test_one_row_per_customer_including_non_spenders_and_unknown_transactors(kpis):
    assert sorted(kpis.index) == [1, 2, 3, 4, 5]
    assert kpis.index.is_unique


def test_recency_frequency_monetary(kpis):
    one = kpis.loc[1]
    assert one["transaction_count"] == 3
    assert one["purchase_days"] == 2  # two purchases on 2026-09-20 are one day
    assert one["recency_days"] == pytest.approx(10.375)  # 2026-09-20 15:00 to 10-01 00:00
    assert one["total_spend"] == pytest.approx(180.0)
    assert one["average_transaction_amount"] == pytest.approx(60.0)
    assert one["first_transaction_at"] == pd.Timestamp("2026-06-01 12:00")
    assert kpis.loc[2, "recency_days"] == pytest.approx(
        (END - pd.Timestamp("2025-01-10 09:00")) / pd.Timedelta(days=1)
    )


def test_spend_by_category_and_channel(kpis):
    one = kpis.loc[1]
    assert one["spend_category_groceries"] == pytest.approx(130.0)
    assert one["spend_category_dining"] == pytest.approx(50.0)
    assert one["spend_category_travel"] == 0.0
    assert one["spend_channel_pos"] == pytest.approx(130.0)
    assert one["spend_channel_ecommerce"] == pytest.approx(50.0)
    assert one["category_count"] == 2
    category_columns = [c for c in kpis.columns if c.startswith("spend_category_")]
    np.testing.assert_allclose(kpis[category_columns].sum(axis=1), kpis["total_spend"])


def test_recent_windows_and_trend_sign(kpis):
    assert kpis.loc[1, "spend_last_90_days"] == pytest.approx(150.0)
    assert kpis.loc[1, "spend_previous_90_days"] == pytest.approx(30.0)
    # periods of 30 days, latest first: [150, 0, 0, 0, 30, 0]; slope 18.857 over mean 30
    assert kpis.loc[1, "spend_trend"] == pytest.approx((150 * 2.5 - 30 * 1.5) / 17.5 / 30)
    assert kpis.loc[5, "spend_trend"] < 0  # 700 five months ago, 20 last month
    assert kpis.loc[3, "spend_trend"] == 0.0


def test_holdings_balances_utilisation_and_delinquency(kpis):
    one, two = kpis.loc[1], kpis.loc[2]
    assert (one["holds_credit_card"], one["holds_checking"], one["product_count"]) == (1, 1, 2)
    assert one["deposit_balance"] == pytest.approx(2000.0)
    assert one["credit_utilisation"] == pytest.approx(0.5)
    assert one["max_days_past_due"] == 0 and one["delinquent_account_count"] == 0
    assert two["credit_utilisation"] == pytest.approx(0.9)
    assert two["max_days_past_due"] == 45 and two["delinquent_account_count"] == 1
    assert two["deposit_balance"] == 0.0  # the savings account is closed
    assert two["open_account_count"] == 1
    assert math.isnan(kpis.loc[3, "credit_utilisation"])


def test_interactions_events_and_offers(kpis):
    one = kpis.loc[1]
    assert one["interaction_count"] == 3
    assert one["interactions_last_90_days"] == 2
    assert (one["interactions_login"], one["interactions_complaint"]) == (2, 1)
    assert one["preferred_interaction_channel"] == "web"
    assert pd.isna(kpis.loc[3, "preferred_interaction_channel"])
    assert kpis.loc[2, "events_late_payment"] == 1
    assert (one["offers_received"], one["offers_responded"], one["offer_response_rate"]) == (
        1,
        1,
        1.0,
    )
    assert kpis.loc[2, "offers_received"] == 0  # control group: not contacted


def test_customers_without_transactions_get_zeros_and_nulls(kpis):
    three = kpis.loc[3]
    assert three["transaction_count"] == 0 and three["total_spend"] == 0.0
    assert math.isnan(three["recency_days"]) and math.isnan(three["average_transaction_amount"])
    assert pd.isna(three["last_transaction_at"])
    assert three["tenure_days"] == pytest.approx(16.0)
    assert kpis.loc[4, "tenure_days"] == pytest.approx(60.625)  # from its first transaction


def test_as_of_defaults_to_end_of_latest_transaction_day_and_cuts_later_records(small_bank):
    assert observation_end(small_bank["transactions"]) == pd.Timestamp("2026-09-21")
    early = customer_kpis(**small_bank, as_of="2026-06-30").set_index("customer_id")
    assert early.loc[1, "transaction_count"] == 1
    assert early.loc[1, "recency_days"] == pytest.approx(29.5)
    assert early.loc[1, "interaction_count"] == 1


def test_missing_column_and_duplicate_customer_are_named(small_bank):
    broken = dict(small_bank, transactions=small_bank["transactions"].drop(columns="amount"))
    with pytest.raises(FeatureInputError, match="'transactions' lacks column.*amount"):
        customer_kpis(**broken)
    doubled = pd.concat([small_bank["customers"], small_bank["customers"].head(1)])
    with pytest.raises(FeatureInputError, match="customer_id of table 'customers' has duplicate"):
        customer_kpis(**dict(small_bank, customers=doubled))


def test_account_kpis(small_bank):
    accounts = account_kpis(
        small_bank["accounts"],
        small_bank["transactions"],
        small_bank["inbound_events"],
        as_of="2026-09-30",
    ).set_index("account_id")
    assert list(accounts.index) == [11, 12, 21, 22, 51]
    card = accounts.loc[11]
    assert (card["transaction_count"], card["total_spend"]) == (2, 150.0)
    assert card["recency_days"] == pytest.approx(10.375)
    assert card["utilisation"] == pytest.approx(0.5)
    late = accounts.loc[21]
    assert (late["delinquency_bucket"], late["is_delinquent"], late["late_payment_count"]) == (
        "30-59",
        True,
        1,
    )
    closed = accounts.loc[22]
    assert closed["transaction_count"] == 0 and math.isnan(closed["recency_days"])
    assert math.isnan(closed["utilisation"])


def test_delinquency_buckets():
    days = pd.Series([0, 1, 29, 30, 59, 60, 89, 90, 400, None])
    assert delinquency_bucket(days).tolist() == [
        "current",
        "1-29",
        "1-29",
        "30-59",
        "30-59",
        "60-89",
        "60-89",
        "90+",
        "90+",
        "current",
    ]


def test_transactions_only_world_like_cdnow(small_bank):
    """CDNOW brings customers and transactions; the other tables arrive empty and untyped."""
    empty = {
        name: pd.DataFrame({column: pd.Series([], dtype=object) for column in frame.columns})
        for name, frame in small_bank.items()
        if name not in ("customers", "transactions")
    }
    kpis = customer_kpis(small_bank["customers"], transactions=small_bank["transactions"], **empty)
    assert len(kpis) == 5
    assert (kpis["interaction_count"] == 0).all() and (kpis["product_count"] == 0).all()
    assert kpis["credit_utilisation"].isna().all()
    assert kpis.set_index("customer_id").loc[1, "total_spend"] == pytest.approx(180.0)
    accounts = account_kpis(empty["accounts"], small_bank["transactions"], empty["inbound_events"])
    assert len(accounts) == 0


def test_rows_without_a_timestamp_are_left_out(small_bank, build):
    from cx_pipelines.features.purchase_patterns import category_associations, category_trends

    extra = build.transactions([(1, None, 999.0, "travel", "pos", 11)])
    transactions = pd.concat([small_bank["transactions"], extra], ignore_index=True)
    kpis = customer_kpis(**dict(small_bank, transactions=transactions), as_of="2026-09-30")
    assert kpis.set_index("customer_id").loc[1, "total_spend"] == pytest.approx(180.0)
    accounts = account_kpis(small_bank["accounts"], transactions, as_of="2026-09-30")
    assert accounts.set_index("account_id").loc[11, "total_spend"] == pytest.approx(150.0)
    trends = category_trends(transactions).set_index("merchant_category")
    assert trends.loc["travel", "spend_first_half"] + trends.loc[
        "travel", "spend_second_half"
    ] == pytest.approx(200.0)
    assert category_associations(transactions)["baskets"].iloc[0] == 6
