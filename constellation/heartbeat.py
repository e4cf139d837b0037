"""CHP heartbeat publisher: one task owns the XPUB socket.

Regular heartbeats every 0.8 x interval; an extrasystole (with the status frame) on every state change;
the status frame on a regular beat only when the status changed since the previous regular beat; never
an empty status frame (1.0.2 sends none). The interval follows 1.0.2's formula over the number of
subscribers, computed right before each send, and every message is followed by the next within 0.8 x
the interval it announced (an extrasystole announcing a shorter interval brings the next beat forward).

A new empty-topic subscriber (XPUB_VERBOSER's ``b"\\x01"``) gets a regular heartbeat promptly: joins
within ``join_coalesce_s`` (30 ms) share one beat, and such prompt beats are spaced at least
``prompt_gap_s(interval)`` apart (interval / 10, clamped to 0.1-2 s), so a burst of joins in a big
group cannot multiply the traffic. Without it a subscriber that joins after the last extrasystole
waits up to 0.8 x interval (16 s at 192 subscribers) for the peer's state, while a receiver assumes
2000 ms (3 lives: 9 s) before the first beat. It is an ordinary regular beat: wire-compatible.

The interval never goes below 500 ms (1.0.2's minimum), also when ``max_heartbeat_interval`` is 0 s:
1.0.2 then sends in a busy loop; here every deadline would be "now" and the task would never yield.

Subscriber counting (XPUB_VERBOSER delivers every subscribe and unsubscribe): `b"\\x01"` counts +1 and
`b"\\x00"` -1 (never below 0). Deviation from 1.0.2: a subscription with a non-empty topic is ignored
instead of being counted as -1, and anything else on the socket is ignored too.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from typing import Any

import zmq
import zmq.asyncio

from protocols import EncodeError, chp
from protocols.states import HeartbeatFlags, Role

from .fsm import Snapshot, StateMachine

__all__ = ["HeartbeatPublisher", "prompt_gap_s"]

log = logging.getLogger(__name__)

JOIN_COALESCE_S = 0.03


def prompt_gap_s(interval_ms: int) -> float:
    """Least time between the previous beat and a beat sent for new subscribers."""
    return min(2.0, max(0.1, interval_ms / 10000))


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
        # (snapshot, role flags at the change): the role is that of the moment of the change
        self._changes: asyncio.Queue[tuple[Snapshot, HeartbeatFlags]] = asyncio.Queue(maxsize=256)
        self.subscribers = 0
        self.interval_ms = chp.MIN_INTERVAL_MS
        self.sent = 0
        self.prompt_beats = 0  # regular beats sent early for new subscribers
        self.dropped_changes = 0  # state changes whose extrasystole was dropped (queue full)
        self.join_coalesce_s = JOIN_COALESCE_S
        self._joined_at: float | None = None  # first subscriber arrival since the last beat
        self._last_beat = -math.inf
        self._warned_floor = False
        fsm.add_listener(self._on_change)

    def _on_change(self, snap: Snapshot) -> None:
        # 256 changes without a beat: drop the oldest, so that the last extrasystole is the last state
        # (put_nowait alone dropped the newest ones)
        if self._changes.full():
            self._changes.get_nowait()
            self.dropped_changes += 1
        self._changes.put_nowait((snap, self._role().flags))

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
                if self._joined_at is None:
                    self._joined_at = time.monotonic()
            elif msg == b"\x00":
                self.subscribers = max(0, self.subscribers - 1)

    def _update_interval(self) -> int:
        self._drain_subscriptions()
        max_ms = self._max_ms()
        if max_ms < chp.MIN_INTERVAL_MS and not self._warned_floor:
            self._warned_floor = True
            self._log.warning(
                "max_heartbeat_interval %d ms is below the %d ms minimum; beating every %d ms",
                max_ms,
                chp.MIN_INTERVAL_MS,
                chp.MIN_INTERVAL_MS,
            )
        # Floor: a max of 0 s (1.0.2 accepts it and then beats in a busy loop) would make every
        # deadline "now" and this task would never yield: the satellite's loop froze.
        self.interval_ms = max(chp.MIN_INTERVAL_MS, chp.heartbeat_interval_ms(self.subscribers, max_ms))
        return self.interval_ms

    async def _send(
        self, snap: Snapshot, extrasystole: bool, status: str | None, role_flags: HeartbeatFlags | None = None
    ) -> None:
        flags = self._role().flags if role_flags is None else role_flags
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
        self._joined_at = None  # every subscriber known so far has now had a beat
        self._last_beat = time.monotonic()

    def _prompt_at(self) -> float:
        """When to send a beat for new subscribers (``inf``: nobody new)."""
        if self._joined_at is None:
            return math.inf
        return max(self._last_beat + prompt_gap_s(self.interval_ms), self._joined_at + self.join_coalesce_s)

    async def run(self) -> None:
        prev_status: str | None = self._fsm.status
        change_task: asyncio.Task[tuple[Snapshot, HeartbeatFlags]] | None = None
        try:
            while True:
                snap = self._fsm.snapshot()
                # as 1.0.2: a status frame only for a non-empty status that changed
                status = snap.status if snap.status and snap.status != prev_status else None
                prompt = self._joined_at is not None
                await self._send(snap, False, status)
                if prompt:
                    self.prompt_beats += 1
                prev_status = snap.status
                deadline = time.monotonic() + 0.8 * self.interval_ms / 1000
                while True:
                    # subscriptions that arrived meanwhile (also during a send)
                    self._drain_subscriptions()
                    prompt_at = self._prompt_at()
                    now = time.monotonic()
                    remaining = min(deadline, prompt_at) - now
                    if remaining <= 0:
                        break
                    if change_task is None:
                        change_task = asyncio.ensure_future(self._changes.get())
                    subs: asyncio.Future[int] = self._sock.poll(  # type: ignore[call-arg,assignment]
                        math.ceil(remaining * 1000), zmq.POLLIN
                    )
                    waiters: set[asyncio.Future[Any]] = {change_task, subs}
                    try:
                        done, _ = await asyncio.wait(
                            waiters, timeout=remaining, return_when=asyncio.FIRST_COMPLETED
                        )
                    finally:
                        if not subs.done():
                            subs.cancel()
                    if change_task in done:
                        change, role_flags = change_task.result()
                        change_task = None
                        await self._send(change, True, change.status or None, role_flags)
                        # The extrasystole announced the interval of now (fewer subscribers: shorter);
                        # a receiver times us out after 1.5 x that, so the next beat must not wait
                        # for a deadline computed from a longer interval.
                        deadline = min(deadline, self._last_beat + 0.8 * self.interval_ms / 1000)
        finally:
            if change_task is not None:
                change_task.cancel()
