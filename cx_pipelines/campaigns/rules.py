"""The eligibility rule of a campaign: a small declarative form, parsed and type-checked
when the campaign loads, evaluated vectorised over the population. Never ``eval``.

A rule is one node::

    {all: [node, ...]}            every node holds (an empty list holds for everyone)
    {any: [node, ...]}            at least one node holds
    {not: node}                   the node does not hold
    {attribute: NAME, OP: VALUE}  a condition on one population attribute

with ``OP`` one of ``equals``, ``not_equals``, ``in``, ``not_in`` (a list), ``at_least``
(>=), ``at_most`` (<=), ``above`` (>), ``below`` (<) — the last four on numbers only —
or ``is_null: true | false``. Null semantics are the strategy language's: a comparison
with a null attribute is false (so ``not_equals`` and ``not_in`` are false too), and
``is_null`` tests for it. The attributes a rule may read are :data:`ATTRIBUTES`.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from cx_pipelines.source_schema import PRODUCT_TYPES

NUMBER, STRING = "number", "string"

ATTRIBUTES: dict[str, str] = {
    "customer_type": STRING,
    "region": STRING,
    "segment": STRING,  # customer_segments, when materialised
    "age": NUMBER,
    "annual_income": NUMBER,
    "tenure_days": NUMBER,
    **{f"holds_{product}": NUMBER for product in PRODUCT_TYPES},
    "holds_products": NUMBER,
    "delinquent": NUMBER,
    "purchases_total": NUMBER,
    "purchases_90d": NUMBER,
    "purchases_365d": NUMBER,
    "spend_total": NUMBER,
    "spend_90d": NUMBER,
    "spend_mean": NUMBER,
    "days_since_last_purchase": NUMBER,
    "attrition_risk": NUMBER,  # customer_scores
    "probability_alive": NUMBER,
    "clv": NUMBER,
}
"""Population attributes a campaign's eligibility rule may read, with their types (built
by :func:`cx_pipelines.campaigns.population.population_attributes`)."""

COMPARISONS: dict[str, Callable[[np.ndarray, object], np.ndarray]] = {
    "equals": lambda column, value: column == value,
    "not_equals": lambda column, value: column != value,
    "at_least": lambda column, value: column >= value,
    "at_most": lambda column, value: column <= value,
    "above": lambda column, value: column > value,
    "below": lambda column, value: column < value,
}
NUMERIC_ONLY = {"at_least", "at_most", "above", "below"}
OPERATORS = (*COMPARISONS, "in", "not_in", "is_null")


class RuleError(ValueError):
    """A rule is malformed; ``path`` says where inside the rule (for the file's line)."""

    def __init__(self, message: str, path: tuple[object, ...] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.path = path


@dataclass(frozen=True)
class Rule:
    """A parsed rule: ``kind`` is all | any | not | condition."""

    kind: str
    children: tuple[Rule, ...] = ()
    attribute: str | None = None
    operator: str | None = None
    value: object = None

    @property
    def attributes(self) -> frozenset[str]:
        own = {self.attribute} if self.attribute else set()
        return frozenset(own.union(*(child.attributes for child in self.children)))

    def describe(self) -> str:
        """The rule as one line of text, for reason traces."""
        if self.kind == "condition":
            return f"{self.attribute} {self.operator} {self.value!r}"
        if self.kind == "not":
            return f"not ({self.children[0].describe()})"
        joined = f" {self.kind} ".join(f"({child.describe()})" for child in self.children)
        return joined or ("everyone" if self.kind == "all" else "no one")

    def evaluate(self, population: pd.DataFrame) -> np.ndarray:
        """Boolean array: which rows of ``population`` satisfy the rule (null reads false)."""
        size = len(population)
        if self.kind == "all":
            result = np.ones(size, dtype=bool)
            for child in self.children:
                result &= child.evaluate(population)
            return result
        if self.kind == "any":
            result = np.zeros(size, dtype=bool)
            for child in self.children:
                result |= child.evaluate(population)
            return result
        if self.kind == "not":
            return ~self.children[0].evaluate(population)
        column = population[self.attribute]
        missing = column.isna().to_numpy()
        if self.operator == "is_null":
            return missing if self.value else ~missing
        values = column.to_numpy(dtype=float if ATTRIBUTES[self.attribute] == NUMBER else object)
        if self.operator in ("in", "not_in"):
            inside = column.isin(list(self.value)).to_numpy()
            result = inside if self.operator == "in" else ~inside
        else:
            with np.errstate(invalid="ignore"):
                result = np.asarray(COMPARISONS[self.operator](values, self.value), dtype=bool)
        return result & ~missing


def parse_rule(data: object, path: tuple[object, ...] = ()) -> Rule:
    """Parse and type-check one rule node; raises :class:`RuleError` with its path."""
    if not isinstance(data, dict):
        raise RuleError(
            f"a rule is a mapping (all / any / not / attribute), not {type(data).__name__}", path
        )
    combinators = [key for key in ("all", "any", "not") if key in data]
    if combinators:
        if len(data) != 1:
            raise RuleError(f"{combinators[0]!r} must be the only key of its rule node", path)
        kind = combinators[0]
        inner = data[kind]
        if kind == "not":
            return Rule("not", (parse_rule(inner, (*path, "not")),))
        if not isinstance(inner, list):
            raise RuleError(f"{kind!r} takes a list of rules", (*path, kind))
        return Rule(kind, tuple(parse_rule(item, (*path, kind, n)) for n, item in enumerate(inner)))
    return _parse_condition(data, path)


def _parse_condition(data: dict, path: tuple[object, ...]) -> Rule:
    if "attribute" not in data:
        raise RuleError(
            f"a rule node needs 'all', 'any', 'not' or 'attribute' (got {sorted(data)})", path
        )
    name = data["attribute"]
    if name not in ATTRIBUTES:
        close = difflib.get_close_matches(str(name), ATTRIBUTES, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else f"; known: {', '.join(ATTRIBUTES)}"
        raise RuleError(f"unknown attribute {name!r}{hint}", (*path, "attribute"))
    operators = [key for key in data if key != "attribute"]
    if len(operators) != 1 or operators[0] not in OPERATORS:
        raise RuleError(
            f"condition on {name!r} needs exactly one operator of {', '.join(OPERATORS)} "
            f"(got {operators or 'none'})",
            path,
        )
    operator = operators[0]
    value = data[operator]
    where = (*path, operator)
    kind = ATTRIBUTES[name]
    if operator == "is_null":
        if not isinstance(value, bool):
            raise RuleError(f"is_null takes true or false, not {value!r}", where)
        return Rule("condition", attribute=name, operator=operator, value=value)
    if operator in ("in", "not_in"):
        if not isinstance(value, list) or not value:
            raise RuleError(f"{operator} takes a non-empty list, not {value!r}", where)
        for item in value:
            _check_type(name, kind, item, where)
        return Rule("condition", attribute=name, operator=operator, value=tuple(value))
    if operator in NUMERIC_ONLY and kind != NUMBER:
        raise RuleError(f"{operator} compares numbers; {name!r} is a {kind}", where)
    _check_type(name, kind, value, where)
    return Rule("condition", attribute=name, operator=operator, value=value)


def _check_type(name: str, kind: str, value: object, where: tuple[object, ...]) -> None:
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    if (kind == NUMBER and not is_number) or (kind == STRING and not isinstance(value, str)):
        raise RuleError(f"{name!r} is a {kind}; {value!r} is not", where)
