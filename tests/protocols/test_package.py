"""protocols/ is pure (no zmq, asyncio, socket) and exports its public API."""

from __future__ import annotations

import ast
from pathlib import Path

import protocols

FORBIDDEN = {"zmq", "asyncio", "socket"}
PKG = Path(protocols.__file__).parent


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


def test_no_io_imports() -> None:
    files = sorted(PKG.rglob("*.py"))
    assert len(files) >= 9
    for path in files:
        bad = _imports(path) & FORBIDDEN
        assert not bad, f"{path.relative_to(PKG.parent)} imports {sorted(bad)}"


def test_all_is_exact() -> None:
    public = {
        "chirp",
        "cscp",
        "chp",
        "cmdp",
        "cdtp",
        "DecodeError",
        "EncodeError",
        "InvalidName",
        "ProtocolError",
        "State",
        "Role",
        "HeartbeatFlags",
        "validate_canonical_name",
        "split_canonical_name",
        "validate_name_part",
        "validate_run_id",
        "canonical_name",
    }
    assert public <= set(protocols.__all__)
    for name in protocols.__all__:
        assert hasattr(protocols, name), name
    assert not any(n.startswith("console") for n in protocols.__all__)


def test_error_tree() -> None:
    for err in (protocols.DecodeError, protocols.EncodeError, protocols.InvalidName):
        assert issubclass(err, protocols.ProtocolError)
        assert issubclass(err, ValueError)


def test_submodule_all_names_exist() -> None:
    for mod in (protocols.chirp, protocols.cscp, protocols.chp, protocols.cmdp, protocols.cdtp):
        for name in mod.__all__:
            assert hasattr(mod, name), f"{mod.__name__}.{name}"
