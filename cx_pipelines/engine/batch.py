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
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from cx_pipelines.engine import common as c
from cx_pipelines.engine import model as m
from cx_pipelines.engine.errors import EngineError, EvaluationError, Location
from cx_pipelines.engine.expressions import ValueType
from cx_pipelines.engine.record import _channels, _event
from cx_pipelines.engine.trace_text import trace_texts

_NULL = {
    ValueType.NUMBER: np.nan,
    ValueType.BOOLEAN: np.nan,
    ValueType.STRING: None,
    ValueType.DATE: np.datetime64("NaT", "D"),
}
_DTYPE = {
    ValueType.NUMBER: np.float64,
    ValueType.BOOLEAN: np.float64,
    ValueType.STRING: object,
    ValueType.DATE: "datetime64[D]",
}


def _null_column(value_type: ValueType, size: int) -> np.ndarray:
    if value_type is ValueType.STRING:
        return np.empty(size, dtype=object)  # filled with None
    return np.full(size, _NULL[value_type], dtype=_DTYPE[value_type])


def _read_column(series: pd.Series, value_type: ValueType, name: str) -> np.ndarray:
    try:
        if value_type is ValueType.NUMBER:
            return pd.to_numeric(series).to_numpy(dtype=np.float64, na_value=np.nan)
        if value_type is ValueType.BOOLEAN:
            return pd.array(series, dtype="boolean").to_numpy(dtype=np.float64, na_value=np.nan)
        if value_type is ValueType.DATE:
            return pd.to_datetime(series).to_numpy().astype("datetime64[D]")
        return _string_column(series)
    except (TypeError, ValueError) as error:
        raise EvaluationError(
            f"column {name!r} cannot be read as {value_type.name}: {error}", symbol=name
        ) from None


def _loader(
    series: pd.Series | None, attribute: m.Attribute, size: int = 0, rows: np.ndarray | None = None
):
    if series is None:
        return lambda: _null_column(attribute.value_type, size)
    if rows is None:
        return lambda: _read_column(series, attribute.value_type, attribute.name)
    return lambda: _read_column(series.iloc[rows], attribute.value_type, attribute.name)


def _to_values(values: Any, value_type: ValueType, size: int) -> np.ndarray:
    """A list/array of mechanism results in the level's storage dtype."""
    if value_type is ValueType.STRING:
        array = np.empty(size, dtype=object)
        array[:] = list(values) if not isinstance(values, np.ndarray) else values
        return array
    if value_type is ValueType.BOOLEAN:
        array = np.asarray(values)
        if array.dtype == object:
            return np.array(
                [np.nan if v is None else float(bool(v)) for v in array], dtype=np.float64
            )
        return array.astype(np.float64)
    if value_type is ValueType.NUMBER:
        array = np.asarray(values)
        if array.dtype == object:
            return np.array([np.nan if v is None else float(v) for v in array], dtype=np.float64)
        return array.astype(np.float64)
    return np.asarray(values, dtype="datetime64[D]")


class _LazyColumns(dict):
    """Attribute columns read from the input frame on first use (unused ones cost nothing)."""

    def __init__(self, loaders: dict[str, Any]):
        super().__init__()
        self.loaders = loaders

    def __missing__(self, name: str) -> np.ndarray:
        loader = self.loaders.get(name)
        if loader is None:
            raise KeyError(name)
        value = self[name] = loader()
        return value

    def __contains__(self, name: object) -> bool:
        return dict.__contains__(self, name) or name in self.loaders

    def __iter__(self):
        return iter({**dict.fromkeys(self.loaders), **dict.fromkeys(dict.keys(self))})

    def __len__(self) -> int:
        return len(set(self.loaders) | set(dict.keys(self)))


def _string_column(series: pd.Series) -> np.ndarray:
    """Text as an object array with None for null, built from the distinct values only."""
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    table = np.empty(len(uniques) + 1, dtype=object)
    table[: len(uniques)] = [str(v) for v in uniques]
    table[-1] = None
    return table[codes]


class _Broadcast(Mapping):
    """Columns of an account level: its own attributes plus customer attributes by index."""

    def __init__(
        self, own: dict[str, np.ndarray], customer: dict[str, np.ndarray], index: np.ndarray
    ):
        self.own, self.customer, self.index = own, customer, index

    def __getitem__(self, name: str) -> np.ndarray:
        if name in self.own:
            return self.own[name]
        if self.index is None:
            return self.customer[name]
        return self.customer[name][self.index]

    def __iter__(self):
        return iter(list(self.own) + [k for k in self.customer if k not in self.own])

    def __len__(self) -> int:
        return len(list(iter(self)))


@dataclass
class _Level:
    size: int
    columns: dict[str, np.ndarray]
    customer: np.ndarray | None = None  # customer index per row (account levels)


@dataclass
class _Step:
    level: str | None
    mask: np.ndarray | None
    process: str
    mechanism: m.Mechanism
    called_by: str | None
    value: np.ndarray
    detail: dict[str, Any] = field(default_factory=dict)


class _Run:
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
        self._index_customers()
        self.customers = _Level(size, columns)
        self.levels: dict[str | None, _Level] = {None: self.customers}
        self.account_rows: dict[str, np.ndarray] = {}
        self._accounts(accounts)
        self.steps: list[_Step] = []

    def _index_customers(self) -> None:
        """Fingerprint every customer id once: test-group draws, duplicates and account owners."""
        self.fingerprints, self.checks = c.fingerprints(self.customer_series, self.strategy.salt)
        if self.customer_series.isna().any():
            raise EvaluationError("column customer_id of the customers frame has empty entries")
        self.draws = c.draws_of(self.fingerprints)
        order = np.argsort(self.fingerprints)
        ordered, ordered_checks = self.fingerprints[order], self.checks[order]
        same = ordered[1:] == ordered[:-1]
        if same.any():
            pairs = np.flatnonzero(same)
            left, right = order[pairs], order[pairs + 1]
            if np.any(self.checks[left] == self.checks[right]):
                raise EvaluationError(
                    "column customer_id of the customers frame has duplicate entries"
                )
        self.collision = bool(same.any())  # two ids, one fingerprint: look up by value instead
        self.fingerprint_order, self.ordered_fingerprints, self.ordered_checks = (
            order,
            ordered,
            ordered_checks,
        )

    def owner_index(self, customer_ids: Any) -> np.ndarray:
        """Row of each given customer id in the customers frame (-1 when absent)."""
        size = len(customer_ids)
        if size == 0 or self.customers.size == 0:
            return np.full(size, -1, dtype=np.int64)
        if self.collision:
            return pd.Index(self.customer_ids).get_indexer(np.asarray(customer_ids))
        # rows grouped by customer (the usual account extract) are looked up once per run
        text = c.arrow_text(customer_ids)
        change = np.ones(size, dtype=bool)
        if size > 1:
            differs = pc.not_equal(text.slice(1), text.slice(0, size - 1))
            change[1:] = np.asarray(pc.fill_null(differs, True))
        starts = np.flatnonzero(change)
        run_wanted, run_checks = c.fingerprints(text.take(pa.array(starts)), self.strategy.salt)
        if (
            len(starts) == self.customers.size
            and np.array_equal(run_wanted, self.fingerprints)
            and np.array_equal(run_checks, self.checks)
        ):
            # grouped in the customers' own order: no search needed
            return np.repeat(np.arange(self.customers.size), np.diff(np.append(starts, size)))
        position = np.minimum(
            np.searchsorted(self.ordered_fingerprints, run_wanted), self.customers.size - 1
        )
        hit = (self.ordered_fingerprints[position] == run_wanted) & (
            self.ordered_checks[position] == run_checks
        )
        found = np.where(hit, self.fingerprint_order[position], -1)
        return np.repeat(found, np.diff(np.append(starts, size)))

    def _accounts(self, accounts: pd.DataFrame | None) -> None:
        strategy = self.strategy
        if accounts is None or len(accounts) == 0:
            accounts = pd.DataFrame({"account_id": [], "customer_id": [], "account_type": []})
        for required in ("account_id", "customer_id", "account_type"):
            if required not in accounts.columns:
                raise EvaluationError(
                    f"the accounts frame has no column {required!r}", symbol=required
                )
        owner = self.owner_index(accounts["customer_id"])
        known = owner >= 0
        # all accounts in customer order, keeping the frame's order within a customer
        if known.all() and np.all(owner[1:] >= owner[:-1]):
            order = np.arange(len(owner))  # already grouped in customer order
        else:
            order = np.flatnonzero(known)[np.argsort(owner[known], kind="stable")]
        self.accounts_frame = accounts
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
    def frame(self, level: str | None) -> Mapping[str, np.ndarray]:
        if level is None:
            return self.customers.columns
        data = self.levels[level]
        return _Broadcast(data.columns, self.customers.columns, data.customer)

    def evaluate(self, expression: m.Expression, level: str | None) -> np.ndarray:
        return expression.compiled.evaluate_batch(self.frame(level), self.levels[level].size)

    def truth(self, expression: m.Expression | None, level: str | None) -> np.ndarray:
        if expression is None:
            return np.ones(self.levels[level].size, dtype=bool)
        return self.evaluate(expression, level)

    # ------------------------------------------------------------ mechanisms
    def run(self, name: str, process: str, customer_mask: np.ndarray | None) -> None:
        mechanism = self.strategy.mechanisms[name]
        level = None if isinstance(mechanism, m.Aggregate) else mechanism.over
        mask = customer_mask
        if level is not None and customer_mask is not None:
            mask = customer_mask[self.levels[level].customer]
        self._run(mechanism, process, level, mask, None)

    def _run(self, mechanism, process, level, mask, called_by) -> None:
        size = self.levels[level].size
        if size == 0 or (mask is not None and not mask.any()):
            return
        detail: dict[str, Any] = {}
        calls: list[tuple[str, np.ndarray]] = []
        values = getattr(self, "_" + mechanism.kind)(mechanism, level, mask, detail, calls)
        values = _to_values(values, mechanism.output.value_type, size)
        column = self.levels[level].columns[mechanism.output.name]
        if mask is None:
            column[:] = values
        else:
            column[mask] = values[mask]
        self.steps.append(_Step(level, mask, process, mechanism, called_by, values, detail))
        for target, target_mask in calls:
            self._run(self.strategy.mechanisms[target], process, level, target_mask, mechanism.name)

    def _decision_tree(self, mechanism: m.DecisionTree, level, mask, detail, calls):
        size = self.levels[level].size
        leaf = np.full(size, -1, dtype=np.int64)
        active = np.ones(size, dtype=bool) if mask is None else mask

        def walk(branches: list[m.Branch], reach: np.ndarray) -> None:
            remaining = reach
            for branch in branches:
                if not remaining.any():
                    return
                take = (
                    remaining
                    if branch.condition is None
                    else remaining & self.truth(branch.condition, level)
                )
                remaining = remaining & ~take
                if isinstance(branch.outcome, m.Leaf):
                    leaf[take] = branch.outcome.leaf_id
                else:
                    walk(branch.outcome, take)

        walk(mechanism.branches, active)
        leaves = mechanism.leaves
        table = _to_values(
            [leaf_.value for leaf_ in leaves] + [None], mechanism.output.value_type, len(leaves) + 1
        )
        detail["leaf"] = leaf
        for item in leaves:
            if item.call:
                reached = leaf == item.leaf_id
                if reached.any():
                    calls.append((item.call, reached))
        return table[leaf]  # -1 picks the trailing null

    def _axis(self, axis: m.Axis, level) -> np.ndarray:
        value = self.evaluate(axis.expression, level)
        index = np.full(len(value), -1, dtype=np.int64)
        if axis.bands is not None:
            known = ~np.isnan(value)
            for position, (low, high) in enumerate(axis.bands):
                hit = known & (index < 0)
                if low is not None:
                    hit &= value >= low
                if high is not None:
                    hit &= value < high
                index[hit] = position
        else:
            for position, category in enumerate(axis.categories or []):
                hit = (index < 0) & (value == category)
                index[hit] = position
        return index

    def _matrix(self, mechanism: m.Matrix, level, mask, detail, calls):
        rows = self._axis(mechanism.rows, level)
        columns = self._axis(mechanism.columns, level) if mechanism.columns else np.zeros_like(rows)
        value_type = mechanism.output.value_type
        flat = [v for row in mechanism.values for v in row] + [mechanism.default]
        table = _to_values(flat, value_type, len(flat))
        width = len(mechanism.values[0]) if mechanism.values else 1
        found = (rows >= 0) & (columns >= 0)
        cell = np.where(found, rows * width + columns, len(flat) - 1)
        detail["row"], detail["column"] = np.where(found, rows, -1), columns
        return table[cell]

    def _scorecard(self, mechanism: m.Scorecard, level, mask, detail, calls):
        size = self.levels[level].size
        total = np.full(size, mechanism.base, dtype=np.float64)
        points_by = {}
        for characteristic in mechanism.characteristics:
            value = self.evaluate(characteristic.expression, level)
            points = np.full(size, characteristic.other, dtype=np.float64)
            if characteristic.bins is not None:
                missing = np.isnan(value)
                done = missing.copy()
                for low, high, score in characteristic.bins:
                    hit = ~done
                    if low is not None:
                        hit &= value >= low
                    if high is not None:
                        hit &= value < high
                    points[hit] = score
                    done |= hit
            else:
                missing = pd.isna(value) if value.dtype == object else np.isnan(value.astype(float))
                done = missing.copy()
                for key, score in (characteristic.categories or {}).items():
                    hit = ~done & (value == key)
                    points[hit] = score
                    done |= hit
            points[missing] = characteristic.missing
            points_by[characteristic.label] = points
            total += points
        detail["points"] = points_by
        return total

    def _model_score(self, mechanism: m.ModelScore, level, mask, detail, calls):
        value = np.asarray(self.frame(level)[mechanism.input.name], dtype=np.float64).copy()
        default = np.nan if mechanism.default is None else float(mechanism.default)
        value[np.isnan(value)] = default
        return value

    def _list_processor(self, mechanism: m.ListProcessor, level, mask, detail, calls):
        size = self.levels[level].size
        keys = np.full((size, len(mechanism.items)), np.inf)
        scores = np.full((size, len(mechanism.items)), np.nan)
        for position, item in enumerate(mechanism.items):
            score = self.evaluate(item.score, level)
            valid = self.truth(item.condition, level) & ~np.isnan(score)
            keys[valid, position] = -score[valid]
            scores[:, position] = score
        order = np.argsort(keys, axis=1, kind="stable")
        best = order[:, 0] if len(mechanism.items) else np.zeros(size, dtype=np.int64)
        found = np.isfinite(keys[np.arange(size), best])
        ids = np.array([item.item_id for item in mechanism.items] + [None], dtype=object)
        detail["order"], detail["keys"], detail["scores"] = order, keys, scores
        return ids[np.where(found, best, len(mechanism.items))]

    def _user_exit(self, mechanism: m.UserExitMechanism, level, mask, detail, calls):
        size = self.levels[level].size
        frame = self.frame(level)
        rows = np.arange(size) if mask is None else np.flatnonzero(mask)
        result = np.empty(size, dtype=object)
        user_exit = mechanism.user_exit
        if user_exit.batch_function is not None:
            arguments = [np.asarray(frame[a.name])[rows] for a in mechanism.inputs]
            try:
                values = user_exit.batch_function(*arguments)
            except EngineError:
                raise
            except Exception as error:  # foreign code: say which exit failed
                raise EvaluationError(
                    f"user exit {user_exit.name!r} (mechanism {mechanism.name!r}) failed in batch: "
                    f"{type(error).__name__}: {error}",
                    symbol=user_exit.name,
                ) from error
            result[rows] = list(np.asarray(values, dtype=object))
            return result
        from cx_pipelines.engine.record import _call_exit

        inputs = [
            c.canonical_list(np.asarray(frame[a.name])[rows], a.value_type)
            for a in mechanism.inputs
        ]
        for position, row in enumerate(rows):
            result[row] = _call_exit(mechanism, [values[position] for values in inputs])
        return result

    def _aggregate(self, mechanism: m.Aggregate, level, mask, detail, calls):
        accounts = self.levels[mechanism.over]
        size = self.customers.size
        considered = self.truth(mechanism.where, mechanism.over)
        if mask is not None:
            considered = considered & mask[accounts.customer]
        owner = accounts.customer
        value = self.evaluate(mechanism.value, mechanism.over)
        counted = np.bincount(owner[considered], minlength=size)
        detail["accounts"] = counted
        function = mechanism.function
        if function in ("any", "all", "count"):
            hits = np.bincount(owner[considered & value], minlength=size)
            if function == "any":
                return hits > 0
            if function == "all":
                return hits == counted
            return hits.astype(np.float64)
        usable = considered & ~np.isnan(value)
        numbers = np.bincount(owner[usable], minlength=size)
        if function in ("sum", "mean"):
            total = np.bincount(owner[usable], weights=value[usable], minlength=size)
            if function == "sum":
                return total
            with np.errstate(invalid="ignore", divide="ignore"):
                return np.where(numbers > 0, total / np.maximum(numbers, 1), np.nan)
        result = np.full(size, np.inf if function == "min" else -np.inf)
        (np.minimum if function == "min" else np.maximum).at(result, owner[usable], value[usable])
        result[numbers == 0] = np.nan
        return result

    # ------------------------------------------------------------ segments … treatments
    def segment_and_group(self, test_group_override: np.ndarray | None) -> None:
        strategy = self.strategy
        columns = self.customers.columns
        size = self.customers.size
        segment = columns["segment"]
        unassigned = np.ones(size, dtype=bool)
        for item in strategy.segments:
            hit = unassigned & self.truth(item.condition, None)
            segment[hit] = item.name
            unassigned &= ~hit
        group = columns["test_group"]
        for item in strategy.segments:
            in_segment = segment == item.name
            open_rows = in_segment.copy()
            bounds = c.cumulative(strategy.test_groups[item.name])
            for name, upper in bounds:
                hit = open_rows & (self.draws < upper)
                group[hit] = name
                open_rows &= ~hit
            group[open_rows] = bounds[-1][0]
        if test_group_override is not None:
            given = pd.notna(test_group_override)
            group[given] = test_group_override[given]

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
        category = self.customers.columns["category"]
        unassigned = np.ones(self.customers.size, dtype=bool)
        for rule in strategy.categories:
            hit = unassigned & self.truth(rule.condition, None)
            category[hit] = rule.name
            unassigned &= ~hit
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
        owner = self.owner_index(history["customer_id"])
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


# ---------------------------------------------------------------- rendering
class _StepView:
    """Per-row access to one step's values, as the per-record evaluator writes them."""

    def __init__(self, step: _Step, run: _Run):
        self.step = step
        mechanism = step.mechanism
        self.head = {"process": step.process, "mechanism": mechanism.name, "type": mechanism.kind}
        if step.called_by:
            self.head["called_by"] = step.called_by
        self.mask = None if step.mask is None else step.mask.tolist()
        self.values = [
            c.json_value(v) for v in c.canonical_list(step.value, mechanism.output.value_type)
        ]
        detail = step.detail
        self.render = getattr(self, "_" + mechanism.kind)
        if isinstance(mechanism, m.DecisionTree):
            paths = [leaf.path for leaf in mechanism.leaves] + [None]
            self.paths = [paths[i] for i in detail["leaf"].tolist()]
        elif isinstance(mechanism, m.Matrix):
            self.rows, self.columns = detail["row"].tolist(), detail["column"].tolist()
        elif isinstance(mechanism, m.Scorecard):
            self.points = {label: array.tolist() for label, array in detail["points"].items()}
        elif isinstance(mechanism, m.ModelScore):
            self.version = run.models.get(mechanism.model, "unknown")
        elif isinstance(mechanism, m.ListProcessor):
            self.order, self.keys, self.scores = detail["order"], detail["keys"], detail["scores"]
            self.ids = [item.item_id for item in mechanism.items]
        elif isinstance(mechanism, m.Aggregate):
            self.accounts = detail["accounts"].tolist()

    def entry(self, row: int) -> dict | None:
        if self.mask is not None and not self.mask[row]:
            return None
        item = dict(self.head)
        self.render(item, row)
        item["value"] = self.values[row]
        return item

    def _decision_tree(self, item, row):
        item["path"] = self.paths[row]

    def _matrix(self, item, row):
        r, col = self.rows[row], self.columns[row]
        item["cell"] = None if r < 0 or col < 0 else [r, col]

    def _scorecard(self, item, row):
        item["points"] = {label: points[row] for label, points in self.points.items()}

    def _model_score(self, item, row):
        item["model"] = self.step.mechanism.model
        item["version"] = self.version

    def _list_processor(self, item, row):
        item["ranking"] = [
            [self.ids[k], float(self.scores[row, k])]
            for k in self.order[row].tolist()
            if np.isfinite(self.keys[row, k])
        ]

    def _user_exit(self, item, row):
        item["function"] = self.step.mechanism.user_exit.name

    def _aggregate(self, item, row):
        item["accounts"] = self.accounts[row]


@dataclass
class BatchResult:
    """Output of :func:`evaluate_batch`: customer records, account decisions, ranked treatments."""

    customers: pd.DataFrame
    accounts: pd.DataFrame
    treatments: pd.DataFrame
    _records: Any = field(repr=False, default=None)

    def records(self) -> list[dict[str, Any]]:
        """Each customer's record as the per-record evaluator returns it."""
        return self._records()


def _records(run: _Run, event: m.Event, interaction: str | None, channels: list[str]) -> list[dict]:
    strategy = run.strategy
    size = run.customers.size
    columns = run.customers.columns
    customer_steps = [_StepView(s, run) for s in run.steps if s.level is None]
    account_steps = {
        t: [_StepView(s, run) for s in run.steps if s.level == t] for t in strategy.account_types
    }
    derived = strategy.derived_attributes(None)
    attributes = {a.name: c.canonical_list(columns[a.name], a.value_type) for a in derived}
    account_derived = {
        t: {
            a.name: c.canonical_list(run.levels[t].columns[a.name], a.value_type)
            for a in strategy.derived_attributes(t)
        }
        for t in strategy.account_types
    }
    frame = run.accounts_frame
    account_ids = (
        frame["account_id"].to_numpy()[run.account_order].tolist() if len(run.account_order) else []
    )
    account_types = run.account_type_column.tolist()
    level_rows = run.account_level_row.tolist()
    actions = run.account_actions.tolist()
    starts = np.searchsorted(run.account_owner, np.arange(size + 1)).tolist()
    terms = {
        name: {term: c.canonical_list(v, ValueType.NUMBER) for term, v in by.items()}
        for name, by in run.terms.items()
    }
    scores = {name: c.canonical_list(v, ValueType.NUMBER) for name, v in run.scores.items()}
    rankings = {
        ch: (order.tolist(), np.isfinite(keys).tolist())
        for ch, (order, keys) in run.rankings.items()
    }
    codes = {
        ch: {name: code.tolist() for name, code in by.items()}
        for ch, by in run.filter_codes.items()
    }
    segment, group, category = (
        columns["segment"].tolist(),
        columns["test_group"].tolist(),
        columns["category"].tolist(),
    )
    draws = run.draws.tolist()
    ids = run.customer_series.tolist()
    names = run.names
    records = []
    for i in range(size):
        steps = [e for e in (view.entry(i) for view in customer_steps) if e is not None]
        accounts, account_trace = [], {}
        for position in range(starts[i], starts[i + 1]):
            account_type = account_types[position]
            level_row = level_rows[position]
            own = {}
            account_steps_here = []
            if level_row >= 0:
                own = {
                    name: values[level_row]
                    for name, values in account_derived[account_type].items()
                }
                account_steps_here = [
                    e
                    for e in (view.entry(level_row) for view in account_steps[account_type])
                    if e is not None
                ]
            if account_steps_here:
                account_trace[str(account_ids[position])] = account_steps_here
            accounts.append(
                {
                    "account_id": account_ids[position],
                    "account_type": account_type,
                    "attributes": own,
                    "action": actions[position],
                }
            )
        chosen, arbitration, filters = {}, {}, []
        for channel in channels:
            for name in names:
                code = codes[channel][name][i]
                if code:
                    policy, reason = run.reasons[code]
                    filters.append(
                        {"channel": channel, "treatment": name, "policy": policy, "reason": reason}
                    )
            order, finite = rankings[channel]
            ranked = []
            for rank, (k, ok) in enumerate(zip(order[i], finite[i], strict=True), start=1):
                if not ok:
                    break
                name = names[k]
                item_terms = {term: values[i] for term, values in terms[name].items()}
                ranked.append(
                    {"treatment": name, "rank": rank, "score": scores[name][i], "terms": item_terms}
                )
            arbitration[channel] = ranked
            chosen[channel] = [
                {"treatment": r["treatment"], "rank": r["rank"], "score": r["score"]}
                for r in ranked[: strategy.max_per_channel]
            ]
        trace = {
            "strategy": strategy.name,
            "version": strategy.version,
            "content_hash": strategy.content_hash,
            "event": event.name,
            "interaction_type": interaction,
            "segment": segment[i],
            "test_group": group[i],
            "test_group_draw": round(draws[i], 6),
            "steps": steps,
            "accounts": account_trace,
            "category": category[i],
            "policy_filters": filters,
            "arbitration": arbitration,
            "model_versions": run.models,
        }
        records.append(
            {
                "customer_id": ids[i],
                "event": event.name,
                "segment": segment[i],
                "test_group": group[i],
                "category": category[i],
                "attributes": {name: values[i] for name, values in attributes.items()},
                "treatments": chosen,
                "accounts": accounts,
                "strategy_hash": strategy.content_hash,
                "trace": trace,
            }
        )
    return records


def _customer_frame(run: _Run, event: m.Event, channels: list[str]) -> pd.DataFrame:
    strategy = run.strategy
    columns = run.customers.columns
    size = run.customers.size
    data: dict[str, Any] = {
        "customer_id": run.customer_ids,
        "event": np.full(size, event.name, dtype=object),
        "segment": columns["segment"],
        "test_group": columns["test_group"],
        "category": columns["category"],
    }
    for attribute in strategy.derived_attributes(None):
        data[attribute.name] = _output_column(columns[attribute.name], attribute.value_type)
    rows = np.arange(size)
    for channel in channels:
        order, keys = run.rankings[channel]
        for rank in range(strategy.max_per_channel):
            if rank >= order.shape[1]:
                break
            position = order[:, rank]
            valid = np.isfinite(keys[:, rank])
            treatment = np.array(run.names + [None], dtype=object)[
                np.where(valid, position, len(run.names))
            ]
            data[f"{channel}_{rank + 1}_treatment"] = treatment
            data[f"{channel}_{rank + 1}_score"] = _exact_scores(run, position, valid, rows)
    data["strategy_hash"] = np.full(size, strategy.content_hash, dtype=object)
    return _frame(data)


def _frame(data: dict[str, Any]) -> pd.DataFrame:
    """A frame that keeps object columns as they are (no costly re-encoding of text)."""
    return pd.DataFrame(
        {
            name: pd.Series(values, dtype=object, copy=False)
            if isinstance(values, np.ndarray) and values.dtype == object
            else values
            for name, values in data.items()
        },
        copy=False,
    )


def _exact_scores(
    run: _Run, position: np.ndarray, valid: np.ndarray, rows: np.ndarray
) -> np.ndarray:
    table = (
        np.column_stack([run.scores[name] for name in run.names])
        if run.names
        else np.zeros((len(rows), 1))
    )
    return np.where(valid, table[rows, np.minimum(position, table.shape[1] - 1)], np.nan)


def _output_column(values: np.ndarray, value_type: ValueType):
    if value_type is ValueType.BOOLEAN:
        return pd.array(np.where(np.isnan(values), None, values == 1.0), dtype="boolean")
    return values


def _account_frame(run: _Run) -> pd.DataFrame:
    strategy = run.strategy
    frame = run.accounts_frame
    order = run.account_order
    count = len(order)
    data: dict[str, Any] = {
        "account_id": frame["account_id"].to_numpy()[order],
        "customer_id": run.customer_ids.take(run.account_owner),
        "account_type": run.account_type_column,
    }
    for account_type, positions in run.account_rows.items():
        for attribute in strategy.derived_attributes(account_type):
            column = _null_column(attribute.value_type, count)
            column[positions] = run.levels[account_type].columns[attribute.name]
            data[attribute.name] = _output_column(column, attribute.value_type)
    data["action"] = run.account_actions
    return _frame(data)


def _treatment_frame(run: _Run, channels: list[str]) -> pd.DataFrame:
    strategy = run.strategy
    pieces = []
    size = run.customers.size
    for channel in channels:
        order, keys = run.rankings[channel]
        for rank in range(min(strategy.max_per_channel, order.shape[1])):
            valid = np.isfinite(keys[:, rank])
            rows = np.flatnonzero(valid)
            position = order[rows, rank]
            piece = {
                "customer_id": run.customer_ids.take(rows),
                "channel": np.full(len(rows), channel, dtype=object),
                "rank": np.full(len(rows), rank + 1, dtype=np.int64),
                "treatment": np.array(run.names, dtype=object)[position] if run.names else [],
                "score": _exact_scores(run, position, np.ones(len(rows), dtype=bool), rows),
            }
            for term in m.ARBITRATION_TERMS:
                table = np.column_stack(
                    [run.terms[name].get(term, np.full(size, np.nan)) for name in run.names]
                )
                piece[term] = table[rows, position]
            pieces.append(_frame(piece))
    if not pieces:
        return pd.DataFrame(
            columns=["customer_id", "channel", "rank", "treatment", "score", *m.ARBITRATION_TERMS]
        )
    return pd.concat(pieces, ignore_index=True).sort_values(
        ["customer_id", "channel", "rank"], kind="stable", ignore_index=True
    )


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
) -> BatchResult:
    """Run ``event`` for every customer at once; one customer intelligence record per row.

    ``trace=False`` skips rendering the per-customer JSON trace (the costly part at
    millions of rows); everything else is identical. ``test_groups`` (an array of group
    names or None per customer) overrides the hashed assignment, as golden cases do.
    """
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
        customer_frame, _account_frame(run), _treatment_frame(run, channels), records
    )
