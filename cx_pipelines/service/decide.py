"""One decision: check the request against the strategy, read the customer, decide, and
build the answer and its decision-log line (INTERFACES.md §4). No FastAPI here."""

from __future__ import annotations

import datetime as dt
import time
import uuid
from dataclasses import dataclass
from typing import Any

import orjson

from cx_pipelines.intelligence import (
    CHANNEL_ATTRIBUTE,
    UNKNOWN_ATTRIBUTE,
    UNKNOWN_CUSTOMER,
    decide_customer,
)
from cx_pipelines.online_store import Contact, StoreUnavailable, contact_history
from cx_pipelines.service.schemas import DecisionRequest
from cx_pipelines.service.state import Deployment, ServiceState

RESERVED = {"customer_id", CHANNEL_ATTRIBUTE, UNKNOWN_ATTRIBUTE}
_TYPES = {"number": (int, float), "string": (str,), "boolean": (bool,), "date": (str,)}


@dataclass(frozen=True)
class Decided:
    answer: dict[str, Any]
    line: bytes
    contact: Contact | None


def field_error(location: list, message: str, kind: str = "value_error") -> dict[str, Any]:
    return {"loc": location, "msg": message, "type": kind}


def request_errors(deployment: Deployment, request: DecisionRequest, at: list) -> list[dict]:
    """What in ``request`` the active strategy cannot decide (each error names its field)."""
    strategy = deployment.strategy
    errors = []
    if request.channel not in strategy.channels:
        errors.append(
            field_error(
                [*at, "channel"], f"unknown channel; one of: {', '.join(strategy.channels)}"
            )
        )
    event = request.event
    if event is not None and event not in strategy.events:
        errors.append(
            field_error([*at, "event"], f"unknown event; one of: {', '.join(strategy.events)}")
        )
    if (
        request.interaction_type is not None
        and request.interaction_type not in strategy.interaction_types
    ):
        errors.append(
            field_error(
                [*at, "interaction_type"],
                f"unknown interaction type; one of: {', '.join(strategy.interaction_types)}",
            )
        )
    for name, value in request.context.items():
        attribute = strategy.attributes.get(name)
        where = [*at, "context", name]
        if attribute is None or attribute.derived or attribute.account_type is not None:
            errors.append(field_error(where, "not an input attribute of the strategy"))
        elif name in RESERVED:
            errors.append(field_error(where, "set by the service, not by the caller"))
        elif value is not None:
            kind = str(getattr(attribute.value_type, "value", attribute.value_type))
            allowed = _TYPES[kind]
            if isinstance(value, bool) and kind != "boolean" or not isinstance(value, allowed):
                errors.append(field_error(where, f"expected a {kind}", "type_error"))
            elif kind == "date":
                try:
                    dt.date.fromisoformat(value)
                except ValueError:
                    errors.append(field_error(where, "expected a date YYYY-MM-DD", "type_error"))
    return errors


def _context(deployment: Deployment, request: DecisionRequest) -> dict[str, Any]:
    values = {}
    for name, value in request.context.items():
        kind = str(getattr(deployment.strategy.attributes[name].value_type, "value", ""))
        if kind == "date" and value is not None:
            value = dt.date.fromisoformat(value)
        elif kind == "number" and value is not None:
            value = float(value)
        values[name] = value
    return values


def decide(
    state: ServiceState,
    deployment: Deployment,
    request: DecisionRequest,
    *,
    now: float | None = None,
) -> Decided:
    """Decide one request with ``deployment`` (checked by :func:`request_errors` first)."""
    now = time.time() if now is None else now
    customer_id = str(request.customer_id)
    stored, problem = state.customer(customer_id)
    history = []
    if stored is not None and problem is None:
        try:
            history = contact_history(state.store.contacts(customer_id), now=now)
        except StoreUnavailable as error:
            state.components["store"].report(False, str(error))
            problem = "store_unavailable"
    snapshot = state.snapshot_of(stored["generation"]) if stored else deployment.snapshot
    versions = dict((snapshot or {}).get("model_versions") or {})
    event = request.event or state.settings.event
    record = decide_customer(
        deployment.strategy,
        event=event,
        customer=None if stored is None else stored["customer"],
        customer_id=customer_id,
        accounts=() if stored is None else stored["accounts"],
        channel=request.channel,
        interaction_type=request.interaction_type,
        contact_history=history,
        model_versions=versions,
        context=_context(deployment, request),
    )
    decision_id = str(uuid.uuid4())
    reason = problem if problem else (UNKNOWN_CUSTOMER if stored is None else None)
    top = record["treatments"][0] if record["treatments"] else None
    entry = {
        "decision_id": decision_id,
        "customer_id": customer_id,
        "channel": request.channel,
        "interaction_type": record["interaction_type"],
        "treatment": record["treatment"],
        "offer_type": record["offer_type"],
        "rank": top["rank"] if top else None,
        "selection_probability": 1.0,  # the strategy's choice is deterministic
        "decided_at": dt.datetime.fromtimestamp(now, dt.UTC).isoformat(timespec="microseconds"),
        "strategy_hash": record["strategy_hash"],
        "model_versions": record["model_versions"],
        "event": record["event"],
        "segment": record["segment"],
        "test_group": record["test_group"],
        "known_customer": stored is not None,
        "reason": reason,
        "snapshot": (snapshot or {}).get("generation"),
        "treatments": record["treatments"],
        "trace": record["trace"],
    }
    line = orjson.dumps(entry, option=orjson.OPT_APPEND_NEWLINE | orjson.OPT_SERIALIZE_NUMPY)
    if not request.include_trace:
        entry = {key: value for key, value in entry.items() if key != "trace"}
    contact = None
    if request.record_contact and top is not None and stored is not None:
        contact = Contact(decision_id, customer_id, request.channel, top["treatment"], now)
    return Decided(entry, line, contact)
