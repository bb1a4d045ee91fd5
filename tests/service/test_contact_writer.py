"""Contacts written by a thread off the request path: pending ones are counted at once, a
clean close writes them all, a failing store keeps them pending, the bound holds."""

from __future__ import annotations

import time

import pytest
import support
from conftest import prepare

from cx_pipelines.online_store import Contact, StoreUnavailable, open_store
from cx_pipelines.service.contacts import ContactWriter, RecordedContacts


def _contact(number: int, customer: str = "7", at: float | None = None) -> Contact:
    return Contact(f"d-{number}", customer, "web", "card_upgrade", at or 1_000.0 + number)


class FlakyStore:
    """A real SQLite store whose writes fail while ``failing`` is set (the store being
    down is what is tested; everything else is the real store)."""

    def __init__(self, url: str) -> None:
        self.store = open_store(url)
        self.url = url
        self.failing = False
        self.calls = 0

    def record_contacts(self, contacts) -> None:
        self.calls += 1
        if self.failing:
            raise StoreUnavailable("online store down (test)")
        self.store.record_contacts(contacts)

    def close(self) -> None:
        self.store.close()


@pytest.fixture
def url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'online_store.db'}"


def test_pending_contacts_are_counted_before_they_are_written_and_once_after(url):
    writer = ContactWriter(open_store(url), flush_ms=60_000)  # nothing written until flushed
    view = RecordedContacts(open_store(url), writer)
    view.record_contacts([_contact(1), _contact(2, customer="8")])
    assert open_store(url).contacts("7") == []  # not in the store yet
    assert [c.contact_id for c in view.contacts("7")] == ["d-1"]
    assert {
        k: [c.contact_id for c in v] for k, v in view.contacts_many(["7", "8", "9"]).items()
    } == {
        "7": ["d-1"],
        "8": ["d-2"],
    }
    assert [row[0] for row in view.recent_contacts(["7", "8", "9"], since=0.0)] == ["7", "8"]
    assert writer.pending == 2
    assert writer.flush(5)
    assert writer.pending == 0 and writer.written == 2
    assert [c.contact_id for c in open_store(url).contacts("7")] == ["d-1"]
    # one contact both stored and (again) pending is counted once, in time order
    open_store(url).record_contacts([_contact(0, at=900.0)])
    view.record_contacts([_contact(1)])
    assert [c.contact_id for c in view.contacts("7")] == ["d-0", "d-1"]
    assert [row[3] for row in view.recent_contacts(["7"], since=0.0)] == [900.0, 1001.0]
    writer.close()


def test_contacts_are_written_in_batches_within_the_flush_interval(url):
    store = FlakyStore(url)
    writer = ContactWriter(store, flush_ms=50)
    for number in range(20):
        writer.record([_contact(number)])
    deadline = time.monotonic() + 5
    while writer.written < 20 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert writer.written == 20 and writer.pending == 0
    assert store.calls <= 3  # gathered, not one write per contact
    assert len(open_store(url).contacts("7")) == 20
    writer.close()


def test_a_clean_close_writes_every_pending_contact(url):
    writer = ContactWriter(open_store(url), flush_ms=60_000)
    writer.record([_contact(number) for number in range(50)])
    started = time.monotonic()
    writer.close()
    assert time.monotonic() - started < 5  # close does not wait out the flush interval
    assert len(open_store(url).contacts("7")) == 50
    with pytest.raises(StoreUnavailable, match="closed"):
        writer.record([_contact(99)])


def test_a_failing_store_keeps_contacts_pending_and_counted_until_it_recovers(url):
    store = FlakyStore(url)
    store.failing = True
    writer = ContactWriter(store, flush_ms=1, retry_seconds=0.02)
    view = RecordedContacts(open_store(url), writer)
    view.record_contacts([_contact(1), _contact(2)])
    deadline = time.monotonic() + 5
    while store.calls < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert writer.failures >= 2 and writer.pending == 2
    assert len(view.contacts("7")) == 2  # still counted against the caps
    store.failing = False
    assert writer.flush(5)
    assert writer.written == 2 and writer.dropped == 0
    assert len(open_store(url).contacts("7")) == 2
    writer.close()


def test_over_the_bound_the_oldest_pending_contacts_are_dropped(url):
    store = FlakyStore(url)
    store.failing = True
    writer = ContactWriter(store, flush_ms=60_000, max_pending=5, close_seconds=0.2)
    writer.record([_contact(number) for number in range(8)])
    assert writer.pending == 5 and writer.dropped == 3
    assert [c.contact_id for c in writer.pending_for(["7"])["7"]] == [f"d-{n}" for n in range(3, 8)]
    writer.close()  # the store never recovers: given up after close_seconds
    assert writer.pending == 0 and writer.dropped == 8 and writer.written == 0


def test_a_pending_contact_can_be_declined(url):
    writer = ContactWriter(open_store(url), flush_ms=60_000)
    view = RecordedContacts(open_store(url), writer)
    view.record_contacts([_contact(1)])
    assert view.mark_declined("7", "d-1")
    assert [c.declined for c in open_store(url).contacts("7")] == [True]
    assert not view.mark_declined("7", "nope")
    writer.close()


def test_a_stopped_server_has_written_every_contact_it_answered(tmp_path):
    prepared = prepare(tmp_path / "cx", customers=20)
    extra = {"CX_SERVICE_CONTACT_FLUSH_MS": "200"}
    server = support.start_server(prepared.home, strategy=prepared.strategy, extra=extra)
    try:
        answers = [
            server.post("/v1/decisions", {"customer_id": "5", "channel": channel}).json()
            for channel in ("web", "email", "mobile_app")
        ]
        profile = server.get("/v1/customers/5/profile", headers=support.headers()).json()
        ready = server.get("/ready").json()
    finally:
        server.stop()  # SIGTERM: a clean shutdown
    presented = {a["decision_id"] for a in answers if a["treatment"] and a["rank"] is not None}
    assert presented  # the strategy presented something
    # the worker counted its own contacts at once (pending or written)
    assert {c["treatment"] for c in profile["contacts"]} <= {a["treatment"] for a in answers}
    assert len(profile["contacts"]) == len(presented)
    assert "contacts_pending" in ready
    stored = open_store(f"sqlite:///{prepared.home / 'online_store.db'}").contacts("5")
    assert {c.contact_id for c in stored} == presented


def test_the_contact_settings_are_read_and_checked(monkeypatch, tmp_path):
    from cx_pipelines.service.settings import ServiceSettings, SettingsError

    monkeypatch.setenv("CX_HOME", str(tmp_path))
    monkeypatch.setenv("CX_SERVICE_CONTACT_FLUSH_MS", "25")
    monkeypatch.setenv("CX_SERVICE_CONTACT_MAX_PENDING", "500")
    settings = ServiceSettings.from_environment()
    assert (settings.contact_flush_ms, settings.contact_max_pending) == (25.0, 500)
    monkeypatch.setenv("CX_SERVICE_CONTACT_FLUSH_MS", "soon")
    with pytest.raises(SettingsError, match="CX_SERVICE_CONTACT_FLUSH_MS"):
        ServiceSettings.from_environment()
