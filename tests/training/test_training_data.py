"""Training frames: features as of a date never see the future; holdouts are time-based;
bad input is a clear error, not a silent NaN."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd
import pytest

from cx_pipelines.ml import training_data
from cx_pipelines.ml.errors import TrainingDataError


@pytest.fixture
def bank():
    customers = pd.DataFrame(
        {
            "customer_id": [1, 2, 3],
            "customer_type": ["student", "affluent", "senior"],
            "region": ["north", "south", "east"],
            "birth_year": [2000, 1970, 1950],
            "annual_income": [12_000.0, 150_000.0, 30_000.0],
            "joined_on": pd.to_datetime(["2024-01-01", "2024-01-01", "2026-06-01"]),
        }
    )
    accounts = pd.DataFrame(
        {
            "customer_id": [1, 2, 2],
            "product_type": ["checking", "checking", "mortgage"],
            "opened_on": pd.to_datetime(["2024-01-01", "2024-01-01", "2026-08-01"]),
            "status": ["open", "closed", "open"],
            "days_past_due": [0, 30, 0],
        }
    )
    transactions = pd.DataFrame(
        {
            "customer_id": [1, 1, 1, 2, 2],
            "occurred_at": pd.to_datetime(
                ["2025-01-10", "2026-03-15", "2026-05-01", "2025-12-01", "2026-07-01"]
            ),
            "amount": [10.0, 20.0, 30.0, 100.0, 50.0],
        }
    )
    return customers, accounts, transactions


def test_features_as_of_a_date_ignore_later_events(bank):
    features = training_data.customer_features(*bank, as_of=datetime(2026, 4, 1)).set_index(
        "customer_id"
    )
    assert list(features.index) == [1, 2]  # customer 3 joined later
    assert features.loc[1, "purchases_total"] == 2 and features.loc[1, "spend_total"] == 30.0
    assert (
        features.loc[1, "purchases_90d"] == 1 and features.loc[1, "days_since_last_purchase"] == 17
    )
    assert features.loc[2, "purchases_total"] == 1
    assert features.loc[2, "holds_mortgage"] == 0  # opened after the date
    assert features.loc[2, "holds_checking"] == 0  # closed account, open accounts only
    assert features.loc[2, "delinquent"] == 0
    assert features.loc[1, "age"] == 26


def test_attrition_labels_the_window_after_the_cutoff(bank):
    frame = training_data.attrition_frame(
        *bank, cutoff=datetime(2026, 4, 1), window_days=90
    ).set_index("customer_id")
    assert frame.loc[1, "attrited"] == np.False_  # bought on 2026-05-01
    assert frame.loc[2, "attrited"] == np.True_  # next purchase 2026-07-01, after the window
    assert frame.loc[2, "holds_checking"] == 1  # for attrition: any account opened by then


def test_missing_columns_and_duplicates_are_named(bank):
    customers, accounts, transactions = bank
    with pytest.raises(TrainingDataError, match=r"table 'transactions' lacks columns \['amount'\]"):
        training_data.customer_features(
            customers, accounts, transactions.drop(columns="amount"), as_of=datetime(2026, 1, 1)
        )
    with pytest.raises(TrainingDataError, match="customer_id of table 'customers' has duplicate"):
        training_data.customer_features(
            pd.concat([customers, customers.head(1)]),
            accounts,
            transactions,
            as_of=datetime(2026, 1, 1),
        )


def _contacts(size: int = 40) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "contact_id": np.arange(size),
            "campaign_id": np.where(np.arange(size) < size // 2, "C01", "C02"),
            "customer_id": np.arange(size) % 7,
            "offer_type": "savings",
            "channel": "email",
            "treated": rng.random(size) < 0.8,
            "contacted_at": pd.Timestamp("2025-01-01") + pd.to_timedelta(rng.random(size), "D"),
            "responded": rng.random(size) < 0.3,
            "revenue": 0.0,
        }
    )


def test_holdout_is_the_latest_share_of_every_campaign():
    train, holdout = training_data.split_latest_per_campaign(
        training_data.contacts(_contacts()), fraction=0.25
    )
    assert len(holdout) == 10 and set(holdout["campaign_id"]) == {"C01", "C02"}
    for campaign in ("C01", "C02"):
        latest_train = train.loc[train["campaign_id"] == campaign, "contacted_at"].max()
        earliest_holdout = holdout.loc[holdout["campaign_id"] == campaign, "contacted_at"].min()
        assert latest_train <= earliest_holdout


def test_interaction_results_are_appended_and_checked():
    history = _contacts()
    results = _contacts(6).drop(columns=["campaign_id"]).assign(offer_type="mortgage")
    combined = training_data.contacts(history, results)
    assert len(combined) == 46
    assert set(combined.loc[40:, "campaign_id"]) == {"mortgage_email"}
    with pytest.raises(
        TrainingDataError, match=r"'interaction_results' lacks columns \['responded'\]"
    ):
        training_data.contacts(history, results.drop(columns="responded"))
    broken = history.astype({"responded": object})
    broken.loc[3, "responded"] = None
    with pytest.raises(TrainingDataError, match="'responded' has 1 missing values"):
        training_data.contacts(broken)


def test_oracle_attrition_is_certain_for_the_dropped_and_poisson_for_the_alive():
    truth = pd.DataFrame(
        {
            "customer_id": [1, 2],
            "purchase_rate": [0.5, 0.5],
            "dropped_out_at": pd.to_datetime(["2026-01-01", None]),
        }
    )
    frame = pd.DataFrame({"customer_id": [1, 2], "cutoff": pd.Timestamp("2026-04-01")})
    oracle = training_data.oracle_attrition(frame, truth, window_days=70)
    np.testing.assert_allclose(oracle, [1.0, np.exp(-0.5 * 10)])
