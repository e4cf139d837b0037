"""A terminal that stops reading (Ctrl-S, `satellite-run ... 2>&1 | less` left unscrolled, a full pipe)
must not stop the satellite: it keeps answering, beating and changing state, its log lines wait in a
bounded list (what does not fit is dropped and counted: tests/runtime/test_consolelog.py), and
everything flows again once the terminal reads.

Real subprocesses on loopback with `--discovery none` (no multicast); stderr is a pipe the test leaves
unread until it is full.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import io
import logging
import os
import struct
import subprocess
import termios
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

import pytest
import zmq

from constellation.consolelog import RETRY_S, ConsoleFormatter, ConsoleHandler
from tests.harness import wait_until
from tests.runtime.test_cli import request, wait_state
from tests.runtime.test_console_exit import LOCAL, SATELLITE_RUN

pytestmark = pytest.mark.timeout(90)


def pipe_bytes(fd: int) -> int:
    """Bytes waiting in a pipe (FIONREAD)."""
    return int(struct.unpack("i", fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0"))[0])


F_GETPIPE_SZ = 1032  # fcntl: the pipe's capacity in bytes


def full_pipe(fd: int, quiet_s: float = 1.0, also: Callable[[], object] = lambda: True) -> Callable[[], int]:
    """A condition: the pipe has taken no byte for `quiet_s` while a writer has lines for it (and
    `also()` holds), and holds at least half its capacity; its value is the bytes it holds then. A
    full pipe's byte count depends on the sizes of the writes that filled it (each write takes whole
    pages: 5030-byte writes fill a 64 KiB pipe at 54,396 bytes, 2049-byte ones at half), so "full" is
    "takes nothing more" with a floor, never the capacity less a page."""
    last = [-1, 0.0]
    floor = fcntl.fcntl(fd, F_GETPIPE_SZ) // 2

    def full() -> int:
        now, size = time.monotonic(), pipe_bytes(fd)
        if size != last[0] or not also():
            last[:] = [size, now]
        return size if size >= floor and now - last[1] >= quiet_s else 0

    return full


@pytest.mark.parametrize("stderr", ["buffered", "unbuffered"])
def test_a_terminal_that_stops_reading_does_not_stop_the_satellite(stderr: str) -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1" if stderr == "unbuffered" else ""}
    popen = subprocess.Popen(
        [SATELLITE_RUN, "Sputnik", "-n", "Stall", "-g", "g", "-l", "DEBUG", *LOCAL],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    ctx = zmq.Context()
    hb = ctx.socket(zmq.SUB)
    hb.setsockopt(zmq.LINGER, 0)
    try:
        assert popen.stdout is not None
        assert popen.stderr is not None
        ready = popen.stdout.readline().decode()  # bounded by the test's timeout
        assert ready.startswith("READY Sputnik.Stall "), ready
        port = int(ready.split("cmd=")[1].split()[0])
        hb.connect(f"tcp://127.0.0.1:{int(ready.split('hb=')[1].split()[0])}")
        hb.subscribe(b"")
        err = popen.stderr.fileno()
        # a thousand DEBUG lines a second from do_run's thread, none of them read
        request(port, "initialize", {"beep_period": 0.001})
        wait_state(port, "INIT")
        request(port, "launch")
        wait_state(port, "ORBIT")
        request(port, "start", "run1")
        wait_state(port, "RUN")
        # the pipe is full (the satellite logs a line a millisecond, and none gets in): writes block
        held = wait_until(full_pipe(err), timeout=30)
        # the satellite still answers, changes state (the FSM logs on the event loop) and beats
        assert request(port, "get_state").verb == "RUN"
        request(port, "stop")
        wait_state(port, "ORBIT", timeout=5)
        request(port, "land")
        wait_state(port, "INIT", timeout=5)
        while hb.poll(0):  # heartbeats from before the pipe was full
            hb.recv_multipart()
        beats = 0
        while beats < 2:  # two fresh heartbeats (the interval is at most a few seconds)
            assert hb.poll(10_000), "no heartbeat while stderr is not read"
            hb.recv_multipart()
            beats += 1
        assert pipe_bytes(err) >= held  # all of it while nobody read
        # the terminal reads again: the lines flow, with a count of those that did not fit
        os.set_blocking(err, False)
        seen = bytearray()

        def drained_to(text: bytes) -> bool:
            try:
                while chunk := os.read(err, 1 << 16):
                    seen.extend(chunk)
            except BlockingIOError:
                pass
            return text in seen

        request(port, "initialize", {})  # a fresh line after the stall
        wait_until(lambda: drained_to(b"") and seen.count(b"(initializing -> INIT)") == 2, timeout=20)
        beeps = [int(x.rsplit(b" ", 1)[1]) for x in seen.splitlines() if b"[SPUTNIK] beep " in x]
        assert beeps == list(range(1, len(beeps) + 1))  # in order, none lost (the list held them all)
        assert request(port, "shutdown").verb == "Sputnik.Stall queued for reentry"
        wait_until(lambda: drained_to(b"leaving"), timeout=20)
        assert popen.wait(10) == 0
    finally:
        hb.close()
        ctx.destroy(linger=0)
        if popen.poll() is None:
            popen.kill()
            popen.wait(5)


# In-process: a handler on a pipe the test reads, or leaves unread (Linux pipes hold 64 KiB).


def console_logger(stream: io.TextIOWrapper, name: str) -> tuple[ConsoleHandler, logging.Logger]:
    """A `ConsoleHandler` on `stream` (bare messages) and a logger of its own feeding only it."""
    handler = ConsoleHandler(stream)
    handler.setFormatter(ConsoleFormatter("%(message)s"))
    logger = logging.getLogger(f"consolestall.{name}{id(handler)}")
    logger.propagate = False
    logger.setLevel(1)
    logger.addHandler(handler)
    return handler, logger


class Piped:
    """A `ConsoleHandler` on a line-buffered text stream (as sys.stderr is one) over a pipe."""

    def __init__(self, *, nonblocking: bool = False) -> None:
        self.r, self.w = os.pipe()
        if nonblocking:  # another process sharing the terminal set O_NONBLOCK: a full pipe says EAGAIN
            os.set_blocking(self.w, False)
        self.stream = open(self.w, "w", encoding="utf-8", closefd=False)  # noqa: SIM115
        self.stream.reconfigure(line_buffering=True)
        self.handler, self.logger = console_logger(self.stream, "piped")
        self.loop = asyncio.new_event_loop()  # attached and not closed: lines are batched
        self.got = bytearray()
        os.set_blocking(self.r, False)

    def read(self) -> bytes:
        with contextlib.suppress(BlockingIOError):
            while chunk := os.read(self.r, 1 << 16):
                self.got.extend(chunk)
        return bytes(self.got)

    def close(self) -> None:
        self.logger.removeHandler(self.handler)
        with contextlib.suppress(OSError, ValueError):
            self.handler.close()
        with contextlib.suppress(OSError, ValueError):
            self.stream.close()
        self.loop.close()
        os.close(self.w)
        os.close(self.r)


def held_elsewhere(lock: threading.RLock) -> bool:
    if lock.acquire(blocking=False):
        lock.release()
        return False
    return True


def test_logging_shutdown_while_the_writer_waits_for_the_stream_ends_once_it_reads() -> None:
    """`logging.shutdown` (at exit; before `os._exit` in satellite-run) holds the handler's lock while
    it flushes: it waits for the writer's flush, and neither may wait for the other for ever."""
    p = Piped()
    done = threading.Event()
    try:
        p.handler.attach(p.loop)
        for i in range(200):  # 200 KB: the pipe is full, the writer blocks in its flush
            p.logger.warning("%04d %s", i, "z" * 1000)
        wait_until(full_pipe(p.r, 0.3, lambda: p.handler._flushing), timeout=10)

        def shutdown() -> None:
            logging.shutdown([weakref.ref(p.handler)])
            done.set()

        threading.Thread(target=shutdown, daemon=True).start()
        # shutdown is in: holding the lock (waiting for a lock of the writer's) or waiting for the flush
        wait_until(
            lambda: held_elsewhere(p.handler.lock) or p.handler._flushed._waiters,  # type: ignore[arg-type, attr-defined]
            timeout=5,
        )
        assert not done.is_set()
        wait_until(lambda: p.read() and done.is_set(), timeout=10)  # the terminal reads again
        lines = p.read().decode().splitlines()
        assert [int(x.split()[0]) for x in lines] == list(range(200))
    finally:
        if done.is_set():  # else the handler is deadlocked: closing it would hang the test too
            p.close()


def test_a_stream_that_refuses_for_now_loses_no_line() -> None:
    """EAGAIN (a non-blocking descriptor, full): what the stream did not take is written once it
    takes data again, in order, none lost, none torn, none twice."""
    p = Piped(nonblocking=True)
    try:
        p.handler.attach(p.loop)
        n = 200
        for i in range(n):  # 200 KB, well under PENDING_LIMIT: nothing is dropped for want of room
            p.logger.warning("%04d %s", i, "z" * 1000)
        # full: the writer's tries (every MAX_DELAY_S) are refused, lines wait in its list
        wait_until(full_pipe(p.r, 0.3, lambda: p.handler._pending), timeout=10)
        wait_until(lambda: p.read().endswith(b"z\n") and len(p.got) == n * 1006, timeout=10)
        p.logger.warning("after")
        wait_until(lambda: p.read().endswith(b"after\n"), timeout=10)
        lines = p.read().decode().splitlines()
        assert lines == [f"{i:04d} {'z' * 1000}" for i in range(n)] + ["after"]
    finally:
        p.close()


def test_once_lines_are_dropped_later_ones_wait_for_the_note() -> None:
    """A short line finding room in the full list after longer ones were dropped would be written
    before the note about them: out of order. Once dropping, every line is dropped until the writer
    takes the list; the note then stands where the lines went missing."""
    p = Piped()
    try:
        p.handler.attach(p.loop)
        with p.handler.lock:  # type: ignore[union-attr]  # the writer cannot take the list meanwhile
            i = 0
            while not p.handler._dropped:
                p.logger.warning("%05d %s", i, "z" * 1000)
                i += 1
            p.logger.warning("short")
        wait_until(lambda: b"dropped" in p.read(), timeout=10)
        p.logger.warning("after")
        wait_until(lambda: p.read().endswith(b"after\n"), timeout=10)
        lines = p.read().decode().splitlines()
        assert lines[-2] == "(2 log lines dropped: the terminal did not read them in time)"
        assert "short" not in lines
    finally:
        p.close()


class LoggingBuffer(io.BufferedWriter):
    """A buffer whose flush logs a record (as a finalizer or a warning on the flushing thread may)."""

    logger: logging.Logger | None = None

    def flush(self) -> None:
        logger, self.logger = self.logger, None
        if logger is not None:
            logger.warning("from inside the flush")
        super().flush()


def test_a_record_logged_inside_a_flush_waits_for_no_one() -> None:
    """The thread writing a batch logs (a finalizer, a warning): the record must not wait for the
    flush to end, its own. Here `flush` (as `logging.shutdown` calls it), with no loop attached."""
    r, w = os.pipe()
    buffer = LoggingBuffer(io.FileIO(w, "w", closefd=False))
    stream = io.TextIOWrapper(buffer, "utf-8", line_buffering=True)
    handler, logger = console_logger(stream, "inside")
    done = threading.Event()
    try:
        logger.warning("first")
        buffer.logger = logger  # the next flush of the buffer logs

        def flush() -> None:
            handler.flush()
            logger.warning("third")
            done.set()

        threading.Thread(target=flush, daemon=True).start()
        wait_until(done.is_set, timeout=5)
        os.set_blocking(r, False)
        assert os.read(r, 1 << 16).decode().splitlines() == ["first", "from inside the flush", "third"]
    finally:
        if done.is_set():  # else the handler is deadlocked: closing it would hang the test too
            logger.removeHandler(handler)
            handler.close()
            os.close(w)
            os.close(r)


class FullDisk(io.RawIOBase):
    """A file whose disk is full (ENOSPC) until `room` is set, then takes everything."""

    def __init__(self) -> None:
        self.room = False
        self.data = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        if not self.room:
            raise OSError(errno.ENOSPC, "No space left on device")
        self.data.extend(b)
        return len(b)


def test_lines_flow_again_when_a_full_disk_has_room() -> None:
    """stderr redirected to a file on a full disk: what the buffer holds waits in it, the lines beyond
    are refused for good and counted; once the disk has room again (no new line needed) the held lines
    and the note on the others are written, and lines flow as before."""
    disk = FullDisk()
    stream = io.TextIOWrapper(io.BufferedWriter(disk, 8192), "utf-8", line_buffering=True)
    handler, logger = console_logger(stream, "disk")
    loop = asyncio.new_event_loop()
    try:
        handler.attach(loop)
        n = 40  # 40 KB: more than the 8 KiB buffer holds
        for i in range(n):
            logger.warning("refused %02d %s", i, "z" * 1000)
            wait_until(lambda: not handler._pending and not handler._flushing, timeout=5)
        assert handler._dropped
        disk.room = True
        wait_until(lambda: b"dropped" in disk.data, timeout=5 * RETRY_S)  # without a new line
        logger.warning("flowing again")
        wait_until(lambda: disk.data.endswith(b"flowing again\n"), timeout=5)
        *kept, note, last = disk.data.decode().splitlines()
        # what the buffer held when the disk filled comes first, then the count of the rest
        assert [int(line.split()[1]) for line in kept] == list(range(len(kept)))
        assert note == f"({n - len(kept)} log lines dropped: the terminal did not read them in time)"
        assert last == "flowing again"
    finally:
        logger.removeHandler(handler)
        handler.close()
        loop.close()
