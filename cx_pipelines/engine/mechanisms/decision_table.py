"""Decision table: rows of conditions on declared inputs → an output, as in DMN, zen, Blaze.

``inputs`` are expressions (column headers); each rule's ``when`` has one cell per input:
``-`` (any value, null included), a comparison tail (``< 540``, ``>= risk_limit``,
``in ['gold', 'silver']``, ``in 1..5``, ``is null``), a DMN interval (``[600..750)``) or
a literal (``'gold'``, ``42``, read as ``== 'gold'``). A cell is compiled as the
expression ``(input) <cell>``, so it is type-checked at load like any other expression.

Hit policies: ``first`` (the first matching rule's ``then``) and ``collect`` with an
``aggregate``: ``list`` (the matching rules' text outputs joined by ``,`` in rule
order), ``sum``, ``min``, ``max`` or ``count`` (number of matching rules). With no
matching rule the output is ``default`` when declared, else null (``count`` and ``sum``:
0). The trace names the rule that hit (``rule``) or every rule that did (``rules``): its
``id`` when it has one, else ``rules[<index>]``.

Loading warns about a ``first`` rule an earlier rule always pre-empts, and about inputs
no rule matches when the table has no ``default`` (for tables whose cells are number
comparisons, intervals or literal lists; null inputs match only ``-``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cx_pipelines.engine.evaluation.batch.columns import to_values
from cx_pipelines.engine.evaluation.batch.text import TEXT, dumps
from cx_pipelines.engine.evaluation.shared import RECORD_FAILURES, record_function, true
from cx_pipelines.engine.language import model as m
from cx_pipelines.engine.language.expressions import ValueType
from cx_pipelines.engine.language.literals import expression_text
from cx_pipelines.engine.language.schema import EXPRESSION, IDENTIFIER, SCALAR, obj
from cx_pipelines.engine.mechanisms.base import MechanismKind, settled
from cx_pipelines.engine.mechanisms.decision_table_cells import (
    cell_expression,
    cell_problem,
    coverage_warnings,
)

HIT_POLICIES = ("first", "collect")
AGGREGATES = {  # collect aggregate → type of the output (None: the rules' own type)
    "list": ValueType.STRING,
    "sum": ValueType.NUMBER,
    "min": ValueType.NUMBER,
    "max": ValueType.NUMBER,
    "count": ValueType.NUMBER,
}
EMPTY = {"count": 0.0, "sum": 0.0}  # collect over no matching rule, without a default
LIST_SEPARATOR = ","


@dataclass
class TableRule:
    label: str  # its id, or rules[<index>]
    cells: list[m.Expression | None]  # one per input; None: any value
    value: Any
    written: list[str] = field(default_factory=list)  # the cells as the analyst wrote them


@dataclass
class DecisionTable(MechanismKind):
    KIND = "decision_table"
    SCHEMA_PROPERTIES = {
        "hit_policy": {"enum": list(HIT_POLICIES)},
        "aggregate": {"enum": list(AGGREGATES)},
        "inputs": {"type": "array", "minItems": 1, "items": EXPRESSION},
        "rules": {
            "type": "array",
            "minItems": 1,
            "items": obj(
                {
                    "id": IDENTIFIER,
                    "description": {"type": "string"},
                    "when": {"type": "array", "items": SCALAR},
                    "then": SCALAR,
                },
                ["when"],
            ),
        },
        "default": SCALAR,
    }
    SCHEMA_REQUIRED = ["inputs", "rules"]

    inputs: list[str] = field(default_factory=list)
    hit_policy: str = "first"
    aggregate: str | None = None
    rules: list[TableRule] = field(default_factory=list)
    default: Any = None

    @classmethod
    def load(cls, loader, name, spec, path, over, output):
        policy = spec.get("hit_policy", "first")
        aggregate = spec.get("aggregate")
        if policy == "first" and aggregate is not None:
            loader.error(
                "`aggregate` goes with `hit_policy: collect`; a first-hit table has one output",
                (*path, "aggregate"),
            )
        if policy == "collect" and aggregate is None:
            loader.error(
                "`hit_policy: collect` needs `aggregate:` (list, sum, min, max or count)",
                (*path, "hit_policy"),
            )
            return None
        if policy == "collect":
            loader.output_type_is(
                output, AGGREGATES[aggregate], path, f"a decision table collecting {aggregate!r}"
            )
        inputs = [expression_text(item) for item in spec["inputs"]]
        # each input checked once where it is written: a typo there is one error, on its line
        broken = {
            position
            for position, item in enumerate(spec["inputs"])
            if loader.expression(item, (*path, "inputs", position), over=over, expected=None)
            is None
        }
        rules = []
        labels: dict[str, int] = {}
        for index, item in enumerate(spec["rules"]):
            at = (*path, "rules", index)
            label = item.get("id", f"rules[{index}]")
            if label in labels:
                loader.error(
                    f"rule id {label!r} is used twice (first: rules[{labels[label]}])", (*at, "id")
                )
            labels[label] = index
            cells = item["when"]
            if len(cells) != len(inputs):
                loader.error(
                    f"the rule has {len(cells)} cells but the table has {len(inputs)} inputs "
                    f"({', '.join(inputs)}); write '-' for any value",
                    (*at, "when"),
                )
                continue
            compiled = []
            for position, (subject, cell) in enumerate(zip(inputs, cells, strict=True)):
                if position in broken:
                    compiled.append(None)
                    continue
                if problem := cell_problem(cell):
                    loader.error(problem, (*at, "when", position))
                    compiled.append(None)
                    continue
                text = cell_expression(subject, cell)
                compiled.append(
                    None
                    if text is None
                    else loader.expression(
                        text, (*at, "when", position), over=over, expected=ValueType.BOOLEAN
                    )
                )
            if "then" not in item and aggregate != "count":
                loader.error("the rule needs `then:` (the output when it hits)", at)
                continue
            value = item.get("then")
            if aggregate == "count":
                pass
            elif policy == "first":
                loader.literal_fits(value, output, (*at, "then"))
            else:
                loader.literal_fits(value, _typed(output, AGGREGATES[aggregate]), (*at, "then"))
            rules.append(
                TableRule(label, compiled, value, [expression_text(c).strip() for c in cells])
            )
        loader.literal_fits(spec.get("default"), output, (*path, "default"))
        table = cls(
            name, cls.KIND, output, over, inputs, policy, aggregate, rules, spec.get("default")
        )
        if len(rules) == len(spec["rules"]):
            loader.warnings.extend(coverage_warnings(table, spec, path, loader.source))
        return table

    def text_lines(self) -> list[str]:
        policy = self.hit_policy + (f" {self.aggregate}" if self.aggregate else "")
        lines = [f"hit policy {policy}; inputs: {' | '.join(self.inputs)}"]
        for rule in self.rules:
            lines.append(f"{rule.label}: {' | '.join(rule.written)} -> {rule.value!r}")
        if self.default is not None:
            lines.append(f"default -> {self.default!r}")
        return lines

    # ------------------------------------------------------------ batch
    def evaluate_batch(self, run, level, mask, detail, calls):
        size = run.levels[level].size
        if size == 0:
            return np.empty(0, dtype=object)
        hits = np.ones((size, len(self.rules)), dtype=bool)
        for position, rule in enumerate(self.rules):
            for cell in rule.cells:
                if cell is not None:
                    hits[:, position] &= run.truth(cell, level)
        value_type = self.output.value_type
        if self.hit_policy == "first":
            none = len(self.rules)
            first = np.full(size, none, dtype=np.int64)
            for position in range(none - 1, -1, -1):
                first = np.where(hits[:, position], position, first)
            detail["rule"] = first
            table = [rule.value for rule in self.rules] + [self.default]
            return to_values(table, value_type, len(table))[first]
        detail["hits"] = hits
        matched = hits.any(axis=1)
        result = self._collect_batch(hits, size)
        if self.default is not None:
            fallback = to_values([self.default], value_type, 1)[0]
            result = np.where(matched, result, fallback)
            if value_type is ValueType.STRING:
                result = result.astype(object)
        return result

    def _collect_batch(self, hits: np.ndarray, size: int) -> np.ndarray:
        aggregate = self.aggregate
        if aggregate == "count":
            return hits.sum(axis=1).astype(np.float64)
        if aggregate == "list":
            patterns, inverse = np.unique(hits, axis=0, return_inverse=True)
            texts = np.array(
                [
                    self._joined([r for r, hit in zip(self.rules, row, strict=True) if hit])
                    for row in patterns.tolist()
                ]
                + [None],
                dtype=object,
            )
            return texts[inverse.reshape(-1)]
        values = [float(rule.value) for rule in self.rules]
        if aggregate == "sum":
            total = np.zeros(size)
            for position, value in enumerate(values):  # in rule order, as per record
                total = np.where(hits[:, position], total + value, total)
            return total
        pick = np.minimum if aggregate == "min" else np.maximum
        result = np.full(size, np.nan)
        for position, value in enumerate(values):
            chosen = hits[:, position]
            result = np.where(chosen & np.isnan(result), value, result)
            result = np.where(chosen, pick(result, value), result)
        return result

    def _joined(self, rules: list[TableRule]) -> str | None:
        return LIST_SEPARATOR.join(str(rule.value) for rule in rules) if rules else None

    def trace_fields(self, detail, models, field):
        labels = [rule.label for rule in self.rules]
        if self.hit_policy == "first":
            texts = np.array([dumps(label) for label in labels] + ["null"], dtype=TEXT)
            return {"rule": field(texts[detail["rule"]])}
        patterns, inverse = np.unique(detail["hits"], axis=0, return_inverse=True)
        texts = np.array(
            [
                dumps([label for label, hit in zip(labels, row, strict=True) if hit])
                for row in patterns.tolist()
            ]
            + ["[]"],
            dtype=TEXT,
        )
        return {"rules": field(texts[inverse.reshape(-1)])}

    def trace_rows(self, detail, models):
        labels = [rule.label for rule in self.rules]
        if self.hit_policy == "first":
            chosen = [(labels + [None])[i] for i in detail["rule"].tolist()]

            def write_first(item: dict, row: int) -> None:
                item["rule"] = chosen[row]

            return write_first
        hits = detail["hits"].tolist()

        def write_collect(item: dict, row: int) -> None:
            item["rules"] = [label for label, hit in zip(labels, hits[row], strict=True) if hit]

        return write_collect

    # ------------------------------------------------------------ per record
    def evaluate_record(self, state, record, step, calls):
        if self.hit_policy == "first":  # the first hit ends it: later rules are not evaluated
            for rule in self.rules:
                if all(true(cell, record) for cell in rule.cells):
                    step["rule"] = rule.label
                    return rule.value
            step["rule"] = None
            return self.default
        matched = [rule for rule in self.rules if all(true(cell, record) for cell in rule.cells)]
        step["rules"] = [rule.label for rule in matched]
        return self._collect(matched)

    def _collect(self, matched: list[TableRule]) -> Any:
        if not matched:
            return self.default if self.default is not None else EMPTY.get(self.aggregate)
        if self.aggregate == "count":
            return float(len(matched))
        if self.aggregate == "list":
            return self._joined(matched)
        values = [float(rule.value) for rule in matched]
        if self.aggregate == "sum":
            total = 0.0
            for value in values:
                total += value
            return total
        return min(values) if self.aggregate == "min" else max(values)

    def fast_record(self):
        value_type = self.output.value_type
        first = self.hit_policy == "first"
        prepared = [
            (
                rule,
                [record_function(cell) for cell in rule.cells if cell is not None],
                settled(rule.value, value_type) if first else rule.value,
            )
            for rule in self.rules
        ]
        default = settled(self.default, value_type)
        reference = self.evaluate_record
        collect = self._collect

        def table(state, record, step, calls):
            try:
                if first:
                    for rule, cells, value in prepared:
                        for cell in cells:
                            if cell(record) is not True:
                                break
                        else:
                            step["rule"] = rule.label
                            return value
                    step["rule"] = None
                    return default
                matched = []
                for rule, cells, _ in prepared:
                    for cell in cells:
                        if cell(record) is not True:
                            break
                    else:
                        matched.append(rule)
            except RECORD_FAILURES:
                return reference(state, record, step, calls)
            step["rules"] = [rule.label for rule in matched]
            return collect(matched)

        return table


def _typed(attribute: m.Attribute | None, value_type: ValueType) -> m.Attribute | None:
    """``attribute`` as if declared ``value_type`` (to check rule outputs of a collect)."""
    if attribute is None:
        return None
    return m.Attribute(attribute.name, value_type, attribute.derived, attribute.account_type)
