"""The stop token handed to `do_run`: set by `stop`, `interrupt` and `failure`, never polled by us.

Sync code: `while not stop.wait(0.1): ...` or `stop.is_set()`. Async code: `await stop` (returns when
set) or `await stop.wait_async(timeout)`.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Generator
from typing import Any

__all__ = ["StopToken"]


class StopToken:
    """Set once from the event loop; readable from any thread and awaitable on the loop."""

    def __init__(self) -> None:
        self._flag = threading.Event()
        self._async = asyncio.Event()

    def set(self) -> None:
        """Request the stop (call from the event loop thread)."""
        self._flag.set()
        self._async.set()

    def is_set(self) -> bool:
        return self._flag.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block the calling (worker) thread until set or `timeout`; True if set."""
        return self._flag.wait(timeout)

    async def wait_async(self, timeout: float | None = None) -> bool:
        """Await until set or `timeout` seconds; True if set."""
        try:
            async with asyncio.timeout(timeout):
                await self._async.wait()
        except TimeoutError:
            return False
        return True

    def __await__(self) -> Generator[Any, None, bool]:
        return self._async.wait().__await__()

    def __repr__(self) -> str:
        return f"StopToken(set={self.is_set()})"
