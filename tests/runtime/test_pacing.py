"""`SendPacer` on its own: who waits, until when, for how long, and never for a stalled sender.

The pacer is built on the "sender" thread (here the test's thread); producers are other threads.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from constellation.pacing import SendPacer
from tests.harness import wait_until
from tests.runtime.test_log_fastpath_satellite import _log_sub, _only_our_handler

pytestmark = pytest.mark.timeout(30)


def _in_thread(fn: object) -> threading.Thread:
    t = threading.Thread(target=fn)  # type: ignore[arg-type]
    t.start()
    return t


def _wait_then_set(pacer: SendPacer, queue: collections.deque[int], event: threading.Event) -> None:
    pacer.wait_for_sender(queue)
    event.set()


def test_a_producer_waits_until_the_sender_has_brought_the_queue_down_to_resume() -> None:
    pacer = SendPacer(ahead=8, resume=4, wait_s=10.0)
    queue = collections.deque(range(8))
    returned = threading.Event()
    producer = _in_thread(lambda: _wait_then_set(pacer, queue, returned))
    wait_until(lambda: pacer._waiting)  # the producer is in its wait
    for _ in range(3):  # batches that leave more than `resume`: the producer keeps waiting
        queue.popleft()
        pacer.sent(queue)
        assert not returned.wait(0.05)
    queue.popleft()  # 4 left: released
    pacer.sent(queue)
    assert returned.wait(5)
    producer.join(5)
    assert (pacer.waits, pacer.timeouts) == (1, 0)


def test_a_short_queue_is_no_reason_to_wait() -> None:
    pacer = SendPacer(ahead=8, resume=4, wait_s=10.0)
    t = time.monotonic()
    _in_thread(lambda: pacer.wait_for_sender([0] * 4)).join(5)
    assert time.monotonic() - t < 5
    assert (pacer.waits, pacer.timeouts) == (0, 0)


def test_a_stalled_sender_is_waited_for_once_then_not_until_it_sends_again() -> None:
    pacer = SendPacer(ahead=2, resume=1, wait_s=0.2)
    full = [0] * 10
    times: list[float] = []

    def produce(calls: int) -> None:
        for _ in range(calls):
            t = time.monotonic()
            pacer.wait_for_sender(full)
            times.append(time.monotonic() - t)

    _in_thread(lambda: produce(1000)).join(10)
    assert times[0] >= 0.2  # the first wait runs out
    assert sum(times[1:]) < 0.2  # and no later call waits at all
    assert (pacer.waits, pacer.timeouts) == (0, 1)
    pacer.sent(full)  # the sender sent a batch (the queue is still long): producers wait again
    times.clear()
    _in_thread(lambda: produce(1)).join(10)
    assert times[0] >= 0.2
    assert pacer.timeouts == 2


def test_the_sender_thread_never_waits() -> None:
    pacer = SendPacer(ahead=1, resume=1, wait_s=10.0)
    t = time.monotonic()
    for _ in range(100):
        pacer.wait_for_sender([0] * 50)
    assert time.monotonic() - t < 1.0
    assert (pacer.waits, pacer.timeouts) == (0, 0)


def test_several_producers_are_released_together() -> None:
    pacer = SendPacer(ahead=4, resume=2, wait_s=10.0)
    queue = collections.deque(range(6))
    producers = [_in_thread(lambda: pacer.wait_for_sender(queue)) for _ in range(3)]
    wait_until(lambda: pacer._waiting == 3)
    for _ in range(4):
        queue.popleft()
    pacer.sent(queue)
    for p in producers:
        p.join(5)
        assert not p.is_alive()
    assert pacer.waits == 3


@pytest.mark.parametrize(
    ("ahead", "resume", "wait_s"), [(0, None, 0.1), (4, 5, 0.1), (4, 0, 0.1), (4, 2, -1)]
)
def test_bad_parameters_are_refused(ahead: int, resume: int | None, wait_s: float) -> None:
    with pytest.raises(ValueError, match="resume"):
        SendPacer(ahead, resume, wait_s)


def test_a_slow_sender_that_keeps_sending_is_waited_for() -> None:
    """The sender needs several times `wait_s` to bring the queue down, but takes a message out well
    within each `wait_s`: the producer keeps waiting, and the sender is not taken for stalled."""
    pacer = SendPacer(ahead=16, resume=2, wait_s=0.2)
    queue = collections.deque(range(16))
    done = threading.Event()
    producer = _in_thread(lambda: _wait_then_set(pacer, queue, done))
    wait_until(lambda: pacer._waiting)
    t = time.monotonic()
    while len(queue) > 2:
        assert not done.is_set()
        time.sleep(0.05)  # the slow sender's work on one message
        queue.popleft()
    assert time.monotonic() - t > 2 * pacer.wait_s
    pacer.sent(queue)
    assert done.wait(5)
    producer.join(5)
    assert (pacer.waits, pacer.timeouts) == (1, 0)


# -- in a running satellite --------------------------------------------------------------------------


def _busy_until(cond: Callable[[], bool], limit_s: float) -> None:
    """Keep the GIL (and the loop) in a busy loop until `cond()` or `limit_s` passed."""
    end = time.monotonic() + limit_s
    while not cond() and time.monotonic() < end:
        pass


async def test_after_a_loop_hiccup_the_producer_is_paced_again_as_soon_as_the_sender_runs(
    make_satellite: Any, zctx: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The loop is busy once long enough for the producer to take the sender for stalled (a slow
    non-blocking callback, a full garbage collection). Before: no producer waited again until the sender
    had finished a whole batch, and a batch sent against an unpaced producer is the GIL starvation the
    pacer is there to prevent: the queue overflowed (most of the burst dropped) and the loop stalled
    for 0.2-0.9 s (get_state measured 0.5-0.9 s in a satellite process)."""
    sat = await make_satellite()
    mon = sat._mon
    with _only_our_handler(sat, monkeypatch):
        sub = await _log_sub(zctx, sat, b"LOG/INFO/")
        loop = asyncio.get_running_loop()
        n = 150_000
        hiccup_at = n // 5

        def burst() -> None:
            for i in range(n):
                if i == hiccup_at:  # the loop holds the GIL until the producer gave up on it once
                    loop.call_soon_threadsafe(_busy_until, lambda: mon._pacer.timeouts > 0, 2.0)
                sat.log.info("burst %d", i)

        lags: list[float] = []

        async def ticker() -> None:
            while True:
                t = loop.time()
                await asyncio.sleep(0.001)
                lags.append(loop.time() - t - 0.001)

        # What each batch of the sender meets: records dropped meanwhile, and producer waits that ran out.
        batches: list[tuple[int, int]] = []
        flush = mon._flush

        def counted_flush(limit: int) -> None:
            dropped, timeouts = mon.dropped, mon._pacer.timeouts
            flush(limit)
            batches.append((mon.dropped - dropped, mon._pacer.timeouts - timeouts))

        monkeypatch.setattr(mon, "_flush", counted_flush)
        tick = asyncio.create_task(ticker())
        await asyncio.to_thread(burst)
        tick.cancel()
        assert mon._pacer.timeouts >= 1  # the hiccup happened as intended
        worst = sorted(lags)[-3:]
        stalls = f"the loop's longest stalls: {[round(x * 1000) for x in worst]} ms"
        assert max(lags) < 0.1, stalls
        # The producer is paced again as soon as the sender runs: no batch is sent against a producer
        # that does not wait (before: thousands of records dropped during the first batch after the
        # hiccup). Records may be dropped, and are counted, only while the sender does not send: after
        # the hiccup until the loop is back at its next batch (a few switch intervals, ~200 records
        # here; more on a loaded machine), or in a batch during which the OS did not run the loop for a
        # whole wait (a wait ran out in it). One may be the producer's call in flight as a batch starts.
        unpaced = [dropped for dropped, timeouts in batches if dropped > 1 and not timeouts]
        assert not unpaced, f"records dropped during batches in which every wait was met: {unpaced[:5]}"
        sub.close()


def _built_in_another_thread(ahead: int, resume: int, wait_s: float) -> SendPacer:
    """A pacer whose sender is a thread that has ended: the calling thread is a producer."""
    box: list[SendPacer] = []
    _in_thread(lambda: box.append(SendPacer(ahead, resume, wait_s))).join(5)
    return box[0]


class _SignalInLen(collections.deque[int]):
    """A queue whose length is read while the pacer holds its lock: raises a signal at that point, so
    that the signal's handler runs inside `wait_for_sender`'s locked region (the next bytecode)."""

    armed = False

    def __len__(self) -> int:
        if self.armed:
            self.armed = False
            signal.raise_signal(signal.SIGUSR1)
        return super().__len__()


@pytest.mark.timeout(10)
@pytest.mark.skipif(threading.current_thread() is not threading.main_thread(), reason="signals: main thread")
def test_a_signal_handler_that_logs_in_a_waiting_producer_does_not_deadlock() -> None:
    """The main thread is a producer when the loop runs in another thread (a satellite embedded in a
    program). A signal handler that logs runs in the main thread between any two bytecodes, also where
    the producer holds the pacer's lock: it queues a record and is paced in turn. Before: the lock was
    not reentrant, and the main thread hung forever on its own lock."""
    pacer = _built_in_another_thread(ahead=4, resume=2, wait_s=0.01)  # its sender never sends
    queue = _SignalInLen(range(8))
    handled: list[float] = []

    def handler(_sig: int, _frame: object) -> None:
        t = time.monotonic()
        pacer.wait_for_sender(queue)  # what a log call in the handler does with the queue this long
        handled.append(time.monotonic() - t)

    previous = signal.signal(signal.SIGUSR1, handler)
    try:
        queue.armed = True
        t = time.monotonic()
        pacer.wait_for_sender(queue)
        took = time.monotonic() - t
    finally:
        signal.signal(signal.SIGUSR1, previous)
    assert len(handled) == 1
    assert took < 1.0  # one wait that ran out (the sender never sends) for each, nothing more
    assert pacer.timeouts >= 1


@pytest.mark.timeout(20)
def test_a_child_forked_while_another_producer_holds_the_lock_never_waits() -> None:
    """A hook forks (multiprocessing's default start method here) while another thread is inside the
    pacer's locked region. The child has a copy of the lock, held by a thread that does not exist there,
    and a copy of the long queue that no sender will ever take from. Before: the child's first log call
    that found the queue long hung forever on that lock."""
    pacer = _built_in_another_thread(ahead=4, resume=2, wait_s=0.01)  # this thread forks: a producer
    queue = collections.deque(range(8))
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:  # a producer between taking the lock and waiting (or after waking up)
        with pacer._sent:
            holding.set()
            release.wait(10)

    holder = _in_thread(hold)
    assert holding.wait(5)
    try:
        pid = os.fork()
        if pid == 0:  # the child: a log call, paced, with the queue as long as it was
            code = 1
            try:
                signal.signal(signal.SIGALRM, signal.SIG_DFL)  # (pytest-timeout's handler raises)
                signal.alarm(5)  # a hang ends the child (SIGALRM), not the test
                t = time.monotonic()
                pacer.wait_for_sender(queue)
                code = 0 if time.monotonic() - t < 1.0 else 2
            finally:
                os._exit(code)
    finally:
        release.set()
        holder.join(5)

    def ended() -> tuple[int, ...]:
        child, status = os.waitpid(pid, os.WNOHANG)
        return (status,) if child else ()

    (status,) = wait_until(ended, timeout=10)
    assert not os.WIFSIGNALED(status), f"the child hung on the pacer (ended by signal {os.WTERMSIG(status)})"
    assert os.WEXITSTATUS(status) == 0


async def test_the_loop_logging_past_a_waiting_producer_is_held_one_wait_at_most(
    make_satellite: Any, zctx: Any
) -> None:
    """A record on the normal path is handed to the CMDP handler under the handler's lock (`logging`),
    so a producer paced there holds it while it waits; the loop logging on that path meanwhile waits
    for the lock, and the sender takes nothing out while it does: the producer stops waiting after one
    `wait_s`. The loop is held that long at most, never for a slow sender's 0.1 s."""
    sat = await make_satellite()
    mon = sat._mon
    lg = logging.getLogger("tests.pacing.normal_path")  # no satellite attribute: the normal path
    lg.addHandler(sat._handler)
    lg.propagate = False
    lg.setLevel(logging.INFO)
    try:
        sub = await _log_sub(zctx, sat, b"LOG/INFO/")
        done = threading.Event()

        def burst() -> None:
            for i in range(60_000):
                lg.info("burst %d", i)
            done.set()

        held: list[float] = []

        async def loop_logs() -> None:
            while not done.is_set():
                t = time.perf_counter()
                lg.info("from the loop")
                held.append(time.perf_counter() - t)
                await asyncio.sleep(0.001)

        task = asyncio.create_task(loop_logs())
        await asyncio.to_thread(burst)
        await task
        assert mon._pacer.waits > 0  # the producer was paced all along
        assert len(held) >= 10
        worst = sorted(held)[-3:]
        assert max(held) < 0.05, f"the loop's slowest log calls: {[round(x * 1000, 1) for x in worst]} ms"
        sub.close()
    finally:
        lg.removeHandler(sat._handler)


async def test_closing_the_satellite_under_a_paced_flood_releases_the_producer(
    make_satellite: Any, zctx: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`aclose` while a worker thread floods (and is paced): the thread waits one `wait_s` at most for
    the sender that stopped, and never again; it logs on to its end without the publisher."""
    sat = await make_satellite()
    mon = sat._mon
    with _only_our_handler(sat, monkeypatch):
        sub = await _log_sub(zctx, sat, b"LOG/INFO/")
        paced, closed = threading.Event(), threading.Event()
        slowest: list[float] = [0.0]
        after_close = 0

        def burst() -> None:
            nonlocal after_close
            i = 0
            while after_close < 20_000:  # logs on until well after the close
                t = time.perf_counter()
                sat.log.info("burst %d", i)
                slowest[0] = max(slowest[0], time.perf_counter() - t)
                i += 1
                if closed.is_set():
                    after_close += 1
                elif mon._pacer.waits > 20:
                    paced.set()

        worker = threading.Thread(target=burst)
        worker.start()
        assert await asyncio.to_thread(paced.wait, 10)
        sub.close()
        await sat.aclose()
        closed.set()
        assert not mon._running
        waits = mon._pacer.waits
        await asyncio.to_thread(worker.join, 10)
        assert not worker.is_alive()
        assert mon._pacer.waits == waits  # no wait for a publisher that stopped
        assert slowest[0] < 0.1, f"a log call took {slowest[0] * 1000:.0f} ms"


class _SenderStartsInLen(collections.deque[int]):
    """The sender starts a batch exactly when the producer, its wait run out, reads the queue's length
    (the loop was busy, and is back): what another thread can do between two bytecodes there."""

    pacer: SendPacer | None = None
    reads = 0

    def __len__(self) -> int:
        self.reads += 1
        if self.reads == 2 and self.pacer is not None:  # the read after the first wait ran out
            self.pacer.sending()
        return super().__len__()


def test_a_sender_that_starts_a_batch_while_a_wait_runs_out_is_not_taken_for_stalled() -> None:
    """Before: the producer marked the sender stalled after the sender had cleared the mark for its new
    batch, so no producer waited during that batch: the starvation the pacer is there to prevent."""
    pacer = _built_in_another_thread(ahead=4, resume=2, wait_s=0.01)
    queue = _SenderStartsInLen(range(8))
    queue.pacer = pacer
    pacer.wait_for_sender(queue)  # runs out: the queue did not shrink
    assert pacer.timeouts == 1
    queue.pacer = None
    t = time.monotonic()
    pacer.wait_for_sender(queue)  # the sender is sending this batch: this producer waits for it
    assert time.monotonic() - t >= pacer.wait_s
    assert pacer.timeouts == 2


def test_a_slow_sender_that_keeps_the_gil_is_waited_for_a_tenth_of_a_second_at_most() -> None:
    """A slow sender that takes a message out every 2 ms but keeps the GIL in between (Python work, no
    system call): each wait that runs out then costs `wait_s` plus up to a switch interval (5 ms) to get
    the GIL back. Before: `MAX_WAITS` such waits, 0.2 s a call where the docs promise 0.1 s."""
    box: list[SendPacer] = []
    queue = collections.deque(range(100_000))
    stop = threading.Event()
    pops: list[float] = []  # when the sender took each message out

    def sender() -> None:
        box.append(SendPacer(ahead=1024, resume=512))
        while not stop.is_set():
            _busy_until(lambda: False, 0.002)
            if queue:
                queue.popleft()
                pops.append(time.monotonic())

    thread = _in_thread(sender)
    try:
        wait_until(lambda: box)
        pacer = box[0]
        calls: list[tuple[float, float]] = []
        for _ in range(3):
            t = time.monotonic()
            pacer.wait_for_sender(queue)
            calls.append((t, time.monotonic()))
            pacer.sending()  # a new batch: the next call waits again
    finally:
        stop.set()
        thread.join(5)
    took = [end - start for start, end in calls]
    assert pacer.timeouts == 3
    assert max(took) < 0.16, f"calls took {[round(c * 1000) for c in took]} ms"
    # And each call did wait while the sender kept sending. A call ends sooner only where the sender
    # really took nothing out for a whole wait: the OS did not run its thread (a loaded machine runs
    # other processes for longer than 5 ms), which the pacer rightly takes for a stalled sender.
    for (start, end), c in zip(calls, took, strict=True):
        if c < 0.09:
            gap = _longest_gap(pops, start, end)
            assert gap >= 0.8 * pacer.wait_s, (
                f"a call took {c * 1000:.0f} ms, the sender's longest pause {gap * 1000:.1f} ms"
            )


def _longest_gap(stamps: list[float], start: float, end: float) -> float:
    """The longest time between consecutive stamps around [start, end] (with the last one before
    `start` and the first one after `end`)."""
    before = [s for s in stamps if s < start][-1:]
    after = [s for s in stamps if s > end][:1]
    around = before + [s for s in stamps if start <= s <= end] + after
    return max((b - a for a, b in itertools.pairwise(around)), default=end - start)


def test_a_thread_running_an_event_loop_never_waits() -> None:
    """Another satellite's event loop in the same process (its own thread) must not be held."""
    pacer = SendPacer(ahead=1, resume=1, wait_s=10.0)
    took: list[float] = []

    async def log_from_a_loop() -> None:
        t = time.monotonic()
        pacer.wait_for_sender([0] * 50)
        took.append(time.monotonic() - t)

    _in_thread(lambda: asyncio.run(log_from_a_loop())).join(10)
    assert took
    assert took[0] < 1.0
    assert (pacer.waits, pacer.timeouts) == (0, 0)
