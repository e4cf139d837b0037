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

import pydantic_core
from sqlalchemy import Connection, and_, bindparam, func, or_, select

from console.db import agents, api_keys, deployments, events
from console.errors import BadRequest, Conflict, NotFound
from protocols.console_api import (
    EVENT_TYPES,
    STATUS_BY_EVENT,
    TERMINAL_STATUSES,
    AgentEvent,
    AgentTelemetry,
    EventAck,
    RegisterRequest,
)

__all__ = [
    "KeyInfo",
    "add_event",
    "add_events",
    "cancel_deployment",
    "count_events",
    "create_deployment",
    "create_key",
    "dispatch_next",
    "hash_key",
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


_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=True, allow_nan=False).encode  # built once


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
        plan_json, timeline_json = _dumps(plan_data), _dumps(timeline)
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


# --- events ----------------------------------------------------------------------------------------


def _payload_json(payload: dict[str, Any]) -> str:
    """Canonical JSON text of a payload; non-finite numbers (not JSON) are a 400."""
    try:
        text = pydantic_core.to_json(payload)  # fast path (Rust)
    except pydantic_core.PydanticSerializationError:
        text = b"NaN"  # e.g. a lone surrogate from a Python-parsed plan file: take the strict path
    if b"NaN" in text or b"Infinity" in text:  # maybe non-finite numbers, maybe just inside strings
        try:
            return _dumps(payload)
        except ValueError:
            raise BadRequest("payload contains a non-finite number (NaN or Infinity is not JSON)") from None
    return text.decode()


def _body_hash(ev: AgentEvent, payload_json: str) -> str:
    # NUL cannot occur in these fields (refused at the edge), so the concatenation is unambiguous
    step = "\x01" if ev.step_id is None else ev.step_id
    body = f"{ev.type}\x00{ev.timestamp}\x00{ev.job_id}\x00{step}\x00{payload_json}"
    return hashlib.sha256(body.encode()).hexdigest()


# Prebuilt statements: compiled once, executed with parameters (the ingest hot path).
_SELECT_DUPLICATES = select(
    events.c.client_event_id, events.c.id, events.c.body_hash, events.c.known_type
).where(
    events.c.deployment_id == bindparam("p_dep"),
    events.c.client_event_id.in_(bindparam("p_ids", expanding=True)),
)
_SELECT_DEPLOYMENT = (
    select(deployments.c.status, deployments.c.mode, deployments.c.agent_id)
    .where(deployments.c.id == bindparam("p_dep"))
    .with_for_update()  # PostgreSQL: serialise with a concurrent cancel; SQLite: BEGIN IMMEDIATE already does
)
_EVENT_COLUMNS = (
    "id", "deployment_id", "client_event_id", "seq", "event_type", "job_id", "step_id", "payload",
    "event_timestamp", "created_at", "known_type", "agent_id", "body_hash",
)  # fmt: skip


_PG_TYPES = ("varchar", "varchar", "varchar", "bigint", "varchar", "varchar", "varchar", "text", "varchar",
             "float8", "bool", "varchar", "varchar")  # fmt: skip
# PostgreSQL: one statement for the whole batch (unnest of one array per column) and ANY(array) lookups;
# both beat executemany / expanding IN by a wide margin on 500-event batches.
_PG_INSERT_EVENTS = (
    f"INSERT INTO events ({', '.join(_EVENT_COLUMNS)}) "
    f"SELECT * FROM unnest({', '.join(f'%s::{t}[]' for t in _PG_TYPES)})"
)
_PG_SELECT_DUPLICATES = (
    "SELECT client_event_id, id, body_hash, known_type FROM events "
    "WHERE deployment_id = %s AND client_event_id = ANY(%s)"
)
_SQLITE_INSERT_EVENTS = f"INSERT INTO events ({', '.join(_EVENT_COLUMNS)}) VALUES ({', '.join('?' * 13)})"


def _insert_events(conn: Connection, rows: list[tuple[Any, ...]]) -> None:
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(_PG_INSERT_EVENTS, tuple(list(col) for col in zip(*rows, strict=True)))
    else:  # executemany straight on the driver: SQLAlchemy's per-row processing dominated batches
        conn.exec_driver_sql(_SQLITE_INSERT_EVENTS, rows)


def _select_duplicates(conn: Connection, dep_id: str, ids: list[str]) -> Any:
    if conn.dialect.name == "postgresql":
        return conn.exec_driver_sql(_PG_SELECT_DUPLICATES, (dep_id, ids))
    return conn.execute(_SELECT_DUPLICATES, {"p_dep": dep_id, "p_ids": ids})


_UPDATE_DEPLOYMENT = (
    deployments.update()
    .where(deployments.c.id == bindparam("p_dep"))
    .values(
        event_count=deployments.c.event_count + bindparam("p_n"),
        updated_at=bindparam("p_now"),
        lease_expires_at=None,  # the agent reported: the lease is fulfilled
        status=bindparam("p_status"),
        agent_id=func.coalesce(deployments.c.agent_id, bindparam("p_agent")),
    )
)


def add_event(
    conn: Connection,
    dep_id: str,
    ev: AgentEvent,
    *,
    agent_id: str | None,
    idempotency_key: str | None = None,
    simulator: bool = False,
) -> EventAck:
    """Store one event exactly once and drive the deployment status from it."""
    return add_events(
        conn, dep_id, [ev], agent_id=agent_id, idempotency_key=idempotency_key, simulator=simulator
    )[0]


def add_events(
    conn: Connection,
    dep_id: str,
    evs: list[AgentEvent],
    *,
    agent_id: str | None,
    idempotency_key: str | None = None,
    simulator: bool = False,
) -> list[EventAck]:
    """Store events (in order) exactly once each; all-or-nothing: every check happens before any write.

    A repeated client event id is acknowledged with the stored id, even on a closed deployment.
    """
    client_ids = (
        [idempotency_key or ev.client_event_id() for ev in evs]
        if len(evs) == 1
        else [ev.client_event_id() for ev in evs]
    )
    payloads = [_payload_json(ev.payload) for ev in evs]
    hashes = [_body_hash(ev, p) for ev, p in zip(evs, payloads, strict=True)]
    acks: list[EventAck | None] = [None] * len(evs)
    known_ids = {cid for cid in client_ids if cid is not None}
    stored: dict[str, tuple[str, str, bool]] = {}
    if known_ids:
        for row in _select_duplicates(conn, dep_id, sorted(known_ids)):
            stored[row.client_event_id] = (row.id, row.body_hash, bool(row.known_type))
    fresh: list[int] = []
    for i, cid in enumerate(client_ids):
        if cid is not None and cid in stored:
            sid, shash, known = stored[cid]
            if shash != hashes[i]:
                raise Conflict(f"event_id {cid!r} was already used for a different event")
            acks[i] = EventAck(id=sid, duplicate=True, known_type=known)
        else:
            fresh.append(i)
    if not fresh:
        return [a for a in acks if a is not None]
    dep = conn.execute(_SELECT_DEPLOYMENT, {"p_dep": dep_id}).first()
    if dep is None:
        raise NotFound(f"no deployment {dep_id!r}")
    if dep.mode == "simulated" and not simulator:
        raise Conflict(f"deployment {dep_id} is simulated: the Console generates its events")
    if agent_id is not None and dep.agent_id is not None and dep.agent_id != agent_id:
        raise Conflict(f"deployment {dep_id} is leased to another agent")
    status = dep.status
    now = time.time()
    rows: list[tuple[Any, ...]] = []
    ids: dict[str, tuple[str, str]] = {}  # repeats inside one batch: acknowledged like later retries
    for i in fresh:
        ev, cid = evs[i], client_ids[i]
        if cid is not None and cid in ids:
            if ids[cid][1] != hashes[i]:
                raise Conflict(f"event_id {cid!r} is used twice in this batch for different events")
            acks[i] = EventAck(id=ids[cid][0], duplicate=True, known_type=ev.type in EVENT_TYPES)
            continue
        if status in TERMINAL_STATUSES:
            raise Conflict(f"deployment {dep_id} is {status}")
        event_id = new_id("evt")
        if cid is not None:
            ids[cid] = (event_id, hashes[i])
        known = ev.type in EVENT_TYPES
        rows.append(
            (event_id, dep_id, cid, ev.client_seq(), ev.type, ev.job_id, ev.step_id, payloads[i],
             ev.timestamp, now, known, agent_id, hashes[i])
        )  # fmt: skip
        acks[i] = EventAck(id=event_id, duplicate=False, known_type=known)
        status = STATUS_BY_EVENT.get(ev.type) or (
            ("running" if simulator else "dispatched") if status == "pending" else status
        )
    _insert_events(conn, rows)
    conn.execute(
        _UPDATE_DEPLOYMENT,
        {"p_dep": dep_id, "p_n": len(rows), "p_now": now, "p_status": status, "p_agent": agent_id},
    )
    return [a for a in acks if a is not None]


def count_events(conn: Connection, dep_id: str) -> int:
    return int(conn.execute(select(func.count()).where(events.c.deployment_id == dep_id)).scalar_one())
