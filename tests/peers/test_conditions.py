"""Conditional transitions (`constellation.peers.conditions`, the one implementation the Satellite uses).

Both key spellings, validation messages, the `Configuration` glue (`framework.read_conditions`), and
the waiter on a real monitor. The Satellite's use of them: tests/runtime (test_commands,
test_autonomy_seams) and tests/autonomy/test_conditions.py end to end.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import time
from collections.abc import AsyncIterator

import pytest
import zmq
import zmq.asyncio

from constellation import ConfigError, Configuration
from constellation.framework import read_conditions
from constellation.peers import (
    ConditionError,
    ConditionFailed,
    ConditionTimeout,
    MonitorSettings,
    PeerMonitor,
    RemoteInError,
    RemoteMissing,
    check_present,
    parse_conditions,
    wait_for_conditions,
)
from protocols import HeartbeatFlags, Role, State, chp
from tests.harness import eventually

# -- parsing ------------------------------------------------------------------------------------------


def test_sectioned_1_0_2_spelling() -> None:
    c = parse_conditions(
        {"_conditions": {"require_starting_after": "Sat.A", "transition_timeout": 5}, "other": 1}, "Sat.B"
    )
    assert c.remotes(State.starting) == ("Sat.A",)
    assert c.remotes(State.launching) == ()
    assert c.timeout_s == 5
    assert c.used_keys == {"_conditions.require_starting_after", "_conditions.transition_timeout"}
    assert c


def test_flat_spelling_with_lists() -> None:
    c = parse_conditions(
        {"_require_launching_after": ["Sat.A", "Other.B"], "_conditional_transition_timeout": 2}, "Sat.C"
    )
    assert c.remotes(State.launching) == ("Sat.A", "Other.B")
    assert c.timeout_s == 2
    assert c.used_keys == {"_require_launching_after", "_conditional_transition_timeout"}


def test_dotted_flat_keys_and_case_insensitivity() -> None:
    c = parse_conditions(
        {
            "_CONDITIONS.Require_Stopping_After": ["sat.a", "SAT.A"],
            "_Conditions": {"REQUIRE_LANDING_AFTER": "Sat.X"},
        },
        "Sat.B",
    )
    assert c.remotes(State.stopping) == ("sat.a",)  # duplicates differing in case collapse
    assert c.remotes(State.landing) == ("Sat.X",)
    assert c.timeout_s == 30  # default


def test_every_supported_transition_and_default() -> None:
    names = ["initializing", "launching", "landing", "starting", "stopping"]
    c = parse_conditions({f"_require_{n}_after": f"Sat.{n}" for n in names}, "Me.Self")
    assert {s.name for s in c.requirements} == set(names)
    assert not parse_conditions({"voltage": 3}, "Me.Self")


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (
            {"_conditions": {"require_starting_after": "Sat.B"}},
            "Value of key `_conditions.require_starting_after` is not valid: "
            "Satellite cannot depend on itself",
        ),
        ({"_require_launching_after": ["Sat.A", "sat.b"]}, "Satellite cannot depend on itself"),
        ({"_conditions": {"require_run_after": "Sat.A"}}, "`run` is a steady state"),
        ({"_require_orbit_after": "Sat.A"}, "`orbit` is a steady state"),
        ({"_conditions": {"require_reconfiguring_after": "Sat.A"}}, "`reconfiguring` is not supported"),
        ({"_require_interrupting_after": "Sat.A"}, "`interrupting` is not supported"),
        ({"_require_bogus_after": "Sat.A"}, "`bogus` is not supported"),
        ({"_require_starting_after": "NoDot"}, "NoDot is not a valid canonical name"),
        ({"_require_starting_after": "Sat.A b"}, "Sat.A b is not a valid canonical name"),
        ({"_require_starting_after": 7}, "expected str or list of str, got int"),
        ({"_require_starting_after": [1, 2]}, "expected str or list of str, got int"),
        ({"_conditions": {"transition_timeout": -1}}, "must be >= 0 seconds, got -1"),
        ({"_conditional_transition_timeout": "soon"}, "expected a number of seconds, got str"),
        ({"_conditional_transition_timeout": True}, "expected a number of seconds, got bool"),
        (
            {"_require_starting_after": "A.b", "_conditions": {"require_starting_after": "A.b"}},
            "is given twice (also as `",
        ),
        (
            {"_conditions.require_landing_after": "A.b", "_conditions": {"require_landing_after": "A.b"}},
            "Value of key `_conditions.require_landing_after` is not valid: the key is given twice",
        ),
        (
            {"_conditional_transition_timeout": 1, "_conditions": {"transition_timeout": 2}},
            "Value of key `_conditions.transition_timeout` is not valid: the key is given twice (also as "
            "`_conditional_transition_timeout`)",
        ),
        ({"_conditions": 5}, "Value of key `_conditions` is not valid: expected a section, got int"),
    ],
)
def test_invalid_conditions_are_rejected_with_a_clear_message(config: dict, message: str) -> None:
    with pytest.raises(ConditionError) as info:
        parse_conditions(config, "Sat.B")
    assert message in str(info.value)
    assert str(info.value).startswith("Value of key `_")
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, ConfigError)  # the Satellite answers INVALID


class Present:
    def state_of(self, name: str, /) -> State | None:
        return State.INIT if name.lower() in {"mariner.a", "mariner.b"} else None


def test_read_conditions_on_a_configuration() -> None:
    """The Satellite's glue: keys marked used, default timeout written back, absent remotes refused."""
    cfg = Configuration(
        {
            "_conditions": {"require_starting_after": ["Mariner.A", "mariner.b"]},
            "_require_landing_after": "Mariner.A",
        }
    )
    cond = read_conditions(cfg, "Sputnik.Me", Present())
    assert cond.requirements == {State.landing: ("Mariner.A",), State.starting: ("Mariner.A", "mariner.b")}
    assert cond.timeout_s == 30
    assert cfg.as_dict()["_conditions"]["transition_timeout"] == 30
    assert cfg.remove_unused() == []
    cond = read_conditions(
        Configuration({"_require_stopping_after": "Mariner.B", "_conditional_transition_timeout": 3}),
        "S.me",
        Present(),
    )
    assert (cond.requirements, cond.timeout_s) == ({State.stopping: ("Mariner.B",)}, 3)
    for bad, msg in [
        ({"_require_starting_after": "nodot"}, "nodot is not a valid canonical name"),
        ({"_require_starting_after": "sputnik.ME"}, "Satellite cannot depend on itself"),
        ({"_require_starting_after": "Mariner.Z"}, "Dependent remote satellite Mariner.Z is not present"),
        ({"_conditions": {"require_orbit_after": "Mariner.A"}}, "conditions exist only for the transitional"),
        ({"_require_starting_after": 5}, "expected str or list of str, got int"),
    ]:
        with pytest.raises(ConfigError, match=msg):
            read_conditions(Configuration(bad), "Sputnik.Me", Present())
    assert read_conditions(Configuration({}), "S.me", None).requirements == {}
    # the error names the key as given; without a monitor every remote is absent
    with pytest.raises(ConditionError, match=r"^Value of key `_require_landing_after` is not valid: Depend"):
        read_conditions(Configuration({"_require_landing_after": "Mariner.A"}), "S.me", None)


# -- the waiter, on a real monitor and real heartbeat publishers --------------------------------------


class Beater:
    """An in-process CHP publisher on loopback whose state can be changed (with an extrasystole)."""

    def __init__(self, ctx: zmq.asyncio.Context, name: str, state: State, interval_ms: int = 500) -> None:
        self.name = name
        self.state = state
        self.interval_ms = interval_ms
        self.sock = ctx.socket(zmq.XPUB)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.port = self.sock.bind_to_random_port("tcp://127.0.0.1")
        self.wake = asyncio.Event()
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        extra = False
        with self.sock:
            while True:
                flags = Role.DYNAMIC.flags | (HeartbeatFlags.IS_EXTRASYSTOLE if extra else 0)
                await self.sock.send_multipart(
                    chp.encode(chp.Heartbeat(self.name, self.state, flags, self.interval_ms))
                )
                extra = False
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(0.8 * self.interval_ms / 1000):
                        await self.wake.wait()
                        extra = True
                self.wake.clear()

    def set(self, state: State) -> None:
        self.state = state
        self.wake.set()

    async def kill(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task


@pytest.fixture
async def rig() -> AsyncIterator[tuple[PeerMonitor, zmq.asyncio.Context, list[Beater]]]:
    ctx = zmq.asyncio.Context()
    beaters: list[Beater] = []
    async with PeerMonitor("Sat.B", settings=MonitorSettings(disconnect_grace_s=0.1)) as monitor:
        yield monitor, ctx, beaters
        for b in beaters:
            await b.kill()
    ctx.destroy(linger=0)


async def _peer(rig, name: str, state: State) -> Beater:
    monitor, ctx, beaters = rig
    b = Beater(ctx, name, state)
    beaters.append(b)
    monitor.watch(f"tcp://127.0.0.1:{b.port}", name=name)
    await eventually(lambda: monitor.state_of(name) is state, timeout=5)
    return b


async def test_waiter_returns_when_remotes_reach_the_target(rig) -> None:
    monitor = rig[0]
    a = await _peer(rig, "Sat.A", State.ORBIT)
    c = await _peer(rig, "Sat.C", State.ORBIT)
    conditions = parse_conditions({"_require_starting_after": ["Sat.A", "sat.c"]}, "Sat.B")
    check_present(conditions, monitor)
    statuses: list[str] = []
    waiter = asyncio.create_task(
        wait_for_conditions(State.starting, conditions, monitor, on_status=statuses.append)
    )
    await eventually(lambda: statuses, timeout=2)
    assert statuses[0] == "Awaiting state from Sat.A, currently: SatelliteState.ORBIT"
    a.set(State.starting)
    a.set(State.RUN)
    awaiting_c = "Awaiting state from sat.c, currently: SatelliteState.ORBIT"
    await eventually(lambda: awaiting_c in statuses, timeout=2)
    assert not waiter.done()
    c.set(State.RUN)
    t0 = time.monotonic()
    await asyncio.wait_for(waiter, 2)
    assert time.monotonic() - t0 < 0.2  # the extrasystole releases it, not a poll
    # no condition for this transition: returns at once
    await asyncio.wait_for(wait_for_conditions(State.stopping, conditions, monitor), 0.1)


async def test_waiter_times_out(rig) -> None:
    monitor = rig[0]
    await _peer(rig, "Sat.A", State.INIT)
    conditions = parse_conditions(
        {"_conditions": {"require_launching_after": "Sat.A", "transition_timeout": 0.3}}
    )
    t0 = time.monotonic()
    with pytest.raises(ConditionTimeout) as info:
        await wait_for_conditions(State.launching, conditions, monitor)
    assert 0.3 <= time.monotonic() - t0 < 0.6
    assert str(info.value) == "Could not satisfy remote conditions within timeout"
    assert isinstance(info.value, ConditionFailed)


async def test_waiter_fails_when_remote_reports_error(rig) -> None:
    monitor = rig[0]
    a = await _peer(rig, "Sat.A", State.INIT)
    conditions = parse_conditions({"_require_launching_after": "Sat.A"})
    waiter = asyncio.create_task(wait_for_conditions(State.launching, conditions, monitor))
    await eventually(lambda: monitor.state_of("Sat.A") is State.INIT, timeout=1)
    a.set(State.ERROR)
    t0 = time.monotonic()
    with pytest.raises(RemoteInError) as info:
        await asyncio.wait_for(waiter, 2)
    assert time.monotonic() - t0 < 0.2
    assert str(info.value) == "Dependent remote satellite Sat.A reports state SatelliteState.ERROR"


async def test_waiter_fails_at_once_when_a_later_remote_fails(rig) -> None:
    """Every remote is checked, not only the first one still awaited (the runtime's behaviour)."""
    monitor = rig[0]
    await _peer(rig, "Sat.A", State.INIT)  # never launches
    c = await _peer(rig, "Sat.C", State.INIT)
    conditions = parse_conditions({"_require_launching_after": ["Sat.A", "Sat.C"]})
    statuses: list[str] = []
    waiter = asyncio.create_task(
        wait_for_conditions(State.launching, conditions, monitor, on_status=statuses.append)
    )
    await eventually(lambda: statuses, timeout=2)
    assert statuses == ["Awaiting state from Sat.A, currently: SatelliteState.INIT"]
    c.set(State.ERROR)
    with pytest.raises(RemoteInError, match=r"^Dependent remote satellite Sat\.C reports state"):
        await asyncio.wait_for(waiter, 2)


async def test_waiter_fails_when_remote_is_missing_or_lost(rig) -> None:
    monitor = rig[0]
    conditions = parse_conditions({"_require_starting_after": "Sat.Nobody"})
    with pytest.raises(RemoteMissing) as info:
        await wait_for_conditions(State.starting, conditions, monitor)
    assert str(info.value) == "Dependent remote satellite Sat.Nobody not present"
    with pytest.raises(ConditionError) as presence:
        check_present(conditions, monitor)
    assert "Dependent remote satellite Sat.Nobody is not present" in str(presence.value)
    with pytest.raises(RemoteMissing):  # no monitor at all (a satellite without discovery)
        await wait_for_conditions(State.starting, conditions, None)

    a = await _peer(rig, "Sat.A", State.ORBIT)
    conditions = parse_conditions({"_require_starting_after": "Sat.A"})
    waiter = asyncio.create_task(wait_for_conditions(State.starting, conditions, monitor))
    await asyncio.sleep(0)
    await a.kill()  # its socket closes: disconnect, grace 0.1 s, LOST
    with pytest.raises(RemoteMissing):
        await asyncio.wait_for(waiter, 2)


def test_the_runtime_imports_conditions_without_the_monitor() -> None:
    """The Satellite imports `constellation.peers.conditions` always; the monitor (discovery, zeroconf)
    only when it runs discovery."""
    code = (
        "import sys, constellation, constellation.peers as p\n"
        "assert 'constellation.peers.monitor' not in sys.modules\n"
        "assert 'zeroconf' not in sys.modules\n"
        "assert p.PeerMonitor.__module__ == 'constellation.peers.monitor'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=30)
