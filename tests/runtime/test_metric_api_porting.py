"""1.0.2's metric calls on Satellite (20a0818, 1842f28 and the review after them): what a satellite
author porting 1.0.2 code trips over, and the scheduler's races with calls from hook threads. Seen by
a CMDP subscriber on loopback, or (for `MetricCalls` racing `attach`) with the interleaving forced by a
trace function."""

from __future__ import annotations

import asyncio
import sys
import threading
from enum import Enum
from types import FrameType
from typing import Any

import pytest

from constellation import Satellite
from constellation.metrics import MetricCalls, collect_metrics, metric
from protocols import cmdp
from protocols.errors import EncodeError
from protocols.states import State
from tests.runtime.conftest import metric_named, monitor_sub, note_where

pytestmark = pytest.mark.timeout(60)


class SatelliteState(Enum):
    """1.0.2's `constellation.core.protocol.cscp1.SatelliteState`, verbatim: a plain Enum (not an
    IntEnum), importable next to ours when both are installed; what ported code passes as
    `allowed_states`."""

    NEW = 0x10
    INIT = 0x20
    ORBIT = 0x30
    RUN = 0x40
    SAFE = 0xE0
    ERROR = 0xF0
    initializing = 0x12
    launching = 0x23
    landing = 0x32
    reconfiguring = 0x33
    starting = 0x34
    stopping = 0x43
    interrupting = 0x0E
    DEAD = 0xFF


async def _wait_event(event: threading.Event, timeout: float = 5.0) -> None:
    assert await asyncio.to_thread(event.wait, timeout), "the callback was not called in time"


# -- allowed_states as ported code gives them ------------------------------------------------------


@pytest.mark.parametrize(
    "states",
    [[SatelliteState.NEW], ["NEW"]],
    ids=["1.0.2-SatelliteState", "state-name"],
)
async def test_allowed_states_given_as_1_0_2_states_or_names_are_honoured(
    make_satellite, zctx, states: list[Any]
) -> None:
    """`allowed_states=[SatelliteState.NEW]` (1.0.2's enum, hashed by name) never matched our
    `State.NEW`: the metric was announced and silently never sampled."""
    sat = await make_satellite()
    sub = await monitor_sub(zctx, sat, b"STAT/PORTED")
    sat.register_scheduled_metric("ported", "", "", 0.1, lambda: 5, states)
    assert (await sub.until(metric_named("PORTED"))).value == 5


def test_the_decorator_takes_the_same_allowed_states() -> None:
    @metric(allowed_states=[SatelliteState.RUN, "ORBIT", "starting"])
    def ported(self: object) -> int:
        return 1

    assert collect_metrics(type("S", (), {"ported": ported}))["PORTED"].allowed_states == {
        State.RUN,
        State.ORBIT,
        State.starting,
    }


async def test_allowed_states_that_are_not_states_are_refused_where_given(make_satellite) -> None:
    sat = await make_satellite()
    for bad in (["RUNNING"], "RUN", [object()], [0x99]):
        with pytest.raises(ValueError, match="allowed_states"):
            sat.register_scheduled_metric("X", "", "", 1, lambda: 1, bad)


# -- a nil description (1.0.2's `register_metric(name, unit, None)`) --------------------------------


async def test_a_none_description_is_accepted_as_1_0_2_does(make_satellite, zctx) -> None:
    """1.0.2 announces what it was given (nil in the STAT? map, which 1e70060 reads as ""); ours raised
    EncodeError, so a ported satellite failed where 1.0.2 ran."""
    sat = await make_satellite()
    sub = await monitor_sub(zctx, sat, b"STAT?")
    sat.register_metric("NODESC", "V", None)  # type: ignore[arg-type]
    sat.register_scheduled_metric("SCHED", "V", None, 1, lambda: 1)  # type: ignore[arg-type]
    note = await sub.until(note_where(lambda t: "NODESC" in t and "SCHED" in t))
    assert (note.topics["NODESC"], note.topics["SCHED"]) == ("", "")


# -- calls before the start -------------------------------------------------------------------------


class RegistersThenStats(Satellite):
    """1.0.2's TransmitterSatellite pattern: register a metric, then `stat` its first value, in
    `__init__`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.register_metric("VOLTAGE", "V", "Supply voltage.")
        self.stat("VOLTAGE", 0.0)


async def test_a_stat_before_the_start_keeps_the_registered_description_and_unit(
    make_satellite, zctx
) -> None:
    """Before the start, `stat` queued a `register_metric(name, unit or "", "")` that overwrote the
    description and unit registered just before it (after the start it registers only unknown names)."""
    sat = await make_satellite(RegistersThenStats)
    sub = await monitor_sub(zctx, sat, b"STAT?")
    note = await sub.until(note_where(lambda t: "VOLTAGE" in t))
    assert note.topics["VOLTAGE"] == "Supply voltage."
    assert sat._mon.units["VOLTAGE"] == "V"


def _pause_at_second_line(fn_name: str, paused: threading.Event, go: threading.Event) -> Any:
    """A trace function stopping this thread once, at the second line it runs in `fn_name`."""
    lines = [0]

    def local(frame: FrameType, event: str, arg: object) -> Any:
        if event == "line":
            lines[0] += 1
            if lines[0] == 2:
                paused.set()
                go.wait(10)
        return local

    def trace(frame: FrameType, event: str, arg: object) -> Any:
        if event == "call" and frame.f_code.co_name == fn_name and lines[0] == 0:
            return local
        return None

    return trace


class _Pub:
    def __init__(self) -> None:
        self.registered: list[str] = []
        self.stat_topics: dict[str, str] = {}
        self.units: dict[str, str] = {}

    def register_metric(self, name: str, unit: str = "", description: str = "") -> None:
        self.registered.append(name)


def test_a_call_racing_attach_is_neither_lost_nor_reordered() -> None:
    """A thread started in `__init__` calls `register_metric` while `start` attaches: it read "not
    attached yet", then `attach` replayed the early calls and closed the list, and the call was dropped
    (it found neither a publisher it had read nor an open list)."""
    calls = MetricCalls()
    pub = _Pub()
    paused, go = threading.Event(), threading.Event()

    def worker() -> None:
        sys.settrace(_pause_at_second_line("_now_or_at_start", paused, go))
        try:
            calls.register_metric("LATE", "", "")
        finally:
            sys.settrace(None)

    t = threading.Thread(target=worker)
    t.start()
    try:
        assert paused.wait(10), "the worker never reached _now_or_at_start"
        calls.attach(pub, object())  # type: ignore[arg-type]
    finally:
        go.set()
        t.join(10)
    assert not t.is_alive()
    assert pub.registered == ["LATE"]


def test_bad_arguments_are_refused_at_the_call_not_at_the_start() -> None:
    """Checked where given (a call made before the start is carried out only then, far from its
    cause), with the errors the docstrings name."""
    sat = Satellite("T", "tgroup", bind="127.0.0.1", discovery=())
    with pytest.raises(EncodeError, match="name must be a str"):
        sat.unregister_metric(None)  # type: ignore[arg-type]
    with pytest.raises(EncodeError, match="name must be a str"):
        sat.register_scheduled_metric(42, "", "", 1.0, lambda: 1, None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="must be callable"):
        sat.register_scheduled_metric("X", "", "", 1.0, 42, None)  # type: ignore[arg-type]


def test_an_early_call_that_fails_at_the_start_does_not_wedge_later_ones() -> None:
    calls = MetricCalls()
    pub = _Pub()

    def fails(_pub: object, _scheduler: object) -> None:
        raise RuntimeError("carried out at the start, and failed")

    calls._now_or_at_start(fails)
    with pytest.raises(RuntimeError, match="failed"):
        calls.attach(pub, object())  # type: ignore[arg-type]
    calls.register_metric("LATER", "", "")  # attached all the same: carried out at once
    assert pub.registered == ["LATER"]


# -- reset_metrics (1.0.2; its LakeShore218 calls it in do_initializing) ----------------------------


async def test_reset_metrics_drops_what_the_author_registered_and_keeps_the_runtime_s(
    make_satellite, zctx
) -> None:
    sat = await make_satellite()
    sub = await monitor_sub(zctx, sat, b"STAT?")
    base = dict((await sub.until(note_where(lambda t: "STATE" in t))).topics)
    sat.register_metric("MANUAL", "", "m")
    sat.register_scheduled_metric("SCHED", "", "s", 0.1, lambda: 1)
    sat.unregister_metric("CPU_LOAD_AVG")  # a runtime metric the author withdrew: back after a reset
    sat._metric_api.reset_metrics()  # what Satellite.reset_metrics would delegate to
    note = await sub.until(
        note_where(lambda t: "MANUAL" not in t and "SCHED" not in t and "CPU_LOAD_AVG" in t)
    )
    assert dict(note.topics) == base
    assert set(sat._metrics._specs) == {"CPU_LOAD_AVG", "MEM_AVAIL"}


async def test_satellite_offers_reset_metrics(make_satellite) -> None:
    sat = await make_satellite()
    sat.register_metric("MANUAL", "", "m")
    sat.reset_metrics()
    assert "MANUAL" not in sat._mon.stat_topics


# -- withdrawn while a sample is awaited ------------------------------------------------------------


async def test_no_value_is_sent_after_unregister_metric_returned(make_satellite, zctx) -> None:
    """A sample in flight when its metric is withdrawn, and a metric withdrawn while an earlier one's
    sample is awaited (the round iterates a snapshot): neither sends a value after `unregister_metric`
    returned. MARK, sampled after both in the same round, bounds the observation."""
    sat = await make_satellite()
    entered, release = threading.Event(), threading.Event()
    later_calls: list[int] = []

    def slow() -> int:
        entered.set()
        release.wait(10)
        return 1

    def later() -> int:
        later_calls.append(1)
        return 2

    sub = await monitor_sub(zctx, sat, b"STAT/SLOW", b"STAT/LATER", b"STAT/MARK")
    for name, cb in (("SLOW", slow), ("LATER", later), ("MARK", lambda: 3)):
        sat.register_scheduled_metric(name, "", "", 10, cb, None)  # None: sampled in NEW too
    await _wait_event(entered)
    sat.unregister_metric("SLOW")
    sat.unregister_metric("LATER")
    release.set()
    got = []
    while not (got and metric_named("MARK")(got[-1])):
        got.append(await sub.next())
    assert [m.name for m in got if isinstance(m, cmdp.Metric)] == ["MARK"]
    assert later_calls == []


async def test_1_0_2_keyword_names_are_accepted(make_satellite) -> None:
    sat = await make_satellite()
    sat.register_metric("KW", "", "")
    sat.stat(metric_name="KW", value=1)
    assert not sat.should_stat(metric_name="KW")
    sat.unregister_metric(metric_name="KW")
    assert "KW" not in sat._mon.stat_topics


def test_calls_from_a_hook_thread_after_the_loop_closed_raise_nothing() -> None:
    """A hook thread still running when the satellite's loop has closed (a stuck hook at shutdown)."""

    async def run() -> Satellite:
        sat = Satellite("Closing", "tgroup", bind="127.0.0.1", discovery=())
        await sat.start()
        await sat.aclose()
        return sat

    sat = asyncio.run(run())  # the loop is closed when this returns
    sat.register_scheduled_metric("AFTER", "", "", 1, lambda: 1, None)
    sat.register_metric("AFTER2", "", "")
    sat.stat("AFTER3", 1)
    sat.unregister_metric("AFTER")
    sat._metric_api.reset_metrics()
    assert not sat.should_stat("AFTER2")
