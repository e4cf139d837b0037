"""The 1.0.2 metric calls a satellite author ports: `register_scheduled_metric` (from a hook, which runs
in a worker thread), `unregister_metric` and `should_stat`, seen by a CMDP subscriber on loopback."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from constellation import Configuration, Satellite
from protocols import cmdp
from protocols.states import State
from tests.runtime.conftest import MonitorSub, metric_named, monitor_sub, note_where, wait_state

pytestmark = pytest.mark.timeout(60)


class Porting(Satellite):
    """Registers its metrics in `do_initializing` and drops one in `do_launching`, as 1.0.2 code does."""

    threads: list[str]

    def do_initializing(self, config: Configuration) -> str:
        self.threads = []

        def voltage() -> float:
            self.threads.append(threading.current_thread().name)
            return 3.3

        self.register_scheduled_metric("voltage", "V", "Supply voltage.", 0.1, voltage)
        self.register_scheduled_metric("only_run", "", "Sampled in RUN.", 0.1, lambda: 1, [State.RUN])
        # sampled last in every round, in every state, with the time: bounds what a round sent
        self.register_scheduled_metric("mark", "s", "Round marker.", 0.1, time.monotonic, None)
        return "Initialized"

    def do_launching(self) -> str:
        self.unregister_metric("voltage")
        self.unregister_metric("never_registered")  # nothing, as 1.0.2
        return "Launched"


async def a_round_after(sub: MonitorSub, since: float) -> list[Any]:
    """The messages of one whole sampling round begun after `since` (monotonic): those between the
    first two MARK values sampled after it (in-process satellite: the same clock)."""
    marks = 0
    got: list[Any] = []
    while marks < 2:
        msg = await sub.next()
        if metric_named("MARK")(msg) and msg.value > since:
            marks += 1
        elif marks == 1:
            got.append(msg)
    return got


async def test_a_metric_registered_in_a_hook_is_announced_sampled_and_withdrawn(
    make_satellite, client, zctx
) -> None:
    sat = await make_satellite(Porting)
    sub = await monitor_sub(zctx, sat, b"STAT?", b"STAT/VOLTAGE", b"STAT/ONLY_RUN", b"STAT/MARK")
    cl = client(sat)
    await cl("initialize", {})
    note = await sub.until(note_where(lambda t: "VOLTAGE" in t and "ONLY_RUN" in t))
    assert note.topics["VOLTAGE"] == "Supply voltage."
    value = await sub.until(metric_named("VOLTAGE"))
    assert (value.value, value.unit) == (3.3, "V")
    await wait_state(cl, "INIT")
    assert all(name.startswith(f"{sat.name}-hook") for name in sat.threads)  # a sync callback: off the loop
    await cl("launch")
    await sub.until(note_where(lambda t: "VOLTAGE" not in t and "ONLY_RUN" in t))
    await wait_state(cl, "ORBIT")  # `do_launching` (and its unregister_metric) returned before
    # a whole round since: no VOLTAGE (withdrawn) and no ONLY_RUN (not in RUN)
    assert [m for m in await a_round_after(sub, time.monotonic()) if isinstance(m, cmdp.Metric)] == []
    await cl("start", "r1")
    assert (await sub.until(metric_named("ONLY_RUN"))).value == 1


async def test_should_stat_follows_the_subscriptions(make_satellite, zctx) -> None:
    sat = await make_satellite()
    sat.register_metric("TEMP", "K", "Temperature.")
    assert not sat.should_stat("TEMP")
    sub = await monitor_sub(zctx, sat, b"STAT/TEMP")
    assert sat.should_stat("temp")
    assert not sat.should_stat("OTHER")
    sub.sock.close()


async def test_what_at_metric_refuses_register_scheduled_metric_refuses(make_satellite) -> None:
    sat = await make_satellite()
    with pytest.raises(ValueError, match="interval"):
        sat.register_scheduled_metric("X", "", "", -1, lambda: 1)
    with pytest.raises(ValueError):
        sat.register_scheduled_metric("", "", "", 1, lambda: 1)


class InInit(Satellite):
    """1.0.2's own Satellite registers CPU_LOAD_AVG and MEM_AVAIL this way: in `__init__`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.register_scheduled_metric("early", "s", "From __init__.", 0.1, lambda: 7, None)
        self.register_metric("manual", "A", "Sent by stat.")
        self.register_scheduled_metric("gone", "", "Withdrawn before the start.", 0.1, lambda: 0, None)
        self.unregister_metric("gone")
        assert not self.should_stat("early")  # nobody can have subscribed yet
        self.stat("counted", 1, "n")  # sends nothing yet, announces the name at the start


async def test_metrics_registered_before_the_start_are_announced_and_sampled(make_satellite, zctx) -> None:
    sat = await make_satellite(InInit)
    sub = await monitor_sub(zctx, sat, b"STAT?", b"STAT/EARLY")
    note = await sub.until(note_where(lambda t: "EARLY" in t))
    assert (note.topics["EARLY"], note.topics["MANUAL"], note.topics["COUNTED"]) == (
        "From __init__.",
        "Sent by stat.",
        "",
    )
    assert "GONE" not in note.topics
    value = await sub.until(metric_named("EARLY"))  # allowed in every state: sampled in NEW
    assert (value.value, value.unit) == (7, "s")
    assert sat.should_stat("early")


def test_what_the_wire_cannot_carry_is_refused_before_the_start() -> None:
    sat = Satellite("T", "tgroup", bind="127.0.0.1", discovery=())
    with pytest.raises(ValueError):
        sat.register_metric("", "", "")
    with pytest.raises(ValueError):
        sat.stat("X", object())
