"""JSON text built column-wise: numbers, values, lists and templates for whole columns.

The pieces batch traces are made of (see :mod:`.trace`); mechanism kinds use them for
their own trace entries.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from itertools import repeat
from typing import Any

import numpy as np
import pandas as pd

from cx_pipelines.engine.language.expressions import ValueType

TEXT = np.dtypes.StringDType()
SENTINEL = "@@FIELD{}@@"
SPLIT = re.compile(r'"@@FIELD(\d+)@@"')


def dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def number_text(values: np.ndarray) -> np.ndarray:
    """Floats as JSON numbers (Python's repr), null for NaN."""
    values = np.asarray(values, dtype=np.float64)
    text = values.astype(TEXT)
    if not np.isfinite(values).all():
        text[np.isnan(values)] = "null"
        text[values == np.inf] = "Infinity"
        text[values == -np.inf] = "-Infinity"
    return text


def integer_text(values: np.ndarray) -> np.ndarray:
    return np.asarray(values, dtype=np.int64).astype(TEXT)


def by_uniques(values: np.ndarray, render) -> np.ndarray:
    """``render`` applied once per distinct value (objects), spread back to every row."""
    codes, uniques = pd.factorize(np.asarray(values, dtype=object), use_na_sentinel=True)
    table = np.array([render(v) for v in list(uniques)] + [render(None)], dtype=TEXT)
    return table[codes]


def value_text(values: np.ndarray, value_type: ValueType) -> np.ndarray:
    """A column of values as JSON, as the per-record trace writes them."""
    if value_type is ValueType.NUMBER:
        return number_text(values)
    if value_type is ValueType.BOOLEAN:
        values = np.asarray(values, dtype=np.float64)
        text = np.where(values == 1.0, "true", "false").astype(TEXT)
        text[np.isnan(values)] = "null"
        return text
    if value_type is ValueType.DATE:
        values = np.asarray(values, dtype="datetime64[D]")
        text = np.char.add(np.char.add('"', values.astype(str)), '"').astype(TEXT)
        text[np.isnat(values)] = "null"
        return text
    return by_uniques(values, lambda v: dumps(None if v is None else str(v)))


def _column(part: Any) -> Any:
    if isinstance(part, str):
        return repeat(part)
    if isinstance(part, np.ndarray):
        return part.tolist()
    return part


def concat(*parts: Any) -> np.ndarray:
    """Row-wise concatenation of text columns and constants (an object array of str)."""
    columns = [_column(p) for p in parts if not (isinstance(p, str) and p == "")]
    return objects(["".join(row) for row in zip(*columns, strict=False)])


def objects(values: list[str]) -> np.ndarray:
    array = np.empty(len(values), dtype=object)
    array[:] = values
    return array


def fill(template: Any, fields: Sequence[Any]) -> np.ndarray:
    """``template`` dumped as JSON with ``SENTINEL`` strings replaced by column texts."""
    text = dumps(template)
    pieces = SPLIT.split(text)
    parts: list[Any] = [pieces[0]]
    for position in range(1, len(pieces), 2):
        parts.append(fields[int(pieces[position])])
        parts.append(pieces[position + 1])
    return concat(*parts)


def list_text(items: Sequence[Any], size: int) -> np.ndarray:
    """Per row, a JSON list of the non-empty items (each item text ends with ',')."""
    if not items:
        return objects(["[]"] * size)
    columns = [_column(item) for item in items]
    rows = []
    for row in zip(*columns, strict=True):
        text = "".join(row)
        rows.append("[" + text[:-1] + "]" if text else "[]")
    return objects(rows)


def masked(text: Any, mask: np.ndarray | None) -> np.ndarray:
    """Item text followed by a comma where ``mask`` holds, '' elsewhere."""
    values = _column(text)
    if mask is None:
        return objects([t + "," for t in values])
    return objects([t + "," if keep else "" for t, keep in zip(values, mask.tolist(), strict=True)])
