"""Console pull API models (operator-agent.md section 1, 2.1, 3.1, 7), shared by server and agent.

Pure pydantic, no I/O. Field names are the documented wire names. Extensions that the reference does
not have (client ``event_id`` and ``seq``, batches, leases, capabilities) are optional fields or new
models, so a reference agent keeps working against our server and our agent against the reference.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "AGENT_STATUSES",
    "API_KEY_PATTERN",
    "DEPLOYMENT_STATUSES",
    "EVENT_TYPES",
    "EXTENSIONS",
    "MAX_BATCH_EVENTS",
    "PROTOCOL_VERSION",
    "STATUS_BY_EVENT",
    "TERMINAL_STATUSES",
    "Agent",
    "AgentEvent",
    "AgentList",
    "AgentStatus",
    "AgentTelemetry",
    "ApiKeyScope",
    "BatchAck",
    "Capabilities",
    "Deployment",
    "DeploymentCreate",
    "DeploymentCreated",
    "DeploymentList",
    "DeploymentMode",
    "DeploymentStatus",
    "ErrorBody",
    "EventAck",
    "EventBatch",
    "EventPage",
    "Position",
    "RateLimits",
    "RegisterRequest",
    "RegisterResponse",
    "StoredEvent",
    "TelemetryResponse",
    "WorkloadSpec",
    "is_rfc3339",
]

PROTOCOL_VERSION: Final = "0.1.0"
MAX_BATCH_EVENTS: Final = 500
API_KEY_PATTERN: Final = re.compile(r"^rs_(live|test)_[a-zA-Z0-9]{16,}$")

AgentStatus = Literal["idle", "executing", "transferring", "offline"]
AGENT_STATUSES: Final[frozenset[str]] = frozenset({"idle", "executing", "transferring", "offline"})
DeploymentStatus = Literal["pending", "dispatched", "running", "completed", "failed", "cancelled"]
DEPLOYMENT_STATUSES: Final[tuple[str, ...]] = (
    "pending",
    "dispatched",
    "running",
    "completed",
    "failed",
    "cancelled",
)
TERMINAL_STATUSES: Final[frozenset[str]] = frozenset({"completed", "failed", "cancelled"})
DeploymentMode = Literal["live", "simulated"]
ApiKeyScope = Literal["agent", "operator"]

# Deployment status driven by an event type (section 1.5); other types leave the status alone.
STATUS_BY_EVENT: Final[dict[str, str]] = {
    "job.accepted": "running",
    "job.completed": "completed",
    "job.failed": "failed",
}

# The 37 types of section 2.2. Types outside it are stored and flagged (known_type = false).
EVENT_TYPES: Final[frozenset[str]] = frozenset(
    {
        "job.accepted",
        "plan.created",
        "job.completed",
        "job.failed",
        "placement.decided",
        "step.started",
        "step.progress",
        "step.completed",
        "transfer.started",
        "transfer.pass_started",
        "transfer.progress",
        "transfer.pass_completed",
        "transfer.completed",
        "transfer.retransmission",
        "security.encrypted",
        "security.key_exchange",
        "checkpoint.saved",
        "checkpoint.predicted",
        "eclipse_step.started",
        "eclipse_step.energy_check",
        "eclipse_step.completed",
        "window_step.started",
        "window_step.degraded",
        "window_step.upgraded",
        "window_step.completed",
        "pass_step.started",
        "pass_step.completed",
        "isl_transfer.started",
        "isl_transfer.hop_completed",
        "isl_transfer.completed",
        "isl_transfer.quality_report",
        "constellation.step_assigned",
        "constellation.step_started",
        "constellation.step_completed",
        "constellation.failover",
        "constellation.failover_acknowledged",
        "constellation.satellite_complete",
    }
)

# What this server offers beyond the reference protocol (GET /api/agent/capabilities).
EXTENSIONS: Final[tuple[str, ...]] = (
    "event_id",  # client event ids (body `event_id` or `Idempotency-Key`): duplicates stored once
    "seq",  # per-deployment client sequence numbers, stored and returned
    "batch",  # POST /api/deployments/{id}/events/batch
    "lease",  # dispatched deployments are leased and redelivered when the lease expires silently
    "retry_after",  # every 429 carries Retry-After (seconds)
    "unknown_event_types",  # event types outside the catalogue are stored and flagged
)

_RFC3339 = re.compile(
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}"
    r"(\.[0-9]{1,12})?([Zz]|[+-][0-9]{2}:?[0-9]{2})?$"
)
# Strings are checked by pydantic-core (Rust regex, no Python callback per field): no NUL (PostgreSQL
# text cannot hold it); lone surrogates never validate as strings there.
_NO_NUL = r"^[^\x00]*$"


def is_rfc3339(value: str) -> bool:
    """True for ISO 8601 / RFC 3339 date-times as agents send them (any fraction length)."""
    return _RFC3339.match(value) is not None


def _clean_text(value: str) -> str:
    # NUL and lone surrogates cannot be stored in a text column (PostgreSQL, UTF-8): refuse at the edge.
    if "\x00" in value:
        raise ValueError("string contains a NUL character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("string is not valid UTF-8 (lone surrogate)") from None
    return value


Text = Annotated[str, Field(max_length=256, pattern=_NO_NUL)]
Identifier = Annotated[str, Field(min_length=1, max_length=128, pattern=_NO_NUL)]
Timestamp = Annotated[str, Field(max_length=64, pattern=_RFC3339.pattern)]  # ISO 8601 / RFC 3339
Seq = Annotated[int, Field(ge=0, le=2**63 - 1)]


class _Wire(BaseModel):
    """Inbound wire model: unknown keys are ignored so newer peers keep working."""

    model_config = ConfigDict(extra="ignore", frozen=True, allow_inf_nan=False)


class ErrorBody(_Wire):
    error: str


class RegisterRequest(_Wire):
    agent_id: Identifier
    satellite_id: Identifier | None = None
    satellite_name: Text | None = None
    orbit_altitude_km: float | None = None
    agent_version: Text | None = None


class RateLimits(_Wire):
    """Published limits enforced by this server; 0 means not enforced."""

    poll_min_interval_s: float = 10.0
    events_per_minute: float = 100.0
    telemetry_min_interval_s: float = 30.0


class Capabilities(_Wire):
    protocol_version: str = PROTOCOL_VERSION
    extensions: list[str] = Field(default_factory=lambda: list(EXTENSIONS))
    max_batch_events: int = MAX_BATCH_EVENTS
    lease_seconds: float = 300.0
    rate_limits: RateLimits = Field(default_factory=RateLimits)


class RegisterResponse(_Wire):
    id: str
    status: AgentStatus = "idle"
    capabilities: Capabilities | None = None


class AgentEvent(_Wire):
    """Event envelope (section 2.1) plus the optional `event_id` and `seq` extensions (section 9.3)."""

    type: Text = Field(min_length=1)
    timestamp: Timestamp
    job_id: Identifier
    step_id: Text | None = None
    payload: dict[str, Any] = Field(default_factory=dict)
    event_id: Identifier | None = None
    seq: Seq | None = None

    def client_event_id(self) -> str | None:
        """`event_id` from the envelope, else from the payload (where section 9.3 puts it)."""
        if self.event_id is not None:
            return self.event_id
        value = self.payload.get("event_id")
        if isinstance(value, str) and 0 < len(value) <= 128:
            return _clean_text(value)
        return None

    def client_seq(self) -> int | None:
        if self.seq is not None:
            return self.seq
        value = self.payload.get("seq")
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**63:
            return value
        return None


class EventAck(_Wire):
    id: str
    duplicate: bool = False
    known_type: bool = True


class EventBatch(_Wire):
    events: list[AgentEvent] = Field(min_length=1, max_length=MAX_BATCH_EVENTS)


class BatchAck(_Wire):
    results: list[EventAck]
    stored: int
    duplicates: int


class Position(_Wire):
    lat: float
    lon: float
    altitude_km: float
    in_eclipse: bool


class AgentTelemetry(_Wire):
    agent_id: Identifier | None = None
    status: AgentStatus | None = None
    timestamp: Timestamp | None = None
    cpu_percent: float | None = None
    memory_mb: float | None = None
    battery_percent: float | None = None
    temperature_c: float | None = None
    position: Position | None = None
    compute_capacity: float | None = None


class TelemetryResponse(_Wire):
    ok: bool = True


class WorkloadSpec(_Wire):
    """Poll response (section 3.1). `lease_expires_at` and `mode` are extensions."""

    plan_id: str
    deployment_id: str
    satellite_id: str
    plan_data: Any
    events: list[dict[str, Any]]
    mode: DeploymentMode = "live"
    lease_expires_at: str | None = None


class StoredEvent(_Wire):
    """Stored form (section 1.5) plus `job_id`, `event_id`, `seq`, `known_type`."""

    id: str
    event_type: str
    step_id: str | None
    payload: dict[str, Any]
    event_timestamp: str
    created_at: str
    job_id: str | None = None
    event_id: str | None = None
    seq: int | None = None
    known_type: bool = True


class EventPage(_Wire):
    events: list[StoredEvent]
    total: int
    offset: int
    limit: int


class DeploymentCreate(_Wire):
    """Operator request: a plan file (WorkloadSpec-shaped, `events` optional) for one satellite."""

    plan: dict[str, Any]
    satellite_id: Identifier
    mode: DeploymentMode = "live"
    speed_multiplier: float = Field(default=100.0, gt=0, le=1e9)


class DeploymentCreated(_Wire):
    id: str
    status: DeploymentStatus = "pending"


class Deployment(_Wire):
    id: str
    plan_id: str
    satellite_id: str
    mode: DeploymentMode
    status: DeploymentStatus
    speed_multiplier: float
    agent_id: str | None
    created_at: str
    updated_at: str
    dispatched_at: str | None
    lease_expires_at: str | None
    dispatch_count: int
    event_count: int


class Agent(_Wire):
    """Operator view of a registered agent (`mc_agents`)."""

    agent_id: str
    satellite_id: str | None
    satellite_name: str | None
    status: str
    agent_version: str | None
    user_agent: str | None
    registered_at: str
    last_heartbeat_at: str | None
    telemetry: dict[str, Any] | None


class AgentList(_Wire):
    agents: list[Agent]


class DeploymentList(_Wire):
    deployments: list[Deployment]
    total: int
    offset: int
    limit: int
