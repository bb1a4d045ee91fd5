"""The decision log: every decision an outcome can answer, from the batch exports and the service.

- Batch: every ``$CX_HOME/exports/<campaign_id>/<run_key>/decisions.parquet`` (INTERFACES §2),
  treated and control rows. Folders whose name starts with a dot (an export being written)
  are skipped.
- Real time: every ``$CX_HOME/decision_log/*.jsonl`` (INTERFACES §4), one decision per line;
  its ``decision_id`` is the ``contact_id`` a response names. A line that is not a JSON
  object (a write cut short) is counted and skipped, never fatal.

Both become one frame with :data:`DECISION_COLUMNS`; ``contact_id`` is text (see
:func:`contact_key`), ``segment`` and ``test_group`` are null where the log does not carry them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from cx_pipelines import config

DECISION_COLUMNS = (
    "contact_id",
    "source",
    "run_key",
    "campaign_id",
    "customer_id",
    "offer_type",
    "channel",
    "treatment",
    "group",
    "rank",
    "p_response",
    "uplift",
    "expected_incremental_profit",
    "selection_probability",
    "exploration",
    "decided_at",
    "strategy_hash",
    "segment",
    "test_group",
)
BATCH, SERVICE = "batch", "service"
SERVICE_RUN_KEY = "service"


class DecisionLogError(ValueError):
    """A batch decision file cannot be read, or lacks the columns that matching needs."""


@dataclass
class DecisionLog:
    """The decisions, and where they came from."""

    decisions: pd.DataFrame
    files: list[str] = field(default_factory=list)
    unreadable_lines: dict[str, int] = field(default_factory=dict)
    """Service log file → lines that were not a JSON decision."""
    repeated_contact_ids: int = 0
    """Decisions dropped because an earlier one had the same contact id."""


def exports_decision_files(home: Path | None = None) -> list[Path]:
    """Every batch decision file under ``exports/``, in path order."""
    exports = (home / "exports") if home else config.exports_dir()
    if not exports.is_dir():
        return []
    return sorted(
        path
        for path in exports.glob("*/*/decisions.parquet")
        if not any(part.startswith(".") for part in path.relative_to(exports).parts)
    )


def service_log_files(home: Path | None = None) -> list[Path]:
    folder = home / "decision_log" if home else config.decision_log_dir()
    return sorted(folder.glob("*.jsonl")) if folder.is_dir() else []


def _one_contact_key(value: object) -> str | None:
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, bool | np.bool_):
        return str(value)
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    return str(value).strip()


def contact_key(values: pd.Series) -> pd.Series:
    """Contact ids as text, the same whether they arrive as integers, integral floats or text."""
    inferred = pd.api.types.infer_dtype(values, skipna=True)
    if inferred == "string":
        text = values.astype("str").str.strip()
        return text.astype(object).where(text.notna(), None)
    if inferred == "integer" and not values.isna().any():
        return values.astype("int64").astype(str).astype(object)
    return pd.Series(
        [_one_contact_key(value) for value in values], index=values.index, dtype=object
    )


_BATCH_REQUIRED = ("contact_id", "customer_id", "campaign_id", "offer_type", "channel", "group")


def _batch_decisions(path: Path) -> pd.DataFrame:
    try:
        frame = pq.read_table(path).to_pandas()
    except (pa.ArrowException, OSError) as error:
        raise DecisionLogError(f"Cannot read decision file {path}: {error}") from error
    missing = [column for column in _BATCH_REQUIRED if column not in frame.columns]
    if missing:
        raise DecisionLogError(f"Decision file {path} has no column(s) {', '.join(missing)}")
    frame = frame.reindex(columns=list(DECISION_COLUMNS))
    frame["source"] = BATCH
    frame["run_key"] = frame["run_key"].astype(object).fillna(path.parent.name)
    return frame


def _service_record(record: dict) -> dict:
    trace = record.get("trace") if isinstance(record.get("trace"), dict) else {}
    return {
        "contact_id": record.get("decision_id"),
        "source": SERVICE,
        "run_key": SERVICE_RUN_KEY,
        "campaign_id": record.get("campaign_id"),
        "customer_id": record.get("customer_id"),
        "offer_type": record.get("offer_type"),
        "channel": record.get("channel"),
        "treatment": record.get("treatment"),
        "group": record.get("group") or "treated",  # a real-time decision is acted upon
        "rank": record.get("rank"),
        "p_response": record.get("p_response"),
        "uplift": record.get("uplift"),
        "expected_incremental_profit": record.get("expected_incremental_profit"),
        "selection_probability": record.get("selection_probability"),
        "exploration": bool(record.get("exploration", trace.get("exploration", False))),
        "decided_at": record.get("decided_at"),
        "strategy_hash": record.get("strategy_hash"),
        "segment": record.get("segment", trace.get("segment")),
        "test_group": record.get("test_group", trace.get("test_group")),
    }


def _service_decisions(path: Path) -> tuple[pd.DataFrame, int]:
    records, unreadable = [], 0
    with open(path, encoding="utf-8", errors="replace") as handle:
        for line in handle:
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                unreadable += 1
                continue
            if not isinstance(record, dict) or record.get("decision_id") is None:
                unreadable += 1
                continue
            records.append(_service_record(record))
    frame = pd.DataFrame(records).reindex(columns=list(DECISION_COLUMNS))
    return frame, unreadable


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    out = pd.DataFrame(index=frame.index)
    out["contact_id"] = contact_key(frame["contact_id"])
    for column in (
        "source",
        "run_key",
        "campaign_id",
        "offer_type",
        "channel",
        "treatment",
        "group",
        "strategy_hash",
        "segment",
        "test_group",
    ):
        out[column] = frame[column].astype("str")
    out["customer_id"] = pd.to_numeric(frame["customer_id"], errors="coerce").astype("Int64")
    for column in (
        "rank",
        "p_response",
        "uplift",
        "expected_incremental_profit",
        "selection_probability",
    ):
        out[column] = pd.to_numeric(frame[column], errors="coerce").astype("float64")
    out["exploration"] = frame["exploration"].fillna(False).astype(bool)
    decided = pd.to_datetime(frame["decided_at"], errors="coerce", utc=True, format="ISO8601")
    out["decided_at"] = decided.dt.tz_localize(None).astype("datetime64[us]")
    return out[list(DECISION_COLUMNS)]


def empty_decisions() -> pd.DataFrame:
    return _typed(pd.DataFrame(columns=list(DECISION_COLUMNS))).astype({"contact_id": "str"})


def load_decision_log(home: Path | None = None) -> DecisionLog:
    """Every batch and service decision under ``home`` (default ``CX_HOME``), one per contact id.

    When two decisions share a contact id (an export re-run with the same inputs writes the
    same ids), the earliest decided is kept and the repeat counted.
    """
    parts, files, unreadable = [], [], {}
    for path in exports_decision_files(home):
        parts.append(_batch_decisions(path))
        files.append(str(path))
    for path in service_log_files(home):
        frame, bad = _service_decisions(path)
        parts.append(frame)
        files.append(str(path))
        if bad:
            unreadable[str(path)] = bad
    parts = [part for part in parts if len(part)]
    if not parts:
        return DecisionLog(empty_decisions(), files, unreadable)
    decisions = _typed(pd.concat(parts, ignore_index=True))
    decisions = decisions[decisions["contact_id"].notna()].astype({"contact_id": "str"})
    ordered = decisions.sort_values(["decided_at", "contact_id"], kind="stable", na_position="last")
    unique = ordered.drop_duplicates("contact_id", keep="first").reset_index(drop=True)
    return DecisionLog(unique, files, unreadable, repeated_contact_ids=len(decisions) - len(unique))
