"""Decoders only ever raise DecodeError: arbitrary bytes, frame lists, mutations of valid encodings.

Whatever decodes must be a valid message: re-encoding it either succeeds and reaches a fixed point
(encode . decode is idempotent), or raises EncodeError for the documented decode-only values
(CHP DEAD / interval > 65535).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocols import DecodeError, EncodeError, cdtp, chirp, chp, cmdp, cscp
from tests.protocols import captures as cap
from tests.protocols.strategies import beacons, cmdp_messages, cscp_messages, data_messages, heartbeats

FUZZ = settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FEW = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

Codec = tuple[Callable[[Any], Any], Callable[[Any], Any], bool]  # decode, encode, multipart?
CODECS: dict[str, Codec] = {
    "chirp": (chirp.decode, chirp.encode, False),
    "cscp": (cscp.decode, cscp.encode, True),
    "chp": (chp.decode, chp.encode, True),
    "cmdp": (cmdp.decode, cmdp.encode, True),
    "cdtp": (cdtp.decode, cdtp.encode, False),
}
MESSAGE_TYPES = {
    "chirp": chirp.Beacon,
    "cscp": cscp.Message,
    "chp": chp.Heartbeat,
    "cmdp": (cmdp.LogMessage, cmdp.Metric, cmdp.Notification),
    "cdtp": cdtp.DataMessage,
}


def check_decode(proto: str, data: Any) -> None:
    decode, encode, _ = CODECS[proto]
    try:
        msg = decode(data)
    except DecodeError:
        return
    assert isinstance(msg, MESSAGE_TYPES[proto])  # type: ignore[arg-type]
    try:
        wire = encode(msg)
    except EncodeError:
        assert proto == "chp", msg
        assert msg.state == 0xFF or msg.interval_ms > chp.MAX_INTERVAL_MS
        return
    assert encode(decode(wire)) == wire


SEEDS: list[tuple[str, Sequence[bytes] | bytes]] = [
    ("chirp", cap.CHIRP_OFFER),
    ("cscp", [cap.CSCP_INIT_HEADER, cap.CSCP_INIT_VERB, cap.CSCP_INIT_PAYLOAD]),
    ("cscp", [cap.CSCP_STATE_HEADER, cap.CSCP_STATE_VERB, cap.CSCP_STATE_PAYLOAD]),
    ("chp", [cap.CHP_HEARTBEAT]),
    ("chp", [cap.CHP_EXTRASYSTOLE, cap.CHP_EXTRASYSTOLE_STATUS]),
    ("cmdp", [cap.CMDP_LOG_TOPIC, cap.CMDP_LOG_HEADER, cap.CMDP_LOG_TEXT]),
    ("cmdp", [cap.CMDP_CPU_TOPIC, cap.CMDP_CPU_HEADER, cap.CMDP_CPU_PAYLOAD]),
    ("cdtp", cap.CDTP_DATA_PREFIX[:29] + b"\x90"),
]
protos = st.sampled_from(sorted(CODECS))


@FUZZ
@given(protos, st.binary(max_size=64))
def test_arbitrary_bytes(proto: str, data: bytes) -> None:
    check_decode(proto, data)
    check_decode(proto, [data])


@FUZZ
@given(protos, st.lists(st.binary(max_size=48), max_size=4))
def test_arbitrary_frame_lists(proto: str, frames: list[bytes]) -> None:
    check_decode(proto, frames)


@FEW
@given(protos, st.one_of(st.none(), st.integers(), st.text(), st.lists(st.integers(), max_size=3)))
def test_wrong_python_types(proto: str, value: Any) -> None:
    check_decode(proto, value)


def _mutate(frames: list[bytes], draw: st.DrawFn) -> list[bytes]:
    """One mutation of one frame (or dropping a frame of a multipart message)."""
    i = draw(st.integers(0, len(frames) - 1))
    frame = frames[i]
    ops = ["flip", "truncate", "extend", "insert"] + (["drop"] if len(frames) > 1 else [])
    op = draw(st.sampled_from(ops))
    if op == "flip" and frame:
        pos = draw(st.integers(0, len(frame) - 1))
        frame = frame[:pos] + bytes([draw(st.integers(0, 255))]) + frame[pos + 1 :]
    elif op == "truncate":
        frame = frame[: draw(st.integers(0, max(len(frame) - 1, 0)))]
    elif op == "extend":
        frame = frame + draw(st.binary(min_size=1, max_size=8))
    elif op == "insert":
        pos = draw(st.integers(0, len(frame)))
        frame = frame[:pos] + draw(st.binary(min_size=1, max_size=4)) + frame[pos:]
    elif op == "drop":
        return frames[:i] + frames[i + 1 :]
    return [*frames[:i], frame, *frames[i + 1 :]]


@st.composite
def mutated_seeds(draw: st.DrawFn) -> tuple[str, Any]:
    proto, seed = draw(st.sampled_from(SEEDS))
    if isinstance(seed, bytes):
        return proto, _mutate([seed], draw)[0]
    return proto, _mutate(list(seed), draw)


@FUZZ
@given(mutated_seeds())
def test_mutated_captures(case: tuple[str, Any]) -> None:
    proto, data = case
    check_decode(proto, data)


ENCODED = st.one_of(
    beacons.map(lambda m: ("chirp", chirp.encode(m))),
    cscp_messages.map(lambda m: ("cscp", cscp.encode(m))),
    heartbeats.map(lambda m: ("chp", chp.encode(m))),
    cmdp_messages.map(lambda m: ("cmdp", cmdp.encode(m))),
    data_messages.map(lambda m: ("cdtp", cdtp.encode(m))),
)


@FEW
@given(ENCODED, st.data())
def test_mutated_encodings(case: tuple[str, Any], data: st.DataObject) -> None:
    proto, wire = case
    if isinstance(wire, bytes):
        mutated: Any = _mutate([wire], data.draw)[0]
    else:
        mutated = _mutate(list(wire), data.draw)
    check_decode(proto, mutated)


def test_every_single_byte_truncation_of_captures() -> None:
    for proto, seed in SEEDS:
        frames = [seed] if isinstance(seed, bytes) else list(seed)
        for i, frame in enumerate(frames):
            for cut in range(len(frame)):
                cand = [*frames[:i], frame[:cut], *frames[i + 1 :]]
                check_decode(proto, cand[0] if isinstance(seed, bytes) else cand)
