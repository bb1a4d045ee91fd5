"""Hit-and-run, dormancy and spend-forecast scores, and their holdout evaluations on CDNOW."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cx_pipelines.datasets import read_cdnow
from cx_pipelines.ml.btyd import BetaGeoModel, ModifiedBetaGeoModel, ParetoNBDModel
from cx_pipelines.ml.lifetime import (
    dormancy_scores,
    evaluate_dormancy,
    evaluate_hit_and_run,
    evaluate_spend_forecast,
    hit_and_run_scores,
    ranking_auc,
    spend_forecast,
)
from cx_pipelines.ml.rfm import rfm_summary

CALIBRATION = {"calibration_period_end": "1997-09-30", "observation_period_end": "1998-06-30"}


@pytest.fixture(scope="module")
def cdnow() -> pd.DataFrame:
    return read_cdnow().rename(columns={"date": "occurred_at", "dollar_value": "amount"})


@pytest.fixture(scope="module")
def cdnow_rfm(cdnow) -> pd.DataFrame:
    return rfm_summary(cdnow, observation_period_end="1997-09-30")


def test_hit_and_run_ranks_only_one_time_buyers(cdnow_rfm):
    scores = hit_and_run_scores(cdnow_rfm)
    one_time = cdnow_rfm[cdnow_rfm["frequency"] == 0]
    assert list(scores.columns) == ["customer_id", "probability_ever_again", "rank"]
    assert sorted(scores["customer_id"]) == sorted(one_time["customer_id"])
    assert scores["rank"].tolist() == list(range(1, len(scores) + 1))
    assert scores["probability_ever_again"].between(0, 1).all()
    assert scores["probability_ever_again"].is_monotonic_decreasing
    # The formula stated in the docstring, with the default MBG/NBD's parameters.
    model = ModifiedBetaGeoModel().fit(cdnow_rfm)
    r, alpha, a, b = model.params_.to_numpy()
    T = one_time.set_index("customer_id")["T"].reindex(scores["customer_id"]).to_numpy()
    formula = 1 / (1 + a / b * ((alpha + T) / alpha) ** r)
    assert scores["probability_ever_again"].to_numpy() == pytest.approx(formula, rel=1e-6)


def test_hit_and_run_refuses_plain_bg_nbd_and_accepts_pareto(cdnow_rfm):
    with pytest.raises(ValueError, match="BG/NBD assumes one-time buyers are alive"):
        hit_and_run_scores(cdnow_rfm, model=BetaGeoModel().fit(cdnow_rfm))
    scores = hit_and_run_scores(cdnow_rfm, model=ParetoNBDModel().fit(cdnow_rfm))
    assert scores["probability_ever_again"].between(0, 1).all()


@pytest.mark.filterwarnings("ignore:.*Hessian of the log-likelihood:RuntimeWarning")
def test_dormancy_scores_list_accounts_quiet_for_the_period():
    log = pd.DataFrame(
        {
            "account_id": [10, 10, 10, 11, 12, 12, 13, 13],
            "customer_id": [1, 1, 1, 1, 2, 2, 3, 3],
            "occurred_at": pd.to_datetime(
                [
                    "2025-01-05",
                    "2025-02-10",
                    "2025-03-01",  # account 10: quiet since March
                    "2025-01-20",  # account 11: one spend
                    "2025-06-01",
                    "2025-06-20",  # account 12: active recently
                    "2025-01-02",
                    "2025-01-03",  # account 13: two quick spends, long ago
                ]
            ),
            "amount": [5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0],
        }
    )
    scores = dormancy_scores(log, as_of="2025-06-30", dormant_days=90, horizon_days=60)
    assert list(scores.columns) == [
        "account_id",
        "customer_id",
        "days_since_last_spend",
        "probability_reactivation",
        "rank",
    ]
    by_account = scores.set_index("account_id")
    assert sorted(by_account.index) == [10, 11, 13]
    assert by_account.loc[10, "days_since_last_spend"] == 121
    assert by_account.loc[11, "customer_id"] == 1
    assert by_account["probability_reactivation"].between(0, 1).all()
    longer = dormancy_scores(log, as_of="2025-06-30", dormant_days=90, horizon_days=365)
    assert (
        longer.set_index("account_id")["probability_reactivation"]
        > by_account["probability_reactivation"]
    ).all()


def test_spend_forecast_columns_and_undiscounted_clv(cdnow_rfm):
    forecast = spend_forecast(cdnow_rfm, periods=6, discount_rate=0.0)
    assert list(forecast.columns) == [
        "customer_id",
        "expected_transactions",
        "expected_average_spend",
        "expected_spend",
        "clv",
        "probability_alive",
    ]
    assert len(forecast) == len(cdnow_rfm)
    assert np.isfinite(forecast.drop(columns="customer_id")).all().all()
    assert forecast["expected_spend"].to_numpy() == pytest.approx(
        (forecast["expected_transactions"] * forecast["expected_average_spend"]).to_numpy()
    )
    assert forecast["clv"].to_numpy() == pytest.approx(forecast["expected_spend"].to_numpy())
    discounted = spend_forecast(cdnow_rfm, periods=6, discount_rate=0.02)
    assert (discounted["clv"] <= forecast["clv"]).all()


def test_holdout_evaluations_on_cdnow(cdnow):
    forecast = evaluate_spend_forecast(cdnow, **CALIBRATION)
    assert forecast["mae"] < forecast["baseline_mae"]
    assert forecast["forecast_total"] == pytest.approx(forecast["actual_total"], rel=0.2)
    hit_and_run = evaluate_hit_and_run(cdnow, **CALIBRATION)
    assert hit_and_run["auc"] > 0.5
    accounts = cdnow.assign(account_id=cdnow["customer_id"])
    dormancy = evaluate_dormancy(accounts, as_of="1997-12-31", horizon_days=90)
    assert dormancy["auc"] > 0.5
    assert 0 < dormancy["reactivation_rate"] < 1


def test_ranking_auc_needs_both_outcomes():
    assert ranking_auc(np.array([0.9, 0.1]), np.array([1, 0])) == 1.0
    with pytest.raises(ValueError, match="same for every row"):
        ranking_auc(np.array([0.9, 0.1]), np.array([1, 1]))
