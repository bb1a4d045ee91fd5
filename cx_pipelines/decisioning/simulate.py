"""Run a strategy over the materialised population, and compare two strategies' decisions.

The population itself (warehouse tables -> engine inputs, and the column mapping) is built
in :mod:`cx_pipelines.engine.population`; the report and its text rendering live in
:mod:`cx_pipelines.engine.simulation_report`. Both are re-exported here.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from cx_pipelines.decisioning.population import (
    OPTIONAL_TABLES,
    PopulationError,
    _column_type,
    engine_inputs,
    model_versions,
)
from cx_pipelines.decisioning.simulation_report import DecisionShift, SimulationReport
from cx_pipelines.engine.language.model import Strategy

__all__ = [
    "OPTIONAL_TABLES",
    "DecisionShift",
    "PopulationError",
    "SimulationReport",
    "decision_columns",
    "engine_inputs",
    "model_versions",
    "simulate",
]

_NOT_DECISIONS = {"customer_id", "account_id", "event", "strategy_hash", "trace"}


def decision_columns(frame: pd.DataFrame) -> list[str]:
    """Result columns that hold decisions (text or boolean): not ids, scores or traces."""
    chosen = []
    for column in frame.columns:
        if column in _NOT_DECISIONS or column.endswith("_score"):
            continue
        dtype = frame[column].dtype
        if (
            dtype == np.dtype(object)
            or pd.api.types.is_string_dtype(dtype)
            or pd.api.types.is_bool_dtype(dtype)
        ):
            chosen.append(column)
    return chosen


def _rows_of_type(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    """Account rows a virtual attribute belongs to (``credit_card.ccdecsn`` → credit cards)."""
    account_type = column.split(".", 1)[0] if "." in column else None
    if (
        account_type
        and "account_type" in frame.columns
        and (frame["account_type"] == account_type).any()
    ):
        return frame[frame["account_type"] == account_type]
    return frame


def _distributions(customers: pd.DataFrame, accounts: pd.DataFrame) -> dict[str, pd.Series]:
    result = {}
    for level, frame in (("customer", customers), ("account", accounts)):
        for column in decision_columns(frame):
            rows = _rows_of_type(frame, column) if level == "account" else frame
            if column == "account_type" or rows[column].isna().all():
                continue  # not decided by this event
            result[f"{level}:{column}"] = (
                rows[column].astype(object).fillna("(none)").astype(str).value_counts()
            )
    return result


def _numbers(
    customers: pd.DataFrame, accounts: pd.DataFrame, strategy: Strategy
) -> dict[str, tuple[float, float]]:
    result = {}
    for attribute in strategy.attributes.values():
        if not attribute.derived or _column_type(strategy, attribute.name) != "number":
            continue
        frame = customers if attribute.account_type is None else accounts
        candidates = [attribute.name, attribute.column, attribute.name.split(".", 1)[-1]]
        column = next((c for c in candidates if c and c in frame.columns), None)
        if column is None:
            continue
        values = pd.to_numeric(frame[column], errors="coerce")
        if attribute.account_type is not None and "account_type" in frame.columns:
            values = values[frame["account_type"] == attribute.account_type]
        if len(values) and values.notna().any():
            result[attribute.name] = (float(values.mean()), float(values.notna().mean()))
    return result


def _offered(result: Any, segments: pd.Series) -> pd.DataFrame:
    """Customers offered each treatment on any channel, by segment (long: treatment, segment, n)."""
    long = getattr(result, "treatments", None)
    if long is None or len(long) == 0:
        return pd.DataFrame(columns=["treatment", "segment", "customers"])
    pairs = long[["customer_id", "treatment"]].drop_duplicates()
    pairs = pairs.assign(segment=pairs["customer_id"].map(segments).fillna("(none)"))
    return pairs.groupby(["treatment", "segment"]).size().rename("customers").reset_index()


def _treatment_table(new: pd.DataFrame, old: pd.DataFrame | None) -> pd.DataFrame:
    """One row per treatment: customers offered it overall and per segment (old -> new)."""
    if not len(new) and (old is None or not len(old)):
        return pd.DataFrame()
    frames = {"new": new} if old is None else {"new": new, "old": old}
    wide = {}
    for label, frame in frames.items():
        table = frame.pivot_table(
            index="treatment", columns="segment", values="customers", aggfunc="sum", fill_value=0
        )
        table.insert(0, "all", table.sum(axis=1))
        wide[label] = table
    if old is None:
        return wide["new"].astype(int).reset_index()
    treatments = wide["new"].index.union(wide["old"].index)
    columns = wide["new"].columns.union(wide["old"].columns, sort=False)
    after = wide["new"].reindex(index=treatments, columns=columns, fill_value=0).astype(int)
    before = wide["old"].reindex(index=treatments, columns=columns, fill_value=0).astype(int)
    shown = before.astype(str) + " -> " + after.astype(str)
    return shown.reset_index()


def _shift(
    old: pd.DataFrame, new: pd.DataFrame, key: str, column: str, level: str, segments: pd.Series
) -> DecisionShift:
    if level == "account":
        old, new = _rows_of_type(old, column), _rows_of_type(new, column)
    joined = old[[key, column]].merge(new[[key, column]], on=key, suffixes=("_old", "_new"))
    before = joined[f"{column}_old"].astype(object).fillna("(none)").astype(str)
    after = joined[f"{column}_new"].astype(object).fillna("(none)").astype(str)
    changed = before != after
    transitions = (
        pd.DataFrame({"old": before[changed], "new": after[changed]})
        .value_counts()
        .rename("count")
        .reset_index()
    )
    segment = joined[key].map(segments) if level == "customer" else None
    if segment is None and "customer_id" in old.columns:
        owner = old.set_index(key)["customer_id"]
        segment = joined[key].map(owner).map(segments)
    by_segment = (
        pd.DataFrame(
            {"segment": segment.fillna("(none)").to_numpy(), "changed": changed.to_numpy()}
        )
        .groupby("segment")["changed"]
        .agg(rows="size", changed="sum")
        .reset_index()
    )
    by_segment["share"] = by_segment["changed"] / by_segment["rows"]
    return DecisionShift(column, level, len(joined), int(changed.sum()), transitions, by_segment)


def simulate(
    strategy: Strategy,
    *,
    event: str,
    customers: pd.DataFrame,
    accounts: pd.DataFrame,
    against: Strategy | None = None,
    channel: str | None = None,
    interaction_type: str | None = None,
    examples: int = 5,
    versions: dict[str, str] | None = None,
) -> SimulationReport:
    """Evaluate ``strategy`` (and ``against``) over the same inputs; describe the decisions.

    With ``against``, every decision column both results share is compared customer by
    customer (and account by account): how many changed, from what to what, in which
    segment (of ``strategy``), and a few example customers with all their changes.
    """
    from cx_pipelines.engine import evaluate_batch

    def run(chosen: Strategy):
        if event not in chosen.events:
            raise PopulationError(
                f"strategy {chosen.name!r} has no event {event!r} (has: {', '.join(chosen.events)})"
            )
        return evaluate_batch(
            chosen,
            event=event,
            customers=customers,
            accounts=accounts,
            channel=channel,
            interaction_type=interaction_type,
            model_versions=versions,
            trace=False,
        )

    result = run(strategy)
    segments = result.customers.set_index("customer_id")["segment"]
    offered = _offered(result, segments)
    report = SimulationReport(
        strategy=strategy.name,
        event=event,
        customers=len(result.customers),
        accounts=len(result.accounts),
        distributions=_distributions(result.customers, result.accounts),
        numbers=_numbers(result.customers, result.accounts, strategy),
    )
    if against is None:
        report.treatments = _treatment_table(offered, None)
        return report
    other = run(against)
    report.against = (
        against.name if against.name != strategy.name else (against.file or against.name)
    )
    report.against_numbers = _numbers(other.customers, other.accounts, against)
    report.treatments = _treatment_table(offered, _offered(other, segments))
    changed_customers: dict[Any, dict[str, tuple[Any, Any]]] = {}
    for level, key, new, old in (
        ("customer", "customer_id", result.customers, other.customers),
        ("account", "account_id", result.accounts, other.accounts),
    ):
        shared = [
            c for c in decision_columns(new) if c in decision_columns(old) and c != "account_type"
        ]
        for column in shared:
            if new[column].isna().all() and old[column].isna().all():
                continue  # neither strategy decides it on this event
            shift = _shift(old, new, key, column, level, segments)
            report.shifts.append(shift)
            if shift.changed and len(changed_customers) < examples:
                joined = old[[key, column] + (["customer_id"] if level == "account" else [])].merge(
                    new[[key, column]], on=key, suffixes=("_old", "_new")
                )
                before = joined[f"{column}_old"].astype(object)
                after = joined[f"{column}_new"].astype(object)
                differs = before.fillna("(none)").astype(str) != after.fillna("(none)").astype(str)
                for _, row in joined[differs].head(examples).iterrows():
                    label = column if level == "customer" else f"{row[key]}.{column}"
                    customer = row["customer_id"]
                    changed_customers.setdefault(customer, {})[label] = (
                        _plain(row[f"{column}_old"]),
                        _plain(row[f"{column}_new"]),
                    )
    for customer, changes in list(changed_customers.items())[:examples]:
        report.examples.append(
            {"customer_id": customer, "segment": segments.get(customer), "changes": changes}
        )
    return report


def _plain(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    return value
