"""The live champion/challenger test of incremental profit: replayed A/A splits are detected
about 5 % of the time, a planted better challenger is detected with the right sign, and
its interval covers the truth."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "campaigns"))
from campaign_support import DAY, campaign, history, population, scores  # noqa: E402

from cx_pipelines.campaigns.experiment import Arm, Experiment, TargetingVariant  # noqa: E402
from cx_pipelines.campaigns.targeting import TargetingSettings, target  # noqa: E402
from cx_pipelines.feedback.experiments import (  # noqa: E402
    ExperimentRuns,
    customer_profit,
    incremental_profit_tests,
)

CAMPAIGNS = [
    campaign("card_email", "credit_card", "email", volume_cap=300.0, control_share=0.2),
    campaign("loan_call", "personal_loan", "call_centre", cost_per_contact=2.0, volume_cap=150.0),
]


def experiment(salt: str, *, challenger: TargetingVariant | None = None) -> Experiment:
    return Experiment(
        experiment_id="test",
        salt=salt,
        start=DAY,
        end=DAY,
        arms=(
            Arm("champion", 0.5, TargetingVariant(exploration=False)),
            Arm("challenger", 0.5, challenger or TargetingVariant(exploration=False)),
        ),
        description="",
        file="test.yaml",
        content_hash="0" * 12,
    )


def truth_of(frame: pd.DataFrame, score_frame: pd.DataFrame) -> dict[str, tuple]:
    """(p_treated, p_control) per campaign and customer: the scores are the truth here."""
    truth = {}
    for item in CAMPAIGNS:
        pair = f"{item.offer}__{item.channel}"
        treated = score_frame[f"propensity__{pair}"].to_numpy()
        truth[item.campaign_id] = (treated, treated - score_frame[f"uplift__{pair}"].to_numpy())
    return truth


def replay(frame, score_frame, truth, item: Experiment, *, seed: int, arm_scores=None):
    """Target with the experiment, answer every decided row from the truth; the outcomes,
    the runs as the manifests record them, and the TRUE profit per customer of each arm."""
    result = target(
        CAMPAIGNS, frame, score_frame, history(frame, {}), caps=[], decline_limit=None,
        settings=TargetingSettings(decision_date=DAY, exploration_share=0.0),
        strategy_hash="s", model_versions={}, fingerprint={"seed": seed},
        experiment=item, arm_scores=arm_scores,
    )  # fmt: skip
    rows = result.targets
    position = pd.Index(frame["customer_id"]).get_indexer(rows["customer_id"])
    treated = (rows["group"] == "treated").to_numpy()
    p = np.empty(len(rows))
    true_value = np.zeros(len(rows))
    for item_campaign in CAMPAIGNS:
        mine = (rows["campaign_id"] == item_campaign.campaign_id).to_numpy()
        p_treated, p_control = truth[item_campaign.campaign_id]
        p[mine] = np.where(treated[mine], p_treated[position[mine]], p_control[position[mine]])
        lift = p_treated[position[mine]] - p_control[position[mine]]
        value = item_campaign.margin_per_response * lift - item_campaign.cost_per_contact
        true_value[mine] = np.where(treated[mine], value, 0.0)
    responded = np.random.default_rng(seed).uniform(size=len(rows)) < p
    outcomes = rows.assign(treated=treated, responded=responded)
    block = result.summary["experiment"]
    runs = ExperimentRuns(
        "test",
        pd.DataFrame(
            [{"run_key": result.run_key, "test_group": arm, "customers": count}
             for arm, count in block["customers"].items()]
        ),
        pd.DataFrame(
            [{"run_key": result.run_key, "campaign_id": name, **money}
             for name, money in block["economics"].items()]
        ),
    )  # fmt: skip
    true = pd.Series(true_value).groupby(rows["test_group"].to_numpy()).sum()
    per_customer = {arm: true.get(arm, 0.0) / count for arm, count in block["customers"].items()}
    return outcomes, runs, per_customer


@pytest.fixture(scope="module")
def world():
    frame = population(1_200, seed=4)[["customer_id", "age"]]  # what the rules read
    score_frame = scores(frame, seed=4)
    return frame, score_frame, truth_of(frame, score_frame)


def test_profit_per_customer_is_the_cells_lift_over_control_times_margin_minus_cost():
    outcomes = pd.DataFrame(
        {
            "run_key": "r",
            "campaign_id": "c",
            "customer_id": [1, 2, 3, 4, 5, 6],
            "test_group": "champion",
            "treated": [True, True, True, True, False, False],
            "responded": [True, True, False, False, True, False],
        }
    )
    economics = pd.DataFrame(
        {"run_key": ["r"], "campaign_id": ["c"], "margin_per_response": [100.0],
         "cost_per_contact": [1.0]}
    )  # fmt: skip
    profit, unusable, _ = customer_profit(outcomes, economics)
    # 4 treated, 2 responses; control rate 1/2: 100 x (2 - 4 x 0.5) - 4 x 1 = -4
    assert profit["profit"].sum() == pytest.approx(-4.0)
    assert unusable == 0
    runs = ExperimentRuns(
        "x",
        pd.DataFrame({"run_key": "r", "test_group": ["champion", "challenger"],
                      "customers": [10, 10]}),
        economics,
    )  # fmt: skip
    both = pd.concat(
        [
            outcomes,
            outcomes.assign(test_group="challenger", customer_id=outcomes["customer_id"] + 6),
        ]
    )
    both.loc[both["test_group"].eq("challenger") & both["treated"], "responded"] = True
    (row,) = incremental_profit_tests(both, runs).to_dict(orient="records")
    assert row["champion_profit_per_customer"] == pytest.approx(-0.4)
    # challenger: 4 of 4 treated respond, control 1/2: 100 x (4 - 2) - 4 = 196 over 10
    assert row["challenger_profit_per_customer"] == pytest.approx(19.6)
    assert row["difference"] == pytest.approx(20.0)
    assert row["low"] < row["difference"] < row["high"]


@pytest.mark.slow
def test_an_a_a_split_is_detected_about_five_percent_of_the_time(world):
    frame, score_frame, truth = world
    p_values = []
    for seed in range(120):
        outcomes, runs, _ = replay(frame, score_frame, truth, experiment(f"aa{seed}"), seed=seed)
        p_values.append(incremental_profit_tests(outcomes, runs)["p_value"].iloc[0])
    rejected = np.mean(np.array(p_values) < 0.05)
    assert rejected <= 0.11  # 5 % expected; 0.11 is > 2.5 standard errors above it
    assert np.mean(np.array(p_values) < 0.5) == pytest.approx(0.5, abs=0.15)  # p ~ uniform


@pytest.mark.slow
def test_a_planted_better_challenger_is_detected_with_the_right_sign(monkeypatch):
    # a bigger book, caps and control groups: the effect is about 1.1 per customer
    monkeypatch.setattr(sys.modules[__name__], "CAMPAIGNS", [
        campaign("card_email", "credit_card", "email", volume_cap=5000.0, control_share=0.5),
        campaign("loan_call", "personal_loan", "call_centre", cost_per_contact=2.0,
                 volume_cap=2500.0, control_share=0.5),
    ])  # fmt: skip
    frame = population(20_000, seed=4)[["customer_id", "age"]]
    score_frame = scores(frame, seed=4)
    truth = truth_of(frame, score_frame)
    # the champion's models know nothing of who responds to treatment: uplift shuffled
    rng = np.random.default_rng(0)
    blind = score_frame.copy()
    for column in [c for c in blind.columns if c.startswith("uplift__")]:
        blind[column] = rng.permutation(blind[column].to_numpy())
    planted = TargetingVariant(scores=Path("truth.parquet"), exploration=False)
    detected, covered, gains = 0, 0, []
    for seed in range(12):
        outcomes, runs, true = replay(
            frame, blind, truth, experiment(f"planted{seed}", challenger=planted), seed=seed,
            arm_scores={"challenger": score_frame},
        )  # fmt: skip
        (row,) = incremental_profit_tests(outcomes, runs).to_dict(orient="records")
        gain = true["challenger"] - true["champion"]
        gains.append(gain)
        detected += row["p_value"] < 0.05 and row["difference"] > 0
        covered += row["low"] <= gain <= row["high"]
    assert min(gains) > 0  # planted: truly better on every split
    assert detected >= 9
    assert covered >= 9


def test_an_experiment_with_one_share_of_caps_keeps_every_arm_within_its_own(world):
    frame, score_frame, truth = world
    item = replace(experiment("caps"), arms=(
        Arm("champion", 0.7, TargetingVariant()), Arm("challenger", 0.3, TargetingVariant()),
    ))  # fmt: skip
    outcomes, runs, _ = replay(frame, score_frame, truth, item, seed=1)
    treated = outcomes[outcomes["treated"]]
    counts = treated.groupby(["campaign_id", "test_group"]).size()
    assert counts["card_email", "champion"] <= 210 and counts["card_email", "challenger"] <= 90
    assert counts["loan_call", "champion"] <= 105 and counts["loan_call", "challenger"] <= 45
    assert runs.arm_customers["customers"].sum() == len(frame)
