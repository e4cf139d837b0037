"""Audit: what a plain python-zeroconf browser (not our backend) sees of ``satellite-run`` over mDNS,
against docs/discovery.md ("zeroconf / DNS-SD backend"), and the ``--discovery`` selection.

Inside the namespace only; loopback (``-i lo``); QM questions (several responders share the namespace).
"""

from __future__ import annotations

import asyncio
import re
import signal
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from zeroconf import DNSQuestionType, IPVersion, ServiceStateChange, Zeroconf
from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo, AsyncZeroconf

from protocols import chirp
from protocols.chirp import MessageType
from tests.fuzz.support import start_sputnik
from tests.harness import BeaconLog, eventually

pytestmark = [pytest.mark.netns, pytest.mark.timeout(90)]

TYPES = {"CONTROL": "_cscp._tcp.local.", "HEARTBEAT": "_chp._tcp.local.", "MONITORING": "_cmdp._tcp.local."}
PROTOCOLS = {"CONTROL": "CSCP1", "HEARTBEAT": "CHP1", "MONITORING": "CMDP1"}
ALL_TYPES = [*TYPES.values(), "_cdtp._tcp.local."]


class Browser:
    def __init__(self) -> None:
        self.azc = AsyncZeroconf(interfaces=["127.0.0.1"], ip_version=IPVersion.V4Only)
        self.events: list[tuple[float, str, str, ServiceStateChange]] = []
        self.browser = AsyncServiceBrowser(
            self.azc.zeroconf, ALL_TYPES, handlers=[self._on], question_type=DNSQuestionType.QM
        )

    def _on(self, zeroconf: Zeroconf, service_type: str, name: str, state_change: ServiceStateChange) -> None:
        self.events.append((time.monotonic(), service_type, name, state_change))

    def names(self, change: ServiceStateChange, pattern: str = "") -> set[str]:
        return {n for _, _, n, c in self.events if c is change and re.search(pattern, n)}

    async def info(self, type_: str, name: str) -> AsyncServiceInfo:
        info = AsyncServiceInfo(type_, name)
        assert await info.async_request(self.azc.zeroconf, 3000, question_type=DNSQuestionType.QM), name
        return info

    async def close(self) -> None:
        await self.browser.async_cancel()
        await self.azc.async_close()


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    b = Browser()
    yield b
    await b.close()


def _start(spawn: Callable[..., Any], group: str, name: str, discovery: str):
    return start_sputnik(spawn, group, name, "--discovery", discovery)


async def test_records_are_what_the_docs_say_and_goodbyes_come_at_exit(spawn, group: str, browser) -> None:
    sat = await asyncio.to_thread(_start, spawn, group, "Zc", "zeroconf")
    ports = {"CONTROL": sat.cmd, "HEARTBEAT": sat.hb, "MONITORING": sat.mon}
    instance = f"Sputnik.Zc@{group.lower()}"
    expected = {f"{instance}.{t}" for t in TYPES.values()}
    await eventually(lambda: browser.names(ServiceStateChange.Added, re.escape(instance)) == expected, 5)
    host = chirp.host_id("Sputnik.Zc").hex()[:16]
    gid = chirp.group_id(group).hex()[:8]
    runs = set()
    for service, type_ in TYPES.items():
        info = await browser.info(type_, f"{instance}.{type_}")
        txt = {k.decode(): v.decode() for k, v in info.properties.items() if v is not None}
        runs.add(txt.pop("run"))
        assert txt == {
            "txtvers": "1",
            "group": group,
            "name": "Sputnik.Zc",
            "service": service,
            "protocol": PROTOCOLS[service],
        }
        assert info.port == ports[service]
        assert info.server == f"cnstln-{host}-{gid}.local."
        assert info.parsed_addresses(IPVersion.V4Only) == ["127.0.0.1"]  # -i lo: loopback only
        for record in browser.azc.zeroconf.cache.entries_with_name(f"{instance}.{type_}"):
            if record.ttl < 1000:  # python-zeroconf raises PTR TTLs to >= 1125 s on receipt
                assert record.ttl == 120, record
    assert all(re.fullmatch(r"[0-9a-f]{8}", r) for r in runs)
    assert len(runs) == 3  # one per registration
    # no DATA offer, nothing of another type
    assert browser.names(ServiceStateChange.Added, re.escape(instance)) == expected
    t0 = time.monotonic()
    sat.proc.signal(signal.SIGTERM)
    await eventually(lambda: browser.names(ServiceStateChange.Removed, re.escape(instance)) == expected, 5)
    took = max(t for t, _, n, c in browser.events if c is ServiceStateChange.Removed) - t0
    assert took < 2.0, f"goodbyes after {took:.2f} s"
    assert await asyncio.to_thread(sat.proc.wait, 10) == 0


@pytest.mark.parametrize("discovery", ["chirp", "zeroconf", "chirp,zeroconf", "none"])
async def test_discovery_selection_announces_exactly_the_chosen_backends(
    spawn, group: str, browser, discovery: str
) -> None:
    log = BeaconLog(group)
    try:
        sat = await asyncio.to_thread(_start, spawn, group, "Sel", discovery)
        # a marker satellite with both backends, started after: once it is seen on both, the one under
        # test would have been seen too
        await asyncio.to_thread(_start, spawn, group, "Marker", "chirp,zeroconf")
        await eventually(lambda: browser.names(ServiceStateChange.Added, r"^Sputnik\.Marker@"), 5)
        await eventually(lambda: log.of("Sputnik.Marker", MessageType.OFFER), 5)
        zc = browser.names(ServiceStateChange.Added, r"^Sputnik\.Sel@")
        beacons = log.of("Sputnik.Sel")
        assert (len(zc) == 3) is ("zeroconf" in discovery), zc
        assert bool(zc) is ("zeroconf" in discovery), zc
        assert bool(beacons) is ("chirp" in discovery), beacons
        sat.proc.signal(signal.SIGTERM)
        assert await asyncio.to_thread(sat.proc.wait, 10) == 0
        if "chirp" in discovery:
            await eventually(lambda: len(log.of("Sputnik.Sel", MessageType.DEPART)) == 3, 5)
        if "zeroconf" in discovery:
            await eventually(
                lambda: len(browser.names(ServiceStateChange.Removed, r"^Sputnik\.Sel@")) == 3, 5
            )
    finally:
        log.close()
