"""Raw source values to typed columns, remembering which values could not be read.

Source column types are loose (SQLite keeps text in a Float column), so every value is
read raw and coerced here. A value that is present but cannot be coerced becomes null in
the typed column and is flagged, so the row fails its type rule (``amount_is_numeric``)
rather than the presence rule.
"""

from __future__ import annotations

from datetime import date, datetime

import numpy as np
import pandas as pd
from pandas.api.types import infer_dtype

from cx_pipelines.ingestion.contracts import Field, TableContract

_BOOLEAN_TEXT = {"true": True, "t": True, "1": True, "false": False, "f": False, "0": False}
_TEMPORAL_TYPES = (str, datetime, date, np.datetime64)
_TEMPORAL_INFERRED = {"string", "datetime", "datetime64", "date", "empty"}
_INT64_LIMIT = 2.0**63

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


def coerce_column(values: pd.Series, field: Field) -> tuple[pd.Series, np.ndarray]:
    """Typed values (nullable) and a mask of values present in the source but unreadable."""
    kind = field.kind
    if kind in ("category", "text"):
        return values.astype("str"), np.zeros(len(values), dtype=bool)
    if kind in ("id", "integer"):
        numbers = pd.to_numeric(values, errors="coerce")
        if numbers.dtype.kind in "iu":
            return numbers.astype("Int64"), np.zeros(len(values), dtype=bool)
        finite = np.isfinite(numbers.to_numpy(dtype="float64", na_value=np.nan))
        integral = finite & (np.floor(numbers.fillna(0.5)) == numbers.fillna(0.5)).to_numpy()
        readable = integral & (np.abs(numbers.fillna(0).to_numpy()) < _INT64_LIMIT)
        typed = numbers.where(readable).astype("Int64")
    elif kind == "number":
        typed = pd.to_numeric(values, errors="coerce").astype("float64")
        readable = typed.notna().to_numpy()
    elif kind in ("date", "timestamp"):
        if infer_dtype(values, skipna=True) not in _TEMPORAL_INFERRED:
            # Mixed values: a number here is not a date, though pandas would read it as one.
            temporal = values.map(lambda value: isinstance(value, _TEMPORAL_TYPES))
            parseable = values.where(temporal.to_numpy(bool))
        else:
            parseable = values
        parsed = pd.to_datetime(parseable, errors="coerce", format="ISO8601", utc=True)
        typed = parsed.dt.tz_localize(None).astype("datetime64[us]")
        if kind == "date":
            typed = typed.dt.normalize()
        readable = typed.notna().to_numpy()
    else:  # boolean
        normalised = values.map(
            lambda value: value.strip().lower() if isinstance(value, str) else value
        )
        mapped = normalised.map(
            lambda value: _BOOLEAN_TEXT.get(value) if isinstance(value, str) else _boolean(value)
        )
        typed = mapped.astype("boolean")
        readable = typed.notna().to_numpy()
    unreadable = values.notna().to_numpy() & ~readable
    return typed, unreadable


def _boolean(value: object) -> bool | None:
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer) and value in (0, 1):
        return bool(value)
    return None


def to_output(typed: pd.DataFrame, contract: TableContract) -> pd.DataFrame:
    """Accepted typed rows with the warehouse dtypes (required columns hold no nulls)."""
    return pd.DataFrame(
        {field.name: typed[field.name].astype(output_dtype(field)) for field in contract.fields}
    ).reset_index(drop=True)
