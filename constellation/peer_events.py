"""The seam for peer monitoring: what a heartbeat-subscription component must offer the Satellite.

`constellation.peers.PeerMonitor` (docs/autonomy.md) implements `PeerMonitor`; the Satellite creates
one when it runs discovery and applies its events with `constellation.peers.Reactions` (issue 4's role
table with the once-per-peer latch). A custom monitor that only implements this seam may instead call
`Satellite.on_peer_event(PeerEvent(...))`, which applies the same table to one event
(`apply_legacy_event`, no latch).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any, Protocol

from protocols.states import HeartbeatFlags, Role, State

__all__ = ["PeerEvent", "PeerEventKind", "PeerMonitor", "apply_legacy_event"]


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
        """Subscribe to the peers' heartbeats and report events until cancelled."""

    def is_present(self, canonical_name: str) -> bool:
        """Known and not DEAD (checked when `initialize` reads `_conditions`)."""

    def state_of(self, canonical_name: str) -> State | None:
        """Last state from the peer's heartbeats; None if unknown, DEAD once lost."""

    async def changed(self) -> None:
        """Return after the next change of any peer's state (or presence)."""


def apply_legacy_event(
    event: PeerEvent,
    local: State,
    interrupt: Callable[[str], object],
    mark_degraded: Callable[[str], object],
    log: logging.Logger | logging.LoggerAdapter[logging.Logger],
) -> None:
    """Apply `constellation.peers.decide` (issue 4's table, gated by `local`) to one seam event."""
    from .peers.policy import EventKind, decide  # lazy: the peers package loads discovery

    kinds: dict[Any, EventKind] = {
        PeerEventKind.LOST: EventKind.LOST,
        PeerEventKind.DEPARTED: EventKind.DEPARTED,
    }
    kind = kinds.get(event.kind)
    if kind is None:
        kind = {State.ERROR: EventKind.ERROR_STATE, State.DEAD: EventKind.ERROR_STATE}.get(
            event.state, EventKind.SAFE_STATE if event.state is State.SAFE else EventKind.STATE_CHANGED
        )
    role = Role.from_flags(event.flags)
    message = f"{event.peer} ({role.name}) {kind.value.replace('_', ' ')}"
    reaction = decide(role, kind, local, message)
    if reaction.log_level is not None:
        log.log(reaction.log_level, "%s", message)
    if reaction.mark_degraded:
        mark_degraded(message)
    if reaction.interrupt or reaction.interrupt_when_steady:
        interrupt(message)  # the runner defers it while transitional
