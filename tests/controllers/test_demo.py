"""``python -m controllers.demo`` (what ``make demo`` runs) exits 0 after printing the whole cycle."""

from __future__ import annotations

import re
import sys

import pytest

from tests.harness import Proc

pytestmark = [pytest.mark.netns, pytest.mark.timeout(60)]


def test_demo_runs_a_full_cycle(spawn) -> None:
    proc: Proc = spawn(sys.executable, "-m", "controllers.demo", "--satellites", "3")
    code = proc.wait(40)  # the demo promises < 20 s; allow for a loaded machine
    out = proc.output
    assert code == 0, out
    for name in ("Alpha", "Beta", "Gamma"):
        assert re.search(rf"^started Sputnik\.{name} \(pid \d+\): cmd=\d+ hb=\d+ mon=\d+$", out, re.M), out
    assert re.search(r"discovered all 3 after \d+ ms", out), out
    steps = [m.group(1) for m in re.finditer(r"^>> (\w+)", out, re.M)]
    assert steps == ["initialize", "set_channel", "launch", "start", "stop", "land", "shutdown"], steps
    paths = re.findall(r"heartbeats: ([\w >-]+?)  \(", out)
    assert paths == [
        "NEW -> initializing -> INIT",
        "INIT -> launching -> ORBIT",
        "ORBIT -> starting -> RUN",
        "RUN -> stopping -> ORBIT",
        "ORBIT -> landing -> INIT",
    ], out
    assert re.search(r"Sputnik\.Beta: set 1 to 3\.0 -> payload \{'channel': 1, 'value': 3\.0\}", out), out
    assert "group state: RUN" in out
    assert "every satellite departed" in out
    assert "all 3 processes exited with 0" in out
    assert re.search(r"demo complete in \d+\.\d s", out), out
