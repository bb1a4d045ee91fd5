"""Each mechanism type, run once over all rows of its level (customers or accounts of a type).

Mixed into the batch run; every method takes the level, an optional row mask, a dict to
fill with trace detail and a list to fill with calls to other mechanisms.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from cx_pipelines.engine.evaluation import shared as c
from cx_pipelines.engine.language import model as m
from cx_pipelines.engine.evaluation.batch.columns import _Step, _to_values
from cx_pipelines.engine.language.errors import EngineError, EvaluationError


class MechanismRunner:
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
        columns = self.levels[level].columns
        name = mechanism.output.name
        if mask is None:
            columns[name] = values
        else:  # a new array, never an in-place write: prepared conversions stay valid
            updated = columns[name].copy()
            updated[mask] = values[mask]
            columns[name] = updated
        self.steps.append(_Step(level, mask, process, mechanism, called_by, values, detail))
        for target, target_mask in calls:
            self._run(self.strategy.mechanisms[target], process, level, target_mask, mechanism.name)

    def _decision_tree(self, mechanism: m.DecisionTree, level, mask, detail, calls):
        size = self.levels[level].size
        leaf = np.full(size, -1, dtype=np.int64)
        active = np.ones(size, dtype=bool) if mask is None else mask

        def walk(branches: list[m.Branch], reach: np.ndarray) -> None:
            # first branch whose condition holds, for every row at once
            none = len(branches)
            first = np.full(size, none, dtype=np.int64)
            for position in range(len(branches) - 1, -1, -1):
                condition = branches[position].condition
                if condition is None:
                    first[:] = position
                else:
                    first = np.where(self.truth(condition, level), position, first)
            taken = reach & (first < none)
            first = np.minimum(first, none - 1)
            leaf_of = np.array(
                [b.outcome.leaf_id if isinstance(b.outcome, m.Leaf) else -1 for b in branches]
            )
            chosen = np.where(taken, leaf_of[first], -1)
            at_leaf = chosen >= 0
            leaf[at_leaf] = chosen[at_leaf]
            for position, branch in enumerate(branches):
                if not isinstance(branch.outcome, m.Leaf):
                    inner = taken & (first == position)
                    if inner.any():
                        walk(branch.outcome, inner)

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
        from cx_pipelines.engine.evaluation.record.run import _call_exit

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

    def _calculation(self, mechanism: m.Calculation, level, mask, detail, calls):
        return self.evaluate(mechanism.value, level)
