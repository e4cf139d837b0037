"""The raw floor for the satellite benchmark: pyzmq + msgpack only, no framework, one thread.

``python benchmarks/satellite_floor.py PORT [--mon-port MON]`` binds ``tcp://127.0.0.1:PORT`` (REP) and
answers every request with a CSCP-shaped reply (header with sender, msgpack Timestamp and empty tags;
verb SUCCESS "NEW"; payload 0x10), after unpacking every frame of the request: the fastest a Python
process can possibly answer a get_state.

With ``--mon-port`` it also binds a PUB there (send HWM 100,000, as our satellite's CMDP XPUB) and
answers a ``burst`` request (payload ``[n, level]``, the benchmark's log-burst command) by publishing
``n`` CMDP log messages ``LOG/<LEVEL>/FLOOR`` with text ``burst <i>`` before replying. Each message
is encoded per record like a real one: a header with a fresh timestamp and the nine tags a satellite
sends, packed with msgpack, and sent as three frames with the cheapest pyzmq send (the socket's base
``send``; the timestamp with ``struct``, as our encoder does). This is the rate a Python publisher
process could reach; the receiver is the same probe code that measures the satellites. A ``burst_bare``
request publishes the same messages with one header encoded before the loop (same time, fewer tags):
three sends and a formatted text a record, the least any publisher going through pyzmq can do.
"""

from __future__ import annotations

import argparse
import os
import struct
import sys
import threading
import time

import msgpack
import zmq

SENDER = "Floor.echo"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("port", type=int)
    ap.add_argument("--mon-port", type=int)
    args = ap.parse_args()
    ctx = zmq.Context()
    rep = ctx.socket(zmq.REP)
    rep.setsockopt(zmq.LINGER, 0)
    rep.bind(f"tcp://127.0.0.1:{args.port}")
    pub: zmq.Socket[bytes] | None = None
    if args.mon_port:
        pub = ctx.socket(zmq.PUB)
        pub.setsockopt(zmq.LINGER, 0)
        pub.setsockopt(zmq.SNDHWM, 100_000)
        pub.bind(f"tcp://127.0.0.1:{args.mon_port}")
    print(f"floor listening on {args.port}", flush=True)
    verb = msgpack.packb(1) + msgpack.packb("NEW")
    payload = msgpack.packb(0x10)
    while True:
        frames = rep.recv_multipart()
        parts = [_unpack_all(frame) for frame in frames]
        if pub is not None and len(parts) == 3 and parts[1][1:2] in (["burst"], ["burst_bare"]):
            n, level = parts[2][0]
            (burst if parts[1][1] == "burst" else burst_bare)(pub, int(n), str(level).upper())
        now = time.time_ns()
        ts = msgpack.Timestamp(now // 10**9, now % 10**9)
        header = msgpack.packb("CSCP\x01") + msgpack.packb(SENDER) + msgpack.packb(ts) + msgpack.packb({})
        rep.send_multipart([header, verb, payload])


_TS64 = struct.Struct(">2sQ").pack


def burst(pub: zmq.Socket[bytes], n: int, level: str) -> None:
    """Publish n CMDP log records, each header (timestamp, tags) encoded per record."""
    send = super(zmq.Socket, pub).send
    more = zmq.SNDMORE
    topic = f"LOG/{level}/FLOOR".encode()
    prefix = msgpack.packb("CMDP\x01") + msgpack.packb(SENDER)
    pack = msgpack.Packer(use_bin_type=True).pack
    path = os.path.abspath(__file__)
    thread = threading.current_thread()
    for i in range(n):
        now = time.time_ns() // 1000 * 1000
        seconds, nanoseconds = divmod(now, 1_000_000_000)  # seconds < 2**34: timestamp 64
        tags = {
            "filename": "satellite_floor.py",
            "pathname": path,
            "lineno": 80,
            "funcName": "burst",
            "module": "satellite_floor",
            "thread": thread.ident,
            "threadName": thread.name,
            "process": os.getpid(),
            "processName": "MainProcess",
        }
        send(topic, more)
        send(prefix + _TS64(b"\xd7\xff", nanoseconds << 34 | seconds) + pack(tags), more)
        send(f"burst {i}".encode(), 0)


def burst_bare(pub: zmq.Socket[bytes], n: int, level: str) -> None:
    """Publish n CMDP log records with one header encoded before the loop: per record, only the text
    is formatted and the three frames sent. No publisher that goes through pyzmq does less."""
    send = super(zmq.Socket, pub).send
    more = zmq.SNDMORE
    topic = f"LOG/{level}/FLOOR".encode()
    now = time.time_ns() // 1000 * 1000
    seconds, nanoseconds = divmod(now, 1_000_000_000)
    tags = {"filename": "satellite_floor.py", "lineno": 120, "funcName": "burst_bare"}
    header = (
        msgpack.packb("CMDP\x01")
        + msgpack.packb(SENDER)
        + _TS64(b"\xd7\xff", nanoseconds << 34 | seconds)
        + msgpack.packb(tags)
    )
    for i in range(n):
        send(topic, more)
        send(header, more)
        send(b"burst %d" % i, 0)


def _unpack_all(frame: bytes) -> list[object]:
    unpacker = msgpack.Unpacker(raw=False)
    unpacker.feed(frame)
    return list(unpacker)


if __name__ == "__main__":
    sys.exit(main())
