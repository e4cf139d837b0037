"""CHP1 against the Appendix A.4/A.5 captures, the interval formula and malformed frames."""

from __future__ import annotations

import msgpack
import pytest
from hypothesis import given

from protocols import DecodeError, EncodeError, HeartbeatFlags, Role, State, chp
from tests.protocols import captures as cap
from tests.protocols.strategies import heartbeats

MARINER = "Mariner.One"
DYN = HeartbeatFlags.TRIGGER_INTERRUPT | HeartbeatFlags.MARK_DEGRADED


def test_heartbeat_capture() -> None:
    hb = chp.decode([cap.CHP_HEARTBEAT])
    assert hb == chp.Heartbeat(MARINER, State.NEW, DYN, 500, None, cap.CHP_HEARTBEAT_TIME_NS)
    assert hb.role is Role.DYNAMIC
    assert not hb.is_extrasystole
    assert hb.time_ns % 1000 != 0  # CHP carries ns precision
    assert chp.encode(hb) == [cap.CHP_HEARTBEAT]


def test_extrasystole_capture() -> None:
    frames = [cap.CHP_EXTRASYSTOLE, cap.CHP_EXTRASYSTOLE_STATUS]
    hb = chp.decode(frames)
    flags = DYN | HeartbeatFlags.IS_EXTRASYSTOLE
    assert hb == chp.Heartbeat(
        MARINER, State.initializing, flags, 500, "Initialize requested", cap.CHP_EXTRASYSTOLE_TIME_NS
    )
    assert hb.is_extrasystole
    assert hb.role is Role.DYNAMIC
    assert chp.encode(hb) == frames


@pytest.mark.parametrize(
    ("subscribers", "expected"), [(0, 500), (1, 500), (2, 1500), (3, 2121), (5, 3000), (10, 4500), (17, 6000)]
)
def test_interval_formula_measured_values(subscribers: int, expected: int) -> None:
    assert chp.heartbeat_interval_ms(subscribers) == expected


def test_interval_formula_caps() -> None:
    assert chp.heartbeat_interval_ms(10_000) == 30000  # default max 30 s
    assert chp.heartbeat_interval_ms(10_000, max_ms=5000) == 5000
    assert chp.heartbeat_interval_ms(10, max_ms=10**6) == 4500
    assert chp.heartbeat_interval_ms(10**6, max_ms=10**6) == chp.MAX_INTERVAL_MS  # uint16 on the wire
    assert chp.heartbeat_interval_ms(1, max_ms=200) == 200  # as 1.0.2: max wins over the 500 ms minimum
    assert chp.heartbeat_interval_ms(1, max_ms=-1) == 0


def test_empty_status_is_an_empty_frame() -> None:
    hb = chp.Heartbeat(MARINER, State.RUN, HeartbeatFlags.NONE, 1000, "", 5)
    frames = chp.encode(hb)
    assert frames[1:] == [b""]
    assert chp.decode(frames) == hb


def test_dead_and_long_intervals_decode_but_never_encode() -> None:
    head = b"".join(msgpack.packb(o) for o in ("CHP\x01", MARINER, msgpack.Timestamp(1, 0)))
    hb = chp.decode([head + b"\xcc\xff\x06\xce\x00\x01\x86\xa0"])  # DEAD, interval 100000 (1.0.2 Python)
    assert hb.state is State.DEAD
    assert hb.interval_ms == 100000
    with pytest.raises(EncodeError, match="DEAD"):
        chp.encode(hb)
    with pytest.raises(EncodeError, match="65535"):
        chp.encode(chp.Heartbeat(MARINER, State.RUN, DYN, 65536))
    chp.encode(chp.Heartbeat(MARINER, State.RUN, DYN, 65535))


@given(heartbeats)
def test_round_trip(hb: chp.Heartbeat) -> None:
    frames = chp.encode(hb)
    assert len(frames) == (1 if hb.status is None else 2)
    assert chp.decode(frames) == hb


def _frame(*objs: object) -> bytes:
    return b"".join(msgpack.packb(o) for o in objs)


TS = msgpack.Timestamp(1, 5)
GOOD = _frame("CHP\x01", MARINER, TS, 0x10, 6, 500)
MALFORMED = {
    "no frames": [],
    "three frames": [GOOD, b"x", b"y"],
    "bytes not list": GOOD,
    "wrong protocol": [_frame("CHP\x02", MARINER, TS, 0x10, 6, 500)],
    "CSCP protocol": [_frame("CSCP\x01", MARINER, TS, 0x10, 6, 500)],
    "int timestamp (kills 1.0.2)": [_frame("CHP\x01", MARINER, 12345, 0x10, 6, 500)],
    "bad sender": [_frame("CHP\x01", "Mariner", TS, 0x10, 6, 500)],
    "state outside table": [_frame("CHP\x01", MARINER, TS, 0x11, 6, 500)],
    "state 0": [_frame("CHP\x01", MARINER, TS, 0, 6, 500)],
    "state 256": [_frame("CHP\x01", MARINER, TS, 0x100, 6, 500)],
    "state as str": [_frame("CHP\x01", MARINER, TS, "NEW", 6, 500)],
    "flags 256": [_frame("CHP\x01", MARINER, TS, 0x10, 256, 500)],
    "flags negative": [_frame("CHP\x01", MARINER, TS, 0x10, -1, 500)],
    "flags bool": [_frame("CHP\x01", MARINER, TS, 0x10, True, 500)],
    "interval negative": [_frame("CHP\x01", MARINER, TS, 0x10, 6, -500)],
    "interval float": [_frame("CHP\x01", MARINER, TS, 0x10, 6, 500.0)],
    "interval missing": [_frame("CHP\x01", MARINER, TS, 0x10, 6)],
    "trailing object": [GOOD + b"\x00"],
    "status invalid utf-8": [GOOD, b"\xff\xfe"],
    "status str object": [GOOD, "status"],
}


@pytest.mark.parametrize("frames", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed(frames: list[bytes]) -> None:
    with pytest.raises(DecodeError):
        chp.decode(frames)


def test_encode_rejects() -> None:
    for hb in (
        chp.Heartbeat("nope", State.RUN, DYN, 500),
        chp.Heartbeat(MARINER, 0x11, DYN, 500),  # type: ignore[arg-type]
        chp.Heartbeat(MARINER, State.RUN, 256, 500),  # type: ignore[arg-type]
        chp.Heartbeat(MARINER, State.RUN, DYN, -1),
        chp.Heartbeat(MARINER, State.RUN, DYN, 500, b"bytes"),  # type: ignore[arg-type]
        chp.Heartbeat(MARINER, State.RUN, DYN, 500, "\udc80"),
    ):
        with pytest.raises(EncodeError):
            chp.encode(hb)
