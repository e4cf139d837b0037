"""HeartbeatWatch against an in-process XPUB on loopback: empty-topic subscription, liveness, disconnect."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest
import zmq
import zmq.asyncio

from controllers import Liveness
from controllers.heartbeats import HeartbeatWatch
from protocols import State, chp
from protocols.chp import Heartbeat
from protocols.states import HeartbeatFlags
from tests.harness import eventually

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
async def ctx() -> AsyncIterator[zmq.asyncio.Context]:
    context = zmq.asyncio.Context()
    yield context
    context.destroy(linger=0)


class Events:
    def __init__(self) -> None:
        self.beats: list[Heartbeat] = []
        self.lost: list[tuple[float, str]] = []


async def _publisher(ctx: zmq.asyncio.Context) -> tuple[zmq.asyncio.Socket, str]:
    pub = ctx.socket(zmq.XPUB)
    pub.setsockopt(zmq.LINGER, 0)
    pub.setsockopt(zmq.XPUB_VERBOSER, 1)
    port = pub.bind_to_random_port("tcp://127.0.0.1")
    return pub, f"tcp://127.0.0.1:{port}"


def _beat(state: State = State.NEW, interval_ms: int = 100) -> list[bytes]:
    return chp.encode(Heartbeat("Fake.One", state, HeartbeatFlags(0x06), interval_ms, "ok"))


async def _watch(ctx, endpoint: str, liveness: Liveness) -> tuple[HeartbeatWatch, Events]:
    ev = Events()
    watch = HeartbeatWatch(
        ctx,
        endpoint,
        on_beat=ev.beats.append,
        on_lost=lambda why: ev.lost.append((time.monotonic(), why)),
        liveness=liveness,
    )
    watch.start()
    return watch, ev


async def test_subscribes_with_empty_topic_and_delivers_beats(ctx) -> None:
    pub, endpoint = await _publisher(ctx)
    watch, ev = await _watch(ctx, endpoint, Liveness())
    try:
        assert await pub.recv() == b"\x01"  # exactly the empty subscription (1.0.2 counts others as -1)
        await pub.send_multipart(_beat(State.ORBIT))
        await pub.send_multipart([b"garbage"])  # dropped and counted, not fatal
        await pub.send_multipart(_beat(State.RUN))
        await eventually(lambda: len(ev.beats) == 2, timeout=5)
        assert [b.state for b in ev.beats] == [State.ORBIT, State.RUN]
        assert ev.beats[0].status == "ok"
        assert watch.malformed == 1
        assert not ev.lost
    finally:
        await watch.aclose()
        pub.close(linger=0)


async def test_lost_after_lives_times_interval_and_revived(ctx) -> None:
    pub, endpoint = await _publisher(ctx)
    watch, ev = await _watch(ctx, endpoint, Liveness(lives=3, tolerance=1.0, disconnect_is_loss=False))
    try:
        await pub.recv()
        await pub.send_multipart(_beat(interval_ms=100))
        await eventually(lambda: ev.beats, timeout=5)
        t_last = time.monotonic()
        await eventually(lambda: ev.lost, timeout=5)
        silent = ev.lost[0][0] - t_last
        assert 0.25 <= silent < 0.6, silent  # 3 lives x 100 ms, checked at the deadline
        assert "no heartbeat" in ev.lost[0][1]
        await pub.send_multipart(_beat(interval_ms=100))
        await eventually(lambda: len(ev.beats) == 2, timeout=5)
        await eventually(lambda: len(ev.lost) == 2, timeout=5)  # lives restored, then lost again
    finally:
        await watch.aclose()
        pub.close(linger=0)


async def test_dropped_connection_is_a_loss_at_once(ctx) -> None:
    pub, endpoint = await _publisher(ctx)
    watch, ev = await _watch(ctx, endpoint, Liveness(lives=3, tolerance=100.0))
    try:
        await pub.recv()
        await pub.send_multipart(_beat(interval_ms=1000))
        await eventually(lambda: ev.beats, timeout=5)
        t0 = time.monotonic()
        pub.close(linger=0)
        await eventually(lambda: ev.lost, timeout=5)
        assert ev.lost[0][1] == "connection dropped"
        assert ev.lost[0][0] - t0 < 1.0
    finally:
        await watch.aclose()


def test_liveness_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        Liveness(lives=0)
    with pytest.raises(ValueError):
        Liveness(tolerance=0)
