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

from cx_pipelines.ingestion.contracts import TableContract, contract_for
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


def epoch_seconds(moment: datetime | pd.Timestamp) -> float:
    """Seconds since 1970 of a naive UTC time (the scale of the ``__*_epoch_seconds`` columns)."""
    return (pd.Timestamp(moment) - pd.Timestamp(0)) / pd.Timedelta(seconds=1)


@dataclass(frozen=True)
class Rule:
    """One named rule and the expectation that decides it."""

    name: str
    expectation: gxe.Expectation


def _must_be_true(column: str, rule: str) -> gxe.Expectation:
    return gxe.ExpectColumnValuesToBeInSet(column=column, value_set=[True], meta={"rule": rule})


def build_rules(contract: TableContract) -> list[Rule]:
    """The table's rules as expectations, in the order that decides a row's reported rule."""
    rules: list[Rule] = []

    def add(name: str, expectation: gxe.Expectation) -> None:
        rules.append(Rule(name, expectation))

    for field in contract.fields:
        if field.type_rule:
            add(field.type_rule, _must_be_true(readable_column(field.name), field.type_rule))
    for field in contract.fields:
        if field.required:
            name = f"{field.name}_not_null"
            add(name, gxe.ExpectColumnValuesToNotBeNull(column=field.name, meta={"rule": name}))
    name = f"{contract.key}_is_unique"
    add(name, _must_be_true(unique_column(contract.key), name))
    for field in contract.fields:
        if field.domain is not None:
            name = f"{field.name}_in_domain"
            add(
                name,
                gxe.ExpectColumnValuesToBeInSet(
                    column=field.name, value_set=list(field.domain), meta={"rule": name}
                ),
            )
        if field.minimum is not None or field.maximum is not None or field.maximum_years_before_run:
            name = f"{field.name}_in_range"
            maximum = (
                {"$PARAMETER": f"{field.name}_maximum"}
                if field.maximum_years_before_run
                else field.maximum
            )
            add(
                name,
                gxe.ExpectColumnValuesToBeBetween(
                    column=field.name,
                    min_value=field.minimum,
                    max_value=maximum,
                    strict_min=field.strict_minimum,
                    meta={"rule": name},
                ),
            )
        if field.kind in ("date", "timestamp"):
            name = f"{field.name}_not_in_future"
            add(
                name,
                gxe.ExpectColumnValuesToBeBetween(
                    column=epoch_column(field.name),
                    max_value={"$PARAMETER": "as_of_epoch_seconds"},
                    meta={"rule": name},
                ),
            )
            if field.earliest is not None:
                name = f"{field.name}_not_too_old"
                add(
                    name,
                    gxe.ExpectColumnValuesToBeBetween(
                        column=epoch_column(field.name),
                        min_value=epoch_seconds(field.earliest),
                        meta={"rule": name},
                    ),
                )
        if field.pattern is not None:
            name = f"{field.name}_is_well_formed"
            add(
                name,
                gxe.ExpectColumnValuesToMatchRegex(
                    column=field.name, regex=field.pattern, meta={"rule": name}
                ),
            )
    for field in contract.fields:
        if field.references:
            name = f"{field.name}_exists"
            add(name, _must_be_true(exists_column(field.name), name))
    if contract.owner_must_match_account:
        add(
            "customer_id_matches_account",
            _must_be_true(OWNER_MATCH_COLUMN, "customer_id_matches_account"),
        )
    return rules


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
            if len(failing):
                first_failed[failing] = np.minimum(first_failed[failing], order[rule])
    first_failed[first_failed == len(names)] = -1
    return first_failed, names
