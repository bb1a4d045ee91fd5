"""Batch evaluator: a whole population, column-wise, customers and accounts in one pass.

Customers are rows of a customers frame; accounts are rows of one flat accounts frame
with a customer index. Each mechanism runs once over all its rows: customer mechanisms
over all customers, iterative ones over all accounts of their type at once (seed 004's
single pass, vectorised), and aggregates go back to customers with ``np.bincount`` on
the customer index. The meaning is the per-record evaluator's (``record.py``); traces
are rendered from the same step data so both give identical records.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from cx_pipelines.engine.evaluation import shared as c
from cx_pipelines.engine.language import model as m
from cx_pipelines.engine.evaluation.batch.columns import (
    _Broadcast,
    _LazyColumns,
    _Level,
    _loader,
    _null_column,
    _Step,
    _string_column,
)
from cx_pipelines.engine.evaluation.batch.index import CustomerIndex
from cx_pipelines.engine.evaluation.batch.mechanisms import MechanismRunner
from cx_pipelines.engine.evaluation.batch.output import (
    BatchResult,
    _account_frame,
    _customer_frame,
    _records,
    _treatment_frame,
)
from cx_pipelines.engine.language.errors import EvaluationError, Location
from cx_pipelines.engine.language.expressions.columns import prepare_columns
from cx_pipelines.engine.evaluation.record.run import _channels, _event
from cx_pipelines.engine.evaluation.batch.trace import trace_texts


class _Run(MechanismRunner):
    def __init__(
        self, strategy: m.Strategy, customers: pd.DataFrame, accounts: pd.DataFrame | None
    ):
        self.strategy = strategy
        size = len(customers)
        if "customer_id" not in customers.columns:
            raise EvaluationError(
                "the customers frame has no column 'customer_id'", symbol="customer_id"
            )
        loaders = {}
        for attribute in strategy.input_attributes(None):
            if attribute.column not in customers.columns:
                raise EvaluationError(
                    f"the customers frame has no column {attribute.column!r} "
                    "(declared in data_dictionary.customer)",
                    location=Location(
                        file=strategy.file, path=f"data_dictionary.customer.{attribute.name}"
                    ),
                    symbol=attribute.name,
                )
            loaders[attribute.name] = _loader(customers[attribute.column], attribute)
        columns = _LazyColumns(loaders)
        for attribute in strategy.derived_attributes(None):
            columns[attribute.name] = _null_column(attribute.value_type, size)
        for name in m.BUILTIN_ATTRIBUTES:
            columns[name] = np.empty(size, dtype=object)
        self.customer_series = customers["customer_id"]
        self.customer_ids = customers["customer_id"].array
        self._index: CustomerIndex | None = None
        self.customers = _Level(size, columns)
        self.levels: dict[str | None, _Level] = {None: self.customers}
        self.account_rows: dict[str, np.ndarray] = {}
        self._accounts(accounts)
        self.steps: list[_Step] = []
        self.prepared: dict[str | None, Any] = {}

    def _accounts(self, accounts: pd.DataFrame | None) -> None:
        strategy = self.strategy
        if accounts is None or len(accounts) == 0:
            accounts = pd.DataFrame({"account_id": [], "customer_id": [], "account_type": []})
        for required in ("account_id", "customer_id", "account_type"):
            if required not in accounts.columns:
                raise EvaluationError(
                    f"the accounts frame has no column {required!r}", symbol=required
                )
        owner = (
            self.index.owner_index(accounts["customer_id"])
            if len(accounts)
            else np.zeros(0, dtype=np.int64)
        )
        known = owner >= 0
        # all accounts in customer order, keeping the frame's order within a customer
        if known.all() and np.all(owner[1:] >= owner[:-1]):
            order = np.arange(len(owner))  # already grouped in customer order
        else:
            order = np.flatnonzero(known)[np.argsort(owner[known], kind="stable")]
        self.accounts_frame = accounts
        self.unmatched_accounts = accounts.iloc[np.flatnonzero(~known)]
        self.account_order = order
        self.account_owner = owner[order]
        type_codes, type_names = pd.factorize(accounts["account_type"])
        type_codes = type_codes[order]
        self.account_type_column = _string_column(accounts["account_type"])[order]
        self.account_level_row = np.full(len(order), -1, dtype=np.int64)
        for account_type in strategy.account_types:
            known_types = [str(v) for v in type_names]
            code = known_types.index(account_type) if account_type in known_types else -2
            in_type = np.flatnonzero(type_codes == code)
            rows = order[in_type]
            self.account_level_row[in_type] = np.arange(len(in_type))
            loaders = {}
            for attribute in strategy.input_attributes(account_type):
                if attribute.column in accounts.columns:
                    loaders[attribute.name] = _loader(
                        accounts[attribute.column], attribute, rows=rows
                    )
                else:
                    loaders[attribute.name] = _loader(None, attribute, len(rows))
            columns = _LazyColumns(loaders)
            for attribute in strategy.derived_attributes(account_type):
                columns[attribute.name] = _null_column(attribute.value_type, len(rows))
            self.levels[account_type] = _Level(len(rows), columns, owner[rows])
            self.account_rows[account_type] = in_type
        self.account_actions = np.empty(len(order), dtype=object)

    # ------------------------------------------------------------ expressions
    @property
    def index(self) -> CustomerIndex:
        """Fingerprints of the customer ids, made when first needed (draws, account owners)."""
        if self._index is None:
            self._index = CustomerIndex(self.customer_series, self.strategy.salt)
        return self._index

    @property
    def draws(self) -> np.ndarray:
        return self.index.draws

    def frame(self, level: str | None) -> Mapping[str, np.ndarray]:
        """The columns expressions read at ``level``, prepared once so conversions are shared.

        Columns are never changed in place (writes replace the array), so the shared
        conversions of ``prepare_columns`` stay valid.
        """
        prepared = self.prepared.get(level)
        if prepared is None:
            data = self.levels[level]
            columns = (
                data.columns
                if level is None
                else _Broadcast(data.columns, self.customers.columns, data.customer)
            )
            prepared = self.prepared[level] = prepare_columns(columns, data.size)
        return prepared

    def evaluate(self, expression: m.Expression, level: str | None) -> np.ndarray:
        return expression.compiled.evaluate_batch(self.frame(level), self.levels[level].size)

    def truth(self, expression: m.Expression | None, level: str | None) -> np.ndarray:
        if expression is None:
            return np.ones(self.levels[level].size, dtype=bool)
        return self.evaluate(expression, level)

    # ------------------------------------------------------------ segments … treatments
    def segment_and_group(self, test_group_override: np.ndarray | None) -> None:
        strategy = self.strategy
        columns = self.customers.columns
        size = self.customers.size
        segment_code = np.full(size, -1, dtype=np.int64)
        for position in range(len(strategy.segments) - 1, -1, -1):
            condition = strategy.segments[position].condition
            if condition is None:
                segment_code[:] = position
            else:
                segment_code = np.where(self.truth(condition, None), position, segment_code)
        names = np.array([item.name for item in strategy.segments] + [None], dtype=object)
        segment = names[segment_code]
        columns["segment"] = segment
        group_names = sorted({g for groups in strategy.test_groups.values() for g, _ in groups})
        group_code = np.full(size, len(group_names), dtype=np.int64)
        for position, item in enumerate(strategy.segments):
            bounds = c.cumulative(strategy.test_groups[item.name])
            in_segment = segment_code == position
            if len(bounds) == 1:  # one group: no draw needed
                group_code[in_segment] = group_names.index(bounds[0][0])
                continue
            open_rows = in_segment.copy()
            for name, upper in bounds:
                hit = open_rows & (self.draws < upper)
                group_code[hit] = group_names.index(name)
                open_rows &= ~hit
            group_code[open_rows] = group_names.index(bounds[-1][0])
        group = np.array(group_names + [None], dtype=object)[group_code]
        if test_group_override is not None:
            given = pd.notna(test_group_override)
            group[given] = test_group_override[given]
        columns["test_group"] = group

    def processes(self, event: m.Event) -> None:
        group = self.customers.columns["test_group"]
        for process_name in event.processes:
            process = self.strategy.processes[process_name]
            if process.by_test_group is None:
                for name in process.mechanisms:
                    self.run(name, process_name, None)
                continue
            explicit = [g for g in process.by_test_group if g != "default"]
            for key, names in process.by_test_group.items():
                mask = np.isin(group, explicit, invert=True) if key == "default" else group == key
                for name in names:
                    self.run(name, process_name, mask)

    def categorize(self) -> None:
        strategy = self.strategy
        category = np.empty(self.customers.size, dtype=object)
        unassigned = np.ones(self.customers.size, dtype=bool)
        for rule in strategy.categories:
            hit = unassigned & self.truth(rule.condition, None)
            category[hit] = rule.name
            unassigned &= ~hit
        self.customers.columns["category"] = category
        for account_type, positions in self.account_rows.items():
            level = self.levels[account_type]
            if level.size == 0:
                continue
            action = np.empty(level.size, dtype=object)
            owner_category = category[level.customer]
            for item in strategy.account_actions:
                if item.account_type != account_type:
                    continue
                hit = pd.isna(action) & (owner_category == item.category)
                if hit.any():
                    hit &= self.truth(item.condition, account_type)
                action[hit] = item.action
            self.account_actions[positions] = action

    def treatments(
        self, interaction_type: str | None, channels: list[str], history: pd.DataFrame | None
    ):
        strategy = self.strategy
        size = self.customers.size
        names = list(strategy.treatments)
        segment = self.customers.columns["segment"]
        reasons: list[tuple[str, str]] = [("", "")]

        def reason_code(reason: tuple[str, str]) -> int:
            if reason not in reasons:
                reasons.append(reason)
            return reasons.index(reason)

        closed, declined = self._contact_state(history, channels, reason_code)
        policy_pass = [self.truth(policy.condition, None) for policy in strategy.policies]
        rule_pass: dict[int, np.ndarray] = {}
        scores: dict[str, np.ndarray] = {}
        terms: dict[str, dict[str, np.ndarray]] = {}
        for name, treatment in strategy.treatments.items():
            values = {
                term: self.evaluate(expression, None)
                for term, expression in treatment.terms.items()
            }
            values["lever"] = np.full(size, strategy.lever(name))
            scope = _Broadcast(values, self.customers.columns, None)
            for term in treatment.formula.compiled.attributes:
                if term in m.ARBITRATION_TERMS and term not in values:
                    values[term] = np.full(size, np.nan)
            scores[name] = treatment.formula.compiled.evaluate_batch(scope, size)
            terms[name] = values
        score_missing = reason_code(("arbitration", c.SCORE_MISSING))
        self.filter_codes: dict[str, dict[str, np.ndarray]] = {}
        self.rankings: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for channel in channels:
            keys = np.full((size, len(names)), np.inf)
            codes_by: dict[str, np.ndarray] = {}
            for position, name in enumerate(names):
                candidate = np.zeros(size, dtype=bool)
                for item in strategy.segments:
                    rule = c.deciding_rules(strategy, item.name, interaction_type, channel).get(
                        name
                    )
                    if rule is None or rule.exclude:
                        continue
                    if rule.rule_id not in rule_pass:
                        rule_pass[rule.rule_id] = self.truth(rule.condition, None)
                    candidate |= (segment == item.name) & rule_pass[rule.rule_id]
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
            self.filter_codes[channel] = codes_by
            self.rankings[channel] = (order, np.take_along_axis(keys, order, axis=1))
        self.reasons = reasons
        self.scores, self.terms, self.names = scores, terms, names

    def _contact_state(self, history: pd.DataFrame | None, channels: list[str], reason_code):
        strategy = self.strategy
        size = self.customers.size
        closed: dict[str, np.ndarray] = {}
        declined: dict[str, np.ndarray] = {}
        if history is None or len(history) == 0:
            return closed, declined
        for required in ("customer_id", "channel", "days_ago"):
            if required not in history.columns:
                raise EvaluationError(
                    f"the contact history has no column {required!r}", symbol=required
                )
        owner = self.index.owner_index(history["customer_id"])
        known = owner >= 0
        days = pd.to_numeric(history["days_ago"]).to_numpy(dtype=np.float64)
        channel_of = history["channel"].to_numpy()
        for cap in strategy.contact_caps:
            rows = known & (days < cap.period_days)
            if cap.channel != "*":
                rows &= channel_of == cap.channel
            over = np.bincount(owner[rows], minlength=size) >= cap.max
            code = reason_code(("contact", c.cap_reason(cap)))
            for channel in strategy.channels if cap.channel == "*" else [cap.channel]:
                current = closed.setdefault(channel, np.zeros(size, dtype=np.int16))
                current[over & (current == 0)] = code
        if (
            strategy.decline_limit
            and "declined" in history.columns
            and "treatment" in history.columns
        ):
            limit, window = strategy.decline_limit
            declined_rows = (
                known & (days < window) & history["declined"].fillna(False).astype(bool).to_numpy()
            )
            treatment_of = history["treatment"].to_numpy()
            for name in strategy.treatments:
                rows = declined_rows & (treatment_of == name)
                if rows.any():
                    declined[name] = np.bincount(owner[rows], minlength=size) >= limit
        return closed, declined


def evaluate_batch(
    strategy: m.Strategy,
    *,
    event: str,
    customers: pd.DataFrame,
    accounts: pd.DataFrame | None = None,
    interaction_type: str | None = None,
    channel: str | None = None,
    contact_history: pd.DataFrame | None = None,
    model_versions: Mapping[str, Any] | None = None,
    trace: bool = True,
    test_groups: Any = None,
    chunk_size: int | None = 250_000,
) -> BatchResult:
    """Run ``event`` for every customer at once; one customer intelligence record per row.

    ``trace=False`` skips rendering the per-customer JSON trace (the costly part at
    millions of rows); everything else is identical. ``test_groups`` (an array of group
    names or None per customer) overrides the hashed assignment, as golden cases do.
    With traces, populations larger than ``chunk_size`` customers are evaluated in
    slices of that many customers with their accounts: same results, and the working
    memory of trace rendering stays bounded.
    """
    options = {
        "event": event,
        "interaction_type": interaction_type,
        "channel": channel,
        "model_versions": model_versions,
        "trace": trace,
    }
    if trace and chunk_size is not None and len(customers) > chunk_size:
        return _in_chunks(
            strategy, customers, accounts, contact_history, test_groups, chunk_size, options
        )
    return _evaluate(strategy, customers, accounts, contact_history, test_groups, **options)


def _in_chunks(strategy, customers, accounts, contact_history, test_groups, chunk_size, options):
    customers = customers.reset_index(drop=True)
    index = CustomerIndex(customers["customer_id"], strategy.salt)
    account_owner = None if accounts is None else index.owner_index(accounts["customer_id"])
    history_owner = (
        None if contact_history is None else index.owner_index(contact_history["customer_id"])
    )
    groups = None if test_groups is None else np.asarray(test_groups, dtype=object)
    results = []
    for start in range(0, len(customers), chunk_size):
        stop = start + chunk_size

        def rows(owner, start=start, stop=stop):
            return np.flatnonzero((owner >= start) & (owner < stop))

        results.append(
            _evaluate(
                strategy,
                customers.iloc[start:stop],
                None if accounts is None else accounts.iloc[rows(account_owner)],
                None if contact_history is None else contact_history.iloc[rows(history_owner)],
                None if groups is None else groups[start:stop],
                **options,
            )
        )
    unmatched = None if accounts is None else accounts.iloc[np.flatnonzero(account_owner < 0)]
    return BatchResult(
        pd.concat([r.customers for r in results], ignore_index=True),
        pd.concat([r.accounts for r in results], ignore_index=True),
        pd.concat([r.treatments for r in results], ignore_index=True),
        lambda: [record for r in results for record in r.records()],
        unmatched_accounts=unmatched,
    )


def _evaluate(
    strategy: m.Strategy,
    customers: pd.DataFrame,
    accounts: pd.DataFrame | None,
    contact_history: pd.DataFrame | None,
    test_groups: Any,
    *,
    event: str,
    interaction_type: str | None,
    channel: str | None,
    model_versions: Mapping[str, Any] | None,
    trace: bool,
) -> BatchResult:
    plan = _event(strategy, event)
    channels = _channels(strategy, channel)
    interaction = interaction_type or plan.interaction_type
    run = _Run(strategy, customers.reset_index(drop=True), accounts)
    run.models = c.event_models(strategy, plan, dict(model_versions or {}))
    override = None if test_groups is None else np.asarray(test_groups, dtype=object)
    run.segment_and_group(override)
    run.processes(plan)
    if plan.categorize and strategy.categories:
        run.categorize()
    run.treatments(interaction, channels, contact_history)
    cache: list[list[dict]] = []

    def records() -> list[dict]:
        if not cache:
            cache.append(_records(run, plan, interaction, channels))
        return cache[0]

    customer_frame = _customer_frame(run, plan, channels)
    if trace:
        customer_frame["trace"] = pd.Series(
            trace_texts(run, plan, interaction, channels), dtype=object, copy=False
        )
    return BatchResult(
        customer_frame,
        _account_frame(run),
        _treatment_frame(run, channels),
        records,
        unmatched_accounts=run.unmatched_accounts,
    )
