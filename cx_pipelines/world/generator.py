"""Generate the synthetic bank block by block and write it to the source system.

Customers are drawn in fixed blocks of ``BLOCK_CUSTOMERS``; block ``k`` of seed ``s`` has
its own random stream, ``SeedSequence(s, spawn_key=(1, k))`` (what ``spawn`` would give),
and the campaign plan has ``spawn_key=(0,)``. Chunks written to the database are whole
blocks and identifiers are numbered in customer order, so the data depend only on the
seed, never on the chunk size, and a world of N customers is the first N customers of
any larger world.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from cx_pipelines import config
from cx_pipelines.source_schema import (
    ACCOUNT_STATUSES,
    CUSTOMER_TYPES,
    EVENT_TYPES,
    INTERACTION_CHANNELS,
    INTERACTION_TYPES,
    MERCHANT_CATEGORIES,
    OFFER_CHANNELS,
    OFFER_TYPES,
    PRODUCT_TYPES,
    REGIONS,
    SOURCE_TABLES,
    TRANSACTION_CHANNELS,
)
from cx_pipelines.world import WORLD_END, WORLD_START, GenerationSummary
from cx_pipelines.world import population as pop
from cx_pipelines.world.customers import draw_accounts, draw_customers
from cx_pipelines.world.engagement import draw_inbound_events, draw_interactions
from cx_pipelines.world.offers import (
    Campaign,
    campaigns_as_dicts,
    draw_offer_history,
    plan_campaigns,
    response_probabilities,
)
from cx_pipelines.world.source_writer import SourceWriter, source_engine
from cx_pipelines.world.spending import draw_purchases, draw_transactions

DEFAULT_CHUNK_CUSTOMERS = 25_000
_START = np.datetime64(WORLD_START, "s")
_END = np.datetime64(WORLD_END, "s")
_SECONDS_PER_WEEK = 7 * 86_400

Columns = dict[str, np.ndarray]


class WorldSizeError(ValueError):
    """The requested world cannot be generated with these options."""


def _timestamps(weeks: np.ndarray) -> np.ndarray:
    seconds = np.floor(np.nan_to_num(weeks, nan=0.0) * _SECONDS_PER_WEEK).astype(np.int64)
    stamps = np.minimum(_START + seconds.astype("timedelta64[s]"), _END)
    return np.where(np.isnan(weeks), np.datetime64("NaT", "s"), stamps)


def _names(domain: tuple[str, ...], index: np.ndarray) -> np.ndarray:
    return np.array(domain, dtype=object)[index]


@dataclass
class _Counters:
    """Next identifier of every table, so ids run on across blocks in block order."""

    next_id: dict[str, int] = field(default_factory=lambda: defaultdict(lambda: 1))

    def take(self, name: str, count: int) -> np.ndarray:
        first = self.next_id[name]
        self.next_id[name] = first + count
        return np.arange(first, first + count, dtype=np.int64)


def _rows(arrays, keep: np.ndarray):
    """The same dataclass of per-row arrays, with only the rows where ``keep`` holds."""
    return replace(
        arrays,
        **{
            item.name: getattr(arrays, item.name)[keep]
            for item in fields(arrays)
            if isinstance(getattr(arrays, item.name), np.ndarray)
        },
    )


def draw_block(
    seed: int, block: int, count: int, campaigns: list[Campaign], counters: _Counters
) -> tuple[dict[str, Columns], Columns]:
    """Source tables and ground truth of the first ``count`` customers of one block.

    The whole block is always drawn and then cut, so a customer's data never depend on
    how many customers follow it.
    """
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(1, block)))
    first_id = block * pop.BLOCK_CUSTOMERS + 1
    customers = draw_customers(rng, first_id=first_id, count=pop.BLOCK_CUSTOMERS)
    purchases = draw_purchases(rng, customers)
    dropped = ~np.isnan(purchases.dropped_out_week)
    accounts = draw_accounts(rng, customers, dropped_out=dropped)
    transactions = draw_transactions(rng, customers, purchases, accounts)
    response = response_probabilities(customers, accounts, purchases=purchases.count)
    offers = draw_offer_history(rng, customers, response, campaigns)
    interactions = draw_interactions(
        rng,
        customers,
        accounts,
        response,
        dropped_out_week=purchases.dropped_out_week,
        offers=offers,
        campaigns=campaigns,
    )
    events = draw_inbound_events(rng, customers, accounts)

    # Every per-row array is ordered by customer, so cutting keeps a prefix.
    customers = _rows(customers, np.arange(pop.BLOCK_CUSTOMERS) < count)
    accounts = _rows(accounts, accounts.owner < count)
    transactions = _rows(transactions, transactions.owner < count)
    interactions = _rows(interactions, interactions.owner < count)
    events = _rows(events, events.owner < count)
    offers = _rows(offers, offers.owner < count)
    dropped = dropped[:count]

    customer_id = customers.customer_id
    account_id = counters.take("accounts", len(accounts.owner))
    session_key = interactions.owner * (interactions.sessions + 1) + interactions.session
    sessions, session_rank = np.unique(session_key, return_inverse=True)
    session_id = counters.take("sessions", len(sessions))[session_rank]
    account_or_null = np.where(events.account >= 0, account_id[events.account], 0)
    account_or_null = np.where(events.account >= 0, account_or_null.astype(object), None)
    tables = {
        "customers": {
            "customer_id": customer_id,
            "customer_type": _names(CUSTOMER_TYPES, customers.customer_type),
            "region": _names(REGIONS, customers.region),
            "birth_year": (WORLD_END.year - customers.age).astype(np.int64),
            "annual_income": customers.annual_income,
            "joined_on": _timestamps(customers.joined_week).astype("datetime64[D]"),
            "email": np.char.add(
                np.char.add("customer", customer_id.astype(str)), "@example.net"
            ).astype(object),
        },
        "accounts": {
            "account_id": account_id,
            "customer_id": customer_id[accounts.owner],
            "product_type": _names(PRODUCT_TYPES, accounts.product),
            "opened_on": _timestamps(accounts.opened_week).astype("datetime64[D]"),
            "status": _names(ACCOUNT_STATUSES, accounts.closed.astype(np.int64)),
            "balance": accounts.balance,
            "credit_limit": accounts.credit_limit,
            "days_past_due": accounts.days_past_due,
            "interest_rate": accounts.interest_rate,
        },
        "transactions": {
            "transaction_id": counters.take("transactions", len(transactions.owner)),
            "account_id": account_id[transactions.account],
            "customer_id": customer_id[transactions.owner],
            "occurred_at": _timestamps(transactions.week),
            "amount": transactions.amount,
            "merchant_category": _names(MERCHANT_CATEGORIES, transactions.merchant_category),
            "channel": _names(TRANSACTION_CHANNELS, transactions.channel),
        },
        "interactions": {
            "interaction_id": counters.take("interactions", len(interactions.owner)),
            "customer_id": customer_id[interactions.owner],
            "session_id": session_id,
            "occurred_at": _timestamps(interactions.week),
            "channel": _names(INTERACTION_CHANNELS, interactions.channel),
            "interaction_type": _names(INTERACTION_TYPES, interactions.interaction_type),
            "product_type": np.array((*PRODUCT_TYPES, None), dtype=object)[interactions.product],
        },
        "inbound_events": {
            "event_id": counters.take("inbound_events", len(events.owner)),
            "customer_id": customer_id[events.owner],
            "account_id": account_or_null,
            "event_type": _names(EVENT_TYPES, events.event_type),
            "occurred_at": _timestamps(events.week),
            "amount": events.amount,
        },
        "offer_history": {
            "contact_id": counters.take("offer_history", len(offers.owner)),
            "campaign_id": np.array([c.campaign_id for c in campaigns], dtype=object)[
                offers.campaign
            ],
            "customer_id": customer_id[offers.owner],
            "offer_type": np.array([c.offer_type for c in campaigns], dtype=object)[
                offers.campaign
            ],
            "channel": np.array([c.channel for c in campaigns], dtype=object)[offers.campaign],
            "treated": offers.treated,
            "contacted_at": _timestamps(offers.week),
            "responded": offers.responded,
            "revenue": offers.revenue,
        },
    }
    truth: Columns = {
        "customer_id": customer_id,
        "purchase_rate": customers.purchase_rate,
        "dropout_probability": customers.dropout_probability,
        "dropped_out_at": _timestamps(purchases.dropped_out_week[:count]),
        "alive_at_end": ~dropped,
        "spend_scale": customers.spend_scale,
        "expected_spend": pop.BTYD.p / customers.spend_scale,
        "first_purchase_at": _timestamps(
            np.where(
                customers.first_purchase_week <= pop.WORLD_WEEKS,
                customers.first_purchase_week,
                np.nan,
            )
        ),
        "purchases": purchases.count[:count].astype(np.int64),
    }
    for column, offer in enumerate(OFFER_TYPES):
        for channel in OFFER_CHANNELS:
            truth[f"p_control__{offer}__{channel}"] = response.p_control[:count, column]
    for column, offer in enumerate(OFFER_TYPES):
        for lane, channel in enumerate(OFFER_CHANNELS):
            truth[f"p_treated__{offer}__{channel}"] = response.p_treated[:count, column, lane]
    return tables, truth


def _concatenate(parts: list[Columns]) -> Columns:
    return {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}


def generate(
    *,
    customers: int,
    seed: int,
    source_url: str,
    chunk_customers: int = DEFAULT_CHUNK_CUSTOMERS,
    on_progress: Callable[[int, int], None] | None = None,
) -> GenerationSummary:
    """Replace the source tables with a world of ``customers`` customers drawn from ``seed``.

    ``on_progress(done, total)`` is called with the customers drawn so far after each
    block (it changes nothing in what is generated).
    """
    if customers < 1:
        raise WorldSizeError(f"--customers must be at least 1, got {customers}")
    if chunk_customers < pop.BLOCK_CUSTOMERS:
        raise WorldSizeError(
            f"chunk_customers must be at least {pop.BLOCK_CUSTOMERS} (one block), "
            f"got {chunk_customers}"
        )
    began = time.perf_counter()
    campaigns = plan_campaigns(seed)
    engine = source_engine(source_url)
    writer = SourceWriter(engine)
    folder = config.world_dir()
    folder.mkdir(parents=True, exist_ok=True)
    truth_path = folder / "truth.parquet"
    partial = folder / f".truth.{os.getpid()}.parquet"
    counters = _Counters()
    row_counts = {table.name: 0 for table in SOURCE_TABLES}
    blocks = math.ceil(customers / pop.BLOCK_CUSTOMERS)
    blocks_per_chunk = chunk_customers // pop.BLOCK_CUSTOMERS
    truth_writer: pq.ParquetWriter | None = None
    try:
        # One transaction: a run that fails part-way leaves the previous world in place.
        with writer.replacing():
            writer.recreate_tables()
            for first_block in range(0, blocks, blocks_per_chunk):
                table_parts: dict[str, list[Columns]] = defaultdict(list)
                truth_parts: list[Columns] = []
                for block in range(first_block, min(first_block + blocks_per_chunk, blocks)):
                    size = min(pop.BLOCK_CUSTOMERS, customers - block * pop.BLOCK_CUSTOMERS)
                    tables, truth = draw_block(seed, block, size, campaigns, counters)
                    if on_progress is not None:
                        on_progress(block * pop.BLOCK_CUSTOMERS + size, customers)
                    for name, columns in tables.items():
                        table_parts[name].append(columns)
                    truth_parts.append(truth)
                chunk = {name: _concatenate(parts) for name, parts in table_parts.items()}
                writer.write(chunk)
                for name, columns in chunk.items():
                    row_counts[name] += len(next(iter(columns.values())))
                truth_table = pa.table(_concatenate(truth_parts))
                if truth_writer is None:
                    truth_writer = pq.ParquetWriter(partial, truth_table.schema)
                truth_writer.write_table(truth_table)
            truth_writer.close()
            truth_writer = None
            writer.create_indexes()
        os.replace(partial, truth_path)
    finally:
        if truth_writer is not None:
            truth_writer.close()
        partial.unlink(missing_ok=True)
        engine.dispose()
    population = pop.describe_population(
        customers=customers, seed=seed, campaigns=campaigns_as_dicts(campaigns)
    )
    _write_json(folder / "population.json", population)
    return GenerationSummary(
        row_counts=row_counts,
        truth_path=truth_path,
        customers=customers,
        seed=seed,
        seconds=time.perf_counter() - began,
    )


def _write_json(path: Path, content: dict) -> None:
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    partial.write_text(json.dumps(content, indent=2, default=str))
    os.replace(partial, path)
