"""One engine for every channel: the service and the batch record agree exactly."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import support

from cx_pipelines.engine import load_strategy
from cx_pipelines.intelligence import decide_customer, decide_population


def test_http_and_the_batch_record_are_identical(server, prepared):
    """A sample decided through HTTP (periodic review, every channel) matches
    customer_intelligence_record row for row: treatments with terms, and the whole trace."""
    batch = support.warehouse_frame(prepared.home, "customer_intelligence_record")
    sample = batch[batch["customer_id"].isin(range(1, 61, 4))]
    assert len(sample) == 15 * 6
    for row in sample.itertuples():
        answer = server.post(
            "/v1/decisions",
            {
                "customer_id": str(row.customer_id),
                "channel": row.channel,
                "event": "periodic_review",
                "record_contact": False,
            },
        )
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["treatments"] == json.loads(row.treatments)
        assert body["trace"] == json.loads(row.trace)
        assert body["model_versions"] == json.loads(row.model_versions)
        assert (body["segment"], body["test_group"], body["treatment"]) == (
            row.segment,
            row.test_group,
            row.treatment,
        )


def _population(size: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    strategy = load_strategy(support.STRATEGY)
    random = np.random.default_rng(seed)
    frame: dict[str, object] = {"customer_id": [f"c{i}" for i in range(size)]}
    for attribute in strategy.input_attributes(None):
        if attribute.name.startswith("scores."):
            values = random.uniform(0, 0.3, size)
            values[random.random(size) < 0.1] = np.nan
            frame[attribute.name] = values
    frame["customer_type"] = random.choice(
        ["affluent", "student", "young_professional", "small_business", "mass_market"], size
    )
    frame["age"] = random.integers(15, 90, size).astype(float)
    frame["annual_income"] = random.uniform(0, 250_000, size)
    frame["tenure_months"] = random.integers(0, 300, size).astype(float)
    frame["segments.segment"] = random.choice(["lapsing", "dormant", "active", None], size)
    frame["decision_channel"] = None
    frame["unknown_customer"] = None
    accounts = pd.DataFrame(columns=["account_id", "customer_id", "account_type"])
    return pd.DataFrame(frame), accounts


@pytest.mark.parametrize("seed", [1, 2])
def test_population_and_one_customer_paths_agree(seed):
    strategy = load_strategy(support.STRATEGY)
    customers, accounts = _population(80, seed)
    history = [
        {
            "customer_id": "c1",
            "channel": "email",
            "treatment": "x",
            "days_ago": 1,
            "declined": False,
        },
        {
            "customer_id": "c1",
            "channel": "email",
            "treatment": "y",
            "days_ago": 2,
            "declined": False,
        },
    ]
    versions = {"cx_propensity": "7"}
    batch = decide_population(
        strategy,
        event="customer_interaction",
        customers=customers,
        accounts=accounts,
        contact_history=history,
        model_versions=versions,
    )
    assert len(batch) == 80 * len(strategy.channels)
    inputs = {r["customer_id"]: r for r in customers.to_dict("records")}
    for row in batch.itertuples():
        one = decide_customer(
            strategy,
            event="customer_interaction",
            customer={
                k: (None if v is None or v != v else v) for k, v in inputs[row.customer_id].items()
            },
            customer_id=row.customer_id,
            channel=row.channel,
            contact_history=[h for h in history if h["customer_id"] == row.customer_id],
            model_versions=versions,
        )
        assert one["treatments"] == json.loads(row.treatments)
        assert one["trace"] == json.loads(row.trace)
    closed = batch[(batch["customer_id"] == "c1") & (batch["channel"] == "email")]
    assert closed["treatment"].isna().all()  # two emails this week close the channel


def test_terms_are_those_of_the_channel_being_decided():
    strategy = load_strategy(support.STRATEGY)
    customers, accounts = _population(30, 5)
    batch = decide_population(
        strategy, event="customer_interaction", customers=customers, accounts=accounts
    )
    for row in batch.itertuples():
        steps = {s["mechanism"]: s["value"] for s in json.loads(row.trace)["steps"]}
        column = {"atm": "branch"}.get(row.channel, row.channel)
        expected = customers.set_index("customer_id").loc[
            row.customer_id, f"scores.propensity__credit_card__{column}"
        ]
        picked = steps["pick_credit_card_propensity"]
        assert (picked is None and np.isnan(expected)) or picked == pytest.approx(expected)
        for item in json.loads(row.treatments):
            if item["treatment"] == "credit_card_offer":
                assert item["terms"]["propensity"] == pytest.approx(steps["credit_card_model"])


def test_the_batch_endpoint_equals_single_decisions(server):
    """/v1/decisions/batch runs the vectorised evaluator; each item equals its single call."""
    items = [
        {"customer_id": str(c), "channel": ch, "record_contact": False}
        for c in (2, 6, 6, 11, "unknown-1")
        for ch in ("web", "atm", "email")
    ]
    items.append(
        {
            "customer_id": "6",
            "channel": "web",
            "record_contact": False,
            "interaction_type": "complaint",
        }
    )
    for trace in (True, False):
        batch = server.post("/v1/decisions/batch", {"requests": items, "include_trace": trace})
        assert batch.status_code == 200, batch.text
        for item, decided in zip(items, batch.json()["decisions"], strict=True):
            single = server.post("/v1/decisions", item).json()
            assert decided["treatments"] == single["treatments"]
            assert (decided["reason"], decided["segment"]) == (single["reason"], single["segment"])
            if trace:
                assert decided["trace"] == single["trace"]
            else:
                assert "trace" not in decided
