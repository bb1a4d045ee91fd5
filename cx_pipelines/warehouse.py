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


TEMPORARY_SUFFIX = ".tmp"


def temporary_path(target: Path) -> Path:
    """A fresh temporary file beside ``target``, named with this process's id.

    The id lets the next run tell debris of a killed process (sweep it) from the file a
    live writer is still filling (leave it).
    """
    return target.parent / f".{target.stem}.{os.getpid()}-{uuid.uuid4().hex}{TEMPORARY_SUFFIX}"


class TableWriter:
    """Streams DataFrame chunks into one Parquet file; see :func:`table_writer`.

    Every failure closes the Parquet writer at once (an unlinked file that stays open keeps
    its disk space until the process exits) and is raised as a :class:`WarehouseWriteError`
    naming the table and the file.
    """

    def __init__(self, temporary_path: Path, *, table: str, target: Path) -> None:
        self._temporary_path = temporary_path
        self._writer: pq.ParquetWriter | None = None
        self._schema: pa.Schema | None = None
        self.table = table
        self.target = target
        self.rows_written = 0

    def _failed(self, error: BaseException) -> WarehouseWriteError:
        self.abort()
        return WarehouseWriteError(table=self.table, path=self.target, reason=error)

    def write(self, frame: pd.DataFrame) -> None:
        try:
            table = pa.Table.from_pandas(frame, preserve_index=False)
            if self._writer is None:
                self._schema = table.schema
                self._writer = pq.ParquetWriter(self._temporary_path, self._schema)
            else:
                table = table.cast(self._schema)
            self._writer.write_table(table)
        except _WRITE_ERRORS as error:
            raise self._failed(error) from error
        self.rows_written += table.num_rows

    def close(self, empty_frame: pd.DataFrame | None) -> None:
        try:
            if self._writer is None:
                # Nothing was written: still leave a readable (empty) table behind.
                frame = empty_frame if empty_frame is not None else pd.DataFrame()
                empty = pa.Table.from_pandas(frame, preserve_index=False)
                pq.write_table(empty, self._temporary_path)
            else:
                writer, self._writer = self._writer, None
                writer.close()
        except _WRITE_ERRORS as error:
            raise self._failed(error) from error

    def abort(self) -> None:
        """Close the file without completing it (idempotent); the caller removes it."""
        writer, self._writer = self._writer, None
        if writer is None:
            return
        try:
            writer.close()
        except _WRITE_ERRORS:
            # The file is being thrown away; the error that got us here is the one to report.
            return


_WRITE_ERRORS = (pa.ArrowException, OSError, ValueError, TypeError, OverflowError)


class WarehouseWriteError(WarehouseError):
    """A table could not be written; the previous version of it is left in place."""

    def __init__(self, *, table: str, path: Path, reason: BaseException | str) -> None:
        self.table = table
        self.path = path
        text = str(reason).strip().splitlines()[0] if str(reason).strip() else repr(reason)
        super().__init__(
            f"Cannot write table {table!r} to {path}: {text} (the previous version is kept)"
        )


@contextmanager
def atomic_parquet(
    target: Path, *, table: str, empty_frame: pd.DataFrame | None = None
) -> Iterator[TableWriter]:
    """Stream a Parquet file that replaces ``target`` only if the block succeeds."""
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = temporary_path(target)
    writer = TableWriter(temporary, table=table, target=target)
    try:
        yield writer
        writer.close(empty_frame)
        try:
            os.replace(temporary, target)
        except OSError as error:
            raise WarehouseWriteError(table=table, path=target, reason=error) from error
    finally:
        writer.abort()
        temporary.unlink(missing_ok=True)


@contextmanager
def table_writer(name: str, *, empty_frame: pd.DataFrame | None = None) -> Iterator[TableWriter]:
    """Write table ``name`` chunk by chunk; it replaces the old one only if the block succeeds.

    ``empty_frame`` gives the columns of the table when no chunk is written.
    """
    with atomic_parquet(table_path(name), table=name, empty_frame=empty_frame) as writer:
        yield writer
    refresh_catalog()


def refresh_catalog() -> Path:
    """Rebuild the DuckDB catalog: one view per table, named like the table.

    Views read ``warehouse/<table>.parquet`` relative to CX_HOME (see :func:`connect`), so a
    copied or moved CX_HOME reads its own files.
    """
    catalog = config.catalog_path()
    catalog.parent.mkdir(parents=True, exist_ok=True)
    temporary = temporary_path(catalog)
    name = "<none>"
    try:
        with duckdb.connect(str(temporary)) as connection:
            _search_files_in_home(connection)
            for name in list_tables():
                path = _catalog_relative(table_path(name)).replace("'", "''")
                connection.execute(
                    f"CREATE OR REPLACE VIEW {name} AS SELECT * FROM read_parquet('{path}')"
                )
        os.replace(temporary, catalog)
    except (duckdb.Error, OSError) as error:
        raise WarehouseWriteError(
            table=f"catalog view {name}", path=catalog, reason=error
        ) from error
    finally:
        temporary.unlink(missing_ok=True)
        Path(f"{temporary}.wal").unlink(missing_ok=True)
    return catalog


def _catalog_relative(path: Path) -> str:
    return path.relative_to(config.catalog_path().parent).as_posix()


def connect() -> duckdb.DuckDBPyConnection:
    """A read-only DuckDB connection in which every table is a view named after its asset.

    Views name their files relative to CX_HOME; the connection resolves them there. From
    the ``duckdb`` command line, start in CX_HOME (``cd .cx && duckdb warehouse.duckdb``).
    """
    catalog = config.catalog_path()
    if not catalog.exists():
        refresh_catalog()
    connection = duckdb.connect(str(catalog), read_only=True)
    _search_files_in_home(connection)
    return connection


def _search_files_in_home(connection: duckdb.DuckDBPyConnection) -> None:
    home = str(config.catalog_path().parent).replace("'", "''")
    connection.execute(f"SET file_search_path = '{home}'")


def query(sql: str) -> pd.DataFrame:
    """Run SQL over the warehouse views and return the result as a DataFrame."""
    with connect() as connection:
        return connection.execute(sql).df()
