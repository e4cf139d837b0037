"""The fast CMDP log encoder produces exactly the bytes of `protocols.cmdp.encode`."""

from __future__ import annotations

import time

import pytest

from constellation.fastwire import LogEncoder
from protocols import cmdp

TAGS = {
    "filename": "x.py", "pathname": "/a/b/x.py", "lineno": 12, "funcName": "f", "module": "x",
    "thread": 140000000000, "threadName": "MainThread", "process": 1234, "processName": "MainProcess",
}  # fmt: skip


@pytest.mark.parametrize("level", list(cmdp.Level))
@pytest.mark.parametrize(
    "time_ns", [0, 1_700_000_000_000_000_000, 2**34 * 10**9 + 5000, time.time_ns() // 1000 * 1000]
)
@pytest.mark.parametrize("text", ["", "hello", "ünïcødé ✓", "x" * 70000])
def test_identical_to_the_codec(level: cmdp.Level, time_ns: int, text: str) -> None:
    tags = {**TAGS, "traceback": "Traceback ..."} if level is cmdp.Level.CRITICAL else TAGS
    ours = LogEncoder("Sputnik.One").encode(level, "SPUTNIK", text, tags, time_ns)
    codec = cmdp.encode(cmdp.LogMessage("Sputnik.One", level, "SPUTNIK", text, tags, time_ns))
    assert ours == codec
    assert cmdp.decode(ours) == cmdp.LogMessage("Sputnik.One", level, "SPUTNIK", text, tags, time_ns)
