"""Fingerprint of everything the engine decides on a synthetic world: one sha256.

Generates a world of N customers (default 20,000, seed 7) into a temporary CX_HOME,
builds the engine population the way the decisioning assets do
(``cx_pipelines.decisioning.population.engine_inputs`` over the source ``customers`` and
``accounts`` tables), fills input attributes the world does not provide with seeded
random values (so every branch is exercised rather than every value being null), adds a
seeded contact history, and evaluates ``strategies/retail_bank.yaml``,
``strategies/omnichannel.yaml`` and ``engine/examples/small_bank.yaml`` for every event on
the batch path (customers, accounts, treatments frames and trace texts) and on the
per-record path (every customer's record and trace). All of it is serialised canonically
and hashed, so a refactoring that changes any output or trace byte changes the hash.

    .venv/bin/python benchmarks/engine_outputs.py [--customers 20000] [--seed 7]

The last line is one JSON object: ``{"customers": N, "sha256": ..., "parts": {...}}``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
STRATEGIES = [
    ROOT / "strategies" / "retail_bank.yaml",
    ROOT / "strategies" / "omnichannel.yaml",
    ROOT / "cx_pipelines" / "engine" / "examples" / "small_bank.yaml",
]
WORLD_END = pd.Timestamp("2026-09-30 23:59:59").to_pydatetime()


def _engine_inputs():
    try:
        from cx_pipelines.decisioning.population import engine_inputs
    except ImportError:  # before the move out of the engine
        from cx_pipelines.engine.population import engine_inputs
    return engine_inputs


def world(customers: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The source ``customers`` and ``accounts`` tables of a freshly generated world."""
    from cx_pipelines.world import generate_world

    home = tempfile.mkdtemp(prefix="cx-engine-outputs-")
    os.environ["CX_HOME"] = home
    url = f"sqlite:///{home}/source.db"
    generate_world(customers=customers, seed=seed, source_url=url)
    engine = sa.create_engine(url)
    with engine.connect() as connection:
        frames = (
            pd.read_sql_table("customers", connection),
            pd.read_sql_table("accounts", connection),
        )
    engine.dispose()
    return frames


def _fill(frame: pd.DataFrame, strategy, account_type: str | None, rng) -> pd.DataFrame:
    """Input columns that are entirely null get seeded random values of their type."""
    frame = frame.copy()
    size = len(frame)
    rows = (
        np.ones(size, dtype=bool)
        if account_type is None
        else (frame["account_type"] == account_type).to_numpy()
    )
    for attribute in strategy.input_attributes(account_type):
        column = attribute.column
        if column in ("customer_id",) or (
            column in frame.columns and frame.loc[rows, column].notna().any()
        ):
            continue
        kind = attribute.value_type.value
        count = int(rows.sum())
        if kind == "number":
            values = np.round(rng.gamma(2.0, 300.0, count), 2)
            values[rng.random(count) < 0.05] = np.nan
            filled = (
                np.full(size, np.nan)
                if column not in frame
                else np.array(frame[column].to_numpy(float), copy=True)
            )
            filled[rows] = values
        elif kind == "boolean":
            choice = rng.random(count)
            values = np.where(choice < 0.05, None, choice < 0.5).astype(object)
            filled = np.full(size, None, dtype=object)
            filled[rows] = values
        elif kind == "string":
            options = np.array(["north", "south", "east", "a", "b", None], dtype=object)
            filled = np.full(size, None, dtype=object)
            filled[rows] = options[rng.integers(0, len(options), count)]
        else:
            days = rng.integers(0, 3650, count).astype("timedelta64[D]")
            filled = np.full(size, np.datetime64("NaT"), dtype="datetime64[D]")
            filled[rows] = np.datetime64("2016-01-01") + days
        frame[column] = filled
    return frame


def population(strategy, customers: pd.DataFrame, accounts: pd.DataFrame, seed: int):
    engine_inputs = _engine_inputs()
    customer_frame, account_frame = engine_inputs(
        strategy, customers=customers, accounts=accounts, as_of=WORLD_END
    )
    rng = np.random.default_rng(seed)
    customer_frame = _fill(customer_frame, strategy, None, rng)
    for account_type in strategy.account_types:
        account_frame = _fill(account_frame, strategy, account_type, rng)
    ids = customer_frame["customer_id"].to_numpy()
    picks = rng.integers(0, len(ids), len(ids) // 2)
    channels = np.array(strategy.channels or ["none"], dtype=object)
    treatments = np.array(list(strategy.treatments) or ["none"], dtype=object)
    history = pd.DataFrame(
        {
            "customer_id": ids[picks],
            "channel": channels[rng.integers(0, len(channels), len(picks))],
            "treatment": treatments[rng.integers(0, len(treatments), len(picks))],
            "days_ago": rng.integers(0, 120, len(picks)).astype(float),
            "declined": rng.random(len(picks)) < 0.6,
        }
    )
    return customer_frame, account_frame, history


def _canonical_frame(frame: pd.DataFrame) -> bytes:
    text = "|".join(f"{c}:{frame[c].dtype}" for c in frame.columns) + "\n"
    return text.encode() + frame.to_csv(index=False, lineterminator="\n").encode()


def _plain(value):
    if isinstance(value, float) and value != value:
        return "NaN"
    return str(value)


def fingerprint(customers: int, seed: int) -> dict:
    from cx_pipelines.engine import evaluate_batch, evaluate_customer, load_strategy

    source_customers, source_accounts = world(customers, seed)
    parts: dict[str, str] = {}
    total = hashlib.sha256()
    for path in STRATEGIES:
        strategy = load_strategy(path)
        customer_frame, account_frame, history = population(
            strategy, source_customers, source_accounts, seed
        )
        records = customer_frame.to_dict("records")
        by_customer: dict = {}
        for account in account_frame.to_dict("records"):
            by_customer.setdefault(account["customer_id"], []).append(account)
        contacts: dict = {}
        for row in history.to_dict("records"):
            contacts.setdefault(row["customer_id"], []).append(row)
        for event in strategy.events:
            digest = hashlib.sha256()
            result = evaluate_batch(
                strategy,
                event=event,
                customers=customer_frame,
                accounts=account_frame,
                contact_history=history,
            )
            for frame in (result.customers, result.accounts, result.treatments):
                digest.update(_canonical_frame(frame))
            for customer in records:
                record = evaluate_customer(
                    strategy,
                    event=event,
                    customer=customer,
                    accounts=by_customer.get(customer["customer_id"], []),
                    contact_history=contacts.get(customer["customer_id"], []),
                )
                digest.update(json.dumps(record, sort_keys=True, default=_plain).encode())
            key = f"{path.name}:{event}"
            parts[key] = digest.hexdigest()
            total.update(f"{key}={parts[key]}\n".encode())
            print(f"  {key:<45} {parts[key][:16]}", flush=True)
    return {"customers": customers, "seed": seed, "sha256": total.hexdigest(), "parts": parts}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=7)
    options = parser.parse_args(argv)
    result = fingerprint(options.customers, options.seed)
    print(f"outputs and traces sha256: {result['sha256']}")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
