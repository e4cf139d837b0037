"""Issue 3, done-when 2: a real 1.0.2 satellite and the 1.0.2 Monitor receive our heartbeats and logs.

- A 1.0.2 ``Mariner`` in the same group subscribes to our HEARTBEAT offer (our announced interval grows
  to the two-subscriber value) and reacts to what our heartbeats say: when our DYNAMIC satellite goes to
  ERROR, the launched Mariner interrupts itself and ends in SAFE, as it does for a 1.0.2 peer (§4.5).
- The 1.0.2 ``Monitor`` classes (``oracle_scripts/listen_monitor.py``) discover our MONITORING offer and
  receive our log records, our metrics (the 1.0.2 defaults and Sputnik's own) and the ``LOG?``/``STAT?``
  notifications.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from protocols import HeartbeatFlags, State, chp
from tests.fuzz.support import Client, HeartbeatSub, json_lines, start_sputnik, wait_json
from tests.harness import free_tcp_port, holds_for
from tests.interop.oracle_scripts import SCRIPTS

pytestmark = [pytest.mark.netns, pytest.mark.interop, pytest.mark.timeout(120)]
LAUNCH_VARIANTS = str(Path(__file__).parents[1] / "runtime" / "launch_variants.py")


def test_cdaq_mariner_subscribes_to_our_heartbeats_and_interrupts_on_our_error(
    cdaq_python: Path, spawn, group: str
) -> None:
    sat = start_sputnik(spawn, group, "One")
    ours = Client(sat.cmd)
    beats = HeartbeatSub(sat.hb)
    mariner_port = free_tcp_port()
    spawn(
        str(cdaq_python.with_name("SatelliteMariner")),
        "-g", group, "-n", "Peer", "-i", "lo", "--cmd-port", str(mariner_port), "-l", "DEBUG",
    )  # fmt: skip
    mariner = Client(mariner_port)
    try:
        # Our only subscriber so far is `beats`: 500 ms. Once the Mariner's HeartbeatChecker has
        # subscribed to our HEARTBEAT offer we count two subscribers and announce 1500 ms.
        beats.wait(lambda hb: hb.interval_ms == chp.heartbeat_interval_ms(2) == 1500, timeout=20)

        mariner.wait_state(State.NEW, timeout=20)
        assert mariner.call("initialize", {}).verb == "transitioning"
        mariner.wait_state(State.INIT)
        assert mariner.call("launch").verb == "transitioning"
        mariner.wait_state(State.ORBIT)
        # Our heartbeats say NEW with the DYNAMIC flags: the Mariner must stay in ORBIT.
        hb = beats.wait(lambda hb: hb.state is State.NEW)
        assert hb.flags & ~HeartbeatFlags.IS_EXTRASYSTOLE == HeartbeatFlags(0x06)
        assert mariner.state() is State.ORBIT

        # Our satellite fails: its ERROR extrasystole makes the 1.0.2 Mariner interrupt itself.
        assert ours.call("_failure").verb == "transitioning"
        beats.wait(lambda hb: hb.state is State.ERROR and bool(hb.flags & HeartbeatFlags.TRIGGER_INTERRUPT))
        mariner.wait_state(State.SAFE, timeout=15)
        status = mariner.call("get_status").verb
        assert "Interrupted" in status, status
        # ... and we keep answering in ERROR.
        assert ours.state() is State.ERROR
    finally:
        for c in (ours, mariner, beats):
            c.close()


def _is(event: str, **fields: Any):
    def match(obj: dict[str, Any]) -> bool:
        return obj.get("event") == event and all(obj.get(k) == v for k, v in fields.items())

    return match


def test_cdaq_monitor_receives_our_logs_metrics_and_notifications(
    cdaq_python: Path, spawn, group: str
) -> None:
    sat = start_sputnik(spawn, group, "One")
    monitor = spawn(
        str(cdaq_python), str(SCRIPTS / "listen_monitor.py"), group,
        "LOG/INFO", "LOG/STATUS", "STAT/", "STAT?", "LOG?",
        ready=r'"event": "ready"', timeout=30,
    )  # fmt: skip
    ours = Client(sat.cmd)
    try:
        # The notifications prove that the Monitor found us and that every subscription arrived.
        log_topics = wait_json(monitor, _is("notification", sender="Sputnik.One", prefix="LOG"), 20)
        assert {"SPUTNIK", "FSM"} <= set(log_topics["topics"])
        stat_topics = wait_json(monitor, _is("notification", sender="Sputnik.One", prefix="STAT"), 10)
        assert {"TEMPERATURE", "STATE", "RUN_ID", "CPU_LOAD_AVG", "MEM_AVAIL"} <= set(stat_topics["topics"])

        assert ours.call("initialize", {"channels": 2}).verb == "transitioning"
        ours.wait_state(State.INIT)
        assert ours.call("launch").verb == "transitioning"
        ours.wait_state(State.ORBIT)

        # Log records: STATUS from the FSM, INFO from the satellite's own hooks.
        fsm = wait_json(monitor, _is("log", sender="Sputnik.One", level="STATUS", topic="FSM"), 10)
        assert "initialize" in fsm["message"]
        wait_json(monitor, _is("log", sender="Sputnik.One", level="INFO", message="Extending antennas"), 10)
        # Metrics: the state on every change, the 1.0.2 defaults and Sputnik's own metric.
        for state in ("initializing", "INIT", "launching", "ORBIT"):
            wait_json(monitor, _is("metric", sender="Sputnik.One", name="STATE", value=state), 10)
        for name, unit, kind in (("CPU_LOAD_AVG", "%", float), ("MEM_AVAIL", "MiB", float)):
            m = wait_json(monitor, _is("metric", sender="Sputnik.One", name=name), 15)
            assert m["unit"] == unit
            assert isinstance(m["value"], kind)
        temp = wait_json(monitor, _is("metric", sender="Sputnik.One", name="TEMPERATURE"), 15)
        assert temp["unit"] == "degC"
        assert 15 < temp["value"] < 30

        # Only subscribed levels are delivered: no DEBUG, TRACE or WARNING records reached it.
        levels = {o["level"] for o in json_lines(monitor) if o["event"] == "log"}
        assert levels <= {"INFO", "STATUS"}, levels
    finally:
        ours.close()


@pytest.mark.slow  # 15 s of watching; the default suite checks the cause (tests/runtime/test_launch_netns.py)
def test_cdaq_mariner_keeps_running_while_our_satellite_type_loads_slowly(
    cdaq_python: Path, spawn, group: str
) -> None:
    """Our HEARTBEAT is offered only once we beat. When `satellite-run` offered it before loading the
    satellite type, a 1.0.2 Mariner in RUN counted our missing beats and interrupted itself 9.1 s after
    a satellite whose type hangs in its import had started (measured before b474ddf)."""
    mariner_port = free_tcp_port()
    spawn(
        str(cdaq_python.with_name("SatelliteMariner")),
        "-g", group, "-n", "Peer", "-i", "lo", "--cmd-port", str(mariner_port),
    )  # fmt: skip
    mariner = Client(mariner_port)
    try:
        mariner.wait_state(State.NEW, timeout=20)
        for command, payload, state in (("initialize", {}, State.INIT), ("launch", None, State.ORBIT),
                                        ("start", "r1", State.RUN)):  # fmt: skip
            assert mariner.call(command, payload).verb == "transitioning"
            mariner.wait_state(state)
        spawn(sys.executable, LAUNCH_VARIANTS, "slow-load", "-n", "Slow", "-g", group, ready="^LOADING$")

        def running() -> None:
            assert mariner.state() is State.RUN, mariner.call("get_status").verb

        holds_for(running, 15, interval=0.5)  # 3 lives of 1.5 x 2 s, with a margin
    finally:
        mariner.close()
