"""Ranked records of a batch run: per row the chosen treatments with their terms, no trace.

What a caller that answers requests needs (the decision service's batch without traces),
made in one pass over the ranking instead of the full records and their traces; the values
are those :func:`.output.records_of` gives.
"""

from __future__ import annotations

import numpy as np

from cx_pipelines.engine.evaluation import shared as c
from cx_pipelines.engine.evaluation.batch.run import BatchRun
from cx_pipelines.engine.language import model as m
from cx_pipelines.engine.language.expressions import ValueType


def ranked_of(run: BatchRun, event: m.Event, channels: list[str]) -> list[dict]:
    """Per row, the chosen treatments with their terms and no trace (the records of
    ``BatchResult.ranked_records``)."""
    strategy = run.strategy
    names = run.names
    size = run.customers.size
    rows = np.arange(size)
    score_table = np.column_stack([run.scores[name] for name in names]) if names else None
    term_names = [list(run.terms[name]) for name in names]
    term_tables = {
        term: np.column_stack([run.terms[name].get(term, np.full(size, np.nan)) for name in names])
        for term in dict.fromkeys(t for terms in term_names for t in terms)
    }
    per_channel = []
    for channel in channels:
        order, keys = run.rankings[channel]
        ranks = []
        for rank in range(min(strategy.max_per_channel, order.shape[1])):
            valid = np.isfinite(keys[:, rank])
            position = order[:, rank]
            ranks.append(
                (
                    np.where(valid, position, -1).tolist(),
                    c.canonical_list(score_table[rows, position], ValueType.NUMBER),
                    {
                        term: c.canonical_list(table[rows, position], ValueType.NUMBER)
                        for term, table in term_tables.items()
                    },
                )
            )
        per_channel.append((channel, ranks))
    columns = run.customers.columns
    customers = zip(
        run.customer_series.tolist(),
        columns["segment"].tolist(),
        columns["test_group"].tolist(),
        columns["category"].tolist(),
        strict=True,
    )
    records = []
    for i, (customer_id, segment, group, category) in enumerate(customers):
        arbitration = {}
        for channel, ranks in per_channel:
            ranked = []
            for rank, (positions, scores, terms) in enumerate(ranks, start=1):
                k = positions[i]
                if k < 0:
                    break
                ranked.append(
                    {
                        "treatment": names[k],
                        "rank": rank,
                        "score": scores[i],
                        "terms": {term: terms[term][i] for term in term_names[k]},
                    }
                )
            arbitration[channel] = ranked
        records.append(
            {
                "customer_id": customer_id,
                "event": event.name,
                "segment": segment,
                "test_group": group,
                "category": category,
                "arbitration": arbitration,
                "strategy_hash": strategy.content_hash,
            }
        )
    return records
