"""Issue 3, done-when 1: the real 1.0.2 controller drives our Sputnik through a whole cycle.

``satellite-run Sputnik`` runs in the namespace; the 1.0.2 ``ScriptableController`` (oracle venv, driver
script ``oracle_scripts/drive_controller.py``) discovers it over CHIRP, reads name, state, role and the
command lists, calls the custom commands, drives initialize -> launch -> start -> stop -> land -> shutdown
and reports after each step what the 1.0.2 controller saw in our heartbeats (state, interval, role).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from protocols import State, chp
from tests.fuzz.support import run_json_script, start_sputnik
from tests.interop.oracle_scripts import SCRIPTS

pytestmark = [pytest.mark.netns, pytest.mark.interop, pytest.mark.timeout(120)]

CYCLE = [
    ("initialize", State.INIT),
    ("launch", State.ORBIT),
    ("start", State.RUN),
    ("stop", State.ORBIT),
    ("land", State.INIT),
]


def drive(cdaq_python: Path, group: str, canonical: str, spec: dict[str, Any]) -> list[dict[str, Any]]:
    code, events, stderr = run_json_script(
        [str(cdaq_python), str(SCRIPTS / "drive_controller.py"), group, canonical, json.dumps(spec)],
        timeout=90,
    )
    errors = [e for e in events if e["event"] == "error"]
    assert not errors, f"1.0.2 controller failed: {errors}\n{stderr[-3000:]}"
    assert code == 0, f"driver exited with {code}\n{stderr[-3000:]}"
    return events


def by_event(events: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [e for e in events if e["event"] == name]


def test_cdaq_controller_drives_sputnik_through_a_cycle(cdaq_python: Path, spawn, group: str) -> None:
    sat = start_sputnik(spawn, group, "One")
    assert sat.name == "Sputnik.One"
    events = drive(
        cdaq_python,
        group,
        "Sputnik.One",
        {
            "config": {"_autonomy": {"role": "ESSENTIAL"}, "channels": 3},
            "run_id": "run_42",
            "calls": [["initialize", "set_channel", [1, 2.5]], ["initialize", "get_channels", None]],
        },
    )

    # Discovery and the command surface the controller exposes (per satellite and per type).
    assert by_event(events, "discovered")[0]["satellites"] == ["Sputnik.One"]
    exposed = by_event(events, "commands_exposed")[0]
    assert exposed["type_has_satellite"]
    standard = {"initialize", "launch", "land", "start", "stop", "shutdown", "get_state", "get_name"}
    assert {"set_channel", "get_channels", "_interrupt", "_failure"} | standard <= set(exposed["satellite"])

    reads = by_event(events, "reads")[0]
    r = reads["replies"]
    assert all(v["success"] for v in r.values()), r
    assert r["get_name"]["msg"] == "Sputnik.One"
    assert (r["get_state"]["msg"], r["get_state"]["payload"]) == ("NEW", State.NEW)
    assert {"last_changed", "last_changed_iso"} <= set(r["get_state"]["meta"])
    assert (r["get_role"]["msg"], r["get_role"]["payload"]) == ("DYNAMIC", 6)
    assert r["get_cnstln_version"]["msg"] == "1.0.2"
    assert r["get_status"]["msg"], "status must not be empty"
    assert r["get_config"]["payload"] == {}
    assert r["get_run_id"]["msg"] == ""
    cmds = r["get_commands"]["payload"]
    assert standard <= set(cmds)
    assert cmds["set_channel"].startswith("Set the value of one channel.")
    assert "Arguments: channel: int, value: float." in cmds["set_channel"]
    assert not any(name.startswith("_") for name in cmds)
    assert {"_interrupt", "_failure"} <= set(r["_get_commands"]["payload"])
    # The heartbeat view before initialize: NEW, DYNAMIC, and the interval of one subscriber.
    assert reads["hb"]["state"] == "NEW"
    assert reads["hb"]["role"] == "DYNAMIC"
    assert reads["hb"]["interval"] == chp.heartbeat_interval_ms(1) == 500

    # The custom commands, called by the 1.0.2 controller after initialize.
    calls = {c["command"]: c["reply"] for c in by_event(events, "call")}
    assert calls["set_channel"]["success"], calls
    assert calls["set_channel"]["msg"] == "set 1 to 2.5"
    assert calls["set_channel"]["payload"] == {"channel": 1, "value": 2.5}
    assert calls["get_channels"]["payload"] == [0.0, 2.5, 0.0]

    # Each transition: accepted as 1.0.2 does, heartbeats show the target with the right role/interval.
    steps = by_event(events, "step")
    assert [s["command"] for s in steps] == [c for c, _ in CYCLE]
    for step, (command, target) in zip(steps, CYCLE, strict=True):
        reply = step["reply"]
        assert (reply["success"], reply["msg"], reply["payload"]) == (True, "transitioning", command), step
        hb = step["hb"]
        assert hb["state"] == target.name, step
        assert hb["role"] == "ESSENTIAL", step  # _autonomy.role from the initialize payload
        assert hb["interval"] == 500, step  # the controller is the only heartbeat subscriber
        assert hb["lives"] == 3, step
        assert step["get_state"]["msg"] == target.name
        assert step["get_state"]["payload"] == target
        assert (step["role"]["msg"], step["role"]["payload"]) == ("ESSENTIAL", 7)
        assert step["global_state"] == target.name
    assert steps[2]["run_id"]["msg"] == "run_42"
    # Every state change, transitional ones included, reached the 1.0.2 controller in order.
    assert steps[-1]["seen"] == [
        "initializing", "INIT", "launching", "ORBIT", "starting", "RUN",
        "stopping", "ORBIT", "landing", "INIT",
    ]  # fmt: skip
    assert steps[0]["hb"]["status"].startswith("Initialized")

    # shutdown: the controller sees the DEPART and our process leaves cleanly.
    shutdown = by_event(events, "shutdown")[0]["reply"]
    assert shutdown["success"]
    assert shutdown["msg"] == "Sputnik.One queued for reentry"
    assert by_event(events, "departed")[0]["satellites"] == []
    assert sat.proc.wait(timeout=10) == 0


def test_cdaq_controller_sees_canonical_name_override(cdaq_python: Path, spawn, group: str) -> None:
    """``--name Type.Name`` is addressed as such by the 1.0.2 controller (default role DYNAMIC)."""
    sat = start_sputnik(spawn, group, "Beacon.Second")
    assert sat.name == "Beacon.Second"
    events = drive(cdaq_python, group, "Beacon.Second", {"config": {}, "run_id": "r1"})
    steps = by_event(events, "step")
    assert [s["hb"]["state"] for s in steps] == [t.name for _, t in CYCLE]
    assert {s["hb"]["role"] for s in steps} == {"DYNAMIC"}
    assert {s["hb"]["interval"] for s in steps} == {500}
    assert sat.proc.wait(timeout=10) == 0


@pytest.mark.hosts(2)
def test_cdaq_controller_on_another_host_drives_sputnik(cdaq_python: Path, on_host, group: str) -> None:
    """Sputnik on virtual host 1, the 1.0.2 controller on host 2: discovery, commands and heartbeats
    cross the bridge (the controller connects to the beacon's source address, 10.77.0.1)."""
    from tests.fuzz.support import READY, SATELLITE_RUN

    sat = on_host(1, SATELLITE_RUN, "Sputnik", "-n", "Remote", "-g", group, ready=READY, timeout=30)
    code, events, stderr = run_json_script(
        [
            os.environ["NETNS_EXEC"], "2", str(cdaq_python), str(SCRIPTS / "drive_controller.py"),
            group, "Sputnik.Remote", json.dumps({"config": {"_autonomy": {"role": "TRANSIENT"}}}),
        ],
        timeout=90,
    )  # fmt: skip
    errors = [e for e in events if e["event"] == "error"]
    assert not errors, f"1.0.2 controller failed: {errors}\n{stderr[-3000:]}"
    assert code == 0
    steps = by_event(events, "step")
    assert [s["hb"]["state"] for s in steps] == [t.name for _, t in CYCLE]
    assert {s["hb"]["role"] for s in steps} == {"TRANSIENT"}
    assert {(s["role"]["msg"], s["role"]["payload"]) for s in steps} == {("TRANSIENT", 4)}
    assert by_event(events, "departed")[0]["satellites"] == []
    assert sat.wait(timeout=10) == 0


def test_cdaq_controller_broadcasts_to_a_mixed_constellation(cdaq_python: Path, spawn, group: str) -> None:
    """Two of our Sputniks and a 1.0.2 Mariner in one group, driven by 1.0.2 broadcasts: every reply
    and every heartbeat state is the same for ours and theirs, and all leave on `shutdown`."""
    a = start_sputnik(spawn, group, "A")
    b = start_sputnik(spawn, group, "B")
    mariner = spawn(str(cdaq_python.with_name("SatelliteMariner")), "-g", group, "-n", "C", "-i", "lo")
    names = ["Sputnik.A", "Sputnik.B", "Mariner.C"]
    code, events, stderr = run_json_script(
        [str(cdaq_python), str(SCRIPTS / "drive_mixed.py"), group, *names], timeout=110
    )
    errors = [e for e in events if e["event"] == "error"]
    assert not errors, f"1.0.2 controller failed: {errors}\n{stderr[-3000:]}"
    assert code == 0
    assert by_event(events, "discovered")[0]["satellites"] == sorted(names)
    steps = by_event(events, "step")
    assert [s["command"] for s in steps] == [c for c, _ in CYCLE]
    for step, (command, target) in zip(steps, CYCLE, strict=True):
        assert step["replies"] == {
            n: {"success": True, "msg": "transitioning", "payload": command} for n in names
        }
        assert step["states"] == dict.fromkeys(names, target.name)
        assert step["global_state"] == target.name
    shutdown = by_event(events, "shutdown")[0]["replies"]
    assert {n: r["msg"] for n, r in shutdown.items()} == {n: f"{n} queued for reentry" for n in names}
    assert by_event(events, "done")
    assert a.proc.wait(timeout=10) == 0
    assert b.proc.wait(timeout=10) == 0
    mariner.wait(timeout=10)


def test_cdaq_controller_reconfigure_interrupt_failure_and_recovery(
    cdaq_python: Path, spawn, group: str
) -> None:
    """Through the 1.0.2 controller: reconfigure in ORBIT, the hidden _interrupt (-> SAFE) and _failure
    (-> ERROR), refusals in SAFE, and recovery by initialize only, as 1.0.2 satellites behave."""
    sat = start_sputnik(spawn, group, "Three")
    steps = [
        ["initialize", {}, "INIT"],
        ["launch", None, "ORBIT"],
        ["reconfigure", {"beep_period": 0.05}, "ORBIT"],
        ["start", "r_7", "RUN"],
        ["_interrupt", None, "SAFE"],
        ["launch", None, None],  # SAFE is left only by initialize
        ["start", "r_8", None],
        ["initialize", {}, "INIT"],
        ["_failure", None, "ERROR"],
        ["launch", None, None],
        ["initialize", {"channels": 1}, "INIT"],
    ]
    events = drive(cdaq_python, group, "Sputnik.Three", {"steps": steps})
    done = by_event(events, "step")
    assert [(s["command"], s["hb"]["state"]) for s in done] == [(c, t) for c, _, t in steps if t is not None]
    for s in done:
        assert s["reply"]["success"], s
        assert s["reply"]["msg"] == "transitioning"
    reconf = done[2]
    assert "reconfiguring" in reconf["seen"]
    interrupted = done[4]
    assert interrupted["seen"][-2:] == ["interrupting", "SAFE"]
    assert interrupted["hb"]["status"].endswith("Interrupted"), interrupted["hb"]
    refused = by_event(events, "refused")
    assert [r["command"] for r in refused] == ["launch", "start", "launch"]
    for r in refused:
        assert not r["reply"]["success"]
        assert "Transition not allowed" in r["reply"]["errmsg"], r
    assert done[-1]["seen"][-3:] == ["ERROR", "initializing", "INIT"]
    assert by_event(events, "departed")[0]["satellites"] == []  # the driver ends with shutdown
    assert sat.proc.wait(timeout=10) == 0


def test_same_script_same_answers_as_a_cdaq_mariner(cdaq_python: Path, spawn) -> None:
    """Differential: one 1.0.2 controller script against our Sputnik and against a 1.0.2 Mariner. The
    framework's answers (transition replies, refusals, state sequences, roles, unused-key reporting) must
    be identical; only the satellites' own hook texts differ."""
    from tests.harness import unique_group

    steps = [
        # (not `_role` next to `_autonomy.role`: 1.0.2 ignores the flat key, we refuse the pair, by design
        # (docs/runtime.md))
        ["initialize", {"bogus_key": 1, "other": "x", "_autonomy": {"role": "TRANSIENT"}}, "INIT"],
        ["launch", None, "ORBIT"],
        ["initialize", {}, None],  # not allowed in ORBIT
        ["start", "bad run id!", None],  # invalid characters
        ["start", "r1", "RUN"],
        ["_interrupt", None, "SAFE"],
        ["launch", None, None],
        ["_failure", None, "ERROR"],
        ["initialize", {}, "INIT"],
    ]
    spec = {"steps": steps}
    g1, g2 = unique_group(), unique_group()
    start_sputnik(spawn, g1, "Diff")
    spawn(str(cdaq_python.with_name("SatelliteMariner")), "-g", g2, "-n", "Diff", "-i", "lo")
    ours = drive(cdaq_python, g1, "Sputnik.Diff", spec)
    theirs = drive(cdaq_python, g2, "Mariner.Diff", spec)

    def framework_view(events: list[dict[str, Any]], name: str) -> dict[str, Any]:
        steps_seen = [
            (s["command"], s["reply"]["msg"], s["reply"]["payload"], s["hb"]["state"], s["hb"]["role"],
             s["hb"]["interval"], s["seen"], s["role"]["msg"], s["role"]["payload"])
            for s in by_event(events, "step")
        ]  # fmt: skip
        refused = [
            (r["command"], r["reply"]["success"], r["reply"]["errmsg"].replace(name, "X"))
            for r in by_event(events, "refused")
        ]
        unused = [("(2 unused keys)" in s["hb"]["status"]) for s in by_event(events, "step")[:1]]
        return {"steps": steps_seen, "refused": refused, "unused": unused}

    view = framework_view(ours, "Sputnik.Diff")
    assert view["unused"] == [True], by_event(ours, "step")[0]["hb"]
    assert len(view["refused"]) == 3
    assert view == framework_view(theirs, "Mariner.Diff")
