"""Driver scripts run by the ConstellationDAQ 1.0.2 oracle's python (never imported by our tests).

Each script drives a real 1.0.2 class (``ScriptableController``, ``MonitoringListener``, a satellite) and
prints one JSON object per line on stdout, so that a test can read what 1.0.2 saw. Run them with the
``cdaq_python`` fixture's interpreter, inside the network namespace, under a deadline.
"""

from pathlib import Path

SCRIPTS = Path(__file__).resolve().parent

__all__ = ["SCRIPTS"]
