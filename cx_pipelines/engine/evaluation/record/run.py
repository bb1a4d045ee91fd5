"""Per-record evaluator: one customer with its accounts, as a dict, in one pass.

This is the reference meaning of a strategy; the batch evaluator computes the same
values and traces for a whole population at once (see ``test_evaluators_agree``).

Each mechanism runs its kind's prepared ``fast_record`` form (equal to its reference
``evaluate_record`` by property test); treatments (policies, contact rules, arbitration)
are in :mod:`.treatments`; this module holds the working state and the run.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

from cx_pipelines.engine.evaluation import shared as c
from cx_pipelines.engine.evaluation.record.rules import first_match, rules_of
from cx_pipelines.engine.evaluation.record.treatments import choose_treatments
from cx_pipelines.engine.language import model as m
from cx_pipelines.engine.language.errors import EvaluationError, Location
from cx_pipelines.engine.language.expressions import ValueType

_EXACT = {
    ValueType.NUMBER: float,
    ValueType.STRING: str,
    ValueType.BOOLEAN: bool,
    ValueType.DATE: dt.date,
}


class _AccountRecord(dict):
    """One account's own values; anything else is read from its customer (no copying)."""

    __slots__ = ("customer",)

    def __missing__(self, name: str) -> Any:
        return self.customer[name]


class _Plan:
    """What every evaluation of a strategy needs, worked out once per strategy."""

    def __init__(self, strategy: m.Strategy) -> None:
        self.customer_inputs = [
            (a.name, a.column, a.value_type, _EXACT.get(a.value_type))
            for a in strategy.input_attributes(None)
        ]
        self.customer_nulls = dict.fromkeys(
            [a.name for a in strategy.derived_attributes(None)] + list(m.BUILTIN_ATTRIBUTES)
        )
        self.account_inputs = {
            t: [
                (a.name, a.column, a.value_type, _EXACT.get(a.value_type))
                for a in strategy.input_attributes(t)
            ]
            for t in strategy.account_types
        }
        self.account_nulls = {
            t: dict.fromkeys(a.name for a in strategy.derived_attributes(t))
            for t in strategy.account_types
        }
        self.derived_customer = [a.name for a in strategy.derived_attributes(None)]
        # per mechanism: (type, evaluate, output name, output type, the Python type of an
        # already canonical output, account type to run over one by one (None: once),
        # output is a date)
        self.mechanisms = {
            name: (
                mechanism.kind,
                mechanism.fast_record(),
                mechanism.output.name,
                mechanism.output.value_type,
                _EXACT.get(mechanism.output.value_type),
                mechanism.level,
                mechanism.output.value_type is ValueType.DATE,
            )
            for name, mechanism in strategy.mechanisms.items()
        }
        # (category, account type) -> account actions to try, in order
        self.account_actions: dict[tuple, list[m.AccountAction]] = {}
        for action in strategy.account_actions:
            key = (action.category, action.account_type)
            self.account_actions.setdefault(key, []).append(action)
        self.group_bounds = {
            segment: c.cumulative(groups) for segment, groups in strategy.test_groups.items()
        }
        self.treatment_order = {name: index for index, name in enumerate(strategy.treatments)}
        self.segments = rules_of(strategy.segments)
        self.categories = rules_of(strategy.categories)
        self._models: dict[str, dict[str, str]] = {}
        self._sequences: dict[tuple[str, str], list[tuple]] = {}

    def models(self, strategy: m.Strategy, event: m.Event) -> dict[str, str]:
        """``common.event_models`` with no versions given (the caller copies it)."""
        models = self._models.get(event.name)
        if models is None:
            models = self._models[event.name] = c.event_models(strategy, event, {})
        return models

    def sequence(self, strategy: m.Strategy, event: m.Event, group: str) -> list[tuple]:
        """(process, mechanism, plan entry) in the order an event runs them for a test group."""
        key = (event.name, group)
        sequence = self._sequences.get(key)
        if sequence is None:
            sequence = [
                (process_name, name, self.mechanisms[name])
                for process_name in event.processes
                for name in c.process_mechanisms(strategy.processes[process_name], group)
            ]
            if len(self._sequences) > 1000:  # test groups named by callers: keep it bounded
                self._sequences.clear()
            self._sequences[key] = sequence
        return sequence


def _plan(strategy: m.Strategy) -> _Plan:
    plan = strategy.cache.get("record_plan")
    if plan is None:
        plan = strategy.cache["record_plan"] = _Plan(strategy)
    return plan


def _missing_customer_value(strategy: m.Strategy, name: str) -> EvaluationError:
    return EvaluationError(
        f"the customer has no value for attribute {name!r} (declared in data_dictionary.customer)",
        location=Location(file=strategy.file, path=f"data_dictionary.customer.{name}"),
        symbol=name,
    )


class _Customer:
    """The working state of one evaluation."""

    def __init__(
        self, strategy: m.Strategy, customer: Mapping[str, Any], accounts: Iterable[Mapping]
    ):
        self.strategy = strategy
        self.plan = plan = _plan(strategy)
        values = dict(plan.customer_nulls)
        canonical = c.canonical
        for name, column, value_type, exact in plan.customer_inputs:
            try:
                raw = customer[column]
            except KeyError:
                raise _missing_customer_value(strategy, name) from None
            if type(raw) is exact:
                values[name] = None if raw != raw else raw
            else:
                values[name] = canonical(raw, value_type)
        self.values = values
        self.accounts: list[dict[str, Any]] = []  # per account: id, type, values
        self.by_type: dict[str, list[dict]] = {}
        account_inputs = plan.account_inputs
        account_nulls = plan.account_nulls
        for account in accounts:
            account_type = account.get("account_type")
            inputs = account_inputs.get(account_type)
            # the account's own values; customer values are read through it (no copies)
            if inputs is None:
                own = _AccountRecord()
            else:
                own = _AccountRecord(account_nulls[account_type])
            own.customer = values
            if inputs is not None:
                get = account.get
                for name, column, value_type, exact in inputs:
                    raw = get(column)
                    if type(raw) is exact:
                        own[name] = None if raw != raw else raw
                    else:
                        own[name] = canonical(raw, value_type)
            item = {
                "account_id": account.get("account_id"),
                "account_type": account_type,
                "values": own,
                "action": None,
                "steps": [],
            }
            self.accounts.append(item)
            same_type = self.by_type.get(account_type)
            if same_type is None:
                self.by_type[account_type] = [item]
            else:
                same_type.append(item)
        self.steps: list[dict] = []

    def accounts_of(self, account_type: str) -> list[dict]:
        return self.by_type.get(account_type, [])


def _run(
    state: _Customer, name: str, process: str, account: dict | None, called_by: str | None
) -> None:
    """Run mechanism ``name`` for the customer (account None) or for one account."""
    kind, evaluate, output, value_type, exact, over, is_date = state.plan.mechanisms[name]
    if account is not None:
        targets: Iterable[dict | None] = (account,)
    elif over is not None:  # once per account of that type
        targets = state.by_type.get(over, ())
    else:
        targets = (None,)
    for item in targets:
        if item is None:
            record, steps = state.values, state.steps
        else:
            record, steps = item["values"], item["steps"]
        step: dict[str, Any] = {"process": process, "mechanism": name, "type": kind}
        if called_by:
            step["called_by"] = called_by
        calls: list[str] = []
        value = evaluate(state, record, step, calls)
        if type(value) is exact:
            if value != value:  # NaN is null
                value = None
        else:
            value = c.canonical(value, value_type)
        step["value"] = c.json_value(value) if is_date else value
        record[output] = value
        steps.append(step)
        for target in calls:
            _run(state, target, process, item, name)


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
    plan = c.event_of(strategy, event)
    channels = c.channels_of(strategy, channel)
    interaction = interaction_type or plan.interaction_type
    state = _Customer(strategy, customer, accounts)
    record_plan = state.plan
    if model_versions:
        state.model_versions = c.event_models(strategy, plan, dict(model_versions))
    else:
        state.model_versions = dict(record_plan.models(strategy, plan))
    values = state.values
    segment = first_match(record_plan.segments, values)
    if segment is not None:
        values["segment"] = segment
    customer_id = customer.get("customer_id")
    draw = c.test_group_draw(strategy.salt, customer_id)
    group = test_group or _assign_group(record_plan.group_bounds[values["segment"]], draw)
    values["test_group"] = group
    # the customer-level part of ``_run``, inline: most mechanisms run once per customer
    steps = state.steps
    json_value = c.json_value
    canonical = c.canonical
    for process_name, name, entry in record_plan.sequence(strategy, plan, group):
        kind, evaluate, output, value_type, exact, over, is_date = entry
        if over is not None:  # once per account of that type
            _run(state, name, process_name, None, None)
            continue
        step = {"process": process_name, "mechanism": name, "type": kind}
        calls: list[str] = []
        value = evaluate(state, values, step, calls)
        if type(value) is exact:
            if value != value:  # NaN is null
                value = None
        else:
            value = canonical(value, value_type)
        step["value"] = json_value(value) if is_date else value
        values[output] = value
        steps.append(step)
        for target in calls:
            _run(state, target, process_name, None, name)
    if plan.categorize and strategy.categories:
        category = first_match(record_plan.categories, values)
        if category is not None:
            values["category"] = category
        category = values["category"]
        actions_of = record_plan.account_actions
        for account in state.accounts:
            for action in actions_of.get((category, account["account_type"]), ()):
                if c.true(action.condition, account["values"]):
                    account["action"] = action.action
                    break
    chosen, filters, arbitration = choose_treatments(state, interaction, channels, contact_history)
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
    account_nulls = record_plan.account_nulls
    return {
        "customer_id": customer_id,
        "event": event,
        "segment": values["segment"],
        "test_group": group,
        "category": values["category"],
        "attributes": {name: values[name] for name in record_plan.derived_customer},
        "treatments": chosen,
        "accounts": [
            {
                "account_id": a["account_id"],
                "account_type": a["account_type"],
                "attributes": {k: a["values"][k] for k in account_nulls.get(a["account_type"], ())},
                "action": a["action"],
            }
            for a in state.accounts
        ],
        "strategy_hash": strategy.content_hash,
        "trace": trace,
    }


def _assign_group(bounds: list[tuple[str, float]], draw: float) -> str:
    """``common.assign_group`` with the cumulative bounds worked out once per strategy."""
    for name, upper in bounds:
        if draw < upper:
            return name
    return bounds[-1][0]
