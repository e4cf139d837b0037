"""The lazy package exports (`protocols.lazy`) stay invisible to mypy: it checks names imported from
`protocols`, `constellation` and `constellation.discovery` against what they really export. (A
module-level ``__getattr__`` seen by mypy makes it accept any name, typed ``object``.)"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(180)

ROOT = Path(__file__).resolve().parents[2]
SNIPPET = """
import protocols
from constellation import Satelite
from constellation.discovery import Discovery, Discovry
from protocols import State, chrip

n: int = protocols.Nope
"""


def test_mypy_rejects_names_the_lazy_packages_do_not_export(tmp_path: Path) -> None:
    (tmp_path / "snippet.py").write_text(SNIPPET)
    out = subprocess.run(
        [sys.executable, "-m", "mypy", "--no-error-summary", "--cache-dir", str(ROOT / ".mypy_cache"),
         str(tmp_path / "snippet.py")],
        capture_output=True, text=True, timeout=170, cwd=ROOT,
    )  # fmt: skip
    flagged = sorted(line.split(":")[1] for line in out.stdout.splitlines() if "error:" in line)
    assert flagged == ["3", "4", "5", "7"], out.stdout + out.stderr
