"""``Reactions``: the ``PeerEvent`` listener that applies the policy to one satellite.

The satellite passes three callables and gets a listener for ``PeerMonitor``::

    reactions = Reactions(local_state=lambda: fsm.state, interrupt=sat.interrupt_from_peer,
                          mark_degraded=sat.mark_run_degraded, logger=sat.log)
    monitor.add_listener(reactions)
    ...
    reactions.on_steady(new_state)   # after every completed transition

``interrupt(reason)`` and ``mark_degraded(reason)`` are called on the event loop, synchronously; they
should only request the transition / set the flag (not wait for it). If ``interrupt`` itself already
defers an interrupt requested in a transitional state until the state is steady (the runtime's
``lifecycle`` runner does), pass ``interrupt_defers=True``: it is then called for deferred interrupts
too, and ``on_steady`` is not needed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from protocols import State

from .events import PeerEvent
from .policy import PeerReactor, Reaction

__all__ = ["Reactions"]

_log = logging.getLogger(__name__)


class Reactions:
    """Applies ``PeerReactor`` decisions: logs, degraded marks, interrupts (deferred when transitional)."""

    def __init__(
        self,
        *,
        local_state: Callable[[], State],
        interrupt: Callable[[str], object],
        mark_degraded: Callable[[str], object],
        logger: logging.Logger | logging.LoggerAdapter[logging.Logger] | None = None,
        max_peers: int = 4096,
        interrupt_defers: bool = False,
    ) -> None:
        self._state = local_state
        self._interrupt = interrupt
        self._mark_degraded = mark_degraded
        self._log = logger or _log
        self.reactor = PeerReactor(max_peers)
        self._interrupt_defers = interrupt_defers
        self.deferred: str | None = None  # reason of an interrupt waiting for a steady state

    def __call__(self, event: PeerEvent) -> Reaction:
        reaction = self.reactor.react(event.name, event.role, event.kind, self._state(), event.message)
        level = reaction.log_level
        if level is not None:
            self._log.log(level, "%s", event.message)
        if reaction.mark_degraded:
            self._mark_degraded(event.message)
        if reaction.interrupt or (reaction.interrupt_when_steady and self._interrupt_defers):
            self._interrupt(event.message)
        elif reaction.interrupt_when_steady and self.deferred is None:
            self.deferred = event.message
        return reaction

    def on_steady(self, state: State) -> None:
        """Call when the local FSM reaches a steady state: performs a deferred interrupt if in ORBIT/RUN."""
        reason, self.deferred = self.deferred, None
        if reason is not None and state in (State.ORBIT, State.RUN):
            self._interrupt(reason)
