"""Shared helpers of the issue-3 interop and fuzz tests: start our satellite, talk raw CSCP/CHP to it.

Everything is loopback-only and bounded by deadlines. A REQ socket that got no reply is closed and a
fresh one is used for the next request (ZeroMQ's REQ is stuck otherwise).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import zmq

from protocols import State, chirp, chp, cscp
from protocols.chirp import MessageType, ServiceId
from tests.harness import Proc, WaitTimeout, loopback_chirp_socket, wait_until

SATELLITE_RUN = str(Path(sys.executable).with_name("satellite-run"))
READY = r"READY (?P<name>\S+) cmd=(?P<cmd>\d+) hb=(?P<hb>\d+) mon=(?P<mon>\d+)"
LOOPBACK = "127.0.0.1"


@dataclass
class Sat:
    """A running satellite of ours and its ports."""

    proc: Proc
    name: str
    cmd: int
    hb: int
    mon: int
    group: str = ""


def start_sputnik(
    spawn: Callable[..., Proc], group: str, name: str = "One", *extra: str, timeout: float = 30.0
) -> Sat:
    """``satellite-run Sputnik -n NAME -g GROUP -i lo`` (plus ``extra``); waits for the READY line."""
    proc = spawn(
        SATELLITE_RUN, "Sputnik", "-n", name, "-g", group, "-i", "lo", *extra, ready=READY, timeout=timeout
    )
    m = proc.ready  # type: ignore[attr-defined]
    return Sat(proc, m["name"], int(m["cmd"]), int(m["hb"]), int(m["mon"]), group)


def spawn_mariner(spawn: Callable[..., Proc], cdaq_python: Path, name: str) -> dict[str, int]:
    """A stock 1.0.2 ``SatelliteMariner -n NAME`` on loopback, in a group of its own, on known ports
    (``cmd``, ``hb``, ``mon``); not waited for: it answers once its ports are up."""
    from tests.harness import free_tcp_port, unique_group

    ports = {k: free_tcp_port() for k in ("cmd", "hb", "mon")}
    spawn(
        str(cdaq_python.with_name("SatelliteMariner")), "-g", unique_group(), "-n", name, "-i", "lo",
        "--cmd-port", str(ports["cmd"]), "--hb-port", str(ports["hb"]), "--mon-port", str(ports["mon"]),
    )  # fmt: skip
    return ports


class Client:
    """Raw CSCP requests over REQ sockets (a fresh socket after any timeout)."""

    def __init__(self, port: int, sender: str = "Test.client") -> None:
        self.ctx = zmq.Context()
        self.port = port
        self.sender = sender
        self._req: zmq.Socket[bytes] | None = None

    def _socket(self) -> zmq.Socket[bytes]:
        if self._req is None:
            self._req = self.ctx.socket(zmq.REQ)
            self._req.setsockopt(zmq.LINGER, 0)
            self._req.connect(f"tcp://{LOOPBACK}:{self.port}")
        return self._req

    def raw(self, frames: list[bytes], timeout: float = 5.0) -> list[bytes] | None:
        """Send raw frames; the reply frames, or None (and the REQ is recreated) after ``timeout``."""
        sock = self._socket()
        sock.send_multipart(frames)
        if sock.poll(int(timeout * 1000)):
            return sock.recv_multipart()
        sock.close()
        self._req = None
        return None

    def call(self, command: str, payload: Any = None, timeout: float = 5.0) -> cscp.Message:
        frames = self.raw(cscp.encode(cscp.request(self.sender, command, payload)), timeout)
        if frames is None:
            raise AssertionError(f"no reply to {command!r} within {timeout}s")
        return cscp.decode(frames)

    def state(self, timeout: float = 5.0) -> State:
        reply = self.call("get_state", timeout=timeout)
        assert reply.verb_type is cscp.VerbType.SUCCESS, reply
        return State(reply.payload)

    def wait_state(self, state: State, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while (now := self.state()) is not state:
            assert time.monotonic() < deadline, f"still {now.name}, expected {state.name} after {timeout}s"
            time.sleep(0.01)

    def close(self) -> None:
        self.ctx.destroy(linger=0)


class HeartbeatSub:
    """A SUB socket on a heartbeat XPUB (empty topic, as 1.0.2 requires)."""

    def __init__(self, port: int) -> None:
        self.ctx = zmq.Context()
        self.sub = self.ctx.socket(zmq.SUB)
        self.sub.setsockopt(zmq.LINGER, 0)
        self.sub.setsockopt(zmq.SUBSCRIBE, b"")
        self.sub.connect(f"tcp://{LOOPBACK}:{port}")

    def next(self, timeout: float = 5.0) -> chp.Heartbeat:
        assert self.sub.poll(int(timeout * 1000)), f"no heartbeat within {timeout}s"
        return chp.decode(self.sub.recv_multipart())

    def wait(self, predicate: Callable[[chp.Heartbeat], bool], timeout: float = 10.0) -> chp.Heartbeat:
        deadline = time.monotonic() + timeout
        last = None
        while True:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"no matching heartbeat within {timeout}s (last {last})"
            last = self.next(remaining)
            if predicate(last):
                return last

    def close(self) -> None:
        self.ctx.destroy(linger=0)


def json_lines(proc: Proc) -> list[dict[str, Any]]:
    """The JSON objects a driver script printed so far (other lines ignored)."""
    out = []
    for line in list(proc.lines):
        if line.startswith("{"):
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return out


def run_json_script(argv: list[str], timeout: float) -> tuple[int, list[dict[str, Any]], str]:
    """Run a driver script to completion under a deadline; (exit code, JSON lines, stderr)."""
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    lines = []
    for line in proc.stdout.splitlines():
        if line.startswith("{"):
            lines.append(json.loads(line))
    return proc.returncode, lines, proc.stderr


def wait_json(proc: Proc, predicate: Callable[[dict[str, Any]], bool], timeout: float) -> dict[str, Any]:
    """Wait for a JSON line of ``proc`` matching ``predicate``; return it."""

    def found() -> dict[str, Any] | None:
        return next((obj for obj in json_lines(proc) if predicate(obj)), None)

    try:
        return wait_until(found, timeout=timeout, interval=0.02)
    except WaitTimeout:
        raise AssertionError(
            f"no matching JSON line within {timeout}s; output:\n{proc.output_tail(60)}"
        ) from None


class Chirper:
    """Sends datagrams to the CHIRP group over loopback and watches the OFFERs of one host."""

    def __init__(self, group: str) -> None:
        self.group_id = chirp.group_id(group)
        self.me = chirp.host_id("Fuzz.chirper")
        self.sock = loopback_chirp_socket()

    def send(self, data: bytes) -> None:
        self.sock.sendto(data, (chirp.MULTICAST_ADDRESS, chirp.PORT))

    def beacon(
        self, mtype: MessageType, service: ServiceId, port: int = 0, host: bytes | None = None
    ) -> bytes:
        return chirp.encode(chirp.Beacon(mtype, self.group_id, host or self.me, service, port))

    def request_offer(self, host: bytes, service: ServiceId, timeout: float = 3.0) -> tuple[int, float]:
        """Send a REQUEST for ``service``; (port, seconds) of the OFFER ``host`` answers with."""
        self.sock.setblocking(False)
        try:
            while True:
                self.sock.recv(2048)
        except BlockingIOError:
            pass
        t = time.monotonic()
        self.send(self.beacon(MessageType.REQUEST, service))
        deadline = t + timeout
        while (remaining := deadline - time.monotonic()) > 0:
            self.sock.settimeout(remaining)
            try:
                data = self.sock.recv(2048)
            except TimeoutError:
                break
            try:
                b = chirp.decode(data)
            except ValueError:
                continue
            if b.type is MessageType.OFFER and b.host_id == host and b.service is service:
                return b.port, time.monotonic() - t
        raise AssertionError(f"no OFFER {service.name} within {timeout}s: CHIRP is not answering")

    def close(self) -> None:
        self.sock.close()
