"""The satellite runtime.

``constellation`` is shared with ConstellationDAQ 1.0.2, whose ``constellation`` is a namespace package
holding ``core``, ``tools`` and ``satellites``. Extending ``__path__`` keeps those importable next to ours
in regular and editable installs alike (see docs/architecture.md). The public names below are imported
on first use.
"""

import os as _os
import sys as _sys

# What `pkgutil.extend_path` does for directories on sys.path, without importing pkgutil (and
# importlib.util) into every satellite's first 0.1 s.
__path__ = list(
    dict.fromkeys(
        [
            *map(_os.path.abspath, __path__),
            *(
                portion
                for entry in _sys.path
                if isinstance(entry, str)
                and _os.path.isdir(portion := _os.path.abspath(_os.path.join(entry, __name__)))
            ),
        ]
    )
)

from protocols.lazy import lazy_exports

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time); mypy knows it
if TYPE_CHECKING:
    from protocols.states import Role, State

    from .command_server import CommandServer, Outgoing
    from .commands import CommandSpec, command
    from .config import Configuration, Section
    from .errors import (
        CommandError,
        CommandNotAllowed,
        ConfigError,
        ConstellationError,
        HookExit,
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
    "HookExit",
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

_EXPORTS = {
    "Role": "protocols.states",
    "State": "protocols.states",
    **dict.fromkeys(("CommandServer", "Outgoing"), ".command_server"),
    **dict.fromkeys(("CommandSpec", "command"), ".commands"),
    **dict.fromkeys(("Configuration", "Section"), ".config"),
    **dict.fromkeys(
        (
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
        ),
        ".errors",
    ),
    **dict.fromkeys(("TRANSITIONS", "Event", "StateMachine", "next_state"), ".fsm"),
    **dict.fromkeys(("MetricSpec", "metric"), ".metrics"),
    **dict.fromkeys(("PeerEvent", "PeerEventKind", "PeerMonitor"), ".peer_events"),
    "Satellite": ".satellite",
    "StopToken": ".stop",
}
# Loaded on first use: `satellite-run` announces the satellite over CHIRP from `constellation.launch`
# before the runtime (pyzmq, asyncio) is imported (docs/architecture.md, "Start-up").
if not TYPE_CHECKING:  # hidden from mypy, which would otherwise accept any name imported from here
    __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
