"""The terminal's log lines of `satellite-run`: Constellation's level names, written in batches, and
never by the event loop.

A `logging.StreamHandler` on stderr flushes after every record, and stderr is line-buffered anyway, so
each printed record costs a `write` system call, plus a hand-over of the GIL to whichever thread runs
meanwhile and back: in a satellite logging from a hook, about 25 of the 35 us a printed record took.
And a `write` blocks for as long as the terminal does not read (Ctrl-S, `satellite-run ... 2>&1 | less`
left unscrolled, a full pipe): a logging call on the event loop would stop the satellite's replies,
heartbeats and transitions with it, and peers would declare it dead.

Once attached to a running event loop, `ConsoleHandler` makes no system call in a logging call. A line
goes, encoded as the stream would encode it, into the stream's own binary buffer (`sys.stderr.buffer`)
when it surely fits there without a flush, else into a list of pending lines; a writer thread
("console-log-flush") moves pending lines into the buffer and flushes it, holding no lock a logging
call needs. While a flush blocks, lines wait in the list, up to `PENDING_LIMIT` bytes; beyond that they
are dropped and counted, and once the terminal reads again a line says how many. Sharing stderr's buffer
keeps the order with everything else written to `sys.stderr` (tracebacks, warnings,
`print(file=sys.stderr)`: stderr's text layer is line-buffered, so such a write flushes our lines first)
as long as the lines fit the buffer; a line that waits in the list may be overtaken by such a write
(normally by well under a millisecond, the writer's wake-up). Under PYTHONUNBUFFERED stderr has no
buffer to share, and the lines go to one of our own on the same descriptor. A thread blocked in its own
write to a stalled stderr (a `print`) holds that buffer's lock: a logging call putting a line into the
buffer meanwhile waits for it too.

Without a running loop (before the runtime starts, after it stops, in a forked child) every record is
written and flushed at once, as `StreamHandler` does. A stream without a descriptor (pytest's capture)
is written and flushed per record; no stream at all (Python started with descriptor 2 closed:
`sys.stderr` is None) drops the lines. A failed flush (EPIPE, EBADF) is never raised into a logging call
or the loop: what a full non-blocking descriptor (EAGAIN) did not take goes first once the writer
tries again, `MAX_DELAY_S` later; lines refused for good (EPIPE, EBADF, a full disk) are counted as
dropped, and the writer offers the note on them every `RETRY_S`: once the stream takes it, lines flow
again. A failed write without a loop is reported by `handleError`, as `StreamHandler` does.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import os
import sys
import threading
from typing import ClassVar, TextIO

from .logtopics import logger_component

__all__ = ["MAX_DELAY_S", "PENDING_LIMIT", "RETRY_S", "ConsoleFormatter", "ConsoleHandler"]

MAX_DELAY_S = 0.05  # after a failed flush (EPIPE, EBADF) the writer tries again this much later
PENDING_LIMIT = 1 << 20  # bytes of lines held while the stream takes none; more are dropped and counted
RETRY_S = 1.0  # after lines were refused for good (EPIPE, ENOSPC) the writer tries the note this often
_BUFFER = 1 << 16  # our own buffer, when stderr has none (PYTHONUNBUFFERED)
_SHARED_ROOM = 1024  # bytes surely free in stderr's buffer after a flush (its size: at least a tty's block)
_PID = [os.getpid()]  # this process's pid, renewed in a forked child (os.getpid() is a system call)


def _forked() -> None:
    _PID[0] = os.getpid()


os.register_at_fork(after_in_child=_forked)


class ConsoleFormatter(logging.Formatter):
    """Names Constellation's TRACE (5) and STATUS (35) levels without touching logging's global table."""

    _NAMES: ClassVar[dict[int, str]] = {5: "TRACE", 35: "STATUS", 40: "CRITICAL"}

    def format(self, record: logging.LogRecord) -> str:
        record.levelname = self._NAMES.get(record.levelno, record.levelname)
        component = getattr(record, "component", None)
        record.component = component or logger_component(record.name)
        return super().format(record)


class ConsoleHandler(logging.StreamHandler[TextIO]):
    """Log lines to a text stream (`sys.stderr` by default); written by a thread once a loop runs."""

    def __init__(self, stream: TextIO | None = None) -> None:
        super().__init__(sys.stderr if stream is None else stream)
        self._loop: asyncio.AbstractEventLoop | None = None  # attached and not closed: lines are batched
        self._pid = _PID[0]  # a forked child has no writer: it writes per record
        self._pending: list[bytes] = []  # encoded lines waiting for the writer, in order
        self._pending_bytes = 0
        self._dropped = 0  # lines that found the pending list full
        self._dirty = False  # lines were put into the buffer since the last flush
        self._stuck = False  # the stream refused a flush (EPIPE, a full disk): the buffer still holds lines
        self._flushing = False  # a flush is writing: lines wait in the list (the buffer may be locked)
        self._flusher = 0  # the thread writing that flush (a record it logs meanwhile waits for no one)
        self._wake = threading.Condition(self.lock)  # the writer waits for lines
        self._flushed = threading.Condition(self.lock)  # a flush or a per-record write waits for one to end
        self._writer: threading.Thread | None = None
        self._idle = False  # the writer waits for lines (emit notifies it)
        self._encoding = "utf-8"
        self._binary: io.BufferedWriter | None = None
        self._own = False
        self._room = self._capacity = 0  # bytes a line may still take in the buffer without a flush
        self._use(self.stream)

    def _use(self, stream: TextIO | None) -> None:
        self._binary, self._own = _binary_of(stream)
        self._encoding = getattr(stream, "encoding", None) or "utf-8"
        self._room = self._capacity = _BUFFER if self._own else _SHARED_ROOM

    def setStream(self, stream: TextIO) -> TextIO | None:
        self.flush()
        with self.lock:  # type: ignore[union-attr]
            old = super().setStream(stream)
            self._drop_own()
            self._use(stream)
            return old

    def _drop_own(self) -> None:
        if self._own and self._binary is not None:
            with contextlib.suppress(OSError, ValueError):
                self._binary.close()  # flushes; the descriptor stays open (closefd=False)
        self._binary, self._own = None, False

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        """While the loop is not closed, lines are batched and written by the writer thread (call from
        the loop's thread, once it runs)."""
        with self.lock:  # type: ignore[union-attr]
            if self._binary is None:
                return  # nothing to batch
            self._loop = loop
            self._pid = _PID[0]
            if self._writer is None:
                self._writer = threading.Thread(target=self._write, name="console-log-flush", daemon=True)
                self._writer.start()

    def detach(self) -> None:
        """Back to a write per record; writes out what is pending (waits while the stream takes none)."""
        self._flush(detach=True)

    def flush(self) -> None:
        """Write out everything (from `logging.shutdown`, `close`; may wait for a stalled stream)."""
        self._flush()
        super().flush()  # the text stream's own buffer, if any

    def emit(self, record: logging.LogRecord) -> None:  # called with self.lock held (Handler.handle)
        try:
            line = self.format(record) + self.terminator
            if not self._batching():
                if not self._wait_for_flush():  # else logged inside this thread's own flush
                    self._flush_unlocked()  # what batching left waiting
                if self.stream is not None:
                    self.stream.write(line)
                    if self._own and self._binary is not None:
                        self._binary.flush()
                    self.stream.flush()
                return
            data = line.encode(self._encoding, "backslashreplace")
        except RecursionError:
            raise
        except Exception:
            self.handleError(record)
            return
        if self._flushing or self._pending or len(data) > self._room:
            if self._dropped or self._pending_bytes + len(data) > PENDING_LIMIT:  # the note stays in place
                self._dropped += 1
                return
            self._pending.append(data)
            self._pending_bytes += len(data)
        else:
            try:
                self._binary.write(data)  # type: ignore[union-attr]  # fits: no system call
            except (OSError, ValueError):  # closed under us
                self.handleError(record)
                return
            self._room -= len(data)
            self._dirty = True
        if self._idle:
            self._idle = False
            self._wake.notify()

    def _batching(self) -> bool:
        """Lines go to the writer (lock held): a loop attached and not closed, in the attaching process."""
        loop = self._loop
        if loop is None:
            return False
        if self._pid != _PID[0]:  # a forked child: no writer here; the parent writes what it had
            self._loop = self._writer = None
            self._pending, self._pending_bytes, self._dropped = [], 0, 0
            self._flushing = self._dirty = False
            return False
        if loop.is_closed():
            self._loop = self._writer = None  # the writer ends
            self._wake.notify_all()
            return False
        return True

    def _wait_for_flush(self) -> bool:
        """With the lock held: wait until no other thread flushes (letting go of the lock meanwhile,
        however often this thread holds it). True if this thread is the one flushing (a record logged
        from inside its flush, by a finalizer or a warning): it must not wait for itself."""
        me = threading.get_ident()
        while self._flushing:
            if self._flusher == me:
                return True
            self._flushed.wait()
        return False

    def _flush_unlocked(self) -> None:
        """With the lock held and no flush running: write out what waits (no writer to hand it to)."""
        if not (self._pending or self._dirty or self._dropped):
            return
        batch, dropped = self._take()
        self._room = self._capacity if self._put(batch, dropped) else 0

    def _take(self) -> tuple[list[bytes], int]:
        batch, dropped = self._pending, self._dropped
        self._pending, self._pending_bytes, self._dropped, self._dirty = [], 0, 0, False
        self._stuck = False
        return batch, dropped

    def _put(self, batch: list[bytes], dropped: int) -> bool:
        """Write `batch` and the note on `dropped`, then flush; False if the stream refused. What it
        did not take for now (EAGAIN: a non-blocking descriptor, full) waits at the head of the list;
        what it refused for good (EPIPE, EBADF, closed) is counted as dropped. Raises nothing."""
        binary = self._binary
        if binary is None:
            return True
        data = b"".join(batch)
        if dropped:
            lines = "log line" if dropped == 1 else "log lines"
            note = f"({dropped} {lines} dropped: the terminal did not read them in time)\n"
            data += note.encode(self._encoding, "backslashreplace")
        try:
            binary.write(data)
        except BlockingIOError as exc:  # the buffer took the first bytes: the rest goes first next time
            self._refused(data[exc.characters_written :])
            return False
        except (OSError, ValueError):  # for good: the lines of this batch are lost, and counted
            with self.lock:  # type: ignore[union-attr]
                self._dropped += len(batch) + dropped
            return False
        try:
            binary.flush()
        except BlockingIOError:  # the buffer keeps what it could not write
            self._refused(b"")
            return False
        except (OSError, ValueError):  # kept in the buffer too, which a later flush tries again
            with self.lock:  # type: ignore[union-attr]
                self._stuck = True
            return False
        return True

    def _refused(self, rest: bytes) -> None:
        with self.lock:  # type: ignore[union-attr]
            if rest:
                self._pending.insert(0, rest)
                self._pending_bytes += len(rest)
            self._dirty = True  # the buffer holds bytes: the writer tries again `MAX_DELAY_S` later

    def _flush(self, detach: bool = False) -> bool:
        """Write out what waits, outside the lock `emit` needs; False if the stream refused some of it.

        One flush at a time, in order: a flush waits for the running one on `_flushed`, which lets go
        of the handler's lock however often this thread holds it (`logging.shutdown` holds it around
        `flush` and `close`: a lock of our own, taken before it, would deadlock with the writer)."""
        with self.lock:  # type: ignore[union-attr]
            if self._wait_for_flush():
                return True  # called from inside this thread's own flush: nothing to add
            if detach:
                self._loop = self._writer = None  # per record from now on; the writer ends
                self._wake.notify_all()
            batch, dropped = self._take()
            self._flushing, self._flusher = True, threading.get_ident()
        ok = False
        try:
            ok = self._put(batch, dropped)
        finally:
            with self.lock:  # type: ignore[union-attr]
                self._flushing = False
                self._room = self._capacity if ok else 0
                self._flushed.notify_all()
        return ok

    def _write(self) -> None:
        """The writer thread: flush whenever lines wait; after a failure, try again `MAX_DELAY_S` later."""
        me = threading.current_thread()
        while True:
            with self.lock:  # type: ignore[union-attr]
                while self._writer is me and not (self._pending or self._dirty):
                    self._idle = True
                    if self._dropped or self._stuck:  # the stream refused lines (EPIPE, a full disk):
                        self._wake.wait(RETRY_S)  # try again once a second, so that they flow again
                        break  # when the disk has room; a broken pipe costs one failed write a second
                    self._wake.wait()
                self._idle = False
                if self._writer is not me:
                    return
            if not self._flush():
                with self.lock:  # type: ignore[union-attr]
                    if self._writer is me:
                        self._wake.wait(MAX_DELAY_S)

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
    to stderr can then overtake lines waiting in it (by the writer's wake-up, normally).
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
