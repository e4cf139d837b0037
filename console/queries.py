"""Read-side queries (operator views, simulation state), returning the shared API models."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, Row, and_, func, select, true

from console.db import agents, deployments, events
from console.errors import NotFound
from protocols.console_api import Agent, AgentList, Deployment, DeploymentList, EventPage, StoredEvent

__all__ = [
    "SimDeployment",
    "active_simulations",
    "get_deployment",
    "iso",
    "list_agents",
    "list_deployments",
    "list_events",
    "load_timeline",
]

_DEPLOYMENT_COLUMNS = (
    deployments.c.id,
    deployments.c.plan_id,
    deployments.c.satellite_id,
    deployments.c.mode,
    deployments.c.status,
    deployments.c.speed,
    deployments.c.agent_id,
    deployments.c.created_at,
    deployments.c.updated_at,
    deployments.c.dispatched_at,
    deployments.c.lease_expires_at,
    deployments.c.dispatch_count,
    deployments.c.event_count,
)


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _deployment(row: Row[Any, *tuple[Any, ...]]) -> Deployment:
    return Deployment(
        id=row.id,
        plan_id=row.plan_id,
        satellite_id=row.satellite_id,
        mode=row.mode,
        status=row.status,
        speed_multiplier=row.speed,
        agent_id=row.agent_id,
        created_at=iso(row.created_at) or "",
        updated_at=iso(row.updated_at) or "",
        dispatched_at=iso(row.dispatched_at),
        lease_expires_at=iso(row.lease_expires_at),
        dispatch_count=row.dispatch_count,
        event_count=row.event_count,
    )


def get_deployment(conn: Connection, dep_id: str) -> Deployment:
    row = conn.execute(select(*_DEPLOYMENT_COLUMNS).where(deployments.c.id == dep_id)).first()
    if row is None:
        raise NotFound(f"no deployment {dep_id!r}")
    return _deployment(row)


def list_deployments(
    conn: Connection, *, offset: int = 0, limit: int = 100, status: str | None = None
) -> DeploymentList:
    cond: ColumnElement[bool] = deployments.c.status == status if status is not None else true()
    total = conn.execute(select(func.count()).select_from(deployments).where(cond)).scalar_one()
    rows = conn.execute(
        select(*_DEPLOYMENT_COLUMNS)
        .where(cond)
        .order_by(deployments.c.created_at, deployments.c.id)
        .offset(offset)
        .limit(limit)
    ).all()
    return DeploymentList(
        deployments=[_deployment(r) for r in rows], total=int(total), offset=offset, limit=limit
    )


def list_events(conn: Connection, dep_id: str, *, offset: int = 0, limit: int = 100) -> EventPage:
    if conn.execute(select(deployments.c.id).where(deployments.c.id == dep_id)).first() is None:
        raise NotFound(f"no deployment {dep_id!r}")
    total = conn.execute(select(func.count()).where(events.c.deployment_id == dep_id)).scalar_one()
    rows = conn.execute(
        select(
            events.c.id,
            events.c.event_type,
            events.c.step_id,
            events.c.payload,
            events.c.event_timestamp,
            events.c.created_at,
            events.c.job_id,
            events.c.client_event_id,
            events.c.seq,
            events.c.known_type,
        )
        .where(events.c.deployment_id == dep_id)
        .order_by(events.c.n)
        .offset(offset)
        .limit(limit)
    ).all()
    return EventPage(
        events=[
            StoredEvent(
                id=r.id,
                event_type=r.event_type,
                step_id=r.step_id,
                payload=json.loads(r.payload),
                event_timestamp=r.event_timestamp,
                created_at=iso(r.created_at) or "",
                job_id=r.job_id,
                event_id=r.client_event_id,
                seq=r.seq,
                known_type=bool(r.known_type),
            )
            for r in rows
        ],
        total=int(total),
        offset=offset,
        limit=limit,
    )


@dataclass(frozen=True, slots=True)
class SimDeployment:
    id: str
    speed: float
    started_at: float
    emitted: int


def active_simulations(conn: Connection) -> list[SimDeployment]:
    rows = conn.execute(
        select(
            deployments.c.id, deployments.c.speed, deployments.c.sim_started_at, deployments.c.event_count
        ).where(and_(deployments.c.mode == "simulated", deployments.c.status.in_(("pending", "running"))))
    ).all()
    return [SimDeployment(r.id, r.speed, r.sim_started_at or 0.0, r.event_count) for r in rows]


def load_timeline(conn: Connection, dep_id: str) -> list[dict[str, Any]]:
    row = conn.execute(select(deployments.c.timeline).where(deployments.c.id == dep_id)).first()
    if row is None:
        raise NotFound(f"no deployment {dep_id!r}")
    timeline: list[dict[str, Any]] = json.loads(row.timeline)
    return timeline


def list_agents(conn: Connection) -> AgentList:
    rows = conn.execute(select(agents).order_by(agents.c.registered_at, agents.c.agent_id)).all()
    return AgentList(
        agents=[
            Agent(
                agent_id=r.agent_id,
                satellite_id=r.satellite_id,
                satellite_name=r.satellite_name,
                status=r.status,
                agent_version=r.agent_version,
                user_agent=r.user_agent,
                registered_at=iso(r.registered_at) or "",
                last_heartbeat_at=iso(r.last_heartbeat_at),
                telemetry=json.loads(r.telemetry) if r.telemetry else None,
            )
            for r in rows
        ]
    )
