"""Materialise assets through Dagster on the DAGSTER_HOME instance (what `cx materialize` runs)."""

from __future__ import annotations

import os

import dagster as dg

from cx_pipelines import config


def materialize(selection: str = "*", *, raise_on_error: bool = False) -> dg.ExecuteInProcessResult:
    """Run the assets (and their checks) matched by a Dagster selection string, e.g. ``customers+``.

    The run is recorded in the Dagster instance, so it appears in the UI like any other.
    The console shows Dagster's log at ``CX_LOG_LEVEL`` (default INFO: what the assets say,
    not every step event, which the UI keeps).
    """
    from cx_pipelines.definitions import defs

    config.ensure_dagster_home()
    log_level = os.environ.get("CX_LOG_LEVEL", "INFO").upper()
    job = defs.resolve_implicit_global_asset_job_def()
    with dg.DagsterInstance.get() as instance:
        asset_graph = defs.resolve_asset_graph()
        selected = dg.AssetSelection.from_string(selection).resolve(asset_graph)
        return job.execute_in_process(
            instance=instance,
            asset_selection=list(selected),
            raise_on_error=raise_on_error,
            run_config={"loggers": {"console": {"config": {"log_level": log_level}}}},
        )


def summarize_run(result: dg.ExecuteInProcessResult) -> str:
    """One line per materialised asset and check, then where to look."""
    latest = {}  # an asset written by several steps (quarantined_rows) is listed once
    for event in result.get_asset_materialization_events():
        materialization = event.step_materialization_data.materialization
        latest[materialization.asset_key.to_user_string()] = materialization
    lines = []
    for name, materialization in latest.items():
        rows = materialization.metadata.get("dagster/row_count")
        count = f"{rows.value:,} rows" if rows is not None else ""
        lines.append(f"  materialised {name:<28} {count}")
    for event in result.get_asset_check_evaluations():
        if event.passed:
            status = "passed"
        elif event.severity == dg.AssetCheckSeverity.WARN:
            status = "warning (did not block)"
        else:
            status = "FAILED"
        lines.append(f"  check {event.asset_key.to_user_string()}.{event.check_name}: {status}")
    outcome = "succeeded" if result.success else "FAILED"
    lines.append(f"Run {result.run_id} {outcome}.")
    return "\n".join(lines)
