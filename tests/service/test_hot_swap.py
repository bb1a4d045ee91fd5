"""Strategy and model swaps while clients keep asking: no request fails, and the new
state takes over; a strategy that fails its golden cases is never deployed."""

from __future__ import annotations

import os
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
import requests
import support
from conftest import prepare


class Load:
    """Clients deciding in a loop until stopped; every answer's status and hashes kept."""

    def __init__(self, server: support.Server, clients: int = 4) -> None:
        self.server, self.stop_event = server, threading.Event()
        self.statuses: Counter[int] = Counter()
        self.seen: list[tuple[str, str]] = []  # (strategy hash, propensity model version)
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.run, args=(n,)) for n in range(clients)]

    def run(self, number: int) -> None:
        session = requests.Session()
        count = 0
        while not self.stop_event.is_set():
            count += 1
            body = {"customer_id": str(1 + (number * 7 + count) % 60), "channel": "web"}
            try:
                answer = session.post(
                    self.server.url + "/v1/decisions",
                    json=body,
                    headers=support.headers(),
                    timeout=10,
                )
            except requests.RequestException:
                with self.lock:
                    self.statuses[-1] += 1
                continue
            with self.lock:
                self.statuses[answer.status_code] += 1
                if answer.status_code == 200:
                    data = answer.json()
                    self.seen.append(
                        (data["strategy_hash"], data["model_versions"]["cx_propensity"])
                    )

    def __enter__(self) -> Load:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop_event.set()
        for thread in self.threads:
            thread.join()

    def wait_for(self, predicate, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if self.seen and predicate(self.seen[-1]):
                    return
            time.sleep(0.05)
        raise AssertionError(f"never saw the swap; last {self.seen[-1:]}")


def _deploy(path: Path, text: str) -> None:
    """Replace a strategy file atomically, as a deployment would."""
    temporary = path.with_suffix(".tmp")
    temporary.write_text(text)
    os.replace(temporary, path)


@pytest.mark.slow
def test_strategy_and_model_swaps_drop_no_request(tmp_path):
    prepared = prepare(tmp_path / "cx")
    server = support.start_server(prepared.home, strategy=prepared.strategy)
    try:
        original = server.get("/ready").json()["strategy_hash"]
        text = prepared.strategy.read_text()
        with Load(server) as load:
            load.wait_for(lambda seen: seen[0] == original)
            _deploy(prepared.strategy, text.replace("version: 1", "version: 2", 1))
            load.wait_for(lambda seen: seen[0] != original)
            swapped = load.seen[-1][0]
            # a strategy whose golden case fails is rejected; the last good one stays
            broken = text.replace("version: 1", "version: 3", 1).replace(
                "web: [wealth_review, mortgage_consultation]",
                "web: [mortgage_consultation, wealth_review]",
                1,
            )
            _deploy(prepared.strategy, broken)
            deadline = time.monotonic() + 60
            ready = server.get("/ready").json()
            while not ready["strategy_rejected"] and time.monotonic() < deadline:
                time.sleep(0.1)  # the golden cases take a moment on a busy machine
                ready = server.get("/ready").json()
            assert ready["strategy_hash"] == swapped
            assert "golden case" in ready["strategy_rejected"]
            # a model promotion: customer_scores and online_features re-materialised
            with support.environment(prepared.home):
                support.write_warehouse(
                    60, versions={**support.VERSIONS, "propensity": "cx_propensity/4"}
                )
                support.materialise(prepared.strategies, selection=[support.online_features])
            load.wait_for(lambda seen: seen[1] == "4")
            time.sleep(0.3)
        assert set(load.statuses) == {200}, load.statuses
        assert {hash for hash, _ in load.seen} == {original, swapped}
        assert sum(load.statuses.values()) > 50
    finally:
        server.stop()
