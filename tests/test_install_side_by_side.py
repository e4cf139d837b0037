"""Our distribution and ConstellationDAQ 1.0.2 install into one environment without breaking either.

ConstellationDAQ's ``constellation`` is a namespace package (``core``, ``tools``, ``satellites``); ours is a
regular package that extends its ``__path__``. Both a regular and an editable install are checked, in
scratch virtual environments built offline from the oracle's wheelhouse.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import _unavailable
from tests.harness.oracle import OracleUnavailable, wheelhouse

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("protocols", "constellation", "satellites", "controllers", "listeners", "console")

CHECK = """
import importlib.metadata as md, pathlib
import constellation, protocols
import constellation.core.satellite          # ConstellationDAQ's satellite base class
import constellation.core.controller
from constellation.satellites.Mariner.Mariner import Mariner
regular = [p for p in constellation.__path__ if pathlib.Path(p).joinpath("__init__.py").exists()]
assert regular, constellation.__path__
scripts = md.entry_points(group="console_scripts")
ours = [ep.name for ep in scripts if ep.value.startswith(("constellation.cli", "console."))]
theirs = [ep.name for ep in scripts if ep.value.startswith("constellation.satellites.Mariner")]
assert ours and theirs, (ours, theirs)
print("OK", constellation.__file__, constellation.core.satellite.__file__)
"""


def _copy_project(dest: Path) -> Path:
    """A clean copy of the sources (no venv, no build leftovers) to build from."""
    dest.mkdir()
    for name in ("pyproject.toml", "README.md"):
        if (ROOT / name).exists():
            shutil.copy2(ROOT / name, dest / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for pkg in PACKAGES:
        shutil.copytree(ROOT / pkg, dest / pkg, ignore=ignore)
    return dest


@pytest.mark.timeout(300)
@pytest.mark.parametrize("editable", [False, True], ids=["regular", "editable"])
def test_installs_next_to_constellationdaq(tmp_path: Path, editable: bool) -> None:
    try:
        wheels = wheelhouse()
    except OracleUnavailable as exc:
        _unavailable(str(exc))
    uv = shutil.which("uv") or str(Path(__import__("sys").executable).with_name("uv"))
    src = _copy_project(tmp_path / "src")
    venv = tmp_path / "venv"
    subprocess.run([uv, "venv", "--quiet", str(venv)], check=True, timeout=60)
    python = venv / "bin" / "python"
    target = ["-e", str(src)] if editable else [str(src)]
    # ConstellationDAQ first, then us on top: the order in which a user would add us to an existing setup.
    for spec in (["ConstellationDAQ==1.0.2"], target):
        proc = subprocess.run(
            [
                uv,
                "pip",
                "install",
                "--quiet",
                "--python",
                str(python),
                "--no-index",
                "--find-links",
                str(wheels),
                *spec,
            ],
            capture_output=True,
            text=True,
            timeout=240,
        )
        assert proc.returncode == 0, proc.stderr
    # Run from the scratch folder, so that this checkout's sources are not on sys.path.
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "PYTHONHOME"}}
    out = subprocess.run(
        [str(python), "-c", CHECK], capture_output=True, text=True, timeout=60, cwd=tmp_path, env=env
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("OK")
    ours_file, theirs_file = out.stdout.split()[1:3]
    if editable:
        assert ours_file == str(src / "constellation" / "__init__.py")
    else:
        assert ours_file.startswith(str(venv))
    assert theirs_file.startswith(str(venv))
    # Uninstalling ConstellationDAQ leaves ours working, and the reverse order works too.
    proc = subprocess.run(
        [uv, "pip", "uninstall", "--quiet", "--python", str(python), "constellationdaq"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    ok = subprocess.run(
        [str(python), "-c", "import constellation, protocols; print('alone')"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env=env,
    )
    assert ok.stdout.strip() == "alone", ok.stderr
