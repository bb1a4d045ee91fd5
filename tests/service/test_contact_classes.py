"""A batch's contact histories as classes (online_store/classes.py): SQLite's grouping in
SQL equals the Python one, and every count the contact rules make (per cap: contacts on
its channel within its period; per treatment: declines within the window) is that of
the contacts' own history columns, at the day limits themselves too."""

from __future__ import annotations

import random

import numpy as np
import pytest

from cx_pipelines.online_store import (
    Contact,
    class_columns,
    contact_classes,
    contact_columns,
    open_store,
    summarise,
)
from cx_pipelines.online_store.classes import MAX_CLASSES
from cx_pipelines.service.contacts import ContactWriter, RecordedContacts

NOW = 1_800_000_000.0
DAY = 86_400.0
CHANNELS = ("web", "email", "atm", "branch", "sms")
TREATMENTS = ("card", "loan", "save")
CAPS = (("email", 7.0), ("*", 30.0), ("web", 30.0), ("sms", 2.5))  # (channel, period)
WINDOW = 90.0  # decline window


def _contacts(customers: int, seed: int) -> list[Contact]:
    chance = random.Random(seed)
    limits = [period for _, period in CAPS] + [WINDOW]
    contacts = []
    for number in range(customers):
        for k in range(chance.randrange(0, 14)):
            if chance.random() < 0.4:  # on a day limit, or a hair either side of it
                days = chance.choice(limits) + chance.choice([0.0, 1e-9, -1e-9])
            else:
                days = chance.choice([-0.5, 0.0, 1.0, 6.99, 20.0, 60.0, 89.9, 95.0, 400.0])
            contacts.append(
                Contact(
                    f"c{number}-{k}",
                    str(number),
                    chance.choice(CHANNELS),
                    chance.choice(TREATMENTS),
                    NOW - days * DAY,
                    chance.random() < 0.3,
                )
            )
    return contacts


def _counts(history, requests: int) -> dict[tuple, list[int]]:
    """What the contact rules count per request: each cap, and declines per treatment."""
    counts: dict[tuple, list[int]] = {}
    if history is None:
        return counts
    columns, owners = history
    days, channel = columns["days_ago"], columns["channel"]
    for name, period in CAPS:
        rows = (days < period) & ((channel == name) if name != "*" else True)
        counts[("cap", name, period)] = np.bincount(owners[rows], minlength=requests).tolist()
    for treatment in TREATMENTS:
        rows = columns["declined"] & (days < WINDOW) & (columns["treatment"] == treatment)
        counts[("declines", treatment)] = np.bincount(owners[rows], minlength=requests).tolist()
    return counts


def _canonical(summaries) -> dict[str, tuple]:
    return {
        customer: (sorted(plain or ""), sorted((declined or "").split("\x1f")))
        for customer, plain, declined in summaries
    }


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_classes_count_what_the_contact_rows_count(tmp_path, seed):
    store = open_store(f"sqlite:///{tmp_path / 'online_store.db'}")
    contacts = _contacts(60, seed)
    store.record_contacts(contacts)
    classes = contact_classes([name for name, _ in CAPS], [p for _, p in CAPS] + [WINDOW])
    assert classes.channels == ("email", "web", "sms") and classes.window == WINDOW
    wanted = [str(n) for n in range(0, 70, 2)]  # some without any contact
    rows = store.recent_contacts(wanted, NOW - (WINDOW + 1) * DAY)
    in_sql = store.recent_contact_classes(wanted, NOW, classes)
    assert _canonical(in_sql) == _canonical(summarise(rows, NOW, classes))
    requested = ["4", None, "4", "9", "nobody", *wanted]  # repeated, none, unknown
    expected = contact_columns(rows, requested, now=NOW, window_days=WINDOW)
    got = class_columns(in_sql, requested, classes)
    assert _counts(got, len(requested)) == _counts(expected, len(requested))
    assert sum(sum(v) for v in _counts(got, len(requested)).values()) > 0
    columns, owners = got
    assert owners.tolist() == sorted(owners.tolist())  # each request's rows together
    assert set(np.unique(columns["channel"].astype(str))) <= {"None", *classes.channels}
    store.close()


def test_no_contacts_and_no_rules():
    classes = contact_classes(["email"], [7])
    assert class_columns([], ["1"], classes) is None
    assert class_columns([("1", "0", None)], [None, "2"], classes) is None
    only_declined = class_columns([("1", None, "0card\x1f0loan")], ["1"], classes)
    assert only_declined[0]["treatment"].tolist() == ["card", "loan"]
    assert only_declined[0]["declined"].tolist() == [True, True]
    with pytest.raises(ValueError, match="contact classes"):
        contact_classes([f"c{k}" for k in range(MAX_CLASSES)], [1, 2])


def test_pending_contacts_are_counted_once_in_the_classes(tmp_path):
    """A worker's view: customers with contacts still pending are summarised from the
    merged rows (a contact both pending and stored counts once), the others in SQL."""
    url = f"sqlite:///{tmp_path / 'online_store.db'}"
    stored = _contacts(20, 4)
    open_store(url).record_contacts(stored)
    writer = ContactWriter(open_store(url), flush_ms=60_000)  # pending until flushed
    view = RecordedContacts(open_store(url), writer)
    mine = [s for s in stored if s.customer_id == "3"][:1]  # already stored too
    view.record_contacts(
        [
            *mine,
            Contact("p-3", "3", "email", "card", NOW - DAY),
            Contact("p-9", "9", "web", "loan", NOW, True),
        ]
    )
    classes = contact_classes([name for name, _ in CAPS], [p for _, p in CAPS] + [WINDOW])
    wanted = [str(n) for n in range(12)]
    rows = view.recent_contacts(wanted, NOW - (WINDOW + 1) * DAY)
    got = view.recent_contact_classes(wanted, NOW, classes)
    assert _canonical(got) == _canonical(summarise(rows, NOW, classes))
    # a pending decline, with its treatment: on web (named channel 2 of 3), days 0 (span 0)
    assert _canonical(got)["9"][1][-1] == chr(48 + 2 * len(classes.cuts)) + "loan"
    writer.close()
