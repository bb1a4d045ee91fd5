"""Batch form: a typed syntax tree compiled to whole-column numpy operations.

Each node becomes a closure over a :class:`Frame` returning one numpy array per node (or
a numpy scalar for folded constants). There is no Python loop over rows: numbers are
float64 with NaN for null, dates datetime64[D] with NaT, strings object arrays with
None, booleans bool arrays — or float64 1.0/0.0/NaN where a boolean can be null.

A subtree that reads one STRING attribute and nothing else is evaluated once per
distinct value of the column (with the reference per-record semantics) and spread over
the rows by the column's factorised codes; for columns with very many distinct values it
falls back to element-wise numpy object operations.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from cx_pipelines.engine.language.expressions.checker import ValueType
from cx_pipelines.engine.language.expressions.columns import (
    DAY,
    NOT_A_DATE,
    Frame,
    read_column,
    string_codes,
)
from cx_pipelines.engine.language.expressions.record import (
    compile_record,
    constant_value,
    is_constant,
)
from cx_pipelines.engine.language.expressions.syntax import Node

BatchFunction = Callable[[Frame], Any]

# a subtree reading one STRING attribute is evaluated once per distinct value, unless
# the column has more distinct values than this share of its rows
CATEGORY_SHARE = 0.25
MIN_CATEGORIES = 64


# ---------------------------------------------------------------- value helpers
def scalar(value: Any, value_type: ValueType) -> Any:
    """A Python-form constant as the numpy scalar the batch form uses."""
    if value_type is ValueType.NUMBER:
        return np.float64(np.nan if value is None else value)
    if value_type is ValueType.DATE:
        return NOT_A_DATE if value is None else np.datetime64(value, "D")
    if value_type is ValueType.BOOLEAN:
        return np.float64(np.nan) if value is None else bool(value)
    return np.asarray(value, dtype=object)


def is_null(value: Any, value_type: ValueType) -> Any:
    if value_type is ValueType.NUMBER:
        return np.isnan(value)
    if value_type is ValueType.DATE:
        return np.isnat(value)
    if value_type is ValueType.STRING:
        return np.equal(value, None)
    if isinstance(value, np.ndarray | np.floating | float):
        return np.isnan(value) if np.asarray(value).dtype.kind == "f" else np.zeros_like(value)
    return np.zeros_like(value, dtype=bool)


def truth(value: Any) -> Any:
    """Boolean values as plain booleans: null counts as false."""
    if np.asarray(value).dtype.kind == "b":
        return value
    return np.equal(value, 1.0)


def full(value: Any, size: int) -> np.ndarray:
    array = np.asarray(value)
    return array if array.shape == (size,) else np.broadcast_to(array, (size,))


_UFUNCS = {
    "==": np.equal,
    "!=": np.not_equal,
    "<": np.less,
    "<=": np.less_equal,
    ">": np.greater,
    ">=": np.greater_equal,
}


def compare(operator: str, a: Any, b: Any, value_type: ValueType, size: int) -> Any:
    """``a operator b`` where any null makes the result false."""
    if value_type is ValueType.STRING and operator not in ("==", "!="):
        a, b = full(a, size), full(b, size)
        valid = ~(is_null(a, value_type) | is_null(b, value_type))
        result = np.zeros(size, dtype=bool)
        result[valid] = _UFUNCS[operator](a[valid], b[valid])
        return result
    with np.errstate(invalid="ignore"):
        result = _UFUNCS[operator](a, b)
    if operator == "!=" or value_type is ValueType.STRING:
        result = result & ~is_null(a, value_type) & ~is_null(b, value_type)
    return result


# ---------------------------------------------------------------- compilation
def compile_batch(node: Node) -> BatchFunction:
    """Compile a typed tree to a function of a :class:`Frame`."""
    if is_constant(node):
        value = scalar(constant_value(node), node.value_type)
        return lambda frame: value
    vectorised = globals()["_node_" + node.kind](node)
    if node.kind != "attribute":
        attributes = _attributes(node)
        if len(attributes) == 1 and next(iter(attributes.values())) is ValueType.STRING:
            return _by_category(node, next(iter(attributes)), vectorised)
    return vectorised


def _attributes(node: Node) -> dict[str, ValueType]:
    found: dict[str, ValueType] = {}
    stack = [node]
    while stack:
        current = stack.pop()
        if current.kind == "attribute":
            found[current.value] = current.value_type
        stack.extend(current.children)
    return found


def column_of(values: list, value_type: ValueType) -> np.ndarray:
    """Per-record values (``None`` for null) as a batch column."""
    if value_type is ValueType.NUMBER:
        return np.array([np.nan if value is None else value for value in values], dtype=float)
    if value_type is ValueType.DATE:
        return np.array([NOT_A_DATE if value is None else value for value in values], dtype=DAY)
    if value_type is ValueType.BOOLEAN:
        if None in values:
            return np.array([np.nan if value is None else value for value in values], dtype=float)
        return np.array(values, dtype=bool)
    column = np.empty(len(values), dtype=object)
    column[:] = values
    return column


def _by_category(node: Node, name: str, vectorised: BatchFunction) -> BatchFunction:
    """Evaluate a subtree of one STRING attribute once per distinct value, then spread it.

    The per-distinct-value results come from the per-record form, so both forms agree
    by construction; rows are then filled with one numpy ``take`` over the codes.
    """
    evaluate = compile_record(node)
    value_type = node.value_type

    def by_category(frame):
        codes, categories = string_codes(frame, name)
        if len(categories) > max(MIN_CATEGORIES, CATEGORY_SHARE * frame.size):
            return vectorised(frame)
        values = [evaluate({name: category}) for category in categories]
        values.append(evaluate({name: None}))  # code -1 (null) picks this last entry
        return column_of(values, value_type)[codes]

    return by_category


def _node_attribute(node: Node) -> BatchFunction:
    name, value_type = node.value, node.value_type
    return lambda frame: read_column(frame, name, value_type)


def _node_negate(node: Node) -> BatchFunction:
    operand = compile_batch(node.children[0])
    return lambda frame: np.negative(operand(frame))


def _node_not(node: Node) -> BatchFunction:
    operand = compile_batch(node.children[0])
    return lambda frame: np.logical_not(truth(operand(frame)))


def _node_logical(node: Node) -> BatchFunction:
    parts = [compile_batch(child) for child in node.children]
    combine = np.logical_and if node.value == "and" else np.logical_or

    def logical(frame):
        result = truth(parts[0](frame))
        for part in parts[1:]:
            result = combine(result, truth(part(frame)))
        return result

    return logical


def _divide(a: Any, b: Any) -> Any:
    return np.where(np.equal(b, 0.0), np.nan, np.true_divide(a, b))


def _remainder(a: Any, b: Any) -> Any:
    return np.where(np.equal(b, 0.0), np.nan, np.remainder(a, b))


ARITHMETIC = {
    "+": np.add,
    "-": np.subtract,
    "*": np.multiply,
    "/": _divide,
    "%": _remainder,
}


def _node_arithmetic(node: Node) -> BatchFunction:
    left, right = (compile_batch(child) for child in node.children)
    operation = ARITHMETIC[node.value]

    def arithmetic(frame):
        with np.errstate(all="ignore"):
            return operation(left(frame), right(frame))

    return arithmetic


def _node_compare(node: Node) -> BatchFunction:
    left, right = (compile_batch(child) for child in node.children)
    operator, value_type = node.value, node.children[0].value_type
    return lambda frame: compare(operator, left(frame), right(frame), value_type, frame.size)


def _node_in_list(node: Node) -> BatchFunction:
    subject = compile_batch(node.children[0])
    items = node.children[1:]
    value_type = node.children[0].value_type
    negated = node.negated
    parts = [compile_batch(item) for item in items]
    constants = None
    if value_type in (ValueType.NUMBER, ValueType.DATE) and all(map(is_constant, items)):
        values = [part(None) for part in parts]
        constants = np.array([value for value in values if not is_null(value, value_type)])

    def member(frame):
        a = subject(frame)
        if constants is not None:
            found = np.isin(a, constants)
        else:
            found = np.zeros(frame.size, dtype=bool)
            for part in parts:
                found = found | compare("==", a, part(frame), value_type, frame.size)
        if negated:
            return ~found & ~is_null(a, value_type)
        return found

    return member


def _node_in_range(node: Node) -> BatchFunction:
    has_low, has_high = node.value
    subject = compile_batch(node.children[0])
    bounds = [compile_batch(child) for child in node.children[1:]]
    value_type = node.children[0].value_type
    negated = node.negated

    def in_range(frame):
        a = subject(frame)
        size = frame.size
        checks = []
        if has_low:
            checks.append((bounds[0](frame), a))
        if has_high:
            checks.append((a, bounds[-1](frame)))
        inside = compare("<=", *checks[0], value_type, size)  # null anywhere: false
        for smaller, larger in checks[1:]:
            inside = inside & compare("<=", smaller, larger, value_type, size)
        if not negated:
            return inside
        valid = ~is_null(a, value_type)
        for smaller, larger in checks:
            valid = valid & ~is_null(smaller, value_type) & ~is_null(larger, value_type)
        return valid & ~inside

    return in_range


def _node_is_null(node: Node) -> BatchFunction:
    operand = compile_batch(node.children[0])
    value_type = node.children[0].value_type
    if node.negated:
        return lambda frame: ~is_null(operand(frame), value_type)
    return lambda frame: is_null(operand(frame), value_type)


def _node_call(node: Node) -> BatchFunction:
    return globals()["_call_" + node.value](node)


def _branch_value(value: Any, value_type: ValueType) -> Any:
    if value_type is ValueType.STRING and np.asarray(value).dtype.kind != "O":
        return np.asarray(value, dtype=object)
    return value


def _call_if(node: Node) -> BatchFunction:
    condition, when_true, when_false = (compile_batch(child) for child in node.children)
    value_type = node.value_type

    def choose(frame):
        return np.where(
            truth(condition(frame)),
            _branch_value(when_true(frame), value_type),
            _branch_value(when_false(frame), value_type),
        )

    return choose


def _call_coalesce(node: Node) -> BatchFunction:
    parts = [compile_batch(child) for child in node.children]
    value_type = node.value_type

    def coalesce(frame):
        result = _branch_value(parts[0](frame), value_type)
        for part in parts[1:]:
            result = np.where(
                is_null(result, value_type), _branch_value(part(frame), value_type), result
            )
        return result

    return coalesce


def _extreme(node: Node, pick: Callable) -> BatchFunction:
    parts = [compile_batch(child) for child in node.children]

    def extreme(frame):
        result = parts[0](frame)
        for part in parts[1:]:
            result = pick(result, part(frame))
        return result

    return extreme


def _call_min(node: Node) -> BatchFunction:
    return _extreme(node, np.minimum)


def _call_max(node: Node) -> BatchFunction:
    return _extreme(node, np.maximum)


def _call_abs(node: Node) -> BatchFunction:
    operand = compile_batch(node.children[0])
    return lambda frame: np.abs(operand(frame))


def _call_round(node: Node) -> BatchFunction:
    operand = compile_batch(node.children[0])
    digits = int(node.children[1].value) if len(node.children) == 2 else 0

    def rounded(frame):
        with np.errstate(all="ignore"):
            return np.round(operand(frame), digits)

    return rounded


def _string_map(node: Node, function: Callable, *, to_number: bool) -> BatchFunction:
    operand = compile_batch(node.children[0])
    mapped = np.frompyfunc(function, 1, 1)

    def apply(frame):
        values = full(operand(frame), frame.size)
        valid = ~is_null(values, ValueType.STRING)
        if to_number:
            result = np.full(frame.size, np.nan)
        else:
            result = np.full(frame.size, None, dtype=object)
        result[valid] = mapped(values[valid])
        return result

    return apply


def _call_lower(node: Node) -> BatchFunction:
    return _string_map(node, str.lower, to_number=False)


def _call_upper(node: Node) -> BatchFunction:
    return _string_map(node, str.upper, to_number=False)


def _call_len(node: Node) -> BatchFunction:
    return _string_map(node, len, to_number=True)


def _call_days_between(node: Node) -> BatchFunction:
    first, second = (compile_batch(child) for child in node.children)

    def days_between(frame):
        difference = np.subtract(second(frame), first(frame))
        return np.where(np.isnat(difference), np.nan, difference.astype(np.float64))

    return days_between


def finish(value: Any, value_type: ValueType, size: int) -> np.ndarray:
    """The final column: length ``size``, its own memory, booleans never null."""
    if value_type is ValueType.BOOLEAN:
        value = truth(value)
        dtype: Any = bool
    elif value_type is ValueType.NUMBER:
        dtype = np.float64
    elif value_type is ValueType.DATE:
        dtype = DAY
    else:
        dtype = object
    array = np.asarray(value, dtype=dtype)
    if array.shape == (size,):
        return array
    return np.broadcast_to(array, (size,)).copy()
