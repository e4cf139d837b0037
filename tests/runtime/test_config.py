"""Configuration: lower-cased keys, defaults written back, unused keys, updates, framework spellings."""

from __future__ import annotations

import datetime as dt

import msgpack
import pytest

from constellation import ConfigError, Configuration
from constellation.framework import read_autonomy
from protocols import Role


def test_keys_are_lower_cased_and_defaults_written_back() -> None:
    cfg = Configuration({"Voltage": 1.5, "Sect": {"Inner": 1}})
    assert cfg.get_float("VOLTAGE") == 1.5
    assert cfg.get_int("current", 3) == 3
    assert cfg.get_section("sect").get_int("inner") == 1
    assert cfg.as_dict() == {"voltage": 1.5, "sect": {"inner": 1}, "current": 3}
    assert cfg.remove_unused() == []


def test_unused_keys_are_removed_and_named() -> None:
    cfg = Configuration({"a": 1, "b": 2, "never": {"x": 1}, "opened": {"y": 1, "z": 2}})
    cfg.get_int("a")
    cfg.get_section("opened").get_int("y")
    assert sorted(cfg.remove_unused()) == ["b", "never", "opened.z"]
    assert cfg.as_dict() == {"a": 1, "opened": {"y": 1}}


def test_bad_values_name_the_key() -> None:
    cfg = Configuration({"n": "x", "r": 5, "role": "boss", "s": {"t": True}})
    with pytest.raises(ConfigError, match=r"^Value of key `n` is not valid: expected int, got str$"):
        cfg.get_int("n")
    with pytest.raises(ConfigError, match=r"`r` is not valid: 5 is larger than maximum value 4"):
        cfg.get_int("r", max_val=4)
    with pytest.raises(ConfigError, match=r"`role` is not valid: not a valid Role"):
        cfg.get_enum(Role, "role")
    with pytest.raises(ConfigError, match=r"`s.t` is not valid: expected int, got bool"):
        cfg.get_section("s").get_int("t")
    with pytest.raises(ConfigError, match=r"^Key `missing` does not exist$"):
        cfg.get_int("missing", None)


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (5, "configuration must be a map, got int"),
        ({"a": None}, "value of key `a` not scalar"),
        ({"a": [1, "x"]}, "array value of key `a` not homogeneous"),
        ({"a": [{"b": 1}]}, "elements of array value of key `a` not scalar"),
        ({"s": {"K": 1, "k": 2}}, "key `s.k` already present"),
    ],
)
def test_payload_validation(payload: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Configuration(payload)


def test_timestamps_become_utc_datetimes() -> None:
    ts = msgpack.Timestamp(1_700_000_000, 5000)
    cfg = Configuration({"t": ts, "l": [ts]})
    assert cfg.get("t") == dt.datetime(2023, 11, 14, 22, 13, 20, 5, tzinfo=dt.UTC)
    assert cfg.get("l")[0].tzinfo is dt.UTC


def test_update_rules() -> None:
    cfg = Configuration({"a": 1, "s": {"b": "x"}})
    cfg.update_from(Configuration({"a": 2, "s": {"b": "y"}}))
    assert cfg.as_dict() == {"a": 2, "s": {"b": "y"}}
    with pytest.raises(ConfigError, match="cannot change type from `int` to `str`"):
        cfg.update_from(Configuration({"a": "z"}))
    with pytest.raises(ConfigError, match="key does not exist in current configuration"):
        cfg.update_from(Configuration({"new": 1}))


def test_autonomy_both_spellings() -> None:
    cfg = Configuration({})
    assert read_autonomy(cfg) == (Role.DYNAMIC, 30)
    assert cfg.as_dict() == {"_autonomy": {"role": "DYNAMIC", "max_heartbeat_interval": 30}}
    assert read_autonomy(Configuration({"_role": "transient", "_max_heartbeat_interval": 5})) == (
        Role.TRANSIENT,
        5,
    )
    cfg = Configuration({"_autonomy": {"role": "Essential", "max_heartbeat_interval": 2}})
    assert read_autonomy(cfg) == (Role.ESSENTIAL, 2)
    assert cfg.remove_unused() == []
    with pytest.raises(ConfigError, match="given twice"):
        read_autonomy(Configuration({"_autonomy": {"role": "NONE"}, "_role": "NONE"}))
    with pytest.raises(ConfigError, match="smaller than minimum value 0"):
        read_autonomy(Configuration({"_max_heartbeat_interval": -1}))
