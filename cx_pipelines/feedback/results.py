"""Interaction results matched to the decisions that caused them, pure logic (no IO).

Every row read ends in exactly one of three places, in this order of precedence:

1. **quarantined**, with a reason: the row could not be split into columns
   (``row_is_malformed``), fails a rule of the ``offer_responses`` contract (validated by
   Great Expectations exactly like ingestion: ``revenue_in_range``,
   ``revenue_zero_unless_responded``, ``responded_at_is_timestamp`` …), names no decision
   (``no_matching_decision``), names another customer or offer than its decision
   (``customer_does_not_match_decision``, ``offer_does_not_match_decision``), is dated before
   its decision (``responded_before_decision``), or brings a second, different outcome for
   a contact that already has one (``conflicting_outcome``);
2. a **duplicate**: the exact repeat of an outcome already recorded (in an earlier run or
   earlier in this one) — a re-sent file changes nothing;
3. **matched**: a new outcome, added to ``interaction_results``. A result that arrives runs
   after its decision is matched like any other (the decision log keeps every export).

Within a run, inputs are taken in the order given and rows in file order, so the first of
two conflicting outcomes wins and the second is quarantined.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import pandas as pd

from cx_pipelines.feedback.decision_log import contact_key
from cx_pipelines.feedback.inbox import RESULT_COLUMNS, ResultRows
from cx_pipelines.ingestion.contracts import contract_for
from cx_pipelines.ingestion.expectations import epoch_seconds, validate_chunk
from cx_pipelines.ingestion.pipeline import References, prepare_chunk
from cx_pipelines.ingestion.quarantine import raw_row_json

CONTRACT_TABLE = "offer_responses"
VALIDATION_CHUNK_ROWS = 250_000

RESULTS_DTYPES = {
    # offer_history's columns, so training can append this table to it ...
    "contact_id": "str",
    "campaign_id": "str",
    "customer_id": "int64",
    "offer_type": "str",
    "channel": "str",
    "treated": "bool",
    "contacted_at": "datetime64[us]",
    "responded": "bool",
    "revenue": "float64",
    # ... and what the decision log knew when the decision was made (INTERFACES §3).
    "run_key": "str",
    "group": "str",
    "selection_probability": "float64",
    "exploration": "bool",
    "responded_at": "datetime64[us]",
    "strategy_hash": "str",
    "test_group": "str",  # the decision's experiment arm (null outside an experiment)
}
"""Columns of ``interaction_results``; ``contacted_at`` is the decision's ``decided_at``."""

QUARANTINE_DTYPES = {
    "source": "str",
    "source_checksum": "str",
    "row_number": "int64",
    "contact_id": "str",
    "reason": "str",
    "raw_row": "str",
    "run_id": "str",
    "quarantined_at": "datetime64[us, UTC]",
}
"""Columns of ``interaction_results_quarantine``: ``raw_row`` holds only the result columns."""

MATCHING_REASONS = (
    "row_is_malformed",
    "no_matching_decision",
    "customer_does_not_match_decision",
    "offer_does_not_match_decision",
    "responded_before_decision",
    "conflicting_outcome",
)
"""Reasons besides the contract's rules (see :func:`cx_pipelines.ingestion.rule_names`)."""


class ReconciliationError(RuntimeError):
    """Rows in did not equal matched + quarantined + duplicates (a bug; nothing is written)."""


def empty_frame(dtypes: dict[str, str]) -> pd.DataFrame:
    return pd.DataFrame({name: pd.Series([], dtype=dtype) for name, dtype in dtypes.items()})


@dataclass
class InputCounts:
    """What became of the rows of one input."""

    source: str
    checksum: str
    rows: int = 0
    matched: int = 0
    duplicates: int = 0
    quarantined: int = 0


@dataclass
class ResultsUpdate:
    """The new ``interaction_results`` and quarantine tables, and what this run did."""

    results: pd.DataFrame
    quarantine: pd.DataFrame
    inputs: list[InputCounts] = field(default_factory=list)
    reasons: dict[str, int] = field(default_factory=dict)
    new_results: pd.DataFrame | None = None
    """The rows this run added to ``results`` (the new outcomes)."""

    def total(self, what: str) -> int:
        return sum(getattr(counts, what) for counts in self.inputs)


def _validate(rows: ResultRows, *, as_of: datetime) -> tuple[pd.DataFrame, np.ndarray]:
    """Typed result columns and, per row, the first contract rule it fails (None: valid)."""
    contract = contract_for(CONTRACT_TABLE)
    raw = rows.raw.reset_index(drop=True).copy()
    raw["contact_id"] = contact_key(raw["contact_id"])
    parameters = {"as_of_epoch_seconds": epoch_seconds(as_of)}
    typed_parts, reasons = [], np.full(len(raw), None, dtype=object)
    for start in range(0, max(len(raw), 1), VALIDATION_CHUNK_ROWS):
        chunk = raw.iloc[start : start + VALIDATION_CHUNK_ROWS].reset_index(drop=True)
        # Repeats are decided against recorded outcomes below, not by the contract's
        # uniqueness rule: an exact repeat is a duplicate, a different one a conflict.
        frame = prepare_chunk(
            chunk,
            contract,
            duplicated_keys=np.array([], dtype=object),
            references=References(),
        )
        first_failed, names = validate_chunk(CONTRACT_TABLE, frame, parameters=parameters)
        failing = first_failed >= 0
        reasons[start : start + len(chunk)][failing] = [
            names[position] for position in first_failed[failing]
        ]
        typed_parts.append(frame[list(RESULT_COLUMNS)])
    return pd.concat(typed_parts, ignore_index=True), reasons


def _signature(frame: pd.DataFrame, *, outcome: pd.Series) -> pd.Series:
    """A text of every result column but the contact id: equal texts are exact repeats."""
    stamps = frame["responded_at"].astype("datetime64[us]").astype("int64").astype(str)
    revenue = frame["revenue"].astype("float64").round(6).astype(str)
    parts = [
        frame["customer_id"].astype("Int64").astype(str),
        frame["campaign_id"].astype(str),
        frame["offer_type"].astype(str),
        frame["channel"].astype(str),
        outcome.astype(str),
        revenue,
        stamps,
    ]
    signature = parts[0]
    for part in parts[1:]:
        signature = signature + "|" + part
    return signature.reset_index(drop=True)


def recorded_signatures(results: pd.DataFrame) -> pd.Series:
    """Signature of every outcome already in ``interaction_results``, indexed by contact id."""
    outcome = pd.Series(np.where(results["responded"], "responded", "not_responded"))
    signature = _signature(results.reset_index(drop=True), outcome=outcome)
    recorded = pd.Series(signature.to_numpy(), index=results["contact_id"].astype(str).to_numpy())
    return recorded[~recorded.index.duplicated()]


def repeats(
    contacts: pd.Series, signatures: pd.Series, recorded: pd.Series
) -> tuple[np.ndarray, np.ndarray]:
    """(duplicate, conflicting) masks of rows, in order, against ``recorded`` and each other.

    A row repeating a recorded outcome, or the first row of its contact in this batch,
    exactly is a duplicate; differing from it, a conflict. The first row of a new contact is
    neither (it is new).
    """
    contacts = contacts.reset_index(drop=True).astype(str)
    signatures = pd.Series(np.asarray(signatures, dtype=object)).astype(str)
    earlier = contacts.map(recorded)
    known = earlier.notna().to_numpy()
    first = signatures.groupby(contacts.to_numpy()).transform("first")
    later = contacts.duplicated().to_numpy() & ~known
    reference = np.where(known, earlier.astype(object).to_numpy(), first.to_numpy())
    same = signatures.to_numpy() == reference
    repeated = known | later
    return repeated & same, repeated & ~same


def _matching_reasons(rows: pd.DataFrame, decisions: pd.DataFrame) -> np.ndarray:
    """Per valid row, why it does not fit its decision (None: it fits)."""
    joined = rows[list(RESULT_COLUMNS)].merge(
        decisions,
        on="contact_id",
        how="left",
        suffixes=("", "_decided"),
        indicator=True,
    )
    reasons = np.full(len(joined), None, dtype=object)

    def differs(column: str) -> np.ndarray:
        decided = joined[f"{column}_decided"]
        return (decided.notna() & (decided.astype(str) != joined[column].astype(str))).to_numpy()

    late_first = [
        ("responded_before_decision", (joined["responded_at"] < joined["decided_at"]).to_numpy()),
        (
            "offer_does_not_match_decision",
            differs("campaign_id") | differs("offer_type") | differs("channel"),
        ),
        ("customer_does_not_match_decision", differs("customer_id")),
        ("no_matching_decision", (joined["_merge"] == "left_only").to_numpy()),
    ]
    for reason, mask in late_first:  # the last assignment wins: the most basic reason
        reasons[np.asarray(mask, dtype=bool)] = reason
    return reasons


def _result_rows(rows: pd.DataFrame, decisions: pd.DataFrame) -> pd.DataFrame:
    joined = rows.merge(decisions, on="contact_id", how="left", suffixes=("", "_decided"))
    out = pd.DataFrame(
        {
            "contact_id": joined["contact_id"],
            "campaign_id": joined["campaign_id"],
            "customer_id": joined["customer_id"],
            "offer_type": joined["offer_type"],
            "channel": joined["channel"],
            "treated": joined["group"] == "treated",
            "contacted_at": joined["decided_at"],
            "responded": joined["outcome"] == "responded",
            "revenue": joined["revenue"],
            "run_key": joined["run_key"],
            "group": joined["group"],
            "selection_probability": joined["selection_probability"],
            "exploration": joined["exploration"].fillna(False),
            "responded_at": joined["responded_at"],
            "strategy_hash": joined["strategy_hash"],
            "test_group": joined.get("test_group"),
        }
    )
    return out.astype(RESULTS_DTYPES)


def _raw_json(raw: pd.DataFrame) -> list[str]:
    return [raw_row_json(row) for row in raw[list(RESULT_COLUMNS)].to_dict(orient="records")]


@dataclass
class _Classified:
    """One input's rows: typed values, the reason of each quarantined row, the duplicates."""

    typed: pd.DataFrame
    reasons: np.ndarray
    duplicate: np.ndarray
    signatures: pd.Series
    """The outcomes known after this input (recorded ones plus its new ones)."""

    @property
    def new(self) -> np.ndarray:
        return np.array([reason is None for reason in self.reasons], dtype=bool) & ~self.duplicate


def _classify(
    rows: ResultRows, decisions: pd.DataFrame, signatures: pd.Series, *, as_of: datetime
) -> _Classified:
    typed, reasons = _validate(rows, as_of=as_of)
    valid = np.array([reason is None for reason in reasons], dtype=bool)
    if valid.any():
        reasons[valid] = _matching_reasons(typed.loc[valid].reset_index(drop=True), decisions)
    fits = np.array([reason is None for reason in reasons], dtype=bool)
    fitting = typed.loc[fits].reset_index(drop=True)
    signature = _signature(fitting, outcome=fitting["outcome"])
    is_duplicate, is_conflict = repeats(fitting["contact_id"], signature, signatures)
    positions = np.flatnonzero(fits)
    duplicate = np.zeros(len(typed), dtype=bool)
    duplicate[positions[is_duplicate]] = True
    reasons[positions[is_conflict]] = "conflicting_outcome"
    fresh = ~is_duplicate & ~is_conflict
    added = pd.Series(
        signature.to_numpy()[fresh], index=fitting["contact_id"].astype(str).to_numpy()[fresh]
    )
    return _Classified(typed, reasons, duplicate, pd.concat([signatures, added]))


def _quarantine_records(rows: ResultRows, reasons: np.ndarray) -> list[tuple]:
    """(input, row number, contact id, reason, raw row JSON) of every quarantined row."""
    records = [
        (rows, number, None, "row_is_malformed", json.dumps({"error": problem}))
        for number, problem in rows.malformed_rows
    ]
    failed = np.flatnonzero([reason is not None for reason in reasons])
    if not len(failed):
        return records
    raw = rows.raw.reset_index(drop=True)
    keys = contact_key(raw["contact_id"].iloc[failed])
    texts = _raw_json(raw.iloc[failed])
    for position, key, text in zip(failed, keys, texts, strict=True):
        records.append((rows, int(rows.row_numbers[position]), key, reasons[position], text))
    return records


def match_results(
    inputs: list[ResultRows],
    decisions: pd.DataFrame,
    *,
    recorded: pd.DataFrame,
    quarantined: pd.DataFrame,
    run_id: str,
    as_of: datetime,
) -> ResultsUpdate:
    """Validate, match and de-duplicate ``inputs`` against ``decisions`` and what is recorded.

    ``recorded`` and ``quarantined`` are the current ``interaction_results`` and its
    quarantine; the update holds both tables after this run. Quarantine records of an input
    seen before (same checksum) are replaced, so re-processing a file changes nothing.
    """
    stamp = pd.Timestamp(as_of)  # the run's "now" (config.now), naive UTC or aware
    quarantined_at = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    signatures = recorded_signatures(recorded)
    counts = [InputCounts(rows.source, rows.checksum, rows.rows_read) for rows in inputs]
    records, new_parts, reasons_seen = [], [], Counter()
    for rows, count in zip(inputs, counts, strict=True):
        classified = _classify(rows, decisions, signatures, as_of=as_of)
        signatures = classified.signatures  # later inputs repeat this one's outcomes too
        new = classified.new
        if new.any():
            new_parts.append(
                _result_rows(classified.typed.loc[new].reset_index(drop=True), decisions)
            )
        quarantine_records = _quarantine_records(rows, classified.reasons)
        records.extend(quarantine_records)
        reasons_seen.update(record[3] for record in quarantine_records)
        count.matched = int(new.sum())
        count.duplicates = int(classified.duplicate.sum())
        count.quarantined = len(quarantine_records)
        if count.rows != count.matched + count.duplicates + count.quarantined:
            raise ReconciliationError(
                f"{rows.source}: {count.rows} rows in but {count.matched} matched + "
                f"{count.quarantined} quarantined + {count.duplicates} duplicates"
            )

    new_results = (
        pd.concat(new_parts, ignore_index=True) if new_parts else empty_frame(RESULTS_DTYPES)
    )
    recorded = recorded.reindex(columns=list(RESULTS_DTYPES))  # a table from before a column
    results = pd.concat([recorded.astype(RESULTS_DTYPES), new_results], ignore_index=True)
    fresh = pd.DataFrame(
        {
            "source": [rows.source for rows, *_ in records],
            "source_checksum": [rows.checksum for rows, *_ in records],
            "row_number": [number for _, number, *_ in records],
            "contact_id": [key for _, _, key, *_ in records],
            "reason": [reason for *_, reason, _ in records],
            "raw_row": [text for *_, text in records],
            "run_id": run_id,
            "quarantined_at": quarantined_at,
        }
    ).astype(QUARANTINE_DTYPES)
    replaced = quarantined["source_checksum"].isin([rows.checksum for rows in inputs])
    quarantine = pd.concat(
        [quarantined.loc[~replaced].astype(QUARANTINE_DTYPES), fresh], ignore_index=True
    )
    return ResultsUpdate(
        results=results,
        quarantine=quarantine,
        inputs=counts,
        reasons=dict(sorted(reasons_seen.items())),
        new_results=new_results,
    )
