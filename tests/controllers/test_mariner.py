"""Our Controller drives a real ConstellationDAQ 1.0.2 Mariner through a whole cycle."""

from __future__ import annotations

import pytest

from protocols import Role, State
from protocols.cscp import VerbType
from tests.harness import eventually

pytestmark = [pytest.mark.netns, pytest.mark.interop, pytest.mark.timeout(90)]


async def test_controller_drives_a_1_0_2_mariner(make_ctl, mariner) -> None:
    proc = mariner("One")
    ctl, history = await make_ctl()
    await ctl.await_satellites(["mariner.one"], timeout=30)  # names are case-insensitive
    info = ctl.satellites["Mariner.One"]
    assert info.state is State.NEW
    assert "get_attitude" in info.commands  # Mariner's custom command, from get_commands
    assert info.control.startswith("tcp://127.0.0.1:")

    reply = await ctl.command("Mariner.One", "get_state")
    assert (reply.type, reply.text, reply.payload) == (VerbType.SUCCESS, "NEW", State.NEW)
    assert "last_changed" in reply.tags
    # its first heartbeat tells the role and the interval
    await eventually(lambda: ctl.get("Mariner.One").last_seen is not None, timeout=10)
    assert ctl.get("Mariner.One").role is Role.DYNAMIC
    assert ctl.get("Mariner.One").interval_ms >= 500

    # Mariner's custom command is refused in NEW (its allowed states), as 1.0.2 does
    refused = await ctl.command("Mariner.One", "get_attitude")
    assert refused.type is VerbType.INVALID

    cfg = {"voltage": 3.3, "sample_period": 0.05, "_autonomy": {"role": "ESSENTIAL"}}
    (await ctl.command_all("initialize", cfg)).raise_for_status()
    await ctl.await_state(State.INIT, timeout=15)
    assert ctl.get("Mariner.One").role is Role.ESSENTIAL
    (await ctl.command_all("launch")).raise_for_status()
    await ctl.await_state(State.ORBIT, timeout=15)

    attitude = (await ctl.command("Mariner.One", "get_attitude")).raise_for_status()
    assert attitude.text == "Canopus Star Tracker locked and ready"
    assert isinstance(attitude.payload, int)

    (await ctl.command_all("start", "run_1")).raise_for_status()
    await ctl.await_state(State.RUN, timeout=15)
    assert (await ctl.command("Mariner.One", "get_run_id")).text == "run_1"
    (await ctl.command_all("stop")).raise_for_status()
    await ctl.await_state(State.ORBIT, timeout=15)
    (await ctl.command_all("land")).raise_for_status()
    await ctl.await_state(State.INIT, timeout=15)
    assert ctl.state.name == "INIT"

    # every transitional state went by in a heartbeat (extrasystoles), in order
    seen = history.of("Mariner.One")
    order = [
        State.NEW,
        State.initializing,
        State.INIT,
        State.launching,
        State.ORBIT,
        State.starting,
        State.RUN,
        State.stopping,
        State.ORBIT,
        State.landing,
        State.INIT,
    ]
    assert seen == order, seen

    shutdown = (await ctl.command("Mariner.One", "shutdown")).raise_for_status()
    assert shutdown.text == "Mariner.One queued for reentry"
    await ctl.wait_for(lambda: "Mariner.One" not in ctl.satellites, timeout=10)  # DEPART or hang-up
    assert proc.wait(10) == 0
