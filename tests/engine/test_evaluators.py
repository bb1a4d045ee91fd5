"""Evaluators on the small_bank example: single pass, hierarchy, policies, arbitration."""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from populations import records_one_by_one, small_bank_population

from cx_pipelines.engine import evaluate_batch, evaluate_customer, load_strategy, run_golden_cases
from cx_pipelines.engine.evaluation.shared import test_group_draw as draw_of
from cx_pipelines.engine.language.errors import EvaluationError
from cx_pipelines.engine.language.expressions import CompiledExpression

EXAMPLE = (
    Path(__file__).resolve().parents[2] / "cx_pipelines" / "engine" / "examples" / "small_bank.yaml"
)


@pytest.fixture(scope="module")
def strategy():
    return load_strategy(EXAMPLE)


def customer(**overrides):
    base = {
        "customer_id": "A",
        "income": 150000,
        "age": 40,
        "months_on_book": 80,
        "region": "north",
        "scores.propensity_credit_card": 0.3,
        "scores.uplift_savings": 0.02,
    }
    return {**base, **overrides}


def card(account_id, balance, limit, behaviour, customer_id="A"):
    return {
        "account_id": account_id,
        "customer_id": customer_id,
        "account_type": "credit_card",
        "balance": balance,
        "credit_limit": limit,
        "behaviour_score": behaviour,
    }


def test_golden_cases_pass_on_both_evaluators(strategy):
    assert run_golden_cases(strategy) == []


def test_a_wrong_golden_expectation_is_reported_by_both_evaluators(strategy):
    broken = copy.deepcopy(strategy)
    broken.golden_cases[0].data["expect"]["category"] = "gold"
    failures = run_golden_cases(broken)
    assert len(failures) == 2
    assert {("per-record" in f.message, "batch" in f.message) for f in failures} == {
        (True, False),
        (False, True),
    }
    assert all("expected 'gold', got 'platinum'" in f.message for f in failures)
    assert failures[0].location.path == "golden_cases[0]"


def test_iterative_tree_decides_each_card_and_aggregates_back(strategy):
    cards = [card("A1", 450, 500, 650), card("A2", 800, 700, 300), card("A3", 100, 300, 500)]
    customers = pd.DataFrame(
        [customer(), customer(customer_id="B", income=10000, months_on_book=3)]
    )
    accounts = pd.DataFrame(cards + [card("B1", 700, 600, 700, customer_id="B")])
    result = evaluate_batch(
        strategy,
        event="periodic_review",
        customers=customers,
        accounts=accounts,
        test_groups=["champion", "champion"],
    )
    decisions = result.accounts.set_index("account_id")
    # A: risk 615 -> not < 540; limit <= 500 -> D3 + matrix, else D4 (seed 004 FIG. 11 and 14)
    assert decisions.loc["A1", "credit_card.decision"] == "D3"
    assert (
        decisions.loc["A1", "credit_card.limit_increase"] == 500
    )  # limit 500 (401-600) x behaviour 650 (601+)
    assert decisions.loc["A2", "credit_card.decision"] == "D4"
    assert np.isnan(decisions.loc["A2", "credit_card.limit_increase"])  # matrix not called on D4
    assert decisions.loc["A3", "credit_card.decision"] == "D3"
    assert (
        decisions.loc["A3", "credit_card.limit_increase"] == 300
    )  # limit 300 (0-400) x behaviour 500 (401-600)
    # B: risk 500 - 20 + 0 + 15 = 495 < 540; balance 700 > 500 -> D2
    assert decisions.loc["B1", "credit_card.decision"] == "D2"
    rows = result.customers.set_index("customer_id")
    assert rows.loc["A", "cards_to_review"] == 3
    assert rows.loc["A", "total_card_balance"] == 1350
    assert bool(rows.loc["A", "any_card_overlimit"]) is True
    assert rows.loc["B", "cards_to_review"] == 0
    trace = json.loads(rows.loc["A", "trace"])
    assert [s["mechanism"] for s in trace["accounts"]["A1"]] == ["card_tree", "limit_matrix"]
    assert trace["accounts"]["A1"][1] == {
        "process": "card_review",
        "mechanism": "limit_matrix",
        "type": "matrix",
        "called_by": "card_tree",
        "cell": [1, 2],
        "value": 500.0,
    }


def test_iterative_mechanisms_run_once_over_all_accounts_whatever_the_population(
    strategy, monkeypatch
):
    calls: list[int] = []
    original = CompiledExpression.evaluate_batch

    def counting(self, columns, size):
        if "credit_card.balance" in self.attributes:
            calls.append(size)
        return original(self, columns, size)

    monkeypatch.setattr(CompiledExpression, "evaluate_batch", counting)
    counts = []
    for size in (20, 400):
        customers, accounts, _ = small_bank_population(size, seed=3)
        calls.clear()
        evaluate_batch(
            strategy, event="periodic_review", customers=customers, accounts=accounts, trace=False
        )
        cards = int((accounts["account_type"] == "credit_card").sum())
        assert cards in calls, "an account-level expression runs over all cards at once"
        assert max(calls) == cards
        counts.append(len(calls))
    assert counts[0] == counts[1], "the number of column passes does not grow with accounts"


def test_treatment_groups_more_specific_wins(strategy):
    affluent = customer(**{"scores.propensity_credit_card": 0.07})
    mass = customer(customer_id="M", income=50000, **{"scores.propensity_credit_card": 0.07})
    email = evaluate_customer(strategy, event="periodic_review", customer=affluent, channel="email")
    call = evaluate_customer(
        strategy, event="periodic_review", customer=affluent, channel="call_centre"
    )
    mass_call = evaluate_customer(
        strategy, event="periodic_review", customer=mass, channel="call_centre"
    )

    def offered(record, channel):
        return [item["treatment"] for item in record["trace"]["arbitration"][channel]]

    # segment group lowers the card threshold to 0.05 for affluent; global 0.1 applies to mass
    assert "credit_card_offer" in offered(call, "call_centre")
    assert "credit_card_offer" not in offered(mass_call, "call_centre")
    # retention_call: affluent group offers it, the affluent+email group excludes it
    assert "retention_call" in offered(call, "call_centre")
    assert "retention_call" not in offered(email, "email")
    # branch + outbound_batch excludes service_message, but not for inbound calls
    branch = evaluate_customer(
        strategy, event="periodic_review", customer=affluent, channel="branch"
    )
    inbound = evaluate_customer(
        strategy,
        event="periodic_review",
        customer=affluent,
        channel="branch",
        interaction_type="inbound_call",
    )
    assert "service_message" not in offered(branch, "branch")
    assert "service_message" in offered(inbound, "branch")


def test_policies_filter_with_reasons(strategy):
    young = evaluate_customer(
        strategy, event="periodic_review", customer=customer(age=17), channel="email"
    )
    assert {
        "channel": "email",
        "treatment": "credit_card_offer",
        "policy": "eligibility",
        "reason": "under_age",
    } in young["trace"]["policy_filters"]
    assert "credit_card_offer" not in [t["treatment"] for t in young["treatments"]["email"]]
    history = [
        {"channel": "email", "treatment": "savings_offer", "days_ago": d, "declined": False}
        for d in (1, 3)
    ]
    capped = evaluate_customer(
        strategy, event="periodic_review", customer=customer(), contact_history=history
    )
    assert capped["treatments"]["email"] == []
    assert capped["treatments"]["call_centre"] != []
    assert all(f["policy"] == "contact" for f in capped["trace"]["policy_filters"])
    old = [{"channel": "email", "treatment": "savings_offer", "days_ago": 8, "declined": False}] * 2
    assert (
        evaluate_customer(
            strategy, event="periodic_review", customer=customer(), contact_history=old
        )["treatments"]["email"]
        != []
    )
    declines = [
        {"channel": "branch", "treatment": "savings_offer", "days_ago": 20, "declined": True}
    ] * 3
    declined = evaluate_customer(
        strategy,
        event="periodic_review",
        customer=customer(),
        channel="call_centre",
        contact_history=declines,
    )
    assert {
        "channel": "call_centre",
        "treatment": "savings_offer",
        "policy": "declines",
        "reason": "declined 3 times within 90 days",
    } in declined["trace"]["policy_filters"]
    stale = [{**row, "days_ago": 95} for row in declines]
    assert "savings_offer" in [
        a["treatment"]
        for a in evaluate_customer(
            strategy,
            event="periodic_review",
            customer=customer(),
            channel="call_centre",
            contact_history=stale,
        )["trace"]["arbitration"]["call_centre"]
    ]


def test_arbitration_ranks_by_declared_formula(strategy):
    record = evaluate_customer(
        strategy, event="periodic_review", customer=customer(), channel="call_centre"
    )
    ranked = record["trace"]["arbitration"]["call_centre"]
    scores = {item["treatment"]: item["score"] for item in ranked}
    assert scores["credit_card_offer"] == pytest.approx(
        0.3 * 120 * 1.2
    )  # propensity x value x lever
    assert scores["retention_call"] == pytest.approx(0.2 * 200)
    assert scores["savings_offer"] == pytest.approx(0.02 * 0.3 * 50)  # uplift x margin x value
    assert [item["score"] for item in ranked] == sorted(scores.values(), reverse=True)
    assert [t["treatment"] for t in record["treatments"]["call_centre"]] == [
        "credit_card_offer",
        "retention_call",
    ]  # max_per_channel 2
    assert ranked[0]["terms"] == {"propensity": 0.3, "value": 120.0, "margin": 0.4, "lever": 1.2}


def test_missing_score_drops_the_treatment_with_a_reason(strategy):
    record = evaluate_customer(
        strategy,
        event="periodic_review",
        channel="call_centre",
        customer=customer(**{"scores.uplift_savings": None}),
    )
    assert {
        "channel": "call_centre",
        "treatment": "savings_offer",
        "policy": "arbitration",
        "reason": "score_missing",
    } in record["trace"]["policy_filters"]


def test_test_groups_are_hashed_stably_with_declared_shares(strategy):
    # the documented recipe, written out independently: FNV-1a seeded by blake2b(salt), splitmix64
    mask = 2**64 - 1
    h = 0xCBF29CE484222325 ^ int.from_bytes(
        hashlib.blake2b(b"small-bank-2026", digest_size=8).digest(), "big"
    )
    for byte in b"C42":
        h = ((h ^ byte) * 0x100000001B3) & mask
    h = ((h ^ (h >> 30)) * 0xBF58476D1CE4E5B9) & mask
    h = ((h ^ (h >> 27)) * 0x94D049BB133111EB) & mask
    h ^= h >> 31
    assert draw_of("small-bank-2026", "C42") == (h >> 11) / 2**53 * 100
    assert (
        draw_of("small-bank-2026", 42)
        == draw_of("small-bank-2026", "42")
        == draw_of("small-bank-2026", 42.0)
    )
    customers = pd.DataFrame(
        {
            "customer_id": [f"C{i}" for i in range(4000)],
            "income": 150000.0,
            "age": 40.0,
            "months_on_book": 10.0,
            "region": "north",
            "scores.propensity_credit_card": 0.1,
            "scores.uplift_savings": 0.0,
        }
    )
    first = evaluate_batch(
        strategy, event="inbound_call", customers=customers, trace=False
    ).customers
    again = evaluate_batch(
        strategy, event="inbound_call", customers=customers.iloc[::-1], trace=False
    ).customers
    assert first.set_index("customer_id")["test_group"].equals(
        again.set_index("customer_id")["test_group"].loc[first["customer_id"]]
    )
    share = (first["test_group"] == "challenger").mean()
    assert 0.17 < share < 0.23  # affluent: champion 80 / challenger 20


def test_batch_matches_per_record_on_a_population(strategy):
    customers, accounts, contacts = small_bank_population(150, seed=11)
    batch = evaluate_batch(
        strategy,
        event="periodic_review",
        customers=customers,
        accounts=accounts,
        contact_history=contacts,
        model_versions={"propensity_credit_card": "4"},
    )
    singles = records_one_by_one(
        evaluate_customer,
        strategy,
        customers,
        accounts,
        contacts,
        event="periodic_review",
        model_versions={"propensity_credit_card": "4"},
    )
    for mine, theirs in zip(batch.records(), singles, strict=True):
        assert json.dumps(mine, sort_keys=True, default=str) == json.dumps(
            theirs, sort_keys=True, default=str
        )
    assert json.loads(batch.customers["trace"].iloc[0])["model_versions"] == {
        "propensity_credit_card": "4"
    }
    long = batch.treatments
    assert set(long.columns) >= {
        "customer_id",
        "channel",
        "rank",
        "treatment",
        "score",
        "propensity",
        "lever",
    }
    assert long.groupby(["customer_id", "channel"])["rank"].max().max() <= strategy.max_per_channel


def test_missing_customer_column_is_an_actionable_error(strategy):
    customers = pd.DataFrame([customer()]).drop(columns=["age"])
    with pytest.raises(EvaluationError, match="no column 'age'"):
        evaluate_batch(strategy, event="periodic_review", customers=customers)
    with pytest.raises(EvaluationError, match="no value for attribute 'age'"):
        evaluate_customer(strategy, event="periodic_review", customer=customers.iloc[0].to_dict())
    with pytest.raises(EvaluationError, match="no event 'review'"):
        evaluate_customer(strategy, event="review", customer=customer())


def test_accounts_of_unknown_customers_are_returned_not_lost(strategy):
    customers = pd.DataFrame([customer(customer_id=7)])
    accounts = pd.DataFrame(
        [card(1, 5, 100, 700, customer_id="7"), card(2, 5, 100, 700, customer_id=8)]
    )
    result = evaluate_batch(
        strategy, event="periodic_review", customers=customers, accounts=accounts
    )
    assert result.accounts["account_id"].tolist() == [1]  # id 7 and "7" are one customer
    assert result.unmatched_accounts["account_id"].tolist() == [2]


def test_chunked_evaluation_gives_the_same_frames(strategy):
    customers, accounts, contacts = small_bank_population(60, seed=5)
    options = {
        "event": "periodic_review",
        "customers": customers,
        "accounts": accounts,
        "contact_history": contacts,
    }
    whole = evaluate_batch(strategy, chunk_size=None, **options)
    sliced = evaluate_batch(strategy, chunk_size=7, **options)
    pd.testing.assert_frame_equal(whole.customers, sliced.customers)
    pd.testing.assert_frame_equal(whole.accounts, sliced.accounts)
    pd.testing.assert_frame_equal(whole.treatments, sliced.treatments)
    assert whole.records() == sliced.records()


@pytest.mark.parametrize("attribute", ["balance", "credit_limit", "behaviour_score"])
def test_an_account_value_of_the_wrong_type_is_an_engine_error(strategy, attribute):
    # Trees, matrices, scorecards and aggregates read these attributes per account.
    account = card(1, 5, 100, 700)
    account[attribute] = "lots"
    with pytest.raises(EvaluationError, match="'lots' is not a number"):
        evaluate_customer(
            strategy, event="periodic_review", customer=customer(), accounts=[account]
        )
