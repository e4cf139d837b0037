"""CHIRP beacons against the Appendix A.1 captures and the §1.2 reference ids."""

from __future__ import annotations

import pytest
from hypothesis import given

from protocols import DecodeError, EncodeError, chirp
from tests.protocols import captures as cap
from tests.protocols.strategies import beacons


def test_md5_reference_values() -> None:
    assert chirp.group_id("edda") == cap.MD5_EDDA
    assert chirp.group_id("EDDA") == cap.MD5_EDDA
    assert chirp.host_id("Mariner.One") == cap.MD5_MARINER_ONE
    assert chirp.host_id("mariner.one") == cap.MD5_MARINER_ONE


def test_constants() -> None:
    assert chirp.PORT == 7123
    assert chirp.MULTICAST_ADDRESS == "239.192.7.123"


@pytest.mark.parametrize(
    ("data", "mtype", "service", "port"),
    [
        (cap.CHIRP_OFFER, chirp.MessageType.OFFER, chirp.ServiceId.CONTROL, 35001),
        (cap.CHIRP_REQUEST_HB, chirp.MessageType.REQUEST, chirp.ServiceId.HEARTBEAT, 0),
        (cap.CHIRP_DEPART, chirp.MessageType.DEPART, chirp.ServiceId.CONTROL, 35001),
    ],
)
def test_captures(data: bytes, mtype: chirp.MessageType, service: chirp.ServiceId, port: int) -> None:
    assert len(data) == 42
    beacon = chirp.decode(data)
    assert beacon == chirp.Beacon(mtype, cap.MD5_EDDA, cap.MD5_MARINER_ONE, service, port)
    assert chirp.encode(beacon) == data
    assert chirp.decode(bytearray(data)) == beacon


@given(beacons)
def test_round_trip(beacon: chirp.Beacon) -> None:
    data = chirp.encode(beacon)
    assert len(data) == chirp.BEACON_SIZE
    assert chirp.decode(data) == beacon


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (cap.CHIRP_OFFER[:41], "42 bytes"),
        (cap.CHIRP_OFFER + b"\x00", "42 bytes"),
        (b"CHIRP\x01" + bytes(5), "42 bytes"),
        (b"CHIRQ" + cap.CHIRP_OFFER[5:], "magic"),
        (cap.CHIRP_OFFER[:5] + b"\x02" + cap.CHIRP_OFFER[6:], "version"),
        (cap.CHIRP_OFFER[:6] + b"\x00" + cap.CHIRP_OFFER[7:], "message type"),
        (cap.CHIRP_OFFER[:6] + b"\x04" + cap.CHIRP_OFFER[7:], "message type"),
        (cap.CHIRP_OFFER[:39] + b"\x00" + cap.CHIRP_OFFER[40:], "service"),
        (cap.CHIRP_OFFER[:39] + b"\x05" + cap.CHIRP_OFFER[40:], "service"),
        ("CHIRP", "expected bytes"),
    ],
)
def test_malformed(data: bytes, match: str) -> None:
    with pytest.raises(DecodeError, match=match):
        chirp.decode(data)


@pytest.mark.parametrize(
    "beacon",
    [
        chirp.Beacon(chirp.MessageType.OFFER, b"x" * 15, cap.MD5_MARINER_ONE, chirp.ServiceId.DATA, 1),
        chirp.Beacon(chirp.MessageType.OFFER, cap.MD5_EDDA, cap.MD5_MARINER_ONE, chirp.ServiceId.DATA, 65536),
        chirp.Beacon(chirp.MessageType.OFFER, cap.MD5_EDDA, cap.MD5_MARINER_ONE, chirp.ServiceId.DATA, -1),
        chirp.Beacon(chirp.MessageType.OFFER, cap.MD5_EDDA, cap.MD5_MARINER_ONE, 0, 1),  # type: ignore[arg-type]
        chirp.Beacon(9, cap.MD5_EDDA, cap.MD5_MARINER_ONE, chirp.ServiceId.DATA, 1),  # type: ignore[arg-type]
    ],
)
def test_encode_rejects(beacon: chirp.Beacon) -> None:
    with pytest.raises(EncodeError):
        chirp.encode(beacon)
