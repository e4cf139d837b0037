"""Fleet of real satellite processes for the autonomy benchmark: start, drive, watch, signal, stop.

- ``Fleet`` starts ``satellite-run Sputnik`` (ours) or the real 1.0.2 ``SatelliteMariner`` (oracle venv)
  with fixed ports, optionally on a virtual host (``netns-exec K``), output to a log file per process.
- ``request()`` is one raw CSCP request on a fresh REQ socket with a deadline (works for both).
- ``drive_to_orbit()`` brings any set of satellites to ORBIT from wherever they are (land / initialize /
  launch as needed), polling ``get_state``, bounded in time.
- ``HeartbeatTap`` is one passive SUB (empty topic) connected to every satellite's heartbeat XPUB, owned
  by one thread; it stamps every CHP message on arrival (local monotonic clock).
"""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import zmq

from protocols import DecodeError, State, chp, cscp
from tests.harness import oracle_python

VENV_BIN = Path(sys.executable).parent


class FleetError(RuntimeError):
    """A satellite did not start, answer or reach the wanted state in time."""


@dataclass
class Sat:
    name: str  # canonical
    impl: str  # "ours" | "cdaq"
    popen: subprocess.Popen[bytes]
    addr: str
    cmd: int
    hb: int
    mon: int
    host: int | None
    log: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def cmd_ep(self) -> str:
        return f"tcp://{self.addr}:{self.cmd}"

    @property
    def hb_ep(self) -> str:
        return f"tcp://{self.addr}:{self.hb}"

    def alive(self) -> bool:
        return self.popen.poll() is None

    def tail(self, n: int = 1500) -> str:
        try:
            return self.log.read_text(errors="replace")[-n:]
        except OSError:
            return ""


_next_port = 10000


def _port() -> int:
    """A port below the ephemeral range (32768-60999), never handed out twice in this run, free here.

    A random free port (bind to 0) is an ephemeral port: with thousands of peer connections in one
    namespace an outgoing connection can take it before the satellite binds it (seen with 48 Mariners),
    and a victim killed behind a cut link leaves FIN_WAIT sockets on its ports.
    """
    global _next_port
    while _next_port < 32000:
        _next_port += 1
        with socket.socket() as s:
            try:
                s.bind(("0.0.0.0", _next_port))
            except OSError:
                continue
            return _next_port
    raise FleetError("no port left below 32000")


def request(ep: str, command: str, payload: Any = None, timeout: float = 5.0) -> cscp.Message:
    """One request on a fresh REQ socket; FleetError on timeout."""
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context.instance()
    sock = ctx.socket(zmq.REQ)
    sock.setsockopt(zmq.LINGER, 0)
    try:
        sock.connect(ep)
        sock.send_multipart(cscp.encode(cscp.request("Bench.ctl", command, payload)))
        if not sock.poll(int(timeout * 1000)):
            raise FleetError(f"{ep}: no reply to {command} within {timeout}s")
        return cscp.decode(sock.recv_multipart())
    finally:
        sock.close(0)


def state_of(sat: Sat, timeout: float = 5.0) -> State:
    reply = request(sat.cmd_ep, "get_state", timeout=timeout)
    return State(int(reply.payload))


class Fleet:
    """Satellite processes of one implementation in one group; ``close()`` kills what is left."""

    def __init__(self, impl: str, group: str, workdir: Path, level: str = "WARNING") -> None:
        self.impl, self.group, self.workdir, self.level = impl, group, workdir, level
        self.sats: dict[str, Sat] = {}
        self.pool = ThreadPoolExecutor(32, thread_name_prefix="fleet")

    def _argv(self, name: str, iface: str, ports: tuple[int, int, int]) -> tuple[str, list[str]]:
        cmd, hb, mon = (str(p) for p in ports)
        if self.impl == "ours":
            argv = [str(VENV_BIN / "satellite-run"), "Sputnik", "-n", name, "-g", self.group, "-i", iface,
                    "--cmd-port", cmd, "--hb-port", hb, "--mon-port", mon, "-l", self.level,
                    "--discovery", "chirp"]  # fmt: skip
            return f"Sputnik.{name}", argv
        mariner = str(oracle_python().with_name("SatelliteMariner"))
        argv = [mariner, "-n", name, "-g", self.group, "-i", iface, "--cmd-port", cmd, "--hb-port", hb,
                "--mon-port", mon, "-l", self.level]  # fmt: skip
        return f"Mariner.{name}", argv

    def spawn(self, name: str, iface: str = "lo", host: int | None = None) -> Sat:
        ports = (_port(), _port(), _port())
        canonical, argv = self._argv(name, iface, ports)
        if host is not None:
            argv = [os.environ["NETNS_EXEC"], str(host), *argv]
        log = self.workdir / f"{canonical}.log"
        with log.open("wb") as out:
            popen = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        addr = "127.0.0.1" if host is None else f"10.77.0.{host}"
        sat = Sat(canonical, self.impl, popen, addr, *ports, host=host, log=log)
        self.sats[canonical] = sat
        return sat

    def wait_ready(self, sats: Iterable[Sat], timeout: float = 60.0) -> None:
        """Until every satellite answers get_state (in parallel)."""
        deadline = time.monotonic() + timeout

        def one(sat: Sat) -> None:
            while True:
                if not sat.alive():
                    raise FleetError(f"{sat.name} exited with {sat.popen.returncode}:\n{sat.tail()}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise FleetError(f"{sat.name} not answering after {timeout}s:\n{sat.tail()}")
                with contextlib.suppress(FleetError):
                    state_of(sat, timeout=min(2.0, left))
                    return

        for fut in [self.pool.submit(one, s) for s in sats]:
            fut.result()

    def start(
        self, names: Sequence[str], iface: str = "lo", batch: int = 8, timeout: float = 60.0
    ) -> list[Sat]:
        """Start in batches (a 2-core machine: imports are CPU-bound) and wait until all answer."""
        started: list[Sat] = []
        for i in range(0, len(names), batch):
            chunk = [self.spawn(n, iface) for n in names[i : i + batch]]
            self.wait_ready(chunk, timeout)
            started += chunk
        return started

    def kill(self, sat: Sat) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(sat.pid, signal.SIGKILL)
            os.killpg(sat.pid, signal.SIGCONT)
        with contextlib.suppress(subprocess.TimeoutExpired):
            sat.popen.wait(10)
        self.sats.pop(sat.name, None)

    def close(self) -> None:
        for sat in list(self.sats.values()):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(sat.pid, signal.SIGTERM)
        deadline = time.monotonic() + 5
        for sat in list(self.sats.values()):
            with contextlib.suppress(subprocess.TimeoutExpired):
                sat.popen.wait(max(0.1, deadline - time.monotonic()))
            self.kill(sat)
        self.pool.shutdown(wait=False, cancel_futures=True)

    def resources(self) -> tuple[float, int]:
        """(RSS sum in MiB, OS thread sum) over every live satellite and its children."""
        rss, threads = 0, 0
        for sat in self.sats.values():
            with contextlib.suppress(psutil.Error):
                proc = psutil.Process(sat.pid)
                for p in [proc, *proc.children(recursive=True)]:
                    with contextlib.suppress(psutil.Error):
                        rss += p.memory_info().rss
                        threads += p.num_threads()
        return rss / 2**20, threads

    def drive_to_orbit(
        self, sats: Sequence[Sat], config_for: Callable[[Sat], dict[str, Any]], timeout: float = 120.0
    ) -> None:
        """Every satellite to ORBIT from any state (in parallel): stop from RUN, initialize from NEW, SAFE
        or ERROR, launch from INIT; transitional states are waited out. FleetError after ``timeout``."""
        deadline = time.monotonic() + timeout

        def one(sat: Sat) -> None:
            sent: State | None = None
            while True:
                if time.monotonic() > deadline:
                    raise FleetError(f"{sat.name} not in ORBIT after {timeout}s (last {sent}):\n{sat.tail()}")
                if not sat.alive():
                    raise FleetError(f"{sat.name} exited:\n{sat.tail()}")
                try:
                    st = state_of(sat)
                except FleetError:
                    continue
                if st is State.ORBIT:
                    return
                if st is State.RUN:
                    cmd, payload = "stop", None
                elif st in (State.NEW, State.SAFE, State.ERROR):
                    cmd, payload = "initialize", config_for(sat)
                elif st is State.INIT:
                    cmd, payload = "launch", None
                else:
                    time.sleep(0.05)
                    continue
                reply = request(sat.cmd_ep, cmd, payload, timeout=10)
                if reply.verb_type is not cscp.VerbType.SUCCESS:
                    raise FleetError(f"{sat.name}: {cmd} -> {reply.verb_type.name} {reply.verb}")
                sent = st
                time.sleep(0.05)

        for fut in [self.pool.submit(one, s) for s in sats]:
            fut.result()


@dataclass
class Beat:
    t: float  # local monotonic receive time
    state: State
    interval_ms: int
    extra: bool


@dataclass
class HeartbeatTap:
    """One passive SUB on every satellite's heartbeats, in its own thread."""

    beats: dict[str, list[Beat]] = field(default_factory=lambda: defaultdict(list))
    malformed: int = 0

    def __post_init__(self) -> None:
        self._todo: queue.SimpleQueue[tuple[str, str]] = queue.SimpleQueue()
        self._cv = threading.Condition()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="hb-tap", daemon=True)
        self._thread.start()

    def connect(self, ep: str) -> None:
        self._todo.put(("connect", ep))

    def disconnect(self, ep: str) -> None:
        self._todo.put(("disconnect", ep))

    def _run(self) -> None:
        ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context.instance()
        sock = ctx.socket(zmq.SUB)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.RCVHWM, 0)
        sock.setsockopt(zmq.SUBSCRIBE, b"")
        try:
            while not self._stop.is_set():
                while not self._todo.empty():
                    op, ep = self._todo.get()
                    with contextlib.suppress(zmq.ZMQError):
                        getattr(sock, op)(ep)
                if not sock.poll(20):
                    continue
                while True:
                    try:
                        frames = sock.recv_multipart(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    t = time.monotonic()
                    try:
                        hb = chp.decode(frames)
                    except DecodeError:
                        self.malformed += 1
                        continue
                    with self._cv:
                        self.beats[hb.sender].append(Beat(t, hb.state, hb.interval_ms, hb.is_extrasystole))
                        self._cv.notify_all()
        finally:
            sock.close(0)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def snapshot(self, name: str) -> list[Beat]:
        with self._cv:
            return list(self.beats.get(name, ()))

    def wait(self, predicate: Callable[[], bool], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._cv:
            while not predicate():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cv.wait(min(left, 0.1))
            return True

    def first(self, name: str, states: set[State], after: float) -> float | None:
        """Receive time of the first beat of ``name`` at or after ``after`` in one of ``states``."""
        for b in self.beats.get(name, ()):
            if b.t >= after and b.state in states:
                return b.t
        return None

    def count(self, names: Iterable[str], t0: float, t1: float) -> dict[str, int]:
        with self._cv:
            return {n: sum(1 for b in self.beats.get(n, ()) if t0 <= b.t < t1) for n in names}


def make_workdir() -> Path:
    return Path(tempfile.mkdtemp(prefix="autonomy-bench-"))
