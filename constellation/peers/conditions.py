"""Autonomous conditional transitions (wire doc §5): parsing, validation, and the async waiter.

Both spellings are accepted, case-insensitively:

- 1.0.2 sectioned: ``_conditions.require_<transition>_after``, ``_conditions.transition_timeout``
  (as a nested map ``{"_conditions": {...}}`` or as dotted flat keys);
- flat (≤ 0.8 and issue 4): ``_require_<transition>_after``, ``_conditional_transition_timeout``.

``<transition>`` is one of initializing, launching, landing, starting, stopping. Values are a canonical
name or a list of them; the timeout is an int (seconds, ≥ 0, default 30). Errors are ``ConditionError``
with 1.0.2's wording, ready for an INVALID ``initialize`` reply.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from protocols import InvalidName, State
from protocols.names import validate_canonical_name

from .errors import ConditionError, ConditionTimeout, RemoteInError, RemoteMissing

__all__ = [
    "CONDITIONAL_TRANSITIONS",
    "DEFAULT_TIMEOUT_S",
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
_BY_NAME: Final = {s.name.lower(): s for s in State if s is not State.DEAD}


@dataclass(frozen=True, slots=True)
class Conditions:
    """Remote names each transition waits for, and the timeout (seconds)."""

    requirements: Mapping[State, tuple[str, ...]] = field(default_factory=dict)
    timeout_s: float = DEFAULT_TIMEOUT_S
    used_keys: frozenset[str] = frozenset()  # full lower-case keys consumed (mark them used)

    def remotes(self, transition: State) -> tuple[str, ...]:
        return tuple(self.requirements.get(transition, ()))

    def __bool__(self) -> bool:
        return any(self.requirements.values())


def _flatten(config: Mapping[str, Any]) -> dict[str, Any]:
    """Lower-cased ``section.key`` -> value for the two levels we care about."""
    flat: dict[str, Any] = {}
    for key, value in config.items():
        if not isinstance(key, str):
            continue
        low = key.lower()
        if isinstance(value, Mapping) and low == "_conditions":
            for sub, v in value.items():
                if isinstance(sub, str):
                    flat[f"_conditions.{sub.lower()}"] = v
        else:
            flat[low] = value
    return flat


def _transition_of(key: str) -> str | None:
    """``_conditions.require_X_after`` / ``_require_X_after`` -> ``X``; None if not such a key."""
    for prefix in ("_conditions.require_", "_require_"):
        if key.startswith(prefix) and key.endswith("_after") and len(key) > len(prefix) + len("_after"):
            return key[len(prefix) : -len("_after")]
    return None


def _names(key: str, value: Any, own: str | None) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not all(isinstance(v, str) for v in items):
        raise ConditionError(key, "expected a canonical name or a list of canonical names")
    names: list[str] = []
    for name in items:
        try:
            validate_canonical_name(name)
        except InvalidName:
            raise ConditionError(key, f"{name} is not a valid canonical name") from None
        if own is not None and name.casefold() == own.casefold():
            raise ConditionError(key, "Satellite cannot depend on itself")
        if name.casefold() not in (n.casefold() for n in names):
            names.append(name)
    return tuple(names)


def parse_conditions(config: Mapping[str, Any], own_name: str | None = None) -> Conditions:
    """Read and validate the condition keys of an ``initialize`` payload (other keys are ignored)."""
    flat = _flatten(config)
    requirements: dict[State, tuple[str, ...]] = {}
    used: set[str] = set()
    for key, value in flat.items():
        which = _transition_of(key)
        if which is None:
            continue
        state = _BY_NAME.get(which)
        if state not in CONDITIONAL_TRANSITIONS:
            allowed = ", ".join(s.name for s in CONDITIONAL_TRANSITIONS)
            kind = "a steady state" if state is not None and state.is_steady else "not supported"
            reason = f"conditions apply to the transitions {allowed} only; `{which}` is {kind}"
            raise ConditionError(key, reason)
        assert state is not None
        names = _names(key, value, own_name)
        if state in requirements:
            names = requirements[state] + tuple(n for n in names if n not in requirements[state])
        requirements[state] = names
        used.add(key)
    timeout: Any = DEFAULT_TIMEOUT_S
    for key in ("_conditions.transition_timeout", "_conditional_transition_timeout"):
        if key in flat:
            timeout = flat[key]
            used.add(key)
            number = isinstance(timeout, int | float) and not isinstance(timeout, bool)
            if not number or not math.isfinite(timeout):
                raise ConditionError(key, f"expected a number of seconds, got {type(timeout).__name__}")
            if timeout < 0:
                raise ConditionError(key, f"must be >= 0 seconds, got {timeout}")
    return Conditions(requirements, float(timeout), frozenset(used))


class PeerStates(Protocol):
    """What the waiter needs from a peer monitor (``PeerMonitor`` implements it)."""

    def state_of(self, name: str) -> State | None: ...

    async def changed(self) -> None: ...


def check_present(conditions: Conditions, peers: PeerStates) -> None:
    """1.0.2's check at ``initialize``: every required remote is watched and not lost."""
    for state, names in conditions.requirements.items():
        for name in names:
            if peers.state_of(name) in (None, State.DEAD):
                key = f"_conditions.require_{state.name}_after"
                raise ConditionError(key, f"Dependent remote satellite {name} is not present")


async def wait_for_conditions(
    transition: State,
    conditions: Conditions,
    peers: PeerStates,
    *,
    timeout: float | None = None,
    on_status: Callable[[str], None] | None = None,
) -> None:
    """Wait until every remote required for ``transition`` reports its target steady state.

    Returns at once if there is no condition. Raises ``RemoteMissing`` (not watched, lost or departed),
    ``RemoteInError`` (reports ERROR) or ``ConditionTimeout``. ``on_status`` receives 1.0.2's
    ``Awaiting state from X, currently: ORBIT`` whenever what we wait for changes.
    """
    remotes = conditions.remotes(transition)
    if not remotes:
        return
    target = transition.target
    limit = conditions.timeout_s if timeout is None else timeout
    deadline = time.monotonic() + limit
    last_status = ""
    while True:
        changed = asyncio.ensure_future(peers.changed())  # subscribe before looking: no lost wake-up
        try:
            pending = _first_unsatisfied(remotes, target, peers)
            if pending is None:
                return
            status = f"Awaiting state from {pending[0]}, currently: {pending[1].name}"
            if on_status is not None and status != last_status:
                on_status(status)
            last_status = status
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ConditionTimeout(limit)
            await asyncio.wait_for(asyncio.shield(changed), remaining)
        except TimeoutError:
            continue  # the deadline check above raises ConditionTimeout with the right text
        finally:
            changed.cancel()


def _first_unsatisfied(
    remotes: tuple[str, ...], target: State, peers: PeerStates
) -> tuple[str, State] | None:
    for name in remotes:
        state = peers.state_of(name)
        if state is None or state is State.DEAD:
            raise RemoteMissing(name)
        if state is State.ERROR:
            raise RemoteInError(name, state)
        if state is not target:
            return name, state
    return None
