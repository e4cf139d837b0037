"""Pure wire codecs, enums and name rules of the Constellation protocols (no sockets, no asyncio).

Submodules: `chirp` (discovery beacons), `cscp` (commands), `chp` (heartbeats), `cmdp` (logs and
metrics), `cdtp` (data messages). Errors, states and name rules are re-exported here,
all loaded on first use.
"""

from .lazy import lazy_exports

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time); mypy knows it
if TYPE_CHECKING:
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

_EXPORTS = {
    **{module: f".{module}" for module in ("cdtp", "chirp", "chp", "cmdp", "cscp")},
    **dict.fromkeys(("DecodeError", "EncodeError", "InvalidName", "ProtocolError"), ".errors"),
    **dict.fromkeys(("HeartbeatFlags", "Role", "State"), ".states"),
    **dict.fromkeys(
        (
            "canonical_name",
            "is_valid_canonical_name",
            "split_canonical_name",
            "validate_canonical_name",
            "validate_name_part",
            "validate_run_id",
        ),
        ".names",
    ),
}
# Loaded on first use: a satellite announces itself over CHIRP (`protocols.chirp`) before msgpack and
# the other codecs are imported (docs/architecture.md, "Start-up").
if not TYPE_CHECKING:  # hidden from mypy, which would otherwise accept any name imported from here
    __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

# `protocols.console_api` (the Console pull API models, pydantic) is imported explicitly by its users:
# importing it here would cost every satellite about 9 MiB of RSS and a fifth of its start-up time.
