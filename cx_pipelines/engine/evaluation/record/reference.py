"""Per-record evaluation of each mechanism type (tree, matrix, scorecard, model score,
list processor, user exit, aggregate, calculation) against one customer's or account's values.

These are the readable reference forms; ``record_fast`` prepares, once per strategy,
equivalent forms the evaluator runs, and falls back on these to report errors.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from cx_pipelines.engine.language import model as m
from cx_pipelines.engine.language.errors import EngineError, EvaluationError

if TYPE_CHECKING:
    from cx_pipelines.engine.evaluation.record.run import _Customer


def _true(expression: m.Expression | None, record: Mapping[str, Any]) -> bool:
    return expression is None or expression.compiled.evaluate_record(record) is True


def _in_band(value: float, low: float | None, high: float | None) -> bool:
    return (low is None or value >= low) and (high is None or value < high)


def _axis_index(axis: m.Axis, record: Mapping[str, Any]) -> int | None:
    value = axis.expression.compiled.evaluate_record(record)
    if value is None:
        return None
    if axis.bands is not None:
        for index, (low, high) in enumerate(axis.bands):
            if _in_band(value, low, high):
                return index
        return None
    for index, category in enumerate(axis.categories or []):
        if category == value:
            return index
    return None


class _AccountRecord(dict):
    """One account's own values; anything else is read from its customer (no copying)."""

    __slots__ = ("customer",)

    def __missing__(self, name: str) -> Any:
        return self.customer[name]


def _account_record(state: _Customer, account: dict) -> _AccountRecord:
    return account["values"]


def _tree(state, mechanism: m.DecisionTree, record, step, calls) -> Any:
    branches = mechanism.branches
    while True:
        for branch in branches:
            if _true(branch.condition, record):
                outcome = branch.outcome
                break
        else:
            step["path"] = None
            return None
        if type(outcome) is m.Leaf:
            step["path"] = outcome.path
            if outcome.call:
                calls.append(outcome.call)
            return outcome.value
        branches = outcome


def _matrix(state, mechanism: m.Matrix, record, step, calls) -> Any:
    row = _axis_index(mechanism.rows, record)
    column = _axis_index(mechanism.columns, record) if mechanism.columns else 0
    if row is None or column is None:
        step["cell"] = None
        return mechanism.default
    step["cell"] = [row, column]
    return mechanism.values[row][column]


def _scorecard(state, mechanism: m.Scorecard, record, step, calls) -> Any:
    total = mechanism.base
    points_by = {}
    for characteristic in mechanism.characteristics:
        points = _points(characteristic, characteristic.expression.compiled.evaluate_record(record))
        points_by[characteristic.label] = points
        total += points
    step["points"] = points_by
    return total


def _model_score(state, mechanism: m.ModelScore, record, step, calls) -> Any:
    step["model"] = mechanism.model
    step["version"] = state.model_versions.get(mechanism.model, "unknown")
    value = record[mechanism.input.name]
    return mechanism.default if value is None else value


def _list_processor(state, mechanism: m.ListProcessor, record, step, calls) -> Any:
    ranked = []
    for index, item in enumerate(mechanism.items):
        if _true(item.condition, record):
            score = item.score.compiled.evaluate_record(record)
            if score is not None:
                ranked.append((-score, index, item.item_id, score))
    ranked.sort()
    step["ranking"] = [[item_id, score] for _, _, item_id, score in ranked]
    return ranked[0][2] if ranked else None


def _user_exit(state, mechanism: m.UserExitMechanism, record, step, calls) -> Any:
    step["function"] = mechanism.user_exit.name
    return _call_exit(mechanism, [record[attribute.name] for attribute in mechanism.inputs])


def _aggregate_step(state, mechanism: m.Aggregate, record, step, calls) -> Any:
    return _aggregate(state, mechanism, step)


def _calculation(state, mechanism: m.Calculation, record, step, calls) -> Any:
    step["expression"] = mechanism.value.text
    return mechanism.value.compiled.evaluate_record(record)


_EVALUATE = {
    "decision_tree": _tree,
    "matrix": _matrix,
    "scorecard": _scorecard,
    "model_score": _model_score,
    "list_processor": _list_processor,
    "user_exit": _user_exit,
    "aggregate": _aggregate_step,
    "calculation": _calculation,
}


def _evaluate(
    state: _Customer, mechanism: m.Mechanism, record, step: dict, calls: list[str]
) -> Any:
    function = _EVALUATE.get(mechanism.kind)
    if function is None:
        raise EvaluationError(f"mechanism type {mechanism.kind!r} cannot be evaluated")
    return function(state, mechanism, record, step, calls)


def _points(characteristic: m.Characteristic, value: Any) -> float:
    if value is None:
        return characteristic.missing
    if characteristic.bins is not None:
        for low, high, points in characteristic.bins:
            if _in_band(value, low, high):
                return points
        return characteristic.other
    for key, points in (characteristic.categories or {}).items():
        if key == value:
            return float(points)
    return characteristic.other


def _call_exit(mechanism: m.UserExitMechanism, arguments: list) -> Any:
    try:
        return mechanism.user_exit.function(*arguments)
    except EngineError:
        raise
    except Exception as error:  # a user exit is foreign code: name it in the error
        raise EvaluationError(
            f"user exit {mechanism.user_exit.name!r} (mechanism {mechanism.name!r}) failed: "
            f"{type(error).__name__}: {error}",
            symbol=mechanism.user_exit.name,
        ) from error


def _aggregate(state: _Customer, mechanism: m.Aggregate, step: dict) -> Any:
    considered = 0
    true_count = 0
    total = 0.0
    numbers = 0
    low = high = None
    for account in state.accounts_of(mechanism.over):
        record = _account_record(state, account)
        if not _true(mechanism.where, record):
            continue
        considered += 1
        value = mechanism.value.compiled.evaluate_record(record)
        if mechanism.function in ("any", "all", "count"):
            true_count += value is True
        elif value is not None:
            numbers += 1
            total += value
            low = value if low is None or value < low else low
            high = value if high is None or value > high else high
    step["accounts"] = considered
    function = mechanism.function
    if function == "any":
        return true_count > 0
    if function == "all":
        return true_count == considered
    if function == "count":
        return float(true_count)
    if function == "sum":
        return total
    if function == "min":
        return low
    if function == "max":
        return high
    return total / numbers if numbers else None
