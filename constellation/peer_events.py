"""The seam for peer monitoring (next issue): what a heartbeat-subscription component reports.

A `PeerMonitor` subscribes to the heartbeats of the peers that discovery finds, decodes them, keeps a
liveness account per peer and calls `Satellite.on_peer_event(PeerEvent(...))` on the event loop. The
satellite reacts by the peer's role exactly as 1.0.2 does (wire doc §4.5): interrupt when the peer's
flags carry TRIGGER_INTERRUPT (ERROR/SAFE, lost) or DENY_DEPARTURE (departed), and mark the current run
degraded when they carry MARK_DEGRADED (lost, departed).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Protocol

from protocols.states import HeartbeatFlags, State

__all__ = ["PeerEvent", "PeerEventKind", "PeerMonitor"]


class PeerEventKind(Enum):
    STATE = "state"  # a heartbeat or extrasystole with a new state
    LOST = "lost"  # heartbeats stopped (lives exhausted, connection dropped)
    DEPARTED = "departed"  # orderly departure (CHIRP DEPART / zeroconf goodbye)


@dataclass(frozen=True, slots=True)
class PeerEvent:
    peer: str  # canonical name
    kind: PeerEventKind
    state: State
    flags: HeartbeatFlags
    status: str | None = None


class PeerMonitor(Protocol):
    """A service composed into the Satellite (`Satellite.peers`); it also serves conditional transitions.

    Names are canonical names, matched case-insensitively.
    """

    async def run(self) -> None:
        """Subscribe to the peers' heartbeats and report `PeerEvent`s until cancelled."""

    def is_present(self, canonical_name: str) -> bool:
        """Known and not DEAD (checked when `initialize` reads `_conditions`)."""

    def state_of(self, canonical_name: str) -> State | None:
        """Last state from the peer's heartbeats; None if unknown, DEAD once lost."""

    async def changed(self) -> None:
        """Return after the next change of any peer's state (or presence)."""
