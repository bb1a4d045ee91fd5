"""Kill a real subprocess (SIGKILL) in the middle of a Parquet write inside a Dagster run,
of a DuckDB catalog rebuild and of an MLflow registration; the next run clears the debris
(temporary files, a run left "in progress", a half-registered model version) and succeeds."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from cx_pipelines import config, warehouse

MARKER = "CX-FAULT-POINT"


def run_until_marker_then_kill(home: Path, script: str, *, timeout: float = 240) -> None:
    """Run ``script`` in a fresh interpreter; SIGKILL it when it prints the marker."""
    env = {**os.environ, "CX_HOME": str(home), "DAGSTER_HOME": str(home / "dagster")}
    env.pop("CX_SOURCE_URL", None)
    env.pop("MLFLOW_TRACKING_URI", None)
    process = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(script)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
        text=True,
    )
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([process.stdout], [], [], 1.0)
            if ready:
                line = process.stdout.readline()
                if MARKER in line:
                    os.kill(process.pid, signal.SIGKILL)
                    process.wait(timeout=30)
                    assert process.returncode == -signal.SIGKILL
                    return
                if not line and process.poll() is not None:
                    break
        pytest.fail(f"the subprocess never reached the fault point (exit {process.poll()})")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def temporary_files(home: Path) -> list[Path]:
    return sorted(path for path in home.rglob(".*.tmp*") if path.is_file())


def _pause_forever() -> str:
    return f"print({MARKER!r}, flush=True); time.sleep(3600)"


@pytest.mark.slow
def test_kill_during_a_parquet_write_in_a_dagster_run_then_a_clean_rerun(cx_home):
    from cx_pipelines.defs.runs import materialize
    from cx_pipelines.world import generate_world

    generate_world(customers=200, seed=3, source_url=config.source_url())
    run_until_marker_then_kill(
        cx_home,
        f"""
        import time
        from cx_pipelines import warehouse
        from cx_pipelines.defs.runs import materialize

        original = warehouse.TableWriter.write

        def write_then_hang(self, frame):
            original(self, frame)
            if self.table == "customers":
                {_pause_forever()}

        warehouse.TableWriter.write = write_then_hang
        materialize("customers")
        """,
    )
    assert temporary_files(cx_home), "the kill left no temporary file to clear"
    with dg.DagsterInstance.get() as instance:
        [killed] = instance.get_runs()
        assert killed.status == dg.DagsterRunStatus.STARTED  # "in progress" forever

    result = materialize("customers")

    assert result.success
    assert temporary_files(cx_home) == []
    assert warehouse.table_row_count("customers") == 200
    with dg.DagsterInstance.get() as instance:
        assert instance.get_run_by_id(killed.run_id).status == dg.DagsterRunStatus.FAILURE


def test_kill_during_a_catalog_rebuild_then_a_clean_rerun(cx_home):
    from cx_pipelines import recovery

    warehouse.write_table("customer_kpis", pd.DataFrame({"spend": [1.0, 2.0]}))
    run_until_marker_then_kill(
        cx_home,
        f"""
        import time
        from cx_pipelines import warehouse

        def tables_then_hang():
            {_pause_forever()}

        warehouse.list_tables = tables_then_hang
        warehouse.refresh_catalog()
        """,
    )
    assert temporary_files(cx_home), "the kill left no temporary catalog to clear"

    recovery.sweep_temporary_files()  # what the next run does first
    warehouse.write_table("segments", pd.DataFrame({"segment": ["a"]}))

    assert temporary_files(cx_home) == []
    assert warehouse.query("select sum(spend) as s from customer_kpis")["s"][0] == 3.0
    assert warehouse.query("select count(*) as n from segments")["n"][0] == 1


SETUP = """
import dataclasses
import time

import mlflow.sklearn
import numpy as np
import pandas as pd
from mlflow import MlflowClient

from cx_pipelines.ml import registry
from cx_pipelines.ml.supervised.classifier import fit_classifier
from cx_pipelines.ml.specs import load_spec
"""
REGISTER = """
spec = dataclasses.replace(
    load_spec("propensity"), name="fault_test", include=("income",), calibration="none",
    estimator_params={"max_iter": 5},
)
rng = np.random.default_rng(0)
frame = pd.DataFrame({"income": rng.normal(size=200), "responded": rng.random(200) < 0.5})
version = registry.log_and_register(
    spec=spec, model=fit_classifier(frame, spec), input_example=frame[["income"]],
    metrics={"auc": 0.6}, fingerprint="f" * 64,
)
"""
KILL_POINTS = {
    # The version is registered, its tags are not: it would be reused or promoted half-made.
    "before_the_version_tags": """
original = MlflowClient.set_model_version_tag
def tag_then_hang(self, name, version, key, value):
    if key == "metric_value":
        PAUSE
    return original(self, name, version, key, value)
MlflowClient.set_model_version_tag = tag_then_hang
""",
    # Inside the MLflow run: it stays RUNNING.
    "while_logging_the_model": """
def hang(*args, **kwargs):
    PAUSE
mlflow.sklearn.log_model = hang
""",
}


@pytest.mark.slow
@pytest.mark.parametrize("kill_point", sorted(KILL_POINTS))
def test_kill_during_mlflow_registration_then_a_clean_rerun(cx_home, kill_point):
    from cx_pipelines.ml import registry

    patch = KILL_POINTS[kill_point].replace("PAUSE", _pause_forever())
    run_until_marker_then_kill(cx_home, SETUP + patch + REGISTER)
    mlflow_client = registry.client()
    name = "cx_fault_test"
    before = {v.version: v.tags for v in mlflow_client.search_model_versions(f"name='{name}'")}
    runs = mlflow_client.search_runs([registry.ensure_experiment()])
    if kill_point == "before_the_version_tags":
        assert list(before.values()) and "metric_value" not in next(iter(before.values()))
    else:
        assert [run.info.status for run in runs] == ["RUNNING"]

    scope: dict = {}
    exec(SETUP + REGISTER, scope)  # the clean re-run: the same registration, not killed
    version = scope["version"]

    assert not version.reused  # the half-made version was removed, not reused
    versions = mlflow_client.search_model_versions(f"name='{name}'")
    assert [str(v.version) for v in versions] == [version.version]
    assert versions[0].tags["metric_value"] == "0.6"
    assert registry.version_for_alias(name, registry.CHALLENGER) == version.version
    statuses = [run.info.status for run in mlflow_client.search_runs([version.experiment_id])]
    assert "RUNNING" not in statuses
    assert registry.load_model(name, version.version) is not None
