"""``Controller``: discover the satellites of a group, command them, follow their heartbeats.

The controller keeps no state of its own about satellites beyond what the wire tells it: discovery
(CONTROL and HEARTBEAT offers) decides who is there, heartbeats decide what state they are in. Each
satellite has a :class:`CommandLink` (a REQ socket owned by one task) and a :class:`HeartbeatWatch`
(a SUB socket owned by another). Everything runs on one event loop; snapshots are immutable.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Sequence
from types import TracebackType
from typing import Any

import zmq
import zmq.asyncio

from constellation.discovery import BACKENDS, Discovery, Service
from protocols import State, canonical_name
from protocols import chirp as wire
from protocols.chirp import ServiceId
from protocols.chp import Heartbeat
from protocols.cscp import TRANSITION_EVENTS

from .errors import CommandError, ControllerError, SatelliteFailed, StateTimeout, UnknownSatellite
from .heartbeats import HeartbeatWatch, Liveness
from .link import CommandLink
from .model import Outcome, Replies, Reply, SatelliteInfo, Summary, summarize
from .record import SatelliteRecord as _Satellite

log = logging.getLogger(__name__)

_FAILED = frozenset({State.ERROR, State.SAFE, State.DEAD})


class Controller:
    """Async controller for one Constellation group. Use ``async with Controller(group) as ctl``.

    ``name`` gives the canonical name ``Controller.<name>`` (the CSCP sender). The controller offers
    no service: it serves none (1.0.2's controller offers MONITORING without serving it).
    """

    def __init__(
        self,
        group: str,
        name: str = "ctl",
        *,
        interfaces: Sequence[str] | None = None,
        backends: Sequence[str] = BACKENDS,
        command_timeout: float = 3.0,
        liveness: Liveness | None = None,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        self.group = group
        self.canonical_name = canonical_name("Controller", name)  # raises InvalidName with the rule
        self.command_timeout = command_timeout
        self._liveness = liveness or Liveness()
        self._on_change = on_change
        self._context = zmq.asyncio.Context()
        self._discovery = Discovery(
            group,
            self.canonical_name,
            backends=backends,
            interfaces=interfaces,
            on_appear=self._appeared,
            on_depart=self._departed,
        )
        self._sats: dict[bytes, _Satellite] = {}
        self._names: dict[str, bytes] = {}  # lower-cased canonical name -> host id
        self._attaching: dict[bytes, asyncio.Task[None]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._tick = asyncio.Event()
        self._closed = False

    # -- lifecycle ----------------------------------------------------------------------------------

    async def start(self) -> None:
        self._discovery.request(ServiceId.CONTROL)
        self._discovery.request(ServiceId.HEARTBEAT)
        await self._discovery.start()

    async def aclose(self) -> None:
        """Forget every satellite (without commanding them), stop discovery, close sockets. Idempotent."""
        if self._closed:
            return
        self._closed = True
        await self._discovery.aclose()
        for task in list(self._attaching.values()) + list(self._tasks):
            task.cancel()
        for host_id in list(self._sats):
            await self._forget(host_id, grace=0.0)
        await asyncio.gather(*self._attaching.values(), *self._tasks, return_exceptions=True)
        self._context.destroy(linger=0)

    async def __aenter__(self) -> Controller:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    # -- views --------------------------------------------------------------------------------------

    @property
    def satellites(self) -> dict[str, SatelliteInfo]:
        """Snapshot: canonical name -> SatelliteInfo, in discovery order."""
        return {s.name: s.snapshot() for s in self._sats.values()}

    @property
    def states(self) -> dict[str, State]:
        return {name: info.state for name, info in self.satellites.items()}

    @property
    def state(self) -> Summary:
        """Group summary: lowest steady state, TRANSITIONING, ERROR (any ERROR/SAFE/lost) or EMPTY."""
        return summarize(self.states.values())

    def get(self, name: str) -> SatelliteInfo:
        return self._lookup(name).snapshot()

    # -- commands -----------------------------------------------------------------------------------

    async def command(
        self, name: str, command: str, payload: Any = None, *, timeout: float | None = None
    ) -> Reply:
        """Send ``command`` to satellite ``name``; return its typed Reply (any verb type).

        Raises UnknownSatellite, CommandTimeout (the link recovers by itself), SatelliteGone.
        """
        sat = self._lookup(name)
        seq = sat.state_seq
        reply = await sat.link.request(command, payload, self.command_timeout if timeout is None else timeout)
        if reply.ok and command.lower() in TRANSITION_EVENTS and sat.state_seq == seq:
            sat.outdated = True  # until a heartbeat shows the change (1.0.2's "outdated" flag)
            self._notify()
        if reply.ok and command.lower() == "shutdown":
            sat.leaving = True  # it said it leaves: when its connection drops it is gone, DEPART or not
            if sat.lost:
                self._spawn(self._forget(sat.host_id, grace=0.0), "forget")
        return reply

    async def command_all(
        self,
        command: str,
        payload: Any = None,
        *,
        names: Iterable[str] | None = None,
        type: str | None = None,
        timeout: float | None = None,
    ) -> Replies:
        """Send ``command`` to every selected satellite in parallel; name -> Reply or CommandError."""
        targets = self._select(names, type)

        async def one(sat: _Satellite) -> Outcome:
            try:
                return await self.command(sat.name, command, payload, timeout=timeout)
            except CommandError as exc:
                return exc

        outcomes = await asyncio.gather(*(one(s) for s in targets))
        return Replies(command, {s.name: o for s, o in zip(targets, outcomes, strict=True)})

    # -- waiting ------------------------------------------------------------------------------------

    async def wait_for(self, predicate: Callable[[], bool], timeout: float) -> None:
        """Wait until ``predicate()`` (checked on every change) is true; TimeoutError after ``timeout``."""
        async with asyncio.timeout(timeout):
            while not predicate():
                tick = self._tick
                await tick.wait()

    async def await_satellites(
        self, names: Iterable[str] | int, timeout: float = 10.0
    ) -> dict[str, SatelliteInfo]:
        """Wait until the named satellites (or at least N of them) are attached; return a snapshot."""
        if isinstance(names, int):
            n = names
            pred: Callable[[], bool] = lambda: len(self._sats) >= n  # noqa: E731
        else:
            wanted = [x.lower() for x in names]
            pred = lambda: all(x in self._names for x in wanted)  # noqa: E731
        try:
            await self.wait_for(pred, timeout)
        except TimeoutError:
            raise StateTimeout(
                f"satellites {names!r} not all found in {timeout:g} s; have {list(self.satellites)}"
            ) from None
        return self.satellites

    async def await_state(
        self, state: State, names: Iterable[str] | None = None, *, timeout: float = 30.0
    ) -> dict[str, SatelliteInfo]:
        """Wait until every selected satellite reports ``state`` in a heartbeat (after any command we sent).

        Raises SatelliteFailed as soon as a selected satellite is in ERROR/SAFE (not just commanded out
        of it) or lost, unless that is the state asked for; StateTimeout after ``timeout``.
        """
        state = State(state)
        wanted = None if names is None else [n.lower() for n in names]

        def check() -> bool:
            sats = (
                self._select(wanted, None) if wanted is None or all(w in self._names for w in wanted) else []
            )
            for s in sats:
                current = State.DEAD if s.lost else s.state
                if current in _FAILED and current is not state and not s.outdated:
                    raise SatelliteFailed(f"{s.name} is {current.name} ({s.status or 'no status'})")
            return bool(sats) and all(
                (State.DEAD if s.lost else s.state) is state and not s.outdated for s in sats
            )

        try:
            await self.wait_for(check, timeout)
        except TimeoutError:
            now = {n: (i.state.name, "outdated" if i.outdated else "") for n, i in self.satellites.items()}
            raise StateTimeout(f"not all in {state.name} after {timeout:g} s: {now}") from None
        return self.satellites

    # -- internals: lookup --------------------------------------------------------------------------

    def _lookup(self, name: str) -> _Satellite:
        host_id = self._names.get(name.lower())
        if host_id is None:
            raise UnknownSatellite(
                f"no satellite {name!r} in group {self.group}; known: {list(self.satellites)}"
            )
        return self._sats[host_id]

    def _select(self, names: Iterable[str] | None, type_: str | None) -> list[_Satellite]:
        sats = list(self._sats.values()) if names is None else [self._lookup(n) for n in names]
        if type_ is not None:
            sats = [s for s in sats if s.name.partition(".")[0].lower() == type_.lower()]
        return sats

    def _notify(self) -> None:
        self._tick.set()
        self._tick = asyncio.Event()
        if self._on_change is not None:
            try:
                self._on_change()
            except Exception:
                log.exception("on_change callback failed")

    def _spawn(self, coro: Any, name: str) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        task.add_done_callback(_report)
        return task

    # -- internals: discovery -----------------------------------------------------------------------

    def _appeared(self, svc: Service) -> None:
        if self._closed:
            return
        if svc.service is ServiceId.CONTROL:
            old = self._attaching.pop(svc.host_id, None)
            if old is not None:
                old.cancel()
            self._attaching[svc.host_id] = asyncio.create_task(
                self._attach(svc), name=f"attach {svc.endpoint}"
            )
        elif svc.service is ServiceId.HEARTBEAT and svc.host_id in self._sats:
            self._spawn(self._watch(self._sats[svc.host_id], svc.endpoint), f"watch {svc.endpoint}")

    def _departed(self, svc: Service) -> None:
        if self._closed:
            return
        if svc.service is ServiceId.CONTROL:
            task = self._attaching.pop(svc.host_id, None)
            if task is not None:
                task.cancel()
            self._spawn(self._forget(svc.host_id), "forget")
        elif svc.service is ServiceId.HEARTBEAT and (sat := self._sats.get(svc.host_id)) is not None:
            watch = sat.watch
            if watch is not None and watch.endpoint == svc.endpoint:
                sat.watch = None
                self._spawn(watch.aclose(), "unwatch")
                self._lost(sat, "heartbeat service departed")

    async def _attach(self, svc: Service) -> None:
        """1.0.2's sequence: get_name, get_state (needs last_changed), get_commands; then heartbeats."""
        link = CommandLink(self._context, svc.endpoint, self.canonical_name, label=svc.endpoint)
        link.start()
        try:
            name_reply = (await link.request("get_name", timeout=self.command_timeout)).raise_for_status()
            name = name_reply.text
            link.label = name
            state_reply = (await link.request("get_state", timeout=self.command_timeout)).raise_for_status()
            state = State(state_reply.payload)
            cmds = await link.request("get_commands", timeout=self.command_timeout)
            commands = (
                {str(k): str(v) for k, v in cmds.payload.items()}
                if cmds.ok and isinstance(cmds.payload, dict)
                else {}
            )
        except (ControllerError, ValueError, TypeError) as exc:
            log.warning("could not attach the satellite at %s: %s", svc.endpoint, exc)
            await link.aclose()
            return
        except BaseException:
            await link.aclose()
            raise
        finally:
            if self._attaching.get(svc.host_id) is asyncio.current_task():
                del self._attaching[svc.host_id]
        if wire.host_id(name) != svc.host_id:
            log.warning("%s: host id of its beacon does not match its name", name)
        if (clash := self._names.get(name.lower())) is not None and clash != svc.host_id:
            await self._forget(clash)
        await self._forget(svc.host_id)  # a replaced CONTROL service of the same host
        sat = _Satellite(name, svc.host_id, link, state, commands)
        self._sats[svc.host_id] = sat
        self._names[name.lower()] = svc.host_id
        log.info("attached %s at %s in %s", name, svc.endpoint, state.wire_name)
        hb = next(
            (s for s in self._discovery.services(ServiceId.HEARTBEAT) if s.host_id == svc.host_id), None
        )
        if hb is not None:
            await self._watch(sat, hb.endpoint)
        self._notify()

    async def _watch(self, sat: _Satellite, endpoint: str) -> None:
        old = sat.watch
        if old is not None and old.endpoint == endpoint:
            return
        sat.watch = HeartbeatWatch(
            self._context,
            endpoint,
            on_beat=lambda hb: self._beat(sat, hb),
            on_lost=lambda why: self._lost(sat, why),
            liveness=self._liveness,
            label=sat.name,
        )
        sat.watch.start()
        if old is not None:
            await old.aclose()

    async def _forget(self, host_id: bytes, grace: float = 1.0) -> None:
        sat = self._sats.pop(host_id, None)
        if sat is None:
            return
        if self._names.get(sat.name.lower()) == host_id:
            del self._names[sat.name.lower()]
        log.info("removed %s", sat.name)
        self._notify()
        await sat.link.aclose(grace)
        if sat.watch is not None:
            await sat.watch.aclose()

    # -- internals: heartbeats ----------------------------------------------------------------------

    def _beat(self, sat: _Satellite, hb: Heartbeat) -> None:
        if sat.apply(hb):
            self._notify()

    def _lost(self, sat: _Satellite, why: str) -> None:
        if sat.lost or self._sats.get(sat.host_id) is not sat:
            return
        if sat.leaving:
            log.info("%s left after shutdown (%s)", sat.name, why)
            self._spawn(self._forget(sat.host_id, grace=0.0), "forget")
            return
        log.warning("%s lost: %s", sat.name, why)
        sat.mark_lost()
        self._notify()


def _report(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and (exc := task.exception()) is not None:
        log.error("controller task %s failed", task.get_name(), exc_info=exc)
