"""Reading a population's columns for the batch form, once per column.

Numbers become float64 (NaN null), dates datetime64[D] (NaT null), booleans bool arrays
or float 1.0/0.0/NaN when some are null, strings are factorised (codes, -1 for null, and
the distinct values) with ``pandas.factorize``, which reads None, NaN and ``pd.NA`` alike.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from cx_pipelines.engine.language.errors import EvaluationError
from cx_pipelines.engine.language.expressions.checker import ValueType

DAY = "datetime64[D]"
NOT_A_DATE = np.datetime64("NaT", "D")


class PreparedColumns(Mapping):
    """Columns of one population, converted once and shared by every expression.

    Wrap a population with :func:`prepare_columns` before evaluating many expressions
    over it: reading a column (NaN to None, strings factorised to codes, dates to days)
    then happens once per column instead of once per expression. A column replaced by
    another array is read again; a column changed *in place* is not noticed, so wrap
    only columns that stay as they are.
    """

    def __init__(self, columns: Mapping[str, Any], size: int) -> None:
        self.columns = columns
        self.size = size
        self.cache: dict[tuple[str, Any], Any] = {}

    def __getitem__(self, name: str) -> Any:
        return self.columns[name]

    def __iter__(self):
        return iter(self.columns)

    def __len__(self) -> int:
        return len(self.columns)


def prepare_columns(columns: Mapping[str, Any], size: int) -> PreparedColumns:
    """``columns`` (``size`` rows each) wrapped so conversions are shared across expressions."""
    if isinstance(columns, PreparedColumns) and columns.size == size:
        return columns
    return PreparedColumns(columns, size)


class Frame:
    """The columns of one batch evaluation, read and converted at most once each."""

    __slots__ = ("columns", "size", "cache")

    def __init__(self, columns: Mapping[str, Any], size: int) -> None:
        if isinstance(columns, PreparedColumns) and columns.size == size:
            self.columns, self.cache = columns.columns, columns.cache
        else:
            self.columns, self.cache = columns, {}
        self.size = size


def _raw(frame: Frame, name: str) -> Any:
    try:
        raw = frame.columns[name]
    except KeyError:
        raise EvaluationError(
            f"the batch has no column {name!r} for attribute {name!r}", symbol=name
        ) from None
    length = len(raw) if hasattr(raw, "__len__") and np.ndim(raw) == 1 else None
    if length != frame.size:
        raise EvaluationError(
            f"column {name!r} has shape {np.shape(raw)}, expected ({frame.size},)", symbol=name
        )
    return raw


def read_column(frame: Frame, name: str, value_type: ValueType) -> np.ndarray:
    raw = _raw(frame, name)
    key = (name, value_type)
    cached = frame.cache.get(key)
    if cached is not None and cached[0] is raw:
        return cached[1]
    if value_type is ValueType.STRING:
        codes, categories = string_codes(frame, name)
        converted = np.append(categories, None)[codes]
    else:
        array = np.asarray(raw)
        try:
            converted = CONVERTERS[value_type](array)
        except (TypeError, ValueError) as error:
            raise EvaluationError(
                f"column {name!r} cannot be read as {value_type.name} ({array.dtype}): {error}",
                symbol=name,
            ) from None
    frame.cache[key] = (raw, converted)
    return converted


def string_codes(frame: Frame, name: str) -> tuple[np.ndarray, np.ndarray]:
    """A STRING column factorised: codes (-1 for null) and its distinct values."""
    raw = _raw(frame, name)
    key = (name, "codes")
    cached = frame.cache.get(key)
    if cached is not None and cached[0] is raw:
        return cached[1]
    if isinstance(raw, np.ndarray) and raw.dtype.kind not in "OU":
        if raw.dtype.kind != "T":
            raise EvaluationError(
                f"column {name!r} cannot be read as STRING ({raw.dtype})", symbol=name
            )
        raw = raw.astype(object)
    try:
        codes, categories = pd.factorize(raw, use_na_sentinel=True)
    except (TypeError, ValueError) as error:
        raise EvaluationError(f"column {name!r} cannot be read as STRING: {error}") from None
    categories = np.asarray(categories, dtype=object)
    for category in categories:  # once per distinct value, not per row
        if not isinstance(category, str):
            raise EvaluationError(
                f"column {name!r} should hold STRING values but holds {category!r} "
                f"({type(category).__name__})",
                symbol=name,
            )
    factorised = (np.asarray(codes), categories)
    frame.cache[key] = (raw, factorised)
    return factorised


def _numbers(array: np.ndarray) -> np.ndarray:
    if array.dtype.kind in "biuf":
        return array.astype(np.float64, copy=False)
    if array.dtype.kind == "O":
        try:
            return array.astype(np.float64)  # None becomes NaN
        except (TypeError, ValueError):
            return np.array([np.nan if _null_object(v) else v for v in array], dtype=np.float64)
    raise TypeError(f"dtype {array.dtype} is not numeric")


def _null_object(value: Any) -> bool:
    if value is None or type(value).__name__ in ("NAType", "NaTType"):
        return True
    try:
        return bool(value != value)
    except (TypeError, ValueError):
        return False


def _booleans(array: np.ndarray) -> np.ndarray:
    if array.dtype.kind == "b":
        return array
    values = _numbers(array)
    nulls = np.isnan(values)
    if not nulls.any():
        return values != 0.0
    return np.where(nulls, np.nan, (values != 0.0).astype(np.float64))


def _dates(array: np.ndarray) -> np.ndarray:
    if array.dtype.kind == "M":
        return array.astype(DAY)
    if array.dtype.kind == "O":
        try:
            return array.astype(DAY)  # None becomes NaT
        except (TypeError, ValueError):
            return np.array([NOT_A_DATE if _null_object(v) else v for v in array], dtype=DAY)
    raise TypeError(f"dtype {array.dtype} does not hold dates")


CONVERTERS = {
    ValueType.NUMBER: _numbers,
    ValueType.BOOLEAN: _booleans,
    ValueType.DATE: _dates,
}
