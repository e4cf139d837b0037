"""The task that owns one peer's heartbeat subscription and its socket monitor.

One SUB socket per peer (empty topic, as 1.0.2 requires), with ZMTP heartbeats, and the PAIR socket of
its ``zmq_socket_monitor``. Both are created, used and closed by ``watch_peer`` only. Input is decoded
with ``protocols.chp``; malformed messages are counted and dropped; the clock and the monitor events go
to the pure ``PeerTracker``, and its verdicts to ``emit``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import math
import time
from collections.abc import Callable, MutableMapping

import zmq
import zmq.asyncio
from zmq.utils.monitor import parse_monitor_message

from protocols import DecodeError, chp

from .tracker import PeerTracker, Verdict

__all__ = ["watch_peer"]

log = logging.getLogger(__name__)

_monitor_ids = itertools.count()
_MONITORED = zmq.EVENT_DISCONNECTED | zmq.EVENT_HANDSHAKE_SUCCEEDED | zmq.EVENT_MONITOR_STOPPED


def _configure(sub: zmq.asyncio.Socket, tracker: PeerTracker) -> None:
    s = tracker.settings
    sub.setsockopt(zmq.LINGER, 0)
    sub.setsockopt(zmq.RECONNECT_IVL, s.reconnect_ivl_ms)
    sub.setsockopt(zmq.RECONNECT_IVL_MAX, s.reconnect_ivl_max_ms)
    ivl = tracker.zmtp_ivl_ms
    if ivl:
        sub.setsockopt(zmq.HEARTBEAT_IVL, ivl)
        sub.setsockopt(zmq.HEARTBEAT_TIMEOUT, s.zmtp_timeout_for(ivl))
        if s.zmtp_ttl_ms:
            sub.setsockopt(zmq.HEARTBEAT_TTL, s.zmtp_ttl_ms)


async def watch_peer(
    ctx: zmq.asyncio.Context,
    tracker: PeerTracker,
    emit: Callable[[PeerTracker, list[Verdict]], None],
    counters: MutableMapping[str, int],
    connected: asyncio.Event | None = None,
) -> None:
    """Subscribe to ``tracker.endpoint`` and judge the peer until cancelled (``connected`` is set at
    the first completed handshake)."""
    sub = ctx.socket(zmq.SUB)
    mon: zmq.asyncio.Socket | None = None
    try:
        _configure(sub, tracker)
        # a unique inproc address: pyzmq's default derives it from the fd, which a new socket may reuse
        mon = sub.get_monitor_socket(_MONITORED, addr=f"inproc://peer-monitor-{next(_monitor_ids)}")
        sub.connect(tracker.endpoint)
        sub.subscribe(b"")
        poller = zmq.asyncio.Poller()
        poller.register(sub, zmq.POLLIN)
        poller.register(mon, zmq.POLLIN)
        while True:
            deadline = tracker.deadline()
            wait_ms = None
            if not math.isinf(deadline):
                wait_ms = max(0, math.ceil((deadline - time.monotonic()) * 1000))
            ready = dict(await poller.poll(wait_ms))
            if mon in ready:
                await _monitor_event(mon, tracker, emit, connected)
            if sub in ready:
                await _heartbeat(sub, tracker, emit, counters)
            verdicts = tracker.on_tick(time.monotonic())
            if verdicts:
                emit(tracker, verdicts)
    finally:
        if mon is not None:
            with contextlib.suppress(zmq.ZMQError):
                sub.disable_monitor()
            mon.close(0)
        sub.close(0)


async def _monitor_event(
    mon: zmq.asyncio.Socket,
    tracker: PeerTracker,
    emit: Callable[[PeerTracker, list[Verdict]], None],
    connected: asyncio.Event | None,
) -> None:
    frames = await mon.recv_multipart()
    try:
        event = parse_monitor_message(frames)["event"]
    except (ValueError, KeyError, IndexError):  # defensive: libzmq always sends two frames
        return
    now = time.monotonic()
    if event == zmq.EVENT_DISCONNECTED:
        log.debug("%s: disconnected from %s", tracker.name, tracker.endpoint)
        emit(tracker, tracker.on_disconnected(now))
    elif event == zmq.EVENT_HANDSHAKE_SUCCEEDED:
        if connected is not None:
            connected.set()
        emit(tracker, tracker.on_handshake(now))


async def _heartbeat(
    sub: zmq.asyncio.Socket,
    tracker: PeerTracker,
    emit: Callable[[PeerTracker, list[Verdict]], None],
    counters: MutableMapping[str, int],
) -> None:
    frames = await sub.recv_multipart()
    now = time.monotonic()
    try:
        hb = chp.decode(frames)
    except DecodeError as exc:
        counters["malformed"] = counters.get("malformed", 0) + 1
        log.debug("dropped malformed heartbeat from %s: %s", tracker.endpoint, exc)
        return
    counters["heartbeats"] = counters.get("heartbeats", 0) + 1
    emit(tracker, tracker.on_heartbeat(hb, now))
