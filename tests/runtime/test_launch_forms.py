"""`satellite-run` with every form of ``--bind`` and ``--discovery``: pre-bound and offered early where it
can be (``*``, an IPv4 address), left to the runtime where libzmq resolves the address (an interface or
host name) or CHIRP is off; in each case the offered ports answer and every OFFER is departed."""

from __future__ import annotations

import signal
from collections.abc import Callable

import pytest
import zmq

from protocols import cscp
from protocols.chirp import MessageType, ServiceId
from tests.harness import BeaconLog, Proc, wait_until
from tests.runtime.test_launch_netns import READY, SATELLITE_RUN, SERVICES, services

pytestmark = [pytest.mark.netns, pytest.mark.timeout(90)]


def _get_name(port: int) -> str:
    ctx = zmq.Context()
    try:
        req = ctx.socket(zmq.REQ)
        req.setsockopt(zmq.LINGER, 0)
        req.setsockopt(zmq.RCVTIMEO, 5000)
        req.connect(f"tcp://127.0.0.1:{port}")
        req.send_multipart(cscp.encode(cscp.request("Ctl.t", "get_name")))
        return cscp.decode(req.recv_multipart()).verb
    finally:
        ctx.destroy(0)


@pytest.mark.parametrize("bind", ["*", "127.0.0.1", "0.0.0.0", "lo", "localhost"])
def test_every_bind_form_is_offered_answers_and_departs(
    spawn: Callable[..., Proc], group: str, beacons: BeaconLog, bind: str
) -> None:
    name = {"*": "Star", "127.0.0.1": "Loop", "0.0.0.0": "Any", "lo": "Lo", "localhost": "Host"}[bind]
    proc = spawn(
        SATELLITE_RUN, "Sputnik", "-n", name, "-g", group, "--bind", bind, "--discovery", "chirp",
        ready=READY, timeout=20,
    )  # fmt: skip
    assert proc.ready is not None
    ready_ports = dict(zip(("cmd", "hb", "mon"), map(int, proc.ready.groups()[1:]), strict=True))
    canonical = f"Sputnik.{name}"
    wait_until(lambda: set(services(beacons.of(canonical, MessageType.OFFER))) == SERVICES)
    offered = services(beacons.of(canonical, MessageType.OFFER))
    assert offered == {
        ServiceId.CONTROL: ready_ports["cmd"],
        ServiceId.HEARTBEAT: ready_ports["hb"],
        ServiceId.MONITORING: ready_ports["mon"],
    }
    assert _get_name(offered[ServiceId.CONTROL]) == canonical
    proc.signal(signal.SIGTERM)
    assert proc.wait(10) == 0
    wait_until(lambda: set(services(beacons.of(canonical, MessageType.DEPART))) == SERVICES)
    kinds = [b.type for b in beacons.of(canonical)]
    assert kinds.count(MessageType.DEPART) == 3  # once each: the early offers were not departed twice


@pytest.mark.parametrize("discovery", ["none", "zeroconf"])
def test_without_chirp_nothing_is_beaconed_and_the_ports_answer(
    spawn: Callable[..., Proc], group: str, beacons: BeaconLog, discovery: str
) -> None:
    argv = (SATELLITE_RUN, "Sputnik", "-g", group, "--discovery")
    proc = spawn(*argv, discovery, "-n", "Quiet", ready=READY, timeout=20)
    assert proc.ready is not None
    assert _get_name(int(proc.ready.group(2))) == "Sputnik.Quiet"
    proc.signal(signal.SIGTERM)
    assert proc.wait(10) == 0
    # A CHIRP satellite started afterwards is seen: had the one above beaconed, that would have been too.
    spawn(*argv, "chirp", "-n", "Loud", ready=READY, timeout=20)
    wait_until(lambda: beacons.of("Sputnik.Loud", MessageType.OFFER), timeout=10)
    assert beacons.of("Sputnik.Quiet") == []
