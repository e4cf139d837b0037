"""CommandLink against an in-process REP socket on loopback (no discovery, no multicast)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import zmq
import zmq.asyncio

from controllers import BadReply, CommandLink, CommandTimeout, SatelliteGone
from protocols import EncodeError, cscp
from protocols.cscp import VerbType

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
async def ctx() -> AsyncIterator[zmq.asyncio.Context]:
    context = zmq.asyncio.Context()
    yield context
    context.destroy(linger=0)


@pytest.fixture
async def rep(ctx: zmq.asyncio.Context) -> AsyncIterator[tuple[zmq.asyncio.Socket, str]]:
    sock = ctx.socket(zmq.REP)
    sock.setsockopt(zmq.LINGER, 0)
    port = sock.bind_to_random_port("tcp://127.0.0.1")
    yield sock, f"tcp://127.0.0.1:{port}"
    sock.close(linger=0)


async def _answer(sock: zmq.asyncio.Socket, text: str | None = None) -> cscp.Message:
    req = cscp.decode(await sock.recv_multipart())
    await sock.send_multipart(cscp.encode(cscp.success_reply("Fake.One", text or req.verb, req.payload)))
    return req


async def test_request_reply_roundtrip(ctx, rep) -> None:
    sock, endpoint = rep
    link = CommandLink(ctx, endpoint, "Controller.t")
    link.start()
    try:
        server = asyncio.create_task(_answer(sock))
        reply = await link.request("Get_Name", {"x": [1, 2]}, timeout=5)
        req = await server
        assert (req.sender, req.verb_type, req.verb, req.payload) == (
            "Controller.t",
            VerbType.REQUEST,
            "Get_Name",
            {"x": [1, 2]},
        )
        assert req.tags == {}
        assert (reply.sender, reply.type, reply.text, reply.payload) == (
            "Fake.One",
            VerbType.SUCCESS,
            "Get_Name",
            {"x": [1, 2]},
        )
        assert reply.ok
    finally:
        await link.aclose()


async def test_timeout_recreates_the_socket_and_the_next_request_works(ctx, rep) -> None:
    sock, endpoint = rep
    link = CommandLink(ctx, endpoint, "Controller.t")
    link.start()
    try:
        with pytest.raises(CommandTimeout):
            await link.request("get_state", timeout=0.2)
        assert link.timeouts == 1
        # The REP got the first request but never answered: answer it late (the reply goes to the
        # closed socket and is dropped), then serve the retry on the new connection.
        assert cscp.decode(await sock.recv_multipart()).verb == "get_state"
        await sock.send_multipart(cscp.encode(cscp.success_reply("Fake.One", "stale")))
        server = asyncio.create_task(_answer(sock, "fresh"))
        reply = await link.request("get_state", timeout=5)
        await server
        assert reply.text == "fresh"
    finally:
        await link.aclose()


async def test_no_peer_at_all_times_out_without_blocking(ctx) -> None:
    link = CommandLink(ctx, "tcp://127.0.0.1:9", "Controller.t")  # nothing listens there
    link.start()
    try:
        for _ in range(3):
            with pytest.raises(CommandTimeout):
                await link.request("get_state", timeout=0.1)
    finally:
        await link.aclose()


async def test_undecodable_reply_is_a_typed_error_and_the_link_keeps_working(ctx, rep) -> None:
    sock, endpoint = rep
    link = CommandLink(ctx, endpoint, "Controller.t")
    link.start()
    try:

        async def garbage() -> None:
            await sock.recv_multipart()
            await sock.send_multipart([b"\xc1garbage"])

        server = asyncio.create_task(garbage())
        with pytest.raises(BadReply, match="undecodable reply"):
            await link.request("get_state", timeout=5)
        await server
        server2 = asyncio.create_task(_answer(sock, "ok"))
        assert (await link.request("get_state", timeout=5)).text == "ok"
        await server2
    finally:
        await link.aclose()


async def test_unpackable_payload_fails_in_the_caller(ctx, rep) -> None:
    _, endpoint = rep
    link = CommandLink(ctx, endpoint, "Controller.t")
    link.start()
    try:
        with pytest.raises(EncodeError):
            await link.request("initialize", {"x": object()}, timeout=1)
    finally:
        await link.aclose()


async def test_close_fails_pending_requests(ctx, rep) -> None:
    sock, endpoint = rep
    link = CommandLink(ctx, endpoint, "Controller.t")
    link.start()
    pending = [asyncio.create_task(link.request("get_state", timeout=10)) for _ in range(3)]
    await sock.recv_multipart()  # the first one is in flight, the others are queued
    await link.aclose()
    for task in pending:
        with pytest.raises(SatelliteGone):
            await task
    with pytest.raises(SatelliteGone):
        await link.request("get_state")
