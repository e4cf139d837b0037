"""Database operations. Each takes a Connection inside a transaction; the caller commits.

Used by the server (through the group-commit writer) and by the CLI (directly), so every rule
(dispatch, leases, idempotency, status transitions) lives in exactly one place.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, and_, func, or_, select

from console.db import agents, api_keys, deployments, events
from console.errors import BadRequest, Conflict, NotFound
from protocols.console_api import (
    TERMINAL_STATUSES,
    AgentTelemetry,
    RegisterRequest,
)

__all__ = [
    "KeyInfo",
    "cancel_deployment",
    "count_events",
    "create_deployment",
    "create_key",
    "dispatch_next",
    "hash_key",
    "json_text",
    "list_keys",
    "lookup_key",
    "new_id",
    "record_telemetry",
    "register_agent",
    "revoke_key",
]


def new_id(prefix: str) -> str:
    return f"{prefix}-{os.urandom(16).hex()}"  # 128 random bits, like a UUID4, at a third of the cost


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


json_text = json.JSONEncoder(separators=(",", ":"), ensure_ascii=True, allow_nan=False).encode  # built once


# --- API keys --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KeyInfo:
    id: str
    name: str
    scope: str
    revoked: bool


def create_key(conn: Connection, name: str, scope: str, *, live: bool = True) -> str:
    """Create a key and return it (the only time it exists in clear)."""
    if scope not in ("agent", "operator"):
        raise BadRequest(f"scope must be agent or operator, not {scope!r}")
    if not name or len(name) > 128:
        raise BadRequest("key name must be 1..128 characters")
    if conn.execute(select(api_keys.c.id).where(api_keys.c.name == name)).first() is not None:
        raise Conflict(f"a key named {name!r} already exists")
    key = f"rs_{'live' if live else 'test'}_{secrets.token_hex(16)}"
    conn.execute(
        api_keys.insert().values(
            id=new_id("key"), name=name, key_hash=hash_key(key), scope=scope, created_at=time.time()
        )
    )
    return key


def revoke_key(conn: Connection, name: str) -> None:
    row = conn.execute(select(api_keys.c.id, api_keys.c.revoked_at).where(api_keys.c.name == name)).first()
    if row is None:
        raise NotFound(f"no key named {name!r}")
    if row.revoked_at is None:
        conn.execute(api_keys.update().where(api_keys.c.id == row.id).values(revoked_at=time.time()))


def list_keys(conn: Connection) -> list[KeyInfo]:
    rows = conn.execute(
        select(api_keys.c.id, api_keys.c.name, api_keys.c.scope, api_keys.c.revoked_at).order_by(
            api_keys.c.created_at
        )
    ).all()
    return [KeyInfo(r.id, r.name, r.scope, r.revoked_at is not None) for r in rows]


def lookup_key(conn: Connection, key: str) -> KeyInfo | None:
    row = conn.execute(
        select(api_keys.c.id, api_keys.c.name, api_keys.c.scope, api_keys.c.revoked_at).where(
            api_keys.c.key_hash == hash_key(key)
        )
    ).first()
    if row is None:
        return None
    return KeyInfo(row.id, row.name, row.scope, row.revoked_at is not None)


# --- agents ----------------------------------------------------------------------------------------


def register_agent(conn: Connection, req: RegisterRequest, key_id: str, user_agent: str | None) -> None:
    now = time.time()
    fields: dict[str, Any] = {"key_id": key_id, "updated_at": now, "user_agent": (user_agent or "")[:512]}
    for name in ("satellite_id", "satellite_name", "orbit_altitude_km", "agent_version"):
        value = getattr(req, name)
        if value is not None:
            fields[name] = value
    updated = conn.execute(agents.update().where(agents.c.agent_id == req.agent_id).values(**fields))
    if updated.rowcount == 0:
        conn.execute(
            agents.insert().values(agent_id=req.agent_id, status="idle", registered_at=now, **fields)
        )
    else:
        conn.execute(agents.update().where(agents.c.agent_id == req.agent_id).values(status="idle"))


def record_telemetry(conn: Connection, agent_id: str, key_id: str, telemetry: AgentTelemetry) -> None:
    now = time.time()
    values: dict[str, Any] = {
        "last_heartbeat_at": now,
        "updated_at": now,
        "telemetry": telemetry.model_dump_json(exclude_none=True),
    }
    if telemetry.status is not None:
        values["status"] = telemetry.status
    updated = conn.execute(agents.update().where(agents.c.agent_id == agent_id).values(**values))
    if updated.rowcount == 0:  # telemetry before (or without) register: keep it anyway
        values.setdefault("status", "idle")
        conn.execute(agents.insert().values(agent_id=agent_id, key_id=key_id, registered_at=now, **values))


# --- deployments -----------------------------------------------------------------------------------


def create_deployment(
    conn: Connection,
    *,
    plan: Mapping[str, Any],
    satellite_id: str,
    mode: str,
    speed: float,
    timeline: list[dict[str, Any]],
) -> str:
    plan_data = plan.get("plan_data", {})
    plan_id = plan.get("plan_id")
    if not isinstance(plan_id, str) or not plan_id:
        plan_id = str(plan_data.get("id") or plan_data.get("plan_id") or new_id("plan"))
    try:
        plan_json, timeline_json = json_text(plan_data), json_text(timeline)
    except ValueError:
        raise BadRequest("plan contains a non-finite number (NaN or Infinity is not JSON)") from None
    now = time.time()
    dep_id = new_id("dep")
    conn.execute(
        deployments.insert().values(
            id=dep_id,
            plan_id=plan_id[:256],
            satellite_id=satellite_id,
            mode=mode,
            status="pending",
            speed=speed,
            plan_data=plan_json,
            timeline=timeline_json,
            created_at=now,
            updated_at=now,
            dispatch_count=0,
            event_count=0,
            sim_started_at=now if mode == "simulated" else None,
        )
    )
    return dep_id


def cancel_deployment(conn: Connection, dep_id: str) -> str:
    row = conn.execute(select(deployments.c.status).where(deployments.c.id == dep_id)).first()
    if row is None:
        raise NotFound(f"no deployment {dep_id!r}")
    if row.status in TERMINAL_STATUSES:
        raise Conflict(f"deployment {dep_id} is already {row.status}")
    conn.execute(
        deployments.update()
        .where(deployments.c.id == dep_id)
        .values(status="cancelled", lease_expires_at=None, updated_at=time.time())
    )
    return "cancelled"


def dispatch_next(conn: Connection, agent_id: str, lease_s: float) -> dict[str, Any] | None:
    """Lease the oldest dispatchable live deployment of the agent's satellite to it (or None).

    Dispatchable: pending, or dispatched with an expired lease and no event since (redelivery).
    The conditional UPDATE makes this safe with several Console processes on one database.
    """
    agent = conn.execute(select(agents.c.satellite_id).where(agents.c.agent_id == agent_id)).first()
    if agent is None:
        raise NotFound(f"agent {agent_id!r} is not registered (POST /api/agent/register first)")
    if agent.satellite_id is None:
        return None
    for _attempt in range(5):
        now = time.time()
        dispatchable = and_(
            deployments.c.mode == "live",
            deployments.c.satellite_id == agent.satellite_id,
            or_(
                deployments.c.status == "pending",
                and_(deployments.c.status == "dispatched", deployments.c.lease_expires_at < now),
            ),
        )
        row = conn.execute(
            select(deployments.c.id, deployments.c.plan_id, deployments.c.plan_data, deployments.c.timeline)
            .where(dispatchable)
            .order_by(deployments.c.created_at, deployments.c.id)
            .limit(1)
        ).first()
        if row is None:
            return None
        expires = now + lease_s
        taken = conn.execute(
            deployments.update()
            .where(and_(deployments.c.id == row.id, dispatchable))
            .values(
                status="dispatched",
                agent_id=agent_id,
                dispatched_at=now,
                lease_expires_at=expires,
                updated_at=now,
                dispatch_count=deployments.c.dispatch_count + 1,
            )
        )
        if taken.rowcount == 1:
            return {
                "plan_id": row.plan_id,
                "deployment_id": row.id,
                "satellite_id": agent.satellite_id,
                "plan_data": json.loads(row.plan_data),
                "events": json.loads(row.timeline),
                "mode": "live",
                "lease_expires_at": expires,
            }
    return None


def count_events(conn: Connection, dep_id: str) -> int:
    return int(conn.execute(select(func.count()).where(events.c.deployment_id == dep_id)).scalar_one())
