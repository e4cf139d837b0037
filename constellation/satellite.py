"""`Satellite`: the base class authors subclass, composed of the runtime services.

```python
class Sputnik(Satellite):
    def do_initializing(self, config): self.rate = config.get_float("rate", 1.0)
    async def do_run(self, stop): await stop; return "done"

async with Sputnik("One", "edda") as sat:
    await sat.wait_closed()
```
It *has* a CommandServer (ROUTER), a HeartbeatPublisher (XPUB), a MonitoringPublisher (XPUB) with a
MetricScheduler, a TransitionRunner and optionally a Discovery; each runs as one task on one event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ClassVar

import zmq
import zmq.asyncio

from protocols.chirp import ServiceId
from protocols.names import canonical_name
from protocols.states import Role, State

from .command_server import CommandServer
from .commands import collect_commands
from .config import Configuration
from .dispatch import CommandTable
from .errors import ServiceError
from .framework import read_autonomy
from .fsm import Snapshot, StateMachine
from .heartbeat import HeartbeatPublisher
from .lifecycle import HookResult, TransitionRunner, call_hook, inline_hook
from .metrics import BUILTIN, DEFAULT_METRIC_STATES, MetricCalls, MetricScheduler, collect_metrics
from .monitoring import CmdpLogHandler, MonitoringPublisher
from .peer_events import PeerEvent, PeerMonitor, apply_legacy_event
from .peers.conditions import Conditions
from .satlog import SatelliteLog
from .standard import CNSTLN_VERSION, StandardCommands
from .stop import StopToken

__all__ = ["Satellite"]

_LINGER_MS = 500
Adapter = logging.LoggerAdapter[logging.Logger]


class Satellite:
    """Base class of a satellite; override the `do_*` hooks (sync or async) and add `@command`s."""

    version: ClassVar[str] = CNSTLN_VERSION
    satellite_type: ClassVar[str | None] = None
    #: Failure-detection tunables of the peer monitor (None: `MonitorSettings()`, issue 4's defaults).
    monitor_settings: ClassVar[Any] = None
    #: Log records waiting for the CMDP socket; beyond this they are dropped (and counted).
    log_queue_size: ClassVar[int] = 8192

    def __init_subclass__(cls, version: str | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if version is not None:
            cls.version = version

    def __init__(
        self,
        name: str,
        group: str = "",
        *,
        type_name: str | None = None,
        interfaces: Sequence[str] | None = None,
        cmd_port: int = 0,
        hb_port: int = 0,
        mon_port: int = 0,
        bind: str = "*",
        discovery: Sequence[str] = ("chirp", "zeroconf"),
        forward_logs: bool = True,
        listen_fds: Mapping[str, int] | None = None,
    ) -> None:
        self.type_name = type_name or self.satellite_type or type(self).__name__
        self.name = canonical_name(self.type_name, name)
        self.group = group
        self._interfaces = interfaces
        self._ports = {"cmd": cmd_port, "hb": hb_port, "mon": mon_port}
        self._bind = bind
        # Listening TCP descriptors bound by `constellation.launch` (by port key), adopted by the ZeroMQ
        # sockets instead of a bind of their own; ours to close from here on.
        self._listen_fds = dict(listen_fds or {})
        self._backends = tuple(discovery)
        self._forward_logs = forward_logs
        self.fsm = StateMachine()
        self.role = Role.DYNAMIC
        self.max_heartbeat_interval_s = 30
        self.run_id = ""
        self.degraded = False
        self.degraded_reasons: list[str] = []
        #: The peer monitor; without one set by a subclass, `start()` creates a
        #: `constellation.peers.PeerMonitor` fed by discovery (none without discovery).
        self.peers: PeerMonitor | None = None
        #: The `constellation.peers.Reactions` listener applying issue 4's role table (with the monitor).
        self.reactions: Any = None
        self._config = Configuration()
        self._conditions = Conditions()
        extra = {"satellite": self.name}
        self.log: Adapter = SatelliteLog(
            logging.getLogger(type(self).__module__), {**extra, "component": self.type_name.upper()}
        )
        # the runtime's own: their topics (CTRL, FSM, LINK, MNTR) come from the logger names
        # (`logtopics.RUNTIME_TOPICS`), as for the runtime's module loggers
        self._ctrl_log: Adapter = SatelliteLog(logging.getLogger(__name__), extra)
        self._fsm_log: Adapter = SatelliteLog(logging.getLogger("constellation.lifecycle"), extra)
        self._link_log: Adapter = SatelliteLog(logging.getLogger("constellation.heartbeat"), extra)
        self._mntr_log: Adapter = SatelliteLog(logging.getLogger("constellation.monitoring"), extra)
        self.ports: dict[str, int] = {}
        self._ctx: zmq.asyncio.Context | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._exit = asyncio.Event()
        self._closed = False
        self._handler: CmdpLogHandler | None = None
        self._discovery: Any = None
        self._executor: ThreadPoolExecutor | None = None
        self._metric_api = MetricCalls()

    # -- author hooks (defaults behave like 1.0.2) ---------------------------------------------------

    # Declared as plain functions returning `HookResult`, so a subclass may override each hook with a
    # sync or an async method. The defaults run inline on the loop (no thread hop).

    @inline_hook
    def do_initializing(self, config: Configuration) -> HookResult:
        return "Initialized"

    @inline_hook
    def do_launching(self) -> HookResult:
        return "Launched"

    @inline_hook
    def do_landing(self) -> HookResult:
        return "Landed"

    @inline_hook
    def do_starting(self, run_id: str) -> HookResult:
        return "Started"

    @inline_hook
    def do_run(self, stop: StopToken) -> HookResult:
        return self._default_run(stop)

    async def _default_run(self, stop: StopToken) -> str:
        await stop
        return "Finished RUN"

    @inline_hook
    def do_stopping(self) -> HookResult:
        return "Stopped"

    @inline_hook
    def do_interrupting(self) -> HookResult:
        """Default: stop, then land (1.0.2)."""
        return self._default_interrupting()

    async def _default_interrupting(self) -> str:
        await self._call(self.do_stopping)
        await self._call(self.do_landing)
        return "Interrupted"

    @inline_hook
    def do_failure(self) -> HookResult:
        return "Failed gracefully."

    async def _call(self, fn: Any, *args: Any) -> Any:
        """Run a hook: async on the loop, sync in this satellite's worker threads."""
        return await call_hook(fn, *args, executor=self._executor)

    # -- metrics API -------------------------------------------------------------------------------

    # 1.0.2's names and parameter names (`metric_name`), so that ported satellite code runs unchanged;
    # a description of None (1.0.2 announces it as nil) is "".

    def register_metric(self, name: str, unit: str = "", description: str | None = "") -> None:
        """Announce a metric on `STAT?` (its values come from `stat`). Any time, `__init__` included."""
        self._metric_api.register_metric(name, unit, "" if description is None else description)

    def register_scheduled_metric(
        self,
        name: str,
        unit: str,
        description: str | None,
        interval: float,
        value_cb: Callable[[], Any],
        allowed_states: Iterable[object] | None = DEFAULT_METRIC_STATES,
    ) -> None:
        """Sample `value_cb()` every `interval` s while subscribed, like an `@metric` method (sync
        callbacks in a worker thread; None sends nothing), in `allowed_states` (our `State`s, 1.0.2's
        `SatelliteState`s or their names; None: any). Any time (`__init__`, a hook's thread); replaces
        a scheduled metric of the same name. ValueError or EncodeError for what `@metric` refuses."""
        text = "" if description is None else description
        self._metric_api.register_scheduled_metric(name, unit, text, interval, value_cb, allowed_states)

    def unregister_metric(self, metric_name: str) -> None:
        """Stop a scheduled metric and withdraw any metric from `STAT?` (unknown names: nothing)."""
        self._metric_api.unregister_metric(metric_name)

    def reset_metrics(self) -> None:
        """Withdraw the metrics registered by the calls above (or `stat`); the runtime's own and the
        `@metric` ones stay (1.0.2 also drops its own STATE and RUN_ID: not copied)."""
        self._metric_api.reset_metrics()

    def should_stat(self, metric_name: str) -> bool:
        """True if someone subscribed to this metric: skip computing a value nobody reads."""
        return self._metric_api.should_stat(metric_name)

    def stat(self, metric_name: str, value: Any, unit: str | None = None) -> None:
        """Send a one-off metric value (thread-safe; only if someone subscribed). An unregistered name
        is registered (and announced on `STAT?`) with the first value the wire can carry; None sends
        nothing; a value, name or unit the wire cannot carry is an `EncodeError` (nothing announced)."""
        self._metric_api.stat(metric_name, value, unit)

    # -- lifecycle ---------------------------------------------------------------------------------

    async def __aenter__(self) -> Satellite:
        try:
            await self.start()
        except BaseException:  # `__aexit__` will not run: close what the start opened (or was given)
            await self.aclose()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def _bind_socket(self, kind: int, key: str, **options: int) -> zmq.asyncio.Socket:
        """A socket with `options` set before binding (a listener copies the options at bind time)."""
        assert self._ctx is not None
        sock = self._ctx.socket(kind)
        sock.setsockopt(zmq.LINGER, _LINGER_MS)
        for name, value in options.items():
            sock.setsockopt(getattr(zmq, name), value)
        fd = self._listen_fds.pop(key, None)
        try:
            if fd is not None:
                sock.setsockopt(zmq.USE_FD, fd)  # bind() adopts the listening socket (address ignored)
                sock.bind(f"tcp://{self._bind}:{self._ports[key]}")
                fd = None  # libzmq's listener owns and closes it now
                endpoint = sock.getsockopt(zmq.LAST_ENDPOINT)  # the descriptor's own port
                self.ports[key] = int(bytes(endpoint).rpartition(b":")[2])
            elif self._ports[key]:
                sock.bind(f"tcp://{self._bind}:{self._ports[key]}")
                self.ports[key] = self._ports[key]
            else:
                self.ports[key] = sock.bind_to_random_port(f"tcp://{self._bind}")
        except zmq.ZMQError as exc:
            sock.close(0)
            if fd is not None:
                os.close(fd)
            raise ServiceError(f"cannot bind {key} port {self._ports[key]} on {self._bind}: {exc}") from None
        return sock

    def _close_listen_fds(self) -> None:
        for fd in self._listen_fds.values():
            with contextlib.suppress(OSError):
                os.close(fd)
        self._listen_fds.clear()

    async def start(self) -> None:
        # Our own pool (not the loop's default) so that a hook stuck forever cannot block the exit.
        self._executor = ThreadPoolExecutor(max_workers=16, thread_name_prefix=f"{self.name}-hook")
        self._ctx = zmq.asyncio.Context()
        try:
            # MAXMSGSIZE: a peer sending more is disconnected (inbound on the XPUBs: subscriptions only).
            cmd = self._bind_socket(zmq.ROUTER, "cmd", MAXMSGSIZE=16 * 2**20)
            hb = self._bind_socket(zmq.XPUB, "hb", XPUB_VERBOSER=1, MAXMSGSIZE=2**16)
            # SNDHWM: a burst to a slow subscriber queues instead of vanishing.
            mon = self._bind_socket(zmq.XPUB, "mon", XPUB_VERBOSE=1, MAXMSGSIZE=2**16, SNDHWM=100_000)
        except ServiceError:
            self._ctx.destroy(0)
            self._close_listen_fds()
            raise
        self._mon = MonitoringPublisher(mon, self.name, self._mntr_log, self.log_queue_size)
        for topic in (self.type_name, "LINK", "FSM", "CTRL", "MNTR"):  # 1.0.2 order
            self._mon.register_log_topic(topic)
        self._mon.register_metric("RUN_ID", "", "Current run identifier. Updated when changed.")
        self._mon.register_metric("STATE", "", "Current satellite state. Updated when changed.")
        self._mon.register_metric("LOG_DROPPED", "", "Log messages dropped because the queue was full.")
        specs = [(s, None) for s in BUILTIN] + [(s, self) for s in collect_metrics(type(self)).values()]
        self._metrics = MetricScheduler(self._mon, self.fsm, specs, self._mntr_log, self._executor)
        self._mon.on_subscriptions = self._metrics.wake
        self._metric_api.attach(self._mon, self._metrics)
        self._hb = HeartbeatPublisher(
            hb,
            self.name,
            self.fsm,
            lambda: self.role,
            lambda: self.max_heartbeat_interval_s * 1000,
            self._link_log,
        )
        self._runner = TransitionRunner(self, self._fsm_log)
        self._commands = CommandTable(self.name, lambda: self.fsm.state, self._ctrl_log, self._executor)
        standard = StandardCommands(self)
        for spec in collect_commands(StandardCommands).values():
            if spec.name != "reconfigure" or hasattr(self, "do_reconfigure"):
                self._commands.add(spec, standard, inline=True)
        for spec in collect_commands(type(self)).values():
            self._commands.add(spec, self)
        self._server = CommandServer(cmd, self.name, self._commands, self._ctrl_log)
        self.fsm.add_listener(self._on_state)
        self._handler = CmdpLogHandler(self._mon, self.name, self._forward_logs)
        logging.getLogger().addHandler(self._handler)
        for name, coro in (
            ("cscp", self._server.run()),
            ("chp", self._hb.run()),
            ("cmdp", self._mon.run()),
            ("metrics", self._metrics.run()),
            ("fsm", self._runner.run()),
        ):
            task = asyncio.create_task(coro, name=f"{self.name}:{name}")
            task.add_done_callback(self._service_done)
            self._tasks.append(task)
        if self.peers is not None:
            self._tasks.append(asyncio.create_task(self.peers.run(), name=f"{self.name}:peers"))
        if self._backends:
            try:
                await self._start_discovery()
            except Exception as exc:  # DiscoveryError (bad interface, ...) or OSError
                await self.aclose()
                raise ServiceError(f"discovery failed to start: {exc}") from exc
        self._ctrl_log.info("Satellite %s, version %s ready to launch!", self.name, self.version)

    async def _start_discovery(self) -> None:
        # Imported lazily (`--discovery none` needs no multicast stack) and in a worker thread, so the
        # command socket already answers while zeroconf loads. The module itself, not the package: the
        # package loads its names on first use, which would be here on the loop, where a hook that
        # keeps the GIL (a busy loop, a log flood) made each of the import's ~500 system calls wait a
        # switch interval: get_state took 0.5-2.5 s to answer in a satellite's first second.
        await asyncio.sleep(0)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(
            self._executor, importlib.import_module, "constellation.discovery.discovery"
        )
        module = importlib.import_module("constellation.discovery")
        if self.peers is None:
            # The package is already loaded (conditions); its monitor is what pulls in discovery.
            await loop.run_in_executor(self._executor, importlib.import_module, "constellation.peers.monitor")
            self._attach_monitor(importlib.import_module("constellation.peers"))
        # A custom monitor (tests) may not take discovery input.
        self._discovery = module.Discovery(
            self.group,
            self.name,
            backends=self._backends,
            interfaces=self._interfaces,
            on_appear=getattr(self.peers, "service_appeared", None),
            on_depart=getattr(self.peers, "service_departed", None),
        )
        await self._discovery.start()
        self._discovery.offer(ServiceId.CONTROL, self.ports["cmd"])
        self._discovery.offer(ServiceId.HEARTBEAT, self.ports["hb"])
        self._discovery.offer(ServiceId.MONITORING, self.ports["mon"])
        self._discovery.request(ServiceId.HEARTBEAT)

    def _attach_monitor(self, peers: Any) -> None:
        """Issue 4: a `PeerMonitor` on our context, its events applied by `Reactions` (docs/autonomy.md)."""
        monitor = peers.PeerMonitor(self.name, settings=self.monitor_settings, context=self._ctx)
        self.reactions = peers.Reactions(
            local_state=lambda: self.fsm.state,
            interrupt=self._runner.interrupt,  # ORBIT/RUN -> interrupting; deferred when transitional
            interrupt_defers=True,
            mark_degraded=self.mark_degraded,
            logger=self._link_log,  # peer warnings go out as CMDP logs (LINK topic, as in 1.0.2)
        )
        monitor.add_listener(self.reactions)
        self.peers = monitor
        task = asyncio.create_task(monitor.run(), name=f"{self.name}:peers")
        task.add_done_callback(self._service_done)
        self._tasks.append(task)

    def _service_done(self, task: asyncio.Task[None]) -> None:
        if task.cancelled() or self._closed:
            return
        exc = task.exception()
        self._ctrl_log.critical("Service %s stopped: %r", task.get_name(), exc)
        if self.fsm.state is not State.ERROR:
            self._runner.fail(f"{type(exc).__name__} in {task.get_name()}: {exc}")

    def _on_state(self, snap: Snapshot) -> None:
        self._mon.stat("STATE", snap.state.name)
        self._metrics.wake()

    def request_exit(self) -> None:
        """Leave `wait_closed()` (shutdown command, SIGINT/SIGTERM)."""
        self._exit.set()

    async def wait_closed(self) -> None:
        await self._exit.wait()

    async def aclose(self) -> None:
        """DEPART, stop every service, close the sockets (bounded linger). Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._close_listen_fds()  # never started: the pre-bound listeners are still ours
        if self._handler is not None:
            logging.getLogger().removeHandler(self._handler)
        if self._discovery is not None:
            try:
                await self._discovery.aclose()
            except Exception:
                self._ctrl_log.exception("Discovery did not close cleanly")
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._ctx is not None:
            self._ctx.destroy(linger=_LINGER_MS)
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)

    # -- framework plumbing (called by the runner and by peer monitoring) ---------------------------

    def _apply_framework(self, config: Configuration) -> None:
        role, max_s = read_autonomy(config)
        if max_s > 65:
            self._link_log.warning(
                "max_heartbeat_interval %d s capped at 65 s (uint16 ms on the wire)", max_s
            )
        self.role, self.max_heartbeat_interval_s = role, min(max_s, 65)

    def _begin_run(self, run_id: str) -> None:
        self.run_id = run_id
        self.degraded = False
        self.degraded_reasons = []

    def mark_degraded(self, reason: str) -> None:
        """Mark the current run degraded (only while starting or in RUN; cleared at the next start).

        Shown as `degraded: true` in the `get_run_id` tags; every reason is logged (FSM topic) and kept
        in `degraded_reasons`.
        """
        if self.fsm.state not in (State.starting, State.RUN):
            return
        if len(self.degraded_reasons) < 64:
            self.degraded_reasons.append(reason)
        if not self.degraded:
            self.degraded = True
            self._fsm_log.warning("Marking run %s as degraded: %s", self.run_id, reason)
        else:
            self._fsm_log.info("Run %s degraded further: %s", self.run_id, reason)

    def on_peer_event(self, event: PeerEvent) -> None:
        """Apply issue 4's role table to one injected event (no once-per-peer latch).

        The `constellation.peers.PeerMonitor` created by `start()` does not use this: its events go to
        `self.reactions`, which adds the latch. Kept for monitors implementing only the seam.
        """
        apply_legacy_event(event, self.fsm.state, self._runner.interrupt, self.mark_degraded, self._link_log)
