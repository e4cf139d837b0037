"""A fast path for the hottest message: CMDP log records (byte-identical to `protocols.cmdp.encode`).

`protocols.cmdp.encode` validates every field of every message; for log records we build ourselves
(sender validated once, topic sanitised, tags of known types) that costs more than the send. This
encoder packs the constant header prefix once, the msgpack Timestamp with `struct` (no Timestamp object)
and the topic frame once per (level, topic); tags may come pre-packed (`bytes`, see
`constellation.satlog`). `tests/runtime/test_fastwire.py` checks byte identity against the codec.
"""

from __future__ import annotations

import struct
from typing import Any

import msgpack

from protocols import cmdp

__all__ = ["TS64", "LogEncoder", "pack_timestamp", "second_of"]

_TS32 = struct.Struct(">2sI").pack  # fixext 4, type -1: seconds < 2**32, no nanoseconds
_TS64 = struct.Struct(">2sQ").pack  # fixext 8, type -1: nanoseconds << 34 | seconds
_TS96 = struct.Struct(">3sIq").pack  # ext 8 (12 bytes), type -1: nanoseconds, signed seconds


def pack_timestamp(time_ns: int) -> bytes:
    """msgpack of `msgpack.Timestamp.from_unix_nano(time_ns)`, without building the Timestamp.

    OverflowError for a time whose seconds do not fit the 96-bit form's int64 (as msgpack raises).
    """
    seconds, nanoseconds = divmod(time_ns, 1_000_000_000)
    if seconds >> 34 == 0:
        data64 = nanoseconds << 34 | seconds
        if data64 >> 32 == 0:
            return _TS32(b"\xd6\xff", data64)
        return _TS64(b"\xd7\xff", data64)
    try:
        return _TS96(b"\xc7\x0c\xff", nanoseconds, seconds)
    except struct.error:  # not a ValueError: callers catching msgpack's errors would miss it
        raise OverflowError(f"time {time_ns} ns is beyond the msgpack timestamp range") from None


TS64 = _TS64


def second_of(time_ns: int) -> tuple[int, int, int]:
    """(base, seconds, span) such that for every `t` with ``0 < t - base < span``,
    ``TS64(b"\\xd7\\xff", (t - base) << 34 | seconds) == pack_timestamp(t)``.

    For a sender packing many timestamps from the same second: a subtraction, a shift and a `struct`
    call instead of `pack_timestamp`'s `divmod` and tests. The second's first nanosecond itself takes
    the short form (fixext 4) and is not covered. A `time_ns` outside 1970..2514 has no second to pack
    from: span 0, which covers no time.
    """
    seconds = time_ns // 1_000_000_000
    if seconds < 0 or seconds >> 34:
        return 0, 0, 0
    return seconds * 1_000_000_000, seconds, 1_000_000_000


class LogEncoder:
    """Frames of CMDP log messages from one sender; `MonitoringPublisher._flush` inlines `encode`."""

    def __init__(self, sender: str) -> None:
        self.prefix = msgpack.packb("CMDP\x01") + msgpack.packb(sender)
        # Used only by the publisher's task (a Packer is not shareable between threads).
        self.pack = msgpack.Packer(use_bin_type=True, datetime=True).pack
        #: (level, topic) -> topic frame, filled by `topic`
        self.topics: dict[tuple[cmdp.Level, str], bytes] = {}

    def topic(self, level: cmdp.Level, topic: str) -> bytes:
        """The topic frame ``LOG/<LEVEL>/<TOPIC>`` (remembered for up to 1024 pairs)."""
        frame = f"LOG/{cmdp.Level(level).name}/{topic}".encode()
        if len(self.topics) < 1024:
            self.topics[(level, topic)] = frame
        return frame

    def encode(
        self, level: cmdp.Level, topic: str, text: str, tags: dict[str, Any] | bytes, time_ns: int
    ) -> list[bytes]:
        """Frames of a log message; `topic` must already be upper case, non-empty ASCII.

        `tags` is the tag map, or its msgpack encoding (`bytes`, sent as is).
        """
        packed = tags if isinstance(tags, bytes) else self.pack(tags)
        header = self.prefix + pack_timestamp(time_ns) + packed
        frame = self.topics.get((level, topic)) or self.topic(level, topic)
        return [frame, header, text.encode("utf-8", "replace")]
