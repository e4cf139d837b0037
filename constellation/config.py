"""Satellite configuration: a msgpack map with lower-cased keys that tracks which keys were used.

Mirrors 1.0.2's `Configuration` on the wire: keys are lower-cased, defaults applied with `get(key,
default)` are written back (so `get_config` shows them), unused keys are removed and reported. Values are
bool, int, float, str, datetime, homogeneous arrays of those, or nested sections (maps).
"""

from __future__ import annotations

import datetime as _dt
import enum
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import msgpack

from .errors import ConfigError

__all__ = ["Configuration", "Section"]

T = TypeVar("T")
E = TypeVar("E", bound=enum.Enum)
_SCALARS = (bool, int, float, str, _dt.datetime)
_MISSING: Any = object()


def _convert_scalar(value: Any) -> Any:
    if isinstance(value, msgpack.Timestamp):
        return value.to_datetime()
    if isinstance(value, _dt.datetime):
        return value.astimezone(_dt.UTC)
    return value


def _validated(mapping: Any, prefix: str = "") -> dict[str, Any]:
    """A lower-cased deep copy of `mapping`, or ConfigError naming the offending key."""
    if not isinstance(mapping, Mapping):
        raise ConfigError(f"configuration must be a map, got {type(mapping).__name__}")
    out: dict[str, Any] = {}
    for key, value in mapping.items():
        if not isinstance(key, str):
            raise ConfigError(f"key `{prefix}{key!r}` not a string")
        low = key.lower()
        full = prefix + low
        if low in out:
            raise ConfigError(f"key `{full}` already present")
        if isinstance(value, Mapping):
            out[low] = _validated(value, full + ".")
        elif isinstance(value, list):
            items = [_convert_scalar(v) for v in value]
            if items and not all(type(v) is type(items[0]) for v in items):
                raise ConfigError(f"array value of key `{full}` not homogeneous")
            if items and not isinstance(items[0], _SCALARS):
                raise ConfigError(f"elements of array value of key `{full}` not scalar")
            out[low] = items
        else:
            value = _convert_scalar(value)
            if not isinstance(value, _SCALARS):
                raise ConfigError(f"value of key `{full}` not scalar")
            out[low] = value
    return out


class Section:
    """One level of the configuration; nested maps are sub-sections."""

    def __init__(self, prefix: str, data: dict[str, Any]) -> None:
        self._prefix = prefix
        self._data = data
        self._used: set[str] = set()
        self._sections = {k: Section(f"{prefix}{k}.", v) for k, v in data.items() if isinstance(v, dict)}

    def __contains__(self, key: str) -> bool:
        return key.lower() in self._data

    def __len__(self) -> int:
        return len(self._data)

    def key_names(self) -> list[str]:
        return list(self._data)

    def as_dict(self) -> dict[str, Any]:
        """The stored map (live, with defaults written back)."""
        return self._data

    def _fail(self, key: str, reason: str) -> ConfigError:
        return ConfigError(f"Value of key `{self._prefix}{key.lower()}` is not valid: {reason}")

    def get(self, key: str, default: Any = _MISSING, check: Callable[[Any], T] | None = None) -> Any:
        """The value of `key` (default written back when missing), converted/validated by `check`."""
        low = key.lower()
        if low not in self._data:
            if default is _MISSING or default is None:  # like 1.0.2: a None default means "required"
                raise ConfigError(f"Key `{self._prefix}{low}` does not exist")
            self._data[low] = default
        value = self._data[low]
        if isinstance(value, dict):
            raise ConfigError(f"Key `{self._prefix}{low}` is a section, not a value")
        if check is not None:
            try:
                value = check(value)
            except ConfigError:
                raise
            except (TypeError, ValueError) as exc:
                raise self._fail(key, str(exc)) from None
        self._used.add(low)
        return value

    def _typed(self, key: str, default: Any, kind: type | tuple[type, ...], name: str) -> Any:
        def check(v: Any) -> Any:
            if isinstance(v, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,)):
                raise TypeError(f"expected {name}, got bool")
            if not isinstance(v, kind):
                raise TypeError(f"expected {name}, got {type(v).__name__}")
            return v

        return self.get(key, default, check)

    def get_str(self, key: str, default: Any = _MISSING) -> str:
        return self._typed(key, default, str, "str")  # type: ignore[no-any-return]

    def get_bool(self, key: str, default: Any = _MISSING) -> bool:
        return self._typed(key, default, bool, "bool")  # type: ignore[no-any-return]

    def get_int(
        self, key: str, default: Any = _MISSING, min_val: int | None = None, max_val: int | None = None
    ) -> int:
        value: int = self._typed(key, default, int, "int")
        self._range(key, value, min_val, max_val)
        return value

    def get_float(
        self, key: str, default: Any = _MISSING, min_val: float | None = None, max_val: float | None = None
    ) -> float:
        value = float(self._typed(key, default, (int, float), "float"))
        self._range(key, value, min_val, max_val)
        return value

    def _range(self, key: str, value: float, lo: float | None, hi: float | None) -> None:
        if lo is not None and value < lo:
            raise self._fail(key, f"{value} is smaller than minimum value {lo}")
        if hi is not None and value > hi:
            raise self._fail(key, f"{value} is larger than maximum value {hi}")

    def get_enum(self, enum_type: type[E], key: str, default: E | None = None) -> E:
        def check(v: Any) -> E:
            if not isinstance(v, str):
                raise TypeError("not `str`")
            for member in enum_type:
                if member.name.casefold() == v.casefold():
                    return member
            choices = ", ".join(f"`{m.name}`" for m in enum_type)
            raise ValueError(f"not a valid {enum_type.__name__}, possible choices {choices}")

        return self.get(key, default.name if default is not None else _MISSING, check)  # type: ignore[no-any-return]

    def get_str_list(self, key: str, default: Any = _MISSING) -> list[str]:
        """A str or a list of str (a single string counts as a one-element list, like 1.0.2)."""

        def check(v: Any) -> list[str]:
            items = v if isinstance(v, list) else [v]
            for item in items:
                if not isinstance(item, str):
                    raise TypeError(f"expected str or list of str, got {type(item).__name__}")
            return list(items)

        return self.get(key, default, check)  # type: ignore[no-any-return]

    def get_section(self, key: str, create: bool = True) -> Section:
        """A nested section; created empty (and written back) when missing and `create`."""
        low = key.lower()
        if low not in self._sections:
            if low in self._data:
                raise self._fail(key, f"expected a section, got {type(self._data[low]).__name__}")
            if not create:
                raise ConfigError(f"Key `{self._prefix}{low}` does not exist")
            self._data[low] = {}
            self._sections[low] = Section(f"{self._prefix}{low}.", self._data[low])
        self._used.add(low)
        return self._sections[low]

    def remove_unused(self) -> list[str]:
        """Delete the keys nobody read; return their full names (a section never opened counts once)."""
        unused: list[str] = []
        for key in list(self._data):
            if key in self._sections:
                if key in self._used:
                    unused += self._sections[key].remove_unused()
                    continue
                del self._sections[key]
            elif key in self._used:
                continue
            unused.append(self._prefix + key)
            del self._data[key]
        return unused

    def update_from(self, other: Section) -> None:
        """Apply a partial configuration (reconfigure): keys must exist and keep their type."""
        self._check_update(other)
        self._apply_update(other)

    def _check_update(self, other: Section) -> None:
        for key, new in other._data.items():
            if key not in self._data:
                raise ConfigError(
                    f"Failed to update value of key `{self._prefix}{key}`: key does not exist in current "
                    "configuration"
                )
            old = self._data[key]
            if type(old) is not type(new) or (
                isinstance(old, list) and old and new and type(old[0]) is not type(new[0])
            ):
                raise ConfigError(
                    f"Failed to update value of key `{self._prefix}{key}`: cannot change type from "
                    f"`{type(old).__name__}` to `{type(new).__name__}`"
                )
            if isinstance(old, dict):
                self._sections[key]._check_update(other._sections[key])

    def _apply_update(self, other: Section) -> None:
        for key, new in other._data.items():
            if isinstance(new, dict):
                self._sections[key]._apply_update(other._sections[key])
            else:
                self._data[key] = new


class Configuration(Section):
    """The root section, built from a decoded msgpack payload (None counts as an empty map)."""

    def __init__(self, payload: Any = None) -> None:
        super().__init__("", _validated({} if payload is None else payload))

    def user_items(self) -> dict[str, Any]:
        return {k: v for k, v in self._data.items() if not k.startswith("_")}
