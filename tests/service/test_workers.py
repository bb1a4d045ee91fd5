"""``cx serve --workers 2``: a listening socket per worker, both serving, a dead worker
replaced, and an address already taken refused (cx_pipelines/service/workers.py)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

import pytest
import support

from cx_pipelines.service.decision_log import read_decision_log

pytestmark = pytest.mark.slow


def _port(server: support.Server) -> int:
    return urlparse(server.url).port


def _listening_sockets(port: int) -> int:
    """The loopback sockets listening on ``port`` (``/proc/net/tcp``, state 0A)."""
    count = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        if state == "0A" and int(local.split(":")[1], 16) == port:
            count += 1
    return count


def _workers(server: support.Server) -> set[int]:
    """The supervisor's worker processes (its other child is multiprocessing's tracker)."""
    pid = server.process.pid
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    workers = set()
    for child in children:
        try:
            if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes():
                workers.add(int(child))
        except FileNotFoundError:
            continue
    return workers


def _served_by(home: Path, server: support.Server, count: int) -> dict[int, int]:
    """Decide ``count`` times, each on a new connection; decisions per worker pid (from the
    name of the decision-log file each decision went to: one file per process)."""
    ids = {
        server.post("/v1/decisions", {"customer_id": str(1 + i % 40), "channel": "web"}).json()[
            "decision_id"
        ]
        for i in range(count)
    }
    served: dict[int, int] = {}
    for path in (home / "decision_log").glob("*.jsonl"):
        pid = int(path.stem.split("-")[-2])
        found = sum(
            1
            for entry in read_decision_log(path.parent, prefix=path.stem)
            if entry["decision_id"] in ids
        )
        if found:
            served[pid] = served.get(pid, 0) + found
    assert sum(served.values()) == count
    return served


def _wait_for(condition, seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("not reached in time")
        time.sleep(0.2)


def test_each_worker_listens_on_its_own_socket_and_both_serve(prepared):
    server = support.start_server(prepared.home, strategy=prepared.strategy, workers=2)
    try:
        _wait_for(lambda: _listening_sockets(_port(server)) == 2)
        workers = _workers(server)
        assert len(workers) == 2
        assert set(_served_by(prepared.home, server, 60)) == workers
    finally:
        server.stop()
    assert server.process.returncode == 0


def test_a_killed_worker_is_replaced_and_serves(prepared):
    server = support.start_server(prepared.home, strategy=prepared.strategy, workers=2)
    try:
        port = _port(server)
        _wait_for(lambda: _listening_sockets(port) == 2)
        victim = min(_workers(server))
        os.kill(victim, signal.SIGKILL)
        # a replacement is started once the victim is reaped (its socket closed with it),
        # and listens once its application has started
        _wait_for(lambda: len(_workers(server) - {victim}) == 2 and _listening_sockets(port) == 2)
        workers = _workers(server)
        assert len(workers) == 2 and victim not in workers
        assert set(_served_by(prepared.home, server, 60)) == workers
    finally:
        server.stop()
    assert server.process.returncode == 0


def test_an_address_in_use_stops_the_service(prepared):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        run = subprocess.run(
            [
                sys.executable,
                "-m",
                "cx_pipelines.cli",
                "serve",
                "--port",
                str(port),
                "--workers",
                "2",
            ],
            env={
                **os.environ,
                "CX_HOME": str(prepared.home),
                "CX_API_KEYS": support.keys_environment(),
            },
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert run.returncode != 0
    assert f"cannot bind 127.0.0.1:{port}" in run.stdout + run.stderr
