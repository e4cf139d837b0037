"""Our Controller drives our own Sputnik satellites, and a mixed group of Sputnik and 1.0.2 Mariner."""

from __future__ import annotations

import signal

import pytest

from controllers import CommandTimeout, SatelliteFailed, Summary
from protocols import State
from protocols.cscp import VerbType
from tests.harness import eventually

pytestmark = [pytest.mark.netns, pytest.mark.timeout(90)]


async def test_cycle_two_sputniks_with_custom_command(make_ctl, sputnik) -> None:
    procs = [sputnik("A"), sputnik("B")]
    ctl, history = await make_ctl()
    await ctl.await_satellites(["Sputnik.A", "Sputnik.B"], timeout=20)
    assert "set_channel" in ctl.get("Sputnik.A").commands
    assert ctl.state is Summary.NEW

    (await ctl.command_all("initialize", {"channels": 2, "beep_period": 0.01})).raise_for_status()
    await ctl.await_state(State.INIT, timeout=10)
    reply = await ctl.command("Sputnik.B", "set_channel", [1, 2.5])
    assert (reply.type, reply.payload) == (VerbType.SUCCESS, {"channel": 1, "value": 2.5})
    bad = await ctl.command("Sputnik.B", "set_channel", [7, 1.0])  # out of range: refused, not fatal
    assert bad.type is not VerbType.SUCCESS
    assert (await ctl.command("Sputnik.B", "get_channels")).payload == [0.0, 2.5]

    for cmd, payload, target in (
        ("launch", None, State.ORBIT),
        ("start", "run_7", State.RUN),
        ("stop", None, State.ORBIT),
        ("land", None, State.INIT),
    ):
        (await ctl.command_all(cmd, payload)).raise_for_status()
        await ctl.await_state(target, timeout=10)
    assert history.of("Sputnik.A")[-3:] == [State.ORBIT, State.landing, State.INIT]
    assert State.starting in history.of("Sputnik.A")

    (await ctl.command_all("shutdown")).raise_for_status()
    await ctl.wait_for(lambda: not ctl.satellites, timeout=10)  # gone: DEPART, or hung up after shutdown
    assert ctl.state is Summary.EMPTY
    assert [p.wait(10) for p in procs] == [0, 0]


async def test_mixed_group_one_broadcast_drives_sputnik_and_mariner(make_ctl, sputnik, mariner) -> None:
    sputnik("S")
    mariner("M")
    ctl, _ = await make_ctl()
    names = ["Sputnik.S", "Mariner.M"]
    await ctl.await_satellites(names, timeout=30)
    (await ctl.command_all("initialize", {"sample_period": 0.05, "beep_period": 0.01})).raise_for_status()
    await ctl.await_state(State.INIT, timeout=15)
    for cmd, payload, target in (
        ("launch", None, State.ORBIT),
        ("start", "mixed_1", State.RUN),
        ("stop", None, State.ORBIT),
        ("land", None, State.INIT),
    ):
        replies = await ctl.command_all(cmd, payload)
        assert set(replies) == set(names)
        replies.raise_for_status()
        await ctl.await_state(target, timeout=15)
    run_ids = await ctl.command_all("get_run_id")
    assert {n: r.text for n, r in run_ids.items()} == {n: "mixed_1" for n in names}  # type: ignore[union-attr]
    (await ctl.command_all("shutdown")).raise_for_status()
    await ctl.wait_for(lambda: not ctl.satellites, timeout=10)


async def test_sputnik_timeout_recovery_and_loss(make_ctl, sputnik) -> None:
    proc = sputnik("Frozen")
    ctl, _ = await make_ctl()
    await ctl.await_satellites(["Sputnik.Frozen"], timeout=20)
    await eventually(lambda: ctl.get("Sputnik.Frozen").last_seen is not None, timeout=10)
    proc.signal(signal.SIGSTOP)
    try:
        with pytest.raises(CommandTimeout):
            await ctl.command("Sputnik.Frozen", "get_state", timeout=0.3)
        await ctl.wait_for(lambda: ctl.get("Sputnik.Frozen").lost, timeout=5)
    finally:
        proc.signal(signal.SIGCONT)
    assert (await ctl.command("Sputnik.Frozen", "get_state", timeout=3)).text == "NEW"
    await ctl.wait_for(lambda: ctl.states["Sputnik.Frozen"] is State.NEW, timeout=5)


async def test_killed_satellite_is_lost_at_once_then_unknown_names_raise(make_ctl, sputnik) -> None:
    proc = sputnik("Doomed")
    ctl, _ = await make_ctl()
    await ctl.await_satellites(["Sputnik.Doomed"], timeout=20)
    await eventually(lambda: ctl.get("Sputnik.Doomed").last_seen is not None, timeout=10)
    proc.signal(signal.SIGKILL)  # no DEPART: the dropped heartbeat connection tells
    await ctl.wait_for(lambda: ctl.get("Sputnik.Doomed").lost, timeout=1.0)
    assert ctl.state is Summary.ERROR
    from controllers import UnknownSatellite

    with pytest.raises(UnknownSatellite):
        await ctl.command("Sputnik.Nobody", "get_state")


async def test_satellite_leaving_by_itself_is_lost_then_removed_on_depart(make_ctl, sputnik) -> None:
    # CHIRP only: a zeroconf view still resolving when the goodbye comes can outlive it (reported).
    proc = sputnik("Leaver")
    sputnik("Stayer")
    ctl, _ = await make_ctl(backends=["chirp"])
    await ctl.await_satellites(["Sputnik.Leaver", "Sputnik.Stayer"], timeout=20)
    await eventually(lambda: ctl.get("Sputnik.Leaver").last_seen is not None, timeout=10)
    proc.signal(signal.SIGTERM)  # clean exit without our shutdown command: CHIRP DEPART
    await ctl.wait_for(lambda: "Sputnik.Leaver" not in ctl.satellites, timeout=10)
    assert proc.wait(10) == 0
    assert list(ctl.satellites) == ["Sputnik.Stayer"]
    assert ctl.state is Summary.NEW


async def test_failure_raises_in_await_state_and_initialize_recovers(make_ctl, sputnik) -> None:
    sputnik("Fragile")
    ctl, _ = await make_ctl()
    await ctl.await_satellites(["Sputnik.Fragile"], timeout=20)
    (await ctl.command_all("initialize", {})).raise_for_status()
    await ctl.await_state(State.INIT, timeout=10)
    (await ctl.command("Sputnik.Fragile", "_failure")).raise_for_status()
    with pytest.raises(SatelliteFailed, match=r"Sputnik\.Fragile is ERROR"):
        await ctl.await_state(State.ORBIT, timeout=10)
    assert ctl.state is Summary.ERROR
    # ERROR is left only by initialize; while its reply is fresh the old ERROR does not count
    (await ctl.command_all("initialize", {})).raise_for_status()
    await ctl.await_state(State.INIT, timeout=10)
    assert ctl.state is Summary.INIT


async def test_restarted_satellite_is_attached_again(make_ctl, sputnik) -> None:
    first = sputnik("Phoenix")
    ctl, _ = await make_ctl()
    await ctl.await_satellites(["Sputnik.Phoenix"], timeout=20)
    # Known is not yet followed: the kill is noticed at once (connection dropped) only once the heartbeat
    # subscription is connected; before that, loss takes 3 lives x the 2 s assumed until a first beat.
    await eventually(lambda: ctl.get("Sputnik.Phoenix").last_seen is not None, timeout=10)
    old = ctl.get("Sputnik.Phoenix")
    first.signal(signal.SIGKILL)  # no DEPART
    await ctl.wait_for(lambda: ctl.get("Sputnik.Phoenix").lost, timeout=5)
    sputnik("Phoenix")  # same name, new ports: its OFFERs replace the old services
    await ctl.wait_for(
        lambda: (
            "Sputnik.Phoenix" in ctl.satellites
            and ctl.get("Sputnik.Phoenix").control != old.control
            and ctl.get("Sputnik.Phoenix").last_seen is not None
        ),
        timeout=10,
    )
    assert ctl.states == {"Sputnik.Phoenix": State.NEW}
    assert (await ctl.command("Sputnik.Phoenix", "get_state")).text == "NEW"
