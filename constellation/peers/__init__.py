"""Autonomy: peer monitoring (CHP), reactions by role, and conditional transitions (issue 4).

See docs/autonomy.md for the design and for how a satellite composes these parts.

`PeerMonitor` and `PeerMonitorClosed` are loaded on first use: the monitor pulls in discovery (and
zeroconf), which the runtime needs only with discovery, whereas it imports `conditions` always.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from .conditions import (
    CONDITIONAL_TRANSITIONS,
    DEFAULT_TIMEOUT_S,
    TIMEOUT_KEYS,
    Conditions,
    PeerStates,
    check_present,
    parse_conditions,
    wait_for_conditions,
)
from .errors import (
    ConditionError,
    ConditionFailed,
    ConditionTimeout,
    PeersError,
    RemoteInError,
    RemoteMissing,
)
from .events import PeerEvent, PeerInfo
from .policy import TABLE, Effect, EventKind, PeerReactor, Reaction, decide
from .reactions import Reactions
from .settings import MonitorSettings
from .tracker import PeerTracker

if TYPE_CHECKING:
    from .monitor import PeerMonitor, PeerMonitorClosed

__all__ = [
    "CONDITIONAL_TRANSITIONS",
    "DEFAULT_TIMEOUT_S",
    "TABLE",
    "TIMEOUT_KEYS",
    "ConditionError",
    "ConditionFailed",
    "ConditionTimeout",
    "Conditions",
    "Effect",
    "EventKind",
    "MonitorSettings",
    "PeerEvent",
    "PeerInfo",
    "PeerMonitor",
    "PeerMonitorClosed",
    "PeerReactor",
    "PeerStates",
    "PeerTracker",
    "PeersError",
    "Reaction",
    "Reactions",
    "RemoteInError",
    "RemoteMissing",
    "check_present",
    "decide",
    "parse_conditions",
    "wait_for_conditions",
]

_LAZY = {"PeerMonitor": ".monitor", "PeerMonitorClosed": ".monitor"}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
