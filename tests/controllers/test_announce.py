"""What the controller puts on the CHIRP wire: REQUESTs for CONTROL and HEARTBEAT, and no OFFER."""

from __future__ import annotations

import socket

import pytest

from controllers import Controller
from protocols import InvalidName, chirp
from tests.harness import eventually, loopback_chirp_socket

pytestmark = [pytest.mark.netns, pytest.mark.timeout(30)]


def _listener() -> socket.socket:
    sock = loopback_chirp_socket()
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
