"""`benchmarks/log_path_micro.py` runs in each of its modes and prints both halves of the log path.

A small run of the real script in a child process (loopback only; with ``--subscriber`` its own child
subscribes over loopback TCP). What is checked is that it runs and reports both halves; how fast they
are is the script's output, not a test's (what the experiment skips: test_unchecked_log.py).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "log_path_micro.py"
LINE = re.compile(r"^(producer|consumer): (\d+\.\d+) us a record best, (\d+\.\d+) median$", re.M)


def _run(*flags: str) -> None:
    out = subprocess.run(
        [sys.executable, str(SCRIPT), "--records", "3000", "--reps", "3", *flags],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    found = {m[1]: float(m[2]) for m in LINE.finditer(out)}
    assert set(found) == {"producer", "consumer"}, out
    assert all(v > 0 for v in found.values()), out


@pytest.mark.timeout(150)
def test_both_halves_with_and_without_a_subscriber_and_the_experiment() -> None:
    _run()
    _run("--subscriber")
    _run("--unchecked-log", "--subscriber")


def test_bad_arguments_print_usage() -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--records", "0"], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 2
    assert "usage:" in done.stderr
