"""The whole loop on a small world, through Dagster: decide, export, answer, ingest, report,
measure against the truth, retrain through the gate, decide again."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from cx_pipelines import config, warehouse
from cx_pipelines.cli import main
from cx_pipelines.loop.cycle import LoopSettings, export_runs_on, prepare, run_loop
from cx_pipelines.ml import registry
from cx_pipelines.ml.specs import load_spec
from cx_pipelines.world import generate_world, simulator

CYCLES = 2


@pytest.fixture(scope="module")
def looped(tmp_path_factory: pytest.TempPathFactory):
    """A 2,000-customer world looped twice; the report and the home it ran in."""
    home = tmp_path_factory.mktemp("closed-loop") / "cx"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CX_HOME", str(home))
        patch.setenv("DAGSTER_HOME", str(home / "dagster"))
        patch.delenv("CX_SOURCE_URL", raising=False)
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)
        patch.delenv("CX_DECISION_DATE", raising=False)
        generate_world(customers=2_000, seed=3, source_url=config.source_url())
        prepare()
        report = run_loop(LoopSettings(cycles=CYCLES, seed=5), progress=False)
        yield report, home


@pytest.mark.slow
def test_every_cycle_decides_answers_and_is_measured(looped):
    report, _ = looped
    table = report.table()
    assert list(table["cycle"]) == [1, 2]
    assert list(table["decision_date"]) == ["2026-10-01", "2026-10-08"]
    assert (table["contacts"] > 0).all() and (table["controls"] > 0).all()
    for row in table.itertuples():
        # the oracle maximises the true value under the same caps and control groups
        best_other = max(row.incremental_profit, row.random_profit, row.propensity_profit)
        assert row.oracle_profit >= best_other - 1e-6 * abs(row.oracle_profit)
        # and the hold-out costs every policy: without it the oracle does better still
        best = row.oracle_profit_without_controls
        others = (row.random_profit_without_controls, row.propensity_profit_without_controls)
        assert best > max(row.oracle_profit, *others)
        assert row.oracle_share_without_controls < row.oracle_share
        assert row.regret == pytest.approx(row.oracle_profit - row.incremental_profit)
        # where it lies: the decomposition's parts add up to the same regret
        split = row.regret_breakdown
        assert split["regret"] == pytest.approx(row.regret, abs=0.01)
        by_campaign = sum(part["regret"] for part in split["by_campaign"].values())
        assert by_campaign == pytest.approx(row.regret, abs=0.1)
        assert 0 <= row.response_rate <= 1 and 0 <= row.control_response_rate <= 1


@pytest.mark.slow
def test_every_decided_row_comes_back_matched_exactly_once(looped):
    report, home = looped
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CX_HOME", str(home))
        results = warehouse.read_table("interaction_results")
        decided = 0
        for cycle in report.cycles:
            runs = export_runs_on(date.fromisoformat(cycle.decision_date))
            decided += sum(len(pd.read_parquet(run / "decisions.parquet")) for run in runs)
    assert len(results) == decided
    assert not results["contact_id"].duplicated().any()
    assert set(results["group"]) == {"treated", "control"}
    assert (results["contacted_at"] > pd.Timestamp("2026-09-30 23:59:59")).all()
    assert not list((home / "inbox").glob("*.parquet")), "every answer file was ingested"


@pytest.mark.slow
def test_answering_an_export_again_writes_the_same_file(looped, tmp_path):
    _, home = looped
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CX_HOME", str(home))
        run = export_runs_on(date(2026, 10, 1))[0]
        truth = simulator.WorldTruth.load()
        first = simulator.respond(run, seed=5, truth=truth, inbox=tmp_path / "a")
        again = simulator.respond(run, seed=5, truth=truth, inbox=tmp_path / "b")
    assert first.read_bytes() == again.read_bytes()


def _versions(name: str, uri: str) -> list:
    return registry.client(uri).search_model_versions(f"name='{name}'")


@pytest.mark.slow
def test_results_retrain_the_models_and_only_the_gate_changes_champions(looped):
    report, home = looped
    assert all(cycle.retrained for cycle in report.cycles)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CX_HOME", str(home))
        uri = config.mlflow_tracking_uri()
        for spec_name in ("propensity", "uplift"):
            name = load_spec(spec_name).registered_name
            versions = _versions(name, uri)
            assert len(versions) == 1 + CYCLES, "one version per training run"
            champion = registry.version_for_alias(name, registry.CHAMPION, tracking_uri=uri)
            promoted = {str(v.version) for v in versions if v.tags.get("promotion") == "promoted"}
            rejected = {str(v.version) for v in versions if v.tags.get("promotion") == "rejected"}
            assert champion in promoted, "the champion is a version the gate promoted"
            assert champion not in rejected
            # the champion is the latest version the gate promoted, never a later loser
            assert int(champion) == max(int(version) for version in promoted)


@pytest.mark.slow
def test_candidate_campaigns_are_evaluated_off_policy_from_the_cli(looped, capsys):
    _, home = looped
    folder = Path(__file__).parents[2] / "strategies" / "campaigns"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CX_HOME", str(home))
        patch.setenv("DAGSTER_HOME", str(home / "dagster"))
        assert main(["strategy", "evaluate", str(folder)]) == 0
        out = capsys.readouterr().out
        assert "on logged run 2026-10-08-" in out
        for name in ("ips", "snips", "doubly_robust"):
            assert name in out
        assert main(["strategy", "evaluate", str(folder / "missing.yaml")]) == 1
        assert "no such campaign file or folder" in capsys.readouterr().err


@pytest.mark.slow
def test_policy_evaluation_asset_estimates_the_deployed_campaigns(looped):
    from cx_pipelines.defs.runs import materialize

    _, home = looped
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CX_HOME", str(home))
        patch.setenv("DAGSTER_HOME", str(home / "dagster"))
        result = materialize("key:policy_evaluation")
        assert result.success
        table = warehouse.read_table("policy_evaluation")
    assert sorted(table["estimator"]) == ["doubly_robust", "ips", "snips"]
    assert (table["low"] <= table["value"]).all() and (table["value"] <= table["high"]).all()
    assert set(table["run_key"]) == {table["run_key"].iloc[0]}
    assert table["run_key"].iloc[0].startswith("2026-10-08-")


def test_policy_evaluation_without_a_log_says_why(cx_home):
    from cx_pipelines.defs.runs import materialize

    result = materialize("key:policy_evaluation")
    assert result.success
    event = result.get_asset_materialization_events()[0]
    metadata = event.step_materialization_data.materialization.metadata
    assert metadata["evaluated"].value is False
    assert "no decision log yet" in metadata["reason"].value
    assert warehouse.read_table("policy_evaluation").empty


@pytest.mark.slow
def test_scores_are_for_the_decision_date_and_count_the_fatigue_the_world_sees(looped):
    from cx_pipelines.defs.runs import materialize
    from cx_pipelines.ml.training_data import RECENCY_FEATURE

    report, home = looped
    last = pd.Timestamp(report.cycles[-1].decision_date)
    scored = {}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CX_HOME", str(home))
        patch.setenv("DAGSTER_HOME", str(home / "dagster"))
        for days in (7, 60):
            day = last + pd.Timedelta(days=days)
            patch.setenv("CX_DECISION_DATE", day.date().isoformat())
            assert materialize("key:customer_scores").success
            scored[days] = warehouse.read_table("customer_scores").set_index("customer_id")
        champion = registry.load_model(
            "cx_propensity",
            registry.version_for_alias("cx_propensity", registry.CHAMPION),
        )
    assert RECENCY_FEATURE in champion.features
    soon, later = scored[7], scored[60]
    # The platform's count is the simulator's fatigue count from the decision log.
    world = simulator.recent_contacts(
        soon.index.to_numpy(),
        pd.Series(last + pd.Timedelta(days=7), index=range(len(soon))),
        exports_dir=home / "exports",
        exclude_run_key="",
    )
    assert soon[RECENCY_FEATURE].to_numpy().tolist() == world.tolist()
    assert soon[RECENCY_FEATURE].sum() > 0 and later[RECENCY_FEATURE].sum() == 0
    # Scores depend on the date only through the pressure: unchanged pressure, same score.
    same = soon[RECENCY_FEATURE] == later[RECENCY_FEATURE]
    columns = [c for c in soon.columns if c.startswith(("propensity__", "uplift__"))]
    pd.testing.assert_frame_equal(soon.loc[same, columns], later.loc[same, columns])
