"""Materialise assets through Dagster on the DAGSTER_HOME instance (what `cx materialize` runs).

Every run starts by clearing what a killed earlier run left behind (:func:`recover`):
temporary files in the warehouse and beside the catalog, and Dagster runs still marked
"in progress" whose process is gone. Runs are tagged with the id (and start time) of the
process that executes them, which is how a later run knows the process is gone.
"""

from __future__ import annotations

import difflib
import logging
import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import dagster as dg
from dagster._core.definitions.asset_selection import DagsterInvalidAssetSelectionError
from dagster._core.log_manager import LOG_RECORD_METADATA_ATTR  # the record's Dagster metadata

from cx_pipelines import config, privacy, recovery
from cx_pipelines.errors import UsageError

PID_TAG = "cx/pid"
PID_STARTED_TAG = "cx/pid_started"
HOST_TAG = "cx/host"
_IN_PROGRESS = [dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED]
_STEP_DONE = {"STEP_SUCCESS": "done", "STEP_FAILURE": "failed", "STEP_SKIPPED": "skipped"}


class StepProgress(Protocol):
    """What `cx` shows while a run goes: a bar over the run's steps and a few messages."""

    def start(self, total: int) -> None: ...

    def step_finished(self, step: str, outcome: str) -> None: ...

    def message(self, text: str) -> None: ...


@dataclass
class Recovery:
    """What :func:`recover` cleared before a run."""

    temporary_files: list[str] = field(default_factory=list)
    orphaned_runs: list[str] = field(default_factory=list)

    def describe(self) -> list[str]:
        lines = [f"removed stale temporary file {path}" for path in self.temporary_files]
        lines += [
            f"marked run {run_id} failed (its process is gone)" for run_id in self.orphaned_runs
        ]
        return lines


def _this_process_tags() -> dict[str, str]:
    pid = os.getpid()
    return {
        PID_TAG: str(pid),
        PID_STARTED_TAG: str(recovery.process_start_ticks(pid) or ""),
        HOST_TAG: socket.gethostname(),
    }


def _process_gone(run: dg.DagsterRun) -> bool:
    tags = run.tags
    if PID_TAG not in tags or tags.get(HOST_TAG) != socket.gethostname():
        return False  # not ours to judge: started elsewhere, or by something else
    pid = int(tags[PID_TAG])
    if not recovery.process_is_alive(pid):
        return True
    started = tags.get(PID_STARTED_TAG)
    return bool(started) and str(recovery.process_start_ticks(pid)) != started  # id reused


def mark_orphaned_runs_failed(instance: dg.DagsterInstance) -> list[str]:
    """Mark failed every in-progress run whose executing process is gone; return their ids."""
    orphaned = []
    for run in instance.get_runs(filters=dg.RunsFilter(statuses=_IN_PROGRESS)):
        if run.run_id and _process_gone(run):
            instance.report_run_failed(
                run,
                message=f"Marked failed by the next cx run: process {run.tags[PID_TAG]} that "
                "ran it is gone (killed or crashed); what it wrote was never committed.",
            )
            orphaned.append(run.run_id)
    return orphaned


def recover(instance: dg.DagsterInstance) -> Recovery:
    """Clear a killed run's debris: stale temporary files and runs left "in progress"."""
    removed = [str(path) for path in recovery.sweep_temporary_files()]
    return Recovery(temporary_files=removed, orphaned_runs=mark_orphaned_runs_failed(instance))


def resolve_selection(selection: str | Sequence[str], asset_graph) -> set[dg.AssetKey]:
    """The assets matched by one or more Dagster selection strings (their union).

    A string Dagster cannot parse, or one that matches no asset, is a :class:`UsageError`
    naming it, with the nearest asset names.
    """
    strings = [selection] if isinstance(selection, str) else list(selection)
    names = sorted(key.to_user_string() for key in asset_graph.get_all_asset_keys())
    selected: set[dg.AssetKey] = set()
    for text in strings or ["*"]:
        try:
            matched = dg.AssetSelection.from_string(text).resolve(asset_graph)
        except (DagsterInvalidAssetSelectionError, dg.DagsterInvalidSubsetError) as error:
            raise UsageError(_selection_problem(text, names, error)) from error
        # An asset written by other assets' steps (quarantined_rows) is not a step to run.
        executable = set(matched) & set(asset_graph.executable_asset_keys)
        if not executable:
            raise UsageError(f"asset selection {text!r} matches no asset that a run can write")
        selected |= executable
    return selected


def _selection_problem(text: str, names: list[str], error: Exception) -> str:
    words = [word for word in text.replace(",", " ").split() if word]
    if len(words) > 1 and all(word.strip("*+") in names for word in words):
        joined = " or ".join(f"key:{word}" for word in words)
        return (
            f"{text!r} is not a Dagster asset selection; for several assets give each as its "
            f"own argument or write {joined!r}"
        )
    close = sorted({match for word in words for match in difflib.get_close_matches(word, names)})
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    if isinstance(error, dg.DagsterInvalidSubsetError):
        return f"asset selection {text!r} names no asset{hint}"
    return (
        f"{text!r} is not a Dagster asset selection (e.g. customers, customers+, "
        f"'key:customers or key:accounts', 'group:sources'){hint}"
    )


class _ConsoleHandler(logging.Handler):
    """Run progress from Dagster's step events; the assets' own messages as single lines."""

    def __init__(self, progress: StepProgress, *, level: int) -> None:
        super().__init__(level=logging.DEBUG)
        self.progress = progress
        self.print_level = level

    def emit(self, record: logging.LogRecord) -> None:
        metadata = getattr(record, LOG_RECORD_METADATA_ATTR, None) or {}
        event = metadata.get("dagster_event")
        if event is not None:
            outcome = _STEP_DONE.get(event.event_type_value)
            if outcome and event.step_key:
                self.progress.step_finished(event.step_key, outcome)
            return  # framework events (and their stack traces) stay in the UI
        if record.levelno >= self.print_level:
            text = str(metadata.get("orig_message") or record.getMessage()).strip()
            step = metadata.get("step_key")
            first = privacy.mask_text(text.splitlines()[0] if text else "")
            prefixed = step and not first.startswith(f"{step}:")
            self.progress.message(f"{step}: {first}" if prefixed else first)


def _console_logger(progress: StepProgress, level: int) -> dg.LoggerDefinition:
    @dg.logger(description="cx console: a progress bar and one line per asset message")
    def cx_console(_init_context) -> logging.Logger:
        logger = logging.Logger("cx", level=logging.DEBUG)
        logger.addHandler(_ConsoleHandler(progress, level=level))
        return logger

    return cx_console


def materialize(
    selection: str | Sequence[str] = "*",
    *,
    raise_on_error: bool = False,
    progress: StepProgress | None = None,
) -> dg.ExecuteInProcessResult:
    """Run the assets (and their checks) matched by Dagster selection strings (``customers+``).

    The run is recorded in the Dagster instance, so it appears in the UI like any other.
    Without ``progress`` the console shows Dagster's log at ``CX_LOG_LEVEL`` (default
    INFO); with it, ``progress`` gets the steps as they finish and the assets' messages at
    that level, and no stack traces (they stay in the run's event log).
    """
    from cx_pipelines.definitions import defs

    config.ensure_dagster_home()
    log_level = os.environ.get("CX_LOG_LEVEL", "INFO").upper()
    job = defs.resolve_implicit_global_asset_job_def()
    with dg.DagsterInstance.get() as instance:
        selected = resolve_selection(selection, defs.resolve_asset_graph())
        cleared = recover(instance)
        if progress is not None:
            level = logging.getLevelNamesMapping().get(log_level, logging.INFO)
            job = job.with_logger_defs({"cx_console": _console_logger(progress, level)})
            loggers = {"cx_console": {}}
            progress.start(len(job.get_subset(asset_selection=selected).nodes_in_topological_order))
            for line in cleared.describe():
                progress.message(line)
        else:
            loggers = {"console": {"config": {"log_level": log_level}}}
        return job.execute_in_process(
            instance=instance,
            asset_selection=list(selected),
            raise_on_error=raise_on_error,
            run_config={"loggers": loggers},
            tags=_this_process_tags(),
        )


def failed_steps(result: dg.ExecuteInProcessResult) -> list[str]:
    """One line per failed step: the step and the first line of the error that failed it."""
    lines = []
    for event in result.all_events:
        if not event.is_step_failure:
            continue
        error = event.step_failure_data.error
        while error is not None and error.cause is not None and _is_wrapper(error.cls_name):
            error = error.cause
        reason = (error.message if error else "unknown error").strip().splitlines()[0]
        # The message starts with the error's qualified class name; keep the short one.
        if error is not None and error.cls_name and ": " in reason:
            qualified, _, rest = reason.partition(": ")
            if qualified.endswith(error.cls_name):
                reason = f"{error.cls_name}: {rest}"
        lines.append(f"step {event.step_key} failed: {privacy.mask_text(reason)}")
    return lines


def _is_wrapper(name: str | None) -> bool:
    """Dagster's errors that only say where the real error (their cause) happened."""
    return bool(name) and (name.startswith("DagsterExecution") or name.startswith("DagsterUser"))


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
