"""The oracle works: a real ConstellationDAQ 1.0.2 Mariner, decoded with our codecs.

Starts ``SatelliteMariner`` from the cached 1.0.2 environment inside the namespace, catches its CHIRP
OFFERs on the multicast group, subscribes to its heartbeats and asks it for its state over CSCP: every
message is decoded by ``protocols`` and must carry the values 1.0.2 is documented to send.
"""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest
import zmq

from protocols import State, chirp, chp, cscp
from protocols.states import HeartbeatFlags
from tests.harness import Proc, loopback_chirp_socket

pytestmark = [pytest.mark.netns, pytest.mark.interop, pytest.mark.timeout(60)]


def _multicast_listener() -> socket.socket:
    sock = loopback_chirp_socket()
    return sock


def _collect_offers(
    sock: socket.socket, group: str, host: bytes, wanted: set[chirp.ServiceId], timeout: float
) -> dict[chirp.ServiceId, tuple[str, int]]:
    found: dict[chirp.ServiceId, tuple[str, int]] = {}
    deadline = time.monotonic() + timeout
    while not wanted <= found.keys():
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"no OFFER for {wanted - found.keys()} within {timeout}s (got {found})"
        sock.settimeout(remaining)
        data, (addr, _port) = sock.recvfrom(1024)
        beacon = chirp.decode(data)
        if (
            beacon.group_id == chirp.group_id(group)
            and beacon.host_id == host
            and beacon.type is chirp.MessageType.OFFER
        ):
            found[beacon.service] = (addr, beacon.port)
    return found


def test_mariner_offer_heartbeat_and_state_decode(cdaq_python: Path, spawn, group: str) -> None:
    listener = _multicast_listener()
    try:
        mariner: Proc = spawn(
            str(cdaq_python.with_name("SatelliteMariner")),
            "-g",
            group,
            "-n",
            "One",
            "-i",
            "lo",
            "-l",
            "DEBUG",
        )
        offers = _collect_offers(
            listener,
            group,
            chirp.host_id("Mariner.One"),
            {chirp.ServiceId.CONTROL, chirp.ServiceId.HEARTBEAT, chirp.ServiceId.MONITORING},
            timeout=20,
        )
    finally:
        listener.close()
    assert all(addr == "127.0.0.1" and 0 < port < 65536 for addr, port in offers.values()), offers

    ctx = zmq.Context()
    try:
        sub = ctx.socket(zmq.SUB)
        sub.setsockopt(zmq.LINGER, 0)
        sub.setsockopt(zmq.SUBSCRIBE, b"")
        sub.connect(f"tcp://127.0.0.1:{offers[chirp.ServiceId.HEARTBEAT][1]}")
        assert sub.poll(10_000), "no heartbeat from Mariner.One within 10 s:\n" + mariner.output_tail()
        hb = chp.decode(sub.recv_multipart())
        assert hb.sender == "Mariner.One"
        assert hb.state is State.NEW
        assert hb.flags & ~HeartbeatFlags.IS_EXTRASYSTOLE == HeartbeatFlags(0x06)  # DYNAMIC before initialize
        assert 500 <= hb.interval_ms <= 30_000
        assert abs(hb.time_ns - time.time_ns()) < 30 * 10**9

        req = ctx.socket(zmq.REQ)
        req.setsockopt(zmq.LINGER, 0)
        req.connect(f"tcp://127.0.0.1:{offers[chirp.ServiceId.CONTROL][1]}")
        req.send_multipart(cscp.encode(cscp.request("Test.oracle", "get_state")))
        assert req.poll(10_000), "no get_state reply"
        reply = cscp.decode(req.recv_multipart())
        assert reply.sender == "Mariner.One"
        assert reply.verb_type is cscp.VerbType.SUCCESS
        assert reply.verb == "NEW"
        assert reply.payload == State.NEW
        assert {"last_changed", "last_changed_iso"} <= set(reply.tags)
    finally:
        ctx.destroy(linger=0)
