"""The customer intelligence record: per customer and channel, the ranked treatments with
their arbitration terms and reason trace (SPEC S5, seed 000 claims 3, 11, 19).

One function decides a whole population (the batch path, used by the
``customer_intelligence_record`` asset) and one a single customer (the decision service);
both run the same strategy once per channel and shape every result with :func:`channel_record`,
so a customer decided either way gets an identical record and trace.

A strategy may declare the input attribute ``decision_channel`` (string): it is set to the
channel being decided, so calculations can pick that channel's model scores (see
``strategies/next_best_action.yaml``) and the arbitration terms are those of the channel,
not one channel's for all. ``unknown_customer`` (boolean) is set for a customer without
data, so the strategy can answer with its fallback treatment. No Dagster here.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from cx_pipelines.engine import Strategy, evaluate_batch, evaluate_customer
from cx_pipelines.source_schema import OFFER_TYPES

CHANNEL_ATTRIBUTE = "decision_channel"
UNKNOWN_ATTRIBUTE = "unknown_customer"
UNKNOWN_CUSTOMER = "unknown_customer"
RECORD_COLUMNS = (
    "customer_id",
    "channel",
    "event",
    "interaction_type",
    "segment",
    "test_group",
    "treatment",
    "offer_type",
    "treatments",
    "trace",
    "strategy_hash",
    "model_versions",
)


def offer_type_of(treatment: str | None) -> str | None:
    """The product a treatment offers (``savings_offer`` → ``savings``), or None."""
    if treatment is None:
        return None
    for offer in OFFER_TYPES:
        if treatment == f"{offer}_offer":
            return offer
    return None


def channel_record(
    record: Mapping[str, Any],
    channel: str,
    *,
    interaction_type: str,
    model_versions: Mapping[str, str] | None,
) -> dict[str, Any]:
    """One channel's intelligence record from an evaluator's record.

    ``treatments`` holds the chosen treatments in rank order, each with its score and
    arbitration terms (from the trace's arbitration list); ``trace`` is the whole reason
    trace.
    """
    trace = record["trace"]
    ranked = trace.get("arbitration", {}).get(channel, [])
    chosen = record["treatments"].get(channel, [])
    treatments = [
        {
            "treatment": item["treatment"],
            "rank": item["rank"],
            "score": item["score"],
            "terms": ranked[index]["terms"],
            "offer_type": offer_type_of(item["treatment"]),
        }
        for index, item in enumerate(chosen)
    ]
    top = treatments[0]["treatment"] if treatments else None
    return {
        "customer_id": str(record["customer_id"]),
        "channel": channel,
        "event": record["event"],
        "interaction_type": interaction_type,
        "segment": record["segment"],
        "test_group": record["test_group"],
        "treatment": top,
        "offer_type": offer_type_of(top),
        "treatments": treatments,
        "trace": trace,
        "strategy_hash": record["strategy_hash"],
        "model_versions": dict(sorted((model_versions or {}).items())),
    }


def _channels(strategy: Strategy, channels: Sequence[str] | None) -> list[str]:
    chosen = list(channels or strategy.channels)
    unknown = [c for c in chosen if c not in strategy.channels]
    if unknown:
        raise ValueError(
            f"strategy {strategy.name!r} has no channel {unknown[0]!r}; "
            f"known: {', '.join(strategy.channels)}"
        )
    return chosen


def _interaction(strategy: Strategy, event: str, interaction_type: str | None) -> str:
    if event not in strategy.events:
        raise ValueError(
            f"strategy {strategy.name!r} has no event {event!r} (has: {', '.join(strategy.events)})"
        )
    return interaction_type or strategy.events[event].interaction_type


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
    interaction = _interaction(strategy, event, interaction_type)
    history = _history_for(contact_history, customers["customer_id"].astype(str))
    frames = []
    for channel in _channels(strategy, channels):
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


def decide_customer(
    strategy: Strategy,
    *,
    event: str,
    customer: Mapping[str, Any] | None,
    customer_id: str,
    accounts: Sequence[Mapping[str, Any]] = (),
    channel: str,
    interaction_type: str | None = None,
    contact_history: Iterable[Mapping] | None = None,
    model_versions: Mapping[str, str] | None = None,
    context: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """One customer's intelligence record on one channel (the real-time path).

    ``customer`` is the customer's engine inputs (None: unknown to the online store, then
    every input is null and ``unknown_customer`` true, so the strategy's fallback answers).
    ``context`` overrides input attributes the strategy declares (event and context
    attributes sent by the channel).
    """
    interaction = _interaction(strategy, event, interaction_type)
    _channels(strategy, [channel])
    values = customer_values(strategy, customer, customer_id, channel, context)
    if customer is None:
        accounts = ()
    record = evaluate_customer(
        strategy,
        event=event,
        customer=values,
        accounts=list(accounts),
        channel=channel,
        interaction_type=interaction,
        contact_history=list(contact_history) if contact_history is not None else None,
        model_versions=dict(model_versions or {}),
    )
    return channel_record(
        record, channel, interaction_type=interaction, model_versions=model_versions
    )


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
            columns[name] = np.array([np.nan if v is None else v for v in values], dtype="float64")
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
    """Evaluator-shaped records (no trace) from the batch result's frames."""
    long = result.treatments
    long = long[long["channel"] == channel]
    columns = {name: long[name].tolist() for name in long.columns}
    chosen: dict[str, list[dict[str, Any]]] = {}
    for row in range(len(long)):
        name = columns["treatment"][row]
        terms = {term: _number(columns[term][row]) for term in strategy.treatments[name].terms}
        terms["lever"] = float(columns["lever"][row])
        chosen.setdefault(str(columns["customer_id"][row]), []).append(
            {
                "treatment": name,
                "rank": int(columns["rank"][row]),
                "score": float(columns["score"][row]),
                "terms": terms,
            }
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
                    channel: [{k: v for k, v in i.items() if k != "terms"} for i in items]
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
        interaction = _interaction(strategy, event, item.interaction_type)
        _channels(strategy, [item.channel])
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


def customer_values(
    strategy: Strategy,
    customer: Mapping[str, Any] | None,
    customer_id: str,
    channel: str,
    context: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """The evaluator's customer inputs for one request (unknown customer: all null)."""
    values: dict[str, Any] = {}
    if customer is None:
        for attribute in strategy.input_attributes(None):
            values[attribute.name] = None
        if UNKNOWN_ATTRIBUTE in strategy.attributes:
            values[UNKNOWN_ATTRIBUTE] = True
    else:
        values.update(customer)
    values.update(context or {})
    values["customer_id"] = customer_id
    if CHANNEL_ATTRIBUTE in strategy.attributes:
        values[CHANNEL_ATTRIBUTE] = channel
    return values


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    return value


def record_json(value: Any) -> str:
    """JSON text of a record part, as the batch renders traces (sorted keys, compact)."""
    return json.dumps(_plain(value), sort_keys=True, separators=(",", ":"), default=str)
