"""A ZMTP 3.0 SUB over a plain TCP socket: a receiver that is not the limit of a publisher benchmark.

A pyzmq SUB doing ``recv_multipart`` tops out near 190k messages/s on our 2-core machine, below what a
Python publisher sends; measuring a publisher with it measures the subscriber. ``RawSub`` speaks just
enough ZMTP 3.0 (NULL mechanism, RFC 23) to subscribe: it sends its greeting, checks the peer's, sends
``READY`` with ``Socket-Type SUB`` and one subscription message per topic (the 3.0 form: a message
``\\x01<topic>``, which libzmq accepts from a 3.0 peer).

During a burst it only ``recv_into``s large chunks into one buffer it keeps, stamps each chunk with its
arrival time and keeps a C-speed running count of a byte string (``bytearray.count`` over the new
bytes, overlapping the previous chunk by the needle's length so a needle split across chunks counts
once). The frames are parsed afterwards (``parse``), or earlier on demand; a ``PING`` command (libzmq's
``ZMQ_HEARTBEAT_IVL``; neither our monitoring XPUB nor 1.0.2's sets it) is answered with a ``PONG`` as
soon as it is seen, found by a cheap search of each chunk for the command name.

The codec half (``greeting``, ``frame``, ``command``, ``parse_frames``, ...) is pure; ``RawSub`` owns the
socket. Tests: ``tests/benchmarks/test_zmtp_sub.py``.
"""

from __future__ import annotations

import bisect
import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = [
    "Command",
    "Message",
    "RawSub",
    "ZmtpError",
    "command",
    "frame",
    "greeting",
    "parse_frames",
    "parse_properties",
    "pong",
    "subscription",
]

SIGNATURE = b"\xff" + b"\x00" * 8 + b"\x7f"
GREETING_SIZE = 64
MORE, LONG, COMMAND = 0x01, 0x02, 0x04
_PING_NAME = b"\x04PING"


class ZmtpError(RuntimeError):
    """The peer broke ZMTP 3.0 (bad greeting, malformed frame, ERROR command) or closed the connection."""


@dataclass(frozen=True, slots=True)
class Message:
    """A complete message; ``end`` is the buffer offset just after its last frame."""

    frames: tuple[bytes, ...]
    end: int


@dataclass(frozen=True, slots=True)
class Command:
    """A command frame (READY, PING, ERROR, ...): its name and the bytes after the name."""

    name: bytes
    body: bytes
    end: int


# -- codec (pure) -------------------------------------------------------------------------------------


def greeting(mechanism: bytes = b"NULL", as_server: bool = False) -> bytes:
    """Our 64-byte greeting: signature, version 3.0, mechanism (NUL-padded to 20), as-server, filler."""
    return SIGNATURE + b"\x03\x00" + mechanism.ljust(20, b"\x00") + bytes([as_server]) + b"\x00" * 31


def check_greeting(data: bytes) -> None:
    """Raise ZmtpError unless ``data`` (64 bytes) is a ZMTP 3.x greeting with the NULL mechanism."""
    if len(data) != GREETING_SIZE or data[0] != 0xFF or data[9] & 0x01 != 1:
        raise ZmtpError(f"not a ZMTP greeting: {data[:12]!r}")
    if data[10] < 3:
        raise ZmtpError(f"peer speaks ZMTP {data[10]}.{data[11]}, not 3.x")
    mechanism = data[12:32].rstrip(b"\x00")
    if mechanism != b"NULL":
        raise ZmtpError(f"peer wants the {mechanism!r} mechanism, not NULL")


def frame(body: bytes, flags: int = 0) -> bytes:
    """One frame: flags, size (1 byte, or 8 with the LONG flag when over 255), body."""
    if len(body) > 255:
        return bytes([flags | LONG]) + len(body).to_bytes(8, "big") + body
    return bytes([flags, len(body)]) + body


def command(name: bytes, data: bytes = b"") -> bytes:
    """A command frame: name length, name, data."""
    return frame(bytes([len(name)]) + name + data, COMMAND)


def ready(socket_type: bytes = b"SUB") -> bytes:
    """The READY command announcing our socket type."""
    return command(b"READY", _property(b"Socket-Type", socket_type))


def _property(name: bytes, value: bytes) -> bytes:
    return bytes([len(name)]) + name + len(value).to_bytes(4, "big") + value


def parse_properties(data: bytes) -> dict[bytes, bytes]:
    """The metadata of a READY command (name length byte, name, 4-byte value length, value)."""
    props: dict[bytes, bytes] = {}
    pos = 0
    while pos < len(data):
        n = data[pos]
        name = data[pos + 1 : pos + 1 + n]
        size_at = pos + 1 + n
        if size_at + 4 > len(data):
            raise ZmtpError(f"truncated READY metadata: {data!r}")
        size = int.from_bytes(data[size_at : size_at + 4], "big")
        value = data[size_at + 4 : size_at + 4 + size]
        if len(value) != size:
            raise ZmtpError(f"truncated READY metadata: {data!r}")
        props[name] = value
        pos = size_at + 4 + size
    return props


def subscription(topic: bytes, subscribe: bool = True) -> bytes:
    """A ZMTP 3.0 (un)subscription: a one-frame message ``\\x01<topic>`` (``\\x00`` to unsubscribe)."""
    return frame(bytes([subscribe]) + topic)


def pong(ping: Command) -> bytes:
    """The PONG answering a PING (body: 2-byte TTL, then up to 16 bytes of context echoed back)."""
    return command(b"PONG", ping.body[2:])


def parse_frames(buf: bytes | bytearray, start: int, end: int) -> tuple[list[Message | Command], int]:
    """Complete messages and commands in ``buf[start:end]``, and the offset after the last one.

    A message whose last frame has not fully arrived is left for the next call (the returned offset is
    where it begins). Commands interleaved with the frames of a message are a protocol error.
    """
    out: list[Message | Command] = []
    frames: list[bytes] = []
    pos = done = start
    while pos + 2 <= end:
        flags = buf[pos]
        if flags & ~(MORE | LONG | COMMAND):
            raise ZmtpError(f"reserved frame flags {flags:#04x} at offset {pos}")
        if flags & LONG:
            if pos + 9 > end:
                break
            size = int.from_bytes(buf[pos + 1 : pos + 9], "big")
            body_at = pos + 9
        else:
            size = buf[pos + 1]
            body_at = pos + 2
        if body_at + size > end:
            break
        body = bytes(buf[body_at : body_at + size])
        pos = body_at + size
        if flags & COMMAND:
            if frames or flags & MORE:
                raise ZmtpError(f"command frame inside a message at offset {body_at}")
            if not body or body[0] + 1 > len(body):
                raise ZmtpError(f"malformed command frame at offset {body_at}: {body!r}")
            out.append(Command(body[1 : 1 + body[0]], body[1 + body[0] :], pos))
            done = pos
            continue
        frames.append(body)
        if not flags & MORE:
            out.append(Message(tuple(frames), pos))
            frames = []
            done = pos
    return out, done


# -- the socket ---------------------------------------------------------------------------------------


class RawSub:
    """A ZMTP 3.0 SUB on a blocking TCP socket; keeps every byte it receives until ``reset``.

    ``read`` takes one chunk (arrival time stamped, ``needle`` counted), ``parse`` turns the complete
    frames received so far into messages (answering PINGs), ``arrival`` tells when the chunk holding a
    given offset came in.
    """

    def __init__(
        self,
        host: str,
        port: int,
        topics: Iterable[bytes],
        *,
        timeout: float = 5.0,
        chunk: int = 1 << 20,
        capacity: int = 1 << 22,
        rcvbuf: int | None = None,
    ) -> None:
        self._chunk = chunk
        self._buf = bytearray(max(capacity, 2 * chunk))
        self._view = memoryview(self._buf)
        self._end = 0  # bytes received (and kept) since the last reset
        self._parsed = 0  # offset up to which frames were parsed
        self._ready = False  # the peer's READY was seen
        self._stamp_ends: list[int] = []
        self._stamp_times: list[float] = []
        self._needle = b""
        self._counted = 0
        self._ping_checked = 0
        self.hits = 0  # occurrences of the needle since `watch`
        self.parse_pending = False  # a PING may be waiting for its PONG: call `parse` soon
        self.pongs = 0  # PINGs answered
        self._timeout: float | None = None
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            if rcvbuf is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            sock.settimeout(timeout)
            sock.connect((host, port))
            self._sock = sock
            sock.sendall(greeting())
            deadline = time.monotonic() + timeout
            while self._end < GREETING_SIZE:
                if not self.read(max(deadline - time.monotonic(), 0.001)) and time.monotonic() > deadline:
                    raise ZmtpError(f"no greeting from {host}:{port} within {timeout}s")
            check_greeting(bytes(self._buf[:GREETING_SIZE]))
            self._parsed = GREETING_SIZE
            sock.sendall(ready())
            while not self._ready:  # the peer's READY: nothing else may come before it
                if self.parse():
                    raise ZmtpError("a message before the peer's READY")
                idle = not self._ready and not self.read(max(deadline - time.monotonic(), 0.001))
                if idle and time.monotonic() > deadline:
                    raise ZmtpError(f"no READY from {host}:{port} within {timeout}s")
            sock.sendall(b"".join(subscription(t) for t in topics))
            self.reset()
        except BaseException:
            sock.close()
            raise

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> RawSub:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def read(self, timeout: float) -> int:
        """Receive one chunk (waiting up to ``timeout`` s); its size, 0 if nothing came in time."""
        if self._timeout != timeout:
            self._sock.settimeout(timeout)
            self._timeout = timeout
        end = self._end
        if len(self._buf) - end < self._chunk:
            self._grow()
        try:
            n = self._sock.recv_into(self._view[end : end + self._chunk])
        except TimeoutError:
            return 0
        if not n:
            raise ZmtpError("the publisher closed the connection")
        self._stamp_times.append(time.monotonic())
        self._end = end = end + n
        self._stamp_ends.append(end)
        if self._needle:
            k = len(self._needle)
            self.hits += self._buf.count(self._needle, max(self._counted - k + 1, 0), end)
            self._counted = end
        if self._buf.find(_PING_NAME, max(self._ping_checked - 4, self._parsed), end) >= 0:
            self.parse_pending = True
        self._ping_checked = end
        return n

    def _grow(self) -> None:
        self._view.release()
        self._buf.extend(bytes(len(self._buf)))
        self._view = memoryview(self._buf)

    def watch(self, needle: bytes) -> None:
        """Count ``needle`` in every byte received from now on (``hits``), including unparsed leftovers."""
        self._needle = needle
        self.hits = self._buf.count(needle, self._parsed, self._end) if needle else 0
        self._counted = self._end

    def parse(self) -> list[Message]:
        """The messages completed since the last ``parse``; PINGs are answered, READY and ERROR checked."""
        items, self._parsed = parse_frames(self._buf, self._parsed, self._end)
        self.parse_pending = False
        messages: list[Message] = []
        for item in items:
            if isinstance(item, Message):
                if not self._ready:
                    raise ZmtpError("a message before the peer's READY")
                messages.append(item)
            elif item.name == b"READY":
                socket_type = parse_properties(item.body).get(b"Socket-Type")
                if socket_type not in (b"PUB", b"XPUB"):
                    raise ZmtpError(f"peer is a {socket_type!r} socket, not PUB/XPUB")
                self._ready = True
            elif item.name == b"PING":
                self._sock.sendall(pong(item))
                self.pongs += 1
            elif item.name == b"ERROR":
                raise ZmtpError(f"peer sent ERROR: {item.body[1:]!r}")
        return messages

    def reset(self) -> None:
        """Forget parsed bytes and chunk stamps; unparsed bytes (a partial message) move to offset 0."""
        rest = self._end - self._parsed
        self._buf[:rest] = self._buf[self._parsed : self._end]
        self._end, self._parsed = rest, 0
        self._ping_checked = self._counted = 0
        self._stamp_ends.clear()
        self._stamp_times.clear()
        self.hits = 0

    @property
    def received(self) -> int:
        """Bytes kept since the last reset."""
        return self._end

    def arrival(self, end: int) -> float:
        """Monotonic arrival time of the chunk holding byte ``end - 1`` (a message's ``end``)."""
        i = bisect.bisect_left(self._stamp_ends, end)
        if i == len(self._stamp_ends) or end <= 0:
            raise ValueError(f"offset {end} was not received since the last reset")
        return self._stamp_times[i]
