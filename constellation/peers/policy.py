"""How a satellite reacts to what happens to a peer: a table, sans-I/O (issue 4, wire doc §4.5).

The peer's role (rebuilt from its heartbeat flags) and the kind of event select a set of effects from
``TABLE``; the local FSM state then gates them:

- ``INTERRUPT`` only happens from ORBIT or RUN. In a transitional state heading to ORBIT or RUN
  (launching, reconfiguring, starting, stopping) it becomes ``INTERRUPT_WHEN_STEADY``: the satellite
  interrupts as soon as it is steady again, if it is then in ORBIT or RUN (the C++ behaviour; 1.0.2
  Python silently drops it).
- ``MARK_DEGRADED`` only happens while ``starting`` or in ``RUN``; it is never in NONE's rows.

Issue 4 deliberately goes beyond 1.0.2 here: every role but NONE marks the current run degraded on an
ERROR/SAFE report too (1.0.2 and C++ only interrupt on it).

``PeerReactor`` adds the latch "once per peer until it recovers": a peer that failed (ERROR, SAFE, lost,
departed) causes no further interrupt or degraded mark until a ``RECOVERED`` event clears it.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from protocols import Role, State

__all__ = [
    "TABLE",
    "Effect",
    "EventKind",
    "PeerReactor",
    "Reaction",
    "decide",
]


class EventKind(enum.Enum):
    """What happened to a peer (the ``kind`` of a ``PeerEvent``)."""

    ERROR_STATE = "error_state"  # it reports ERROR (or the internal DEAD code 0xFF)
    SAFE_STATE = "safe_state"  # it reports SAFE
    LOST = "lost"  # silent: process died, frozen, link cut, or heartbeats stopped
    DEPARTED = "departed"  # CHIRP DEPART of its HEARTBEAT service: an orderly exit
    REPLACED = "replaced"  # the same name re-offered at a new port: a restart, not a loss
    RECOVERED = "recovered"  # beats again in a state other than ERROR/SAFE after a failure
    STATE_CHANGED = "state_changed"  # any other state change (informational)

    @property
    def is_failure(self) -> bool:
        return self in _FAILURES


_FAILURES: Final = frozenset(
    {EventKind.ERROR_STATE, EventKind.SAFE_STATE, EventKind.LOST, EventKind.DEPARTED}
)


class Effect(enum.Enum):
    INTERRUPT = "interrupt"  # local ORBIT/RUN -> interrupting -> SAFE
    INTERRUPT_WHEN_STEADY = "interrupt_when_steady"  # same, once the local transition has completed
    MARK_DEGRADED = "mark_degraded"  # current run (starting/RUN) gets the DEGRADED condition
    LOG_WARNING = "log_warning"
    LOG_INFO = "log_info"


_I, _D, _W, _N = Effect.INTERRUPT, Effect.MARK_DEGRADED, Effect.LOG_WARNING, Effect.LOG_INFO
_K = EventKind

#: (peer role, event) -> effects before gating by the local state. Events not listed: no effect.
TABLE: Final[Mapping[tuple[Role, EventKind], frozenset[Effect]]] = {
    # ESSENTIAL: ERROR/SAFE, silence or departure interrupt; every failure marks the run degraded
    (Role.ESSENTIAL, _K.ERROR_STATE): frozenset({_I, _D, _W}),
    (Role.ESSENTIAL, _K.SAFE_STATE): frozenset({_I, _D, _W}),
    (Role.ESSENTIAL, _K.LOST): frozenset({_I, _D, _W}),
    (Role.ESSENTIAL, _K.DEPARTED): frozenset({_I, _D, _W}),
    # DYNAMIC: ERROR/SAFE or silence interrupt; an orderly departure is only logged (and degrades)
    (Role.DYNAMIC, _K.ERROR_STATE): frozenset({_I, _D, _W}),
    (Role.DYNAMIC, _K.SAFE_STATE): frozenset({_I, _D, _W}),
    (Role.DYNAMIC, _K.LOST): frozenset({_I, _D, _W}),
    (Role.DYNAMIC, _K.DEPARTED): frozenset({_D, _N}),
    # TRANSIENT: ERROR/SAFE and silence only warn; departure is logged; the run is marked degraded
    (Role.TRANSIENT, _K.ERROR_STATE): frozenset({_D, _W}),
    (Role.TRANSIENT, _K.SAFE_STATE): frozenset({_D, _W}),
    (Role.TRANSIENT, _K.LOST): frozenset({_D, _W}),
    (Role.TRANSIENT, _K.DEPARTED): frozenset({_D, _N}),
    # NONE: warnings only (a departure is logged), never touches run metadata
    (Role.NONE, _K.ERROR_STATE): frozenset({_W}),
    (Role.NONE, _K.SAFE_STATE): frozenset({_W}),
    (Role.NONE, _K.LOST): frozenset({_W}),
    (Role.NONE, _K.DEPARTED): frozenset({_N}),
    # every role: a restart under the same name and a recovery are logged only
    **{(role, _K.REPLACED): frozenset({_N}) for role in Role},
    **{(role, _K.RECOVERED): frozenset({_N}) for role in Role},
}

_INTERRUPTIBLE: Final = frozenset({State.ORBIT, State.RUN})
_HEADING_TO_INTERRUPTIBLE: Final = frozenset(
    {State.launching, State.reconfiguring, State.starting, State.stopping}
)
_DEGRADABLE: Final = frozenset({State.starting, State.RUN})


@dataclass(frozen=True, slots=True)
class Reaction:
    """What the satellite must do. ``effects`` is already gated by the local state and the latch."""

    effects: frozenset[Effect]
    message: str = ""

    @property
    def interrupt(self) -> bool:
        return Effect.INTERRUPT in self.effects

    @property
    def interrupt_when_steady(self) -> bool:
        return Effect.INTERRUPT_WHEN_STEADY in self.effects

    @property
    def mark_degraded(self) -> bool:
        return Effect.MARK_DEGRADED in self.effects

    @property
    def log_level(self) -> int | None:
        """``logging.WARNING``, ``logging.INFO`` or None (nothing to log)."""
        if Effect.LOG_WARNING in self.effects:
            return logging.WARNING
        if Effect.LOG_INFO in self.effects:
            return logging.INFO
        return None


NOTHING: Final = Reaction(frozenset())


def decide(role: Role, kind: EventKind, local: State, message: str = "") -> Reaction:
    """The pure table lookup plus the local-state gates (no latch)."""
    effects = set(TABLE.get((role, kind), frozenset()))
    if Effect.INTERRUPT in effects and local not in _INTERRUPTIBLE:
        effects.discard(Effect.INTERRUPT)
        if local in _HEADING_TO_INTERRUPTIBLE:
            effects.add(Effect.INTERRUPT_WHEN_STEADY)
    if local not in _DEGRADABLE:
        effects.discard(Effect.MARK_DEGRADED)
    return Reaction(frozenset(effects), message)


class PeerReactor:
    """``decide`` plus the latch: a failed peer acts once, until it recovers (or is replaced).

    Pure and synchronous: feed it events in order, it returns reactions. Bounded: at most
    ``max_peers`` latched names (the oldest is forgotten beyond that).
    """

    def __init__(self, max_peers: int = 4096) -> None:
        self._failed: dict[str, EventKind] = {}
        self._max = max_peers

    def react(self, name: str, role: Role, kind: EventKind, local: State, message: str = "") -> Reaction:
        key = name.casefold()
        if kind in (EventKind.RECOVERED, EventKind.REPLACED):
            self._failed.pop(key, None)
            return decide(role, kind, local, message)
        if not kind.is_failure:
            return decide(role, kind, local, message)
        if key in self._failed:
            return NOTHING  # already acted on this peer's failure: no repeated interrupts
        if len(self._failed) >= self._max:
            self._failed.pop(next(iter(self._failed)))
        self._failed[key] = kind
        return decide(role, kind, local, message)

    def failed(self) -> dict[str, EventKind]:
        """Peers currently latched as failed (lower-cased name -> first failure)."""
        return dict(self._failed)

    def forget(self, name: str) -> None:
        self._failed.pop(name.casefold(), None)
