"""Shared value rules: header timestamps (ts32/64/96 only), tag/payload contents, 1.0.2-safe ranges."""

from __future__ import annotations

import types
from datetime import UTC, datetime, timedelta, timezone

import msgpack
import pytest

from protocols import DecodeError, EncodeError, HeartbeatFlags, State, cdtp, chp, cmdp, cscp

SAT = "Mariner.One"
VERB = b"\x00\xa1x"


def _header(ts_bytes: bytes) -> bytes:
    return msgpack.packb("CSCP\x01") + msgpack.packb(SAT) + ts_bytes + b"\x80"


@pytest.mark.parametrize(
    ("ts_bytes", "time_ns"),
    [
        (b"\xd6\xff" + (1795298851).to_bytes(4, "big"), 1795298851 * 10**9),  # timestamp32
        (b"\xd7\xff" + ((5 << 34) | 7).to_bytes(8, "big"), 7 * 10**9 + 5),  # timestamp64
        (
            b"\xc7\x0c\xff" + (9).to_bytes(4, "big") + (-1).to_bytes(8, "big", signed=True),
            -(10**9) + 9,
        ),  # ts96
        (b"\xc7\x0c\xff" + (0).to_bytes(4, "big") + (2**34).to_bytes(8, "big"), 2**34 * 10**9),  # ts96
    ],
)
def test_header_accepts_all_three_timestamp_forms(ts_bytes: bytes, time_ns: int) -> None:
    msg = cscp.decode([_header(ts_bytes), VERB])
    assert msg.time_ns == time_ns
    assert cscp.encode(msg)[0] == _header(ts_bytes)  # msgpack picks the same smallest form


@pytest.mark.parametrize(
    "ts_bytes",
    [
        msgpack.packb(1795298851),  # int
        msgpack.packb(1.5),
        msgpack.packb("2026-11-22T00:00:00Z"),
        msgpack.packb(None),
        b"\xd6\x01\x00\x00\x00\x01",  # fixext4 of another type
        b"\xd5\xff\x00\x01",  # ext -1 with 2 bytes
        b"\xd7\xff" + b"\xff" * 8,  # nanoseconds >= 10^9
        b"\xc7\x0c\xff" + (0).to_bytes(4, "big") + (2**62).to_bytes(8, "big"),  # > year 9999
        b"\xc7\x0c\xff" + (0).to_bytes(4, "big") + (-(2**62)).to_bytes(8, "big", signed=True),  # < year 1
    ],
)
def test_header_rejects_non_timestamps(ts_bytes: bytes) -> None:
    with pytest.raises(DecodeError, match="time"):
        cscp.decode([_header(ts_bytes), VERB])


def test_nested_timestamps_must_be_convertible() -> None:
    far = b"\xc7\x0c\xff" + (0).to_bytes(4, "big") + (2**40).to_bytes(8, "big")
    with pytest.raises(DecodeError, match=r"1\.\.9999"):
        cscp.decode([_header(msgpack.packb(msgpack.Timestamp(1, 0))), VERB, b"\x91" + far])
    with pytest.raises(EncodeError, match=r"1\.\.9999"):
        cscp.encode(cscp.request(SAT, "x", [msgpack.Timestamp(2**40, 0)]))
    with pytest.raises(EncodeError):
        cscp.encode(cscp.Message(SAT, cscp.VerbType.REQUEST, "x", time_ns=2**40 * 10**9))


@pytest.mark.parametrize(
    "payload",
    [
        {1: "int key"},
        {"a": {None: 1}},
        [{(1, 2): 3}],
        msgpack.ExtType(3, b"x"),
        {1.5: 0},
        object(),
        {"s": {1, 2}},
    ],
)
def test_encoder_refuses_what_1_0_2_cannot_decode(payload: object) -> None:
    with pytest.raises(EncodeError):
        cscp.encode(cscp.request(SAT, "cmd", payload))


def test_encoder_accepts_mappings_bytes_keys_and_aware_datetimes() -> None:
    when = datetime(2026, 11, 22, 4, 0, 0, 123456, tzinfo=UTC)
    payload = types.MappingProxyType({"a": 1, "when": when, "b": {b"raw": bytearray(b"x")}})
    msg = cscp.decode(cscp.encode(cscp.request(SAT, "cmd", payload)))
    assert msg.payload == {"a": 1, "when": msgpack.Timestamp.from_datetime(when), "b": {b"raw": b"x"}}
    cet = when.astimezone(timezone(timedelta(hours=1)))
    assert cscp.encode(cscp.request(SAT, "c", cet))[2] == cscp.encode(cscp.request(SAT, "c", when))[2]
    with pytest.raises(EncodeError, match="naive"):
        cscp.encode(cscp.request(SAT, "cmd", datetime(2026, 1, 1)))


def test_ints_and_floats_at_the_edges() -> None:
    for value in (-(2**63), 2**64 - 1, 0.0, -0.0, float("inf"), 1e308):
        assert cscp.decode(cscp.encode(cscp.request(SAT, "c", value))).payload == value
    for value in (-(2**63) - 1, 2**64):
        with pytest.raises(EncodeError):
            cscp.encode(cscp.request(SAT, "c", value))


def test_other_codecs_share_the_rules() -> None:
    with pytest.raises(EncodeError):
        cmdp.encode(cmdp.LogMessage(SAT, cmdp.Level.INFO, "T", "x", {"k": {1: 2}}))
    with pytest.raises(EncodeError):
        cdtp.encode(cdtp.DataMessage(SAT, cdtp.CDTPType.DATA, (cdtp.DataRecord(1, {"t": object()}),)))
    with pytest.raises(EncodeError):
        chp.encode(chp.Heartbeat(SAT, State.RUN, HeartbeatFlags.NONE, 500, None, -(10**20) * 10**9))


def test_decoders_take_any_bytes_like_frames() -> None:
    msg = cscp.request(SAT, "start", "run_1")
    frames = cscp.encode(msg)
    assert cscp.decode([memoryview(f) for f in frames]) == msg
    assert cscp.decode(tuple(bytearray(f) for f in frames)) == msg
    hb = chp.Heartbeat(SAT, State.RUN, HeartbeatFlags.NONE, 500, "ok", 10**18)
    assert chp.decode([memoryview(f) for f in chp.encode(hb)]) == hb
    rec = cdtp.DataMessage(SAT, cdtp.CDTPType.DATA, (cdtp.DataRecord(1, {}, (b"x",)),))
    assert cdtp.decode(memoryview(cdtp.encode(rec))) == rec
    for bad in (b"".join(frames), "text", 5, None, [1, 2]):
        with pytest.raises(DecodeError):
            cscp.decode(bad)  # type: ignore[arg-type]


def test_error_messages_clip_peer_values() -> None:
    huge = msgpack.packb("CSCP\x01") + msgpack.packb("x" * 100_000)
    with pytest.raises(DecodeError) as info:
        cscp.decode([huge, VERB])
    assert len(str(info.value)) < 300
