"""Golden test cases inside a strategy file, run on both evaluators."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from cx_pipelines.engine.evaluation.batch import evaluate_batch
from cx_pipelines.engine.evaluation.record import evaluate_customer
from cx_pipelines.engine.language import model as m
from cx_pipelines.engine.language.errors import EngineError, GoldenCaseFailure, Location


def _same(expected: Any, actual: Any) -> bool:
    if (
        isinstance(expected, int | float)
        and not isinstance(expected, bool)
        and isinstance(actual, float)
    ):
        return math.isclose(float(expected), actual, rel_tol=1e-9, abs_tol=1e-9)
    return expected == actual


def _compare(expect: dict, record: dict) -> list[tuple[tuple[str, ...], str]]:
    """What differs, each with the path of its expectation inside ``expect``."""
    problems = []
    for key in ("segment", "test_group", "category"):
        if key in expect and not _same(expect[key], record[key]):
            problems.append(((key,), f"{key}: expected {expect[key]!r}, got {record[key]!r}"))
    for name, value in (expect.get("attributes") or {}).items():
        actual = record["attributes"].get(name)
        if not _same(value, actual):
            problems.append(
                (("attributes", name), f"attribute {name}: expected {value!r}, got {actual!r}")
            )
    for channel, names in (expect.get("treatments") or {}).items():
        actual = [t["treatment"] for t in record["treatments"].get(channel, [])]
        if list(names) != actual:
            problems.append(
                (
                    ("treatments", channel),
                    f"treatments on {channel}: expected {names}, got {actual}",
                )
            )
    accounts = {str(a["account_id"]): a for a in record["accounts"]}
    for account_id, fields in (expect.get("accounts") or {}).items():
        account = accounts.get(str(account_id))
        at = ("accounts", str(account_id))
        if account is None:
            problems.append((at, f"account {account_id}: not in the output"))
            continue
        for name, value in fields.items():
            actual = account["action"] if name == "action" else account["attributes"].get(name)
            if not _same(value, actual):
                problems.append(
                    (
                        (*at, name),
                        f"account {account_id} {name}: expected {value!r}, got {actual!r}",
                    )
                )
    return problems


def _where(strategy: m.Strategy, case: m.GoldenCase, key: tuple[str, ...] = ()) -> Location:
    """The case's file and path, at the line of the expectation ``key`` (or of the case)."""
    line, probe = None, key
    while line is None and probe:
        line, probe = case.lines.get(probe), probe[:-1]
    return Location(file=strategy.file, line=line or case.line, path=case.path)


def run_golden_cases(strategy: m.Strategy) -> list[GoldenCaseFailure]:
    """Run every golden case on the per-record and the batch evaluator; [] when all pass."""
    failures: list[GoldenCaseFailure] = []
    for case in strategy.golden_cases:
        data = case.data
        where = _where(strategy, case)
        options = {
            "event": data["event"],
            "interaction_type": data.get("interaction_type"),
            "channel": data.get("channel"),
            "model_versions": data.get("model_versions"),
        }
        history = data.get("contact_history") or []
        try:
            record = evaluate_customer(
                strategy,
                customer=data["customer"],
                accounts=data.get("accounts") or [],
                contact_history=history,
                test_group=data.get("test_group"),
                **options,
            )
            batch = evaluate_batch(
                strategy,
                customers=pd.DataFrame([data["customer"]]),
                accounts=pd.DataFrame(
                    [
                        {"customer_id": data["customer"].get("customer_id"), **a}
                        for a in data.get("accounts") or []
                    ]
                )
                if data.get("accounts")
                else None,
                contact_history=pd.DataFrame(history) if history else None,
                test_groups=[data.get("test_group")],
                **options,
            ).records()[0]
        except EngineError as error:
            failures.append(
                GoldenCaseFailure(
                    f"golden case {case.name!r} could not run: {error}", location=where
                )
            )
            continue
        for evaluator, result in (("per-record", record), ("batch", batch)):
            for key, problem in _compare(data["expect"], result):
                failures.append(
                    GoldenCaseFailure(
                        f"golden case {case.name!r} ({evaluator}): {problem}",
                        location=_where(strategy, case, key),
                    )
                )
    return failures
