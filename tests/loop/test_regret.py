"""The regret decomposition: every split adds up to the cycle's regret, on a hand-made cycle
whose every part is known."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cx_pipelines.loop import regret
from cx_pipelines.loop.commands import format_report
from cx_pipelines.loop.policies import CampaignEconomics

ECONOMICS = CampaignEconomics(
    campaign_id=("A", "B"),
    offer_type=("credit_card", "savings"),
    channel=("email", "web"),
    margin=np.array([100.0, 50.0]),
    cost=np.array([1.0, 2.0]),
    budget=np.full(2, np.inf),
    volume_cap=np.full(2, np.inf),
    control_share=np.full(2, 0.1),
)
IDS = np.array([10, 11, 12, 13, 14, 15])
# true incremental profit of customer (row) x campaign (column)
INCREMENT = np.array(
    [
        [5.0, 1.0],  # 10: oracle A, learned A (optimiser): no regret
        [4.0, 2.0],  # 11: oracle A, learned B (explored): regret 2
        [3.0, 0.0],  # 12: oracle A, learned control on A: regret 3
        [0.0, 6.0],  # 13: oracle B, no learned row: regret 6
        [-2.0, -1.0],  # 14: oracle none, learned A (optimiser), truly negative: regret 2
        [1.0, 3.0],  # 15: oracle none (caps), learned B (optimiser): regret -3
    ]
)
ORACLE = np.array([0, 0, 0, 1, -1, -1])
RECENT = np.array([0, 1, 2, 5, 3, 0])
PREDICTED = np.full((6, 2), 0.05)


def decisions() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": [10, 11, 12, 14, 15],
            "campaign_id": ["A", "B", "A", "A", "B"],
            "group": ["treated", "treated", "control", "treated", "treated"],
            "exploration": [False, True, False, False, False],
            "uplift": [0.07, np.nan, 0.02, 0.03, 0.09],
            "rank": [1, 2, 2, 3, 1],
        }
    )


def breakdown(frame: pd.DataFrame | None = None) -> dict:
    return regret.regret_breakdown(
        increment=INCREMENT,
        oracle_choice=ORACLE,
        decisions=decisions() if frame is None else frame,
        customer_ids=IDS,
        economics=ECONOMICS,
        recent=RECENT,
        predicted_uplift=PREDICTED,
    )


def total(split: dict) -> float:
    return sum(part["regret"] for part in split.values())


def test_every_split_adds_up_to_the_regret():
    result = breakdown()
    oracle = 5 + 4 + 3 + 6
    learned = 5 + 2 - 2 + 3
    assert result["regret"] == pytest.approx(oracle - learned) == 10
    for name in ("by_campaign", "by_recent_contacts", "by_learned_action", "by_overlap"):
        assert total(result[name]) == pytest.approx(10), name


def test_each_part_holds_what_it_names():
    result = breakdown()
    campaign = result["by_campaign"]
    assert campaign["A"] == {
        "regret": 12 - 3,
        "oracle": 12,
        "learned": 3,
        "oracle_contacts": 3,
        "learned_contacts": 2,
    }
    assert campaign["B"]["regret"] == 6 - 5
    fatigue = result["by_recent_contacts"]
    assert [fatigue[name]["regret"] for name in regret.FATIGUE_BUCKETS] == [0 - 3, 2, 3, 6 + 2]
    assert fatigue["3+"]["oracle_contacts"] == 1 and fatigue["3+"]["learned_contacts"] == 1
    # the learned contact of customer 14 (3 recent contacts): predicted 0.03, true -1/100
    assert fatigue["3+"]["predicted_uplift"] == 0.03
    assert fatigue["3+"]["true_uplift"] == pytest.approx(-0.01)
    assert fatigue["1"]["predicted_uplift"] is None  # customer 11's explored row is unscored
    action = result["by_learned_action"]
    assert action["explored"] == {"customers": 1, "regret": 2, "value": 2, "negative_contacts": 0}
    assert action["optimiser"]["value"] == 5 - 2 + 3 and action["optimiser"]["regret"] == -1
    assert action["optimiser"]["negative_contacts"] == 1
    # campaign A's top two ranks (10 and the control 12) would earn 5 + 3, its treated 5 - 2
    assert action["control"] == {"customers": 1, "regret": 3, "forgone": 3, "holdout_cost": 5}
    unranked = breakdown(decisions().drop(columns="rank"))["by_learned_action"]["control"]
    assert unranked["holdout_cost"] is None
    assert action["none"] == {"customers": 1, "regret": 6}
    overlap = result["by_overlap"]
    assert overlap["same campaign"] == {"customers": 1, "regret": 0}
    assert overlap["other campaign"] == {"customers": 1, "regret": 2}
    assert overlap["oracle only"] == {"customers": 2, "regret": 3 + 6}
    assert overlap["learned only"] == {"customers": 2, "regret": 2 - 3}
    assert result["negative_contacts"] == {"contacts": 1, "value": -2}


def test_calibration_sets_predicted_against_true_uplift_of_the_contacts():
    calibration = breakdown()["calibration"]
    # true uplift = (increment + cost) / margin over campaign A's treated rows 10 and 14
    assert calibration["A"]["contacts"] == 2
    assert calibration["A"]["predicted_uplift"] == pytest.approx((0.07 + 0.03) / 2)
    assert calibration["A"]["true_uplift"] == pytest.approx(((5 + 1) / 100 + (-2 + 1) / 100) / 2)
    assert calibration["A"]["oracle_true_uplift"] == pytest.approx((6 + 5 + 4) / 300)
    assert calibration["A"]["oracle_predicted_uplift"] == pytest.approx(0.05)
    # the explored row on B is unscored: its prediction is left out of the mean, not zero
    assert calibration["B"]["predicted_uplift"] == pytest.approx(0.09)
    assert calibration["B"]["true_uplift"] == pytest.approx(((2 + 2) / 50 + (3 + 2) / 50) / 2)


def test_unknown_customers_and_double_treated_rows_are_refused():
    unknown = decisions().assign(customer_id=[10, 11, 12, 14, 99])
    with pytest.raises(ValueError, match="1 customers, 0 campaigns"):
        breakdown(unknown)
    twice = pd.concat([decisions(), decisions().iloc[[0]].assign(campaign_id="B")])
    with pytest.raises(ValueError, match="more than one treated row"):
        breakdown(twice)


def test_the_report_shows_each_cycles_breakdown_under_the_table():
    row = {column: 0 for column in format_report.__globals__["REPORT_COLUMNS"]}
    table = pd.DataFrame(
        [{**row, "cycle": 1, "regret_breakdown": breakdown()}, {**row, "cycle": 2}]
    )
    text = format_report(table)
    assert "where the regret lies (true values):" in text
    assert "cycle 1 regret 10 by campaign" in text and "A +0.0k (3/2)" in text
    assert "by recent contacts 0/1/2/3+" in text and "cycle 2 regret" not in text
    assert "holdout cost +0.0k" in text
    # without the column (an older table) the report is the table alone
    assert "where the regret" not in format_report(table.drop(columns="regret_breakdown"))
