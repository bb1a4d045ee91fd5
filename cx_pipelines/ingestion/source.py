"""Reading the source system: raw values, chunk by chunk, with errors that name table and URL.

Columns are selected untyped, so SQLAlchemy applies no result processing: a text value in a
numeric column (SQLite allows it) arrives as text and is quarantined by the contract
instead of crashing the read.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError

from cx_pipelines.ingestion.errors import (
    SourceColumnsMissingError,
    SourceTableMissingError,
    SourceUnavailableError,
)

DEFAULT_CHUNK_ROWS = 250_000
SQLITE_MMAP_BYTES = 1 << 30


def mask_url(url: str) -> str:
    """The URL with its password replaced by ``***``, safe to print in errors and logs."""
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable database URL>"


def _reason(error: BaseException) -> str:
    original = getattr(error, "orig", None) or error
    return str(original).strip().splitlines()[0] if str(original).strip() else type(error).__name__


class SourceReader:
    """Reads source tables from one database URL; use as a context manager."""

    def __init__(self, url: str, *, chunk_rows: int = DEFAULT_CHUNK_ROWS) -> None:
        if chunk_rows < 1:
            raise ValueError(f"chunk_rows must be at least 1, got {chunk_rows}")
        self.url = url
        self.masked_url = mask_url(url)
        self.chunk_rows = chunk_rows
        self._engine: sa.Engine | None = None

    def __enter__(self) -> SourceReader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    def _engine_for(self, table: str) -> sa.Engine:
        if self._engine is not None:
            return self._engine
        try:
            parsed = sa.engine.make_url(self.url)
        except ArgumentError as error:
            raise SourceUnavailableError(
                table=table, url=self.masked_url, reason=f"not a database URL ({error})"
            ) from error
        in_file = parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "")
        # SQLite would silently create an empty file; say instead that there is none.
        if in_file and parsed.database != ":memory:" and not Path(parsed.database).exists():
            raise SourceUnavailableError(
                table=table,
                url=self.masked_url,
                reason=f"database file {parsed.database} does not exist",
            )
        try:
            self._engine = sa.create_engine(parsed)
        except (NoSuchModuleError, ArgumentError, ImportError) as error:
            raise SourceUnavailableError(
                table=table, url=self.masked_url, reason=_reason(error)
            ) from error
        return self._engine

    def check_table(self, table: str, columns: list[str]) -> None:
        """Raise a clear error unless ``table`` exists with every one of ``columns``."""
        engine = self._engine_for(table)
        try:
            inspector = sa.inspect(engine)
            if not inspector.has_table(table):
                raise SourceTableMissingError(table=table, url=self.masked_url)
            present = {column["name"] for column in inspector.get_columns(table)}
        except DBAPIError as error:
            raise SourceUnavailableError(
                table=table, url=self.masked_url, reason=_reason(error)
            ) from error
        missing = [column for column in columns if column not in present]
        if missing:
            raise SourceColumnsMissingError(table=table, url=self.masked_url, columns=missing)

    def duplicated_keys(self, table: str, key: str) -> np.ndarray:
        """Raw values of ``key`` that occur on more than one row (nulls excluded)."""
        column = sa.column(key)
        statement = (
            sa.select(column)
            .select_from(sa.table(table))
            .where(column.is_not(None))
            .group_by(column)
            .having(sa.func.count() > 1)
        )
        try:
            with self._engine_for(table).connect() as connection:
                values = connection.execute(statement).scalars().all()
        except DBAPIError as error:
            raise SourceUnavailableError(
                table=table, url=self.masked_url, reason=_reason(error)
            ) from error
        return np.array(values, dtype=object)

    def read_chunks(self, table: str, columns: list[str]) -> Iterator[pd.DataFrame]:
        """Yield the table as DataFrames of at most ``chunk_rows`` rows of raw (object) values.

        Rows come straight from the driver's cursor (a server-side cursor on PostgreSQL, so
        the table is streamed): building SQLAlchemy row objects would cost more than the read.
        """
        engine = self._engine_for(table)
        statement = sa.select(*(sa.column(name) for name in columns)).select_from(sa.table(table))
        sql = str(statement.compile(dialect=engine.dialect))
        driver_error = engine.dialect.loaded_dbapi.Error
        try:
            connection = engine.raw_connection()
        except DBAPIError as error:
            raise SourceUnavailableError(
                table=table, url=self.masked_url, reason=_reason(error)
            ) from error
        try:
            if engine.dialect.name == "postgresql":
                cursor = connection.driver_connection.cursor(name=f"cx_ingest_{uuid.uuid4().hex}")
                cursor.itersize = self.chunk_rows
                _temporal_values_as_text(cursor, engine.dialect.driver)
            else:
                cursor = connection.cursor()
                if engine.dialect.name == "sqlite":
                    # Memory-mapped reads: a large extract streams with fewer copies.
                    cursor.execute(f"PRAGMA mmap_size={SQLITE_MMAP_BYTES}")
            try:
                cursor.execute(sql)
                while rows := cursor.fetchmany(self.chunk_rows):
                    yield _raw_frame(rows, columns)
            finally:
                cursor.close()
        except driver_error as error:
            raise SourceUnavailableError(
                table=table, url=self.masked_url, reason=_reason(error)
            ) from error
        finally:
            connection.close()


_POSTGRES_TEMPORAL_TYPES = (1082, 1114, 1184)
"""OIDs of PostgreSQL ``date``, ``timestamp`` and ``timestamptz``."""


def _temporal_values_as_text(cursor: object, driver: str) -> None:
    """Have psycopg2 hand dates and timestamps over as their text.

    PostgreSQL holds dates Python cannot (``10000-01-01``, ``0044-03-15 BC``); psycopg2
    would raise on the first one and fail the whole read. As text, such a value reaches
    coercion like any other and quarantines its own row (``<column>_is_date``).
    """
    if driver != "psycopg2":
        return
    import psycopg2.extensions

    as_text = psycopg2.extensions.new_type(
        _POSTGRES_TEMPORAL_TYPES, "CX_TEMPORAL_AS_TEXT", lambda value, _cursor: value
    )
    psycopg2.extensions.register_type(as_text, cursor)


def _raw_frame(rows: list[tuple], columns: list[str]) -> pd.DataFrame:
    """Rows as object columns, exactly as the driver returned them (no type inference)."""
    if not rows:
        return pd.DataFrame({name: pd.Series([], dtype=object) for name in columns})
    table = np.empty((len(rows), len(columns)), dtype=object)
    table[:] = rows
    # Explicit object Series: pandas would otherwise infer its string dtype from text.
    return pd.DataFrame(
        {
            name: pd.Series(np.ascontiguousarray(table[:, position]), dtype=object, copy=False)
            for position, name in enumerate(columns)
        },
        copy=False,
    )
