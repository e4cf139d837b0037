"""CHP heartbeat publisher: one task owns the XPUB socket.

Regular heartbeats every 0.8 x interval; an extrasystole (with the status frame) on every state change;
the status frame on a regular beat only when the status changed since the previous regular beat. The
interval follows 1.0.2's formula over the number of subscribers, computed right before each send.

Subscriber counting (XPUB_VERBOSER delivers every subscribe and unsubscribe): `b"\\x01"` counts +1 and
`b"\\x00"` -1 (never below 0). Deviation from 1.0.2: a subscription with a non-empty topic is ignored
instead of being counted as -1, and anything else on the socket is ignored too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

import zmq
import zmq.asyncio

from protocols import EncodeError, chp
from protocols.states import HeartbeatFlags, Role

from .fsm import Snapshot, StateMachine

__all__ = ["HeartbeatPublisher"]

log = logging.getLogger(__name__)


class HeartbeatPublisher:
    def __init__(
        self,
        sock: zmq.asyncio.Socket,
        name: str,
        fsm: StateMachine,
        role: Callable[[], Role],
        max_interval_ms: Callable[[], int],
        logger: logging.LoggerAdapter[logging.Logger] | None = None,
    ) -> None:
        self._sock = sock
        self._name = name
        self._fsm = fsm
        self._role = role
        self._max_ms = max_interval_ms
        self._log = logger or logging.LoggerAdapter(log, {})
        self._changes: asyncio.Queue[Snapshot] = asyncio.Queue(maxsize=256)
        self.subscribers = 0
        self.interval_ms = chp.MIN_INTERVAL_MS
        self.sent = 0
        fsm.add_listener(self._on_change)

    def _on_change(self, snap: Snapshot) -> None:
        with contextlib.suppress(asyncio.QueueFull):  # 256 changes without a beat: keep the newest
            self._changes.put_nowait(snap)

    def _drain_subscriptions(self) -> None:
        while True:
            try:
                # On a zmq.asyncio socket this returns an already-completed future.
                frames = self._sock.recv_multipart(zmq.NOBLOCK).result()  # type: ignore[attr-defined]
            except zmq.Again:
                return
            if len(frames) != 1:
                continue
            msg = bytes(frames[0])
            if msg == b"\x01":
                self.subscribers += 1
            elif msg == b"\x00":
                self.subscribers = max(0, self.subscribers - 1)

    def _update_interval(self) -> int:
        self._drain_subscriptions()
        self.interval_ms = chp.heartbeat_interval_ms(self.subscribers, self._max_ms())
        return self.interval_ms

    async def _send(self, snap: Snapshot, extrasystole: bool, status: str | None) -> None:
        flags = self._role().flags
        if extrasystole:
            flags |= HeartbeatFlags.IS_EXTRASYSTOLE
        hb = chp.Heartbeat(self._name, snap.state, flags, self._update_interval(), status)
        try:
            frames = chp.encode(hb)
        except EncodeError as exc:
            self._log.error("Heartbeat not encodable: %s", exc)
            return
        await self._sock.send_multipart(frames)
        self.sent += 1

    async def run(self) -> None:
        prev_status: str | None = self._fsm.status
        while True:
            snap = self._fsm.snapshot()
            status = snap.status if snap.status != prev_status else None
            await self._send(snap, False, status)
            prev_status = snap.status
            deadline = time.monotonic() + 0.8 * self.interval_ms / 1000
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                try:
                    async with asyncio.timeout(remaining):
                        change = await self._changes.get()
                except TimeoutError:
                    break
                await self._send(change, True, change.status or None)
