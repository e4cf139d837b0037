"""A satellite that stops answering (SIGSTOP): commands time out, the controller recovers after SIGCONT.

Real 1.0.2 Mariners in the namespace. 1.0.2's own controller never recovers from this (its REQ socket
stays in the wrong state: every later command fails), and broadcasts one satellite after the other.
"""

from __future__ import annotations

import signal
import time

import pytest

from controllers import CommandTimeout, Reply, Summary
from protocols import State
from tests.harness import eventually

pytestmark = [pytest.mark.netns, pytest.mark.interop, pytest.mark.timeout(90)]


async def test_timeout_then_recovery_after_sigcont(make_ctl, mariner) -> None:
    proc = mariner("Stuck")
    ctl, _ = await make_ctl()
    await ctl.await_satellites(["Mariner.Stuck"], timeout=30)
    await eventually(lambda: ctl.get("Mariner.Stuck").last_seen is not None, timeout=10)
    proc.signal(signal.SIGSTOP)
    try:
        t0 = time.monotonic()
        with pytest.raises(CommandTimeout):
            await ctl.command("Mariner.Stuck", "get_state", timeout=0.3)
        assert time.monotonic() - t0 < 1.0
        with pytest.raises(CommandTimeout):  # the recreated socket times out cleanly too
            await ctl.command("Mariner.Stuck", "get_name", timeout=0.3)
        # no heartbeats: lost after lives x interval (3 x 0.5 s here; 1.0.2 needs 3 x 1.5 x interval)
        await ctl.wait_for(lambda: ctl.get("Mariner.Stuck").lost, timeout=5)
        assert ctl.get("Mariner.Stuck").state is State.DEAD
        assert ctl.state is Summary.ERROR
    finally:
        proc.signal(signal.SIGCONT)
    reply = await ctl.command("Mariner.Stuck", "get_state", timeout=3)
    assert (reply.ok, reply.text) == (True, "NEW")
    await ctl.wait_for(lambda: not ctl.get("Mariner.Stuck").lost, timeout=5)  # heartbeats are back
    assert ctl.state is Summary.NEW


async def test_broadcast_is_parallel_and_reports_each_outcome(make_ctl, mariner) -> None:
    names = ["Mariner.A", "Mariner.B", "Mariner.C"]
    procs = {n: mariner(n.split(".")[1]) for n in names}
    ctl, _ = await make_ctl()
    await ctl.await_satellites(names, timeout=30)
    replies = await ctl.command_all("get_name")
    assert replies.ok
    assert {n: r.text for n, r in replies.items() if isinstance(r, Reply)} == {n: n for n in names}

    procs["Mariner.B"].signal(signal.SIGSTOP)
    try:
        t0 = time.monotonic()
        replies = await ctl.command_all("get_state", timeout=0.5)
        elapsed = time.monotonic() - t0
        assert elapsed < 1.2, f"broadcast took {elapsed:.2f} s: not parallel"
        assert not replies.ok
        assert set(replies.failed) == {"Mariner.B"}
        assert isinstance(replies["Mariner.B"], CommandTimeout)
        assert all(isinstance(replies[n], Reply) and replies[n].ok for n in ("Mariner.A", "Mariner.C"))
        with pytest.raises(CommandTimeout):
            replies.raise_for_status()
    finally:
        procs["Mariner.B"].signal(signal.SIGCONT)
    assert (await ctl.command_all("get_state", timeout=3)).ok
