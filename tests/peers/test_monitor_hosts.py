"""Across virtual hosts: a publisher on host1, a PeerMonitor process on host2, the link of host1 cut."""

from __future__ import annotations

import sys
import time

import pytest

from tests.peers.conftest import hbnode


@pytest.mark.hosts(2)
def test_link_cut_is_lost_within_2s_and_recovers(on_host, link, spawn, group):
    mon = on_host(
        2,
        sys.executable,
        "-m",
        "tests.peers.monnode",
        group,
        "Test.Watcher",
        "--interface",
        "net0",
        ready="READY",
        timeout=20,
    )
    hbnode(
        spawn,
        group,
        "Raw.Remote",
        "--bind",
        "10.77.0.1",
        "--interface",
        "net0",
        "--role",
        "ESSENTIAL",
        "--interval-ms",
        "3000",
        host=1,
    )
    mon.wait_for(r"EVENT \S+ Raw\.Remote state_changed ORBIT", timeout=10)
    mark = len(mon.lines)
    t0 = time.monotonic()
    link(1, "down")
    lost = mon.wait_for(r"EVENT (\S+) Raw\.Remote lost DEAD", timeout=5, start=mark)
    latency = float(lost.group(1)) - t0
    assert latency < 2.0, (latency, mon.output_tail())
    print(f"link cut -> LOST {1000 * latency:.0f} ms")
    link(1, "up")
    mon.wait_for(r"EVENT \S+ Raw\.Remote recovered ORBIT", timeout=15, start=mark)
    assert " departed " not in "\n".join(mon.lines[mark:])
