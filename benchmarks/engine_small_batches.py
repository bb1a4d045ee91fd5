"""Per-call cost of the service's batch path at small batch sizes, next to the per-record path.

The decision service's ``POST /v1/decisions/batch`` hands each call's requests to
``cx_pipelines.intelligence.decide_many``; single decisions go through
``decide_customer``. This measures both in one process on the records the service decides
on: a generated world (``--customers``, seed ``--seed``) through the decisioning assets'
``engine_inputs`` for ``strategies/next_best_action.yaml`` (the service's strategy), model
score columns and behavioural segments the bare world lacks filled with seeded values,
then every customer's record written and read back in the online store's format
(``snapshot_records`` → ``encode_record`` → ``decode_record``, what a service worker
holds), with a seeded contact history as the store's ``contact_history`` gives it.

For N = 1, 10, 100, 500, 1000, 2000 requests (random customers with replacement, one
channel per call as a channel system sends its batch), per call: wall and CPU time
(``time.process_time``), minimum and median of the repeats, and decisions/s from the
minimum CPU time, for

* ``batch`` — ``decide_many(..., trace=False)`` (the batch endpoint without traces);
* ``batch_traced`` — ``decide_many(..., trace=True)``;
* ``per_record`` — ``decide_customer`` once per request (always traced).

Before measuring, every answer of ``decide_many`` is compared with ``decide_customer``'s
for the same requests (traced: whole records; untraced: everything but the trace).

    .venv/bin/python benchmarks/engine_small_batches.py [--customers 10000] [--seconds 1.0]

The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
STRATEGY = HERE.parent / "strategies" / "next_best_action.yaml"
EVENT = "customer_interaction"
SIZES = (1, 10, 100, 500, 1000, 2000)
SEGMENTS = np.array(["active", "lapsing", "dormant", "new", None], dtype=object)
DAY = 86_400.0


def service_records(strategy, customers: int, seed: int) -> list[dict]:
    """Every customer's online-store record (``{"customer": ..., "accounts": [...]}``)."""
    sys.path.insert(0, str(HERE))
    from engine_outputs import WORLD_END, world

    from cx_pipelines.decisioning.population import engine_inputs
    from cx_pipelines.online_store import snapshot_records
    from cx_pipelines.online_store.common import decode_record, encode_record

    source_customers, source_accounts = world(customers, seed)
    frame, accounts = engine_inputs(
        strategy, customers=source_customers, accounts=source_accounts, as_of=WORLD_END
    )
    rng = np.random.default_rng(seed)
    for attribute in strategy.input_attributes(None):
        if attribute.name.startswith("scores."):
            values = rng.uniform(0.0, 0.3, len(frame)).round(6)
            values[rng.random(len(frame)) < 0.03] = np.nan  # a few unscored customers
            frame[attribute.column] = values
    frame["segments.segment"] = SEGMENTS[rng.integers(0, len(SEGMENTS), len(frame))]
    return [
        decode_record(encode_record(record, "benchmark"))
        for _, record in snapshot_records(frame, accounts)
    ]


def contact_rows(strategy, customer_ids: list[str], seed: int) -> dict[str, list[dict]]:
    """A seeded contact history per customer (about half have 1–3 recent contacts)."""
    from cx_pipelines.online_store import Contact, contact_history

    rng = np.random.default_rng(seed + 1)
    now = time.time()
    treatments = list(strategy.treatments)
    history: dict[str, list[dict]] = {}
    for customer_id in customer_ids:
        count = int(rng.integers(0, 4)) if rng.random() < 0.5 else 0
        contacts = [
            Contact(
                f"{customer_id}-{n}",
                customer_id,
                strategy.channels[int(rng.integers(0, len(strategy.channels)))],
                treatments[int(rng.integers(0, len(treatments)))],
                now - float(rng.uniform(0, 60)) * DAY,
                declined=bool(rng.random() < 0.4),
            )
            for n in range(count)
        ]
        history[customer_id] = contact_history(contacts, now=now)
    return history


def _timed(function, seconds: float, least: int) -> dict[str, float]:
    walls, cpus = [], []
    budget = time.perf_counter() + seconds
    while len(walls) < least or time.perf_counter() < budget:
        gc.collect()
        cpu, wall = time.process_time(), time.perf_counter()
        function()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
        if len(walls) >= 2000:
            break
    return {
        "wall_min_ms": min(walls) * 1e3,
        "wall_median_ms": statistics.median(walls) * 1e3,
        "cpu_min_ms": min(cpus) * 1e3,
        "cpu_median_ms": statistics.median(cpus) * 1e3,
        "repeats": len(walls),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--seconds", type=float, default=1.0, help="per figure, at least")
    parser.add_argument("--sizes", type=int, nargs="*", default=list(SIZES))
    options = parser.parse_args(argv)

    from cx_pipelines.engine import load_strategy
    from cx_pipelines.intelligence import Request, decide_customer, decide_many

    strategy = load_strategy(STRATEGY)
    records = service_records(strategy, options.customers, options.seed)
    ids = [str(r["customer"]["customer_id"]) for r in records]
    history = contact_rows(strategy, ids, options.seed)
    versions = {"cx_attrition": "3", "cx_propensity": "5", "cx_uplift": "2"}
    rng = np.random.default_rng(options.seed + 2)

    def requests_of(size: int) -> list:
        channel = strategy.channels[int(rng.integers(0, len(strategy.channels)))]
        picks = rng.integers(0, len(records), size)
        return [
            Request(
                customer_id=ids[p],
                customer=records[p]["customer"],
                accounts=records[p]["accounts"],
                channel=channel,
                contact_history=history[ids[p]],
            )
            for p in picks.tolist()
        ]

    def batch(items, trace):
        return decide_many(
            strategy,
            event=EVENT,
            requests=items,
            model_versions=[versions] * len(items),
            trace=trace,
        )

    def per_record(items):
        return [
            decide_customer(
                strategy,
                event=EVENT,
                customer=r.customer,
                customer_id=r.customer_id,
                accounts=r.accounts,
                channel=r.channel,
                contact_history=r.contact_history,
                model_versions=versions,
            )
            for r in items
        ]

    # the paths must agree before their speed means anything
    check = requests_of(min(2000, len(records)))
    check[5:10] = check[:5]  # customers asked twice in one call
    reference = per_record(check)
    traced = batch(check, True)
    untraced = batch(check, False)
    identical = traced == reference and untraced == [{**r, "trace": None} for r in reference]

    results: dict[str, dict] = {}
    print(
        f"{'N':>5} {'path':<13} {'wall min':>10} {'wall med':>10} {'cpu min':>10} "
        f"{'cpu med':>10} {'decisions/s (cpu)':>18}"
    )
    for size in options.sizes:
        items = requests_of(size)
        figures = {
            "batch": _timed(lambda items=items: batch(items, False), options.seconds, 5),
            "batch_traced": _timed(lambda items=items: batch(items, True), options.seconds, 5),
            "per_record": _timed(lambda items=items: per_record(items), options.seconds, 5),
        }
        for path, figure in figures.items():
            figure["decisions_per_s_cpu"] = size / (figure["cpu_min_ms"] / 1e3)
            figure["decisions_per_s_wall"] = size / (figure["wall_min_ms"] / 1e3)
            print(
                f"{size:>5} {path:<13} {figure['wall_min_ms']:>8.3f}ms "
                f"{figure['wall_median_ms']:>8.3f}ms {figure['cpu_min_ms']:>8.3f}ms "
                f"{figure['cpu_median_ms']:>8.3f}ms {figure['decisions_per_s_cpu']:>18,.0f}",
                flush=True,
            )
            figure.update({k: round(v, 4) for k, v in figure.items() if isinstance(v, float)})
        results[str(size)] = figures
    print(f"decide_many equals decide_customer on {len(check)} requests: {identical}")
    print(
        json.dumps(
            {
                "customers": options.customers,
                "seed": options.seed,
                "strategy": STRATEGY.name,
                "identical_to_per_record": identical,
                "sizes": results,
            }
        )
    )
    return 0 if identical else 1


if __name__ == "__main__":
    raise SystemExit(main())
