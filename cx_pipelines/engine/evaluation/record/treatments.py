"""Per-record treatments: contact caps and declines, policies, arbitration scores and the
ranked choice per channel.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from cx_pipelines.engine.evaluation import shared as c
from cx_pipelines.engine.evaluation.shared import true
from cx_pipelines.engine.language import model as m


def _contact_state(strategy: m.Strategy, history: Iterable[Mapping] | None):
    rows = list(history or [])
    closed: dict[str, str] = {}
    for cap in strategy.contact_caps:
        count = sum(
            1
            for row in rows
            if (cap.channel == "*" or row.get("channel") == cap.channel)
            and float(row.get("days_ago", 0)) < cap.period_days
        )
        if count >= cap.max:
            for channel in strategy.channels if cap.channel == "*" else [cap.channel]:
                closed.setdefault(channel, c.cap_reason(cap))
    declined: set[str] = set()
    if strategy.decline_limit:
        limit, window = strategy.decline_limit
        counts: dict[str, int] = {}
        for row in rows:
            if bool(row.get("declined")) and float(row.get("days_ago", 0)) < window:
                counts[row.get("treatment")] = counts.get(row.get("treatment"), 0) + 1
        declined = {t for t, n in counts.items() if n >= limit}
    return closed, declined


def choose_treatments(state: Any, interaction_type: str | None, channels: list[str], history):
    """Ranked treatments per channel, the policy filters and the arbitration terms of one
    customer (``state`` is the per-record run's working state)."""
    strategy = state.strategy
    values = state.values
    if history is None and not strategy.contact_caps:
        closed: dict[str, str] = {}
        declined: set[str] = set()
    else:
        closed, declined = _contact_state(strategy, history)
    policy_cache: dict[int, bool] = {}
    score_cache: dict[str, tuple[float | None, dict]] = {}
    filters: list[dict] = []
    arbitration: dict[str, list[dict]] = {}
    chosen: dict[str, list[dict]] = {}
    order = state.plan.treatment_order
    for channel in channels:
        if not strategy.rule_groups:
            rules = {}
        else:
            rules = c.deciding_rules(strategy, values["segment"], interaction_type, channel)
        if not rules:
            arbitration[channel] = []
            chosen[channel] = []
            continue
        passing = []
        for name, rule in rules.items():
            if rule.exclude or not true(rule.condition, values):
                continue
            reason = None
            for index, policy in enumerate(strategy.policies):
                if name not in policy.treatments:
                    continue
                if index not in policy_cache:
                    policy_cache[index] = true(policy.condition, values)
                if not policy_cache[index]:
                    reason = (policy.policy, policy.reason)
                    break
            if reason is None and channel in closed:
                reason = ("contact", closed[channel])
            if reason is None and name in declined:
                reason = ("declines", c.decline_reason(strategy.decline_limit))
            if reason is None:
                if name not in score_cache:
                    score_cache[name] = _score(strategy, strategy.treatments[name], values)
                score, terms = score_cache[name]
                if score is None:
                    reason = ("arbitration", c.SCORE_MISSING)
                else:
                    passing.append((-score, order[name], name, score, terms))
            if reason is not None:
                filters.append(
                    {
                        "channel": channel,
                        "treatment": name,
                        "policy": reason[0],
                        "reason": reason[1],
                    }
                )
        passing.sort(key=lambda item: (item[0], item[1]))
        arbitration[channel] = [
            {"treatment": name, "rank": rank, "score": score, "terms": terms}
            for rank, (_, _, name, score, terms) in enumerate(passing, start=1)
        ]
        chosen[channel] = [
            {"treatment": item["treatment"], "rank": item["rank"], "score": item["score"]}
            for item in arbitration[channel][: strategy.max_per_channel]
        ]
    return chosen, filters, arbitration


def _score(strategy: m.Strategy, treatment: m.Treatment, values: dict) -> tuple[float | None, dict]:
    terms: dict[str, Any] = {}
    for term, expression in treatment.terms.items():
        terms[term] = expression.compiled.evaluate_record(values)
    terms["lever"] = strategy.lever(treatment.name)
    scope = {**values, **terms}
    for term in m.ARBITRATION_TERMS:
        scope.setdefault(term, None)
    return treatment.formula.compiled.evaluate_record(scope), terms
