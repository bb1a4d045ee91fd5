"""Structural checks an analyst can act on: bands, call cycles, unreachable branches, and
branch lists that let rows fall through to null."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

from cx_pipelines.engine.language.errors import EngineError, StrategyValidationError
from cx_pipelines.engine.language.source import SourceMap


def _show(bound: float | None, low: bool) -> str:
    if bound is None:
        return "-inf" if low else "+inf"
    return f"{bound:g}"


def band_problems(bands: Sequence[tuple[float | None, float | None]]) -> list[tuple[str, int]]:
    """Gaps, overlaps, empty or misplaced bands among half-open ``[from, to)`` intervals.

    Bands must be listed in ascending order; each problem is returned with the index of
    the band that shows it.
    """
    problems = []
    for index, (low, high) in enumerate(bands):
        if low is not None and high is not None and low >= high:
            problems.append(
                (
                    f"band [{_show(low, True)}, {_show(high, False)}) is empty: "
                    "`from` must be below `to`",
                    index,
                )
            )
        if index and low is None:
            problems.append(("only the first band may start at null (-inf)", index))
        if index < len(bands) - 1 and high is None:
            problems.append(("only the last band may end at null (+inf)", index))
    for index in range(1, len(bands)):
        previous_high = bands[index - 1][1]
        low = bands[index][0]
        if previous_high is None or low is None:
            continue
        if low > previous_high:
            problems.append(
                (
                    f"gap between bands: nothing covers [{previous_high:g}, {low:g}) "
                    f"(band {index - 1} ends at {previous_high:g}, band {index} starts at {low:g})",
                    index,
                )
            )
        elif low < previous_high:
            problems.append(
                (
                    f"bands overlap on [{low:g}, {previous_high:g}) "
                    f"(band {index - 1} ends at {previous_high:g}, band {index} starts at {low:g})",
                    index,
                )
            )
    return problems


def find_call_cycle(graph: dict[str, list[str]]) -> list[str] | None:
    """A cycle in the call graph as ``[a, b, ..., a]``, or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for target in graph.get(node, []):
            if state.get(target) == 1:
                return stack[stack.index(target) :] + [target]
            if target not in state:
                found = visit(target)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


_NUMBER = r"-?[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?"
_NAME = r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*"
_SIMPLE = re.compile(rf"^\s*({_NAME})\s*(<=|>=|<|>|==)\s*({_NUMBER})\s*$")
_REVERSED = re.compile(rf"^\s*({_NUMBER})\s*(<=|>=|<|>|==)\s*({_NAME})\s*$")
_FLIP = {"<": ">", ">": "<", "<=": ">=", ">=": "<=", "==": "=="}
_TEXT_EQUALS = re.compile(rf"^\s*({_NAME})\s*==\s*('(?:[^'\\]|\\.)*')\s*$")
_NEGATE = {"<": ">=", ">": "<=", "<=": ">", ">=": "<"}

# an interval: (low, low_closed, high, high_closed)
Interval = tuple[float, bool, float, bool]
_EVERYTHING: Interval = (-math.inf, False, math.inf, False)


def _simple_condition(value: Any) -> tuple[str, str, float] | None:
    if not isinstance(value, str):
        return None
    match = _SIMPLE.match(value)
    if match:
        return match.group(1), match.group(2), float(match.group(3))
    match = _REVERSED.match(value)
    if match:
        return match.group(3), _FLIP[match.group(2)], float(match.group(1))
    return None


def _ray(operator: str, number: float) -> Interval:
    return {
        "<": (-math.inf, False, number, False),
        "<=": (-math.inf, False, number, True),
        ">": (number, False, math.inf, False),
        ">=": (number, True, math.inf, False),
        "==": (number, True, number, True),
    }[operator]


def _intersect(a: Interval, b: Interval) -> Interval:
    low, low_closed = max((a[0], not a[1]), (b[0], not b[1]))
    high, high_open = min((a[2], not a[3]), (b[2], not b[3]))
    return (low, not low_closed, high, not high_open)


def _empty(interval: Interval) -> bool:
    low, low_closed, high, high_closed = interval
    return low > high or (low == high and not (low_closed and high_closed))


def unreachable_branches(
    branches: list, path: tuple, source: SourceMap, known: dict[str, Interval] | None = None
) -> list[EngineError]:
    """Warnings for branches no customer can reach.

    Found: anything after an `else` or an always-true `when`; a `when` repeated from an
    earlier sibling; a simple comparison (``attr < 500``) that the conditions above it
    (ancestors true, earlier siblings false) already rule out.
    """
    known = dict(known or {})
    warnings: list[EngineError] = []
    seen_texts: set[str] = set()
    closed_by: str | None = None
    for index, branch in enumerate(branches):
        at = (*path, index)
        if closed_by is not None:
            warnings.append(
                StrategyValidationError(
                    f"unreachable branch: it follows {closed_by}, which catches every case",
                    location=source.location(at),
                )
            )
            continue
        if "else" in branch:
            closed_by = f"the `else` at {path[-1]}[{index}]"
            inner = branch["else"]
            if isinstance(inner, list):
                warnings += unreachable_branches(inner, (*at, "else"), source, known)
            continue
        if "missing" in branch:  # `missing: x` is `x is null`: no interval to narrow
            if isinstance(branch["then"], list):
                warnings += unreachable_branches(branch["then"], (*at, "then"), source, known)
            continue
        condition = branch["when"]
        text = str(condition).strip()
        if condition is True or text == "true":
            closed_by = f"`when: true` at {path[-1]}[{index}]"
        if text in seen_texts:
            warnings.append(
                StrategyValidationError(
                    f"unreachable branch: the same condition {text!r} is tested above",
                    location=source.location((*at, "when")),
                )
            )
            continue
        seen_texts.add(text)
        simple = _simple_condition(condition)
        inner_known = dict(known)
        if simple:
            name, operator, number = simple
            current = known.get(name, _EVERYTHING)
            reachable = _intersect(current, _ray(operator, number))
            if _empty(reachable):
                warnings.append(
                    StrategyValidationError(
                        f"unreachable branch: {text!r} can never hold here, the conditions above "
                        f"already limit {name}",
                        location=source.location((*at, "when")),
                        symbol=name,
                    )
                )
                continue
            inner_known[name] = reachable
            if operator in _NEGATE:
                known[name] = _intersect(current, _ray(_NEGATE[operator], number))
        if isinstance(branch["then"], list):
            warnings += unreachable_branches(branch["then"], (*at, "then"), source, inner_known)
    return warnings


def _interval_text(name: str, interval: Interval) -> str:
    low, low_closed, high, high_closed = interval
    lower = f"{name} {'>=' if low_closed else '>'} {low:g}"
    upper = f"{name} {'<=' if high_closed else '<'} {high:g}"
    if low == -math.inf:
        return upper
    if high == math.inf:
        return lower
    return f"{lower} and {upper}"


def fall_through(
    branches: list,
    path: tuple,
    source: SourceMap,
    tree: str,
    known: dict | None = None,
    caught: frozenset[str] = frozenset(),
) -> list[EngineError]:
    """Warnings for branch lists without a final `else`, saying which rows get null.

    When every condition of the list is a simple comparison (``attr < 500``), the rows
    left are described as intervals (given what the conditions above already imply), and
    the attributes a null would slip through (those without a `missing:` branch here or
    above: ``caught``).
    """
    known = dict(known or {})
    warnings: list[EngineError] = []
    simple = True
    compared: list[str] = []
    excluded: dict[str, list[str]] = {}  # text attribute → literals its `==` branches take
    missing: set[str] = set(caught)
    closed = False
    for index, branch in enumerate(branches):
        at = (*path, index)
        if "else" in branch:
            closed = True
            if isinstance(branch["else"], list):
                warnings += fall_through(
                    branch["else"], (*at, "else"), source, tree, known, frozenset(missing)
                )
            continue
        inner_known = dict(known)
        if "missing" in branch:
            missing.add(str(branch["missing"]).strip())
        else:
            condition = branch["when"]
            if condition is True or str(condition).strip() == "true":
                closed = True
            parsed = _simple_condition(condition)
            text_equals = _TEXT_EQUALS.match(condition) if isinstance(condition, str) else None
            if text_equals and text_equals.group(1) not in known:
                name, literal = text_equals.groups()
                excluded.setdefault(name, []).append(literal)
                if name not in compared:
                    compared.append(name)
            elif parsed is None or parsed[1] not in _NEGATE or parsed[0] in excluded:
                simple = False
            else:
                name, operator, number = parsed
                current = known.get(name, _EVERYTHING)
                inner_known[name] = _intersect(current, _ray(operator, number))
                known[name] = _intersect(current, _ray(_NEGATE[operator], number))
                if name not in compared:
                    compared.append(name)
        if isinstance(branch["then"], list):
            warnings += fall_through(
                branch["then"], (*at, "then"), source, tree, inner_known, frozenset(missing)
            )
    if closed:
        return warnings
    if not simple or not compared:
        rows = "none of the conditions hold"
    elif any(_empty(known[name]) for name in compared if name in known):
        rows = " or ".join(f"{name} is null" for name in compared if name not in missing)
    else:
        rows = " and ".join(
            _interval_text(name, known[name])
            if name in known
            else f"{name} != {excluded[name][0]}"
            if len(excluded[name]) == 1
            else f"{name} not in [{', '.join(excluded[name])}]"
            for name in compared
        )
        nulls = [f"{name} is null" for name in compared if name not in missing]
        if nulls:
            rows += f" (or {' or '.join(nulls)})"
    if rows:
        warnings.append(
            StrategyValidationError(
                f"decision tree {tree!r} has no final `else`: rows where {rows} get null "
                "(add `else:`, or `missing:` for nulls)",
                location=source.location((*path, len(branches) - 1)),
            )
        )
    return warnings
