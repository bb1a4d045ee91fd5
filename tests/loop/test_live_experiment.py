"""The loop run as a live split test with a planted challenger arm, through Dagster: every
decided row and outcome carries its arm, the arms reconcile, the platform's test of
incremental profit is reported in strategy_performance, and the truth is printed beside it."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from cx_pipelines import config, warehouse
from cx_pipelines.loop import live_experiment
from cx_pipelines.loop.cycle import LoopSettings, prepare, run_loop
from cx_pipelines.world import generate_world


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory):
    """A 2,000-customer world looped twice with a planted challenger arm of half the book."""
    home = tmp_path_factory.mktemp("live-experiment") / "cx"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CX_HOME", str(home))
        patch.setenv("DAGSTER_HOME", str(home / "dagster"))
        for name in ("CX_SOURCE_URL", "MLFLOW_TRACKING_URI", "CX_DECISION_DATE"):
            patch.delenv(name, raising=False)
        generate_world(customers=2_000, seed=3, source_url=config.source_url())
        prepare()
        settings = LoopSettings(cycles=2, seed=5, challenger="true_uplift", challenger_share=0.5)
        report = run_loop(settings, progress=False)
        decisions = pd.concat(
            pd.read_parquet(path) for path in config.exports_dir().glob("*/*/decisions.parquet")
        )
        results = warehouse.read_table("interaction_results")
        with dg.DagsterInstance.get() as instance:
            event = instance.get_latest_materialization_event(dg.AssetKey("strategy_performance"))
        metadata = {k: v.value for k, v in event.asset_materialization.metadata.items()}
        yield report, decisions, results, metadata, home


@pytest.mark.slow
def test_every_decided_row_and_outcome_carries_its_arm_and_the_arms_reconcile(planted):
    report, decisions, results, _, home = planted
    assert set(decisions["test_group"]) == {"champion", "challenger"}
    by_contact = decisions.set_index(decisions["contact_id"].astype(str))["test_group"]
    assert (results["test_group"].to_numpy() == by_contact[results["contact_id"]].to_numpy()).all()
    assert len(results) == len(decisions)  # every decided row came back, once
    for figures in report.experiment:
        assert sum(figures.customers.values()) > 0
        assert set(figures.treated) == {"champion", "challenger"}
    manifests = [
        json.loads(path.read_text()) for path in config.exports_dir().glob("*/*/manifest.json")
    ]
    assert all(m["experiment"]["experiment_id"] == "planted_challenger" for m in manifests)
    assert (home / "experiments" / live_experiment.SCORES_FILE).exists()


@pytest.mark.slow
def test_the_planted_challenger_is_truly_better_and_the_test_is_reported(planted):
    report, _, _, metadata, _ = planted
    assert len(report.experiment) == 2
    # the horizon (the loop's 2 cycles) is stated up front; each cycle is a look against
    # its group-sequential boundary, detected from the first look that crosses
    assert [figures.horizon for figures in report.experiment] == [2, 2]
    assert [round(figures.boundary, 2) for figures in report.experiment] == [2.96, 1.97]
    first_crossing = None
    for figures in report.experiment:
        assert figures.true_difference > 0  # the truth's own targeting, within its share
        assert figures.low <= figures.measured_difference <= figures.high
        assert 0 <= figures.p_value <= 1
        if first_crossing is None and abs(figures.z) >= figures.boundary:
            first_crossing = figures.measured_difference
        assert figures.detected == (first_crossing is not None and first_crossing > 0)
    (test,) = metadata["experiment_tests"]
    assert test["challenger"] == "challenger" and test["runs"] == 2
    assert test["difference"] == pytest.approx(report.experiment[-1].measured_difference)
    assert "p_value" in metadata["experiment_incremental_profit"]
    # strategy_performance judges every look against the stated horizon's boundary, as the
    # loop does (not the nominal p < 0.05 of each look)
    looks = metadata["experiment_looks"]
    assert [look["look"] for look in looks] == [1, 2]
    assert [look["horizon"] for look in looks] == [2, 2]
    for look, figures in zip(looks, report.experiment, strict=True):
        assert look["boundary"] == pytest.approx(figures.boundary)
        assert look["z"] == pytest.approx(figures.z)
        assert look["crossed"] == (abs(figures.z) >= figures.boundary)
    assert [look["detected"] for look in looks] == [
        any(earlier["crossed"] for earlier in looks[: k + 1]) for k in range(len(looks))
    ]
    assert "boundary" in metadata["experiment_sequential"]


def test_the_planted_experiment_states_its_design_before_the_first_decision(tmp_path):
    from datetime import date

    from cx_pipelines.campaigns.experiment import check_experiment_file
    from cx_pipelines.feedback.experiments import experiment_runs

    path = live_experiment.write_experiment(
        tmp_path, challenger="true_uplift", share=0.5, start=date(2026, 10, 1),
        end=date(2026, 11, 5), horizon=6, control_share=0.4, spending="pocock",
    )  # fmt: skip
    experiment, errors = check_experiment_file(path)
    assert errors == []
    assert (experiment.horizon, experiment.spending, experiment.control_share) == (6, "pocock", 0.4)
    # the manifests record the design, and the test reads it back from them
    exports = tmp_path / "exports"
    for key in ("2026-10-01-a", "2026-10-08-b"):
        manifest = exports / "campaign" / key / "manifest.json"
        manifest.parent.mkdir(parents=True)
        block = experiment.describe() | {
            "customers": {"champion": 10, "challenger": 10},
            "economics": {"campaign": {"margin_per_response": 1.0, "cost_per_contact": 0.1}},
        }
        manifest.write_text(json.dumps({"run_key": key, "experiment": block}))
    runs = experiment_runs(exports)[live_experiment.EXPERIMENT_ID]
    assert (runs.horizon, runs.spending) == (6, "pocock")
    plain = live_experiment.write_experiment(
        tmp_path / "plain", challenger="same", share=0.5, start=date(2026, 10, 1),
        end=date(2026, 11, 5), horizon=6,
    )  # fmt: skip
    experiment, _ = check_experiment_file(plain)
    assert (experiment.spending, experiment.control_share) == (None, None)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"control_share": 0.95}, "experiment control share must be in"),
        ({"spending": "haybittle"}, "spending must be one of obrien_fleming, pocock"),
        ({"horizon": 0}, "experiment horizon must be a positive number of runs, got 0"),
        ({"horizon": 1.5}, "experiment horizon must be a positive number of runs, got 1.5"),
    ],
)
def test_a_loop_design_out_of_range_is_refused_before_any_cycle(changes, message):
    with pytest.raises(live_experiment.ExperimentSettingsError, match=message):
        live_experiment.check_settings("true_uplift", 0.5, **changes)


def experiment_tests_module():
    root = Path(__file__).resolve().parents[2] / "benchmarks"
    sys.path.insert(0, str(root))
    try:
        import experiment_tests
    finally:
        sys.path.remove(str(root))
    return experiment_tests


@pytest.mark.slow
def test_the_planted_arm_earns_its_own_oracle_and_replays_measure_power_and_a_a(planted):
    report, decisions, _, _, home = planted
    tools = experiment_tests_module()
    arms = tools.arm_yardsticks(home)
    assert len(arms) == 4  # 2 runs x 2 arms
    for row in arms:
        treated = decisions[
            (decisions["run_key"] == row["run_key"])
            & (decisions["test_group"] == row["arm"])
            & (decisions["group"] == "treated")
        ]
        assert row["treated"] == len(treated)
        if row["arm"] == "challenger":  # it targets on the truth, without exploration
            assert row["share_of_oracle_with_hold_out"] > 0.85  # the hold-out is random
        assert row["oracle_with_hold_out_per_customer"] <= row["oracle_per_customer"] + 1e-9
    first = [row for row in arms if row["run_key"] == min(r["run_key"] for r in arms)]
    assert all(row["fatigue_loss_per_customer"] == 0 for row in first)  # no contacts before
    truth = [figures.as_row() for figures in report.experiment]
    figures = tools.replays(home, 4, truth=truth, seed=3)
    assert figures["looks"] == 2 and figures["a_a_replays"] == 8
    for table in (figures["power_by_look"], figures["a_a_rejection_by_look"]):
        assert set(table) == {"obrien_fleming", "pocock"}
        for by_estimator in table.values():
            assert set(by_estimator) == set(tools.ESTIMATORS)
            for by_look in by_estimator.values():
                assert len(by_look) == 2 and 0 <= by_look[0] <= by_look[1] <= 1  # by look k
    # the stated design (two looks, O'Brien-Fleming) is one of the designs compared
    stated = figures["power_by_design"]["obrien_fleming horizon 2"]
    assert stated == {name: v[-1] for name, v in figures["power_by_look"]["obrien_fleming"].items()}
    assert set(figures["power_by_design"]) == {
        f"{spending} horizon {length}"
        for spending in ("obrien_fleming", "pocock")
        for length in (1, 2)
    }
    floor = figures["treated_noise_floor_by_look"]
    assert 0 < floor[0] < floor[1]  # the second look adds the second run's treated noise
    assert all(
        f < se for f, se in zip(floor, figures["mean_standard_error_by_look"]["plain"], strict=True)
    )


def test_a_look_detects_from_the_first_crossing_with_the_true_sign():
    tools = experiment_tests_module()
    z = np.array([[3.0, 0.5], [0.5, 2.5], [-3.0, 3.0], [1.0, 1.0]])
    difference = np.sign(z) * 0.1
    bounds = tools.boundaries(2, spending="pocock")  # 2.16, 2.20
    assert bounds[0] < 2.5 < 3.0
    signed = tools.detected_by_look(z, difference, 2, "pocock", np.array([1.0, 1.0]))
    # row 3 crossed first with the wrong sign: not detected, even when look 2 crosses
    assert signed.tolist() == [[True, True], [False, True], [False, False], [False, False]]
    unsigned = tools.detected_by_look(z, difference, 2, "pocock", None)
    assert unsigned[:, -1].tolist() == [True, True, True, False]
    # a one-look design judges look 1 alone, at 1.96
    assert tools.detected_by_look(z, difference, 1, "pocock", None)[:, 0].tolist() == [
        True, False, True, False
    ]  # fmt: skip


def test_the_treated_noise_floor_is_the_treated_outcomes_binomial_spread():
    from cx_pipelines.feedback.experiments import ExperimentRuns

    tools = experiment_tests_module()
    rows = pd.DataFrame(
        {
            "run_key": ["r1", "r1", "r1", "r2"],
            "campaign_id": ["a", "a", "a", "a"],
            "customer_id": ["c1", "c2", "c3", "c1"],
            "test_group": ["champion", "champion", "challenger", "challenger"],
            "treated": [True, False, True, True],
            "treated_probability": [0.5, 0.3, 0.1, 0.25],
            "control_probability": [0.4, 0.2, 0.05, 0.2],
        }
    )
    runs = ExperimentRuns(
        "x",
        pd.DataFrame(
            {"run_key": ["r1", "r1", "r2", "r2"], "test_group": ["champion", "challenger"] * 2,
             "customers": [2, 4, 2, 5]}
        ),
        pd.DataFrame(
            {"run_key": ["r1", "r2"], "campaign_id": ["a", "a"],
             "margin_per_response": [10.0, 20.0], "cost_per_contact": [1.0, 1.0]}
        ),
    )  # fmt: skip
    first, second = tools.treated_noise_floor(rows, runs, ["r1", "r2"])
    assert first == pytest.approx(np.sqrt(100 * 0.25 / 4 + 100 * 0.09 / 16))  # controls: none
    assert second == pytest.approx(np.sqrt(100 * 0.25 / 4 + (100 * 0.09 + 400 * 0.1875) / 25))


def test_a_replay_draws_the_control_group_again_with_each_cells_share():
    tools = experiment_tests_module()
    cells = [("champion", 0.25), ("challenger", 0.6)]
    rows = pd.concat(
        pd.DataFrame(
            {
                "run_key": "r1",
                "campaign_id": "a",
                "customer_id": [f"{arm}{i}" for i in range(4000)],
                "test_group": arm,
                "treated": np.arange(4000) >= share * 4000,
                "treated_probability": 1.0,
                "control_probability": 0.0,
            }
        )  # fmt: skip
        for arm, share in cells
    )
    rng = np.random.default_rng(7)
    kept = tools.redraw(rows, rng, controls=False)
    assert (kept["treated"] == rows["treated"]).all() and (
        kept["responded"] == kept["treated"]
    ).all()
    again = tools.redraw(rows, rng, controls=True)
    assert (again["treated"] != rows["treated"]).any()
    for arm, share in cells:
        held = 1 - again.loc[again["test_group"] == arm, "treated"].mean()
        assert abs(held - share) < 0.03  # 4,000 draws: 4 standard errors at most
    assert (again["responded"] == again["treated"]).all()  # each answers for its group
