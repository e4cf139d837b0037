"""Typed errors of the controller library.

```
ControllerError
├── UnknownSatellite      no satellite of that (case-insensitive) canonical name is known
├── CommandError          a command did not produce a reply
│   ├── CommandTimeout    no reply within the timeout (the link's socket was recreated)
│   └── SatelliteGone     the satellite departed or the controller closed while waiting
├── CommandFailed         a reply that is not SUCCESS, raised by Reply.raise_for_status()
└── StateTimeout          await_state() ran out of time
    (SatelliteFailed      await_state(): a satellite reached ERROR/SAFE or was lost)
```
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .model import Reply


class ControllerError(Exception):
    """Base of every error raised by ``controllers``."""


class UnknownSatellite(ControllerError, KeyError):
    """No satellite with this canonical name is known (names compare case-insensitively)."""

    def __str__(self) -> str:  # KeyError quotes its argument; we want the message
        return str(self.args[0]) if self.args else ""


class CommandError(ControllerError):
    """A command got no reply."""

    def __init__(self, satellite: str, command: str, message: str) -> None:
        super().__init__(f"{satellite}: {command}: {message}")
        self.satellite = satellite
        self.command = command


class CommandTimeout(CommandError, TimeoutError):
    """No reply within the timeout. The link recreated its socket; the next command works normally."""


class SatelliteGone(CommandError):
    """The satellite departed (or the controller closed) before it replied."""


class CommandFailed(ControllerError):
    """A reply whose verb type is not SUCCESS (from ``Reply.raise_for_status()``)."""

    def __init__(self, reply: Reply, command: str = "") -> None:
        what = f"{command}: " if command else ""
        super().__init__(f"{reply.sender}: {what}{reply.type.name}: {reply.text}")
        self.reply = reply


class StateTimeout(ControllerError, TimeoutError):
    """``await_state`` did not see every selected satellite in the wanted state in time."""


class SatelliteFailed(ControllerError):
    """``await_state``: a selected satellite went to ERROR or SAFE, or was lost, while we waited."""
