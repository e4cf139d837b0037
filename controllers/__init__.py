"""Controller library: discover a group's satellites, command them (CSCP), follow their heartbeats (CHP).

See docs/controllers.md. The REPL and the demo are thin programs on this API; ``controllers.render``
turns snapshots into rich tables.
"""

from .controller import Controller
from .errors import (
    CommandError,
    CommandFailed,
    CommandTimeout,
    ControllerError,
    SatelliteFailed,
    SatelliteGone,
    StateTimeout,
    UnknownSatellite,
)
from .heartbeats import Liveness
from .link import BadReply, CommandLink
from .model import Replies, Reply, SatelliteInfo, Summary, summarize
from .sync import SyncController

__all__ = [
    "BadReply",
    "CommandError",
    "CommandFailed",
    "CommandLink",
    "CommandTimeout",
    "Controller",
    "ControllerError",
    "Liveness",
    "Replies",
    "Reply",
    "SatelliteFailed",
    "SatelliteGone",
    "SatelliteInfo",
    "StateTimeout",
    "Summary",
    "SyncController",
    "UnknownSatellite",
    "summarize",
]
