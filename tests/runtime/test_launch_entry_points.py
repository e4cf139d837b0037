"""`launch.scan_entry_point` (the start-up shortcut that reads ``entry_points.txt`` files itself) agrees with
`importlib.metadata`, the authority, on the layouts it meets: dist-info and egg-info, several
distributions, a distribution shadowed by one earlier on sys.path, comments and extras."""

from __future__ import annotations

from importlib.metadata import entry_points
from pathlib import Path

import pytest

from constellation import cli
from constellation.launch import scan_entry_point

GROUP = cli.ENTRY_POINT_GROUP


def _dist(where: Path, dirname: str, entry_points_txt: str | None) -> None:
    d = where / dirname
    d.mkdir(parents=True)
    name, _, rest = dirname.partition("-")
    version = rest.partition(".dist-info")[0].partition(".egg-info")[0] or "1.0"
    (d / ("METADATA" if dirname.endswith(".dist-info") else "PKG-INFO")).write_text(
        f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    )
    if entry_points_txt is not None:
        (d / "entry_points.txt").write_text(entry_points_txt)


def _authority(name: str) -> str | None:
    eps = {ep.name.lower(): ep.name for ep in entry_points(group=GROUP)}
    return eps.get(name.lower())


@pytest.fixture
def path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    monkeypatch.setattr("sys.path", [str(first), str(second)])
    return first, second


@pytest.mark.parametrize(
    "wanted", ["alpha", "ALPHA", "Beta", "gamma", "Delta", "commented", "other_group", "ghost", "missing"]
)
def test_scan_agrees_with_importlib_metadata(path: tuple[Path, Path], wanted: str) -> None:
    first, second = path
    _dist(first, "demo_sats-2.0.dist-info", f"[{GROUP}]\nAlpha = demo.a:Alpha\n# Commented = demo.c:C\n")
    more = f"[console_scripts]\nx = y:z\n\n[{GROUP}]\nBeta=demo.b:Beta [fast]\n"  # extras, no spaces
    _dist(first, "more_sats-1.0.dist-info", more)
    old = f"[{GROUP}]\n  gamma = old.g:G\n[other]\nother_group = a:b\n"
    _dist(first, "old_style-0.1-py3.11.egg-info", old)
    _dist(first, "no_eps-1.0.dist-info", None)
    # An older copy of demo-sats later on sys.path: importlib.metadata ignores it (the first one wins).
    _dist(second, "demo_sats-1.0.dist-info", f"[{GROUP}]\nGhost = demo.old:Ghost\n")
    _dist(second, "late_sats-1.0.dist-info", f"[{GROUP}]\nDelta = late.d:Delta\n")
    assert scan_entry_point(GROUP, wanted) == _authority(wanted)


def test_scan_is_case_insensitive_and_returns_the_registered_spelling(path: tuple[Path, Path]) -> None:
    _dist(path[0], "demo_sats-2.0.dist-info", f"[{GROUP}]\nSputnikTwo = demo.s:S\n")
    assert scan_entry_point(GROUP, "sputniktwo") == "SputnikTwo"
    assert scan_entry_point(GROUP, "Sputnik") is None
