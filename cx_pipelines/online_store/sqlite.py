"""Embedded online store (the default): one SQLite file in WAL mode.

A snapshot replaces every customer record and the metadata in one transaction, so a
reader sees the old snapshot or the new one, never a mix; WAL lets readers go on while
it is written. Records are read by primary key from disk, so the population may be far
larger than memory. One connection per thread.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Mapping, Sequence
from operator import itemgetter
from pathlib import Path
from typing import Any

import orjson

from cx_pipelines.online_store.classes import ClassSummary, ContactClasses
from cx_pipelines.online_store.common import (
    Contact,
    ContactRow,
    StoreUnavailable,
    decode_record,
    encode_record,
    new_generation,
    snapshot_meta,
)

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS features (customer_id TEXT PRIMARY KEY, record TEXT NOT NULL)"
    " WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
)
# Contacts are one B-tree in (customer, time) order: a decision reads its customer's
# contacts as one range, and a write touches one page per contact. The first layout (a
# rowid table, its contact_id key and a covering index: three B-trees, two of them in
# random order) wrote ~3 pages per contact, 40-90 us of CPU per contact at a few
# hundred thousand contacts, as much as deciding it (issue 9); stores that have it are
# moved to this one when opened.
_CONTACTS = (
    "CREATE TABLE IF NOT EXISTS contacts (customer_id TEXT NOT NULL, at REAL NOT NULL,"
    " contact_id TEXT NOT NULL, channel TEXT NOT NULL, treatment TEXT NOT NULL,"
    " declined INTEGER NOT NULL, PRIMARY KEY (customer_id, at, contact_id)) WITHOUT ROWID"
)
_OLD_CONTACT_INDEXES = ("contacts_by_customer_at", "contacts_by_customer")
_CONTACT_COLUMNS = "contact_id, customer_id, channel, treatment, at, declined"
WAL_CHECKPOINT_PAGES = 10_000


class SqliteStore:
    """The online store in a SQLite file (``sqlite:///path/to/online_store.db``)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.path = Path(url.removeprefix("sqlite:///"))
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        with self._connection() as connection:
            for statement in _SCHEMA:
                connection.execute(statement)
        _clustered_contacts(self._connection())

    def _connection(self) -> sqlite3.Connection:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            try:
                connection = sqlite3.connect(self.path, timeout=10, check_same_thread=False)
                connection.execute("PRAGMA journal_mode=WAL")
                connection.execute("PRAGMA synchronous=NORMAL")
                # checkpoint every ~40 MB of WAL, not SQLite's ~4 MB: a batch's contacts
                # touch ~1,000 pages of the clustered table, so at the default every write
                # set off a checkpoint copying them all; 10,000 pages copy each page once
                # for ~10 writes (CPU per 1,000 contact writes ~20 % less, wall ~35 %,
                # measured on a loaded machine, issue 9 session 5)
                connection.execute(f"PRAGMA wal_autocheckpoint={WAL_CHECKPOINT_PAGES}")
            except sqlite3.Error as error:
                raise StoreUnavailable(f"online store {self.path}: {error}") from error
            self._local.connection = connection
        return connection

    def _run(self, statement: str, parameters: tuple = ()) -> list[tuple]:
        try:
            return self._connection().execute(statement, parameters).fetchall()
        except sqlite3.Error as error:
            raise StoreUnavailable(f"online store {self.path}: {error}") from error

    def write_snapshot(
        self, records: Iterable[tuple[str, Mapping[str, Any]]], meta: Mapping[str, Any]
    ) -> str:
        generation = new_generation()
        connection = self._connection()
        count = 0

        def rows():
            nonlocal count
            for customer_id, record in records:
                count += 1
                yield str(customer_id), encode_record(record, generation)

        try:
            connection.execute("BEGIN IMMEDIATE")
            connection.execute("DELETE FROM features")
            connection.executemany("INSERT INTO features VALUES (?, ?)", rows())
            connection.execute(
                "INSERT OR REPLACE INTO meta VALUES ('snapshot', ?)",
                (json.dumps(snapshot_meta(meta, generation, count)),),
            )
            connection.execute("COMMIT")
        except (sqlite3.Error, ValueError):
            connection.execute("ROLLBACK")
            raise
        return generation

    def read(self, customer_id: str) -> dict[str, Any] | None:
        rows = self._run("SELECT record FROM features WHERE customer_id = ?", (customer_id,))
        return decode_record(rows[0][0]) if rows else None

    def read_many(self, customer_ids: Sequence[str]) -> dict[str, str | bytes]:
        return dict(
            self._run(
                "SELECT customer_id, record FROM features"
                " WHERE customer_id IN (SELECT value FROM json_each(?))",
                (_json_ids(customer_ids),),
            )
        )

    def contacts_many(self, customer_ids: Sequence[str]) -> dict[str, list[Contact]]:
        unique = list(dict.fromkeys(customer_ids))
        if len(unique) == 1:
            return {unique[0]: contacts} if (contacts := self.contacts(unique[0])) else {}
        found: dict[str, list[Contact]] = {}
        for chunk in _chunks(unique):
            marks = ",".join("?" * len(chunk))
            rows = self._run(
                f"SELECT {_CONTACT_COLUMNS} FROM contacts WHERE customer_id IN ({marks})"
                " ORDER BY customer_id, at",
                tuple(chunk),
            )
            for row in rows:
                found.setdefault(row[1], []).append(_contact(row))
        return found

    def recent_contacts(self, customer_ids: Sequence[str], since: float) -> list[ContactRow]:
        # each id one search of the covering index contacts_by_customer_at
        return self._run(
            "SELECT customer_id, channel, treatment, at, declined FROM contacts"
            " WHERE customer_id IN (SELECT value FROM json_each(?)) AND at > ?"
            " ORDER BY customer_id, at",
            (_json_ids(customer_ids), since),
        )

    def recent_contact_classes(
        self, customer_ids: Sequence[str], now: float, classes: ContactClasses
    ) -> list[ClassSummary]:
        """Each customer's contacts of the last ``classes.window`` days as class codes
        (``online_store/classes.py``), grouped here: one short row per customer instead of
        a row per contact (the class is worked out as :func:`summarise` does)."""
        if not classes.cuts:
            return []
        days = "((?2 - at) / 86400.0)"
        channel = " ".join(f"WHEN ?{5 + k} THEN {k + 1}" for k in range(len(classes.channels)))
        channel = f"(CASE channel {channel} ELSE 0 END)" if classes.channels else "0"
        spans = len(classes.cuts)
        start = 5 + len(classes.channels)
        span = " ".join(f"WHEN {days} < ?{start + k} THEN {k}" for k in range(spans - 1))
        span = f"(CASE {span} ELSE {spans - 1} END)" if spans > 1 else "0"
        return self._run(
            "SELECT customer_id,"
            " group_concat(CASE WHEN declined = 0 THEN char(48 + code) END, ''),"
            " group_concat(CASE WHEN declined <> 0 THEN char(48 + code) || treatment END,"
            " char(31))"
            f" FROM (SELECT customer_id, declined, treatment, {channel} * {spans} + {span} AS code"
            " FROM contacts WHERE customer_id IN (SELECT value FROM json_each(?1))"
            f" AND at > ?3 AND {days} < ?4) GROUP BY customer_id",
            (
                _json_ids(customer_ids),
                now,
                now - (classes.window + 1) * 86400.0,
                classes.window,
                *classes.channels,
                *classes.cuts[:-1],
            ),
        )

    def meta(self) -> dict[str, Any] | None:
        rows = self._run("SELECT value FROM meta WHERE key = 'snapshot'")
        return json.loads(rows[0][0]) if rows else None

    def record_contacts(self, contacts: Sequence[Contact]) -> None:
        connection = self._connection()
        try:
            with connection:
                connection.executemany(  # in key order: neighbours share their pages
                    f"INSERT OR IGNORE INTO contacts ({_CONTACT_COLUMNS})"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    sorted(
                        (
                            (
                                c.contact_id,
                                c.customer_id,
                                c.channel,
                                c.treatment,
                                c.at,
                                int(c.declined),
                            )
                            for c in contacts
                        ),
                        key=itemgetter(1, 4, 0),
                    ),
                )
        except sqlite3.Error as error:
            raise StoreUnavailable(f"online store {self.path}: {error}") from error

    def mark_declined(self, customer_id: str, contact_id: str) -> bool:
        connection = self._connection()
        try:
            with connection:
                cursor = connection.execute(
                    "UPDATE contacts SET declined = 1 WHERE contact_id = ? AND customer_id = ?",
                    (contact_id, customer_id),
                )
        except sqlite3.Error as error:
            raise StoreUnavailable(f"online store {self.path}: {error}") from error
        return cursor.rowcount > 0

    def contacts(self, customer_id: str) -> list[Contact]:
        rows = self._run(
            f"SELECT {_CONTACT_COLUMNS} FROM contacts WHERE customer_id = ? ORDER BY at",
            (customer_id,),
        )
        return [_contact(row) for row in rows]

    def ping(self) -> None:
        self._run("SELECT 1")

    def close(self) -> None:
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            connection.close()
            self._local.connection = None


def _clustered_contacts(connection: sqlite3.Connection) -> None:
    """Create the contacts table, or move a store's contacts from the first layout to the
    clustered one (one transaction; the first worker to open the store does it)."""
    try:
        connection.execute("BEGIN IMMEDIATE")
        found = connection.execute(
            "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'contacts'"
        ).fetchone()
        if found is not None and "WITHOUT ROWID" not in found[0].upper():
            connection.execute("ALTER TABLE contacts RENAME TO contacts_first_layout")
            for index in _OLD_CONTACT_INDEXES:
                connection.execute(f"DROP INDEX IF EXISTS {index}")
            connection.execute(_CONTACTS)
            connection.execute(
                f"INSERT OR IGNORE INTO contacts ({_CONTACT_COLUMNS})"
                f" SELECT {_CONTACT_COLUMNS} FROM contacts_first_layout"
            )
            connection.execute("DROP TABLE contacts_first_layout")
        else:
            connection.execute(_CONTACTS)
        connection.execute("COMMIT")
    except sqlite3.Error as error:
        if connection.in_transaction:
            connection.execute("ROLLBACK")
        raise StoreUnavailable(f"online store: contacts table: {error}") from error


def _contact(row: tuple) -> Contact:
    return Contact(row[0], row[1], row[2], row[3], row[4], row[5] == 1)


def _json_ids(customer_ids: Sequence[str]) -> str:
    """The ids as one JSON array, bound as one parameter and read with ``json_each``: one
    statement for any number of ids (no limit on bound variables)."""
    return orjson.dumps(list(dict.fromkeys(customer_ids))).decode()


def _chunks(items: list[str], size: int = 500) -> list[list[str]]:
    return [items[start : start + size] for start in range(0, len(items), size)]


def open_store(url: str) -> SqliteStore:
    return SqliteStore(url)
