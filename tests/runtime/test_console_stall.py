"""A terminal that stops reading (Ctrl-S, `satellite-run ... 2>&1 | less` left unscrolled, a full pipe)
must not stop the satellite: it keeps answering, beating and changing state, its log lines wait in a
bounded list (what does not fit is dropped and counted: tests/runtime/test_consolelog.py), and
everything flows again once the terminal reads.

Real subprocesses on loopback with `--discovery none` (no multicast); stderr is a pipe the test leaves
unread until it is full.
"""

from __future__ import annotations

import fcntl
import os
import struct
import subprocess
import termios
import time
from collections.abc import Callable

import pytest
import zmq

from tests.harness import wait_until
from tests.runtime.test_cli import request, wait_state
from tests.runtime.test_console_exit import LOCAL, SATELLITE_RUN

pytestmark = pytest.mark.timeout(90)


def pipe_bytes(fd: int) -> int:
    """Bytes waiting in a pipe (FIONREAD)."""
    return int(struct.unpack("i", fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0"))[0])


def full_pipe(fd: int) -> Callable[[], bool]:
    """A condition: the pipe holds all but its last page or less and has not taken a byte for a second."""
    last = [-1, 0.0]

    def full() -> bool:
        now, size = time.monotonic(), pipe_bytes(fd)
        if size != last[0]:
            last[:] = [size, now]
        return size >= 61_440 and now - last[1] >= 1.0

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
        # the pipe is full (64 KiB, less what partly filled pages leave): writes block now
        wait_until(full_pipe(err), timeout=30)
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
        assert pipe_bytes(err) >= 61_440  # all of it while nobody read
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
