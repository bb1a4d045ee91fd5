"""CPU time of the engine in this checkout against another checkout of the repository, interleaved.

On a shared machine wall-clock figures swing by tens of percent; CPU time (the minimum of
several repeats, ``time.process_time``) is steadier. Each round runs one child process per
checkout (``PYTHONPATH`` points at it, the interpreter is this one) that measures:

* ``strategies/retail_bank.yaml`` periodic review over 100,000 synthetic customers
  (``benchmarks/engine.py``'s population), batch without and with traces, and 2,000 of them
  per record;
* the zen decision table of ``benchmarks/engine.py`` (as a strategy) over 200,000 records in
  batch and 20,000 per record.

    git worktree add --detach /tmp/engine-before <commit>
    .venv/bin/python benchmarks/engine_before_after.py --before /tmp/engine-before [--rounds 2]

The last line is one JSON object: per figure, the list of before and after values.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _cpu(function, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        gc.collect()
        started = time.process_time()
        function()
        best = min(best, time.process_time() - started)
    return round(best, 4)


def measure(root: Path) -> dict[str, float]:
    """The figures for the checkout at ``root`` (run in a child with that checkout first)."""
    import yaml

    sys.path.insert(0, str(root / "benchmarks"))
    from engine import RETAIL, TABLE, retail_population, table_records
    from zen_table import read_zen_table, to_strategy

    from cx_pipelines.engine import evaluate_batch, evaluate_customer, load_strategy

    strategy = load_strategy(RETAIL)
    customers, accounts = retail_population(100_000, 2026)
    options = {"event": "periodic_review", "customers": customers, "accounts": accounts}
    figures = {
        "retail_batch_100k_cpu_s": _cpu(
            lambda: evaluate_batch(strategy, trace=False, **options), 5
        ),
        "retail_batch_traced_100k_cpu_s": _cpu(
            lambda: evaluate_batch(strategy, trace=True, **options), 2
        ),
    }
    rows = customers.head(2000).to_dict("records")
    owned: dict = {}
    for account in accounts[accounts["customer_id"].isin([r["customer_id"] for r in rows])].to_dict(
        "records"
    ):
        owned.setdefault(account["customer_id"], []).append(account)
    figures["retail_record_2000_cpu_s"] = _cpu(
        lambda: [
            evaluate_customer(
                strategy,
                event="periodic_review",
                customer=row,
                accounts=owned.get(row["customer_id"], []),
            )
            for row in rows
        ],
        5,
    )
    path = Path(tempfile.mkdtemp()) / "zen.yaml"
    path.write_text(yaml.safe_dump(to_strategy(read_zen_table(TABLE)), sort_keys=False))
    table = load_strategy(path)
    records = table_records(200_000, 2026).rename(
        columns={"segment": "request_segment", "channel": "request_channel"}
    )
    figures["table_batch_200k_cpu_s"] = _cpu(
        lambda: evaluate_batch(table, event="decide", customers=records, trace=False), 5
    )
    few = records.head(20_000).to_dict("records")
    figures["table_record_20k_cpu_s"] = _cpu(
        lambda: [evaluate_customer(table, event="decide", customer=row) for row in few], 3
    )
    return figures


def _child(root: Path) -> dict[str, float]:
    environment = {**os.environ, "PYTHONPATH": str(root)}
    command = [sys.executable, str(Path(__file__).resolve()), "--measure", str(root)]
    output = subprocess.run(
        command,
        env=environment,
        check=True,
        capture_output=True,
        text=True,
        cwd=tempfile.gettempdir(),
    )
    return json.loads(output.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, help="a checkout of the commit to compare with")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)
    options = parser.parse_args(argv)
    if options.measure is not None:
        print(json.dumps(measure(options.measure)))
        return 0
    if options.before is None:
        parser.error("--before is required")
    results: dict[str, dict[str, list[float]]] = {}
    for round_number in range(1, options.rounds + 1):
        order = [("before", options.before.resolve()), ("after", HERE.parent)]
        if round_number % 2 == 0:  # alternate who goes first: the machine's load drifts
            order.reverse()
        for label, root in order:
            figures = _child(root)
            print(f"round {round_number} {label}: {figures}", flush=True)
            for key, value in figures.items():
                results.setdefault(key, {"before": [], "after": []})[label].append(value)
    for key, values in results.items():
        ratio = min(values["after"]) / min(values["before"])
        print(
            f"  {key:<32} before {min(values['before']):8.4f} s  after "
            f"{min(values['after']):8.4f} s  (after/before {ratio:.2f})"
        )
    print(json.dumps({"load_average": os.getloadavg()[0], **results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
