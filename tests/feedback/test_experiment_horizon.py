"""The live experiment over its stated horizon: the group-sequential boundaries are the
published O'Brien–Fleming ones, A/A experiments looked at after every run reject about 5 %
of the time overall, and the regression-adjusted estimator stays unbiased while its
interval narrows when the covariate predicts the outcomes."""

from __future__ import annotations

import sys
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "campaigns"))
from campaign_support import DAY, campaign, history, population, scores  # noqa: E402
from campaign_support import run as run_targeting  # noqa: E402

from cx_pipelines.campaigns.experiment import (  # noqa: E402
    Arm,
    Experiment,
    TargetingVariant,
    check_experiment_file,
)
from cx_pipelines.campaigns.targeting import TargetingSettings, target  # noqa: E402
from cx_pipelines.feedback.experiments import (  # noqa: E402
    ExperimentRuns,
    customer_profit,
    incremental_profit_tests,
)
from cx_pipelines.feedback.sequential import (  # noqa: E402
    HorizonError,
    boundaries,
    horizon_tests,
    spent,
)


def test_boundaries_are_the_published_obrien_fleming_ones():
    # Lan-DeMets O'Brien-Fleming spending, 5 equally spaced looks, two-sided 0.05
    # (e.g. Jennison & Turnbull 2000, table 7.6; R gsDesign / ldbounds give the same)
    assert boundaries(5) == pytest.approx([4.877, 3.357, 2.680, 2.290, 2.031], abs=2e-3)
    assert boundaries(1) == pytest.approx([1.95996], abs=1e-4)  # one look: the fixed test
    assert spent(1.0, 0.05) == pytest.approx(0.05)
    six = boundaries(6)
    assert list(six) == sorted(six, reverse=True) and six[-1] < 2.1


def test_the_boundaries_hold_a_brownian_motion_at_its_level():
    rng = np.random.default_rng(0)
    paths = np.cumsum(rng.standard_normal((400_000, 6)), axis=1) / np.sqrt(np.arange(1, 7))
    crossed = (np.abs(paths) >= boundaries(6)).any(axis=1).mean()
    assert crossed == pytest.approx(0.05, abs=0.002)
    naive = (np.abs(paths) >= 1.96).any(axis=1).mean()  # every look at 1.96: why a horizon
    assert naive > 0.14


@pytest.mark.parametrize("horizon", [0, -2, 2.5, True, "6"])
def test_a_horizon_that_is_not_a_positive_number_of_runs_is_refused(horizon):
    with pytest.raises(HorizonError, match="horizon must be a positive number of runs"):
        boundaries(horizon)


def test_an_experiment_file_states_its_horizon_and_a_bad_one_names_file_and_line(tmp_path):
    text = (
        "experiment_id: e\nstart: 2026-10-01\nend: 2026-12-31\nhorizon: {horizon}\n"
        "arms:\n  champion: {{share: 0.5}}\n  challenger: {{share: 0.5}}\n"
    )
    good = tmp_path / "good.yaml"
    good.write_text(text.format(horizon=6))
    experiment, errors = check_experiment_file(good)
    assert errors == [] and experiment.horizon == 6
    assert experiment.describe()["horizon"] == 6  # recorded in the exports' manifests
    bad = tmp_path / "bad.yaml"
    bad.write_text(text.format(horizon="six"))
    experiment, errors = check_experiment_file(bad)
    assert experiment is None
    assert [(e.file, e.line) for e in errors] == [("bad.yaml", 4)]
    assert "horizon must be a positive number of runs" in errors[0].message


def synthetic_log(rng, *, runs: int, customers: int, gain: float, predictive: bool):
    """Outcomes of a split test over several runs: each run, each arm decides its best
    customers for one high-margin campaign and holds 10 % of them out at random; the
    challenger's treated rate is raised by ``gain``. ``baseline_prediction`` is the true
    control rate (``predictive``) or nothing."""
    ids = np.arange(customers)
    arm = np.where(rng.uniform(size=customers) < 0.5, "challenger", "champion")
    p_control = rng.beta(1.0, 6.0, customers)  # very unequal baselines: a covariate helps
    lift = 0.03 + gain * (arm == "challenger")
    frames, arms, economics = [], [], []
    for run in range(runs):
        key = f"2026-10-{run + 1:02d}-r"
        decided = rng.uniform(size=customers) < 0.3
        treated = rng.uniform(size=customers) >= 0.1
        p = np.where(treated, np.clip(p_control + lift, 0, 1), p_control)
        frames.append(
            pd.DataFrame(
                {
                    "run_key": key, "campaign_id": "mortgage", "customer_id": ids[decided],
                    "test_group": arm[decided], "treated": treated[decided],
                    "responded": rng.uniform(size=customers)[decided] < p[decided],
                    "baseline_prediction": p_control[decided] if predictive else np.nan,
                }
            )
        )  # fmt: skip
        arms += [{"run_key": key, "test_group": a, "customers": int((arm == a).sum())}
                 for a in ("champion", "challenger")]  # fmt: skip
        economics.append(
            {"run_key": key, "campaign_id": "mortgage", "margin_per_response": 1200.0,
             "cost_per_contact": 5.0}
        )  # fmt: skip
    runs_frame = ExperimentRuns("syn", pd.DataFrame(arms), pd.DataFrame(economics), runs)
    true = 1200.0 * gain * 0.3 * 0.9 * runs  # challenger − champion per customer, all runs
    return pd.concat(frames, ignore_index=True), runs_frame, true


@pytest.mark.slow
def test_a_a_experiments_looked_at_every_run_reject_at_their_level_over_the_horizon():
    rng = np.random.default_rng(11)
    detected, last_p, pocock = [], [], []
    for _ in range(300):
        outcomes, runs, _ = synthetic_log(rng, runs=4, customers=600, gain=0.0, predictive=False)
        looks = horizon_tests(outcomes, runs, horizon=4)
        assert list(looks["look"]) == [1, 2, 3, 4] and looks["decided"].iloc[-1]
        detected.append(bool(looks["detected"].iloc[-1]))
        last_p.append(looks["p_value"].iloc[-1])
        # the same looks against Pocock's boundaries (a design stated up front instead)
        pocock.append(bool((looks["z"].abs() >= boundaries(4, spending="pocock")).any()))
    assert np.mean(detected) <= 0.09  # 5 % expected; 0.09 is > 3 standard errors above it
    assert np.mean(pocock) <= 0.09
    assert np.mean(np.array(last_p) < 0.5) == pytest.approx(0.5, abs=0.1)


@pytest.mark.slow
def test_the_adjusted_estimator_is_unbiased_and_narrower_with_a_predictive_covariate():
    rng = np.random.default_rng(5)
    plain, adjusted, widths = [], [], []
    for _ in range(40):
        outcomes, runs, true = synthetic_log(
            rng, runs=1, customers=3_000, gain=0.02, predictive=True
        )
        (a,) = incremental_profit_tests(outcomes, runs).to_dict("records")
        (b,) = incremental_profit_tests(outcomes, runs, adjust=True).to_dict("records")
        plain.append(a["difference"])
        adjusted.append(b["difference"])
        widths.append((b["high"] - b["low"]) / (a["high"] - a["low"]))
    spread = np.std(adjusted, ddof=1) / np.sqrt(len(adjusted))
    assert abs(np.mean(adjusted) - true) < 3 * spread  # unbiased
    assert np.std(adjusted) < np.std(plain)  # and really less variable, not only narrower
    # a binary outcome: f explains Var(p₀) of Var(R) = E[p₀](1 − E[p₀]), here 0.0153 of
    # 0.122 (beta(1, 6) baselines), so the width shrinks by √(1 − 0.125) ≈ 0.94 at most
    assert 0.85 < np.median(widths) < 0.97


def test_the_adjusted_cell_total_is_the_difference_estimator():
    outcomes = pd.DataFrame(
        {
            "run_key": "r", "campaign_id": "c", "customer_id": [1, 2, 3, 4, 5, 6],
            "test_group": "champion", "treated": [True, True, True, True, False, False],
            "responded": [True, True, False, False, True, False],
            "baseline_prediction": [0.5, 0.1, 0.2, 0.0, 0.4, 0.2],
        }
    )  # fmt: skip
    economics = pd.DataFrame(
        {"run_key": ["r"], "campaign_id": ["c"], "margin_per_response": [100.0],
         "cost_per_contact": [1.0]}
    )  # fmt: skip
    profit, _, _ = customer_profit(outcomes, economics, adjust=True)
    # Σ_T f = 0.8; mean_C(R − f) = ((1 − 0.4) + (0 − 0.2)) / 2 = 0.2; baseline 0.8 + 4 × 0.2
    assert profit["profit"].sum() == pytest.approx(100 * (2 - 1.6) - 4 * 1.0)
    no_prediction = outcomes.assign(baseline_prediction=np.nan)
    same, _, _ = customer_profit(no_prediction, economics, adjust=True)
    plain, _, _ = customer_profit(outcomes, economics)
    assert same["profit"].to_numpy() == pytest.approx(plain["profit"].to_numpy())
    with pytest.raises(ValueError, match="baseline_prediction"):
        customer_profit(outcomes.drop(columns="baseline_prediction"), economics, adjust=True)


CAMPAIGNS = [
    campaign("card_email", "credit_card", "email", volume_cap=300.0, control_share=0.2),
    campaign("loan_call", "personal_loan", "call_centre", cost_per_contact=2.0, volume_cap=150.0),
]


def a_a_replay(frame, score_frame, *, salt: str, runs: int, seed: int):
    """An A/A experiment run ``runs`` times a week apart by the real targeting (fresh
    control draws each date), every decided row answered from the scores as the truth."""
    item = Experiment(
        experiment_id="aa", salt=salt, start=DAY, end=DAY + timedelta(days=7 * runs),
        arms=(Arm("champion", 0.5, TargetingVariant(exploration=False)),
              Arm("challenger", 0.5, TargetingVariant(exploration=False))),
        description="", file="aa.yaml", content_hash="0" * 12, horizon=runs,
    )  # fmt: skip
    rng = np.random.default_rng(seed)
    position_of = pd.Index(frame["customer_id"])
    outcomes, arms, economics = [], [], []
    for run in range(runs):
        day = DAY + timedelta(days=7 * run)
        result = target(
            CAMPAIGNS, frame, score_frame, history(frame, {}), caps=[], decline_limit=None,
            settings=TargetingSettings(decision_date=day, exploration_share=0.0),
            strategy_hash="s", model_versions={}, fingerprint={"seed": seed, "run": run},
            experiment=item,
        )  # fmt: skip
        rows = result.targets
        position = position_of.get_indexer(rows["customer_id"])
        treated = (rows["group"] == "treated").to_numpy()
        p = np.empty(len(rows))
        for item_campaign in CAMPAIGNS:
            mine = (rows["campaign_id"] == item_campaign.campaign_id).to_numpy()
            pair = f"{item_campaign.offer}__{item_campaign.channel}"
            p_treated = score_frame[f"propensity__{pair}"].to_numpy()[position[mine]]
            p_control = p_treated - score_frame[f"uplift__{pair}"].to_numpy()[position[mine]]
            p[mine] = np.where(treated[mine], p_treated, np.clip(p_control, 0, 1))
        outcomes.append(rows.assign(treated=treated, responded=rng.uniform(size=len(p)) < p))
        block = result.summary["experiment"]
        arms += [{"run_key": result.run_key, "test_group": a, "customers": n}
                 for a, n in block["customers"].items()]  # fmt: skip
        economics += [{"run_key": result.run_key, "campaign_id": name, **money}
                      for name, money in block["economics"].items()]  # fmt: skip
    return pd.concat(outcomes), ExperimentRuns("aa", pd.DataFrame(arms), pd.DataFrame(economics))


@pytest.mark.slow
def test_real_targeting_a_a_replays_over_four_runs_reject_at_their_level():
    frame = population(1_200, seed=4)[["customer_id", "age"]]
    score_frame = scores(frame, seed=4)
    detected, crossed_first = [], []
    for seed in range(80):
        outcomes, runs = a_a_replay(frame, score_frame, salt=f"aa{seed}", runs=4, seed=seed)
        assert runs.arm_customers["run_key"].nunique() == 4  # fresh runs, one per date
        looks = horizon_tests(outcomes, runs, horizon=4)
        detected.append(bool(looks["detected"].iloc[-1]))
        crossed_first.append(bool(looks["crossed"].iloc[0]))
    assert np.mean(detected) <= 0.125  # 5 % expected; 0.125 is 3 standard errors above
    assert np.mean(crossed_first) <= 0.03  # the first look spends almost nothing


def test_pocock_boundaries_are_the_published_ones_and_hold_the_level():
    # Lan-DeMets Pocock-type spending, 5 equally spaced looks, two-sided 0.05
    # (R gsDesign sfLDPocock: 2.438, 2.427, 2.410, 2.397, 2.386)
    five = boundaries(5, spending="pocock")
    assert five == pytest.approx([2.438, 2.427, 2.410, 2.397, 2.386], abs=2e-3)
    assert spent(1.0, 0.05, "pocock") == pytest.approx(0.05)
    assert boundaries(1, spending="pocock") == pytest.approx([1.95996], abs=1e-4)
    rng = np.random.default_rng(1)
    paths = np.cumsum(rng.standard_normal((400_000, 6)), axis=1) / np.sqrt(np.arange(1, 7))
    crossed = (np.abs(paths) >= boundaries(6, spending="pocock")).any(axis=1).mean()
    assert crossed == pytest.approx(0.05, abs=0.002)
    # early looks are far easier to cross than O'Brien-Fleming's, the last one harder
    assert boundaries(6, spending="pocock")[0] < 2.5 < boundaries(6)[0]
    assert boundaries(6, spending="pocock")[-1] > boundaries(6)[-1]


def test_an_unknown_spending_function_is_refused():
    with pytest.raises(HorizonError, match="spending must be one of obrien_fleming, pocock"):
        boundaries(6, spending="haybittle")


def test_an_experiment_file_states_its_spending_and_control_share_with_file_and_line(tmp_path):
    text = (
        "experiment_id: e\nstart: 2026-10-01\nend: 2026-12-31\n{horizon}spending: {spending}\n"
        "control_share: {share}\narms:\n  champion: {{share: 0.5}}\n  challenger: {{share: 0.5}}\n"
    )
    good = tmp_path / "good.yaml"
    good.write_text(text.format(horizon="horizon: 6\n", spending="pocock", share=0.4))
    experiment, errors = check_experiment_file(good)
    assert errors == []
    assert (experiment.spending, experiment.control_share) == ("pocock", 0.4)
    described = experiment.describe()  # recorded in the exports' manifests
    assert (described["spending"], described["control_share"]) == ("pocock", 0.4)
    for horizon, spending, share, line, message in [
        ("horizon: 6\n", "sequential", 0.4, 5, "spending must be one of obrien_fleming, pocock"),
        ("", "pocock", 0.4, 4, "spending needs a horizon"),
        ("horizon: 6\n", "pocock", 0.95, 6, "control_share must be in (0, 0.9]"),
        ("horizon: 6\n", "pocock", "lots", 6, "control_share must be in (0, 0.9]"),
    ]:
        bad = tmp_path / "bad.yaml"
        bad.write_text(text.format(horizon=horizon, spending=spending, share=share))
        experiment, errors = check_experiment_file(bad)
        assert experiment is None
        assert [(e.file, e.line) for e in errors] == [("bad.yaml", line)]
        assert message in errors[0].message


def test_an_experiment_control_share_holds_out_that_share_of_every_arm_within_its_caps():
    frame = population(3_000)
    arms = (Arm("champion", 0.5, TargetingVariant()), Arm("challenger", 0.5, TargetingVariant()))
    experiment = Experiment(
        "e", "e", DAY - timedelta(days=1), DAY + timedelta(days=30), arms, "", "e.yaml", "h",
        horizon=3, control_share=0.4,
    )  # fmt: skip
    campaigns = [campaign("a", "credit_card", "email", volume_cap=600, control_share=0.1)]
    plain = replace(experiment, control_share=None)
    results = {
        name: run_targeting(frame, scores(frame), history(frame, {}), campaigns,
                            experiment=design, exploration_share=0.0).targets
        for name, design in (("stated", experiment), ("campaign's", plain))
    }  # fmt: skip
    for arm in ("champion", "challenger"):
        stated = results["stated"][results["stated"]["test_group"] == arm]
        own = results["campaign's"][results["campaign's"]["test_group"] == arm]
        # the same treated capacity (the arm's cap), more decided rows held out around it
        assert 270 <= (stated["group"] == "treated").sum() <= 300
        assert 270 <= (own["group"] == "treated").sum() <= 300
        assert (stated["group"] == "control").mean() == pytest.approx(0.4, abs=0.06)
        assert (own["group"] == "control").mean() == pytest.approx(0.1, abs=0.04)
        treated = stated["group"] == "treated"
        assert stated.loc[treated, "selection_probability"].lt(0.61).all()
