"""Fast per-record forms of the mechanism types, prepared once per strategy.

Each mechanism type in ``record_mechanisms`` is the readable reference; ``fast_evaluator``
returns a function with the same result and step entries that reads the expressions'
compiled record functions directly and looks up nothing per call. Should an expression
fail (a missing attribute, a bad value) the reference function is run again, so the error
is worded and placed exactly as the reference words and places it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cx_pipelines.engine.language import model as m
from cx_pipelines.engine.evaluation.shared import canonical
from cx_pipelines.engine.language.errors import EngineError, EvaluationError
from cx_pipelines.engine.language.expressions import ValueType
from cx_pipelines.engine.language.expressions.record import constant_value, is_constant
from cx_pipelines.engine.evaluation.record.reference import (
    _EVALUATE,
    _aggregate,
    _matrix,
    _points,
    _scorecard,
    _tree,
    _true,
)

_FAILURES = (KeyError, EngineError)


def _raw(expression: m.Expression | None):
    return None if expression is None else expression.compiled._record


def fast_evaluator(mechanism: m.Mechanism):
    """A function ``(state, record, step, calls) -> value`` equivalent to ``_evaluate``."""
    kind = mechanism.kind
    builder = _FAST.get(kind)
    if builder is not None:
        return builder(mechanism)
    function = _EVALUATE.get(kind)
    if function is None:

        def unknown(state, record, step, calls):
            raise EvaluationError(f"mechanism type {kind!r} cannot be evaluated")

        return unknown
    return lambda state, record, step, calls: function(state, mechanism, record, step, calls)


def first_match(rules: list[tuple], record: Mapping[str, Any]) -> Any:
    """The name of the first of ``rules`` (compiled condition or None, name, expression)
    whose condition holds for ``record``; None when none does."""
    try:
        for condition, name, _ in rules:
            if condition is None or condition(record) is True:
                return name
        return None
    except _FAILURES:
        for _, name, expression in rules:
            if _true(expression, record):
                return name
        return None


def rules_of(items: list, name: str = "name") -> list[tuple]:
    """Segments or category rules as ``first_match`` reads them."""
    return [(_raw(item.condition), getattr(item, name), item.condition) for item in items]


def _fast_aggregate(mechanism: m.Aggregate):
    over = mechanism.over
    where = _raw(mechanism.where)
    value_of = _raw(mechanism.value)
    function = mechanism.function
    counting = function in ("any", "all", "count")
    # over no accounts at all: nothing considered
    empty = {"count": 0.0, "sum": 0.0, "any": False, "all": True}.get(function)
    # counting a constant true over every account (``count`` with no ``where``)
    every = (
        counting
        and where is None
        and mechanism.value is not None
        and is_constant(mechanism.value.compiled.tree)
        and constant_value(mechanism.value.compiled.tree) is True
    )

    def aggregate(state, record, step, calls):
        accounts = state.by_type.get(over)
        if accounts is None:
            step["accounts"] = 0
            return empty
        if every:
            considered = true_count = len(accounts)
            step["accounts"] = considered
            if function == "count":
                return float(true_count)
            return true_count > 0 if function == "any" else True
        try:
            considered = true_count = numbers = 0
            total = 0.0
            low = high = None
            for account in accounts:
                own = account["values"]
                if where is not None and where(own) is not True:
                    continue
                considered += 1
                value = value_of(own)
                if counting:
                    true_count += value is True
                elif value is not None:
                    numbers += 1
                    total += value
                    low = value if low is None or value < low else low
                    high = value if high is None or value > high else high
        except _FAILURES:
            return _aggregate(state, mechanism, step)
        step["accounts"] = considered
        if function == "count":
            return float(true_count)
        if function == "sum":
            return total
        if function == "any":
            return true_count > 0
        if function == "all":
            return true_count == considered
        if function == "min":
            return low
        if function == "max":
            return high
        return total / numbers if numbers else None

    return aggregate


def _number_attribute(expression: m.Expression) -> str | None:
    """The attribute name when ``expression`` is one NUMBER attribute, else None."""
    tree = expression.compiled.tree
    if tree.kind == "attribute" and tree.value_type is ValueType.NUMBER:
        return tree.value
    return None


def _fast_scorecard(mechanism: m.Scorecard):
    base = mechanism.base
    parts = [
        (
            characteristic.label,
            _number_attribute(characteristic.expression),
            characteristic.expression.compiled._record,
            characteristic.missing,
            characteristic.bins,
            characteristic,
        )
        for characteristic in mechanism.characteristics
    ]

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
                    points = _points(characteristic, value)
                points_by[label] = points
                total += points
        except _FAILURES:
            return _scorecard(state, mechanism, record, step, calls)
        step["points"] = points_by
        return total

    return scorecard


def _settled(value: Any, value_type) -> Any:
    """A constant output in its canonical form, or as written when that fails (so that the
    evaluation that reaches it fails as before)."""
    try:
        return canonical(value, value_type)
    except (EngineError, TypeError, ValueError):
        return value


def _fast_tree(mechanism: m.DecisionTree):
    value_type = mechanism.output.value_type

    def prepare(branches):
        prepared = []
        for branch in branches:
            outcome = branch.outcome
            if type(outcome) is m.Leaf:
                leaf = (outcome, _settled(outcome.value, value_type))
                prepared.append((_raw(branch.condition), None, leaf))
            else:
                prepared.append((_raw(branch.condition), prepare(outcome), None))
        return prepared

    root = prepare(mechanism.branches)

    def tree(state, record, step, calls):
        branches = root
        try:
            while True:
                for condition, deeper, leaf in branches:  # noqa: B007 - used after break
                    if condition is None or condition(record) is True:
                        break
                else:
                    step["path"] = None
                    return None
                if deeper is None:
                    break
                branches = deeper
        except _FAILURES:
            return _tree(state, mechanism, record, step, calls)
        outcome, value = leaf
        step["path"] = outcome.path
        if outcome.call:
            calls.append(outcome.call)
        return value

    return tree


def _fast_axis(axis: m.Axis):
    read = axis.expression.compiled._record
    bands = None if axis.bands is None else [(i, lo, hi) for i, (lo, hi) in enumerate(axis.bands)]
    categories = list(enumerate(axis.categories or []))

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


def _fast_matrix(mechanism: m.Matrix):
    row_of = _fast_axis(mechanism.rows)
    column_of = _fast_axis(mechanism.columns) if mechanism.columns else None
    value_type = mechanism.output.value_type
    values = [[_settled(cell, value_type) for cell in row] for row in mechanism.values]
    default = _settled(mechanism.default, value_type)

    def matrix(state, record, step, calls):
        try:
            row = row_of(record)
            column = 0 if column_of is None else column_of(record)
        except _FAILURES:
            return _matrix(state, mechanism, record, step, calls)
        if row is None or column is None:
            step["cell"] = None
            return default
        step["cell"] = [row, column]
        return values[row][column]

    return matrix


_FAST = {
    "aggregate": _fast_aggregate,
    "matrix": _fast_matrix,
    "scorecard": _fast_scorecard,
    "decision_tree": _fast_tree,
}
