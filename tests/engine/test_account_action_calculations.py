"""Account actions that carry a calculation (seed 004 FIG. 8: Gold cards get +5% limit),
run after the categories so they may depend on the category."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from cx_pipelines.engine import check_strategy, evaluate_batch, evaluate_customer, load_strategy
from cx_pipelines.engine.evaluation.shared import trace_json

EXAMPLE = (
    Path(__file__).resolve().parents[2] / "cx_pipelines" / "engine" / "examples" / "small_bank.yaml"
)
GOLD = "    - {category: gold, account_type: credit_card, action: limit_plus_5_percent}\n"
CALCULATED = (
    "    - {category: gold, account_type: credit_card, action: limit_plus_5_percent,\n"
    '       calculate: {credit_card.new_limit: "credit_card.credit_limit * '
    "if(category == 'gold', 1.05, 1)\"}}\n"
)
PLATINUM = "    - {category: platinum, account_type: credit_card, action: no_annual_fee}\n"


def strategy_text(gold: str = CALCULATED, *, declare: str = "{type: number, derived: true}") -> str:
    text = EXAMPLE.read_text()
    for old, new in [
        (GOLD, gold),
        (
            "        limit_increase: {type: number, derived: true}\n",
            "        limit_increase: {type: number, derived: true}\n"
            f"        new_limit: {declare}\n",
        ),
    ]:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    return text


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "strategy.yaml"
    path.write_text(text)
    return path


def population(size: int = 300, seed: int = 5) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    customers = pd.DataFrame(
        {
            "customer_id": [f"c{i}" for i in range(size)],
            "income": rng.choice([15000.0, 45000.0, 120000.0, np.nan], size),
            "age": rng.integers(17, 80, size).astype(float),
            "months_on_book": rng.choice([3.0, 30.0, 90.0, np.nan], size),
            "region": rng.choice(np.array(["north", "south", None], dtype=object), size),
            "scores.propensity_credit_card": rng.uniform(0, 0.4, size),
            "scores.uplift_savings": rng.uniform(0, 0.05, size),
        }
    )
    owners = np.sort(rng.integers(0, size, 500))
    accounts = pd.DataFrame(
        {
            "account_id": [f"a{i}" for i in range(500)],
            "customer_id": [f"c{i}" for i in owners],
            "account_type": rng.choice(["credit_card", "savings"], 500),
            "balance": rng.uniform(0, 900, 500).round(0),
            "credit_limit": rng.choice([400.0, 500.0, 1000.0, np.nan], 500),
            "behaviour_score": rng.uniform(300, 800, 500).round(0),
            "direct_deposit": rng.random(500) < 0.5,
        }
    )
    return customers, accounts


def test_the_action_calculates_for_the_accounts_it_applies_to_on_both_evaluators(tmp_path):
    strategy = load_strategy(write(tmp_path, strategy_text()))
    customers, accounts = population()
    batch = evaluate_batch(
        strategy, event="periodic_review", customers=customers, accounts=accounts
    )
    frame = batch.accounts
    gold = frame["action"] == "limit_plus_5_percent"
    assert gold.any() and (frame["action"] == "no_annual_fee").any()
    limits = accounts.set_index("account_id")["credit_limit"]
    expected = limits.reindex(frame.loc[gold, "account_id"]).to_numpy() * 1.05
    np.testing.assert_array_equal(frame.loc[gold, "credit_card.new_limit"].to_numpy(), expected)
    assert frame.loc[~gold, "credit_card.new_limit"].isna().all()
    by_customer = {k: g.to_dict("records") for k, g in accounts.groupby("customer_id")}
    records = batch.records()
    for position, customer in enumerate(customers.to_dict("records")):
        single = evaluate_customer(
            strategy,
            event="periodic_review",
            customer=customer,
            accounts=by_customer.get(customer["customer_id"], []),
        )
        assert records[position] == single
        assert batch.customers["trace"][position] == trace_json(single["trace"])
    account_id = frame.loc[gold & frame["credit_card.new_limit"].notna(), "account_id"].iloc[0]
    owner = frame.set_index("account_id").loc[account_id, "customer_id"]
    trace = records[customers.index[customers["customer_id"] == owner][0]]["trace"]
    step = trace["accounts"][account_id][-1]
    assert step == {
        "process": "categories",
        "mechanism": "limit_plus_5_percent",
        "type": "calculation",
        "expression": "credit_card.credit_limit * if(category == 'gold', 1.05, 1)",
        "value": limits[account_id] * 1.05,
    }


def test_an_action_may_calculate_only_a_derived_attribute_of_its_account_type(tmp_path):
    text = strategy_text(
        GOLD.replace("}\n", ", calculate: {credit_card.balance: credit_card.balance * 2}}\n")
    )
    path = write(tmp_path, text)
    errors, _ = check_strategy(path)
    assert [e.message for e in errors] == [
        "an account action calculates 'credit_card.balance', which is not a derived attribute "
        "of 'credit_card'; declare `credit_card.<name>` with `derived: true`"
    ]
    assert errors[0].location.line == text[: text.index("limit_plus_5_percent")].count("\n") + 1


def test_the_calculation_is_type_checked_against_the_attribute(tmp_path):
    text = strategy_text().replace(
        PLATINUM,
        PLATINUM.replace("}\n", ", calculate: {credit_card.new_limit: \"category == 'gold'\"}}\n"),
    )
    errors, _ = check_strategy(write(tmp_path, text))
    assert [e.message for e in errors] == [
        "type mismatch: \"category == 'gold'\" gives BOOLEAN values but "
        "'credit_card.new_limit' is declared NUMBER"
    ]
    assert (
        errors[0].location.path
        == 'categories.account_actions[1].calculate["credit_card.new_limit"]'
    )
