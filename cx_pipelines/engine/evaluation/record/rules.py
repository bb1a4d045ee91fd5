"""First-match rules per record (segments, categories), prepared once per strategy.

``first_match`` reads the conditions' compiled record functions directly; should one
fail (a missing attribute, a bad value) the rules are run again with the worded
``evaluate_record`` so the error reads and is placed as the reference puts it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cx_pipelines.engine.evaluation.shared import RECORD_FAILURES, record_function, true


def first_match(rules: list[tuple], record: Mapping[str, Any]) -> Any:
    """The name of the first of ``rules`` (compiled condition or None, name, expression)
    whose condition holds for ``record``; None when none does."""
    try:
        for condition, name, _ in rules:
            if condition is None or condition(record) is True:
                return name
        return None
    except RECORD_FAILURES:
        for _, name, expression in rules:
            if true(expression, record):
                return name
        return None


def rules_of(items: list, name: str = "name") -> list[tuple]:
    """Segments or category rules as ``first_match`` reads them."""
    return [
        (record_function(item.condition), getattr(item, name), item.condition) for item in items
    ]
