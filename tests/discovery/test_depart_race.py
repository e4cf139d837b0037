"""A CHIRP DEPART removes the service from both backends, even when zeroconf reports it late.

Bug report: with both backends, a Sputnik's services sometimes stayed in a controller's table after its
DEPART and clean exit, with only the zeroconf view left (``backends={'zeroconf'}``), until the zeroconf
records expired. Whatever delays a zeroconf report (a resolve still under way, a responder's delayed
answer sent between or after the goodbyes), the late report arrives after the node said it left.
The test delivers such a late report on purpose, through the path a late resolve takes
(``DnssdBackend._accept`` with the departed node's own records), after its DEPART and goodbyes.
"""

from __future__ import annotations

import pytest
from zeroconf.asyncio import AsyncServiceInfo

from constellation.discovery import Discovery, Service
from constellation.discovery.dnssd import SERVICE_TYPES, DnssdBackend, instance_name, txt_record
from protocols import chirp as wire
from protocols.chirp import ServiceId
from tests.discovery.conftest import MakeFn
from tests.harness import eventually

pytestmark = [pytest.mark.netns, pytest.mark.timeout(120)]

BOTH = ("chirp", "zeroconf")
SATELLITE = (ServiceId.CONTROL, ServiceId.HEARTBEAT, ServiceId.MONITORING)
ROUNDS = 6
RESTARTS = 6


def _info(group: str, name: str, service: ServiceId, port: int) -> AsyncServiceInfo:
    """The records a ``Discovery`` named ``name`` publishes for ``service`` (see dnssd.DnssdBackend)."""
    type_ = SERVICE_TYPES[service]
    host, grp = wire.host_id(name).hex()[:16], wire.group_id(group).hex()[:8]
    return AsyncServiceInfo(
        type_,
        f"{instance_name(name, group)}.{type_}",
        port=port,
        properties=txt_record(group, name, service),
        server=f"cnstln-{host}-{grp}.local.",
        host_ttl=120,
        other_ttl=120,
        parsed_addresses=["127.0.0.1"],
    )


def _of(name: str) -> bytes:
    return wire.host_id(name)


async def _satellite(
    make: MakeFn, group: str, name: str, base: int, backends: tuple[str, ...] = BOTH
) -> Discovery:
    """Like constellation.satellite: offers made right after start (zeroconf registers them later)."""
    sat, _ = make(group, name, backends=backends)
    await sat.start()
    for i, service in enumerate(SATELLITE):
        sat.offer(service, base + i)
    sat.request(ServiceId.HEARTBEAT)
    return sat


async def test_late_zeroconf_report_after_depart_does_not_bring_the_satellite_back(
    make: MakeFn, group: str
) -> None:
    listener, rec = make(group, "Controller.race", backends=BOTH)
    await listener.start()
    zeroconf = next(b for b in listener._backends if isinstance(b, DnssdBackend))
    for round_ in range(ROUNDS):
        name, base = f"Sputnik.R{round_}", 5600 + 10 * round_
        hid = _of(name)
        sat = await _satellite(make, group, name, base)

        def mine(hid: bytes = hid) -> list[Service]:
            return [s for s in listener.services() if s.host_id == hid]

        await eventually(lambda: len(mine()) == 3 and all(s.backends == set(BOTH) for s in mine()))
        await sat.aclose()  # CHIRP DEPARTs, then the zeroconf goodbyes
        await eventually(lambda: mine() == [], timeout=5)
        # a resolve that was under way when the node left completes now, with the node's own records
        for i, service in enumerate(SATELLITE):
            info = _info(group, name, service, base + i)
            zeroconf._accept(info.type, info.name, info)
        assert mine() == [], f"round {round_}: departed satellite back as {mine()}"
        assert listener.counters["table.held_departed"] == 3 * (round_ + 1)
        assert len([s for _, s in rec.appeared if s.host_id == hid]) == 3
        assert len([s for _, s in rec.departed if s.host_id == hid]) == 3
    # a node that did not DEPART is still reported by zeroconf alone
    info = _info(group, "Sputnik.Live", ServiceId.CONTROL, 5690)
    zeroconf._accept(info.type, info.name, info)
    assert [(s.port, s.backends) for s in listener.services()] == [(5690, frozenset({"zeroconf"}))]


@pytest.mark.parametrize("backends", [BOTH, ("zeroconf",)])
async def test_quick_restarts_with_the_same_ports_appear_and_depart_every_time(
    make: MakeFn, group: str, backends: tuple[str, ...]
) -> None:
    """The natural reproduction (no injection): fails on the code before the DEPART rule.

    A node restarted under the same name and ports sends byte-identical zeroconf goodbyes, and
    python-zeroconf (0.154) drops a packet identical to one received in the last 800 ms
    (``_DUPLICATE_PACKET_SUPPRESSION_INTERVAL``). So the second quick restart's goodbyes were never
    seen, and the observer kept the zeroconf view (round 2 of 3, before the fix).
    """
    listener, rec = make(group, "Controller.restart", backends=backends)
    await listener.start()
    hid = _of("Sputnik.Again")
    for round_ in range(RESTARTS):
        sat = await _satellite(make, group, "Sputnik.Again", 5700, backends)

        def mine() -> list[Service]:
            return [s for s in listener.services() if s.host_id == hid]

        await eventually(lambda: len(mine()) == 3 and all(s.backends == set(backends) for s in mine()))
        assert sorted(s.port for s in mine()) == [5700, 5701, 5702]
        await sat.aclose()
        await eventually(lambda: mine() == [], timeout=5)
        assert len([s for _, s in rec.departed if s.host_id == hid]) == 3 * (round_ + 1)
    assert len([s for _, s in rec.appeared if s.host_id == hid]) == 3 * RESTARTS
