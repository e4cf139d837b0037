"""Event ingest: idempotent, ordered, all-or-nothing storage of agent (and simulator) events.

Runs inside the caller's transaction (the group-commit writer). Every check happens before any write,
so a refusal (a :class:`~console.errors.ConsoleError`) changes nothing.
"""

from __future__ import annotations

import hashlib
import os
import time
from typing import Any

import pydantic_core
from sqlalchemy import Connection, bindparam, func, select

from console.db import deployments, events
from console.errors import BadRequest, Conflict, NotFound
from console.ops import json_text
from protocols.console_api import EVENT_TYPES, STATUS_BY_EVENT, TERMINAL_STATUSES, AgentEvent, EventAck

__all__ = ["add_event", "add_events"]


def _payload_json(payload: dict[str, Any]) -> str:
    """Canonical JSON text of a payload; non-finite numbers (not JSON) are a 400."""
    try:
        text = pydantic_core.to_json(payload)  # fast path (Rust)
    except pydantic_core.PydanticSerializationError:
        text = b"NaN"  # e.g. a lone surrogate from a Python-parsed plan file: take the strict path
    if b"NaN" in text or b"Infinity" in text:  # maybe non-finite numbers, maybe just inside strings
        try:
            return json_text(payload)
        except ValueError:
            raise BadRequest("payload contains a non-finite number (NaN or Infinity is not JSON)") from None
    return text.decode()


def _ack(*, id: str, duplicate: bool, known_type: bool) -> EventAck:
    return EventAck.model_construct(id=id, duplicate=duplicate, known_type=known_type)  # values are ours


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
            acks[i] = _ack(id=sid, duplicate=True, known_type=known)
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
    random_bits = os.urandom(16 * len(fresh))  # one 128-bit public id per new event, drawn at once
    rows: list[tuple[Any, ...]] = []
    ids: dict[str, tuple[str, str]] = {}  # repeats inside one batch: acknowledged like later retries
    for i in fresh:
        ev, cid = evs[i], client_ids[i]
        if cid is not None and cid in ids:
            if ids[cid][1] != hashes[i]:
                raise Conflict(f"event_id {cid!r} is used twice in this batch for different events")
            acks[i] = _ack(id=ids[cid][0], duplicate=True, known_type=ev.type in EVENT_TYPES)
            continue
        if status in TERMINAL_STATUSES:
            raise Conflict(f"deployment {dep_id} is {status}")
        event_id = f"evt-{random_bits[16 * len(rows) : 16 * len(rows) + 16].hex()}"
        if cid is not None:
            ids[cid] = (event_id, hashes[i])
        known = ev.type in EVENT_TYPES
        rows.append(
            (event_id, dep_id, cid, ev.client_seq(), ev.type, ev.job_id, ev.step_id, payloads[i],
             ev.timestamp, now, known, agent_id, hashes[i])
        )  # fmt: skip
        acks[i] = _ack(id=event_id, duplicate=False, known_type=known)
        status = STATUS_BY_EVENT.get(ev.type) or (
            ("running" if simulator else "dispatched") if status == "pending" else status
        )
    _insert_events(conn, rows)
    conn.execute(
        _UPDATE_DEPLOYMENT,
        {"p_dep": dep_id, "p_n": len(rows), "p_now": now, "p_status": status, "p_agent": agent_id},
    )
    return [a for a in acks if a is not None]
