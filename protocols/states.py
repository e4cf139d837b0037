"""Satellite states, heartbeat flags and roles (wire codes of Constellation 1.0.2)."""

from __future__ import annotations

from enum import Enum, IntEnum, IntFlag

__all__ = ["HeartbeatFlags", "Role", "State"]


class State(IntEnum):
    """FSM states with their wire codes; member names are the exact wire spellings.

    Steady states have a zero low nibble. A transitional state's low nibble is the high nibble of its
    steady target. `DEAD` (0xFF) is internal ("remote lost") and never sent.
    """

    NEW = 0x10
    initializing = 0x12
    INIT = 0x20
    launching = 0x23
    ORBIT = 0x30
    landing = 0x32
    reconfiguring = 0x33
    starting = 0x34
    RUN = 0x40
    stopping = 0x43
    interrupting = 0x0E
    SAFE = 0xE0
    ERROR = 0xF0
    DEAD = 0xFF

    @property
    def wire_name(self) -> str:
        """The spelling used in CSCP reply texts and the STAT/STATE metric."""
        return self.name

    @property
    def is_steady(self) -> bool:
        return self is not State.DEAD and self.value & 0x0F == 0

    @property
    def is_transitional(self) -> bool:
        return self is not State.DEAD and self.value & 0x0F != 0

    @property
    def target(self) -> State:
        """The steady state a transitional state completes to (steady states and DEAD: themselves)."""
        if not self.is_transitional:
            return self
        return State((self.value & 0x0F) << 4)


class HeartbeatFlags(IntFlag):
    """CHP message flags (bits 0x08..0x40 are reserved and kept when decoded)."""

    NONE = 0
    DENY_DEPARTURE = 0x01
    TRIGGER_INTERRUPT = 0x02
    MARK_DEGRADED = 0x04
    IS_EXTRASYSTOLE = 0x80


_ROLE_MASK = HeartbeatFlags.DENY_DEPARTURE | HeartbeatFlags.TRIGGER_INTERRUPT | HeartbeatFlags.MARK_DEGRADED


class Role(Enum):
    """Autonomy role of a satellite; the value is the set of CHP flags it implies."""

    ESSENTIAL = 0x07
    DYNAMIC = 0x06
    TRANSIENT = 0x04
    NONE = 0x00

    @property
    def flags(self) -> HeartbeatFlags:
        return HeartbeatFlags(self.value)

    @classmethod
    def from_flags(cls, flags: int) -> Role:
        """Rebuild the role from CHP flags exactly as 1.0.2 receivers do."""
        f = HeartbeatFlags(int(flags) & _ROLE_MASK)
        if f & HeartbeatFlags.MARK_DEGRADED:
            if f & HeartbeatFlags.TRIGGER_INTERRUPT:
                if f & HeartbeatFlags.DENY_DEPARTURE:
                    return cls.ESSENTIAL
                return cls.DYNAMIC
            return cls.TRANSIENT
        return cls.NONE

    @classmethod
    def parse(cls, text: str) -> Role:
        """Parse a role name case-insensitively (`_autonomy.role`); ValueError if unknown."""
        if not isinstance(text, str):
            raise ValueError(f"role must be a str, got {type(text).__name__}")
        try:
            return cls[text.strip().upper()]
        except KeyError:
            names = ", ".join(r.name for r in cls)
            raise ValueError(f"unknown role {text!r} (expected one of {names})") from None
