"""Event ingest: idempotent, ordered, all-or-nothing storage of agent (and simulator) events.

Runs inside the caller's transaction (the group-commit writer). Every check happens before any write,
so a refusal (a :class:`~console.errors.ConsoleError`) changes nothing.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Callable
from typing import Any

import pydantic_core
from sqlalchemy import Connection

from console.errors import BadRequest, Conflict, ConsoleError, NotFound, Unavailable
from console.ops import json_text
from console.writer import Recheck
from protocols.console_api import EVENT_TYPES, STATUS_BY_EVENT, TERMINAL_STATUSES, AgentEvent, EventAck

__all__ = [
    "Ack",
    "add_event",
    "add_events",
    "batch_ack_json",
    "pg_event_statement",
    "store_events",
    "to_event_ack",
]


class _PublicIds:
    """``evt-`` + 128 random bits, drawn from the OS 4 KiB at a time.

    One ``os.urandom`` per event released the GIL on the event loop thread, and taking it back from
    the busy writer thread cost tens of microseconds per event under load.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._buf = b""
        self._pos = 0
        os.register_at_fork(after_in_child=self._forget)  # a forked child must not repeat our ids

    def _forget(self) -> None:
        self._lock = threading.Lock()  # another thread may have held it at the fork: it stays held here
        self._buf, self._pos = b"", 0

    def __call__(self) -> str:
        with self._lock:
            if self._pos >= len(self._buf):
                self._buf, self._pos = os.urandom(4096), 0
            buf, i = self._buf, self._pos
            self._pos = i + 16
        return f"evt-{buf[i : i + 16].hex()}"


_public_id = _PublicIds()


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


Ack = tuple[str, bool, bool]
"""(public id, duplicate, known type): an acknowledgement, cheaper than 500 ``EventAck`` models."""


def _ack(*, id: str, duplicate: bool, known_type: bool) -> Ack:
    return (id, duplicate, known_type)


def to_event_ack(ack: Ack) -> EventAck:
    return EventAck.model_construct(id=ack[0], duplicate=ack[1], known_type=ack[2])  # values are ours


def batch_ack_json(acks: list[Ack]) -> bytes:
    """The ``BatchAck`` body for ``acks``, serialised directly (same JSON as the model's)."""
    dups = sum(a[1] for a in acks)
    results = [{"id": i, "duplicate": d, "known_type": k} for i, d, k in acks]
    return pydantic_core.to_json({"results": results, "stored": len(acks) - dups, "duplicates": dups})


def _body_hash(ev: AgentEvent, payload_json: str) -> str:
    # NUL cannot occur in these fields (refused at the edge), so the concatenation is unambiguous
    step = "\x01" if ev.step_id is None else ev.step_id
    body = f"{ev.type}\x00{ev.timestamp}\x00{ev.job_id}\x00{step}\x00{payload_json}"
    return hashlib.sha256(body.encode()).hexdigest()


_EVENT_COLUMNS = (
    "id", "deployment_id", "client_event_id", "seq", "event_type", "job_id", "step_id", "payload",
    "event_timestamp", "created_at", "known_type", "agent_id", "body_hash",
)  # fmt: skip


# PostgreSQL: two statements per request, each one round trip, whatever the batch size. The rows travel
# as one JSON text (serialised in Rust by pydantic-core, parsed in C by PostgreSQL): psycopg dumps list
# parameters (arrays) element by element in Python, which cost more than everything else in a batch.
_PG_CHECK = (
    "SELECT d.status, d.mode, d.agent_id, d.xmin = (SELECT s.xmin FROM deployments s WHERE s.id = d.id) "
    "AS fresh, CASE WHEN %(ids)s::text = '[]' THEN NULL ELSE ("
    "SELECT json_agg(json_build_array(k.cid, e.id, e.body_hash, e.known_type)) "
    "FROM json_array_elements_text(%(ids)s::json) AS k(cid), LATERAL (SELECT id, body_hash, known_type "
    "FROM events WHERE deployment_id = d.id AND client_event_id = k.cid LIMIT 1) e"
    ") END AS dups FROM deployments d WHERE d.id = %(dep)s FOR UPDATE OF d"
)  # the deployment row lock also serialises concurrent requests (and Console processes) on one deployment;
# LATERAL ... LIMIT 1 (not flattened into a join): one unique-index probe per id, where a hash join
# would read every event of the deployment. ``fresh``: the locked row (its newest version, after
# waiting for a concurrent writer) is the version this statement's snapshot sees; if not, that writer
# committed after the snapshot and the lookup may have missed the events it stored.
_PG_COLUMNS = (
    "id varchar, deployment_id varchar, client_event_id varchar, seq bigint, event_type varchar, "
    "job_id varchar, step_id varchar, payload text, event_timestamp varchar, created_at float8, "
    "known_type bool, agent_id varchar, body_hash varchar"
)
_PG_WRITE = (
    f"WITH ins AS (INSERT INTO events ({', '.join(_EVENT_COLUMNS)}) "
    f"SELECT {', '.join(_EVENT_COLUMNS)} FROM ROWS FROM (json_to_recordset(%(rows)s::json) "
    f"AS ({_PG_COLUMNS})) WITH ORDINALITY AS x({', '.join(_EVENT_COLUMNS)}, ord) ORDER BY ord) "
    "UPDATE deployments SET event_count = event_count + %(n)s, updated_at = %(now)s, "
    "lease_expires_at = NULL, status = %(status)s, agent_id = COALESCE(agent_id, %(agent)s) "
    "WHERE id = %(dep)s"
)
_SQLITE_SELECT_DUPLICATES = (
    "SELECT client_event_id, id, body_hash, known_type FROM events "
    "WHERE deployment_id = ? AND client_event_id IN (SELECT value FROM json_each(?))"
)
_SQLITE_SELECT_DEPLOYMENT = "SELECT status, mode, agent_id FROM deployments WHERE id = ?"
_SQLITE_UPDATE_DEPLOYMENT = (
    "UPDATE deployments SET event_count = event_count + ?, updated_at = ?, lease_expires_at = NULL, "
    "status = ?, agent_id = COALESCE(agent_id, ?) WHERE id = ?"
)  # the agent reported: the lease is fulfilled (BEGIN IMMEDIATE serialises writers: no row lock)
_SQLITE_INSERT_EVENTS = f"INSERT INTO events ({', '.join(_EVENT_COLUMNS)}) VALUES ({', '.join('?' * 13)})"


def _to_json(value: Any) -> str:
    try:
        return pydantic_core.to_json(value).decode()
    except pydantic_core.PydanticSerializationError:  # a lone surrogate (not storable as UTF-8)
        raise BadRequest("event contains a string that is not valid UTF-8") from None


Stored = dict[str, tuple[str, str, bool]]  # client event id -> (public id, body hash, known type)


def _check_pg(conn: Connection, dep_id: str, ids: list[str]) -> tuple[Any, Stored]:
    """The deployment row (locked, or None) and the already stored events among ``ids``."""
    params = {"dep": dep_id, "ids": _to_json(ids)}
    row = conn.exec_driver_sql(_PG_CHECK, params).first()
    if row is not None and not row.fresh:  # once more, with a new snapshot: we hold the lock now
        row = conn.exec_driver_sql(_PG_CHECK, params).first()  # (and every writer of events needs it)
    if row is None:
        return None, {}
    return row, {cid: (sid, shash, bool(known)) for cid, sid, shash, known in row.dups or ()}


def _check_sqlite(conn: Connection, dep_id: str, ids: list[str]) -> tuple[Any, Stored]:
    # plain SQL on the driver: SQLAlchemy's expanding IN costs more than the lookup itself
    stored: Stored = {}
    if ids:
        for r in conn.exec_driver_sql(_SQLITE_SELECT_DUPLICATES, (dep_id, _to_json(ids))):
            stored[r[0]] = (r[1], r[2], bool(r[3]))
    return conn.exec_driver_sql(_SQLITE_SELECT_DEPLOYMENT, (dep_id,)).first(), stored


def _write_pg(conn: Connection, rows: list[tuple[Any, ...]], update: dict[str, Any]) -> None:
    records = [dict(zip(_EVENT_COLUMNS, r, strict=True)) for r in rows]
    p = update
    conn.exec_driver_sql(
        _PG_WRITE,
        {"rows": _to_json(records), "n": p["p_n"], "now": p["p_now"], "status": p["p_status"],
         "agent": p["p_agent"], "dep": p["p_dep"]},
    )  # fmt: skip


def _write_sqlite(conn: Connection, rows: list[tuple[Any, ...]], update: dict[str, Any]) -> None:
    # executemany straight on the driver: SQLAlchemy's per-row processing dominated batches
    conn.exec_driver_sql(_SQLITE_INSERT_EVENTS, rows)
    p = update
    conn.exec_driver_sql(
        _SQLITE_UPDATE_DEPLOYMENT, (p["p_n"], p["p_now"], p["p_status"], p["p_agent"], p["p_dep"])
    )


# PostgreSQL, one event from an agent: checks, insert and status update in one statement that changes
# nothing when it refuses (the result row says why), so the writer can pipeline a whole group of them.
# The repeat check is the unique index itself (ON CONFLICT DO NOTHING): a separate lookup by
# (deployment_id, client_event_id) was planned on ix_events_deployment while the table had no
# statistics (a fresh database, before autovacuum's first ANALYZE) and then read every event of the
# deployment, per event. The stored event is looked up only when nothing was inserted.
_TERMINAL_SQL = ", ".join(f"'{s}'" for s in sorted(TERMINAL_STATUSES))
_PG_SINGLE = (
    "WITH d AS (SELECT status, mode, agent_id FROM deployments WHERE id = %(dep)s FOR UPDATE), "
    "ok AS (SELECT 1 FROM d WHERE d.mode <> 'simulated' "
    "AND (%(agent)s::varchar IS NULL OR d.agent_id IS NULL OR d.agent_id = %(agent)s::varchar) "
    f"AND d.status NOT IN ({_TERMINAL_SQL})), "
    f"ins AS (INSERT INTO events ({', '.join(_EVENT_COLUMNS)}) SELECT %(id)s, %(dep)s, %(cid)s::varchar, "
    "%(seq)s::bigint, %(type)s, %(job)s, %(step)s::varchar, %(payload)s, %(ts)s, %(now)s::float8, "
    "%(known)s::bool, %(agent)s::varchar, %(hash)s FROM ok "
    "ON CONFLICT (deployment_id, client_event_id) DO NOTHING RETURNING 1), "
    "upd AS (UPDATE deployments SET event_count = event_count + 1, updated_at = %(now)s::float8, "
    "lease_expires_at = NULL, status = COALESCE(%(to)s::varchar, "
    "CASE WHEN status = 'pending' THEN 'dispatched' ELSE status END), "
    "agent_id = COALESCE(agent_id, %(agent)s::varchar) WHERE id = %(dep)s AND EXISTS (SELECT 1 FROM ins)) "
    "SELECT EXISTS (SELECT 1 FROM ins), d.status, d.mode, d.agent_id, dup.id, dup.body_hash, dup.known_type "
    "FROM (SELECT 1) one LEFT JOIN d ON true LEFT JOIN LATERAL (SELECT id, body_hash, known_type FROM events "
    "WHERE NOT EXISTS (SELECT 1 FROM ins) AND deployment_id = %(dep)s AND client_event_id = %(cid)s::varchar"
    " LIMIT 1) dup ON true"
)  # LIMIT keeps the subquery from being flattened into the join, where its gate became a join filter


def pg_event_statement(
    dep_id: str, ev: AgentEvent, *, agent_id: str, idempotency_key: str | None = None
) -> tuple[str, dict[str, Any], Callable[[Any], EventAck]]:
    """:func:`add_event` for an agent on PostgreSQL as one statement: (sql, params, finish).

    ``finish(row)`` turns the statement's result row into the acknowledgement, or raises the same
    refusal :func:`add_event` would (in the same order: repeat, unknown, simulated, leased, closed).
    """
    cid = idempotency_key or ev.client_event_id()
    payload = _payload_json(ev.payload)
    body_hash = _body_hash(ev, payload)
    event_id = _public_id()
    known = ev.type in EVENT_TYPES
    params = {
        "dep": dep_id, "cid": cid, "agent": agent_id, "id": event_id, "seq": ev.client_seq(),
        "type": ev.type, "job": ev.job_id, "step": ev.step_id, "payload": payload, "ts": ev.timestamp,
        "now": time.time(), "known": known, "hash": body_hash, "to": STATUS_BY_EVENT.get(ev.type),
    }  # fmt: skip

    def finish(row: Any) -> EventAck:
        inserted, status, mode, holder, stored_id, stored_hash, stored_known = row
        if inserted:
            return to_event_ack((event_id, False, known))
        if stored_id is not None:
            if stored_hash != body_hash:
                raise Conflict(f"event_id {cid!r} was already used for a different event")
            return to_event_ack((stored_id, True, bool(stored_known)))
        if status is None:
            raise NotFound(f"no deployment {dep_id!r}")
        refusal: ConsoleError
        if mode == "simulated":
            refusal = Conflict(f"deployment {dep_id} is simulated: the Console generates its events")
        elif holder is not None and holder != agent_id:
            refusal = Conflict(f"deployment {dep_id} is leased to another agent")
        elif status in TERMINAL_STATUSES:
            refusal = Conflict(f"deployment {dep_id} is {status}")
        else:  # checks passed but the unique index refused: stored by a request we cannot see yet
            refusal = Unavailable(f"event_id {cid!r} is being stored by a concurrent request; retry")
        if cid is None:
            raise refusal
        # The deployment row is read locked (its newest version, after waiting for a concurrent
        # writer), the stored-event lookup with the statement's snapshot: when that writer stored
        # this very event (and maybe closed the deployment with it), the lookup misses it. A re-run
        # (a new snapshot) answers as a later retry would; a refusal that stands costs one more.
        raise Recheck(refusal)

    return _PG_SINGLE, params, finish


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
    return to_event_ack(
        store_events(
            conn, dep_id, [ev], agent_id=agent_id, idempotency_key=idempotency_key, simulator=simulator
        )[0]
    )


def add_events(
    conn: Connection, dep_id: str, evs: list[AgentEvent], *, agent_id: str | None, simulator: bool = False
) -> list[EventAck]:
    """Store events (in order) exactly once each, all or nothing (see :func:`store_events`)."""
    acks = store_events(conn, dep_id, evs, agent_id=agent_id, simulator=simulator)
    return [to_event_ack(a) for a in acks]


def store_events(
    conn: Connection,
    dep_id: str,
    evs: list[AgentEvent],
    *,
    agent_id: str | None,
    idempotency_key: str | None = None,
    simulator: bool = False,
) -> list[Ack]:
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
    acks: list[Ack | None] = [None] * len(evs)
    known_ids = sorted({cid for cid in client_ids if cid is not None})
    pg = conn.dialect.name == "postgresql"
    dep, stored = (_check_pg if pg else _check_sqlite)(conn, dep_id, known_ids)
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
    update = {"p_dep": dep_id, "p_n": len(rows), "p_now": now, "p_status": status, "p_agent": agent_id}
    (_write_pg if pg else _write_sqlite)(conn, rows, update)
    return [a for a in acks if a is not None]
