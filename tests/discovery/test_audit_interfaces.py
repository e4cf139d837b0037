"""Audit: ``satellite-run --interface`` across virtual hosts (wire doc §1.4, docs/discovery.md).

On host 1: ``Sputnik.LoOnly`` with ``-i lo`` and then ``Sputnik.Lan`` with the default interfaces
(lo + net0). Watched from host 0 over the bridge (10.77.0.254) by our CHIRP backend and by a plain
python-zeroconf browser: Lan is seen at 10.77.0.1, with A records for both of its addresses; LoOnly is
never seen over either, although Lan (started after it) is.
"""

from __future__ import annotations

import asyncio
import re

import pytest
from zeroconf import DNSQuestionType, IPVersion, ServiceStateChange, Zeroconf
from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo, AsyncZeroconf

from constellation.discovery import Discovery
from protocols import chirp
from protocols.chirp import ServiceId
from tests.discovery.conftest import chirp_fence
from tests.fuzz.support import READY, SATELLITE_RUN
from tests.harness import eventually

pytestmark = [pytest.mark.netns, pytest.mark.hosts(1), pytest.mark.timeout(90)]

BRIDGE = "10.77.0.254"
TYPES = ["_cscp._tcp.local.", "_chp._tcp.local.", "_cmdp._tcp.local."]


async def test_interface_choice_limits_where_chirp_and_zeroconf_announce(on_host, group: str) -> None:
    added: list[str] = []

    def on_change(zeroconf: Zeroconf, service_type: str, name: str, state_change: ServiceStateChange) -> None:
        if state_change is ServiceStateChange.Added:
            added.append(name)

    azc = AsyncZeroconf(interfaces=[BRIDGE], ip_version=IPVersion.V4Only)
    browser = AsyncServiceBrowser(azc.zeroconf, TYPES, handlers=[on_change], question_type=DNSQuestionType.QM)
    disc = Discovery(group, "Audit.host0", interfaces=[BRIDGE], backends=("chirp",))
    await disc.start()
    try:
        lo_only = await asyncio.to_thread(
            on_host, 1, SATELLITE_RUN, "Sputnik", "-n", "LoOnly", "-g", group, "-i", "lo", ready=READY
        )
        lan = await asyncio.to_thread(
            on_host, 1, SATELLITE_RUN, "Sputnik", "-n", "Lan", "-g", group, ready=READY
        )
        lan_host = chirp.host_id("Sputnik.Lan")
        await eventually(lambda: len([s for s in disc.services() if s.host_id == lan_host]) == 3, 5)
        assert {s.endpoint for s in disc.services(ServiceId.CONTROL)} == {
            f"tcp://10.77.0.1:{lan.ready['cmd']}"
        }
        expected = {f"Sputnik.Lan@{group.lower()}.{t}" for t in TYPES}
        await eventually(lambda: expected <= set(added), 5)
        info = AsyncServiceInfo(TYPES[0], f"Sputnik.Lan@{group.lower()}.{TYPES[0]}")
        assert await info.async_request(azc.zeroconf, 3000, question_type=DNSQuestionType.QM)
        assert sorted(info.parsed_addresses(IPVersion.V4Only)) == ["10.77.0.1", "127.0.0.1"]
        assert info.port == int(lan.ready["cmd"])

        # LoOnly started first. Asked directly, it must not answer here: no zeroconf reply to a query
        # for its instance, and none of its beacons in by the time Lan has answered two REQUESTs.
        lo_info = AsyncServiceInfo(TYPES[0], f"Sputnik.LoOnly@{group.lower()}.{TYPES[0]}")
        assert not await lo_info.async_request(azc.zeroconf, 1000, question_type=DNSQuestionType.QM)
        await chirp_fence(disc)
        await chirp_fence(disc)
        assert not [n for n in added if re.match(r"Sputnik\.LoOnly@", n)], added
        assert all(s.host_id != chirp.host_id("Sputnik.LoOnly") for s in disc.services())
        assert lo_only.popen.poll() is None  # alive all along
    finally:
        await disc.aclose()
        await browser.async_cancel()
        await azc.async_close()
