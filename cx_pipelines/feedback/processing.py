"""One run of ``interaction_results``: read the waiting inputs, match them, commit, file them.

Under a file lock (two runs never interleave their read-modify-write): read every file
waiting in the inbox and, when asked, the accepted ``offer_responses`` rows; match them
against the decision log (:mod:`cx_pipelines.feedback.results`); write the quarantine,
then the results table (each replaced atomically); only then move the files to
``inbox/processed/``. If anything fails before that, the files stay in the inbox and the
tables are the previous ones; if the process dies after the writes but before the move,
the next run finds every row already recorded (duplicates), so nothing is counted twice.
"""

from __future__ import annotations

import fcntl
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pandas as pd

from cx_pipelines import config, warehouse
from cx_pipelines.feedback import inbox
from cx_pipelines.feedback.decision_log import DecisionLog, load_decision_log
from cx_pipelines.feedback.results import (
    QUARANTINE_DTYPES,
    RESULTS_DTYPES,
    ResultsUpdate,
    empty_frame,
    match_results,
)
from cx_pipelines.ingestion import quarantine

RESULTS_TABLE = "interaction_results"
QUARANTINE_TABLE = "interaction_results_quarantine"
SOURCE_TABLE = "offer_responses"


@dataclass
class FeedbackRun:
    """What one run did: the update, and which files were filed where."""

    update: ResultsUpdate
    decision_log: DecisionLog
    processed_files: list[str] = field(default_factory=list)
    rejected_files: dict[str, str] = field(default_factory=dict)
    """File name → why it could not be read (it is kept in ``inbox/rejected/``)."""
    quarantined_rows_total: int = 0


@contextmanager
def _lock() -> Iterator[None]:
    path = config.warehouse_dir() / f".{RESULTS_TABLE}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _table_or_empty(name: str, dtypes: dict[str, str]) -> pd.DataFrame:
    if warehouse.table_exists(name):
        return warehouse.read_table(name).reindex(columns=list(dtypes)).astype(dtypes)
    return empty_frame(dtypes)


def quarantine_part(records: pd.DataFrame) -> pd.DataFrame:
    """The quarantine records in the shape of ``quarantined_rows`` (key = ``file:row``)."""
    return pd.DataFrame(
        {
            "source_table": pd.Series([RESULTS_TABLE] * len(records), dtype="str"),
            "source_key": (records["source"] + ":" + records["row_number"].astype(str)).astype(
                "str"
            ),
            "failed_rule": records["reason"].astype("str"),
            "raw_row": records["raw_row"].astype("str"),
            "run_id": records["run_id"].astype("str"),
            "quarantined_at": records["quarantined_at"].astype("datetime64[us, UTC]"),
        }
    )


def recorded_results() -> pd.DataFrame:
    """The current ``interaction_results`` (empty before the first run)."""
    return _table_or_empty(RESULTS_TABLE, RESULTS_DTYPES)


def process_results(
    *,
    run_id: str,
    include_source_table: bool = True,
    as_of: datetime | None = None,
    inbox_folder: Path | None = None,
    log: Callable[[str], None] | None = None,
) -> FeedbackRun:
    """Match every waiting result to its decision and commit the tables (see the module doc).

    ``as_of`` (naive UTC, default the platform's now, :func:`cx_pipelines.config.now`:
    ``CX_NOW`` or the wall clock) is the instant after which ``responded_at`` is "in the
    future". ``include_source_table`` adds the accepted ``offer_responses`` rows.
    """
    as_of = as_of or config.now()
    with _lock():
        inputs, rejected, files = [], {}, []
        if include_source_table and warehouse.table_exists(SOURCE_TABLE):
            inputs.append(inbox.table_rows(warehouse.read_table(SOURCE_TABLE), source=SOURCE_TABLE))
        for waiting in inbox.pending_files(inbox_folder):
            try:
                inputs.append(inbox.read_result_file(waiting.path))
                files.append(waiting.path)
            except inbox.UnreadableFileError as error:
                rejected[waiting.path] = str(error)
        decision_log = load_decision_log()
        if log:
            log(
                f"{len(inputs)} input(s), {sum(i.rows_read for i in inputs):,} rows; "
                f"{len(decision_log.decisions):,} decisions in {len(decision_log.files)} file(s)"
            )
        update = match_results(
            inputs,
            decision_log.decisions,
            recorded=recorded_results(),
            quarantined=_table_or_empty(QUARANTINE_TABLE, QUARANTINE_DTYPES),
            run_id=run_id,
            as_of=as_of,
        )
        warehouse.write_table(QUARANTINE_TABLE, update.quarantine)
        with quarantine.part_writer(RESULTS_TABLE) as part:
            part.write(quarantine_part(update.quarantine))
        warehouse.write_table(RESULTS_TABLE, update.results)
        total = quarantine.rebuild_quarantined_rows()
        processed = [inbox.file_away(path, inbox.PROCESSED).name for path in files]
        for path in rejected:
            inbox.file_away(path, inbox.REJECTED)
    return FeedbackRun(
        update=update,
        decision_log=decision_log,
        processed_files=processed,
        rejected_files={path.name: reason for path, reason in rejected.items()},
        quarantined_rows_total=total,
    )
