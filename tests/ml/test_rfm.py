"""RFM summaries: hand-computed cases, the published CDNOW summary, and a naive re-count."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cx_pipelines.datasets import read_cdnow
from cx_pipelines.ml.rfm import calibration_and_holdout_data, rfm_summary


@pytest.fixture
def small_log() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": [1, 1, 1, 1, 2, 3],
            "occurred_at": pd.to_datetime(
                ["2024-01-01", "2024-01-01", "2024-01-08", "2024-01-22", "2024-01-15", "2024-02-05"]
            ),
            "amount": [10.0, 5.0, 20.0, 30.0, 7.0, 99.0],
        }
    )


def test_rfm_summary_merges_same_day_purchases_and_leaves_out_the_first(small_log):
    rfm = rfm_summary(small_log, observation_period_end="2024-01-29").set_index("customer_id")
    assert list(rfm.index) == [1, 2]  # customer 3 first bought after the end
    assert rfm.loc[1].to_dict() == {
        "frequency": 2,
        "recency": 3.0,
        "T": 4.0,
        "monetary_value": 25.0,
    }
    assert rfm.loc[2].to_dict() == {"frequency": 0, "recency": 0.0, "T": 2.0, "monetary_value": 0.0}


def test_rfm_summary_in_days_and_without_merging(small_log):
    days = rfm_summary(small_log, observation_period_end="2024-01-29", time_unit="D")
    assert days.set_index("customer_id").loc[1, ["recency", "T"]].tolist() == [21.0, 28.0]
    unmerged = rfm_summary(small_log, observation_period_end="2024-01-29", merge_same_day=False)
    first = unmerged.set_index("customer_id").loc[1]
    assert first["frequency"] == 3
    # Two purchases share the first instant: one of mean value 7.5 counts as the first.
    assert first["monetary_value"] == pytest.approx((10 + 5 + 20 + 30 - 7.5) / 3)


def test_rfm_summary_default_end_is_the_last_purchase(small_log):
    rfm = rfm_summary(small_log).set_index("customer_id")
    assert rfm.loc[3, "T"] == 0.0
    assert rfm.loc[1, "T"] == pytest.approx(35 / 7)


def test_calibration_and_holdout_split(small_log):
    data = calibration_and_holdout_data(
        small_log, calibration_period_end="2024-01-10", observation_period_end="2024-01-29"
    ).set_index("customer_id")
    assert list(data.index) == [1]  # customers 2 and 3 were acquired after calibration
    row = data.loc[1]
    assert row["frequency_cal"] == 1
    assert row["recency_cal"] == pytest.approx(1.0)
    assert row["T_cal"] == pytest.approx(9 / 7)
    assert row["monetary_value_cal"] == 20.0
    assert row["frequency_holdout"] == 1
    assert row["monetary_value_holdout"] == 30.0
    assert row["duration_holdout"] == pytest.approx(19 / 7)


def test_bad_transaction_logs_are_refused_with_the_column_named(small_log):
    with pytest.raises(ValueError, match="no column 'when'"):
        rfm_summary(small_log, datetime_col="when")
    broken = small_log.copy()
    broken.loc[2, "amount"] = np.nan
    with pytest.raises(ValueError, match="Column amount has 1 missing values"):
        rfm_summary(broken)
    with pytest.raises(ValueError, match="time_unit must be 'D' or 'W'"):
        rfm_summary(small_log, time_unit="M")
    with pytest.raises(ValueError, match="must be after"):
        calibration_and_holdout_data(
            small_log, calibration_period_end="2024-02-01", observation_period_end="2024-01-01"
        )


def test_empty_log_gives_an_empty_summary(small_log):
    empty = rfm_summary(small_log.iloc[:0])
    assert list(empty.columns) == ["customer_id", "frequency", "recency", "T", "monetary_value"]
    assert len(empty) == 0


def test_cdnow_calibration_summary_matches_the_papers():
    cdnow = read_cdnow()
    data = calibration_and_holdout_data(
        cdnow,
        datetime_col="date",
        monetary_value_col="dollar_value",
        calibration_period_end="1997-09-30",
        observation_period_end="1998-06-30",
    )
    assert len(data) == 2357
    assert int((data["frequency_cal"] > 0).sum()) == 946
    assert data["duration_holdout"].iloc[0] == pytest.approx(39.0)
    first = data.set_index("customer_id").loc[[1, 2, 3], ["frequency_cal", "recency_cal", "T_cal"]]
    # Rows 1-3 of the published CDNOW summary (Fader-Hardie spreadsheet, lifetimes quickstart).
    assert first.round(2).values.tolist() == [[2, 30.43, 38.86], [1, 1.71, 38.86], [0, 0.0, 38.86]]


def test_read_cdnow_master_has_all_customers():
    master = read_cdnow(master=True)
    assert master["customer_id"].nunique() == 23570
    assert list(master.columns) == ["customer_id", "date", "cds", "dollar_value"]
    assert str(master["date"].dtype).startswith("datetime64")


def _naive_rfm(log: pd.DataFrame, end: pd.Timestamp) -> dict:
    result = {}
    # With same-day merging the period end is a whole day: its later hours are included.
    kept = log[log["occurred_at"].dt.floor("D") <= end.floor("D")]
    for customer, rows in kept.groupby("customer_id"):
        by_day = rows.groupby(rows["occurred_at"].dt.floor("D"))["amount"].sum().sort_index()
        days = list(by_day.index)
        repeat = by_day.iloc[1:]
        result[customer] = (
            len(days) - 1,
            (days[-1] - days[0]).days / 7,
            (end.floor("D") - days[0]).days / 7,
            float(repeat.mean()) if len(repeat) else 0.0,
        )
    return result


@pytest.mark.slow
@settings(max_examples=25, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(1, 6), st.integers(0, 60 * 24), st.floats(0.5, 500)),
        min_size=1,
        max_size=40,
    )
)
def test_rfm_summary_agrees_with_a_naive_per_customer_count(purchases):
    log = pd.DataFrame(purchases, columns=["customer_id", "hours", "amount"])
    log["occurred_at"] = pd.Timestamp("2024-03-01") + pd.to_timedelta(log["hours"], unit="h")
    end = pd.Timestamp("2024-03-30")
    expected = _naive_rfm(log, end)
    rfm = rfm_summary(log, observation_period_end=end).set_index("customer_id")
    assert sorted(rfm.index) == sorted(expected)
    for customer, (frequency, recency, age, monetary) in expected.items():
        row = rfm.loc[customer]
        assert row["frequency"] == frequency
        assert row["recency"] == pytest.approx(recency)
        assert row["T"] == pytest.approx(age)
        assert row["monetary_value"] == pytest.approx(monetary)
