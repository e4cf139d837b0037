"""Discovery timings (not a test). Run inside the namespace:

    tests/netns/netns-run --hosts 3 -- .venv/bin/python -m tests.discovery.measure [ROUNDS]

Prints, per backend set, the median / p90 / max of
  - listening: an already-listening Discovery sees a new node's offer (from just before the new node's
    ``start()`` to the ``on_appear`` callback, both in this process, loopback);
  - finding: a new Discovery finds an existing node (from just before its ``start()``, with a CHIRP
    REQUEST for CONTROL, to ``on_appear``).
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
import uuid

from constellation.discovery import Discovery, Service
from protocols.chirp import ServiceId


async def _once(backends: tuple[str, ...], listening_first: bool) -> float:
    group = f"m{uuid.uuid4().hex[:10]}"
    seen = asyncio.Event()
    t_seen = 0.0

    def appear(svc: Service) -> None:
        nonlocal t_seen
        if not seen.is_set():
            t_seen = time.monotonic()
            seen.set()

    watcher = Discovery(group, "Ctl.m", backends=backends, interfaces=["lo"], on_appear=appear)
    node = Discovery(group, "Sputnik.m", backends=backends, interfaces=["lo"])
    node.offer(ServiceId.CONTROL, 6000)
    watcher.request(ServiceId.CONTROL)
    first, second = (watcher, node) if listening_first else (node, watcher)
    try:
        await first.start()
        await asyncio.sleep(0.3)  # let the first one settle (zeroconf announcements, initial queries)
        t0 = time.monotonic()
        await second.start()
        async with asyncio.timeout(5):
            await seen.wait()
        return t_seen - t0
    finally:
        await node.aclose()
        await watcher.aclose()


def _summary(samples: list[float]) -> str:
    ms = sorted(s * 1000 for s in samples)
    p90 = ms[min(len(ms) - 1, int(0.9 * len(ms)))]
    return f"median {statistics.median(ms):6.1f} ms  p90 {p90:6.1f} ms  max {ms[-1]:6.1f} ms  (n={len(ms)})"


async def main(rounds: int) -> None:
    for backends in (("chirp",), ("zeroconf",), ("chirp", "zeroconf")):
        for listening_first, what in ((True, "listening"), (False, "finding")):
            samples = [await _once(backends, listening_first) for _ in range(rounds)]
            print(f"{'+'.join(backends):16s} {what:9s} {_summary(samples)}", flush=True)


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 20))
