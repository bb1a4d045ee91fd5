"""The cells of a decision table: how a cell reads as a condition, and the load-time
coverage check (rules an earlier rule always pre-empts, inputs no rule matches).

A cell is ``-`` (any value, null included), a comparison tail (``< 540``,
``in ['gold', 'silver']``, ``in 1..5``, ``is null``), a DMN interval (``[600..750)``) or a
literal (read as ``== literal``). :func:`cell_expression` turns it into the expression
``(input) <cell>``; :func:`coverage_warnings` understands the cells that are number
comparisons, intervals and literal lists, and says nothing about tables with other cells.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from cx_pipelines.engine.language.errors import StrategyValidationError
from cx_pipelines.engine.language.literals import expression_text

MAX_REGIONS = 50_000  # input combinations the completeness check looks at, at most

_NUMBER = r"-?[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?"
_TAIL = re.compile(r"^(<=|>=|<|>|==|!=|in\b|not\b|is\b)")
_INTERVAL = re.compile(rf"^([\[(])\s*({_NUMBER})\s*\.\.\s*({_NUMBER})\s*([\])])$")


def cell_problem(cell: Any) -> str | None:
    """What is wrong with a cell that starts as a DMN interval but is not one, else None."""
    text = expression_text(cell).strip()
    if text[:1] in ("[", "(") and ".." in text and not _INTERVAL.match(text):
        return (
            f"cell {text!r} is not an interval: write both ends as numbers, `[a..b]`, "
            "`[a..b)`, `(a..b]` or `(a..b)`; for an open end write a comparison (`>= 600`)"
        )
    return None


def cell_expression(subject: str, cell: Any) -> str | None:
    """The condition a cell stands for, on ``subject`` (the input's text); None for ``-``."""
    text = expression_text(cell).strip()
    if text in ("", "-"):
        return None
    subject = f"({subject})"
    interval = _INTERVAL.match(text)
    if interval:
        opening, low, high, closing = interval.groups()
        low_operator = ">=" if opening == "[" else ">"
        high_operator = "<=" if closing == "]" else "<"
        return f"{subject} {low_operator} {low} and {subject} {high_operator} {high}"
    if _TAIL.match(text):
        return f"{subject} {text}"
    return f"{subject} == {text}"


# ---------------------------------------------------------------- coverage analysis
@dataclass(frozen=True)
class _Range:
    low: float | None
    low_closed: bool
    high: float | None
    high_closed: bool

    def holds(self, value: Any) -> bool:
        if not isinstance(value, float):
            return False
        if self.low is not None and not (
            value >= self.low if self.low_closed else value > self.low
        ):
            return False
        return self.high is None or (value <= self.high if self.high_closed else value < self.high)


_COMPARISON = re.compile(rf"^(<=|>=|<|>|==)?\s*({_NUMBER})$")
_RANGE = re.compile(rf"^in\s+({_NUMBER})\s*\.\.\s*({_NUMBER})$")
_ITEM = re.compile(rf"\s*('(?:[^'\\]|\\.)*'|{_NUMBER})\s*(?:,|$)")


def _analysed(cell: Any) -> Any:
    """A cell as something the coverage check understands: ``None`` (any value), a
    :class:`_Range`, a frozenset of literals, or ``False`` (not understood)."""
    text = expression_text(cell).strip()
    if text in ("", "-"):
        return None
    if match := _INTERVAL.match(text):
        opening, low, high, closing = match.groups()
        return _Range(float(low), opening == "[", float(high), closing == "]")
    if match := _RANGE.match(text):
        return _Range(float(match.group(1)), True, float(match.group(2)), True)
    if match := _COMPARISON.match(text):
        operator, number = match.group(1) or "==", float(match.group(2))
        return {
            "<": _Range(None, False, number, False),
            "<=": _Range(None, False, number, True),
            ">": _Range(number, False, None, False),
            ">=": _Range(number, True, None, False),
            "==": _Range(number, True, number, True),
        }[operator]
    listed = text[2:].strip() if text.startswith("in") else text.removeprefix("==").strip()
    if listed.startswith("["):
        if not listed.endswith("]"):
            return False
        listed = listed[1:-1]
    items, position = [], 0
    while position < len(listed):
        match = _ITEM.match(listed, position)
        if not match:
            return False
        item = match.group(1)
        items.append(item[1:-1].replace("\\'", "'") if item.startswith("'") else float(item))
        position = match.end()
    return frozenset(items) if items and all(isinstance(i, str) for i in items) else False


class _Other:
    """A text value that no literal of the column equals."""

    def __repr__(self) -> str:
        return "other"


def _regions(cells: list[Any]) -> list[tuple[Any, str]] | None:
    """Representative values of one input's elementary regions, with how to describe them."""
    ranges = [c for c in cells if isinstance(c, _Range)]
    sets = [c for c in cells if isinstance(c, frozenset)]
    if ranges and sets:
        return None
    if sets:
        literals = sorted(set().union(*sets))
        shown = ", ".join(repr(v) for v in literals)
        return [(v, f"== {v!r}") for v in literals] + [(_Other(), f"not in [{shown}]")]
    points = sorted({b for r in ranges for b in (r.low, r.high) if b is not None})
    if not points:
        return [(0.0, "")]
    regions = [(points[0] - 1.0, f"< {points[0]:g}")]
    for index, point in enumerate(points):
        regions.append((point, f"== {point:g}"))
        if index + 1 < len(points):
            regions.append(
                ((point + points[index + 1]) / 2, f"in ({point:g}..{points[index + 1]:g})")
            )
    regions.append((points[-1] + 1.0, f"> {points[-1]:g}"))
    return regions


def _covers(cell: Any, value: Any) -> bool:
    if cell is None:
        return True
    if isinstance(cell, _Range):
        return cell.holds(value)
    return value in cell


def coverage_warnings(table: Any, spec: dict, path: tuple, source) -> list:
    """Load warnings of a decision table (its ``inputs``, ``rules``, ``hit_policy``,
    ``default``) written as ``spec`` at ``path`` of ``source``."""
    cells = [[_analysed(cell) for cell in rule["when"]] for rule in spec["rules"]]
    if any(cell is False for row in cells for cell in row):
        return []
    columns = [_regions([row[i] for row in cells]) for i in range(len(table.inputs))]
    if any(column is None for column in columns):
        return []
    covered = [
        [
            frozenset(k for k, (value, _) in enumerate(column) if _covers(row[i], value))
            for i, column in enumerate(columns)
        ]
        for row in cells
    ]
    warnings = []
    if table.hit_policy == "first":
        for later in range(len(cells)):
            for earlier in range(later):
                if all(covered[earlier][i] >= covered[later][i] for i in range(len(columns))):
                    shadowed = table.rules[later].label
                    warnings.append(
                        StrategyValidationError(
                            f"unreachable rule: {shadowed} never hits, because "
                            f"{table.rules[earlier].label} above it matches every input that "
                            f"{shadowed} matches (the first hit wins)",
                            location=source.location((*path, "rules", later)),
                        )
                    )
                    break
    if table.hit_policy == "first" and table.default is None:
        missing = _uncovered(columns, covered)
        if missing is not None:
            where = " and ".join(
                f"{table.inputs[i]} {columns[i][k][1]}" for i, k in missing if columns[i][k][1]
            )
            warnings.append(
                StrategyValidationError(
                    f"incomplete decision table: no rule matches {where or 'some inputs'} "
                    "(those get null; add a rule or `default:`)",
                    location=source.location((*path, "rules")),
                )
            )
    return warnings


def _uncovered(columns: list, covered: list) -> list[tuple[int, int]] | None:
    """An input combination no rule matches, as (input, region) pairs, leaving out the
    inputs whose every value leaves it unmatched; None when every combination matches."""
    if np.prod([len(c) for c in columns]) > MAX_REGIONS:
        return None

    def matched(combination) -> bool:
        return any(all(k in row[i] for i, k in enumerate(combination)) for row in covered)

    for combination in itertools.product(*[range(len(c)) for c in columns]):
        if matched(combination):
            continue
        return [
            (i, k)
            for i, k in enumerate(combination)
            if any(
                matched((*combination[:i], other, *combination[i + 1 :]))
                for other in range(len(columns[i]))
            )
        ]
    return None
