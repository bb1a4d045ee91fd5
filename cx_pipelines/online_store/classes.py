"""A batch's contact histories as classes: what the engine's contact rules read of a contact.

The contact policy of a strategy reads a contact only through comparisons: its channel
against the channels its caps name, ``days_ago < limit`` against its cap periods and its
decline window, and, for a declined contact, its treatment. Two contacts that agree on
every comparison change no answer when swapped, so each contact of a batch's histories is
reduced to its *class*: the named channel it was on (or "another channel") and the span
between two consecutive day limits it falls in. A store returns, per customer, one
character per contact not declined (its class code) and ``code + treatment`` per declined
contact (:data:`ClassSummary`), so a batch of 1,000 decisions reads 1,000 short rows, not
one row of five values per contact (the SQLite backend groups in SQL; the others, and the
contacts still pending in a worker, go through :func:`summarise`).

:func:`class_columns` turns the summaries into the engine's history columns: one row per
contact, its channel the named one or None, ``days_ago`` the lower end of its span (the
same outcome in every comparison as the contact's own), ``treatment`` None unless
declined. Per request the rows are grouped by class, not in time order; every count the
contact rules make, and so every answer and trace, is that of :func:`contact_columns` of
the same contacts (``tests/service/test_contact_classes.py``).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np

from cx_pipelines.online_store.common import ContactRow

DAY = 86_400.0
CODE_BASE = 48  # class k is the character chr(48 + k)
MAX_CLASSES = 75  # codes stay within printable ASCII ("0" .. "z")
SEPARATOR = "\x1f"  # between the declined contacts of one customer

# (customer_id, the class codes of its contacts not declined (None: none), its declined
# contacts as code + treatment joined by SEPARATOR (None: none))
ClassSummary = tuple[str, str | None, str | None]


class ContactClasses(NamedTuple):
    """The comparisons a strategy's contact rules make: the channels they name (every
    other channel is one class) and their day limits, ascending (the last is the window:
    older contacts are left out)."""

    channels: tuple[str, ...]
    cuts: tuple[float, ...]

    @property
    def window(self) -> float:
        return self.cuts[-1] if self.cuts else 0.0

    @property
    def count(self) -> int:
        return (len(self.channels) + 1) * len(self.cuts)


def contact_classes(channels: Iterable[str], limits: Iterable[float]) -> ContactClasses:
    """Classes for contact rules naming ``channels`` ("*" is every channel) and comparing
    ``days_ago`` with ``limits``; ValueError beyond :data:`MAX_CLASSES`."""
    named = tuple(dict.fromkeys(c for c in channels if c != "*"))
    classes = ContactClasses(named, tuple(sorted({float(limit) for limit in limits})))
    if classes.count > MAX_CLASSES:
        raise ValueError(f"{classes.count} contact classes; at most {MAX_CLASSES}")
    return classes


def summarise(
    rows: Sequence[ContactRow], now: float, classes: ContactClasses
) -> list[ClassSummary]:
    """The summaries of ``rows`` (a store's ``recent_contacts``), as the SQLite backend's
    ``recent_contact_classes`` makes them in SQL: the same arithmetic, so the same class."""
    channel_of = {name: k + 1 for k, name in enumerate(classes.channels)}
    cuts, spans, window = classes.cuts, len(classes.cuts), classes.window
    plain: dict[str, list[str]] = {}
    declined: dict[str, list[str]] = {}
    for customer_id, channel, treatment, at, was_declined in rows:
        days = (now - at) / DAY
        if not days < window:
            continue
        code = chr(CODE_BASE + channel_of.get(channel, 0) * spans + bisect_right(cuts, days))
        if was_declined:
            declined.setdefault(customer_id, []).append(code + treatment)
            plain.setdefault(customer_id, [])
        else:
            plain.setdefault(customer_id, []).append(code)
    return [
        (
            customer_id,
            "".join(codes) or None,
            SEPARATOR.join(declined[customer_id]) if customer_id in declined else None,
        )
        for customer_id, codes in plain.items()
    ]


def class_columns(
    summaries: Iterable[ClassSummary], requested: Sequence[str | None], classes: ContactClasses
) -> tuple[dict[str, np.ndarray], np.ndarray] | None:
    """The engine's history columns of every request (``requested``: one customer id per
    request, None for no history) and the request position of each row, or None when no
    request has a contact: equal, for the contact rules, to :func:`contact_columns` of
    the contacts the summaries stand for."""
    found: Mapping[str, tuple[str | None, str | None]] = {
        customer_id: (plain, declined) for customer_id, plain, declined in summaries
    }
    if not found:
        return None
    texts: list[str] = []
    positions: list[int] = []
    sizes: list[int] = []
    customers: list[str] = []
    flagged: list[int] = []  # row numbers of declined contacts
    treatments: list[str] = []
    total = 0
    for position, customer_id in enumerate(requested):
        summary = found.get(customer_id) if customer_id is not None else None
        if summary is None:
            continue
        plain, declined = summary
        text = plain or ""
        if declined:
            items = declined.split(SEPARATOR)
            flagged.extend(range(total + len(text), total + len(text) + len(items)))
            treatments.extend(item[1:] for item in items)
            text += "".join(item[0] for item in items)
        if not text:
            continue
        texts.append(text)
        positions.append(position)
        sizes.append(len(text))
        customers.append(customer_id)
        total += len(text)
    if not total:
        return None
    codes = np.frombuffer("".join(texts).encode("ascii"), dtype=np.uint8).astype(np.int64)
    codes -= CODE_BASE
    spans = len(classes.cuts)
    channel_names = np.empty(len(classes.channels) + 1, dtype=object)
    channel_names[:] = [None, *classes.channels]
    lows = np.array((0.0, *classes.cuts[:-1]), dtype=np.float64)
    size = np.asarray(sizes, dtype=np.int64)
    owners = np.empty(len(customers), dtype=object)
    owners[:] = customers
    declined_flags = np.zeros(total, dtype=bool)
    treatment = np.full(total, None, dtype=object)
    if flagged:
        declined_flags[flagged] = True
        treatment[flagged] = treatments
    columns: dict[str, Any] = {
        "customer_id": np.repeat(owners, size),
        "channel": channel_names[codes // spans],
        "treatment": treatment,
        "days_ago": lows[codes % spans],
        "declined": declined_flags,
    }
    return columns, np.repeat(np.asarray(positions, dtype=np.int64), size)
