"""PeerMonitor against a real ConstellationDAQ 1.0.2 Mariner (discovered over CHIRP, driven over CSCP)."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest
import zmq
import zmq.asyncio

from constellation.peers import EventKind
from protocols import Role, State, cscp
from protocols.chirp import ServiceId
from tests.harness import eventually

pytestmark = [pytest.mark.netns, pytest.mark.interop]


async def _command(
    ctx: zmq.asyncio.Context, endpoint: str, verb: str, payload: object = None
) -> cscp.Message:
    req = ctx.socket(zmq.REQ)
    req.setsockopt(zmq.LINGER, 0)
    with req:
        req.connect(endpoint)
        await req.send_multipart(cscp.encode(cscp.request("Test.Monitor", verb, payload)))
        assert await req.poll(10_000), f"no reply to {verb}"
        return cscp.decode(await req.recv_multipart())


async def test_mariner_tracked_and_sigkill_lost_within_1s(cdaq_python: Path, watching, spawn, group):
    w = await watching()
    mariner = spawn(str(cdaq_python.with_name("SatelliteMariner")), "-g", group, "-n", "Peer", "-i", "lo")
    await eventually(lambda: w.monitor.state_of("Mariner.Peer") is State.NEW, timeout=20)
    info = w.monitor.peer("mariner.peer")
    assert info.name == "Mariner.Peer"
    assert info.role is Role.DYNAMIC
    control = await eventually(
        lambda: [s for s in w.discovery.services(ServiceId.CONTROL) if s.name in (None, "Mariner.Peer")],
        timeout=10,
    )
    ctx = zmq.asyncio.Context()
    try:
        reply = await _command(ctx, control[0].endpoint, "initialize", {"_autonomy": {"role": "ESSENTIAL"}})
        assert reply.verb_type is cscp.VerbType.SUCCESS, reply
        await eventually(lambda: w.monitor.state_of("Mariner.Peer") is State.INIT, timeout=10)
        assert w.monitor.peer("Mariner.Peer").role is Role.ESSENTIAL
        reply = await _command(ctx, control[0].endpoint, "launch")
        assert reply.verb_type is cscp.VerbType.SUCCESS, reply
        await eventually(lambda: w.monitor.state_of("Mariner.Peer") is State.ORBIT, timeout=10)
    finally:
        ctx.destroy(linger=0)
    # the transitional state was seen too (extrasystoles)
    changes = [e.detail for e in w.events.of("Mariner.Peer", EventKind.STATE_CHANGED)]
    assert any("launching" in d for d in changes), changes
    t0 = time.monotonic()
    mariner.signal(signal.SIGKILL)
    ev = await w.events.first("Mariner.Peer", EventKind.LOST, timeout=5)
    assert ev.time - t0 < 1.0, ev
    assert ev.role is Role.ESSENTIAL
    print(f"1.0.2 Mariner SIGKILL -> LOST {1000 * (ev.time - t0):.0f} ms")


async def test_mariner_shutdown_is_departed_not_lost(cdaq_python: Path, watching, spawn, group):
    """1.0.2 closes its heartbeat socket and sends DEPART from different threads: the grace covers it."""
    w = await watching()
    mariner = spawn(str(cdaq_python.with_name("SatelliteMariner")), "-g", group, "-n", "Leaver", "-i", "lo")
    await eventually(lambda: w.monitor.state_of("Mariner.Leaver") is State.NEW, timeout=20)
    mariner.signal(signal.SIGINT)
    ev = await w.events.first("Mariner.Leaver", EventKind.DEPARTED, timeout=10)
    assert not w.events.of("Mariner.Leaver", EventKind.LOST), w.events.seen
    assert ev.state is State.DEAD
