"""Bulk writes of column arrays into the source tables, fast on SQLite and PostgreSQL.

Columns arrive as NumPy arrays: integers, floats (NaN is NULL), booleans, strings (object
arrays may hold None), ``datetime64[s]`` for DateTime and ``datetime64[D]`` for Date
columns. SQLite gets DBAPI ``executemany``, with date and time values passed as whole seconds and
formatted by SQLite into the exact text that SQLAlchemy's SQLite types store and parse
(so sub-second parts are dropped); PostgreSQL gets ``COPY … FROM STDIN``; any
other database gets SQLAlchemy Core ``insert`` with lists of parameter dictionaries.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, nullcontext
from pathlib import Path

import numpy as np
import sqlalchemy as sa

from cx_pipelines.source_schema import RESPONSE_TABLES, SOURCE_TABLES, metadata

CREATED_TABLES = (*SOURCE_TABLES, *RESPONSE_TABLES)
"""Every table a new world replaces: the source tables it fills, and the (empty) response tables."""

BATCH_ROWS = 100_000
"""Rows converted to Python values at a time, to bound memory on large chunks."""


class SourceWriteError(RuntimeError):
    """A table could not be written to the source database."""


def source_engine(url: str) -> sa.Engine:
    """Engine for ``url``; for a SQLite file, its folder is created when missing.

    On SQLite the driver's own transaction handling is switched off and SQLAlchemy emits
    BEGIN itself, so that DDL (dropping and creating tables) is transactional as well.
    """
    parsed = sa.engine.make_url(url)
    engine = sa.create_engine(parsed)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database not in (None, "", ":memory:"):
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)

        @sa.event.listens_for(engine, "connect")
        def _driver_autocommit(dbapi_connection, _record) -> None:
            dbapi_connection.isolation_level = None
            dbapi_connection.execute("PRAGMA synchronous = OFF")

        @sa.event.listens_for(engine, "begin")
        def _begin(connection: sa.Connection) -> None:
            connection.exec_driver_sql("BEGIN")

    return engine


def _with_nulls(result: np.ndarray, missing: np.ndarray) -> list:
    if missing.any():
        result = result.astype(object)
        result[missing] = None
    return result.tolist()


def _text_datetimes(values: np.ndarray) -> np.ndarray:
    raw = np.datetime_as_string(values.astype("datetime64[us]"), unit="us").astype("S26")
    raw.view(np.uint8).reshape(len(raw), 26)[:, 10] = ord(" ")
    return raw.astype("U26")


def _python_values(values: np.ndarray, column: sa.Column, *, dialect: str) -> list:
    """Values of one column as the driver of ``dialect`` takes them (see the module doc)."""
    kind = values.dtype.kind
    if kind == "M":
        is_datetime = isinstance(column.type, sa.DateTime)
        missing = np.isnat(values)
        if dialect == "sqlite":  # whole seconds since the epoch, formatted by SQLite itself
            return _with_nulls(values.astype("datetime64[s]").astype(np.int64), missing)
        if dialect == "postgresql":
            if is_datetime:
                return _with_nulls(_text_datetimes(values), missing)
            return _with_nulls(np.datetime_as_string(values.astype("datetime64[D]")), missing)
        return _with_nulls(
            values.astype("datetime64[us]" if is_datetime else "datetime64[D]"), missing
        )
    if kind == "f":
        return _with_nulls(values, np.isnan(values))
    return values.tolist()


def _sqlite_placeholder(column: sa.Column, values: np.ndarray) -> str:
    """SQLAlchemy's SQLite text formats for DateTime and Date, built by SQLite from seconds."""
    if values.dtype.kind != "M":
        return "?"
    if isinstance(column.type, sa.DateTime):
        return "strftime('%Y-%m-%d %H:%M:%S', ?, 'unixepoch') || '.000000'"
    return "date(?, 'unixepoch')"


class SourceWriter:
    """Drops, recreates and fills the source tables of one database (response tables stay empty)."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        self._connection: sa.Connection | None = None

    @contextmanager
    def replacing(self) -> Iterator[SourceWriter]:
        """Run every write inside one transaction: if anything fails, the old tables stay."""
        with self.engine.begin() as connection:
            self._connection = connection
            try:
                yield self
            finally:
                self._connection = None

    def _begin(self):
        if self._connection is not None:
            return nullcontext(self._connection)
        return self.engine.begin()

    def recreate_tables(self) -> None:
        """Drop the source tables and create them empty, without indexes (added at the end)."""
        with self._begin() as connection:
            metadata.drop_all(connection, tables=list(CREATED_TABLES), checkfirst=True)
            for table in CREATED_TABLES:
                connection.execute(sa.schema.CreateTable(table))

    def create_indexes(self) -> None:
        """Create the indexes declared in the schema, after the bulk load."""
        with self._begin() as connection:
            for table in CREATED_TABLES:
                for index in table.indexes:
                    index.create(connection)

    def write(self, tables: Mapping[str, Mapping[str, np.ndarray]]) -> None:
        """Append rows to several tables in one transaction."""
        with self._begin() as connection:
            for name, columns in tables.items():
                table = metadata.tables[name]
                try:
                    self._write_table(connection, table, columns)
                except sa.exc.DBAPIError as error:
                    raise SourceWriteError(
                        f"Could not write table {name!r} to {self.engine.url!r}: {error.orig}"
                    ) from error

    def _write_table(
        self, connection: sa.Connection, table: sa.Table, columns: Mapping[str, np.ndarray]
    ) -> None:
        names = list(columns)
        unknown = set(names) - set(table.columns.keys())
        if unknown:
            raise SourceWriteError(f"Table {table.name!r} has no columns {sorted(unknown)}")
        rows = len(next(iter(columns.values())))
        for start in range(0, rows, BATCH_ROWS):
            stop = min(start + BATCH_ROWS, rows)
            values = [
                _python_values(columns[name][start:stop], table.columns[name], dialect=self.dialect)
                for name in names
            ]
            if self.dialect == "sqlite":
                placeholders = ", ".join(
                    _sqlite_placeholder(table.columns[name], columns[name]) for name in names
                )
                sql = f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({placeholders})"
                cursor = connection.connection.driver_connection.cursor()
                cursor.executemany(sql, zip(*values, strict=True))
                cursor.close()
            elif self.dialect == "postgresql":
                buffer = io.StringIO()
                csv.writer(buffer, lineterminator="\n").writerows(zip(*values, strict=True))
                buffer.seek(0)
                cursor = connection.connection.driver_connection.cursor()
                cursor.copy_expert(
                    f"COPY {table.name} ({', '.join(names)}) FROM STDIN WITH (FORMAT csv)", buffer
                )
                cursor.close()
            else:
                connection.execute(
                    table.insert(),
                    [dict(zip(names, row, strict=True)) for row in zip(*values, strict=True)],
                )
