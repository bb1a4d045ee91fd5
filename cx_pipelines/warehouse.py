"""The warehouse: one Parquet file per materialised table, and a DuckDB catalog of views.

Every write goes to a temporary file beside its target and is renamed over it, so a
reader (a notebook, a running service, ``duckdb``) sees either the previous complete
version or the new complete version, never a half-written file. The DuckDB catalog is
rebuilt the same way: written to a temporary file, then renamed.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from cx_pipelines import config

_TABLE_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


class WarehouseError(Exception):
    """A table is missing, or its name cannot be a warehouse table."""


def table_path(name: str) -> Path:
    """Path of the Parquet file that holds table ``name``."""
    if not _TABLE_NAME.match(name):
        raise WarehouseError(
            f"Table name {name!r} must be lower-case letters, digits and underscores"
        )
    return config.warehouse_dir() / f"{name}.parquet"


def table_exists(name: str) -> bool:
    return table_path(name).exists()


def list_tables() -> list[str]:
    """Names of every table in the warehouse, sorted."""
    folder = config.warehouse_dir()
    if not folder.exists():
        return []
    return sorted(path.stem for path in folder.glob("*.parquet"))


def read_table(name: str, *, columns: list[str] | None = None) -> pd.DataFrame:
    """Return materialised table ``name`` as a DataFrame."""
    path = table_path(name)
    if not path.exists():
        raise WarehouseError(
            f"Table {name!r} has not been materialised (no {path}); "
            f"run `cx materialize {name}` first"
        )
    return pq.read_table(path, columns=columns).to_pandas()


def table_row_count(name: str) -> int:
    return pq.ParquetFile(table_path(name)).metadata.num_rows


def write_table(name: str, frame: pd.DataFrame) -> Path:
    """Atomically replace table ``name`` with ``frame`` and refresh the catalog."""
    with table_writer(name) as writer:
        writer.write(frame)
    return table_path(name)


class TableWriter:
    """Streams DataFrame chunks into one Parquet file; see :func:`table_writer`."""

    def __init__(self, temporary_path: Path) -> None:
        self._temporary_path = temporary_path
        self._writer: pq.ParquetWriter | None = None
        self._schema: pa.Schema | None = None
        self.rows_written = 0

    def write(self, frame: pd.DataFrame) -> None:
        table = pa.Table.from_pandas(frame, preserve_index=False)
        if self._writer is None:
            self._schema = table.schema
            self._writer = pq.ParquetWriter(self._temporary_path, self._schema)
        else:
            table = table.cast(self._schema)
        self._writer.write_table(table)
        self.rows_written += table.num_rows

    def close(self, empty_frame: pd.DataFrame | None) -> None:
        if self._writer is None:
            # Nothing was written: still leave a readable (empty) table behind.
            frame = empty_frame if empty_frame is not None else pd.DataFrame()
            pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), self._temporary_path)
        else:
            self._writer.close()


@contextmanager
def table_writer(name: str, *, empty_frame: pd.DataFrame | None = None) -> Iterator[TableWriter]:
    """Write table ``name`` chunk by chunk; it replaces the old one only if the block succeeds.

    ``empty_frame`` gives the columns of the table when no chunk is written.
    """
    target = table_path(name)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.parent / f".{name}.{uuid.uuid4().hex}.tmp"
    writer = TableWriter(temporary)
    try:
        yield writer
        writer.close(empty_frame)
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)
    refresh_catalog()


def refresh_catalog() -> Path:
    """Rebuild the DuckDB catalog: one view per table, named like the table."""
    catalog = config.catalog_path()
    catalog.parent.mkdir(parents=True, exist_ok=True)
    temporary = catalog.parent / f".{catalog.name}.{uuid.uuid4().hex}.tmp"
    try:
        with duckdb.connect(str(temporary)) as connection:
            for name in list_tables():
                path = str(table_path(name)).replace("'", "''")
                connection.execute(
                    f"CREATE OR REPLACE VIEW {name} AS SELECT * FROM read_parquet('{path}')"
                )
        os.replace(temporary, catalog)
    finally:
        temporary.unlink(missing_ok=True)
        Path(f"{temporary}.wal").unlink(missing_ok=True)
    return catalog


def connect() -> duckdb.DuckDBPyConnection:
    """A read-only DuckDB connection in which every table is a view named after its asset."""
    catalog = config.catalog_path()
    if not catalog.exists():
        refresh_catalog()
    return duckdb.connect(str(catalog), read_only=True)


def query(sql: str) -> pd.DataFrame:
    """Run SQL over the warehouse views and return the result as a DataFrame."""
    with connect() as connection:
        return connection.execute(sql).df()
