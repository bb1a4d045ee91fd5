"""Translate a GoRules zen decision table (JSON decision model) into a cx strategy.

The zen table is read as data — inputs, outputs, hit policy and rules whose cells are
zen *unary tests* (``>= 900``, ``[750..900)``, ``"affluent", "private"``, empty for
"any") — and written as a strategy document in our format, so the same rules can be
evaluated by our batch and per-record evaluators and by ``zen-engine`` itself.

Only the subset of zen's unary-test language the benchmark table uses is understood:
comparisons with a number, closed/open numeric intervals ``[a..b)``, and lists of
string or number literals. Anything else raises :class:`ZenTranslationError` naming
the rule and the cell.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class ZenTranslationError(ValueError):
    """A zen decision model uses something the translator does not understand."""


@dataclass(frozen=True)
class Interval:
    """A numeric range; ``None`` bounds are open-ended."""

    low: float | None = None
    high: float | None = None
    low_inclusive: bool = True
    high_inclusive: bool = True


@dataclass(frozen=True)
class OneOf:
    """Membership in a list of literals."""

    values: tuple[Any, ...]


Condition = Interval | OneOf | None


@dataclass(frozen=True)
class ZenRule:
    rule_id: str
    conditions: dict[str, Condition]
    outputs: dict[str, Any]


@dataclass(frozen=True)
class ZenTable:
    name: str
    hit_policy: str
    input_fields: tuple[str, ...]
    output_fields: tuple[str, ...]
    rules: tuple[ZenRule, ...]


_COMPARISON = re.compile(r"^(>=|<=|>|<|==|=)?\s*(-?\d+(?:\.\d+)?)$")
_INTERVAL = re.compile(r"^([\[\(\]])\s*(-?\d+(?:\.\d+)?)\s*\.\.\s*(-?\d+(?:\.\d+)?)\s*([\]\)\[])$")
_LITERAL = re.compile(r'\s*("(?:[^"\\]|\\.)*"|-?\d+(?:\.\d+)?)\s*(?:,|$)')


def parse_unary_test(text: str, *, where: str = "") -> Condition:
    """One zen unary-test cell as a :data:`Condition` (``None`` means any value)."""
    cell = text.strip()
    if cell in ("", "-"):
        return None
    if match := _INTERVAL.match(cell):
        opening, low, high, closing = match.groups()
        return Interval(float(low), float(high), opening == "[", closing == "]")
    if match := _COMPARISON.match(cell):
        operator, number = match.groups()
        value = float(number)
        return {
            ">=": Interval(low=value),
            ">": Interval(low=value, low_inclusive=False),
            "<=": Interval(high=value),
            "<": Interval(high=value, high_inclusive=False),
        }.get(operator or "==", Interval(value, value))
    values = []
    position = 0
    while position < len(cell):
        match = _LITERAL.match(cell, position)
        if not match:
            raise ZenTranslationError(f"{where}: cannot translate unary test {text!r}")
        literal = match.group(1)
        values.append(json.loads(literal))
        position = match.end()
    return OneOf(tuple(values))


def read_zen_table(path: str | Path) -> ZenTable:
    """The single decision-table node of a zen JSON decision model."""
    document = json.loads(Path(path).read_text())
    tables = [node for node in document.get("nodes", []) if node.get("type") == "decisionTableNode"]
    if len(tables) != 1:
        raise ZenTranslationError(
            f"{path}: expected exactly one decisionTableNode, found {len(tables)}"
        )
    node = tables[0]
    content = node["content"]
    inputs = {column["id"]: column["field"] for column in content["inputs"]}
    outputs = {column["id"]: column["field"] for column in content["outputs"]}
    rules = []
    for index, rule in enumerate(content["rules"], start=1):
        rule_id = rule.get("_id", f"rule_{index}")
        conditions = {
            field: parse_unary_test(rule.get(column, ""), where=f"{path} rule {rule_id} {field}")
            for column, field in inputs.items()
        }
        values = {}
        for column, field in outputs.items():
            cell = rule.get(column, "").strip()
            try:
                values[field] = json.loads(cell)
            except json.JSONDecodeError as error:
                raise ZenTranslationError(
                    f"{path} rule {rule_id} {field}: output {cell!r} is not a literal"
                ) from error
        rules.append(ZenRule(rule_id, conditions, values))
    return ZenTable(
        name=node.get("name", "decision_table"),
        hit_policy=content.get("hitPolicy", "first"),
        input_fields=tuple(inputs.values()),
        output_fields=tuple(outputs.values()),
        rules=tuple(rules),
    )


def matches(condition: Condition, value: Any) -> bool:
    """Plain-Python reading of one condition (used to cross-check the translation)."""
    if condition is None:
        return True
    if isinstance(condition, OneOf):
        return value in condition.values
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return False
    if condition.low is not None and not (
        value >= condition.low if condition.low_inclusive else value > condition.low
    ):
        return False
    return condition.high is None or (
        value <= condition.high if condition.high_inclusive else value < condition.high
    )


# ---- translation into our strategy format -------------------------------------------------

RESERVED_ATTRIBUTES = frozenset(
    {
        "segment",
        "category",
        "test_group",
        "event",
        "channel",
        "interaction_type",
        "strategy_hash",
        "trace",
    }
)
"""Names the engine gives its own output columns; zen fields with these names are renamed."""


def attribute_name(field: str) -> str:
    """Our attribute for a zen input or output field (``segment`` -> ``request_segment``)."""
    return f"request_{field}" if field in RESERVED_ATTRIBUTES else field


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _literal(value: Any) -> str:
    if isinstance(value, str):
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    return _number(value)


def condition_expression(attribute: str, condition: Condition) -> str | None:
    """One cell as an expression of our language (``None`` when the cell matches anything)."""
    if condition is None:
        return None
    if isinstance(condition, OneOf):
        if len(condition.values) == 1:
            return f"{attribute} == {_literal(condition.values[0])}"
        return f"{attribute} in [{', '.join(_literal(value) for value in condition.values)}]"
    parts = []
    if condition.low is not None and condition.high is not None and condition.low == condition.high:
        return f"{attribute} == {_number(condition.low)}"
    if condition.low is not None:
        parts.append(
            f"{attribute} {'>=' if condition.low_inclusive else '>'} {_number(condition.low)}"
        )
    if condition.high is not None:
        parts.append(
            f"{attribute} {'<=' if condition.high_inclusive else '<'} {_number(condition.high)}"
        )
    return " and ".join(parts)


def _field_types(table: ZenTable) -> dict[str, str]:
    types: dict[str, str] = {}
    for field in table.input_fields:
        kinds = set()
        for rule in table.rules:
            condition = rule.conditions[field]
            if isinstance(condition, Interval):
                kinds.add("number")
            elif isinstance(condition, OneOf):
                kinds.update("string" if isinstance(v, str) else "number" for v in condition.values)
        if len(kinds) > 1:
            raise ZenTranslationError(f"field {field!r} is compared both as text and as number")
        types[field] = kinds.pop() if kinds else "string"
    return types


def witness_records(table: ZenTable) -> list[dict[str, Any]]:
    """One input record per reachable rule that the rule (and no earlier one) matches.

    Candidates are built from every bound and literal in the table, so each rule's
    region is probed at its edges; used as golden cases of the translated strategy.
    """
    types = _field_types(table)
    candidates: dict[str, list[Any]] = {}
    for field in table.input_fields:
        if types[field] == "number":
            points = {0.0}
            for rule in table.rules:
                condition = rule.conditions[field]
                if isinstance(condition, Interval):
                    for bound in (condition.low, condition.high):
                        if bound is not None:
                            points.update({bound - 1, bound, bound + 1})
            candidates[field] = sorted(points)
        else:
            literals = {"__other__"}
            for rule in table.rules:
                condition = rule.conditions[field]
                if isinstance(condition, OneOf):
                    literals.update(condition.values)
            candidates[field] = sorted(literals)
    witnesses: dict[str, dict[str, Any]] = {}
    records: list[dict[str, Any]] = [{}]
    for field in table.input_fields:
        records = [{**record, field: value} for record in records for value in candidates[field]]
    for record in records:
        rule = first_match(table, record)
        if rule is not None and rule.rule_id not in witnesses:
            witnesses[rule.rule_id] = record
    return [witnesses[rule.rule_id] for rule in table.rules if rule.rule_id in witnesses]


def first_match(table: ZenTable, record: dict[str, Any]) -> ZenRule | None:
    """The rule a first-hit table picks for ``record`` (plain Python, for cross-checks)."""
    for rule in table.rules:
        if all(matches(rule.conditions[field], record.get(field)) for field in table.input_fields):
            return rule
    return None


def to_strategy(table: ZenTable, *, name: str = "zen_decision_table") -> dict[str, Any]:
    """The zen table as a strategy document: one event, one process, one first-hit tree."""
    if table.hit_policy != "first":
        raise ZenTranslationError(
            f"hit policy {table.hit_policy!r} is not supported (only 'first')"
        )
    if len(table.output_fields) != 1:
        raise ZenTranslationError("only tables with one output field are supported")
    types = _field_types(table)
    output = attribute_name(table.output_fields[0])
    dictionary: dict[str, Any] = {"customer_id": {"type": "string"}}
    for field in table.input_fields:
        dictionary[attribute_name(field)] = {"type": types[field]}
    dictionary[output] = {"type": "string", "derived": True}
    branches: list[dict[str, Any]] = []
    for rule in table.rules:
        parts = [
            expression
            for field in table.input_fields
            if (expression := condition_expression(attribute_name(field), rule.conditions[field]))
        ]
        value = rule.outputs[table.output_fields[0]]
        if parts:
            branches.append({"when": " and ".join(parts), "then": value})
        else:
            branches.append({"else": value})
            break  # a catch-all rule: later rules can never fire under the first-hit policy
    else:
        branches.append({"else": None})
    golden = []
    for index, record in enumerate(witness_records(table), start=1):
        rule = first_match(table, record)
        golden.append(
            {
                "name": f"zen rule {rule.rule_id}",
                "event": "decide",
                "customer": {
                    "customer_id": f"W{index}",
                    **{attribute_name(field): value for field, value in record.items()},
                },
                "accounts": [],
                "expect": {"attributes": {output: rule.outputs[table.output_fields[0]]}},
            }
        )
    return {
        "strategy": name,
        "version": 1,
        "description": f"GoRules zen decision table {table.name!r} (benchmarks/zen_table.py)",
        "data_dictionary": {"customer": dictionary},
        "events": {"decide": {"processes": ["decide"], "categorize": False}},
        "segments": [{"name": "all"}],
        "processes": {"decide": {"mechanism": "decision_table"}},
        "mechanisms": {
            "decision_table": {"type": "decision_tree", "output": output, "tree": branches}
        },
        "golden_cases": golden,
    }


def write_strategy(source: str | Path, target: str | Path) -> Path:
    """Translate the zen JSON model at ``source`` and write the strategy YAML to ``target``."""
    import yaml

    document = to_strategy(read_zen_table(source))
    target = Path(target)
    target.write_text(
        "# Generated by benchmarks/zen_table.py from "
        + Path(source).name
        + "; do not edit.\n"
        + yaml.safe_dump(document, sort_keys=False, width=100)
    )
    return target


if __name__ == "__main__":
    import sys

    if len(sys.argv) != 3:
        sys.exit("usage: python benchmarks/zen_table.py DECISION_TABLE.json STRATEGY.yaml")
    print(write_strategy(sys.argv[1], sys.argv[2]))
