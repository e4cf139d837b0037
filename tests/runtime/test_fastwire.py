"""The fast CMDP log encoder produces exactly the bytes of `protocols.cmdp.encode`."""

from __future__ import annotations

import time

import msgpack
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from constellation.fastwire import TS64, LogEncoder, pack_timestamp, second_of
from protocols import cmdp

TAGS = {
    "filename": "x.py", "pathname": "/a/b/x.py", "lineno": 12, "funcName": "f", "module": "x",
    "thread": 140000000000, "threadName": "MainThread", "process": 1234, "processName": "MainProcess",
}  # fmt: skip


@pytest.mark.parametrize("level", list(cmdp.Level))
@pytest.mark.parametrize(
    "time_ns", [0, 1_700_000_000_000_000_000, 2**34 * 10**9 + 5000, time.time_ns() // 1000 * 1000]
)
@pytest.mark.parametrize("text", ["", "hello", "ünïcødé ✓", "x" * 70000])
def test_identical_to_the_codec(level: cmdp.Level, time_ns: int, text: str) -> None:
    tags = {**TAGS, "traceback": "Traceback ..."} if level is cmdp.Level.CRITICAL else TAGS
    ours = LogEncoder("Sputnik.One").encode(level, "SPUTNIK", text, tags, time_ns)
    codec = cmdp.encode(cmdp.LogMessage("Sputnik.One", level, "SPUTNIK", text, tags, time_ns))
    assert ours == codec
    assert cmdp.decode(ours) == cmdp.LogMessage("Sputnik.One", level, "SPUTNIK", text, tags, time_ns)


@given(st.integers(min_value=-(2**63) * 10**9, max_value=2**63 * 10**9 - 1))
@example(0)
@example(2**32 * 10**9 - 10**9)  # last timestamp 32
@example(2**32 * 10**9)  # first timestamp 64 without nanoseconds
@example(2**34 * 10**9 - 1)  # last timestamp 64
@example(2**34 * 10**9)  # first timestamp 96
@example(-1)
def test_timestamp_identical_to_msgpack(time_ns: int) -> None:
    expected = msgpack.packb(msgpack.Timestamp.from_unix_nano(time_ns), datetime=True)
    assert pack_timestamp(time_ns) == expected


@pytest.mark.parametrize("time_ns", [2**63 * 10**9, -(2**63) * 10**9 - 1, 10**40, -(10**40)])
def test_timestamp_beyond_the_range_raises_overflow_as_msgpack(time_ns: int) -> None:
    """Seconds beyond int64: msgpack raises OverflowError, which the publisher catches; `struct`'s own
    error (not a ValueError) would escape the publisher's drop handling."""
    with pytest.raises(OverflowError):
        msgpack.packb(msgpack.Timestamp.from_unix_nano(time_ns), datetime=True)
    with pytest.raises(OverflowError):
        pack_timestamp(time_ns)
    with pytest.raises(OverflowError):
        LogEncoder("Sputnik.One").encode(cmdp.Level.INFO, "SPUTNIK", "x", TAGS, time_ns)


@given(
    st.integers(min_value=-(2**63) * 10**9, max_value=2**63 * 10**9 - 1),
    st.integers(min_value=-(10**10), max_value=10**10),
)
@example(1_763_800_000_000_000_000, 1)  # the first nanosecond after a second's start
@example(1_763_800_000_000_000_000, 999_999_999)  # the last before the next second
@example(1_763_800_000_123_456_000, 0)  # the second of a time, for that time itself
@example(2**34 * 10**9 - 10**9, 10**9 - 1)  # the last second with the fixext 8 form
@example(2**34 * 10**9, 5)  # no fixext 8 form: never covered
@example(-1500, 1)
def test_second_of_packs_every_later_time_of_the_second(time_ns: int, later: int) -> None:
    """What `MonitoringPublisher._flush` does with `second_of`: the timestamps of a second from its
    base and seconds (checked against msgpack) for every time it covers, and nothing else covered."""
    base, seconds, span = second_of(time_ns)
    t = time_ns + later
    covered = 0 < t - base < span
    if not span:
        assert not covered
        assert not 0 <= time_ns // 10**9 < 2**34
        return
    assert base <= time_ns < base + 1_000_000_000
    if covered:
        expected = msgpack.packb(msgpack.Timestamp.from_unix_nano(t), datetime=True)
        assert TS64(b"\xd7\xff", (t - base) << 34 | seconds) == expected == pack_timestamp(t)


def test_prepacked_tags_are_sent_as_is() -> None:
    enc = LogEncoder("Sputnik.One")
    packed = msgpack.packb(TAGS, use_bin_type=True)
    ns = 1_700_000_000_123_456_000
    assert enc.encode(cmdp.Level.INFO, "X", "t", packed, ns) == enc.encode(
        cmdp.Level.INFO, "X", "t", TAGS, ns
    )
    # the cached topic frame is per level and topic
    assert enc.encode(cmdp.Level.STATUS, "X", "t", TAGS, ns)[0] == b"LOG/STATUS/X"
    assert enc.encode(cmdp.Level.STATUS, "Y", "t", TAGS, ns)[0] == b"LOG/STATUS/Y"
