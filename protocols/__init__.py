"""Pure wire codecs, enums and name rules of the Constellation protocols (no sockets, no asyncio).

Submodules: `chirp` (discovery beacons), `cscp` (commands), `chp` (heartbeats), `cmdp` (logs and
metrics), `cdtp` (data messages). Errors, states and name rules are re-exported here.
"""

from . import cdtp, chirp, chp, cmdp, cscp
from .errors import DecodeError, EncodeError, InvalidName, ProtocolError
from .names import (
    canonical_name,
    is_valid_canonical_name,
    split_canonical_name,
    validate_canonical_name,
    validate_name_part,
    validate_run_id,
)
from .states import HeartbeatFlags, Role, State

__all__ = [
    "DecodeError",
    "EncodeError",
    "HeartbeatFlags",
    "InvalidName",
    "ProtocolError",
    "Role",
    "State",
    "canonical_name",
    "cdtp",
    "chirp",
    "chp",
    "cmdp",
    "cscp",
    "is_valid_canonical_name",
    "split_canonical_name",
    "validate_canonical_name",
    "validate_name_part",
    "validate_run_id",
]

# `protocols.console_api` (the Console pull API models, pydantic) is imported explicitly by its users:
# importing it here would cost every satellite about 9 MiB of RSS and a fifth of its start-up time.
