"""A population of one's own: customers and accounts files (CSV or Parquet) as engine inputs.

``cx strategy simulate --customers FILE --accounts FILE [--map attribute=column]`` reads
these instead of the warehouse. Columns are named as the strategy's input attributes
(accounts: ``account_id``, ``customer_id``, ``account_type`` and the attribute part,
``balance`` for ``credit_card.balance``) unless ``--map`` names another column (a key
column of the accounts file alone: ``--map accounts.customer_id=owner``). A missing
or mistyped column is an error naming the file, the column and (for values) the row.
``all_null_inputs`` warns about inputs that are null everywhere, on either path.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cx_pipelines.decisioning.population import PopulationError
from cx_pipelines.engine.language.model import Strategy

POPULATION_SUFFIXES = (".csv", ".parquet", ".pq")
# `--map accounts.customer_id=owner`: a key column of the accounts file alone (the
# customers file keeps `customer_id`, or its own `--map customer_id=...`)
ACCOUNT_KEYS = {key: f"accounts.{key}" for key in ("account_id", "customer_id", "account_type")}
_TRUE = {"true", "t", "yes", "y", "1", "1.0"}
_FALSE = {"false", "f", "no", "n", "0", "0.0"}


def read_population_file(path: str | Path) -> pd.DataFrame:
    """A customers or accounts file as read: CSV (every column as text) or Parquet."""
    path = Path(path)
    if path.suffix.lower() not in POPULATION_SUFFIXES:
        raise PopulationError(f"{path}: unsupported file type; use .csv or .parquet")
    if not path.exists():
        raise PopulationError(f"{path}: no such file")
    try:
        if path.suffix.lower() == ".csv":
            return pd.read_csv(path, dtype=str, keep_default_na=True)
        return pd.read_parquet(path)
    except (OSError, ValueError) as error:
        raise PopulationError(f"{path}: cannot be read: {error}") from error


def _row_name(file: str, position: int) -> str:
    """Where a row is, as an analyst finds it: a CSV line (header is line 1) or a Parquet row."""
    return (
        f"{file}:{position + 2}" if file.lower().endswith(".csv") else f"{file} row {position + 1}"
    )


def _converted(values: pd.Series, value_type: str, file: str, column: str) -> pd.Series:
    """``values`` as ``value_type``; the first value that is not one is an error naming it.

    The index of ``values`` is the row's position in the file (0 = first data row).
    """
    present = values.notna().to_numpy()
    if value_type == "number":
        result = pd.to_numeric(values, errors="coerce").astype("float64")
        bad = present & result.isna().to_numpy()
        expected = "a number"
    elif value_type == "boolean":
        if pd.api.types.is_bool_dtype(values.dtype):
            return values.astype("boolean")
        text = values.astype(object).map(lambda v: str(v).strip().lower(), na_action="ignore")
        result = text.map(lambda v: True if v in _TRUE else False if v in _FALSE else None)
        result = result.astype("boolean")
        bad = present & result.isna().to_numpy()
        expected = "true or false"
    elif value_type == "date":
        result = pd.to_datetime(values, errors="coerce", format="ISO8601")
        bad = present & result.isna().to_numpy()
        expected = "a date (YYYY-MM-DD)"
    else:
        if pd.api.types.is_float_dtype(values.dtype):
            values = values.astype(object).map(_integral_text, na_action="ignore")
        return values.astype(object).map(str, na_action="ignore").where(values.notna(), None)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise PopulationError(
            f"{_row_name(file, int(values.index[first]))}: column {column!r} holds "
            f"{values.iloc[first]!r}, "
            f"not {expected} ({int(bad.sum()):,} such value{'s' if bad.sum() > 1 else ''})"
        )
    return result


def _integral_text(value: Any) -> Any:
    return str(int(value)) if float(value).is_integer() else str(value)


def _no_column(file: str, column: str, columns: Sequence[str], why: str, mapping: str) -> str:
    close = difflib.get_close_matches(column, [str(c) for c in columns], n=1, cutoff=0.8)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return (
        f"{file} has no column {column!r}{' ' + why if why else ''}{hint}; "
        f"map one with --map {mapping}=COLUMN "
        f"(columns: {', '.join(map(str, columns))})"
    )


def _checked_mapping(strategies: Sequence[Strategy], mapping: dict[str, str]) -> list[str]:
    """Problems with ``--map`` names: only key columns and input attributes can be mapped."""
    inputs = {"customer_id", "account_id", "account_type", *ACCOUNT_KEYS.values()}
    derived = set()
    for item in strategies:
        for attribute in item.attributes.values():
            (derived if attribute.derived else inputs).add(attribute.name)
    problems = []
    for name in mapping:
        if name in inputs:
            continue
        if name in derived:
            problems.append(
                f"--map {name}=...: {name!r} is derived (the strategy writes it), not an input"
            )
            continue
        close = difflib.get_close_matches(name, sorted(inputs), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        problems.append(f"--map {name}=...: {name!r} is not an input attribute{hint}")
    return problems


def file_inputs(
    strategy: Strategy | Sequence[Strategy],
    *,
    customers: pd.DataFrame,
    accounts: pd.DataFrame | None,
    customers_file: str,
    accounts_file: str | None,
    mapping: dict[str, str] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, int]]:
    """The (customers, accounts) frames ``evaluate_batch`` takes, from files of one's own.

    Columns are named as the data dictionary's input attributes (``income``,
    ``scores.propensity_credit_card``; accounts: ``account_id``, ``customer_id``,
    ``account_type`` and the attribute part, ``balance``), unless ``mapping`` names
    another column (``{"income": "annual_income", "account_type": "product_type"}``).
    Every missing or mistyped column is an error naming the file and column. Also returns
    the account rows' reconciliation (read, of undeclared types, without a customer).
    """
    strategies = [strategy] if isinstance(strategy, Strategy) else list(strategy)
    mapping = dict(mapping or {})
    problems = _checked_mapping(strategies, mapping)
    types: dict[str, str] = {}
    for item in strategies:
        for attribute in item.attributes.values():
            if not attribute.derived:
                types.setdefault(attribute.name, _value_type(attribute))
    id_type = types.get("customer_id", "string")

    id_column = mapping.get("customer_id", "customer_id")
    if id_column not in customers.columns:
        problems.append(_no_column(customers_file, id_column, customers.columns, "", "customer_id"))
    frame: dict[str, Any] = {}
    for item in strategies:
        for attribute in item.input_attributes(None):
            if attribute.name == "customer_id" or attribute.name in frame:
                continue
            column = mapping.get(attribute.name, attribute.name)
            if column not in customers.columns:
                why = f"for input attribute {attribute.name} ({types[attribute.name]})"
                problems.append(
                    _no_column(customers_file, column, customers.columns, why, attribute.name)
                )
                continue
            frame[attribute.name] = column
    account_frame, counts = None, {"rows": 0, "read": 0, "other_types": 0, "no_customer": 0}
    if accounts is not None:
        account_frame, counts = _account_inputs(
            strategies, accounts, accounts_file or "accounts", mapping, types, problems
        )
    elif any(item.account_types for item in strategies):
        declared = sorted({t for item in strategies for t in item.account_types})
        problems.append(
            f"the strategy reads accounts of types {', '.join(declared)}: give --accounts FILE"
        )
    if problems:
        raise PopulationError("\n".join(problems))

    ids = _converted(customers[id_column], id_type, customers_file, id_column)
    if ids.isna().any():
        position = int(ids.index[np.flatnonzero(ids.isna().to_numpy())[0]])
        raise PopulationError(f"{_row_name(customers_file, position)}: customer_id is empty")
    duplicated = ids.duplicated().to_numpy()
    if duplicated.any():
        first = int(np.flatnonzero(duplicated)[0])
        raise PopulationError(
            f"{_row_name(customers_file, int(ids.index[first]))}: customer_id "
            f"{ids.iloc[first]!r} "
            "appears twice; one row per customer is expected"
        )
    customer_frame = pd.DataFrame({"customer_id": ids.to_numpy()})
    for name, column in frame.items():
        customer_frame[name] = _converted(
            customers[column], types[name], customers_file, column
        ).to_numpy()
    if account_frame is None:
        account_frame = pd.DataFrame(
            {"account_id": [], "customer_id": [], "account_type": []}, dtype=object
        )
    owners = pd.Index(customer_frame["customer_id"].to_numpy(dtype=object))
    known = owners.get_indexer(account_frame["customer_id"].to_numpy(dtype=object)) >= 0
    counts["no_customer"] = int((~known).sum())
    counts["read"] = int(known.sum())
    return customer_frame, account_frame[known].reset_index(drop=True), counts


def _account_inputs(
    strategies: Sequence[Strategy],
    accounts: pd.DataFrame,
    file: str,
    mapping: dict[str, str],
    types: dict[str, str],
    problems: list[str],
) -> tuple[pd.DataFrame | None, dict[str, int]]:
    keys = {key: mapping.get(only, mapping.get(key, key)) for key, only in ACCOUNT_KEYS.items()}
    missing = [key for key, column in keys.items() if column not in accounts.columns]
    for key in missing:
        # customer_id is the one key both files have: name the accounts file's own mapping
        hint = ACCOUNT_KEYS[key] if key == "customer_id" else key
        problems.append(_no_column(file, keys[key], accounts.columns, "", hint))
    counts = {"rows": len(accounts), "read": 0, "other_types": 0, "no_customer": 0}
    if missing:
        return None, counts
    declared: dict[str, list] = {}
    for item in strategies:
        for account_type in item.account_types:
            declared.setdefault(account_type, [])
            for attribute in item.input_attributes(account_type):
                if attribute not in declared[account_type]:
                    declared[account_type].append(attribute)
    kind = accounts[keys["account_type"]].astype(object).map(str, na_action="ignore")
    chosen = pd.Index(list(declared)).get_indexer(kind.to_numpy(dtype=object)) >= 0
    counts["other_types"] = int((~chosen).sum())
    rows = accounts[chosen]
    kind = kind[chosen]
    id_type = types.get("customer_id", "string")
    empty = rows[keys["account_id"]].isna().to_numpy()
    if empty.any():
        position = int(rows.index[np.flatnonzero(empty)[0]])
        problems.append(f"{_row_name(file, position)}: {keys['account_id']} is empty")
    result = pd.DataFrame(
        {
            "account_id": rows[keys["account_id"]].to_numpy(),
            "customer_id": _converted(
                rows[keys["customer_id"]], id_type, file, keys["customer_id"]
            ).to_numpy(),
            "account_type": kind.to_numpy(dtype=object),
        }
    )
    columns: dict[str, pd.Series] = {}
    column_types: dict[str, set[str]] = {}
    for account_type, attributes in declared.items():
        of_type = (kind == account_type).to_numpy()
        if not of_type.any():
            continue  # no such accounts in the file: their columns are not needed
        for attribute in attributes:
            column = attribute.column or attribute.name.split(".", 1)[1]
            source = mapping.get(attribute.name, column)
            if source not in rows.columns:
                why = (
                    f"for input attribute {attribute.name} ({types[attribute.name]}) "
                    f"of its {int(of_type.sum()):,} {account_type} accounts"
                )
                problems.append(_no_column(file, source, rows.columns, why, attribute.name))
                continue
            try:
                values = _converted(rows.loc[of_type, source], types[attribute.name], file, source)
            except PopulationError as error:
                problems.append(str(error))
                continue
            target = columns.setdefault(column, pd.Series([None] * len(rows), dtype=object))
            target[of_type] = values.astype(object).to_numpy()
            column_types.setdefault(column, set()).add(types[attribute.name])
    for column, values in columns.items():
        (value_type,) = column_types[column] if len(column_types[column]) == 1 else ("mixed",)
        if value_type == "number":
            values = pd.to_numeric(values).astype("float64")
        elif value_type == "boolean":
            values = values.astype("boolean")
        elif value_type == "date":
            values = pd.to_datetime(values)
        result[column] = values.to_numpy()
    return result, counts


def all_null_inputs(
    strategy: Strategy | Sequence[Strategy],
    customers: pd.DataFrame,
    accounts: pd.DataFrame,
    *,
    sources: dict[str, str] | None = None,
) -> list[str]:
    """A warning for every input attribute that is null in every row it could be read from."""
    strategies = [strategy] if isinstance(strategy, Strategy) else list(strategy)
    warnings: list[str] = []
    seen: set[str] = set()
    for item in strategies:
        for attribute in item.attributes.values():
            if attribute.derived or attribute.name in seen or attribute.name == "customer_id":
                continue
            seen.add(attribute.name)
            if attribute.account_type is None:
                frame, what = customers, "customers"
                column = attribute.name
            else:
                frame = accounts[accounts["account_type"] == attribute.account_type]
                what = f"{attribute.account_type} accounts"
                column = attribute.column or attribute.name.split(".", 1)[1]
            if not len(frame):
                continue
            if column not in frame.columns or frame[column].isna().all():
                where = (
                    f" ({sources[attribute.name]})" if sources and attribute.name in sources else ""
                )
                warnings.append(
                    f"input attribute {attribute.name!r} is null in all {len(frame):,} "
                    f"{what}{where}; every rule reading it sees null"
                )
    return warnings


def _value_type(attribute) -> str:
    return str(getattr(attribute.value_type, "value", attribute.value_type))
