"""Online store in Redis (``redis://host:port/db``).

Each snapshot writes its records under keys of its own generation, then flips the
metadata key to it in one command, so readers switch from the old snapshot to the new
one at once; the generation before the previous one is deleted afterwards (the previous
stays readable for requests that looked the generation up just before the flip).
Contacts are one hash per customer.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping, Sequence
from operator import itemgetter
from typing import Any

import orjson
import redis
from redis.exceptions import RedisError

from cx_pipelines.online_store.common import (
    Contact,
    ContactRow,
    StoreUnavailable,
    decode_record,
    encode_record,
    new_generation,
    snapshot_meta,
)

PREFIX = "cx:online"
_META = f"{PREFIX}:meta"
_GENERATIONS = f"{PREFIX}:generations"
_BATCH = 2_000
_META_TTL_SECONDS = 0.5


def _feature_key(generation: str, customer_id: str) -> str:
    return f"{PREFIX}:f:{generation}:{customer_id}"


def _contact_key(customer_id: str) -> str:
    return f"{PREFIX}:c:{customer_id}"


class RedisStore:
    """The online store in a Redis database."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        self._generation: str | None = None
        self._checked = 0.0

    def _fail(self, error: RedisError) -> StoreUnavailable:
        return StoreUnavailable(f"online store redis: {type(error).__name__}: {error}")

    def write_snapshot(
        self, records: Iterable[tuple[str, Mapping[str, Any]]], meta: Mapping[str, Any]
    ) -> str:
        generation = new_generation()
        count = 0
        try:
            pipeline = self.client.pipeline(transaction=False)
            for customer_id, record in records:
                pipeline.set(
                    _feature_key(generation, str(customer_id)), encode_record(record, generation)
                )
                count += 1
                if count % _BATCH == 0:
                    pipeline.execute()
            pipeline.execute()
            flip = self.client.pipeline(transaction=True)
            flip.set(_META, json.dumps(snapshot_meta(meta, generation, count)))
            flip.rpush(_GENERATIONS, generation)
            flip.execute()
            self._generation, self._checked = generation, time.monotonic()
            old = self.client.lrange(_GENERATIONS, 0, -3)
            for stale in old:
                stale = stale.decode()
                for keys in _chunks(self.client.scan_iter(f"{PREFIX}:f:{stale}:*", count=1000)):
                    self.client.delete(*keys)
                self.client.lrem(_GENERATIONS, 1, stale)
        except RedisError as error:
            raise self._fail(error) from error
        return generation

    def _current(self, *, refresh: bool = False) -> str | None:
        now = time.monotonic()
        if refresh or self._generation is None or now - self._checked > _META_TTL_SECONDS:
            meta = self.meta()
            self._generation = None if meta is None else meta["generation"]
            self._checked = now
        return self._generation

    def read(self, customer_id: str) -> dict[str, Any] | None:
        try:
            generation = self._current()
            if generation is None:
                return None
            text = self.client.get(_feature_key(generation, customer_id))
            if text is None and self._current(refresh=True) != generation:
                text = self.client.get(_feature_key(self._generation, customer_id))
        except RedisError as error:
            raise self._fail(error) from error
        return decode_record(text)

    def read_many(self, customer_ids: Sequence[str]) -> dict[str, str | bytes]:
        unique = list(dict.fromkeys(customer_ids))
        try:
            generation = self._current()
            if generation is None or not unique:
                return {}
            values = self.client.mget([_feature_key(generation, c) for c in unique])
        except RedisError as error:
            raise self._fail(error) from error
        return {c: v for c, v in zip(unique, values, strict=True) if v is not None}

    def _contact_values(self, customer_ids: Sequence[str]) -> tuple[list[str], list]:
        """Each distinct customer id and its stored contacts' JSON texts (one pipeline)."""
        unique = list(dict.fromkeys(customer_ids))
        try:
            pipeline = self.client.pipeline(transaction=False)
            for customer_id in unique:
                pipeline.hvals(_contact_key(customer_id))
            return unique, pipeline.execute()
        except RedisError as error:
            raise self._fail(error) from error

    def contacts_many(self, customer_ids: Sequence[str]) -> dict[str, list[Contact]]:
        unique, answers = self._contact_values(customer_ids)
        return {
            c: sorted((Contact.from_json(v) for v in values), key=lambda x: x.at)
            for c, values in zip(unique, answers, strict=True)
            if values
        }

    def recent_contacts(self, customer_ids: Sequence[str], since: float) -> list[ContactRow]:
        unique, answers = self._contact_values(customer_ids)
        rows: list[ContactRow] = []
        for customer_id, values in zip(unique, answers, strict=True):
            if values:
                contacts = [orjson.loads(value) for value in values]
                rows.extend(
                    (customer_id, c["channel"], c["treatment"], c["at"], c["declined"])
                    for c in sorted(contacts, key=itemgetter("at"))
                    if c["at"] > since
                )
        return rows

    def meta(self) -> dict[str, Any] | None:
        try:
            value = self.client.get(_META)
        except RedisError as error:
            raise self._fail(error) from error
        return None if value is None else json.loads(value)

    def record_contacts(self, contacts: Sequence[Contact]) -> None:
        try:
            pipeline = self.client.pipeline(transaction=False)
            for contact in contacts:
                pipeline.hsetnx(
                    _contact_key(contact.customer_id), contact.contact_id, contact.to_json()
                )
            pipeline.execute()
        except RedisError as error:
            raise self._fail(error) from error

    def mark_declined(self, customer_id: str, contact_id: str) -> bool:
        key = _contact_key(customer_id)
        try:
            text = self.client.hget(key, contact_id)
            if text is None:
                return False
            contact = Contact.from_json(text)
            declined = contact._replace(declined=True)
            self.client.hset(key, contact_id, declined.to_json())
        except RedisError as error:
            raise self._fail(error) from error
        return True

    def contacts(self, customer_id: str) -> list[Contact]:
        try:
            values = self.client.hvals(_contact_key(customer_id))
        except RedisError as error:
            raise self._fail(error) from error
        return sorted((Contact.from_json(v) for v in values), key=lambda c: c.at)

    def ping(self) -> None:
        try:
            self.client.ping()
        except RedisError as error:
            raise self._fail(error) from error

    def close(self) -> None:
        self.client.close()


def _chunks(keys: Iterable[bytes], size: int = 500) -> Iterable[list[bytes]]:
    batch: list[bytes] = []
    for key in keys:
        batch.append(key)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def open_store(url: str) -> RedisStore:
    return RedisStore(url)
