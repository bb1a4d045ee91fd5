"""The per-request timing (CX_SERVICE_TIMING) on the real server: every decision is timed,
its phases in order, the contact writer's flushes add up to the contacts the store holds;
off, nothing is hooked or written."""

from __future__ import annotations

import json

import support

from cx_pipelines.online_store import open_store
from cx_pipelines.service import timing

CHANNELS = ("web", "email", "mobile_app")


def test_every_decision_is_timed_phase_by_phase(prepared, tmp_path):
    folder = tmp_path / "timing"
    server = support.start_server(
        prepared.home,
        strategy=prepared.strategy,
        extra={timing.ENVIRONMENT_VARIABLE: str(folder), "CX_DECISION_LOG_DIR": str(tmp_path)},
    )
    try:
        customers = [str(n) for n in range(1, 21)]
        for index, customer in enumerate(customers):
            body = {"customer_id": customer, "channel": CHANNELS[index % 3]}
            assert server.post("/v1/decisions", body).status_code == 200
        batch = {"requests": [{"customer_id": c, "channel": "web"} for c in customers[:5]]}
        assert server.post("/v1/decisions/batch", batch).status_code == 200
        assert server.get("/health").status_code == 200  # not a decision: not timed
    finally:
        server.stop()
    (path,) = folder.glob("timing-*.json")
    content = json.loads(path.read_text())
    index = {name: n for n, name in enumerate(content["fields"])}
    rows = content["requests"]
    assert len(rows) == len(customers) + 1  # 20 single decisions and one batch
    for row in rows:
        moments = [row[index[name]] for name in ("arrived", "started", "appended", "logged")]
        assert moments == sorted(moments) and row[index["ended"]] >= moments[-1]
        own = row[index["appended"]] - row[index["started"]]
        assert 0 < row[index["store"]] + row[index["engine"]] <= own
        assert 0 < row[index["own_cpu"]] <= row[index["cpu"]]
    singles = rows[: len(customers)]
    assert all(row[index["engine"]] > 0 for row in singles)
    assert content["commits"] and all(commit[4] >= 1 for commit in content["commits"])
    flushed = sum(flush[4] for flush in content["flushes"])
    store = open_store(f"sqlite:///{prepared.home / 'online_store.db'}")
    try:
        ids = {c.contact_id for customer in customers for c in store.contacts(customer)}
        logged = [
            json.loads(line)
            for log in tmp_path.glob("*.jsonl")
            for line in log.read_text().splitlines()
        ]
    finally:
        store.close()
    mine = {entry["decision_id"] for entry in logged} & ids
    assert mine and flushed == len(mine)  # every contact of these decisions, written once


def test_without_the_variable_nothing_is_hooked(monkeypatch):
    monkeypatch.delenv(timing.ENVIRONMENT_VARIABLE, raising=False)

    class Untouchable:
        def __getattr__(self, name):
            raise AssertionError(f"timing touched {name}")

    assert timing.install(Untouchable()) is None
