"""The decision log survives kill -9: every decision the service acknowledged is on disk."""

from __future__ import annotations

import threading
import time

import pytest
import requests
import support
from conftest import prepare

from cx_pipelines.service.decision_log import read_decision_log


@pytest.mark.slow
@pytest.mark.parametrize("sync", ["write", "fsync"])
def test_every_acknowledged_decision_survives_kill_9(tmp_path, sync):
    prepared = prepare(tmp_path / "cx", customers=30)
    mode = {"CX_DECISION_LOG_SYNC": sync}
    server = support.start_server(prepared.home, strategy=prepared.strategy, extra=mode)
    assert server.get("/ready").json()["decision_log_sync"] == sync
    acknowledged: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def client(number: int) -> None:
        session = requests.Session()
        count = 0
        while not stop.is_set():
            count += 1
            single = count % 3 != 0
            body = {"customer_id": str(1 + (count * 5 + number) % 30), "channel": "email"}
            path = "/v1/decisions" if single else "/v1/decisions/batch"
            payload = body if single else {"requests": [body, {**body, "channel": "web"}]}
            try:
                answer = session.post(
                    server.url + path, json=payload, headers=support.headers(), timeout=5
                )
            except requests.RequestException:
                return  # the server is gone: stop this client
            if answer.status_code == 200:
                data = answer.json()
                ids = (
                    [data["decision_id"]]
                    if single
                    else [d["decision_id"] for d in data["decisions"]]
                )
                with lock:
                    acknowledged.extend(ids)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 60
    while len(acknowledged) < 150 and time.monotonic() < deadline:
        time.sleep(0.05)
    server.kill()  # SIGKILL mid-load
    stop.set()
    for thread in threads:
        thread.join()
    assert len(acknowledged) >= 150

    restarted = support.start_server(prepared.home, strategy=prepared.strategy, extra=mode)
    try:
        after = restarted.post("/v1/decisions", {"customer_id": "3", "channel": "web"}).json()
    finally:
        restarted.stop()
    logged = [entry["decision_id"] for entry in read_decision_log(prepared.home / "decision_log")]
    assert set(acknowledged) <= set(logged)
    assert after["decision_id"] in logged
    assert len(logged) == len(set(logged))
    assert len(list((prepared.home / "decision_log").glob("*.jsonl"))) == 2  # one per process
