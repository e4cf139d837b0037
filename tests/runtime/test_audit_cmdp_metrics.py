"""CMDP audit: periodic metrics at the edges of the `@metric` API, compared with 1.0.2's metric thread.

1.0.2 (`constellation.core.monitoring.MonitoringSender._publish_cmdp`) polls every 0.1 s: an interval of
0 samples at most ten times a second; a callback that raises is logged CRITICAL `Could not get metric
NAME: <repr>` on MNTR and tried again after its interval; `register_scheduled_metric` adds a periodic
metric at run time and announces it to `STAT?` subscribers. Ours must behave the same, and a value the
wire cannot carry must be reported the same way instead of vanishing in the publisher.
"""

from __future__ import annotations

import asyncio
import math
import time
from typing import Any

import pytest

from constellation import Satellite, metric
from constellation.metrics import MIN_INTERVAL, MetricSpec
from protocols import cmdp
from tests.runtime.conftest import monitor_sub, wait_state

pytestmark = pytest.mark.timeout(60)


def _critical_mntr(m: object) -> bool:
    return isinstance(m, cmdp.LogMessage) and m.level is cmdp.Level.CRITICAL and m.topic == "MNTR"


class Zero(Satellite):
    calls = 0

    @metric(unit="Hz", interval=0)
    def zero(self) -> int:
        """Sampled as often as allowed."""
        Zero.calls += 1
        return Zero.calls


async def test_interval_zero_samples_every_tick_not_in_a_busy_loop(make_satellite, client, zctx) -> None:
    """Before: interval 0 made the scheduler sample back to back (a busy loop flooding the queue)."""
    sat = await make_satellite(Zero)
    sub = await monitor_sub(zctx, sat, b"STAT/ZERO")
    cl = client(sat)
    await cl("initialize", {})
    await sub.until(lambda m: isinstance(m, cmdp.Metric) and m.name == "ZERO")
    # Count the values of one second (a rate measurement, not a synchronisation).
    start = time.monotonic()
    received = 0
    while (left := 1.0 - (time.monotonic() - start)) > 0:
        try:
            await sub.next(timeout=left)
        except TimeoutError:
            break
        received += 1
    assert 5 <= received <= 1.0 / MIN_INTERVAL + 2, received
    # The loop stays responsive: a command is answered at once.
    t0 = time.monotonic()
    assert (await cl("get_state")).verb == "INIT"
    assert time.monotonic() - t0 < 0.5


@pytest.mark.parametrize("interval", [-1, -0.01, math.nan, "10", True, None])
def test_bad_interval_is_a_value_error_at_declaration(interval: Any) -> None:
    with pytest.raises(ValueError, match="interval"):

        @metric(unit="V", interval=interval)
        def volts(self: object) -> float:
            return 1.0


def test_bad_interval_of_a_spec_built_directly() -> None:
    with pytest.raises(ValueError, match="interval"):
        MetricSpec("X", "", math.nan, "", lambda: 1)


@pytest.mark.parametrize(
    "fields",
    [{"name": ""}, {"name": 5}, {"name": "T\udc80"}, {"unit": None}, {"unit": b"V"}, {"description": None}],
)
def test_bad_name_unit_or_description_of_a_spec_is_a_value_error(fields: dict[str, Any]) -> None:
    """Before, a description that is not a str made every later STAT? notification fail to encode."""
    args: dict[str, Any] = {"name": "X", "unit": "", "interval": 1.0, "description": "", "func": lambda: 1}
    with pytest.raises(ValueError, match="metric"):
        MetricSpec(**(args | fields))


class Unsendable(Satellite):
    @metric(unit="", interval=0.1)
    def as_list(self) -> object:
        return [1, 2]

    @metric(unit="", interval=0.1)
    def huge(self) -> int:
        return 2**64

    @metric(unit="", interval=0.1)
    def surrogate(self) -> str:
        return "\udc80"

    @metric(unit="V", interval=0.1)
    def good(self) -> float:
        return 4.5


async def test_unsendable_value_is_reported_critical_like_a_raising_callback(
    make_satellite, client, zctx
) -> None:
    """Before: the value went into the queue and the publisher dropped it with a DEBUG line only."""
    sat = await make_satellite(Unsendable)
    sub = await monitor_sub(zctx, sat, b"STAT/", b"LOG/CRITICAL/MNTR")
    cl = client(sat)
    await cl("initialize", {})
    reported: set[str] = set()
    values: list[cmdp.Metric] = []
    async with asyncio.timeout(10):
        while len(reported) < 3 or not values:
            m = await sub.next()
            if _critical_mntr(m):
                assert isinstance(m, cmdp.LogMessage)
                assert m.text.startswith("Could not get metric "), m.text
                reported.add(m.text.split(":")[0].removeprefix("Could not get metric "))
            elif isinstance(m, cmdp.Metric) and m.name in ("GOOD", "AS_LIST", "HUGE", "SURROGATE"):
                values.append(m)
    assert reported == {"AS_LIST", "HUGE", "SURROGATE"}
    assert {(v.name, v.value, v.unit) for v in values} == {("GOOD", 4.5, "V")}


class Flaky(Satellite):
    calls = 0

    @metric(unit="", interval=0.2)
    def flaky(self) -> int:
        Flaky.calls += 1
        if Flaky.calls == 1:
            raise ValueError("sensor busy")
        return Flaky.calls


async def test_raising_callback_is_reported_and_sampled_again(make_satellite, client, zctx) -> None:
    sat = await make_satellite(Flaky)
    sub = await monitor_sub(zctx, sat, b"STAT/FLAKY", b"LOG/CRITICAL/MNTR")
    cl = client(sat)
    await cl("initialize", {})
    report = await sub.until(_critical_mntr)
    assert report.text == "Could not get metric FLAKY: ValueError('sensor busy')"  # 1.0.2's wording
    value = await sub.until(lambda m: isinstance(m, cmdp.Metric))
    assert (value.name, value.value) == ("FLAKY", 2)


async def test_periodic_metric_added_at_run_time_is_announced_and_sampled(
    make_satellite, client, zctx
) -> None:
    sat = await make_satellite()
    sub = await monitor_sub(zctx, sat, b"STAT?", b"STAT/LATE")
    await sub.until(lambda m: isinstance(m, cmdp.Notification))
    cl = client(sat)
    await cl("initialize", {})
    await wait_state(cl, "INIT")
    sat._metrics.add(MetricSpec("LATE", "K", 0.2, "Added in INIT.", lambda: 3, blocking=False))
    note = await sub.until(lambda m: isinstance(m, cmdp.Notification) and "LATE" in m.topics)
    assert note.topics["LATE"] == "Added in INIT."
    value = await sub.until(lambda m: isinstance(m, cmdp.Metric))
    assert (value.name, value.value, value.unit) == ("LATE", 3, "K")


class Hourly(Satellite):
    @metric(unit="", interval=time.monotonic() + 3600.0)  # longer than the machine has been up
    def hourly(self) -> int:
        return 1


async def test_first_value_at_once_whatever_the_interval(make_satellite, client, zctx) -> None:
    """1.0.2 samples a metric on its first eligible tick. Before, ours waited until the monotonic clock
    (the machine's uptime) passed the interval: an hourly metric on a host up for ten minutes sent its
    first value 50 minutes late."""
    sat = await make_satellite(Hourly)
    sub = await monitor_sub(zctx, sat, b"STAT/HOURLY")
    cl = client(sat)
    await cl("initialize", {})
    value = await sub.until(lambda m: isinstance(m, cmdp.Metric))
    assert (value.name, value.value) == ("HOURLY", 1)
