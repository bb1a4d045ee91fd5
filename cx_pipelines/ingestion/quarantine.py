"""Quarantine: rows that fail a rule are kept, with the rule and the raw row, never dropped.

Each source table's quarantined rows of its latest run are written to a *part* file
(``$CX_HOME/warehouse/_quarantine/<table>.parquet``, replaced atomically), then the
``quarantined_rows`` warehouse table is rebuilt as the union of all parts under a file lock.
A re-run of one table therefore replaces that table's quarantined rows and never duplicates
them, and two tables ingested at the same time cannot lose each other's rows.
"""

from __future__ import annotations

import fcntl
import json
import math
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from cx_pipelines import config, privacy, warehouse

QUARANTINE_TABLE = "quarantined_rows"

QUARANTINE_DTYPES = {
    "source_table": "str",
    "source_key": "str",
    "failed_rule": "str",
    "raw_row": "str",
    "run_id": "str",
    "quarantined_at": "datetime64[us, UTC]",
}
"""Columns of ``quarantined_rows``: ``raw_row`` is the source row as JSON text (personal
values masked; ``source_table`` and ``source_key`` find the row in the source)."""


def empty_quarantine_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {name: pd.Series([], dtype=dtype) for name, dtype in QUARANTINE_DTYPES.items()}
    )


def _parts_dir() -> Path:
    return config.warehouse_dir() / "_quarantine"


def part_path(table: str) -> Path:
    """The file holding ``table``'s quarantined rows from its latest ingestion."""
    warehouse.table_path(table)  # validates the name
    return _parts_dir() / f"{table}.parquet"


def _json_value(value: object) -> object:
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else (None if math.isnan(value) else str(value))
    if isinstance(value, str | int | bool):
        return value
    if isinstance(value, datetime | date | pd.Timestamp):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="backslashreplace")
    if isinstance(value, Decimal):
        return str(value)
    return str(value)


def raw_row_json(row: dict[str, object]) -> str:
    """A source row as JSON text, values exactly as the source returned them, except that
    personal values are masked (:mod:`cx_pipelines.privacy`; the source keeps them)."""
    values = {column: _json_value(value) for column, value in row.items()}
    return json.dumps(privacy.mask_record(values), ensure_ascii=False)


def quarantine_records(
    raw: pd.DataFrame,
    *,
    table: str,
    key: str,
    failed_rules: list[str],
    run_id: str,
    quarantined_at: pd.Timestamp,
) -> pd.DataFrame:
    """One quarantine record per row of ``raw`` (the failing source rows, raw values)."""
    rows = raw.to_dict(orient="records")
    keys = [_json_value(row[key]) for row in rows]
    return pd.DataFrame(
        {
            "source_table": pd.Series([table] * len(rows), dtype="str"),
            "source_key": pd.Series(
                [None if value is None else str(value) for value in keys], dtype="str"
            ),
            "failed_rule": pd.Series(failed_rules, dtype="str"),
            "raw_row": pd.Series([raw_row_json(row) for row in rows], dtype="str"),
            "run_id": pd.Series([run_id] * len(rows), dtype="str"),
            "quarantined_at": pd.Series([quarantined_at] * len(rows), dtype="datetime64[us, UTC]"),
        }
    )


@contextmanager
def part_writer(table: str) -> Iterator[warehouse.TableWriter]:
    """Stream ``table``'s quarantined rows; the part is replaced only if the block succeeds."""
    with warehouse.atomic_parquet(
        part_path(table),
        table=f"{QUARANTINE_TABLE} (part of {table})",
        empty_frame=empty_quarantine_frame(),
    ) as writer:
        yield writer


def quarantined_count(table: str) -> int:
    """Rows of ``table`` quarantined by its latest ingestion (0 before the first)."""
    path = part_path(table)
    return pq.ParquetFile(path).metadata.num_rows if path.exists() else 0


def quarantined_for(table: str) -> pd.DataFrame:
    """The quarantine records of ``table``'s latest ingestion."""
    path = part_path(table)
    return pq.read_table(path).to_pandas() if path.exists() else empty_quarantine_frame()


@contextmanager
def _lock() -> Iterator[None]:
    lock_path = config.warehouse_dir() / f".{QUARANTINE_TABLE}.lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def rebuild_quarantined_rows() -> int:
    """Rewrite ``quarantined_rows`` as the union of every table's part; return its row count."""
    with _lock():
        parts = sorted(_parts_dir().glob("*.parquet")) if _parts_dir().exists() else []
        with warehouse.table_writer(QUARANTINE_TABLE, empty_frame=empty_quarantine_frame()) as out:
            for part in parts:
                for batch in pq.ParquetFile(part).iter_batches(batch_size=250_000):
                    out.write(batch.to_pandas())
        return out.rows_written
