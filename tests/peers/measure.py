"""Detection latency of PeerMonitor: SIGKILL, SIGSTOP and link cut of a peer, p50/p99 over runs.

Run inside the namespace with two virtual hosts (publisher on host1, monitor process on host2)::

    tests/netns/netns-run --hosts 2 -- .venv/bin/python -m tests.peers.measure --runs 20

Times are CLOCK_MONOTONIC (system-wide) from just before the signal / ``netns-link 1 down`` to the
monitor's LOST event line. The publisher beats at ``--interval-ms`` (3000 by default: far longer than
the detection times, so the lives counter plays no part).
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

from tests.harness import Proc, spawn_process, unique_group

LINK = Path(__file__).resolve().parents[1] / "netns" / "netns-link"


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def _one(kind: str, group: str, mon: Proc, i: int, interval_ms: int) -> float:
    name = f"Raw.{kind.capitalize()}{i}"
    argv = [sys.executable, "-m", "tests.peers.hbnode", group, name, "--bind", "10.77.0.1"]
    argv += ["--interface", "net0", "--interval-ms", str(interval_ms), "--role", "ESSENTIAL"]
    mark = len(mon.lines)
    node, _ = spawn_process(argv, ready=r"READY hb=", timeout=20, host=1)
    try:
        mon.wait_for(rf"EVENT \S+ {name} state_changed ORBIT", timeout=10, start=mark)
        mark = len(mon.lines)
        t0 = time.monotonic()
        if kind == "kill":
            os.kill(node.pid, signal.SIGKILL)
        elif kind == "stop":
            os.kill(node.pid, signal.SIGSTOP)
        else:
            subprocess.run([str(LINK), "1", "down"], check=True, timeout=10)
        m = mon.wait_for(rf"EVENT (\S+) {name} lost ", timeout=10, start=mark)
        return float(m.group(1)) - t0
    finally:
        if kind == "cut":
            subprocess.run([str(LINK), "1", "up"], check=True, timeout=10)
        if kind == "stop":
            os.kill(node.pid, signal.SIGCONT)
        node.stop(grace=1.0)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--interval-ms", type=int, default=3000)
    parser.add_argument("--kinds", default="kill,stop,cut")
    args = parser.parse_args()
    if int(os.environ.get("NETNS_HOSTS", "0")) < 2:
        print("run inside `tests/netns/netns-run --hosts 2 -- ...`", file=sys.stderr)
        return 2
    group = unique_group("measure")
    argv = [sys.executable, "-m", "tests.peers.monnode", group, "Measure.Watcher", "--interface", "net0"]
    mon, _ = spawn_process(argv, ready="READY", timeout=20, host=2)
    try:
        print(f"{'event':<6} {'runs':>4} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7}")
        for kind in args.kinds.split(","):
            lat = [1000 * _one(kind, group, mon, i, args.interval_ms) for i in range(args.runs)]
            print(
                f"{kind:<6} {len(lat):>4} {statistics.median(lat):>7.0f} {_pct(lat, 0.99):>7.0f} "
                f"{max(lat):>7.0f}",
                flush=True,
            )
    finally:
        mon.stop(grace=2.0)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
