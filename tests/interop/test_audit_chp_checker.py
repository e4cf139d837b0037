"""Audit: how a real 1.0.2 ``HeartbeatChecker`` (the class its controller and satellites use) judges
our heartbeats over a subscriber drop, a state storm and an idle period (wire doc §4.4).

The checker runs in the oracle venv (``CHECKER`` below, started with ``-c``); it prints one JSON line per
missed beat (its own "Missed heartbeat" log record), per state change it derives and per interrupt it
would raise.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import zmq

from protocols import State, chp
from tests.fuzz.support import Client, HeartbeatSub, json_lines, start_sputnik, wait_json

pytestmark = [pytest.mark.netns, pytest.mark.interop, pytest.mark.timeout(150)]

CHECKER = r"""
import json, logging, sys, threading, uuid
from constellation.core.heartbeatchecker import HeartbeatChecker

def emit(**o):
    print(json.dumps(o, default=str), flush=True)

class Missed(logging.Handler):
    def emit(self, record):
        msg = record.getMessage()
        if msg.startswith("Missed heartbeat") or msg.startswith("No signs of life"):
            emit(event="missed", msg=msg)

class Checker(HeartbeatChecker):
    def _on_state_change(self, name, old, new):
        emit(event="state", name=name, old=old.name, new=new.name)
    def _heartbeat_interrupt(self, reason):
        emit(event="interrupt", reason=reason)

c = Checker(name="audit")
c.log_chp.addHandler(Missed())
c.register_heartbeat_host(uuid.uuid4(), sys.argv[1])
c._add_com_thread()
c._start_com_threads()
emit(event="ready")
threading.Event().wait()  # until the test stops the process
"""


def test_cdaq_checker_never_misses_our_beats(cdaq_python: Path, spawn, group: str) -> None:
    sat = start_sputnik(spawn, group, "One")
    checker = spawn(str(cdaq_python), "-c", CHECKER, f"tcp://127.0.0.1:{sat.hb}", ready=r'"event": "ready"')
    ours = Client(sat.cmd)
    watch = HeartbeatSub(sat.hb)
    ctx = zmq.Context()
    extra = []
    try:
        wait_json(checker, lambda o: o.get("event") == "state" and o.get("new") == "NEW", timeout=10)
        for _ in range(8):  # with the checker and `watch`: 10 subscribers, 4500 ms
            s = ctx.socket(zmq.SUB)
            s.setsockopt(zmq.LINGER, 0)
            s.setsockopt(zmq.SUBSCRIBE, b"")
            s.connect(f"tcp://127.0.0.1:{sat.hb}")
            extra.append(s)
        watch.wait(lambda hb: hb.interval_ms == chp.heartbeat_interval_ms(10) and not hb.is_extrasystole)
        for s in extra:
            s.close(0)
        # state storm right after the drop: the extrasystoles announce 1500 ms
        for command, payload, state in [
            ("initialize", {}, State.INIT),
            ("launch", None, State.ORBIT),
            ("land", None, State.INIT),
            ("launch", None, State.ORBIT),
            ("start", "r1", State.RUN),
            ("stop", None, State.ORBIT),
        ]:
            assert ours.call(command, payload).verb == "transitioning"
            ours.wait_state(state)
        # idle: two subscribers, 1500 ms beats; 12 s is 8 intervals
        idle_end = time.monotonic() + 12.0
        while time.monotonic() < idle_end:
            watch.next(6.0)  # the 1.0.2 checker judges the gaps
        missed = [o for o in json_lines(checker) if o.get("event") in ("missed", "interrupt")]
        assert not missed, missed
        states = [o["new"] for o in json_lines(checker) if o.get("event") == "state"]
        assert "DEAD" not in states, states
        assert states[-1] == "ORBIT", states
    finally:
        ctx.destroy(linger=0)
        ours.close()
        watch.sub.close(0)


N_FLOOD = 2_000_000


def test_cdaq_checker_never_misses_our_beats_during_a_log_flood(cdaq_python: Path, spawn, group: str) -> None:
    """A hook logging as fast as it can, with a subscriber on its records (the satellite's event loop
    busy sending them): the 1.0.2 checker, at our 500 ms interval (750 ms until a life is lost), must not
    miss a beat. Uses the benchmark satellite's ``burst`` command (tests/interop/test_issue3_log_burst.py)."""
    import sys

    from protocols import cscp
    from tests.fuzz.support import READY
    from tests.interop.test_issue3_log_burst import BENCH_SATELLITE

    sat = spawn(
        sys.executable, str(BENCH_SATELLITE), "-n", "Flood", "-g", group, "-i", "lo", "-l", "WARNING",
        "--discovery", "chirp", ready=READY, timeout=30,
    )  # fmt: skip
    cmd, hb, mon = (int(sat.ready[k]) for k in ("cmd", "hb", "mon"))
    checker = spawn(str(cdaq_python), "-c", CHECKER, f"tcp://127.0.0.1:{hb}", ready=r'"event": "ready"')
    wait_json(checker, lambda o: o.get("event") == "state" and o.get("new") == "NEW", timeout=10)
    ctx = zmq.Context()
    client = Client(cmd)
    try:
        logs = ctx.socket(zmq.SUB)
        logs.setsockopt(zmq.LINGER, 0)
        logs.setsockopt(zmq.SUBSCRIBE, b"LOG/INFO")
        logs.connect(f"tcp://127.0.0.1:{mon}")
        deadline = time.monotonic() + 10
        while True:  # the subscription reaches the publisher asynchronously
            assert client.call("burst", [1, "INFO"]).verb_type is cscp.VerbType.SUCCESS
            if logs.poll(200):
                break
            assert time.monotonic() < deadline, "log subscription never became active"
        flood = ctx.socket(zmq.REQ)
        flood.setsockopt(zmq.LINGER, 0)
        flood.connect(f"tcp://127.0.0.1:{cmd}")
        t0 = time.monotonic()
        flood.send_multipart(cscp.encode(cscp.request("Test.flood", "burst", [N_FLOOD, "INFO"])))
        assert flood.poll(90_000), "the flood never ended"
        assert cscp.decode(flood.recv_multipart()).verb_type is cscp.VerbType.SUCCESS
        took = time.monotonic() - t0
        assert took > 3.0, f"flood over after {took:.1f} s: too short to tell"
        missed = [o for o in json_lines(checker) if o.get("event") in ("missed", "interrupt")]
        assert not missed, missed
        states = [o["new"] for o in json_lines(checker) if o.get("event") == "state"]
        assert states == ["NEW"], states
    finally:
        client.close()
        ctx.destroy(linger=0)
