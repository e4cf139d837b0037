"""CHP: interval scaling with subscribers, extrasystoles, status frames, role flags (wire doc §4)."""

from __future__ import annotations

from protocols import HeartbeatFlags, State, chp
from tests.harness import eventually
from tests.runtime.conftest import HeartbeatSub, wait_state

X = HeartbeatFlags.IS_EXTRASYSTOLE


async def interval_reaches(sub: HeartbeatSub, expected: int) -> list[int]:
    seen: list[int] = []

    async def check() -> bool:
        hb = await sub.next(3.0)
        seen.append(hb.interval_ms)
        return hb.interval_ms == expected

    await eventually(check, timeout=8.0)
    return seen


async def test_interval_scales_with_empty_topic_subscribers(make_satellite, zctx) -> None:
    sat = await make_satellite()
    port = sat.ports["hb"]
    first = HeartbeatSub(zctx, port)
    await interval_reaches(first, 500)
    second = HeartbeatSub(zctx, port)
    await interval_reaches(first, 1500)
    third = HeartbeatSub(zctx, port)
    await interval_reaches(first, 2121)
    assert sat._hb.subscribers == 3
    for s in (second, third):
        s.sock.close(0)
    await interval_reaches(first, 500)


async def test_non_empty_topic_is_not_counted(make_satellite, zctx) -> None:
    sat = await make_satellite()
    port = sat.ports["hb"]
    a, _b = HeartbeatSub(zctx, port), HeartbeatSub(zctx, port)
    _xyz = HeartbeatSub(zctx, port, b"XYZ")  # 1.0.2 would count this as -1 (N=1 -> 500 ms)
    await interval_reaches(a, 1500)
    assert sat._hb.subscribers == 2


async def test_max_interval_is_configurable(make_satellite, client, zctx) -> None:
    sat = await make_satellite()
    subs = [HeartbeatSub(zctx, sat.ports["hb"]) for _ in range(3)]
    await client(sat)("initialize", {"_autonomy": {"max_heartbeat_interval": 1}})
    await interval_reaches(subs[0], 1000)


async def test_extrasystoles_on_every_state_change(make_satellite, client, zctx) -> None:
    sat = await make_satellite()
    sub = HeartbeatSub(zctx, sat.ports["hb"])
    first = await sub.next()
    assert first.sender == "Satellite.T"
    assert first.state is State.NEW
    assert not first.is_extrasystole
    assert first.flags == HeartbeatFlags.TRIGGER_INTERRUPT | HeartbeatFlags.MARK_DEGRADED
    cl = client(sat)
    await cl("initialize", {"_autonomy": {"role": "essential"}})
    await wait_state(cl, "INIT")
    await cl("launch")
    await wait_state(cl, "ORBIT")
    extras = []
    while len(extras) < 4:
        hb = await sub.next()
        if hb.is_extrasystole:
            extras.append(hb)
    assert [(h.state, h.status) for h in extras] == [
        (State.initializing, "Initialize requested"),
        (State.INIT, "Initialized"),
        (State.launching, "Launch requested"),
        (State.ORBIT, "Launched"),
    ]
    assert extras[0].flags == X | HeartbeatFlags.TRIGGER_INTERRUPT | HeartbeatFlags.MARK_DEGRADED
    assert extras[1].flags == X | 0x07  # the role applies from the initializing hook on
    assert (await cl("get_role")).payload == 7


async def test_status_on_regular_beats_only_when_changed(make_satellite, client, zctx) -> None:
    sat = await make_satellite()
    sub = HeartbeatSub(zctx, sat.ports["hb"])
    await sub.next()
    cl = client(sat)
    await cl("initialize", {})
    await wait_state(cl, "INIT")
    regular = []
    while len(regular) < 3:
        hb = await sub.next()
        if not hb.is_extrasystole:
            regular.append(hb)
    assert regular[0].status == "Initialized"  # changed since the previous regular beat
    assert regular[1].status is None
    assert regular[2].status is None


async def test_role_is_rederived_on_every_initialize(make_satellite, client) -> None:
    sat = await make_satellite()
    cl = client(sat)
    await cl("initialize", {"_role": "ESSENTIAL"})
    await wait_state(cl, "INIT")
    assert ((await cl("get_role")).verb, sat.role.name) == ("ESSENTIAL", "ESSENTIAL")
    await cl("initialize", {})
    await wait_state(cl, "INIT")
    rep = await cl("get_role")
    assert (rep.verb, rep.payload) == ("DYNAMIC", 6)
    await cl("initialize", {"_autonomy": {"role": "bogus"}})
    await wait_state(cl, "ERROR")
    status = (await cl("get_status")).verb
    assert status.startswith("ConfigError in _wrap_initialize: Value of key `_autonomy.role` is not valid")
    await cl("initialize", {"_autonomy": {"role": "NONE"}, "_role": "NONE"})
    await wait_state(cl, "ERROR")
    assert "given twice" in (await cl("get_status")).verb


async def test_garbage_on_the_heartbeat_socket_is_ignored(make_satellite, client, zctx) -> None:
    import zmq

    sat = await make_satellite()
    xsub = zctx.socket(zmq.XSUB)
    xsub.setsockopt(zmq.LINGER, 0)
    xsub.connect(f"tcp://127.0.0.1:{sat.ports['hb']}")
    for junk in ([b"\x07junk"], [b""], [b"\x00"], [b"\x00"], [b"\x02", b"x"], [b"\xff" * 500]):
        await xsub.send_multipart(junk)
    sub = HeartbeatSub(zctx, sat.ports["hb"])
    hb = await sub.next()
    assert hb.state is State.NEW
    # the two stray unsubscriptions did not go below zero; the count is taken before each beat
    await eventually(lambda: sat._hb.subscribers == 1)
    await sub.next()
    assert sat._hb.subscribers == 1
    assert (await client(sat)("get_state")).verb == "NEW"


async def _quiet_with_subscribers(sat, zctx, n: int) -> list[HeartbeatSub]:
    """``n`` subscribers, all counted and served; then wait out the prompt-beat gap."""
    import time

    from constellation.heartbeat import prompt_gap_s

    subs = [HeartbeatSub(zctx, sat.ports["hb"]) for _ in range(n)]
    for s in subs:
        await s.next()  # each one got a beat (prompt or regular)
    hb = sat._hb
    await eventually(lambda: hb.subscribers == n and hb._joined_at is None)
    await eventually(lambda: time.monotonic() - hb._last_beat > prompt_gap_s(hb.interval_ms), timeout=5.0)
    return subs


async def test_new_subscriber_gets_a_beat_at_once_when_the_interval_is_long(make_satellite, zctx) -> None:
    import time

    sat = await make_satellite()
    subs = await _quiet_with_subscribers(sat, zctx, 40)
    assert sat._hb.interval_ms == chp.heartbeat_interval_ms(40) == 9367  # regular beats 7.5 s apart
    prompt_before = sat._hb.prompt_beats
    t0 = time.monotonic()
    late = HeartbeatSub(zctx, sat.ports["hb"])
    hb = await late.next(timeout=5.0)
    waited = time.monotonic() - t0
    assert waited < 0.5, f"first beat after {waited:.3f} s"
    assert (hb.state, hb.is_extrasystole, hb.interval_ms) == (State.NEW, False, chp.heartbeat_interval_ms(41))
    assert sat._hb.prompt_beats == prompt_before + 1
    # everyone gets the same ordinary beat (subs[0] may still hold older ones)
    while (other := await subs[0].next(timeout=2.0)).time_ns != hb.time_ns:
        assert other.time_ns < hb.time_ns


async def test_a_burst_of_joins_shares_few_prompt_beats(make_satellite, zctx) -> None:
    sat = await make_satellite()
    subs = await _quiet_with_subscribers(sat, zctx, 20)
    sent, prompts = sat._hb.sent, sat._hb.prompt_beats
    burst = [HeartbeatSub(zctx, sat.ports["hb"]) for _ in range(30)]
    for s in burst:
        assert not (await s.next(timeout=5.0)).is_extrasystole
    await eventually(lambda: sat._hb.subscribers == 50, timeout=2.0)
    assert len(subs) == 20  # kept open (a closed SUB unsubscribes)
    # 30 joins, at most a handful of beats: coalesced within 30 ms and spaced >= 0.1 s
    assert 1 <= sat._hb.prompt_beats - prompts <= 4
    assert sat._hb.sent - sent <= 5
