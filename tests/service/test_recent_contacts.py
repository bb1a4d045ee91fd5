"""A batch's contact read with pending contacts: only the customers with pending contacts
are merged, and every customer's rows stay together, in time order, each counted once."""

from __future__ import annotations

import itertools

from cx_pipelines.online_store import Contact, contact_columns, open_store
from cx_pipelines.service.contacts import ContactWriter, RecordedContacts


def test_pending_contacts_merge_into_their_customers_rows_only(tmp_path):
    url = f"sqlite:///{tmp_path / 'online_store.db'}"
    stored = [
        Contact(f"s-{c}-{k}", str(c), "web", "card_upgrade", 1_000.0 + 10 * k + c)
        for c, k in itertools.product(range(1, 7), range(3))
    ]
    open_store(url).record_contacts(stored)
    writer = ContactWriter(open_store(url), flush_ms=60_000)  # pending until flushed
    view = RecordedContacts(open_store(url), writer)
    # customer 2: a pending contact between its stored ones and one already stored;
    # customer 5: a newest one; customer 9: only a pending one
    view.record_contacts(
        [
            Contact("p-2", "2", "email", "savings", 1_015.0),
            stored[4],
            Contact("p-5", "5", "web", "savings", 2_000.0),
            Contact("p-9", "9", "web", "savings", 1_500.0),
        ]
    )
    wanted = ["1", "2", "3", "5", "9"]
    rows = view.recent_contacts(wanted, since=0.0)
    by_customer = [
        (key, [row[3] for row in group])
        for key, group in itertools.groupby(rows, key=lambda row: row[0])
    ]
    assert sorted(by_customer) == [
        ("1", [1_001.0, 1_011.0, 1_021.0]),
        ("2", [1_002.0, 1_012.0, 1_015.0, 1_022.0]),
        ("3", [1_003.0, 1_013.0, 1_023.0]),
        ("5", [1_005.0, 1_015.0, 1_025.0, 2_000.0]),
        ("9", [1_500.0]),
    ]
    assert len({key for key, _ in by_customer}) == len(by_customer)  # each group once
    # the engine's columns are the same as from the rows in (customer, time) order
    now = 3_000.0
    columns, positions = contact_columns(rows, wanted, now=now)
    reference, reference_positions = contact_columns(
        sorted(rows, key=lambda row: (row[0], row[3])), wanted, now=now
    )
    assert positions.tolist() == reference_positions.tolist()
    assert {k: v.tolist() for k, v in columns.items()} == {
        k: v.tolist() for k, v in reference.items()
    }
    writer.close()
