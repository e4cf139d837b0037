"""The ConstellationDAQ 1.0.2 oracle: a cached scratch virtual environment and a wheelhouse.

Both are built *outside* the network namespace (the namespace has no route to the package registry) by
:func:`prepare_oracle`, which ``tests/conftest.py`` calls before it re-executes pytest inside the namespace
and which ``python -m tests.harness`` runs by hand. They are keyed by the hash of
``requirements/interop-lock.txt`` (ConstellationDAQ 1.0.2 resolved together with our own runtime
dependencies), so a lock change rebuilds them and nothing is pinned by hand.

- the oracle venv holds only ConstellationDAQ==1.0.2 and its dependencies: the real controllers,
  satellites and Monitor that our tests and benchmarks run against;
- the wheelhouse holds every wheel of the interop lock, so tests can build further scratch environments
  (for example ours installed next to ConstellationDAQ) offline, inside the namespace.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LOCK = ROOT / "requirements" / "interop-lock.txt"


class OracleUnavailable(RuntimeError):
    """The oracle environment is missing and cannot be built here."""


def cache_dir() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    digest = hashlib.sha256(LOCK.read_bytes()).hexdigest()[:16]
    return base / "operator-constellation" / f"oracle-{digest}"


def _uv() -> str:
    candidate = Path(sys.executable).with_name("uv")
    found = str(candidate) if candidate.exists() else shutil.which("uv")
    if not found:
        raise OracleUnavailable("uv is not installed in this environment (it comes with the [test] extra)")
    return found


def _constraints_without_self(target: Path) -> Path:
    """The interop lock minus our own project line (uv names it as a requirement of pyproject)."""
    lines = [ln for ln in LOCK.read_text().splitlines() if not ln.startswith("-e ")]
    target.write_text("\n".join(lines) + "\n")
    return target


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _run(argv: list[str]) -> None:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        raise OracleUnavailable(f"{' '.join(argv[:4])} ... failed:\n{proc.stderr[-2000:]}")


def prepare_oracle() -> Path:
    """Build (once) the oracle venv and the wheelhouse; return the cache folder. Needs the registry."""
    cache = cache_dir()
    done = cache / ".complete"
    if done.exists():
        return cache
    with _locked(cache.with_suffix(".lock")):
        if done.exists():
            return cache
        shutil.rmtree(cache, ignore_errors=True)
        cache.mkdir(parents=True)
        constraints = _constraints_without_self(cache / "constraints.txt")
        uv = _uv()
        venv = cache / "venv"
        _run([uv, "venv", "--quiet", "--python", sys.executable, str(venv)])
        _run(
            [
                uv,
                "pip",
                "install",
                "--quiet",
                "--python",
                str(venv / "bin" / "python"),
                "-c",
                str(constraints),
                "ConstellationDAQ==1.0.2",
                "pip",
            ]
        )
        wheels = cache / "wheels"
        _run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--quiet",
                "--no-deps",
                "--only-binary=:all:",
                "-d",
                str(wheels),
                "-r",
                str(constraints),
            ]
        )
        done.write_text("ok\n")
    return cache


def oracle_python() -> Path:
    """The python of the oracle venv; raises OracleUnavailable if it has not been prepared."""
    cache = cache_dir()
    python = cache / "venv" / "bin" / "python"
    if not (cache / ".complete").exists() or not python.exists():
        raise OracleUnavailable(
            f"the ConstellationDAQ 1.0.2 oracle is not prepared ({cache}); run "
            "`python -m tests.harness` outside the namespace (plain `pytest` and `make test` do it)"
        )
    return python


def wheelhouse() -> Path:
    oracle_python()
    return cache_dir() / "wheels"
