"""``decide_many`` (the service's batch path) gives, request by request, exactly the record
``decide_customer`` gives — on the batch evaluator and on the per-record path it takes for
small groups, with repeated customers, unknown customers, context attributes, records
missing some attributes, contact caps and declines, several channels and interaction
types in one call."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cx_pipelines import intelligence
from cx_pipelines.engine import load_strategy
from cx_pipelines.intelligence import Request, decide_customer, decide_many
from cx_pipelines.intelligence import population as population_module

STRATEGY = Path(__file__).resolve().parents[2] / "strategies" / "next_best_action.yaml"
EVENT = "customer_interaction"
VERSIONS = {"cx_propensity": "4", "cx_uplift": "2", "cx_attrition": "1"}


@pytest.fixture(scope="module")
def strategy():
    return load_strategy(STRATEGY)


def _stored(strategy, count: int, seed: int = 5) -> list[dict]:
    """Online-store records: every input attribute, some records lacking a few."""
    rng = np.random.default_rng(seed)
    records = []
    for number in range(count):
        customer: dict = {"customer_id": f"C{number}"}
        for attribute in strategy.input_attributes(None):
            if attribute.name.startswith("scores."):
                customer[attribute.name] = (
                    None if rng.random() < 0.1 else round(float(rng.uniform(0, 0.3)), 6)
                )
        customer.update(
            customer_type=str(
                rng.choice(["mass_market", "affluent", "student", "young_professional"])
            ),
            age=float(rng.integers(15, 80)),
            annual_income=float(rng.choice([20_000, 70_000, 120_000, 180_000])),
            tenure_months=float(rng.integers(0, 200)),
            decision_channel=None,
            unknown_customer=None,
        )
        customer["segments.segment"] = rng.choice(["active", "dormant", "lapsing", None])
        if number % 7 == 3:  # an older snapshot without these columns
            del customer["scores.attrition_risk"], customer["tenure_months"]
        accounts = [
            {
                "account_id": 100 * number + k,
                "customer_id": f"C{number}",
                "account_type": str(rng.choice(["credit_card", "savings", "mortgage"])),
                "balance": round(float(rng.uniform(0, 9000)), 2),
                "credit_limit": 5000.0,
            }
            for k in range(int(rng.integers(0, 3)))
        ]
        for account in accounts:  # only cards have a limit
            if account["account_type"] != "credit_card":
                del account["credit_limit"]
        records.append({"customer": customer, "accounts": accounts})
    return records


def _history(strategy, number: int) -> list[dict]:
    if number % 3 == 0:  # over the email cap (2 in 7 days)
        return [
            {
                "customer_id": f"C{number}",
                "channel": "email",
                "treatment": "savings_offer",
                "days_ago": float(d),
                "declined": False,
            }
            for d in (1, 2)
        ]
    if number % 3 == 1:  # declined the credit card three times
        return [
            {
                "customer_id": f"C{number}",
                "channel": "web",
                "treatment": "credit_card_offer",
                "days_ago": float(d),
                "declined": True,
            }
            for d in (5, 20, 40)
        ]
    return []


def _requests(strategy, stored, size: int, seed: int = 11) -> list[Request]:
    rng = np.random.default_rng(seed)
    requests = []
    for index in range(size):
        number = int(rng.integers(0, len(stored) + 3))  # a few ids the store does not know
        known = number < len(stored)
        context = {"annual_income": 250_000.0} if index % 9 == 4 else None
        requests.append(
            Request(
                customer_id=f"C{number}",
                customer=stored[number]["customer"] if known else None,
                accounts=stored[number]["accounts"] if known else (),
                channel=str(rng.choice(["web", "email", "call_centre"])),
                interaction_type=str(rng.choice(["login", "complaint"])) if index % 4 else None,
                context=context,
                contact_history=_history(strategy, number) if known else (),
            )
        )
    return requests


def _completed(strategy, customer: dict | None) -> dict | None:
    """A record lacking attributes, with them null (what a batch of records reads)."""
    if customer is None:
        return None
    return {**{a.column: None for a in strategy.input_attributes(None)}, **customer}


def _one_by_one(strategy, requests: list[Request]) -> list[dict]:
    return [
        decide_customer(
            strategy,
            event=EVENT,
            customer=_completed(strategy, r.customer),
            customer_id=r.customer_id,
            accounts=r.accounts,
            channel=r.channel,
            interaction_type=r.interaction_type,
            contact_history=r.contact_history,
            model_versions=VERSIONS,
            context=r.context,
        )
        for r in requests
    ]


@pytest.mark.parametrize("record_path_below", [0, 32, 10**6], ids=["batch", "mixed", "record"])
@pytest.mark.parametrize("trace", [True, False], ids=["traced", "untraced"])
def test_decide_many_equals_decide_customer(strategy, monkeypatch, record_path_below, trace):
    monkeypatch.setattr(population_module, "RECORD_PATH_BELOW", record_path_below)
    stored = _stored(strategy, 40)
    requests = _requests(strategy, stored, 150)
    expected = _one_by_one(strategy, requests)
    got = decide_many(
        strategy,
        event=EVENT,
        requests=requests,
        model_versions=[VERSIONS] * len(requests),
        trace=trace,
    )
    if not trace:
        expected = [{**record, "trace": None} for record in expected]
    assert got == expected


def test_the_cases_the_comparison_relies_on_occur(strategy):
    """The requests above do repeat customers, meet unknown ones and hit the contact policy."""
    stored = _stored(strategy, 40)
    requests = _requests(strategy, stored, 150)
    records = _one_by_one(strategy, requests)
    ids = [r.customer_id for r in requests]
    assert len(set(ids)) < len(ids)
    reasons = {f["reason"] for record in records for f in record["trace"]["policy_filters"]}
    assert any(reason.startswith("declined 3 times") for reason in reasons), reasons
    assert any(reason.startswith("contact cap") for reason in reasons), reasons
    assert any("tenure_months" not in (r.customer or {"tenure_months": 0}) for r in requests)
    assert any(r.context for r in requests)
    unknown = [rec for r, rec in zip(requests, records, strict=True) if r.customer is None]
    assert unknown and all(rec["treatment"] == "general_information" for rec in unknown)
    assert intelligence.UNKNOWN_ATTRIBUTE in strategy.attributes


def test_an_unknown_channel_is_refused_before_deciding(strategy):
    stored = _stored(strategy, 2)
    request = Request("C0", stored[0]["customer"], stored[0]["accounts"], channel="fax")
    with pytest.raises(ValueError, match="no channel 'fax'"):
        decide_many(strategy, event=EVENT, requests=[request] * 30, model_versions=[None] * 30)
