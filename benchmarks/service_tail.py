"""Where the paced phase's tail latency goes: the service timed request by request.

Starts ``cx serve`` as ``benchmarks/service_load.py`` does (same synthetic store, same
warm-up), with ``CX_SERVICE_TIMING`` set (cx_pipelines/service/timing.py), drives it at a
constant rate with ``benchmarks/wrk_constant_rate.lua``, stops it, and reads what every
worker measured. It prints wrk's latency (from the request's write, and from its
scheduled slot) beside the server's own (from the moment the event loop read the
request to the moment its answer was written), and splits the server's time of the
median and of the slowest 1 % of requests into:

- ``queue``: read by the loop, its task not yet started (requests ahead of it);
- ``own``: its own work (``store``, ``engine``, the rest: parsing, auth, answer);
- ``log``: waiting for the decision-log append; ``send``: writing the answer;

and, over the same span, into thread CPU (its own and that of the requests ahead),
run-queue wait (the kernel ran another thread) and the rest (neither running nor
runnable: the GIL, or a blocking system call), plus the garbage collector's share.
Beside it: every collection's pause, each contact-writer flush (wall and CPU) and each
decision-log write, and the server threads' run-queue wait per time slice.
The difference between wrk's latency and the server's is time outside the server's
event loop: the kernel's network path, the wait for the worker to be woken and run
before it reads the request, and wrk's own.

``--env NAME=VALUE`` (repeatable) passes settings to the server, to compare variants in
one run, e.g. ``--env CX_SERVICE_CONTACT_FLUSH_MS=50``. Last line: one JSON object.
Run: ``.venv/bin/python benchmarks/service_tail.py [--seconds 20] [--workers 2]``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import service_load  # noqa: E402  (the benchmark's store, server start and wrk runner)

from cx_pipelines.online_store import open_store, snapshot_records  # noqa: E402
from cx_pipelines.service.timing import ENVIRONMENT_VARIABLE, FIELDS  # noqa: E402

INDEX = {name: index for index, name in enumerate(FIELDS)}


def thread_schedstats(pid: int) -> dict[str, tuple[int, int, int]]:
    """(cpu ns, run-queue wait ns, time slices) of every thread of ``pid`` and its children."""
    stats: dict[str, tuple[int, int, int]] = {}
    children = Path(f"/proc/{pid}/task/{pid}/children")
    pids = [pid] + ([int(p) for p in children.read_text().split()] if children.exists() else [])
    for process in pids:
        for task in Path(f"/proc/{process}/task").glob("*"):
            try:
                name = (task / "comm").read_text().strip()
                values = tuple(int(x) for x in (task / "schedstat").read_text().split())
            except (FileNotFoundError, ProcessLookupError, ValueError):
                continue
            stats[f"{process}/{task.name}/{name}"] = values  # type: ignore[assignment]
    return stats


def schedstat_change(before: dict, after: dict) -> list[dict]:
    rows = []
    for key, (cpu, wait, slices) in after.items():
        cpu0, wait0, slices0 = before.get(key, (0, 0, 0))
        if slices - slices0 < 10:
            continue
        rows.append(
            {
                "thread": key,
                "cpu_ms": round((cpu - cpu0) / 1e6, 1),
                "run_queue_wait_ms": round((wait - wait0) / 1e6, 1),
                "slices": slices - slices0,
                "wait_per_slice_us": round((wait - wait0) / (slices - slices0) / 1e3, 1),
            }
        )
    return sorted(rows, key=lambda row: -row["cpu_ms"])


def percentiles(values: np.ndarray, scale: float = 1e6) -> dict[str, float]:
    if len(values) == 0:
        return {}
    points = np.percentile(values, [50, 95, 99, 99.9]) / scale
    return {
        name: round(float(v), 3)
        for name, v in zip(("p50", "p95", "p99", "p999"), points, strict=True)
    }


def breakdown(rows: np.ndarray) -> dict[str, float]:
    """Mean milliseconds of each part of the server's time over ``rows``."""
    column = {name: rows[:, INDEX[name]].astype(float) for name in FIELDS}
    wall = column["ended"] - column["arrived"]
    own = column["appended"] - column["started"]
    parts = {
        "total": wall,
        "queue": column["started"] - column["arrived"],
        "own": own,
        "own.store": column["store"],
        "own.engine": column["engine"],
        "own.rest": own - column["store"] - column["engine"],
        "own.off_cpu": own - column["own_cpu"],
        "log": column["logged"] - column["appended"],
        "send": column["ended"] - column["logged"],
        "cpu": column["cpu"],
        "run_queue": column["run_delay"],
        "gil_or_blocked": wall - column["cpu"] - column["run_delay"],
        "gc": column["gc"],
    }
    return {name: round(float(values.mean()) / 1e6, 3) for name, values in parts.items()}


def analyse(folder: Path) -> dict:
    """The workers' timing files, joined and split as the module docstring says."""
    dumps = [json.loads(path.read_text()) for path in sorted(folder.glob("timing-*.json"))]
    if not dumps:
        raise RuntimeError(f"no timing files in {folder} (did the workers stop cleanly?)")
    requests = np.array([row for d in dumps for row in d["requests"]], dtype=np.int64)
    per_worker = [len(d["requests"]) for d in dumps]
    wall = requests[:, INDEX["ended"]] - requests[:, INDEX["arrived"]]
    order = np.argsort(wall)
    slowest = requests[order[int(len(order) * 0.99) :]]
    middle = requests[order[int(len(order) * 0.45) : int(len(order) * 0.55)]]
    collections = np.array([c for d in dumps for c in d["collections"]], dtype=np.int64)
    flushes = np.array([f for d in dumps for f in d["flushes"]], dtype=np.int64)
    commits = np.array([c for d in dumps for c in d["commits"]], dtype=np.int64)
    gc_figures = {}
    if len(collections):
        for generation in (0, 1, 2):
            chosen = collections[collections[:, 2] == generation]
            if len(chosen):
                gc_figures[f"generation_{generation}"] = {
                    "count": len(chosen),
                    "on_loop_thread": int(chosen[:, 3].sum()),
                    "wall_ms": percentiles(chosen[:, 1]),
                    "cpu_ms": percentiles(chosen[:, 4]),
                    "max_ms": round(float(chosen[:, 1].max()) / 1e6, 3),
                }
    slow_gc = float((slowest[:, INDEX["gc"]] > 0).mean()) if len(slowest) else 0.0
    overlaps = {
        "contact_flush": _overlapping(requests, flushes),
        "log_write_over_1ms": _overlapping(requests, commits[commits[:, 1] > 1_000_000]),
        "gc": _overlapping(requests, collections),
    }
    in_tail = np.zeros(len(requests), dtype=bool)
    in_tail[order[int(len(order) * 0.99) :]] = True
    off = wall - requests[:, INDEX["cpu"]] - requests[:, INDEX["run_delay"]]
    overlap_figures = {
        name: {
            "share_of_all": round(float(mask.mean()), 3),
            "share_of_slowest_1_percent": round(float(mask[in_tail].mean()), 3),
            "gil_or_blocked_mean_ms_with": round(float(off[mask].mean()) / 1e6, 3)
            if mask.any()
            else None,
            "gil_or_blocked_mean_ms_without": round(float(off[~mask].mean()) / 1e6, 3)
            if (~mask).any()
            else None,
        }
        for name, mask in overlaps.items()
    }
    return {
        "requests": len(requests),
        "per_worker": per_worker,
        "server_latency_ms": percentiles(wall),
        "median_request_ms": breakdown(middle),
        "slowest_1_percent_ms": breakdown(slowest),
        "slowest_1_percent_with_gc": round(slow_gc, 3),
        "overlapping": overlap_figures,
        "without_run_queue_ms": percentiles(wall - requests[:, INDEX["run_delay"]]),
        "gc": gc_figures,
        "contact_flushes": _spans(flushes, {"contacts_mean": 4}),
        "log_writes": _spans(commits, {"lines_mean": 4, "handing_on_mean_ms": 5}),
    }


def _overlapping(requests: np.ndarray, spans: np.ndarray) -> np.ndarray:
    """Which requests (arrived..ended) overlap any of ``spans`` (start, wall ns, ...)."""
    if not len(spans):
        return np.zeros(len(requests), dtype=bool)
    starts = np.sort(spans[:, 0])
    ends = np.sort(spans[:, 0] + spans[:, 1])
    arrived, ended = requests[:, INDEX["arrived"]], requests[:, INDEX["ended"]]
    # spans begun before the request ended minus spans ended before it arrived
    return np.searchsorted(starts, ended) - np.searchsorted(ends, arrived) > 0


def _spans(rows: np.ndarray, means: dict[str, int]) -> dict:
    """Wall, thread CPU and run-queue wait of timed spans (columns 1-3), and the rest."""
    if not len(rows):
        return {"count": 0}
    wall, cpu, wait = rows[:, 1], rows[:, 2], rows[:, 3]
    slow = rows[wall >= np.percentile(wall, 99)]
    return {
        "count": len(rows),
        "wall_ms": percentiles(wall),
        "cpu_ms": percentiles(cpu),
        "run_queue_ms": percentiles(wait),
        "blocked_ms": percentiles(wall - cpu - wait),
        "slowest_1_percent_mean_ms": {
            "wall": round(float(slow[:, 1].mean()) / 1e6, 3),
            "cpu": round(float(slow[:, 2].mean()) / 1e6, 3),
            "run_queue": round(float(slow[:, 3].mean()) / 1e6, 3),
        },
        **{
            name: round(float(rows[:, column].mean()) / (1e6 if "_ms" in name else 1), 3)
            for name, column in means.items()
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rate", type=int, default=1000)
    parser.add_argument("--paced-connections", type=int, default=16)
    parser.add_argument("--log-sync", choices=("write", "fsync"), default="write")
    parser.add_argument("--env", action="append", default=[], help="NAME=VALUE for the server")
    parser.add_argument(
        "--no-contacts", action="store_true", help='requests with "record_contact": false'
    )
    parser.add_argument(
        "--cold",
        action="store_true",
        help="no warm-up: the workers' record caches fill during the paced phase",
    )
    parser.add_argument("--keep", type=Path, help="keep the timing files in this folder")
    options = parser.parse_args()
    customers, accounts = service_load.population(options.customers)
    home = Path(tempfile.mkdtemp(prefix="cx-service-tail-"))
    timing_folder = home / "timing"
    store = open_store(f"sqlite:///{home / 'online_store.db'}")
    store.write_snapshot(
        snapshot_records(customers, accounts),
        {"model_versions": {"cx_propensity": "1", "cx_uplift": "1", "cx_attrition": "1"}},
    )
    store.close()
    extra = dict(item.split("=", 1) for item in options.env)
    saved = dict(os.environ)
    os.environ.update({ENVIRONMENT_VARIABLE: str(timing_folder), **extra})
    port = service_load.free_port()
    try:
        server = service_load.start_server(home, port, options.workers, options.log_sync)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    url = f"http://127.0.0.1:{port}"
    plain = home / "load.lua"
    plain.write_text(service_load.LUA)
    paced = service_load.ROOT / "benchmarks" / "wrk_constant_rate.lua"
    common = {"BENCH_CUSTOMERS": str(options.customers), "BENCH_KEY": service_load.KEY}
    try:

        def wrk(script: Path, seconds: float, connections: int, threads: int, **env) -> dict:
            return service_load.run_wrk(
                url,
                script,
                seconds=seconds,
                connections=connections,
                threads=threads,
                max_requests=2_000_000,
                environment={**common, **env},
                pid=server.pid,
            )

        if not options.cold:
            wrk(plain, 10, 8, 2)
            wrk(plain, 10, 2, 2, BENCH_BATCH="1000", BENCH_TRACE="false")
        time.sleep(1.0)  # the longest pause: where the paced phase's requests begin
        before = thread_schedstats(server.pid)
        connections = options.paced_connections
        rate = {"BENCH_RATE": str(options.rate), "BENCH_STREAMS": str(connections)}
        if options.no_contacts:
            rate["BENCH_EXTRA_FIELDS"] = ',"record_contact":false'
        client = wrk(paced, options.seconds, connections, connections, **rate)
        threads = schedstat_change(before, thread_schedstats(server.pid))
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)
    # the warm-up's requests were timed too: keep the paced phase's (the last ones)
    server_side = analyse_phase(timing_folder)
    if options.keep:
        shutil.copytree(timing_folder, options.keep, dirs_exist_ok=True)
    shutil.rmtree(home, ignore_errors=True)
    keys = ("requests_per_second", "p50_ms", "p95_ms", "p99_ms", "max_ms", "errors")
    scheduled = ("scheduled_p50_ms", "scheduled_p95_ms", "scheduled_p99_ms", "scheduled_p999_ms")
    summary = {
        "benchmark": "service_tail",
        "settings": extra,
        "record_contact": not options.no_contacts,
        "cold": options.cold,
        "workers": options.workers,
        "paced_connections": options.paced_connections,
        "load_average_1m": client["load_average_1m"],
        "wrk": {k: client[k] for k in keys + scheduled + ("send_lag_p99_ms",)},
        "server": server_side,
        "server_threads": threads,
    }
    print(json.dumps(summary, indent=1))
    print(json.dumps(summary))


def analyse_phase(folder: Path) -> dict:
    """:func:`analyse` on the last ``requests`` decisions of the workers' files (the
    warm-up before them is dropped: the workers write only when they stop)."""
    for path in folder.glob("timing-*.json"):
        content = json.loads(path.read_text())
        rows = content["requests"]
        if rows:
            first = _phase_start(rows)
            content["requests"] = [r for r in rows if r[INDEX["arrived"]] >= first]
            last = max(r[INDEX["ended"]] for r in content["requests"])
            for name in ("collections", "flushes", "commits"):
                content[name] = [r for r in content[name] if first <= r[0] <= last]
        path.write_text(json.dumps(content))
    return analyse(folder)


def _phase_start(rows: list[list[int]]) -> int:
    """The arrival time after the longest pause between requests (warm-up → paced phase)."""
    arrivals = np.sort(np.array([r[INDEX["arrived"]] for r in rows], dtype=np.int64))
    if len(arrivals) < 2:
        return int(arrivals[0])
    gaps = np.diff(arrivals)
    return int(arrivals[int(np.argmax(gaps)) + 1])


if __name__ == "__main__":
    main()
