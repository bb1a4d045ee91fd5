"""Load the CDNOW transaction log (Fader and Hardie) into the source system as spending data.

CDNOW holds purchases only, so the load maps it onto the source schema with documented
placeholders that stay inside the schema's domains:

- customers: ``customer_type`` "mass_market" and ``region`` "central" for everyone (the
  log has no demographics); ``birth_year`` and ``annual_income`` are NULL (unknown, not
  invented); ``joined_on`` is the date of the first purchase; ``email`` is
  ``cdnow<id>@example.net``;
- accounts: one open "checking" account per customer (``account_id`` = ``customer_id``),
  opened on the first purchase, balance 0, no credit limit, not past due, rate 0;
- transactions: one row per line of the log, at midnight of its date, ``amount`` the
  dollar value (a few lines are 0.00 in the original data), merchant category
  "entertainment", channel "ecommerce";
- interactions, inbound events and offer history: empty.

Dates stay in 1997–1998 as published, so BTYD results can be compared with the papers.
The ground truth of any synthetic world previously generated is removed, because it
no longer describes the source tables.
"""

from __future__ import annotations

import numpy as np

from cx_pipelines import config
from cx_pipelines.datasets import read_cdnow
from cx_pipelines.source_schema import SOURCE_TABLES
from cx_pipelines.world.source_writer import SourceWriter, source_engine

PLACEHOLDER_CUSTOMER_TYPE = "mass_market"
PLACEHOLDER_REGION = "central"


def load_cdnow(*, master: bool = False, source_url: str) -> dict[str, int]:
    """Replace the source tables with the CDNOW log; return the rows written per table."""
    log = read_cdnow(master=master)
    customer_id = log["customer_id"].to_numpy(dtype=np.int64)
    dates = log["date"].to_numpy().astype("datetime64[s]")
    first = log.groupby("customer_id", sort=True)["date"].min()
    ids = first.index.to_numpy(dtype=np.int64)
    first_day = first.to_numpy().astype("datetime64[D]")
    count = len(ids)
    tables = {
        "customers": {
            "customer_id": ids,
            "customer_type": np.full(count, PLACEHOLDER_CUSTOMER_TYPE, dtype=object),
            "region": np.full(count, PLACEHOLDER_REGION, dtype=object),
            "birth_year": np.full(count, None, dtype=object),
            "annual_income": np.full(count, np.nan),
            "joined_on": first_day,
            "email": np.array([f"cdnow{i}@example.net" for i in ids], dtype=object),
        },
        "accounts": {
            "account_id": ids,
            "customer_id": ids,
            "product_type": np.full(count, "checking", dtype=object),
            "opened_on": first_day,
            "status": np.full(count, "open", dtype=object),
            "balance": np.zeros(count),
            "credit_limit": np.full(count, np.nan),
            "days_past_due": np.zeros(count, dtype=np.int64),
            "interest_rate": np.zeros(count),
        },
        "transactions": {
            "transaction_id": np.arange(1, len(log) + 1, dtype=np.int64),
            "account_id": customer_id,
            "customer_id": customer_id,
            "occurred_at": dates,
            "amount": log["dollar_value"].to_numpy(dtype=np.float64),
            "merchant_category": np.full(len(log), "entertainment", dtype=object),
            "channel": np.full(len(log), "ecommerce", dtype=object),
        },
    }
    engine = source_engine(source_url)
    try:
        writer = SourceWriter(engine)
        with writer.replacing():
            writer.recreate_tables()
            writer.write(tables)
            writer.create_indexes()
    finally:
        engine.dispose()
    for stale in ("truth.parquet", "population.json"):
        (config.world_dir() / stale).unlink(missing_ok=True)
    rows = {table.name: 0 for table in SOURCE_TABLES}
    rows.update({name: len(columns["customer_id"]) for name, columns in tables.items()})
    return rows
