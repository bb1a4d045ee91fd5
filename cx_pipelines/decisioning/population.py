"""The engine population: a strategy's customers and accounts frames from warehouse tables.

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

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from cx_pipelines.engine.language.model import Strategy

OPTIONAL_TABLES = ("customer_kpis", "customer_segments", "customer_scores")
_PREFIXED = {
    "scores.": "customer_scores",
    "kpis.": "customer_kpis",
    "segments.": "customer_segments",
}
_SEARCH_ORDER = ("customers", "customer_kpis", "customer_segments", "customer_scores")


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
