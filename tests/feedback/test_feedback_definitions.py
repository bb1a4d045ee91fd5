"""The inbox sensor on a real Dagster instance, and interaction_results run through Dagster."""

from __future__ import annotations

import json
import os
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pytest
from decision_logs import decisions, drop, results_for, write_export

from cx_pipelines import config, warehouse
from cx_pipelines.definitions import defs
from cx_pipelines.defs.feedback.sensors import FILES_TAG, inbox_sensor


@pytest.fixture
def instance(cx_home: Path):
    config.ensure_dagster_home()
    with dg.DagsterInstance.get() as instance:
        yield instance


def evaluate(instance: dg.DagsterInstance, cursor: str | None) -> dg.SensorResult:
    context = dg.build_sensor_context(instance=instance, cursor=cursor, definitions=defs)
    return inbox_sensor(context)


def test_the_sensor_requests_a_run_for_new_files_and_ignores_seen_ones(
    cx_home: Path, instance: dg.DagsterInstance
) -> None:
    decided = decisions(10, seed=1)
    assert not evaluate(instance, None).run_requests  # no inbox yet

    drop(cx_home, "a.parquet", results_for(decided).iloc[:5])
    drop(cx_home, "b.csv", results_for(decided).iloc[5:])
    (cx_home / "inbox" / ".c.parquet.tmp").write_bytes(b"still being written")
    first = evaluate(instance, None)
    assert len(first.run_requests) == 1
    assert first.run_requests[0].tags[FILES_TAG] == "a.parquet, b.csv"
    assert len(json.loads(first.cursor)) == 2

    again = evaluate(instance, first.cursor)
    assert not again.run_requests and again.cursor == first.cursor

    drop(cx_home, "c.parquet", results_for(decided).iloc[:2])
    third = evaluate(instance, again.cursor)
    assert third.run_requests[0].tags[FILES_TAG] == "c.parquet"
    assert third.run_requests[0].run_key != first.run_requests[0].run_key

    replaced = cx_home / "inbox" / "a.parquet"
    results_for(decided).to_parquet(replaced)  # same name, new content
    stamp = replaced.stat().st_mtime_ns + 5_000_000_000
    os.utime(replaced, ns=(stamp, stamp))
    fourth = evaluate(instance, third.cursor)
    assert fourth.run_requests[0].tags[FILES_TAG] == "a.parquet"


def test_a_sensor_run_matches_files_moves_them_and_the_checks_pass(
    cx_home: Path, instance: dg.DagsterInstance
) -> None:
    decided = decisions(25, seed=2)
    write_export(cx_home, decided)
    results = results_for(decided)
    results.loc[0, "contact_id"] = "nobody"
    drop(cx_home, "week.csv", results)
    drop(cx_home, "again.parquet", results_for(decided).iloc[10:])
    (cx_home / "inbox" / "torn.parquet").write_bytes(b"PAR1 cut short")
    request = evaluate(instance, None).run_requests[0]

    job = defs.resolve_job_def("interaction_results_job")
    result = job.execute_in_process(
        instance=instance, run_config=request.run_config, tags=request.tags
    )

    assert result.success  # an unreadable file warns, it does not stop the run
    checks = {event.check_name: event.passed for event in result.get_asset_check_evaluations()}
    assert checks == {
        "results_reconcile_with_inputs": True,
        "contact_id_is_unique": True,
        "inbox_files_are_readable": False,
        "cube_counts_every_result": True,
    }
    assert (cx_home / "inbox" / "rejected" / "torn.parquet").exists()
    materialization = next(
        event.materialization
        for event in result.get_asset_materialization_events()
        if event.materialization.asset_key == dg.AssetKey("interaction_results")
    )
    metadata = {name: value.value for name, value in materialization.metadata.items()}
    assert metadata["rows_in"] == 25 + 15
    assert (metadata["rows_matched"], metadata["rows_quarantined"]) == (24, 1)
    assert metadata["rows_duplicate"] == 15
    assert metadata["dagster/row_count"] == 24
    assert sorted(metadata["processed_files"]) == ["again.parquet", "week.csv"]
    assert sorted(p.name for p in (cx_home / "inbox" / "processed").iterdir()) == [
        "again.parquet",
        "week.csv",
    ]
    assert "interaction_results" in warehouse.query("SHOW TABLES")["name"].tolist()
    assert not evaluate(instance, evaluate(instance, None).cursor).run_requests


def test_strategy_performance_reports_the_cube_plots_and_the_challenger_test(
    cx_home: Path, instance: dg.DagsterInstance
) -> None:
    rng = np.random.default_rng(40)  # not the stream that drew the control group
    decided = decisions(3_000, seed=4, control_share=0.3)
    groups = np.where(rng.random(len(decided)) < 0.8, "champion", "challenger_1")
    warehouse.write_table(
        "customer_decisions",
        pd.DataFrame(
            {"customer_id": decided["customer_id"], "segment": "mass_market", "test_group": groups}
        ),
    )
    write_export(cx_home, decided)
    treated = (decided["group"] == "treated").to_numpy()
    rate = np.where(treated, np.where(groups == "challenger_1", 0.30, 0.15), 0.05)
    drop(cx_home, "all.parquet", results_for(decided, responded=rng.random(len(decided)) < rate))

    result = defs.resolve_job_def("interaction_results_job").execute_in_process(instance=instance)

    assert result.success
    assert all(event.passed for event in result.get_asset_check_evaluations())
    metadata = {
        name: value.value
        for event in result.get_asset_materialization_events()
        if event.materialization.asset_key == dg.AssetKey("strategy_performance")
        for name, value in event.materialization.metadata.items()
    }
    assert metadata["plots"].count("data:image/png;base64,") == 2
    assert "challenger_1" in metadata["champion_vs_challenger"]
    lift = metadata["incremental_response_rate"]
    assert lift["low"] < lift["estimate"] < lift["high"] and lift["low"] > 0
    by_group = warehouse.query(
        "SELECT test_group, incremental_response_rate AS lift FROM strategy_performance "
        "WHERE grain = 'test_group' ORDER BY test_group"
    )
    assert by_group["test_group"].tolist() == ["challenger_1", "champion"]
    assert by_group["lift"].iloc[0] > by_group["lift"].iloc[1] > 0


def test_the_cube_charges_each_campaign_the_contact_cost_of_its_file(
    cx_home: Path, instance: dg.DagsterInstance
) -> None:
    decided = decisions(400, seed=5, control_share=0.5)
    write_export(cx_home, decided)
    warehouse.write_table(
        "campaign_catalog",
        pd.DataFrame(
            {
                "campaign_id": ["spring_savings", "broken"],
                "valid": [True, False],
                "cost_per_contact": [2.5, np.nan],
            }
        ),
    )
    drop(cx_home, "all.parquet", results_for(decided))

    result = defs.resolve_job_def("interaction_results_job").execute_in_process(instance=instance)

    assert result.success
    [materialization] = [
        event.materialization
        for event in result.get_asset_materialization_events()
        if event.materialization.asset_key == dg.AssetKey("strategy_performance")
    ]
    assert materialization.metadata["contact_costs"].value == {"spring_savings": 2.5}
    total = warehouse.query(
        "SELECT contact_cost, treated_contacts FROM strategy_performance WHERE grain = '(all)'"
    )
    assert total["contact_cost"].iloc[0] == 2.5 * total["treated_contacts"].iloc[0] > 0
