"""How YAML scalars stand for expressions and values of the language's types."""

from __future__ import annotations

from typing import Any

from cx_pipelines.engine.language.expressions import ValueType


def expression_text(value: Any) -> str:
    """The expression a YAML value stands for (numbers and booleans are constants)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return str(value)


def value_type_of(value: Any) -> ValueType | None:
    """The language type of a literal written in YAML (None for anything else)."""
    if isinstance(value, bool):
        return ValueType.BOOLEAN
    if isinstance(value, int | float):
        return ValueType.NUMBER
    if isinstance(value, str):
        return ValueType.STRING
    return None
