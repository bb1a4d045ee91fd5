"""The `calculation` mechanism: type-checked at load, same values and traces in both evaluators."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from cx_pipelines.engine import check_strategy, evaluate_batch, evaluate_customer, load_strategy
from cx_pipelines.engine.evaluation.shared import trace_json
from cx_pipelines.engine.tools.render import render_text

EXAMPLE = (
    Path(__file__).resolve().parents[2] / "cx_pipelines" / "engine" / "examples" / "small_bank.yaml"
)
CALCULATIONS = """  monthly_income:
    type: calculation
    value: round(income / 12, 2)
    output: monthly_income
  income_band:
    type: calculation
    value: if(income >= 100000, 'high', if(income is null, 'unknown', 'standard'))
    output: income_band
  card_new_limit:                 # iterative: one value per card
    type: calculation
    over: credit_card
    value: if(income >= 100000, credit_card.credit_limit * 1.05, null)
    output: credit_card.new_limit
"""


def with_calculations(tmp_path: Path, *, value: str | None = None) -> tuple[Path, str]:
    text = EXAMPLE.read_text()
    calculations = CALCULATIONS
    if value is not None:
        calculations = calculations.replace("round(income / 12, 2)", value)
    for old, new in [
        (
            "    hardship: {type: boolean, derived: true}\n",
            "    hardship: {type: boolean, derived: true}\n"
            "    monthly_income: {type: number, derived: true}\n"
            "    income_band: {type: string, derived: true}\n",
        ),
        (
            "        limit_increase: {type: number, derived: true}\n",
            "        limit_increase: {type: number, derived: true}\n"
            "        new_limit: {type: number, derived: true}\n",
        ),
        (
            "mechanisms: [count_cards_to_review, sum_card_balance, any_overlimit]",
            "mechanisms: [count_cards_to_review, sum_card_balance, any_overlimit,\n"
            "                 monthly_income, income_band, card_new_limit]",
        ),
        ("  cc_propensity:\n", calculations + "  cc_propensity:\n"),
    ]:
        assert text.count(old) == 1, f"fixture text {old!r} must occur once"
        text = text.replace(old, new)
    path = tmp_path / "strategy.yaml"
    path.write_text(text)
    return path, text


def test_a_calculation_whose_type_differs_from_its_output_is_rejected_with_file_line_path(
    tmp_path,
):
    path, text = with_calculations(tmp_path, value="region")
    errors, _ = check_strategy(path)
    mismatches = [e for e in errors if "type mismatch" in e.message]
    assert len(mismatches) == 1, errors
    error = mismatches[0]
    assert "STRING" in error.message and "NUMBER" in error.message
    assert "monthly_income" in error.message
    assert error.location.file == str(path)
    assert error.location.path == "mechanisms.monthly_income.value"
    line = text[: text.index("    value: region")].count("\n") + 1
    assert error.location.line == line


def test_an_iterative_calculation_cannot_write_a_customer_attribute(tmp_path):
    path, _ = with_calculations(tmp_path)
    text = path.read_text().replace("output: credit_card.new_limit", "output: monthly_income")
    path.write_text(text)
    errors, _ = check_strategy(path)
    assert any(e.location.path == "mechanisms.card_new_limit.output" for e in errors), errors


CUSTOMERS = [
    {"customer_id": "A", "income": 150000, "age": 40, "months_on_book": 80, "region": "north"},
    {"customer_id": "B", "income": 30000, "age": 30, "months_on_book": 5, "region": "south"},
    {"customer_id": "C", "income": None, "age": 55, "months_on_book": 20, "region": "east"},
]
CARDS = [
    ("A1", "A", 100.0, 2000.0),
    ("A2", "A", 900.0, None),
    ("B1", "B", 50.0, 1000.0),
    ("C1", "C", 10.0, 500.0),
]


def _inputs():
    customers = [
        {**row, "scores.propensity_credit_card": 0.2, "scores.uplift_savings": 0.01}
        for row in CUSTOMERS
    ]
    accounts = [
        {
            "account_id": account_id,
            "customer_id": owner,
            "account_type": "credit_card",
            "balance": balance,
            "credit_limit": limit,
            "behaviour_score": 700.0,
        }
        for account_id, owner, balance, limit in CARDS
    ]
    return customers, accounts


@pytest.fixture
def strategy(tmp_path):
    path, _ = with_calculations(tmp_path)
    return load_strategy(path)


def test_calculations_compute_numbers_strings_and_per_account_values(strategy):
    customers, accounts = _inputs()
    result = evaluate_batch(
        strategy,
        event="periodic_review",
        customers=pd.DataFrame(customers),
        accounts=pd.DataFrame(accounts),
    )
    by_customer = result.customers.set_index("customer_id")
    assert by_customer.loc["A", "monthly_income"] == 12500.0
    assert by_customer.loc["B", "monthly_income"] == 2500.0
    assert pd.isna(by_customer.loc["C", "monthly_income"])
    assert list(by_customer["income_band"]) == ["high", "standard", "unknown"]
    limits = result.accounts.set_index("account_id")["credit_card.new_limit"]
    assert limits["A1"] == pytest.approx(2100.0)
    assert pd.isna(limits["A2"]) and pd.isna(limits["B1"]) and pd.isna(limits["C1"])


def test_both_evaluators_give_the_same_calculated_values_and_trace_entries(strategy):
    customers, accounts = _inputs()
    batch = evaluate_batch(
        strategy,
        event="periodic_review",
        customers=pd.DataFrame(customers),
        accounts=pd.DataFrame(accounts),
    )
    for record, row in zip(batch.records(), customers, strict=True):
        single = evaluate_customer(
            strategy,
            event="periodic_review",
            customer=row,
            accounts=[a for a in accounts if a["customer_id"] == row["customer_id"]],
        )
        assert trace_json(single["trace"]) == trace_json(record["trace"])
        assert json.dumps(single, sort_keys=True, default=str) == json.dumps(
            record, sort_keys=True, default=str
        )
    steps = [s for s in batch.records()[0]["trace"]["steps"] if s["type"] == "calculation"]
    assert steps[0] == {
        "process": "card_summary",
        "mechanism": "monthly_income",
        "type": "calculation",
        "expression": "round(income / 12, 2)",
        "value": 12500.0,
    }
    card_steps = [
        step
        for account in batch.records()[0]["trace"]["accounts"].values()
        for step in (account["steps"] if isinstance(account, dict) else account)
        if step["type"] == "calculation"
    ]
    assert sorted(step["value"] or 0.0 for step in card_steps) == [0.0, pytest.approx(2100.0)]


def test_render_shows_the_expression(strategy):
    assert "= round(income / 12, 2)" in render_text(strategy, mechanism="monthly_income")


def test_a_date_calculation_agrees_between_evaluators(tmp_path):
    path, text = with_calculations(tmp_path)
    text = text.replace(
        "    income_band: {type: string, derived: true}\n",
        "    income_band: {type: string, derived: true}\n"
        "    review_date: {type: date, derived: true}\n",
    ).replace(
        "  card_new_limit:",
        "  review_on:\n"
        "    type: calculation\n"
        "    value: \"if(income >= 100000, date'2026-10-01', date'2027-01-01')\"\n"
        "    output: review_date\n"
        "  card_new_limit:",
    )
    text = text.replace("monthly_income, income_band,", "monthly_income, income_band, review_on,")
    path.write_text(text)
    strategy = load_strategy(path)
    customers, accounts = _inputs()
    batch = evaluate_batch(
        strategy,
        event="periodic_review",
        customers=pd.DataFrame(customers),
        accounts=pd.DataFrame(accounts),
    )
    dates = [str(value)[:10] for value in batch.customers["review_date"]]
    assert dates == ["2026-10-01", "2027-01-01", "2027-01-01"]
    single = evaluate_customer(
        strategy, event="periodic_review", customer=customers[1], accounts=accounts[2:3]
    )
    assert trace_json(single["trace"]) == trace_json(batch.records()[1]["trace"])
