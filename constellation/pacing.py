"""`SendPacer`: a thread that logs faster than the CMDP publisher sends waits for it, briefly.

Why: CPython hands the GIL to a waiting thread only once per switch interval (5 ms), and a thread that
never releases it by itself (a hook logging in a loop) takes it back whenever its holder releases it.
The publisher's task releases it three times a record (each libzmq send), so a hook that logs faster
than the event loop sends starved the loop: with a subscriber on ``LOG/INFO`` and a hook logging as fast
as it could, one 512-record send batch took up to 0.8 s, and ``get_state`` waited 0.1-1.6 s (the
command socket must answer within 0.1 s whatever a hook does).

How: a producer thread that finds `ahead` records queued (two send batches) waits on a condition, off
the GIL, until the sender has brought the queue down to `resume` (one batch). The hook is then as fast
as the sender (~100,000-300,000 records a second here; 1.0.2's synchronous sends give ~30,000), and
nothing is lost in the queue while the sender keeps up. It does not wait for a sender that is not
sending: when a whole `wait_s` passes without the sender taking a message out (the loop is busy
elsewhere, or stuck), the producer goes on and no producer waits again until the sender starts its next
batch (`sending`; not once it has finished it: a batch sent against a producer that does not wait is
the starvation above, 0.3-0.9 s after a single 20 ms hiccup of the loop); meanwhile the bounded queue
drops and counts the excess, as before. A sender that is sending, only slower, is waited for up to
`MAX_WAITS` times `wait_s` (0.1 s) per log call. The sender's own thread (the loop) never waits here;
it can wait for a producer that holds a lock it needs (the CMDP handler's lock of `logging`, held by a
record on the normal path, an import lock), and then for one `wait_s` at most: the sender takes nothing
out meanwhile, so the producer stops waiting. No thread that runs an event loop waits (another
satellite's, in the same process). No wait depends on a subscriber or the network: sends to
a slow subscriber do not block (the XPUB queues, and drops uncounted beyond its high-water mark). The
lock is reentrant (a signal handler that logs runs in the main thread, maybe inside `wait_for_sender`),
and a child forked from a producer never waits (its copy has no sender; the lock is renewed).
"""

from __future__ import annotations

import os
import threading
import time
import weakref
from asyncio import _get_running_loop
from collections.abc import Sized

__all__ = ["SendPacer"]

WAIT_S = 0.005  # CPython's default switch interval: a producer would lose the GIL that long anyway
MAX_WAITS = 20  # of WAIT_S each, while the sender is taking messages out: 0.1 s at most
_monotonic = time.monotonic


class SendPacer:
    """Paces producer threads to the sender; built on the sender's thread (the event loop)."""

    def __init__(self, ahead: int, resume: int | None = None, wait_s: float = WAIT_S) -> None:
        resume = ahead if resume is None else resume
        if not 1 <= resume <= ahead or wait_s < 0:
            raise ValueError(f"need 1 <= resume <= ahead and wait_s >= 0, got {resume}, {ahead}, {wait_s}")
        self.ahead = ahead
        self.resume = resume
        self.wait_s = wait_s
        self._sender = threading.get_ident()
        # Reentrant: a signal handler that logs runs in the main thread between any two bytecodes, also
        # where that thread, a producer, holds this lock (the loop in another thread); it is paced too.
        self._sent = threading.Condition(threading.RLock())
        self._waiting = 0
        # Batches the sender started or finished, and the one during which a wait ran out: no waiting
        # until the next. A number, not a flag the producer sets: its mark would outlive a batch that
        # the sender started just before it (it clears nothing it did not see).
        self._batch = 0
        self._stalled_in = -1
        self._orphan = False  # in a child process forked after this was built: there is no sender
        #: waits that ended with a sent batch, and waits that ran out (for tests and diagnostics)
        self.waits = 0
        self.timeouts = 0
        _pacers.add(self)

    def wait_for_sender(self, queue: Sized) -> None:
        """Called by a producer that found at least `ahead` messages in `queue` after its own: waits
        until at most `resume` are left while the sender takes messages out (not at all once a whole
        `wait_s` passed without it taking one, until it starts another batch; `MAX_WAITS` times `wait_s`
        at most, and one switch interval to get the GIL back)."""
        if self._stalled_in == self._batch or self._orphan or threading.get_ident() == self._sender:
            return
        if _get_running_loop() is not None:  # no event loop is held here: another satellite's loop
            return  # in this process (its records go to this publisher when it logs on our logger)
        with self._sent:
            batch = self._batch
            # Counted before the length is read: a sender that popped a batch and then saw no waiter
            # popped it before this read, which then finds the queue short.
            self._waiting += 1
            try:
                left = len(queue)
                # A deadline, not a count of waits: each wait that runs out also waits for the GIL, up
                # to a switch interval more when the sender keeps it (0.2 s in all, before).
                deadline = _monotonic() + MAX_WAITS * self.wait_s
                while left > self.resume:
                    remaining = deadline - _monotonic()
                    if remaining <= 0:
                        break
                    if self._sent.wait(min(self.wait_s, remaining)):
                        self.waits += 1
                        return
                    now = len(queue)
                    if now >= left:  # the sender took nothing in a whole wait: it is stalled
                        break
                    left = now  # slow (a batch takes longer than wait_s here), but sending
                else:
                    return
                self.timeouts += 1
                self._stalled_in = batch  # no effect if the sender started another batch meanwhile
            finally:
                self._waiting -= 1

    def _forked(self) -> None:
        """In a forked child: the lock may be held by a thread that is not there, and no sender runs."""
        self._orphan = True
        self._sent = threading.Condition(threading.RLock())
        self._waiting = 0

    def sending(self) -> None:
        """Called by the sender before each batch: it is not stalled, producers wait for it again.
        (Not only once the batch is sent: a batch sent against a producer that does not wait is the GIL
        starvation this class prevents, and took up to 0.3 s in a test, 0.9 s in a satellite.)"""
        self._batch += 1

    def sent(self, queue: Sized) -> None:
        """Called by the sender after each batch it sent from `queue`."""
        self._batch += 1
        if self._waiting and len(queue) <= self.resume:
            with self._sent:
                self._sent.notify_all()


_pacers: weakref.WeakSet[SendPacer] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for pacer in list(_pacers):
        pacer._forked()


os.register_at_fork(after_in_child=_after_fork_in_child)
