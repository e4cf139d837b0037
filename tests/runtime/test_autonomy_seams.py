"""The seams for the autonomy issue, driven by a fake PeerMonitor: reactions and conditional transitions."""

from __future__ import annotations

import asyncio
import threading

from constellation import PeerEvent, PeerEventKind, Satellite, StopToken
from protocols import Role, State
from tests.harness import eventually
from tests.runtime.conftest import drive_to_run, wait_state


class FakePeers:
    def __init__(self, **states: State) -> None:
        self.states = {k.lower(): v for k, v in states.items()}
        self._changed = asyncio.Event()

    async def run(self) -> None:
        await asyncio.Event().wait()

    def is_present(self, name: str) -> bool:
        return self.states.get(name.lower(), State.DEAD) is not State.DEAD

    def state_of(self, name: str) -> State | None:
        return self.states.get(name.lower())

    async def changed(self) -> None:
        await self._changed.wait()
        self._changed = asyncio.Event()

    def set(self, name: str, state: State) -> None:
        self.states[name.lower()] = state
        self._changed.set()


async def with_peers(make_satellite, peers: FakePeers, cls: type[Satellite] = Satellite) -> Satellite:
    class WithPeers(cls):  # type: ignore[misc,valid-type]
        def __init__(self, *a: object, **kw: object) -> None:
            super().__init__(*a, **kw)  # type: ignore[arg-type]
            self.peers = peers

    return await make_satellite(WithPeers)


async def test_conditional_launch_waits_for_the_remote(make_satellite, client) -> None:
    peers = FakePeers(**{"Other.A": State.INIT})
    sat = await with_peers(make_satellite, peers)
    cl = client(sat)
    rep = await cl("initialize", {"_conditions": {"require_launching_after": "other.a"}})
    assert rep.verb == "transitioning"
    await wait_state(cl, "INIT")
    assert (await cl("get_config")).payload["_conditions"]["transition_timeout"] == 30
    await cl("launch")

    async def awaiting() -> bool:
        return (await cl("get_status")).verb == "Awaiting state from other.a, currently: SatelliteState.INIT"

    await eventually(awaiting)
    assert (await cl("get_state")).verb == "launching"
    peers.set("Other.A", State.ORBIT)
    await wait_state(cl, "ORBIT")


async def test_conditional_abort_causes(make_satellite, client) -> None:
    peers = FakePeers(**{"Other.A": State.INIT})
    sat = await with_peers(make_satellite, peers)
    cl = client(sat)
    await cl("initialize", {"_require_launching_after": ["Other.A"], "_conditional_transition_timeout": 30})
    await wait_state(cl, "INIT")
    await cl("launch")
    await eventually(lambda: sat.fsm.status.startswith("Awaiting"))
    peers.set("Other.A", State.ERROR)
    await wait_state(cl, "ERROR")
    assert (await cl("get_status")).verb == (
        "RuntimeError in _satisfy_remote_conditions: "
        "Dependent remote satellite Other.A reports state SatelliteState.ERROR"
    )
    peers.set("Other.A", State.INIT)
    await cl("initialize", {"_conditions": {"require_launching_after": "Other.A", "transition_timeout": 0}})
    await wait_state(cl, "INIT")
    await cl("launch")
    await wait_state(cl, "ERROR")
    assert (await cl("get_status")).verb.endswith("Could not satisfy remote conditions within timeout")


class Runner(Satellite):
    def do_run(self, stop: StopToken) -> str:
        stop.wait()
        return "ran"


def event(kind: PeerEventKind, role: Role, state: State = State.RUN) -> PeerEvent:
    return PeerEvent("Other.A", kind, state, role.flags)


async def test_peer_reactions_by_role(make_satellite, client) -> None:
    sat = await with_peers(make_satellite, FakePeers(**{"Other.A": State.RUN}), Runner)
    cl = client(sat)
    await drive_to_run(cl, "r1")
    sat.on_peer_event(event(PeerEventKind.STATE, Role.TRANSIENT, State.ERROR))  # warning only
    sat.on_peer_event(event(PeerEventKind.DEPARTED, Role.DYNAMIC))  # orderly departure: no interrupt
    assert (await cl("get_state")).verb == "RUN"
    assert (await cl("get_run_id")).tags == {"degraded": True}  # MARK_DEGRADED on departure
    sat.on_peer_event(event(PeerEventKind.STATE, Role.DYNAMIC, State.SAFE))
    await wait_state(cl, "SAFE")
    assert (await cl("get_status")).verb == "ran; Interrupted"
    await drive_to_run(cl, "r2")
    assert (await cl("get_run_id")).tags == {"degraded": False}  # cleared at start
    sat.on_peer_event(event(PeerEventKind.LOST, Role.NONE))
    assert (await cl("get_run_id")).tags == {"degraded": False}
    sat.on_peer_event(event(PeerEventKind.DEPARTED, Role.ESSENTIAL))  # DENY_DEPARTURE
    await wait_state(cl, "SAFE")


class SlowLaunch(Satellite):
    gate = threading.Event()

    def do_launching(self) -> None:
        self.gate.wait(10)


async def test_peer_interrupt_in_a_transitional_state_is_deferred(make_satellite, client) -> None:
    sat = await with_peers(make_satellite, FakePeers(), SlowLaunch)
    cl = client(sat)
    await cl("initialize", {})
    await wait_state(cl, "INIT")
    await cl("launch")
    await wait_state(cl, "launching")
    sat.on_peer_event(event(PeerEventKind.LOST, Role.DYNAMIC))  # 1.0.2 would drop it here
    assert (await cl("get_state")).verb == "launching"
    SlowLaunch.gate.set()
    await wait_state(cl, "SAFE")  # applied once steady (ORBIT)
    assert (await cl("get_status")).verb == "; Interrupted"
