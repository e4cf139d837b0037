"""Typed errors of the peers package.

```
PeersError
├── ConditionError (ConfigError)       a condition key is invalid: the INVALID reply to `initialize`
└── ConditionFailed                    a conditional transition cannot proceed: the satellite goes to ERROR
    ├── ConditionTimeout               not satisfied within the timeout
    ├── RemoteInError                  a required remote reports ERROR
    └── RemoteMissing                  a required remote is not watched, is lost or departed
```
The messages use 1.0.2's wording (wire doc §5), so statuses read the same as with 1.0.2.
`ConditionError` is also a `constellation.ConfigError` (a `ValueError`).
"""

from __future__ import annotations

from protocols import State

from ..errors import ConfigError

__all__ = [
    "ConditionError",
    "ConditionFailed",
    "ConditionTimeout",
    "PeersError",
    "RemoteInError",
    "RemoteMissing",
]


class PeersError(Exception):
    """Base of every error raised by ``constellation.peers``."""


class ConditionError(PeersError, ConfigError):
    """``Value of key `<key>` is not valid: <reason>``."""

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(f"Value of key `{key}` is not valid: {reason}")
        self.key = key
        self.reason = reason


class ConditionFailed(PeersError):
    """A conditional transition was aborted; ``str(exc)`` is the status to show in ERROR."""


class ConditionTimeout(ConditionFailed):
    def __init__(self, timeout_s: float) -> None:
        super().__init__("Could not satisfy remote conditions within timeout")
        self.timeout_s = timeout_s


class RemoteInError(ConditionFailed):
    def __init__(self, name: str, state: State) -> None:
        super().__init__(f"Dependent remote satellite {name} reports state SatelliteState.{state.name}")
        self.name = name
        self.state = state


class RemoteMissing(ConditionFailed):
    def __init__(self, name: str) -> None:
        super().__init__(f"Dependent remote satellite {name} not present")
        self.name = name
