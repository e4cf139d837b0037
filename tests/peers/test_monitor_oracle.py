"""PeerMonitor against a real ConstellationDAQ 1.0.2 Mariner (discovered over CHIRP, driven over CSCP)."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import pytest
import zmq
import zmq.asyncio

from constellation.peers import EventKind, RemoteInError, parse_conditions, wait_for_conditions
from protocols import Role, State, chirp, cscp
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
    spawn(str(cdaq_python.with_name("SatelliteMariner")), "-g", group, "-n", "Leaver", "-i", "lo")
    await eventually(lambda: w.monitor.state_of("Mariner.Leaver") is State.NEW, timeout=20)
    control = await eventually(
        lambda: [s for s in w.discovery.services(ServiceId.CONTROL) if s.name in (None, "Mariner.Leaver")],
        timeout=10,
    )
    # An orderly exit by command: 1.0.2 sends DEPART after a SIGINT only where its main thread takes
    # the KeyboardInterrupt in the task loop's `try`, not still in __init__ (its heartbeats, which made
    # it NEW here, start before that ends) nor in the `except Empty:` clause's 10 ms sleep.
    ctx = zmq.asyncio.Context()
    try:
        reply = await _command(ctx, control[0].endpoint, "shutdown")
        assert reply.verb_type is cscp.VerbType.SUCCESS, reply
    finally:
        ctx.destroy(linger=0)
    ev = await w.events.first("Mariner.Leaver", EventKind.DEPARTED, timeout=10)
    assert not w.events.of("Mariner.Leaver", EventKind.LOST), w.events.seen
    assert ev.state is State.DEAD


async def test_mariner_sigstop_lost_within_2s_failure_and_condition(
    cdaq_python: Path, watching, spawn, group
):
    """1.0.2's libzmq answers our ZMTP PINGs; its `_failure` is an ERROR_STATE; a condition waits for it."""
    w = await watching()
    spawn(str(cdaq_python.with_name("SatelliteMariner")), "-g", group, "-n", "A", "-i", "lo")
    b = spawn(str(cdaq_python.with_name("SatelliteMariner")), "-g", group, "-n", "B", "-i", "lo")
    for name in ("Mariner.A", "Mariner.B"):
        await eventually(lambda n=name: w.monitor.state_of(n) is State.NEW, timeout=20)
    controls = await eventually(
        lambda: {s.host_id: s.endpoint for s in w.discovery.services(ServiceId.CONTROL)}, timeout=10
    )
    ctx = zmq.asyncio.Context()
    try:
        ep_a = controls[chirp.host_id("Mariner.A")]
        # a conditional wait on a 1.0.2 remote: launching needs Mariner.A in ORBIT
        conditions = parse_conditions({"_conditions": {"require_launching_after": "mariner.a"}}, "Test.Me")
        waiter = asyncio.create_task(wait_for_conditions(State.launching, conditions, w.monitor))
        assert (await _command(ctx, ep_a, "initialize", {})).verb_type is cscp.VerbType.SUCCESS
        await eventually(lambda: w.monitor.state_of("Mariner.A") is State.INIT, timeout=10)
        assert not waiter.done()
        assert (await _command(ctx, ep_a, "launch")).verb_type is cscp.VerbType.SUCCESS
        await asyncio.wait_for(waiter, 10)
        assert w.monitor.state_of("Mariner.A") is State.ORBIT
        # ERROR on a 1.0.2 remote: event, and a waiter for it fails with the cause
        assert (await _command(ctx, ep_a, "_failure")).verb_type is cscp.VerbType.SUCCESS
        ev = await w.events.first("Mariner.A", EventKind.ERROR_STATE, timeout=5)
        assert ev.state is State.ERROR
        conditions = parse_conditions({"_require_starting_after": "Mariner.A"}, "Test.Me")
        with pytest.raises(RemoteInError, match=r"Mariner\.A reports state SatelliteState\.ERROR"):
            await wait_for_conditions(State.starting, conditions, w.monitor)
    finally:
        ctx.destroy(linger=0)
    # a frozen 1.0.2 process
    t0 = time.monotonic()
    b.signal(signal.SIGSTOP)
    try:
        lost = await w.events.first("Mariner.B", EventKind.LOST, timeout=5)
        assert lost.time - t0 < 2.0, lost
        print(f"1.0.2 Mariner SIGSTOP -> LOST {1000 * (lost.time - t0):.0f} ms")
    finally:
        b.signal(signal.SIGCONT)
    await w.events.first("Mariner.B", EventKind.RECOVERED, timeout=10)
