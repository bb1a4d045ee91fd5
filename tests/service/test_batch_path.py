"""The batch endpoint's own path (one contact read per batch, histories as columns, each
answer rendered once) gives, request by request, the single-decision path's answer and
decision-log line: known, unknown and repeated customers, contact caps, declines and
contacts too old to matter, two events, context attributes, traces on and off, on each
online store."""

from __future__ import annotations

import dataclasses
import json
import random

import numpy as np
import orjson
import pandas as pd
import pytest
import support
from test_online_store import store_url

from cx_pipelines.engine import load_strategy
from cx_pipelines.intelligence import population
from cx_pipelines.online_store import (
    Contact,
    contact_columns,
    contact_history,
    open_store,
    snapshot_records,
)
from cx_pipelines.service.decide import decide, decide_batch
from cx_pipelines.service.schemas import DecisionRequest
from cx_pipelines.service.settings import ServiceSettings
from cx_pipelines.service.state import ServiceState

NOW = 1_800_000_000.0
DAY = 86_400.0
CHANNELS = ("web", "mobile_app", "call_centre", "branch", "atm", "email")
TREATMENTS = ("credit_card_offer", "savings_offer", "service_message", "wealth_review")


def _snapshot(size: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    strategy = load_strategy(support.STRATEGY)
    rng = np.random.default_rng(13)
    frame: dict[str, object] = {"customer_id": [str(i) for i in range(size)]}
    for attribute in strategy.input_attributes(None):
        if attribute.name.startswith("scores."):
            values = rng.uniform(0, 0.3, size).round(6)
            values[rng.random(size) < 0.1] = np.nan
            frame[attribute.name] = values
    frame["customer_type"] = rng.choice(["mass_market", "affluent", "student"], size)
    frame["age"] = rng.integers(16, 90, size).astype(float)
    frame["annual_income"] = rng.uniform(2_000, 250_000, size).round(0)
    frame["tenure_months"] = rng.integers(0, 300, size).astype(float)
    frame["segments.segment"] = rng.choice(["active", "lapsing", "dormant", None], size)
    frame["decision_channel"] = None
    frame["unknown_customer"] = None
    accounts = pd.DataFrame(
        {
            "account_id": np.arange(2 * size),
            "customer_id": np.repeat(frame["customer_id"], 2),
            "account_type": rng.choice(["credit_card", "savings", "mortgage"], 2 * size),
            "balance": rng.uniform(0, 9000, 2 * size).round(2),
            "credit_limit": 5000.0,
        }
    )
    return pd.DataFrame(frame), accounts


def _contacts(size: int) -> list[Contact]:
    """Histories that close channels (caps), suppress treatments (declines) and hold
    contacts older than any window the strategy reads (kept out of a batch's history)."""
    chance = random.Random(5)
    contacts = []
    for number in range(size):
        customer = str(number)
        if number % 5 == 0:  # three recent declines of one treatment
            for k in range(3):
                at = NOW - (k + 1) * 10 * DAY
                contacts.append(
                    Contact(f"x{number}-{k}", customer, "web", "savings_offer", at, True)
                )
        if number % 4 == 1:  # two emails this week close the email channel
            for k in range(2):
                at = NOW - (k + 1) * 2 * DAY
                contacts.append(Contact(f"e{number}-{k}", customer, "email", "savings_offer", at))
        for k in range(chance.randrange(0, 9)):
            days = chance.choice([0.5, 3, 12, 25, 45, 80, 100, 200, 365.5, 400])
            contacts.append(
                Contact(
                    f"r{number}-{k}",
                    customer,
                    chance.choice(CHANNELS),
                    chance.choice(TREATMENTS),
                    NOW - days * DAY,
                    chance.random() < 0.3,
                )
            )
    return contacts


def _requests(size: int) -> list[DecisionRequest]:
    chance = random.Random(8)
    items = []
    for number in range(90):
        customer = str(chance.randrange(size + 5))  # some unknown; many repeated
        item: dict = {"customer_id": customer, "channel": chance.choice(CHANNELS)}
        if number % 7 == 0:
            item["event"] = "periodic_review"
        if number % 9 == 0:
            item["interaction_type"] = "complaint"
        if number % 11 == 0:
            item["context"] = {"customer_type": "affluent", "age": 70}
        if number % 3 == 0:
            item["include_trace"] = False
        if number % 4 == 0:
            item["record_contact"] = False
        items.append(DecisionRequest.model_validate(item))
    return items


@pytest.fixture(params=["sqlite", "redis", "postgresql"])
def state(request, tmp_path, monkeypatch):
    monkeypatch.setenv("CX_HOME", str(tmp_path))
    url = store_url(request.param, tmp_path)
    store = open_store(url)
    customers, accounts = _snapshot(40)
    store.write_snapshot(
        snapshot_records(customers, accounts), {"model_versions": {"cx_propensity": "3"}}
    )
    store.record_contacts(_contacts(40))
    settings = dataclasses.replace(
        ServiceSettings.from_environment(), strategy_path=support.STRATEGY, store_url=url
    )
    yield ServiceState(settings, store)
    store.close()


def _without(entry: dict, *keys: str) -> dict:
    return {key: value for key, value in entry.items() if key not in keys}


@pytest.mark.parametrize("record_path_below", [0, 1_000])  # batch evaluator / per record
@pytest.mark.parametrize("trace", [True, False])
def test_the_batch_path_answers_and_logs_as_single_decisions(
    state, trace, record_path_below, monkeypatch
):
    monkeypatch.setattr(population, "RECORD_PATH_BELOW", record_path_below)
    deployment = state.deployment
    requests = _requests(40)
    batch = decide_batch(state, deployment, requests, trace=trace, now=NOW)
    answers = json.loads(batch.body)["decisions"]
    assert len(answers) == len(batch.lines) == len(requests)
    assert batch.body == orjson.dumps({"decisions": answers})
    reasons = set()
    for request, answer, line in zip(requests, answers, batch.lines, strict=True):
        single = decide(state, deployment, request, now=NOW)
        logged = json.loads(line)
        assert line == orjson.dumps(logged, option=orjson.OPT_APPEND_NEWLINE)  # trace last
        assert answer["decision_id"] == logged["decision_id"] != single.answer["decision_id"]
        expected_line = json.loads(single.line)
        expected = single.answer
        if not trace:  # an untraced batch: no trace in the answer, null in the log
            expected_line["trace"] = None
            expected = _without(expected, "trace")
        assert _without(logged, "decision_id") == _without(expected_line, "decision_id")
        assert _without(answer, "decision_id") == _without(expected, "decision_id")
        assert ("trace" in answer) == (trace and request.include_trace)
        reasons.update(
            f["reason"] for f in (single.answer.get("trace") or {}).get("policy_filters", [])
        )
    contacts = [json.loads(line) for line in batch.lines]
    shown = [
        (e["decision_id"], e["customer_id"], e["channel"], e["treatment"])
        for e, request in zip(contacts, requests, strict=True)
        if request.record_contact and e["known_customer"] and e["treatment"] is not None
    ]
    assert [(c.contact_id, c.customer_id, c.channel, c.treatment) for c in batch.contacts] == shown
    assert all(c.at == NOW for c in batch.contacts)
    assert any(r.startswith("contact cap") for r in reasons), reasons
    assert any(r.startswith("declined") for r in reasons), reasons


def test_contact_columns_are_each_requests_contact_history():
    contacts = sorted(_contacts(30), key=lambda c: (c.customer_id, c.at))
    rows = [(c.customer_id, c.channel, c.treatment, c.at, int(c.declined)) for c in contacts]
    requested = ["3", None, "3", "7", "nobody", "0", "12", "5"]
    for window in (366, 90, 30):
        columns, owners = contact_columns(rows, requested, now=NOW, window_days=window)
        for position, customer in enumerate(requested):
            mine = [c for c in contacts if c.customer_id == customer]
            expected = contact_history(mine, now=NOW, window_days=window)
            chosen = np.flatnonzero(owners == position)
            got = [
                {
                    name: columns[name][i].item()
                    if name in ("days_ago", "declined")
                    else columns[name][i]
                    for name in columns
                }
                for i in chosen
            ]
            assert got == expected
        assert list(owners) == sorted(owners)  # each request's rows together, in order
    assert contact_columns([], requested, now=NOW) is None
    assert contact_columns(rows, [None, "nobody"], now=NOW) is None
