"""Real satellites for the autonomy end-to-end tests: ours (`satellite-run Sputnik`) and 1.0.2 Mariners.

Every node runs on a virtual host (`on_host`) or, with ``host=0``, in the test's own namespace; the test
drives it with raw CSCP over a REQ socket (`Node.call`). Waiting is always for a condition with a
deadline: `Node.wait_state` polls `get_state` every 5 ms, which also gives the latency measurements
(a few ms of polling granularity on top of the real latency).
"""

from __future__ import annotations

import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import zmq

from protocols import State, cscp
from tests.harness import Proc, WaitTimeout, free_tcp_port, wait_until

SATELLITE_RUN = str(Path(sys.executable).with_name("satellite-run"))
READY = r"READY (?P<name>\S+) cmd=(?P<cmd>\d+) hb=(?P<hb>\d+) mon=(?P<mon>\d+)"
Spawner = Callable[..., Proc]


def address(host: int) -> str:
    return "127.0.0.1" if host == 0 else f"10.77.0.{host}"


def iface(host: int) -> str:
    return "lo" if host == 0 else "net0"


@dataclass
class Node:
    proc: Proc
    name: str
    host: int
    cmd_port: int
    impl: str  # "ours" or "1.0.2"
    hb_port: int = 0  # ours only (from the READY line)
    ctx: zmq.Context[zmq.Socket[bytes]] = field(default_factory=zmq.Context)
    _req: zmq.Socket[bytes] | None = None

    def call(self, command: str, payload: Any = None, timeout: float = 5.0) -> cscp.Message:
        if self._req is None:
            self._req = self.ctx.socket(zmq.REQ)
            self._req.setsockopt(zmq.LINGER, 0)
            self._req.connect(f"tcp://{address(self.host)}:{self.cmd_port}")
        self._req.send_multipart(cscp.encode(cscp.request("Test.autonomy", command, payload)))
        if not self._req.poll(int(timeout * 1000)):
            self._req.close()
            self._req = None
            raise AssertionError(f"{self.name}: no reply to {command!r} within {timeout}s")
        return cscp.decode(self._req.recv_multipart())

    def ok(self, command: str, payload: Any = None) -> cscp.Message:
        reply = self.call(command, payload)
        assert reply.verb_type is cscp.VerbType.SUCCESS, (self.name, command, reply)
        return reply

    def state(self) -> State:
        return State(self.ok("get_state").payload)

    def status(self) -> str:
        return self.ok("get_status").verb

    def wait_state(self, *states: State, timeout: float = 10.0) -> tuple[State, float]:
        """Poll until the state is one of ``states``; return it and the monotonic time it was seen."""
        seen: list[State] = []

        def reached() -> bool:
            seen.append(self.state())
            return seen[-1] in states

        try:
            wait_until(reached, timeout)
        except WaitTimeout:
            raise AssertionError(
                f"{self.name} still {seen[-1].name} ({self.status()!r}), expected "
                f"{[s.name for s in states]} after {timeout}s\n{self.proc.output_tail(15)}"
            ) from None
        return seen[-1], time.monotonic()

    def degraded(self) -> bool:
        """Ours only: the `degraded` tag of the `get_run_id` reply."""
        return bool(self.ok("get_run_id").tags.get("degraded"))

    def drive(self, *steps: tuple[str, Any, State], timeout: float = 15.0) -> None:
        for command, payload, state in steps:
            self.ok(command, payload)
            self.wait_state(state, timeout=timeout)

    def to_init(self, config: dict[str, Any]) -> None:
        self.drive(("initialize", config, State.INIT))

    def to_orbit(self, config: dict[str, Any]) -> None:
        self.drive(("initialize", config, State.INIT), ("launch", None, State.ORBIT))

    def to_run(self, config: dict[str, Any], run_id: str) -> None:
        self.to_orbit(config)
        self.drive(("start", run_id, State.RUN))

    def log_mark(self) -> int:
        return len(self.proc.lines)

    def wait_log(self, pattern: str, start: int = 0, timeout: float = 10.0) -> str:
        return self.proc.wait_for(pattern, timeout=timeout, start=start).group(0)

    def kill(self) -> float:
        t0 = time.monotonic()
        self.proc.signal(signal.SIGKILL)
        return t0

    def freeze(self) -> float:
        t0 = time.monotonic()
        self.proc.signal(signal.SIGSTOP)
        return t0

    def thaw(self) -> None:
        self.proc.signal(signal.SIGCONT)

    def depart(self) -> float:
        """An orderly exit, which sends CHIRP DEPART: SIGTERM for ours; `shutdown` for 1.0.2 (in NEW,
        INIT, SAFE or ERROR), whose SIGINT handling depends on where its main thread is interrupted."""
        t0 = time.monotonic()
        if self.impl == "ours":
            self.proc.signal(signal.SIGTERM)
        else:
            self.ok("shutdown")
        return t0

    def close(self) -> None:
        self.ctx.destroy(linger=0)


def start_ours(spawn: Spawner, group: str, name: str, host: int = 0, timeout: float = 30.0) -> Node:
    argv = [SATELLITE_RUN, "Sputnik", "-n", name, "-g", group, "-i", iface(host)]
    proc = spawn(*argv, ready=READY, timeout=timeout, host=host or None)
    m = proc.ready  # type: ignore[attr-defined]
    return Node(proc, m["name"], host, int(m["cmd"]), "ours", int(m["hb"]))


def start_mariner(
    spawn: Spawner, cdaq_python: Path, group: str, name: str, host: int = 0, timeout: float = 30.0
) -> Node:
    port = free_tcp_port()
    exe = str(cdaq_python.with_name("SatelliteMariner"))
    argv = [exe, "-g", group, "-n", name, "-i", iface(host), "--cmd-port", str(port), "-l", "INFO"]
    proc = spawn(*argv, host=host or None, env={"COLUMNS": "400"})  # rich wraps log lines otherwise
    node = Node(proc, f"Mariner.{name}", host, port, "1.0.2")
    deadline = time.monotonic() + timeout
    while True:  # no ready line: wait for its command socket to answer
        try:
            node.call("get_name", timeout=1.0)
            return node
        except AssertionError:
            if time.monotonic() > deadline or proc.popen.poll() is not None:
                raise AssertionError(f"{node.name} did not answer: {proc.output_tail()}") from None


def autonomy(role: str, max_hb_s: int | None = 1, flat: bool = False) -> dict[str, Any]:
    """Initialize payload setting the role (sectioned like 1.0.2, or the flat `_role`)."""
    if flat:
        cfg: dict[str, Any] = {"_role": role}
        if max_hb_s is not None:
            cfg["_max_heartbeat_interval"] = max_hb_s
        return cfg
    section: dict[str, Any] = {"role": role}
    if max_hb_s is not None:
        section["max_heartbeat_interval"] = max_hb_s
    return {"_autonomy": section}


def initialize_when_present(node: Node, config: dict[str, Any], timeout: float = 20.0) -> None:
    """`initialize` is refused (INVALID, `... is not present`) until the remotes in its conditions are
    discovered (1.0.2 parity): retry until it is accepted, then wait for INIT."""

    def accepted() -> bool:
        reply = node.call("initialize", config)
        if reply.verb_type is cscp.VerbType.SUCCESS:
            return True
        assert reply.verb_type is cscp.VerbType.INVALID, reply
        assert "not present" in reply.verb, reply
        return False

    try:
        wait_until(accepted, timeout, interval=0.05)
    except WaitTimeout:
        raise AssertionError(
            f"{node.name} does not see the remotes of {config}\n{node.proc.output_tail(60)}"
        ) from None
    node.wait_state(State.INIT)


def wait_watching(observer: Node, *names: str, timeout: float = 20.0) -> None:
    """Wait until ``observer`` (ours) sees every peer in ``names`` as present: probe with a landing
    condition that the test never exercises and leave the observer in INIT."""
    initialize_when_present(observer, {"_conditions": {"require_landing_after": list(names)}}, timeout)
