"""Columns of a batch run: reading input frames, null columns, lazy and broadcast views."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from cx_pipelines.engine.language import model as m
from cx_pipelines.engine.language.errors import EvaluationError
from cx_pipelines.engine.language.expressions import ValueType

_NULL = {
    ValueType.NUMBER: np.nan,
    ValueType.BOOLEAN: np.nan,
    ValueType.STRING: None,
    ValueType.DATE: np.datetime64("NaT", "D"),
}
_DTYPE = {
    ValueType.NUMBER: np.float64,
    ValueType.BOOLEAN: np.float64,
    ValueType.STRING: object,
    ValueType.DATE: "datetime64[D]",
}


def null_column(value_type: ValueType, size: int) -> np.ndarray:
    if value_type is ValueType.STRING:
        return np.empty(size, dtype=object)  # filled with None
    return np.full(size, _NULL[value_type], dtype=_DTYPE[value_type])


def _read_column(series: pd.Series | np.ndarray, value_type: ValueType, name: str) -> np.ndarray:
    if isinstance(series, np.ndarray):
        fast = _fast_array(series, value_type)
        if fast is not None:
            return fast
        series = pd.Series(series, copy=False)
    try:
        if value_type is ValueType.NUMBER:
            return pd.to_numeric(series).to_numpy(dtype=np.float64, na_value=np.nan)
        if value_type is ValueType.BOOLEAN:
            return pd.array(series, dtype="boolean").to_numpy(dtype=np.float64, na_value=np.nan)
        if value_type is ValueType.DATE:
            return pd.to_datetime(series).to_numpy().astype("datetime64[D]")
        if isinstance(series.dtype, pd.StringDtype):
            return series.array  # the expression engine factorises it once, in C
        return string_column(series)
    except (TypeError, ValueError) as error:
        raise EvaluationError(
            f"column {name!r} cannot be read as {value_type.name}: {error}", symbol=name
        ) from None


def _fast_array(values: np.ndarray, value_type: ValueType) -> np.ndarray | None:
    """A plain array already in its storage form (no pandas round trip), else None.

    Small batches (the decision service's) come as arrays of Python values: floats, and
    texts or booleans with None for null. Anything else takes the pandas conversion.
    """
    if value_type is ValueType.NUMBER:
        return values if values.dtype == np.float64 else None
    if values.dtype != object:
        return None
    if value_type is ValueType.STRING:
        if all(type(v) is str or v is None for v in values.tolist()):
            return values
        return None
    if value_type is ValueType.BOOLEAN:
        items = values.tolist()
        if all(type(v) is bool or v is None for v in items):
            return np.array([np.nan if v is None else float(v) for v in items], dtype=np.float64)
    return None


def column_loader(
    series: pd.Series | np.ndarray | None,
    attribute: m.Attribute,
    size: int = 0,
    rows: np.ndarray | None = None,
):
    if series is None:
        return lambda: null_column(attribute.value_type, size)
    if rows is None:
        return lambda: _read_column(series, attribute.value_type, attribute.name)
    if isinstance(series, np.ndarray):
        return lambda: _read_column(series[rows], attribute.value_type, attribute.name)
    return lambda: _read_column(series.iloc[rows], attribute.value_type, attribute.name)


def to_values(values: Any, value_type: ValueType, size: int) -> np.ndarray:
    """A list/array of mechanism results in the level's storage dtype."""
    if value_type is ValueType.STRING:
        if isinstance(values, np.ndarray) and values.dtype == object and values.shape == (size,):
            return values
        array = np.empty(size, dtype=object)
        array[:] = list(values) if not isinstance(values, np.ndarray) else values
        return array
    if value_type is ValueType.BOOLEAN:
        array = np.asarray(values)
        if array.dtype == object:
            return np.array(
                [np.nan if v is None else float(bool(v)) for v in array], dtype=np.float64
            )
        return array.astype(np.float64, copy=False)
    if value_type is ValueType.NUMBER:
        array = np.asarray(values)
        if array.dtype == object:
            return np.array([np.nan if v is None else float(v) for v in array], dtype=np.float64)
        return array.astype(np.float64)
    return np.asarray(values, dtype="datetime64[D]")


class LazyColumns(dict):
    """Attribute columns read from the input frame on first use (unused ones cost nothing)."""

    def __init__(self, loaders: dict[str, Any]):
        super().__init__()
        self.loaders = loaders

    def __missing__(self, name: str) -> np.ndarray:
        loader = self.loaders.get(name)
        if loader is None:
            raise KeyError(name)
        value = self[name] = loader()
        return value

    def __contains__(self, name: object) -> bool:
        return dict.__contains__(self, name) or name in self.loaders

    def __iter__(self):
        return iter({**dict.fromkeys(self.loaders), **dict.fromkeys(dict.keys(self))})

    def __len__(self) -> int:
        return len(set(self.loaders) | set(dict.keys(self)))


def string_column(series: pd.Series) -> np.ndarray:
    """Text as an object array with None for null, built from the distinct values only."""
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    table = np.empty(len(uniques) + 1, dtype=object)
    table[: len(uniques)] = [str(v) for v in uniques]
    table[-1] = None
    return table[codes]


class Broadcast(Mapping):
    """Columns of an account level: its own attributes plus customer attributes by index.

    A customer column is spread to the accounts once per version of that column.
    """

    def __init__(
        self,
        own: dict[str, np.ndarray],
        customer: Mapping[str, np.ndarray],
        index: np.ndarray | None,
    ):
        self.own, self.customer, self.index = own, customer, index
        self.spread: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def __getitem__(self, name: str) -> np.ndarray:
        if name in self.own:
            return self.own[name]
        source = self.customer[name]
        if self.index is None:
            return source
        memo = self.spread.get(name)
        if memo is not None and memo[0] is source:
            return memo[1]
        spread = source[self.index]
        self.spread[name] = (source, spread)
        return spread

    def __contains__(self, name: object) -> bool:
        return name in self.own or name in self.customer

    def __iter__(self):
        return iter(list(self.own) + [k for k in self.customer if k not in self.own])

    def __len__(self) -> int:
        return len(list(iter(self)))


@dataclass
class Level:
    size: int
    columns: dict[str, np.ndarray]
    customer: np.ndarray | None = None  # customer index per row (account levels)


@dataclass
class Step:
    level: str | None
    mask: np.ndarray | None
    process: str
    mechanism: m.Mechanism
    called_by: str | None
    value: np.ndarray
    detail: dict[str, Any] = field(default_factory=dict)
