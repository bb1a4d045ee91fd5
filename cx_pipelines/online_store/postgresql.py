"""Online store in PostgreSQL (``postgresql+psycopg2://user:pass@host:port/db``), through
SQLAlchemy. A snapshot replaces every record and the metadata in one transaction."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import SQLAlchemyError

from cx_pipelines.online_store.common import (
    Contact,
    ContactRow,
    StoreUnavailable,
    decode_record,
    encode_record,
    new_generation,
    snapshot_meta,
)

_METADATA = sa.MetaData()
FEATURES = sa.Table(
    "cx_online_features",
    _METADATA,
    sa.Column("customer_id", sa.Text, primary_key=True),
    sa.Column("record", sa.Text, nullable=False),
)
META = sa.Table(
    "cx_online_meta",
    _METADATA,
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)
CONTACTS = sa.Table(
    "cx_online_contacts",
    _METADATA,
    sa.Column("contact_id", sa.Text, primary_key=True),
    sa.Column("customer_id", sa.Text, nullable=False, index=True),
    sa.Column("channel", sa.Text, nullable=False),
    sa.Column("treatment", sa.Text, nullable=False),
    sa.Column("at", sa.Float, nullable=False),
    sa.Column("declined", sa.Boolean, nullable=False),
)
_BATCH = 5_000


class PostgresStore:
    """The online store in three ``cx_online_*`` tables of a PostgreSQL database."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = sa.create_engine(
            url,
            pool_size=4,
            max_overflow=4,
            pool_pre_ping=True,
            connect_args={"connect_timeout": 2},
        )
        try:
            _METADATA.create_all(self.engine)
        except SQLAlchemyError as error:
            raise StoreUnavailable(f"online store {self.engine.url!r}: {error}") from error

    def _fail(self, error: SQLAlchemyError) -> StoreUnavailable:
        return StoreUnavailable(f"online store {self.engine.url!r}: {type(error).__name__}")

    def write_snapshot(
        self, records: Iterable[tuple[str, Mapping[str, Any]]], meta: Mapping[str, Any]
    ) -> str:
        generation = new_generation()
        count = 0
        try:
            with self.engine.begin() as connection:
                connection.execute(sa.delete(FEATURES))
                batch: list[dict] = []
                for customer_id, record in records:
                    batch.append(
                        {
                            "customer_id": str(customer_id),
                            "record": encode_record(record, generation),
                        }
                    )
                    count += 1
                    if len(batch) >= _BATCH:
                        connection.execute(sa.insert(FEATURES), batch)
                        batch = []
                if batch:
                    connection.execute(sa.insert(FEATURES), batch)
                value = json.dumps(snapshot_meta(meta, generation, count))
                connection.execute(sa.delete(META).where(META.c.key == "snapshot"))
                connection.execute(sa.insert(META), [{"key": "snapshot", "value": value}])
        except SQLAlchemyError as error:
            raise self._fail(error) from error
        return generation

    def _scalar(self, statement) -> Any:
        try:
            with self.engine.connect() as connection:
                return connection.execute(statement).scalar()
        except SQLAlchemyError as error:
            raise self._fail(error) from error

    def read(self, customer_id: str) -> dict[str, Any] | None:
        return decode_record(
            self._scalar(sa.select(FEATURES.c.record).where(FEATURES.c.customer_id == customer_id))
        )

    def read_many(self, customer_ids: Sequence[str]) -> dict[str, str | bytes]:
        statement = sa.select(FEATURES.c.customer_id, FEATURES.c.record).where(
            FEATURES.c.customer_id == sa.any_(_ids(customer_ids))
        )
        try:
            with self.engine.connect() as connection:
                return dict(connection.execute(statement).tuples().all())
        except SQLAlchemyError as error:
            raise self._fail(error) from error

    def contacts_many(self, customer_ids: Sequence[str]) -> dict[str, list[Contact]]:
        statement = (
            sa.select(CONTACTS)
            .where(CONTACTS.c.customer_id.in_(list(set(customer_ids))))
            .order_by(CONTACTS.c.at)
        )
        try:
            with self.engine.connect() as connection:
                rows = connection.execute(statement).all()
        except SQLAlchemyError as error:
            raise self._fail(error) from error
        found: dict[str, list[Contact]] = {}
        for r in rows:
            found.setdefault(r[1], []).append(
                Contact(r[0], r[1], r[2], r[3], float(r[4]), bool(r[5]))
            )
        return found

    def recent_contacts(self, customer_ids: Sequence[str], since: float) -> list[ContactRow]:
        columns = CONTACTS.c
        statement = (
            sa.select(columns.customer_id, columns.channel, columns.treatment)
            .add_columns(columns.at, columns.declined)
            .where(columns.customer_id == sa.any_(_ids(customer_ids)), columns.at > since)
            .order_by(columns.customer_id, columns.at)
        )
        try:
            with self.engine.connect() as connection:
                return connection.execute(statement).tuples().all()
        except SQLAlchemyError as error:
            raise self._fail(error) from error

    def meta(self) -> dict[str, Any] | None:
        value = self._scalar(sa.select(META.c.value).where(META.c.key == "snapshot"))
        return None if value is None else json.loads(value)

    def record_contacts(self, contacts: Sequence[Contact]) -> None:
        if not contacts:
            return
        from sqlalchemy.dialects.postgresql import insert

        rows = [
            {
                "contact_id": c.contact_id,
                "customer_id": c.customer_id,
                "channel": c.channel,
                "treatment": c.treatment,
                "at": c.at,
                "declined": c.declined,
            }
            for c in contacts
        ]
        try:
            with self.engine.begin() as connection:
                connection.execute(insert(CONTACTS).on_conflict_do_nothing(), rows)
        except SQLAlchemyError as error:
            raise self._fail(error) from error

    def mark_declined(self, customer_id: str, contact_id: str) -> bool:
        statement = (
            sa.update(CONTACTS)
            .where(CONTACTS.c.contact_id == contact_id, CONTACTS.c.customer_id == customer_id)
            .values(declined=True)
        )
        try:
            with self.engine.begin() as connection:
                return connection.execute(statement).rowcount > 0
        except SQLAlchemyError as error:
            raise self._fail(error) from error

    def contacts(self, customer_id: str) -> list[Contact]:
        statement = (
            sa.select(CONTACTS).where(CONTACTS.c.customer_id == customer_id).order_by(CONTACTS.c.at)
        )
        try:
            with self.engine.connect() as connection:
                rows = connection.execute(statement).all()
        except SQLAlchemyError as error:
            raise self._fail(error) from error
        return [Contact(r[0], r[1], r[2], r[3], float(r[4]), bool(r[5])) for r in rows]

    def ping(self) -> None:
        self._scalar(sa.select(sa.literal(1)))

    def close(self) -> None:
        self.engine.dispose()


def _ids(customer_ids: Sequence[str]) -> sa.BindParameter:
    """The ids as one array parameter (``= ANY(:ids)``): one statement, cached once,
    whatever the batch's size."""
    return sa.bindparam("ids", list(dict.fromkeys(customer_ids)), type_=ARRAY(sa.Text))


def open_store(url: str) -> PostgresStore:
    return PostgresStore(url)
