"""Raw source values to typed columns, remembering which values could not be read.

Source column types are loose (SQLite keeps text in a Float column; a text extract holds
anything), so every value is read raw and coerced here, *value by value in effect*: one
value that cannot be read never changes how the others are read. A value that is present
but cannot be coerced becomes null in the typed column and is flagged, so its row fails
its type rule (``amount_is_numeric``) rather than the presence rule, and no other row does.

Each kind has a vectorised path for a column whose present values are all of one Python
type (the common case, so large tables stay fast) and a per-value path for mixed columns.
Nulls never take part in type inference: a NULL among booleans does not turn the others
into floats. Integers are never routed through floats, so a 64-bit id keeps every digit.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal, InvalidOperation

import numpy as np
import pandas as pd
from pandas.api.types import infer_dtype

from cx_pipelines.ingestion.contracts import Field, TableContract

_BOOLEAN_TEXT = {
    "true": True,
    "t": True,
    "1": True,
    "yes": True,
    "y": True,
    "false": False,
    "f": False,
    "0": False,
    "no": False,
    "n": False,
}
_INTEGER_TEXT = re.compile(r"^\s*[+-]?\d+\s*\Z")
_INT64_LIMIT = 2**63
_CLOCK_WORDS = np.array(["now", "today"], dtype=object)

OUTPUT_DTYPES = {
    "id": "int64",
    "integer": "int64",
    "number": "float64",
    "date": "datetime64[us]",
    "timestamp": "datetime64[us]",
    "boolean": "bool",
    "category": "str",
    "text": "str",
}
"""Warehouse dtype of each field kind when the column is required (never null)."""

NULLABLE_OUTPUT_DTYPES = {**OUTPUT_DTYPES, "id": "Int64", "integer": "Int64", "boolean": "boolean"}
"""Warehouse dtype of each field kind when the column may be null."""


def output_dtype(field: Field) -> str:
    return (OUTPUT_DTYPES if field.required else NULLABLE_OUTPUT_DTYPES)[field.kind]


def empty_frame(contract: TableContract) -> pd.DataFrame:
    """A frame with no rows and the warehouse columns and dtypes of ``contract``'s table."""
    return pd.DataFrame(
        {field.name: pd.Series([], dtype=output_dtype(field)) for field in contract.fields}
    )


# Each coercer takes the present (non-null) raw values as an object array and returns the
# typed values (any placeholder where unreadable) and a mask of the readable ones.
Coerced = tuple[np.ndarray, np.ndarray]


def _per_value(present: np.ndarray, read: Callable[[object], object], dtype: str) -> Coerced:
    values = [read(value) for value in present]
    readable = np.array([value is not None for value in values], dtype=bool)
    placeholder = np.zeros(1, dtype=dtype)[0]
    typed = np.array(
        [placeholder if value is None else value for value in values], dtype=dtype
    ).reshape(len(values))
    return typed, readable


def _integer(value: object) -> int | None:
    if isinstance(value, bool | np.bool_):
        return None
    if isinstance(value, int | np.integer):
        number = int(value)
        return number if -_INT64_LIMIT <= number < _INT64_LIMIT else None
    if isinstance(value, str):
        if _INTEGER_TEXT.match(value):
            return _integer(int(value))
        try:
            value = float(value)
        except ValueError:
            return None
    if isinstance(value, float | np.floating | Decimal):
        try:
            number = Decimal(str(value)) if isinstance(value, float | np.floating) else value
            if not number.is_finite() or number != number.to_integral_value():
                return None
            return _integer(int(number))
        except InvalidOperation:
            return None
    return None


def _integers(present: np.ndarray) -> Coerced:
    inferred = infer_dtype(present, skipna=False)
    if inferred == "integer":
        try:
            return present.astype(np.int64), np.ones(len(present), dtype=bool)
        except OverflowError:
            pass  # a value beyond 64 bits: read each one to flag only that one
    elif inferred == "floating":
        numbers = present.astype(np.float64)
        with np.errstate(invalid="ignore"):
            readable = (
                np.isfinite(numbers)
                & (np.floor(numbers) == numbers)
                & (np.abs(numbers) < float(_INT64_LIMIT))
            )
        typed = np.zeros(len(present), dtype=np.int64)
        typed[readable] = numbers[readable].astype(np.int64)
        return typed, readable
    return _per_value(present, _integer, "int64")


def _number(value: object) -> float | None:
    if isinstance(value, bool | np.bool_):
        return None
    try:
        if isinstance(value, str):
            number = float(value.strip())
        elif isinstance(value, int | float | np.integer | np.floating | Decimal):
            number = float(value)
        else:
            return None
    except (ValueError, OverflowError):
        return None
    return None if np.isnan(number) else number


def _numbers(present: np.ndarray) -> Coerced:
    inferred = infer_dtype(present, skipna=False)
    if inferred in ("floating", "integer", "mixed-integer-float"):
        try:
            return present.astype(np.float64), np.ones(len(present), dtype=bool)
        except OverflowError:
            pass
    elif inferred == "string":
        numbers = pd.to_numeric(pd.Series(present, dtype=object), errors="coerce")
        typed = numbers.to_numpy(dtype=np.float64, na_value=np.nan)
        return np.nan_to_num(typed, nan=0.0), ~np.isnan(typed)
    return _per_value(present, _number, "float64")


_TEMPORAL_OBJECTS = (datetime, date, pd.Timestamp, np.datetime64)


def _timestamps(present: np.ndarray) -> Coerced:
    """Naive UTC microsecond timestamps from ISO text or date/time objects."""
    typed = np.full(len(present), np.datetime64("NaT"), dtype="datetime64[us]")
    inferred = infer_dtype(present, skipna=False)
    if inferred == "string":
        is_text, is_temporal = np.ones(len(present), bool), np.zeros(len(present), bool)
    elif inferred in ("datetime", "datetime64", "date"):
        is_text, is_temporal = np.zeros(len(present), bool), np.ones(len(present), bool)
    else:
        is_text = np.array([isinstance(value, str) for value in present], dtype=bool)
        is_temporal = np.array(
            [isinstance(value, _TEMPORAL_OBJECTS) for value in present], dtype=bool
        )
    # Anything else (a number, a boolean, bytes) is not a date, though pandas would read
    # a number as one.
    if is_text.any():
        # pandas reads "now" and "today" as the clock's time; no source holds such a date.
        is_text[is_text] = ~np.isin(present[is_text], _CLOCK_WORDS)
    for mask, options in ((is_text, {"format": "ISO8601"}), (is_temporal, {})):
        if mask.any():
            parsed = pd.to_datetime(
                pd.Series(present[mask], dtype=object), errors="coerce", utc=True, **options
            )
            typed[mask] = parsed.dt.tz_localize(None).to_numpy(dtype="datetime64[us]")
    return typed, ~np.isnat(typed)


def _boolean(value: object) -> bool | None:
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | float | np.integer | np.floating | Decimal) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        return _BOOLEAN_TEXT.get(value.strip().lower())
    return None


def _booleans(present: np.ndarray) -> Coerced:
    inferred = infer_dtype(present, skipna=False)
    if inferred == "boolean":
        return present.astype(bool), np.ones(len(present), dtype=bool)
    if inferred == "integer":  # SQLite keeps booleans as 0 and 1
        try:
            numbers = present.astype(np.int64)
        except OverflowError:
            return _per_value(present, _boolean, "bool")
        return numbers == 1, (numbers == 0) | (numbers == 1)
    return _per_value(present, _boolean, "bool")


def _text(value: object) -> str:
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8", errors="backslashreplace")
    return value if isinstance(value, str) else str(value)


def coerce_column(values: pd.Series, field: Field) -> tuple[pd.Series, np.ndarray]:
    """Typed values (nullable) and a mask of values present in the source but unreadable."""
    kind = field.kind
    if kind in ("category", "text") and infer_dtype(values, skipna=True) in ("string", "empty"):
        return values.astype("str").reset_index(drop=True), np.zeros(len(values), dtype=bool)
    raw = values.to_numpy(dtype=object)
    missing = pd.isna(values).to_numpy(dtype=bool)
    present = raw[~missing]
    if kind in ("category", "text"):
        typed = np.full(len(raw), None, dtype=object)
        typed[~missing] = [_text(value) for value in present]
        return pd.Series(typed, dtype="str"), np.zeros(len(raw), dtype=bool)
    coercer = {
        "id": _integers,
        "integer": _integers,
        "number": _numbers,
        "date": _timestamps,
        "timestamp": _timestamps,
        "boolean": _booleans,
    }[kind]
    read, readable = coercer(present)
    unreadable = np.zeros(len(raw), dtype=bool)
    unreadable[~missing] = ~readable
    null = missing | unreadable
    if kind in ("id", "integer"):
        values_out = np.zeros(len(raw), dtype=np.int64)
        values_out[~missing] = read
        typed = pd.Series(pd.arrays.IntegerArray(values_out, null))
    elif kind == "boolean":
        values_out = np.zeros(len(raw), dtype=bool)
        values_out[~missing] = read
        typed = pd.Series(pd.arrays.BooleanArray(values_out, null))
    elif kind == "number":
        values_out = np.full(len(raw), np.nan, dtype=np.float64)
        values_out[~missing] = read
        values_out[null] = np.nan
        typed = pd.Series(values_out)
    else:
        values_out = np.full(len(raw), np.datetime64("NaT"), dtype="datetime64[us]")
        values_out[~missing] = read
        typed = pd.Series(values_out)
        if kind == "date":
            typed = typed.dt.normalize()
    return typed, unreadable


def to_output(typed: pd.DataFrame, contract: TableContract) -> pd.DataFrame:
    """Accepted typed rows with the warehouse dtypes (required columns hold no nulls)."""
    return pd.DataFrame(
        {field.name: typed[field.name].astype(output_dtype(field)) for field in contract.fields}
    ).reset_index(drop=True)
