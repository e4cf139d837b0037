"""Fuzz the command socket (CSCP) of a running satellite: every request gets one reply, nothing breaks.

Inputs: every CSCP input of the wire reference's section 12 (an int instead of the Timestamp, wrong frame
counts, non-REQUEST verbs, wrong protocol strings, ...) through a REQ socket as a controller would send
them; thousands of mutated and random multipart messages through a DEALER (hypothesis-driven and as one
pipelined blast); and raw TCP garbage on the port. Afterwards the satellite is alive, still in ORBIT,
answers ``get_state`` within a second and keeps beating (``assert_healthy``).
"""

from __future__ import annotations

import random
import socket
import time

import msgpack
import pytest
import zmq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocols import State, cscp
from tests.fuzz.conftest import assert_healthy
from tests.fuzz.support import LOOPBACK, Client, Sat
from tests.protocols.strategies import values

pytestmark = [pytest.mark.netns, pytest.mark.timeout(120)]

P = msgpack.packb
TS = msgpack.Timestamp.from_unix_nano(time.time_ns())
GOOD_HEADER = P("CSCP\x01") + P("Test.fuzz") + P(TS) + P({})
GOOD_VERB = P(0) + P("get_state")


def _verb(code: int, text: str = "get_state") -> bytes:
    return P(code) + P(text)


# (label, frames, expected reply type): section 12 and its neighbours, sent exactly like this.
SECTION_12: list[tuple[str, list[bytes], cscp.VerbType]] = [
    ("int instead of Timestamp", [P("CSCP\x01") + P("Test.fuzz") + P(12345) + P({}), GOOD_VERB],
     cscp.VerbType.ERROR),
    ("float instead of Timestamp", [P("CSCP\x01") + P("Test.fuzz") + P(1.5) + P({}), GOOD_VERB],
     cscp.VerbType.ERROR),
    ("str instead of Timestamp", [P("CSCP\x01") + P("Test.fuzz") + P("now") + P({}), GOOD_VERB],
     cscp.VerbType.ERROR),
    ("ext type 5 instead of -1", [P("CSCP\x01") + P("Test.fuzz") + P(msgpack.ExtType(5, b"\0" * 8)) + P({}),
                                   GOOD_VERB], cscp.VerbType.ERROR),
    ("one frame", [GOOD_HEADER], cscp.VerbType.ERROR),
    ("four frames", [GOOD_HEADER, GOOD_VERB, P(None), P(1)], cscp.VerbType.ERROR),
    ("five frames", [GOOD_HEADER, GOOD_VERB, P(1), P(2), P(3)], cscp.VerbType.ERROR),
    ("verb type SUCCESS", [GOOD_HEADER, _verb(1)], cscp.VerbType.INVALID),
    ("verb type ERROR", [GOOD_HEADER, _verb(6)], cscp.VerbType.INVALID),
    ("verb type 7 (outside the enum)", [GOOD_HEADER, _verb(7)], cscp.VerbType.ERROR),
    ("verb type -1", [GOOD_HEADER, _verb(-1)], cscp.VerbType.ERROR),
    ("protocol CSCP\\x02", [P("CSCP\x02") + P("Test.fuzz") + P(TS) + P({}), GOOD_VERB], cscp.VerbType.ERROR),
    ("protocol CHP\\x01", [P("CHP\x01") + P("Test.fuzz") + P(TS) + P({}), GOOD_VERB], cscp.VerbType.ERROR),
    ("protocol as bin", [P(b"CSCP\x01") + P("Test.fuzz") + P(TS) + P({}), GOOD_VERB], cscp.VerbType.ERROR),
    ("sender is an int", [P("CSCP\x01") + P(7) + P(TS) + P({}), GOOD_VERB], cscp.VerbType.ERROR),
    ("tags are a list", [P("CSCP\x01") + P("Test.fuzz") + P(TS) + P([1]), GOOD_VERB], cscp.VerbType.ERROR),
    ("tags with int keys", [P("CSCP\x01") + P("Test.fuzz") + P(TS) + P({1: 2}), GOOD_VERB],
     cscp.VerbType.ERROR),
    ("header missing tags", [P("CSCP\x01") + P("Test.fuzz") + P(TS), GOOD_VERB], cscp.VerbType.ERROR),
    ("header with trailing object", [GOOD_HEADER + P(1), GOOD_VERB], cscp.VerbType.ERROR),
    ("verb without text", [GOOD_HEADER, P(0)], cscp.VerbType.ERROR),
    ("verb text is bin", [GOOD_HEADER, P(0) + P(b"get_state")], cscp.VerbType.ERROR),
    ("payload frame with two objects", [GOOD_HEADER, GOOD_VERB, P(1) + P(2)], cscp.VerbType.ERROR),
    ("empty frames", [b"", b""], cscp.VerbType.ERROR),
    ("not msgpack", [b"\xc1\xc1\xc1", b"\xc1"], cscp.VerbType.ERROR),
    ("truncated header", [GOOD_HEADER[:-3], GOOD_VERB], cscp.VerbType.ERROR),
    ("one MiB of garbage", [random.Random(3).randbytes(2**20), GOOD_VERB], cscp.VerbType.ERROR),
    ("unknown command", [GOOD_HEADER, _verb(0, "no_such_command")], cscp.VerbType.UNKNOWN),
    ("get_name with a payload", [GOOD_HEADER, _verb(0, "get_name"), P([1, 2])], cscp.VerbType.INCOMPLETE),
    ("launch refused in ORBIT", [GOOD_HEADER, _verb(0, "launch")], cscp.VerbType.INVALID),
    ("shutdown refused in ORBIT", [GOOD_HEADER, _verb(0, "shutdown")], cscp.VerbType.INVALID),
    ("initialize refused in ORBIT", [GOOD_HEADER, _verb(0, "initialize"), P({"a": 1})],
     cscp.VerbType.INVALID),
    ("custom command, wrong argument", [GOOD_HEADER, _verb(0, "set_channel"), P(["x", 1.0])],
     cscp.VerbType.INCOMPLETE),
    ("upper-case command", [GOOD_HEADER, _verb(0, "GET_STATE")], cscp.VerbType.SUCCESS),
]  # fmt: skip


@pytest.mark.parametrize(("label", "frames", "expected"), SECTION_12, ids=[c[0] for c in SECTION_12])
def test_section12_request_gets_the_right_reply_over_req(
    orbiting: Sat, label: str, frames: list[bytes], expected: cscp.VerbType
) -> None:
    client = Client(orbiting.cmd)
    try:
        raw = client.raw(frames, timeout=3.0)
        assert raw is not None, f"{label}: no reply (1.0.2's command thread would now be dead)"
        reply = cscp.decode(raw)
        assert reply.sender == orbiting.name
        assert reply.verb_type is expected, f"{label}: {reply}"
        assert reply.verb, "the reply text must say what was wrong"
        # The same REQ socket keeps working: the satellite is still answering, in ORBIT.
        assert client.state(timeout=2.0) is State.ORBIT
    finally:
        client.close()


def test_section12_inputs_leave_the_satellite_healthy(orbiting: Sat) -> None:
    client = Client(orbiting.cmd)
    try:
        for _ in range(3):
            for label, frames, _expected in SECTION_12:
                assert client.raw(frames, timeout=3.0) is not None, label
    finally:
        client.close()
    assert_healthy(orbiting)


# --- mutated and random frames through a DEALER --------------------------------------------------

COMMANDS = ["get_state", "get_name", "get_commands", "get_config", "get_role", "get_status", "get_run_id",
            "initialize", "launch", "shutdown", "set_channel", "get_channels", "nope", ""]  # fmt: skip


@st.composite
def valid_requests(draw: st.DrawFn) -> list[bytes]:
    payload = draw(st.one_of(st.none(), values))
    return cscp.encode(cscp.request("Test.fuzz", draw(st.sampled_from(COMMANDS)), payload))


def _mutate(frames: list[bytes], draw: st.DrawFn) -> list[bytes]:
    frames = list(frames)
    for _ in range(draw(st.integers(1, 3))):
        op = draw(st.sampled_from(["flip", "truncate", "append", "drop", "dup", "insert", "swap", "empty"]))
        i = draw(st.integers(0, len(frames) - 1)) if frames else 0
        if op == "flip" and frames and frames[i]:
            b = bytearray(frames[i])
            j = draw(st.integers(0, len(b) - 1))
            b[j] ^= draw(st.integers(1, 255))
            frames[i] = bytes(b)
        elif op == "truncate" and frames:
            frames[i] = frames[i][: draw(st.integers(0, max(0, len(frames[i]) - 1)))]
        elif op == "append" and frames:
            frames[i] += draw(st.binary(min_size=1, max_size=8))
        elif op == "drop" and len(frames) > 1:
            del frames[i]
        elif op == "dup" and frames:
            frames.insert(i, frames[i])
        elif op == "insert":
            frames.insert(i, draw(st.binary(max_size=16)))
        elif op == "swap" and len(frames) > 1:
            frames[0], frames[-1] = frames[-1], frames[0]
        elif op == "empty" and frames:
            frames[i] = b""
    return frames or [b"\x00"]


@st.composite
def mutated_requests(draw: st.DrawFn) -> list[bytes]:
    return _mutate(draw(valid_requests()), draw)


msgpack_frames = st.lists(
    st.lists(values, min_size=1, max_size=5).map(lambda objs: b"".join(P(o, datetime=False) for o in objs)),
    min_size=1,
    max_size=4,
)
random_frames = st.lists(st.binary(max_size=64), min_size=1, max_size=5).filter(lambda f: f[0] != b"")
fuzz_frames = st.one_of(mutated_requests(), msgpack_frames, random_frames, valid_requests())


class Dealer:
    def __init__(self, port: int) -> None:
        self.ctx = zmq.Context()
        self.sock = self.ctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.RCVHWM, 0)
        self.sock.setsockopt(zmq.SNDHWM, 0)
        self.sock.connect(f"tcp://{LOOPBACK}:{port}")

    def close(self) -> None:
        self.ctx.destroy(linger=0)


@pytest.fixture(scope="module")
def dealer(orbiting: Sat):
    d = Dealer(orbiting.cmd)
    yield d
    d.close()


def _exactly_one_reply(sat: Sat, dealer: Dealer, frames: list[bytes]) -> None:
    dealer.sock.send_multipart([b"", *frames])
    assert dealer.sock.poll(3000), f"no reply to {frames!r}"
    raw = dealer.sock.recv_multipart()
    assert raw[0] == b"", raw
    reply = cscp.decode(raw[1:])
    assert reply.sender == sat.name
    assert reply.verb_type is not cscp.VerbType.REQUEST
    if reply.verb_type is cscp.VerbType.SUCCESS:  # only a well-formed request may succeed
        request = cscp.decode(frames)
        assert request.verb_type is cscp.VerbType.REQUEST
    assert not dealer.sock.poll(0), "more than one reply to one request"


FUZZ = settings(
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@settings(FUZZ, max_examples=1000)
@given(frames=fuzz_frames)
def test_mutated_requests_each_get_exactly_one_reply(
    orbiting: Sat, dealer: Dealer, frames: list[bytes]
) -> None:
    _exactly_one_reply(orbiting, dealer, frames)


def test_healthy_after_mutated_requests(orbiting: Sat) -> None:
    assert_healthy(orbiting)


@pytest.mark.slow
@pytest.mark.timeout(900)
@settings(FUZZ, max_examples=20_000)
@given(frames=fuzz_frames)
def test_mutated_requests_long(orbiting: Sat, dealer: Dealer, long_fuzz: None, frames: list[bytes]) -> None:
    _exactly_one_reply(orbiting, dealer, frames)


def test_blast_of_random_messages_gets_every_reply_and_leaves_it_healthy(orbiting: Sat) -> None:
    """3000 pipelined random/mutated messages, some without the REQ delimiter: 3000 replies come back."""
    rng = random.Random(20261122)
    good = cscp.encode(cscp.request("Test.fuzz", "get_state"))
    d = Dealer(orbiting.cmd)
    try:
        n = 3000
        for i in range(n):
            kind = i % 4
            if kind == 0:
                body = [rng.randbytes(rng.randint(1, 40)) for _ in range(rng.randint(1, 4))]
            elif kind == 1:
                body = [bytearray(f) for f in good]
                f = rng.randrange(len(body))
                if body[f]:
                    body[f][rng.randrange(len(body[f]))] ^= rng.randint(1, 255)
                body = [bytes(x) for x in body]
            elif kind == 2:
                body = [*good, rng.randbytes(8)] * rng.randint(1, 2)
            else:
                body = good
            envelope = [] if i % 7 == 3 else [b""]  # sometimes no delimiter at all
            d.sock.send_multipart([*envelope, *body] or [b"x"])
        # While thousands of requests are queued from one peer, another controller is still served
        # promptly (the ROUTER queues fairly per peer).
        other = Client(orbiting.cmd)
        try:
            t = time.monotonic()
            assert other.state(timeout=2.0) is State.ORBIT
            assert time.monotonic() - t < 1.0
        finally:
            other.close()
        got, deadline = 0, time.monotonic() + 30
        while got < n and time.monotonic() < deadline:
            if d.sock.poll(1000):
                d.sock.recv_multipart()
                got += 1
        assert got == n, f"{got} replies to {n} requests"
    finally:
        d.close()
    assert_healthy(orbiting)


def test_raw_tcp_garbage_on_every_port(orbiting: Sat) -> None:
    """Bytes that are not even ZMTP (and half-finished greetings) on the command, heartbeat and monitoring
    ports: ZeroMQ drops those connections; the satellite carries on."""
    rng = random.Random(7)
    greeting = b"\xff" + b"\x00" * 8 + b"\x7f" + b"\x03\x00" + b"NULL" + b"\x00" * 16
    for port in (orbiting.cmd, orbiting.hb, orbiting.mon):
        for i in range(40):
            with socket.create_connection((LOOPBACK, port), timeout=2) as s:
                s.sendall(greeting[: rng.randint(0, len(greeting))] if i % 2 else b"")
                s.sendall(rng.randbytes(rng.randint(1, 4096)))
    assert_healthy(orbiting)
