"""`satellite-run`'s terminal log lines on every way out, and with a stderr that is closed or broken.

Real subprocesses on loopback with `--discovery none` (no multicast).
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.harness import Proc, spawn_process
from tests.runtime.test_cli import READY, request, wait_state

pytestmark = pytest.mark.timeout(60)

SATELLITE_RUN = str(Path(sys.executable).parent / "satellite-run")
LOCAL = ("--discovery", "none", "--bind", "127.0.0.1")


def start(*args: str, argv: tuple[str, ...] = (SATELLITE_RUN,), unbuffered: bool = True) -> tuple[Proc, int]:
    # PYTHONUNBUFFERED: stderr has no buffer of its own, the handler batches in one of its own
    env = {"PYTHONUNBUFFERED": "1" if unbuffered else ""}
    proc, match = spawn_process([*argv, *args], ready=READY, timeout=15, env=env)
    assert match is not None
    return proc, int(match.group(2))


def log_lines(proc: Proc) -> list[str]:
    return [line.split(" ", 2)[2] for line in proc.lines if " [" in line]


@pytest.mark.parametrize("stderr", ["buffered", "unbuffered"])
@pytest.mark.parametrize("way", ["shutdown", "SIGTERM", "SIGINT", "SIGTERM in RUN (os._exit)"])
def test_the_last_lines_are_out_on_every_way_out(way: str, stderr: str) -> None:
    proc, port = start(
        "Sputnik", "-n", "Out", "-g", "g", "-l", "DEBUG", *LOCAL, unbuffered=stderr == "unbuffered"
    )
    try:
        if way == "shutdown":
            assert request(port, "shutdown").verb == "Sputnik.Out queued for reentry"
        else:
            if "RUN" in way:  # a do_run thread still alive at the end: main leaves through os._exit
                for cmd, payload, state in (("initialize", {}, "INIT"), ("launch", None, "ORBIT"),
                                            ("start", "r1", "RUN")):  # fmt: skip
                    request(port, cmd, payload)
                    wait_state(port, state)
            proc.signal(signal.SIGINT if way == "SIGINT" else signal.SIGTERM)
        assert proc.wait(10) == 0
    finally:
        proc.stop()
    lines = log_lines(proc)
    assert lines[0] == "INFO [CTRL] Satellite Sputnik.Out, version 1.0.2 ready to launch!", proc.output
    assert lines[-1] == "INFO [CTRL] Satellite Sputnik.Out leaving", proc.output


def test_stderr_closed_from_the_start() -> None:
    # `satellite-run ... 2>&-`: Python sets sys.stderr to None; the satellite runs without its log lines
    closed = ("sh", "-c", 'exec "$0" "$@" 2>&-', SATELLITE_RUN)
    proc, port = start("Sputnik", "-n", "Mute", "-g", "g", *LOCAL, argv=closed)
    try:
        assert request(port, "get_name").verb == "Sputnik.Mute"
        assert request(port, "shutdown").verb == "Sputnik.Mute queued for reentry"
        assert proc.wait(10) == 0
    finally:
        proc.stop()
    assert log_lines(proc) == []


def test_stderr_pipe_whose_reader_went_away() -> None:
    # `satellite-run ... 2>&1 | head -1`-like: every write to stderr fails with EPIPE
    popen = subprocess.Popen(
        [SATELLITE_RUN, "Sputnik", "-n", "Deaf", "-g", "g", *LOCAL],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert popen.stderr is not None
        assert popen.stdout is not None
        popen.stderr.close()
        ready = popen.stdout.readline()  # bounded by the test's timeout
        assert ready.startswith("READY Sputnik.Deaf "), ready
        port = int(ready.split("cmd=")[1].split()[0])
        request(port, "initialize", {})
        wait_state(port, "INIT")  # the runtime carries on: a logging call raised nothing into it
        assert request(port, "shutdown").verb == "Sputnik.Deaf queued for reentry"
        # 120: Python could not flush stderr at exit (as with a plain StreamHandler); never a traceback
        # out of serve, never a hang
        assert popen.wait(10) in (0, 120)
    finally:
        if popen.poll() is None:
            popen.kill()
            popen.wait(5)
