"""Scorecard: a base plus the points of each characteristic's bin or category."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from cx_pipelines.engine.evaluation.batch.text import number_text
from cx_pipelines.engine.evaluation.shared import RECORD_FAILURES
from cx_pipelines.engine.language import model as m
from cx_pipelines.engine.language.expressions import ValueType
from cx_pipelines.engine.language.literals import expression_text
from cx_pipelines.engine.language.schema import ATTRIBUTE_NAME, BAND, EXPRESSION, obj
from cx_pipelines.engine.language.validation import band_problems
from cx_pipelines.engine.mechanisms.base import MechanismKind, in_band


@dataclass
class Characteristic:
    label: str
    expression: m.Expression
    bins: list[tuple[float | None, float | None, float]] | None
    categories: dict[Any, float] | None
    other: float
    missing: float

    def points(self, value: Any) -> float:
        """The points of one value (the reference form)."""
        if value is None:
            return self.missing
        if self.bins is not None:
            for low, high, points in self.bins:
                if in_band(value, low, high):
                    return points
            return self.other
        for key, points in (self.categories or {}).items():
            if key == value:
                return float(points)
        return self.other


CHARACTERISTIC_SCHEMA = obj(
    {
        "attribute": ATTRIBUTE_NAME,
        "expression": EXPRESSION,
        "bins": {
            "type": "array",
            "minItems": 1,
            "items": obj({"range": BAND, "points": {"type": "number"}}, ["range", "points"]),
        },
        "categories": {"type": "object", "additionalProperties": {"type": "number"}},
        "other": {"type": "number"},
        "missing": {"type": "number"},
    },
    oneOf=[{"required": ["bins"]}, {"required": ["categories"]}],
)


def _number_attribute(expression: m.Expression) -> str | None:
    """The attribute name when ``expression`` is one NUMBER attribute, else None."""
    tree = expression.compiled.tree
    if tree.kind == "attribute" and tree.value_type is ValueType.NUMBER:
        return tree.value
    return None


@dataclass
class Scorecard(MechanismKind):
    KIND = "scorecard"
    SCHEMA_PROPERTIES = {
        "base": {"type": "number"},
        "characteristics": {"type": "array", "minItems": 1, "items": CHARACTERISTIC_SCHEMA},
    }
    SCHEMA_REQUIRED = ["characteristics"]

    base: float = 0.0
    characteristics: list[Characteristic] = field(default_factory=list)

    @classmethod
    def load(cls, loader, name, spec, path, over, output):
        loader.output_type_is(output, ValueType.NUMBER, path, "a scorecard")
        characteristics = []
        for index, item in enumerate(spec["characteristics"]):
            at = (*path, "characteristics", index)
            label = item.get("attribute") or expression_text(item.get("expression"))
            if (
                "attribute" in item
                and loader.attribute_ref(item["attribute"], (*at, "attribute"), over=over) is None
            ):
                continue
            expected = ValueType.NUMBER if "bins" in item else None
            expression = loader.expression(
                label,
                (*at, "attribute" if "attribute" in item else "expression"),
                over=over,
                expected=expected,
            )
            if expression is None:
                continue
            bins = None
            if "bins" in item:
                bins = [(b["range"][0], b["range"][1], float(b["points"])) for b in item["bins"]]
                for message, bad in band_problems([(lo, hi) for lo, hi, _ in bins]):
                    loader.error(message, (*at, "bins", bad, "range"))
            characteristics.append(
                Characteristic(
                    label,
                    expression,
                    bins,
                    item.get("categories"),
                    float(item.get("other", 0.0)),
                    float(item.get("missing", 0.0)),
                )
            )
        return cls(name, cls.KIND, output, over, float(spec.get("base", 0.0)), characteristics)

    # ------------------------------------------------------------ batch
    def evaluate_batch(self, run, level, mask, detail, calls):
        size = run.levels[level].size
        total = np.full(size, self.base, dtype=np.float64)
        points_by = {}
        for characteristic in self.characteristics:
            value = run.evaluate(characteristic.expression, level)
            points = np.full(size, characteristic.other, dtype=np.float64)
            if characteristic.bins is not None:
                missing = np.isnan(value)
                done = missing.copy()
                for low, high, score in characteristic.bins:
                    hit = ~done
                    if low is not None:
                        hit &= value >= low
                    if high is not None:
                        hit &= value < high
                    points[hit] = score
                    done |= hit
            else:
                missing = pd.isna(value) if value.dtype == object else np.isnan(value.astype(float))
                done = missing.copy()
                for key, score in (characteristic.categories or {}).items():
                    hit = ~done & (value == key)
                    points[hit] = score
                    done |= hit
            points[missing] = characteristic.missing
            points_by[characteristic.label] = points
            total += points
        detail["points"] = points_by
        return total

    def trace_fields(self, detail, models, field):
        return {
            "points": {
                label: field(number_text(points)) for label, points in detail["points"].items()
            }
        }

    def trace_rows(self, detail, models):
        points = {label: array.tolist() for label, array in detail["points"].items()}

        def write(item: dict, row: int) -> None:
            item["points"] = {label: values[row] for label, values in points.items()}

        return write

    # ------------------------------------------------------------ per record
    def evaluate_record(self, state, record, step, calls):
        total = self.base
        points_by = {}
        for characteristic in self.characteristics:
            points = characteristic.points(
                characteristic.expression.compiled.evaluate_record(record)
            )
            points_by[characteristic.label] = points
            total += points
        step["points"] = points_by
        return total

    def fast_record(self):
        base = self.base
        parts = [
            (
                characteristic.label,
                _number_attribute(characteristic.expression),
                characteristic.expression.compiled.record_function,
                characteristic.missing,
                characteristic.bins,
                characteristic,
            )
            for characteristic in self.characteristics
        ]
        reference = self.evaluate_record

        def scorecard(state, record, step, calls):
            total = base
            points_by = {}
            try:
                for label, attribute, read, missing, bins, characteristic in parts:
                    if attribute is None:
                        value = read(record)
                    else:  # a number attribute as it is, unless it needs reading
                        value = record[attribute]
                        if value is not None and (type(value) is not float or value != value):
                            value = read(record)
                    if value is None:
                        points = missing
                    elif bins is not None:
                        for low, high, in_bin in bins:
                            if (low is None or value >= low) and (high is None or value < high):
                                points = in_bin
                                break
                        else:
                            points = characteristic.other
                    else:
                        points = characteristic.points(value)
                    points_by[label] = points
                    total += points
            except RECORD_FAILURES:
                return reference(state, record, step, calls)
            step["points"] = points_by
            return total

        return scorecard
