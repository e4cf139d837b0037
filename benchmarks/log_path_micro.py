"""Per-record cost of the two halves of the CMDP log path, in one thread (not a test).

    .venv/bin/python benchmarks/log_path_micro.py [--records 50000] [--reps 7]

- **producer**: `SatelliteLog.log(INFO, "burst %d", i)` (a satellite's ``self.log``) into a publisher
  that has a ``LOG/INFO`` subscription, with a console handler at WARNING on the root logger as
  ``satellite-run`` sets it up: the fast path up to the queue. The queue is not drained meanwhile.
- **consumer**: the publisher's ``_flush`` of the records queued that way, onto an XPUB without a
  connected subscriber (a live subscriber adds libzmq's pipe to its I/O thread: about 0.3-0.7 us more).

Microseconds a record, best and median of ``--reps`` runs. No network traffic: the XPUB binds loopback
and nothing connects. ``benchmarks/satellite_bench.py`` measures the whole path through a satellite
process; this script shows where a change to one half moves it (docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import time

import zmq
import zmq.asyncio

from constellation.consolelog import ConsoleHandler
from constellation.monitoring import CmdpLogHandler, MonitoringPublisher
from constellation.satlog import SatelliteLog

NAME = "Sputnik.Micro"


async def measure(records: int, reps: int) -> tuple[list[float], list[float]]:
    ctx = zmq.asyncio.Context()
    sock = ctx.socket(zmq.XPUB)
    sock.setsockopt(zmq.LINGER, 0)
    sock.bind_to_random_port("tcp://127.0.0.1")
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
    return produce, consume


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=50_000, help="records per run")
    ap.add_argument("--reps", type=int, default=7, help="runs (best and median reported)")
    args = ap.parse_args()
    if args.records < 1 or args.reps < 1:
        ap.error("--records and --reps must be at least 1")
    produce, consume = asyncio.run(measure(args.records, args.reps))
    for name, values in (("producer", produce), ("consumer", consume)):
        print(f"{name}: {min(values):.2f} us a record best, {statistics.median(values):.2f} median")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
