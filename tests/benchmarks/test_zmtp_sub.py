"""The benchmark's raw ZMTP 3.0 subscriber (``benchmarks/zmtp_sub.py``) and the log-burst probe built on it.

Real pyzmq publishers on loopback, random ports; every wait has a deadline.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import pytest
import zmq

from benchmarks import satellite_probe, zmtp_sub
from protocols import cmdp, cscp
from tests.harness import free_tcp_port

LOOPBACK = "127.0.0.1"
TOPIC = b"LOG/WARNING"


def _record(i: int, level: cmdp.Level = cmdp.Level.WARNING, text: str | None = None) -> list[bytes]:
    tags = {"filename": "x.py", "lineno": i}
    return cmdp.encode(cmdp.LogMessage("Test.pub", level, "BENCH", text or f"burst {i}", tags))


XpubFactory = Callable[..., tuple[zmq.Socket[bytes], int]]


@pytest.fixture
def xpub() -> Iterator[XpubFactory]:
    """Makes bound XPUBs (they tell us when a subscription arrived): ``xpub(**options)`` -> (socket, port).

    Options are set before bind: the listener copies them for the connections it accepts.
    """
    ctx = zmq.Context()
    made: list[zmq.Socket[bytes]] = []

    def make(**options: int) -> tuple[zmq.Socket[bytes], int]:
        sock = ctx.socket(zmq.XPUB)
        made.append(sock)
        sock.setsockopt(zmq.LINGER, 0)
        for name, value in {"SNDHWM": 0, **options}.items():  # unlimited unless the test wants drops
            sock.setsockopt(getattr(zmq, name), value)
        port = free_tcp_port()
        sock.bind(f"tcp://{LOOPBACK}:{port}")
        return sock, port

    yield make
    for sock in made:
        sock.close()
    ctx.term()


def _await_subscription(pub: zmq.Socket[bytes], topic: bytes = TOPIC) -> None:
    if not pub.poll(5000):
        raise AssertionError("no subscription within 5 s")
    assert pub.recv() == b"\x01" + topic


def _read_until(sub: zmtp_sub.RawSub, done: object, timeout: float = 10.0) -> list[zmtp_sub.Message]:
    """Read and parse until ``done(messages)`` holds (deadline ``timeout``)."""
    messages: list[zmtp_sub.Message] = []
    deadline = time.monotonic() + timeout
    while not done(messages):  # type: ignore[operator]
        assert time.monotonic() < deadline, f"only {len(messages)} messages within {timeout}s"
        sub.read(0.05)
        messages += sub.parse()
    return messages


# -- the pure codec -----------------------------------------------------------------------------------


def test_frames_split_at_every_byte_parse_the_same() -> None:
    stream = (
        zmtp_sub.command(b"READY", b"\x0bSocket-Type\x00\x00\x00\x03PUB")
        + zmtp_sub.frame(b"LOG/INFO/X", zmtp_sub.MORE)
        + zmtp_sub.frame(b"h" * 300, zmtp_sub.MORE)  # a long frame (8-byte size)
        + zmtp_sub.frame(b"burst 1")
        + zmtp_sub.command(b"PING", b"\x00\x0actx")
        + zmtp_sub.frame(b"one")
    )
    whole, end = zmtp_sub.parse_frames(stream, 0, len(stream))
    assert end == len(stream)
    assert [type(x).__name__ for x in whole] == ["Command", "Message", "Command", "Message"]
    assert whole[1] == zmtp_sub.Message((b"LOG/INFO/X", b"h" * 300, b"burst 1"), whole[1].end)
    assert whole[2] == zmtp_sub.Command(b"PING", b"\x00\x0actx", whole[2].end)
    for split in range(len(stream) + 1):  # what arrived so far, then the rest
        first, pos = zmtp_sub.parse_frames(stream, 0, split)
        second, pos = zmtp_sub.parse_frames(stream, pos, len(stream))
        assert first + second == whole, split
        assert pos == len(stream)


def test_malformed_input_is_a_typed_error() -> None:
    with pytest.raises(zmtp_sub.ZmtpError, match="reserved frame flags"):
        zmtp_sub.parse_frames(b"\x40\x01x", 0, 3)
    data = zmtp_sub.frame(b"a", zmtp_sub.MORE) + zmtp_sub.command(b"PING", b"\x00\x00")
    with pytest.raises(zmtp_sub.ZmtpError, match="command frame inside a message"):
        zmtp_sub.parse_frames(data, 0, len(data))
    with pytest.raises(zmtp_sub.ZmtpError, match=r"not 3\.x"):
        zmtp_sub.check_greeting(zmtp_sub.SIGNATURE + b"\x02\x00" + b"NULL".ljust(52, b"\x00"))
    assert zmtp_sub.pong(zmtp_sub.Command(b"PING", b"\x00\x64abc", 0)) == zmtp_sub.command(b"PONG", b"abc")


# -- against a real pyzmq publisher -----------------------------------------------------------------


def test_counts_every_record_of_a_burst(xpub: XpubFactory) -> None:
    pub, port = xpub()
    n = 3000
    with zmtp_sub.RawSub(LOOPBACK, port, [TOPIC]) as sub:
        _await_subscription(pub)
        sub.watch(b"burst ")
        for i in range(n):
            pub.send_multipart(_record(i))
            if i % 100 == 0:  # filtered out by the publisher: never reaches us
                pub.send_multipart(_record(i, cmdp.Level.INFO))
        deadline = time.monotonic() + 10
        while sub.hits < n:
            assert time.monotonic() < deadline, f"counted {sub.hits} of {n}"
            sub.read(0.1)
        assert sub.hits == n
        messages = sub.parse()
    assert len(messages) == n
    for i, m in enumerate(messages):
        assert m.frames[0] == b"LOG/WARNING/BENCH"
        assert m.frames[2] == f"burst {i}".encode()
    decoded = cmdp.decode(list(messages[-1].frames))
    assert isinstance(decoded, cmdp.LogMessage)
    assert decoded.text == f"burst {n - 1}"
    # arrival stamps: non-decreasing in offset, and the last record's chunk is the last chunk
    times = [sub.arrival(m.end) for m in messages]
    assert times == sorted(times)
    assert sub.arrival(sub.received) == times[-1]


def test_frames_and_needles_split_across_tiny_chunks(xpub: XpubFactory) -> None:
    pub, port = xpub()
    n = 200
    with zmtp_sub.RawSub(LOOPBACK, port, [TOPIC], chunk=7) as sub:  # every frame spans chunks
        _await_subscription(pub)
        sub.watch(b"burst ")
        for i in range(n):
            pub.send_multipart(_record(i, text=f"burst {i}" + "x" * (i % 300)))  # short and long frames
        messages = _read_until(sub, lambda ms: len(ms) >= n)
        chunks = len(sub._stamp_ends)
    assert chunks > sub.received // 7 - 1  # really read 7 bytes at a time
    assert sub.hits == n  # each needle counted once, wherever the chunk boundaries fell
    assert [m.frames[2] for m in messages] == [f"burst {i}".encode() + b"x" * (i % 300) for i in range(n)]


def test_hwm_overflow_loses_whole_messages(xpub: XpubFactory) -> None:
    pub, port = xpub(SNDHWM=10, SNDBUF=4096)
    n = 50_000
    with zmtp_sub.RawSub(LOOPBACK, port, [TOPIC], rcvbuf=4096) as sub:
        _await_subscription(pub)
        for i in range(n):  # we read nothing meanwhile: the publisher's queue overflows and drops
            pub.send_multipart(_record(i), zmq.NOBLOCK)
        stop = threading.Event()

        def closing_marks() -> None:  # keeps offering an end mark until one got through
            while not stop.is_set():
                pub.send_multipart(_record(n, text="end"), zmq.NOBLOCK)
                stop.wait(0.01)

        marker = threading.Thread(target=closing_marks)
        marker.start()
        try:
            messages = _read_until(sub, lambda ms: any(m.frames[2] == b"end" for m in ms))
        finally:
            stop.set()
            marker.join(5)
    tally = satellite_probe.BurstTally("WARNING")
    tally.add(messages)
    assert 0 < len(tally.seen) < n  # some got through, many were dropped whole
    assert tally.seen <= set(range(n))
    assert tally.records == len(tally.seen)


def test_ping_is_answered_and_the_connection_survives(xpub: XpubFactory) -> None:
    pub, port = xpub(HEARTBEAT_IVL=20, HEARTBEAT_TIMEOUT=100)
    with zmtp_sub.RawSub(LOOPBACK, port, [TOPIC]) as sub:
        _await_subscription(pub)
        deadline = time.monotonic() + 5
        while sub.pongs < 15:  # 15 x 20 ms: well past the 100 ms the publisher waits for an answer
            assert time.monotonic() < deadline, f"{sub.pongs} PINGs answered within 5 s"
            sub.read(0.05)
            if sub.parse_pending:  # a PING found by the cheap search of the chunk
                assert sub.parse() == []
        pub.send_multipart(_record(7))
        messages = _read_until(sub, lambda ms: len(ms) == 1)
    assert messages[0].frames[2] == b"burst 7"


# -- the probe end to end: a fake satellite that skips one index ----------------------------------------


class FakeSatellite:
    """REP (CSCP ``burst [n, level]``) plus PUB, publishing ``burst <i>`` for every i except ``skip``."""

    def __init__(self, skip: int | None) -> None:
        self.ctx = zmq.Context()
        self.rep = self.ctx.socket(zmq.REP)
        self.pub = self.ctx.socket(zmq.PUB)
        for s in (self.rep, self.pub):
            s.setsockopt(zmq.LINGER, 0)
        self.pub.setsockopt(zmq.SNDHWM, 0)  # a slow reader under load must not turn into losses
        self.cmd_port, self.mon_port = free_tcp_port(), free_tcp_port()
        self.rep.bind(f"tcp://{LOOPBACK}:{self.cmd_port}")
        self.pub.bind(f"tcp://{LOOPBACK}:{self.mon_port}")
        self.skip = skip
        self.bursts: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            if not self.rep.poll(50):
                continue
            request = cscp.decode(self.rep.recv_multipart())
            n, level = request.payload
            self.bursts.append(n)
            for i in range(n):
                if n == 1 or i != self.skip:
                    self.pub.send_multipart(_record(i, cmdp.Level[level]))
            self.rep.send_multipart(cscp.encode(cscp.success_reply("Fake.sat", f"emitted {n}", n)))

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.rep.close()
        self.pub.close()
        self.ctx.term()


@pytest.mark.parametrize("skip", [None, 1234])
def test_log_throughput_counts_and_losses(skip: int | None) -> None:
    fake = FakeSatellite(skip)
    ctx = zmq.Context()
    try:
        result = satellite_probe.log_throughput(
            ctx, fake.cmd_port, fake.mon_port, "WARNING", 5000, timeout=30
        )
    finally:
        fake.close()
        ctx.term()
    assert fake.bursts[-1] == 5000  # the burst, after one-record probe bursts
    assert set(fake.bursts[:-1]) == {1}
    assert result.sent == 5000
    assert result.lost == (0 if skip is None else 1)
    assert result.received == 5000 - result.lost
    assert 0 < result.seconds < 30
