"""The shipped strategies: they load cleanly, pass their golden cases on both evaluators,
reproduce the seeds' numbers, and the batch and per-record evaluators agree on a population."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cx_pipelines.engine import (
    check_strategy,
    evaluate_batch,
    evaluate_customer,
    load_strategy,
    run_golden_cases,
)

ROOT = Path(__file__).resolve().parents[2]
STRATEGIES = ROOT / "strategies"
SHIPPED = sorted(STRATEGIES.glob("*.yaml"))


@pytest.fixture(scope="module")
def retail():
    return load_strategy(STRATEGIES / "retail_bank.yaml")


def test_both_strategies_are_shipped():
    assert {path.name for path in SHIPPED} >= {"retail_bank.yaml", "omnichannel.yaml"}


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_strategy_loads_without_errors_or_warnings(path):
    errors, warnings = check_strategy(path)
    assert errors == []
    assert warnings == []


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_golden_cases_pass_on_both_evaluators(path):
    strategy = load_strategy(path)
    assert len(strategy.golden_cases) >= 5
    assert run_golden_cases(strategy) == []


def test_retail_bank_has_the_seed_events_and_processes(retail):
    assert retail.events["credit_card_campaign"].processes[1:4] == [
        "propensity",
        "risk",
        "offer_selection",
    ]
    assert retail.events["late_payment"].processes[1:2] == ["risk"]
    assert retail.events["late_payment"].processes[-2:] == [
        "underwriting_treatment",
        "overdraft_decision",
    ]
    assert "periodic_review" in retail.events
    for groups in retail.test_groups.values():
        assert dict(groups) == {"challenger_1": 10, "challenger_2": 10, "champion": 80}


def _card(account_id, balance, limit, days_past_due=0):
    return {
        "account_id": account_id,
        "account_type": "credit_card",
        "balance": balance,
        "credit_limit": limit,
        "days_past_due": days_past_due,
        "interest_rate": 0.2,
    }


def _customer(customer_id, *, tenure, income=50000):
    return {
        "customer_id": customer_id,
        "customer_type": "mass_market",
        "region": "north",
        "age": 45,
        "annual_income": income,
        "tenure_months": tenure,
        "recency_days": None,
        "scores.propensity__credit_card__email": None,
    }


def test_fig_14_matrix_cells_give_400_and_500(retail):
    # a delinquent loan puts the customer's risk in 401-600, so each card's risk is 401-600
    accounts = [
        _card("A", 300, 450),
        _card("B", 400, 650),
        {"account_id": "L", "account_type": "personal_loan", "balance": 100, "days_past_due": 60},
    ]
    record = evaluate_customer(
        retail, event="periodic_review", customer=_customer("X", tenure=90), accounts=accounts
    )
    cards = {
        a["account_id"]: a["attributes"]
        for a in record["accounts"]
        if a["account_type"] == "credit_card"
    }
    assert 401 <= cards["A"]["credit_card.risk_score"] <= 600
    assert cards["A"]["credit_card.ccdecsn"] == "D3"
    assert cards["A"]["credit_card.increase_amount"] == 400  # limit 401-600 x risk 401-600
    assert cards["B"]["credit_card.increase_amount"] == 500  # limit 601-800 x risk 401-600


def test_fig_12_iterations_write_ccdecsn_per_card(retail):
    accounts = [_card("01", 100, 1000), _card("02", 500, 1000), _card("03", 499.99, 1000)]
    record = evaluate_customer(
        retail, event="periodic_review", customer=_customer("Y", tenure=50), accounts=accounts
    )
    decisions = {
        a["account_id"]: a["attributes"]["credit_card.ccdecsn"] for a in record["accounts"]
    }
    assert decisions == {"01": "D1", "02": "D2", "03": "D1"}


def test_fig_9_balance_bands_0_500_and_501_max(retail):
    # low profit, high risk: income < 25k, new customer, delinquent card
    accounts = [_card("a", 500, 600, days_past_due=40), _card("b", 501, 600)]
    record = evaluate_customer(
        retail,
        event="periodic_review",
        customer=_customer("Z", tenure=3, income=15000),
        accounts=accounts,
    )
    assert record["attributes"]["risk_score"] >= 600 and record["attributes"]["profit_score"] < 50
    treatment = {
        a["account_id"]: a["attributes"]["credit_card.treatment"] for a in record["accounts"]
    }
    assert treatment == {"a": "D1", "b": "D2"}


def retail_population(size: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    ids = [f"P{i:05d}" for i in range(size)]
    customers = pd.DataFrame(
        {
            "customer_id": ids,
            "customer_type": rng.choice(
                ["mass_market", "affluent", "student", "small_business"], size
            ),
            "region": rng.choice(["north", "south"], size),
            "age": rng.integers(16, 90, size).astype(float),
            "annual_income": rng.choice([12000.0, 40000.0, 90000.0, 150000.0, np.nan], size),
            "tenure_months": rng.integers(0, 200, size).astype(float),
            "recency_days": np.where(rng.random(size) < 0.2, np.nan, rng.integers(0, 400, size)),
            "scores.propensity__credit_card__email": np.where(
                rng.random(size) < 0.3, np.nan, rng.random(size)
            ),
        }
    )
    rows = []
    types = ["credit_card", "checking", "savings", "mortgage", "personal_loan"]
    for customer_id in ids:
        for k in range(int(rng.integers(0, 6))):
            kind = types[int(rng.integers(0, 5))]
            rows.append(
                {
                    "account_id": f"{customer_id}-{k}",
                    "customer_id": customer_id,
                    "account_type": kind,
                    "balance": float(rng.choice([0, 100, 500, 501, 5000, 90000, 150000])),
                    "credit_limit": float(rng.choice([300, 500, 700, 1000]))
                    if kind == "credit_card"
                    else None,
                    "days_past_due": float(rng.choice([0, 0, 0, 15, 45, 95])),
                    "interest_rate": 0.1,
                    "direct_deposit": bool(rng.random() < 0.5) if kind == "checking" else None,
                }
            )
    return customers, pd.DataFrame(rows)


@pytest.mark.parametrize("event", ["periodic_review", "credit_card_campaign", "late_payment"])
def test_batch_and_per_record_agree_on_a_population(retail, event):
    customers, accounts = retail_population(300, seed=11)
    batch = evaluate_batch(retail, event=event, customers=customers, accounts=accounts).records()
    by_owner = {key: group.to_dict("records") for key, group in accounts.groupby("customer_id")}
    for customer, expected in zip(customers.to_dict("records"), batch, strict=True):
        one = evaluate_customer(
            retail,
            event=event,
            customer=customer,
            accounts=by_owner.get(customer["customer_id"], []),
        )
        assert one["attributes"] == expected["attributes"], customer["customer_id"]
        assert one["accounts"] == expected["accounts"], customer["customer_id"]
        assert (one["segment"], one["test_group"], one["category"]) == (
            expected["segment"],
            expected["test_group"],
            expected["category"],
        )


def test_test_groups_split_10_10_80_and_are_stable(retail):
    customers, _ = retail_population(20_000, seed=3)
    first = evaluate_batch(retail, event="credit_card_campaign", customers=customers, trace=False)
    shares = first.customers["test_group"].value_counts(normalize=True)
    assert abs(shares["champion"] - 0.80) < 0.015
    assert abs(shares["challenger_1"] - 0.10) < 0.01
    assert abs(shares["challenger_2"] - 0.10) < 0.01
    again = evaluate_batch(
        retail, event="credit_card_campaign", customers=customers.iloc[::-1], trace=False
    )
    assert dict(
        zip(again.customers["customer_id"], again.customers["test_group"], strict=True)
    ) == dict(zip(first.customers["customer_id"], first.customers["test_group"], strict=True))


def test_offer_selection_differs_by_test_group_only(retail):
    customers, accounts = retail_population(2_000, seed=5)
    result = evaluate_batch(
        retail, event="credit_card_campaign", customers=customers, accounts=accounts, trace=False
    ).customers
    offered = result.groupby("test_group")["send_credit_card_offer"].mean()
    assert offered["challenger_1"] > offered["champion"]  # the lower cut-off reaches more customers
    assert (
        result.loc[result["credit_card_offer"] == "none", "send_credit_card_offer"].eq(False).all()
    )


def test_omnichannel_same_customer_differs_by_channel_and_interaction():
    strategy = load_strategy(STRATEGIES / "omnichannel.yaml")
    customer = {
        "customer_id": "Q",
        "customer_type": "affluent",
        "age": 40,
        "annual_income": 200000,
        "tenure_months": 10,
        "segments.segment": "active",
        "scores.propensity__credit_card__web": 0.2,
        "scores.propensity__savings__web": 0.1,
        "scores.attrition_risk": 0.5,
    }
    login = evaluate_customer(strategy, event="customer_interaction", customer=customer)
    complaint = evaluate_customer(
        strategy, event="customer_interaction", customer=customer, interaction_type="complaint"
    )

    def top(record, channel):
        return [item["treatment"] for item in record["treatments"][channel]]

    assert top(login, "web")[0] == "wealth_review"
    assert "wealth_review" not in top(login, "atm")
    assert top(complaint, "call_centre") == ["complaint_resolution", "retention_offer"]
    assert not {"credit_card_offer", "savings_offer", "wealth_review"} & set(top(complaint, "web"))


def test_zen_translation_matches_the_table_rules():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import zen_table
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    table = zen_table.read_zen_table(ROOT / "benchmarks" / "data" / "decision_table.json")
    assert len(table.rules) == 20
    document = zen_table.to_strategy(table)
    path = ROOT / "benchmarks" / "data" / "decision_table.json"
    assert path.exists()
    import tempfile

    import yaml

    with tempfile.TemporaryDirectory() as folder:
        target = Path(folder) / "zen.yaml"
        target.write_text(yaml.safe_dump(document, sort_keys=False))
        strategy = load_strategy(target)
    assert len(strategy.golden_cases) == 20  # every rule is reachable and has a witness
    assert run_golden_cases(strategy) == []
    rng = np.random.default_rng(1)
    records = pd.DataFrame(
        {
            "customer_id": [str(i) for i in range(3000)],
            "risk_score": rng.integers(0, 1000, 3000).astype(float),
            "balance": rng.choice(
                [0, 499, 500, 999, 1000, 20000, 49999, 50000, 99999, 100000, 150000], 3000
            ).astype(float),
            "request_segment": rng.choice(["mass", "affluent", "private", "sme"], 3000),
            "request_channel": rng.choice(["web", "app", "branch", "call", "email"], 3000),
        }
    )
    ours = evaluate_batch(strategy, event="decide", customers=records, trace=False).customers[
        "action"
    ]
    expected = [
        zen_table.first_match(
            table,
            {
                "risk_score": r.risk_score,
                "balance": r.balance,
                "segment": r.request_segment,
                "channel": r.request_channel,
            },
        ).outputs["action"]
        for r in records.itertuples()
    ]
    assert ours.tolist() == expected
    import json

    import zen  # zen-engine is a test dependency (pyproject dev extras)

    engine = zen.ZenEngine(
        {"loader": {"type": "static", "content": {"t": json.loads(path.read_text())}}}
    )
    answers = [
        engine.evaluate(
            "t",
            {
                "risk_score": r.risk_score,
                "balance": r.balance,
                "segment": r.request_segment,
                "channel": r.request_channel,
            },
        )["result"]["action"]
        for r in records.itertuples()
    ]
    assert answers == expected
