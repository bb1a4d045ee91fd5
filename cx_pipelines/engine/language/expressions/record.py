"""Reference per-record semantics: a typed syntax tree compiled to nested Python closures.

Each node becomes one small closure that takes the record and returns a Python value
(``float``, ``str``, ``bool``, ``datetime.date``) or ``None`` for null. This form is the
readable definition of what every operator means; it folds attribute-free subtrees to
constants, evaluates string subtrees once per distinct value for the batch form, and is
the oracle the generated fast form (:mod:`.codegen`) and the batch form are tested
against. It also holds the value readers both per-record forms share.
"""

from __future__ import annotations

import datetime as dt
import math
import numbers
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from cx_pipelines.engine.language.errors import EvaluationError
from cx_pipelines.engine.language.expressions.checker import ValueType
from cx_pipelines.engine.language.expressions.syntax import Node

RecordFunction = Callable[[Mapping[str, Any]], Any]


# ---------------------------------------------------------------- reading values
def _is_missing(value: Any) -> bool:
    """True for the many spellings of null a record may carry (None, NaN, NaT, pd.NA)."""
    if value is None:
        return True
    if type(value).__name__ in ("NAType", "NaTType"):
        return True
    try:
        return bool(value != value)
    except (TypeError, ValueError):
        return False


def _bad_value(name: str, value: Any, value_type: ValueType) -> EvaluationError:
    return EvaluationError(
        f"attribute {name!r} should hold a {value_type.name} but holds "
        f"{value!r} ({type(value).__name__})",
        symbol=name,
    )


def to_number(value: Any, name: str = "value") -> float | None:
    """A record value as ``float`` (``None`` for null)."""
    if type(value) is float:
        return value if value == value else None
    if _is_missing(value):
        return None
    if isinstance(value, numbers.Real | np.bool_):
        return float(value)
    raise _bad_value(name, value, ValueType.NUMBER)


def to_string(value: Any, name: str = "value") -> str | None:
    """A record value as ``str`` (``None`` for null)."""
    if type(value) is str:
        return value
    if _is_missing(value):
        return None
    if isinstance(value, str):
        return str(value)
    raise _bad_value(name, value, ValueType.STRING)


def to_boolean(value: Any, name: str = "value") -> bool | None:
    """A record value as ``bool`` (``None`` for null)."""
    if value is True or value is False:
        return value
    if _is_missing(value):
        return None
    if isinstance(value, numbers.Real | np.bool_):
        return bool(value)
    raise _bad_value(name, value, ValueType.BOOLEAN)


def to_date(value: Any, name: str = "value") -> dt.date | None:
    """A record value as ``datetime.date`` (``None`` for null); datetimes are floored."""
    if type(value) is dt.date:
        return value
    if _is_missing(value):
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return dt.date(value.year, value.month, value.day)
    if isinstance(value, np.datetime64):
        return value.astype("datetime64[D]").item()
    raise _bad_value(name, value, ValueType.DATE)


READERS = {
    ValueType.NUMBER: to_number,
    ValueType.STRING: to_string,
    ValueType.BOOLEAN: to_boolean,
    ValueType.DATE: to_date,
}


# ---------------------------------------------------------------- scalar semantics
def round_half_even(value: float, digits: int) -> float:
    """``numpy.round`` for one float: scale by 10**digits, round half to even, scale back."""
    # copysign: Python's round() of -0.4 is the integer 0, numpy's is -0.0
    if digits >= 0:
        factor = 10.0**digits
        scaled = value * factor
        if math.isfinite(scaled):
            scaled = math.copysign(float(round(scaled)), scaled)
        return scaled / factor
    factor = 10.0**-digits
    scaled = value / factor
    if math.isfinite(scaled):
        scaled = math.copysign(float(round(scaled)), scaled)
    return scaled * factor


def _number_result(value: float) -> float | None:
    return value if value == value else None


def _add(a: float, b: float) -> float | None:
    return _number_result(a + b)


def _subtract(a: float, b: float) -> float | None:
    return _number_result(a - b)


def _multiply(a: float, b: float) -> float | None:
    return _number_result(a * b)


def _divide(a: float, b: float) -> float | None:
    return None if b == 0.0 else _number_result(a / b)


def _remainder(a: float, b: float) -> float | None:
    return None if b == 0.0 else _number_result(a % b)


ARITHMETIC = {"+": _add, "-": _subtract, "*": _multiply, "/": _divide, "%": _remainder}


def _constant(value: Any) -> RecordFunction:
    return lambda record: value


def is_constant(node: Node) -> bool:
    """True when no attribute occurs under ``node``."""
    return node.kind != "attribute" and all(is_constant(child) for child in node.children)


def constant_value(node: Node) -> Any:
    """The value of an attribute-free subtree (Python form, ``None`` for null)."""
    return _compile(node)({})


# ---------------------------------------------------------------- compilation
def compile_record(node: Node) -> RecordFunction:
    """Compile a typed tree to a function of one record."""
    if node.kind != "literal" and is_constant(node):
        return _constant(constant_value(node))
    return _compile(node)


def _compile(node: Node) -> RecordFunction:
    return globals()["_node_" + node.kind](node)


def _sub(node: Node) -> RecordFunction:
    return compile_record(node)


def _node_literal(node: Node) -> RecordFunction:
    return _constant(node.value)


def _node_attribute(node: Node) -> RecordFunction:
    name = node.value
    reader = READERS[node.value_type]
    if node.value_type is ValueType.NUMBER:

        def read_number(record):
            value = record[name]
            if type(value) is float:
                return value if value == value else None
            return to_number(value, name)

        return read_number
    if node.value_type is ValueType.STRING:

        def read_string(record):
            value = record[name]
            return value if type(value) is str else to_string(value, name)

        return read_string
    return lambda record: reader(record[name], name)


def _node_negate(node: Node) -> RecordFunction:
    operand = _sub(node.children[0])

    def negate(record):
        value = operand(record)
        return None if value is None else -value

    return negate


def _node_not(node: Node) -> RecordFunction:
    operand = _sub(node.children[0])
    return lambda record: operand(record) is not True


def _node_logical(node: Node) -> RecordFunction:
    parts = [_sub(child) for child in node.children]
    if node.value == "and":
        if len(parts) == 2:
            first, second = parts
            return lambda record: first(record) is True and second(record) is True
        return lambda record: all(part(record) is True for part in parts)
    if len(parts) == 2:
        first, second = parts
        return lambda record: first(record) is True or second(record) is True
    return lambda record: any(part(record) is True for part in parts)


def _node_arithmetic(node: Node) -> RecordFunction:
    left, right = (_sub(child) for child in node.children)
    operation = ARITHMETIC[node.value]

    def arithmetic(record):
        a = left(record)
        if a is None:
            return None
        b = right(record)
        if b is None:
            return None
        return operation(a, b)

    return arithmetic


_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


def _node_compare(node: Node) -> RecordFunction:
    left_node, right_node = node.children
    left = _sub(left_node)
    test = _COMPARE[node.value]
    if is_constant(right_node):
        constant = constant_value(right_node)
        if constant is None:
            return _constant(False)
        operator = node.value
        if operator == ">":
            return lambda record: (a := left(record)) is not None and a > constant
        if operator == "<":
            return lambda record: (a := left(record)) is not None and a < constant
        if operator == ">=":
            return lambda record: (a := left(record)) is not None and a >= constant
        if operator == "<=":
            return lambda record: (a := left(record)) is not None and a <= constant
        if operator == "==":
            return lambda record: left(record) == constant
        return lambda record: (a := left(record)) is not None and a != constant
    right = _sub(right_node)

    def compare(record):
        a = left(record)
        if a is None:
            return False
        b = right(record)
        return b is not None and test(a, b)

    return compare


def _node_in_list(node: Node) -> RecordFunction:
    subject = _sub(node.children[0])
    items = node.children[1:]
    negated = node.negated
    if all(is_constant(item) for item in items):
        values = frozenset(constant_value(item) for item in items) - {None}
        if negated:
            return lambda record: (a := subject(record)) is not None and a not in values
        return lambda record: subject(record) in values
    parts = [_sub(item) for item in items]

    def member(record):
        a = subject(record)
        if a is None:
            return False
        found = False
        for part in parts:
            b = part(record)
            if b is not None and a == b:
                found = True
                break
        return found is not negated

    return member


def _node_in_range(node: Node) -> RecordFunction:
    has_low, has_high = node.value
    subject = _sub(node.children[0])
    bounds = [_sub(child) for child in node.children[1:]]
    low = bounds[0] if has_low else None
    high = bounds[-1] if has_high else None
    negated = node.negated

    def in_range(record):
        a = subject(record)
        if a is None:
            return False
        inside = True
        if low is not None:
            bound = low(record)
            if bound is None:
                return False
            inside = bound <= a
        if high is not None:
            bound = high(record)
            if bound is None:
                return False
            inside = inside and a <= bound
        return inside is not negated

    return in_range


def _node_is_null(node: Node) -> RecordFunction:
    operand = _sub(node.children[0])
    if node.negated:
        return lambda record: operand(record) is not None
    return lambda record: operand(record) is None


def _node_call(node: Node) -> RecordFunction:
    return globals()["_call_" + node.value](node)


def _call_if(node: Node) -> RecordFunction:
    condition, when_true, when_false = (_sub(child) for child in node.children)
    return lambda record: when_true(record) if condition(record) is True else when_false(record)


def _call_coalesce(node: Node) -> RecordFunction:
    parts = [_sub(child) for child in node.children]

    def coalesce(record):
        for part in parts:
            value = part(record)
            if value is not None:
                return value
        return None

    return coalesce


def _extreme(node: Node, pick: Callable) -> RecordFunction:
    parts = [_sub(child) for child in node.children]

    def extreme(record):
        values = [part(record) for part in parts]
        if None in values:
            return None
        return pick(values)

    return extreme


def _call_min(node: Node) -> RecordFunction:
    return _extreme(node, min)


def _call_max(node: Node) -> RecordFunction:
    return _extreme(node, max)


def _unary(node: Node, function: Callable) -> RecordFunction:
    operand = _sub(node.children[0])

    def apply(record):
        value = operand(record)
        return None if value is None else function(value)

    return apply


def _call_abs(node: Node) -> RecordFunction:
    return _unary(node, abs)


def _call_round(node: Node) -> RecordFunction:
    digits = int(node.children[1].value) if len(node.children) == 2 else 0
    return _unary(node, lambda value: round_half_even(value, digits))


def _call_lower(node: Node) -> RecordFunction:
    return _unary(node, str.lower)


def _call_upper(node: Node) -> RecordFunction:
    return _unary(node, str.upper)


def _call_len(node: Node) -> RecordFunction:
    return _unary(node, lambda value: float(len(value)))


def _call_days_between(node: Node) -> RecordFunction:
    first, second = (_sub(child) for child in node.children)

    def days_between(record):
        start = first(record)
        if start is None:
            return None
        end = second(record)
        return None if end is None else float((end - start).days)

    return days_between
