"""The error tree of `protocols`.

```
ProtocolError                 base of every error raised by protocols/
├── DecodeError (ValueError)  malformed bytes or frames
├── EncodeError (ValueError)  a value that cannot be put on the wire
└── InvalidName (ValueError)  canonical name / run id rules
```
"""

from __future__ import annotations

__all__ = ["DecodeError", "EncodeError", "InvalidName", "ProtocolError"]


class ProtocolError(Exception):
    """Base of every error raised by `protocols`."""


class DecodeError(ProtocolError, ValueError):
    """Bytes or frames that are not a valid message of the expected protocol."""


class EncodeError(ProtocolError, ValueError):
    """A message field that cannot be represented on the wire."""


class InvalidName(ProtocolError, ValueError):
    """A canonical name, name part or run id that breaks the naming rules."""


def _clip(value: object, limit: int = 64) -> str:
    """repr() of a peer-supplied value for an error message, cut to `limit` characters."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 5]}...({len(text)} chars)"
