"""Framework (underscore) configuration keys, in both the 1.0.2 sectioned and the flat spellings.

| sectioned (1.0.2)                         | flat (pre-1.0, C++)                  |
|-------------------------------------------|--------------------------------------|
| `_autonomy.role`                          | `_role`                              |
| `_autonomy.max_heartbeat_interval` (s)    | `_max_heartbeat_interval`            |
| `_conditions.require_<state>_after`       | `_require_<state>_after`             |
| `_conditions.transition_timeout` (s)      | `_conditional_transition_timeout`    |

Giving one key in both spellings is an error. Defaults are written back in the sectioned form, so
`get_config` shows `_autonomy: {role, max_heartbeat_interval}` like 1.0.2.

This module is the `Configuration` glue only: what conditions mean (parsing, validation, presence,
the waiter) lives in `constellation.peers.conditions`.
"""

from __future__ import annotations

from protocols.states import Role

from .config import Configuration, Section
from .errors import ConfigError
from .peers.conditions import (
    DEFAULT_TIMEOUT_S,
    TIMEOUT_KEYS,
    Conditions,
    PeerStates,
    check_present,
    parse_conditions,
)

__all__ = ["read_autonomy", "read_conditions"]


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


def read_autonomy(config: Configuration) -> tuple[Role, int]:
    """Role and maximum heartbeat interval (s); defaults written back into `_autonomy`."""
    autonomy = config.get_section("_autonomy")
    where = _pick(config, "_autonomy", "role", "_role")
    sec, key = where if where else (autonomy, "role")
    role = sec.get_enum(Role, key, Role.DYNAMIC)
    where = _pick(config, "_autonomy", "max_heartbeat_interval", "_max_heartbeat_interval")
    sec, key = where if where else (autonomy, "max_heartbeat_interval")
    return role, sec.get_int(key, 30, min_val=0)


def read_conditions(config: Configuration, own_name: str, peers: PeerStates | None) -> Conditions:
    """`parse_conditions` + `check_present` on an `initialize` configuration.

    Marks the condition keys used and, when a `_conditions` section is given without a timeout, writes
    the default back into it (1.0.2's `get_config`). Raises `ConditionError` (a `ConfigError`) for an
    invalid key or a remote that `peers` does not know (None: no monitor, so every remote is absent).
    """
    conditions = parse_conditions(config.as_dict(), own_name)
    for key in conditions.used_keys:
        if key in config:  # flat, or a dotted key at the root
            config.get(key)
        else:
            section, sub = key.split(".", 1)
            config.get_section(section).get(sub)
    if "_conditions" in config and not conditions.used_keys & set(TIMEOUT_KEYS):
        config.get_section("_conditions").get_int("transition_timeout", DEFAULT_TIMEOUT_S)
    check_present(conditions, peers)
    return conditions
