"""Autonomy: peer monitoring (CHP), reactions by role, and conditional transitions (issue 4).

See docs/autonomy.md for the design and for how a satellite composes these parts.
"""

from .conditions import (
    CONDITIONAL_TRANSITIONS,
    DEFAULT_TIMEOUT_S,
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
from .monitor import PeerMonitor, PeerMonitorClosed
from .policy import TABLE, Effect, EventKind, PeerReactor, Reaction, decide
from .reactions import Reactions
from .settings import MonitorSettings
from .tracker import PeerTracker

__all__ = [
    "CONDITIONAL_TRANSITIONS",
    "DEFAULT_TIMEOUT_S",
    "TABLE",
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
