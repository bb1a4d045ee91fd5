"""Ingest one source table: read in chunks, validate, write accepted rows, quarantine the rest.

Every row read ends up in exactly one place — the warehouse table named after the source
table, or ``quarantined_rows`` — so rows read = rows accepted + rows quarantined.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
import pandas as pd

from cx_pipelines import warehouse
from cx_pipelines.ingestion import quarantine
from cx_pipelines.ingestion.coercion import coerce_column, empty_frame, to_output
from cx_pipelines.ingestion.contracts import TableContract, contract_for
from cx_pipelines.ingestion.errors import IngestionError
from cx_pipelines.ingestion.expectations import (
    OWNER_MATCH_COLUMN,
    condition_column,
    epoch_column,
    epoch_seconds,
    exists_column,
    readable_column,
    unique_column,
    validate_chunk,
)
from cx_pipelines.ingestion.source import DEFAULT_CHUNK_ROWS, SourceReader

PREVIEW_ROWS = 10


@dataclass
class IngestionReport:
    """What one ingestion of one table did."""

    table: str
    rows_read: int = 0
    rows_accepted: int = 0
    rows_quarantined: int = 0
    failures_by_rule: dict[str, int] = field(default_factory=dict)
    quarantined_rows_total: int = 0
    preview: pd.DataFrame | None = None
    seconds: float = 0.0
    seconds_by_step: dict[str, float] = field(default_factory=dict)
    """Wall time spent reading, preparing (coercion, lookups), validating (GX) and writing."""

    @property
    def quarantine_rate(self) -> float:
        return self.rows_quarantined / self.rows_read if self.rows_read else 0.0


@dataclass(frozen=True)
class References:
    """Accepted rows of the tables a table refers to."""

    customer_ids: np.ndarray | None = None
    account_ids: pd.Index | None = None
    account_owners: np.ndarray | None = None
    """Customer id of each accepted account, in the order of ``account_ids``."""

    def owners_of(self, account_ids: pd.Series) -> pd.Series:
        """Owner (customer id) of each account id; null where the account is not accepted."""
        if self.account_ids is None or self.account_owners is None:
            raise ValueError("No accepted accounts were given to check account references against")
        missing = account_ids.isna().to_numpy()
        positions = self.account_ids.get_indexer(account_ids.fillna(-1).to_numpy(dtype="int64"))
        positions[missing] = -1
        owners = pd.array(self.account_owners[np.maximum(positions, 0)], dtype="Int64")
        owners[positions < 0] = pd.NA
        return pd.Series(owners)

    @classmethod
    def from_warehouse(cls, contract: TableContract) -> References:
        """Read the accepted keys that ``contract`` refers to from the warehouse."""
        referenced = {field.references for field in contract.fields if field.references}
        customer_ids = account_ids = account_owners = None
        if "customers" in referenced:
            customer_ids = warehouse.read_table("customers", columns=["customer_id"])[
                "customer_id"
            ].to_numpy()
        if "accounts" in referenced or contract.owner_must_match_account:
            accounts = warehouse.read_table("accounts", columns=["account_id", "customer_id"])
            account_ids = pd.Index(accounts["account_id"].to_numpy(dtype="int64"))
            account_owners = accounts["customer_id"].to_numpy(dtype="int64")
        return cls(
            customer_ids=customer_ids, account_ids=account_ids, account_owners=account_owners
        )


def _duplicated_keys(reader: SourceReader, contract: TableContract) -> np.ndarray:
    """Typed key values that occur on more than one row anywhere in the table.

    The database groups the keys, so uniqueness holds across chunks at the cost of one
    indexed query, whatever order the rows are read in.
    """
    raw = pd.Series(reader.duplicated_keys(contract.name, contract.key), dtype=object)
    spec = contract.field(contract.key)
    typed, _ = coerce_column(raw, spec)
    return typed.dropna().to_numpy(dtype="int64" if spec.kind == "id" else object)


def prepare_chunk(
    raw: pd.DataFrame,
    contract: TableContract,
    *,
    duplicated_keys: np.ndarray,
    references: References,
) -> pd.DataFrame:
    """Typed columns plus the helper columns the table's suite checks."""
    columns: dict[str, pd.Series] = {}
    for spec in contract.fields:
        typed, unreadable = coerce_column(raw[spec.name], spec)
        columns[spec.name] = typed.reset_index(drop=True)
        if spec.type_rule:
            columns[readable_column(spec.name)] = pd.Series(~unreadable)
        if spec.kind in ("date", "timestamp"):
            microseconds = typed.to_numpy(dtype="datetime64[us]").astype("int64")
            columns[epoch_column(spec.name)] = pd.Series(
                np.where(typed.isna().to_numpy(), np.nan, microseconds / 1e6)
            )
    frame = pd.DataFrame(columns)
    key = frame[contract.key]
    frame[unique_column(contract.key)] = ~key.isin(duplicated_keys).to_numpy(dtype=bool)
    for spec in contract.fields:
        values = frame[spec.name]
        missing = values.isna().to_numpy()
        if spec.references == "customers":
            known = values.isin(references.customer_ids).to_numpy(dtype=bool)
            frame[exists_column(spec.name)] = missing | known
        elif spec.references == "accounts":
            owners = references.owners_of(values)
            frame[exists_column(spec.name)] = missing | owners.notna().to_numpy()
    if contract.owner_must_match_account:
        owners = references.owners_of(frame["account_id"])
        matches = (owners == frame["customer_id"]).fillna(False).to_numpy(dtype=bool)
        frame[OWNER_MATCH_COLUMN] = owners.isna().to_numpy() | matches
    for spec in contract.fields:
        if spec.zero_unless_rule:
            other, value = spec.zero_unless
            values, condition = frame[spec.name], frame[other]
            passes = values.isna() | (values == 0) | condition.isna() | (condition == value)
            frame[condition_column(spec.zero_unless_rule)] = passes.to_numpy(dtype=bool)
    return frame


def ingest_table(
    table: str,
    *,
    url: str,
    run_id: str,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    as_of: datetime | None = None,
    references: References | None = None,
    log: Callable[[str], None] | None = None,
) -> IngestionReport:
    """Validate source ``table`` and write its accepted rows and its quarantined rows.

    ``as_of`` (naive UTC, default now) is the instant after which timestamps are "in the
    future". ``references`` defaults to the accepted tables already in the warehouse.
    """
    started = time.perf_counter()
    table = str(table)
    contract = contract_for(table)
    as_of = as_of or datetime.now(UTC).replace(tzinfo=None)
    parameters = {"as_of_epoch_seconds": epoch_seconds(as_of)}
    for spec in contract.fields:
        if spec.maximum_years_before_run:
            parameters[f"{spec.name}_maximum"] = as_of.year - spec.maximum_years_before_run
    report = IngestionReport(table=table)
    failures: Counter[str] = Counter()
    quarantined_at = pd.Timestamp.now(tz="UTC")
    with SourceReader(url, chunk_rows=chunk_rows) as reader:
        reader.check_table(table, contract.columns)
        references = references or References.from_warehouse(contract)
        duplicated = _duplicated_keys(reader, contract)
        with (
            quarantine.part_writer(table) as quarantine_writer,
            warehouse.table_writer(table, empty_frame=empty_frame(contract)) as writer,
        ):
            steps: Counter[str] = Counter()
            clock = time.perf_counter()
            for raw in reader.read_chunks(table, contract.columns):
                steps["read"] += time.perf_counter() - clock
                clock = time.perf_counter()
                frame = prepare_chunk(
                    raw, contract, duplicated_keys=duplicated, references=references
                )
                steps["prepare"] += time.perf_counter() - clock
                clock = time.perf_counter()
                first_failed, names = validate_chunk(table, frame, parameters=parameters)
                steps["validate"] += time.perf_counter() - clock
                clock = time.perf_counter()
                accepted = first_failed < 0
                output = to_output(frame.loc[accepted], contract)
                if len(output):
                    writer.write(output)
                    if report.preview is None:
                        report.preview = output.head(PREVIEW_ROWS)
                rejected_rules = [names[position] for position in first_failed[~accepted]]
                if rejected_rules:
                    quarantine_writer.write(
                        quarantine.quarantine_records(
                            raw.loc[~accepted],
                            table=table,
                            key=contract.key,
                            failed_rules=rejected_rules,
                            run_id=run_id,
                            quarantined_at=quarantined_at,
                        )
                    )
                failures.update(rejected_rules)
                report.rows_read += len(raw)
                report.rows_accepted += len(output)
                report.rows_quarantined += len(rejected_rules)
                steps["write"] += time.perf_counter() - clock
                clock = time.perf_counter()
                if log:
                    log(
                        f"{table}: {report.rows_read:,} rows read, "
                        f"{report.rows_quarantined:,} quarantined so far"
                    )
            # Checked before the writers commit: a miscount leaves the old tables in place.
            written = writer.rows_written + quarantine_writer.rows_written
            if written != report.rows_read:
                raise IngestionError(
                    f"Ingestion of {table!r} read {report.rows_read:,} rows but wrote {written:,} "
                    "(accepted + quarantined); nothing was replaced"
                )
    clock = time.perf_counter()
    report.quarantined_rows_total = quarantine.rebuild_quarantined_rows()
    steps["write"] += time.perf_counter() - clock
    report.seconds_by_step = {step: round(seconds, 3) for step, seconds in steps.items()}
    report.failures_by_rule = dict(sorted(failures.items()))
    if report.preview is None:
        report.preview = empty_frame(contract)
    report.seconds = time.perf_counter() - started
    return report
