"""CMDP audit: one-off metrics and metric registration with values the wire cannot carry.

1.0.2's `stat(name, value)` packs any value and its `STAT?` map any description. Our encoder sends the
four scalars (bool, int, float, str) and str descriptions only (what 1.0.2 and C++ receivers take), so a
bad value or description must be refused where it is given, with a typed error, and must not stop
anything else: before, `stat("X", [1, 2])` vanished in the publisher (a DEBUG line), and one
description that is not a str made every later `STAT?` notification fail to encode, silently.
"""

from __future__ import annotations

import time

import pytest

from protocols import EncodeError, cmdp
from tests.runtime.conftest import MonitorSub, monitor_sub, running_publisher

pytestmark = pytest.mark.timeout(60)


@pytest.mark.parametrize("value", [[1, 2], {"a": 1}, b"\x00", 2**64, "\udc80", object()])
async def test_one_off_stat_of_an_unsendable_value_is_a_typed_error(
    make_satellite, zctx, value: object
) -> None:
    sat = await make_satellite()
    sub = await monitor_sub(zctx, sat, b"STAT/")
    with pytest.raises(EncodeError):
        sat.stat("VOLTS", value, "V")
    sat.stat("VOLTS", 4.5, "V")  # the next good value goes out
    m = await sub.until(lambda m: isinstance(m, cmdp.Metric) and m.name == "VOLTS")
    assert (m.value, m.unit) == (4.5, "V")


async def test_one_off_stat_of_none_sends_nothing_and_raises_nothing(make_satellite, zctx) -> None:
    """None means "no value now", as for a periodic metric (1.0.2 would send nil here)."""
    sat = await make_satellite()
    sub = await monitor_sub(zctx, sat, b"STAT/VOLTS")
    sat.stat("VOLTS", None)
    sat.stat("VOLTS", 1)
    m = await sub.next()
    assert (m.name, m.value) == ("VOLTS", 1)


@pytest.mark.parametrize(("unit", "description"), [("", 5), (None, ""), ("", "\udc80")])  # None: ""
async def test_registration_with_a_bad_description_or_unit_is_refused_and_notifications_go_on(
    make_satellite, zctx, unit: object, description: object
) -> None:
    sat = await make_satellite()
    sub = MonitorSub(zctx, sat.ports["mon"])
    sub.subscribe(b"STAT?")
    await sub.until(lambda m: isinstance(m, cmdp.Notification))
    refused: Exception | None = None
    try:
        sat.register_metric("BAD", unit, description)  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        refused = exc
    sat.register_metric("GOOD", "V", "Fine.")  # announced: notifications still encode
    note = await sub.until(lambda m: isinstance(m, cmdp.Notification) and "GOOD" in m.topics, 3)
    assert "BAD" not in note.topics
    assert refused is not None


@pytest.mark.parametrize("name", ["", 5, None, "T\udc80"])
async def test_bad_metric_name_is_refused(make_satellite, name: object) -> None:
    sat = await make_satellite()
    with pytest.raises((TypeError, ValueError)):
        sat.register_metric(name, "V", "x")  # type: ignore[arg-type]


async def test_a_second_query_subscriber_gets_the_topics_too(make_satellite, zctx) -> None:
    """1.0.2's XPUB passes only the first subscription of a topic up: a second `LOG?` subscriber gets no
    list from it. Ours (XPUB_VERBOSE) answers every `LOG?` subscription (the first one again too)."""
    sat = await make_satellite()
    first = MonitorSub(zctx, sat.ports["mon"])
    first.subscribe(b"LOG?")
    note = await first.until(lambda m: isinstance(m, cmdp.Notification))
    second = MonitorSub(zctx, sat.ports["mon"])
    second.subscribe(b"LOG?")
    again = await second.until(lambda m: isinstance(m, cmdp.Notification))
    assert (again.kind, dict(again.topics)) == (note.kind, dict(note.topics))


async def test_state_metric_is_not_dropped_by_a_full_log_queue(zctx) -> None:
    """1.0.2 sends every STAT/STATE (its send blocks). A log burst that fills our bounded queue may drop
    log records (counted, reported), but a state change queued meanwhile must still go out: listeners
    follow the state from STAT/STATE."""
    async with running_publisher(zctx, queue_size=16, topics=(b"LOG/INFO", b"STAT/STATE")) as (pub, sub):
        # From the loop's thread, without yielding: the sender cannot run, the queue fills up.
        for i in range(64):
            pub.push((cmdp.Level.INFO, "X", f"burst {i}", {}, time.time_ns()))
        assert pub.dropped > 0
        pub.stat("STATE", "ORBIT")
        m = await sub.until(lambda m: isinstance(m, cmdp.Metric))
        assert (m.name, m.value) == ("STATE", "ORBIT")
