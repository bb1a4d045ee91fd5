"""Throughput of interaction_results: one cycle of results matched against a grown decision log.

Usage: python benchmarks/interaction_results.py --customers 50000 --cycles 6

Builds ``cycles`` export runs of ``customers`` decided rows each (INTERFACES §2 format) and
one result file per run (§3), then processes the files one cycle at a time, as the loop
does: the decision log and the recorded table grow each cycle. The peer, measured in the
same run on the same rows, is plain validated ingestion (``ingest_table``) of the last
cycle's results loaded into the ``offer_responses`` source table: what validation alone
costs, without matching, de-duplication and accumulation. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd


def cycle_frames(customers: int, cycle: int, rng: np.random.Generator):
    decided_at = pd.Timestamp("2026-10-01 09:00") + pd.Timedelta(days=7 * cycle)
    run_key = f"{decided_at:%Y-%m-%d}-{cycle:06x}"
    ids = np.arange(1, customers + 1)
    control = rng.random(customers) < 0.1
    decisions = pd.DataFrame(
        {
            "contact_id": [f"c{cycle}-{i}" for i in ids],
            "run_key": run_key,
            "campaign_id": "bench",
            "customer_id": ids,
            "offer_type": "savings",
            "channel": "email",
            "treatment": "savings_email",
            "group": np.where(control, "control", "treated"),
            "rank": ids,
            "p_response": rng.random(customers),
            "uplift": rng.random(customers) / 10,
            "expected_incremental_profit": rng.random(customers),
            "selection_probability": np.where(control, 0.1, 0.9),
            "exploration": False,
            "decided_at": decided_at,
            "strategy_hash": "bench",
            "model_versions": "{}",
        }
    )
    responded = rng.random(customers) < np.where(control, 0.05, 0.08)
    results = pd.DataFrame(
        {
            "contact_id": decisions["contact_id"],
            "customer_id": ids,
            "campaign_id": "bench",
            "offer_type": "savings",
            "channel": "email",
            "outcome": np.where(responded, "responded", "not_responded"),
            "revenue": np.where(responded, 40.0, 0.0),
            "responded_at": decided_at + pd.Timedelta(days=2),
        }
    )
    return run_key, decisions, results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=50_000)
    parser.add_argument("--cycles", type=int, default=6)
    parser.add_argument("--seed", type=int, default=0)
    arguments = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="cx-bench-results-"))
    os.environ["CX_HOME"] = str(home)
    from cx_pipelines.feedback import process_results
    from cx_pipelines.ingestion import ingest_table
    from cx_pipelines.world.source_writer import source_engine

    rng = np.random.default_rng(arguments.seed)
    seconds, last = [], None
    for cycle in range(arguments.cycles):
        run_key, decisions, results = cycle_frames(arguments.customers, cycle, rng)
        folder = home / "exports" / "bench" / run_key
        folder.mkdir(parents=True)
        decisions.to_parquet(folder / "decisions.parquet", index=False)
        (home / "inbox").mkdir(exist_ok=True)
        results.to_parquet(home / "inbox" / f"{run_key}.parquet", index=False)
        started = time.perf_counter()
        run = process_results(run_id=f"bench-{cycle}", include_source_table=False)
        seconds.append(time.perf_counter() - started)
        assert run.update.total("matched") == arguments.customers, run.update.reasons
        print(
            f"cycle {cycle + 1}: {arguments.customers:,} results matched against "
            f"{len(run.decision_log.decisions):,} decisions in {seconds[-1]:.2f} s"
        )
        last = results
    url = f"sqlite:///{home / 'source.db'}"
    engine = source_engine(url)
    last.to_sql("offer_responses", engine, index=False)
    engine.dispose()
    started = time.perf_counter()
    report = ingest_table("offer_responses", url=url, run_id="bench-ingest")
    ingest_seconds = time.perf_counter() - started
    assert report.rows_accepted == arguments.customers
    print(f"peer: ingest_table of the same {arguments.customers:,} rows: {ingest_seconds:.2f} s")
    figures = {
        "customers": arguments.customers,
        "cycles": arguments.cycles,
        "seconds_per_cycle": [round(value, 3) for value in seconds],
        "last_cycle_rows_per_second": round(arguments.customers / seconds[-1]),
        "peer_ingest_table_seconds": round(ingest_seconds, 3),
        "cpu_count": os.cpu_count(),
    }
    print(json.dumps(figures))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
