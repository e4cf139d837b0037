"""Seeded random and mutated frames on every socket: the satellite keeps its state and keeps answering.

(A light self-check; the dedicated fuzzers live in tests/fuzz.)
"""

from __future__ import annotations

import asyncio
import random

import zmq
from zmq.utils.monitor import parse_monitor_message

from protocols import cscp
from protocols.cscp import VerbType as V
from tests.runtime.conftest import HeartbeatSub

SEED = 20261122


def mutate(rng: random.Random, frames: list[bytes]) -> list[bytes]:
    frames = [bytearray(f) for f in frames]
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(6)
        i = rng.randrange(len(frames))
        f = frames[i]
        if op == 0 and f:
            f[rng.randrange(len(f))] = rng.randrange(256)
        elif op == 1 and f:
            del f[rng.randrange(len(f)) :]
        elif op == 2:
            f.insert(rng.randrange(len(f) + 1), rng.randrange(256))
        elif op == 3 and len(frames) > 1:
            frames.pop(i)
        elif op == 4:
            frames.append(bytearray(rng.randbytes(rng.randrange(12))))
        else:
            frames[i] = bytearray(rng.randbytes(rng.randrange(40)))
    return [bytes(f) for f in frames] or [b""]


async def test_command_socket_survives_mutated_requests(make_satellite, client) -> None:
    sat = await make_satellite()
    cl = client(sat)
    rng = random.Random(SEED)
    valid = [
        cscp.encode(cscp.request("Ctl.x", c, p))
        for c, p in (("get_name", None), ("initialize", {"a": 1}), ("start", "r1"), ("get_state", None))
    ]
    codes = set()
    for n in range(1500):
        frames = mutate(rng, rng.choice(valid)) if n % 3 else [rng.randbytes(rng.randrange(30))]
        rep = cscp.decode(await cl.raw(frames))  # always exactly one decodable reply
        codes.add(rep.verb_type)
        assert rep.sender == "Satellite.T"
    assert V.ERROR in codes
    assert (await cl("get_name")).verb == "Satellite.T"
    state = (await cl("get_state")).verb
    assert state in {"NEW", "INIT", "initializing", "ERROR"}  # mutated `initialize`s may have succeeded


async def test_pub_sockets_survive_random_subscription_traffic(make_satellite, client, zctx) -> None:
    sat = await make_satellite()
    rng = random.Random(SEED + 1)
    xs = []
    for port in (sat.ports["hb"], sat.ports["mon"]):
        x = zctx.socket(zmq.XSUB)
        x.setsockopt(zmq.LINGER, 0)
        x.connect(f"tcp://127.0.0.1:{port}")
        xs.append(x)
    for _ in range(1000):
        for x in xs:
            await x.send_multipart([rng.randbytes(rng.randrange(20)) for _ in range(rng.randint(1, 3))])
    sub = HeartbeatSub(zctx, sat.ports["hb"])
    async with asyncio.timeout(5):
        hb = await sub.next()
    assert hb.sender == "Satellite.T"
    assert (await client(sat)("get_state")).verb == "NEW"
    assert all(not t.done() for t in sat._tasks)  # no service task died


async def test_oversized_request_disconnects_only_that_peer(make_satellite, client, zctx) -> None:
    sat = await make_satellite()
    big = zctx.socket(zmq.DEALER)
    big.setsockopt(zmq.LINGER, 0)
    events = big.get_monitor_socket(zmq.EVENT_DISCONNECTED)
    big.connect(f"tcp://127.0.0.1:{sat.ports['cmd']}")
    await big.send_multipart([b"", b"x" * (17 * 2**20)])
    async with asyncio.timeout(5):  # the satellite drops that connection (MAXMSGSIZE 16 MiB)
        event = parse_monitor_message(await events.recv_multipart())
    assert event["event"] == zmq.EVENT_DISCONNECTED
    assert (await client(sat)("get_name")).verb == "Satellite.T"
    assert sat._server.requests == 1  # only get_name reached the server
    big.disable_monitor()
