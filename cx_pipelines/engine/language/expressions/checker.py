"""Type checker: gives every node a :class:`ValueType` and a nullability, or says why not.

Runs once, when the expression is compiled (i.e. when the strategy loads), against the
data dictionary's attribute types. After it, both evaluators can trust the tree.
"""

from __future__ import annotations

import difflib
import enum
from collections.abc import Mapping

from cx_pipelines.engine.language.errors import (
    EngineError,
    ExpressionTypeError,
    UnknownAttributeError,
)
from cx_pipelines.engine.language.expressions.syntax import KEYWORDS, Node


class ValueType(enum.Enum):
    """The four value types of the language."""

    NUMBER = "number"
    STRING = "string"
    BOOLEAN = "boolean"
    DATE = "date"


ORDERED = (ValueType.NUMBER, ValueType.STRING, ValueType.DATE)
MAX_ROUND_DIGITS = 15


class _TypeFailure(Exception):
    """Internal carrier of an error and its 0-based column."""

    def __init__(self, error: EngineError, column: int) -> None:
        super().__init__(error.message)
        self.error = error
        self.column = column


def _fail(message: str, node: Node, *, symbol: str | None = None) -> None:
    raise _TypeFailure(ExpressionTypeError(message, symbol=symbol), node.column)


def _name(value_type: ValueType | None) -> str:
    return "null" if value_type is None else value_type.name


def settle(node: Node, value_type: ValueType) -> None:
    """Give a still untyped (null-valued) node and its null-valued branches a type."""
    if node.value_type is not None:
        return
    node.value_type = value_type
    if node.kind == "call" and node.value in ("if", "coalesce"):
        branches = node.children[1:] if node.value == "if" else node.children
        for branch in branches:
            settle(branch, value_type)


def _unify(nodes: list[Node], where: str, anchor: Node) -> ValueType | None:
    """The one type shared by ``nodes`` (null literals adopt it), or a type error."""
    known = {node.value_type for node in nodes if node.value_type is not None}
    if len(known) > 1:
        names = " and ".join(sorted(value_type.name for value_type in known))
        _fail(f"{where} mixes {names} values; they must all have one type", anchor)
    if not known:
        return None
    (value_type,) = known
    for node in nodes:
        settle(node, value_type)
    return value_type


class _Checker:
    def __init__(self, attribute_types: Mapping[str, ValueType]) -> None:
        self.attribute_types = attribute_types

    def check(self, node: Node) -> None:
        for child in node.children:
            self.check(child)
        getattr(self, "_" + node.kind)(node)

    def _literal(self, node: Node) -> None:
        value = node.value
        if value is None:
            node.value_type, node.nullable = None, True
        elif isinstance(value, bool):
            node.value_type = ValueType.BOOLEAN
        elif isinstance(value, float):
            node.value_type = ValueType.NUMBER
        elif isinstance(value, str):
            node.value_type = ValueType.STRING
        else:
            node.value_type = ValueType.DATE

    def _attribute(self, node: Node) -> None:
        name = node.value
        value_type = self.attribute_types.get(name)
        if value_type is None:
            close = difflib.get_close_matches(name, list(self.attribute_types), n=1, cutoff=0.6)
            spelled = {"none": "null", "nan": "null"}.get(name.lower(), name.lower())
            if spelled in KEYWORDS:  # True, NULL, AND, None: the language's own words
                close = [spelled]
            raise _TypeFailure(
                UnknownAttributeError(
                    f"unknown attribute {name!r}; the data dictionary does not declare it",
                    symbol=name,
                    suggestion=close[0] if close else None,
                ),
                node.column,
            )
        if not isinstance(value_type, ValueType):
            raise _TypeFailure(
                ExpressionTypeError(
                    f"attribute {name!r} has type {value_type!r}, which is not a ValueType",
                    symbol=name,
                ),
                node.column,
            )
        node.value_type, node.nullable = value_type, True

    def _expect(self, node: Node, value_type: ValueType, what: str) -> None:
        settle(node, value_type)
        if node.value_type is not value_type:
            _fail(f"{what} needs a {value_type.name}, not {_name(node.value_type)}", node)

    def _negate(self, node: Node) -> None:
        (operand,) = node.children
        self._expect(operand, ValueType.NUMBER, "unary '-'")
        node.value_type, node.nullable = ValueType.NUMBER, operand.nullable

    def _not(self, node: Node) -> None:
        self._expect(node.children[0], ValueType.BOOLEAN, "'not'")
        node.value_type = ValueType.BOOLEAN

    def _logical(self, node: Node) -> None:
        for child in node.children:
            self._expect(child, ValueType.BOOLEAN, f"'{node.value}'")
        node.value_type = ValueType.BOOLEAN

    def _arithmetic(self, node: Node) -> None:
        left, right = node.children
        for operand in (left, right):
            settle(operand, ValueType.NUMBER)
        if left.value_type is not ValueType.NUMBER or right.value_type is not ValueType.NUMBER:
            hint = ""
            if ValueType.DATE in (left.value_type, right.value_type):
                hint = "; use days_between(d1, d2) for the days between two dates"
            _fail(
                f"operator '{node.value}' needs NUMBER operands, "
                f"not {_name(left.value_type)} and {_name(right.value_type)}{hint}",
                node,
                symbol=node.value,
            )
        node.value_type = ValueType.NUMBER
        node.nullable = left.nullable or right.nullable or node.value in ("/", "%")

    def _compare(self, node: Node) -> None:
        left, right = node.children
        operator = node.value
        if left.value_type is None or right.value_type is None:
            hint = "is not null" if operator == "!=" else "is null"
            _fail(
                f"operator '{operator}' with null is never true; write 'x {hint}'",
                node,
                symbol=operator,
            )
        if left.value_type is not right.value_type:
            _fail(
                f"operator '{operator}' cannot compare {left.value_type.name} "
                f"with {right.value_type.name}",
                node,
                symbol=operator,
            )
        if operator not in ("==", "!=") and left.value_type not in ORDERED:
            _fail(
                f"operator '{operator}' needs NUMBER, STRING or DATE operands, "
                f"not {left.value_type.name}",
                node,
                symbol=operator,
            )
        node.value_type = ValueType.BOOLEAN

    def _in_list(self, node: Node) -> None:
        subject, *items = node.children
        for item in items:
            if item.kind == "literal" and item.value is None:
                _fail("a list after 'in' cannot hold null; test 'x is null' instead", item)
        value_type = _unify(node.children, "'in' list", node)
        if value_type is None:
            _fail("'in' needs a typed value on its left, not null", subject)
        node.value_type = ValueType.BOOLEAN

    def _in_range(self, node: Node) -> None:
        value_type = _unify(node.children, "range", node)
        if value_type is None:
            _fail("a range needs typed bounds, not null", node)
        if value_type not in ORDERED:
            _fail(f"a range needs NUMBER, STRING or DATE values, not {value_type.name}", node)
        node.value_type = ValueType.BOOLEAN

    def _is_null(self, node: Node) -> None:
        settle(node.children[0], ValueType.NUMBER)
        node.value_type = ValueType.BOOLEAN

    def _call(self, node: Node) -> None:
        getattr(self, "_call_" + node.value)(node)

    def _arity(self, node: Node, low: int, high: int | None = None) -> None:
        count = len(node.children)
        high = low if high is None else high
        if not low <= count <= high:
            wanted = str(low) if low == high else f"{low} to {high}"
            if high > 99:
                wanted = f"at least {low}"
            _fail(f"{node.value}() takes {wanted} arguments, got {count}", node, symbol=node.value)

    def _call_if(self, node: Node) -> None:
        self._arity(node, 3)
        condition, when_true, when_false = node.children
        self._expect(condition, ValueType.BOOLEAN, "the condition of if()")
        node.value_type = _unify([when_true, when_false], "if()", node)
        node.nullable = when_true.nullable or when_false.nullable

    def _call_coalesce(self, node: Node) -> None:
        self._arity(node, 2, 1000)
        node.value_type = _unify(node.children, "coalesce()", node)
        node.nullable = all(child.nullable for child in node.children)

    def _min_max(self, node: Node) -> None:
        self._arity(node, 2, 1000)
        value_type = _unify(node.children, f"{node.value}()", node) or ValueType.NUMBER
        for child in node.children:
            settle(child, value_type)
        if value_type not in (ValueType.NUMBER, ValueType.DATE):
            _fail(f"{node.value}() needs NUMBER or DATE values, not {value_type.name}", node)
        node.value_type = value_type
        node.nullable = any(child.nullable for child in node.children)

    _call_min = _min_max
    _call_max = _min_max

    def _call_abs(self, node: Node) -> None:
        self._arity(node, 1)
        self._expect(node.children[0], ValueType.NUMBER, "abs()")
        node.value_type, node.nullable = ValueType.NUMBER, node.children[0].nullable

    def _call_round(self, node: Node) -> None:
        self._arity(node, 1, 2)
        self._expect(node.children[0], ValueType.NUMBER, "round()")
        if len(node.children) == 2:
            digits = node.children[1]
            value = digits.value if digits.kind == "literal" else None
            if not isinstance(value, float) or value != int(value) or abs(value) > MAX_ROUND_DIGITS:
                _fail(
                    "round(x, n) needs n to be a whole number written out, "
                    f"from -{MAX_ROUND_DIGITS} to {MAX_ROUND_DIGITS}",
                    digits,
                )
        node.value_type, node.nullable = ValueType.NUMBER, node.children[0].nullable

    def _string_function(self, node: Node) -> None:
        self._arity(node, 1)
        self._expect(node.children[0], ValueType.STRING, f"{node.value}()")
        result = ValueType.NUMBER if node.value == "len" else ValueType.STRING
        node.value_type, node.nullable = result, node.children[0].nullable

    _call_lower = _string_function
    _call_upper = _string_function
    _call_len = _string_function

    def _call_days_between(self, node: Node) -> None:
        self._arity(node, 2)
        for child in node.children:
            self._expect(child, ValueType.DATE, "days_between()")
        node.value_type = ValueType.NUMBER
        node.nullable = any(child.nullable for child in node.children)


def check(
    tree: Node,
    attribute_types: Mapping[str, ValueType],
    expected_type: ValueType | None,
) -> tuple[EngineError | None, int]:
    """Type ``tree`` in place; returns ``(None, 0)`` or ``(error, column)``."""
    try:
        _Checker(attribute_types).check(tree)
        if tree.value_type is None:
            if expected_type is None:
                _fail("the expression is always null, so its type is unknown", tree)
            settle(tree, expected_type)
        if expected_type is not None and tree.value_type is not expected_type:
            _fail(
                f"the expression gives a {tree.value_type.name} value, "
                f"but a {expected_type.name} is expected here",
                tree,
            )
    except _TypeFailure as failure:
        return failure.error, failure.column
    return None, 0


def attributes_of(tree: Node) -> frozenset[str]:
    """Names of the attributes an expression reads."""
    names: set[str] = set()
    stack = [tree]
    while stack:
        node = stack.pop()
        if node.kind == "attribute":
            names.add(node.value)
        stack.extend(node.children)
    return frozenset(names)
