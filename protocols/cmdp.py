"""CMDP1 log messages, metrics and notifications (wire doc §7).

Exactly 3 frames:

- topic: raw UTF-8, ``LOG/<LEVEL>[/<TOPIC>]``, ``STAT/<NAME>``, ``LOG?`` or ``STAT?``
- header: str ``"CMDP\\x01"``, str sender, Timestamp, map tags (str keys)
- payload: log -> raw UTF-8 text; metric -> value, uint flags (0), str unit (three objects);
  notification -> map topic -> description
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, Literal, TypeAlias

import msgpack

from . import _wire
from .errors import DecodeError, EncodeError, _clip

__all__ = [
    "AnyMetricValue",
    "Level",
    "LogMessage",
    "Metric",
    "MetricValue",
    "Notification",
    "check_metric_entry",
    "check_metric_text",
    "check_metric_value",
    "decode",
    "encode",
    "log_topic",
    "metric_topic",
]

#: What we send: every receiver (1.0.2, C++) takes these.
MetricValue = bool | int | float | str
#: What a decoded metric may carry: 1.0.2 packs whatever `stat()` is given (`stat("X", None)`, a list,
#: a map), so a listener must take any value the tag rules allow (nil, bin, arrays, str/bin-keyed maps,
#: Timestamps in years 1..9999) besides the four scalars.
AnyMetricValue: TypeAlias = MetricValue | bytes | list[Any] | dict[Any, Any] | msgpack.Timestamp | None


class Level(IntEnum):
    """Wire log levels; values are the Python logging numbers 1.0.2 uses (names only go on the wire)."""

    TRACE = 5
    DEBUG = logging.DEBUG
    INFO = logging.INFO
    WARNING = logging.WARNING
    STATUS = 35
    CRITICAL = logging.CRITICAL

    @classmethod
    def from_python_level(cls, levelno: int) -> Level:
        """Highest wire level <= `levelno`; ERROR (40..49) goes out as CRITICAL.

        Below 5 we give TRACE (1.0.2 returns CRITICAL there, which looks like an accident).
        """
        if levelno >= logging.ERROR:
            return cls.CRITICAL
        for level in reversed(cls):
            if levelno >= level:
                return level
        return cls.TRACE


@dataclass(frozen=True, slots=True)
class LogMessage:
    """A log record. `topic` "" means the topic frame is just ``LOG/<LEVEL>``."""

    sender: str
    level: Level
    topic: str
    text: str
    tags: Mapping[str, Any] = field(default_factory=dict)
    time_ns: int = field(default_factory=_wire.now_us_ns)


@dataclass(frozen=True, slots=True)
class Metric:
    """A metric value; the topic is ``STAT/<name>`` (upper case by convention). Flags are always 0.

    `encode` sends the scalars of `MetricValue` only; `decode` also returns the other values 1.0.2 sends
    (`AnyMetricValue`: nil, bin, arrays, maps, Timestamps).
    """

    sender: str
    name: str
    value: AnyMetricValue
    unit: str = ""
    tags: Mapping[str, Any] = field(default_factory=dict)
    time_ns: int = field(default_factory=_wire.now_us_ns)


@dataclass(frozen=True, slots=True)
class Notification:
    """Answer to a ``LOG?``/``STAT?`` subscription: available topics -> description."""

    sender: str
    kind: Literal["LOG", "STAT"]
    topics: Mapping[str, str]
    tags: Mapping[str, Any] = field(default_factory=dict)
    time_ns: int = field(default_factory=_wire.now_us_ns)


def log_topic(level: Level, topic: str = "") -> bytes:
    """``LOG/<LEVEL>`` or ``LOG/<LEVEL>/<TOPIC>``, the topic verbatim.

    1.0.2 upper-cases logger names (``FSM``, ``MARINER``) and ZeroMQ topic filters are byte-exact, so
    callers pass upper-case topics.
    """
    name = Level(level).name
    return (f"LOG/{name}/{topic}" if topic else f"LOG/{name}").encode("utf-8")


def metric_topic(name: str) -> bytes:
    """``STAT/<NAME>``, the name verbatim (1.0.2 upper-cases metric names; callers do the same)."""
    return f"STAT/{name}".encode()


def check_metric_value(value: object) -> None:
    """`EncodeError` unless `encode` can send `value` as a metric value: a bool, a float, an int in
    msgpack's range (-2**63 .. 2**64-1) or a str that encodes as UTF-8 (subclasses included).

    Lets a producer refuse a bad value where it is given, instead of the sender dropping it later.
    """
    if isinstance(value, bool | float):
        return
    if isinstance(value, int):
        if not -(2**63) <= value < 2**64:
            raise EncodeError(f"CMDP: metric value {_clip(str(value))} is outside msgpack's integer range")
        return
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise EncodeError(f"CMDP: metric value is not valid UTF-8 text: {exc.reason}") from None
        return
    raise EncodeError(f"CMDP: metric value must be bool, int, float or str, got {type(value).__name__}")


def check_metric_text(what: str, value: object, *, empty: bool = True) -> None:
    """`EncodeError` unless `value` (a metric's `what`: name, unit, description) is a str that encodes
    as UTF-8, and non-empty unless `empty`. One bad entry in the `STAT?` map would make every later
    notification fail to encode, so producers check where the text is given."""
    if not isinstance(value, str):
        raise EncodeError(f"CMDP: metric {what} must be a str, got {type(value).__name__}")
    if not empty and not value:
        raise EncodeError(f"CMDP: metric {what} must not be empty")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise EncodeError(f"CMDP: metric {what} is not valid UTF-8 text: {_clip(repr(value))}") from None


def check_metric_entry(name: object, unit: object, description: object) -> None:
    """`check_metric_text` for the three texts of a metric's `STAT?` entry (a name must not be empty)."""
    check_metric_text("name", name, empty=False)
    check_metric_text("unit", unit)
    check_metric_text("description", description)


def _header(msg: LogMessage | Metric | Notification) -> bytes:
    w = _wire.Writer("CMDP header").string("protocol", _wire.CMDP1).sender(msg.sender)
    return w.timestamp_ns(msg.time_ns).tags(msg.tags).frame()


def _topic_text(text: object, what: str) -> str:
    if not isinstance(text, str):
        raise EncodeError(f"CMDP: {what}: expected str, got {type(text).__name__}")
    return text


def encode(msg: LogMessage | Metric | Notification) -> list[bytes]:
    """Three frames: topic, header, payload."""
    try:
        if isinstance(msg, LogMessage):
            topic = _topic_text(msg.topic, "topic")
            text = _topic_text(msg.text, "text").encode("utf-8")
            return [log_topic(Level(msg.level), topic), _header(msg), text]
        if isinstance(msg, Metric):
            name = _topic_text(msg.name, "name")
            if not name:
                raise EncodeError("CMDP: metric name must not be empty")
            check_metric_value(msg.value)
            w = _wire.Writer("CMDP metric").any("value", msg.value).uint("flags", 0)
            return [metric_topic(name), _header(msg), w.string("unit", msg.unit).frame()]
        if isinstance(msg, Notification):
            if msg.kind not in ("LOG", "STAT"):
                raise EncodeError(f"CMDP: notification kind must be LOG or STAT, got {msg.kind!r}")
            topics = _wire.Writer("CMDP notification").tags(msg.topics, "topics")
            if not all(isinstance(v, str) for v in msg.topics.values()):
                raise EncodeError("CMDP: notification descriptions must be str")
            return [f"{msg.kind}?".encode(), _header(msg), topics.frame()]
    except (UnicodeEncodeError, ValueError) as exc:
        if isinstance(exc, EncodeError):
            raise
        raise EncodeError(f"CMDP: {exc}") from None
    raise EncodeError(f"CMDP: cannot encode {type(msg).__name__}")


def decode(frames: Sequence[bytes]) -> LogMessage | Metric | Notification:
    """Parse exactly 3 frames; DecodeError for anything malformed."""
    parts = _wire.as_frames(frames, (3,), "CMDP")
    topic = _wire.utf8(parts[0], "CMDP topic")
    header = _wire.Reader(parts[1], "CMDP header")
    header.protocol(_wire.CMDP1)
    sender = header.sender()
    time_ns = header.timestamp_ns()
    tags = header.tags()
    header.end()

    if topic.startswith("LOG/"):
        level_name, sep, log_topic_ = topic[4:].partition("/")
        level = Level.__members__.get(level_name)
        if level is None:
            raise DecodeError(f"CMDP topic: unknown log level {_clip(level_name)}")
        if sep and not log_topic_:
            raise DecodeError(f"CMDP topic: empty log topic after {_clip(topic)}")
        text = _wire.utf8(parts[2], "CMDP log text")
        return LogMessage(sender, level, log_topic_, text, tags, time_ns)
    if topic.startswith("STAT/"):
        name = topic[5:]
        if not name:
            raise DecodeError("CMDP topic: empty metric name")
        body = _wire.Reader(parts[2], "CMDP metric")
        value = body.any("value")  # any value the tag rules allow: 1.0.2 sends nil, lists, maps too
        body.uint("flags", 0xFF)  # always 0 from 1.0.2; ignored
        unit = body.string("unit")
        body.end()
        return Metric(sender, name, value, unit, tags, time_ns)
    if topic in ("LOG?", "STAT?"):
        body = _wire.Reader(parts[2], "CMDP notification")
        topics = body.tags("topics")
        for key, desc in topics.items():
            if desc is None:  # 1.0.2 sends what `register_metric(name, unit, None)` was given
                topics[key] = ""
            elif type(desc) is not str:
                body.fail("topics", f"description of {_clip(key)} must be str, got {type(desc).__name__}")
        body.end()
        kind: Literal["LOG", "STAT"] = "LOG" if topic == "LOG?" else "STAT"
        return Notification(sender, kind, topics, tags, time_ns)
    raise DecodeError(f"CMDP topic: {_clip(topic)} is neither LOG/, STAT/, LOG? nor STAT?")
