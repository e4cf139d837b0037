"""Client-side measurements of one satellite process, used by ``satellite_bench.py``.

Every function talks to the satellite over loopback only (CSCP on REQ, CMDP on a raw-TCP ZMTP 3.0 SUB
from ``zmtp_sub.py``, CHIRP on the namespace's loopback multicast route) and is bounded by a deadline.
The same client code measures our runtime, ConstellationDAQ 1.0.2 and the raw echo floor, so
differences come from the servers.
"""

from __future__ import annotations

import os
import statistics
import time
import uuid
from dataclasses import dataclass

import psutil
import zmq

from protocols import chirp, cmdp, cscp
from tests.harness import BeaconLog

try:
    from benchmarks import zmtp_sub
except ImportError:  # run as a script from benchmarks/ (satellite_bench.py puts that directory on the path)
    import zmtp_sub  # type: ignore[no-redef]

LOOPBACK = "127.0.0.1"
Ctx = zmq.Context  # type alias for annotations


class ProbeFailed(RuntimeError):
    """A measurement missed its deadline or got an unexpected reply."""


def _req(ctx: Ctx, port: int) -> zmq.Socket[bytes]:
    sock = ctx.socket(zmq.REQ)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.RECONNECT_IVL, 5)  # start-up probing: retry the connect every 5 ms
    sock.connect(f"tcp://{LOOPBACK}:{port}")
    return sock


def call(
    ctx: Ctx,
    port: int,
    command: str,
    payload: object = None,
    timeout: float = 10.0,
) -> cscp.Message:
    """One CSCP request on a fresh REQ socket; the decoded reply (ProbeFailed on timeout)."""
    sock = _req(ctx, port)
    try:
        sock.send_multipart(cscp.encode(cscp.request("Bench.probe", command, payload)))
        if not sock.poll(int(timeout * 1000)):
            raise ProbeFailed(f"no reply to {command} within {timeout}s")
        return cscp.decode(sock.recv_multipart())
    finally:
        sock.close()


def startup_to_first_reply(ctx: Ctx, port: int, t0: float, timeout: float) -> float:
    """Seconds from ``t0`` (monotonic, taken just before the process was started) to a get_state reply.

    One REQ keeps reconnecting every 5 ms until the satellite binds; the request queued on it is
    delivered as soon as the connection exists.
    """
    sock = _req(ctx, port)
    try:
        sock.send_multipart(cscp.encode(cscp.request("Bench.probe", "get_state")))
        deadline = t0 + timeout
        while not sock.poll(5):
            if time.monotonic() > deadline:
                raise ProbeFailed(f"no get_state reply within {timeout}s of start")
        reply = cscp.decode(sock.recv_multipart())
        elapsed = time.monotonic() - t0
        if reply.verb_type is not cscp.VerbType.SUCCESS:
            raise ProbeFailed(f"get_state: {reply}")
        return elapsed
    finally:
        sock.close()


@dataclass(frozen=True)
class Latency:
    n: int
    median_ms: float
    p99_ms: float
    max_ms: float


def get_state_rtt(ctx: Ctx, port: int, n: int, warmup: int = 20) -> Latency:
    """Round trips of ``get_state`` on one REQ socket (request frames encoded once)."""
    sock = _req(ctx, port)
    frames = cscp.encode(cscp.request("Bench.probe", "get_state"))
    samples: list[float] = []
    try:
        for i in range(warmup + n):
            t = time.perf_counter()
            sock.send_multipart(frames)
            if not sock.poll(10_000):
                raise ProbeFailed(f"get_state #{i} got no reply within 10 s")
            reply = cscp.decode(sock.recv_multipart())
            dt = time.perf_counter() - t
            if reply.verb_type is not cscp.VerbType.SUCCESS:
                raise ProbeFailed(f"get_state: {reply}")
            if i >= warmup:
                samples.append(dt * 1000)
    finally:
        sock.close()
    samples.sort()
    return Latency(n, statistics.median(samples), samples[min(n - 1, int(n * 0.99))], samples[-1])


@dataclass(frozen=True)
class ProcStats:
    rss_mib: float
    threads: int
    idle_cpu_pct: float


def process_stats(pid: int, idle_window: float) -> ProcStats:
    """RSS and OS threads now, and CPU (% of one core) used over an idle window (process and children)."""
    proc = psutil.Process(pid)
    family = [proc, *proc.children(recursive=True)]

    def cpu() -> float:
        total = 0.0
        for p in family:
            try:
                t = p.cpu_times()
                total += t.user + t.system
            except psutil.NoSuchProcess:
                continue
        return total

    c0, t0 = cpu(), time.monotonic()
    time.sleep(idle_window)
    c1, t1 = cpu(), time.monotonic()
    rss = sum(p.memory_info().rss for p in family if p.is_running())
    threads = sum(p.num_threads() for p in family if p.is_running())
    return ProcStats(rss / 2**20, threads, 100.0 * (c1 - c0) / (t1 - t0))


class ChirpObserver(BeaconLog):
    """A raw CHIRP listener on the loopback multicast route (inside the namespace only), stamping every
    beacon of the group on arrival (`tests.harness.BeaconLog`), that can also send a REQUEST."""

    def __init__(self, group: str) -> None:
        if "NETNS_HOSTS" not in os.environ:
            raise ProbeFailed("CHIRP probing needs the private network namespace")
        super().__init__(group)
        self.host_id = chirp.host_id(f"Bench.observer{uuid.uuid4().hex[:8]}")

    def wait_offer(self, host: bytes, service: chirp.ServiceId, after: float, timeout: float) -> float:
        try:
            return super().wait_offer(host, service, after, timeout)
        except TimeoutError as exc:
            raise ProbeFailed(str(exc)) from None

    def request_to_offer(self, host: bytes, service: chirp.ServiceId, timeout: float) -> float:
        """Seconds from our CHIRP REQUEST to the satellite's OFFER in reply."""
        beacon = chirp.Beacon(chirp.MessageType.REQUEST, self.group_id, self.host_id, service, 0)
        t = time.monotonic()
        self.sock.sendto(chirp.encode(beacon), (chirp.MULTICAST_ADDRESS, chirp.PORT))
        return self.wait_offer(host, service, t, timeout) - t


@dataclass(frozen=True)
class Throughput:
    level: str
    sent: int
    received: int
    seconds: float

    @property
    def lost(self) -> int:
        return self.sent - self.received

    @property
    def per_second(self) -> float:
        return self.received / self.seconds if self.seconds > 0 else 0.0


class BurstTally:
    """The records of one burst in parsed messages: indices seen, where the last one ended, checks made.

    Every message must have 3 frames and the ``LOG/<LEVEL>`` topic prefix subscribed to (ProbeFailed
    otherwise); messages whose text is not ``burst <i>`` are not counted. The first record and every
    64th are decoded with the validating codec (``cmdp.decode``) and their text compared.
    """

    def __init__(self, level: str) -> None:
        self.level = level.upper()
        self.prefix = f"LOG/{self.level}".encode()
        self.seen: set[int] = set()
        self.records = 0  # burst records parsed (duplicates included)
        self.checked = 0
        self.last_end = 0  # buffer offset after the last burst record

    def add(self, messages: list[zmtp_sub.Message]) -> None:
        for m in messages:
            frames = m.frames
            if len(frames) != 3 or not frames[0].startswith(self.prefix):
                raise ProbeFailed(f"not a {self.prefix.decode()} message: {frames!r}")
            text = frames[2]
            if not text.startswith(b"burst "):
                continue
            if self.records % 64 == 0:
                self.checked += 1
                msg = cmdp.decode(frames)
                if not isinstance(msg, cmdp.LogMessage) or msg.text != text.decode():
                    raise ProbeFailed(f"not a CMDP log message: {frames!r}")
                if msg.level.name != self.level:
                    raise ProbeFailed(f"a {msg.level.name} record on the {self.level} topic: {frames!r}")
            self.records += 1
            self.seen.add(int(text[6:]))
            self.last_end = max(self.last_end, m.end)


def log_throughput(
    ctx: Ctx,
    cmd_port: int,
    mon_port: int,
    level: str,
    n: int,
    burst_command: str = "burst",
    timeout: float = 120.0,
) -> Throughput:
    """Ask the satellite for a burst of ``n`` log records at ``level``; count what one subscriber gets.

    The subscriber is a raw-TCP ZMTP 3.0 SUB (``zmtp_sub.RawSub``: a pyzmq SUB tops out near 190k
    messages/s here, below a fast publisher) subscribed to ``LOG/<LEVEL>`` only; it first proves the
    subscription is active with one-record probe bursts. During the burst it only receives large chunks
    into one buffer, stamping each chunk's arrival and counting ``burst `` in C; when the count reaches
    ``n`` the received bytes are parsed as ZMTP frames to confirm every index is in. Afterwards
    (or after two quiet seconds following the reply: the rest is lost) everything is parsed: each
    message must be 3 frames with the ``LOG/<LEVEL>`` prefix, the first and every 64th record are
    decoded with ``cmdp.decode`` and checked, and ``received``/``lost`` come from the parsed indices.
    The rate is records received divided by the time from sending the burst command to the arrival of
    the chunk that held the last record.
    """
    tally = BurstTally(level)
    sub = zmtp_sub.RawSub(LOOPBACK, mon_port, [tally.prefix], timeout=10)
    try:
        deadline = time.monotonic() + 20
        while True:  # the publisher registers subscriptions asynchronously: probe until one arrives
            reply = call(ctx, cmd_port, burst_command, [1, level])
            if reply.verb_type is not cscp.VerbType.SUCCESS:
                raise ProbeFailed(f"{burst_command}: {reply}")
            if sub.read(0.3):
                break
            if time.monotonic() > deadline:
                raise ProbeFailed("log subscription never became active")
        while sub.read(0.3):  # drain the probes
            pass
        BurstTally(level).add(sub.parse())  # the probes are checked too, then forgotten
        sub.reset()
        sub.watch(b"burst ")

        req = _req(ctx, cmd_port)
        try:
            t0 = last_data = time.monotonic()
            req.send_multipart(cscp.encode(cscp.request("Bench.probe", burst_command, [n, level])))
            replied = False
            end = t0 + timeout
            while True:
                if sub.read(0.1):
                    if sub.parse_pending or sub.hits >= n:  # a PING to answer, or maybe complete
                        tally.add(sub.parse())
                        if len(tally.seen) >= n:
                            break
                    last_data = time.monotonic()
                    if last_data > end:
                        break
                    continue
                now = time.monotonic()
                if not replied and req.poll(0):
                    _check_reply(req, burst_command)
                    replied = True
                elif replied and now - last_data > 2.0:
                    break  # two quiet seconds after the reply: the rest is lost
                if now > end:
                    break
            if not replied:
                if not req.poll(int(max(end - time.monotonic(), 1.0) * 1000)):
                    raise ProbeFailed(f"no reply to {burst_command} within {timeout}s")
                _check_reply(req, burst_command)
        finally:
            req.close()
        tally.add(sub.parse())
        if tally.seen - set(range(n)):
            raise ProbeFailed(f"indices outside the burst: {sorted(tally.seen - set(range(n)))[:10]}")
        seconds = sub.arrival(tally.last_end) - t0 if tally.seen else 0.0
        return Throughput(level.upper(), n, len(tally.seen), seconds)
    finally:
        sub.close()


def _check_reply(req: zmq.Socket[bytes], command: str) -> None:
    reply = cscp.decode(req.recv_multipart())
    if reply.verb_type is not cscp.VerbType.SUCCESS:
        raise ProbeFailed(f"{command}: {reply}")
