"""Per-record evaluator: one customer with its accounts, as a dict, in one pass.

This is the reference meaning of a strategy; the batch evaluator computes the same
values and traces for a whole population at once (see ``test_evaluators_agree``).

Mechanisms are evaluated in ``record_mechanisms``, treatments (policies, contact rules,
arbitration) in ``record_treatments``; this module holds the working state and the run.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from cx_pipelines.engine import common as c
from cx_pipelines.engine import model as m
from cx_pipelines.engine.errors import EvaluationError, Location
from cx_pipelines.engine.record_mechanisms import (
    _account_record,
    _AccountRecord,
    _evaluate,
    _true,
)
from cx_pipelines.engine.record_mechanisms import _call_exit as _call_exit  # batch_mechanisms
from cx_pipelines.engine.record_treatments import _treatments


class _Plan:
    """What every evaluation of a strategy needs, worked out once per strategy."""

    def __init__(self, strategy: m.Strategy) -> None:
        self.customer_inputs = [
            (a.name, a.column, a.value_type) for a in strategy.input_attributes(None)
        ]
        self.customer_nulls = dict.fromkeys(
            [a.name for a in strategy.derived_attributes(None)] + list(m.BUILTIN_ATTRIBUTES)
        )
        self.account_inputs = {
            t: [(a.name, a.column, a.value_type) for a in strategy.input_attributes(t)]
            for t in strategy.account_types
        }
        self.account_nulls = {
            t: dict.fromkeys(a.name for a in strategy.derived_attributes(t))
            for t in strategy.account_types
        }
        self.derived_customer = [a.name for a in strategy.derived_attributes(None)]


def _plan(strategy: m.Strategy) -> _Plan:
    plan = strategy._lists.get("record_plan")
    if plan is None:
        plan = strategy._lists["record_plan"] = _Plan(strategy)
    return plan


class _Customer:
    """The working state of one evaluation."""

    def __init__(
        self, strategy: m.Strategy, customer: Mapping[str, Any], accounts: Iterable[Mapping]
    ):
        self.strategy = strategy
        plan = _plan(strategy)
        values = dict(plan.customer_nulls)
        canonical = c.canonical
        for name, column, value_type in plan.customer_inputs:
            try:
                raw = customer[column]
            except KeyError:
                raise EvaluationError(
                    f"the customer has no value for attribute {name!r} "
                    "(declared in data_dictionary.customer)",
                    location=Location(file=strategy.file, path=f"data_dictionary.customer.{name}"),
                    symbol=name,
                ) from None
            values[name] = canonical(raw, value_type)
        self.values = values
        self.accounts: list[dict[str, Any]] = []  # per account: id, type, values
        for account in accounts:
            account_type = account.get("account_type")
            inputs = plan.account_inputs.get(account_type)
            # the account's own values; customer values are read through it (no copies)
            own = _AccountRecord()
            own.customer = values
            if inputs is not None:
                own.update(plan.account_nulls[account_type])
                for name, column, value_type in inputs:
                    own[name] = canonical(account.get(column), value_type)
            self.accounts.append(
                {
                    "account_id": account.get("account_id"),
                    "account_type": account_type,
                    "values": own,
                    "action": None,
                    "steps": [],
                }
            )
        self.steps: list[dict] = []
        self.by_type: dict[str, list[dict]] = {}
        for item in self.accounts:
            self.by_type.setdefault(item["account_type"], []).append(item)

    def accounts_of(self, account_type: str) -> list[dict]:
        return self.by_type.get(account_type, [])


def _run(
    state: _Customer, name: str, process: str, account: dict | None, called_by: str | None
) -> None:
    """Run mechanism ``name`` for the customer (account None) or for one account."""
    mechanism = state.strategy.mechanisms[name]
    if mechanism.over is not None and account is None and not isinstance(mechanism, m.Aggregate):
        for item in state.accounts_of(mechanism.over):
            _run(state, name, process, item, called_by)
        return
    record = state.values if account is None else _account_record(state, account)
    step: dict[str, Any] = {"process": process, "mechanism": name, "type": mechanism.kind}
    if called_by:
        step["called_by"] = called_by
    calls: list[str] = []
    value = _evaluate(state, mechanism, record, step, calls)
    value = c.canonical(value, mechanism.output.value_type)
    step["value"] = c.json_value(value)
    if account is None:
        state.values[mechanism.output.name] = value
        state.steps.append(step)
    else:
        account["values"][mechanism.output.name] = value
        account["steps"].append(step)
    for target in calls:
        _run(state, target, process, account, name)


def evaluate_customer(
    strategy: m.Strategy,
    *,
    event: str,
    customer: Mapping[str, Any],
    accounts: Iterable[Mapping[str, Any]] = (),
    interaction_type: str | None = None,
    channel: str | None = None,
    contact_history: Iterable[Mapping[str, Any]] | None = None,
    model_versions: Mapping[str, Any] | None = None,
    test_group: str | None = None,
) -> dict[str, Any]:
    """The customer intelligence record of one customer (same content as a batch row)."""
    plan = _event(strategy, event)
    channels = _channels(strategy, channel)
    interaction = interaction_type or plan.interaction_type
    state = _Customer(strategy, customer, accounts)
    state.model_versions = c.event_models(strategy, plan, dict(model_versions or {}))
    values = state.values
    for segment in strategy.segments:
        if _true(segment.condition, values):
            values["segment"] = segment.name
            break
    customer_id = customer.get("customer_id")
    draw = c.test_group_draw(strategy.salt, customer_id)
    group = test_group or c.assign_group(strategy.test_groups[values["segment"]], draw)
    values["test_group"] = group
    for process_name in plan.processes:
        for name in c.process_mechanisms(strategy.processes[process_name], group):
            _run(state, name, process_name, None, None)
    if plan.categorize and strategy.categories:
        for rule in strategy.categories:
            if _true(rule.condition, values):
                values["category"] = rule.name
                break
        for account in state.accounts:
            for action in strategy.account_actions:
                if (
                    action.category == values["category"]
                    and action.account_type == account["account_type"]
                ) and _true(action.condition, _account_record(state, account)):
                    account["action"] = action.action
                    break
    chosen, filters, arbitration = _treatments(state, interaction, channels, contact_history)
    trace = {
        "strategy": strategy.name,
        "version": strategy.version,
        "content_hash": strategy.content_hash,
        "event": event,
        "interaction_type": interaction,
        "segment": values["segment"],
        "test_group": group,
        "test_group_draw": round(draw, 6),
        "steps": state.steps,
        "accounts": {str(a["account_id"]): a["steps"] for a in state.accounts if a["steps"]},
        "category": values["category"],
        "policy_filters": filters,
        "arbitration": arbitration,
        "model_versions": state.model_versions,
    }
    return {
        "customer_id": customer_id,
        "event": event,
        "segment": values["segment"],
        "test_group": group,
        "category": values["category"],
        "attributes": {name: values[name] for name in _plan(strategy).derived_customer},
        "treatments": chosen,
        "accounts": [
            {
                "account_id": a["account_id"],
                "account_type": a["account_type"],
                "attributes": {
                    k: a["values"][k]
                    for k in _plan(strategy).account_nulls.get(a["account_type"], ())
                },
                "action": a["action"],
            }
            for a in state.accounts
        ],
        "strategy_hash": strategy.content_hash,
        "trace": trace,
    }


def _event(strategy: m.Strategy, event: str) -> m.Event:
    if event not in strategy.events:
        raise EvaluationError(
            f"strategy {strategy.name!r} has no event {event!r}; "
            f"known: {', '.join(strategy.events)}",
            symbol=event,
        )
    return strategy.events[event]


def _channels(strategy: m.Strategy, channel: str | None) -> list[str]:
    if channel is None:
        return list(strategy.channels)
    if channel not in strategy.channels:
        raise EvaluationError(
            f"strategy {strategy.name!r} has no channel {channel!r}; "
            f"known: {', '.join(strategy.channels)}",
            symbol=channel,
        )
    return [channel]
