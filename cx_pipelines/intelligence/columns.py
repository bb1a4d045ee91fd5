"""A batch of decision requests as the batch evaluator's columns (``evaluate_rows``).

One row per request: the customer's inputs as :func:`record.customer_values` makes them
(an unknown customer's all null, context attributes override, ``customer_id`` and
``decision_channel`` set), read column by column straight from the stored records; the
accounts of known customers and every request's contact history as columns with the row
each belongs to. Numbers become float64 with NaN, everything else objects with None.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from operator import itemgetter
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from cx_pipelines.engine import Strategy
from cx_pipelines.intelligence.record import CHANNEL_ATTRIBUTE, UNKNOWN_ATTRIBUTE


class Request(NamedTuple):
    """One decision to make in :func:`decide_many` (a named tuple: a batch makes one per
    request, and a tuple is built several times faster than a frozen dataclass)."""

    customer_id: str
    customer: Mapping[str, Any] | None
    accounts: Sequence[Mapping[str, Any]]
    channel: str
    interaction_type: str | None = None
    context: Mapping[str, Any] | None = None
    contact_history: Sequence[Mapping] = ()


_ABSENT = object()


def _is_number(strategy: Strategy, name: str) -> bool:
    attribute = strategy.attributes.get(name)
    return attribute is not None and str(getattr(attribute.value_type, "value", "")) == "number"


def customer_columns(
    strategy: Strategy, requests: Sequence[Request], channel: str
) -> dict[str, np.ndarray]:
    """The customer input columns the strategy reads, one row per request; a column no
    request has (in its record or context) is left out, as in a frame of the rows."""
    names = list(
        dict.fromkeys(
            a.column
            for a in strategy.input_attributes(None)
            if a.column != "customer_id"
            and not (a.column == CHANNEL_ATTRIBUTE and CHANNEL_ATTRIBUTE in strategy.attributes)
        )
    )
    inputs = {a.name for a in strategy.input_attributes(None)}
    unknown = tuple(
        (True if name == UNKNOWN_ATTRIBUTE and UNKNOWN_ATTRIBUTE in strategy.attributes else None)
        if name in inputs
        else _ABSENT
        for name in names
    )
    unknown_gaps = any(v is _ABSENT for v in unknown)
    getter = itemgetter(*names) if len(names) > 1 else None
    table: list[tuple] = []
    gaps = False  # some row lacks some column
    for request in requests:
        customer = request.customer
        if customer is None:
            row = unknown
            gaps = gaps or unknown_gaps
        else:
            try:
                row = getter(customer) if getter is not None else tuple(customer[n] for n in names)
            except KeyError:
                row = tuple(customer.get(name, _ABSENT) for name in names)
                gaps = True
        if request.context:
            context = request.context
            row = tuple(context.get(n, v) for n, v in zip(names, row, strict=True))
        table.append(row)
    columns: dict[str, np.ndarray] = {
        "customer_id": _objects([request.customer_id for request in requests])
    }
    if CHANNEL_ATTRIBUTE in strategy.attributes:
        columns[CHANNEL_ATTRIBUTE] = _objects([channel] * len(requests))
    numbers = [k for k, name in enumerate(names) if _is_number(strategy, name)]
    block = None
    if not gaps and len(numbers) > 1:
        # every number column in one conversion of the rows (None becomes NaN), then one
        # contiguous row per column: half the time of a conversion per column
        block = np.array(list(map(itemgetter(*numbers), table)), dtype="float64").T.copy()
    converted = dict(zip(numbers, block, strict=True)) if block is not None else {}
    number_set = set(numbers)
    for k, name in enumerate(names):
        if k in converted:
            columns[name] = converted[k]
            continue
        values = list(map(itemgetter(k), table))  # column by column: zip(*table) is slower
        if gaps and any(v is _ABSENT for v in values):
            if all(v is _ABSENT for v in values):
                continue
            values = [None if v is _ABSENT else v for v in values]
        if k in number_set:
            columns[name] = np.array(values, dtype="float64")  # None becomes NaN
        else:
            columns[name] = _objects([None if v is None or v != v else v for v in values])
    return columns


def account_columns(
    strategy: Strategy, requests: Sequence[Request]
) -> tuple[dict[str, np.ndarray] | None, np.ndarray]:
    """Every known customer's accounts as columns, and the request row of each account."""
    rows: list[Mapping[str, Any]] = []
    owners: list[int] = []
    ids: list[str] = []
    for position, request in enumerate(requests):
        if request.customer is not None and request.accounts:
            rows.extend(request.accounts)
            owners.extend([position] * len(request.accounts))
            ids.extend([request.customer_id] * len(request.accounts))
    if not rows:
        return None, np.zeros(0, dtype=np.int64)
    numbers: set[str] = set()
    wanted = ["account_id", "account_type"]
    for account_type in strategy.account_types:
        for attribute in strategy.input_attributes(account_type):
            wanted.append(attribute.column)
            if str(getattr(attribute.value_type, "value", attribute.value_type)) == "number":
                numbers.add(attribute.column or attribute.name.split(".", 1)[1])
    columns: dict[str, np.ndarray] = {"customer_id": _objects(ids)}
    wanted = [name for name in dict.fromkeys(wanted) if name != "customer_id"]
    for name, values in _table(rows, wanted).items():
        columns[name] = _coerced_numbers(values) if name in numbers else _objects(values)
    return columns, np.asarray(owners, dtype=np.int64)


def history_columns(
    requests: Sequence[Request],
) -> tuple[dict[str, np.ndarray] | None, np.ndarray | None]:
    """Every request's contact history as columns, and the request row of each contact."""
    rows = [row for request in requests for row in request.contact_history]
    if not rows:
        return None, None
    owners = [p for p, request in enumerate(requests) for _ in range(len(request.contact_history))]
    columns: dict[str, np.ndarray] = {}
    for name, values in _table(rows, None).items():
        if name == "declined":
            columns[name] = np.array(
                [False if v is None or v != v else bool(v) for v in values], dtype=bool
            )
        elif name == "days_ago":
            try:
                columns[name] = np.array(values, dtype="float64")
            except (TypeError, ValueError):
                columns[name] = _objects(values)  # read (or refused) by the engine
        else:
            columns[name] = _objects(values)
    return columns, np.asarray(owners, dtype=np.int64)


def history_subset(
    history: tuple[Mapping[str, np.ndarray], np.ndarray], members: Sequence[int], size: int
) -> tuple[dict[str, np.ndarray] | None, np.ndarray | None]:
    """The contact history of the requests at ``members`` (positions among ``size``
    requests, ascending) from the whole batch's history columns and the request position
    of each row (rows of one request together): the columns and rows
    :func:`history_columns` gives for those requests, in the same order."""
    columns, owners = history
    position = np.full(size, -1, dtype=np.int64)
    position[np.asarray(members, dtype=np.int64)] = np.arange(len(members))
    rows = position[owners]
    kept = rows >= 0
    if not kept.any():
        return None, None
    if kept.all():
        return dict(columns), rows
    return {name: values[kept] for name, values in columns.items()}, rows[kept]


def history_rows(
    history: tuple[Mapping[str, np.ndarray], np.ndarray], position: int
) -> list[dict[str, Any]]:
    """One request's contact history rows (plain values) from the batch's columns."""
    columns, owners = history
    chosen = np.flatnonzero(owners == position)
    names = list(columns)
    values = [columns[name][chosen].tolist() for name in names]
    return [dict(zip(names, row, strict=True)) for row in zip(*values, strict=True)]


def _table(rows: list[Mapping[str, Any]], names: list[str] | None) -> dict[str, Sequence[Any]]:
    """Columns of ``rows`` as a frame of them has: ``names`` (every key when None) that
    some row holds, None where a row lacks one. Rows with the first row's keys (the usual
    case: records of one snapshot) are read with one C call each."""
    keys = list(rows[0]) if names is None else names
    if len(keys) > 1:
        getter = itemgetter(*keys)
        try:
            if names is not None or all(len(row) == len(keys) for row in rows):
                return dict(zip(keys, zip(*map(getter, rows), strict=True), strict=True))
        except KeyError:
            pass
    if names is None:
        names = list(dict.fromkeys(key for row in rows for key in row))
    return {
        name: [row.get(name) for row in rows] for name in names if any(name in row for row in rows)
    }


def _objects(values: list[Any]) -> np.ndarray:
    column = np.empty(len(values), dtype=object)
    column[:] = values
    return column


def _coerced_numbers(values: list[Any]) -> np.ndarray:
    """Numbers as float64, anything that is not a number NaN (as ``to_numeric(coerce)``)."""
    try:
        return np.array(values, dtype="float64")
    except (TypeError, ValueError):
        return pd.to_numeric(pd.Series(_objects(values)), errors="coerce").to_numpy("float64")
