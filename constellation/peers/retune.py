"""Keeps every subscription's ZMTP PING interval suited to the group's size (see ``MonitorSettings``).

libzmq fixes a connection's PING interval when it connects, so a subscription made in a small group
would PING at the small group's rate forever. When the group has grown or shrunk past
``zmtp_retune_factor``, the monitor builds a new subscription with the right interval, and this module
closes the old one once the new one has completed its handshake. Both feed the same tracker meanwhile:
a duplicate heartbeat changes nothing, and a stale copy (older than the last beat taken, delivered late
by the lagging socket) is ignored while they overlap. At most ``zmtp_retunes_per_s`` rebuilds a second.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass
from typing import Any

from .settings import MonitorSettings
from .tracker import PeerTracker

__all__ = ["PingRetuner", "Rebuild", "Replacement"]


@dataclass(frozen=True, slots=True)
class Replacement:
    """A subscription being replaced: ``new`` sets ``connected`` at its handshake; until ``old`` is
    cancelled, both feed ``tracker`` (whose ``overlapping`` count this replacement holds)."""

    old: asyncio.Task[None]
    new: asyncio.Task[None]
    connected: asyncio.Event
    tracker: PeerTracker


#: ``rebuild(host_id)``: replace the peer's subscription if it still needs it, or None (gone, lost,
#: or already fine).
Rebuild = Callable[[bytes], "Replacement | None"]
Spawn = Callable[[Coroutine[Any, Any, None]], "asyncio.Task[None]"]


class PingRetuner:
    def __init__(self, settings: MonitorSettings, rebuild: Rebuild, spawn: Spawn) -> None:
        self._settings = settings
        self._rebuild = rebuild
        self._spawn = spawn
        self._due: dict[bytes, None] = {}  # ordered set of host ids
        self._loop_task: asyncio.Task[None] | None = None
        self.rebuilt = 0

    def schedule(self, intervals: Iterable[tuple[bytes, int]], peers: int) -> None:
        """Queue every ``(host_id, ping interval)`` that no longer suits a group of ``peers``."""
        for host_id, ivl_ms in intervals:
            if host_id not in self._due and self._settings.zmtp_retune_to(ivl_ms, peers) is not None:
                self._due[host_id] = None
        if self._due and (self._loop_task is None or self._loop_task.done()):
            self._loop_task = self._spawn(self._run())

    async def _run(self) -> None:
        gap = 1.0 / self._settings.zmtp_retunes_per_s
        while self._due:
            host_id = next(iter(self._due))
            del self._due[host_id]
            replaced = self._rebuild(host_id)
            if replaced is None:
                continue
            self.rebuilt += 1
            self._spawn(_retire(replaced))
            await asyncio.sleep(gap)


async def _retire(rep: Replacement) -> None:
    """Cancel the old watcher once its successor is connected and subscribed, at once if the successor
    ended (the peer was dropped, replaced or departed meanwhile), or after 10 s anyway."""
    waiter = asyncio.ensure_future(rep.connected.wait())
    try:
        await asyncio.wait({waiter, rep.new}, timeout=10.0, return_when=asyncio.FIRST_COMPLETED)
        if not rep.new.done():
            await asyncio.sleep(0.25)  # the new SUBSCRIBE reaches the publisher's I/O thread
    finally:
        waiter.cancel()
        rep.old.cancel()
        rep.tracker.overlapping -= 1
