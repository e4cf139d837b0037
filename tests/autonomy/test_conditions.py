"""Issue 4, conditional transitions end to end, ours and 1.0.2 Mariners mixed on three virtual hosts.

- Three satellites ordered by `_require_starting_after` (ours <- 1.0.2 <- ours, both spellings, names in
  any case) are all told to start at once, in reverse order, and reach RUN in dependency order; a
  fourth (ours) waiting for the first like the 1.0.2 one proceeds together with it.
- Each abort cause (timeout, remote in ERROR, remote killed) sends our waiting satellite (and a 1.0.2
  one waiting on the same remote) to ERROR with the cause in the status.
- Invalid conditions are refused at `initialize` with a clear INVALID reply, the state unchanged.
"""

from __future__ import annotations

import datetime as dt
import itertools
import time
from pathlib import Path

import msgpack
import pytest

from protocols import State, cscp
from tests.autonomy.support import Node, initialize_when_present, start_mariner, start_ours
from tests.harness import wait_until

pytestmark = [pytest.mark.netns, pytest.mark.interop, pytest.mark.hosts(3), pytest.mark.timeout(120)]


def changed_ns(node: Node) -> int:
    stamp = node.ok("get_state").tags["last_changed"]
    if isinstance(stamp, msgpack.Timestamp):
        return int(stamp.to_unix_nano())
    assert isinstance(stamp, dt.datetime), stamp
    return int(stamp.timestamp() * 1e9)


def test_three_satellites_start_in_dependency_order(spawn, cdaq_python: Path, group: str) -> None:
    a = start_ours(spawn, group, "First", host=1)
    b = start_mariner(spawn, cdaq_python, group, "Second", host=2)
    c = start_ours(spawn, group, "Third", host=3)
    d = start_ours(spawn, group, "Twin", host=1)  # waits for A like B does: both proceed together
    a.to_init({})
    initialize_when_present(d, {"_conditions": {"require_starting_after": "Sputnik.First"}})
    initialize_when_present(b, {"_conditions": {"require_starting_after": "sputnik.first"}})  # 1.0.2 form
    flat = {"_require_starting_after": ["MARINER.second"], "_conditional_transition_timeout": 20}
    initialize_when_present(c, flat)  # the flat form, another case
    assert c.ok("get_config").payload["_conditional_transition_timeout"] == 20
    for node in (a, b, c, d):
        node.drive(("launch", None, State.ORBIT))

    for node in (c, b, d):  # the dependants first: they wait in `starting`
        node.ok("start", "ordered")
    c.wait_state(State.starting)
    wait_until(lambda: "Awaiting state from MARINER.second" in c.status(), 5)
    assert "currently: SatelliteState.starting" in c.status()
    assert b.state() is State.starting
    assert "Awaiting state from sputnik.first" in b.status()
    d.wait_state(State.starting)

    a.ok("start", "ordered")
    for node in (a, b, c, d):
        node.wait_state(State.RUN, timeout=10)
    stamps = [changed_ns(n) for n in (a, b, c)]
    assert stamps[0] < stamps[1] < stamps[2], stamps
    twin = changed_ns(d)
    assert stamps[0] < twin < stamps[0] + 500_000_000, (stamps, twin)  # ours notices A's extrasystole
    print(f"ORDER A->D (ours, also waiting for A) {(twin - stamps[0]) / 1e6:.0f} ms")
    gaps = [(later - earlier) / 1e6 for earlier, later in itertools.pairwise(stamps)]
    print(f"ORDER gaps A->B {gaps[0]:.0f} ms, B->C {gaps[1]:.0f} ms")


def test_abort_causes_end_in_error_naming_the_cause(spawn, cdaq_python: Path, group: str) -> None:
    """Ours (host 2) and a 1.0.2 Mariner (host 3) wait for `launching` on the same remote (host 1)."""
    patient = start_ours(spawn, group, "Remote", host=1)
    failing = start_mariner(spawn, cdaq_python, group, "Remote", host=1)
    doomed = start_ours(spawn, group, "Doomed", host=1)
    ours = start_ours(spawn, group, "Waiter", host=2)
    theirs = start_mariner(spawn, cdaq_python, group, "Waiter", host=3)
    for remote in (patient, failing, doomed):
        remote.to_init({"_autonomy": {"max_heartbeat_interval": 1}})
    prefix = "RuntimeError in _satisfy_remote_conditions: "
    cases = (
        (patient, 1, None, "Could not satisfy remote conditions within timeout"),
        (failing, 30, lambda: failing.ok("_failure"), "Dependent remote satellite Mariner.Remote reports"),
        (doomed, 30, doomed.kill, "Dependent remote satellite Sputnik.Doomed not present"),
    )
    for remote, timeout_s, cause, text in cases:
        config = {"_conditions": {"require_launching_after": remote.name, "transition_timeout": timeout_s}}
        for waiter in (ours, theirs):
            initialize_when_present(waiter, config)
            waiter.ok("launch")
            waiter.wait_state(State.launching)
        t0 = time.monotonic()
        if cause is not None:
            wait_until(lambda: ours.status().startswith("Awaiting state from"), 5)
            cause()
        _, seen = ours.wait_state(State.ERROR, timeout=timeout_s + 5)
        assert ours.status().startswith(prefix + text), ours.status()
        print(f"ABORT {text[:40]!r}: ours in ERROR after {1000 * (seen - t0):.0f} ms")
        theirs.wait_state(State.ERROR, timeout=timeout_s + 10)  # 1.0.2 notices a kill by its lives
        assert theirs.status().startswith(prefix), theirs.status()


INVALID = [
    ({"_conditions": {"require_starting_after": "SPUTNIK.me"}}, "Satellite cannot depend on itself"),
    ({"_require_launching_after": "Sputnik.Me"}, "Satellite cannot depend on itself"),
    ({"_require_run_after": "Sputnik.Other"}, "conditions exist only for the transitional states"),
    ({"_conditions": {"require_orbit_after": "X.y"}}, "conditions exist only for the transitional"),
    ({"_require_starting_after": "NoDot"}, "NoDot is not a valid canonical name"),
    ({"_conditions": {"require_landing_after": ["Sputnik.Ghost"]}}, "Sputnik.Ghost is not present"),
    ({"_require_starting_after": "A.b", "_conditions": {"require_starting_after": "A.b"}}, "is given twice"),
]


def test_invalid_conditions_are_refused_at_initialize(spawn, group: str) -> None:
    me = start_ours(spawn, group, "Me")
    for config, reason in INVALID:
        reply = me.call("initialize", config)
        assert reply.verb_type is cscp.VerbType.INVALID, (config, reply)
        assert reason in reply.verb, (config, reply.verb)
        assert me.state() is State.NEW
