"""The safe expression language of the decision engine.

An expression is parsed once, type-checked against the data dictionary when the
strategy loads, and compiled twice: to whole-column numpy operations (batch, one call
for a whole population) and to nested Python closures (one call per customer). Nothing a
user writes is ever given to Python's ``eval``/``exec``/``compile``.

Grammar (lowest to highest precedence)::

    expression := or_expr
    or_expr    := and_expr ("or" and_expr)*
    and_expr   := not_expr ("and" not_expr)*
    not_expr   := "not" not_expr | comparison
    comparison := sum [ ("==" | "!=" | "<" | "<=" | ">" | ">=") sum
                      | ["not"] "in" ( "[" expression ("," expression)* "]"
                                     | [sum] ".." [sum] )          # inclusive range
                      | "is" ["not"] "null" ]                      # never chained
    sum        := product (("+" | "-") product)*
    product    := unary (("*" | "/" | "%") unary)*
    unary      := "-" unary | primary
    primary    := NUMBER | 'text' | "text" | date'YYYY-MM-DD' | true | false | null
                | NAME ("." NAME)*                                  # attribute
                | FUNCTION "(" [expression ("," expression)*] ")"
                | "(" expression ")"

Functions: ``if(condition, a, b)``, ``coalesce(a, b, ...)`` (first non-null),
``min(a, b, ...)`` and ``max(a, b, ...)`` (numbers or dates), ``abs(x)``,
``round(x)`` / ``round(x, n)`` (n a written whole number, -15..15; half to even, as
``numpy.round``), ``lower(s)``, ``upper(s)``, ``len(s)``, ``days_between(d1, d2)``
(``d2 - d1`` in days).

Types: NUMBER, STRING, BOOLEAN, DATE (:class:`ValueType`). Arithmetic is on numbers
only; ``<``-style comparisons and ranges on numbers, strings and dates; ``==``/``!=``
on any two values of one type; ``and``/``or``/``not`` on booleans.

Null semantics (identical in both forms):

* arithmetic, unary minus, ``abs``, ``round``, ``lower``, ``upper``, ``len``, ``min``,
  ``max`` and ``days_between`` with a null operand give null; ``x / 0`` and
  ``x % 0`` give null (never inf, never an exception); a NaN result is null;
* a comparison, ``in`` list or range with a null on either side is false — so
  ``x not in [...]`` and ``x != y`` are false too when ``x`` is null; null items in a
  list are ignored;
* ``and``, ``or``, ``not`` and ``if`` read a null boolean as false (``not null`` is
  true); a BOOLEAN expression's final result is never null: null becomes false;
* ``coalesce`` picks the first non-null argument; ``x is null`` / ``x is not null``
  test for null; ``== null`` is rejected at load with a hint to use ``is null``.

Representation: in batch, numbers are float64 with NaN as null, strings object arrays
with None (NaN is accepted on input), dates datetime64[D] with NaT, booleans bool arrays
(float 1.0/0.0/NaN arrays and object arrays with None are accepted as nullable
booleans). Per record, null is ``None`` (float NaN, NaT and ``pd.NA`` are read as
None), numbers are ``float``, dates ``datetime.date``.

The per-record form is one generated straight-line Python function per expression
(:mod:`.codegen`): its source is assembled only from fixed templates, with every literal
and name passed in as a constant value, so no user text ever reaches ``compile``. The
reference semantics live in :mod:`.record` (a closure per node), which also folds
attribute-free subtrees to constants; property tests check all three forms agree.

In batch, a subtree that reads a single STRING attribute
(``segment in ['gold', 'silver']``, ``lower(channel) == 'sms'``) is evaluated once per
distinct value of that column with the per-record form and spread over the rows with a
numpy take on the column's factorised codes.

Evaluating many expressions over one population? Wrap the columns once with
``prepare_columns(columns, size)`` and pass the result to every ``evaluate_batch``:
column conversions and string factorisation are then shared.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import numpy as np

from cx_pipelines.engine.language.errors import EngineError, EvaluationError, Location
from cx_pipelines.engine.language.expressions.batch import compile_batch, finish
from cx_pipelines.engine.language.expressions.checker import ValueType, attributes_of, check
from cx_pipelines.engine.language.expressions.codegen import compile_fast_record
from cx_pipelines.engine.language.expressions.columns import Frame, PreparedColumns, prepare_columns
from cx_pipelines.engine.language.expressions.syntax import Node, parse

__all__ = [
    "CompiledExpression",
    "PreparedColumns",
    "ValueType",
    "compile_expression",
    "prepare_columns",
]


class CompiledExpression:
    """A parsed, type-checked expression with a batch and a per-record evaluator."""

    __slots__ = (
        "text",
        "result_type",
        "attributes",
        "location",
        "tree",
        "_batch",
        "_record",
        "_copy",
    )

    def __init__(
        self,
        text: str,
        result_type: ValueType,
        attributes: frozenset[str],
        location: Location,
        batch,
        record,
        tree: Node,
        copy_result: bool,
    ) -> None:
        self.text = text
        self.result_type = result_type
        self.attributes = attributes
        self.location = location
        self._batch = batch
        self._record = record
        self.tree = tree  # the typed syntax tree, for tools that want to walk it
        self._copy = copy_result

    def __repr__(self) -> str:
        return f"CompiledExpression({self.text!r}, result_type={self.result_type.name})"

    def evaluate_batch(self, columns: Mapping[str, Any], size: int) -> np.ndarray:
        """Evaluate over a population: ``columns`` maps attribute names to arrays of ``size``."""
        if not isinstance(size, int | np.integer) or size < 0:
            raise EvaluationError(f"size must be a whole number >= 0, not {size!r}")
        try:
            value = self._batch(Frame(columns, int(size)))
        except EngineError as error:
            raise error.at(self.location) from None
        result = finish(value, self.result_type, int(size))
        return result.copy() if self._copy else result

    @property
    def record_function(self):
        """The compiled per-record function itself: no error wording or placement.

        For hot loops that call it directly and, should it raise (``KeyError`` for a
        missing attribute, an unplaced :class:`EngineError`), run ``evaluate_record``
        again to report the error as it would.
        """
        return self._record

    def evaluate_record(self, record: Mapping[str, Any]) -> Any:
        """Evaluate for one record; null is ``None``, a BOOLEAN result is ``True``/``False``."""
        try:
            return self._record(record)
        except KeyError as missing:
            name = missing.args[0] if missing.args else "?"
            raise EvaluationError(
                f"the record has no attribute {name!r} (expression {self.text!r})",
                location=self.location,
                symbol=str(name),
            ) from None
        except EngineError as error:
            raise error.at(self.location) from None


def _place(error: EngineError, text: str, location: Location | None, column: int) -> EngineError:
    """``error`` placed at ``location`` with the column inside the file, quoting the text."""
    base = location or Location()
    start = base.column if base.column is not None else 1
    where = f"at column {start + column}" if location and location.column else ""
    if not where:
        where = f"at character {column + 1}"
    shown = text if isinstance(text, str) else repr(text)
    shown = shown if len(shown) <= 120 else shown[:117] + "..."
    return type(error)(
        f"{error.message} ({where} of expression {shown!r})",
        location=replace(base, column=start + column),
        symbol=error.symbol,
        suggestion=error.suggestion,
    )


def compile_expression(
    text: str,
    *,
    attribute_types: Mapping[str, ValueType],
    location: Location | None = None,
    expected_type: ValueType | None = None,
) -> CompiledExpression:
    """Parse, type-check and compile ``text``; raises only :class:`EngineError` subclasses.

    ``location`` says where the expression was written; an error's column is the
    location's column (or 1) plus the 0-based offset inside ``text``.
    """
    tree, error, column = parse(text)
    if error is not None:
        raise _place(error, text, location, column)
    error, column = check(tree, attribute_types, expected_type)
    if error is not None:
        raise _place(error, text, location, column)
    return CompiledExpression(
        text,
        tree.value_type,
        attributes_of(tree),
        location or Location(),
        compile_batch(tree),
        compile_fast_record(tree),
        tree,
        copy_result=tree.kind == "attribute",
    )
