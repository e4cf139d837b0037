"""PeerMonitor against raw heartbeat publishers in subprocesses (real sockets, CHIRP in the namespace)."""

from __future__ import annotations

import logging
import signal
import sys
import time

import pytest

from constellation.peers import EventKind
from protocols import Role, State
from tests.harness import eventually
from tests.peers.conftest import hbnode

pytestmark = pytest.mark.netns


async def test_kill_is_lost_within_1s(watching, spawn, group):
    w = await watching()
    node = hbnode(spawn, group, "Raw.Kill", "--role", "ESSENTIAL", "--interval-ms", "3000")
    await eventually(lambda: w.monitor.state_of("raw.kill") is State.ORBIT, timeout=5)
    assert w.monitor.peer("Raw.Kill").role is Role.ESSENTIAL
    t0 = time.monotonic()
    node.signal(signal.SIGKILL)
    ev = await w.events.first("Raw.Kill", EventKind.LOST, timeout=3)
    assert ev.time - t0 < 1.0, ev
    assert ev.role is Role.ESSENTIAL
    assert w.monitor.state_of("Raw.Kill") is State.DEAD
    print(f"kill -> LOST {1000 * (ev.time - t0):.0f} ms")


async def test_sigstop_is_lost_within_2s_and_recovers_on_sigcont(watching, spawn, group):
    w = await watching()
    node = hbnode(spawn, group, "Raw.Frozen", "--interval-ms", "3000")
    await eventually(lambda: w.monitor.state_of("Raw.Frozen") is State.ORBIT, timeout=5)
    t0 = time.monotonic()
    node.signal(signal.SIGSTOP)
    try:
        ev = await w.events.first("Raw.Frozen", EventKind.LOST, timeout=4)
        assert ev.time - t0 < 2.0, ev
        print(f"SIGSTOP -> LOST {1000 * (ev.time - t0):.0f} ms")
    finally:
        node.signal(signal.SIGCONT)
    rec = await w.events.first("Raw.Frozen", EventKind.RECOVERED, timeout=10)
    assert rec.state is State.ORBIT
    assert w.monitor.state_of("Raw.Frozen") is State.ORBIT


@pytest.mark.parametrize("backends", ["chirp", "chirp,zeroconf", "zeroconf"])
async def test_clean_exit_is_departed_not_lost(watching, spawn, group, backends):
    w = await watching(backends=backends)
    node = hbnode(
        spawn, group, "Raw.Leaver", "--role", "ESSENTIAL", "--backends", backends, "--interface", "lo"
    )
    await eventually(lambda: w.monitor.state_of("Raw.Leaver") is State.ORBIT, timeout=10)
    t0 = time.monotonic()
    node.signal(signal.SIGTERM)
    ev = await w.events.first("Raw.Leaver", EventKind.DEPARTED, timeout=3)
    print(f"SIGTERM -> DEPARTED ({backends}) {1000 * (ev.time - t0):.0f} ms")
    assert node.wait(5) == 0
    assert "CLOSED" in node.output
    assert ev.role is Role.ESSENTIAL
    assert w.monitor.state_of("Raw.Leaver") is None
    # well past the disconnect grace and the ZMTP timeout: still no LOST
    await eventually(lambda: time.monotonic() > ev.time + 1.5, timeout=3)
    assert not w.events.of("Raw.Leaver", EventKind.LOST), w.events.seen


async def test_socket_closed_before_depart_is_still_departed(watching, spawn, group, caplog):
    """A disconnect that precedes the DEPART by less than the grace period is a departure."""
    caplog.set_level(logging.DEBUG, logger="constellation.peers.watcher")
    w = await watching()
    node = hbnode(spawn, group, "Raw.Sloppy", "--role", "ESSENTIAL", "--close-first-ms", "150")
    await eventually(lambda: w.monitor.state_of("Raw.Sloppy") is State.ORBIT, timeout=5)
    node.signal(signal.SIGTERM)
    ev = await w.events.first("Raw.Sloppy", EventKind.DEPARTED, timeout=3)
    assert node.wait(5) == 0
    assert not w.events.of("Raw.Sloppy", EventKind.LOST), w.events.seen
    assert any("Raw.Sloppy: disconnected" in r.getMessage() for r in caplog.records)  # it was suspect
    assert ev.role is Role.ESSENTIAL


async def test_restart_under_same_name_is_replaced_not_lost(watching, spawn, group):
    """A new instance offers the name at a new port; the old one then dies without a DEPART."""
    w = await watching()
    old = hbnode(spawn, group, "Raw.Phoenix", "--role", "ESSENTIAL", "--interval-ms", "500")
    await eventually(lambda: w.monitor.state_of("Raw.Phoenix") is State.ORBIT, timeout=5)
    old_port = int(old.ready.group(1))
    new = hbnode(spawn, group, "Raw.Phoenix", "--role", "ESSENTIAL", "--interval-ms", "500")
    new_port = int(new.ready.group(1))
    assert new_port != old_port
    await w.events.first("Raw.Phoenix", EventKind.REPLACED, timeout=5)
    await eventually(lambda: w.monitor.peer("Raw.Phoenix").endpoint.endswith(f":{new_port}"), timeout=5)
    old.signal(signal.SIGKILL)
    t_kill = time.monotonic()
    # the new instance keeps beating well past kill detection: no LOST, no DEPARTED
    beats = w.monitor.peer("Raw.Phoenix").beats
    await eventually(
        lambda: time.monotonic() > t_kill + 1.5 and w.monitor.peer("Raw.Phoenix").beats >= beats + 3,
        timeout=5,
    )
    bad = [e for e in w.events.of("Raw.Phoenix") if e.kind in (EventKind.LOST, EventKind.DEPARTED)]
    assert not bad, w.events.seen
    assert w.monitor.state_of("Raw.Phoenix") is State.ORBIT


async def test_error_state_event_once_then_recovered(watching, spawn, group):
    w = await watching()
    node = hbnode(spawn, group, "Raw.Faulty", "--role", "DYNAMIC", "--interval-ms", "3000")
    await eventually(lambda: w.monitor.state_of("Raw.Faulty") is State.ORBIT, timeout=5)
    t0 = time.monotonic()
    node.signal(signal.SIGUSR1)
    ev = await w.events.first("Raw.Faulty", EventKind.ERROR_STATE, timeout=3)
    assert ev.time - t0 < 0.5  # the extrasystole, not the next regular beat
    assert ev.state is State.ERROR
    assert ev.role is Role.DYNAMIC
    node.signal(signal.SIGUSR2)
    await w.events.first("Raw.Faulty", EventKind.RECOVERED, timeout=3)
    assert len(w.events.of("Raw.Faulty", EventKind.ERROR_STATE)) == 1


async def test_safe_state_event(watching, spawn, group):
    w = await watching()
    node = hbnode(spawn, group, "Raw.Safe", "--fail-state", "SAFE", "--interval-ms", "3000")
    await eventually(lambda: w.monitor.state_of("Raw.Safe") is State.ORBIT, timeout=5)
    node.signal(signal.SIGUSR1)
    ev = await w.events.first("Raw.Safe", EventKind.SAFE_STATE, timeout=3)
    assert ev.state is State.SAFE


async def test_hung_application_is_judged_by_lives(watching, spawn, group):
    """Process and TCP alive (ZMTP PONGs keep coming), heartbeats stop: LOST after 3 x 1.5 x interval."""
    w = await watching()
    node = hbnode(spawn, group, "Raw.Hung", "--interval-ms", "200")
    await eventually(lambda: w.monitor.state_of("Raw.Hung") is State.ORBIT, timeout=5)
    node.signal(signal.SIGHUP)
    t0 = time.monotonic()
    ev = await w.events.first("Raw.Hung", EventKind.LOST, timeout=5)
    # last beat at most 0.8 x 200 ms before t0; 3 lives of 300 ms each
    assert 0.9 - 0.2 <= ev.time - t0 <= 0.9 + 0.5, ev.time - t0
    assert "no heartbeat" in ev.detail
    assert w.monitor.peer("Raw.Hung").connected


async def test_no_false_loss_under_full_cpu_load(watching, spawn, group):
    """Two busy loops hog both cores while peers beat late (1.3 x their interval) but alive."""
    w = await watching()
    names = ["Raw.Slow", "Raw.Slower"]
    hbnode(spawn, group, names[0], "--interval-ms", "500", "--period-factor", "1.3")
    hbnode(spawn, group, names[1], "--interval-ms", "2000", "--period-factor", "1.3")
    for name in names:
        await eventually(lambda n=name: w.monitor.state_of(n) is State.ORBIT, timeout=5)
    hogs = [
        spawn(sys.executable, "-c", "import sys; print('HOG', flush=True)\nwhile True: pass", ready="HOG")
        for _ in range(2)
    ]
    beats = {n: w.monitor.peer(n).beats for n in names}
    t0 = time.monotonic()
    await eventually(
        lambda: time.monotonic() > t0 + 8 and w.monitor.peer(names[1]).beats >= beats[names[1]] + 3,
        timeout=20,
        interval=0.05,
    )
    assert all(h.popen.poll() is None for h in hogs)
    bad = [e for e in w.events.seen if e.kind in (EventKind.LOST, EventKind.DEPARTED)]
    assert not bad, bad
    assert w.monitor.peer(names[0]).beats >= beats[names[0]] + 8
