"""Great Expectations suites built from the table contracts, and row-level results.

One ephemeral GX context per process holds one suite per source table, built once; each
chunk is validated as a pandas batch with ``result_format="COMPLETE"`` so every failing
row's index comes back. Facts that span chunks or tables (a key seen twice in the whole
table, a customer that was accepted upstream) are computed before validation into helper
columns (``__customer_id_exists``) that the suite checks like any other column, so every
rule, local or not, is decided in one place and reported the same way.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime
from functools import cache

import numpy as np
import pandas as pd

from cx_pipelines.ingestion.contracts import Field, TableContract, contract_for
from cx_pipelines.ingestion.errors import IngestionError

os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")

import great_expectations as gx  # noqa: E402  (after the analytics switch above)
import great_expectations.expectations as gxe  # noqa: E402
from great_expectations.data_context.types.base import ProgressBarsConfig  # noqa: E402

_DATASOURCE = "cx_source_chunks"


def readable_column(column: str) -> str:
    return f"__{column}_readable"


def unique_column(column: str) -> str:
    return f"__{column}_unique"


def exists_column(column: str) -> str:
    return f"__{column}_exists"


def epoch_column(column: str) -> str:
    return f"__{column}_epoch_seconds"


OWNER_MATCH_COLUMN = "__customer_id_matches_account"


def condition_column(rule: str) -> str:
    return f"__{rule}"


def epoch_seconds(moment: datetime | pd.Timestamp) -> float:
    """Seconds since 1970 of a naive UTC time (the scale of the ``__*_epoch_seconds`` columns)."""
    return (pd.Timestamp(moment) - pd.Timestamp(0)) / pd.Timedelta(seconds=1)


@dataclass(frozen=True)
class Rule:
    """One named rule, what it means, and the expectation that decides it."""

    name: str
    meaning: str
    expectation: gxe.Expectation


def _must_be_true(column: str, rule: str) -> gxe.Expectation:
    return gxe.ExpectColumnValuesToBeInSet(column=column, value_set=[True], meta={"rule": rule})


_TYPE_MEANING = {
    "id": "an integer",
    "integer": "an integer",
    "number": "a number",
    "date": "an ISO date",
    "timestamp": "an ISO timestamp",
    "boolean": "true/false (or 1/0)",
}


def _number(value: float) -> str:
    return f"{int(value):,}" if float(value).is_integer() else f"{value:g}"


def _range_meaning(field: Field) -> str:
    low = ""
    if field.minimum is not None:
        low = f">= {_number(field.minimum)}"
    if field.maximum_years_before_run:
        high = f"<= the run's year - {field.maximum_years_before_run}"
    else:
        high = "" if field.maximum is None else f"<= {_number(field.maximum)}"
    return " and ".join(part for part in (low, high) if part)


def build_rules(contract: TableContract) -> list[Rule]:
    """The table's rules as expectations, in the order that decides a row's reported rule."""
    rules: list[Rule] = []

    def add(name: str, meaning: str, expectation_type: type, **kwargs: object) -> None:
        rules.append(Rule(name, meaning, expectation_type(meta={"rule": name}, **kwargs)))

    def must_be_true(name: str, meaning: str, column: str) -> None:
        add(name, meaning, gxe.ExpectColumnValuesToBeInSet, column=column, value_set=[True])

    for field in contract.fields:
        if field.type_rule:
            meaning = f"a present {field.name} is {_TYPE_MEANING[field.kind]}"
            must_be_true(field.type_rule, meaning, readable_column(field.name))
    for field in contract.fields:
        if field.required:
            name = f"{field.name}_not_null"
            add(
                name,
                f"{field.name} is present",
                gxe.ExpectColumnValuesToNotBeNull,
                column=field.name,
            )
    must_be_true(
        f"{contract.key}_is_unique",
        f"no other row of the table has the same {contract.key}",
        unique_column(contract.key),
    )
    for field in contract.fields:
        column = field.name
        if field.domain is not None:
            add(
                f"{column}_in_domain",
                f"{column} is one of {', '.join(field.domain)}",
                gxe.ExpectColumnValuesToBeInSet,
                column=column,
                value_set=list(field.domain),
            )
        if field.minimum is not None or field.maximum is not None or field.maximum_years_before_run:
            maximum = field.maximum
            if field.maximum_years_before_run:
                maximum = {"$PARAMETER": f"{column}_maximum"}
            add(
                f"{column}_in_range",
                f"{column} {_range_meaning(field)}",
                gxe.ExpectColumnValuesToBeBetween,
                column=column,
                min_value=field.minimum,
                max_value=maximum,
            )
        if field.kind in ("date", "timestamp"):
            add(
                f"{column}_not_in_future",
                f"{column} is not after the run (UTC)",
                gxe.ExpectColumnValuesToBeBetween,
                column=epoch_column(column),
                max_value={"$PARAMETER": "as_of_epoch_seconds"},
            )
            if field.earliest is not None:
                add(
                    f"{column}_not_too_old",
                    f"{column} is not before {field.earliest:%Y-%m-%d}",
                    gxe.ExpectColumnValuesToBeBetween,
                    column=epoch_column(column),
                    min_value=epoch_seconds(field.earliest),
                )
        if field.pattern is not None:
            add(
                f"{column}_is_well_formed",
                f"{column} matches `{field.pattern}`",
                gxe.ExpectColumnValuesToMatchRegex,
                column=column,
                regex=field.pattern,
            )
    for field in contract.fields:
        if field.references:
            must_be_true(
                f"{field.name}_exists",
                f"a present {field.name} names an accepted row of {field.references}",
                exists_column(field.name),
            )
    if contract.owner_must_match_account:
        must_be_true(
            "customer_id_matches_account",
            "customer_id is the owner of the row's account",
            OWNER_MATCH_COLUMN,
        )
    for field in contract.fields:
        if field.zero_unless_rule:
            column, value = field.zero_unless
            must_be_true(
                field.zero_unless_rule,
                f"{field.name} is 0 unless {column} is {value}",
                condition_column(field.zero_unless_rule),
            )
    return rules


def rules_markdown(table: str) -> str:
    """The rules of ``table`` as a Markdown table, in checking order (shown in the Dagster UI)."""
    lines = ["| rule | a row passes when | Great Expectations |", "|---|---|---|"]
    for rule in build_rules(contract_for(table)):
        meaning = rule.meaning.replace("|", "\\|")
        lines.append(f"| `{rule.name}` | {meaning} | {type(rule.expectation).__name__} |")
    return "\n".join(lines)


def rule_names(table: str) -> list[str]:
    """Every rule of ``table``, in checking order."""
    return [rule.name for rule in build_rules(contract_for(table))]


@cache
def _context() -> gx.data_context.AbstractDataContext:
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    context.data_sources.add_pandas(_DATASOURCE)
    return context


@cache
def _suite_and_batch_definition(table: str):
    context = _context()
    contract = contract_for(table)
    suite = gx.ExpectationSuite(name=f"{table}_source_contract")
    for rule in build_rules(contract):
        suite.add_expectation(rule.expectation)
    suite = context.suites.add(suite)
    asset = context.data_sources.get(_DATASOURCE).add_dataframe_asset(table)
    names = [rule.name for rule in build_rules(contract)]
    return suite, asset.add_batch_definition_whole_dataframe(f"{table}_chunk"), names


def _raised_message(exception_info: dict | None) -> str | None:
    """The message of an exception GX caught while evaluating an expectation, if any."""
    if not exception_info:
        return None
    candidates = (
        [exception_info] if "raised_exception" in exception_info else exception_info.values()
    )
    for info in candidates:
        if isinstance(info, dict) and info.get("raised_exception"):
            return str(info.get("exception_message") or "unknown error")
    return None


def validate_chunk(
    table: str, frame: pd.DataFrame, *, parameters: dict[str, float]
) -> tuple[np.ndarray, list[str]]:
    """Validate one prepared chunk; return, per row, the index of its first failed rule (-1: none).

    ``frame`` must have a default RangeIndex and every helper column the suite checks.
    The second value is the list of rule names the indices refer to.
    """
    # str(): a SQLAlchemy table name is a str subclass that would miss the cache.
    suite, batch_definition, names = _suite_and_batch_definition(str(table))
    order = {name: position for position, name in enumerate(names)}
    first_failed = np.full(len(frame), len(names), dtype=np.int64)
    if len(frame):
        batch = batch_definition.get_batch(batch_parameters={"dataframe": frame})
        results = batch.validate(
            suite,
            result_format={"result_format": "COMPLETE", "partial_unexpected_count": 0},
            expectation_parameters=parameters,
        )
        for result in results.results:
            rule = result.expectation_config.meta["rule"]
            message = _raised_message(result.exception_info)
            if message is not None:
                raise IngestionError(
                    f"Great Expectations could not evaluate rule {rule!r} on table {table!r}: "
                    f"{message}"
                )
            if result.success:
                continue
            failing = np.asarray(result.result.get("unexpected_index_list") or [], dtype=np.int64)
            if len(failing) != result.result.get("unexpected_count", len(failing)):
                # Never let a failing row through because its index was not reported.
                raise IngestionError(
                    f"Great Expectations reported {result.result.get('unexpected_count')} rows "
                    f"failing rule {rule!r} on table {table!r} but listed {len(failing)}"
                )
            if len(failing):
                first_failed[failing] = np.minimum(first_failed[failing], order[rule])
    first_failed[first_failed == len(names)] = -1
    return first_failed, names
