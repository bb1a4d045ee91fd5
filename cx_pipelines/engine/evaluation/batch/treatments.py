"""Batch treatments: candidates from the rule groups, policies, contact caps and declines,
arbitration scores and the ranking per channel, for every customer at once.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from cx_pipelines.engine.evaluation import shared as c
from cx_pipelines.engine.evaluation.batch.columns import Broadcast
from cx_pipelines.engine.evaluation.batch.run import BatchRun
from cx_pipelines.engine.language import model as m
from cx_pipelines.engine.language.errors import EvaluationError


def rank_treatments(
    run: BatchRun,
    interaction_type: str | None,
    channels: list[str],
    history: pd.DataFrame | Mapping[str, np.ndarray] | None,
    *,
    history_rows: np.ndarray | None = None,
):
    strategy = run.strategy
    size = run.customers.size
    names = list(strategy.treatments)
    segment = run.customers.columns["segment"]
    reasons: list[tuple[str, str]] = [("", "")]

    def reason_code(reason: tuple[str, str]) -> int:
        if reason not in reasons:
            reasons.append(reason)
        return reasons.index(reason)

    closed, declined = _contact_state(run, history, history_rows, channels, reason_code)
    policy_pass = [run.truth(policy.condition, None) for policy in strategy.policies]
    rule_pass: dict[int, np.ndarray] = {}
    scores: dict[str, np.ndarray] = {}
    terms: dict[str, dict[str, np.ndarray]] = {}
    constants = _constants(strategy)
    for name, treatment in strategy.treatments.items():
        fixed, fixed_score = constants[name]
        values = {
            term: np.full(size, fixed[term][0], dtype=fixed[term].dtype)
            if term in fixed
            else run.evaluate(expression, None)
            for term, expression in treatment.terms.items()
        }
        values["lever"] = np.full(size, strategy.lever(name))
        for term in treatment.formula.compiled.attributes:
            if term in m.ARBITRATION_TERMS and term not in values:
                values[term] = np.full(size, np.nan)
        if fixed_score is not None:
            scores[name] = np.full(size, fixed_score[0], dtype=fixed_score.dtype)
        else:
            scope = Broadcast(values, run.customers.columns, None)
            scores[name] = treatment.formula.compiled.evaluate_batch(scope, size)
        terms[name] = values
    in_segment = {item.name: segment == item.name for item in strategy.segments}
    score_missing = reason_code(("arbitration", c.SCORE_MISSING))
    run.filter_codes: dict[str, dict[str, np.ndarray]] = {}
    run.rankings: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for channel in channels:
        keys = np.full((size, len(names)), np.inf)
        codes_by: dict[str, np.ndarray] = {}
        for position, name in enumerate(names):
            candidate = np.zeros(size, dtype=bool)
            for item in strategy.segments:
                rule = c.deciding_rules(strategy, item.name, interaction_type, channel).get(name)
                if rule is None or rule.exclude:
                    continue
                if rule.rule_id not in rule_pass:
                    rule_pass[rule.rule_id] = run.truth(rule.condition, None)
                candidate |= in_segment[item.name] & rule_pass[rule.rule_id]
            code = np.zeros(size, dtype=np.int16)
            for index, policy in enumerate(strategy.policies):
                if name in policy.treatments:
                    code[candidate & (code == 0) & ~policy_pass[index]] = reason_code(
                        (policy.policy, policy.reason)
                    )
            open_rows = candidate & (code == 0)
            code[open_rows] = closed.get(channel, np.zeros(size, dtype=np.int16))[open_rows]
            if name in declined:
                code[candidate & (code == 0)] = np.where(
                    declined[name],
                    reason_code(("declines", c.decline_reason(strategy.decline_limit))),
                    0,
                )[candidate & (code == 0)]
            missing = candidate & (code == 0) & np.isnan(scores[name])
            code[missing] = score_missing
            passing = candidate & (code == 0)
            keys[passing, position] = -scores[name][passing]
            codes_by[name] = np.where(candidate, code, 0)
        order = np.argsort(keys, axis=1, kind="stable")
        run.filter_codes[channel] = codes_by
        run.rankings[channel] = (order, np.take_along_axis(keys, order, axis=1))
    run.reasons = reasons
    run.scores, run.terms, run.names = scores, terms, names


def _constants(strategy: m.Strategy) -> dict[str, tuple[dict[str, np.ndarray], Any]]:
    """Per treatment, the terms that read no attribute (their value on one row) and its
    score when the formula reads only those and the lever: worked out once per strategy,
    so a small batch does not evaluate them again at every call."""
    cached = strategy.cache.get("batch_treatment_constants")
    if cached is not None:
        return cached
    constants: dict[str, tuple[dict[str, np.ndarray], Any]] = {}
    for name, treatment in strategy.treatments.items():
        fixed = {
            term: expression.compiled.evaluate_batch({}, 1)
            for term, expression in treatment.terms.items()
            if not expression.compiled.attributes
        }
        values = {**fixed, "lever": np.full(1, strategy.lever(name))}
        formula = treatment.formula.compiled
        score = None
        if all(term in values for term in formula.attributes):
            score = formula.evaluate_batch(values, 1)
        constants[name] = (fixed, score)
    strategy.cache["batch_treatment_constants"] = constants
    return constants


def _contact_state(run: BatchRun, history, history_rows, channels: list[str], reason_code):
    """Per channel the rows closed by a contact cap, per treatment the rows over the
    decline limit. ``history`` is a frame (rows found by ``customer_id``) or a mapping of
    arrays with ``history_rows`` (the customers row of each contact)."""
    strategy = run.strategy
    size = run.customers.size
    closed: dict[str, np.ndarray] = {}
    declined: dict[str, np.ndarray] = {}
    if history is None or len(history["customer_id"] if history_rows is not None else history) == 0:
        return closed, declined
    names = history.columns if isinstance(history, pd.DataFrame) else history.keys()
    for required in ("customer_id", "channel", "days_ago"):
        if required not in names:
            raise EvaluationError(
                f"the contact history has no column {required!r}", symbol=required
            )
    if history_rows is not None:
        owner = np.asarray(history_rows, dtype=np.int64)
    else:
        owner = run.index.owner_index(history["customer_id"])
    known = owner >= 0
    days = _numbers(history["days_ago"])
    channel_of = _array(history["channel"])
    on_channel: dict[str, np.ndarray] = {}  # each named channel compared once
    for cap in strategy.contact_caps:
        rows = known & (days < cap.period_days)
        if cap.channel != "*":
            if cap.channel not in on_channel:
                on_channel[cap.channel] = channel_of == cap.channel
            rows &= on_channel[cap.channel]
        over = np.bincount(owner[rows], minlength=size) >= cap.max
        code = reason_code(("contact", c.cap_reason(cap)))
        for channel in strategy.channels if cap.channel == "*" else [cap.channel]:
            current = closed.setdefault(channel, np.zeros(size, dtype=np.int16))
            current[over & (current == 0)] = code
    if strategy.decline_limit and "declined" in names and "treatment" in names:
        limit, window = strategy.decline_limit
        # only the declined rows' treatments are compared (few rows: most contacts are
        # not declined), each row's owner counted per treatment
        chosen = np.flatnonzero(known & (days < window) & _flags(history["declined"]))
        if len(chosen):
            treatment_of = _array(history["treatment"])[chosen]
            owners = owner[chosen]
            for name in strategy.treatments:
                rows = treatment_of == name
                if rows.any():
                    declined[name] = np.bincount(owners[rows], minlength=size) >= limit
    return closed, declined


def _array(values) -> np.ndarray:
    return values.to_numpy() if isinstance(values, pd.Series) else np.asarray(values)


def _numbers(values) -> np.ndarray:
    if isinstance(values, np.ndarray) and values.dtype == np.float64:
        return values
    return pd.to_numeric(pd.Series(values, copy=False)).to_numpy(dtype=np.float64)


def _flags(values) -> np.ndarray:
    """True where a contact was declined (null: not declined)."""
    if isinstance(values, np.ndarray) and values.dtype == bool:
        return values
    return pd.Series(values, copy=False).fillna(False).astype(bool).to_numpy()
