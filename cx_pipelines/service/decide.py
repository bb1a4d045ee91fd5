"""One decision: check the request against the strategy, read the customer, decide, and
build the answer and its decision-log line (INTERFACES.md §4). No FastAPI here.

A batch (:func:`decide_batch`) reads its customers' records in one store round trip and
their contacts in one more (``recent_contact_classes``: each contact as what the contact
rules read of it), hands the engine every contact history as columns, and renders each
decision's JSON once (the answer is the log line without its trace); the answers and
lines equal :func:`decide`'s one by one."""

from __future__ import annotations

import datetime as dt
import functools
import math
import os
import time
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import orjson

from cx_pipelines.intelligence import (
    CHANNEL_ATTRIBUTE,
    UNKNOWN_ATTRIBUTE,
    UNKNOWN_CUSTOMER,
    Request,
    decide_customer,
    decide_many,
)
from cx_pipelines.intelligence.columns import history_subset
from cx_pipelines.online_store import (
    HISTORY_DAYS,
    Contact,
    ContactClasses,
    StoreUnavailable,
    class_columns,
    contact_classes,
    contact_history,
    recent_contact_classes,
)
from cx_pipelines.service.schemas import DecisionRequest
from cx_pipelines.service.state import Deployment, ServiceState

SERVICE_CAMPAIGN = "realtime"  # the campaign id of service decisions and their responses
RESERVED = {"customer_id", CHANNEL_ATTRIBUTE, UNKNOWN_ATTRIBUTE}
_TYPES = {"number": (int, float), "string": (str,), "boolean": (bool,), "date": (str,)}


@dataclass(frozen=True)
class Decided:
    answer: dict[str, Any]
    line: bytes
    contact: Contact | None
    body: bytes  # the answer's JSON (rendered with the line, see :func:`_answer_and_line`)


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


def _uuid4() -> str:
    """``str(uuid.uuid4())`` without building a UUID object (a quarter of the time)."""
    raw = bytearray(os.urandom(16))
    raw[6] = raw[6] & 0x0F | 0x40  # version 4
    raw[8] = raw[8] & 0x3F | 0x80  # RFC 4122 variant
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


class _Lookup(NamedTuple):  # a tuple: a batch makes one per request
    stored: dict[str, Any] | None
    problem: str | None
    history: list[dict[str, Any]]
    snapshot: dict[str, Any] | None
    versions: dict[str, str]  # the snapshot's model versions (shared, never changed)


def _lookups(
    state: ServiceState, deployment: Deployment, customer_ids: list[str], now: float
) -> list[_Lookup]:
    """The stored record, contact history and snapshot of each customer (two round trips)."""
    found = state.customers(customer_ids)
    known = [c for c, (stored, problem) in found.items() if stored is not None and not problem]
    contacts: dict[str, list] = {}
    failed = False
    if known:
        try:
            contacts = state.store.contacts_many(known)
        except StoreUnavailable as error:
            state.components["store"].report(False, str(error))
            failed = True
    lookups = []
    snapshots: dict[str | None, tuple[dict[str, Any] | None, dict[str, str]]] = {}
    for customer_id in customer_ids:
        stored, problem = found[customer_id]
        if failed and stored is not None:
            problem = "store_unavailable"
        history = contact_history(contacts.get(customer_id, ()), now=now)
        generation = stored["generation"] if stored else None
        if generation not in snapshots:
            snapshot = state.snapshot_of(generation) if stored else deployment.snapshot
            versions = dict((snapshot or {}).get("model_versions") or {})
            snapshots[generation] = (snapshot, versions)
        snapshot, versions = snapshots[generation]
        lookups.append(_Lookup(stored, problem, history, snapshot, versions))
    return lookups


def _entry(
    request: DecisionRequest, record: dict, found: _Lookup, decision_id: str, decided_at: str
) -> dict[str, Any]:
    """The decision-log entry of one decision (INTERFACES.md §4), its ``trace`` last."""
    top = record["treatments"][0] if record["treatments"] else None
    terms = (top or {}).get("terms", {})
    return {
        "decision_id": decision_id,
        "customer_id": request.customer_id,
        "channel": request.channel,
        "interaction_type": record["interaction_type"],
        "treatment": record["treatment"],
        "offer_type": record["offer_type"],
        "rank": top["rank"] if top else None,
        "campaign_id": SERVICE_CAMPAIGN,
        "p_response": terms.get("propensity"),
        "uplift": terms.get("uplift"),
        "selection_probability": 1.0,  # the strategy's choice is deterministic
        "decided_at": decided_at,
        "strategy_hash": record["strategy_hash"],
        "model_versions": record["model_versions"],
        "event": record["event"],
        "segment": record["segment"],
        "test_group": record["test_group"],
        "known_customer": found.stored is not None,
        "reason": found.problem
        if found.problem
        else (UNKNOWN_CUSTOMER if found.stored is None else None),
        "snapshot": (found.snapshot or {}).get("generation"),
        "treatments": record["treatments"],
        "trace": record["trace"],
    }


def decided_at(now: float) -> str:
    """``datetime.fromtimestamp(now, UTC).isoformat(timespec="microseconds")``, the text
    of each second made once (a third of the time; ``now`` rounded to the microsecond
    half to even, as datetime does; tests/service/test_single_rendering.py holds the two
    equal)."""
    fraction, second = math.modf(now)
    micro = round(fraction * 1e6)
    if micro >= 1_000_000:
        micro -= 1_000_000
        second += 1
    return f"{_second_text(int(second))}.{micro:06d}+00:00"


@functools.lru_cache(maxsize=4)
def _second_text(second: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))


def _contact(
    request: DecisionRequest, record: dict, found: _Lookup, decision_id: str, now: float
) -> Contact | None:
    """The contact a decision makes (None: not recorded, nothing shown or unknown customer)."""
    if request.record_contact and record["treatments"] and found.stored is not None:
        treatment = record["treatments"][0]["treatment"]
        return Contact(decision_id, request.customer_id, request.channel, treatment, now)
    return None


_NO_TRACE = b',"trace":null}\n'


def _answer_and_line(entry: dict[str, Any], include_trace: bool) -> tuple[bytes, bytes]:
    """The answer's JSON and the decision-log line of ``entry``, rendered once (it loses
    its ``trace``): the entry without its trace is the answer, and as ``trace`` comes
    last, the line is that JSON with the trace appended, the bytes ``orjson.dumps(entry,
    option=OPT_APPEND_NEWLINE)`` would give; a traced answer is the line without its
    newline."""
    dumps, option = orjson.dumps, orjson.OPT_SERIALIZE_NUMPY
    trace = entry.pop("trace")
    answer = dumps(entry, option=option)
    if trace is None:
        return answer, answer[:-1] + _NO_TRACE
    line = b"".join((answer[:-1], b',"trace":', dumps(trace, option=option), b"}\n"))
    return (line[:-1] if include_trace else answer), line


def _decided(request: DecisionRequest, record: dict, found: _Lookup, now: float) -> Decided:
    decision_id = _uuid4()
    entry = _entry(request, record, found, decision_id, decided_at(now))
    trace = entry["trace"]
    body, line = _answer_and_line(entry, request.include_trace)
    if request.include_trace and trace is not None:
        entry["trace"] = trace  # last again, as in the line
    contact = _contact(request, record, found, decision_id, now)
    return Decided(entry, line, contact, body)


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
    found = _lookups(state, deployment, [customer_id], now)[0]
    record = decide_customer(
        deployment.strategy,
        event=request.event or state.settings.event,
        customer=None if found.stored is None else found.stored["customer"],
        customer_id=customer_id,
        accounts=() if found.stored is None else found.stored["accounts"],
        channel=request.channel,
        interaction_type=request.interaction_type,
        contact_history=found.history,
        model_versions=found.versions,
        context=_context(deployment, request),
    )
    return _decided(request, record, found, now)


@dataclass(frozen=True)
class DecidedBatch:
    """A batch's answer (its JSON), decision-log lines and contacts, in request order."""

    body: bytes
    lines: list[bytes]
    contacts: list[Contact]


def _contact_classes(deployment: Deployment) -> ContactClasses:
    """What of a contact the strategy's contact rules read (``online_store/classes.py``):
    the channels its caps name and its cap periods and decline window (none: it reads no
    contact), each at most the history's 366 days. Older contacts are left out of a
    batch's history, which changes no answer."""
    strategy = deployment.strategy
    cached = strategy.cache.get("service_contact_classes")
    if cached is None:
        periods = [cap.period_days for cap in strategy.contact_caps]
        if strategy.decline_limit:
            periods.append(strategy.decline_limit[1])
        cached = contact_classes(
            [cap.channel for cap in strategy.contact_caps],
            [min(period, HISTORY_DAYS) for period in periods],
        )
        strategy.cache["service_contact_classes"] = cached
    return cached


def _batch_lookups(
    state: ServiceState, deployment: Deployment, customer_ids: list[str], now: float
) -> tuple[list[_Lookup], tuple[dict[str, np.ndarray], np.ndarray] | None]:
    """:func:`_lookups` for a batch: the stored records (one round trip) and every
    request's contact history as columns (one more), not as rows per request."""
    found = state.customers(customer_ids)
    known = [c for c, (stored, problem) in found.items() if stored is not None and not problem]
    summaries: list = []
    failed = False
    classes = _contact_classes(deployment)
    if known and classes.cuts:
        try:  # each contact as what the contact rules read of it (one row per customer)
            summaries = recent_contact_classes(state.store, known, now, classes)
        except StoreUnavailable as error:
            state.components["store"].report(False, str(error))
            failed = True
    lookups = []
    snapshots: dict[str | None, tuple[dict[str, Any] | None, dict[str, str]]] = {}
    for customer_id in customer_ids:
        stored, problem = found[customer_id]
        if failed and stored is not None:
            problem = "store_unavailable"
        generation = stored["generation"] if stored else None
        if generation not in snapshots:
            snapshot = state.snapshot_of(generation) if stored else deployment.snapshot
            versions = dict((snapshot or {}).get("model_versions") or {})
            snapshots[generation] = (snapshot, versions)
        snapshot, versions = snapshots[generation]
        lookups.append(_Lookup(stored, problem, [], snapshot, versions))
    requested = [c if found[c][0] is not None and not found[c][1] else None for c in customer_ids]
    return lookups, class_columns(summaries, requested, classes)


def _uuid4s(count: int) -> list[str]:
    """``count`` random version-4 UUIDs as text (one ``os.urandom`` call)."""
    raw = np.frombuffer(os.urandom(16 * count), dtype=np.uint8).reshape(count, 16).copy()
    raw[:, 6] = raw[:, 6] & 0x0F | 0x40  # version 4
    raw[:, 8] = raw[:, 8] & 0x3F | 0x80  # RFC 4122 variant
    h = raw.tobytes().hex()
    return [
        f"{h[i : i + 8]}-{h[i + 8 : i + 12]}-{h[i + 12 : i + 16]}-{h[i + 16 : i + 20]}-"
        f"{h[i + 20 : i + 32]}"
        for i in range(0, 32 * count, 32)
    ]


def _rendered(
    requests: list[DecisionRequest], records: list[dict], found: list[_Lookup], now: float
) -> DecidedBatch:
    """Each decision's log line and answer rendered once (:func:`_answer_and_line`), and
    the batch's answer those answers joined, the bytes ``orjson.dumps({"decisions":
    [...]})`` would give."""
    at = decided_at(now)
    answers, lines, contacts = [], [], []
    for request, record, lookup, decision_id in zip(
        requests, records, found, _uuid4s(len(requests)), strict=True
    ):
        entry = _entry(request, record, lookup, decision_id, at)
        answer, line = _answer_and_line(entry, request.include_trace)
        lines.append(line)
        answers.append(answer)
        contact = _contact(request, record, lookup, decision_id, now)
        if contact is not None:
            contacts.append(contact)
    return DecidedBatch(b"".join((b'{"decisions":[', b",".join(answers), b"]}")), lines, contacts)


def decide_batch(
    state: ServiceState,
    deployment: Deployment,
    requests: list[DecisionRequest],
    *,
    trace: bool,
    now: float | None = None,
) -> DecidedBatch:
    """Decide many requests through the vectorised batch evaluator (one pass per event,
    channel and interaction type); the records equal :func:`decide`'s one by one."""
    now = time.time() if now is None else now
    found, history = _batch_lookups(state, deployment, [r.customer_id for r in requests], now)
    by_event: dict[str, list[int]] = {}
    for index, request in enumerate(requests):
        by_event.setdefault(request.event or state.settings.event, []).append(index)
    records: list[dict[str, Any] | None] = [None] * len(requests)
    for event, members in by_event.items():
        items = [
            Request(
                customer_id=requests[i].customer_id,
                customer=None if found[i].stored is None else found[i].stored["customer"],
                accounts=() if found[i].stored is None else found[i].stored["accounts"],
                channel=requests[i].channel,
                interaction_type=requests[i].interaction_type,
                context=_context(deployment, requests[i]) if requests[i].context else None,
            )
            for i in members
        ]
        decided = decide_many(
            deployment.strategy,
            event=event,
            requests=items,
            model_versions=[found[i].versions for i in members],
            trace=trace,
            contact_columns=_event_history(history, members, len(requests)),
        )
        for index, record in zip(members, decided, strict=True):
            records[index] = record
    return _rendered(requests, records, found, now)  # type: ignore[arg-type]


def _event_history(
    history: tuple[dict[str, np.ndarray], np.ndarray] | None, members: list[int], size: int
) -> tuple[dict[str, np.ndarray], np.ndarray] | None:
    """The history columns of one event's requests (``members`` among ``size``)."""
    if history is None or len(members) == size:
        return history
    columns, rows = history_subset(history, members, size)
    return None if columns is None else (columns, rows)
