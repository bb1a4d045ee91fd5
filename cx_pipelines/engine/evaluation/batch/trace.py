"""Reason traces of a whole batch as JSON text, column-wise.

Rendering a trace dict per customer and ``json.dumps``-ing it costs a few hundred
microseconds a customer; here the same text is assembled from per-column pieces with
numpy string operations. The output is byte-identical to
``shared.trace_json(record["trace"])`` of the per-record evaluator (compact separators,
sorted keys), which the evaluator property test checks. Each mechanism kind renders its
own entries (``trace_fields``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from cx_pipelines.engine.evaluation.batch.text import (
    SENTINEL,
    TEXT,
    by_uniques,
    concat,
    dumps,
    fill,
    list_text,
    masked,
    number_text,
    objects,
    value_text,
)
from cx_pipelines.engine.language import model as m
from cx_pipelines.engine.language.expressions import ValueType


def step_text(step: Any, models: Mapping[str, str]) -> np.ndarray:
    """One evaluation step, one JSON object per row of its level (',' appended; '' if not run)."""
    mechanism = step.mechanism
    fields: list[Any] = []

    def field(text: Any) -> str:
        fields.append(text)
        return SENTINEL.format(len(fields) - 1)

    template: dict[str, Any] = {
        "process": step.process,
        "mechanism": mechanism.name,
        "type": mechanism.kind,
    }
    if step.called_by:
        template["called_by"] = step.called_by
    template.update(mechanism.trace_fields(step.detail, models, field))
    template["value"] = field(value_text(step.value, mechanism.output.value_type))
    return masked(fill(template, fields), step.mask)


def accounts_text(run: Any, size: int) -> np.ndarray:
    """Per customer, the ``"accounts"`` object: account id → its steps, ids in sorted order."""
    count = len(run.account_order)
    empty = objects(["{}"] * size)
    if count == 0:
        return empty
    per_account = objects([""] * count)
    for account_type, positions in run.account_rows.items():
        steps = [s for s in run.steps if s.level == account_type]
        if not steps or len(positions) == 0:
            continue
        texts = [step_text(step, run.models) for step in steps]
        joined = concat(*texts)
        per_account[positions] = joined[run.account_level_row[positions]]
    has_steps = per_account != ""
    if not has_steps.any():
        return empty
    ids = run.account_ids[run.account_order]
    id_text = _key_text(ids)
    entry = concat(id_text, ":", list_text([per_account], count), ",")
    chosen = np.flatnonzero(has_steps)
    owner = run.account_owner[chosen]
    keys = np.asarray([str(v) for v in ids[chosen].tolist()], dtype=TEXT)
    if len(chosen) > 1 and not np.all((owner[1:] != owner[:-1]) | (keys[1:] >= keys[:-1])):
        by_key = np.argsort(keys, kind="stable")
        chosen = chosen[by_key[np.argsort(owner[by_key], kind="stable")]]
        owner = run.account_owner[chosen]
    texts = entry[chosen].tolist()
    bounds = np.searchsorted(owner, np.arange(size + 1)).tolist()
    joined_rows = [
        "{" + "".join(texts[bounds[i] : bounds[i + 1]])[:-1] + "}"
        if bounds[i + 1] > bounds[i]
        else "{}"
        for i in range(size)
    ]
    return objects(joined_rows)


def _key_text(ids: np.ndarray) -> np.ndarray:
    """Account ids as JSON object keys (their text, quoted and escaped)."""
    if ids.dtype.kind in "iu":
        return concat('"', ids.astype(TEXT), '"')
    return by_uniques(ids, lambda v: dumps("None" if v is None else str(v)))


def treatments_text(run: Any, channels: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Per customer, the ``"policy_filters"`` list and the ``"arbitration"`` object."""
    strategy = run.strategy
    size = run.customers.size
    names = run.names
    filters = []
    for channel in channels:
        for name in names:
            codes = run.filter_codes[channel][name]
            if not codes.any():
                continue
            table = np.array(
                [""]
                + [
                    dumps({"channel": channel, "treatment": name, "policy": p, "reason": r}) + ","
                    for p, r in run.reasons[1:]
                ],
                dtype=TEXT,
            )
            filters.append(table[codes])
    policy = list_text(filters, size)
    tails = []
    for name in names:
        terms = run.terms[name]
        term_fields: list[Any] = []
        term_template = {}
        for term in strategy.treatments[name].terms:
            term_fields.append(number_text(terms[term]))
            term_template[term] = SENTINEL.format(len(term_fields) - 1)
        term_fields.append(number_text(terms["lever"]))
        term_template["lever"] = SENTINEL.format(len(term_fields) - 1)
        terms_json = fill(term_template, term_fields)
        tails.append(
            concat(
                ',"score":',
                number_text(run.scores[name]),
                ',"terms":',
                terms_json,
                ',"treatment":',
                dumps(name),
                "},",
            )
        )
    matrix = np.stack(tails, axis=1) if tails else np.empty((size, 0), dtype=object)
    per_channel = {}
    for channel in channels:
        order, keys = run.rankings[channel]
        items = []
        for rank in range(order.shape[1]):
            valid = np.isfinite(keys[:, rank])
            if not valid.any():
                break
            text = concat(f'{{"rank":{rank + 1}', matrix[np.arange(size), order[:, rank]])
            text[~valid] = ""
            items.append(text)
        per_channel[channel] = list_text(items, size)
    fields = []
    template = {}
    for channel in channels:
        fields.append(per_channel[channel])
        template[channel] = SENTINEL.format(len(fields) - 1)
    arbitration = fill(template, fields) if channels else objects(["{}"] * size)
    return policy, arbitration


def trace_texts(
    run: Any, event: m.Event, interaction: str | None, channels: Sequence[str]
) -> list[str]:
    """The JSON trace of every customer of a batch run, in customer order."""
    strategy = run.strategy
    size = run.customers.size
    if size == 0:
        return []
    columns = run.customers.columns
    customer_steps = [s for s in run.steps if s.level is None]
    steps = list_text([step_text(s, run.models) for s in customer_steps], size)
    policy, arbitration = treatments_text(run, channels)
    draws = np.array([round(d, 6) for d in run.draws.tolist()], dtype=np.float64)
    fields = [
        accounts_text(run, size),
        arbitration,
        value_text(columns["category"], ValueType.STRING),
        policy,
        value_text(columns["segment"], ValueType.STRING),
        steps,
        value_text(columns["test_group"], ValueType.STRING),
        number_text(draws),
    ]
    template = {
        "strategy": strategy.name,
        "version": strategy.version,
        "content_hash": strategy.content_hash,
        "event": event.name,
        "interaction_type": interaction,
        "accounts": SENTINEL.format(0),
        "arbitration": SENTINEL.format(1),
        "category": SENTINEL.format(2),
        "model_versions": run.models,
        "policy_filters": SENTINEL.format(3),
        "segment": SENTINEL.format(4),
        "steps": SENTINEL.format(5),
        "test_group": SENTINEL.format(6),
        "test_group_draw": SENTINEL.format(7),
    }
    return fill(template, fields).tolist()
