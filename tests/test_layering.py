"""Dependencies point down only (docs/architecture.md), checked on the import statements themselves."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OURS = {"protocols", "constellation", "satellites", "controllers", "listeners", "console"}

# package -> top-level modules it must never import (ours and third-party)
FORBIDDEN: dict[str, set[str]] = {
    "protocols": (OURS - {"protocols"}) | {"zmq", "asyncio", "socket", "zeroconf", "fastapi", "sqlalchemy"},
    "constellation": {"satellites", "controllers", "listeners", "console"},
    "satellites": {"console", "listeners"},
    "controllers": {"satellites", "console", "listeners"},
    "listeners": {"satellites", "console", "controllers"},
    "console": OURS - {"console", "protocols"},
}


def imported_top_levels(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_imports_point_down(package: str) -> None:
    offences = []
    for path in sorted((ROOT / package).rglob("*.py")):
        bad = imported_top_levels(path) & FORBIDDEN[package]
        if bad:
            offences.append(f"{path.relative_to(ROOT)} imports {sorted(bad)}")
    assert not offences, "\n".join(offences)


def test_constellation_leaves_constellationdaq_names_alone() -> None:
    for name in ("core", "tools", "satellites"):
        assert not (ROOT / "constellation" / name).exists(), (
            f"constellation/{name} belongs to ConstellationDAQ"
        )
        assert not (ROOT / "constellation" / f"{name}.py").exists()
