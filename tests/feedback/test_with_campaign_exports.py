"""Results for the real campaign exports of the shared materialised world are all matched."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from decision_logs import drop, results_for

from cx_pipelines import warehouse
from cx_pipelines.feedback import process_results
from cx_pipelines.feedback.decision_log import exports_decision_files, load_decision_log
from cx_pipelines.feedback.experiments import champion_challenger_tests
from cx_pipelines.feedback.performance import ALL, performance_cube, with_dimensions

pytestmark = pytest.mark.slow


def test_results_for_the_campaign_exports_match_and_feed_the_cube(
    materialised_world, cx_home: Path
) -> None:
    with materialised_world.environment():
        customer_decisions = warehouse.read_table("customer_decisions")
    shutil.copytree(materialised_world.home / "exports", cx_home / "exports")
    files = exports_decision_files()
    assert files, "the shared world exported no campaign"
    decided = pd.concat([pd.read_parquet(path) for path in files], ignore_index=True)
    responded = (decided["customer_id"].to_numpy() % 4 == 0) & (decided["group"] == "treated")
    results = results_for(decided, responded=responded.to_numpy())
    half = len(results) // 2
    drop(cx_home, "first.csv", results.iloc[:half])
    drop(cx_home, "second.parquet", results.iloc[half:])

    run = process_results(run_id="world-results")

    assert run.update.total("matched") == len(decided)
    assert run.update.total("quarantined") == 0
    assert len(load_decision_log().decisions) == len(decided)
    table = warehouse.read_table("interaction_results")
    assert sorted(table["contact_id"]) == sorted(decided["contact_id"].astype(str))
    frame = with_dimensions(table, load_decision_log().decisions, customer_decisions)
    assert not (frame["test_group"] == "(unknown)").any()
    cube = performance_cube(frame)
    total = cube[cube["grain"] == ALL].iloc[0]
    assert total["contacts"] == len(decided)
    assert total["control_rate"] == 0 and total["incremental_response_rate"] > 0
    low, high = total["incremental_response_rate_low"], total["incremental_response_rate_high"]
    assert low < total["incremental_response_rate"] < high
    tests = champion_challenger_tests(frame)
    assert set(tests["champion"]) <= {"champion"}
    assert np.isfinite(tests["p_value"].dropna()).all()
