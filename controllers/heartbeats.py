"""One satellite's heartbeat subscription: a SUB socket (empty topic) and its monitor, owned by one task.

Liveness is 1.0.2's "lives" rule made faster: a remote starts with ``lives`` lives; each period of
``tolerance x interval`` without any message costs one, every message restores them all, and at zero
the remote is lost. The check runs exactly at each deadline (1.0.2 polls every 0.3 s, with 1.5 x
interval per life). A dropped TCP connection (the process died) marks it lost at once. Times are our
own monotonic receive times, so clock skew between hosts does not matter.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass

import zmq
import zmq.asyncio

from protocols import DecodeError, chp
from protocols.chp import Heartbeat

log = logging.getLogger(__name__)

#: 1.0.2 assumes this interval until the first heartbeat arrives.
INITIAL_INTERVAL_MS = 2000


@dataclass(frozen=True, slots=True)
class Liveness:
    """``lives`` periods of ``tolerance`` x interval without a heartbeat make a satellite lost."""

    lives: int = 3
    tolerance: float = 1.0
    disconnect_is_loss: bool = True

    def __post_init__(self) -> None:
        if self.lives < 1 or self.tolerance <= 0:
            raise ValueError(f"Liveness needs lives >= 1 and tolerance > 0, got {self}")


OnBeat = Callable[[Heartbeat], None]
OnLost = Callable[[str], None]


class HeartbeatWatch:
    """Subscribes to one heartbeat endpoint; calls ``on_beat`` per heartbeat and ``on_lost`` on loss."""

    def __init__(
        self,
        context: zmq.asyncio.Context,
        endpoint: str,
        *,
        on_beat: OnBeat,
        on_lost: OnLost,
        liveness: Liveness,
        label: str = "",
    ) -> None:
        self.endpoint = endpoint
        self.label = label or endpoint
        self.malformed = 0
        self._context = context
        self._on_beat = on_beat
        self._on_lost = on_lost
        self._liveness = liveness
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"chp-watch {self.label}")

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        sub = self._context.socket(zmq.SUB)
        sub.setsockopt(zmq.LINGER, 0)
        sub.setsockopt(zmq.SUBSCRIBE, b"")  # never a topic: 1.0.2 counts it as an unsubscription
        mon = sub.get_monitor_socket(zmq.EVENT_DISCONNECTED)
        poller = zmq.asyncio.Poller()
        poller.register(sub, zmq.POLLIN)
        poller.register(mon, zmq.POLLIN)
        sub.connect(self.endpoint)
        live = self._liveness
        lives = live.lives
        period = INITIAL_INTERVAL_MS / 1000 * live.tolerance
        deadline = time.monotonic() + period
        try:
            while True:
                wait_ms = max(0, int((deadline - time.monotonic()) * 1000) + 1) if lives else None
                ready = dict(await poller.poll(wait_ms))
                if sub in ready:
                    frames = await sub.recv_multipart()
                    try:
                        hb = chp.decode(frames)
                    except DecodeError as exc:
                        self.malformed += 1
                        log.debug("%s: dropped malformed heartbeat: %s", self.label, exc)
                    else:
                        lives = live.lives
                        period = max(hb.interval_ms, 1) / 1000 * live.tolerance
                        deadline = time.monotonic() + period
                        try:
                            self._on_beat(hb)
                        except Exception:  # a callback bug must not stop the liveness checks
                            log.exception("%s: heartbeat callback failed", self.label)
                if mon in ready:
                    event = _event(await mon.recv_multipart())
                    if event == zmq.EVENT_DISCONNECTED and live.disconnect_is_loss and lives:
                        lives = 0
                        self._on_lost("connection dropped")
                if lives and time.monotonic() >= deadline:
                    lives -= 1
                    deadline = time.monotonic() + period
                    if not lives:
                        self._on_lost(f"no heartbeat for {live.lives} x {period:.2f} s")
        finally:
            with contextlib.suppress(zmq.ZMQError):
                sub.disable_monitor()
            mon.close(linger=0)
            sub.close(linger=0)


def _event(frames: list[bytes]) -> int:
    if len(frames) != 2 or len(frames[0]) != 6:
        return 0
    return int(struct.unpack("=Hi", frames[0])[0])
