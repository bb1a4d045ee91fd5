"""``cx serve --workers 2``: connections dealt to the workers in turn, a dead worker
replaced, and an address already taken refused (cx_pipelines/service/workers.py)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
import requests
import support

from cx_pipelines.service.decision_log import read_decision_log

pytestmark = pytest.mark.slow


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


def _served_by(home: Path, ids: list[str]) -> dict[int, int]:
    """How many of the decisions ``ids`` each worker made, by pid (from the name of the
    decision-log file each went to: one file per process)."""
    wanted, served = set(ids), {}
    for path in (home / "decision_log").glob("*.jsonl"):
        found = sum(
            entry["decision_id"] in wanted
            for entry in read_decision_log(path.parent, prefix=path.stem)
        )
        if found:
            served[int(path.stem.split("-")[-2])] = found
    assert sum(served.values()) == len(ids)
    return served


def _fresh_connections_reach(server: support.Server, workers: set[int], home: Path) -> None:
    """Decide on new connections until every one of ``workers`` has served one (a worker
    gets connections once its application has started)."""
    deadline, seen = time.monotonic() + 90, set()
    while not workers <= seen:
        assert time.monotonic() < deadline, f"{workers - seen} served nothing"
        ids = [
            server.post("/v1/decisions", {"customer_id": "1", "channel": "web"}).json()[
                "decision_id"
            ]
            for _ in range(4)
        ]
        seen |= set(_served_by(home, ids))
        time.sleep(0.1)


def _four_connections(server: support.Server, home: Path) -> dict[int, int]:
    """Four keep-alive connections opened together, five decisions on each, as the batch
    benchmark's four: decisions per worker."""
    sessions = [requests.Session() for _ in range(4)]
    ids = []
    try:
        for _ in range(5):
            for number, session in enumerate(sessions):
                body = {"customer_id": str(1 + number), "channel": "web"}
                answer = session.post(
                    server.url + "/v1/decisions", json=body, headers=support.headers(), timeout=10
                )
                assert answer.status_code == 200, answer.text
                ids.append(answer.json()["decision_id"])
    finally:
        for session in sessions:
            session.close()
    return _served_by(home, ids)


def test_connections_are_dealt_to_the_workers_in_turn(prepared):
    server = support.start_server(prepared.home, strategy=prepared.strategy, workers=2)
    try:
        workers = _workers(server)
        assert len(workers) == 2
        # the address opens once both have started; uvicorn's shared socket could give
        # one worker all four connections, dealt in turn they are two each
        assert _four_connections(server, prepared.home) == dict.fromkeys(workers, 10)
    finally:
        server.stop()
    assert server.process.returncode == 0
    assert not any(Path(f"/proc/{pid}").exists() for pid in workers)


def test_a_killed_worker_is_replaced_and_serves(prepared):
    server = support.start_server(prepared.home, strategy=prepared.strategy, workers=2)
    try:
        victim = min(_workers(server))
        os.kill(victim, signal.SIGKILL)
        _wait_for(lambda: not Path(f"/proc/{victim}").exists())  # reaped by the supervisor
        # the survivor serves meanwhile, and the replacement once it has started
        _wait_for(lambda: len(_workers(server)) == 2)
        workers = _workers(server)
        assert victim not in workers
        _fresh_connections_reach(server, workers, prepared.home)
        assert _four_connections(server, prepared.home) == dict.fromkeys(workers, 10)
    finally:
        server.stop()
    assert server.process.returncode == 0


def test_workers_stop_when_the_supervisor_is_killed(prepared):
    server = support.start_server(prepared.home, strategy=prepared.strategy, workers=2)
    workers = _workers(server)
    server.kill()  # SIGKILL: no chance to stop them; each sees its channel close
    _wait_for(lambda: not any(_running(pid) for pid in workers))


def _running(pid: int) -> bool:
    """Whether ``pid`` is a live process (not gone, not a zombie its new parent keeps)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _wait_for(condition, seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "not reached in time"
        time.sleep(0.1)


def test_an_address_in_use_stops_the_service(prepared):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        run = subprocess.run(
            support.serve_command(port, 2),
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
