"""The satellite announces CONTROL, HEARTBEAT and MONITORING and departs on exit (inside the namespace)."""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import zmq
import zmq.asyncio

from constellation import Satellite
from constellation.discovery import Discovery, Service
from protocols import chirp as wire
from protocols import cscp
from protocols.chirp import ServiceId
from tests.harness import Proc, eventually

pytestmark = [pytest.mark.netns, pytest.mark.timeout(90)]

SATELLITE_RUN = str(Path(sys.executable).parent / "satellite-run")
SERVICES = {ServiceId.CONTROL, ServiceId.HEARTBEAT, ServiceId.MONITORING}


class Seen:
    def __init__(self, name: str) -> None:
        self.host = wire.host_id(name)
        self.up: dict[ServiceId, Service] = {}
        self.gone: set[ServiceId] = set()

    def appear(self, svc: Service) -> None:
        if svc.host_id == self.host:
            self.up[svc.service] = svc

    def depart(self, svc: Service) -> None:
        if svc.host_id == self.host:
            self.gone.add(svc.service)


@pytest.mark.parametrize("backends", ["chirp", "zeroconf"])
async def test_subprocess_offers_and_departs(spawn: Callable[..., Proc], group: str, backends: str) -> None:
    seen = Seen("Sputnik.Disc")
    listener = Discovery(group, "Ctl.t", backends=(backends,), interfaces=["lo"], on_appear=seen.appear,
                         on_depart=seen.depart)  # fmt: skip
    await listener.start()
    try:
        proc = await asyncio.to_thread(
            spawn, SATELLITE_RUN, "Sputnik", "-n", "Disc", "-g", group, "-i", "lo", "--discovery", backends,
            ready=r"^READY (\S+) cmd=(\d+) hb=(\d+) mon=(\d+)$", timeout=20,
        )  # fmt: skip
        ports = {ServiceId.CONTROL: 2, ServiceId.HEARTBEAT: 3, ServiceId.MONITORING: 4}
        await eventually(lambda: set(seen.up) == SERVICES, timeout=5)
        for sid, idx in ports.items():
            assert seen.up[sid].port == int(proc.ready.group(idx))
        ctx = zmq.asyncio.Context()
        try:
            req = ctx.socket(zmq.REQ)
            req.setsockopt(zmq.LINGER, 0)
            req.connect(seen.up[ServiceId.CONTROL].endpoint)
            await req.send_multipart(cscp.encode(cscp.request("Ctl.t", "get_name")))
            async with asyncio.timeout(3):
                assert cscp.decode(await req.recv_multipart()).verb == "Sputnik.Disc"
        finally:
            ctx.destroy(0)
        proc.signal(signal.SIGTERM)
        await eventually(lambda: seen.gone == SERVICES, timeout=5)
        assert await asyncio.to_thread(proc.wait, 5) == 0
    finally:
        await listener.aclose()


async def test_in_process_satellite_departs_on_aclose(group: str) -> None:
    seen = Seen("Satellite.InProc")
    listener = Discovery(group, "Ctl.u", backends=("chirp",), interfaces=["lo"], on_appear=seen.appear,
                         on_depart=seen.depart)  # fmt: skip
    await listener.start()
    try:
        async with Satellite("InProc", group, interfaces=["lo"], discovery=("chirp",), bind="127.0.0.1"):
            await eventually(lambda: set(seen.up) == SERVICES, timeout=5)
        await eventually(lambda: seen.gone == SERVICES, timeout=5)
    finally:
        await listener.aclose()
