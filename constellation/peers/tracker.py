"""One peer's liveness, sans-I/O: heartbeats, connection events and the clock in; peer events out.

Three independent detectors feed one verdict (see docs/autonomy.md):

1. **Connection loss** (process died, frozen, link cut): the watcher reports ZeroMQ's
   ``EVENT_DISCONNECTED`` for the peer's subscription. A dead process closes its TCP connection, so that
   arrives in milliseconds; a frozen process or a cut link stops answering ZMTP PINGs, and libzmq drops
   the connection after ``zmtp_timeout_ms``. The peer becomes *suspect* for ``disconnect_grace_s``, in
   which a CHIRP DEPART (orderly exit), a replacement offer (restart under the same name) or a
   successful re-handshake (transient drop, restart on the same port) clear it; otherwise it is LOST.
2. **Lives** (application hung while its process and TCP stay alive): 1.0.2 semantics. Each heartbeat
   restores ``lives`` (3); every ``life_factor`` (1.5) × the announced interval without a heartbeat
   costs one life and restarts the clock; at 0 the peer is LOST. Before the first heartbeat 1.0.2
   assumes ``initial_interval_ms`` (2000) from the subscription on; here that holds only while the
   subscription has not completed a ZMTP handshake. Once it has (the peer's process answers), the
   clock restarts at the handshake and ``first_beat_interval_ms`` applies (the monitor sets it from
   the group size): in a big group a peer's regular beats come more than 9 s apart, and a subscriber
   that joined after its last state change would otherwise lose it before its first beat.
3. **Reported state**: ERROR (or the internal DEAD code), SAFE, a recovery, any other change.

Times are the *local* receive time (monotonic), not the sender's timestamp as in 1.0.2: no clock skew
between hosts can age or rejuvenate a peer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from protocols import Role, State
from protocols.chp import Heartbeat

from .policy import EventKind
from .settings import MonitorSettings

__all__ = ["PeerTracker", "Verdict"]

#: (kind, detail) produced by the tracker; the monitor adds name, role and time.
Verdict = tuple[EventKind, str]

_FAILED_STATES = {State.ERROR: EventKind.ERROR_STATE, State.DEAD: EventKind.ERROR_STATE}


@dataclass(slots=True)
class PeerTracker:
    """Liveness and state of one subscribed peer. Every method takes ``now`` (monotonic seconds)."""

    host_id: bytes
    endpoint: str
    name: str | None
    settings: MonitorSettings
    now: float
    state: State = State.DEAD  # before the first heartbeat, as in 1.0.2
    role: Role = Role.DYNAMIC  # 1.0.2's assumption before the first heartbeat
    status: str = ""
    interval_ms: int = 0
    lives: int = 0
    beats: int = 0
    last_seen: float | None = None  # local receive time of the last heartbeat
    lost: bool = False
    failed: EventKind | None = None  # the failure reported last, until a recovery
    suspect_since: float | None = None  # disconnected, waiting out the grace period
    connected: bool = False
    zmtp_ivl_ms: int = 0  # the ZMTP PING interval of this subscription (set by the monitor)
    first_beat_interval_ms: int = 0  # assumed once connected, before the first beat (set by the monitor)
    overlapping: int = 0  # extra subscriptions feeding this tracker (a PING retune in progress)
    last_beat_ns: int = 0  # CHP time of the last heartbeat taken
    subscribed_at: float = 0.0
    handshakes: int = 0
    _life_clock: float = field(default=0.0, repr=False)

    def __post_init__(self) -> None:
        self.interval_ms = self.settings.initial_interval_ms
        self.lives = self.settings.lives
        self._life_clock = self.subscribed_at = self.now

    # -- inputs -------------------------------------------------------------------------------------

    def on_heartbeat(self, hb: Heartbeat, now: float) -> list[Verdict]:
        if self.overlapping and hb.time_ns < self.last_beat_ns:
            return []  # a stale copy, delivered late by the other of two overlapping subscriptions
        self.last_beat_ns = hb.time_ns
        out: list[Verdict] = []
        self.beats += 1
        self.last_seen = self._life_clock = now
        self.lives = self.settings.lives
        self.suspect_since = None
        self.interval_ms = hb.interval_ms
        self.role = hb.role
        if self.name is None or self.name != hb.sender:
            self.name = hb.sender
        if hb.status:
            self.status = hb.status
        was_lost, old = self.lost, self.state
        self.lost = False
        self.state = hb.state
        if hb.state != old or was_lost:
            out.append((EventKind.STATE_CHANGED, f"{old.name} -> {hb.state.name}"))
        failure = _FAILED_STATES.get(hb.state) or (EventKind.SAFE_STATE if hb.state is State.SAFE else None)
        if failure is not None:
            if failure is not self.failed or was_lost:
                self.failed = failure
                what = f"reports state {hb.state.name}"
                out.append((failure, f"{what}: {hb.status}" if hb.status else what))
        elif self.failed is not None:
            out.append((EventKind.RECOVERED, f"back in {hb.state.name}"))
            self.failed = None
        return out

    def on_disconnected(self, now: float) -> list[Verdict]:
        self.connected = False
        if not self.lost and self.suspect_since is None:
            self.suspect_since = now
        return []

    def on_handshake(self, now: float) -> list[Verdict]:
        """The subscription (re)connected and completed the ZMTP handshake: the peer's libzmq lives."""
        self.connected = True
        self.suspect_since = None
        self.handshakes += 1
        if self.handshakes == 1 and self.beats == 0 and not self.lost:
            # the first connection: the lives clock starts now, with the connected allowance
            self.lives = self.settings.lives
            self._life_clock = now
        return []

    def on_tick(self, now: float) -> list[Verdict]:
        """Advance the clock: expire the grace period and the lives."""
        if self.lost:
            return []
        if self.suspect_since is not None and now >= self.suspect_since + self.settings.disconnect_grace_s:
            return self._lose(
                f"connection lost (no reconnect or DEPART within {self.settings.disconnect_grace_s:g} s)"
            )
        if now >= self._life_clock + self._life_s():
            # one life per expiry, and the clock restarts now (1.0.2): a stall of our own loop costs
            # at most one life, never all of them at once
            self.lives -= 1
            self._life_clock = now
            if self.lives <= 0:
                if self.last_seen is None:
                    what = f"no heartbeat in {now - self.subscribed_at:.1f} s since subscribing"
                else:
                    what = f"no heartbeat for {now - self.last_seen:.1f} s"
                return self._lose(f"{what} ({self.settings.lives} lives at {self.judged_interval_ms()} ms)")
        return []

    def deadline(self) -> float:
        """The next time ``on_tick`` has something to decide (``inf``: nothing pending)."""
        if self.lost:
            return math.inf
        d = self._life_clock + self._life_s()
        if self.suspect_since is not None:
            d = min(d, self.suspect_since + self.settings.disconnect_grace_s)
        return d

    # -- helpers ------------------------------------------------------------------------------------

    def judged_interval_ms(self) -> int:
        """The interval the lives counter uses now."""
        ms = max(self.interval_ms, self.settings.min_interval_ms)
        if self.beats == 0 and self.connected:
            ms = max(ms, self.first_beat_interval_ms)
        return ms

    def _life_s(self) -> float:
        return self.settings.life_factor * self.judged_interval_ms() / 1000.0

    def _lose(self, detail: str) -> list[Verdict]:
        self.lost = True
        self.suspect_since = None
        self.lives = 0
        self.state = State.DEAD
        self.failed = EventKind.LOST
        return [(EventKind.LOST, detail)]
