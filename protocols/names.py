"""Canonical names (`Type.Name`) and run identifiers (wire doc §9).

Both name parts must match ``^\\w+$`` (Unicode letters, digits, underscore) and a canonical name has
exactly one dot. A run id matches ``^[\\w-]+$``. Unlike 1.0.2's `re.match(r"^\\w+$")`, we match the
whole string, so a trailing newline is rejected.
"""

from __future__ import annotations

import re

from .errors import InvalidName, _clip

__all__ = [
    "canonical_name",
    "is_valid_canonical_name",
    "split_canonical_name",
    "validate_canonical_name",
    "validate_name_part",
    "validate_run_id",
]

_PART = re.compile(r"\w+")
_RUN_ID = re.compile(r"[\w-]+")


def validate_name_part(s: str) -> str:
    """Return `s` if it is a valid satellite type or name, else raise InvalidName."""
    if not isinstance(s, str):
        raise InvalidName(f"name part must be a str, got {type(s).__name__}")
    if _PART.fullmatch(s) is None:
        raise InvalidName(
            f"invalid name part {_clip(s)}: must be non-empty and contain only "
            "letters, digits and '_' (^\\w+$)"
        )
    return s


def split_canonical_name(s: str) -> tuple[str, str]:
    """Split `Type.Name` into (type, name), validating both parts."""
    if not isinstance(s, str):
        raise InvalidName(f"canonical name must be a str, got {type(s).__name__}")
    parts = s.split(".")
    if len(parts) != 2:
        raise InvalidName(f"invalid canonical name {_clip(s)}: must be 'Type.Name' with exactly one '.'")
    try:
        return validate_name_part(parts[0]), validate_name_part(parts[1])
    except InvalidName as exc:
        raise InvalidName(f"invalid canonical name {_clip(s)}: {exc}") from None


def validate_canonical_name(s: str) -> str:
    """Return `s` if it is a valid canonical name `Type.Name`, else raise InvalidName."""
    split_canonical_name(s)
    return s


def is_valid_canonical_name(s: object) -> bool:
    """True if `s` is a str and a valid canonical name."""
    try:
        split_canonical_name(s)  # type: ignore[arg-type]
    except InvalidName:
        return False
    return True


def canonical_name(type_: str, name: str) -> str:
    """Build `Type.Name` from validated parts."""
    return f"{validate_name_part(type_)}.{validate_name_part(name)}"


def validate_run_id(s: str) -> str:
    """Return `s` if it is a valid run identifier (^[\\w-]+$), else raise InvalidName."""
    if not isinstance(s, str):
        raise InvalidName(f"run id must be a str, got {type(s).__name__}")
    if _RUN_ID.fullmatch(s) is None:
        raise InvalidName(
            f"invalid run id {_clip(s)}: must be non-empty and contain only letters, digits, '_' and '-'"
        )
    return s
