"""Conditional transitions (wire doc §5, issue 4): the one implementation, used by the Satellite.

- ``parse_conditions(config, own_name)``: pure; reads and validates the condition keys of an
  ``initialize`` payload (any mapping; the Satellite passes its ``Configuration`` through
  ``constellation.framework.read_conditions``, which also marks the keys used).
- ``check_present(conditions, peers)``: 1.0.2's check at ``initialize`` that every remote is there.
- ``wait_for_conditions(transition, conditions, peers)``: the waiter, woken by ``peers.changed()``
  (extrasystoles), never by polling; ``TransitionRunner`` runs it before each transitional hook.

Both spellings are accepted, case-insensitively:

- 1.0.2 sectioned: ``_conditions.require_<transition>_after``, ``_conditions.transition_timeout``
  (a nested map ``{"_conditions": {...}}`` or dotted keys);
- flat (≤ 0.8 and issue 4): ``_require_<transition>_after``, ``_conditional_transition_timeout``.

``<transition>`` is one of initializing, launching, landing, starting, stopping. Values are a canonical
name or a list of them; the timeout is a number of seconds ≥ 0 (default 30). Invalid keys raise
``ConditionError`` (a ``ConfigError``: an INVALID ``initialize`` reply); an aborted wait raises a
``ConditionFailed`` whose text is 1.0.2's status (real 1.0.2 controllers and tests compare it).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from protocols import InvalidName, State
from protocols.names import validate_canonical_name

from .errors import ConditionError, ConditionTimeout, RemoteInError, RemoteMissing

__all__ = [
    "CONDITIONAL_TRANSITIONS",
    "DEFAULT_TIMEOUT_S",
    "TIMEOUT_KEYS",
    "Conditions",
    "PeerStates",
    "check_present",
    "parse_conditions",
    "wait_for_conditions",
]

#: Transitional states that may carry conditions.
CONDITIONAL_TRANSITIONS: Final = (
    State.initializing,
    State.launching,
    State.landing,
    State.starting,
    State.stopping,
)
DEFAULT_TIMEOUT_S: Final = 30
#: The timeout's two spellings (lower case, sectioned first).
TIMEOUT_KEYS: Final = ("_conditions.transition_timeout", "_conditional_transition_timeout")
_SECTION: Final = "_conditions"
_BY_NAME: Final = {s.name.lower(): s for s in State if s is not State.DEAD}
_PREFIXES: Final = ("_conditions.require_", "_require_")


@dataclass(frozen=True, slots=True)
class Conditions:
    """Remote names each transition waits for, and the timeout (seconds)."""

    requirements: Mapping[State, tuple[str, ...]] = field(default_factory=dict)
    timeout_s: float = DEFAULT_TIMEOUT_S
    used_keys: frozenset[str] = frozenset()  # full lower-case keys consumed (mark them used)
    keys: Mapping[State, str] = field(default_factory=dict)  # the key each requirement came from

    def remotes(self, transition: State) -> tuple[str, ...]:
        return tuple(self.requirements.get(transition, ()))

    def __bool__(self) -> bool:
        return any(self.requirements.values())


def _transition_of(key: str) -> str | None:
    """``_conditions.require_X_after`` / ``_require_X_after`` -> ``X``; None if not such a key."""
    for prefix in _PREFIXES:
        if key.startswith(prefix) and key.endswith("_after") and len(key) > len(prefix) + len("_after"):
            return key[len(prefix) : -len("_after")]
    return None


def _is_condition_key(key: str) -> bool:
    return _transition_of(key) is not None or key in TIMEOUT_KEYS


def _condition_keys(config: Mapping[str, Any]) -> dict[str, Any]:
    """Lower-cased full key -> value for the condition keys only (nested map or dotted keys)."""
    found: dict[str, Any] = {}

    def put(key: str, value: Any) -> None:
        if key in found:
            raise ConditionError(key, "the key is given twice")
        found[key] = value

    for key, value in config.items():
        if not isinstance(key, str):
            continue
        low = key.lower()
        if low == _SECTION:
            if not isinstance(value, Mapping):
                raise ConditionError(_SECTION, f"expected a section, got {type(value).__name__}")
            for sub, v in value.items():
                if isinstance(sub, str) and _is_condition_key(full := f"{_SECTION}.{sub.lower()}"):
                    put(full, v)
        elif _is_condition_key(low):
            put(low, value)
    return found


def _names(key: str, value: Any, own: str | None) -> tuple[str, ...]:
    items = value if isinstance(value, list | tuple) else [value]
    names: list[str] = []
    for name in items:
        if not isinstance(name, str):
            raise ConditionError(key, f"expected str or list of str, got {type(name).__name__}")
        try:
            validate_canonical_name(name)
        except InvalidName:
            raise ConditionError(key, f"{name} is not a valid canonical name") from None
        if own is not None and name.casefold() == own.casefold():
            raise ConditionError(key, "Satellite cannot depend on itself")
        if name.casefold() not in (n.casefold() for n in names):
            names.append(name)
    return tuple(names)


def _timeout(key: str, value: Any) -> float:
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if not number or not math.isfinite(value):
        raise ConditionError(key, f"expected a number of seconds, got {type(value).__name__}")
    if value < 0:
        raise ConditionError(key, f"must be >= 0 seconds, got {value}")
    return float(value)


def _twice(key: str, other: str) -> ConditionError:
    return ConditionError(key, f"the key is given twice (also as `{other}`)")


def parse_conditions(config: Mapping[str, Any], own_name: str | None = None) -> Conditions:
    """Read and validate the condition keys of an ``initialize`` payload (other keys are ignored).

    A condition on ``own_name`` (case-insensitive), on a steady state or an unknown transition, an
    invalid name, a key given in both spellings, or a bad timeout raises ``ConditionError``.
    """
    found = _condition_keys(config)
    requirements: dict[State, tuple[str, ...]] = {}
    keys: dict[State, str] = {}
    for key, value in found.items():
        which = _transition_of(key)
        if which is None:
            continue
        state = _BY_NAME.get(which)
        if state is None or state not in CONDITIONAL_TRANSITIONS:
            allowed = ", ".join(s.name for s in CONDITIONAL_TRANSITIONS)
            kind = "a steady state" if state is not None and state.is_steady else "not supported"
            reason = f"conditions exist only for the transitional states {allowed}; `{which}` is {kind}"
            raise ConditionError(key, reason)
        if state in keys:
            raise _twice(keys[state], key)
        requirements[state] = _names(key, value, own_name)
        keys[state] = key
    timeout: float = DEFAULT_TIMEOUT_S
    timeout_key: str | None = None
    for key in TIMEOUT_KEYS:
        if key in found:
            if timeout_key is not None:
                raise _twice(timeout_key, key)
            timeout, timeout_key = _timeout(key, found[key]), key
    used = {*keys.values(), *([timeout_key] if timeout_key else [])}
    return Conditions(requirements, timeout, frozenset(used), keys)


class PeerStates(Protocol):
    """What conditions need from a peer monitor (``PeerMonitor`` and the Satellite's seam implement it).

    ``state_of`` is case-insensitive: None if the peer is not watched, DEAD if lost, departed or not
    heard from yet. ``changed`` returns after the next change of any peer.
    """

    def state_of(self, name: str, /) -> State | None: ...

    async def changed(self) -> None: ...


def _state(peers: PeerStates | None, name: str) -> State | None:
    """The remote's state; None if it is absent (no monitor, not watched, lost or departed)."""
    state = None if peers is None else peers.state_of(name)
    return None if state is State.DEAD else state


def check_present(conditions: Conditions, peers: PeerStates | None) -> None:
    """1.0.2's check at ``initialize``: every required remote is watched and alive (None: no monitor)."""
    for state, names in conditions.requirements.items():
        for name in names:
            if _state(peers, name) is None:
                key = conditions.keys.get(state, f"_conditions.require_{state.name}_after")
                raise ConditionError(key, f"Dependent remote satellite {name} is not present")


async def wait_for_conditions(
    transition: State,
    conditions: Conditions,
    peers: PeerStates | None,
    *,
    timeout: float | None = None,
    on_status: Callable[[str], None] | None = None,
) -> None:
    """Wait until every remote required for ``transition`` reports its target steady state.

    Returns at once if there is no condition. Raises ``RemoteMissing`` (not watched, lost or departed),
    ``RemoteInError`` (reports ERROR) or ``ConditionTimeout``. ``on_status`` receives 1.0.2's
    ``Awaiting state from X, currently: SatelliteState.ORBIT`` whenever what we wait for changes.
    """
    remotes = conditions.remotes(transition)
    if not remotes:
        return
    target = transition.target
    limit = conditions.timeout_s if timeout is None else timeout
    last_status = ""
    try:
        async with asyncio.timeout(limit):
            while (pending := _first_unsatisfied(remotes, target, peers)) is not None:
                status = f"Awaiting state from {pending[0]}, currently: SatelliteState.{pending[1].name}"
                if on_status is not None and status != last_status:
                    on_status(status)
                last_status = status
                assert peers is not None  # _first_unsatisfied raised RemoteMissing otherwise
                await peers.changed()  # nothing awaits between the look and this: no lost wake-up
    except TimeoutError:
        raise ConditionTimeout(limit) from None


def _first_unsatisfied(
    remotes: tuple[str, ...], target: State, peers: PeerStates | None
) -> tuple[str, State] | None:
    """The first remote not yet in ``target``; every remote is checked for absence and ERROR first."""
    pending: tuple[str, State] | None = None
    for name in remotes:
        state = _state(peers, name)
        if state is None:
            raise RemoteMissing(name)
        if state is State.ERROR:
            raise RemoteInError(name, state)
        if state is not target and pending is None:
            pending = name, state
    return pending
