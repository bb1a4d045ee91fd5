"""Measure the two expression forms on typical rules (``python -m`` this module).

Prints, per rule, the batch throughput over a seeded population (1,000,000 rows by
default) and the per-record cost (mean and p99 of single calls); the last line is one
JSON object of the figures. Throughputs and means use process CPU time, so a busy shared
machine (being descheduled) does not distort them; p99 is wall time per call. A
measurement, not a test: nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from cx_pipelines.engine.language.expressions import ValueType, compile_expression, prepare_columns

TYPES = {
    "balance": ValueType.NUMBER,
    "risk_score": ValueType.NUMBER,
    "segment": ValueType.STRING,
    "tenure_months": ValueType.NUMBER,
    "opened": ValueType.DATE,
}
RULES = {
    "two_conditions": "balance > 500 and risk_score in 401..600",
    "four_conditions": (
        "balance > 500 and risk_score in 401..600 and segment in ['gold', 'silver'] "
        "and tenure_months >= 12"
    ),
    "arithmetic": "coalesce(balance, 0) * 0.02 + if(risk_score > 700, 50, 0)",
    "dates_and_strings": (
        "days_between(opened, date'2026-09-30') > 365 and lower(segment) != 'bronze'"
    ),
}


def population(size: int, *, seed: int) -> dict[str, np.ndarray]:
    """Seeded columns with about 5% nulls in balance and segment."""
    rng = np.random.default_rng(seed)
    balance = rng.normal(800.0, 400.0, size)
    balance[rng.random(size) < 0.05] = np.nan
    segment = rng.choice(np.array(["gold", "silver", "bronze", "Bronze"], dtype=object), size)
    segment[rng.random(size) < 0.05] = None
    opened = np.datetime64("2020-01-01") + rng.integers(0, 2400, size).astype("timedelta64[D]")
    return {
        "balance": balance,
        "risk_score": rng.integers(300, 850, size).astype(np.float64),
        "segment": segment,
        "tenure_months": rng.integers(0, 240, size).astype(np.float64),
        "opened": opened,
    }


def _records(columns: dict[str, np.ndarray], count: int) -> list[dict]:
    """The first ``count`` rows as plain Python records, as a service would receive them."""
    rows = []
    for index in range(count):
        row = {}
        for name, column in columns.items():
            value = column[index]
            if isinstance(value, np.datetime64):
                value = value.astype("datetime64[D]").item()
            elif isinstance(value, np.floating):
                value = None if np.isnan(value) else float(value)
            row[name] = value
        rows.append(row)
    return rows


def measure(size: int, records: int, seed: int) -> dict[str, dict[str, float]]:
    columns = population(size, seed=seed)
    rows = _records(columns, records)
    figures: dict[str, dict[str, float]] = {}
    for name, text in RULES.items():
        expression = compile_expression(text, attribute_types=TYPES)
        timings = []
        for _ in range(3):
            start = time.process_time()
            expression.evaluate_batch(columns, size)
            timings.append(time.process_time() - start)
        prepared = prepare_columns(columns, size)
        expression.evaluate_batch(prepared, size)  # conversions happen once, here
        prepared_timings = []
        for _ in range(3):
            start = time.process_time()
            expression.evaluate_batch(prepared, size)
            prepared_timings.append(time.process_time() - start)
        prepared_seconds = min(prepared_timings)
        evaluate = expression.evaluate_record
        for row in rows[:1000]:
            evaluate(row)
        start = time.process_time()
        for row in rows:
            evaluate(row)
        mean = (time.process_time() - start) / len(rows)
        latencies = np.empty(len(rows))
        clock = time.perf_counter_ns
        for index, row in enumerate(rows):
            begin = clock()
            evaluate(row)
            latencies[index] = clock() - begin
        figures[name] = {
            "batch_rows_per_second": size / min(timings),
            "batch_prepared_rows_per_second": size / prepared_seconds,
            "record_mean_microseconds": mean * 1e6,
            "record_p99_microseconds": float(np.percentile(latencies, 99)) / 1e3,
        }
        print(
            f"{name:18s} batch {size / min(timings) / 1e6:7.1f} M rows/s "
            f"(prepared {size / prepared_seconds / 1e6:7.1f} M rows/s); per record "
            f"mean {mean * 1e6:.2f} us, p99 {figures[name]['record_p99_microseconds']:.2f} us"
            f"  [{text}]"
        )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=7)
    options = parser.parse_args()
    figures = measure(options.rows, options.records, options.seed)
    print(json.dumps({"rows": options.rows, "records": options.records, "rules": figures}))


if __name__ == "__main__":
    main()
