"""The log fast path in a running satellite: its real publisher and socket, drops, command replies.

The satellite's logger is made non-propagating with the satellite's CMDP handler on it for the test,
so pytest's capture handlers on the root logger do not (rightly) force the normal path.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import zmq

from constellation import Satellite
from protocols import cmdp
from tests.harness import eventually
from tests.runtime.test_log_fastpath import _with_filter


def _say(adapter: logging.LoggerAdapter[logging.Logger]) -> None:
    adapter.info("same %s from %d", "call", 3)


@contextlib.contextmanager
def _only_our_handler(sat: Satellite, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The satellite's logger at INFO, not propagating, with only the satellite's CMDP handler."""
    lg = sat.log.logger
    monkeypatch.setattr(lg, "propagate", False)
    lg.addHandler(sat._handler)
    level = lg.level
    lg.setLevel(logging.INFO)
    try:
        yield
    finally:
        lg.removeHandler(sat._handler)
        lg.setLevel(level)


async def _log_sub(zctx: Any, sat: Satellite, topic: bytes, **options: int) -> Any:
    """A SUB on the satellite's monitoring port, subscribed (and the subscription seen) to `topic`."""
    sub = zctx.socket(zmq.SUB)
    sub.setsockopt(zmq.LINGER, 0)
    for name, value in options.items():
        sub.setsockopt(getattr(zmq, name), value)
    sub.subscribe(topic)
    sub.connect(f"tcp://127.0.0.1:{sat.ports['mon']}")
    await eventually(lambda: sat._mon._prefixes)
    return sub


async def test_running_satellite_sends_identical_frames(
    make_satellite: Any, zctx: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    sat = await make_satellite()
    lg = sat.log.logger
    emitted: list[str] = []
    real_emit = sat._handler.emit
    monkeypatch.setattr(sat._handler, "emit", lambda r: (emitted.append(r.getMessage()), real_emit(r)))
    # Only the satellite's handler on the way (pytest's root handlers would force the normal path).
    with _only_our_handler(sat, monkeypatch):
        sub = await _log_sub(zctx, sat, b"LOG/INFO/SATELLITE")
        monkeypatch.setattr(time, "time", lambda: 1_763_800_000.5)
        _say(sat.log)  # fast
        assert emitted == []
        with _with_filter(lg):
            _say(sat.log)  # normal, through the handler
        _say(logging.LoggerAdapter(lg, dict(sat.log.extra)))  # stock adapter, through the handler
        assert len(emitted) == 2
        frames = [await asyncio.wait_for(sub.recv_multipart(), 5) for _ in range(3)]
        assert frames[0] == frames[1] == frames[2]
        msg = cmdp.decode(frames[0])
        assert isinstance(msg, cmdp.LogMessage)
        assert (msg.sender, msg.topic, msg.text) == ("Satellite.T", "SATELLITE", "same call from 3")
        assert msg.tags["funcName"] == "_say"
        sub.close()


class Chatty(Satellite):
    log_queue_size = 64


async def test_fast_path_drops_are_counted_while_the_sender_is_stalled(
    make_satellite: Any, zctx: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The loop (the sender) is held while a worker thread logs: the thread waits for it once, at most
    `SendPacer.wait_s`, and then runs on; what does not fit in the queue is dropped and counted."""
    sat = await make_satellite(Chatty)
    with _only_our_handler(sat, monkeypatch):
        sub = await _log_sub(zctx, sat, b"LOG/INFO/", RCVHWM=0)
        n = 2000

        def burst() -> None:  # a worker thread, like sync hooks and commands
            for i in range(n):
                sat.log.info("burst %d", i)

        worker = threading.Thread(target=burst)
        t = time.monotonic()
        worker.start()
        worker.join(10)  # on the loop: nothing is sent until the burst is over
        held = time.monotonic() - t
        assert not worker.is_alive()
        assert sat._mon._pacer.timeouts == 1  # one wait for the stalled sender, then none
        assert held < 1.0, f"the burst took {held:.2f}s with the sender stalled"
        assert sat._mon.dropped == n - Chatty.log_queue_size
        await eventually(lambda: not sat._mon._queue)
        received = 0
        while await sub.poll(500):
            frames = await sub.recv_multipart()
            received += frames[0] == b"LOG/INFO/CHATTY"
        assert received == Chatty.log_queue_size
        sub.close()


async def test_a_thread_logging_faster_than_the_sender_is_paced_and_loses_nothing(
    make_satellite: Any, zctx: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the loop free, a burst of 30 queues' worth from a worker thread is paced to the sender (it
    waits while the sender works off its backlog) instead of overflowing the queue."""
    sat = await make_satellite(Chatty)
    with _only_our_handler(sat, monkeypatch):
        sub = await _log_sub(zctx, sat, b"LOG/INFO/", RCVHWM=0)
        n = 30 * Chatty.log_queue_size

        def burst() -> None:
            for i in range(n):
                sat.log.info("burst %d", i)

        await asyncio.to_thread(burst)
        await eventually(lambda: not sat._mon._queue)
        seen: list[int] = []
        while len(seen) < n and await sub.poll(2000):
            frames = await sub.recv_multipart()
            seen.append(int(frames[2].split()[1]))
        assert sat._mon.dropped == 0
        assert seen == list(range(n))
        assert sat._mon._pacer.waits > 0
        sub.close()


class Roomy(Satellite):
    log_queue_size = 200_000


async def test_commands_are_answered_while_a_backlog_drains(
    make_satellite: Any, client: Any, zctx: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    sat = await make_satellite(Roomy)
    with _only_our_handler(sat, monkeypatch):
        sub = await _log_sub(zctx, sat, b"LOG/INFO/")
        cl = client(sat)
        assert (await cl("get_state")).verb == "NEW"  # connected before the backlog
        for i in range(100_000):  # on the loop thread: nothing is sent before we yield
            sat.log.info("backlog %d", i)
        t = time.monotonic()
        reply = await cl("get_state")
        elapsed = time.monotonic() - t
        backlog = len(sat._mon._queue)
        assert reply.verb == "NEW"
        assert backlog > 0, "the reply waited for the whole backlog"
        assert elapsed < 0.5
        await eventually(lambda: not sat._mon._queue, timeout=30)
        sub.close()
