"""Fixtures for runtime tests: in-process satellites on loopback (no discovery) and CSCP/CHP/CMDP clients."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import pytest
import zmq
import zmq.asyncio

from constellation import Satellite
from constellation.monitoring import MonitoringPublisher
from protocols import chp, cmdp, cscp
from tests.conftest import require_netns
from tests.harness import BeaconLog, eventually


@pytest.fixture
def beacons(group: str) -> Iterator[BeaconLog]:
    """Every CHIRP beacon of the test's group on loopback (inside the namespace only)."""
    require_netns()
    log = BeaconLog(group)
    yield log
    log.close()


class Client:
    """A REQ client like the 1.0.2 controller's (one request at a time, reply timeout)."""

    def __init__(self, ctx: zmq.asyncio.Context, port: int, timeout_ms: int = 3000) -> None:
        self.sock = ctx.socket(zmq.REQ)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.RCVTIMEO, timeout_ms)
        self.sock.connect(f"tcp://127.0.0.1:{port}")
        self.last_rtt = 0.0

    async def raw(self, frames: list[bytes]) -> list[bytes]:
        t0 = time.perf_counter()
        await self.sock.send_multipart(frames)
        reply = await self.sock.recv_multipart()
        self.last_rtt = time.perf_counter() - t0
        return reply

    async def __call__(self, command: str, payload: Any = None) -> cscp.Message:
        frames = cscp.encode(cscp.request("BaseController.ctl", command, payload))
        return cscp.decode(await self.raw(frames))


class HeartbeatSub:
    def __init__(self, ctx: zmq.asyncio.Context, port: int, topic: bytes = b"") -> None:
        self.sock = ctx.socket(zmq.SUB)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.connect(f"tcp://127.0.0.1:{port}")
        self.sock.subscribe(topic)

    async def next(self, timeout: float = 5.0) -> chp.Heartbeat:
        async with asyncio.timeout(timeout):
            return chp.decode(await self.sock.recv_multipart())


class MonitorSub:
    def __init__(self, ctx: zmq.asyncio.Context, port: int) -> None:
        self.sock = ctx.socket(zmq.SUB)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.RCVHWM, 0)
        self.sock.connect(f"tcp://127.0.0.1:{port}")

    def subscribe(self, topic: bytes) -> None:
        self.sock.subscribe(topic)

    async def next(self, timeout: float = 5.0) -> cmdp.LogMessage | cmdp.Metric | cmdp.Notification:
        async with asyncio.timeout(timeout):
            return cmdp.decode(await self.sock.recv_multipart())

    async def until(
        self, predicate: Callable[[Any], bool], timeout: float = 5.0
    ) -> cmdp.LogMessage | cmdp.Metric | cmdp.Notification:
        async with asyncio.timeout(timeout):
            while True:
                msg = await self.next(timeout)
                if predicate(msg):
                    return msg


def metric_named(name: str) -> Callable[[Any], bool]:
    """A `MonitorSub.until` predicate: a metric message of `name`."""
    return lambda m: isinstance(m, cmdp.Metric) and m.name == name


def note_where(pred: Callable[[Any], bool]) -> Callable[[Any], bool]:
    """A `MonitorSub.until` predicate: a notification whose topic map satisfies `pred`."""
    return lambda m: isinstance(m, cmdp.Notification) and pred(m.topics)


@contextlib.asynccontextmanager
async def running_publisher(
    zctx: zmq.asyncio.Context,
    logger: logging.LoggerAdapter[logging.Logger] | None = None,
    *,
    queue_size: int | None = None,
    topics: tuple[bytes, ...] = (b"LOG/INFO",),
) -> AsyncIterator[tuple[MonitoringPublisher, MonitorSub]]:
    """A publisher on an XPUB of its own (XPUB_VERBOSE, as the satellite's) with its task running, and
    a subscriber to `topics` that the publisher has seen."""
    xpub = zctx.socket(zmq.XPUB)
    xpub.setsockopt(zmq.LINGER, 0)
    xpub.setsockopt(zmq.XPUB_VERBOSE, 1)
    port = xpub.bind_to_random_port("tcp://127.0.0.1")
    sized = {} if queue_size is None else {"queue_size": queue_size}
    pub = MonitoringPublisher(xpub, "Satellite.T", logger, **sized)
    task = asyncio.create_task(pub.run())
    sub = MonitorSub(zctx, port)
    try:
        for topic in topics:
            sub.subscribe(topic)
        await eventually(lambda: set(topics) <= pub._subs)
        yield pub, sub
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def monitor_sub(zctx: zmq.asyncio.Context, sat: Satellite, *topics: bytes) -> MonitorSub:
    """A MonitorSub on `sat`'s monitoring port, subscribed to `topics`, returned once the satellite's
    publisher has seen every one of them (subscriptions arrive asynchronously)."""
    sub = MonitorSub(zctx, sat.ports["mon"])
    for topic in topics:
        sub.subscribe(topic)
    await eventually(lambda: set(topics) <= sat._mon._subs)
    return sub


@pytest.fixture
def debug_logging() -> Any:
    root = logging.getLogger()
    old = root.level
    root.setLevel(logging.DEBUG)
    yield
    root.setLevel(old)


@pytest.fixture
async def zctx() -> AsyncIterator[zmq.asyncio.Context]:
    ctx = zmq.asyncio.Context()
    yield ctx
    ctx.destroy(linger=0)


SatFactory = Callable[..., Awaitable[Satellite]]


@pytest.fixture
async def make_satellite() -> AsyncIterator[SatFactory]:
    """make_satellite(cls=Satellite, name="T", **kw) -> started satellite on 127.0.0.1, closed at teardown."""
    started: list[Satellite] = []

    async def make(cls: type[Satellite] = Satellite, name: str = "T", **kw: Any) -> Satellite:
        kw.setdefault("bind", "127.0.0.1")
        kw.setdefault("discovery", ())
        sat = cls(name, "tgroup", **kw)
        await sat.start()
        started.append(sat)
        return sat

    yield make
    for sat in reversed(started):
        with contextlib.suppress(Exception):
            async with asyncio.timeout(5):
                await sat.aclose()


@pytest.fixture
def client(zctx: zmq.asyncio.Context) -> Callable[[Satellite], Client]:
    return lambda sat: Client(zctx, sat.ports["cmd"])


async def drive_to_run(cl: Client, run_id: str = "r1") -> None:
    """initialize (empty config), launch, start `run_id`: each waited for, with deadlines."""
    steps = (("initialize", {}, "INIT"), ("launch", None, "ORBIT"), ("start", run_id, "RUN"))
    for command, payload, state in steps:
        await cl(command, payload)
        await wait_state(cl, state)


async def wait_state(cl: Client, state: str, timeout: float = 5.0) -> cscp.Message:
    """Wait (with a deadline) until get_state reports `state`; return that reply."""

    async def reached() -> cscp.Message | None:
        rep = await cl("get_state")
        return rep if rep.verb == state else None

    result: cscp.Message = await eventually(reached, timeout=timeout)
    return result
