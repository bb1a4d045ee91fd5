"""Run a strategy over the materialised population, and compare two strategies' decisions.

``engine_inputs`` builds the evaluator's customers and accounts frames from warehouse
tables; the decisioning assets and ``cx strategy simulate`` both use it, so what a
strategy analyst simulates is what the scheduled run decides.

Mapping from warehouse columns to a strategy's data dictionary (only input attributes
the strategy declares are filled; anything not found is null, which scorecards score
as ``missing`` and conditions treat as false):

=========================  ==================================================================
strategy attribute          warehouse source
=========================  ==================================================================
``customer_id``             ``customers.customer_id`` (as text when the dictionary says string)
``age``                     as-of year minus ``customers.birth_year``
``tenure_months``           whole months from ``customers.joined_on`` to the as-of date
``scores.<name>``           column ``<name>`` of ``customer_scores`` (promoted model outputs,
                            e.g. ``scores.propensity__credit_card__email``)
``kpis.<name>``             column ``<name>`` of ``customer_kpis``
``segments.<name>``         column ``<name>`` of ``customer_segments``
any other ``<name>``        the first of ``customers``, ``customer_kpis``, ``customer_segments``,
                            ``customer_scores`` that has a column ``<name>``
                            (e.g. ``annual_income``, ``recency_days``, ``max_days_past_due``)
``<type>.<attribute>``      column ``<attribute>`` of the open ``accounts`` whose
                            ``product_type`` is ``<type>`` (``credit_card.balance``)
=========================  ==================================================================

``checking.direct_deposit`` has no column in the source schema; it is read from
``accounts.direct_deposit`` when a source provides one and is null otherwise.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
from tabulate import tabulate

from cx_pipelines.engine.model import Strategy

OPTIONAL_TABLES = ("customer_kpis", "customer_segments", "customer_scores")
_PREFIXED = {
    "scores.": "customer_scores",
    "kpis.": "customer_kpis",
    "segments.": "customer_segments",
}
_SEARCH_ORDER = ("customers", "customer_kpis", "customer_segments", "customer_scores")
_NOT_DECISIONS = {"customer_id", "account_id", "event", "strategy_hash", "trace"}


class PopulationError(ValueError):
    """The warehouse tables cannot be turned into engine inputs (say which and why)."""


def _months_between(start: pd.Series, end: datetime) -> np.ndarray:
    stamps = pd.to_datetime(start, errors="coerce")
    months = (end.year - stamps.dt.year) * 12 + (end.month - stamps.dt.month)
    months = months - (stamps.dt.day > end.day).astype("float64")
    return months.to_numpy(dtype="float64", na_value=np.nan)


def _by_customer(table: pd.DataFrame, name: str, index: pd.Index) -> pd.DataFrame:
    if "customer_id" not in table.columns:
        raise PopulationError(f"table {name!r} has no customer_id column")
    duplicated = table["customer_id"].duplicated()
    if duplicated.any():
        example = table.loc[duplicated, "customer_id"].iloc[0]
        raise PopulationError(
            f"Column customer_id of table {name!r} has duplicate entries (e.g. {example}); "
            "one row per customer is expected"
        )
    return table.set_index("customer_id").reindex(index)


def _column_type(strategy: Strategy, name: str) -> str:
    return str(
        getattr(strategy.attributes[name].value_type, "value", strategy.attributes[name].value_type)
    )


def _typed(values: pd.Series, value_type: str) -> pd.Series:
    if value_type == "number":
        return pd.to_numeric(values, errors="coerce").astype("float64")
    if value_type == "boolean":
        return values.astype("boolean")
    if value_type == "string":
        return values.astype("string").astype(object).where(values.notna(), None)
    return values


def engine_inputs(
    strategy: Strategy | Sequence[Strategy],
    *,
    customers: pd.DataFrame,
    accounts: pd.DataFrame,
    tables: dict[str, pd.DataFrame | None] | None = None,
    as_of: datetime | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The (customers, accounts) frames ``evaluate_batch`` takes, from warehouse tables.

    ``tables`` holds the optional ``customer_kpis``, ``customer_segments`` and
    ``customer_scores`` frames (absent or ``None`` when not materialised). Given several
    strategies, the frames hold what any of them needs (to compare them on one population).
    """
    from cx_pipelines.world import WORLD_END

    as_of = as_of or WORLD_END
    if "customer_id" not in customers.columns:
        raise PopulationError("table 'customers' has no customer_id column")
    index = pd.Index(customers["customer_id"], name="customer_id")
    sources: dict[str, pd.DataFrame] = {"customers": _by_customer(customers, "customers", index)}
    for name, table in (tables or {}).items():
        if table is not None:
            sources[name] = _by_customer(table, name, index)

    strategies = [strategy] if isinstance(strategy, Strategy) else list(strategy)
    customer_inputs: dict[str, str] = {}
    account_inputs: dict[str, dict[str, str]] = {}
    for item in strategies:
        for attribute in item.input_attributes(None):
            customer_inputs.setdefault(attribute.name, _column_type(item, attribute.name))
        for account_type in item.account_types:
            columns = account_inputs.setdefault(account_type, {})
            for attribute in item.input_attributes(account_type):
                column = attribute.column or attribute.name.split(".", 1)[1]
                columns.setdefault(column, _column_type(item, attribute.name))
    id_type = customer_inputs.get("customer_id", "string")
    frame: dict[str, Any] = {
        "customer_id": index.astype(str).to_numpy(dtype=object)
        if id_type == "string"
        else index.to_numpy()
    }
    computed = {
        "age": lambda: (
            float(as_of.year)
            - pd.to_numeric(sources["customers"].get("birth_year"), errors="coerce").to_numpy(
                dtype="float64"
            )
        ),
        "tenure_months": lambda: _months_between(sources["customers"]["joined_on"], as_of),
    }
    for name, value_type in customer_inputs.items():
        if name == "customer_id":
            continue
        values = None
        prefix = next((p for p in _PREFIXED if name.startswith(p)), None)
        if prefix is not None:
            table = sources.get(_PREFIXED[prefix])
            column = name[len(prefix) :]
            if table is not None and column in table.columns:
                values = table[column]
        elif name in computed and name not in sources["customers"].columns:
            if name == "tenure_months" and "joined_on" not in sources["customers"].columns:
                values = None
            else:
                values = pd.Series(computed[name](), index=index)
        else:
            for source in _SEARCH_ORDER:
                table = sources.get(source)
                if table is not None and name in table.columns:
                    values = table[name]
                    break
        if values is None:
            values = pd.Series([None] * len(index), index=index, dtype=object)
        frame[name] = _typed(pd.Series(values.to_numpy(), index=index), value_type).to_numpy()
    customer_frame = pd.DataFrame(frame)

    required = {"account_id", "customer_id", "product_type"}
    if missing := required - set(accounts.columns):
        raise PopulationError(f"table 'accounts' lacks columns {sorted(missing)}")
    open_accounts = accounts
    if "status" in accounts.columns:
        open_accounts = accounts[accounts["status"].fillna("open") == "open"]
    open_accounts = open_accounts[open_accounts["product_type"].isin(list(account_inputs))]
    open_accounts = open_accounts[open_accounts["customer_id"].isin(index)]
    account_frame = pd.DataFrame(
        {
            "account_id": open_accounts["account_id"].to_numpy(),
            "customer_id": (
                open_accounts["customer_id"].astype(str).to_numpy(dtype=object)
                if id_type == "string"
                else open_accounts["customer_id"].to_numpy()
            ),
            "account_type": open_accounts["product_type"].astype(str).to_numpy(dtype=object),
        }
    )
    columns: dict[str, str] = {}
    for account_columns in account_inputs.values():
        for column, value_type in account_columns.items():
            columns.setdefault(column, value_type)
    for column, value_type in columns.items():
        if column in open_accounts.columns:
            account_frame[column] = _typed(
                open_accounts[column].reset_index(drop=True), value_type
            ).to_numpy()
        else:
            account_frame[column] = pd.Series([None] * len(account_frame), dtype=object).to_numpy()
            if value_type == "number":
                account_frame[column] = np.nan
    return customer_frame, account_frame


def model_versions(scores: pd.DataFrame | None) -> dict[str, str]:
    """Registered model → version, from ``customer_scores``' ``*_model_version`` columns.

    A value ``cx_propensity/3`` gives ``{"cx_propensity": "3"}``; the traces of
    ``model_score`` mechanisms then name the version that produced each score.
    """
    versions: dict[str, str] = {}
    if scores is None:
        return versions
    for column in scores.columns:
        if not str(column).endswith("_model_version"):
            continue
        values = scores[column].dropna()
        if len(values):
            name, _, version = str(values.iloc[0]).rpartition("/")
            if name:
                versions[name] = version
    return versions


# ---- simulation ---------------------------------------------------------------------------


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


@dataclass
class DecisionShift:
    """How one decision column moved between two strategies."""

    column: str
    level: str  # customer | account
    rows: int
    changed: int
    transitions: pd.DataFrame  # old, new, count (changed rows only, most frequent first)
    by_segment: pd.DataFrame  # segment, rows, changed, share


@dataclass
class SimulationReport:
    strategy: str
    event: str
    customers: int
    accounts: int
    distributions: dict[str, pd.Series]  # "customer:<column>" / "account:<column>" → counts
    numbers: dict[str, tuple[float, float]]  # numeric derived column → (mean, non-null share)
    against: str | None = None
    shifts: list[DecisionShift] = field(default_factory=list)
    against_numbers: dict[str, tuple[float, float]] = field(default_factory=dict)
    treatments: pd.DataFrame | None = None  # treatment, segment, offered (customers), against
    examples: list[dict[str, Any]] = field(default_factory=list)

    def describe(self) -> str:
        lines = [
            f"simulated {self.strategy} on event {self.event}: "
            f"{self.customers:,} customers, {self.accounts:,} accounts"
        ]
        for key, counts in self.distributions.items():
            total = counts.sum()
            shown = ", ".join(
                f"{value} {count:,} ({count / total:.1%})"
                for value, count in counts.head(8).items()
            )
            more = f", ... {len(counts) - 8} more" if len(counts) > 8 else ""
            lines.append(f"  {key}: {shown}{more}")
        for column, (mean, share) in self.numbers.items():
            lines.append(f"  {column}: mean {mean:,.2f} over {share:.0%} with a value")
        if self.treatments is not None and len(self.treatments):
            lines.append("  treatments offered (customers with the treatment on any channel):")
            table = tabulate(self.treatments, headers="keys", showindex=False, tablefmt="simple")
            lines.extend("      " + row for row in table.splitlines())
        if self.against is None:
            return "\n".join(lines) + "\n"
        lines += ["", f"against {self.against}:"]
        for shift in self.shifts:
            share = shift.changed / shift.rows if shift.rows else 0.0
            lines.append(
                f"  {shift.level} {shift.column}: {shift.changed:,} of {shift.rows:,} "
                f"changed ({share:.1%})"
            )
            if shift.changed:
                table = tabulate(
                    shift.transitions.head(10), headers="keys", showindex=False, tablefmt="simple"
                )
                lines.extend("      " + row for row in table.splitlines())
                if len(shift.by_segment):
                    table = tabulate(
                        shift.by_segment,
                        headers="keys",
                        showindex=False,
                        tablefmt="simple",
                        floatfmt=".1%",
                    )
                    lines.extend("      " + row for row in table.splitlines())
        for column, (mean, _) in self.numbers.items():
            if column in self.against_numbers and not math.isclose(
                mean, self.against_numbers[column][0]
            ):
                lines.append(
                    f"  {column}: mean {self.against_numbers[column][0]:,.2f} -> {mean:,.2f}"
                )
        if self.examples:
            lines.append("  example customers:")
            for example in self.examples:
                moves = "; ".join(
                    f"{k}: {old} -> {new}" for k, (old, new) in example["changes"].items()
                )
                lines.append(f"    {example['customer_id']} ({example['segment']}): {moves}")
        return "\n".join(lines) + "\n"


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
