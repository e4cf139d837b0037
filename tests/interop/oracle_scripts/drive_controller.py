"""Drive one satellite through a full cycle with the real ConstellationDAQ 1.0.2 ScriptableController.

Runs in the oracle venv:  python drive_controller.py GROUP CANONICAL_NAME SPEC_JSON

SPEC_JSON: {"config": {...}, "run_id": "r1", "calls": [[after_step, command, payload_or_null], ...],
"steps": [[command, payload_or_null, target_state_or_null], ...], "timeout": 20}; ``after_step`` is
"discovered" or a step's command; ``steps`` replaces the default initialize -> launch -> start -> stop ->
land cycle (a null target marks a command that must be refused).

Prints one JSON object per line (``{"event": ...}``): what the 1.0.2 controller saw after each step, i.e.
the satellite's replies (SatelliteResponse) and the controller's heartbeat view of it (state, interval,
role, lives, status) plus every state change the heartbeat checker reported. Exits 0 after ``done``;
any exception is printed as ``{"event": "error"}`` with exit code 1.
"""

from __future__ import annotations

import json
import sys
import threading
import time
import traceback
from typing import Any

import constellation.core.heartbeatchecker as hbc
from constellation.core.controller import ScriptableController
from constellation.core.protocol.cscp1 import SatelliteState

# Count the heartbeats the 1.0.2 checker decodes, per sender (its own decoder, just observed).
HEARTBEATS: dict[str, int] = {}
_decode = hbc.chp_decode_message


def _counting_decode(binmsg: Any) -> Any:
    decoded = _decode(binmsg)
    HEARTBEATS[decoded[0]] = HEARTBEATS.get(decoded[0], 0) + 1
    return decoded


hbc.chp_decode_message = _counting_decode


def emit(**obj: Any) -> None:
    print(json.dumps(obj, default=str), flush=True)


class RecordingController(ScriptableController):
    """ScriptableController that records every heartbeat state change it sees."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.seen: list[tuple[str, str]] = []
        self.seen_lock = threading.Lock()
        super().__init__(*args, **kwargs)

    def _on_state_change(self, name: str, old_state: SatelliteState, new_state: SatelliteState) -> None:
        with self.seen_lock:
            self.seen.append((name, new_state.name))


def response(resp: Any) -> dict[str, Any]:
    return {
        "success": resp.success,
        "msg": resp.msg,
        "payload": resp.payload,
        "meta": resp.meta,
        "errmsg": resp.errmsg,
    }


def hb_view(ctrl: RecordingController, canonical: str) -> dict[str, Any] | None:
    for hb in list(ctrl._remote_heartbeat_states.values()):
        if hb.name.casefold() == canonical.casefold():
            return {
                "name": hb.name,
                "state": hb.state.name,
                "interval": hb.interval,
                "role": hb.role.name,
                "lives": hb.lives,
                "status": hb.status,
                "outdated": hb.outdated,
            }
    return None


def wait_hb_state(ctrl: RecordingController, canonical: str, state: str, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        view = hb_view(ctrl, canonical)
        if view is not None and view["state"] == state and not view["outdated"]:
            return view
        if time.monotonic() > deadline:
            raise TimeoutError(f"{canonical} not in {state} per heartbeats after {timeout}s: {view}")
        time.sleep(0.01)


def main() -> int:
    group, canonical, spec_json = sys.argv[1:4]
    spec = json.loads(spec_json)
    timeout = float(spec.get("timeout", 20))
    sat_type, sat_name = canonical.split(".", 1)
    ctrl = RecordingController(group, log_level="WARNING", name="oracle")
    try:
        t0 = time.monotonic()
        ctrl.await_satellites([canonical], timeout=int(timeout))
        emit(
            event="discovered",
            seconds=time.monotonic() - t0,
            satellites=sorted(ctrl.constellation.satellites),
        )
        sat = ctrl.constellation.satellites[canonical]
        deadline = time.monotonic() + timeout
        while HEARTBEATS.get(canonical, 0) == 0:  # the view below must come from a real heartbeat
            if time.monotonic() > deadline:
                raise TimeoutError(f"no heartbeat from {canonical} reached the controller in {timeout}s")
            time.sleep(0.01)
        # The per-type link must exist too (commands are exposed per type and per satellite).
        type_link = getattr(ctrl.constellation, sat_type)
        emit(
            event="commands_exposed",
            satellite=sorted(c for c in dir(sat) if not c.startswith("__")),
            type_has_satellite=hasattr(type_link, sat_name.replace("-", "_")),
        )
        reads = {}
        for cmd in (
            "get_name",
            "get_state",
            "get_role",
            "get_commands",
            "_get_commands",
            "get_version",
            "get_cnstln_version",
            "get_status",
            "get_config",
            "get_run_id",
        ):
            reads[cmd] = response(getattr(sat, cmd)())
        emit(event="reads", replies=reads, hb=hb_view(ctrl, canonical), heartbeats=HEARTBEATS.get(canonical))

        calls = spec.get("calls", [])

        def do_calls(after: str) -> None:
            for when, name, payload in calls:
                if when == after:
                    emit(event="call", command=name, reply=response(getattr(sat, name)(payload)))

        do_calls("discovered")

        steps: list[tuple[str, Any, str | None]] = [
            ("initialize", spec.get("config", {}), "INIT"),
            ("launch", None, "ORBIT"),
            ("start", spec.get("run_id", "run1"), "RUN"),
            ("stop", None, "ORBIT"),
            ("land", None, "INIT"),
        ]
        if "steps" in spec:  # [[command, payload or null, expected steady state or null if refused]]
            steps = [tuple(step) for step in spec["steps"]]  # type: ignore[misc]
        for cmd, payload, target in steps:
            reply = getattr(sat, cmd)(payload) if payload is not None else getattr(sat, cmd)()
            if target is None:  # a refused command: no transition to wait for
                emit(event="refused", command=cmd, reply=response(reply), hb=hb_view(ctrl, canonical))
                continue
            view = wait_hb_state(ctrl, canonical, target, timeout)
            with ctrl.seen_lock:
                seen = [s for n, s in ctrl.seen if n.casefold() == canonical.casefold()]
            state_reply = response(sat.get_state())
            emit(
                event="step",
                command=cmd,
                reply=response(reply),
                hb=view,
                seen=seen,
                get_state=state_reply,
                global_state=ctrl.state.name,
                role=response(sat.get_role()),
                run_id=response(sat.get_run_id()),
            )
            do_calls(cmd)

        t_shutdown = time.monotonic()
        reply = sat.shutdown()
        emit(event="shutdown", reply=response(reply))
        deadline = time.monotonic() + timeout
        while canonical in ctrl.constellation.satellites:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{canonical} still listed {timeout}s after shutdown (no DEPART seen)")
            time.sleep(0.01)
        emit(
            event="departed",
            seconds=time.monotonic() - t_shutdown,
            satellites=sorted(ctrl.constellation.satellites),
        )
        emit(event="done")
        return 0
    except Exception as exc:
        emit(event="error", error=repr(exc), traceback=traceback.format_exc())
        return 1
    finally:
        ctrl.reentry()


if __name__ == "__main__":
    sys.exit(main())
