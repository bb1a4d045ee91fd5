"""What every online-store backend shares: the contact row, record encoding and errors."""

from __future__ import annotations

import json
import math
import secrets
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple, Protocol

import orjson


class StoreUnavailable(RuntimeError):
    """The online store cannot be reached or answered with an error (says which store)."""


class StoreUrlError(ValueError):
    """An online-store URL names no known backend."""


class Contact(NamedTuple):
    """One contact of a customer on a channel (a decision presented), shared by batch and
    real time so contact caps hold across both. (A named tuple: the service reads a
    customer's contacts on every decision, and a tuple is built ~5 times faster than a
    frozen dataclass.)"""

    contact_id: str
    customer_id: str
    channel: str
    treatment: str
    at: float  # seconds since the epoch
    declined: bool = False

    def to_json(self) -> str:
        return json.dumps(self._asdict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str | bytes) -> Contact:
        return cls(**json.loads(text))


# (customer_id, channel, treatment, at, declined): a contact as the batch path reads it;
# ``declined`` is true (a bool, or 1 from SQLite) when the customer declined the offer
ContactRow = tuple[str, str, str, float, bool | int]


class OnlineStore(Protocol):
    """The interface every backend implements (one module each, see ``BACKENDS``)."""

    url: str

    def write_snapshot(
        self, records: Iterable[tuple[str, Mapping[str, Any]]], meta: Mapping[str, Any]
    ) -> str: ...

    def read(self, customer_id: str) -> dict[str, Any] | None: ...

    def read_many(self, customer_ids: Sequence[str]) -> dict[str, str | bytes]:
        """The stored text of every known customer among ``customer_ids`` (one round trip)."""
        ...

    def contacts_many(self, customer_ids: Sequence[str]) -> dict[str, list[Contact]]: ...

    def recent_contacts(self, customer_ids: Sequence[str], since: float) -> list[ContactRow]:
        """The contacts of ``customer_ids`` made after ``since`` (seconds since the epoch)
        as :data:`ContactRow` tuples, each customer's rows together and in time order (one
        round trip; the batch endpoint reads a whole batch's contacts with it)."""
        ...

    def meta(self) -> dict[str, Any] | None: ...

    def record_contacts(self, contacts: Sequence[Contact]) -> None: ...

    def mark_declined(self, customer_id: str, contact_id: str) -> bool: ...

    def contacts(self, customer_id: str) -> list[Contact]: ...

    def ping(self) -> None: ...

    def close(self) -> None: ...


def new_generation() -> str:
    """A label for one snapshot: when it was written, plus a random suffix."""
    return f"{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{secrets.token_hex(4)}"


def _plain(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    if hasattr(value, "item") and not isinstance(value, list | dict | str):
        return _plain(value.item())
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def encode_record(record: Mapping[str, Any], generation: str) -> str:
    """JSON text of one customer's record (``customer`` inputs, ``accounts`` rows)."""
    return json.dumps(
        {
            "generation": generation,
            "customer": {k: _plain(v) for k, v in record["customer"].items()},
            "accounts": [{k: _plain(v) for k, v in row.items()} for row in record["accounts"]],
        },
        separators=(",", ":"),
    )


def decode_record(text: str | bytes | None) -> dict[str, Any] | None:
    return None if text is None else orjson.loads(text)


def snapshot_meta(meta: Mapping[str, Any], generation: str, customers: int) -> dict[str, Any]:
    return {**meta, "generation": generation, "customers": customers, "written_at": time.time()}
