"""``evaluate_batch``: run an event over a whole population, in slices when traced."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from cx_pipelines.engine.evaluation import shared as c
from cx_pipelines.engine.evaluation.batch.index import CustomerIndex
from cx_pipelines.engine.evaluation.batch.output import (
    BatchResult,
    account_frame,
    customer_frame,
    records_of,
    treatment_frame,
)
from cx_pipelines.engine.evaluation.batch.ranked import ranked_of
from cx_pipelines.engine.evaluation.batch.run import BatchRun
from cx_pipelines.engine.evaluation.batch.trace import trace_texts
from cx_pipelines.engine.evaluation.batch.treatments import rank_treatments
from cx_pipelines.engine.language import model as m
from cx_pipelines.engine.language.errors import EvaluationError


def evaluate_batch(
    strategy: m.Strategy,
    *,
    event: str,
    customers: pd.DataFrame,
    accounts: pd.DataFrame | None = None,
    interaction_type: str | None = None,
    channel: str | None = None,
    contact_history: pd.DataFrame | None = None,
    model_versions: Mapping[str, Any] | None = None,
    trace: bool = True,
    test_groups: Any = None,
    chunk_size: int | None = 250_000,
) -> BatchResult:
    """Run ``event`` for every customer at once; one customer intelligence record per row.

    ``trace=False`` skips rendering the per-customer JSON trace (the costly part at
    millions of rows); everything else is identical. ``test_groups`` (an array of group
    names or None per customer) overrides the hashed assignment, as golden cases do.
    With traces, populations larger than ``chunk_size`` customers are evaluated in
    slices of that many customers with their accounts: same results, and the working
    memory of trace rendering stays bounded.
    """
    options = {
        "event": event,
        "interaction_type": interaction_type,
        "channel": channel,
        "model_versions": model_versions,
        "trace": trace,
    }
    if trace and chunk_size is not None and len(customers) > chunk_size:
        return _in_chunks(
            strategy, customers, accounts, contact_history, test_groups, chunk_size, options
        )
    return _evaluate(strategy, customers, accounts, contact_history, test_groups, **options)


def _in_chunks(strategy, customers, accounts, contact_history, test_groups, chunk_size, options):
    customers = customers.reset_index(drop=True)
    index = CustomerIndex(customers["customer_id"], strategy.salt)
    account_owner = None if accounts is None else index.owner_index(accounts["customer_id"])
    history_owner = (
        None if contact_history is None else index.owner_index(contact_history["customer_id"])
    )
    groups = None if test_groups is None else np.asarray(test_groups, dtype=object)
    results = []
    for start in range(0, len(customers), chunk_size):
        stop = start + chunk_size

        def rows(owner, start=start, stop=stop):
            return np.flatnonzero((owner >= start) & (owner < stop))

        results.append(
            _evaluate(
                strategy,
                customers.iloc[start:stop],
                None if accounts is None else accounts.iloc[rows(account_owner)],
                None if contact_history is None else contact_history.iloc[rows(history_owner)],
                None if groups is None else groups[start:stop],
                **options,
            )
        )
    unmatched = None if accounts is None else accounts.iloc[np.flatnonzero(account_owner < 0)]
    return BatchResult(
        pd.concat([r.customers for r in results], ignore_index=True),
        pd.concat([r.accounts for r in results], ignore_index=True),
        pd.concat([r.treatments for r in results], ignore_index=True),
        lambda: [record for r in results for record in r.records()],
        unmatched_accounts=unmatched,
    )


def _evaluate(
    strategy: m.Strategy,
    customers: pd.DataFrame,
    accounts: pd.DataFrame | None,
    contact_history: pd.DataFrame | None,
    test_groups: Any,
    *,
    event: str,
    interaction_type: str | None,
    channel: str | None,
    model_versions: Mapping[str, Any] | None,
    trace: bool,
) -> BatchResult:
    run = BatchRun(strategy, customers.reset_index(drop=True), accounts)
    result = _run(
        run,
        contact_history,
        None,
        test_groups,
        event,
        interaction_type,
        channel,
        model_versions,
        trace,
    )
    for frame in ("customers", "accounts", "treatments"):  # evaluate_batch makes them now
        getattr(result, frame)
    return result


def evaluate_rows(
    strategy: m.Strategy,
    *,
    event: str,
    customers: Mapping[str, np.ndarray],
    accounts: Mapping[str, np.ndarray] | None = None,
    account_rows: np.ndarray | None = None,
    contact_history: Mapping[str, np.ndarray] | None = None,
    contact_rows: np.ndarray | None = None,
    interaction_type: str | None = None,
    channel: str | None = None,
    model_versions: Mapping[str, Any] | None = None,
    trace: bool = True,
) -> BatchResult:
    """:func:`evaluate_batch` for rows given as arrays (no frames), e.g. a service's batch.

    ``customers`` maps column names to arrays (one row per decision); ``accounts`` and
    ``contact_history`` map column names to arrays too, and ``account_rows`` /
    ``contact_rows`` give the customers row each account / contact belongs to. Rows are
    matched by position, not by ``customer_id``, so one customer may appear in several
    rows, each decided on its own inputs. The results are those of ``evaluate_batch``
    row by row; frames are built only when read.
    """
    size = len(customers["customer_id"]) if "customer_id" in customers else 0
    owner = np.zeros(0, dtype=np.int64) if account_rows is None else np.asarray(account_rows)
    run = BatchRun(strategy, customers, accounts, account_owner=owner)
    if contact_history is not None:
        contact_rows = np.asarray(contact_rows, dtype=np.int64)
        if len(contact_rows) and (contact_rows.min() < 0 or contact_rows.max() >= size):
            raise EvaluationError("contact_rows must name rows of the customers (0 .. size-1)")
    return _run(
        run,
        contact_history,
        contact_rows,
        None,
        event,
        interaction_type,
        channel,
        model_versions,
        trace,
    )


def _run(
    run: BatchRun,
    contact_history: Any,
    contact_rows: np.ndarray | None,
    test_groups: Any,
    event: str,
    interaction_type: str | None,
    channel: str | None,
    model_versions: Mapping[str, Any] | None,
    trace: bool,
) -> BatchResult:
    strategy = run.strategy
    plan = c.event_of(strategy, event)
    channels = c.channels_of(strategy, channel)
    interaction = interaction_type or plan.interaction_type
    run.models = c.event_models(strategy, plan, dict(model_versions or {}))
    override = None if test_groups is None else np.asarray(test_groups, dtype=object)
    run.segment_and_group(override)
    run.processes(plan)
    if plan.categorize and strategy.categories:
        run.categorize()
    rank_treatments(run, interaction, channels, contact_history, history_rows=contact_rows)

    def customers_out() -> pd.DataFrame:
        frame = customer_frame(run, plan, channels)
        if trace:
            frame["trace"] = pd.Series(
                trace_texts(run, plan, interaction, channels), dtype=object, copy=False
            )
        return frame

    return BatchResult(
        customers_out,
        lambda: account_frame(run),
        lambda: treatment_frame(run, channels),
        _once(lambda: records_of(run, plan, interaction, channels)),
        unmatched_accounts=run.unmatched_accounts,
        ranked=lambda: ranked_of(run, plan, channels),
    )


def _once(make):
    cache: list = []

    def value():
        if not cache:
            cache.append(make())
        return cache[0]

    return value
