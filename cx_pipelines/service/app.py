"""The decision service's HTTP face (FastAPI): routes, authentication, limits, errors.

``create_app(settings)`` builds the application; ``app_from_environment()`` is the
factory uvicorn's workers call. Access logs are off: the service logs what it does
(deployments, component failures), never customer attributes.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import logging
import os
import time
from contextlib import asynccontextmanager
from typing import Annotated, Any, TypeVar

import orjson
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ValidationError

from cx_pipelines.intelligence import offer_type_of
from cx_pipelines.online_store import StoreUnavailable, contact_history, open_store
from cx_pipelines.service import collector, timing
from cx_pipelines.service.auth import ApiKey, RateLimiter, hash_key, load_keys
from cx_pipelines.service.contacts import ContactWriter, RecordedContacts
from cx_pipelines.service.decide import (
    SERVICE_CAMPAIGN,
    decide,
    decide_batch,
    field_error,
    request_errors,
)
from cx_pipelines.service.decision_log import DecisionLogError, DurableLog
from cx_pipelines.service.schemas import BatchDecisionRequest, DecisionRequest, ResponseReport
from cx_pipelines.service.settings import ServiceSettings
from cx_pipelines.service.state import ServiceState

LOGGER = logging.getLogger("cx_pipelines.service")
PERSONAL = {"age", "annual_income", "birth_year", "email", "first_name", "last_name", "name"}
RESPONSE_COLUMNS = (
    "contact_id",
    "customer_id",
    "campaign_id",
    "offer_type",
    "channel",
    "outcome",
    "revenue",
    "responded_at",
)


class FastJSON(JSONResponse):
    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY)


def _dumped(content: Any) -> bytes:
    return orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY)


def _rendered(content: bytes) -> Response:
    """An answer rendered once by orjson (what :class:`FastJSON` would send, without
    FastAPI's ``jsonable_encoder`` walk over every nested value)."""
    return Response(content, media_type="application/json")


class DecisionRoutes:
    """ASGI middleware: ``POST /v1/decisions`` and ``/v1/decisions/batch`` answered
    straight from the ASGI messages, without FastAPI's routing, dependency solving and
    Request objects (~0.1 ms of CPU per request, a sixth of a single decision's cost).
    The same :class:`Service` methods serve the FastAPI routes, which stay declared for
    the OpenAPI docs; errors are the same JSON as FastAPI's handlers give. It stands in
    front of Starlette's middleware stack (:class:`ServiceApp`)."""

    ROUTES = {"/v1/decisions": "decide_one", "/v1/decisions/batch": "decide_many"}

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send):
        name = self.ROUTES.get(scope.get("path", "")) if scope["type"] == "http" else None
        if name is None or scope["method"] != "POST":
            return await self.app(scope, receive, send)
        header = authorization = ""
        for key, value in scope["headers"]:
            if key == b"x-api-key":
                header = value.decode("latin-1")
            elif key == b"authorization":
                authorization = value.decode("latin-1")
        chunks = []
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        service: Service = scope["app"].state.service
        status, extra = 200, ()
        try:
            content = await getattr(service, name)(body, header, authorization)
        except RequestValidationError as error:
            status, content = 422, _dumped({"detail": _validation_details(error)})
        except HTTPException as error:
            status, content = error.status_code, _dumped({"detail": error.detail})
            added = (error.headers or {}).items()
            extra = tuple((k.lower().encode(), v.encode()) for k, v in added)
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(content)).encode()),
            *extra,
        ]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": content})


class ServiceApp(FastAPI):
    """FastAPI with :class:`DecisionRoutes`, behind :class:`BodyLimit`, in front of its
    middleware stack: a decision passes none of Starlette's and FastAPI's middleware
    (error, exception-telemetry and body-limit layers, ~10 µs of CPU a request). An
    unexpected error in a decision reaches uvicorn, which answers the same 500 as
    Starlette's error middleware (``Internal Server Error``, plain text) and logs it."""

    def __init__(self, *, max_body_bytes: int, **options: Any) -> None:
        super().__init__(**options)
        self.max_body_bytes = max_body_bytes

    def build_middleware_stack(self):
        return BodyLimit(DecisionRoutes(super().build_middleware_stack()), self.max_body_bytes)


class BodyLimit:
    """ASGI middleware: 413 for a body larger than ``limit`` bytes (declared or streamed)."""

    def __init__(self, app, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        for name, value in scope.get("headers", ()):
            if name == b"content-length" and value.isdigit() and int(value) > self.limit:
                return await _too_large(send, self.limit)
        received = 0

        async def limited():
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.limit:
                raise _BodyTooLarge
            return message

        try:
            await self.app(scope, limited, send)
        except _BodyTooLarge:
            await _too_large(send, self.limit)


class _BodyTooLarge(Exception):
    pass


async def _too_large(send, limit: int) -> None:
    body = orjson.dumps({"detail": f"request body larger than {limit} bytes"})
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _logged(log: DurableLog, lines: list[bytes], payloads: list) -> None:
    """Append durably; a decision that could not be logged is not given out (503)."""
    try:
        await log.append(lines, payloads)
    except DecisionLogError as error:
        raise HTTPException(503, "the decision could not be recorded; retry") from error


Body = TypeVar("Body", bound=BaseModel)


def _body_schema(name: str) -> dict[str, Any]:
    """The OpenAPI request body of a route that parses its body itself (see :func:`_parsed`)."""
    schema = {"$ref": f"#/components/schemas/{name}"}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


def _document_bodies(app: FastAPI, *models: type[BaseModel]) -> None:
    """Put the models of self-parsed bodies into the OpenAPI components (FastAPI adds only
    those of declared body parameters)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = generate()
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            for model in models:
                definition = model.model_json_schema(ref_template="#/components/schemas/{model}")
                components.update(definition.pop("$defs", {}))
                components[model.__name__] = definition
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _parsed(body: bytes, model: type[Body]) -> Body:
    """The body validated by pydantic straight from its JSON bytes (one pass, no dict in
    between); errors are FastAPI's 422 with the location under ``body``."""
    try:
        return model.model_validate_json(body)
    except ValidationError as error:
        raise RequestValidationError(
            [{**item, "loc": ("body", *item["loc"])} for item in error.errors(include_url=False)]
        ) from error


def _validation_details(error: RequestValidationError) -> list[dict[str, Any]]:
    return [
        field_error(list(item.get("loc", ())), item.get("msg", ""), item.get("type", ""))
        for item in error.errors()
    ]


def _validation_error(request: Request, error: RequestValidationError) -> FastJSON:
    return FastJSON({"detail": _validation_details(error)}, status_code=422)


def _unprocessable(details: list[dict]) -> HTTPException:
    return HTTPException(status_code=422, detail=details)


class Service:
    """The running service's parts, shared by the routes."""

    def __init__(self, settings: ServiceSettings) -> None:
        self.settings = settings
        self.keys = load_keys(settings.api_keys_file, settings.api_keys_text)
        self._verified: dict[str, ApiKey] = {}  # a key as sent, once its hash was found
        self.limiter = RateLimiter()
        # contacts are written by a thread (batched), not in the request; reads add the
        # ones still pending (service/contacts.py)
        self.contacts = ContactWriter(
            open_store(settings.store_url),
            flush_ms=settings.contact_flush_ms,
            max_pending=settings.contact_max_pending,
        )
        self.store = RecordedContacts(open_store(settings.store_url), self.contacts)
        self.state = ServiceState(settings, self.store)
        sync = {"sync": settings.log_sync, "fsync_ms": settings.log_fsync_ms}
        self.log = DurableLog(settings.decision_log_dir, after_write=self.contacts.record, **sync)
        self.responses = DurableLog(
            settings.decision_log_dir / "responses", after_write=self._write_inbox, **sync
        )

    def _write_inbox(self, rows: list[dict]) -> None:
        """Hand responses to the feedback loop: one CSV per durable group, atomically."""
        folder = self.settings.inbox_dir
        folder.mkdir(parents=True, exist_ok=True)
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=RESPONSE_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        final = folder / f"service-responses-{stamp}-{os.getpid()}-{time.monotonic_ns()}.csv"
        temporary = folder / f".{final.name}.tmp"
        temporary.write_text(buffer.getvalue())
        os.replace(temporary, final)

    def close(self) -> None:
        self.state.stop()
        self.log.close()
        self.responses.close()
        self.contacts.close()  # after the log: every logged contact is written

    def caller(self, request: Request, scope: str, cost: int = 1) -> ApiKey:
        headers = request.headers
        return self.authorise(
            headers.get("x-api-key") or "", headers.get("authorization") or "", scope, cost
        )

    def authorise(self, header: str, authorization: str, scope: str, cost: int = 1) -> ApiKey:
        """The caller's key from its ``X-API-Key`` (or ``Authorization: Bearer``) header:
        401 without a known key, 403 without ``scope``, 429 over its rate."""
        if not header:
            header = authorization[7:] if authorization.lower().startswith("bearer ") else ""
        if not header:
            raise HTTPException(
                401, "missing API key (X-API-Key header)", {"WWW-Authenticate": "ApiKey"}
            )
        key = self._verified.get(header)
        if key is None:
            key = self.keys.get(hash_key(header))
            if key is None:
                raise HTTPException(401, "unknown API key", {"WWW-Authenticate": "ApiKey"})
            self._verified[header] = key  # configured keys only: one entry per key
        if scope not in key.scopes:
            raise HTTPException(403, f"API key {key.name!r} lacks scope {scope!r}")
        wait = self.limiter.allow(key.name, key.rate_per_second or self.settings.default_rate, cost)
        if wait:
            raise HTTPException(
                429, "rate limit exceeded", {"Retry-After": str(max(1, round(wait)))}
            )
        return key

    async def decide_one(self, body: bytes, header: str, authorization: str) -> bytes:
        """``POST /v1/decisions``: the answer's JSON, or HTTPException/RequestValidationError."""
        request = _parsed(body, DecisionRequest)
        self.authorise(header, authorization, "decide")
        deployment = self.state.deployment
        errors = request_errors(deployment, request, ["body"])
        if errors:
            raise _unprocessable(errors)
        decided = decide(self.state, deployment, request)
        await _logged(self.log, [decided.line], [decided.contact] if decided.contact else [])
        return decided.body

    async def decide_many(self, body: bytes, header: str, authorization: str) -> bytes:
        """``POST /v1/decisions/batch``: the answer's JSON (the same errors)."""
        batch = _parsed(body, BatchDecisionRequest)
        limit = self.settings.max_batch
        if len(batch.requests) > limit:
            raise HTTPException(413, f"{len(batch.requests)} requests; at most {limit}")
        self.authorise(header, authorization, "decide", cost=len(batch.requests))
        deployment = self.state.deployment
        errors = []
        valid: dict[tuple, bool] = {}  # items without context: checked once per kind
        for index, item in enumerate(batch.requests):
            kind = None if item.context else (item.channel, item.event, item.interaction_type)
            if kind is not None and valid.get(kind):
                continue
            found = request_errors(deployment, item, ["body", "requests", index])
            if kind is not None:
                valid[kind] = not found
            errors += found
        if errors:
            raise _unprocessable(errors)
        with collector.paused():  # a batch's objects die with it (service/collector.py)
            decided = decide_batch(
                self.state, deployment, batch.requests, trace=batch.include_trace
            )
        # a batch leaves no reference cycle (tests/service/test_batch_memory.py): its arrays
        # are freed when it ends, with no collection here (the decision tree's recursive
        # walk was one, holding the batch evaluator's run: ~1.4 MB per 1,000 decisions)
        await _logged(self.log, decided.lines, decided.contacts)
        return decided.body


async def current_service(request: Request) -> Service:
    # async: a plain ``def`` dependency costs a thread-pool round trip per request
    return request.app.state.service


Used = Annotated[Service, Depends(current_service)]


def create_app(settings: ServiceSettings | None = None) -> FastAPI:
    settings = settings or ServiceSettings.from_environment()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        service = Service(settings)
        app.state.service = service
        service.state.start()
        timing.install(service)  # only with CX_SERVICE_TIMING set (diagnosis)
        with collector.tuned(
            young=settings.gc_young,
            older=settings.gc_older,
            switch_interval_ms=settings.switch_interval_ms,
        ):
            yield
        service.close()

    app = ServiceApp(
        title="cx-pipelines decision service",
        version="1",
        description="Next best action for one customer, with its reason trace (SPEC S7).",
        lifespan=lifespan,
        default_response_class=FastJSON,
        max_body_bytes=settings.max_body_bytes,  # outermost: limits every route
        # the service sets up no OpenTelemetry provider; FastAPI's check for one (its
        # native telemetry) costs ~5 µs of CPU on every request
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.add_exception_handler(RequestValidationError, _validation_error)
    _document_bodies(app, DecisionRequest, BatchDecisionRequest)

    @app.post("/v1/decisions", openapi_extra=_body_schema("DecisionRequest"))
    async def decision(request: Request):
        """The customer intelligence record for one customer on one channel."""
        # answered by DecisionRoutes in front of FastAPI; this is the same answer
        svc: Service = request.app.state.service
        headers = request.headers
        return _rendered(
            await svc.decide_one(
                await request.body(), headers.get("x-api-key", ""), headers.get("authorization", "")
            )
        )

    @app.post("/v1/decisions/batch", openapi_extra=_body_schema("BatchDecisionRequest"))
    async def decisions(request: Request):
        """Several decisions in one call (at most CX_SERVICE_MAX_BATCH)."""
        svc: Service = request.app.state.service
        headers = request.headers
        return _rendered(
            await svc.decide_many(
                await request.body(), headers.get("x-api-key", ""), headers.get("authorization", "")
            )
        )

    @app.post("/v1/responses", status_code=202)
    async def response(body: ResponseReport, request: Request, svc: Used):
        """The outcome of a decision (contact_id = decision_id), for the feedback loop."""
        svc.caller(request, "respond")
        try:
            contacts = svc.store.contacts(body.customer_id)
        except StoreUnavailable as error:
            raise HTTPException(503, "online store unavailable; retry") from error
        contact = next((c for c in contacts if c.contact_id == body.decision_id), None)
        if contact is None:
            raise _unprocessable(
                [
                    field_error(
                        ["body", "decision_id"],
                        "no presented decision with this id for this customer",
                    )
                ]
            )
        if body.outcome == "declined":
            try:
                svc.store.mark_declined(body.customer_id, body.decision_id)
            except StoreUnavailable as error:
                raise HTTPException(503, "online store unavailable; retry") from error
        row = {
            "contact_id": body.decision_id,
            "customer_id": body.customer_id,
            "campaign_id": SERVICE_CAMPAIGN,
            "offer_type": offer_type_of(contact.treatment),
            "channel": contact.channel,
            "outcome": "responded" if body.outcome == "responded" else "not_responded",
            "revenue": body.revenue if body.outcome == "responded" else 0.0,
            "responded_at": body.responded_at or dt.datetime.now(dt.UTC).isoformat(),
        }
        line = orjson.dumps(
            {**row, "treatment": contact.treatment}, option=orjson.OPT_APPEND_NEWLINE
        )
        await _logged(svc.responses, [line], [row])
        return {"accepted": True, "contact_id": body.decision_id}

    @app.get("/v1/customers/{customer_id}/profile")
    async def profile(customer_id: str, request: Request, svc: Used):
        """What the service knows about a customer (personal data left out)."""
        svc.caller(request, "decide")
        if len(customer_id) > 64:
            raise _unprocessable([field_error(["path", "customer_id"], "at most 64 characters")])
        record, problem = svc.state.customer(customer_id)
        if record is None:
            status = 503 if problem else 404
            raise HTTPException(status, problem or "unknown customer")
        attributes = {k: v for k, v in record["customer"].items() if k not in PERSONAL}
        try:
            contacts = contact_history(svc.store.contacts(customer_id))
        except StoreUnavailable:
            contacts = None
        return {
            "customer_id": customer_id,
            "snapshot": record["generation"],
            "attributes": attributes,
            "accounts": record["accounts"],
            "contacts": contacts,
        }

    @app.post("/v1/admin/reload")
    async def reload(request: Request, svc: Used):
        """Check the strategy file and the online store now (admin scope)."""
        svc.caller(request, "admin")
        changes = svc.state.refresh()
        return {"changes": changes, "strategy_hash": svc.state.deployment.strategy.content_hash}

    @app.get("/health")
    async def health():
        """Liveness: the process answers."""
        return {"status": "ok"}

    @app.get("/ready")
    async def ready(svc: Used):
        """Readiness: what the service decides with, and what is unavailable since when."""
        state = svc.state
        deployment = state.deployment
        degraded = {
            name: {"detail": c.detail, "since": c.since}
            for name, c in state.components.items()
            if not c.ok
        }
        stale = state.stale_models()
        ok = deployment.snapshot is not None
        body = {
            "ready": ok,
            "status": "ready"
            if ok and not degraded and not stale
            else ("degraded" if ok else "no_snapshot"),
            "strategy": deployment.strategy.name,
            "strategy_hash": deployment.strategy.content_hash,
            "strategy_rejected": (state.rejected or {}).get("reason"),
            "snapshot": deployment.generation,
            "model_versions": deployment.model_versions,
            "champions": state.champions,
            "stale_models": stale,
            "unavailable": degraded,
            "decisions_logged": svc.log.written,
            "decision_log_sync": svc.log.sync,
            "contacts_pending": svc.contacts.pending,
        }
        return FastJSON(body, status_code=200 if ok else 503)

    return app


def app_from_environment() -> FastAPI:
    """The uvicorn factory: settings from the environment (every worker reads the same)."""
    logging.basicConfig(level=os.environ.get("CX_SERVICE_LOG_LEVEL", "INFO"))
    return create_app(ServiceSettings.from_environment())


def run(*, host: str, port: int, workers: int) -> None:
    """Serve with uvicorn: one process, or ``workers`` under :mod:`.workers`' supervisor
    (it accepts and deals each connection to the next ready worker)."""
    import uvicorn

    from cx_pipelines.service.workers import Supervisor

    options = {
        "factory": True,
        "host": host,
        "port": port,
        "access_log": False,
        "server_header": False,  # no "server: uvicorn" on every answer
        "log_level": os.environ.get("CX_SERVICE_LOG_LEVEL", "info").lower(),
        "http": "httptools",
        "loop": "uvloop",
        "timeout_graceful_shutdown": 10,
    }
    application = "cx_pipelines.service.app:app_from_environment"
    if workers == 1:
        uvicorn.run(application, **options)
        return
    code = Supervisor(uvicorn.Config(application, workers=workers, **options), workers).run()
    if code:
        raise SystemExit(code)
