"""Load a strategy file: YAML → schema check → names, types and structure → :class:`Strategy`.

Every problem is collected with its file, line and path so an analyst sees all of them
at once (``check_strategy``); ``load_strategy`` raises the first one. Warnings (such as
unreachable branches) do not stop loading and are kept on ``strategy.warnings``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from cx_pipelines.engine.language import model as m
from cx_pipelines.engine.language.errors import (
    EngineError,
    StrategyValidationError,
    UnknownAttributeError,
    suggest,
)
from cx_pipelines.engine.language.expressions import ValueType, compile_expression
from cx_pipelines.engine.language.literals import expression_text
from cx_pipelines.engine.language.source import SourceMap, read_strategy_source
from cx_pipelines.engine.loading.checks import CrossChecks
from cx_pipelines.engine.loading.dataflow import DataflowChecks
from cx_pipelines.engine.loading.flow import FlowCompiler
from cx_pipelines.engine.loading.mechanisms import MechanismCompiler
from cx_pipelines.engine.loading.offers import OfferCompiler
from cx_pipelines.engine.loading.schema import VALIDATOR


class Compiler(MechanismCompiler, FlowCompiler, OfferCompiler, CrossChecks, DataflowChecks):
    """Compiles one strategy document, collecting every error and warning on the way.

    The sections live in mixins: ``flow`` (dictionary, segments, routing),
    ``mechanisms`` (outputs, each kind's ``load``, calls), ``offers`` (treatments,
    arbitration, policies), ``checks`` (whole-strategy cross-checks) and ``dataflow``
    (nothing read before it is set); the shared helpers below are also what a mechanism
    kind's ``load`` is given.
    """

    def __init__(self, data: dict, source: SourceMap) -> None:
        self.data = data
        self.source = source
        self.errors: list[EngineError] = []
        self.warnings: list[EngineError] = []
        self.attributes: dict[str, m.Attribute] = {}
        self.written: dict[str, list[str]] = {}

    # ------------------------------------------------------------ helpers
    def loc(self, *path: str | int):
        return self.source.location(path)

    def error(self, message: str, path: Sequence[str | int], *, symbol=None, suggestion=None):
        self.errors.append(
            StrategyValidationError(
                message, location=self.loc(*path), symbol=symbol, suggestion=suggestion
            )
        )

    def scope(self, over: str | None) -> dict[str, ValueType]:
        types = dict(m.BUILTIN_ATTRIBUTES)
        for name, attribute in self.attributes.items():
            if attribute.account_type is None or attribute.account_type == over:
                types[name] = attribute.value_type
        return types

    def expression(
        self, value: Any, path: Sequence[str | int], *, over: str | None, expected: ValueType | None
    ) -> m.Expression | None:
        text = expression_text(value)
        try:
            compiled = compile_expression(
                text,
                attribute_types=self.scope(over),
                location=self.source.expression_location(path, text),
                expected_type=expected,
            )
        except EngineError as problem:
            if isinstance(problem, UnknownAttributeError) and over is None and problem.symbol:
                prefix = str(problem.symbol).split(".")[0]
                if prefix in self.account_types:
                    problem = UnknownAttributeError(
                        problem.message
                        + f"; account attributes like {problem.symbol!r} can only be read by "
                        f"a mechanism with `over: {prefix}` (aggregate them to the customer)",
                        location=problem.location,
                        symbol=problem.symbol,
                        suggestion=problem.suggestion,
                    )
            self.errors.append(problem.at(self.loc(*path)))
            return None
        return m.Expression(text=text, compiled=compiled)

    def attribute_ref(
        self, name: str, path: Sequence[str | int], *, over: str | None
    ) -> m.Attribute | None:
        scope = self.scope(over)
        if name in self.attributes and name in scope:
            return self.attributes[name]
        if name in self.attributes:
            self.error(
                f"attribute {name!r} belongs to account type "
                f"{self.attributes[name].account_type!r} and cannot be read here",
                path,
                symbol=name,
            )
        else:
            self.errors.append(
                UnknownAttributeError(
                    f"unknown attribute {name!r}: declare it in data_dictionary",
                    location=self.loc(*path),
                    symbol=name,
                    suggestion=suggest(name, [n for n in scope if n not in m.BUILTIN_ATTRIBUTES]),
                )
            )
        return None

    def check_name(self, name: str, known: Iterable[str], what: str, path, hint: str = "") -> bool:
        known = list(known)
        if name in known:
            return True
        self.error(
            f"unknown {what} {name!r}{hint}; known: {', '.join(known) or '(none)'}",
            path,
            symbol=name,
            suggestion=suggest(name, known),
        )
        return False


def content_hash(data: dict) -> str:
    """A stable hash of the strategy's content (comments and layout do not change it)."""
    canonical = json.dumps(data, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


def compile_strategy(
    data: dict, source: SourceMap
) -> tuple[m.Strategy | None, list[EngineError], list[EngineError]]:
    """Build the strategy; returns it (None when there are errors), errors and warnings."""
    compiler = Compiler(data, source)
    compiler.data_dictionary()
    mechanisms = compiler.mechanisms()
    compiler.calls(mechanisms)
    segments = compiler.segments()
    salt, groups = compiler.test_groups(segments)
    processes = compiler.processes(groups, mechanisms)
    events = compiler.events(processes)
    categories, actions = compiler.categories()
    compiler.dataflow(events, segments, processes, mechanisms, categories, actions)
    catalogue, rule_groups, max_per_channel, levers = compiler.treatments(segments)
    policies, caps, declines = compiler.policies(
        list((data.get("treatments") or {}).get("catalogue", {}))
    )
    compiler.derived_written()
    golden = compiler.golden(events)
    compiler.unused()
    if compiler.errors:
        return None, compiler.errors, compiler.warnings
    strategy = m.Strategy(
        name=data["strategy"],
        version=data.get("version"),
        description=data.get("description", ""),
        file=source.file,
        content_hash=content_hash(data),
        attributes=compiler.attributes,
        account_types=compiler.account_types,
        channels=list(data.get("channels") or []),
        interaction_types=list(data.get("interaction_types") or []),
        events=events,
        segments=segments,
        salt=salt,
        test_groups=groups,
        processes=processes,
        mechanisms=mechanisms,
        categories=categories,
        account_actions=actions,
        treatments=catalogue,
        rule_groups=rule_groups,
        policies=policies,
        contact_caps=caps,
        decline_limit=declines,
        levers=levers,
        max_per_channel=max_per_channel,
        golden_cases=golden,
        warnings=compiler.warnings,
        arbitration_formula=expression_text(
            (data.get("arbitration") or {}).get("formula", "propensity * value * lever")
        ),
    )
    return strategy, [], compiler.warnings


def check_strategy(path: str | Path) -> tuple[list[EngineError], list[EngineError]]:
    """All errors and warnings of a strategy file (empty lists when it is clean)."""
    try:
        data, source, _ = read_strategy_source(path, VALIDATOR)
    except EngineError as problem:
        return [problem, *getattr(problem, "others", [])], []
    _, errors, warnings = compile_strategy(data, source)
    return errors, warnings


def load_strategy(path: str | Path) -> m.Strategy:
    """Load and validate a strategy file; raises the first :class:`EngineError` found.

    The raised error carries the remaining ones as ``error.others``.
    """
    data, source, _ = read_strategy_source(path, VALIDATOR)
    strategy, errors, _ = compile_strategy(data, source)
    if errors:
        first = errors[0]
        first.others = errors[1:]  # type: ignore[attr-defined]
        raise first
    assert strategy is not None
    return strategy
