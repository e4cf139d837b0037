"""The satellite state machine as data: a transition table and a pure `next_state`.

Every transition of Constellation 1.0.2 (wire doc §3.2). Side effects (hooks, heartbeats, metrics) happen
in the satellite after `next_state` succeeded; this module never does I/O.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Final

from protocols.states import State

from .errors import TransitionNotAllowed

__all__ = [
    "TRANSITIONS",
    "Event",
    "Snapshot",
    "StateMachine",
    "display_name",
    "next_state",
]


class Event(Enum):
    """FSM events; the value is the 1.0.2 event name (the payload of a transition reply)."""

    INITIALIZE = "initialize"
    LAUNCH = "launch"
    LAND = "land"
    RECONFIGURE = "reconfigure"
    START = "start"
    STOP = "stop"
    INTERRUPT = "interrupt"
    FAILURE = "failure"


_FAILURE_SOURCES = tuple(s for s in State if s is not State.DEAD)

TRANSITIONS: Final[Mapping[tuple[State, Event], State]] = {
    (State.NEW, Event.INITIALIZE): State.initializing,
    (State.INIT, Event.INITIALIZE): State.initializing,
    (State.SAFE, Event.INITIALIZE): State.initializing,
    (State.ERROR, Event.INITIALIZE): State.initializing,
    (State.INIT, Event.LAUNCH): State.launching,
    (State.ORBIT, Event.LAND): State.landing,
    (State.ORBIT, Event.RECONFIGURE): State.reconfiguring,
    (State.ORBIT, Event.START): State.starting,
    (State.RUN, Event.STOP): State.stopping,
    (State.ORBIT, Event.INTERRUPT): State.interrupting,
    (State.RUN, Event.INTERRUPT): State.interrupting,
    **{(s, Event.FAILURE): State.ERROR for s in _FAILURE_SOURCES},
}


def display_name(state: State) -> str:
    """The state as python-statemachine 1.0.2 spells it in messages: `New`, `Initializing`, `Safe`."""
    return state.name.capitalize()


def next_state(state: State, event: Event) -> State:
    """The state `event` leads to from `state`, or TransitionNotAllowed (1.0.2's message)."""
    try:
        return TRANSITIONS[state, event]
    except KeyError:
        raise TransitionNotAllowed(f"Can't {event.value} when in {display_name(state)}.") from None


@dataclass(frozen=True, slots=True)
class Snapshot:
    state: State
    status: str
    last_changed_ns: int


Listener = Callable[[Snapshot], None]


class StateMachine:
    """Holds the current state, status and change time; tells listeners about every state change.

    Only the event loop thread mutates it. Listeners run synchronously in that thread and must not
    block (they put snapshots on queues).
    """

    def __init__(self) -> None:
        self._snap = Snapshot(State.NEW, "Satellite not initialized yet.", time.time_ns())
        self._listeners: list[Listener] = []

    @property
    def state(self) -> State:
        return self._snap.state

    @property
    def status(self) -> str:
        return self._snap.status

    @property
    def last_changed_ns(self) -> int:
        return self._snap.last_changed_ns

    def snapshot(self) -> Snapshot:
        return self._snap

    def add_listener(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def set_status(self, status: str) -> None:
        """Change the status without a state change (no extrasystole, like 1.0.2)."""
        self._snap = Snapshot(self._snap.state, status, self._snap.last_changed_ns)

    def enter(self, state: State, status: str) -> None:
        """Switch to `state` with `status` and notify every listener (ERROR -> ERROR counts too)."""
        self._snap = Snapshot(state, status, time.time_ns())
        for listener in self._listeners:
            listener(self._snap)
