"""The online store: each customer's engine inputs, keyed by customer id, for the decision
service; and the contact counters that batch and real-time decisions share.

The ``online_features`` asset writes a whole snapshot (from the latest materialised
warehouse tables) atomically; the service reads one customer at a time. A backend is one
module, registered in ``BACKENDS`` by URL scheme:

- ``sqlite:///path`` — embedded, the default (``$CX_HOME/online_store.db``);
- ``redis://host:port/db``;
- ``postgresql+psycopg2://user:password@host:port/database``.

``CX_ONLINE_STORE_URL`` chooses one. Contact counters: :func:`contact_history` gives a
customer's contacts in the shape the engine's contact policy reads (``days_ago``,
``declined``), so the batch side can apply the same caps (its integration is a later step).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from typing import Any

from cx_pipelines import config
from cx_pipelines.online_store import postgresql, redis, sqlite
from cx_pipelines.online_store.common import (
    Contact,
    OnlineStore,
    StoreUnavailable,
    StoreUrlError,
)

BACKENDS: dict[str, Callable[[str], OnlineStore]] = {
    "sqlite": sqlite.open_store,
    "redis": redis.open_store,
    "postgresql": postgresql.open_store,
}

__all__ = [
    "BACKENDS",
    "Contact",
    "OnlineStore",
    "StoreUnavailable",
    "StoreUrlError",
    "contact_history",
    "default_url",
    "open_store",
]

_DAY = 86_400.0


def default_url() -> str:
    """``CX_ONLINE_STORE_URL``, else SQLite at ``$CX_HOME/online_store.db``."""
    return (
        os.environ.get("CX_ONLINE_STORE_URL") or f"sqlite:///{config.cx_home() / 'online_store.db'}"
    )


def open_store(url: str | None = None) -> OnlineStore:
    """The backend for ``url`` (default :func:`default_url`)."""
    url = url or default_url()
    scheme = url.split(":", 1)[0].split("+", 1)[0]
    if scheme not in BACKENDS:
        raise StoreUrlError(
            f"online store URL scheme {scheme!r} is not one of {', '.join(BACKENDS)} "
            "(set CX_ONLINE_STORE_URL)"
        )
    return BACKENDS[scheme](url)


def contact_history(
    contacts: Iterable[Contact], *, now: float | None = None, window_days: float = 366
) -> list[dict[str, Any]]:
    """Contacts as the engine's contact history rows (``days_ago`` from ``now``)."""
    now = time.time() if now is None else now
    rows = []
    for _, customer_id, channel, treatment, at, declined in contacts:
        days_ago = (now - at) / _DAY
        if days_ago < window_days:
            rows.append(
                {
                    "customer_id": customer_id,
                    "channel": channel,
                    "treatment": treatment,
                    "days_ago": days_ago if days_ago > 0.0 else 0.0,
                    "declined": declined,
                }
            )
    return rows


def snapshot_records(customers: Any, accounts: Any) -> Iterable[tuple[str, dict[str, Any]]]:
    """(customer id, record) for every row of the engine's customers frame, each record
    holding that customer's engine inputs and account rows (pandas frames in, dicts out)."""
    by_customer: dict[str, list[dict[str, Any]]] = {}
    if len(accounts):
        for row in accounts.to_dict("records"):
            by_customer.setdefault(str(row["customer_id"]), []).append(row)
    for row in customers.to_dict("records"):
        customer_id = str(row["customer_id"])
        yield customer_id, {"customer": row, "accounts": by_customer.get(customer_id, [])}
