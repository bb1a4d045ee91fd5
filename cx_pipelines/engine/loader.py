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

from cx_pipelines.engine import model as m
from cx_pipelines.engine.errors import (
    EngineError,
    StrategyValidationError,
    UnknownAttributeError,
)
from cx_pipelines.engine.expressions import ValueType, compile_expression
from cx_pipelines.engine.loader_mechanisms import MechanismCompiler, _suggest, expression_text
from cx_pipelines.engine.source import SourceMap, read_strategy_source

_TYPES = {t.value: t for t in ValueType}


class _Compiler(MechanismCompiler):
    """Compiles one strategy document, collecting every error and warning on the way."""

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
                location=self.loc(*path),
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
                    suggestion=_suggest(name, [n for n in scope if n not in m.BUILTIN_ATTRIBUTES]),
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
            suggestion=_suggest(name, known),
        )
        return False

    # ------------------------------------------------------------ sections
    def data_dictionary(self) -> None:
        dictionary = self.data["data_dictionary"]
        for name, spec in dictionary.get("customer", {}).items():
            self.attributes[name] = m.Attribute(
                name, _TYPES[spec["type"]], bool(spec.get("derived")), None, name
            )
        if "customer_id" not in self.attributes:
            self.error(
                "the data dictionary needs `customer_id: {type: string}` (or number)",
                ("data_dictionary", "customer"),
            )
        for name in m.BUILTIN_ATTRIBUTES:
            if name in self.attributes:
                self.error(
                    f"{name!r} is set by the engine; do not declare it",
                    ("data_dictionary", "customer", name),
                )
        self.account_types: dict[str, int | None] = {}
        for account_type, spec in (dictionary.get("accounts") or {}).items():
            self.account_types[account_type] = spec.get("max_iterations")
            if account_type in self.attributes or any(
                a.startswith(account_type + ".") for a in self.attributes
            ):
                self.error(
                    f"account type {account_type!r} clashes with a customer attribute name",
                    ("data_dictionary", "accounts", account_type),
                )
            for name, attribute in spec["attributes"].items():
                full = f"{account_type}.{name}"
                self.attributes[full] = m.Attribute(
                    full,
                    _TYPES[attribute["type"]],
                    bool(attribute.get("derived")),
                    account_type,
                    name,
                )

    def segments(self) -> list[m.Segment]:
        result = []
        items = self.data["segments"]
        names = set()
        for index, item in enumerate(items):
            at = ("segments", index)
            if item["name"] in names:
                self.error(f"segment {item['name']!r} is declared twice", (*at, "name"))
            names.add(item["name"])
            last = index == len(items) - 1
            condition = None
            if "when" in item:
                condition = self.expression(
                    item["when"], (*at, "when"), over=None, expected=ValueType.BOOLEAN
                )
                if last:
                    self.error(
                        "the last segment must have no `when`, so every customer has a segment",
                        (*at, "when"),
                    )
            elif not last:
                self.error("only the last segment may omit `when` (segments are first-match)", at)
            result.append(m.Segment(item["name"], condition))
        return result

    def test_groups(
        self, segments: list[m.Segment]
    ) -> tuple[str, dict[str, list[tuple[str, float]]]]:
        spec = self.data.get("test_groups") or {"salt": "", "by_segment": {}}
        names = [s.name for s in segments]
        by_segment = spec.get("by_segment") or {}
        result: dict[str, list[tuple[str, float]]] = {}
        for segment in by_segment:
            self.check_name(segment, names, "segment", ("test_groups", "by_segment", segment))
        for segment in names:
            if segment in by_segment:
                groups, at = by_segment[segment], ("test_groups", "by_segment", segment)
            elif "default" in spec:
                groups, at = spec["default"], ("test_groups", "default")
            else:
                groups, at = {"champion": 100}, ("test_groups",)
            total = sum(groups.values())
            if abs(total - 100) > 1e-9:
                self.error(
                    f"test group percentages of segment {segment!r} sum to {total:g}, not 100",
                    at,
                )
            result[segment] = [(g, float(p)) for g, p in groups.items()]
        return spec.get("salt", ""), result

    def processes(
        self, groups: dict[str, list[tuple[str, float]]], mechanisms
    ) -> dict[str, m.Process]:
        all_groups = sorted({g for items in groups.values() for g, _ in items})
        result = {}
        for name, spec in self.data["processes"].items():
            at = ("processes", name)

            def resolve(value, path) -> list[str]:
                names = value if isinstance(value, list) else [value]
                found = []
                for index, item in enumerate(names):
                    where = (*path, index) if isinstance(value, list) else path
                    if self.check_name(item, self.data["mechanisms"], "mechanism", where):
                        found.append(item)
                return found

            if "by_test_group" in spec:
                table = {}
                for group, value in spec["by_test_group"].items():
                    if group != "default":
                        self.check_name(
                            group, all_groups, "test group", (*at, "by_test_group", group)
                        )
                    table[group] = resolve(value, (*at, "by_test_group", group))
                if "default" not in table:
                    for segment, items in groups.items():
                        for group, _ in items:
                            if group not in table:
                                self.error(
                                    f"test group {group!r} of segment {segment!r} has no "
                                    f"mechanism in process {name!r}; add it under "
                                    "`by_test_group` or add `default:`",
                                    (*at, "by_test_group"),
                                )
                result[name] = m.Process(name, [], table)
            elif "mechanisms" in spec:
                result[name] = m.Process(name, resolve(spec["mechanisms"], (*at, "mechanisms")))
            else:
                result[name] = m.Process(name, resolve(spec["mechanism"], (*at, "mechanism")))
        return result

    def events(self, processes) -> dict[str, m.Event]:
        result = {}
        declared_types = self.data.get("interaction_types")
        for name, spec in self.data["events"].items():
            at = ("events", name)
            if isinstance(spec, list):
                spec = {"processes": spec}
                process_path = at
            else:
                process_path = (*at, "processes")
            interaction_type = spec.get("interaction_type")
            if interaction_type is not None and declared_types is not None:
                self.check_name(
                    interaction_type, declared_types, "interaction type", (*at, "interaction_type")
                )
            for index, process in enumerate(spec["processes"]):
                self.check_name(process, processes, "process", (*process_path, index))
            result[name] = m.Event(
                name, interaction_type, list(spec["processes"]), spec.get("categorize", True)
            )
        return result

    def categories(self) -> tuple[list[m.CategoryRule], list[m.AccountAction]]:
        spec = self.data.get("categories")
        if not spec:
            return [], []
        rules = []
        for index, item in enumerate(spec["rules"]):
            at = ("categories", "rules", index)
            last = index == len(spec["rules"]) - 1
            condition = None
            if "when" in item:
                condition = self.expression(
                    item["when"], (*at, "when"), over=None, expected=ValueType.BOOLEAN
                )
            elif not last:
                self.error(
                    "only the last category may omit `when` (categories are first-match)", at
                )
            rules.append(m.CategoryRule(item["name"], condition))
        names = [r.name for r in rules]
        actions = []
        for index, item in enumerate(spec.get("account_actions") or []):
            at = ("categories", "account_actions", index)
            self.check_name(item["category"], names, "category", (*at, "category"))
            if not self.check_name(
                item["account_type"], self.account_types, "account type", (*at, "account_type")
            ):
                continue
            condition = None
            if "when" in item:
                condition = self.expression(
                    item["when"],
                    (*at, "when"),
                    over=item["account_type"],
                    expected=ValueType.BOOLEAN,
                )
            actions.append(
                m.AccountAction(item["category"], item["account_type"], condition, item["action"])
            )
        return rules, actions

    def treatments(self, segments) -> tuple[dict[str, m.Treatment], list[m.RuleGroup], float, dict]:
        spec = self.data.get("treatments")
        arbitration = self.data.get("arbitration") or {"formula": "propensity * value * lever"}
        if not spec:
            return {}, [], 1, {}
        formula_scope_terms = {t: ValueType.NUMBER for t in m.ARBITRATION_TERMS}
        for term in m.ARBITRATION_TERMS:
            if term in self.attributes:
                self.error(
                    f"{term!r} is an arbitration term; rename the attribute",
                    ("data_dictionary", "customer", term),
                )
        catalogue = {}
        for name, item in spec["catalogue"].items():
            at = ("treatments", "catalogue", name)
            terms = {}
            for term in ("propensity", "value", "margin", "uplift", "cost"):
                if term in item:
                    compiled = self.expression(
                        item[term], (*at, term), over=None, expected=ValueType.NUMBER
                    )
                    if compiled is not None:
                        terms[term] = compiled
            formula_value = item.get("formula", arbitration["formula"])
            formula_path = (*at, "formula") if "formula" in item else ("arbitration", "formula")
            formula = self._formula(formula_value, formula_path, formula_scope_terms)
            if formula is not None:
                missing = sorted(
                    t
                    for t in formula.compiled.attributes
                    if t in formula_scope_terms and t != "lever" and t not in item
                )
                if missing:
                    self.error(
                        f"the arbitration formula of {name!r} uses {', '.join(missing)} but the "
                        f"treatment does not define {'it' if len(missing) == 1 else 'them'}",
                        at,
                    )
                catalogue[name] = m.Treatment(name, terms, formula)
        segment_names = [s.name for s in segments]
        channels = self.data.get("channels") or []
        declared_types = self.data.get("interaction_types")
        groups = []
        scopes: dict[tuple, int] = {}
        rule_id = 0
        for index, group in enumerate(spec["groups"]):
            at = ("treatments", "groups", index)
            scope = group["scope"]
            if "segment" in scope:
                self.check_name(
                    scope["segment"], segment_names, "segment", (*at, "scope", "segment")
                )
            if "channel" in scope:
                self.check_name(scope["channel"], channels, "channel", (*at, "scope", "channel"))
            if "interaction_type" in scope and declared_types is not None:
                self.check_name(
                    scope["interaction_type"],
                    declared_types,
                    "interaction type",
                    (*at, "scope", "interaction_type"),
                )
            key = (scope.get("segment"), scope.get("interaction_type"), scope.get("channel"))
            if key in scopes:
                self.error(
                    f"two rule groups have the same scope (the other is "
                    f"groups[{scopes[key]}]); merge them",
                    (*at, "scope"),
                )
            scopes[key] = index
            rules = []
            seen = set()
            for j, rule in enumerate(group["rules"]):
                where = (*at, "rules", j)
                if not self.check_name(
                    rule["treatment"], spec["catalogue"], "treatment", (*where, "treatment")
                ):
                    continue
                if rule["treatment"] in seen:
                    self.error(
                        f"treatment {rule['treatment']!r} appears twice in this group", where
                    )
                seen.add(rule["treatment"])
                condition = None
                if "when" in rule:
                    condition = self.expression(
                        rule["when"], (*where, "when"), over=None, expected=ValueType.BOOLEAN
                    )
                rules.append(
                    m.TreatmentRule(
                        rule_id,
                        rule["treatment"],
                        condition,
                        bool(rule.get("exclude")),
                        self.source.location(where).path or "",
                    )
                )
                rule_id += 1
            groups.append(m.RuleGroup(*key, rules))
        levers = dict(arbitration.get("levers") or {})
        for name in levers:
            if name != "default":
                self.check_name(
                    name, spec["catalogue"], "treatment", ("arbitration", "levers", name)
                )
        return catalogue, groups, int(arbitration.get("max_per_channel", 3)), levers

    def _formula(self, value, path, terms):
        text = expression_text(value)
        scope = {**self.scope(None), **terms}
        try:
            compiled = compile_expression(
                text,
                attribute_types=scope,
                location=self.loc(*path),
                expected_type=ValueType.NUMBER,
            )
        except EngineError as problem:
            self.errors.append(problem.at(self.loc(*path)))
            return None
        return m.Expression(text, compiled)

    def policies(
        self, catalogue_names
    ) -> tuple[list[m.PolicyRule], list[m.ContactCap], tuple | None]:
        spec = self.data.get("policies") or {}
        rules = []
        for policy in ("eligibility", "suitability"):
            for index, item in enumerate(spec.get(policy) or []):
                at = ("policies", policy, index)
                treatments = item["treatments"]
                if treatments == "*":
                    treatments = list(catalogue_names)
                else:
                    for j, name in enumerate(treatments):
                        self.check_name(name, catalogue_names, "treatment", (*at, "treatments", j))
                condition = self.expression(
                    item["when"], (*at, "when"), over=None, expected=ValueType.BOOLEAN
                )
                if condition is not None:
                    rules.append(m.PolicyRule(policy, list(treatments), condition, item["reason"]))
        contact = spec.get("contact") or {}
        caps = []
        channels = self.data.get("channels") or []
        for index, cap in enumerate(contact.get("caps") or []):
            if cap["channel"] != "*":
                self.check_name(
                    cap["channel"],
                    channels,
                    "channel",
                    ("policies", "contact", "caps", index, "channel"),
                )
            caps.append(m.ContactCap(cap["channel"], int(cap["max"]), float(cap["period_days"])))
        declines = contact.get("suppress_after_declines")
        limit = (int(declines["declines"]), float(declines["within_days"])) if declines else None
        return rules, caps, limit

    def derived_written(self) -> None:
        for name, attribute in self.attributes.items():
            if attribute.derived and name not in self.written:
                self.warnings.append(
                    StrategyValidationError(
                        f"derived attribute {name!r} is never written by a mechanism "
                        "(it stays null)",
                        location=self.source.location(_attribute_path(attribute)),
                        symbol=name,
                    )
                )

    def golden(self, events) -> list[m.GoldenCase]:
        cases = []
        channels = self.data.get("channels") or []
        for index, case in enumerate(self.data.get("golden_cases") or []):
            at = ("golden_cases", index)
            self.check_name(case["event"], events, "event", (*at, "event"))
            if "channel" in case:
                self.check_name(case["channel"], channels, "channel", (*at, "channel"))
            for channel in case["expect"].get("treatments") or {}:
                self.check_name(
                    channel, channels, "channel", (*at, "expect", "treatments", channel)
                )
            for attribute in case["expect"].get("attributes") or {}:
                if (
                    attribute not in self.attributes
                    or self.attributes[attribute].account_type is not None
                ):
                    self.errors.append(
                        UnknownAttributeError(
                            f"expected attribute {attribute!r} is not a customer attribute",
                            location=self.loc(*at, "expect", "attributes", attribute),
                            symbol=attribute,
                            suggestion=_suggest(attribute, self.scope(None)),
                        )
                    )
            self._golden_inputs(case, at)
            cases.append(m.GoldenCase(case["name"], case, self.source.location(at).path or ""))
        return cases

    def _golden_inputs(self, case: dict, at: tuple) -> None:
        """Golden inputs name only declared input attributes, and every customer one."""
        inputs = [
            a.name for a in self.attributes.values() if not a.derived and a.account_type is None
        ]
        for key in case["customer"]:
            if key not in inputs:
                self.errors.append(
                    UnknownAttributeError(
                        f"golden case customer has {key!r}, which is not an input customer "
                        "attribute",
                        location=self.loc(*at, "customer", key),
                        symbol=key,
                        suggestion=_suggest(key, inputs),
                    )
                )
        missing = [name for name in inputs if name not in case["customer"]]
        if missing:
            self.error(
                f"golden case customer lacks {', '.join(missing)} (use null for a missing value)",
                (*at, "customer"),
            )
        for index, account in enumerate(case.get("accounts") or []):
            account_type = account.get("account_type")
            where = (*at, "accounts", index)
            if not self.check_name(
                str(account_type), self.account_types, "account type", (*where, "account_type")
            ):
                continue
            allowed = {"account_id", "account_type", "customer_id"} | {
                a.column
                for a in self.attributes.values()
                if a.account_type == account_type and not a.derived
            }
            for key in account:
                if key not in allowed:
                    self.errors.append(
                        UnknownAttributeError(
                            f"golden case account has {key!r}, which is not an input attribute "
                            f"of {account_type!r}",
                            location=self.loc(*where, key),
                            symbol=key,
                            suggestion=_suggest(key, allowed),
                        )
                    )

    def unused(self) -> None:
        """Warnings for mechanisms no process runs and processes no event runs."""
        used_processes = {
            p
            for event in self.data["events"].values()
            for p in (event if isinstance(event, list) else event["processes"])
        }
        for name in self.data["processes"]:
            if name not in used_processes:
                self.warnings.append(
                    StrategyValidationError(
                        f"process {name!r} is not run by any event",
                        location=self.loc("processes", name),
                    )
                )
        used = set()
        for spec in self.data["processes"].values():
            for key in ("mechanism", "mechanisms"):
                value = spec.get(key)
                used.update(value if isinstance(value, list) else [value] if value else [])
            for value in (spec.get("by_test_group") or {}).values():
                used.update(value if isinstance(value, list) else [value])
        for spec in self.data["mechanisms"].values():
            for leaf_call in _calls_in(spec.get("tree") or []):
                used.add(leaf_call)
        for name in self.data["mechanisms"]:
            if name not in used:
                self.warnings.append(
                    StrategyValidationError(
                        f"mechanism {name!r} is not used by any process or tree",
                        location=self.loc("mechanisms", name),
                    )
                )


def _calls_in(branches: list) -> list[str]:
    calls = []
    for branch in branches:
        outcome = branch.get("then", branch.get("else"))
        if isinstance(outcome, list):
            calls += _calls_in(outcome)
        elif isinstance(outcome, dict) and outcome.get("call"):
            calls.append(outcome["call"])
    return calls


def _attribute_path(attribute: m.Attribute) -> tuple:
    if attribute.account_type is None:
        return ("data_dictionary", "customer", attribute.name)
    return ("data_dictionary", "accounts", attribute.account_type, "attributes", attribute.column)


def content_hash(data: dict) -> str:
    """A stable hash of the strategy's content (comments and layout do not change it)."""
    canonical = json.dumps(data, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


def compile_strategy(
    data: dict, source: SourceMap
) -> tuple[m.Strategy | None, list[EngineError], list[EngineError]]:
    """Build the strategy; returns it (None when there are errors), errors and warnings."""
    compiler = _Compiler(data, source)
    compiler.data_dictionary()
    mechanisms = compiler.mechanisms()
    compiler.calls(mechanisms)
    segments = compiler.segments()
    salt, groups = compiler.test_groups(segments)
    processes = compiler.processes(groups, mechanisms)
    events = compiler.events(processes)
    categories, actions = compiler.categories()
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
    )
    return strategy, [], compiler.warnings


def check_strategy(path: str | Path) -> tuple[list[EngineError], list[EngineError]]:
    """All errors and warnings of a strategy file (empty lists when it is clean)."""
    try:
        data, source, _ = read_strategy_source(path)
    except EngineError as problem:
        return [problem, *getattr(problem, "others", [])], []
    _, errors, warnings = compile_strategy(data, source)
    return errors, warnings


def load_strategy(path: str | Path) -> m.Strategy:
    """Load and validate a strategy file; raises the first :class:`EngineError` found.

    The raised error carries the remaining ones as ``error.others``.
    """
    data, source, _ = read_strategy_source(path)
    strategy, errors, _ = compile_strategy(data, source)
    if errors:
        first = errors[0]
        first.others = errors[1:]  # type: ignore[attr-defined]
        raise first
    assert strategy is not None
    return strategy
