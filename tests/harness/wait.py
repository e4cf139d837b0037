"""Wait for conditions with deadlines; pick free loopback ports and unique group names."""

from __future__ import annotations

import asyncio
import inspect
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


class WaitTimeout(AssertionError):
    """A condition did not become true before its deadline."""


def _describe(predicate: Callable[..., object], last: object) -> str:
    name = getattr(predicate, "__qualname__", repr(predicate))
    return f"condition {name} still false (last value {last!r})"


async def eventually(
    predicate: Callable[[], T | Awaitable[T]], timeout: float = 5.0, interval: float = 0.005
) -> T:
    """Await until ``predicate()`` (sync or async) returns a truthy value; return that value.

    Raises :class:`WaitTimeout` after ``timeout`` seconds. Exceptions from the predicate propagate.
    """
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        value = predicate()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value  # type: ignore[return-value]
        last = value
        if time.monotonic() >= deadline:
            raise WaitTimeout(f"after {timeout}s: {_describe(predicate, last)}")
        await asyncio.sleep(interval)


def wait_until(predicate: Callable[[], T], timeout: float = 5.0, interval: float = 0.005) -> T:
    """Synchronous twin of :func:`eventually`."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise WaitTimeout(f"after {timeout}s: {_describe(predicate, value)}")
        time.sleep(interval)


def holds_for(check: Callable[[], object], duration: float, interval: float = 0.02) -> None:
    """Call ``check()`` (which asserts) repeatedly for ``duration`` seconds: an invariant over a window,
    e.g. "still RUN while a peer is frozen". The first failing assertion propagates."""
    end = time.monotonic() + duration
    while True:
        check()
        if time.monotonic() >= end:
            return
        time.sleep(interval)


def free_tcp_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free on ``host`` a moment ago (prefer binding to port 0 where possible)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def unique_group(prefix: str = "t") -> str:
    """A Constellation group name no other test uses (group names follow the ``^\\w+$`` rule)."""
    return f"{prefix}{uuid.uuid4().hex[:12]}"
