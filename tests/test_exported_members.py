"""Each package re-exports its public API in ``__all__``, and every name listed there exists."""

from __future__ import annotations

import importlib

import pytest

PACKAGES = ["protocols", "constellation", "satellites", "controllers", "listeners", "console"]


@pytest.mark.parametrize("name", PACKAGES)
def test_all_names_exist(name: str) -> None:
    module = importlib.import_module(name)
    exported = getattr(module, "__all__", [])
    assert len(exported) == len(set(exported)), "duplicates in __all__"
    missing = [member for member in exported if not hasattr(module, member)]
    assert not missing, f"{name}.__all__ lists missing names: {missing}"


def test_protocols_exports_the_codecs() -> None:
    import protocols

    for member in (
        "DecodeError",
        "EncodeError",
        "ProtocolError",
        "State",
        "Role",
        "HeartbeatFlags",
        "chirp",
        "cscp",
        "chp",
        "cmdp",
        "cdtp",
    ):
        assert member in protocols.__all__, member
