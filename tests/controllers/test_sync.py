"""The blocking façade drives a Sputnik from plain (non-async) code."""

from __future__ import annotations

import threading

import pytest

from controllers import Summary, SyncController, UnknownSatellite
from protocols import State
from tests.harness import wait_until

pytestmark = [pytest.mark.netns, pytest.mark.timeout(60)]


def test_sync_controller_cycle(sputnik, group: str) -> None:
    proc = sputnik("Sync")
    before = set(threading.enumerate())
    with SyncController(group, "sync", interfaces=["lo"]) as ctl:
        assert ctl.canonical_name == "Controller.sync"
        ctl.await_satellites(["Sputnik.Sync"], timeout=20)
        assert ctl.command("Sputnik.Sync", "get_name").text == "Sputnik.Sync"
        ctl.command_all("initialize", {"channels": 1}).raise_for_status()
        assert ctl.await_state(State.INIT, timeout=10)["Sputnik.Sync"].state is State.INIT
        assert ctl.state is Summary.INIT
        assert ctl.states == {"Sputnik.Sync": State.INIT}
        with pytest.raises(UnknownSatellite):
            ctl.command("Sputnik.Other", "get_name")
        ctl.command("Sputnik.Sync", "shutdown").raise_for_status()
        wait_until(lambda: not ctl.satellites, timeout=10)
    assert proc.wait(10) == 0
    leaked = [t for t in set(threading.enumerate()) - before if t.name.startswith("controller-")]
    assert not leaked, leaked
