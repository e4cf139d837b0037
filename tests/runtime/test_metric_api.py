"""The 1.0.2 metric calls a satellite author ports: `register_scheduled_metric` (from a hook, which runs
in a worker thread), `unregister_metric` and `should_stat`, seen by a CMDP subscriber on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from typing import Any

import pytest

from constellation import Configuration, Satellite
from protocols import cmdp
from protocols.states import State
from tests.runtime.conftest import MonitorSub, monitor_sub, wait_state

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
        return "Initialized"

    def do_launching(self) -> str:
        self.unregister_metric("voltage")
        self.unregister_metric("never_registered")  # nothing, as 1.0.2
        return "Launched"


async def received_during(sub: MonitorSub, seconds: float) -> list[Any]:
    """Every message that arrives within `seconds` (an observation window, not a wait for one)."""
    got: list[Any] = []
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            while True:
                got.append(await sub.next(seconds))
    return got


def _metric(name: str) -> Any:
    return lambda m: isinstance(m, cmdp.Metric) and m.name == name


def _note(pred: Any) -> Any:
    return lambda m: isinstance(m, cmdp.Notification) and pred(m.topics)


async def test_a_metric_registered_in_a_hook_is_announced_sampled_and_withdrawn(
    make_satellite, client, zctx
) -> None:
    sat = await make_satellite(Porting)
    sub = await monitor_sub(zctx, sat, b"STAT?", b"STAT/VOLTAGE", b"STAT/ONLY_RUN")
    cl = client(sat)
    await cl("initialize", {})
    note = await sub.until(_note(lambda t: "VOLTAGE" in t and "ONLY_RUN" in t))
    assert note.topics["VOLTAGE"] == "Supply voltage."
    value = await sub.until(_metric("VOLTAGE"))
    assert (value.value, value.unit) == (3.3, "V")
    await wait_state(cl, "INIT")
    assert all(name.startswith(f"{sat.name}-hook") for name in sat.threads)  # a sync callback: off the loop
    await cl("launch")
    await sub.until(_note(lambda t: "VOLTAGE" not in t and "ONLY_RUN" in t))
    await wait_state(cl, "ORBIT")
    await received_during(sub, 0.2)  # a value sampled as the metric was withdrawn may still come
    # five intervals: no VOLTAGE (withdrawn) and no ONLY_RUN (not in RUN)
    assert [m for m in await received_during(sub, 0.5) if isinstance(m, cmdp.Metric)] == []
    await cl("start", "r1")
    assert (await sub.until(_metric("ONLY_RUN"))).value == 1


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
    note = await sub.until(_note(lambda t: "EARLY" in t))
    assert (note.topics["EARLY"], note.topics["MANUAL"], note.topics["COUNTED"]) == (
        "From __init__.",
        "Sent by stat.",
        "",
    )
    assert "GONE" not in note.topics
    value = await sub.until(_metric("EARLY"))  # allowed in every state: sampled in NEW
    assert (value.value, value.unit) == (7, "s")
    assert sat.should_stat("early")


def test_what_the_wire_cannot_carry_is_refused_before_the_start() -> None:
    sat = Satellite("T", "tgroup", bind="127.0.0.1", discovery=())
    with pytest.raises(ValueError):
        sat.register_metric("", "", "")
    with pytest.raises(ValueError):
        sat.stat("X", object())
