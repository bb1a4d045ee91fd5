"""A batch leaves nothing behind: the batch evaluator's run (once held by a reference cycle,
the decision tree's recursive walk) is freed when its call ends, not ~200 batches later,
while the service's tuned collector runs (issue 9: the batch phase's memory rose 681 -> 825
MB), and no collection is needed for it."""

from __future__ import annotations

import asyncio
import gc
import json

import pytest
import support
from test_batch_path import _snapshot

from cx_pipelines.engine import load_strategy
from cx_pipelines.engine.evaluation.batch.run import BatchRun
from cx_pipelines.intelligence import Request, decide_many
from cx_pipelines.online_store import open_store, snapshot_records
from cx_pipelines.service.app import create_app


async def _post(app, path: str, body: bytes) -> int:
    """One request through the ASGI application, as uvicorn makes it; its status."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"content-type", b"application/json"),
            (b"x-api-key", support.KEYS["decide"].encode()),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }
    messages = [{"type": "http.request", "body": body, "more_body": False}]
    status = []

    async def receive():
        return messages.pop() if messages else {"type": "http.disconnect"}

    async def send(message):
        if message["type"] == "http.response.start":
            status.append(message["status"])

    await app(scope, receive, send)
    return status[0]


def _runs_alive() -> int:
    return sum(isinstance(item, BatchRun) for item in gc.get_objects())


def test_a_batch_frees_its_evaluator_run_when_it_is_answered(tmp_path, monkeypatch):
    customers, accounts = _snapshot(40)
    store = open_store(f"sqlite:///{tmp_path / 'online_store.db'}")
    store.write_snapshot(snapshot_records(customers, accounts), {"model_versions": {}})
    store.close()
    monkeypatch.setenv("CX_HOME", str(tmp_path))
    # the service's registry.configure() calls mlflow.set_tracking_uri, which also writes
    # MLFLOW_TRACKING_URI into os.environ; setting it here has monkeypatch remove it after
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setenv("CX_API_KEYS", support.keys_environment())
    monkeypatch.setenv("CX_SERVICE_STRATEGY", str(support.STRATEGY))
    monkeypatch.setenv("CX_SERVICE_MLFLOW_SECONDS", "0")
    app = create_app()
    body = json.dumps(
        {
            "include_trace": False,
            "requests": [{"customer_id": str(n % 40), "channel": "web"} for n in range(100)],
        }
    ).encode()

    async def run() -> list[int]:
        alive = []
        async with app.router.lifespan_context(app):  # the tuned collector, as served
            for _ in range(3):
                assert await _post(app, "/v1/decisions/batch", body) == 200
                alive.append(_runs_alive())
        return alive

    gc.collect()
    before = _runs_alive()
    assert asyncio.run(run()) == [before] * 3


@pytest.mark.parametrize("trace", [False, True])
def test_a_batch_of_decisions_makes_no_reference_cycle(trace):
    """Everything a batch allocates is freed by reference counting when it ends (nothing
    for the collector to find), so the service needs no collection after a batch."""
    customers, accounts = _snapshot(60)
    strategy = load_strategy(support.STRATEGY)
    by_customer: dict[str, list] = {}
    for row in accounts.to_dict("records"):
        by_customer.setdefault(row["customer_id"], []).append(row)
    requests = [
        Request(
            customer_id=row["customer_id"],
            customer=row,
            accounts=by_customer.get(row["customer_id"], []),
            channel="web",
        )
        for row in customers.to_dict("records")
    ]

    def decide() -> None:
        decide_many(
            strategy,
            event="customer_interaction",
            requests=requests,
            model_versions=[{}] * len(requests),
            trace=trace,
        )

    decide()  # first use fills the strategy's caches
    gc.collect()
    gc.disable()
    try:
        decide()
        unreachable = gc.collect()
    finally:
        gc.enable()
    assert unreachable == 0
