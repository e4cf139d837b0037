"""The terminal's log lines of `satellite-run`: Constellation's level names, written in batches.

A `logging.StreamHandler` on stderr flushes after every record, and stderr is line-buffered anyway, so
each printed record costs a `write` system call, plus a hand-over of the GIL to whichever thread runs
meanwhile and back: in a satellite logging from a hook, about 25 of the 35 us a printed record took.

`ConsoleHandler` puts its lines, encoded as the stream would, into the stream's own binary buffer
(`sys.stderr.buffer`) without flushing it, and, once attached to the satellite's event loop, has the loop
flush it: at most one flush per loop iteration, however many records arrived meanwhile. Sharing the
buffer keeps the order with everything else written to `sys.stderr` (tracebacks, warnings,
`print(file=sys.stderr)`): stderr's text layer is line-buffered, so such a write flushes our lines
first; and every flush of stderr (interpreter exit, `multiprocessing`'s child exit, `satellite-run`
before `os._exit`) writes them out too. Under PYTHONUNBUFFERED stderr has no buffer to share, and the
lines wait in one of our own on the same descriptor (flushed by the loop, the watchdog, `close` and
`logging.shutdown`): a direct write to stderr may then overtake them by up to one loop iteration.

A line waits no longer than the loop takes to come round (well under a millisecond when idle). When the
loop does not come round, because it is blocked, stopped or closed, a watchdog thread flushes lines
older than `MAX_DELAY_S`, whether records keep coming or not. Without a loop (before the runtime
starts, after it stops, in a forked child) every record is flushed at once, as `StreamHandler` does.
A stream without a descriptor (pytest's capture) is written and flushed per record; no stream at all
(Python started with descriptor 2 closed: `sys.stderr` is None) drops the lines. A failed flush (EPIPE,
EBADF) is never raised into the loop; a failed write is reported by `handleError`, as `StreamHandler`
does.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import os
import sys
import threading
import time
from typing import ClassVar, TextIO

__all__ = ["MAX_DELAY_S", "ConsoleFormatter", "ConsoleHandler"]

MAX_DELAY_S = 0.05
_BUFFER = 1 << 16  # our own buffer, when stderr has none (PYTHONUNBUFFERED)


class ConsoleFormatter(logging.Formatter):
    """Names Constellation's TRACE (5) and STATUS (35) levels without touching logging's global table."""

    _NAMES: ClassVar[dict[int, str]] = {5: "TRACE", 35: "STATUS", 40: "CRITICAL"}

    def format(self, record: logging.LogRecord) -> str:
        record.levelname = self._NAMES.get(record.levelno, record.levelname)
        component = getattr(record, "component", None)
        record.component = component or record.name.rpartition(".")[2].upper()
        return super().format(record)


class ConsoleHandler(logging.StreamHandler[TextIO]):
    """Log lines to a text stream (`sys.stderr` by default), flushed by the attached event loop."""

    def __init__(self, stream: TextIO | None = None) -> None:
        super().__init__(sys.stderr if stream is None else stream)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pid = os.getpid()  # a forked child has no loop running: it flushes per record
        self._scheduled = False  # a flush is queued on the loop
        self._oldest = 0.0  # monotonic time of the oldest line not flushed yet; 0.0: none
        self._wake = threading.Condition(self.lock)
        self._watchdog: threading.Thread | None = None
        self._idle = True  # the watchdog waits for a line (emit notifies it)
        self._binary, self._own = _binary_of(self.stream)
        self._encoding = getattr(self.stream, "encoding", None) or "utf-8"

    def setStream(self, stream: TextIO) -> TextIO | None:
        with self.lock:  # type: ignore[union-attr]
            old = super().setStream(stream)
            self._drop_own()
            self._binary, self._own = _binary_of(stream)
            self._encoding = getattr(stream, "encoding", None) or "utf-8"
            return old

    def flush(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            if self._own and self._binary is not None:
                self._binary.flush()
            super().flush()

    def _drop_own(self) -> None:
        if self._own and self._binary is not None:
            with contextlib.suppress(OSError, ValueError):
                self._binary.close()  # flushes; the descriptor stays open (closefd=False)
        self._binary, self._own = None, False

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        """From now on the loop flushes (call from the loop's thread, once it runs)."""
        with self.lock:  # type: ignore[union-attr]
            if self._binary is None:
                return  # nothing to batch
            self._loop = loop
            self._pid = os.getpid()
            if self._watchdog is None:
                self._watchdog = threading.Thread(target=self._watch, name="console-log-flush", daemon=True)
                self._watchdog.start()

    def detach(self) -> None:
        """Back to a flush per record; writes out what is buffered."""
        with self.lock:  # type: ignore[union-attr]
            self._loop = None
            self._scheduled = False
            self._watchdog = None  # it ends when it wakes (a daemon, not joined: close() may hold the lock)
            self._wake.notify()
            self._flush_quietly()

    def emit(self, record: logging.LogRecord) -> None:  # called with self.lock held (Handler.handle)
        binary = self._binary
        try:
            if binary is None or self._loop is None:
                if self.stream is not None:
                    self.stream.write(self.format(record) + self.terminator)
                    self.flush()
                return
            binary.write((self.format(record) + self.terminator).encode(self._encoding, "backslashreplace"))
        except RecursionError:
            raise
        except Exception:
            self.handleError(record)
            return
        if self._oldest:
            return  # a flush is on its way: the loop's, else the watchdog's
        if self._pid != os.getpid():  # forked (checked once a batch): the loop runs in the parent only
            self._loop = None
            self._flush_quietly()
            return
        self._oldest = time.monotonic()
        if self._idle:
            self._wake.notify()
        if self._scheduled:
            return
        try:
            self._loop.call_soon_threadsafe(self._flush_pending)
            self._scheduled = True
        except RuntimeError:  # the loop closed under us
            self._loop = None
            self._flush_quietly()

    def _flush_pending(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            self._scheduled = False
            self._flush_quietly()

    def _flush_quietly(self) -> None:
        """Flush (lock held). A failure (EPIPE, EBADF) is not raised into the loop or a logging call:
        the lines stay in the buffer, as in stderr's own, and the next record flushed at once meets it."""
        self._oldest = 0.0
        with contextlib.suppress(OSError, ValueError):
            self.flush()

    def _watch(self) -> None:
        """Flush lines the loop has left waiting `MAX_DELAY_S` (it is blocked, stopped or closed)."""
        me = threading.current_thread()
        with self.lock:  # type: ignore[union-attr]
            while self._watchdog is me:
                if not self._oldest:
                    self._idle = True
                    self._wake.wait()
                    self._idle = False
                    continue
                due = self._oldest + MAX_DELAY_S - time.monotonic()
                if due > 0:
                    self._wake.wait(due)
                else:
                    self._flush_quietly()

    def close(self) -> None:
        self.detach()
        with self.lock:  # type: ignore[union-attr]
            self._drop_own()
        super().close()


def _binary_of(stream: TextIO | None) -> tuple[io.BufferedWriter | None, bool]:
    """The binary buffer to put encoded lines in, and whether it is our own.

    The text stream's own buffer when it has one (stderr's, normally): the order with every other write
    to the stream is kept. Under PYTHONUNBUFFERED stderr has none (its text layer writes through to the
    descriptor): a buffer of our own on the same descriptor, as the only way to batch; a direct write
    to stderr can then overtake lines waiting in it (for one loop iteration at most, normally).
    None when there is no descriptor either (no stream, pytest's capture): lines are written and flushed.
    """
    if not isinstance(stream, io.TextIOWrapper):
        return None, False
    buffer = stream.buffer
    if isinstance(buffer, io.BufferedWriter):
        return buffer, False
    try:
        fd = stream.fileno()
        return io.BufferedWriter(io.FileIO(fd, "w", closefd=False), _BUFFER), True  # closed in close()
    except (OSError, ValueError):
        return None, False
