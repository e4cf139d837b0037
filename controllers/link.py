"""One satellite's command link: a REQ socket owned by one task, fed through a bounded queue.

Callers never touch the socket. ``request()`` encodes the command (so a bad payload fails in the
caller), queues it with a deadline and awaits the reply. The owning task sends, waits until the
deadline, and on a timeout closes the socket and opens a fresh one: a REQ socket that missed its
reply can never send again (1.0.2's controller keeps it and every later command fails with EFSM).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import zmq
import zmq.asyncio

from protocols import DecodeError, cscp
from protocols.cscp import VerbType

from .errors import CommandError, CommandTimeout, SatelliteGone
from .model import Reply

log = logging.getLogger(__name__)


class BadReply(CommandError):
    """The satellite answered with something that is not a CSCP1 reply."""


@dataclass(slots=True)
class _Job:
    command: str
    frames: list[bytes]
    deadline: float
    future: asyncio.Future[Reply] = field(repr=False)


class CommandLink:
    """Sends CSCP requests to one endpoint, one at a time, each with its own deadline."""

    def __init__(
        self,
        context: zmq.asyncio.Context,
        endpoint: str,
        sender: str,
        *,
        label: str = "",
        queue_size: int = 64,
    ) -> None:
        self.endpoint = endpoint
        self.sender = sender
        self.label = label or endpoint
        self.timeouts = 0  # how many times the socket was recreated
        self._context = context
        self._queue: asyncio.Queue[_Job] = asyncio.Queue(queue_size)
        self._task: asyncio.Task[None] | None = None
        self._inflight: _Job | None = None
        self._closed = False

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"cscp-link {self.label}")

    async def request(self, command: str, payload: Any = None, timeout: float = 3.0) -> Reply:
        """Send ``command`` and return the reply; CommandTimeout/SatelliteGone/BadReply otherwise."""
        if self._closed:
            raise SatelliteGone(self.label, command, "link closed")
        # Encoding here raises protocols.EncodeError in the caller for an unpackable payload.
        frames = cscp.encode(cscp.request(self.sender, command, payload))
        loop = asyncio.get_running_loop()
        job = _Job(command, frames, time.monotonic() + timeout, loop.create_future())
        try:
            async with asyncio.timeout(timeout):
                await self._queue.put(job)
        except TimeoutError:
            raise CommandTimeout(self.label, command, f"queue full for {timeout:g} s") from None
        return await job.future

    async def aclose(self, grace: float = 0.0) -> None:
        """Stop the task; queued requests fail with SatelliteGone. Idempotent.

        The request in flight gets up to ``grace`` seconds to be answered first (a satellite that
        departs right after replying to ``shutdown`` is usually seen departing before the reply is read).
        """
        self._closed = True
        self._fail_queued()
        inflight = self._inflight
        if grace > 0 and inflight is not None and not inflight.future.done():
            await asyncio.wait([inflight.future], timeout=grace)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._fail_queued()

    # -- the owning task ---------------------------------------------------------------------------

    def _socket(self) -> zmq.asyncio.Socket:
        sock = self._context.socket(zmq.REQ)
        sock.setsockopt(zmq.LINGER, 0)
        sock.connect(self.endpoint)
        return sock

    async def _run(self) -> None:
        sock = self._socket()
        job: _Job | None = None
        try:
            while True:
                job = await self._queue.get()
                if job.future.done():  # the caller gave up before we got to it
                    continue
                self._inflight = job
                remaining = job.deadline - time.monotonic()
                if remaining <= 0:
                    job.future.set_exception(CommandTimeout(self.label, job.command, "timed out in queue"))
                    continue
                try:
                    async with asyncio.timeout(remaining):
                        await sock.send_multipart(job.frames)
                        frames = await sock.recv_multipart()
                except TimeoutError:
                    self.timeouts += 1
                    sock.close(linger=0)
                    sock = self._socket()
                    log.warning("%s: no reply to %s: socket recreated", self.label, job.command)
                    if not job.future.done():
                        job.future.set_exception(
                            CommandTimeout(self.label, job.command, "no reply (socket recreated)")
                        )
                    continue
                if not job.future.done():
                    try:
                        job.future.set_result(_reply(self.label, job.command, frames))
                    except BadReply as exc:
                        job.future.set_exception(exc)
                job = None
        finally:
            sock.close(linger=0)
            if job is not None and not job.future.done():
                job.future.set_exception(SatelliteGone(self.label, job.command, "link closed"))
            self._fail_queued()

    def _fail_queued(self) -> None:
        while not self._queue.empty():
            job = self._queue.get_nowait()
            if not job.future.done():
                job.future.set_exception(SatelliteGone(self.label, job.command, "link closed"))


def _reply(label: str, command: str, frames: list[bytes]) -> Reply:
    try:
        msg = cscp.decode(frames)
    except DecodeError as exc:
        raise BadReply(label, command, f"undecodable reply: {exc}") from None
    if msg.verb_type is VerbType.REQUEST:
        raise BadReply(label, command, "reply has verb type REQUEST")
    return Reply.from_message(msg)
