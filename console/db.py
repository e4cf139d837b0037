"""Schema, engines and the versioned migration runner (SQLite by default, PostgreSQL by URL)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final, Literal

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    Engine,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    text,
)

__all__ = [
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "agents",
    "api_keys",
    "deployments",
    "events",
    "make_engine",
    "migrate",
    "schema_version",
]

log = logging.getLogger(__name__)

metadata = MetaData()

schema_version = Table("schema_version", metadata, Column("version", Integer, nullable=False))

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("name", String(128), nullable=False, unique=True),
    Column("key_hash", String(64), nullable=False, unique=True),  # SHA-256 hex; the key is never stored
    Column("scope", String(16), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("revoked_at", Float),
)

agents = Table(
    "agents",
    metadata,
    Column("agent_id", String(128), primary_key=True),
    Column("key_id", String(40), nullable=False),
    Column("satellite_id", String(128)),
    Column("satellite_name", String(256)),
    Column("orbit_altitude_km", Float),
    Column("agent_version", String(256)),
    Column("user_agent", String(512)),
    Column("status", String(16), nullable=False),
    Column("registered_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("last_heartbeat_at", Float),
    Column("telemetry", Text),  # latest AgentTelemetry as JSON
)

deployments = Table(
    "deployments",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("plan_id", String(256), nullable=False),
    Column("satellite_id", String(128), nullable=False),
    Column("mode", String(16), nullable=False),
    Column("status", String(16), nullable=False),
    Column("speed", Float, nullable=False),
    Column("plan_data", Text, nullable=False),  # JSON
    Column("timeline", Text, nullable=False),  # JSON list of envelopes handed to the agent / simulator
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("dispatched_at", Float),
    Column("lease_expires_at", Float),
    Column("agent_id", String(128)),
    Column("dispatch_count", Integer, nullable=False, default=0),
    Column("event_count", Integer, nullable=False, default=0),
    Column("sim_started_at", Float),
    Index("ix_deployments_dispatch", "mode", "satellite_id", "status", "created_at"),
)

events = Table(
    "events",
    metadata,
    Column("n", Integer().with_variant(BigInteger, "postgresql"), primary_key=True, autoincrement=True),
    # Public id: 128 random bits, unique by construction and never looked up, so not indexed (an index
    # of random keys costs a scattered page write per event at every commit).
    Column("id", String(40), nullable=False),
    Column("deployment_id", String(40), nullable=False),
    Column("client_event_id", String(128)),
    Column("seq", BigInteger),
    Column("event_type", String(256), nullable=False),
    Column("job_id", String(128)),
    Column("step_id", String(256)),
    Column("payload", Text, nullable=False),  # JSON text: survives any JSON (NUL escapes, huge ints)
    Column("event_timestamp", String(64), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("known_type", Boolean, nullable=False),
    Column("agent_id", String(128)),
    Column("body_hash", String(64), nullable=False),
    UniqueConstraint("deployment_id", "client_event_id", name="uq_events_client_id"),
    Index("ix_events_deployment", "deployment_id", "n"),
)


def _migration_1(conn: Connection) -> None:
    """Initial schema."""
    metadata.create_all(conn, tables=[api_keys, agents, deployments, events])


def _migration_2(conn: Connection) -> None:
    """Index agents by satellite (operator views) -- kept separate to exercise the runner."""
    conn.execute(text("CREATE INDEX IF NOT EXISTS ix_agents_satellite ON agents (satellite_id)"))


MIGRATIONS: Final[Sequence[Callable[[Connection], None]]] = (_migration_1, _migration_2)
SCHEMA_VERSION: Final = len(MIGRATIONS)

Synchronous = Literal["full", "normal"]


def make_engine(
    url: str, *, synchronous: Synchronous = "full", pool_size: int = 8, writer: bool = True
) -> Engine:
    """Engine for a SQLAlchemy URL. SQLite gets WAL, a busy timeout, and (``writer``) BEGIN IMMEDIATE."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[1] if "///" in url else ""
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 10.0},
            pool_size=pool_size,
            max_overflow=pool_size,
        )

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None  # we issue BEGIN ourselves (below)
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute(f"PRAGMA synchronous={synchronous.upper()}")
            cur.execute("PRAGMA busy_timeout=10000")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Connection) -> None:
            # Take the write lock up front: no deferred-to-write upgrade deadlocks with the CLI.
            conn.exec_driver_sql("BEGIN IMMEDIATE" if writer else "BEGIN")

        return engine
    # The writer keeps its connection: a ping per transaction would cost a round trip per group commit;
    # after a lost connection the failed group is replayed request by request on a fresh one.
    return create_engine(url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=not writer)


def _current_version(conn: Connection) -> int:
    row = conn.execute(schema_version.select()).first()
    return int(row.version) if row is not None else 0


def migrate(engine: Engine) -> int:
    """Apply pending migrations in one transaction; returns the resulting schema version."""
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            # Several Console processes may start at once on one database.
            conn.execute(text("SELECT pg_advisory_xact_lock(724515)"))
        schema_version.create(conn, checkfirst=True)
        version = _current_version(conn)
        if version > SCHEMA_VERSION:
            raise RuntimeError(f"database schema {version} is newer than this server ({SCHEMA_VERSION})")
        for number, step in enumerate(MIGRATIONS, start=1):
            if number <= version:
                continue
            log.info("applying migration %d: %s", number, (step.__doc__ or "").strip())
            step(conn)
        if version == 0:
            conn.execute(schema_version.insert().values(version=SCHEMA_VERSION))
        elif version < SCHEMA_VERSION:
            conn.execute(schema_version.update().values(version=SCHEMA_VERSION))
    return SCHEMA_VERSION
