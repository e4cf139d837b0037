"""States, roles, flags and the name / run-id rules (wire doc §3, §4.3, §9)."""

from __future__ import annotations

import pytest

from protocols import (
    HeartbeatFlags,
    InvalidName,
    Role,
    State,
    canonical_name,
    is_valid_canonical_name,
    split_canonical_name,
    validate_canonical_name,
    validate_name_part,
    validate_run_id,
)

STATE_TABLE = {
    "NEW": (0x10, "steady", "NEW"),
    "initializing": (0x12, "transitional", "INIT"),
    "INIT": (0x20, "steady", "INIT"),
    "launching": (0x23, "transitional", "ORBIT"),
    "ORBIT": (0x30, "steady", "ORBIT"),
    "landing": (0x32, "transitional", "INIT"),
    "reconfiguring": (0x33, "transitional", "ORBIT"),
    "starting": (0x34, "transitional", "RUN"),
    "RUN": (0x40, "steady", "RUN"),
    "stopping": (0x43, "transitional", "ORBIT"),
    "interrupting": (0x0E, "transitional", "SAFE"),
    "SAFE": (0xE0, "steady", "SAFE"),
    "ERROR": (0xF0, "steady", "ERROR"),
}


def test_state_table_is_exact() -> None:
    assert {s.name for s in State} == {*STATE_TABLE, "DEAD"}
    for name, (code, kind, target) in STATE_TABLE.items():
        state = State[name]
        assert state.value == code
        assert state.wire_name == name
        assert state.is_steady is (kind == "steady")
        assert state.is_transitional is (kind == "transitional")
        assert state.target is State[target]
    assert State.DEAD == 0xFF
    assert not State.DEAD.is_steady
    assert not State.DEAD.is_transitional


@pytest.mark.parametrize(
    ("role", "flags"),
    [(Role.ESSENTIAL, 0x07), (Role.DYNAMIC, 0x06), (Role.TRANSIENT, 0x04), (Role.NONE, 0x00)],
)
def test_role_flags_round_trip(role: Role, flags: int) -> None:
    assert role.flags == flags
    assert Role.from_flags(HeartbeatFlags(flags)) is role
    # the extrasystole bit and reserved bits do not change the role
    assert Role.from_flags(flags | 0x80 | 0x08) is role


def test_role_from_flags_like_1_0_2() -> None:
    assert Role.from_flags(HeartbeatFlags.DENY_DEPARTURE) is Role.NONE
    assert Role.from_flags(HeartbeatFlags.TRIGGER_INTERRUPT) is Role.NONE
    assert Role.from_flags(HeartbeatFlags.MARK_DEGRADED | HeartbeatFlags.DENY_DEPARTURE) is Role.TRANSIENT
    assert HeartbeatFlags.IS_EXTRASYSTOLE == 0x80


def test_role_parse_case_insensitive() -> None:
    assert Role.parse("essential") is Role.ESSENTIAL
    assert Role.parse("Dynamic") is Role.DYNAMIC
    assert Role.parse("NONE") is Role.NONE
    with pytest.raises(ValueError, match="unknown role"):
        Role.parse("boss")


@pytest.mark.parametrize(
    "name", ["Mariner.One", "BaseController.ctl", "a.b", "Sat_1.x_2", "Überwacher.Zwölf"]
)
def test_valid_canonical_names(name: str) -> None:
    assert validate_canonical_name(name) == name
    assert is_valid_canonical_name(name)
    t, n = split_canonical_name(name)
    assert canonical_name(t, n) == name


@pytest.mark.parametrize(
    "name",
    [
        "",
        "Mariner",
        "Mariner.",
        ".One",
        "a.b.c",
        "Mar-iner.One",
        "Mariner.On e",
        "Mariner.One\n",
        "M.x/y",
        "a..b",
    ],
)
def test_invalid_canonical_names(name: str) -> None:
    with pytest.raises(InvalidName):
        validate_canonical_name(name)
    assert not is_valid_canonical_name(name)


def test_non_str_names_rejected() -> None:
    for bad in (None, 1, b"a.b"):
        with pytest.raises(InvalidName):
            validate_canonical_name(bad)  # type: ignore[arg-type]
        with pytest.raises(InvalidName):
            validate_run_id(bad)  # type: ignore[arg-type]


def test_name_parts() -> None:
    assert validate_name_part("x_1") == "x_1"
    for bad in ("", "a.b", "a-b", "a b", "a\n"):
        with pytest.raises(InvalidName, match="name part"):
            validate_name_part(bad)
    with pytest.raises(InvalidName):
        canonical_name("Type", "bad.name")


@pytest.mark.parametrize("run_id", ["run_007", "r1", "2026-11-22_a", "-", "Lauf_ä"])
def test_valid_run_ids(run_id: str) -> None:
    assert validate_run_id(run_id) == run_id


@pytest.mark.parametrize("run_id", ["", "run 1", "run.1", "run/1", "run1\n", "r:1"])
def test_invalid_run_ids(run_id: str) -> None:
    with pytest.raises(InvalidName, match="run id"):
        validate_run_id(run_id)
