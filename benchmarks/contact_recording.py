"""What recording a decision's contact costs the request: written in the request (one
transaction per decision, as the service did before) against the contact writer thread
(``cx_pipelines/service/contacts.py``: pending in memory, one write per ``flush_ms``).

``--processes`` processes (the service's workers; 2 by default) each record one contact
per decision at ``--rate`` decisions/s (a fixed schedule), reading the customer's
contacts first as a decision does, on one online store (SQLite in a temporary folder by
default, ``--store-url`` for Redis or PostgreSQL). Per mode: the wall time the request
spends recording (``record_contacts`` in the request, or ``ContactWriter.record``), its
p50/p95/p99/p99.9 and the share over 1 ms and 5 ms, and the CPU per decision (the read
and the recording) of the whole process (``time.process_time``, every thread: the
writer's too). The two modes run one
after the other, ``--rounds`` times, in the same run. On a shared machine the wall times
include the neighbours' load (the load average is printed); the direct mode's tail is
SQLite's lock: two writers wait for each other (its busy handler sleeps 1, 2, 5, ... ms)
and a WAL checkpoint fsyncs. Last line: one JSON object.
Run: ``.venv/bin/python benchmarks/contact_recording.py [--seconds 15] [--rate 500]``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import secrets
import tempfile
import time
from pathlib import Path

import numpy as np

from cx_pipelines.online_store import Contact, open_store
from cx_pipelines.service.contacts import ContactWriter


def _worker(url: str, mode: str, rate: float, seconds: float, seed: int, results) -> None:
    store = open_store(url)
    writer = ContactWriter(open_store(url), flush_ms=10.0) if mode == "writer" else None
    random = np.random.default_rng(seed)
    walls: list[float] = []
    interval, count = 1 / rate, 0
    cpu_start = time.process_time()
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        wait = start + count * interval - time.perf_counter()
        if wait > 0:
            time.sleep(wait)
        customer = str(random.integers(1, 10_001))
        store.contacts(customer)  # a decision reads the customer's contacts first
        contact = Contact(secrets.token_hex(16), customer, "web", "card_upgrade", time.time())
        began = time.perf_counter()
        if writer is None:
            store.record_contacts([contact])
        else:
            writer.record([contact])
        walls.append(time.perf_counter() - began)
        count += 1
    if writer is not None:
        writer.close()  # every contact written: its CPU is counted
    results.put((walls, (time.process_time() - cpu_start) / count))


def measure(url: str, mode: str, processes: int, rate: float, seconds: float) -> dict:
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    workers = [
        context.Process(target=_worker, args=(url, mode, rate, seconds, seed, results))
        for seed in range(processes)
    ]
    for worker in workers:
        worker.start()
    answers = [results.get(timeout=seconds + 120) for _ in workers]
    for worker in workers:
        worker.join()
    wall = np.concatenate([np.asarray(a[0]) for a in answers]) * 1000
    return {
        "mode": mode,
        "calls": int(len(wall)),
        "request_ms": {
            f"p{p}": round(float(np.percentile(wall, p)), 3) for p in (50, 95, 99, 99.9)
        },
        "request_max_ms": round(float(wall.max()), 2),
        "share_over_1ms": round(float((wall > 1).mean()), 4),
        "share_over_5ms": round(float((wall > 5).mean()), 4),
        "cpu_us_per_decision": round(1e6 * float(np.mean([a[1] for a in answers])), 1),
        "load_average_1m": round(os.getloadavg()[0], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--rate", type=float, default=500, help="decisions/s per process")
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--store-url", default="", help="default: SQLite in a temporary folder")
    options = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="cx-contact-recording-"))
    url = options.store_url or f"sqlite:///{folder / 'online_store.db'}"
    open_store(url).close()
    rounds: dict[str, list[dict]] = {"in_request": [], "writer": []}
    for _ in range(options.rounds):
        for mode in rounds:
            figures = measure(url, mode, options.processes, options.rate, options.seconds)
            print(json.dumps(figures), flush=True)
            rounds[mode].append(figures)
    best = {mode: min(runs, key=lambda r: r["request_ms"]["p99"]) for mode, runs in rounds.items()}
    print(
        f"recording a contact, request time p99: in the request "
        f"{best['in_request']['request_ms']['p99']} ms (baseline), writer thread "
        f"{best['writer']['request_ms']['p99']} ms; CPU per decision (read + record) "
        f"{best['in_request']['cpu_us_per_decision']} vs {best['writer']['cpu_us_per_decision']} us"
    )
    print(
        json.dumps(
            {
                "benchmark": "contact_recording",
                "processes": options.processes,
                "rate_per_process": options.rate,
                "store": url.split(":", 1)[0],
                "rounds": rounds,
                "load_average_1m": round(os.getloadavg()[0], 2),
            }
        )
    )


if __name__ == "__main__":
    main()
