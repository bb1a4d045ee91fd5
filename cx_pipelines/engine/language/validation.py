"""Structural checks an analyst can act on: bands, call cycles, unreachable branches."""

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
