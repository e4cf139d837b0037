"""Audit of our CHIRP beacons against a 1.0.2 satellite's (wire doc §1.3), real processes in the namespace.

- the sequence at start-up and at a ``shutdown`` command: OFFER CONTROL, HEARTBEAT, MONITORING (ours:
  HEARTBEAT last, on purpose, docs/architecture.md: offered only once the satellite is about to beat), a
  REQUEST for HEARTBEAT, and one DEPART per offered service with the offered port;
- a REQUEST for one service is answered with an OFFER of exactly that service at its port, and with
  nothing for a service we do not offer (DATA), or from another group.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from protocols import chirp
from protocols.chirp import Beacon, MessageType, ServiceId
from tests.fuzz.support import Client, start_sputnik
from tests.harness import BeaconLog, free_tcp_port, loopback_chirp_socket, unique_group, wait_until

pytestmark = [pytest.mark.netns, pytest.mark.timeout(120)]

OFFERED = (ServiceId.CONTROL, ServiceId.HEARTBEAT, ServiceId.MONITORING)


def _collapsed(beacons: list[Beacon]) -> list[tuple[str, str]]:
    """(type, service) in order, repeats of what was already said dropped (our start-up offers twice:
    the early offer of phase 1 and the runtime's; 1.0.2 ignores an OFFER of a known port)."""
    out: list[tuple[str, str]] = []
    for b in beacons:
        item = (b.type.name, b.service.name)
        if item not in out or b.type is not MessageType.OFFER:
            out.append(item)
    return out


def _run_and_shutdown(log: BeaconLog, name: str, cmd_port: int) -> list[Beacon]:
    client = Client(cmd_port)
    try:
        wait_until(lambda: len(log.of(name, MessageType.REQUEST)) >= 1, timeout=30)
        # the (late) second round of the runtime's own OFFERs has gone out before we stop
        wait_until(lambda: client.call("get_state").verb == "NEW", timeout=10)
        rep = client.call("shutdown")
        assert rep.verb_type.name == "SUCCESS", rep
        wait_until(lambda: len(log.of(name, MessageType.DEPART)) >= 3, timeout=10)
    finally:
        client.close()
    return log.of(name)


def test_start_and_shutdown_beacons_like_cdaq(cdaq_python: Path, spawn) -> None:
    ours_group, theirs_group = unique_group(), unique_group()
    ours_log, theirs_log = BeaconLog(ours_group), BeaconLog(theirs_group)
    try:
        sat = start_sputnik(spawn, ours_group, "Seq")
        ours = _run_and_shutdown(ours_log, "Sputnik.Seq", sat.cmd)
        assert sat.proc.wait(10) == 0
        port = free_tcp_port()
        mariner = spawn(
            str(cdaq_python.with_name("SatelliteMariner")), "-g", theirs_group, "-n", "Seq", "-i", "lo",
            "--cmd-port", str(port),
        )  # fmt: skip
        theirs = _run_and_shutdown(theirs_log, "Mariner.Seq", port)
        mariner.wait(10)
    finally:
        ours_log.close()
        theirs_log.close()
    assert _collapsed(theirs) == [
        *(("OFFER", s.name) for s in OFFERED),
        ("REQUEST", "HEARTBEAT"),
        *(("DEPART", s.name) for s in OFFERED),
    ]
    # The one deliberate difference (b474ddf, docs/architecture.md): CONTROL and MONITORING are offered
    # before the type is loaded, HEARTBEAT only once the satellite is about to beat (a 1.0.2 peer counts
    # missed beats from the offer on). 1.0.2 handles each service's OFFER on its own.
    assert _collapsed(ours) == [
        *(("OFFER", s.name) for s in (ServiceId.CONTROL, ServiceId.MONITORING, ServiceId.HEARTBEAT)),
        ("REQUEST", "HEARTBEAT"),
        *(("DEPART", s.name) for s in OFFERED),
    ]
    offered = {b.service: b.port for b in ours if b.type is MessageType.OFFER}
    assert offered == {ServiceId.CONTROL: sat.cmd, ServiceId.HEARTBEAT: sat.hb, ServiceId.MONITORING: sat.mon}
    assert {b.service: b.port for b in ours if b.type is MessageType.DEPART} == offered
    assert [b.port for b in ours if b.type is MessageType.REQUEST] == [0]


def test_request_is_answered_with_exactly_that_service(spawn, group: str) -> None:
    log = BeaconLog(group)
    sock = loopback_chirp_socket()
    try:
        sat = start_sputnik(spawn, group, "Asked")
        host = chirp.host_id("Sputnik.Asked")
        ports = {ServiceId.CONTROL: sat.cmd, ServiceId.HEARTBEAT: sat.hb, ServiceId.MONITORING: sat.mon}
        me = chirp.host_id("Audit.requester")
        wait_until(lambda: len(log.of("Sputnik.Asked", MessageType.REQUEST)) >= 1, timeout=30)
        for service in (*OFFERED, ServiceId.DATA):
            before = len(log.of("Sputnik.Asked"))
            # another group first: never answered
            sock.sendto(
                chirp.encode(Beacon(MessageType.REQUEST, chirp.group_id(group + "x"), me, service, 0)),
                (chirp.MULTICAST_ADDRESS, chirp.PORT),
            )
            sock.sendto(
                chirp.encode(Beacon(MessageType.REQUEST, chirp.group_id(group.upper()), me, service, 0)),
                (chirp.MULTICAST_ADDRESS, chirp.PORT),
            )
            if service is ServiceId.DATA:
                # a marker REQUEST we do answer, so that "nothing for DATA" is not just "not yet"
                sock.sendto(
                    chirp.encode(Beacon(MessageType.REQUEST, log.group_id, me, ServiceId.CONTROL, 0)),
                    (chirp.MULTICAST_ADDRESS, chirp.PORT),
                )
            wait_until(lambda b=before: len(log.of("Sputnik.Asked")) > b, timeout=5)
            new = log.of("Sputnik.Asked")[before:]
            expected = ServiceId.CONTROL if service is ServiceId.DATA else service
            assert [(b.type, b.service, b.port, b.host_id) for b in new] == [
                (MessageType.OFFER, expected, ports[expected], host)
            ]
    finally:
        sock.close()
        log.close()


@pytest.mark.parametrize("backends", ["chirp", "zeroconf", "chirp,zeroconf"])
async def test_a_second_satellite_with_the_same_name_replaces_the_first_and_outlives_its_departure(
    spawn, group: str, backends: str
) -> None:
    """Same name, same group: the same host id. The newer one's OFFER (other ports) replaces the older
    one, as in 1.0.2. When the older one leaves, its DEPART names its own port and must not take the
    newer one away (1.0.2's controller does drop it: its DEPART handling ignores the port).
    Zeroconf alone: the older one's goodbye (same instance name) hides the newer one until it answers
    again, a moment later; with CHIRP as well, the newer one never departs."""
    import asyncio
    import signal

    from constellation.discovery import Discovery
    from tests.discovery.conftest import chirp_fence
    from tests.harness import eventually

    departed: list[int] = []
    disc = Discovery(
        group,
        "Audit.observer",
        interfaces=["lo"],
        backends=backends.split(","),
        on_depart=lambda svc: departed.append(svc.port) if svc.service is ServiceId.CONTROL else None,
    )
    await disc.start()
    try:

        def control_port() -> int | None:
            found = disc.services(ServiceId.CONTROL)
            return found[0].port if found else None

        first = await asyncio.to_thread(start_sputnik, spawn, group, "Dup", "--discovery", backends)
        await eventually(lambda: control_port() == first.cmd, 5)
        second = await asyncio.to_thread(start_sputnik, spawn, group, "Dup", "--discovery", backends)
        await eventually(lambda: control_port() == second.cmd, 5)
        assert departed == [first.cmd]  # replaced
        removed = disc.counters.get("zeroconf.removed", 0)
        first.proc.signal(signal.SIGTERM)
        assert await asyncio.to_thread(first.proc.wait, 10) == 0
        if backends == "zeroconf":
            await eventually(lambda: second.cmd in departed and control_port() == second.cmd, 5)
            return

        # The goodbyes and DEPARTs went out before the process exited. Once the second has answered a
        # REQUEST since, every DEPART is in; with zeroconf, once its three goodbyes (one per service
        # type, taking the shared instance name) are handled too: still the second, nothing departed.
        await chirp_fence(disc)
        if "zeroconf" in backends:
            await eventually(lambda: disc.counters.get("zeroconf.removed", 0) >= removed + 3, 5)
        assert control_port() == second.cmd
        assert departed == [first.cmd]
    finally:
        await disc.aclose()
