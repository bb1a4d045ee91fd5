"""Loading the offer sections: treatment catalogue, rule groups, arbitration and policies.

Mixed into the loader's compiler; see ``compile.py`` for the helpers it relies on
(``expression``, ``error``, ``check_name``, ``loc``, ``scope``).
"""

from __future__ import annotations

from cx_pipelines.engine.language import model as m
from cx_pipelines.engine.language.errors import EngineError
from cx_pipelines.engine.language.expressions import ValueType, compile_expression
from cx_pipelines.engine.language.literals import expression_text


class OfferCompiler:
    """The strategy sections that choose, rank and restrict treatments."""

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
                location=self.source.expression_location(path, text),
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
