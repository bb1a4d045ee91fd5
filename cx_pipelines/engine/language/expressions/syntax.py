"""Tokenizer, syntax tree and recursive-descent parser of the expression language.

The parser never executes anything: it turns text into the small tree of
:class:`Node` objects below, or raises :class:`ExpressionSyntaxError` with the column
of the offending character. Nesting is bounded (:data:`MAX_DEPTH`) so hostile input
cannot exhaust the Python stack.
"""

from __future__ import annotations

import datetime as dt
import difflib
import math
import re
from dataclasses import dataclass, field
from typing import Any

from cx_pipelines.engine.language.errors import ExpressionSyntaxError

MAX_DEPTH = 48
MAX_LENGTH = 20_000

KEYWORDS = frozenset({"and", "or", "not", "in", "is", "null", "true", "false"})
FUNCTIONS = frozenset(
    {"if", "min", "max", "abs", "round", "coalesce", "lower", "upper", "len", "days_between"}
)
COMPARISONS = frozenset({"==", "!=", "<", "<=", ">", ">="})

_TOKEN = re.compile(
    r"""
    (?P<space>[ \t\r\n]+)
  | (?P<number>[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?)
  | (?P<date>date(?P<date_quote>['"]))
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)
  | (?P<string>['"])
  | (?P<operator>\.\.|==|!=|<=|>=|<|>|\+|-|\*|/|%|\(|\)|\[|\]|,)
    """,
    re.VERBOSE,
)
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


@dataclass(frozen=True)
class Token:
    kind: str  # number, string, date, name, keyword, operator, end
    text: str
    value: Any
    column: int  # 0-based offset in the expression text


@dataclass(eq=False)
class Node:
    """One node of the syntax tree.

    ``kind`` is one of: literal, attribute, negate, not, logical (op ``and``/``or``,
    n-ary), arithmetic, compare, in_list, in_range, is_null, call. ``value`` holds the
    literal value, attribute name, operator or function name; ``negated`` marks
    ``not in`` and ``is not null``. The type checker fills ``value_type`` and ``nullable``.
    """

    kind: str
    column: int
    value: Any = None
    children: list[Node] = field(default_factory=list)
    negated: bool = False
    value_type: Any = None
    nullable: bool = False
    depth: int = 1


class _SyntaxFailure(Exception):
    """Internal carrier of a syntax error and its 0-based column."""

    def __init__(self, error: ExpressionSyntaxError, column: int) -> None:
        super().__init__(error.message)
        self.error = error
        self.column = column


def _fail(message: str, column: int, *, symbol: str | None = None, suggestion=None):
    raise _SyntaxFailure(
        ExpressionSyntaxError(message, symbol=symbol, suggestion=suggestion), column
    )


def _read_string(text: str, start: int, quote: str) -> tuple[str, int]:
    """Read a quoted string whose opening quote is at ``start``; backslash escapes a char."""
    chars = []
    position = start + 1
    while position < len(text):
        char = text[position]
        if char == "\\":
            if position + 1 >= len(text):
                break
            chars.append(text[position + 1])
            position += 2
            continue
        if char == quote:
            return "".join(chars), position + 1
        chars.append(char)
        position += 1
    _fail(f"string starting here is never closed (missing {quote})", start)
    raise AssertionError  # unreachable


def tokenize(text: str) -> list[Token]:
    """Split ``text`` into tokens, ending with an ``end`` token."""
    tokens: list[Token] = []
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            char = text[position]
            hint = " (use '==' to compare)" if char == "=" else ""
            if char == "!" or char == "&" or char == "|":
                hint = " (use 'not', 'and', 'or')"
            _fail(f"unexpected character {char!r}{hint}", position, symbol=char)
        kind = match.lastgroup
        if kind == "date_quote":
            kind = "date"
        start = position
        if kind == "space":
            position = match.end()
            continue
        if kind == "number":
            literal = match.group()
            number = float(literal)
            if not math.isfinite(number):
                _fail(f"number {literal} is too large", start, symbol=literal)
            tokens.append(Token("number", literal, number, start))
            position = match.end()
        elif kind == "string":
            value, position = _read_string(text, start, match.group())
            tokens.append(Token("string", text[start:position], value, start))
        elif kind == "date":
            value, position = _read_string(text, start + 4, match.group("date_quote"))
            try:
                if not _DATE.fullmatch(value):
                    raise ValueError(value)
                day = dt.date.fromisoformat(value)
            except ValueError:
                _fail(
                    f"date literal {value!r} is not a date in YYYY-MM-DD form",
                    start,
                    symbol=value,
                )
            tokens.append(Token("date", text[start:position], day, start))
        elif kind == "name":
            word = match.group()
            kind = "keyword" if word in KEYWORDS else "name"
            tokens.append(Token(kind, word, word, start))
            position = match.end()
        else:
            tokens.append(Token("operator", match.group(), match.group(), start))
            position = match.end()
    tokens.append(Token("end", "", None, len(text)))
    return tokens


def _make(kind: str, column: int, value: Any = None, children=(), negated=False) -> Node:
    children = list(children)
    depth = 1 + max((child.depth for child in children), default=0)
    if depth > MAX_DEPTH:
        _fail(f"expression nests more than {MAX_DEPTH} levels deep; simplify it", column)
    return Node(kind, column, value, children, negated, depth=depth)


class _Parser:
    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.index = 0
        self.nesting = 0

    @property
    def current(self) -> Token:
        return self.tokens[self.index]

    def advance(self) -> Token:
        token = self.tokens[self.index]
        if token.kind != "end":
            self.index += 1
        return token

    def at(self, kind: str, text: str | None = None) -> bool:
        token = self.current
        return token.kind == kind and (text is None or token.text == text)

    def expect(self, kind: str, text: str, context: str) -> Token:
        if not self.at(kind, text):
            self.unexpected(f"expected '{text}' {context}")
        return self.advance()

    def unexpected(self, expectation: str):
        token = self.current
        if token.kind == "end":
            _fail(f"expression ends too early: {expectation}", token.column)
        _fail(f"unexpected {token.text!r}: {expectation}", token.column, symbol=token.text)

    def enter(self, column: int) -> None:
        self.nesting += 1
        if self.nesting > MAX_DEPTH:
            _fail(f"expression nests more than {MAX_DEPTH} levels deep; simplify it", column)

    def leave(self) -> None:
        self.nesting -= 1

    # expression := or_expr
    def parse(self) -> Node:
        if self.at("end"):
            _fail("expression is empty", 0)
        node = self.expression()
        if not self.at("end"):
            self.unexpected("expected an operator or the end of the expression")
        return node

    def expression(self) -> Node:
        self.enter(self.current.column)
        try:
            return self.logical("or", self.and_expression)
        finally:
            self.leave()

    def and_expression(self) -> Node:
        return self.logical("and", self.not_expression)

    def logical(self, word: str, operand) -> Node:
        first = operand()
        if not self.at("keyword", word):
            return first
        column = self.current.column
        items = [first]
        while self.at("keyword", word):
            self.advance()
            items.append(operand())
        return _make("logical", column, word, items)

    def not_expression(self) -> Node:
        if self.at("keyword", "not"):
            token = self.advance()
            self.enter(token.column)
            try:
                return _make("not", token.column, "not", [self.not_expression()])
            finally:
                self.leave()
        return self.comparison()

    def comparison(self) -> Node:
        left = self.additive()
        token = self.current
        if token.kind == "operator" and token.text in COMPARISONS:
            self.advance()
            right = self.additive()
            node = _make("compare", token.column, token.text, [left, right])
        elif token.kind == "keyword" and token.text == "in":
            self.advance()
            node = self.membership(left, token.column, negated=False)
        elif token.kind == "keyword" and token.text == "not" and self._next_is("in"):
            self.advance()
            self.advance()
            node = self.membership(left, token.column, negated=True)
        elif token.kind == "keyword" and token.text == "is":
            self.advance()
            negated = False
            if self.at("keyword", "not"):
                self.advance()
                negated = True
            if not self.at("keyword", "null"):
                self.unexpected("expected 'null' after 'is' (write 'x is null' or 'x is not null')")
            self.advance()
            node = _make("is_null", token.column, "is", [left], negated)
        else:
            return left
        following = self.current
        if (
            following.kind == "operator"
            and following.text in COMPARISONS
            or (following.kind == "keyword" and following.text in ("in", "is"))
        ):
            _fail(
                "comparisons cannot be chained; join them with 'and'",
                following.column,
                symbol=following.text,
            )
        return node

    def _next_is(self, word: str) -> bool:
        following = self.tokens[min(self.index + 1, len(self.tokens) - 1)]
        return following.kind == "keyword" and following.text == word

    def membership(self, subject: Node, column: int, *, negated: bool) -> Node:
        if self.at("operator", "["):
            opening = self.advance()
            items: list[Node] = []
            if self.at("operator", "]"):
                _fail("the list after 'in' is empty", opening.column)
            while True:
                items.append(self.expression())
                if self.at("operator", ","):
                    self.advance()
                    continue
                self.expect("operator", "]", "to close the list")
                break
            return _make("in_list", column, "in", [subject, *items], negated)
        low: Node | None = None
        if not self.at("operator", ".."):
            if not self._starts_operand():
                self.unexpected("expected a list [a, b] or a range a..b after 'in'")
            low = self.additive()
            if not self.at("operator", ".."):
                self.unexpected("expected '..' of a range (or write a list [a, b])")
        dots = self.advance()
        high: Node | None = self.additive() if self._starts_operand() else None
        if low is None and high is None:
            _fail("a range needs at least one bound (e.g. 1..5, ..5 or 5..)", dots.column)
        bounds = [bound for bound in (low, high) if bound is not None]
        node = _make("in_range", column, (low is not None, high is not None), [subject, *bounds])
        node.negated = negated
        return node

    def _starts_operand(self) -> bool:
        token = self.current
        if token.kind in ("number", "string", "date", "name"):
            return True
        if token.kind == "keyword":
            return token.text in ("null", "true", "false")
        return token.kind == "operator" and token.text in ("(", "-")

    def additive(self) -> Node:
        node = self.multiplicative()
        while self.current.kind == "operator" and self.current.text in ("+", "-"):
            token = self.advance()
            node = _make("arithmetic", token.column, token.text, [node, self.multiplicative()])
        return node

    def multiplicative(self) -> Node:
        node = self.unary()
        while self.current.kind == "operator" and self.current.text in ("*", "/", "%"):
            token = self.advance()
            node = _make("arithmetic", token.column, token.text, [node, self.unary()])
        return node

    def unary(self) -> Node:
        if self.at("operator", "-"):
            token = self.advance()
            self.enter(token.column)
            try:
                operand = self.unary()
            finally:
                self.leave()
            if operand.kind == "literal" and isinstance(operand.value, float):
                return _make("literal", token.column, -operand.value)
            return _make("negate", token.column, "-", [operand])
        return self.primary()

    def primary(self) -> Node:
        token = self.current
        if token.kind in ("number", "string", "date"):
            self.advance()
            return _make("literal", token.column, token.value)
        if token.kind == "keyword" and token.text in ("true", "false", "null"):
            self.advance()
            value = {"true": True, "false": False, "null": None}[token.text]
            return _make("literal", token.column, value)
        if token.kind == "name":
            self.advance()
            if self.at("operator", "("):
                return self.call(token)
            return _make("attribute", token.column, token.text)
        if token.kind == "operator" and token.text == "(":
            self.advance()
            node = self.expression()
            self.expect("operator", ")", "to close the parenthesis")
            return node
        self.unexpected("expected a value, an attribute, a function call or '('")
        raise AssertionError  # unreachable

    def call(self, name: Token) -> Node:
        if name.text not in FUNCTIONS:
            close = difflib.get_close_matches(name.text, sorted(FUNCTIONS), n=1)
            _fail(
                f"unknown function {name.text!r}; functions are {', '.join(sorted(FUNCTIONS))}",
                name.column,
                symbol=name.text,
                suggestion=close[0] if close else None,
            )
        self.advance()  # (
        arguments: list[Node] = []
        if not self.at("operator", ")"):
            while True:
                arguments.append(self.expression())
                if self.at("operator", ","):
                    self.advance()
                    continue
                break
        self.expect("operator", ")", f"to close the call of {name.text}()")
        return _make("call", name.column, name.text, arguments)


def parse(text: str) -> tuple[Node | None, ExpressionSyntaxError | None, int]:
    """Parse ``text``; returns ``(tree, None, 0)`` or ``(None, error, column)``."""
    if not isinstance(text, str):
        return (
            None,
            ExpressionSyntaxError(f"an expression must be text, not {type(text).__name__}"),
            0,
        )
    if len(text) > MAX_LENGTH:
        return (
            None,
            ExpressionSyntaxError(
                f"expression is {len(text)} characters long; the limit is {MAX_LENGTH}"
            ),
            0,
        )
    try:
        return _Parser(tokenize(text)).parse(), None, 0
    except _SyntaxFailure as failure:
        return None, failure.error, failure.column
