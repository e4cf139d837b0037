"""Framework (underscore) configuration keys, in both the 1.0.2 sectioned and the flat spellings.

| sectioned (1.0.2)                         | flat (pre-1.0, C++)                  |
|-------------------------------------------|--------------------------------------|
| `_autonomy.role`                          | `_role`                              |
| `_autonomy.max_heartbeat_interval` (s)    | `_max_heartbeat_interval`            |
| `_conditions.require_<state>_after`       | `_require_<state>_after`             |
| `_conditions.transition_timeout` (s)      | `_conditional_transition_timeout`    |

Giving one key in both spellings is an error. Defaults are written back in the sectioned form, so
`get_config` shows `_autonomy: {role, max_heartbeat_interval}` like 1.0.2.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from protocols.names import is_valid_canonical_name
from protocols.states import Role, State

from .config import Configuration, Section
from .errors import ConfigError

__all__ = ["CONDITIONAL_STATES", "Conditions", "PeerView", "read_autonomy", "read_conditions"]

CONDITIONAL_STATES = (State.initializing, State.launching, State.landing, State.starting, State.stopping)


@dataclass(frozen=True, slots=True)
class Conditions:
    """Remotes each conditional transitional state waits for, and the wait timeout in seconds."""

    requires: Mapping[State, tuple[str, ...]] = field(default_factory=dict)
    timeout_s: int = 30


def _pick(config: Configuration, section: str, key: str, flat: str) -> tuple[Section, str] | None:
    """Where the key lives: (section, key) for the sectioned spelling, (root, flat) for the flat one."""
    sec_has = (
        section in config
        and isinstance(config.as_dict()[section], dict)
        and key in config.get_section(section)
    )
    if sec_has and flat in config:
        raise ConfigError(f"Key `{section}.{key}` is given twice (also as `{flat}`)")
    if sec_has:
        return config.get_section(section), key
    if flat in config:
        return config, flat
    return None


class PeerView(Protocol):
    """What conditional transitions need to know about peers (implemented by the peer monitor)."""

    def is_present(self, canonical_name: str) -> bool: ...


def read_autonomy(config: Configuration) -> tuple[Role, int]:
    """Role and maximum heartbeat interval (s); defaults written back into `_autonomy`."""
    autonomy = config.get_section("_autonomy")
    where = _pick(config, "_autonomy", "role", "_role")
    sec, key = where if where else (autonomy, "role")
    role = sec.get_enum(Role, key, Role.DYNAMIC)
    where = _pick(config, "_autonomy", "max_heartbeat_interval", "_max_heartbeat_interval")
    sec, key = where if where else (autonomy, "max_heartbeat_interval")
    return role, sec.get_int(key, 30, min_val=0)


def read_conditions(config: Configuration, own_name: str, peers: PeerView | None) -> Conditions:
    """The conditional transitions; ConfigError naming the key for a bad or absent remote."""
    requires: dict[State, tuple[str, ...]] = {}
    has_section = "_conditions" in config
    if has_section:
        for key in config.get_section("_conditions").key_names():
            _check_condition_key(f"_conditions.{key}", key)
    for key in config.key_names():
        _check_condition_key(key, key[1:])
    for state in CONDITIONAL_STATES:
        key = f"require_{state.name}_after"
        where = _pick(config, "_conditions", key, f"_{key}")
        if where is None:
            continue
        sec, k = where
        full = f"_conditions.{k}" if sec is not config else k
        names = sec.get_str_list(k)
        for name in names:
            if not is_valid_canonical_name(name):
                raise ConfigError(f"Value of key `{full}` is not valid: {name} is not a valid canonical name")
            if name.lower() == own_name.lower():
                raise ConfigError(f"Value of key `{full}` is not valid: Satellite cannot depend on itself")
            if peers is None or not peers.is_present(name):
                raise ConfigError(
                    f"Value of key `{full}` is not valid: Dependent remote satellite {name} is not present"
                )
        requires[state] = tuple(names)
    where = _pick(config, "_conditions", "transition_timeout", "_conditional_transition_timeout")
    if where is not None:
        timeout = where[0].get_int(where[1], 30, min_val=0)
    elif has_section:
        timeout = config.get_section("_conditions").get_int("transition_timeout", 30, min_val=0)
    else:
        timeout = 30
    return Conditions(requires, timeout)


def _check_condition_key(full: str, key: str) -> None:
    """`require_<steady state>_after` (a condition on a steady state) is refused with a clear message."""
    if key.startswith("require_") and key.endswith("_after"):
        state = key[len("require_") : -len("_after")]
        if state not in {s.name for s in CONDITIONAL_STATES}:
            raise ConfigError(
                f"Value of key `{full}` is not valid: conditions exist only for the transitional states "
                + ", ".join(s.name for s in CONDITIONAL_STATES)
            )
