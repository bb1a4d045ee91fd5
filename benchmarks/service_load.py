"""The decision service under load: `cx serve` on loopback driven by wrk from a second process.

Builds a synthetic online store (``--customers`` customers with every input attribute of
``strategies/next_best_action.yaml``), starts ``cx serve --workers N`` on a free loopback
port, and drives it with wrk (Debian's ``wrk`` package; a Lua script picks a random
customer and channel per request and stops each thread after its share of
``--max-requests``). Phases, each bounded in time and requests:

1. warm-up (single decisions, then batch calls that look every customer up a few
   times, so each worker's in-memory records are filled);
2. ``rate_1000``: single decisions offered at a constant ``--rate`` (1,000/s), open loop
   as wrk2 paces (``benchmarks/wrk_constant_rate.lua``: ``--paced-connections`` wrk
   threads of one connection each, each owning a fixed schedule of send slots, so the
   offered rate does not fall when answers slow down), for ``--duration`` seconds like the
   single phase (a p99 over 30 s, 300 requests, moved between 3.0 and 5.8 ms from one run to
   the next on a quiet machine); p99 < 5 ms. Two latencies: wrk's
   own (from the moment the request is written: the service time) and ``scheduled_*``
   (from the request's slot, corrected for coordinated omission); the target is judged
   on the scheduled one. ``--paced-workers N`` runs the paced phases on a server of
   their own with N workers (then the other phases on one with ``--workers``): a load one
   worker carries (1,000/s at ~0.3 ms of CPU each) needs no second worker (with two, the
   supervisor deals the 16 connections eight to each: cx_pipelines/service/workers.py);
   ``--paced-workers 1`` measures ``cx serve --workers 1``,
   what a deployment at that load would run; ``--paced-cpus 1/0`` pins that server to
   CPU 1 and the load generator to CPU 0 (taskset), so they never wait for each other's
   time slice (CPU placement is a deployment setting). ``--paced-contacts both`` runs it a second
   time with ``"record_contact": false`` in every request (``rate_1000_no_contacts``), to see what
   recording contacts costs; ``--phases rate_delay`` adds the previous sessions' pacing
   (10 connections, wrk ``delay()`` 9 ms after each answer: a closed loop) for comparison;
3. ``single``: as many single decisions as the machine takes, ``--duration`` seconds
   (120 by default; ``--duration 20`` for a quick run), target >= 2,000/s, p99 < 20 ms;
4. ``batch``: ``/v1/decisions/batch`` with ``--batch-size`` decisions per call (random
   customers, one channel per call, as a channel system sends its batch), without
   traces in the answer and log (``include_trace: false``), target >= 20,000 decisions/s;
   and ``batch_traced`` (100 per call) with traces, for comparison.

For each: throughput, p50/p95/p99 (wrk's latency histogram), errors (socket errors and
non-2xx), and the server's memory (RSS of the uvicorn processes) at the start and end;
where the CPU went (the server's user and kernel seconds, each process's share in
``server_cpu_s_by_process``: both workers carried the phase, or one; wrk's own) and the
answers' bytes per request, and for the batch phases both per decision (``cpu_us_per_decision``,
``bytes_per_decision``).
The phases run once per decision-log durability setting (``--log-sync``, default both:
``write``, the service's default, and ``fsync``; see cx_pipelines/service/decision_log.py);
the top-level figures and ``met`` are those of the first mode.

The baseline in the same run is the engine alone: ``decide_customer`` in this process
with no HTTP, store or log. Because wall-clock figures on a shared machine say as much
about the neighbours as about the service, the run also measures CPU time per decision
in this process (``time.process_time``, every thread): the real ASGI application
(middleware, validation, store, engine, decision log) called directly with 16 requests in
flight, beside the engine alone, the least of three rounds. The load generator shares the
machine's cores with the server. Run: ``.venv/bin/python benchmarks/service_load.py
[--duration 20] [--log-sync write|fsync|both] [--cpu-only] [--phases rate,single,batch]
[--paced-workers 1] [--paced-cpus 1/0]``.
Needs ``wrk`` (``apt-get install wrk``). Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
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


def _asgi_call(app, path: str, body: bytes):
    """One request through the ASGI application, as uvicorn would make it."""
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
            (b"host", b"127.0.0.1"),
            (b"content-type", b"application/json"),
            (b"x-api-key", KEY.encode()),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }
    answer: dict = {}
    messages = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive():
        if messages:
            return messages.pop()
        await asyncio.sleep(3600)  # never: the body is read once

    async def send(message):
        if message["type"] == "http.response.start":
            answer["status"] = message["status"]

    async def run():
        await app(scope, receive, send)
        if answer.get("status") != 200:
            raise RuntimeError(f"{path} answered {answer.get('status')}")

    return run()


def in_process_cpu(customers: pd.DataFrame, accounts: pd.DataFrame, sync: str) -> dict:
    """CPU microseconds per decision (``time.process_time``, all threads) through the real
    ASGI app in this process, single (16 in flight) and batch, beside the engine alone."""
    import uvloop

    from cx_pipelines.service.app import create_app

    home = Path(tempfile.mkdtemp(prefix="cx-service-cpu-"))
    size = min(len(customers), 2000)
    store = open_store(f"sqlite:///{home / 'online_store.db'}")
    store.write_snapshot(
        snapshot_records(customers.head(size), accounts.head(2 * size)),
        {"model_versions": {"cx_propensity": "1", "cx_uplift": "1", "cx_attrition": "1"}},
    )
    store.close()
    saved = dict(os.environ)
    os.environ.update(
        {
            "CX_HOME": str(home),
            "CX_API_KEYS": f"bench:{hash_key(KEY)}:decide:100000000",
            "CX_SERVICE_STRATEGY": str(STRATEGY),
            "CX_SERVICE_MLFLOW_SECONDS": "0",
            "CX_SERVICE_LOG_LEVEL": "WARNING",
            "CX_DECISION_LOG_SYNC": sync,
        }
    )
    try:
        app = create_app()
    finally:
        os.environ.clear()
        os.environ.update(saved)
    count = 3000
    singles = [
        json.dumps({"customer_id": str(1 + i % size), "channel": CHANNELS[i % 6]}).encode()
        for i in range(count)
    ]
    batch = json.dumps(
        {
            "include_trace": False,
            "requests": [{"customer_id": str(1 + i % size), "channel": "web"} for i in range(1000)],
        }
    ).encode()
    figures: dict[str, list[float]] = {"single": [], "batch": []}

    async def flight(bodies: list[bytes]) -> None:
        for body in bodies:
            await _asgi_call(app, "/v1/decisions", body)

    async def measure() -> None:
        async with app.router.lifespan_context(app):
            await asyncio.gather(*(flight(singles[k::16]) for k in range(16)))  # warm
            await _asgi_call(app, "/v1/decisions/batch", batch)
            for _ in range(3):
                start = time.process_time()
                await asyncio.gather(*(flight(singles[k::16]) for k in range(16)))
                figures["single"].append((time.process_time() - start) / count * 1e6)
                start = time.process_time()
                for _ in range(3):
                    await _asgi_call(app, "/v1/decisions/batch", batch)
                figures["batch"].append((time.process_time() - start) / 3000 * 1e6)

    uvloop.run(measure())
    strategy = load_strategy(STRATEGY)
    rows = customers.head(size).to_dict("records")
    engine = []
    for _ in range(3):
        start = time.process_time()
        for index in range(count):
            row = rows[index % size]
            decide_customer(
                strategy,
                event="customer_interaction",
                customer=row,
                customer_id=row["customer_id"],
                channel=CHANNELS[index % len(CHANNELS)],
            )
        engine.append((time.process_time() - start) / count * 1e6)
    shutil.rmtree(home, ignore_errors=True)
    return {
        "log_sync": sync,
        "single_cpu_us_per_decision": round(min(figures["single"]), 1),
        "batch_cpu_us_per_decision": round(min(figures["batch"]), 1),
        "engine_alone_cpu_us_per_decision": round(min(engine), 1),
    }


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


def process_cpu_seconds(pid: int) -> dict[int, tuple[float, float]]:
    """(user, system) CPU seconds so far of the server process and of each of its children
    (the workers, and the supervisor's multiprocessing tracker), by pid."""
    pids = [pid]
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        pids += [int(p) for p in children.read_text().split()]
    tick = os.sysconf("SC_CLK_TCK")
    seconds = {}
    for item in pids:
        try:
            fields = Path(f"/proc/{item}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        seconds[item] = (int(fields[11]) / tick, int(fields[12]) / tick)
    return seconds


def worker_balance(start: dict, end: dict) -> list[float]:
    """Each process's CPU seconds (user + system) between ``start`` and ``end``, largest
    first, those that used any: one worker carrying a phase alone shows as one figure."""
    used = [sum(end[p]) - sum(start.get(p, (0.0, 0.0))) for p in end]
    return sorted((round(u, 2) for u in used if u >= 0.05), reverse=True)


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
    cpus: str = "",
) -> dict:
    memory_start = server_memory_mb(pid)
    load_start = os.getloadavg()[0]
    cpu_start, wrk_start = process_cpu_seconds(pid), resource.getrusage(resource.RUSAGE_CHILDREN)
    command = [
        *pinned(cpus),
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
    cpu_end, wrk_end = process_cpu_seconds(pid), resource.getrusage(resource.RUSAGE_CHILDREN)
    line = next((x for x in output.stdout.splitlines() if x.startswith("RESULT ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no result:\n{output.stdout}\n{output.stderr}")
    raw = json.loads(line[len("RESULT ") :])
    duration = raw["duration_us"] / 1e6
    errors = sum(raw[k] for k in raw if k.startswith("errors_"))
    result = {
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
        "load_average_1m": [round(load_start, 2), round(os.getloadavg()[0], 2)],
        # where the CPU went: the server's workers (user, kernel) and wrk itself, and the
        # answers' bytes (headers included), per request
        "server_user_cpu_s": round(_total(cpu_end, 0) - _total(cpu_start, 0), 2),
        "server_system_cpu_s": round(_total(cpu_end, 1) - _total(cpu_start, 1), 2),
        # per process (workers, supervisor): whether both workers carried the phase
        "server_cpu_s_by_process": worker_balance(cpu_start, cpu_end),
        "wrk_cpu_s": round(
            wrk_end.ru_utime + wrk_end.ru_stime - wrk_start.ru_utime - wrk_start.ru_stime, 2
        ),
        "bytes_per_request": round(raw["bytes"] / max(1, raw["requests"])),
    }
    if "scheduled_p99_us" in raw:  # the constant-rate script (wrk_constant_rate.lua)
        result.update(paced_figures(raw, duration))
    return result


def _total(seconds: dict[int, tuple[float, float]], index: int) -> float:
    return sum(figures[index] for figures in seconds.values())


def paced_figures(raw: dict, duration: float) -> dict:
    """The constant-rate script's figures: latency from each request's scheduled slot
    (coordinated omission corrected), the offered rate, and how late the generator sent."""
    return {
        "sent_per_second": round(raw["slots"] / duration, 1),  # slots taken (= rate if kept up)
        "scheduled_p50_ms": raw["scheduled_p50_us"] / 1000,
        "scheduled_p95_ms": raw["scheduled_p95_us"] / 1000,
        "scheduled_p99_ms": raw["scheduled_p99_us"] / 1000,
        "scheduled_p999_ms": raw["scheduled_p999_us"] / 1000,
        "sent_over_1ms_late": raw["sent_over_1ms_late"],
        "send_lag_p99_ms": raw["send_lag_p99_us"] / 1000,
        "send_lag_max_ms": round(raw["send_lag_max_us"] / 1000, 2),
    }


def pinned(cpus: str) -> list[str]:
    """The command prefix that runs a program on ``cpus`` only (taskset; none if empty)."""
    return ["taskset", "--cpu-list", cpus] if cpus else []


def start_server(
    home: Path, port: int, workers: int, sync: str, *, cpus: str = ""
) -> subprocess.Popen:
    environment = {
        **os.environ,
        "CX_DECISION_LOG_SYNC": sync,
        "CX_HOME": str(home),
        "CX_API_KEYS": f"bench:{hash_key(KEY)}:decide:100000000",
        "CX_SERVICE_STRATEGY": str(STRATEGY),
        "CX_SERVICE_MLFLOW_SECONDS": "0",
        "CX_SERVICE_LOG_LEVEL": "WARNING",
        "CX_SERVICE_MAX_BATCH": "1000",
    }
    process = subprocess.Popen(
        [
            *pinned(cpus),
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


def run_phases(
    home: Path, customers: pd.DataFrame, accounts: pd.DataFrame, options, sync: str
) -> dict[str, dict]:
    """Every wrk phase against a fresh store and server whose decision log runs ``sync``."""
    home.mkdir(parents=True)
    store = open_store(f"sqlite:///{home / 'online_store.db'}")
    store.write_snapshot(
        snapshot_records(customers, accounts),
        {"model_versions": {"cx_propensity": "1", "cx_uplift": "1", "cx_attrition": "1"}},
    )
    store.close()
    script = home / "load.lua"
    script.write_text(LUA)
    paced_script = ROOT / "benchmarks" / "wrk_constant_rate.lua"
    common = {"BENCH_CUSTOMERS": str(options.customers), "BENCH_KEY": KEY}
    results: dict[str, dict] = {}
    wanted = set(options.phases.split(","))
    short = max(10.0, options.duration / 4)
    paced_workers = options.paced_workers or options.workers
    # the paced phases run on a server of their own when they ask for other workers or
    # CPUs (--paced-cpus SERVER/WRK: that server and the wrk runs against it pinned)
    paced_phases = wanted & {"rate", "rate_delay"}
    server_cpus, _, wrk_cpus = options.paced_cpus.partition("/")
    plans = (
        [
            (paced_workers, paced_phases, server_cpus, wrk_cpus),
            (options.workers, wanted - paced_phases, "", ""),
        ]
        if paced_phases and (paced_workers != options.workers or options.paced_cpus)
        else [(options.workers, wanted, "", "")]
    )
    for workers, chosen, server_cpus, wrk_cpus in plans:
        if not chosen:
            continue
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        server = start_server(home, port, workers, sync, cpus=server_cpus)
        try:

            def phase(
                name: str,
                seconds: float,
                connections: int,
                *,
                threads: int = 0,
                url: str = url,
                server: subprocess.Popen = server,
                workers: int = workers,
                wrk_cpus: str = wrk_cpus,
                **extra: str,
            ) -> dict:
                result = run_wrk(
                    url,
                    paced_script if "BENCH_RATE" in extra else script,
                    seconds=seconds,
                    connections=connections,
                    threads=threads or min(options.threads, connections),
                    max_requests=options.max_requests,
                    environment={**common, **extra},
                    pid=server.pid,
                    cpus=wrk_cpus,
                )
                result["workers"] = workers
                if wrk_cpus:
                    result["cpus_server_wrk"] = options.paced_cpus
                print(f"[log {sync}, {workers} workers] {name}: {json.dumps(result)}", flush=True)
                return result

            _run_chosen(phase, chosen, options, short, results)
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
    for name in ("rate_1000", "rate_1000_no_contacts"):
        if name in results:
            results[name]["offered_per_second"] = options.rate
    for name, size in (("batch", options.batch_size), ("batch_traced", TRACED_BATCH)):
        if name in results:
            results[name]["batch_size"] = size
            results[name]["decisions_per_second"] = round(
                results[name]["requests_per_second"] * size, 1
            )
            decisions = max(1, results[name]["requests"] * size)
            results[name]["bytes_per_decision"] = round(
                results[name]["bytes_per_request"] / size, 1
            )
            results[name]["cpu_us_per_decision"] = {
                "server_user": round(results[name]["server_user_cpu_s"] / decisions * 1e6, 1),
                "server_system": round(results[name]["server_system_cpu_s"] / decisions * 1e6, 1),
                "wrk": round(results[name]["wrk_cpu_s"] / decisions * 1e6, 1),
            }
    return results


def _run_chosen(phase, wanted: set[str], options, short: float, results: dict) -> None:
    """The warm-up, then the ``wanted`` phases, on one server (``phase`` runs wrk on it)."""
    phase("warm-up", 10, 8)
    # batch calls touch every customer a few times, so the in-memory records of both
    # workers are filled before the memory of the measured phases is compared
    phase("warm-up-batch", 10, 2, BENCH_BATCH=str(options.batch_size), BENCH_TRACE="false")
    paced = options.paced_connections
    rate = {"BENCH_RATE": str(options.rate), "BENCH_STREAMS": str(paced)}
    if "rate" in wanted:
        # open loop: one connection per wrk thread, each with its own slot schedule
        if options.paced_contacts in ("on", "both"):
            results["rate_1000"] = phase(
                "rate_1000", options.duration, paced, threads=paced, **rate
            )
        if options.paced_contacts in ("off", "both"):
            results["rate_1000_no_contacts"] = phase(
                "rate_1000_no_contacts",
                options.duration,
                paced,
                threads=paced,
                BENCH_EXTRA_FIELDS=',"record_contact":false',
                **rate,
            )
    if "rate_delay" in wanted:
        # the earlier pacing, for comparison: 10 connections, each waiting 9 ms after
        # every answer (a closed loop: the rate falls as the latency grows)
        results["rate_delay"] = phase("rate_delay", short, 10, BENCH_DELAY_MS="9")
    if "single" in wanted:
        results["single"] = phase("single", options.duration, options.connections)
    if "batch" in wanted:
        results["batch"] = phase(
            "batch", short, 4, BENCH_BATCH=str(options.batch_size), BENCH_TRACE="false"
        )
        results["batch_traced"] = phase(
            "batch_traced", short, 4, BENCH_BATCH=str(TRACED_BATCH), BENCH_TRACE="true"
        )


def targets(results: dict[str, dict]) -> dict[str, bool]:
    """The issue's targets among the phases that ran (the paced one on the latency from
    each request's scheduled slot, and on the offered rate being reached)."""
    met: dict[str, bool] = {}
    single, paced = results.get("single"), results.get("rate_1000")
    if single is not None:
        growth = (single["memory_end_mb"] - single["memory_start_mb"]) / single["memory_start_mb"]
        met["single_2000_per_s"] = single["requests_per_second"] >= 2000
        met["single_p99_under_20ms"] = single["p99_ms"] < 20
        met["memory_flat_10_percent"] = abs(growth) <= 0.10
    if paced is not None and paced["offered_per_second"] == 1000:
        met["rate_1000_reached"] = paced["requests_per_second"] >= 0.99 * 1000
        met["rate_1000_p99_under_5ms"] = paced["scheduled_p99_ms"] < 5
    if "batch" in results:
        met["batch_20000_per_s"] = results["batch"]["decisions_per_second"] >= 20_000
    met["zero_errors"] = all(r["errors"] == 0 for r in results.values())
    return met


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=120, help="seconds of the single phase")
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--max-requests", type=int, default=2_000_000)
    parser.add_argument(
        "--log-sync",
        choices=("write", "fsync", "both"),
        default="both",
        help="decision-log durability setting(s) to measure (both: write first)",
    )
    parser.add_argument(
        "--cpu-only", action="store_true", help="only the in-process CPU figures (no wrk)"
    )
    parser.add_argument("--no-cpu", action="store_true", help="skip the in-process CPU figures")
    parser.add_argument(
        "--phases",
        default="rate,single,batch",
        help="comma-separated wrk phases: rate, single, batch, rate_delay (the old pacing)",
    )
    parser.add_argument("--rate", type=int, default=1000, help="paced phase: decisions/s offered")
    parser.add_argument(
        "--paced-workers",
        type=int,
        default=0,
        help="paced phases on a server of their own with this many workers (default: "
        "--workers; 1: one worker for a load one worker carries, as a deployment would)",
    )
    parser.add_argument(
        "--paced-connections",
        type=int,
        default=16,
        help="paced phase: wrk threads of one connection each",
    )
    parser.add_argument(
        "--paced-contacts",
        choices=("on", "off", "both"),
        default="on",
        help='paced phase with contact recording (on), with "record_contact": false (off), '
        "or both, one after the other",
    )
    parser.add_argument(
        "--paced-cpus",
        default="",
        metavar="SERVER/WRK",
        help="paced phases on a server of their own pinned to the CPUs SERVER and wrk to "
        "WRK (taskset lists, e.g. 1/0: the worker alone on CPU 1, the load generator on 0)",
    )
    options = parser.parse_args()
    if shutil.which("wrk") is None and not options.cpu_only:
        sys.exit("wrk is not installed: apt-get install wrk")
    modes = ["write", "fsync"] if options.log_sync == "both" else [options.log_sync]

    customers, accounts = population(options.customers)
    cpu = {} if options.no_cpu else {m: in_process_cpu(customers, accounts, m) for m in modes}
    for mode, figures in cpu.items():
        print(f"in-process CPU per decision (log {mode}): {json.dumps(figures)}", flush=True)
    summary: dict = {
        "benchmark": "service_load",
        "customers": options.customers,
        "cpus": os.cpu_count(),
        "in_process_cpu": cpu,
    }
    if options.cpu_only:
        summary["load_average_1m"] = round(os.getloadavg()[0], 2)
        print(json.dumps(summary))
        return

    baseline = in_process_rate(customers)
    print(f"engine alone (in process, traced): {baseline:,.0f} decisions/s", flush=True)
    home = Path(tempfile.mkdtemp(prefix="cx-service-load-"))
    by_mode = {mode: run_phases(home / mode, customers, accounts, options, mode) for mode in modes}
    shutil.rmtree(home, ignore_errors=True)
    first = by_mode[modes[0]]
    single = first.get("single")
    growth = (
        (single["memory_end_mb"] - single["memory_start_mb"]) / single["memory_start_mb"]
        if single
        else None
    )
    summary.update(
        {
            "workers": options.workers,
            "paced_workers": options.paced_workers or options.workers,
            "paced_cpus": options.paced_cpus or None,
            "wrk_threads": options.threads,
            "connections": options.connections,
            "load_average_1m": round(os.getloadavg()[0], 2),
            "engine_alone_decisions_per_second": round(baseline, 1),
            "log_sync": modes[0],
            **first,
            "single_memory_growth": None if growth is None else round(growth, 4),
            "met": targets(first),
            "modes": {
                mode: {**results, "met": targets(results)}
                for mode, results in by_mode.items()
                if mode != modes[0]
            },
        }
    )
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
