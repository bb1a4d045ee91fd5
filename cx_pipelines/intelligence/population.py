"""Many intelligence records at once through the batch evaluator: the population
(:func:`decide_population`) and a batch of requests (:func:`decide_many`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from cx_pipelines.engine import Strategy, evaluate_batch, evaluate_rows
from cx_pipelines.engine.language.errors import EvaluationError
from cx_pipelines.intelligence.columns import (
    Request,
    account_columns,
    customer_columns,
    history_columns,
    history_rows,
    history_subset,
)
from cx_pipelines.intelligence.record import (
    CHANNEL_ATTRIBUTE,
    RECORD_COLUMNS,
    channel_record,
    checked_channels,
    decide_one,
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


# Groups smaller than this go through the per-record evaluator: its cost per decision
# is below the batch evaluator's fixed cost per call divided by so few rows (measured
# with benchmarks/engine_small_batches.py); the answers are the same either way.
RECORD_PATH_BELOW = 32


def _one_by_one(
    strategy: Strategy,
    event: str,
    requests: Sequence[Request],
    members: list[int],
    channel: str,
    interaction: str,
    model_versions: Sequence[Mapping[str, str] | None],
    answers: list[dict[str, Any] | None],
    history: tuple[Mapping[str, np.ndarray], np.ndarray] | None = None,
) -> bool:
    """A group's answers from the per-record evaluator; False (answers unset) when it
    refuses a request the batch evaluator takes (a record lacking an attribute other
    records of the batch have is null there): the batch decides that group."""
    engine_versions = model_versions[members[0]]
    try:
        decided = [
            decide_one(
                strategy,
                event=event,
                customer=requests[index].customer,
                customer_id=requests[index].customer_id,
                accounts=requests[index].accounts,
                channel=channel,
                interaction_type=interaction,
                contact_history=requests[index].contact_history
                if history is None
                else history_rows(history, index),
                engine_versions=engine_versions,
                model_versions=model_versions[index],
                context=requests[index].context,
            )
            for index in members
        ]
    except EvaluationError:
        return False
    for index, record in zip(members, decided, strict=True):
        answers[index] = record
    return True


def decide_many(
    strategy: Strategy,
    *,
    event: str,
    requests: Sequence[Request],
    model_versions: Sequence[Mapping[str, str] | None],
    trace: bool = True,
    contact_columns: tuple[Mapping[str, np.ndarray], np.ndarray] | None = None,
) -> list[dict[str, Any]]:
    """Many requests through the batch evaluator (vectorised), in request order.

    Requests are grouped by channel and interaction type; each group is one
    ``evaluate_rows`` call, one row per request (a customer asked twice is decided twice,
    each time on that request's inputs). With ``trace=False`` the records have
    ``trace: None`` (the fast path); the treatments and their terms are the same either way.
    ``contact_columns``: every request's contact history at once, as the columns
    :func:`history_columns` makes and the request position of each row (rows of a request
    together, in its history's order); when given, the requests' ``contact_history`` is
    not read.
    """
    groups: dict[tuple[str, str], list[int]] = {}
    checked: dict[tuple[str, str | None], str] = {}
    for index, item in enumerate(requests):
        key = (item.channel, item.interaction_type)
        interaction = checked.get(key)
        if interaction is None:
            interaction = checked[key] = interaction_of(strategy, event, item.interaction_type)
            checked_channels(strategy, [item.channel])
        groups.setdefault((item.channel, interaction), []).append(index)
    answers: list[dict[str, Any] | None] = [None] * len(requests)
    for (channel, interaction), members in groups.items():
        if len(members) < RECORD_PATH_BELOW and _one_by_one(
            strategy,
            event,
            requests,
            members,
            channel,
            interaction,
            model_versions,
            answers,
            contact_columns,
        ):
            if not trace:
                for index in members:
                    answers[index]["trace"] = None  # type: ignore[index]
            continue
        chosen = [requests[i] for i in members]
        accounts, account_rows = account_columns(strategy, chosen)
        if contact_columns is None:
            history, contact_rows = history_columns(chosen)
        else:
            history, contact_rows = history_subset(contact_columns, members, len(requests))
        result = evaluate_rows(
            strategy,
            event=event,
            customers=customer_columns(strategy, chosen, channel),
            accounts=accounts,
            account_rows=account_rows,
            contact_history=history,
            contact_rows=contact_rows,
            channel=channel,
            interaction_type=interaction,
            model_versions=dict(model_versions[members[0]] or {}),
            trace=trace,
        )
        records = result.records() if trace else result.ranked_records()
        for index, record in zip(members, records, strict=True):
            answers[index] = channel_record(
                record, channel, interaction_type=interaction, model_versions=model_versions[index]
            )
    return answers  # type: ignore[return-value]
