"""The error tree of the runtime.

```
ConstellationError                       base of every error raised by constellation/
├── ConfigError (ValueError)             a configuration value: names the key and the reason
├── CommandError                         a CSCP request that cannot be executed (mapped to a reply code)
│   ├── UnknownCommand                   -> UNKNOWN
│   ├── CommandNotAllowed                -> INVALID  "Command not allowed in <STATE> state"
│   ├── WrongArgument (ValueError)       -> INCOMPLETE "Wrong argument: <msg>"
│   └── TransitionNotAllowed             -> INVALID  "Transition not allowed: Can't <event> when in <State>."
├── HookExit                             a hook or command raised SystemExit, KeyboardInterrupt or another
│                                        BaseException: that hook failed (ERROR), the satellite goes on
├── SatelliteTypeError (LookupError)     unknown satellite type (CLI)
└── ServiceError                         a runtime service could not start (port in use, ...)
```
"""

from __future__ import annotations

__all__ = [
    "CommandError",
    "CommandNotAllowed",
    "ConfigError",
    "ConstellationError",
    "HookExit",
    "InvalidRequest",
    "SatelliteTypeError",
    "ServiceError",
    "TransitionNotAllowed",
    "UnknownCommand",
    "WrongArgument",
]


class ConstellationError(Exception):
    """Base of every error raised by the runtime."""


class ConfigError(ConstellationError, ValueError):
    """A configuration value that is missing, of the wrong type or out of range."""


class CommandError(ConstellationError):
    """A command request that cannot be executed."""


class UnknownCommand(CommandError):
    """No command of that name."""


class CommandNotAllowed(CommandError):
    """The command is not allowed in the current state."""


class WrongArgument(CommandError, ValueError):
    """The request payload does not match the command's parameters."""


class TransitionNotAllowed(CommandError):
    """The FSM refuses the transition (message in the 1.0.2 spelling)."""


class HookExit(ConstellationError):
    """A hook or command raised a BaseException that is not an Exception (`SystemExit` from a
    `sys.exit()`, `KeyboardInterrupt`, a custom one). Raised in its place, so that it fails that hook
    (the satellite goes to ERROR, a command gets an error reply) instead of ending the event loop and the
    process; `original` is the exception, `str()` names it as 1.0.2 names a failing hook's error."""

    def __init__(self, original: BaseException) -> None:
        super().__init__(f"{type(original).__name__}: {original}")
        self.original = original


class SatelliteTypeError(ConstellationError, LookupError):
    """A satellite type that no installed package provides."""


class ServiceError(ConstellationError):
    """A runtime service could not be started."""


class InvalidRequest(CommandError):
    """A request refused before any state change (1.0.2 answers INVALID "Exception: <msg>")."""
