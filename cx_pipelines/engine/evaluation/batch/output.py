"""What a batch run returns: customer records, account decisions, ranked treatments.

Also the per-row record dicts (``BatchResult.records()``) in exactly the per-record
evaluator's shape, used by golden cases and the evaluator agreement tests.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from cx_pipelines.engine.evaluation import shared as c
from cx_pipelines.engine.evaluation.batch.columns import Step, null_column
from cx_pipelines.engine.evaluation.batch.run import BatchRun
from cx_pipelines.engine.language import model as m
from cx_pipelines.engine.language.expressions import ValueType


class _StepView:
    """Per-row access to one step's values, as the per-record evaluator writes them."""

    def __init__(self, step: Step, run: BatchRun):
        mechanism = step.mechanism
        self.head = {"process": step.process, "mechanism": mechanism.name, "type": mechanism.kind}
        if step.called_by:
            self.head["called_by"] = step.called_by
        self.mask = None if step.mask is None else step.mask.tolist()
        self.values = [
            c.json_value(v) for v in c.canonical_list(step.value, mechanism.output.value_type)
        ]
        self.render = mechanism.trace_rows(step.detail, run.models)

    def entry(self, row: int) -> dict | None:
        if self.mask is not None and not self.mask[row]:
            return None
        item = dict(self.head)
        self.render(item, row)
        item["value"] = self.values[row]
        return item


class BatchResult:
    """Output of :func:`evaluate_batch`: customer records, account decisions, ranked treatments.

    The three frames are built when first read (a caller that wants only the records or
    the ranking pays nothing for them); each may be given as a frame or as a function
    that makes it.
    """

    def __init__(
        self,
        customers: pd.DataFrame | Callable[[], pd.DataFrame],
        accounts: pd.DataFrame | Callable[[], pd.DataFrame],
        treatments: pd.DataFrame | Callable[[], pd.DataFrame],
        records: Callable[[], list[dict[str, Any]]] | None = None,
        unmatched_accounts: pd.DataFrame | None = None,
        *,
        ranked: Callable[[], list[dict[str, Any]]] | None = None,
    ) -> None:
        self._frames: dict[str, Any] = {
            "customers": customers,
            "accounts": accounts,
            "treatments": treatments,
        }
        self._records = records
        self._ranked = ranked
        self.unmatched_accounts = unmatched_accounts  # accounts whose customer_id is not given

    def _frame(self, name: str) -> pd.DataFrame:
        value = self._frames[name]
        if callable(value):
            value = self._frames[name] = value()
        return value

    @property
    def customers(self) -> pd.DataFrame:
        return self._frame("customers")

    @property
    def accounts(self) -> pd.DataFrame:
        return self._frame("accounts")

    @property
    def treatments(self) -> pd.DataFrame:
        return self._frame("treatments")

    def __repr__(self) -> str:
        frames = ", ".join(f"{name}={self._frame(name)!r}" for name in self._frames)
        return f"BatchResult({frames})"

    def records(self) -> list[dict[str, Any]]:
        """Each customer's record as the per-record evaluator returns it."""
        return self._records()

    def ranked_records(self) -> list[dict[str, Any]]:
        """Per row, the chosen treatments without the reason trace: ``customer_id``,
        ``event``, ``segment``, ``test_group``, ``category``, ``strategy_hash`` and
        ``arbitration``: per channel the chosen treatments (at most ``max_per_channel``,
        as ``records()["treatments"]``) with their terms (as in the trace). Made anew at
        every call: the caller owns the dicts."""
        if self._ranked is None:
            raise NotImplementedError("this result was not made with ranked records")
        return self._ranked()


def records_of(
    run: BatchRun, event: m.Event, interaction: str | None, channels: list[str]
) -> list[dict]:
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
    account_ids = run.account_ids[run.account_order].tolist() if len(run.account_order) else []
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


def _constant(text: str, size: int) -> pd.Categorical:
    """A column holding one text everywhere (categorical: no per-row objects)."""
    return pd.Categorical.from_codes(np.zeros(size, dtype=np.int8), categories=[text])


def customer_frame(run: BatchRun, event: m.Event, channels: list[str]) -> pd.DataFrame:
    strategy = run.strategy
    columns = run.customers.columns
    size = run.customers.size
    data: dict[str, Any] = {
        "customer_id": run.customer_ids,
        "event": _constant(event.name, size),
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
    data["strategy_hash"] = _constant(strategy.content_hash, size)
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
    run: BatchRun, position: np.ndarray, valid: np.ndarray, rows: np.ndarray
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


def account_frame(run: BatchRun) -> pd.DataFrame:
    strategy = run.strategy
    order = run.account_order
    count = len(order)
    data: dict[str, Any] = {
        "account_id": run.account_ids[order],
        "customer_id": run.customer_ids.take(run.account_owner),
        "account_type": run.account_type_column,
    }
    for account_type, positions in run.account_rows.items():
        for attribute in strategy.derived_attributes(account_type):
            column = null_column(attribute.value_type, count)
            column[positions] = run.levels[account_type].columns[attribute.name]
            data[attribute.name] = _output_column(column, attribute.value_type)
    data["action"] = run.account_actions
    return _frame(data)


def treatment_frame(run: BatchRun, channels: list[str]) -> pd.DataFrame:
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
