"""The compiled form of a strategy: plain dataclasses both evaluators walk.

Everything here is built once by :mod:`cx_pipelines.engine.loading.compile` from a validated
YAML file; expressions are already compiled and type-checked, names resolved.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cx_pipelines.engine.language.errors import EngineError
from cx_pipelines.engine.language.expressions import CompiledExpression, ValueType

BUILTIN_ATTRIBUTES = {
    "segment": ValueType.STRING,
    "test_group": ValueType.STRING,
    "category": ValueType.STRING,
}
ARBITRATION_TERMS = ("propensity", "value", "margin", "uplift", "cost", "lever")


@dataclass(frozen=True)
class Attribute:
    name: str  # full name: "income" or "credit_card.balance"
    value_type: ValueType
    derived: bool
    account_type: str | None = None
    column: str = ""  # column in the customers / accounts frame


@dataclass
class Expression:
    """A compiled expression with the text the analyst wrote (for traces and errors)."""

    text: str
    compiled: CompiledExpression


@dataclass
class Mechanism:
    """What every mechanism has; each kind (``cx_pipelines.engine.mechanisms``) adds the rest."""

    name: str
    kind: str
    output: Attribute
    over: str | None


@dataclass
class Process:
    name: str
    mechanisms: list[str]  # for every customer (empty when by_test_group)
    by_test_group: dict[str, list[str]] | None = None  # group (or "default") → mechanisms


@dataclass
class Event:
    name: str
    interaction_type: str | None
    processes: list[str]
    categorize: bool


@dataclass
class Segment:
    name: str
    condition: Expression | None


@dataclass
class CategoryRule:
    name: str
    condition: Expression | None


@dataclass
class AccountAction:
    category: str
    account_type: str
    condition: Expression | None
    action: str


@dataclass
class Treatment:
    name: str
    terms: dict[str, Expression]  # propensity, value, margin, uplift?, cost?
    formula: Expression


@dataclass
class TreatmentRule:
    rule_id: int
    treatment: str
    condition: Expression | None
    exclude: bool
    path: str


@dataclass
class RuleGroup:
    segment: str | None
    interaction_type: str | None
    channel: str | None
    rules: list[TreatmentRule]

    @property
    def specificity(self) -> int:
        return (
            4 * (self.channel is not None)
            + 2 * (self.interaction_type is not None)
            + (self.segment is not None)
        )


@dataclass
class PolicyRule:
    policy: str  # eligibility | suitability
    treatments: list[str]
    condition: Expression
    reason: str


@dataclass
class ContactCap:
    channel: str  # a channel or "*"
    max: int
    period_days: float


@dataclass
class GoldenCase:
    name: str
    data: dict[str, Any]
    path: str
    line: int | None = None  # where the case starts in the file
    lines: dict[tuple[str, ...], int] = field(default_factory=dict)  # expect key path → line


@dataclass
class Strategy:
    """A loaded, validated strategy ready for both evaluators."""

    name: str
    version: int | None
    description: str
    file: str | None
    content_hash: str
    attributes: dict[str, Attribute]
    account_types: dict[str, int | None]  # type → max_iterations
    channels: list[str]
    interaction_types: list[str]
    events: dict[str, Event]
    segments: list[Segment]
    salt: str
    test_groups: dict[str, list[tuple[str, float]]]  # segment → [(group, percent)]
    processes: dict[str, Process]
    mechanisms: dict[str, Mechanism]
    categories: list[CategoryRule]
    account_actions: list[AccountAction]
    treatments: dict[str, Treatment]
    rule_groups: list[RuleGroup]
    policies: list[PolicyRule]
    contact_caps: list[ContactCap]
    decline_limit: tuple[int, float] | None  # (declines, within_days)
    levers: dict[str, float]
    max_per_channel: int
    golden_cases: list[GoldenCase]
    warnings: list[EngineError] = field(default_factory=list)
    cache: dict = field(default_factory=dict, repr=False, compare=False)  # worked out once
    arbitration_formula: str = "propensity * value * lever"  # the text, for renderings

    @property
    def customer_attributes(self) -> dict[str, Attribute]:
        return {n: a for n, a in self.attributes.items() if a.account_type is None}

    def derived_attributes(self, account_type: str | None) -> list[Attribute]:
        key = ("derived", account_type)
        if key not in self.cache:
            self.cache[key] = [
                a for a in self.attributes.values() if a.derived and a.account_type == account_type
            ]
        return self.cache[key]

    def input_attributes(self, account_type: str | None) -> list[Attribute]:
        key = ("input", account_type)
        if key not in self.cache:
            self.cache[key] = [
                a
                for a in self.attributes.values()
                if not a.derived and a.account_type == account_type
            ]
        return self.cache[key]

    def lever(self, treatment: str) -> float:
        return self.levers.get(treatment, self.levers.get("default", 1.0))
