"""CHP1 heartbeats and extrasystoles (wire doc §4).

1 or 2 frames, no topic prefix:

- frame 0: str ``"CHP\\x01"``, str sender, Timestamp (ns), uint state code, uint flags, uint interval (ms)
- frame 1 (optional): status text, raw UTF-8 (not msgpack)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from . import _wire
from .errors import EncodeError
from .states import HeartbeatFlags, Role, State

__all__ = [
    "MAX_INTERVAL_MS",
    "MIN_INTERVAL_MS",
    "Heartbeat",
    "decode",
    "encode",
    "heartbeat_interval_ms",
]

#: C++ receivers decode the interval as uint16, so we never send more.
MAX_INTERVAL_MS = 0xFFFF
#: 1.0.2's minimum (and initial) heartbeat interval.
MIN_INTERVAL_MS = 500
_LOAD_FACTOR = 3


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """A heartbeat; with IS_EXTRASYSTOLE in `flags` an extrasystole. `status=None`: no status frame."""

    sender: str
    state: State
    flags: HeartbeatFlags
    interval_ms: int
    status: str | None = None
    time_ns: int = field(default_factory=_wire.now_ns)

    @property
    def role(self) -> Role:
        return Role.from_flags(self.flags)

    @property
    def is_extrasystole(self) -> bool:
        return bool(self.flags & HeartbeatFlags.IS_EXTRASYSTOLE)


def encode(hb: Heartbeat) -> list[bytes]:
    """1 frame, or 2 when `status` is not None (an empty status gives an empty second frame)."""
    try:
        state = State(hb.state)
    except ValueError:
        raise EncodeError(f"CHP: state: invalid {hb.state!r}") from None
    if state is State.DEAD:
        raise EncodeError("CHP: state: DEAD (0xFF) is internal and never sent")
    w = _wire.Writer("CHP")
    w.string("protocol", _wire.CHP1).sender(hb.sender).timestamp_ns(hb.time_ns)
    w.uint("state", int(state)).uint("flags", hb.flags, 0xFF).uint(
        "interval_ms", hb.interval_ms, MAX_INTERVAL_MS
    )
    frames = [w.frame()]
    if hb.status is not None:
        if not isinstance(hb.status, str):
            raise EncodeError(f"CHP: status: expected str, got {type(hb.status).__name__}")
        try:
            frames.append(hb.status.encode("utf-8"))
        except UnicodeEncodeError:
            raise EncodeError("CHP: status: not encodable as UTF-8") from None
    return frames


def decode(frames: Sequence[bytes]) -> Heartbeat:
    """Parse 1 or 2 frames; DecodeError for anything malformed.

    Accepted although never sent by us: DEAD (0xFF; 1.0.2 treats it as a failure) and intervals
    above 65535 ms (1.0.2 Python senders do not cap the interval).
    """
    parts = _wire.as_frames(frames, (1, 2), "CHP")
    r = _wire.Reader(parts[0], "CHP")
    r.protocol(_wire.CHP1)
    sender = r.sender()
    time_ns = r.timestamp_ns()
    code = r.uint("state", 0xFF)
    if code not in State._value2member_map_:
        r.fail("state", f"unknown state code 0x{code:02X}")
    flags = r.uint("flags", 0xFF)
    interval = r.uint("interval_ms")
    r.end()
    status = _wire.utf8(parts[1], "CHP status") if len(parts) == 2 else None
    return Heartbeat(sender, State(code), HeartbeatFlags(flags), interval, status, time_ns)


def heartbeat_interval_ms(subscribers: int, max_ms: int = 30000) -> int:
    """1.0.2's interval scaling: ``min(max_ms, max(500, int(500 * sqrt(max(N, 1) - 1) * 3)))``.

    N=1 -> 500, 2 -> 1500, 3 -> 2121, 5 -> 3000, 10 -> 4500, 17 -> 6000 (capped at `max_ms`).
    Note that a `max_ms` below 500 wins, as in 1.0.2; we additionally cap at 65535 (uint16).
    """
    n = max(int(subscribers), 1)
    scaled = int(MIN_INTERVAL_MS * math.sqrt(n - 1) * _LOAD_FACTOR)
    return max(0, min(int(max_ms), max(MIN_INTERVAL_MS, scaled), MAX_INTERVAL_MS))
