"""Fuzz the heartbeat (CHP) and monitoring (CMDP) XPUB sockets with subscriptions and raw garbage.

Inputs: non-empty-topic heartbeat subscriptions (1.0.2 counts each as -1 and shrinks its interval; §12),
CHP-like garbage from raw XSUB peers, CMDP subscriptions to unknown prefixes and to ``""`` (§12), random
topics and XSUB garbage on the monitoring socket. Afterwards the satellite is healthy, its heartbeat
interval is the one of its real subscribers, and a fresh CMDP subscriber still gets notifications and
metrics.
"""

from __future__ import annotations

import random
import time

import pytest
import zmq

from protocols import chp, cmdp
from tests.fuzz.conftest import assert_healthy
from tests.fuzz.support import LOOPBACK, HeartbeatSub, Sat

pytestmark = [pytest.mark.netns, pytest.mark.timeout(120)]


def _sub(ctx: zmq.Context, port: int, *topics: bytes) -> zmq.Socket:
    s = ctx.socket(zmq.SUB)
    s.setsockopt(zmq.LINGER, 0)
    for t in topics:
        s.setsockopt(zmq.SUBSCRIBE, t)
    s.connect(f"tcp://{LOOPBACK}:{port}")
    return s


def _xsub_garbage(ctx: zmq.Context, port: int, rng: random.Random, n: int) -> None:
    """Raw XSUB messages: random bytes, subscribe/unsubscribe-looking frames with random topics, multipart.

    A bare ``b"\\x01"`` (a real empty-topic subscription) is never sent: that one legitimately counts.
    """
    x = ctx.socket(zmq.XSUB)
    x.setsockopt(zmq.LINGER, 0)
    x.setsockopt(zmq.SNDHWM, 0)
    x.connect(f"tcp://{LOOPBACK}:{port}")
    try:
        for i in range(n):
            kind = i % 5
            if kind == 0:
                frames = [rng.randbytes(rng.randint(1, 32))]
            elif kind == 1:
                frames = [b"\x01" + rng.randbytes(rng.randint(1, 16))]
            elif kind == 2:
                frames = [b"\x00" + rng.randbytes(rng.randint(0, 16))]
            elif kind == 3:
                frames = [rng.randbytes(rng.randint(0, 8)) or b"\x02" for _ in range(rng.randint(2, 4))]
            else:
                frames = [bytes([rng.randint(2, 255)]) + rng.randbytes(rng.randint(0, 64))]
            if frames == [b"\x01"]:
                continue
            x.send_multipart(frames)
    finally:
        x.close()


def test_non_empty_heartbeat_subscriptions_do_not_shrink_the_interval(orbiting: Sat) -> None:
    ctx = zmq.Context()
    first = HeartbeatSub(orbiting.hb)
    try:
        # 17 subscribers with non-empty topics (1.0.2: each counts -1) ...
        bogus = [_sub(ctx, orbiting.hb, b"XYZ", b"\x01", b"CHP\x01") for _ in range(17)]
        # ... then a second real subscriber: two subscribers announce 1500 ms.
        second = HeartbeatSub(orbiting.hb)
        try:
            expected = chp.heartbeat_interval_ms(2)
            first.wait(lambda hb: hb.interval_ms == expected, timeout=10)
            for _ in range(2):  # and it stays there: the bogus subscriptions are not counted
                assert first.next(timeout=5).interval_ms == expected
            for s in bogus:
                s.close()
            assert first.next(timeout=5).interval_ms == expected
        finally:
            second.close()
        # Back to one real subscriber.
        first.wait(lambda hb: hb.interval_ms == chp.heartbeat_interval_ms(1), timeout=10)
    finally:
        first.close()
        ctx.destroy(linger=0)
    assert_healthy(orbiting)


def test_heartbeat_xpub_survives_xsub_garbage(orbiting: Sat) -> None:
    ctx = zmq.Context()
    try:
        rng = random.Random(1)
        for _ in range(4):
            _xsub_garbage(ctx, orbiting.hb, rng, 500)
        # Garbage gone: one real subscriber sees heartbeats at the one-subscriber interval.
        beats = HeartbeatSub(orbiting.hb)
        try:
            beats.wait(lambda hb: hb.interval_ms == chp.heartbeat_interval_ms(1), timeout=10)
        finally:
            beats.close()
    finally:
        ctx.destroy(linger=0)
    assert_healthy(orbiting)


UNKNOWN_TOPICS = [
    *(b"", b"FOO/", b"log/status", b"LOG/NOPE", b"LOG/INFO/", b"STAT/UNKNOWN", b"STAT", b"LOG", b"L"),
    *(b"LOG?x", b"STAT??", b"\x00", b"\xff\xfe", b"LOG/\xff", "LOG/ÄÖ".encode()),
]


def test_cmdp_unknown_subscriptions_and_garbage_then_real_topics_still_work(orbiting: Sat) -> None:
    ctx = zmq.Context()
    rng = random.Random(2)
    try:
        random_topics = [rng.randbytes(rng.randint(1, 24)) for _ in range(300)]
        subs = [_sub(ctx, orbiting.mon, *UNKNOWN_TOPICS) for _ in range(5)]
        subs.append(_sub(ctx, orbiting.mon, *random_topics))
        for _ in range(4):
            _xsub_garbage(ctx, orbiting.mon, rng, 500)
        # Churn: subscribe and unsubscribe random topics on a live socket.
        churn = _sub(ctx, orbiting.mon)
        for t in random_topics[:200]:
            churn.setsockopt(zmq.SUBSCRIBE, t)
            churn.setsockopt(zmq.UNSUBSCRIBE, t)
        subs.append(churn)

        # A real listener: the LOG?/STAT? notifications come at once, the temperature within its period.
        real = _sub(ctx, orbiting.mon, b"LOG?", b"STAT?", b"STAT/TEMPERATURE")
        got: dict[str, object] = {}
        deadline = time.monotonic() + 10
        while len(got) < 3 and time.monotonic() < deadline:
            if real.poll(500):
                msg = cmdp.decode(real.recv_multipart())
                assert msg.sender == orbiting.name
                if isinstance(msg, cmdp.Notification):
                    got[msg.kind] = msg.topics
                elif isinstance(msg, cmdp.Metric) and msg.name == "TEMPERATURE":
                    got["TEMPERATURE"] = msg.value
        assert set(got) == {"LOG", "STAT", "TEMPERATURE"}, got
        assert "SPUTNIK" in got["LOG"]  # type: ignore[operator]
        assert "TEMPERATURE" in got["STAT"]  # type: ignore[operator]
        # The "" subscribers only ever get what real subscriptions cause, all decodable.
        for s in subs[:5]:
            while s.poll(0):
                cmdp.decode(s.recv_multipart())
        for s in subs:
            s.close()
        real.close()
    finally:
        ctx.destroy(linger=0)
    assert_healthy(orbiting)
