"""Audit of CHP heartbeats against 1.0.2 receivers' rules (wire doc §4.2, §4.4).

A 1.0.2 ``HeartbeatChecker`` takes a life when ``now - last_refresh > 1.5 x interval`` where interval
is the one announced by the *last* message (regular or extrasystole). So every message must be followed
by the next one within its own announced interval.
"""

from __future__ import annotations

import asyncio
import time

from protocols import State, chp
from tests.harness import eventually
from tests.runtime.conftest import HeartbeatSub, wait_state


async def test_extrasystole_interval_is_honoured_after_subscribers_leave(
    make_satellite, client, zctx
) -> None:
    sat = await make_satellite()
    subs = [HeartbeatSub(zctx, sat.ports["hb"]) for _ in range(10)]
    watcher = subs[0]

    async def long_interval() -> bool:
        return (await watcher.next(3.0)).interval_ms == chp.heartbeat_interval_ms(10)

    await eventually(long_interval, timeout=10.0)  # a regular beat just went out: next one in 3.6 s
    for s in subs[1:]:
        s.sock.close(0)
    cl = client(sat)
    await cl("initialize", {})
    await wait_state(cl, "INIT")
    # every message from now on: the next one must come within its announced interval
    prev = None
    t_prev = 0.0
    deadline = time.monotonic() + 6.0
    gaps: list[tuple[int, float, bool]] = []
    while time.monotonic() < deadline:
        hb = await watcher.next(8.0)
        now = time.monotonic()
        if prev is not None:
            gaps.append((prev.interval_ms, now - t_prev, prev.is_extrasystole))
        prev, t_prev = hb, now
    late = [(i, round(g, 3), x) for i, g, x in gaps if g > i / 1000]
    assert not late, f"(announced ms, gap s, extrasystole) beyond the announced interval: {late}"
    assert prev is not None
    assert prev.state is State.INIT


async def test_an_empty_status_goes_out_without_a_status_frame(make_satellite, zctx) -> None:
    """1.0.2 sends the status frame only when the status is non-empty (``if status:``), on regular beats
    and extrasystoles alike; an empty second frame is a frame 1.0.2 never sends."""
    sat = await make_satellite()
    sub = HeartbeatSub(zctx, sat.ports["hb"])
    await sub.next()
    sat.fsm.set_status("")  # changed since the previous regular beat, but empty
    hb = await sub.next()
    assert hb.status is None
    sat.fsm.enter(State.ERROR, "")
    extra = await sub.next()
    assert extra.is_extrasystole
    assert extra.status is None


async def test_a_zero_max_interval_does_not_freeze_the_satellite(make_satellite, client, zctx) -> None:
    """``_autonomy.max_heartbeat_interval = 0`` is accepted (as by 1.0.2); the formula then gives 0 ms.
    Before: every deadline was "now", the heartbeat task never yielded and nothing else ran (no reply to
    get_state). Now the interval is floored at 1.0.2's 500 ms minimum."""
    sat = await make_satellite()
    sub = HeartbeatSub(zctx, sat.ports["hb"])
    cl = client(sat)
    await cl("initialize", {"_autonomy": {"max_heartbeat_interval": 0}})
    await wait_state(cl, "INIT")
    t0 = time.monotonic()
    sent0 = sat._hb.sent
    beats = []
    while len(beats) < 3:
        hb = await sub.next(2.0)
        if hb.state is State.INIT and not hb.is_extrasystole:
            beats.append(hb)
    assert {hb.interval_ms for hb in beats} == {chp.MIN_INTERVAL_MS}
    assert sat._hb.sent - sent0 <= 1 + (time.monotonic() - t0) / 0.35  # ~every 0.4 s, no flood
    assert (await cl("get_state")).verb == "INIT"


async def test_a_storm_of_state_changes_ends_with_the_extrasystole_of_the_last_one(
    make_satellite, zctx
) -> None:
    """More changes than the queue holds (256) before the heartbeat task runs: the oldest are the ones
    dropped, so receivers get the last state's extrasystole (before: the newest were dropped)."""
    sat = await make_satellite()
    sub = HeartbeatSub(zctx, sat.ports["hb"])
    await sub.next()
    for i in range(300):  # no await in between: the heartbeat task cannot run
        sat.fsm.enter(State.ERROR if i % 2 else State.SAFE, f"change {i}")
    extras: list[chp.Heartbeat] = []
    regular = 0
    while regular < 2:  # every extrasystole goes out before the second regular beat after them
        hb = await sub.next(2.0)
        if hb.is_extrasystole:
            extras.append(hb)
        else:
            regular += 1
    assert extras[-1].state is State.ERROR
    assert len(extras) == 256
    assert sat._hb.dropped_changes == 44
    assert [int(e.status.split()[1]) for e in extras if e.status] == list(range(44, 300))


async def test_time_stamps_are_the_send_time_in_nanoseconds(make_satellite, client, zctx) -> None:
    """A 1.0.2 checker takes ``last_refresh`` from the sender's time stamp: it must be the time of
    sending (not of the last state change), with ns precision as 1.0.2 sends (``time.time_ns()``)."""
    sat = await make_satellite()
    sub = HeartbeatSub(zctx, sat.ports["hb"])
    cl = client(sat)
    await cl("initialize", {})
    await wait_state(cl, "INIT")
    beats = []
    while len(beats) < 6:
        hb = await sub.next()
        beats.append((time.time_ns(), hb))
    for received, hb in beats:
        assert 0 <= received - hb.time_ns < 100_000_000, (received, hb)
    assert len({hb.time_ns for _, hb in beats}) == 6
    assert any(hb.time_ns % 1000 for _, hb in beats)  # not truncated to microseconds


async def test_extrasystoles_for_reconfigure_and_a_failure_while_running(
    make_satellite, client, zctx
) -> None:
    """The transitional states the differential tests do not reach (Mariner has no reconfigure):
    reconfiguring -> ORBIT, and a failure in RUN straight to ERROR, each with the framework's status."""
    from satellites.sputnik import Sputnik

    sat = await make_satellite(Sputnik)
    sub = HeartbeatSub(zctx, sat.ports["hb"])
    cl = client(sat)
    for command, payload, state in [
        ("initialize", {}, "INIT"),
        ("launch", None, "ORBIT"),
        ("reconfigure", {"temperature": 3.0}, "ORBIT"),
        ("start", "r1", "RUN"),
        ("_failure", None, "ERROR"),
    ]:
        assert (await cl(command, payload)).verb == "transitioning", command
        await wait_state(cl, state)
    extras = []
    async with asyncio.timeout(10):
        while len(extras) < 9:
            hb = await sub.next()
            if hb.is_extrasystole:
                extras.append((hb.state.name, hb.status))
    assert extras[4:] == [
        ("reconfiguring", "Reconfigure requested"),
        ("ORBIT", "Reconfigured"),
        ("starting", "Start requested"),
        ("RUN", "Started run r1"),
        ("ERROR", "Failure requested"),
    ]
