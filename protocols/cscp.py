"""CSCP1 command requests and replies (wire doc §2).

A message is 2 or 3 frames:

- header: str ``"CSCP\\x01"``, str sender, Timestamp, map tags (str keys)
- verb: uint verb type, then str command/reply text (two msgpack objects in one frame)
- payload (optional): exactly one msgpack object. A payload frame holding nil decodes as "no payload".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum, IntEnum
from typing import Any, TypeVar

from . import _wire
from .errors import EncodeError, _clip
from .states import Role, State

__all__ = [
    "TRANSITION_EVENTS",
    "Message",
    "VerbType",
    "command_not_allowed_reply",
    "decode",
    "encode",
    "get_commands_reply",
    "get_config_reply",
    "get_role_reply",
    "get_state_reply",
    "reply",
    "request",
    "shutdown_reply",
    "success_reply",
    "transition_reply",
    "unknown_command_reply",
    "wrong_argument_reply",
]


class VerbType(IntEnum):
    REQUEST = 0
    SUCCESS = 1
    NOTIMPLEMENTED = 2
    INCOMPLETE = 3
    INVALID = 4
    UNKNOWN = 5
    ERROR = 6


_MAX_VERB_TYPE = max(VerbType)
_E = TypeVar("_E", bound=Enum)


@dataclass(frozen=True, slots=True)
class Message:
    """One CSCP1 request or reply. `payload=None` means no payload frame."""

    sender: str
    verb_type: VerbType
    verb: str
    payload: Any = None
    tags: Mapping[str, Any] = field(default_factory=dict)
    time_ns: int = field(default_factory=_wire.now_us_ns)

    @property
    def is_request(self) -> bool:
        return self.verb_type is VerbType.REQUEST


def encode(msg: Message) -> list[bytes]:
    """Frames of `msg` (2, or 3 with a payload); EncodeError for unrepresentable fields."""
    try:
        verb_type = VerbType(msg.verb_type)
    except ValueError:
        raise EncodeError(f"CSCP header: verb_type: invalid {msg.verb_type!r}") from None
    header = (
        _wire.Writer("CSCP header")
        .string("protocol", _wire.CSCP1)
        .sender(msg.sender)
        .timestamp_ns(msg.time_ns)
        .tags(msg.tags)
        .frame()
    )
    verb = _wire.Writer("CSCP verb").uint("verb_type", int(verb_type)).string("verb", msg.verb).frame()
    if msg.payload is None:
        return [header, verb]
    return [header, verb, _wire.pack_one(msg.payload, "CSCP payload")]


def decode(frames: Sequence[bytes]) -> Message:
    """Parse 2 or 3 frames; DecodeError for anything malformed."""
    parts = _wire.as_frames(frames, (2, 3), "CSCP")
    header = _wire.Reader(parts[0], "CSCP header")
    header.protocol(_wire.CSCP1)
    sender = header.sender()
    time_ns = header.timestamp_ns()
    tags = header.tags()
    header.end()

    verb = _wire.Reader(parts[1], "CSCP verb")
    code = verb.uint("verb_type", _MAX_VERB_TYPE)
    text = verb.string("verb")
    verb.end()

    payload: Any = None
    if len(parts) == 3:
        body = _wire.Reader(parts[2], "CSCP payload")
        payload = body.any("payload")
        body.end()
    return Message(sender, VerbType(code), text, payload, tags, time_ns)


def request(sender: str, command: str, payload: Any = None, tags: Mapping[str, Any] | None = None) -> Message:
    """A REQUEST for `command` (tags empty, as the 1.0.2 controller sends)."""
    return Message(sender, VerbType.REQUEST, command, payload, dict(tags or {}))


def reply(
    sender: str,
    verb_type: VerbType,
    text: str,
    payload: Any = None,
    tags: Mapping[str, Any] | None = None,
) -> Message:
    """A reply of any type. Raises EncodeError if `verb_type` is REQUEST."""
    vt = _member(VerbType, verb_type)
    if vt is VerbType.REQUEST:
        raise EncodeError("a reply cannot have verb type REQUEST")
    return Message(sender, vt, text, payload, dict(tags or {}))


# --- exact shapes of the standard 1.0.2 replies (wire doc §2.2 and §2.3) ---------------------------

#: Transition command -> event name sent as the payload of its "transitioning" reply.
TRANSITION_EVENTS: Mapping[str, str] = {
    "initialize": "initialize",
    "launch": "launch",
    "land": "land",
    "reconfigure": "reconfigure",
    "start": "start",
    "stop": "stop",
    "_interrupt": "interrupt",
    "_failure": "failure",
}


def success_reply(
    sender: str, text: str, payload: Any = None, tags: Mapping[str, Any] | None = None
) -> Message:
    """SUCCESS with `text` (get_name, get_version, get_status, get_run_id, ... use this as is)."""
    return reply(sender, VerbType.SUCCESS, text, payload, tags)


def get_state_reply(sender: str, state: State, last_changed_ns: int) -> Message:
    """`get_state`: text = state name, payload = uint code, tags last_changed (+ _iso), µs precision.

    1.0.2 keeps `last_changed` as a `datetime`, so the time is truncated to microseconds and the ISO
    string is `datetime.isoformat()` of the UTC time (no fraction when the microseconds are 0).
    """
    state = _member(State, state)
    if state is State.DEAD:
        raise EncodeError("state DEAD is internal and never sent")
    if not isinstance(last_changed_ns, int) or isinstance(last_changed_ns, bool):
        raise EncodeError(f"last_changed_ns must be an int, got {type(last_changed_ns).__name__}")
    us = last_changed_ns // 1000
    try:
        iso = datetime.fromtimestamp(us // 1_000_000, UTC).replace(microsecond=us % 1_000_000).isoformat()
    except (OverflowError, ValueError, OSError) as exc:
        raise EncodeError(f"last_changed_ns {last_changed_ns} is not a representable time: {exc}") from None
    tags = {
        "last_changed": _wire.timestamp(us * 1000, lambda m: _raise_encode(m)),
        "last_changed_iso": iso,
    }
    return success_reply(sender, state.wire_name, int(state), tags)


def get_role_reply(sender: str, role: Role) -> Message:
    """`get_role`: text = role name, payload = uint CHP flags (7/6/4/0)."""
    role = _member(Role, role)
    return success_reply(sender, role.name, int(role.flags))


def get_commands_reply(sender: str, commands: Mapping[str, str]) -> Message:
    """`get_commands` / `_get_commands`: "<N> commands known" + map name -> description."""
    return success_reply(sender, f"{len(commands)} commands known", dict(commands))


def get_config_reply(sender: str, config: Mapping[str, Any]) -> Message:
    """`get_config`: "Dictionary attached in payload" + the stored configuration map."""
    return success_reply(sender, "Dictionary attached in payload", dict(config))


def transition_reply(sender: str, command: str) -> Message:
    """Reply to a queued transition: SUCCESS "transitioning" + str event (`_interrupt` -> "interrupt")."""
    try:
        event = TRANSITION_EVENTS[command]
    except KeyError:
        raise EncodeError(f"{command!r} is not a transition command") from None
    return success_reply(sender, "transitioning", event)


def shutdown_reply(sender: str) -> Message:
    """`shutdown`: "<canonical name> queued for reentry", no payload."""
    return success_reply(sender, f"{sender} queued for reentry")


def unknown_command_reply(sender: str, command: str) -> Message:
    """UNKNOWN "Unknown command: <cmd>" (the lower-cased command)."""
    return reply(sender, VerbType.UNKNOWN, f"Unknown command: {command}")


def command_not_allowed_reply(sender: str, state: State) -> Message:
    """INVALID "Command not allowed in <STATE> state"."""
    return reply(sender, VerbType.INVALID, f"Command not allowed in {_member(State, state).wire_name} state")


def wrong_argument_reply(sender: str, message: str) -> Message:
    """INCOMPLETE "Wrong argument: <msg>" with payload str <msg>."""
    return reply(sender, VerbType.INCOMPLETE, f"Wrong argument: {message}", message)


def _member(enum: type[_E], value: object) -> _E:
    """`enum(value)`, with EncodeError instead of ValueError for a value outside the enum."""
    try:
        return enum(value)
    except ValueError:
        raise EncodeError(f"{_clip(value)} is not a valid {enum.__name__}") from None


def _raise_encode(msg: str) -> Any:
    raise EncodeError(msg)
