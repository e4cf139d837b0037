"""Per-record cost of the two halves of the CMDP log path, in one thread (not a test).

    .venv/bin/python benchmarks/log_path_micro.py [--records 50000] [--reps 7] [--subscriber]
        [--unchecked-log]

- **producer**: `SatelliteLog.log(INFO, "burst %d", i)` (a satellite's ``self.log``) into a publisher
  that has a ``LOG/INFO`` subscription, with a console handler at WARNING on the root logger as
  ``satellite-run`` sets it up: the fast path up to the queue. The queue is not drained meanwhile.
- **consumer**: the publisher's ``_flush`` of the records queued that way, onto an XPUB without a
  connected subscriber, or with ``--subscriber`` one that takes everything as fast as it comes (a raw
  ZMTP SUB built from ``zmtp_sub``, in a child process on loopback): libzmq's pipe to its I/O thread and
  the wake-ups of that thread are then part of it.

``--unchecked-log`` applies the benchmark satellite's experiment of the same name to the producer
(``satellite_ours_bench.unchecked_log``: after the first record, no checks and no tag work).

Microseconds a record, best and median of ``--reps`` runs. No network traffic: the XPUB binds loopback,
and only the ``--subscriber`` child connects to it. ``benchmarks/satellite_bench.py`` measures the whole
path through a satellite process; this script shows where a change to one half moves it
(docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import socket
import statistics
import sys
import time

import zmq
import zmq.asyncio

from constellation.consolelog import ConsoleHandler
from constellation.monitoring import CmdpLogHandler, MonitoringPublisher
from constellation.satlog import SatelliteLog

try:
    from benchmarks import satellite_ours_bench, zmtp_sub
except ImportError:  # run as a script: its folder is on the path
    import satellite_ours_bench  # type: ignore[no-redef]
    import zmtp_sub  # type: ignore[no-redef]

NAME = "Sputnik.Micro"


async def measure(records: int, reps: int, subscriber: bool) -> tuple[list[float], list[float]]:
    ctx = zmq.asyncio.Context()
    sock = ctx.socket(zmq.XPUB)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.SNDHWM, 0)  # no limit: a subscriber that falls behind must not make sends cheap
    port = sock.bind_to_random_port("tcp://127.0.0.1")
    child = None
    if subscriber:
        child = await asyncio.create_subprocess_exec(sys.executable, __file__, "--drain", str(port))
        try:
            topic = await asyncio.wait_for(sock.recv(), 20)  # its subscription, in libzmq
        except TimeoutError:
            child.kill()
            raise SystemExit("the subscriber did not subscribe within 20 s") from None
        if topic != b"\x01LOG/INFO":
            raise SystemExit(f"unexpected subscription {topic!r}")
    log = SatelliteLog(
        logging.getLogger("satellites.sputnik.satellite"), {"satellite": NAME, "component": "SPUTNIK"}
    )
    publisher = MonitoringPublisher(sock, NAME, log, queue_size=records)
    publisher._on_subscription([b"\x01LOG/INFO"])  # as if a subscriber had sent it
    root = logging.getLogger()
    handler = CmdpLogHandler(publisher, NAME)
    console = ConsoleHandler()
    console.setLevel(logging.WARNING)
    root.addHandler(handler)
    root.addHandler(console)
    root.setLevel(5)
    info = logging.INFO
    produce: list[float] = []
    consume: list[float] = []
    try:
        for _ in range(reps):
            publisher._queue.clear()
            t = time.perf_counter()
            for i in range(records):
                log.log(info, "burst %d", i)
            produce.append((time.perf_counter() - t) / records * 1e6)
            if len(publisher._queue) != records:
                raise SystemExit(f"the fast path queued {len(publisher._queue)} of {records} records")
            t = time.perf_counter()
            publisher._flush(records)
            consume.append((time.perf_counter() - t) / records * 1e6)
    finally:
        root.removeHandler(handler)
        root.removeHandler(console)
        ctx.destroy(linger=0)
        if child is not None:
            child.kill()
            await child.wait()
    return produce, consume


def drain(port: int) -> int:
    """The ``--subscriber`` child: subscribe to LOG/INFO and take everything, until the publisher goes.

    The ZMTP 3.0 handshake of ``zmtp_sub.RawSub``, then every byte is received into one buffer and
    dropped: ``RawSub`` keeps what it has not parsed (``reset`` too), and parsing costs more than the
    sender's send. The publisher checks the subscription it gets (``measure``).
    """
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(zmtp_sub.greeting())
        peer = b""
        while len(peer) < zmtp_sub.GREETING_SIZE:
            more = sock.recv(zmtp_sub.GREETING_SIZE - len(peer))
            if not more:
                return 1
            peer += more
        zmtp_sub.check_greeting(peer)
        sock.sendall(zmtp_sub.ready() + zmtp_sub.subscription(b"LOG/INFO"))
        sock.settimeout(30.0)
        buf = bytearray(1 << 20)
        try:
            while sock.recv_into(buf):
                pass
        except OSError:  # TimeoutError included: the publisher went quiet
            pass
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=50_000, help="records per run")
    ap.add_argument("--reps", type=int, default=7, help="runs (best and median reported)")
    ap.add_argument("--subscriber", action="store_true", help="a live subscriber takes the records")
    ap.add_argument("--unchecked-log", action="store_true", help="the producer without checks or tags")
    ap.add_argument("--drain", type=int, help=argparse.SUPPRESS)  # the --subscriber child
    args = ap.parse_args()
    if args.drain is not None:
        return drain(args.drain)
    if args.records < 1 or args.reps < 1:
        ap.error("--records and --reps must be at least 1")
    if args.unchecked_log:
        satellite_ours_bench.unchecked_log()
    produce, consume = asyncio.run(measure(args.records, args.reps, args.subscriber))
    for name, values in (("producer", produce), ("consumer", consume)):
        print(f"{name}: {min(values):.2f} us a record best, {statistics.median(values):.2f} median")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
