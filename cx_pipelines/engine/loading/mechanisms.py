"""Loading the `mechanisms:` section: each mechanism type's checks and compiled form.

Mixed into the loader's compiler; see ``loader.py`` for the helpers it relies on
(``expression``, ``attribute_ref``, ``error``, ``check_name``, ``loc``).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any

from cx_pipelines.engine.language import model as m
from cx_pipelines.engine.language.errors import (
    EngineError,
    UnknownAttributeError,
)
from cx_pipelines.engine.language.expressions import ValueType
from cx_pipelines.engine.language.source import format_path
from cx_pipelines.engine.language.user_exits import resolve_user_exit
from cx_pipelines.engine.language.validation import (
    band_problems,
    find_call_cycle,
    unreachable_branches,
)

_AGGREGATE_TYPES = {
    "any": (ValueType.BOOLEAN, ValueType.BOOLEAN),
    "all": (ValueType.BOOLEAN, ValueType.BOOLEAN),
    "count": (ValueType.BOOLEAN, ValueType.NUMBER),
    "sum": (ValueType.NUMBER, ValueType.NUMBER),
    "min": (ValueType.NUMBER, ValueType.NUMBER),
    "max": (ValueType.NUMBER, ValueType.NUMBER),
    "mean": (ValueType.NUMBER, ValueType.NUMBER),
}


def _suggest(name: str, choices: Iterable[str]) -> str | None:
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return close[0] if close else None


def expression_text(value: Any) -> str:
    """The expression a YAML value stands for (numbers and booleans are constants)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return str(value)


def _value_type_of(value: Any) -> ValueType | None:
    if isinstance(value, bool):
        return ValueType.BOOLEAN
    if isinstance(value, int | float):
        return ValueType.NUMBER
    if isinstance(value, str):
        return ValueType.STRING
    return None


def _split_path(text: str) -> tuple:
    """Inverse of format_path for the simple paths leaves carry (``tree[1].else[0].then``)."""
    parts: list[str | int] = []
    for piece in text.replace("]", "").replace("[", ".").split("."):
        if piece:
            parts.append(int(piece) if piece.isdigit() else piece)
    return tuple(parts)


class MechanismCompiler:
    """Builds :class:`model.Mechanism` objects and checks their outputs and calls."""

    def output(self, spec: dict, path: tuple, over: str | None) -> m.Attribute | None:
        name = spec["output"]
        if name not in self.attributes:
            self.errors.append(
                UnknownAttributeError(
                    f"output attribute {name!r} is not in the data dictionary; declare it with "
                    "`derived: true`",
                    location=self.loc(*path, "output"),
                    symbol=name,
                    suggestion=_suggest(
                        name, [a for a in self.attributes if self.attributes[a].derived]
                    ),
                )
            )
            return None
        attribute = self.attributes[name]
        if not attribute.derived:
            self.error(
                f"{name!r} is an input attribute; a mechanism may only write attributes "
                "declared with `derived: true`",
                (*path, "output"),
                symbol=name,
            )
        if attribute.account_type != over:
            where = f"account type {over!r}" if over else "the customer"
            self.error(
                f"output {name!r} must be an attribute of {where} "
                + (f"(write `{over}.<name>`)" if over else "(not a virtual attribute)"),
                (*path, "output"),
                symbol=name,
            )
        self.written.setdefault(name, []).append(path[-1])
        return attribute

    def output_type_is(self, attribute: m.Attribute | None, value_type: ValueType, path, what: str):
        if attribute is not None and attribute.value_type is not value_type:
            self.error(
                f"type mismatch: {what} gives {value_type.name} values but output "
                f"{attribute.name!r} is declared {attribute.value_type.name}",
                (*path, "output"),
                symbol=attribute.name,
            )

    def literal_fits(self, value: Any, attribute: m.Attribute | None, path) -> None:
        if attribute is None or value is None:
            return
        kind = _value_type_of(value)
        expected = attribute.value_type
        if kind is not expected and not (expected is ValueType.DATE and kind is ValueType.STRING):
            self.error(
                f"type mismatch: value {value!r} is {kind.name if kind else type(value).__name__} "
                f"but output {attribute.name!r} is {expected.name}",
                path,
                symbol=str(value),
            )

    def mechanisms(self) -> dict[str, m.Mechanism]:
        built: dict[str, m.Mechanism] = {}
        for name, spec in self.data["mechanisms"].items():
            path = ("mechanisms", name)
            over = spec.get("over")
            if over is not None and not self.check_name(
                over, self.account_types, "account type", (*path, "over")
            ):
                continue
            output = self.output(spec, path, None if spec["type"] == "aggregate" else over)
            builder = getattr(self, "_" + spec["type"])
            mechanism = builder(name, spec, path, over, output)
            if mechanism is not None:
                built[name] = mechanism
        return built

    def _decision_tree(self, name, spec, path, over, output):
        leaves: list[m.Leaf] = []

        def branches(items: list, at: tuple) -> list[m.Branch]:
            result = []
            for index, item in enumerate(items):
                if "else" in item:
                    condition, key = None, "else"
                else:
                    key = "then"
                    condition = self.expression(
                        item["when"], (*at, index, "when"), over=over, expected=ValueType.BOOLEAN
                    )
                result.append(m.Branch(condition, outcome(item[key], (*at, index, key))))
            return result

        def outcome(value: Any, at: tuple):
            if isinstance(value, list):
                return branches(value, at)
            call = None
            if isinstance(value, dict):
                call = value.get("call")
                value = value.get("decision")
            self.literal_fits(value, output, at)
            leaf = m.Leaf(len(leaves), value, call, format_path(at[2:]))
            leaves.append(leaf)
            return leaf

        root = branches(spec["tree"], (*path, "tree"))
        for problem in unreachable_branches(spec["tree"], (*path, "tree"), self.source):
            self.warnings.append(problem)
        return m.DecisionTree(name, "decision_tree", output, over, branches=root, leaves=leaves)

    def _axis(self, spec: dict, path: tuple, over: str | None) -> m.Axis | None:
        label = spec.get("attribute") or expression_text(spec.get("expression"))
        if "attribute" in spec and "expression" in spec:
            self.error("an axis takes `attribute` or `expression`, not both", path)
            return None
        if "attribute" not in spec and "expression" not in spec:
            self.error("an axis needs `attribute` or `expression`", path)
            return None
        if (
            "attribute" in spec
            and self.attribute_ref(spec["attribute"], (*path, "attribute"), over=over) is None
        ):
            return None
        expected = ValueType.NUMBER if "bands" in spec else None
        expression = self.expression(
            label,
            (*path, "attribute" if "attribute" in spec else "expression"),
            over=over,
            expected=expected,
        )
        if expression is None:
            return None
        bands = None
        if "bands" in spec:
            bands = [(b[0], b[1]) for b in spec["bands"]]
            for message, index in band_problems(bands):
                self.error(message, (*path, "bands", index))
        categories = spec.get("categories")
        if categories is not None:
            result_type = expression.compiled.result_type
            for index, category in enumerate(categories):
                if _value_type_of(category) is not result_type:
                    self.error(
                        f"type mismatch: category {category!r} does not match the axis type "
                        f"{result_type.name}",
                        (*path, "categories", index),
                    )
        return m.Axis(label, expression, bands, categories)

    def _matrix(self, name, spec, path, over, output):
        rows = self._axis(spec["rows"], (*path, "rows"), over)
        columns = (
            self._axis(spec["columns"], (*path, "columns"), over) if "columns" in spec else None
        )
        values = spec["values"]
        if rows is not None:
            n_rows = len(rows.bands or rows.categories or [])
            n_columns = len(columns.bands or columns.categories or []) if columns else 1
            if len(values) != n_rows:
                self.error(
                    f"`values` has {len(values)} rows but the row axis has {n_rows} bands",
                    (*path, "values"),
                )
            for index, row in enumerate(values):
                if len(row) != n_columns:
                    self.error(
                        f"row {index} has {len(row)} values but the column axis has {n_columns}",
                        (*path, "values", index),
                    )
                for j, value in enumerate(row):
                    self.literal_fits(value, output, (*path, "values", index, j))
        self.literal_fits(spec.get("default"), output, (*path, "default"))
        return m.Matrix(name, "matrix", output, over, rows, columns, values, spec.get("default"))

    def _scorecard(self, name, spec, path, over, output):
        self.output_type_is(output, ValueType.NUMBER, path, "a scorecard")
        characteristics = []
        for index, item in enumerate(spec["characteristics"]):
            at = (*path, "characteristics", index)
            label = item.get("attribute") or expression_text(item.get("expression"))
            if (
                "attribute" in item
                and self.attribute_ref(item["attribute"], (*at, "attribute"), over=over) is None
            ):
                continue
            expected = ValueType.NUMBER if "bins" in item else None
            expression = self.expression(
                label,
                (*at, "attribute" if "attribute" in item else "expression"),
                over=over,
                expected=expected,
            )
            if expression is None:
                continue
            bins = None
            if "bins" in item:
                bins = [(b["range"][0], b["range"][1], float(b["points"])) for b in item["bins"]]
                for message, bad in band_problems([(lo, hi) for lo, hi, _ in bins]):
                    self.error(message, (*at, "bins", bad, "range"))
            categories = item.get("categories")
            characteristics.append(
                m.Characteristic(
                    label,
                    expression,
                    bins,
                    categories,
                    float(item.get("other", 0.0)),
                    float(item.get("missing", 0.0)),
                )
            )
        return m.Scorecard(
            name, "scorecard", output, over, float(spec.get("base", 0.0)), characteristics
        )

    def _model_score(self, name, spec, path, over, output):
        self.output_type_is(output, ValueType.NUMBER, path, "a model score")
        source = self.attribute_ref(spec["input"], (*path, "input"), over=over)
        if source is not None and source.value_type is not ValueType.NUMBER:
            self.error(
                f"type mismatch: model score input {source.name!r} must be a NUMBER",
                (*path, "input"),
            )
        version = spec.get("version")
        return m.ModelScore(
            name,
            "model_score",
            output,
            over,
            spec["model"],
            source,
            None if version is None else str(version),
            spec.get("default"),
        )

    def _list_processor(self, name, spec, path, over, output):
        self.output_type_is(output, ValueType.STRING, path, "a list processor")
        items = []
        seen = set()
        for index, item in enumerate(spec["items"]):
            at = (*path, "items", index)
            if item["id"] in seen:
                self.error(f"item id {item['id']!r} is listed twice", (*at, "id"))
            seen.add(item["id"])
            condition = None
            if "when" in item:
                condition = self.expression(
                    item["when"], (*at, "when"), over=over, expected=ValueType.BOOLEAN
                )
            score = self.expression(
                item["score"], (*at, "score"), over=over, expected=ValueType.NUMBER
            )
            if score is not None:
                items.append(m.ListItem(item["id"], condition, score))
        return m.ListProcessor(name, "list_processor", output, over, items)

    def _user_exit(self, name, spec, path, over, output):
        try:
            user_exit = resolve_user_exit(
                spec["function"], module=spec.get("module"), location=self.loc(*path, "function")
            )
        except EngineError as problem:
            self.errors.append(problem)
            return None
        inputs = []
        for index, attribute in enumerate(spec["inputs"]):
            ref = self.attribute_ref(attribute, (*path, "inputs", index), over=over)
            if ref is not None:
                inputs.append(ref)
        return m.UserExitMechanism(name, "user_exit", output, over, user_exit, inputs)

    def _aggregate(self, name, spec, path, over, output):
        value_type, result_type = _AGGREGATE_TYPES[spec["function"]]
        self.output_type_is(output, result_type, path, f"aggregate {spec['function']!r}")
        value = self.expression(spec["value"], (*path, "value"), over=over, expected=value_type)
        where = None
        if "where" in spec:
            where = self.expression(
                spec["where"], (*path, "where"), over=over, expected=ValueType.BOOLEAN
            )
        return m.Aggregate(name, "aggregate", output, over, spec["function"], value, where)

    def _calculation(self, name, spec, path, over, output):
        value = self.expression(spec["value"], (*path, "value"), over=over, expected=None)
        if value is None:
            return None
        result_type = value.compiled.result_type
        if output is not None and result_type is not output.value_type:
            self.error(
                f"type mismatch: calculation {value.text!r} gives {result_type.name} values but "
                f"output {output.name!r} is declared {output.value_type.name}",
                (*path, "value"),
                symbol=output.name,
            )
        return m.Calculation(name, "calculation", output, over, value)

    def calls(self, mechanisms: dict[str, m.Mechanism]) -> None:
        graph: dict[str, list[str]] = {}
        for name, mechanism in mechanisms.items():
            if not isinstance(mechanism, m.DecisionTree):
                continue
            graph[name] = []
            for leaf in mechanism.leaves:
                if leaf.call is None:
                    continue
                at = ("mechanisms", name, *_split_path(leaf.path), "call")
                if not self.check_name(leaf.call, self.data["mechanisms"], "mechanism", at):
                    continue
                target = mechanisms.get(leaf.call)
                if target is not None and target.over != mechanism.over:
                    self.error(
                        f"{name!r} runs over {mechanism.over or 'the customer'} but calls "
                        f"{leaf.call!r}, which runs over {target.over or 'the customer'}",
                        at,
                    )
                graph[name].append(leaf.call)
        cycle = find_call_cycle(graph)
        if cycle:
            self.error(
                "decision trees call each other in a cycle: " + " → ".join(cycle),
                ("mechanisms", cycle[0]),
                symbol=cycle[0],
            )
