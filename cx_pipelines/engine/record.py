"""Per-record evaluator: one customer with its accounts, as a dict, in one pass.

This is the reference meaning of a strategy; the batch evaluator computes the same
values and traces for a whole population at once (see ``test_evaluators_agree``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from cx_pipelines.engine import common as c
from cx_pipelines.engine import model as m
from cx_pipelines.engine.errors import EngineError, EvaluationError, Location


def _true(expression: m.Expression | None, record: Mapping[str, Any]) -> bool:
    return expression is None or expression.compiled.evaluate_record(record) is True


def _in_band(value: float, low: float | None, high: float | None) -> bool:
    return (low is None or value >= low) and (high is None or value < high)


def _axis_index(axis: m.Axis, record: Mapping[str, Any]) -> int | None:
    value = axis.expression.compiled.evaluate_record(record)
    if value is None:
        return None
    if axis.bands is not None:
        for index, (low, high) in enumerate(axis.bands):
            if _in_band(value, low, high):
                return index
        return None
    for index, category in enumerate(axis.categories or []):
        if category == value:
            return index
    return None


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


class _AccountRecord(dict):
    """One account's own values; anything else is read from its customer (no copying)."""

    __slots__ = ("customer",)

    def __missing__(self, name: str) -> Any:
        return self.customer[name]


def _account_record(state: _Customer, account: dict) -> _AccountRecord:
    return account["values"]


def _tree(state, mechanism: m.DecisionTree, record, step, calls) -> Any:
    branches = mechanism.branches
    while True:
        for branch in branches:
            if _true(branch.condition, record):
                outcome = branch.outcome
                break
        else:
            step["path"] = None
            return None
        if type(outcome) is m.Leaf:
            step["path"] = outcome.path
            if outcome.call:
                calls.append(outcome.call)
            return outcome.value
        branches = outcome


def _matrix(state, mechanism: m.Matrix, record, step, calls) -> Any:
    row = _axis_index(mechanism.rows, record)
    column = _axis_index(mechanism.columns, record) if mechanism.columns else 0
    if row is None or column is None:
        step["cell"] = None
        return mechanism.default
    step["cell"] = [row, column]
    return mechanism.values[row][column]


def _scorecard(state, mechanism: m.Scorecard, record, step, calls) -> Any:
    total = mechanism.base
    points_by = {}
    for characteristic in mechanism.characteristics:
        points = _points(characteristic, characteristic.expression.compiled.evaluate_record(record))
        points_by[characteristic.label] = points
        total += points
    step["points"] = points_by
    return total


def _model_score(state, mechanism: m.ModelScore, record, step, calls) -> Any:
    step["model"] = mechanism.model
    step["version"] = state.model_versions.get(mechanism.model, "unknown")
    value = record[mechanism.input.name]
    return mechanism.default if value is None else value


def _list_processor(state, mechanism: m.ListProcessor, record, step, calls) -> Any:
    ranked = []
    for index, item in enumerate(mechanism.items):
        if _true(item.condition, record):
            score = item.score.compiled.evaluate_record(record)
            if score is not None:
                ranked.append((-score, index, item.item_id, score))
    ranked.sort()
    step["ranking"] = [[item_id, score] for _, _, item_id, score in ranked]
    return ranked[0][2] if ranked else None


def _user_exit(state, mechanism: m.UserExitMechanism, record, step, calls) -> Any:
    step["function"] = mechanism.user_exit.name
    return _call_exit(mechanism, [record[attribute.name] for attribute in mechanism.inputs])


def _aggregate_step(state, mechanism: m.Aggregate, record, step, calls) -> Any:
    return _aggregate(state, mechanism, step)


_EVALUATE = {
    "decision_tree": _tree,
    "matrix": _matrix,
    "scorecard": _scorecard,
    "model_score": _model_score,
    "list_processor": _list_processor,
    "user_exit": _user_exit,
    "aggregate": _aggregate_step,
}


def _evaluate(
    state: _Customer, mechanism: m.Mechanism, record, step: dict, calls: list[str]
) -> Any:
    function = _EVALUATE.get(mechanism.kind)
    if function is None:
        raise EvaluationError(f"mechanism type {mechanism.kind!r} cannot be evaluated")
    return function(state, mechanism, record, step, calls)


def _points(characteristic: m.Characteristic, value: Any) -> float:
    if value is None:
        return characteristic.missing
    if characteristic.bins is not None:
        for low, high, points in characteristic.bins:
            if _in_band(value, low, high):
                return points
        return characteristic.other
    for key, points in (characteristic.categories or {}).items():
        if key == value:
            return float(points)
    return characteristic.other


def _call_exit(mechanism: m.UserExitMechanism, arguments: list) -> Any:
    try:
        return mechanism.user_exit.function(*arguments)
    except EngineError:
        raise
    except Exception as error:  # a user exit is foreign code: name it in the error
        raise EvaluationError(
            f"user exit {mechanism.user_exit.name!r} (mechanism {mechanism.name!r}) failed: "
            f"{type(error).__name__}: {error}",
            symbol=mechanism.user_exit.name,
        ) from error


def _aggregate(state: _Customer, mechanism: m.Aggregate, step: dict) -> Any:
    considered = 0
    true_count = 0
    total = 0.0
    numbers = 0
    low = high = None
    for account in state.accounts_of(mechanism.over):
        record = _account_record(state, account)
        if not _true(mechanism.where, record):
            continue
        considered += 1
        value = mechanism.value.compiled.evaluate_record(record)
        if mechanism.function in ("any", "all", "count"):
            true_count += value is True
        elif value is not None:
            numbers += 1
            total += value
            low = value if low is None or value < low else low
            high = value if high is None or value > high else high
    step["accounts"] = considered
    function = mechanism.function
    if function == "any":
        return true_count > 0
    if function == "all":
        return true_count == considered
    if function == "count":
        return float(true_count)
    if function == "sum":
        return total
    if function == "min":
        return low
    if function == "max":
        return high
    return total / numbers if numbers else None


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


def _treatments(state: _Customer, interaction_type: str | None, channels: list[str], history):
    strategy = state.strategy
    values = state.values
    closed, declined = _contact_state(strategy, history)
    policy_cache: dict[int, bool] = {}
    score_cache: dict[str, tuple[float | None, dict]] = {}
    filters: list[dict] = []
    arbitration: dict[str, list[dict]] = {}
    chosen: dict[str, list[dict]] = {}
    order = {name: index for index, name in enumerate(strategy.treatments)}
    for channel in channels:
        rules = c.deciding_rules(strategy, values["segment"], interaction_type, channel)
        passing = []
        for name, rule in rules.items():
            if rule.exclude or not _true(rule.condition, values):
                continue
            reason = None
            for index, policy in enumerate(strategy.policies):
                if name not in policy.treatments:
                    continue
                if index not in policy_cache:
                    policy_cache[index] = _true(policy.condition, values)
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
