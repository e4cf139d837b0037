"""The Console API (operator-agent.md section 1) as a FastAPI application."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import FastAPI, Query, Request
from starlette.responses import Response
from starlette.routing import Route

from console import ingest, ops, queries
from console.errors import BadRequest
from console.http import BodyLimit, install_error_handlers, install_openapi, json_response, parse
from console.plans import validate_plan
from console.service import Console
from console.settings import Settings
from console.writer import Statement
from protocols.console_api import (
    AgentEvent,
    AgentList,
    AgentTelemetry,
    BatchAck,
    Capabilities,
    Deployment,
    DeploymentCreate,
    DeploymentCreated,
    DeploymentList,
    ErrorBody,
    EventAck,
    EventBatch,
    EventPage,
    RegisterRequest,
    RegisterResponse,
    TelemetryResponse,
    WorkloadSpec,
)

__all__ = ["create_app"]

_EVENTS = "/api/deployments/{deployment_id}/events"
_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
_AGENT_ID = re.compile(r"^[\x21-\x7e]{1,128}$")


def _h(request: Request, name: str) -> str | None:
    """A request header. Handlers read headers themselves (auth first, then the rest, and cheaper than
    FastAPI's per-request parameter analysis); ``install_openapi`` documents them."""
    return request.headers.get(name)


Offset = Annotated[int, Query(ge=0, le=2**31)]
Limit = Annotated[int, Query(ge=1, le=500)]

_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody, "description": text}
    for code, text in (
        (400, "invalid request"),
        (401, "missing or invalid API key"),
        (403, "key valid, insufficient permission"),
        (404, "not found"),
        (409, "conflict"),
        (413, "body too large"),
        (429, "rate limited (see Retry-After)"),
    )
}


def _agent_id(value: str | None) -> str:
    if value is None:
        raise BadRequest("missing X-Agent-ID header")
    if not _AGENT_ID.match(value):
        raise BadRequest("malformed X-Agent-ID header (1..128 printable ASCII characters)")
    return value


def _dep_id(value: str) -> str:
    if not _ID.match(value):
        raise BadRequest("malformed deployment id")
    return value


def create_app(settings: Settings) -> FastAPI:
    console = Console(settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await console.start()
        try:
            yield
        finally:
            await console.aclose()

    app = FastAPI(title="Operator Console API", version="0.1.0", lifespan=lifespan, responses=_ERRORS)
    app.state.console = console
    install_error_handlers(app)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)

    # --- agent endpoints ---------------------------------------------------------------------------

    @app.post("/api/agent/register", status_code=201, responses={201: {"model": RegisterResponse}})
    async def register(
        request: Request,
    ) -> Response:
        key, agent, ua = _h(request, "x-api-key"), _h(request, "x-agent-id"), _h(request, "user-agent")
        info = await console.authenticate(key)
        agent_id = _agent_id(agent)
        req = await parse(request, RegisterRequest)
        if req.agent_id != agent_id:
            raise BadRequest("agent_id in the body differs from the X-Agent-ID header")
        await console.write(lambda c: ops.register_agent(c, req, info.id, ua))
        body = RegisterResponse(id=agent_id, status="idle", capabilities=console.capabilities())
        return json_response(body, 201)

    @app.get("/api/agent/capabilities", responses={200: {"model": Capabilities}})
    async def capabilities(request: Request) -> Response:
        key = _h(request, "x-api-key")
        await console.authenticate(key)
        return json_response(console.capabilities())

    @app.get(
        "/api/agent/workloads",
        responses={200: {"model": WorkloadSpec}, 204: {"description": "nothing to do"}},
    )
    async def poll(request: Request) -> Response:
        key, agent = _h(request, "x-api-key"), _h(request, "x-agent-id")
        await console.authenticate(key)
        agent_id = _agent_id(agent)
        console.poll_limit.take(agent_id)
        spec = await console.write(lambda c: ops.dispatch_next(c, agent_id, settings.lease_seconds))
        if spec is None:
            return Response(status_code=204)
        spec["lease_expires_at"] = queries.iso(spec["lease_expires_at"])
        return json_response(WorkloadSpec.model_validate(spec))

    async def serve_event(request: Request) -> Response:
        key, agent, idem = _h(request, "x-api-key"), _h(request, "x-agent-id"), _h(request, "idempotency-key")
        await console.authenticate(key)
        agent_id = _agent_id(agent)
        dep_id = _dep_id(request.path_params["deployment_id"])
        if idem is not None and not _AGENT_ID.match(idem):
            raise BadRequest("malformed Idempotency-Key header (1..128 printable ASCII characters)")
        console.event_limit.take(dep_id)
        ev = await parse(request, AgentEvent)
        if console.postgres:  # one pipelined statement (see console.writer.Statement)
            ack = await console.write(
                Statement(*ingest.pg_event_statement(dep_id, ev, agent_id=agent_id, idempotency_key=idem))
            )
        else:
            ack = await console.write(
                lambda c: ingest.add_event(c, dep_id, ev, agent_id=agent_id, idempotency_key=idem)
            )
        return json_response(ack, 200 if ack.duplicate else 201)

    # The hottest route is served by a plain Starlette route (FastAPI's per-request dependency solving
    # for the path parameter cost about 40 us of CPU per event); the FastAPI route below documents it.
    app.router.routes.insert(0, Route(_EVENTS, serve_event, methods=["POST"]))

    @app.post(_EVENTS, status_code=201, responses={201: {"model": EventAck}})
    async def report_event(request: Request, deployment_id: str) -> Response:
        return await serve_event(request)  # not reached: the route above matches first

    @app.post("/api/deployments/{deployment_id}/events/batch", responses={200: {"model": BatchAck}})
    async def report_batch(request: Request, deployment_id: str) -> Response:
        key, agent = _h(request, "x-api-key"), _h(request, "x-agent-id")
        await console.authenticate(key)
        agent_id = _agent_id(agent)
        dep_id = _dep_id(deployment_id)
        console.event_limit.take(dep_id)  # a batch costs one token: it is the sanctioned way to drain
        batch = await parse(request, EventBatch)

        acks = await console.write(
            lambda c: ingest.store_events(c, dep_id, list(batch.events), agent_id=agent_id)
        )
        return Response(ingest.batch_ack_json(acks), media_type="application/json")

    @app.post("/api/agent/telemetry", responses={200: {"model": TelemetryResponse}})
    async def telemetry(request: Request) -> Response:
        key, agent = _h(request, "x-api-key"), _h(request, "x-agent-id")
        info = await console.authenticate(key)
        agent_id = _agent_id(agent)
        console.telemetry_limit.take(agent_id)
        body = await parse(request, AgentTelemetry)
        if body.agent_id is not None and body.agent_id != agent_id:
            raise BadRequest("agent_id in the body differs from the X-Agent-ID header")
        await console.write(lambda c: ops.record_telemetry(c, agent_id, info.id, body))
        return json_response(TelemetryResponse(ok=True))

    # --- operator endpoints --------------------------------------------------------------------------

    @app.post("/api/deployments", status_code=201, responses={201: {"model": DeploymentCreated}})
    async def create_deployment(request: Request) -> Response:
        key = _h(request, "x-api-key")
        await console.authenticate(key, operator=True)
        req = await parse(request, DeploymentCreate)
        timeline = validate_plan(req.plan, "job")
        dep_id = await console.write(
            lambda c: ops.create_deployment(
                c,
                plan=req.plan,
                satellite_id=req.satellite_id,
                mode=req.mode,
                speed=req.speed_multiplier,
                timeline=timeline,
            )
        )
        return json_response(DeploymentCreated(id=dep_id, status="pending"), 201)

    @app.get("/api/deployments", responses={200: {"model": DeploymentList}})
    async def list_deployments(request: Request, offset: Offset = 0, limit: Limit = 100) -> Response:
        key = _h(request, "x-api-key")
        await console.authenticate(key, operator=True)
        page = await console.read(lambda c: queries.list_deployments(c, offset=offset, limit=limit))
        return json_response(page)

    @app.get("/api/deployments/{deployment_id}", responses={200: {"model": Deployment}})
    async def show_deployment(request: Request, deployment_id: str) -> Response:
        key = _h(request, "x-api-key")
        await console.authenticate(key, operator=True)
        dep_id = _dep_id(deployment_id)
        return json_response(await console.read(lambda c: queries.get_deployment(c, dep_id)))

    @app.get("/api/deployments/{deployment_id}/events", responses={200: {"model": EventPage}})
    async def list_events(
        request: Request, deployment_id: str, offset: Offset = 0, limit: Limit = 100
    ) -> Response:
        key = _h(request, "x-api-key")
        await console.authenticate(key, operator=True)
        dep_id = _dep_id(deployment_id)
        page = await console.read(lambda c: queries.list_events(c, dep_id, offset=offset, limit=limit))
        return json_response(page)

    @app.post("/api/deployments/{deployment_id}/cancel", responses={200: {"model": Deployment}})
    async def cancel(request: Request, deployment_id: str) -> Response:
        key = _h(request, "x-api-key")
        await console.authenticate(key, operator=True)
        dep_id = _dep_id(deployment_id)
        await console.write(lambda c: ops.cancel_deployment(c, dep_id))
        return json_response(await console.read(lambda c: queries.get_deployment(c, dep_id)))

    @app.get("/api/agents", responses={200: {"model": AgentList}})
    async def list_agents(request: Request) -> Response:
        key = _h(request, "x-api-key")
        await console.authenticate(key, operator=True)
        return json_response(await console.read(queries.list_agents))

    @app.get("/healthz", responses={200: {"description": "server and database are up"}})
    async def healthz() -> Response:
        await console.ping()
        return Response('{"ok":true}', media_type="application/json")

    agent_routes = (
        ("/api/agent/register", "post"),
        ("/api/agent/workloads", "get"),
        ("/api/deployments/{deployment_id}/events", "post"),
        ("/api/deployments/{deployment_id}/events/batch", "post"),
        ("/api/agent/telemetry", "post"),
    )
    install_openapi(
        app,
        headers={
            **{route: ("X-Agent-ID",) for route in agent_routes},
            ("/api/deployments/{deployment_id}/events", "post"): ("X-Agent-ID", "Idempotency-Key"),
        },
        bodies={
            ("/api/agent/register", "post"): RegisterRequest,
            ("/api/deployments/{deployment_id}/events", "post"): AgentEvent,
            ("/api/deployments/{deployment_id}/events/batch", "post"): EventBatch,
            ("/api/agent/telemetry", "post"): AgentTelemetry,
            ("/api/deployments", "post"): DeploymentCreate,
        },
    )
    return app
