"""`satellite-run` as a real subprocess on loopback with `--discovery none` (no multicast needed)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import zmq

from protocols import cscp
from tests.harness import Proc, free_tcp_port, spawn_process, wait_until

SATELLITE_RUN = str(Path(sys.executable).parent / "satellite-run")
READY = r"^READY (\S+) cmd=(\d+) hb=(\d+) mon=(\d+)$"
LOCAL = ("--discovery", "none", "--bind", "127.0.0.1")


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([SATELLITE_RUN, *args], capture_output=True, text=True, timeout=30, env=env)


@pytest.fixture
def start() -> Iterator[Callable[..., Proc]]:
    procs: list[Proc] = []

    def go(*args: str) -> Proc:
        proc, match = spawn_process([SATELLITE_RUN, *args], ready=READY, timeout=15)
        proc.ready = match  # type: ignore[attr-defined]
        procs.append(proc)
        return proc

    yield go
    for p in procs:
        p.stop(grace=3.0)


def request(port: int, command: str, payload: object = None) -> cscp.Message:
    ctx = zmq.Context.instance()
    s = ctx.socket(zmq.REQ)
    s.setsockopt(zmq.LINGER, 0)
    s.setsockopt(zmq.RCVTIMEO, 3000)
    s.connect(f"tcp://127.0.0.1:{port}")
    try:
        s.send_multipart(cscp.encode(cscp.request("BaseController.ctl", command, payload)))
        return cscp.decode(s.recv_multipart())
    finally:
        s.close(0)


def wait_state(port: int, state: str, timeout: float = 5.0) -> None:
    wait_until(lambda: request(port, "get_state").verb == state, timeout=timeout)


def test_unknown_type_lists_known_types() -> None:
    res = run("Nope", "-n", "x", "-g", "g")
    assert res.returncode == 2
    assert "unknown satellite type 'Nope'; known types: " in res.stderr
    assert "Sputnik" in res.stderr
    assert res.stderr.startswith("usage: satellite-run")


@pytest.mark.parametrize("name", ["a.b.c", "bad-name", "Sputnik.", ".x", "x y"])
def test_bad_names_are_refused_with_the_rule(name: str) -> None:
    res = run("Sputnik", "-n", name, "-g", "g")
    assert res.returncode == 2
    assert "--name must be a name" in res.stderr, res.stderr


def test_bad_flag_and_missing_group_print_usage() -> None:
    res = run("Sputnik", "-n", "x", "-g", "g", "--bogus")
    assert res.returncode == 2
    assert "usage: satellite-run" in res.stderr
    env = {k: v for k, v in __import__("os").environ.items() if k != "CONSTELLATION_GROUP"}
    res = run("Sputnik", "-n", "x", env=env)
    assert res.returncode == 2
    assert "--group is required" in res.stderr
    res = run("Sputnik", "-n", "x", "-g", "g", "--cmd-port", "99999", *LOCAL)
    assert res.returncode == 2
    assert "cmd-port must be in 0..65535" in res.stderr
    res = run("Sputnik", "-n", "x", "-g", "g", "--discovery", "carrier-pigeon")
    assert res.returncode == 2
    assert "unknown discovery backend" in res.stderr


def test_port_in_use_exits_1() -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        res = run("Sputnik", "-n", "x", "-g", "g", "--cmd-port", str(s.getsockname()[1]), *LOCAL)
    assert res.returncode == 1
    assert "cannot bind cmd port" in res.stderr


def test_ready_line_name_forms_and_group_env(start, monkeypatch) -> None:
    monkeypatch.setenv("CONSTELLATION_GROUP", "envgroup")
    port = free_tcp_port()
    p = start("sputnik", "-n", "First", "--cmd-port", str(port), "-l", "warning", *LOCAL)
    assert p.ready.group(1) == "Sputnik.First"
    assert int(p.ready.group(2)) == port
    assert request(port, "get_name").verb == "Sputnik.First"
    q = start("Sputnik", "--name", "Other.Second", *LOCAL)
    assert q.ready.group(1) == "Other.Second"
    assert request(int(q.ready.group(2)), "get_name").verb == "Other.Second"


def test_cycle_and_shutdown_exit_cleanly(start) -> None:
    p = start("Sputnik", "-n", "Cyc", "-g", "g", *LOCAL)
    port = int(p.ready.group(2))
    assert request(port, "initialize", {"channels": 2}).verb == "transitioning"
    wait_state(port, "INIT")
    assert request(port, "set_channel", [1, 0.5]).payload == {"channel": 1, "value": 0.5}
    assert request(port, "get_channels").payload == [0.0, 0.5]
    for cmd, payload, state in (("launch", None, "ORBIT"), ("start", "r1", "RUN"), ("stop", None, "ORBIT"),
                                ("land", None, "INIT")):  # fmt: skip
        assert request(port, cmd, payload).verb == "transitioning"
        wait_state(port, state)
    rep = request(port, "shutdown")
    assert rep.verb == "Sputnik.Cyc queued for reentry"
    assert p.wait(5) == 0


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signals_exit_cleanly(start, sig: int) -> None:
    p = start("Sputnik", "-n", "Sig", "-g", "g", *LOCAL)
    port = int(p.ready.group(2))
    request(port, "initialize", {})
    wait_state(port, "INIT")
    request(port, "launch")
    wait_state(port, "ORBIT")
    request(port, "start", "r1")
    wait_state(port, "RUN")  # a running do_run thread must not keep the process alive
    t0 = time.monotonic()
    p.signal(sig)
    assert p.wait(5) == 0
    assert time.monotonic() - t0 < 3.0


SERVE_REPORTS_SWITCH_INTERVAL = """
import sys
from constellation import cli

async def serve(settings, cls=None, **kw):
    print("SWITCH", sys.getswitchinterval(), flush=True)
    return 0

cli.serve = serve
sys.exit(cli.main(["Sputnik", "-n", "Sw", "-g", "g", "--discovery", "none", "--bind", "127.0.0.1"]))
"""


def test_satellite_run_shortens_the_switch_interval_before_serving() -> None:
    """A hook that keeps the GIL made each of the event loop's system calls wait a 5 ms switch interval:
    replies took 34-80 ms while a hook spun from the first reply on; 7-16 ms at 1 ms
    (tests/interop/test_issue3_log_burst.py). A process of our own: `Satellite` leaves it alone."""
    from constellation.cli import SWITCH_INTERVAL_S

    out = subprocess.run(
        [sys.executable, "-c", SERVE_REPORTS_SWITCH_INTERVAL], capture_output=True, text=True, timeout=30
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["SWITCH", str(SWITCH_INTERVAL_S)]
    assert sys.getswitchinterval() > SWITCH_INTERVAL_S  # this process (pytest, Satellites in it): untouched
