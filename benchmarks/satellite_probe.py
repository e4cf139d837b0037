"""Client-side measurements of one satellite process, used by ``satellite_bench.py``.

Every function talks to the satellite over loopback only (CSCP on REQ, CMDP on SUB, CHIRP on the
namespace's loopback multicast route) and is bounded by a deadline. The same client code measures our
runtime, ConstellationDAQ 1.0.2 and the raw echo floor, so differences come from the servers.
"""

from __future__ import annotations

import os
import statistics
import threading
import time
import uuid
from dataclasses import dataclass

import psutil
import zmq

from protocols import chirp, cmdp, cscp
from tests.harness import loopback_chirp_socket

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


class ChirpObserver:
    """A raw CHIRP listener on the loopback multicast route (inside the namespace only).

    A background thread stamps every beacon of the group with its arrival time (monotonic), so the
    arrival of an OFFER is known exactly even if we look for it later.
    """

    def __init__(self, group: str) -> None:
        if "NETNS_HOSTS" not in os.environ:
            raise ProbeFailed("CHIRP probing needs the private network namespace")
        self.group_id = chirp.group_id(group)
        self.host_id = chirp.host_id(f"Bench.observer{uuid.uuid4().hex[:8]}")
        sock = loopback_chirp_socket()
        sock.settimeout(0.05)
        self.sock = sock
        self.beacons: list[tuple[float, chirp.Beacon]] = []
        self._changed = threading.Condition()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, name="chirp-observer", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(2048)
            except TimeoutError:
                continue
            except OSError:
                return
            arrived = time.monotonic()
            try:
                beacon = chirp.decode(data)
            except ValueError:
                continue
            if beacon.group_id == self.group_id:
                with self._changed:
                    self.beacons.append((arrived, beacon))
                    self._changed.notify_all()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()

    def wait_offer(self, host: bytes, service: chirp.ServiceId, after: float, timeout: float) -> float:
        """Arrival time (monotonic) of the first OFFER of ``service`` from ``host`` after ``after``."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for arrived, b in self.beacons:
                    if (
                        arrived >= after
                        and b.type is chirp.MessageType.OFFER
                        and b.host_id == host
                        and b.service is service
                    ):
                        return arrived
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise ProbeFailed(f"no CHIRP OFFER {service.name} within {timeout}s")
                self._changed.wait(remaining)

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

    The subscriber subscribes to ``LOG/<LEVEL>`` only, with an unlimited receive queue, and first proves
    the subscription is active with one-record probe bursts. The rate is records received divided by the
    time from sending the burst command to the last record received; every record carries its index, so
    ``lost`` counts records that never arrived. Records are counted from the topic and text frames, and
    the first one and every 64th are decoded with the validating codec (``cmdp.decode``, about 12 us a
    message, which decoding every record would make the receiver's limit instead of the sender's).
    """
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.LINGER, 0)
    sub.setsockopt(zmq.RCVHWM, 0)
    sub.setsockopt(zmq.SUBSCRIBE, f"LOG/{level.upper()}".encode())
    sub.connect(f"tcp://{LOOPBACK}:{mon_port}")
    try:
        deadline = time.monotonic() + 20
        while True:  # the publisher registers subscriptions asynchronously: probe until one arrives
            reply = call(ctx, cmd_port, burst_command, [1, level])
            if reply.verb_type is not cscp.VerbType.SUCCESS:
                raise ProbeFailed(f"{burst_command}: {reply}")
            if sub.poll(300):
                break
            if time.monotonic() > deadline:
                raise ProbeFailed("log subscription never became active")
        while sub.poll(300):  # drain the probes
            sub.recv_multipart()

        req = _req(ctx, cmd_port)
        seen: set[int] = set()
        prefix = f"LOG/{level.upper()}".encode()
        checked = 0
        last = t0 = time.monotonic()
        req.send_multipart(cscp.encode(cscp.request("Bench.probe", burst_command, [n, level])))
        replied = False
        end = t0 + timeout
        poller = zmq.Poller()
        poller.register(sub, zmq.POLLIN)
        poller.register(req, zmq.POLLIN)
        while len(seen) < n and time.monotonic() < end:
            events = dict(poller.poll(2000))
            if not events:
                if replied:
                    break  # two quiet seconds after the reply: the rest is lost
                continue
            if req in events:
                reply = cscp.decode(req.recv_multipart())
                if reply.verb_type is not cscp.VerbType.SUCCESS:
                    raise ProbeFailed(f"{burst_command}: {reply}")
                replied = True
                poller.unregister(req)
            if sub in events:
                while True:
                    try:
                        frames = sub.recv_multipart(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    if len(frames) != 3 or not frames[0].startswith(prefix):
                        continue
                    text = frames[2]
                    if not text.startswith(b"burst "):
                        continue
                    if checked == 0 or len(seen) % 64 == 0:  # the cheap count is checked by decoding
                        checked += 1
                        msg = cmdp.decode(frames)
                        if not isinstance(msg, cmdp.LogMessage) or msg.text != text.decode():
                            raise ProbeFailed(f"not a CMDP log message: {frames!r}")
                    seen.add(int(text[6:]))
                    last = time.monotonic()
        req.close()
        return Throughput(level.upper(), n, len(seen), last - t0)
    finally:
        sub.close()
