"""The decision service's endpoints through a real uvicorn server on loopback."""

from __future__ import annotations

import csv
import json

import pytest
import requests
import support

from cx_pipelines.service.decision_log import read_decision_log

LOG_FIELDS = {
    "decision_id",
    "customer_id",
    "channel",
    "interaction_type",
    "treatment",
    "offer_type",
    "rank",
    "selection_probability",
    "decided_at",
    "strategy_hash",
    "model_versions",
    "treatments",
    "trace",
}


def test_a_decision_is_the_customers_record_with_trace_and_id(server, prepared):
    answer = server.post("/v1/decisions", {"customer_id": "5", "channel": "email"})
    assert answer.status_code == 200
    body = answer.json()
    assert body["customer_id"] == "5" and body["channel"] == "email"
    assert body["known_customer"] is True and body["reason"] is None
    assert body["model_versions"] == {"cx_propensity": "3", "cx_uplift": "2", "cx_attrition": "1"}
    assert body["treatments"] and body["treatments"][0]["treatment"] == body["treatment"]
    assert set(body["treatments"][0]["terms"]) >= {"propensity", "value", "margin", "lever"}
    assert body["trace"]["content_hash"] == body["strategy_hash"]
    steps = {step["mechanism"]: step for step in body["trace"]["steps"]}
    assert steps["credit_card_model"]["version"] == "3"
    logged = {e["decision_id"]: e for e in read_decision_log(prepared.home / "decision_log")}
    entry = logged[body["decision_id"]]
    assert set(entry) >= LOG_FIELDS
    assert entry["trace"] == body["trace"] and entry["treatments"] == body["treatments"]


def test_the_channel_being_decided_supplies_the_arbitration_terms(server):
    email = server.post("/v1/decisions", {"customer_id": "9", "channel": "email"}).json()
    web = server.post("/v1/decisions", {"customer_id": "9", "channel": "web"}).json()
    values = {
        channel: {s["mechanism"]: s["value"] for s in answer["trace"]["steps"]}
        for channel, answer in (("email", email), ("web", web))
    }
    assert values["email"]["credit_card_model"] != values["web"]["credit_card_model"]


def test_an_unknown_customer_gets_the_fallback_with_that_reason(server):
    body = server.post(
        "/v1/decisions", {"customer_id": "no-such-customer", "channel": "web"}
    ).json()
    assert body["known_customer"] is False and body["reason"] == "unknown_customer"
    assert body["treatment"] == "general_information"
    filtered = {f["treatment"]: f["reason"] for f in body["trace"]["policy_filters"]}
    assert set(filtered.values()) <= {"unknown_customer"}


def test_batch_decides_each_request_in_order(server):
    items = [{"customer_id": str(i), "channel": c} for i in (1, 2, 3) for c in ("web", "branch")]
    answer = server.post("/v1/decisions/batch", {"requests": items, "include_trace": False})
    assert answer.status_code == 200
    decisions = answer.json()["decisions"]
    assert [(d["customer_id"], d["channel"]) for d in decisions] == [
        (i["customer_id"], i["channel"]) for i in items
    ]
    assert all("trace" not in d for d in decisions)
    assert len({d["decision_id"] for d in decisions}) == len(items)


@pytest.mark.parametrize(
    ("key", "status"),
    [(None, 401), ("wrong", 401), ("respond", 403), ("admin", 403), ("decide", 200)],
)
def test_decisions_need_a_key_with_the_decide_scope(server, key, status):
    headers = {"X-API-Key": "not-a-key"} if key == "wrong" else support.headers(key) if key else {}
    answer = requests.post(
        server.url + "/v1/decisions", json={"customer_id": "1", "channel": "web"}, headers=headers
    )
    assert answer.status_code == status


def test_scopes_of_responses_and_admin(server):
    body = {
        "decision_id": "00000000-0000-0000-0000-000000000000",
        "customer_id": "1",
        "outcome": "responded",
    }
    assert server.post("/v1/responses", body, key="decide").status_code == 403
    assert server.post("/v1/admin/reload", {}, key="decide").status_code == 403
    assert server.post("/v1/admin/reload", {}, key="admin").status_code == 200
    assert server.post("/v1/responses", body, key="respond").status_code == 422  # no such decision


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"channel": "web"}, ["body", "customer_id"]),
        ({"customer_id": "1", "channel": "fax"}, ["body", "channel"]),
        (
            {"customer_id": "1", "channel": "web", "interaction_type": "x"},
            ["body", "interaction_type"],
        ),
        ({"customer_id": "1", "channel": "web", "event": "nope"}, ["body", "event"]),
        (
            {"customer_id": "1", "channel": "web", "context": {"age": "old"}},
            ["body", "context", "age"],
        ),
        (
            {"customer_id": "1", "channel": "web", "context": {"p_savings": 1}},
            ["body", "context", "p_savings"],
        ),
        ({"customer_id": "1", "channel": "web", "surprise": 1}, ["body", "surprise"]),
        ({"customer_id": "a b", "channel": "web"}, ["body", "customer_id"]),
    ],
)
def test_bad_requests_are_422_naming_the_field(server, body, field):
    answer = server.post("/v1/decisions", body)
    assert answer.status_code == 422
    assert field in [error["loc"] for error in answer.json()["detail"]]


def test_batch_errors_name_the_item(server):
    items = [{"customer_id": "1", "channel": "web"}, {"customer_id": "2", "channel": "fax"}]
    answer = server.post("/v1/decisions/batch", {"requests": items})
    assert answer.status_code == 422
    assert ["body", "requests", 1, "channel"] in [e["loc"] for e in answer.json()["detail"]]


def test_bodies_and_batches_over_the_limits_are_413(server):
    items = [{"customer_id": "1", "channel": "web"}] * 1001
    assert server.post("/v1/decisions/batch", {"requests": items}).status_code == 413
    huge = {"customer_id": "1", "channel": "web", "context": {"customer_type": "x" * 2_000_000}}
    assert server.post("/v1/decisions", huge).status_code == 413


def test_a_declined_response_counts_against_the_treatment_and_reaches_the_inbox(server, prepared):
    decision = server.post("/v1/decisions", {"customer_id": "12", "channel": "web"}).json()
    report = {"decision_id": decision["decision_id"], "customer_id": "12", "outcome": "declined"}
    assert server.post("/v1/responses", report, key="respond").status_code == 202
    profile = server.get("/v1/customers/12/profile", headers=support.headers("decide")).json()
    declined = [c for c in profile["contacts"] if c["declined"]]
    assert [(c["channel"], c["treatment"]) for c in declined] == [("web", decision["treatment"])]
    rows = [
        row
        for path in (prepared.home / "inbox").glob("service-responses-*.csv")
        for row in csv.DictReader(path.open())
    ]
    mine = [row for row in rows if row["contact_id"] == decision["decision_id"]]
    assert len(mine) == 1 and mine[0]["outcome"] == "not_responded" and mine[0]["channel"] == "web"


def test_the_profile_leaves_personal_data_out(server):
    answer = server.get("/v1/customers/3/profile", headers=support.headers("decide"))
    assert answer.status_code == 200
    attributes = answer.json()["attributes"]
    assert "annual_income" not in attributes and "age" not in attributes
    assert "scores.attrition_risk" in attributes
    assert server.get("/v1/customers/nobody/profile", headers=support.headers()).status_code == 404
    assert server.get("/v1/customers/3/profile").status_code == 401


def test_health_ready_and_docs(server):
    assert server.get("/health").json() == {"status": "ok"}
    ready = server.get("/ready").json()
    assert ready["ready"] and ready["strategy"] == "next_best_action" and ready["snapshot"]
    assert server.get("/docs").status_code == 200
    paths = server.get("/openapi.json").json()["paths"]
    assert {"/v1/decisions", "/v1/decisions/batch", "/v1/responses"} <= set(paths)


def test_nothing_personal_in_the_server_output(server, prepared):
    server.post("/v1/decisions", {"customer_id": "4", "channel": "web"})
    output = server.log()
    customers = support.warehouse_frame(prepared.home, "customers")
    for value in list(customers["email"]) + [str(int(v)) for v in customers["annual_income"]]:
        assert value not in output
    assert "annual_income" not in output


def test_rate_limit_per_key(prepared):
    slow = support.start_server(
        prepared.home,
        strategy=prepared.strategy,
        extra={"CX_API_KEYS": support.keys_environment(rate=5)},
    )
    try:
        codes = [
            slow.post("/v1/decisions", {"customer_id": "1", "channel": "web"}).status_code
            for _ in range(12)
        ]
    finally:
        slow.stop()
    assert codes[:5] == [200] * 5 and 429 in codes
    assert json.dumps(codes).count("500") == 0
