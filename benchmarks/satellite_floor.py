"""The raw floor for the satellite benchmark: a pyzmq REP + msgpack echo of get_state, nothing else.

``python benchmarks/satellite_floor.py PORT`` binds ``tcp://127.0.0.1:PORT`` and answers every request
with a CSCP-shaped reply (header with sender, msgpack Timestamp and empty tags; verb SUCCESS "NEW";
payload 0x10), after unpacking every frame of the request. One thread, no framework: the fastest a
Python process can possibly answer a get_state.
"""

from __future__ import annotations

import sys
import time

import msgpack
import zmq


def main() -> int:
    port = int(sys.argv[1])
    ctx = zmq.Context()
    rep = ctx.socket(zmq.REP)
    rep.setsockopt(zmq.LINGER, 0)
    rep.bind(f"tcp://127.0.0.1:{port}")
    print(f"floor listening on {port}", flush=True)
    verb = msgpack.packb(1) + msgpack.packb("NEW")
    payload = msgpack.packb(0x10)
    while True:
        frames = rep.recv_multipart()
        for frame in frames:
            _unpack_all(frame)
        now = time.time_ns()
        ts = msgpack.Timestamp(now // 10**9, now % 10**9)
        header = (
            msgpack.packb("CSCP\x01") + msgpack.packb("Floor.echo") + msgpack.packb(ts) + msgpack.packb({})
        )
        rep.send_multipart([header, verb, payload])


def _unpack_all(frame: bytes) -> list[object]:
    unpacker = msgpack.Unpacker(raw=False)
    unpacker.feed(frame)
    return list(unpacker)


if __name__ == "__main__":
    sys.exit(main())
