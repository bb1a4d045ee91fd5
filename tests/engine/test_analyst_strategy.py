"""A strategy written from seed 004's figures (FIGS. 8-14) by reading FORMAT.md only:
decision tables (first and collect), a tree with a `missing:` branch, a FIG. 14 matrix
called from a leaf, a scorecard, test groups, account actions with `calculate:` on the
Gold category, treatments with arbitration. Its golden cases run here, and an independent
re-implementation of the figures (plain Python, written from the YAML and FORMAT.md, not
from the engine) must agree with the batch evaluator on a seeded population."""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cx_pipelines.engine import check_strategy, evaluate_batch, load_strategy, run_golden_cases

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "seed004_bank.yaml"
MASK = (1 << 64) - 1


@pytest.fixture(scope="module")
def strategy():
    return load_strategy(FIXTURE)


def population(n: int = 240, seed: int = 7) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    customers = pd.DataFrame(
        {
            "customer_id": [f"K{i}" for i in range(n)],
            "profit": rng.choice([50, 200, 800, 1500, 3000], n).astype(float),
            "delinquencies": rng.choice([0, 0, 0, 1, 2, 3, 4], n).astype(float),
            "income": np.where(rng.random(n) < 0.1, np.nan, rng.choice([12000, 25000, 60000], n)),
            "age": rng.integers(18, 80, n).astype(float),
            "region": rng.choice(["north", "south", "west"], n),
        }
    )
    rows = []
    for customer in customers.customer_id:
        for j in range(rng.integers(0, 4)):
            rows.append(
                {
                    "account_id": f"{customer}-{j}",
                    "customer_id": customer,
                    "account_type": str(rng.choice(["credit_card", "savings", "checking"])),
                    "balance": np.nan if rng.random() < 0.1 else float(rng.choice([100, 900])),
                    "credit_limit": float(rng.choice([300, 450, 700, 2000])),
                    "behaviour_score": float(rng.choice([300, 500, 700])),
                    "min_balance": float(rng.choice([500, 1000])),
                    "direct_deposit": bool(rng.random() < 0.5),
                }
            )
    return customers, pd.DataFrame(rows)


def group_draw(customer_id: str, salt: str) -> float:
    """FORMAT.md's test-group draw, written from its text alone."""
    digest = int.from_bytes(hashlib.blake2b(salt.encode(), digest_size=8).digest(), "big")
    h = 0xCBF29CE484222325 ^ digest
    for byte in customer_id.encode():
        h = ((h ^ byte) * 0x100000001B3) & MASK
    h = ((h ^ (h >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    h = ((h ^ (h >> 27)) * 0x94D049BB133111EB) & MASK
    h ^= h >> 31
    return float(h >> 11) * float(100 / 2**53)


def null(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def expected_customer(c, accounts: pd.DataFrame) -> tuple[dict, dict]:
    """Every output of one customer and its accounts, by hand from the figures."""
    points = (40 if c.delinquencies >= 1 else 0) + (60 if c.delinquencies >= 3 else 0)
    points += 30 if null(c.income) else 25 if c.income < 20000 else 0
    score = 600 + (0 if points < 1 else -40 if points < 50 else -120)
    score += {"north": 10, "south": -10}.get(c.region, 0)
    if c.profit >= 1000:
        profile = "high_profit"
    else:
        profile = "low_profit_high_risk" if score < 560 else "low_profit_low_risk"
    if c.profit >= 1000 and score >= 600:
        category = "platinum"
    else:
        category = "gold" if score >= 560 else "bronze"
    young = c.age < 30
    u = group_draw(c.customer_id, "seed004-2026")
    if young:
        group = "champion" if u < 80 else "challenger" if u < 90 else "control"
    else:
        group = "champion" if u < 90 else "challenger"
    per_account, total_increase, cards = {}, 0.0, 0
    matrix = [[0, 200, 300], [0, 400, 450], [100, 500, 600], [100, 550, 700]]
    for a in accounts.itertuples():
        out: dict = {}
        if a.account_type == "credit_card":
            if null(a.balance):
                decision = "D0"
            elif group == "challenger":
                decision = "D2" if a.balance > a.credit_limit else "D4"
            elif profile == "low_profit_high_risk":
                decision = "D1" if a.balance <= 500 else "D2"
            elif profile == "low_profit_low_risk":
                decision = "D3" if a.credit_limit <= 500 else "D4"
            else:
                decision = "D5"
            out["credit_card.decision"] = decision
            if decision == "D3":  # FIG. 14: current limit () x risk score ()
                row = sum(a.credit_limit >= edge for edge in (401, 601, 801))
                column = sum(a.behaviour_score >= edge for edge in (401, 601))
                out["credit_card.increase_amount"] = matrix[row][column]
                total_increase += matrix[row][column]
            cards += decision != "D0"
            out["action"] = "limit_plus_5_percent" if category == "gold" else None
            if category == "gold":  # FIG. 8: Gold cards get +5% limit
                out["credit_card.new_limit"] = a.credit_limit * 1.05
        elif a.account_type == "savings":
            out["action"] = {
                "platinum": "no_minimum_balance",
                "gold": "minimum_minus_5_percent",
            }.get(category)
            if category == "gold":
                out["savings.new_min_balance"] = a.min_balance * 0.95
        else:
            out["action"] = "waive_fees" if category == "platinum" and a.direct_deposit else None
        per_account[a.account_id] = out
    candidates = []
    if score >= 500:
        candidates.append(("savings_offer", 0.1 * 80 * 0.4, 1))
    if total_increase > 0 and c.age >= 18:
        candidates.append(("limit_offer", 0.2 * 100 * 0.5, 0))
    if young and c.delinquencies >= 1:
        candidates.append(("collections_call", 0.5 * 30 * 1 * 3, 2))
    ranked = [t for t, _, _ in sorted(candidates, key=lambda t: (-t[1], t[2]))]
    customer = {
        "segment": "young" if young else "established",
        "test_group": group,
        "category": category,
        "risk_points": points,
        "risk_score": score,
        "profile": profile,
        "card_count": cards,
        "total_increase": total_increase,
        "branch_1_treatment": ranked[0] if ranked else None,
        "branch_2_treatment": ranked[1] if len(ranked) > 1 else None,
    }
    return customer, per_account


def test_analyst_strategy_loads_cleanly_even_strict():
    errors, warnings = check_strategy(FIXTURE)
    assert errors == []
    assert warnings == []


def test_analyst_strategy_golden_cases_pass_on_both_evaluators(strategy):
    assert len(strategy.golden_cases) == 2
    assert run_golden_cases(strategy) == []


def test_independent_reading_of_the_figures_agrees_with_the_engine(strategy):
    customers, accounts = population()
    result = evaluate_batch(
        strategy, event="monthly_review", customers=customers, accounts=accounts, channel="branch"
    )
    got = result.customers.set_index("customer_id")
    got_accounts = result.accounts.set_index("account_id")
    seen = {"D0": 0, "D1": 0, "D2": 0, "D3": 0, "D4": 0, "D5": 0}
    mismatches = []
    for c in customers.itertuples():
        expected, per_account = expected_customer(
            c, accounts[accounts.customer_id == c.customer_id]
        )
        for key, value in expected.items():
            actual = got.loc[c.customer_id, key]
            if not (actual == value or (value is None and null(actual))):
                mismatches.append((c.customer_id, key, value, actual))
        for account_id, outputs in per_account.items():
            seen[outputs.get("credit_card.decision", "D0")] += "credit_card.decision" in outputs
            for key, value in outputs.items():
                actual = got_accounts.loc[account_id, key]
                same = (value is None and null(actual)) or actual == value
                if not (same or (isinstance(value, float) and abs(actual - value) < 1e-9)):
                    mismatches.append((account_id, key, value, actual))
    assert mismatches == []
    # the population reaches every leaf of FIGS. 9/11, so the comparison covers them all
    assert all(count > 0 for count in seen.values()), seen
