"""`python -m console.demo` (part of `make demo`) runs the live and simulated modes end to end."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.timeout(120)
def test_console_demo_runs_both_modes() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "console.demo"],
        capture_output=True,
        text=True,
        timeout=110,
        env={"COLUMNS": "160", "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "a second poll finds nothing more: 204" in out
    assert "duplicate=True" in out
    assert "deployment is now completed with 5 events stored" in out
    assert "simulated timeline: 39 events, deployment completed" in out
