"""Many intelligence records at once through the batch evaluator: the population
(:func:`decide_population`) and a batch of requests (:func:`decide_many`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from cx_pipelines.engine import Strategy, evaluate_batch
from cx_pipelines.intelligence.record import (
    CHANNEL_ATTRIBUTE,
    RECORD_COLUMNS,
    channel_record,
    checked_channels,
    customer_values,
    interaction_of,
    record_json,
)


def _history_for(
    contact_history: pd.DataFrame | Iterable[Mapping] | None, customer_ids: Iterable[str]
) -> pd.DataFrame | None:
    if contact_history is None:
        return None
    if isinstance(contact_history, pd.DataFrame):
        frame = contact_history
    else:
        frame = pd.DataFrame(list(contact_history))
    if not len(frame):
        return None
    frame = frame.assign(customer_id=frame["customer_id"].astype(str))
    return frame[frame["customer_id"].isin(set(customer_ids))]


def decide_population(
    strategy: Strategy,
    *,
    event: str,
    customers: pd.DataFrame,
    accounts: pd.DataFrame,
    channels: Sequence[str] | None = None,
    interaction_type: str | None = None,
    contact_history: pd.DataFrame | Iterable[Mapping] | None = None,
    model_versions: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """Every customer × channel: one intelligence record per row (``RECORD_COLUMNS``).

    ``treatments``, ``trace`` and ``model_versions`` are JSON text (sorted keys), the
    other columns plain values. The strategy runs once per channel over the whole
    population (vectorised), with ``decision_channel`` set to that channel.
    """
    interaction = interaction_of(strategy, event, interaction_type)
    history = _history_for(contact_history, customers["customer_id"].astype(str))
    frames = []
    for channel in checked_channels(strategy, channels):
        inputs = customers
        if CHANNEL_ATTRIBUTE in strategy.attributes:
            inputs = customers.assign(**{CHANNEL_ATTRIBUTE: channel})
        result = evaluate_batch(
            strategy,
            event=event,
            customers=inputs,
            accounts=accounts,
            channel=channel,
            interaction_type=interaction,
            contact_history=history,
            model_versions=dict(model_versions or {}),
            trace=True,
        )
        rows = [
            channel_record(
                record, channel, interaction_type=interaction, model_versions=model_versions
            )
            for record in result.records()
        ]
        frames.append(pd.DataFrame(rows, columns=list(RECORD_COLUMNS)))
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=RECORD_COLUMNS)
    for column in ("treatments", "trace", "model_versions"):
        frame[column] = [record_json(value) for value in frame[column]]
    for column in ("treatment", "offer_type"):
        frame[column] = frame[column].astype(object).where(frame[column].notna(), None)
    return frame.sort_values(["customer_id", "channel"], kind="stable").reset_index(drop=True)


@dataclass(frozen=True)
class Request:
    """One decision to make in :func:`decide_many`."""

    customer_id: str
    customer: Mapping[str, Any] | None
    accounts: Sequence[Mapping[str, Any]]
    channel: str
    interaction_type: str | None = None
    context: Mapping[str, Any] | None = None
    contact_history: Sequence[Mapping] = ()


def _typed_frame(strategy: Strategy, rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Customer rows as typed columns (numbers float64 with NaN, others objects with None)."""
    names = list(dict.fromkeys(name for row in rows for name in row))
    columns: dict[str, Any] = {}
    for name in names:
        values = [row.get(name) for row in rows]
        attribute = strategy.attributes.get(name)
        if attribute is not None and str(getattr(attribute.value_type, "value", "")) == "number":
            columns[name] = np.array(values, dtype="float64")  # None becomes NaN
        else:
            column = np.empty(len(values), dtype=object)
            column[:] = [None if v is None or v != v else v for v in values]
            columns[name] = column
    return pd.DataFrame(columns)


def _accounts_frame(strategy: Strategy, rows: list[dict[str, Any]]) -> pd.DataFrame:
    if not rows:
        return pd.DataFrame(columns=["account_id", "customer_id", "account_type"])
    frame = pd.DataFrame(rows)
    for account_type in strategy.account_types:
        for attribute in strategy.input_attributes(account_type):
            column = attribute.column or attribute.name.split(".", 1)[1]
            kind = str(getattr(attribute.value_type, "value", attribute.value_type))
            if column in frame.columns and kind == "number":
                frame[column] = pd.to_numeric(frame[column], errors="coerce").astype("float64")
    return frame


def _untraced_records(strategy: Strategy, result, channel: str) -> list[dict[str, Any]]:
    """Evaluator-shaped records (no trace) from the batch result's frames (one pass over
    the columns as lists, no per-cell frame access)."""
    long = result.treatments
    long = long[long["channel"] == channel]
    names = long["treatment"].tolist()
    term_names = sorted({t for name in set(names) for t in strategy.treatments[name].terms})
    terms_of = {name: tuple(strategy.treatments[name].terms) for name in set(names)}
    term_values = {t: long[t].tolist() for t in term_names}
    chosen: dict[str, list[dict[str, Any]]] = {}
    rows = zip(
        names,
        long["customer_id"].tolist(),
        long["rank"].tolist(),
        long["score"].tolist(),
        long["lever"].tolist(),
        range(len(names)),
        strict=True,
    )
    for name, customer_id, rank, score, lever, row in rows:
        terms = {term: _number(term_values[term][row]) for term in terms_of[name]}
        terms["lever"] = float(lever)
        chosen.setdefault(str(customer_id), []).append(
            {"treatment": name, "rank": int(rank), "score": float(score), "terms": terms}
        )
    frame = result.customers
    keys = ("customer_id", "event", "segment", "test_group", "strategy_hash")
    values = [frame[key].tolist() for key in keys]
    records = []
    for row in zip(*values, strict=True):
        items = chosen.get(str(row[0]), [])
        records.append(
            {
                **dict(zip(keys, row, strict=True)),
                "treatments": {
                    channel: [
                        {"treatment": i["treatment"], "rank": i["rank"], "score": i["score"]}
                        for i in items
                    ]
                },
                "trace": {"arbitration": {channel: items}},
            }
        )
    return records


def _number(value: Any) -> float | None:
    return None if value is None or value != value else float(value)


def decide_many(
    strategy: Strategy,
    *,
    event: str,
    requests: Sequence[Request],
    model_versions: Sequence[Mapping[str, str] | None],
    trace: bool = True,
) -> list[dict[str, Any]]:
    """Many requests through the batch evaluator (vectorised), in request order.

    Requests are grouped by channel and interaction type (a customer asked twice in one
    group goes to a second pass); each group is one ``evaluate_batch`` call. With
    ``trace=False`` the records have ``trace: None`` (the fast path); the treatments and
    their terms are the same either way.
    """
    groups: dict[tuple[str, str, int], list[int]] = {}
    seen: dict[tuple[str, str, str], int] = {}
    for index, item in enumerate(requests):
        interaction = interaction_of(strategy, event, item.interaction_type)
        checked_channels(strategy, [item.channel])
        pass_number = seen.get((item.channel, interaction, item.customer_id), 0)
        seen[(item.channel, interaction, item.customer_id)] = pass_number + 1
        groups.setdefault((item.channel, interaction, pass_number), []).append(index)
    answers: list[dict[str, Any] | None] = [None] * len(requests)
    for (channel, interaction, _), members in groups.items():
        chosen = [requests[i] for i in members]
        rows = [
            customer_values(strategy, r.customer, r.customer_id, channel, r.context) for r in chosen
        ]
        accounts = [
            {**account, "customer_id": r.customer_id}
            for r in chosen
            if r.customer is not None
            for account in r.accounts
        ]
        history = [row for r in chosen for row in r.contact_history]
        result = evaluate_batch(
            strategy,
            event=event,
            customers=_typed_frame(strategy, rows),
            accounts=_accounts_frame(strategy, accounts),
            channel=channel,
            interaction_type=interaction,
            contact_history=pd.DataFrame(history) if history else None,
            model_versions=dict(model_versions[members[0]] or {}),
            trace=trace,
        )
        records = result.records() if trace else _untraced_records(strategy, result, channel)
        for index, record in zip(members, records, strict=True):
            shaped = channel_record(
                record, channel, interaction_type=interaction, model_versions=model_versions[index]
            )
            if not trace:
                shaped["trace"] = None
            answers[index] = shaped
    return answers  # type: ignore[return-value]
