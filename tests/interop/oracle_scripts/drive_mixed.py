"""Drive a mixed constellation (ours and 1.0.2 satellites) with broadcasts of the real 1.0.2 controller.

Runs in the oracle venv:  python drive_mixed.py GROUP CANONICAL_NAME [CANONICAL_NAME ...]

Waits for every named satellite, then broadcasts initialize, launch, start, stop, land to the whole
constellation (``ctrl.constellation.<cmd>()``, sequential per satellite as 1.0.2 does) and waits with
``ctrl.await_state`` for the global state after each. Prints one JSON line per step with every
satellite's reply and the heartbeat states, then shuts every satellite down and waits for their DEPARTs.
"""

from __future__ import annotations

import json
import sys
import time
import traceback
from typing import Any

from constellation.core.controller import ScriptableController
from constellation.core.protocol.cscp1 import SatelliteState


def emit(**obj: Any) -> None:
    print(json.dumps(obj, default=str), flush=True)


def main() -> int:
    group, *names = sys.argv[1:]
    ctrl = ScriptableController(group, log_level="WARNING", name="mixed")
    try:
        ctrl.await_satellites(names, timeout=30)
        deadline = time.monotonic() + 30
        while set(n.casefold() for n in ctrl.states) != set(n.casefold() for n in names):
            if time.monotonic() > deadline:
                raise TimeoutError(f"heartbeats not registered for all of {names}: {dict(ctrl.states)}")
            time.sleep(0.05)
        emit(event="discovered", satellites=sorted(ctrl.constellation.satellites), states=dict(ctrl.states))
        steps = [
            ("initialize", {"_autonomy": {"role": "DYNAMIC"}}, SatelliteState.INIT),
            ("launch", None, SatelliteState.ORBIT),
            ("start", "mixed_run_1", SatelliteState.RUN),
            ("stop", None, SatelliteState.ORBIT),
            ("land", None, SatelliteState.INIT),
        ]
        for cmd, payload, target in steps:
            fn = getattr(ctrl.constellation, cmd)
            replies = fn(payload) if payload is not None else fn()
            ctrl.await_state(target, timeout=30)
            emit(
                event="step",
                command=cmd,
                replies={
                    k: {"success": v.success, "msg": v.msg, "payload": v.payload} for k, v in replies.items()
                },
                states={k: v.name for k, v in ctrl.states.items()},
                global_state=ctrl.state.name,
            )
        replies = ctrl.constellation.shutdown()
        emit(event="shutdown", replies={k: {"success": v.success, "msg": v.msg} for k, v in replies.items()})
        deadline = time.monotonic() + 30
        while ctrl.constellation.satellites:
            if time.monotonic() > deadline:
                raise TimeoutError(f"still listed after shutdown: {sorted(ctrl.constellation.satellites)}")
            time.sleep(0.02)
        emit(event="done")
        return 0
    except Exception as exc:
        emit(event="error", error=repr(exc), traceback=traceback.format_exc())
        return 1
    finally:
        ctrl.reentry()


if __name__ == "__main__":
    sys.exit(main())
