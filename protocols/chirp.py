"""CHIRP v1 discovery beacons: a fixed 42-byte binary layout (wire doc §1).

| offset | size | field |
|---|---|---|
| 0 | 5 | magic ``CHIRP`` |
| 5 | 1 | version 0x01 |
| 6 | 1 | message type |
| 7 | 16 | group id (MD5 of the lower-cased group name) |
| 23 | 16 | host id (MD5 of the lower-cased canonical name) |
| 39 | 1 | service id |
| 40 | 2 | port, big-endian |
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import IntEnum

from .errors import DecodeError, EncodeError

__all__ = [
    "BEACON_SIZE",
    "MAGIC",
    "MULTICAST_ADDRESS",
    "PORT",
    "Beacon",
    "MessageType",
    "ServiceId",
    "decode",
    "encode",
    "group_id",
    "host_id",
]

PORT = 7123
MULTICAST_ADDRESS = "239.192.7.123"
MAGIC = b"CHIRP\x01"  # magic plus version byte
BEACON_SIZE = 42


class MessageType(IntEnum):
    REQUEST = 1
    OFFER = 2
    DEPART = 3


class ServiceId(IntEnum):
    CONTROL = 1
    HEARTBEAT = 2
    MONITORING = 3
    DATA = 4


@dataclass(frozen=True, slots=True)
class Beacon:
    type: MessageType
    group_id: bytes
    host_id: bytes
    service: ServiceId
    port: int


def _md5_lower(name: str, what: str) -> bytes:
    if not isinstance(name, str):
        raise EncodeError(f"{what} must be a str, got {type(name).__name__}")
    try:
        data = name.lower().encode("utf-8")
    except UnicodeEncodeError:
        raise EncodeError(f"{what} {name!r} is not encodable as UTF-8") from None
    return hashlib.md5(data, usedforsecurity=False).digest()


def group_id(group: str) -> bytes:
    """16-byte group id: MD5 of the lower-cased group name."""
    return _md5_lower(group, "group")


def host_id(canonical_name: str) -> bytes:
    """16-byte host id: MD5 of the lower-cased canonical name `Type.Name`."""
    return _md5_lower(canonical_name, "canonical name")


def encode(beacon: Beacon) -> bytes:
    """The 42-byte beacon; EncodeError for out-of-range fields."""
    try:
        mtype = MessageType(beacon.type)
    except ValueError:
        raise EncodeError(f"CHIRP: invalid message type {beacon.type!r}") from None
    try:
        service = ServiceId(beacon.service)
    except ValueError:
        raise EncodeError(f"CHIRP: invalid service id {beacon.service!r}") from None
    for name in ("group_id", "host_id"):
        value = getattr(beacon, name)
        if not isinstance(value, bytes) or len(value) != 16:
            raise EncodeError(f"CHIRP: {name} must be 16 bytes, got {value!r}")
    port = beacon.port
    if not isinstance(port, int) or isinstance(port, bool) or not 0 <= port <= 0xFFFF:
        raise EncodeError(f"CHIRP: port must be an int in 0..65535, got {port!r}")
    return b"".join(
        (MAGIC, bytes((mtype,)), beacon.group_id, beacon.host_id, bytes((service,)), port.to_bytes(2, "big"))
    )


def decode(data: bytes) -> Beacon:
    """Parse a beacon; DecodeError for a wrong length, magic, version, type or service id."""
    if isinstance(data, bytearray | memoryview):
        data = bytes(data)
    if not isinstance(data, bytes):
        raise DecodeError(f"CHIRP: expected bytes, got {type(data).__name__}")
    if len(data) != BEACON_SIZE:
        raise DecodeError(f"CHIRP: beacon must be {BEACON_SIZE} bytes, got {len(data)}")
    if data[:5] != MAGIC[:5]:
        raise DecodeError(f"CHIRP: bad magic {data[:5]!r}")
    if data[5] != MAGIC[5]:
        raise DecodeError(f"CHIRP: unsupported version {data[5]}")
    try:
        mtype = MessageType(data[6])
    except ValueError:
        raise DecodeError(f"CHIRP: unknown message type {data[6]}") from None
    try:
        service = ServiceId(data[39])
    except ValueError:
        raise DecodeError(f"CHIRP: unknown service id {data[39]}") from None
    return Beacon(mtype, data[7:23], data[23:39], service, int.from_bytes(data[40:42], "big"))
