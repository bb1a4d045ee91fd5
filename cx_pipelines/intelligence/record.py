"""One customer's intelligence record on one channel: the shape both paths return, and
the real-time path (:func:`decide_customer`)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from cx_pipelines.engine import Strategy, evaluate_customer
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


_OFFERS = {f"{offer}_offer": offer for offer in OFFER_TYPES}


def offer_type_of(treatment: str | None) -> str | None:
    """The product a treatment offers (``savings_offer`` → ``savings``), or None."""
    return _OFFERS.get(treatment) if treatment is not None else None


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
    trace. ``record`` may also be a batch result's ranked record (no trace; ``trace`` None).
    """
    trace = record.get("trace")
    if trace is None:  # a ranked record (no trace): its dicts are ours to complete
        treatments = record["arbitration"].get(channel, [])
        for item in treatments:
            item["offer_type"] = offer_type_of(item["treatment"])
    else:
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


def checked_channels(strategy: Strategy, channels: Sequence[str] | None) -> list[str]:
    chosen = list(channels or strategy.channels)
    unknown = [c for c in chosen if c not in strategy.channels]
    if unknown:
        raise ValueError(
            f"strategy {strategy.name!r} has no channel {unknown[0]!r}; "
            f"known: {', '.join(strategy.channels)}"
        )
    return chosen


def interaction_of(strategy: Strategy, event: str, interaction_type: str | None) -> str:
    if event not in strategy.events:
        raise ValueError(
            f"strategy {strategy.name!r} has no event {event!r} (has: {', '.join(strategy.events)})"
        )
    return interaction_type or strategy.events[event].interaction_type


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
    interaction = interaction_of(strategy, event, interaction_type)
    checked_channels(strategy, [channel])
    return decide_one(
        strategy,
        event=event,
        customer=customer,
        customer_id=customer_id,
        accounts=accounts,
        channel=channel,
        interaction_type=interaction,
        contact_history=contact_history,
        engine_versions=model_versions,
        model_versions=model_versions,
        context=context,
    )


def decide_one(
    strategy: Strategy,
    *,
    event: str,
    customer: Mapping[str, Any] | None,
    customer_id: str,
    accounts: Sequence[Mapping[str, Any]],
    channel: str,
    interaction_type: str,
    contact_history: Iterable[Mapping] | None,
    engine_versions: Mapping[str, str] | None,
    model_versions: Mapping[str, str] | None,
    context: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """:func:`decide_customer` for a checked channel and interaction type; the engine is
    given ``engine_versions`` and the record says ``model_versions`` (a batch gives the
    engine one set of versions for all its requests)."""
    values = customer_values(strategy, customer, customer_id, channel, context)
    record = evaluate_customer(
        strategy,
        event=event,
        customer=values,
        accounts=list(accounts) if customer is not None else [],
        channel=channel,
        interaction_type=interaction_type,
        contact_history=list(contact_history) if contact_history is not None else None,
        model_versions=dict(engine_versions or {}),
    )
    return channel_record(
        record, channel, interaction_type=interaction_type, model_versions=model_versions
    )


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
