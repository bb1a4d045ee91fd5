"""The decision service under load: `cx serve` on loopback driven by wrk from a second process.

Builds a synthetic online store (``--customers`` customers with every input attribute of
``strategies/next_best_action.yaml``), starts ``cx serve --workers N`` on a free loopback
port, and drives it with wrk (Debian's ``wrk`` package; a Lua script picks a random
customer and channel per request and stops each thread after its share of
``--max-requests``). Phases, each bounded in time and requests:

1. warm-up (single decisions, then batch calls that look every customer up a few
   times, so each worker's in-memory records are filled);
2. ``rate_1000``: about 1,000 decisions/s (wrk's per-request ``delay()``), p99 < 5 ms;
3. ``single``: as many single decisions as the machine takes, ``--duration`` seconds
   (120 by default; ``--duration 20`` for a quick run), target >= 2,000/s, p99 < 20 ms;
4. ``batch``: ``/v1/decisions/batch`` with ``--batch-size`` decisions per call (random
   customers, one channel per call, as a channel system sends its batch), without
   traces in the answer and log (``include_trace: false``), target >= 20,000 decisions/s;
   and ``batch_traced`` (100 per call) with traces, for comparison.

For each: throughput, p50/p95/p99 (wrk's latency histogram), errors (socket errors and
non-2xx), and the server's memory (RSS of the uvicorn processes) at the start and end.
The baseline in the same run is the engine alone: ``decide_customer`` in this process
with no HTTP, store or log. The load generator shares the machine's cores with the
server. Run: ``.venv/bin/python benchmarks/service_load.py [--duration 20]``. Needs
``wrk`` (``apt-get install wrk``). Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import requests

from cx_pipelines.engine import load_strategy
from cx_pipelines.intelligence import decide_customer
from cx_pipelines.online_store import open_store, snapshot_records
from cx_pipelines.service.auth import hash_key

ROOT = Path(__file__).resolve().parents[1]
STRATEGY = ROOT / "strategies" / "next_best_action.yaml"
KEY = "benchmark-key-0123456789abcdef"
TRACED_BATCH = 100  # traced answers are ~5 KB each: smaller calls stay within wrk's timeout
CHANNELS = ("web", "mobile_app", "call_centre", "branch", "atm", "email")

LUA = r"""
local customers = tonumber(os.getenv("BENCH_CUSTOMERS"))
local batch = tonumber(os.getenv("BENCH_BATCH") or "0")
local trace = os.getenv("BENCH_TRACE") or "false"
local pause = tonumber(os.getenv("BENCH_DELAY_MS") or "0")
local limit = tonumber(os.getenv("BENCH_REQUESTS_PER_THREAD") or "100000000")
local channels = {"web", "mobile_app", "call_centre", "branch", "atm", "email"}
local counter = 1
local threads = {}
local done_requests = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-API-Key"] = os.getenv("BENCH_KEY")

function setup(thread)
  thread:set("id", counter)
  table.insert(threads, thread)
  counter = counter + 1
end

function init(args)
  math.randomseed(os.time() * 1000 + id)
  sent = 0
end

local function one(channel)
  return string.format('{"customer_id":"%d","channel":"%s"}',
    math.random(1, customers), channel or channels[math.random(1, #channels)])
end

function request()
  sent = sent + 1
  if sent > limit then wrk.thread:stop() end
  if batch > 0 then
    local items = {}
    local channel = channels[math.random(1, #channels)]  -- one channel system per call
    for i = 1, batch do items[i] = one(channel) end
    return wrk.format("POST", "/v1/decisions/batch", nil,
      '{"include_trace":' .. trace .. ',"requests":[' .. table.concat(items, ",") .. ']}')
  end
  return wrk.format("POST", "/v1/decisions", nil, one())
end

function delay()
  return pause
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'RESULT {"requests":%d,"duration_us":%d,"bytes":%d,"errors_connect":%d,"errors_read":%d,' ..
    '"errors_write":%d,"errors_status":%d,"errors_timeout":%d,"p50_us":%d,"p95_us":%d,' ..
    '"p99_us":%d,"max_us":%d,"mean_us":%.1f}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status,
    e.timeout, latency:percentile(50), latency:percentile(95), latency:percentile(99),
    latency.max, latency.mean))
end
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def population(size: int, seed: int = 7) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Engine inputs of ``size`` customers for the strategy (seeded), two accounts each."""
    strategy = load_strategy(STRATEGY)
    random = np.random.default_rng(seed)
    frame: dict[str, object] = {"customer_id": [str(i) for i in range(1, size + 1)]}
    for attribute in strategy.input_attributes(None):
        if attribute.name.startswith("scores."):
            frame[attribute.name] = random.uniform(0, 0.3, size).round(6)
    frame["customer_type"] = random.choice(
        ["mass_market", "affluent", "student", "young_professional", "small_business"], size
    )
    frame["age"] = random.integers(16, 90, size).astype(float)
    frame["annual_income"] = random.uniform(2_000, 250_000, size).round(0)
    frame["tenure_months"] = random.integers(0, 300, size).astype(float)
    frame["segments.segment"] = random.choice(["active", "lapsing", "dormant", None], size)
    frame["decision_channel"] = None
    frame["unknown_customer"] = None
    customers = pd.DataFrame(frame)
    accounts = pd.DataFrame(
        {
            "account_id": np.arange(2 * size),
            "customer_id": np.repeat(customers["customer_id"].to_numpy(), 2),
            "account_type": random.choice(["credit_card", "savings", "mortgage"], 2 * size),
            "balance": random.uniform(0, 9000, 2 * size).round(2),
            "credit_limit": 5000.0,
        }
    )
    return customers, accounts


def in_process_rate(customers: pd.DataFrame, seconds: float = 3.0) -> float:
    """Decisions per second of the engine alone (one customer at a time, traced)."""
    strategy = load_strategy(STRATEGY)
    rows = customers.head(2000).to_dict("records")
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        row = rows[count % len(rows)]
        decide_customer(
            strategy,
            event="customer_interaction",
            customer=row,
            customer_id=row["customer_id"],
            channel=CHANNELS[count % len(CHANNELS)],
        )
        count += 1
    return count / (time.perf_counter() - start)


def server_memory_mb(pid: int) -> float:
    """RSS of the server process and its children (uvicorn workers), in MB."""
    pids = [pid]
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        pids += [int(p) for p in children.read_text().split()]
    total = 0
    for item in pids:
        try:
            for line in Path(f"/proc/{item}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except FileNotFoundError:
            continue
    return total / 1024


def run_wrk(
    url: str,
    script: Path,
    *,
    seconds: float,
    connections: int,
    threads: int,
    max_requests: int,
    environment: dict[str, str],
    pid: int,
) -> dict:
    memory_start = server_memory_mb(pid)
    command = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{int(seconds)}s",
        "--timeout",
        "5s",
        "-s",
        str(script),
        url,
    ]
    env = {
        **os.environ,
        **environment,
        "BENCH_REQUESTS_PER_THREAD": str(max(1, max_requests // threads)),
    }
    output = subprocess.run(command, env=env, capture_output=True, text=True, timeout=seconds + 60)
    memory_end = server_memory_mb(pid)
    line = next((x for x in output.stdout.splitlines() if x.startswith("RESULT ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no result:\n{output.stdout}\n{output.stderr}")
    raw = json.loads(line[len("RESULT ") :])
    duration = raw["duration_us"] / 1e6
    errors = sum(raw[k] for k in raw if k.startswith("errors_"))
    return {
        "requests": raw["requests"],
        "seconds": round(duration, 2),
        "requests_per_second": round(raw["requests"] / duration, 1),
        "p50_ms": raw["p50_us"] / 1000,
        "p95_ms": raw["p95_us"] / 1000,
        "p99_ms": raw["p99_us"] / 1000,
        "max_ms": raw["max_us"] / 1000,
        "errors": errors,
        "error_kinds": {k: raw[k] for k in raw if k.startswith("errors_") and raw[k]},
        "memory_start_mb": round(memory_start, 1),
        "memory_end_mb": round(memory_end, 1),
        "connections": connections,
    }


def start_server(home: Path, port: int, workers: int) -> subprocess.Popen:
    environment = {
        **os.environ,
        "CX_HOME": str(home),
        "CX_API_KEYS": f"bench:{hash_key(KEY)}:decide:100000000",
        "CX_SERVICE_STRATEGY": str(STRATEGY),
        "CX_SERVICE_MLFLOW_SECONDS": "0",
        "CX_SERVICE_LOG_LEVEL": "WARNING",
        "CX_SERVICE_MAX_BATCH": "1000",
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cx_pipelines.cli",
            "serve",
            "--port",
            str(port),
            "--workers",
            str(workers),
        ],
        env=environment,
        stdout=(home / "server.log").open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError((home / "server.log").read_text())
        try:
            ready = requests.get(f"http://127.0.0.1:{port}/ready", timeout=2)
            if ready.status_code == 200:
                return process
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise RuntimeError("server did not become ready")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=120, help="seconds of the single phase")
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--max-requests", type=int, default=2_000_000)
    options = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install wrk")

    home = Path(tempfile.mkdtemp(prefix="cx-service-load-"))
    customers, accounts = population(options.customers)
    store = open_store(f"sqlite:///{home / 'online_store.db'}")
    store.write_snapshot(
        snapshot_records(customers, accounts),
        {"model_versions": {"cx_propensity": "1", "cx_uplift": "1", "cx_attrition": "1"}},
    )
    store.close()
    baseline = in_process_rate(customers)
    print(f"engine alone (in process, traced): {baseline:,.0f} decisions/s", flush=True)

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = start_server(home, port, options.workers)
    script = home / "load.lua"
    script.write_text(LUA)
    common = {"BENCH_CUSTOMERS": str(options.customers), "BENCH_KEY": KEY}
    results: dict[str, dict] = {}
    try:
        short = max(10.0, options.duration / 4)

        def phase(name: str, seconds: float, connections: int, **extra: str) -> dict:
            result = run_wrk(
                url,
                script,
                seconds=seconds,
                connections=connections,
                threads=2 if connections >= 2 else 1,
                max_requests=options.max_requests,
                environment={**common, **extra},
                pid=server.pid,
            )
            print(f"{name}: {json.dumps(result)}", flush=True)
            return result

        phase("warm-up", 10, 8)
        # batch calls touch every customer a few times, so the in-memory records of both
        # workers are filled before the memory of the measured phases is compared
        phase("warm-up-batch", 10, 2, BENCH_BATCH=str(options.batch_size), BENCH_TRACE="false")
        # ~1,000/s: 10 connections, each waiting 10 ms minus the answer's time
        results["rate_1000"] = phase("rate_1000", short, 10, BENCH_DELAY_MS="9")
        results["single"] = phase("single", options.duration, options.connections)
        results["batch"] = phase(
            "batch", short, 4, BENCH_BATCH=str(options.batch_size), BENCH_TRACE="false"
        )
        results["batch_traced"] = phase(
            "batch_traced", short, 4, BENCH_BATCH=str(TRACED_BATCH), BENCH_TRACE="true"
        )
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    for name, size in (("batch", options.batch_size), ("batch_traced", TRACED_BATCH)):
        results[name]["batch_size"] = size
        results[name]["decisions_per_second"] = round(
            results[name]["requests_per_second"] * size, 1
        )
    single, paced = results["single"], results["rate_1000"]
    growth = (single["memory_end_mb"] - single["memory_start_mb"]) / single["memory_start_mb"]
    met = {
        "single_2000_per_s": single["requests_per_second"] >= 2000,
        "single_p99_under_20ms": single["p99_ms"] < 20,
        "rate_1000_p99_under_5ms": paced["p99_ms"] < 5,
        "zero_errors": all(r["errors"] == 0 for r in results.values()),
        "memory_flat_10_percent": abs(growth) <= 0.10,
        "batch_20000_per_s": results["batch"]["decisions_per_second"] >= 20_000,
    }
    summary = {
        "benchmark": "service_load",
        "customers": options.customers,
        "workers": options.workers,
        "cpus": os.cpu_count(),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "engine_alone_decisions_per_second": round(baseline, 1),
        **results,
        "single_memory_growth": round(growth, 4),
        "met": met,
    }
    shutil.rmtree(home, ignore_errors=True)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
