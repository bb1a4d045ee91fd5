"""What both evaluators share, so they cannot drift: values, test groups, rule resolution, traces."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
from typing import Any

import numpy as np

from cx_pipelines.engine import model as m
from cx_pipelines.engine.errors import EvaluationError
from cx_pipelines.engine.expressions import ValueType


# ---------------------------------------------------------------- values
def canonical(value: Any, value_type: ValueType) -> Any:
    """One customer/account value in its per-record form: float, str, bool, date or None."""
    if value is None:
        return None
    if type(value).__name__ in ("NAType", "NaTType"):
        return None
    if value_type is ValueType.NUMBER:
        if isinstance(value, bool | np.bool_):
            return float(value)
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise EvaluationError(f"{value!r} is not a number") from None
        return None if math.isnan(number) else number
    if value_type is ValueType.BOOLEAN:
        if isinstance(value, float | np.floating) and math.isnan(value):
            return None
        if isinstance(value, bool | np.bool_ | int | np.integer | float | np.floating):
            return bool(value)
        raise EvaluationError(f"{value!r} is not a boolean")
    if value_type is ValueType.DATE:
        if isinstance(value, np.datetime64):
            return None if np.isnat(value) else value.astype("datetime64[D]").item()
        if isinstance(value, dt.datetime):
            return value.date()
        if isinstance(value, dt.date):
            return value
        if isinstance(value, str):
            return dt.date.fromisoformat(value)
        raise EvaluationError(f"{value!r} is not a date")
    if isinstance(value, float) and math.isnan(value):
        return None
    return str(value)


def canonical_list(array: np.ndarray, value_type: ValueType) -> list[Any]:
    """A batch column as a list of per-record values."""
    if value_type is ValueType.NUMBER:
        return [None if v != v else v for v in np.asarray(array, dtype=np.float64).tolist()]
    if value_type is ValueType.BOOLEAN:
        array = np.asarray(array)
        if array.dtype == bool:
            return array.tolist()
        return [canonical(v, value_type) for v in array.tolist()]
    if value_type is ValueType.DATE:
        return [None if v is None else v for v in np.asarray(array, dtype="datetime64[D]").tolist()]
    return [canonical(v, value_type) for v in array.tolist()]


def json_value(value: Any) -> Any:
    """A value as it appears in a trace (dates as ISO text, NaN as null)."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def trace_json(trace: dict) -> str:
    return json.dumps(trace, separators=(",", ":"), sort_keys=True, default=str)


def customer_key(customer_id: Any) -> str:
    """The text a customer id is hashed as (integral floats read as integers)."""
    if isinstance(customer_id, float | np.floating) and float(customer_id).is_integer():
        return str(int(customer_id))
    if isinstance(customer_id, np.integer):
        return str(int(customer_id))
    return str(customer_id)


# ---------------------------------------------------------------- test groups
def test_group_draw(salt: str, customer_id: Any) -> float:
    """Uniform in [0, 100) from blake2b(salt:customer_id); stable across runs and machines."""
    digest = hashlib.blake2b(f"{salt}:{customer_key(customer_id)}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64 * 100.0


def cumulative(groups: list[tuple[str, float]]) -> list[tuple[str, float]]:
    total = 0.0
    result = []
    for name, percent in groups:
        total += percent
        result.append((name, total))
    return result


def assign_group(groups: list[tuple[str, float]], draw: float) -> str:
    bounds = cumulative(groups)
    for name, upper in bounds:
        if draw < upper:
            return name
    return bounds[-1][0]


# ---------------------------------------------------------------- processes
def process_mechanisms(process: m.Process, test_group: str | None) -> list[str]:
    if process.by_test_group is None:
        return process.mechanisms
    table = process.by_test_group
    return table.get(test_group or "", table.get("default", []))


def event_models(strategy: m.Strategy, event: m.Event, model_versions: dict | None) -> dict[str, str]:
    """Model name → version for every model score the event can run."""
    models: dict[str, str] = {}
    seen: set[str] = set()

    def visit(name: str) -> None:
        if name in seen:
            return
        seen.add(name)
        mechanism = strategy.mechanisms[name]
        if isinstance(mechanism, m.ModelScore):
            models[mechanism.model] = model_version(mechanism, model_versions)
        if isinstance(mechanism, m.DecisionTree):
            for leaf in mechanism.leaves:
                if leaf.call:
                    visit(leaf.call)

    for process_name in event.processes:
        process = strategy.processes[process_name]
        names = list(process.mechanisms)
        for group_names in (process.by_test_group or {}).values():
            names += group_names
        for name in names:
            visit(name)
    return dict(sorted(models.items()))


def model_version(mechanism: m.ModelScore, model_versions: dict | None) -> str:
    if model_versions and mechanism.model in model_versions:
        return str(model_versions[mechanism.model])
    return mechanism.version or "unknown"


# ---------------------------------------------------------------- treatments
def deciding_rules(
    strategy: m.Strategy, segment: str | None, interaction_type: str | None, channel: str
) -> dict[str, m.TreatmentRule]:
    """For each treatment, the rule of the most specific matching group that names it."""
    return _deciding_rules(id(strategy), strategy, segment, interaction_type, channel)


_RULE_CACHE: dict[tuple, dict[str, m.TreatmentRule]] = {}


def _deciding_rules(sid, strategy, segment, interaction_type, channel):
    key = (sid, strategy.content_hash, segment, interaction_type, channel)
    cached = _RULE_CACHE.get(key)
    if cached is not None:
        return cached
    matching = [
        group
        for group in strategy.rule_groups
        if group.segment in (None, segment)
        and group.interaction_type in (None, interaction_type)
        and group.channel in (None, channel)
    ]
    matching.sort(key=lambda g: g.specificity)
    decided: dict[str, m.TreatmentRule] = {}
    for group in matching:  # later (more specific) groups overwrite earlier ones
        for rule in group.rules:
            decided[rule.treatment] = rule
    ordered = {name: decided[name] for name in strategy.treatments if name in decided}
    if len(_RULE_CACHE) > 10000:
        _RULE_CACHE.clear()
    _RULE_CACHE[key] = ordered
    return ordered


def cap_reason(cap: m.ContactCap) -> str:
    return f"contact cap: at most {cap.max} {cap.channel} contacts in {cap.period_days:g} days"


def decline_reason(limit: tuple[int, float]) -> str:
    return f"declined {limit[0]} times within {limit[1]:g} days"


SCORE_MISSING = "score_missing"
