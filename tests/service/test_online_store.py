"""Online-store backends: the same behaviour on SQLite, and on real Redis and PostgreSQL
servers (CX_TEST_REDIS_URL, CX_TEST_POSTGRES_URL; .ci/run starts both)."""

from __future__ import annotations

import os
import secrets
import threading
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
import support
from conftest import prepare

from cx_pipelines.online_store import (
    Contact,
    OnlineStore,
    StoreUrlError,
    contact_history,
    open_store,
)


def _redis_url() -> str:
    url = os.environ.get("CX_TEST_REDIS_URL")
    if not url:
        pytest.skip("CX_TEST_REDIS_URL is not set (.ci/run starts a Redis server and sets it)")
    base, _, _ = url.rpartition("/")
    # a database per pytest-xdist worker (gw0 → 1, gw1 → 2, ...), emptied by each test first:
    # tests of one worker run one at a time, so no two tests share a database at once
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    return f"{base}/{int(worker) % 15 + 1}"


def _postgres_url() -> str:
    url = os.environ.get("CX_TEST_POSTGRES_URL")
    if not url:
        pytest.skip("CX_TEST_POSTGRES_URL is not set (.ci/run starts a server and sets it)")
    schema = f"online_{secrets.token_hex(4)}"
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        connection.execute(sa.text(f"CREATE SCHEMA {schema}"))
    engine.dispose()
    return f"{url}?options=-csearch_path%3D{schema}"


def store_url(kind: str, tmp_path) -> str:
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'online.db'}"
    if kind == "redis":
        url = _redis_url()
        import redis

        redis.Redis.from_url(url).flushdb()
        return url
    return _postgres_url()


@pytest.fixture(params=["sqlite", "redis", "postgresql"])
def store(request, tmp_path) -> Iterator[OnlineStore]:
    opened = open_store(store_url(request.param, tmp_path))
    yield opened
    opened.close()


def _records(count: int, label: str):
    for number in range(count):
        yield (
            str(number),
            {
                "customer": {"customer_id": str(number), "label": label, "x": float("nan")},
                "accounts": [{"account_id": number, "balance": 1.5}],
            },
        )


def _bytes(text: str | bytes) -> bytes:
    return text if isinstance(text, bytes) else text.encode()


def test_a_snapshot_replaces_every_record_at_once(store):
    assert store.meta() is None and store.read("1") is None
    first = store.write_snapshot(_records(50, "old"), {"model_versions": {"cx_propensity": "1"}})
    assert store.read("7")["customer"] == {"customer_id": "7", "label": "old", "x": None}
    assert store.read("7")["generation"] == first and store.meta()["customers"] == 50
    second = store.write_snapshot(_records(20, "new"), {"model_versions": {"cx_propensity": "2"}})
    assert second != first
    assert store.read("7")["customer"]["label"] == "new" and store.read("7")["generation"] == second
    assert store.read("30") is None  # not in the new snapshot
    assert store.meta()["model_versions"] == {"cx_propensity": "2"}
    many = store.read_many(["3", "19", "30", "3"])
    assert set(many) == {"3", "19"} and b'"label":"new"' in _bytes(many["3"])


def test_readers_see_one_snapshot_or_the_other_never_a_mix(store):
    store.write_snapshot(_records(300, "a"), {})
    stop, seen, errors = threading.Event(), set(), []

    def reader() -> None:
        while not stop.is_set():
            record = store.read("299")
            if record is None:
                errors.append("missing")
            else:
                seen.add((record["generation"], record["customer"]["label"]))

    thread = threading.Thread(target=reader)
    thread.start()
    generations = {store.write_snapshot(_records(300, label), {}): label for label in "bcd"}
    stop.set()
    thread.join()
    assert not errors
    assert all(generations.get(generation, "a") == label for generation, label in seen)


def test_contacts_are_counted_and_declines_marked(store):
    now = 1_800_000_000.0
    contacts = [
        Contact("d1", "5", "email", "savings_offer", now - 86_400),
        Contact("d2", "5", "web", "credit_card_offer", now - 3 * 86_400),
        Contact("d3", "6", "web", "credit_card_offer", now),
    ]
    store.record_contacts(contacts)
    store.record_contacts(contacts[:1])  # a repeat is recorded once
    assert store.mark_declined("5", "d2") and not store.mark_declined("5", "nope")
    many = store.contacts_many(["5", "6", "7"])
    assert {k: [c.contact_id for c in v] for k, v in many.items()} == {
        "5": ["d2", "d1"],
        "6": ["d3"],
    }
    history = contact_history(store.contacts("5"), now=now)
    assert [(h["channel"], round(h["days_ago"]), h["declined"]) for h in history] == [
        ("web", 3, True),
        ("email", 1, False),
    ]


def test_an_unknown_url_scheme_is_refused():
    with pytest.raises(StoreUrlError, match="mongodb"):
        open_store("mongodb://localhost/x")


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["redis", "postgresql"])
def test_the_service_decides_from_a_server_store(kind, tmp_path):
    url = store_url(kind, tmp_path)
    prepared = prepare(tmp_path / "cx", store_url=url, customers=20)
    server = support.start_server(prepared.home, strategy=prepared.strategy, store_url=url)
    try:
        known = server.post("/v1/decisions", {"customer_id": "4", "channel": "web"}).json()
        unknown = server.post("/v1/decisions", {"customer_id": "x9", "channel": "web"}).json()
        profile = server.get("/v1/customers/4/profile", headers=support.headers()).json()
    finally:
        server.stop()
    assert known["known_customer"] and known["model_versions"]["cx_propensity"] == "3"
    assert unknown["reason"] == "unknown_customer"
    assert [c["treatment"] for c in profile["contacts"]] == [known["treatment"]]


def test_a_store_of_the_first_contact_layout_keeps_its_contacts(tmp_path):
    import sqlite3

    path = tmp_path / "first.db"
    first = sqlite3.connect(path)
    first.execute(
        "CREATE TABLE contacts (contact_id TEXT PRIMARY KEY, customer_id TEXT NOT NULL,"
        " channel TEXT NOT NULL, treatment TEXT NOT NULL, at REAL NOT NULL,"
        " declined INTEGER NOT NULL)"
    )
    first.execute(
        "CREATE INDEX contacts_by_customer_at ON contacts"
        " (customer_id, at, contact_id, channel, treatment, declined)"
    )
    first.executemany(
        "INSERT INTO contacts VALUES (?, ?, ?, ?, ?, ?)",
        [("d1", "5", "email", "savings_offer", 20.0, 1), ("d2", "5", "web", "card", 10.0, 0)],
    )
    first.commit()
    first.close()
    store = open_store(f"sqlite:///{path}")
    assert [(c.contact_id, c.at, c.declined) for c in store.contacts("5")] == [
        ("d2", 10.0, False),
        ("d1", 20.0, True),
    ]
    store.record_contacts([Contact("d3", "5", "web", "card", 30.0)])
    assert store.mark_declined("5", "d3")
    assert [c.contact_id for c in open_store(f"sqlite:///{path}").contacts("5")] == [
        "d2",
        "d1",
        "d3",
    ]
    tables = sqlite3.connect(path).execute("SELECT name, sql FROM sqlite_master").fetchall()
    assert [name for name, _ in tables if "first_layout" in name or "by_customer" in name] == []
    assert "WITHOUT ROWID" in dict(tables)["contacts"]
