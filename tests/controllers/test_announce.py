"""What the controller puts on the CHIRP wire: REQUESTs for CONTROL and HEARTBEAT, and no OFFER."""

from __future__ import annotations

import socket
import struct

import pytest

from controllers import Controller
from protocols import InvalidName, chirp
from tests.harness import eventually

pytestmark = [pytest.mark.netns, pytest.mark.timeout(30)]


def _listener() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(("", chirp.PORT))
    mreq = struct.pack("4s4s", socket.inet_aton(chirp.MULTICAST_ADDRESS), socket.inet_aton("127.0.0.1"))
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)
    sock.setblocking(False)
    return sock


def _drain(sock: socket.socket, host: bytes) -> list[chirp.Beacon]:
    found = []
    while True:
        try:
            data = sock.recv(1024)
        except BlockingIOError:
            return found
        beacon = chirp.decode(data)
        if beacon.host_id == host:
            found.append(beacon)


async def test_requests_control_and_heartbeat_offers_nothing(group: str) -> None:
    sock = _listener()
    host = chirp.host_id("Controller.wire")
    try:
        async with Controller(group, "wire", interfaces=["lo"], backends=["chirp"]) as ctl:
            assert ctl.canonical_name == "Controller.wire"
            seen: list[chirp.Beacon] = []

            def both_requested() -> bool:
                seen.extend(_drain(sock, host))
                return {b.service for b in seen} == {chirp.ServiceId.CONTROL, chirp.ServiceId.HEARTBEAT}

            await eventually(both_requested, timeout=5)
        seen += _drain(sock, host)
        assert all(b.type is chirp.MessageType.REQUEST for b in seen), seen  # no OFFER, no DEPART
        assert all(b.group_id == chirp.group_id(group) and b.port == 0 for b in seen)
    finally:
        sock.close()


def test_canonical_name_is_validated(group: str) -> None:
    with pytest.raises(InvalidName):
        Controller(group, "bad.name")
