"""CMDP1 against the Appendix A.6/A.7 captures, level mapping and malformed frames."""

from __future__ import annotations

import logging

import msgpack
import pytest
from hypothesis import given

from protocols import DecodeError, EncodeError, cmdp
from tests.protocols import captures as cap
from tests.protocols.strategies import cmdp_messages

MARINER = "Mariner.One"
Level = cmdp.Level


def test_log_capture() -> None:
    frames = [cap.CMDP_LOG_TOPIC, cap.CMDP_LOG_HEADER, cap.CMDP_LOG_TEXT]
    msg = cmdp.decode(frames)
    expected = cmdp.LogMessage(
        MARINER,
        Level.STATUS,
        "FSM",
        "State transition initialize initiated",
        cap.CMDP_LOG_TAGS,
        cap.CMDP_LOG_TIME_NS,
    )
    assert msg == expected
    assert list(msg.tags) == list(cap.CMDP_LOG_TAGS)  # key order preserved
    assert cmdp.encode(expected) == frames


def test_metric_captures() -> None:
    cpu = cmdp.decode([cap.CMDP_CPU_TOPIC, cap.CMDP_CPU_HEADER, cap.CMDP_CPU_PAYLOAD])
    assert isinstance(cpu, cmdp.Metric)
    assert (cpu.sender, cpu.name, cpu.unit, cpu.tags, cpu.time_ns) == (
        MARINER,
        "CPU_LOAD_AVG",
        "%",
        {},
        cap.CMDP_CPU_TIME_NS,
    )
    assert type(cpu.value) is float
    assert cpu.value == pytest.approx(434.84, abs=0.01)
    assert cmdp.encode(cpu) == [cap.CMDP_CPU_TOPIC, cap.CMDP_CPU_HEADER, cap.CMDP_CPU_PAYLOAD]

    state = cmdp.Metric(MARINER, "STATE", "initializing", "", {}, cap.CMDP_CPU_TIME_NS)
    frames = cmdp.encode(state)
    assert frames == [cap.CMDP_STATE_TOPIC, cap.CMDP_CPU_HEADER, cap.CMDP_STATE_PAYLOAD]
    assert cmdp.decode(frames) == state


def test_stat_notification_capture() -> None:
    msg = cmdp.Notification(MARINER, "STAT", cap.CMDP_STAT_NOTIFY_TOPICS, {}, cap.CMDP_CPU_TIME_NS)
    topic, header, payload = cmdp.encode(msg)
    assert topic == cap.CMDP_STAT_NOTIFY_TOPIC
    assert header == cap.CMDP_CPU_HEADER
    # the documented pieces of the dump, in order
    pieces = [
        b"\x85\xaaBRIGHTNESS\xa0\xa6RUN_ID\xd9\x2dCurrent run identifier. Updated when changed.\xa5STATE",
        b"\xacCPU_LOAD_AVG\xb1CPU load average.\xa9MEM_AVAIL\xbeAvailable memory in Megabytes.",
    ]
    assert payload.startswith(pieces[0])
    assert payload.endswith(pieces[1])
    assert cmdp.decode([topic, header, payload]) == msg


def test_topics() -> None:
    assert cmdp.log_topic(Level.STATUS, "FSM") == b"LOG/STATUS/FSM"
    assert cmdp.log_topic(Level.INFO) == b"LOG/INFO"
    assert cmdp.metric_topic("CPU_LOAD_AVG") == b"STAT/CPU_LOAD_AVG"
    no_topic = cmdp.LogMessage(MARINER, Level.INFO, "", "hello", {}, 1)
    frames = cmdp.encode(no_topic)
    assert frames[0] == b"LOG/INFO"
    assert cmdp.decode(frames) == no_topic


@pytest.mark.parametrize(
    ("levelno", "level"),
    [
        (5, Level.TRACE),
        (9, Level.TRACE),
        (logging.DEBUG, Level.DEBUG),
        (logging.INFO, Level.INFO),
        (logging.WARNING, Level.WARNING),
        (35, Level.STATUS),
        (39, Level.STATUS),
        (logging.ERROR, Level.CRITICAL),
        (45, Level.CRITICAL),
        (logging.CRITICAL, Level.CRITICAL),
        (100, Level.CRITICAL),
        (0, Level.TRACE),
    ],
)
def test_level_from_python(levelno: int, level: Level) -> None:
    assert Level.from_python_level(levelno) is level


def test_level_names_are_the_wire_names() -> None:
    assert [lv.name for lv in Level] == ["TRACE", "DEBUG", "INFO", "WARNING", "STATUS", "CRITICAL"]


@given(cmdp_messages)
def test_round_trip(msg: cmdp.LogMessage | cmdp.Metric | cmdp.Notification) -> None:
    back = cmdp.decode(cmdp.encode(msg))
    assert back == msg
    if isinstance(msg, cmdp.Metric):
        assert type(back.value) is type(msg.value)  # type: ignore[union-attr]


def _hdr(*objs: object) -> bytes:
    return b"".join(msgpack.packb(o) for o in objs)


H = _hdr("CMDP\x01", MARINER, msgpack.Timestamp(1, 0), {})
M = msgpack.packb(1.5) + b"\x00" + msgpack.packb("%")
MALFORMED = {
    "two frames": [b"LOG/INFO", H],
    "four frames": [b"LOG/INFO", H, b"x", b"y"],
    "bad topic prefix": [b"LOGS/INFO", H, b"x"],
    "lower-case level": [b"LOG/info", H, b"x"],
    "unknown level": [b"LOG/ERROR", H, b"x"],
    "empty log topic": [b"LOG/INFO/", H, b"x"],
    "topic not utf-8": [b"LOG/INFO/\xff", H, b"x"],
    "log text not utf-8": [b"LOG/INFO", H, b"\xc3\x28"],
    "wrong protocol": [b"LOG/INFO", _hdr("CMDP\x02", MARINER, msgpack.Timestamp(1, 0), {}), b"x"],
    "int time": [b"LOG/INFO", _hdr("CMDP\x01", MARINER, 1, {}), b"x"],
    "tags list": [b"LOG/INFO", _hdr("CMDP\x01", MARINER, msgpack.Timestamp(1, 0), []), b"x"],
    "header trailing": [b"LOG/INFO", H + b"\xc0", b"x"],
    "empty metric name": [b"STAT/", H, M],
    "metric missing unit": [b"STAT/X", H, msgpack.packb(1.5) + b"\x00"],
    "metric unit bin": [b"STAT/X", H, msgpack.packb(1.5) + b"\x00" + msgpack.packb(b"%")],
    "metric flags str": [b"STAT/X", H, msgpack.packb(1.5) + msgpack.packb("0") + msgpack.packb("%")],
    "metric trailing": [b"STAT/X", H, M + b"\x00"],
    "notification suffix": [b"STAT?X", H, msgpack.packb({})],
    "notification list": [b"STAT?", H, msgpack.packb([])],
    "notification int value": [b"LOG?", H, msgpack.packb({"A": 1})],
    "notification int key": [b"LOG?", H, b"\x81\x01\xa0"],
    "notification trailing": [b"LOG?", H, msgpack.packb({}) + b"\x00"],
    "map bomb": [b"LOG?", H, b"\xdf\xff\xff\xff\xff"],
}


@pytest.mark.parametrize("frames", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed(frames: list[bytes]) -> None:
    with pytest.raises(DecodeError):
        cmdp.decode(frames)


@pytest.mark.parametrize(
    ("payload", "value"),
    [
        (msgpack.packb([1]) + b"\x00" + msgpack.packb("%"), [1]),
        (b"\xc0\x00" + msgpack.packb("%"), None),
        (msgpack.packb({"a": 1}) + b"\x00" + msgpack.packb("%"), {"a": 1}),
    ],
    ids=["list", "nil", "map"],
)
def test_metric_values_beyond_the_scalars_are_decoded(payload: bytes, value: object) -> None:
    """1.0.2's `stat()` packs whatever it is given: a listener must not lose such a metric."""
    msg = cmdp.decode([b"STAT/X", H, payload])
    assert isinstance(msg, cmdp.Metric)
    assert (msg.name, msg.value, msg.unit) == ("X", value, "%")


def test_a_nil_description_reads_as_empty() -> None:
    """1.0.2 sends the description `register_metric(name, unit, None)` was given: nil in the map."""
    msg = cmdp.decode([b"STAT?", H, msgpack.packb({"X": None, "Y": "y"})])
    assert isinstance(msg, cmdp.Notification)
    assert dict(msg.topics) == {"X": "", "Y": "y"}


def test_encode_rejects() -> None:
    for msg in (
        cmdp.LogMessage(MARINER, 40, "X", "x"),  # type: ignore[arg-type]
        cmdp.LogMessage(MARINER, Level.INFO, "X", b"x"),  # type: ignore[arg-type]
        cmdp.Metric(MARINER, "", 1),
        cmdp.Metric(MARINER, "X", [1]),  # type: ignore[arg-type]
        cmdp.Metric(MARINER, "X", 2**64),
        cmdp.Metric(MARINER, "X", 1, b"%"),  # type: ignore[arg-type]
        cmdp.Notification(MARINER, "MON", {}),  # type: ignore[arg-type]
        cmdp.Notification(MARINER, "LOG", {"A": 1}),  # type: ignore[dict-item]
        cmdp.Notification("bad", "LOG", {}),
    ):
        with pytest.raises(EncodeError):
            cmdp.encode(msg)


def test_check_metric_entry_names_the_text_that_the_stat_map_cannot_carry() -> None:
    cmdp.check_metric_entry("VOLTAGE", "V", "")  # unit and description may be empty
    with pytest.raises(EncodeError, match="metric name must not be empty"):
        cmdp.check_metric_entry("", "V", "d")
    with pytest.raises(EncodeError, match="metric unit must be a str"):
        cmdp.check_metric_entry("X", None, "d")
    with pytest.raises(EncodeError, match="metric description is not valid UTF-8"):
        cmdp.check_metric_entry("X", "", "\udcff")
