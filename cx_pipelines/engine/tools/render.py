"""Readable renderings of a loaded strategy: an outline for the terminal and Mermaid diagrams.

``cx strategy show`` prints :func:`render_text`; ``--mermaid`` prints
:func:`render_mermaid`, which any Markdown viewer with Mermaid (GitHub, the Dagster UI
description of ``strategy_catalog``) draws as a flowchart: events → processes →
mechanisms, and every decision tree as its own graph of conditions and leaves.
"""

from __future__ import annotations

import math
import re
from typing import Any

from tabulate import tabulate

from cx_pipelines.engine.language.model import Mechanism, Strategy
from cx_pipelines.engine.mechanisms import (
    Aggregate,
    Axis,
    Branch,
    Calculation,
    DecisionTree,
    Leaf,
    ListProcessor,
    Matrix,
    ModelScore,
    Scorecard,
    UserExitMechanism,
)


def band_label(low: float | None, high: float | None) -> str:
    """A half-open band ``[low, high)`` as read aloud: ``401 to < 601``, ``< 401``, ``>= 801``."""
    if low is None and high is None:
        return "any"
    if low is None:
        return f"< {_number(high)}"
    if high is None:
        return f">= {_number(low)}"
    return f"{_number(low)} to < {_number(high)}"


def band_range(low: float | None, high: float | None) -> str:
    """A half-open band ``[low, high)`` in a matrix heading: ``0–400``, ``<400``, ``500+``."""
    if low is None and high is None:
        return "any"
    if low is None:
        return f"<{_number(high)}"
    if high is None:
        return f"{_number(low)}+"
    return f"{_number(low)}–{_number(high)}"


def axis_bands(label: str, bands: list | None, categories: list | None = None) -> str:
    """One matrix axis as read aloud: ``balance 0–400 | 400–500 | 500+``."""
    if bands is not None:
        return f"{label} " + " | ".join(band_range(low, high) for low, high in bands)
    return f"{label} " + " | ".join(_value(category) for category in categories or [])


def _number(value: float | None) -> str:
    if value is None:
        return "null"
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return str(int(value))
    return str(value)


def _value(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, float):
        return _number(value)
    return str(value)


def describe_mechanism(mechanism: Mechanism) -> str:
    """One line: name, kind, iteration and output."""
    kind = mechanism.kind.replace("_", " ")
    over = f" over every {mechanism.over}" if mechanism.over else ""
    return f"{mechanism.name}: {kind}{over} -> {mechanism.output.name}"


def _tree_lines(branches: list[Branch], prefix: str) -> list[str]:
    lines = []
    for index, branch in enumerate(branches):
        last = index == len(branches) - 1
        joint, extension = ("└─ ", "   ") if last else ("├─ ", "│  ")
        condition = f"if {branch.condition.text}" if branch.condition is not None else "else"
        if isinstance(branch.outcome, Leaf):
            call = f"  (then {branch.outcome.call})" if branch.outcome.call else ""
            lines.append(f"{prefix}{joint}{condition} -> {_value(branch.outcome.value)}{call}")
        else:
            lines.append(f"{prefix}{joint}{condition}")
            lines.extend(_tree_lines(branch.outcome, prefix + extension))
    return lines


def _axis_labels(axis: Axis | None) -> list[str]:
    if axis is None:
        return ["value"]
    if axis.bands is not None:
        return [band_label(low, high) for low, high in axis.bands]
    return [_value(category) for category in axis.categories or []]


def _matrix_lines(matrix: Matrix) -> list[str]:
    rows = _axis_labels(matrix.rows)
    columns = _axis_labels(matrix.columns)
    corner = (
        f"{matrix.rows.label} \\ {matrix.columns.label}" if matrix.columns else matrix.rows.label
    )
    table = [
        [label, *[_value(cell) for cell in values]]
        for label, values in zip(rows, matrix.values, strict=False)
    ]
    text = tabulate(table, headers=[corner, *columns], tablefmt="simple", disable_numparse=True)
    lines = [_axis_heading("rows", matrix.rows)]
    if matrix.columns is not None:
        lines.append(_axis_heading("columns", matrix.columns))
    lines += text.splitlines()
    lines.append(f"default (no band, or null): {_value(matrix.default)}")
    return lines


def _axis_heading(which: str, axis: Axis) -> str:
    return f"{which}: {axis_bands(axis.label, axis.bands, axis.categories)}"


def _scorecard_lines(scorecard: Scorecard) -> list[str]:
    table = [["(base)", "", _number(scorecard.base)]]
    for characteristic in scorecard.characteristics:
        if characteristic.bins is not None:
            for low, high, points in characteristic.bins:
                table.append([characteristic.label, band_label(low, high), _number(points)])
        else:
            for category, points in (characteristic.categories or {}).items():
                table.append([characteristic.label, f"== {category}", _number(points)])
            table.append([characteristic.label, "other", _number(characteristic.other)])
        table.append([characteristic.label, "missing", _number(characteristic.missing)])
    return tabulate(
        table, headers=["characteristic", "bin", "points"], tablefmt="simple", disable_numparse=True
    ).splitlines()


def mechanism_lines(mechanism: Mechanism) -> list[str]:
    """The body of one mechanism, without its heading."""
    if isinstance(mechanism, DecisionTree):
        return _tree_lines(mechanism.branches, "")
    if isinstance(mechanism, Matrix):
        return _matrix_lines(mechanism)
    if isinstance(mechanism, Scorecard):
        return _scorecard_lines(mechanism)
    if isinstance(mechanism, Aggregate):
        where = f" where {mechanism.where.text}" if mechanism.where is not None else ""
        value = mechanism.value.text if mechanism.value is not None else "true"
        return [f"{mechanism.function} of ({value}){where}"]
    if isinstance(mechanism, Calculation):
        return [f"= {mechanism.value.text if mechanism.value is not None else '?'}"]
    if isinstance(mechanism, ModelScore):
        source = mechanism.input.name if mechanism.input else "?"
        return [
            f"model {mechanism.model!r}, score read from {source}, "
            f"default {_value(mechanism.default)}"
        ]
    if isinstance(mechanism, ListProcessor):
        return [
            f"{item.item_id}: score {item.score.text}"
            + (f" when {item.condition.text}" if item.condition is not None else "")
            for item in mechanism.items
        ]
    if isinstance(mechanism, UserExitMechanism):
        inputs = ", ".join(attribute.name for attribute in mechanism.inputs)
        name = getattr(mechanism.user_exit, "name", mechanism.user_exit)
        return [f"user exit {name}({inputs})"]
    return mechanism.text_lines()


def _indent(lines: list[str], spaces: int = 4) -> list[str]:
    return [" " * spaces + line if line else line for line in lines]


def render_text(strategy: Strategy, *, mechanism: str | None = None) -> str:
    """The whole strategy as an outline (or one mechanism when ``mechanism`` is given)."""
    if mechanism is not None:
        if mechanism not in strategy.mechanisms:
            known = ", ".join(sorted(strategy.mechanisms))
            raise KeyError(
                f"strategy {strategy.name!r} has no mechanism {mechanism!r} (has: {known})"
            )
        chosen = strategy.mechanisms[mechanism]
        return "\n".join([describe_mechanism(chosen), *_indent(mechanism_lines(chosen), 2)]) + "\n"
    lines = [
        f"strategy {strategy.name} v{strategy.version}  ({strategy.file or 'in memory'})",
        f"content hash {strategy.content_hash}",
    ]
    if strategy.description:
        lines.append(strategy.description.strip())
    lines += ["", "EVENTS"]
    for event in strategy.events.values():
        categorize = "" if event.categorize else "  (no categories)"
        interaction = f" [{event.interaction_type}]" if event.interaction_type else ""
        lines.append(f"  {event.name}{interaction}{categorize}")
        for step, process_name in enumerate(event.processes, start=1):
            process = strategy.processes[process_name]
            if process.by_test_group:
                lines.append(f"    {step}. {process_name}  (by test group)")
                for group, names in process.by_test_group.items():
                    lines.append(f"         {group}: {', '.join(names)}")
            else:
                lines.append(f"    {step}. {process_name}: {', '.join(process.mechanisms)}")
    lines += ["", "SEGMENTS (first match) AND TEST GROUPS"]
    for segment in strategy.segments:
        condition = segment.condition.text if segment.condition is not None else "everyone else"
        groups = strategy.test_groups.get(segment.name) or [("champion", 100.0)]
        split = " / ".join(f"{group} {_number(percent)}%" for group, percent in groups)
        lines.append(f"  {segment.name}: {condition}  ->  {split}")
    lines += ["", "MECHANISMS"]
    for item in strategy.mechanisms.values():
        lines.append(f"  {describe_mechanism(item)}")
        lines.extend(_indent(mechanism_lines(item), 4))
        lines.append("")
    if strategy.categories:
        lines.append("CATEGORIES (first match)")
        for rule in strategy.categories:
            condition = rule.condition.text if rule.condition is not None else "everyone else"
            lines.append(f"  {rule.name}: {condition}")
        if strategy.account_actions:
            lines.append("  account actions (per account, the first that applies):")
        for action in strategy.account_actions:
            condition = f" when {action.condition.text}" if action.condition is not None else ""
            lines.append(
                f"    {action.category}: every {action.account_type}{condition} -> {action.action}"
            )
            lines.extend(
                f"      calculate {calculation.output.name} = {calculation.value.text}"
                for calculation in action.calculations
            )
        lines.append("")
    if strategy.rule_groups:
        lines.append("TREATMENT GROUPS (the most specific group naming a treatment decides)")
        for group in sorted(strategy.rule_groups, key=lambda g: g.specificity):
            scope = {
                "segment": group.segment,
                "interaction_type": group.interaction_type,
                "channel": group.channel,
            }
            label = ", ".join(f"{key}={value}" for key, value in scope.items() if value) or "global"
            lines.append(f"  [{label}]  specificity {group.specificity}")
            for rule in group.rules:
                if rule.exclude:
                    lines.append(f"    - {rule.treatment}: excluded")
                else:
                    condition = f" when {rule.condition.text}" if rule.condition is not None else ""
                    lines.append(f"    + {rule.treatment}{condition}")
        lines.append(f"  arbitration: top {strategy.max_per_channel} per channel")
        lines.append("")
    lines.extend(offer_lines(strategy))
    lines.append(f"GOLDEN CASES: {len(strategy.golden_cases)}")
    lines.extend(f"  - {case.name}" for case in strategy.golden_cases)
    return "\n".join(lines).rstrip() + "\n"


def offer_lines(strategy: Strategy) -> list[str]:
    """The treatment catalogue, the engagement policies and the arbitration, as an outline."""
    if not strategy.treatments:
        return []
    lines = ["TREATMENTS (catalogue order breaks score ties)"]
    for treatment in strategy.treatments.values():
        terms = ", ".join(
            f"{term} {expression.text}" for term, expression in treatment.terms.items()
        )
        own = treatment.formula.text != strategy.arbitration_formula
        formula = f"; own formula: score = {treatment.formula.text}" if own else ""
        lines.append(f"  {treatment.name}: {terms}{formula}")
    lines += ["", "ENGAGEMENT POLICIES (a candidate is dropped with the reason)"]
    everything = list(strategy.treatments)
    for policy in ("eligibility", "suitability"):
        rules = [rule for rule in strategy.policies if rule.policy == policy]
        lines.append(f"  {policy}:" + ("" if rules else " none"))
        for rule in rules:
            names = (
                "every treatment" if rule.treatments == everything else ", ".join(rule.treatments)
            )
            lines.append(
                f"    {names}: requires {rule.condition.text}, else dropped as {rule.reason}"
            )
    lines.append("  contact caps:" + ("" if strategy.contact_caps else " none"))
    for cap in strategy.contact_caps:
        channel = "every channel" if cap.channel == "*" else cap.channel
        lines.append(
            f"    {channel}: closed after {cap.max} contact{'s' if cap.max != 1 else ''} "
            f"in {_number(cap.period_days)} days"
        )
    if strategy.decline_limit is None:
        lines.append("  suppression: none")
    else:
        declines, days = strategy.decline_limit
        lines.append(
            f"  suppression: a treatment declined {declines} time{'s' if declines != 1 else ''} "
            f"within {_number(days)} days is dropped"
        )
    levers = ", ".join(f"{name} {_number(value)}" for name, value in strategy.levers.items())
    lines += [
        "",
        "ARBITRATION (highest score first; a null score is dropped)",
        f"  formula: score = {strategy.arbitration_formula}",
        f"  levers: {levers or 'none (lever = 1)'}",
        f"  max per channel: {strategy.max_per_channel}",
        "",
    ]
    return lines


# ---- Mermaid ----------------------------------------------------------------------------

_UNSAFE_ID = re.compile(r"[^A-Za-z0-9_]")


def _node_id(*parts: object) -> str:
    return "_".join(_UNSAFE_ID.sub("_", str(part)) for part in parts)


def _label(text: str) -> str:
    return '"' + text.replace('"', "#quot;").replace("<", "#lt;").replace(">", "#gt;") + '"'


def _mermaid_tree(tree: DecisionTree) -> list[str]:
    lines = [
        f"  subgraph {_node_id('tree', tree.name)}[{_label(describe_mechanism(tree))}]",
        "    direction TB",
    ]
    root = _node_id(tree.name, "root")
    lines.append(f"    {root}{{{{{_label(tree.name)}}}}}")
    counter = [0]

    def walk(branches: list[Branch], parent: str) -> None:
        # branches are tried in order, first match: the edge labels carry the order
        for order, branch in enumerate(branches, start=1):
            counter[0] += 1
            test = branch.condition.text if branch.condition is not None else "else"
            condition = f"{order}. {test}"
            if isinstance(branch.outcome, Leaf):
                node = _node_id(tree.name, "leaf", counter[0])
                text = _value(branch.outcome.value)
                if branch.outcome.call:
                    text += f" + {branch.outcome.call}"
                lines.append(f"    {node}([{_label(text)}])")
                lines.append(f"    {parent} -- {_label(condition)} --> {node}")
            else:
                node = _node_id(tree.name, "node", counter[0])
                lines.append(f"    {node}{{{_label('?')}}}")
                lines.append(f"    {parent} -- {_label(condition)} --> {node}")
                walk(branch.outcome, node)

    walk(tree.branches, root)
    lines.append("  end")
    return lines


def _mermaid_text(item: Mechanism) -> str:
    """A mechanism node's label; a matrix also names its bands."""
    text = describe_mechanism(item)
    if isinstance(item, Matrix) and item.rows is not None:
        text += "; rows " + axis_bands(item.rows.label, item.rows.bands, item.rows.categories)
        if item.columns is not None:
            text += "; columns " + axis_bands(
                item.columns.label, item.columns.bands, item.columns.categories
            )
    return text


def _mermaid_first_match(what: str, rules: list) -> list[str]:
    """Segments or categories as numbered edges: tried in this order, the first that holds wins."""
    if not rules:
        return []
    start = _node_id("first_match", what)
    lines = [f"  {start}{{{{{_label(what + ' (first match)')}}}}}"]
    for order, rule in enumerate(rules, start=1):
        condition = rule.condition.text if rule.condition is not None else "else"
        node = _node_id("first_match", what, rule.name)
        lines.append(f"  {node}[{_label(rule.name)}]")
        lines.append(f"  {start} -- {_label(f'{order}. {condition}')} --> {node}")
    return lines


def _mermaid_account_actions(strategy: Strategy) -> list[str]:
    """Account actions as numbered edges from their category (per account, the first wins)."""
    lines = []
    for order, action in enumerate(strategy.account_actions, start=1):
        node = _node_id("account_action", str(order))
        text = action.action + "".join(
            f"; {item.output.name} = {item.value.text}" for item in action.calculations
        )
        condition = f" when {action.condition.text}" if action.condition is not None else ""
        edge = f"{order}. every {action.account_type}{condition}"
        lines.append(f"  {node}[{_label(text)}]")
        lines.append(
            f"  {_node_id('first_match', 'categories', action.category)} -- {_label(edge)} "
            f"--> {node}"
        )
    return lines


def render_mermaid(strategy: Strategy, *, mechanism: str | None = None) -> str:
    """A Mermaid flowchart: events → processes → mechanisms, then each decision tree."""
    lines = ["flowchart LR"]
    if mechanism is None:
        for event in strategy.events.values():
            event_id = _node_id("event", event.name)
            lines.append(f"  {event_id}[/{_label(event.name)}/]")
            previous = event_id
            for process_name in event.processes:
                process = strategy.processes[process_name]
                process_id = _node_id("process", event.name, process_name)
                lines.append(f"  {process_id}[{_label(process_name)}]")
                lines.append(f"  {previous} --> {process_id}")
                previous = process_id
                if process.by_test_group:
                    for group, names in process.by_test_group.items():
                        for name in names:
                            lines.append(
                                f"  {process_id} -. {_label(group)} .-> "
                                f"{_node_id('mechanism', name)}"
                            )
                else:
                    for order, name in enumerate(process.mechanisms, start=1):
                        lines.append(
                            f"  {process_id} -. {_label(str(order))} .-> "
                            f"{_node_id('mechanism', name)}"
                        )
        for item in strategy.mechanisms.values():
            lines.append(f"  {_node_id('mechanism', item.name)}({_label(_mermaid_text(item))})")
        lines.extend(_mermaid_first_match("segments", strategy.segments))
        lines.extend(_mermaid_first_match("categories", strategy.categories))
        lines.extend(_mermaid_account_actions(strategy))
    trees = [
        item
        for name, item in strategy.mechanisms.items()
        if isinstance(item, DecisionTree) and (mechanism is None or name == mechanism)
    ]
    if mechanism is not None and not trees:
        raise KeyError(f"{mechanism!r} is not a decision tree of strategy {strategy.name!r}")
    for tree in trees:
        lines.extend(_mermaid_tree(tree))
    return "\n".join(lines) + "\n"
