"""``SyncController``: a blocking façade over :class:`Controller` for scripts and the REPL.

The controller runs on its own event loop in one background thread (python-zeroconf's pattern); each
call hops in with ``run_coroutine_threadsafe(...).result()``. Snapshots are read on that loop too.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Iterable
from types import TracebackType
from typing import Any, TypeVar

from protocols import State

from .controller import Controller
from .model import Replies, Reply, SatelliteInfo, Summary

T = TypeVar("T")


class SyncController:
    """Blocking twin of :class:`Controller`; same arguments, same methods without ``await``."""

    def __init__(self, group: str, name: str = "ctl", **kwargs: Any) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name=f"controller-{group}", daemon=True
        )
        self._thread.start()
        self._closed = False

        async def make() -> Controller:
            ctl = Controller(group, name, **kwargs)
            await ctl.start()
            return ctl

        try:
            self._ctl = self._call(make())
        except BaseException:
            self._stop_loop()
            raise
        self.group = group
        self.canonical_name = self._ctl.canonical_name

    def _call(self, aw: Awaitable[T]) -> T:
        async def run() -> T:
            return await aw

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result()

    def _read(self, fn: Callable[[], T]) -> T:
        async def run() -> T:
            return fn()

        return self._call(run())

    # -- the Controller API, blocking ----------------------------------------------------------------

    @property
    def satellites(self) -> dict[str, SatelliteInfo]:
        return self._read(lambda: self._ctl.satellites)

    @property
    def states(self) -> dict[str, State]:
        return self._read(lambda: self._ctl.states)

    @property
    def state(self) -> Summary:
        return self._read(lambda: self._ctl.state)

    def command(self, name: str, command: str, payload: Any = None, *, timeout: float | None = None) -> Reply:
        return self._call(self._ctl.command(name, command, payload, timeout=timeout))

    def command_all(
        self,
        command: str,
        payload: Any = None,
        *,
        names: Iterable[str] | None = None,
        type: str | None = None,
        timeout: float | None = None,
    ) -> Replies:
        return self._call(self._ctl.command_all(command, payload, names=names, type=type, timeout=timeout))

    def await_satellites(self, names: Iterable[str] | int, timeout: float = 10.0) -> dict[str, SatelliteInfo]:
        return self._call(self._ctl.await_satellites(names, timeout))

    def await_state(
        self, state: State, names: Iterable[str] | None = None, *, timeout: float = 30.0
    ) -> dict[str, SatelliteInfo]:
        return self._call(self._ctl.await_state(state, names, timeout=timeout))

    # -- lifecycle -----------------------------------------------------------------------------------

    def close(self) -> None:
        """Close the controller and stop its thread. Idempotent."""
        if self._closed:
            return
        self._closed = True
        try:
            self._call(self._ctl.aclose())
        finally:
            self._stop_loop()

    def _stop_loop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        if not self._thread.is_alive():
            self._loop.close()

    def __enter__(self) -> SyncController:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
