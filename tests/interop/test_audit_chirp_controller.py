"""Audit: what a real 1.0.2 controller does with our satellite when it leaves (CHIRP DEPART on SIGTERM,
or killed without one) and comes back under the same name on new ports (wire doc §1.3, §10.1, §4.5).

The controller (``CONTROLLER`` below, run in the oracle venv) prints what it sees; after the comeback it
sends ``get_state`` and ``initialize`` to the new incarnation through its own connection.
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from tests.fuzz.support import json_lines, start_sputnik, wait_json
from tests.interop.oracle_scripts import HARNESS_WAITS

pytestmark = [pytest.mark.netns, pytest.mark.interop, pytest.mark.timeout(150)]

CONTROLLER = (
    HARNESS_WAITS
    + r"""
import json, sys
from constellation.core.controller import ScriptableController

def emit(**o):
    print(json.dumps(o, default=str), flush=True)

group, name = sys.argv[1:3]

def view(ctrl):
    hbs = [
        {"name": hb.name, "state": hb.state.name, "lives": hb.lives}
        for hb in list(ctrl._remote_heartbeat_states.values())
        if hb.name.casefold() == name.casefold()
    ]
    return {"listed": name in ctrl.constellation.satellites, "hb": hbs}

def wait(pred, what, timeout=30):
    try:
        wait_until(pred, timeout, 0.02)
    except WaitTimeout:
        raise TimeoutError(what) from None

ctrl = ScriptableController(group, log_level="WARNING", name="audit")
try:
    ctrl.await_satellites([name], timeout=30)
    wait(lambda: any(h["state"] == "NEW" for h in view(ctrl)["hb"]), "first heartbeat")
    emit(event="seen", **view(ctrl))
    old = ctrl.constellation.satellites[name]
    # gone (DEPART), or replaced by the comeback's OFFER on new ports (killed: no DEPART)
    def left_or_replaced():
        v = view(ctrl)  # the controller drops the satellite, then its heartbeat registration
        if v["listed"]:
            return ctrl.constellation.satellites.get(name) is not old
        return not v["hb"]

    wait(left_or_replaced, "left or replaced", 60)
    emit(event="changed", **view(ctrl))
    wait(lambda: name in ctrl.constellation.satellites, "back", 60)
    wait(lambda: any(h["state"] == "NEW" for h in view(ctrl)["hb"]), "heartbeat of the comeback")
    sat = ctrl.constellation.satellites[name]
    emit(event="back", **view(ctrl), get_state=sat.get_state().msg)
    reply = sat.initialize({})
    emit(event="initialize", success=reply.success, msg=reply.msg)
    wait(lambda: any(h["state"] == "INIT" for h in view(ctrl)["hb"]), "INIT per heartbeats")
    states = set()  # every state seen over a few 1.5 s intervals: the new incarnation stays alive
    holds_for(lambda: states.update(h["state"] for h in view(ctrl)["hb"]), 4, 0.05)
    emit(event="done", **view(ctrl), states=sorted(states), global_state=ctrl.state.name)
except Exception as exc:
    emit(event="error", error=repr(exc), **view(ctrl))
finally:
    ctrl.reentry()
"""
)


def _event(name: str):
    return lambda o: o.get("event") in (name, "error")


@pytest.mark.parametrize("how", ["sigterm", "sigkill"])
def test_cdaq_controller_follows_us_through_a_restart_on_new_ports(
    cdaq_python: Path, spawn, group: str, how: str
) -> None:
    first = start_sputnik(spawn, group, "Re")
    ctl = spawn(str(cdaq_python), "-c", CONTROLLER, group, "Sputnik.Re")
    seen = wait_json(ctl, _event("seen"), timeout=40)
    assert seen == {
        "event": "seen",
        "listed": True,
        "hb": [{"name": "Sputnik.Re", "state": "NEW", "lives": 3}],
    }
    if how == "sigterm":
        first.proc.signal(signal.SIGTERM)  # clean exit: CHIRP DEPART
        assert first.proc.wait(10) == 0
        changed = wait_json(ctl, _event("changed"), timeout=20)
        assert changed == {"event": "changed", "listed": False, "hb": []}  # removed, heartbeat unregistered
    else:
        first.proc.signal(signal.SIGKILL)  # no DEPART: the comeback's OFFER on new ports replaces it
        first.proc.wait(10)
    second = start_sputnik(spawn, group, "Re")
    assert (second.cmd, second.hb) != (first.cmd, first.hb)
    back = wait_json(ctl, _event("back"), timeout=60)
    assert back["event"] == "back", json_lines(ctl)
    assert back["get_state"] == "NEW"
    assert back["hb"] == [{"name": "Sputnik.Re", "state": "NEW", "lives": 3}]  # one registration, alive
    done = wait_json(ctl, _event("done"), timeout=30)
    assert done["event"] == "done", json_lines(ctl)
    assert done["hb"] == [{"name": "Sputnik.Re", "state": "INIT", "lives": 3}]
    assert "DEAD" not in done["states"], done
    assert done["global_state"] == "INIT"
