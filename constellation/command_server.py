"""CSCP command server: one task owns the command socket and always answers.

The socket is a ROUTER, not a REP. A REQ peer (what every Constellation controller uses) cannot tell the
difference: it sends ``[b"", frames...]`` and the ROUTER sees ``[identity, b"", frames...]``; we answer
``[identity, b"", reply...]``. Unlike REP, a ROUTER has no send/receive state to get out of step, so a
malformed envelope or an undecodable body can never wedge it, and requests from different controllers
are handled concurrently (a slow user command does not delay another controller's `get_state`).
Every request gets exactly one reply; an undecodable one gets ERROR with the decoder's message.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import zmq
import zmq.asyncio

from protocols import DecodeError, EncodeError, cscp

__all__ = ["CommandServer", "Outgoing"]

log = logging.getLogger(__name__)
_MAX_INFLIGHT = 256  # concurrent slow (user) commands; more get ERROR "busy"


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A reply and an optional action to run once it has been handed to ZeroMQ (e.g. shutdown)."""

    message: cscp.Message
    after: Callable[[], None] | None = None


Handler = Callable[[cscp.Message], "Outgoing | Awaitable[Outgoing]"]


def split_envelope(frames: list[bytes]) -> tuple[list[bytes], list[bytes]]:
    """(routing envelope incl. the empty delimiter, body). Without a delimiter: (identity, rest)."""
    for i in range(1, len(frames)):
        if not frames[i]:
            return frames[: i + 1], frames[i + 1 :]
    return frames[:1], frames[1:]


class CommandServer:
    """Receives requests, hands decoded ones to `handler`, sends exactly one reply per request."""

    def __init__(
        self,
        sock: zmq.asyncio.Socket,
        name: str,
        handler: Handler,
        logger: logging.LoggerAdapter[logging.Logger] | None = None,
    ) -> None:
        self._sock = sock
        self._name = name
        self._handler = handler
        self._log = logger or logging.LoggerAdapter(log, {})
        self._outbox: asyncio.Queue[tuple[list[bytes], Outgoing]] = asyncio.Queue()
        self._inflight: set[asyncio.Task[None]] = set()
        self.requests = 0
        self.undecodable = 0

    async def run(self) -> None:
        recv: asyncio.Future[list[bytes]] | None = None
        out: asyncio.Future[tuple[list[bytes], Outgoing]] | None = None
        try:
            while True:
                if recv is None:
                    recv = asyncio.ensure_future(self._sock.recv_multipart())
                if out is None:
                    out = asyncio.ensure_future(self._outbox.get())
                pending: set[asyncio.Future[Any]] = {recv, out}
                done, _ = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                if out in done:
                    envelope, outgoing = out.result()
                    out = None
                    await self._send(envelope, outgoing)
                if recv in done:
                    try:
                        frames = recv.result()
                    finally:
                        recv = None
                    await self._on_request(frames)
        finally:
            for fut in (recv, out):
                if fut is not None:
                    fut.cancel()
            for task in list(self._inflight):
                task.cancel()

    async def _on_request(self, frames: list[bytes]) -> None:
        self.requests += 1
        envelope, body = split_envelope(frames)
        try:
            request = cscp.decode(body)
        except DecodeError as exc:
            self.undecodable += 1
            self._log.warning("Undecodable request: %s", exc)
            reply = cscp.reply(self._name, cscp.VerbType.ERROR, f"Undecodable request: {exc}")
            await self._send(envelope, Outgoing(reply))
            return
        try:
            result = self._handler(request)
        except Exception as exc:  # the handler maps errors itself; this is a bug guard
            self._log.exception("Command handler failed")
            result = Outgoing(cscp.reply(self._name, cscp.VerbType.ERROR, f"Internal error: {exc}"))
        if isinstance(result, Outgoing):
            await self._send(envelope, result)
            return
        if len(self._inflight) >= _MAX_INFLIGHT:
            if asyncio.iscoroutine(result):
                result.close()
            busy = cscp.reply(self._name, cscp.VerbType.ERROR, "Too many commands in progress")
            await self._send(envelope, Outgoing(busy))
            return
        task = asyncio.ensure_future(self._finish(envelope, result))
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)

    async def _finish(self, envelope: list[bytes], pending: Awaitable[Outgoing]) -> None:
        try:
            outgoing = await pending
        except Exception as exc:
            self._log.exception("Command failed")
            outgoing = Outgoing(cscp.reply(self._name, cscp.VerbType.ERROR, f"Internal error: {exc}"))
        self._outbox.put_nowait((envelope, outgoing))

    async def _send(self, envelope: list[bytes], outgoing: Outgoing) -> None:
        try:
            frames = cscp.encode(outgoing.message)
        except EncodeError as exc:
            self._log.error("Reply %r cannot be encoded: %s", outgoing.message.verb, exc)
            frames = cscp.encode(cscp.reply(self._name, cscp.VerbType.ERROR, str(exc)))
        try:
            await self._sock.send_multipart([*envelope, *frames])
        except zmq.ZMQError as exc:  # peer gone (ROUTER drops silently; this is a guard)
            self._log.debug("Reply not sent: %s", exc)
        if outgoing.after is not None:
            with contextlib.suppress(Exception):
                outgoing.after()
