"""One error hierarchy for the strategy language: every error says where and what.

Fields are structured so a CLI, an editor or a test can point at the exact place:
the strategy file, the line, the path inside the strategy (``processes.risk_score.tree``),
the offending symbol and, when there is one, a suggestion (a did-you-mean).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Location:
    """Where in a strategy something was written."""

    file: str | None = None
    line: int | None = None
    column: int | None = None
    path: str | None = None  # dotted path inside the strategy document

    def describe(self) -> str:
        parts = []
        if self.file:
            parts.append(self.file + (f":{self.line}" if self.line is not None else ""))
        elif self.line is not None:
            parts.append(f"line {self.line}")
        if self.path:
            parts.append(self.path)
        return ", ".join(parts)


class EngineError(Exception):
    """Base of every error the strategy language raises."""

    def __init__(
        self,
        message: str,
        *,
        location: Location | None = None,
        symbol: str | None = None,
        suggestion: str | None = None,
    ) -> None:
        self.message = message
        self.location = location or Location()
        self.symbol = symbol
        self.suggestion = suggestion
        super().__init__(self.describe())

    def describe(self) -> str:
        where = self.location.describe()
        text = f"{where}: {self.message}" if where else self.message
        if self.suggestion:
            text += f" (did you mean {self.suggestion!r}?)"
        return text

    def at(self, location: Location) -> EngineError:
        """The same error, placed at ``location`` (fields already known are kept)."""
        merged = Location(
            file=self.location.file or location.file,
            line=self.location.line if self.location.line is not None else location.line,
            column=self.location.column if self.location.column is not None else location.column,
            path=self.location.path or location.path,
        )
        return type(self)(
            self.message, location=merged, symbol=self.symbol, suggestion=self.suggestion
        )


class ExpressionSyntaxError(EngineError):
    """An expression could not be parsed."""


class ExpressionTypeError(EngineError):
    """An expression is well formed but its types do not fit (e.g. ``balance > 'high'``)."""


class UnknownAttributeError(EngineError):
    """An expression or mechanism names an attribute the data dictionary does not declare."""


class StrategyValidationError(EngineError):
    """A strategy file breaks a rule of the format (schema, bands, percentages, cycles…)."""


class EvaluationError(EngineError):
    """A strategy could not be evaluated for given input (missing column, bad user exit…)."""


class GoldenCaseFailure(EngineError):
    """A golden test case inside a strategy gave a different output than expected."""


def suggest(name: str, choices: Iterable[str]) -> str | None:
    """The closest of ``choices`` to a misspelt ``name`` (for a did-you-mean), or None."""
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return close[0] if close else None
