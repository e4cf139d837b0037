"""Periodic metrics: the `@metric` decorator and the scheduler task that samples them.

```python
@metric(unit="degC", interval=1.0)
def temperature(self) -> float | None:
    "Sensor temperature."
    return self.device.read()
```
The metric name is the method name upper-cased (`STAT/TEMPERATURE`). A value is sampled only while
someone subscribed and the state is not NEW, initializing, reconfiguring or ERROR (1.0.2); returning None
sends nothing. Sync callbacks run in a worker thread unless declared `blocking=False`.

As in 1.0.2, metrics are sampled at most every `MIN_INTERVAL` (0.1 s, 1.0.2's polling period): an
interval of 0 means every 0.1 s. A negative or NaN interval is a `ValueError` at declaration. A callback
that raises, or returns a value that cannot be sent (anything but bool, int, float, str), is reported
as a CRITICAL `Could not get metric NAME: ...` on `LOG/CRITICAL/MNTR` (1.0.2's wording) and sampled
again after its interval.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import logging
import math
import numbers
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Executor
from dataclasses import dataclass
from enum import Enum
from typing import Any, TypeVar

from protocols import EncodeError, cmdp
from protocols.states import State

from .fsm import StateMachine
from .monitoring import MonitoringPublisher

__all__ = [
    "DEFAULT_METRIC_STATES",
    "MIN_INTERVAL",
    "MetricCalls",
    "MetricScheduler",
    "MetricSpec",
    "collect_metrics",
    "metric",
    "metric_states",
]

F = TypeVar("F", bound=Callable[..., Any])
_ATTR = "_constellation_metric"
log = logging.getLogger(__name__)
#: Shortest sampling period, seconds: 1.0.2's metric thread wakes every 0.1 s.
MIN_INTERVAL = 0.1

DEFAULT_METRIC_STATES = frozenset(State) - {
    State.NEW,
    State.initializing,
    State.reconfiguring,
    State.ERROR,
    State.DEAD,
}


_STATE_NAMES = {state.name.casefold(): state for state in State}


def metric_states(states: Iterable[object] | None, name: str = "") -> frozenset[State] | None:
    """`allowed_states` as ported code gives them: our `State`s, 1.0.2's `SatelliteState`s (a plain Enum,
    hashed by name: never equal to ours), or state names; None for every state. ValueError for anything
    else (a single name instead of a list included), where it is given."""
    if states is None:
        return None
    if isinstance(states, str | bytes):
        raise ValueError(f"metric {name}: allowed_states must be a list of states, got {states!r}")
    found: set[State] = set()
    for item in states:
        state: State | None = None
        if isinstance(item, State):
            state = item
        elif isinstance(item, str):
            state = _STATE_NAMES.get(item.casefold())
        elif isinstance(item, Enum):  # 1.0.2's SatelliteState: same names, same wire codes
            ours = State.__members__.get(item.name)
            state = ours if ours is not None and ours.value == item.value else None
        elif type(item) is int:  # a wire code
            state = State._value2member_map_.get(item)  # type: ignore[assignment]
        if state is None:
            raise ValueError(f"metric {name}: allowed_states: {item!r} is not a satellite state")
        found.add(state)
    return frozenset(found)


@dataclass(frozen=True, slots=True)
class MetricSpec:
    name: str
    unit: str
    interval: float
    description: str
    func: Callable[..., Any]
    allowed_states: frozenset[State] | None = DEFAULT_METRIC_STATES
    blocking: bool = True

    def __post_init__(self) -> None:
        # what the STAT? notification and the metric messages need: one bad entry would make every
        # later notification fail to encode
        cmdp.check_metric_entry(self.name, self.unit, self.description)  # EncodeError, a ValueError
        if not callable(self.func):
            raise TypeError(f"metric {self.name}: the value callback must be callable, got {self.func!r}")
        interval = self.interval
        if isinstance(interval, bool) or not isinstance(interval, numbers.Real) or math.isnan(interval):
            raise ValueError(f"metric {self.name}: interval must be a number of seconds, got {interval!r}")
        if interval < 0:
            raise ValueError(f"metric {self.name}: interval must be >= 0 s, got {interval!r}")

    @property
    def period(self) -> float:
        """Seconds between samples: the interval, at least `MIN_INTERVAL` (1.0.2's polling period)."""
        return max(float(self.interval), MIN_INTERVAL)


def metric(
    unit: str = "",
    interval: float = 10.0,
    *,
    name: str | None = None,
    allowed_states: Iterable[State] | None = DEFAULT_METRIC_STATES,
    blocking: bool = True,
) -> Callable[[F], F]:
    """Declare a satellite method as a periodic metric sampled every `interval` seconds."""

    def decorate(f: F) -> F:
        key = (name or f.__name__).upper()
        doc = (f.__doc__ or "").strip()
        spec = MetricSpec(key, unit, interval, doc, f, metric_states(allowed_states, key), blocking)
        setattr(f, _ATTR, spec)
        return f

    return decorate


def collect_metrics(cls: type) -> dict[str, MetricSpec]:
    found: dict[str, MetricSpec] = {}
    for klass in reversed(cls.__mro__):
        for attr in vars(klass).values():
            spec = getattr(attr, _ATTR, None)
            if isinstance(spec, MetricSpec):
                found[spec.name] = spec
    return found


def cpu_load_avg() -> float:
    import psutil  # imported on first use: saves start-up time and memory when nobody subscribes

    return float(100 * psutil.getloadavg()[0] / (psutil.cpu_count() or 1))


def mem_avail() -> float:
    import psutil

    return float(psutil.virtual_memory().available / 1024 / 1024)


BUILTIN = (
    MetricSpec("CPU_LOAD_AVG", "%", 10.0, "CPU load average.", cpu_load_avg, blocking=False),
    MetricSpec("MEM_AVAIL", "MiB", 10.0, "Available memory in Megabytes.", mem_avail, blocking=False),
)


_NONE: tuple[None, None] = (None, None)  # `_specs.get`'s default: no spec, no owner


class MetricScheduler:
    """Samples the periodic metrics; woken early when subscriptions or the state change."""

    def __init__(
        self,
        publisher: MonitoringPublisher,
        fsm: StateMachine,
        specs: Iterable[tuple[MetricSpec, Any]],
        logger: logging.LoggerAdapter[logging.Logger] | None = None,
        executor: Executor | None = None,
    ) -> None:
        self._executor = executor
        self._loop = asyncio.get_running_loop()
        self._lock = threading.Lock()  # `add` and `remove` from hooks' threads: one list at a time
        self._pub = publisher
        self._fsm = fsm
        #: name -> (spec, owner) sampled now, in sampling order; replaced, never changed in place, so a
        #: round iterates a snapshot. A snapshot's entry that is no longer the current one (removed or
        #: replaced from another thread meanwhile) is skipped, and its sample in flight not sent.
        self._specs: dict[str, tuple[MetricSpec, Any]] = {spec.name: (spec, o) for spec, o in specs}
        self._initial = self._specs  # what `reset` goes back to: built-in and `@metric` ones
        self._last: dict[str, float] = {}
        self._wake = asyncio.Event()
        self._log = logger or logging.LoggerAdapter(log, {})
        for spec, _ in self._specs.values():
            publisher.register_metric(spec.name, spec.unit, spec.description)

    def wake(self) -> None:
        self._wake.set()

    def _spec(self, name: str) -> MetricSpec | None:
        """The spec sampled under `name` now."""
        return self._specs.get(name, _NONE)[0]

    def add(self, spec: MetricSpec, owner: Any = None) -> None:
        """Schedule another periodic metric at run time, from any thread: it is announced to `STAT?`
        subscribers at once and sampled from the next round on (1.0.2's `register_scheduled_metric`).
        A metric of the same name is replaced."""
        with self._lock:
            specs = dict(self._specs)
            specs.pop(spec.name, None)  # a replaced one is sampled last, as a new one
            specs[spec.name] = (spec, owner)
            self._specs = specs
            self._last.pop(spec.name, None)
            self._pub.register_metric(spec.name, spec.unit, spec.description)
        self._wake_soon()

    def remove(self, name: str) -> bool:
        """Stop sampling a metric and withdraw it from `STAT?`, from any thread; False if unknown. Once
        this returns, no value of it is sent (not even one sampled before)."""
        key = name.upper()
        with self._lock:
            self._specs = {name: entry for name, entry in self._specs.items() if name != key}
            self._last.pop(key, None)
            return self._pub.unregister_metric(key)

    def reset(self) -> None:
        """Back to the periodic metrics it was built with (1.0.2's `reset_metrics`), from any thread:
        those added are no longer sampled, those removed or replaced are sampled again. The `STAT?`
        entries are the caller's business: `MetricCalls.reset_metrics` restores them, these included
        (they were announced at construction, before it took its snapshot)."""
        with self._lock:
            for name in self._specs.keys() | self._initial.keys():
                if self._spec(name) is not self._initial.get(name, _NONE)[0]:
                    self._last.pop(name, None)
            self._specs = self._initial
        self._wake_soon()

    def _wake_soon(self) -> None:
        try:
            on_loop = asyncio.get_running_loop() is self._loop
        except RuntimeError:
            on_loop = False
        if on_loop:
            self._wake.set()
        else:
            with contextlib.suppress(RuntimeError):  # the loop closed: nothing left to wake
                self._loop.call_soon_threadsafe(self._wake.set)

    async def _sample(self, spec: MetricSpec, owner: Any) -> None:
        args = (owner,) if owner is not None else ()
        try:
            if inspect.iscoroutinefunction(spec.func):
                value = await spec.func(*args)
            elif spec.blocking:
                value = await asyncio.get_running_loop().run_in_executor(
                    self._executor, functools.partial(spec.func, *args)
                )
            else:
                value = spec.func(*args)
        except Exception as exc:
            self._log.critical("Could not get metric %s: %r", spec.name, exc)
            return
        try:  # None sends nothing (currently unavailable, 1.0.2); a value the wire cannot carry raises
            with self._lock:  # not once `remove` has returned (nor for a replaced spec)
                if self._spec(spec.name) is spec:
                    self._pub.stat(spec.name, value, spec.unit)
        except EncodeError as exc:
            self._log.critical("Could not get metric %s: %r", spec.name, exc)

    async def run(self) -> None:
        while True:
            self._wake.clear()
            now = time.monotonic()
            next_due = now + 3600.0
            state = self._fsm.state
            for spec, owner in self._specs.values():  # a snapshot: changes replace the dict
                if self._spec(spec.name) is not spec:  # removed or replaced since the snapshot
                    continue
                if not self._pub.wants(cmdp.metric_topic(spec.name)):
                    self._last.pop(spec.name, None)
                    continue
                if spec.allowed_states is not None and state not in spec.allowed_states:
                    continue
                last = self._last.get(spec.name)  # None: not sampled since subscribed, due now (1.0.2)
                due = now if last is None else last + spec.period
                if due <= now:
                    self._last[spec.name] = now
                    await self._sample(spec, owner)
                    due = now + spec.period
                next_due = min(next_due, due)
            try:
                async with asyncio.timeout(max(0.0, next_due - time.monotonic())):
                    await self._wake.wait()
            except TimeoutError:
                pass


_Call = Callable[[MonitoringPublisher, "MetricScheduler"], object]


class MetricCalls:
    """The metric calls of a satellite's API (1.0.2's names), valid at any time and from any thread: made
    before the satellite started (1.0.2 satellites register metrics in `__init__`), they are checked at
    once and carried out by `attach`, at the start, in order, before any call made meanwhile."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # `attach` against calls from threads an `__init__` started
        self._early: list[_Call] | None = []
        self._pub: MonitoringPublisher | None = None
        self._scheduler: MetricScheduler | None = None
        self._runtime: dict[str, tuple[str, str]] = {}  # the STAT? entries at `attach`: name -> (unit, desc)

    def attach(self, publisher: MonitoringPublisher, scheduler: MetricScheduler) -> None:
        with self._lock:
            topics = dict(publisher.stat_topics)  # one C-level copy: other threads may register
            self._runtime = {k: (publisher.units.get(k, ""), d) for k, d in topics.items()}
            early, self._early = self._early or [], None
            try:
                for call in early:
                    call(publisher, scheduler)
            finally:
                # set last, under the lock: a call that finds them set runs after the early ones (and
                # after one that raised, later calls still work)
                self._pub, self._scheduler = publisher, scheduler

    def register_metric(self, name: str, unit: str, description: str) -> None:
        cmdp.check_metric_entry(name, unit, description)
        self._now_or_at_start(lambda pub, _: pub.register_metric(name, unit, description))

    def register_scheduled_metric(
        self,
        name: str,
        unit: str,
        description: str,
        interval: float,
        value_cb: Callable[[], Any],
        allowed_states: Iterable[object] | None,
    ) -> None:
        cmdp.check_metric_text("name", name, empty=False)
        key = name.upper()
        states = metric_states(allowed_states, key)
        spec = MetricSpec(key, unit, interval, description, value_cb, states)
        self._now_or_at_start(lambda _, scheduler: scheduler.add(spec))

    def unregister_metric(self, name: str) -> None:
        cmdp.check_metric_text("name", name)  # checked here, not where an early call is carried out
        self._now_or_at_start(lambda _, scheduler: scheduler.remove(name))

    def reset_metrics(self) -> None:
        """1.0.2's `reset_metrics`: withdraw every metric registered through these calls (or `stat`);
        the runtime's own (STATE, RUN_ID, ..., built-in and `@metric` ones) are kept, or restored if
        withdrawn or replaced. (1.0.2 also withdraws its own STATE and RUN_ID, and stops sampling
        CPU_LOAD_AVG and MEM_AVAIL: not copied.)"""
        self._now_or_at_start(self._reset)

    def _reset(self, pub: MonitoringPublisher, scheduler: MetricScheduler) -> None:
        scheduler.reset()
        for name in [n for n in list(pub.stat_topics) if n not in self._runtime]:  # (copied at once)
            pub.unregister_metric(name)
        for name, (unit, description) in self._runtime.items():
            if (pub.units.get(name), pub.stat_topics.get(name)) != (unit, description):
                pub.register_metric(name, unit, description)

    def should_stat(self, name: str) -> bool:
        pub = self._pub
        return pub is not None and pub.wants(cmdp.metric_topic(name.upper()))

    def stat(self, name: str, value: Any, unit: str | None) -> None:
        pub = self._pub
        if pub is not None:
            pub.stat(name, value, unit, announce=True)
        elif value is not None:  # not started: nobody can have subscribed; announced at the start
            cmdp.check_metric_value(value)
            cmdp.check_metric_text("name", name, empty=False)
            cmdp.check_metric_text("unit", unit or "")

            def announce(pub: MonitoringPublisher, _: MetricScheduler) -> None:
                if name.upper() not in pub.stat_topics:  # as after the start: a registered one keeps
                    pub.register_metric(name, unit or "", "")  # its description and unit

            self._now_or_at_start(announce)

    def _now_or_at_start(self, call: _Call) -> None:
        pub, scheduler = self._pub, self._scheduler
        if pub is None or scheduler is None:
            with self._lock:
                if self._early is not None:
                    self._early.append(call)
                    return
                pub, scheduler = self._pub, self._scheduler  # attached meanwhile: set before the lock
            assert pub is not None, "attached"
            assert scheduler is not None, "attached"
        call(pub, scheduler)
