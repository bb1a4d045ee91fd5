"""Aggregate: accounts of one type back to their customer (any, all, count, sum, min,
max, mean of a per-account value, optionally over the accounts ``where`` holds)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cx_pipelines.engine.evaluation.batch.text import integer_text
from cx_pipelines.engine.evaluation.shared import RECORD_FAILURES, record_function, true
from cx_pipelines.engine.language import model as m
from cx_pipelines.engine.language.expressions import ValueType
from cx_pipelines.engine.language.expressions.record import constant_value, is_constant
from cx_pipelines.engine.language.schema import EXPRESSION
from cx_pipelines.engine.mechanisms.base import MechanismKind

FUNCTION_TYPES = {  # function → (type of the per-account value, type of the result)
    "any": (ValueType.BOOLEAN, ValueType.BOOLEAN),
    "all": (ValueType.BOOLEAN, ValueType.BOOLEAN),
    "count": (ValueType.BOOLEAN, ValueType.NUMBER),
    "sum": (ValueType.NUMBER, ValueType.NUMBER),
    "min": (ValueType.NUMBER, ValueType.NUMBER),
    "max": (ValueType.NUMBER, ValueType.NUMBER),
    "mean": (ValueType.NUMBER, ValueType.NUMBER),
}
COUNTING = ("any", "all", "count")


def _result(function: str, considered: int, true_count: int, total, numbers, low, high):
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


@dataclass
class Aggregate(MechanismKind):
    KIND = "aggregate"
    SCHEMA_PROPERTIES = {
        "function": {"enum": list(FUNCTION_TYPES)},
        "value": EXPRESSION,
        "where": EXPRESSION,
    }
    SCHEMA_REQUIRED = ["over", "function", "value"]
    AGGREGATES_ACCOUNTS = True

    function: str = "count"
    value: m.Expression | None = None
    where: m.Expression | None = None

    @classmethod
    def load(cls, loader, name, spec, path, over, output):
        value_type, result_type = FUNCTION_TYPES[spec["function"]]
        loader.output_type_is(output, result_type, path, f"aggregate {spec['function']!r}")
        value = loader.expression(spec["value"], (*path, "value"), over=over, expected=value_type)
        where = None
        if "where" in spec:
            where = loader.expression(
                spec["where"], (*path, "where"), over=over, expected=ValueType.BOOLEAN
            )
        return cls(name, cls.KIND, output, over, spec["function"], value, where)

    # ------------------------------------------------------------ batch
    def evaluate_batch(self, run, level, mask, detail, calls):
        accounts = run.levels[self.over]
        size = run.customers.size
        considered = run.truth(self.where, self.over)
        if mask is not None:
            considered = considered & mask[accounts.customer]
        owner = accounts.customer
        value = run.evaluate(self.value, self.over)
        counted = np.bincount(owner[considered], minlength=size)
        detail["accounts"] = counted
        function = self.function
        if function in COUNTING:
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

    def trace_fields(self, detail, models, field):
        return {"accounts": field(integer_text(detail["accounts"]))}

    def trace_rows(self, detail, models):
        accounts = detail["accounts"].tolist()

        def write(item: dict, row: int) -> None:
            item["accounts"] = accounts[row]

        return write

    # ------------------------------------------------------------ per record
    def evaluate_record(self, state, record, step, calls):
        considered = true_count = numbers = 0
        total = 0.0
        low = high = None
        counting = self.function in COUNTING
        for account in state.accounts_of(self.over):
            own = account["values"]
            if not true(self.where, own):
                continue
            considered += 1
            value = self.value.compiled.evaluate_record(own)
            if counting:
                true_count += value is True
            elif value is not None:
                numbers += 1
                total += value
                low = value if low is None or value < low else low
                high = value if high is None or value > high else high
        step["accounts"] = considered
        return _result(self.function, considered, true_count, total, numbers, low, high)

    def fast_record(self):
        over = self.over
        where = record_function(self.where)
        value_of = record_function(self.value)
        function = self.function
        counting = function in COUNTING
        # over no accounts at all: nothing considered
        empty = {"count": 0.0, "sum": 0.0, "any": False, "all": True}.get(function)
        # counting a constant true over every account (``count`` with no ``where``)
        every = (
            counting
            and where is None
            and self.value is not None
            and is_constant(self.value.compiled.tree)
            and constant_value(self.value.compiled.tree) is True
        )
        reference = self.evaluate_record

        def aggregate(state, record, step, calls):
            accounts = state.by_type.get(over)
            if accounts is None:
                step["accounts"] = 0
                return empty
            if every:
                considered = true_count = len(accounts)
                step["accounts"] = considered
                if function == "count":
                    return float(true_count)
                return true_count > 0 if function == "any" else True
            try:
                considered = true_count = numbers = 0
                total = 0.0
                low = high = None
                for account in accounts:
                    own = account["values"]
                    if where is not None and where(own) is not True:
                        continue
                    considered += 1
                    value = value_of(own)
                    if counting:
                        true_count += value is True
                    elif value is not None:
                        numbers += 1
                        total += value
                        low = value if low is None or value < low else low
                        high = value if high is None or value > high else high
            except RECORD_FAILURES:
                return reference(state, record, step, calls)
            step["accounts"] = considered
            return _result(function, considered, true_count, total, numbers, low, high)

        return aggregate
