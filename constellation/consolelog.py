"""The terminal's log lines of `satellite-run`: Constellation's level names, written in batches.

A `logging.StreamHandler` on stderr flushes after every record, and stderr is line-buffered anyway, so
each printed record costs a `write` system call, plus a hand-over of the GIL to whichever thread runs
meanwhile and back: in a satellite logging from a hook, about 25 of the 35 us a printed record took.
`ConsoleHandler` writes to its own block-buffered stream on the same descriptor and, once attached to
the satellite's event loop, has the loop flush it: at most one flush per loop iteration, however many
records arrived meanwhile. A line waits no longer than the loop takes to come round (well under a
millisecond when idle), and never more than `MAX_DELAY_S` while records keep coming. Without a loop
(before the runtime starts, after it stops) every record is flushed at once, as before.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from typing import ClassVar, TextIO

__all__ = ["MAX_DELAY_S", "ConsoleFormatter", "ConsoleHandler"]

MAX_DELAY_S = 0.05
_BUFFER = 1 << 16


class ConsoleFormatter(logging.Formatter):
    """Names Constellation's TRACE (5) and STATUS (35) levels without touching logging's global table."""

    _NAMES: ClassVar[dict[int, str]] = {5: "TRACE", 35: "STATUS", 40: "CRITICAL"}

    def format(self, record: logging.LogRecord) -> str:
        record.levelname = self._NAMES.get(record.levelno, record.levelname)
        component = getattr(record, "component", None)
        record.component = component or record.name.rpartition(".")[2].upper()
        return super().format(record)


class ConsoleHandler(logging.StreamHandler[TextIO]):
    """Log lines to a descriptor (stderr by default), flushed by the attached event loop."""

    def __init__(self, fd: int | None = None) -> None:
        if fd is None:
            fd = sys.stderr.fileno()
        stream = open(  # noqa: SIM115 (lives as long as the handler; closefd=False leaves fd 2 open)
            fd,
            "w",
            buffering=_BUFFER,
            encoding=getattr(sys.stderr, "encoding", None) or "utf-8",
            errors="backslashreplace",
            closefd=False,
        )
        super().__init__(stream)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pending = False  # a flush is scheduled on the loop
        self._since = 0.0  # monotonic time of the oldest unflushed line

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        """From now on the loop flushes (call from the loop's thread, once it runs)."""
        with self.lock:  # type: ignore[union-attr]
            self._loop = loop

    def detach(self) -> None:
        """Back to a flush per record; writes out what is buffered."""
        with self.lock:  # type: ignore[union-attr]
            self._loop = None
            self._pending = False
        self.flush()

    def emit(self, record: logging.LogRecord) -> None:  # called with self.lock held (Handler.handle)
        try:
            self.stream.write(self.format(record) + self.terminator)
        except RecursionError:
            raise
        except Exception:
            self.handleError(record)
            return
        loop = self._loop
        if loop is None:
            self.flush()
            return
        if not self._pending:
            self._pending = True
            self._since = time.monotonic()
            try:
                loop.call_soon_threadsafe(self._flush_pending)
            except RuntimeError:  # the loop closed under us
                self._loop = None
                self._pending = False
                self.flush()
        elif time.monotonic() - self._since > MAX_DELAY_S:
            self.flush()  # the loop is slow to come round: do not let lines wait on it
            self._since = time.monotonic()

    def _flush_pending(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            self._pending = False
            self.flush()

    def close(self) -> None:
        self.detach()
        super().close()
