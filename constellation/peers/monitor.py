"""``PeerMonitor``: subscribe to every peer's heartbeats, judge their liveness, report events.

Feed it discovery (``service_appeared``/``service_departed`` are ``Discovery``'s callbacks) or call
``watch``/``depart`` directly. Each peer gets one task (``watcher.watch_peer``) owning its SUB socket;
the table is keyed by the CHIRP host id (md5 of the lower-cased canonical name), so names are
case-insensitive and known before the first heartbeat. See docs/autonomy.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import zmq
import zmq.asyncio

from protocols import State
from protocols import chirp as chirp_wire
from protocols import chp as chp_wire
from protocols.chirp import ServiceId

from ..discovery import Service
from .events import PeerEvent, PeerInfo
from .policy import EventKind
from .retune import PingRetuner, Replacement
from .settings import MonitorSettings
from .tracker import PeerTracker, Verdict
from .watcher import watch_peer

__all__ = ["PeerMonitor", "PeerMonitorClosed"]

log = logging.getLogger(__name__)

Listener = Callable[[PeerEvent], None]


class PeerMonitorClosed(RuntimeError):
    """The monitor is not running (not started yet, or closed)."""


@dataclass(slots=True)
class _Peer:
    tracker: PeerTracker
    task: asyncio.Task[None]


class PeerMonitor:
    """Watches the heartbeats of the group's peers; one asyncio task per peer.

    ``on_event`` listeners run on the event loop, synchronously, in detection order; an exception in
    one is logged and counted. ``own_name`` (our canonical name) is never watched.
    """

    def __init__(
        self,
        own_name: str | None = None,
        *,
        settings: MonitorSettings | None = None,
        on_event: Listener | None = None,
        context: zmq.asyncio.Context | None = None,
    ) -> None:
        self.settings = settings or MonitorSettings()
        self._own_id = chirp_wire.host_id(own_name) if own_name else None
        self._listeners: list[Listener] = [on_event] if on_event else []
        self._ctx = context
        self._own_ctx = context is None
        self._peers: OrderedDict[bytes, _Peer] = OrderedDict()
        self._pending_departs: dict[bytes, asyncio.Handle] = {}
        self._recently_failed: OrderedDict[bytes, str] = OrderedDict()  # name: emit RECOVERED on return
        self._counters: Counter[str] = Counter()
        self._changed = asyncio.Event()
        self._early: dict[bytes, Service] = {}  # offers seen before start(): watched at start
        self._tasks: set[asyncio.Task[None]] = set()  # every watcher, also dropped ones still closing
        self._retuner = PingRetuner(self.settings, self._rebuild, self._spawn)
        self._state = "new"  # new -> started -> closed

    # -- lifecycle ----------------------------------------------------------------------------------

    async def start(self) -> None:
        if self._state != "new":
            raise PeerMonitorClosed(f"PeerMonitor already {self._state}")
        if self._ctx is None:
            self._ctx = zmq.asyncio.Context()
        self._state = "started"
        early, self._early = self._early, {}
        for svc in early.values():
            self.service_appeared(svc)

    async def aclose(self) -> None:
        """Cancel every watcher and close its sockets; idempotent. No events are emitted."""
        if self._state == "closed":
            return
        self._state = "closed"
        for handle in self._pending_departs.values():
            handle.cancel()
        self._pending_departs.clear()
        self._peers.clear()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        if self._own_ctx and self._ctx is not None:
            self._ctx.term()  # every socket is closed (linger 0): returns at once
        self._notify()

    async def run(self) -> None:
        """Start (if not yet started), run until cancelled, then close: for a service ``TaskGroup``.

        Matches the runtime's ``peer_events.PeerMonitor`` protocol (``run``, ``is_present``,
        ``state_of``).
        """
        if self._state == "new":
            await self.start()
        try:
            await asyncio.Event().wait()
        finally:
            await self.aclose()

    @property
    def running(self) -> bool:
        return self._state == "started"

    async def __aenter__(self) -> PeerMonitor:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    def add_listener(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def remove_listener(self, listener: Listener) -> None:
        with contextlib.suppress(ValueError):
            self._listeners.remove(listener)

    # -- input: discovery ---------------------------------------------------------------------------

    def service_appeared(self, svc: Service) -> None:
        """``Discovery(on_appear=...)``: watch every HEARTBEAT service but our own."""
        if svc.service is not ServiceId.HEARTBEAT or svc.host_id == self._own_id:
            return
        if self._state == "new":
            if len(self._early) < self.settings.max_peers:
                self._early[svc.host_id] = svc
            return
        if self._state != "started":
            return
        pending = self._pending_departs.pop(svc.host_id, None)
        if pending is not None:
            pending.cancel()
        self.watch(svc.endpoint, host_id=svc.host_id, name=svc.name)

    def service_departed(self, svc: Service) -> None:
        """``Discovery(on_depart=...)``: an orderly departure, unless the same host re-offers at once.

        ``Discovery`` reports a port change as depart + appear in one go; the decision is therefore
        deferred to the next loop iteration, and an appear in between makes it a replacement.
        """
        if svc.service is not ServiceId.HEARTBEAT:
            return
        if self._state == "new":
            early = self._early.get(svc.host_id)
            if early is not None and early.port == svc.port:
                del self._early[svc.host_id]
            return
        if self._state != "started":
            return
        peer = self._peers.get(svc.host_id)
        if peer is None or peer.tracker.endpoint != svc.endpoint:
            return
        old = self._pending_departs.pop(svc.host_id, None)
        if old is not None:
            old.cancel()
        loop = asyncio.get_running_loop()
        self._pending_departs[svc.host_id] = loop.call_soon(self.depart, svc.host_id, svc.endpoint)

    # -- input: direct ------------------------------------------------------------------------------

    def watch(self, endpoint: str, *, host_id: bytes | None = None, name: str | None = None) -> None:
        """Subscribe to the heartbeats at ``endpoint`` (``tcp://addr:port``) of peer ``name``/``host_id``.

        A peer already watched at another endpoint is replaced (a restart under the same name): its
        old subscription closes without a LOST, and a REPLACED event is emitted.
        """
        if self._state != "started":
            raise PeerMonitorClosed(f"PeerMonitor is {self._state}")
        if host_id is None:
            if not name:
                raise ValueError("watch() needs the peer's canonical name or its host id")
            host_id = chirp_wire.host_id(name)
        if host_id == self._own_id:
            return
        current = self._peers.get(host_id)
        if current is not None:
            if current.tracker.endpoint == endpoint:
                return
            name = name or current.tracker.name
            self._drop(host_id)
            self._emit(current.tracker, [(EventKind.REPLACED, f"now at {endpoint}")])
        elif len(self._peers) >= self.settings.max_peers and not self._evict_lost():
            self._counters["dropped_full"] += 1
            log.warning("peer table full (%d): not watching %s", self.settings.max_peers, endpoint)
            return
        tracker = PeerTracker(host_id, endpoint, name, self.settings, time.monotonic())
        tracker.zmtp_ivl_ms = self.settings.zmtp_ivl_for(len(self._peers) + 1)
        self._peers[host_id] = _Peer(tracker, self._start_watcher(tracker))
        self._update_first_beat_allowance()
        self._schedule_retunes()
        self._notify()

    def depart(self, host_id: bytes, endpoint: str | None = None) -> None:
        """The peer left in an orderly way (CHIRP DEPART): stop watching it, emit DEPARTED."""
        self._pending_departs.pop(host_id, None)
        peer = self._peers.get(host_id)
        if peer is None or (endpoint is not None and peer.tracker.endpoint != endpoint):
            return
        self._drop(host_id)
        detail = "orderly departure (CHIRP DEPART)"
        if peer.tracker.lost:
            detail += " after it was declared lost"
        peer.tracker.state = State.DEAD
        self._emit(peer.tracker, [(EventKind.DEPARTED, detail)])

    # -- output -------------------------------------------------------------------------------------

    def peers(self) -> list[PeerInfo]:
        return [_info(p.tracker) for p in self._peers.values()]

    def peer(self, name: str) -> PeerInfo | None:
        p = self._peers.get(chirp_wire.host_id(name))
        return None if p is None else _info(p.tracker)

    def state_of(self, name: str) -> State | None:
        """The peer's last heartbeat state (DEAD if lost or not heard from yet); None if not watched.

        ``name`` is case-insensitive.
        """
        p = self._peers.get(chirp_wire.host_id(name))
        return None if p is None else p.tracker.state

    def is_present(self, name: str) -> bool:
        """Watched, heard from, and not lost (1.0.2's test for conditional transitions)."""
        return self.state_of(name) not in (None, State.DEAD)

    async def changed(self) -> None:
        """Return at the next change of any peer (heartbeat with a new state, event, add, removal)."""
        event = self._changed
        await event.wait()

    @property
    def counters(self) -> dict[str, int]:
        """``heartbeats``, ``malformed``, ``events``, ``listener_errors``, ``dropped_full``, ..."""
        return dict(self._counters)

    # -- internals ----------------------------------------------------------------------------------

    def _start_watcher(
        self, tracker: PeerTracker, connected: asyncio.Event | None = None
    ) -> asyncio.Task[None]:
        assert self._ctx is not None
        task = self._spawn(self._guarded(tracker, connected))
        task.set_name(f"peer-watch-{tracker.name or tracker.host_id.hex()}")
        return task

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _schedule_retunes(self) -> None:
        if self._state == "started":
            self._retuner.schedule(
                ((h, p.tracker.zmtp_ivl_ms) for h, p in self._peers.items()), len(self._peers)
            )

    def _rebuild(self, host_id: bytes) -> Replacement | None:
        """``PingRetuner``'s callback: a new subscription with the interval the group needs now."""
        peer = self._peers.get(host_id)
        if peer is None or peer.tracker.lost or self._state != "started":
            return None  # gone, or lost (libzmq reconnects with the old interval)
        want = self.settings.zmtp_retune_to(peer.tracker.zmtp_ivl_ms, len(self._peers))
        if want is None:
            return None
        self._counters["zmtp_retunes"] += 1
        old, connected = peer.task, asyncio.Event()
        peer.tracker.zmtp_ivl_ms = want
        peer.tracker.overlapping += 1
        peer.task = self._start_watcher(peer.tracker, connected)
        return Replacement(old, peer.task, connected, peer.tracker)

    async def _guarded(self, tracker: PeerTracker, connected: asyncio.Event | None = None) -> None:
        assert self._ctx is not None
        delay = 0.1
        while True:
            try:
                await watch_peer(self._ctx, tracker, self._on_verdicts, self._counters, connected)
            except zmq.ContextTerminated:
                return
            except Exception:  # a bug or resource exhaustion, not input: log it, retry with back-off
                self._counters["watcher_errors"] += 1
                log.exception("peer watcher for %s failed; retrying", tracker.name or tracker.endpoint)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    def _on_verdicts(self, tracker: PeerTracker, verdicts: list[Verdict]) -> None:
        peer = self._peers.get(tracker.host_id)
        if peer is None or peer.tracker is not tracker:
            return  # a replaced or departed peer's last words
        self._emit(tracker, verdicts)
        if verdicts and not tracker.lost:  # e.g. back after a loss: skipped by a retune while lost
            self._retuner.schedule([(tracker.host_id, tracker.zmtp_ivl_ms)], len(self._peers))

    def _emit(self, tracker: PeerTracker, verdicts: list[Verdict]) -> None:
        if not verdicts:
            return
        now = time.monotonic()
        name = tracker.name or tracker.host_id.hex()
        if tracker.beats == 1 and tracker.failed is None and tracker.host_id in self._recently_failed:
            # a peer that failed before (lost, departed) is back under the same name
            verdicts = [*verdicts, (EventKind.RECOVERED, f"back in {tracker.state.name}")]
        for kind, detail in verdicts:
            if kind.is_failure:
                self._remember_failed(tracker.host_id, name)
            elif kind in (EventKind.RECOVERED, EventKind.REPLACED):
                self._recently_failed.pop(tracker.host_id, None)
            event = PeerEvent(name, tracker.role, kind, detail, tracker.state, now)
            self._counters["events"] += 1
            log.debug("%s", event.message)
            for listener in list(self._listeners):
                try:
                    listener(event)
                except Exception:
                    self._counters["listener_errors"] += 1
                    log.exception("peer event listener failed on %s", event.message)
        self._notify()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def _remember_failed(self, host_id: bytes, name: str) -> None:
        self._recently_failed[host_id] = name
        self._recently_failed.move_to_end(host_id)
        while len(self._recently_failed) > self.settings.max_peers:
            self._recently_failed.popitem(last=False)

    def _drop(self, host_id: bytes) -> None:
        peer = self._peers.pop(host_id, None)
        if peer is not None:
            peer.task.cancel()
            self._schedule_retunes()
            self._notify()

    def _update_first_beat_allowance(self) -> None:
        """Before its first beat a connected peer gets the interval of a group twice ours (at least
        ``initial_interval_ms``): every peer has about as many subscribers as we have peers, plus
        controllers and listeners. Raised for every peer not heard from yet as the group grows."""
        ms = max(
            self.settings.initial_interval_ms,
            chp_wire.heartbeat_interval_ms(2 * (len(self._peers) + 1), self.settings.first_beat_max_ms),
        )
        for peer in self._peers.values():
            if peer.tracker.beats == 0:
                peer.tracker.first_beat_interval_ms = max(peer.tracker.first_beat_interval_ms, ms)

    def _evict_lost(self) -> bool:
        for host_id, peer in self._peers.items():
            if peer.tracker.lost:
                self._drop(host_id)
                self._counters["evicted_lost"] += 1
                return True
        return False


def _info(t: PeerTracker) -> PeerInfo:
    return PeerInfo(
        name=t.name or t.host_id.hex(),
        host_id=t.host_id,
        endpoint=t.endpoint,
        role=t.role,
        state=t.state,
        status=t.status,
        interval_ms=t.interval_ms,
        lives=t.lives,
        beats=t.beats,
        last_seen=t.last_seen,
        connected=t.connected,
        lost=t.lost,
    )
