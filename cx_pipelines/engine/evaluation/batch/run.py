"""The working state of one batch run: columns per level, segments, test groups,
processes and categories.

Customers are rows of a customers frame; accounts are rows of one flat accounts frame
with a customer index. Each mechanism runs once over all its rows (its kind's
``evaluate_batch``): customer mechanisms over all customers, iterative ones over all
accounts of their type at once (seed 004's single pass, vectorised), and aggregates go
back to customers with ``np.bincount`` on the customer index. The meaning is the
per-record evaluator's; traces are rendered from the same step data so both give
identical records.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from cx_pipelines.engine.evaluation import shared as c
from cx_pipelines.engine.evaluation.batch.columns import (
    Broadcast,
    LazyColumns,
    Level,
    Step,
    column_loader,
    null_column,
    string_column,
    to_values,
)
from cx_pipelines.engine.evaluation.batch.index import CustomerIndex
from cx_pipelines.engine.language import model as m
from cx_pipelines.engine.language.errors import EvaluationError, Location
from cx_pipelines.engine.language.expressions.columns import prepare_columns

_ACCOUNT_KEYS = ("account_id", "customer_id", "account_type")


class BatchRun:
    """The working state of one batch run.

    ``customers`` is a frame, or a mapping of column name to array (one row each). With
    ``account_owner`` (the customers row of each account, e.g. from :func:`evaluate_rows`)
    accounts belong to rows by position rather than by ``customer_id``, so one customer
    may appear in several rows (each decided on its own inputs).
    """

    def __init__(
        self,
        strategy: m.Strategy,
        customers: pd.DataFrame | Mapping[str, np.ndarray],
        accounts: pd.DataFrame | Mapping[str, np.ndarray] | None,
        *,
        account_owner: np.ndarray | None = None,
    ):
        self.strategy = strategy
        names = customers.columns if isinstance(customers, pd.DataFrame) else customers.keys()
        if "customer_id" not in names:
            raise EvaluationError(
                "the customers frame has no column 'customer_id'", symbol="customer_id"
            )
        loaders = {}
        for attribute in strategy.input_attributes(None):
            if attribute.column not in names:
                raise EvaluationError(
                    f"the customers frame has no column {attribute.column!r} "
                    "(declared in data_dictionary.customer)",
                    location=Location(
                        file=strategy.file, path=f"data_dictionary.customer.{attribute.name}"
                    ),
                    symbol=attribute.name,
                )
            loaders[attribute.name] = column_loader(customers[attribute.column], attribute)
        self.customer_series = customers["customer_id"]
        if isinstance(customers, pd.DataFrame):
            size = len(customers)
            self.customer_ids = self.customer_series.array
        else:
            self.customer_ids = np.asarray(self.customer_series, dtype=object)
            size = len(self.customer_ids)
        columns = LazyColumns(loaders)
        for attribute in strategy.derived_attributes(None):
            columns[attribute.name] = null_column(attribute.value_type, size)
        for name in m.BUILTIN_ATTRIBUTES:
            columns[name] = np.empty(size, dtype=object)
        self._index: CustomerIndex | None = None
        self._draws: np.ndarray | None = None
        self.by_position = account_owner is not None
        self.customers = Level(size, columns)
        self.levels: dict[str | None, Level] = {None: self.customers}
        self.account_rows: dict[str, np.ndarray] = {}
        self._accounts(accounts, account_owner)
        self.steps: list[Step] = []
        self.prepared: dict[str | None, Any] = {}

    def _accounts(
        self,
        accounts: pd.DataFrame | Mapping[str, np.ndarray] | None,
        account_owner: np.ndarray | None,
    ) -> None:
        strategy = self.strategy
        if account_owner is not None and (accounts is None or not len(account_owner)):
            accounts = {name: np.empty(0, dtype=object) for name in _ACCOUNT_KEYS}
        elif accounts is None or len(accounts) == 0:
            accounts = pd.DataFrame({"account_id": [], "customer_id": [], "account_type": []})
        names = accounts.columns if isinstance(accounts, pd.DataFrame) else accounts.keys()
        for required in _ACCOUNT_KEYS:
            if required not in names:
                raise EvaluationError(
                    f"the accounts frame has no column {required!r}", symbol=required
                )
        count = len(accounts["account_id"])
        if account_owner is not None and count:
            owner = np.asarray(account_owner, dtype=np.int64)
        elif count:
            owner = self.index.owner_index(accounts["customer_id"])
        else:
            owner = np.zeros(0, dtype=np.int64)
        known = owner >= 0
        # all accounts in customer order, keeping the frame's order within a customer
        if known.all() and np.all(owner[1:] >= owner[:-1]):
            order = np.arange(len(owner))  # already grouped in customer order
        else:
            order = np.flatnonzero(known)[np.argsort(owner[known], kind="stable")]
        self.accounts_frame = accounts
        self.account_ids = (
            accounts["account_id"].to_numpy()
            if isinstance(accounts, pd.DataFrame)
            else np.asarray(accounts["account_id"])
        )
        self.unmatched_accounts = (
            accounts.iloc[np.flatnonzero(~known)] if isinstance(accounts, pd.DataFrame) else None
        )
        self.account_order = order
        self.account_owner = owner[order]
        type_codes, type_names = pd.factorize(accounts["account_type"])
        type_codes = type_codes[order]
        self.account_type_column = string_column(accounts["account_type"])[order]
        self.account_level_row = np.full(len(order), -1, dtype=np.int64)
        known_types = [str(v) for v in type_names]
        for account_type in strategy.account_types:
            code = known_types.index(account_type) if account_type in known_types else -2
            in_type = np.flatnonzero(type_codes == code)
            rows = order[in_type]
            self.account_level_row[in_type] = np.arange(len(in_type))
            loaders = {}
            for attribute in strategy.input_attributes(account_type):
                if attribute.column in names:
                    loaders[attribute.name] = column_loader(
                        accounts[attribute.column], attribute, rows=rows
                    )
                else:
                    loaders[attribute.name] = column_loader(None, attribute, len(rows))
            columns = LazyColumns(loaders)
            for attribute in strategy.derived_attributes(account_type):
                columns[attribute.name] = null_column(attribute.value_type, len(rows))
            self.levels[account_type] = Level(len(rows), columns, owner[rows])
            self.account_rows[account_type] = in_type
        self.account_actions = np.empty(len(order), dtype=object)

    # ------------------------------------------------------------ expressions
    @property
    def index(self) -> CustomerIndex:
        """Fingerprints of the customer ids, made when first needed (draws, account owners)."""
        if self._index is None:
            if self.by_position:
                raise EvaluationError(
                    "rows are matched by position here; there is no customer id index"
                )
            self._index = CustomerIndex(self.customer_series, self.strategy.salt)
        return self._index

    @property
    def draws(self) -> np.ndarray:
        """The test-group draw of each row (from its customer id)."""
        if self._draws is None:
            if self.by_position:  # ids may repeat: no index, only their fingerprints
                if any(v is None for v in self.customer_ids.tolist()):
                    raise EvaluationError(
                        "column customer_id of the customers frame has empty entries"
                    )
                self._draws = c.draws_of(c.fingerprints(self.customer_ids, self.strategy.salt)[0])
            else:
                self._draws = self.index.draws
        return self._draws

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
                else Broadcast(data.columns, self.customers.columns, data.customer)
            )
            prepared = self.prepared[level] = prepare_columns(columns, data.size)
        return prepared

    def evaluate(self, expression: m.Expression, level: str | None) -> np.ndarray:
        return expression.compiled.evaluate_batch(self.frame(level), self.levels[level].size)

    def truth(self, expression: m.Expression | None, level: str | None) -> np.ndarray:
        if expression is None:
            return np.ones(self.levels[level].size, dtype=bool)
        return self.evaluate(expression, level)

    # ------------------------------------------------------------ mechanisms
    def run(self, name: str, process: str, customer_mask: np.ndarray | None) -> None:
        """Run mechanism ``name`` for the customers in ``customer_mask`` (None: all)."""
        mechanism = self.strategy.mechanisms[name]
        level = mechanism.level
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
        values = mechanism.evaluate_batch(self, level, mask, detail, calls)
        values = to_values(values, mechanism.output.value_type, size)
        columns = self.levels[level].columns
        name = mechanism.output.name
        if mask is None:
            columns[name] = values
        else:  # a new array, never an in-place write: prepared conversions stay valid
            updated = columns[name].copy()
            updated[mask] = values[mask]
            columns[name] = updated
        self.steps.append(Step(level, mask, process, mechanism, called_by, values, detail))
        for target, target_mask in calls:
            self._run(self.strategy.mechanisms[target], process, level, target_mask, mechanism.name)

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
                for calculation in item.calculations:  # the action's own `calculate:`
                    self._run(calculation, "categories", account_type, hit, None)
            self.account_actions[positions] = action
