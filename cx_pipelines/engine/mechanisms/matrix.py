"""Matrix: one or two banded (or categorical) axes select a cell (seed 004 FIG. 14)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cx_pipelines.engine.evaluation.batch.columns import to_values
from cx_pipelines.engine.evaluation.batch.text import concat, integer_text
from cx_pipelines.engine.evaluation.shared import RECORD_FAILURES
from cx_pipelines.engine.language import model as m
from cx_pipelines.engine.language.expressions import ValueType
from cx_pipelines.engine.language.literals import expression_text, value_type_of
from cx_pipelines.engine.language.schema import ATTRIBUTE_NAME, BAND, EXPRESSION, SCALAR, obj
from cx_pipelines.engine.language.validation import band_problems
from cx_pipelines.engine.mechanisms.base import MechanismKind, in_band, settled


def axis_schema() -> dict:
    """An axis (or a characteristic-like input): an attribute or expression, bands or categories."""
    return obj(
        {
            "attribute": ATTRIBUTE_NAME,
            "expression": EXPRESSION,
            "bands": {"type": "array", "items": BAND, "minItems": 1},
            "categories": {"type": "array", "items": SCALAR, "minItems": 1},
        },
        oneOf=[{"required": ["bands"]}, {"required": ["categories"]}],
    )


@dataclass
class Axis:
    label: str  # attribute name or expression text
    expression: m.Expression
    bands: list[tuple[float | None, float | None]] | None
    categories: list[Any] | None

    @classmethod
    def load(cls, loader, spec: dict, path: tuple, over: str | None) -> Axis | None:
        label = spec.get("attribute") or expression_text(spec.get("expression"))
        if "attribute" in spec and "expression" in spec:
            loader.error("an axis takes `attribute` or `expression`, not both", path)
            return None
        if "attribute" not in spec and "expression" not in spec:
            loader.error("an axis needs `attribute` or `expression`", path)
            return None
        if (
            "attribute" in spec
            and loader.attribute_ref(spec["attribute"], (*path, "attribute"), over=over) is None
        ):
            return None
        expected = ValueType.NUMBER if "bands" in spec else None
        expression = loader.expression(
            label,
            (*path, "attribute" if "attribute" in spec else "expression"),
            over=over,
            expected=expected,
        )
        if expression is None:
            return None
        bands = None
        if "bands" in spec:
            bands = [(b[0], b[1]) for b in spec["bands"]]
            for message, index in band_problems(bands):
                loader.error(message, (*path, "bands", index))
        categories = spec.get("categories")
        if categories is not None:
            result_type = expression.compiled.result_type
            for index, category in enumerate(categories):
                if value_type_of(category) is not result_type:
                    loader.error(
                        f"type mismatch: category {category!r} does not match the axis type "
                        f"{result_type.name}",
                        (*path, "categories", index),
                    )
        return cls(label, expression, bands, categories)

    @property
    def size(self) -> int:
        return len(self.bands or self.categories or [])

    def batch_index(self, run, level) -> np.ndarray:
        """Band or category position of every row (-1: none)."""
        value = run.evaluate(self.expression, level)
        index = np.full(len(value), -1, dtype=np.int64)
        if self.bands is not None:
            known = ~np.isnan(value)
            for position, (low, high) in enumerate(self.bands):
                hit = known & (index < 0)
                if low is not None:
                    hit &= value >= low
                if high is not None:
                    hit &= value < high
                index[hit] = position
        else:
            for position, category in enumerate(self.categories or []):
                hit = (index < 0) & (value == category)
                index[hit] = position
        return index

    def record_index(self, record) -> int | None:
        value = self.expression.compiled.evaluate_record(record)
        if value is None:
            return None
        if self.bands is not None:
            for index, (low, high) in enumerate(self.bands):
                if in_band(value, low, high):
                    return index
            return None
        for index, category in enumerate(self.categories or []):
            if category == value:
                return index
        return None

    def fast_index(self):
        """``record_index`` reading the compiled function directly (raises as it does)."""
        read = self.expression.compiled.record_function
        bands = (
            None if self.bands is None else [(i, lo, hi) for i, (lo, hi) in enumerate(self.bands)]
        )
        categories = list(enumerate(self.categories or []))

        def index_of(record):
            value = read(record)
            if value is None:
                return None
            if bands is not None:
                for index, low, high in bands:
                    if (low is None or value >= low) and (high is None or value < high):
                        return index
                return None
            for index, category in categories:
                if category == value:
                    return index
            return None

        return index_of


@dataclass
class Matrix(MechanismKind):
    KIND = "matrix"
    SCHEMA_PROPERTIES = {
        "rows": axis_schema(),
        "columns": axis_schema(),
        "values": {"type": "array", "minItems": 1, "items": {"type": "array"}},
        "default": SCALAR,
    }
    SCHEMA_REQUIRED = ["rows", "values"]

    rows: Axis | None = None
    columns: Axis | None = None
    values: list[list[Any]] = field(default_factory=list)
    default: Any = None

    @classmethod
    def load(cls, loader, name, spec, path, over, output):
        rows = Axis.load(loader, spec["rows"], (*path, "rows"), over)
        columns = (
            Axis.load(loader, spec["columns"], (*path, "columns"), over)
            if "columns" in spec
            else None
        )
        values = spec["values"]
        if rows is not None:
            n_rows = rows.size
            n_columns = columns.size if columns else 1
            if len(values) != n_rows:
                loader.error(
                    f"`values` has {len(values)} rows but the row axis has {n_rows} bands",
                    (*path, "values"),
                )
            for index, row in enumerate(values):
                if len(row) != n_columns:
                    loader.error(
                        f"row {index} has {len(row)} values but the column axis has {n_columns}",
                        (*path, "values", index),
                    )
                for j, value in enumerate(row):
                    loader.literal_fits(value, output, (*path, "values", index, j))
        loader.literal_fits(spec.get("default"), output, (*path, "default"))
        return cls(name, cls.KIND, output, over, rows, columns, values, spec.get("default"))

    # ------------------------------------------------------------ batch
    def evaluate_batch(self, run, level, mask, detail, calls):
        rows = self.rows.batch_index(run, level)
        columns = self.columns.batch_index(run, level) if self.columns else np.zeros_like(rows)
        flat = [v for row in self.values for v in row] + [self.default]
        table = to_values(flat, self.output.value_type, len(flat))
        width = len(self.values[0]) if self.values else 1
        found = (rows >= 0) & (columns >= 0)
        cell = np.where(found, rows * width + columns, len(flat) - 1)
        detail["row"], detail["column"] = np.where(found, rows, -1), columns
        return table[cell]

    def trace_fields(self, detail, models, field):
        rows, columns = detail["row"], detail["column"]
        cell = concat("[", integer_text(rows), ",", integer_text(columns), "]")
        cell[(rows < 0) | (columns < 0)] = "null"  # object array: assignable
        return {"cell": field(cell)}

    def trace_rows(self, detail, models):
        rows, columns = detail["row"].tolist(), detail["column"].tolist()

        def write(item: dict, row: int) -> None:
            r, col = rows[row], columns[row]
            item["cell"] = None if r < 0 or col < 0 else [r, col]

        return write

    # ------------------------------------------------------------ per record
    def evaluate_record(self, state, record, step, calls):
        row = self.rows.record_index(record)
        column = self.columns.record_index(record) if self.columns else 0
        if row is None or column is None:
            step["cell"] = None
            return self.default
        step["cell"] = [row, column]
        return self.values[row][column]

    def fast_record(self):
        row_of = self.rows.fast_index()
        column_of = self.columns.fast_index() if self.columns else None
        value_type = self.output.value_type
        values = [[settled(cell, value_type) for cell in row] for row in self.values]
        default = settled(self.default, value_type)
        reference = self.evaluate_record

        def matrix(state, record, step, calls):
            try:
                row = row_of(record)
                column = 0 if column_of is None else column_of(record)
            except RECORD_FAILURES:
                return reference(state, record, step, calls)
            if row is None or column is None:
                step["cell"] = None
                return default
            step["cell"] = [row, column]
            return values[row][column]

        return matrix
