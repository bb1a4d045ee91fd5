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
from collections.abc import Callable, Iterable, Sequence
from operator import itemgetter
from typing import Any

import numpy as np

from cx_pipelines import config
from cx_pipelines.online_store import postgresql, redis, sqlite
from cx_pipelines.online_store.classes import (
    ClassSummary,
    ContactClasses,
    class_columns,
    contact_classes,
    summarise,
)
from cx_pipelines.online_store.common import (
    Contact,
    ContactRow,
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
    "DAY",
    "ClassSummary",
    "ContactClasses",
    "HISTORY_DAYS",
    "Contact",
    "ContactRow",
    "OnlineStore",
    "StoreUnavailable",
    "StoreUrlError",
    "class_columns",
    "contact_classes",
    "contact_columns",
    "contact_history",
    "default_url",
    "open_store",
    "recent_contact_classes",
    "summarise",
]

_DAY = 86_400.0
DAY = _DAY
HISTORY_DAYS = 366.0  # contact_history's window: older contacts are not the engine's history


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


def contact_columns(
    rows: Sequence[ContactRow],
    requested: Sequence[str | None],
    *,
    now: float,
    window_days: float = HISTORY_DAYS,
) -> tuple[dict[str, np.ndarray], np.ndarray] | None:
    """Many requests' contact histories at once: :func:`contact_history` of each request's
    customer (``requested``, one id per request; None: no history) as the engine's history
    columns, with the request position of each row (rows of one request together, in
    time order), or None when there is no row. ``rows`` are a store's
    ``recent_contacts`` (each customer's rows together, in time order)."""
    if not rows:
        return None
    # column by column (a transposing zip(*rows) is several times slower)
    customer, channel, treatment, at, declined = (
        list(map(itemgetter(field), rows)) for field in range(5)
    )
    customers = np.array(customer, dtype=object)
    starts = np.flatnonzero(np.r_[True, customers[1:] != customers[:-1]])
    counts = np.diff(np.r_[starts, len(customers)])
    span = dict(
        zip(
            customers[starts].tolist(),
            zip(starts.tolist(), counts.tolist(), strict=True),
            strict=True,
        )
    )
    positions, firsts, sizes = [], [], []
    for position, customer_id in enumerate(requested):
        found = span.get(customer_id)
        if found is not None:
            positions.append(position)
            firsts.append(found[0])
            sizes.append(found[1])
    if not positions:
        return None
    size = np.asarray(sizes, dtype=np.int64)
    total = int(size.sum())
    offsets = np.cumsum(size) - size
    chosen = np.arange(total) - np.repeat(offsets - np.asarray(firsts), size)
    days = (now - np.array(at, dtype=np.float64)[chosen]) / _DAY  # as contact_history
    kept = days < window_days
    if not kept.any():
        return None
    chosen, days = chosen[kept], days[kept]
    columns = {
        "customer_id": customers[chosen],
        "channel": np.array(channel, dtype=object)[chosen],
        "treatment": np.array(treatment, dtype=object)[chosen],
        "days_ago": np.where(days > 0.0, days, 0.0),
        "declined": np.array(declined, dtype=bool)[chosen],
    }
    return columns, np.repeat(np.asarray(positions, dtype=np.int64), size)[kept]


def recent_contact_classes(
    store: OnlineStore, customer_ids: Sequence[str], now: float, classes: ContactClasses
) -> list[ClassSummary]:
    """The class summaries of ``customer_ids``' recent contacts (``online_store/classes.py``):
    grouped by the store where it can (SQLite), else from its ``recent_contacts``."""
    if not customer_ids or not classes.cuts:
        return []
    grouped = getattr(store, "recent_contact_classes", None)
    if grouped is not None:
        return grouped(customer_ids, now, classes)
    rows = store.recent_contacts(customer_ids, now - (classes.window + 1) * _DAY)
    return summarise(rows, now, classes)


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
