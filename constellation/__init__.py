"""The satellite runtime.

``constellation`` is shared with ConstellationDAQ 1.0.2, whose ``constellation`` is a namespace package
holding ``core``, ``tools`` and ``satellites``. Extending ``__path__`` keeps those importable next to ours
in regular and editable installs alike (see docs/architecture.md).
"""

from pkgutil import extend_path

__path__ = extend_path(__path__, __name__)

from protocols.states import Role, State

from .command_server import CommandServer, Outgoing
from .commands import CommandSpec, command
from .config import Configuration, Section
from .errors import (
    CommandError,
    CommandNotAllowed,
    ConfigError,
    ConstellationError,
    InvalidRequest,
    SatelliteTypeError,
    ServiceError,
    TransitionNotAllowed,
    UnknownCommand,
    WrongArgument,
)
from .fsm import TRANSITIONS, Event, StateMachine, next_state
from .metrics import MetricSpec, metric
from .peer_events import PeerEvent, PeerEventKind, PeerMonitor
from .satellite import Satellite
from .stop import StopToken

__all__ = [
    "TRANSITIONS",
    "CommandError",
    "CommandNotAllowed",
    "CommandServer",
    "CommandSpec",
    "ConfigError",
    "Configuration",
    "ConstellationError",
    "Event",
    "InvalidRequest",
    "MetricSpec",
    "Outgoing",
    "PeerEvent",
    "PeerEventKind",
    "PeerMonitor",
    "Role",
    "Satellite",
    "SatelliteTypeError",
    "Section",
    "ServiceError",
    "State",
    "StateMachine",
    "StopToken",
    "TransitionNotAllowed",
    "UnknownCommand",
    "WrongArgument",
    "command",
    "metric",
    "next_state",
]
