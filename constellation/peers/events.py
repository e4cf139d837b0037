"""What the peer monitor reports: events and snapshots (frozen dataclasses)."""

from __future__ import annotations

from dataclasses import dataclass

from protocols import Role, State

from .policy import EventKind

__all__ = ["PeerEvent", "PeerInfo"]


@dataclass(frozen=True, slots=True)
class PeerEvent:
    """Something happened to peer ``name`` (its canonical name, or the host id in hex before its first
    heartbeat). ``role`` is the role it last announced; ``state`` its state after the event (DEAD when
    lost); ``time`` the local monotonic time of the detection."""

    name: str
    role: Role
    kind: EventKind
    detail: str
    state: State
    time: float

    @property
    def message(self) -> str:
        """One line for logs and statuses, e.g. ``Mariner.A (ESSENTIAL) lost: connection lost ...``."""
        return f"{self.name} ({self.role.name}) {self.kind.value.replace('_', ' ')}: {self.detail}"


@dataclass(frozen=True, slots=True)
class PeerInfo:
    """Snapshot of one monitored peer."""

    name: str
    host_id: bytes
    endpoint: str
    role: Role
    state: State
    status: str
    interval_ms: int
    lives: int
    beats: int
    last_seen: float | None  # local monotonic receive time of the last heartbeat
    connected: bool
    lost: bool
