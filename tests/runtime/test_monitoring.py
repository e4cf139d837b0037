"""CMDP: subscriptions, notifications, logs and metrics only when subscribed, bursts with drop counting."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import Any

import msgpack
import pytest
import zmq

from constellation import Satellite, StopToken, metric
from constellation.monitoring import MonitoringPublisher
from protocols import EncodeError, cmdp
from tests.harness import eventually
from tests.runtime.conftest import MonitorSub, running_publisher, wait_state

DEFAULT_STATS = {"RUN_ID", "STATE", "LOG_DROPPED", "CPU_LOAD_AVG", "MEM_AVAIL"}


async def test_notifications(make_satellite, zctx) -> None:
    sat = await make_satellite()
    sub = MonitorSub(zctx, sat.ports["mon"])
    sub.subscribe(b"LOG?")
    note = await sub.until(lambda m: isinstance(m, cmdp.Notification))
    assert (note.kind, dict(note.topics)) == (
        "LOG", {"SATELLITE": "", "LINK": "", "FSM": "", "CTRL": "", "MNTR": ""},
    )  # fmt: skip
    sub.subscribe(b"STAT?")
    note = await sub.until(lambda m: isinstance(m, cmdp.Notification) and m.kind == "STAT")
    assert set(note.topics) == DEFAULT_STATS
    assert note.topics["RUN_ID"] == "Current run identifier. Updated when changed."
    sat.register_metric("NEW_ONE", "V", "A new metric.")  # a new topic is announced again
    note = await sub.until(lambda m: isinstance(m, cmdp.Notification) and "NEW_ONE" in m.topics)
    assert note.topics["NEW_ONE"] == "A new metric."


async def test_state_and_log_messages_when_subscribed(make_satellite, client, zctx) -> None:
    sat = await make_satellite()
    sub = MonitorSub(zctx, sat.ports["mon"])
    sub.subscribe(b"STAT/STATE")
    sub.subscribe(b"LOG/STATUS/FSM")
    await eventually(lambda: len(sat._mon._prefixes) == 2)
    cl = client(sat)
    await cl("initialize", {})
    msgs = [await sub.next() for _ in range(4)]
    states = [m.value for m in msgs if isinstance(m, cmdp.Metric)]
    logs = [m for m in msgs if isinstance(m, cmdp.LogMessage)]
    assert states == ["initializing", "INIT"]
    assert logs[0].text == "State transition initialize initiated"
    assert (logs[0].level, logs[0].topic, logs[0].sender) == (cmdp.Level.STATUS, "FSM", "Satellite.T")
    assert set(logs[0].tags) >= {"filename", "pathname", "lineno", "funcName", "module", "thread",
                                  "threadName", "process", "processName"}  # fmt: skip
    assert logs[1].text == "State transition to steady state completed (initializing -> INIT)."


async def test_nothing_is_produced_without_subscribers(make_satellite, client, zctx, debug_logging) -> None:
    sat = await make_satellite()
    sub = MonitorSub(zctx, sat.ports["mon"])
    sub.subscribe(b"")  # the empty topic enables nothing (1.0.2)
    sub.subscribe(b"log/status")  # byte-exact: lower case matches nothing
    await eventually(lambda: len(sat._mon._subs) == 2)
    cl = client(sat)
    await cl("initialize", {})
    await wait_state(cl, "INIT")
    sat.log.info("hello")
    sat.stat("STATE", "x")
    assert sat._mon.sent == 0
    assert not sat._mon._queue


async def test_level_subscription_is_not_a_threshold(make_satellite, zctx, debug_logging) -> None:
    sat = await make_satellite()
    sub = MonitorSub(zctx, sat.ports["mon"])
    sub.subscribe(b"LOG/WARNING")
    await eventually(lambda: sat._mon._prefixes)
    sat.log.critical("crit")
    sat.log.info("info")
    sat.log.warning("warn")
    msg = await sub.next()
    assert (msg.level, msg.topic, msg.text) == (cmdp.Level.WARNING, "SATELLITE", "warn")


class Metered(Satellite):
    log_queue_size = 64

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.go = threading.Event()  # the test lets the burst go once it holds the loop
        self.burst_done = threading.Event()

    @metric(unit="lm", interval=0.05)
    def brightness(self) -> int:
        """Brightness."""
        return 95

    def do_run(self, stop: StopToken) -> str:
        self.go.wait(10)
        t0 = time.perf_counter()
        for i in range(20000):
            self.log.info("burst %d", i)
        self.burst_s = time.perf_counter() - t0
        self.burst_done.set()
        stop.wait()
        return "done"


async def test_periodic_metric_only_outside_new(make_satellite, client, zctx) -> None:
    sat = await make_satellite(Metered)
    sub = MonitorSub(zctx, sat.ports["mon"])
    sub.subscribe(b"STAT/BRIGHTNESS")
    sub.subscribe(b"STAT/CPU_LOAD_AVG")
    await eventually(lambda: len(sat._mon._prefixes) == 2)
    await asyncio.sleep(0)  # NEW: not sampled (1.0.2 DEFAULT_ALLOWED_STATES)
    assert sat._mon.sent == 0
    cl = client(sat)
    await cl("initialize", {})
    got = {}
    while len(got) < 2:
        m = await sub.next()
        got[m.name] = m
    assert (got["BRIGHTNESS"].value, got["BRIGHTNESS"].unit) == (95, "lm")
    assert got["CPU_LOAD_AVG"].unit == "%"
    assert isinstance(got["CPU_LOAD_AVG"].value, float)
    again = await sub.until(lambda m: m.name == "BRIGHTNESS")
    assert again.value == 95


async def test_log_burst_never_blocks_on_a_stalled_sender_and_drops_are_reported(
    make_satellite, client, zctx
) -> None:
    logging.getLogger().setLevel(logging.INFO)
    try:
        sat = await make_satellite(Metered)
        sub = MonitorSub(zctx, sat.ports["mon"])
        sub.subscribe(b"LOG/INFO")
        sub.subscribe(b"LOG/WARNING/MNTR")
        sub.subscribe(b"STAT/LOG_DROPPED")
        await eventually(lambda: len(sat._mon._prefixes) == 3)
        cl = client(sat)
        await cl("initialize", {})
        await wait_state(cl, "INIT")
        await cl("launch")
        await wait_state(cl, "ORBIT")
        await cl("start", "b1")
        await wait_state(cl, "RUN")
        # The loop (the sender) is held for the whole burst: the hook waits for it once (`SendPacer`),
        # then never again, and the queue drops what does not fit. Without the hold the hook is paced
        # to the sender and nothing is dropped (tests/runtime/test_log_fastpath_satellite.py).
        sat.go.set()
        assert sat.burst_done.wait(10)
        assert sat._mon.dropped > 0
        warning = await sub.until(lambda m: isinstance(m, cmdp.LogMessage) and m.topic == "MNTR", 10)
        assert "log messages dropped" in warning.text
        dropped = await sub.until(lambda m: isinstance(m, cmdp.Metric) and m.name == "LOG_DROPPED", 10)
        assert dropped.value > 0
        assert sat.burst_s < 5.0
    finally:
        logging.getLogger().setLevel(logging.WARNING)


async def test_malformed_subscriptions_are_ignored(make_satellite, zctx) -> None:
    sat = await make_satellite()
    xsub = zctx.socket(zmq.XSUB)
    xsub.setsockopt(zmq.LINGER, 0)
    xsub.connect(f"tcp://127.0.0.1:{sat.ports['mon']}")
    for bad in ([b"\x05junk"], [b""], [b"\x02x", b"y"], [b"\xff" * 300]):
        await xsub.send_multipart(bad)
    await xsub.send(b"\x01STAT?")
    async with asyncio.timeout(5):
        frames = await xsub.recv_multipart()
    note = cmdp.decode(frames)
    assert isinstance(note, cmdp.Notification)
    assert note.kind == "STAT"


class OneOff(Satellite):
    def do_launching(self) -> None:  # runs in a worker thread
        self.stat("VOLTAGE", 4.5, "V")


async def test_one_off_metric_from_a_hook_thread(make_satellite, client, zctx) -> None:
    sat = await make_satellite(OneOff)
    sub = MonitorSub(zctx, sat.ports["mon"])
    sub.subscribe(b"STAT?")
    sub.subscribe(b"STAT/VOLTAGE")
    await sub.until(lambda m: isinstance(m, cmdp.Notification))
    cl = client(sat)
    await cl("initialize", {})
    await wait_state(cl, "INIT")
    await cl("launch")
    seen: dict[type, object] = {}
    while len(seen) < 2:  # the notification and the value, in either order
        msg = await sub.next()
        if isinstance(msg, cmdp.Metric) or "VOLTAGE" in getattr(msg, "topics", {}):
            seen[type(msg)] = msg
    value = seen[cmdp.Metric]
    assert (value.name, value.value, value.unit) == ("VOLTAGE", 4.5, "V")  # type: ignore[attr-defined]


async def test_unencodable_record_is_dropped_whole_between_good_ones(zctx) -> None:
    """Every frame of a message is built before the first is sent: a record whose tags msgpack refuses
    (from the handler path, tags as a dict) is dropped alone; the messages around it arrive intact."""
    async with running_publisher(zctx) as (pub, sub):
        ns = 1_763_800_000_123_456_000
        packed = msgpack.packb({"lineno": 1})
        pub.push((cmdp.Level.INFO, "X", "first", packed, ns))
        pub.push((cmdp.Level.INFO, "X", "bad", {"obj": object()}, ns))  # msgpack raises TypeError
        pub.push((cmdp.Level.INFO, "X", "bad \udcff text", {"n": 2**70}, ns))  # OverflowError
        pub.push((cmdp.Level.INFO, "X", "last \udcff", {"lineno": 2}, ns))  # a lone surrogate: "?"
        first, last = await sub.next(), await sub.next()
        assert isinstance(first, cmdp.LogMessage)
        assert isinstance(last, cmdp.LogMessage)
        assert (first.text, dict(first.tags), first.time_ns) == ("first", {"lineno": 1}, ns)
        assert (last.text, dict(last.tags)) == ("last ?", {"lineno": 2})
        await eventually(lambda: pub.sent == 2)
        assert not await sub.sock.poll(100)  # nothing else (no stray frame of the dropped ones)


async def test_record_times_around_second_boundaries_are_sent_exactly(zctx) -> None:
    """The publisher packs the timestamps of one second from that second's base (`second_of`); the
    bytes must be the codec's for times in, at and across second boundaries, and outside the range
    of the fixext 8 form, in one drained batch."""
    second = 1_763_800_000 * 10**9
    times = [
        second + 123_456_000,
        second + 999_999_000,  # the second's last microsecond
        second + 10**9,  # the next second's start: the short form (fixext 4)
        second + 10**9 + 1000,
        second + 10**9,  # the start of the second now in use: still the short form
        second + 5000,  # back into the previous second
        2**34 * 10**9 + 7000,  # past 2514: the 12-byte form
        2**34 * 10**9 - 1000,  # the last fixext 8 time
        -1_500_000,  # before 1970
        second + 2_000,
    ]
    async with running_publisher(zctx) as (pub, sub):
        packed = msgpack.packb({"lineno": 1})
        for i, ns in enumerate(times):  # queued together, sent by one drain
            pub.push((cmdp.Level.INFO, "X", f"r{i}", packed, ns))
        got = [await sub.sock.recv_multipart() for _ in times]
        codec = [
            cmdp.encode(cmdp.LogMessage("Satellite.T", cmdp.Level.INFO, "X", f"r{i}", {"lineno": 1}, ns))
            for i, ns in enumerate(times)
        ]
        assert got == codec


async def test_record_time_beyond_the_timestamp_range_is_dropped_alone(zctx) -> None:
    """A record time msgpack has no timestamp form for (seconds beyond int64, e.g. a record factory's
    bogus `created`): `struct` raises its own error, not a ValueError. That record is dropped alone and
    counted as not sent; the rest of the batch goes out in the same drain, with nothing logged as an
    unexpected publisher error."""
    errors: list[str] = []

    class Errors(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            errors.append(record.getMessage())

    own = logging.getLogger(f"test_monitoring.range{id(errors)}")
    own.propagate = False
    own.addHandler(Errors(logging.ERROR))
    ns = 1_763_800_000_123_456_000
    async with running_publisher(zctx, logging.LoggerAdapter(own, {})) as (pub, sub):
        packed = msgpack.packb({"lineno": 1})
        ancient = -(1 << 100) + 5  # beyond every timestamp form: dropped, and no second to pack from
        pub.push((cmdp.Level.INFO, "X", "ancient", packed, ancient))
        pub.push((cmdp.Level.INFO, "X", "first", packed, ns))
        pub.push((cmdp.Level.INFO, "X", "too late", packed, 2**63 * 10**9))
        pub.push((cmdp.Level.INFO, "X", "too early", packed, -(2**63) * 10**9 - 1))
        pub.push((cmdp.Level.INFO, "X", "before 1970", packed, -1_500_000))  # no fixext 8 form
        pub.push((cmdp.Level.INFO, "X", "ancient again", packed, ancient + 2))
        pub.push((cmdp.Level.INFO, "X", "last", packed, ns + 1000))
        got = [await sub.next() for _ in range(3)]
        assert all(isinstance(m, cmdp.LogMessage) for m in got)
        assert [(m.text, m.time_ns) for m in got] == [  # type: ignore[union-attr]
            ("first", ns),
            ("before 1970", -1_500_000),
            ("last", ns + 1000),
        ]
        await eventually(lambda: pub.sent == 3)
        assert errors == []
        assert not await sub.sock.poll(100)


async def test_a_subscription_arriving_while_a_producer_asks_is_not_forgotten(zctx) -> None:
    """`wants` from a logging thread can be interrupted by the loop taking a subscription (a GIL switch
    in the middle). The answer it computed from the old subscriptions must not be remembered for the
    new ones: the topic would stay unsent until the next subscription change."""
    xpub = zctx.socket(zmq.XPUB)
    xpub.setsockopt(zmq.LINGER, 0)
    xpub.bind_to_random_port("tcp://127.0.0.1")
    pub = MonitoringPublisher(xpub, "Satellite.T")
    pub._on_subscription([b"\x01STAT/X"])  # a prefix, so `wants` compares the topic with it

    class Topic(bytes):
        switched = False

        def startswith(self, prefix: object, *args: object) -> bool:  # type: ignore[override]
            if not Topic.switched:  # here the loop thread takes a new subscription
                Topic.switched = True
                pub._on_subscription([b"\x01LOG/"])
            return bytes.startswith(self, prefix, *args)  # type: ignore[arg-type]

    pub.wants(Topic(b"LOG/INFO/X"))  # computed from the old subscriptions: either answer is right
    assert Topic.switched
    assert pub.wants(b"LOG/INFO/X")  # asked again after the change: it is subscribed


async def test_satellite_stat_checks_the_value_before_announcing_the_metric(make_satellite) -> None:
    """A refused value (or None) must not register and announce the metric on STAT?."""
    sat = await make_satellite()
    with pytest.raises(EncodeError):
        sat.stat("LISTY", [1, 2])
    with pytest.raises(EncodeError):
        sat.stat(7, 1.0)  # type: ignore[arg-type]
    sat.stat("NOTHING", None)
    assert not {"LISTY", "NOTHING"} & set(sat._mon.stat_topics)
    sat.stat("TEMPERATURE", 21.5, "degC")
    assert sat._mon.units["TEMPERATURE"] == "degC"
