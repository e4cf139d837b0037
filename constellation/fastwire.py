"""A fast path for the hottest message: CMDP log records (byte-identical to `protocols.cmdp.encode`).

`protocols.cmdp.encode` validates every field of every message; for log records we build ourselves
(sender validated once, topic sanitised, tags of known types) that costs more than the send. This
encoder packs the constant header prefix once; `tests/runtime/test_fastwire.py` checks byte identity
against the codec.
"""

from __future__ import annotations

from typing import Any

import msgpack

from protocols import cmdp

__all__ = ["LogEncoder"]

_LEVEL_NAMES = {level: level.name for level in cmdp.Level}


class LogEncoder:
    def __init__(self, sender: str) -> None:
        self._prefix = msgpack.packb("CMDP\x01") + msgpack.packb(sender)
        self._pack = msgpack.Packer(use_bin_type=True, datetime=True).pack

    def encode(
        self, level: cmdp.Level, topic: str, text: str, tags: dict[str, Any], time_ns: int
    ) -> list[bytes]:
        """Frames of a log message; `topic` must already be upper case, non-empty ASCII."""
        pack = self._pack
        header = self._prefix + pack(msgpack.Timestamp.from_unix_nano(time_ns)) + pack(tags)
        return [f"LOG/{_LEVEL_NAMES[level]}/{topic}".encode(), header, text.encode("utf-8", "replace")]
