"""Driver scripts run by the ConstellationDAQ 1.0.2 oracle's python (never imported by our tests).

Each script drives a real 1.0.2 class (``ScriptableController``, ``MonitoringListener``, a satellite) and
prints one JSON object per line on stdout, so that a test can read what 1.0.2 saw. Run them with the
``cdaq_python`` fixture's interpreter, inside the network namespace, under a deadline.
"""

from pathlib import Path

SCRIPTS = Path(__file__).resolve().parent

#: Put first in a script the oracle's python runs: the harness's deadline waits (`tests/harness/wait.py`,
#: standard library only) as `wait_until`, `holds_for` and `WaitTimeout`, loaded from their file under
#: a name of their own, so that 1.0.2-side scripts wait as our tests do instead of in sleep loops.
HARNESS_WAITS = f"""
import importlib.util as _util
_spec = _util.spec_from_file_location("harness_wait", {str(SCRIPTS.parents[1] / "harness" / "wait.py")!r})
_wait = _util.module_from_spec(_spec)
_spec.loader.exec_module(_wait)
WaitTimeout, holds_for, wait_until = _wait.WaitTimeout, _wait.holds_for, _wait.wait_until
"""

__all__ = ["HARNESS_WAITS", "SCRIPTS"]
