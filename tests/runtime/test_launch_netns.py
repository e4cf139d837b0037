"""`satellite-run` announces itself before its runtime has loaded, and never leaves a false announcement
behind (inside the namespace: CHIRP multicast on loopback)."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import zmq

from constellation import launch
from protocols import chirp, cscp
from protocols.chirp import Beacon, MessageType, ServiceId
from tests.harness import BeaconLog, Proc, wait_until

pytestmark = [pytest.mark.netns, pytest.mark.timeout(90)]

SATELLITE_RUN = str(Path(sys.executable).parent / "satellite-run")
VARIANTS = str(Path(__file__).with_name("launch_variants.py"))
READY = r"^READY (\S+) cmd=(\d+) hb=(\d+) mon=(\d+)$"
SERVICES = {ServiceId.CONTROL, ServiceId.HEARTBEAT, ServiceId.MONITORING}


def services(bs: list[Beacon]) -> dict[ServiceId, int]:
    return {b.service: b.port for b in bs}


def early_services(bs: list[Beacon]) -> dict[ServiceId, int]:
    """The services of `bs` that are offered before the runtime runs (`constellation.launch.EARLY`)."""
    early = {launch.SERVICES[key] for key in launch.EARLY}
    return {service: port for service, port in services(bs).items() if service in early}


def test_offer_comes_before_ready_and_a_command_sent_on_it_is_answered(
    spawn: Callable[..., Proc], group: str, beacons: BeaconLog
) -> None:
    ctx = zmq.Context()
    try:
        req = ctx.socket(zmq.REQ)
        req.setsockopt(zmq.LINGER, 0)
        req.setsockopt(zmq.RCVTIMEO, 5000)
        proc = subprocess.Popen(
            [SATELLITE_RUN, "Sputnik", "-n", "Early", "-g", group], stdout=subprocess.PIPE, text=True
        )
        try:
            wait_until(lambda: beacons.of("Sputnik.Early", MessageType.OFFER), timeout=10)
            offers = services(beacons.of("Sputnik.Early", MessageType.OFFER))
            req.connect(f"tcp://127.0.0.1:{offers[ServiceId.CONTROL]}")  # at once, on the first OFFER
            req.send_multipart(cscp.encode(cscp.request("Ctl.t", "get_name")))
            assert cscp.decode(req.recv_multipart()).verb == "Sputnik.Early"
            assert proc.stdout is not None
            line = proc.stdout.readline()
            assert line.startswith("READY Sputnik.Early")
            wait_until(lambda: set(services(beacons.of("Sputnik.Early", MessageType.OFFER))) == SERVICES)
            ports = dict(part.split("=") for part in line.split()[2:])
            assert services(beacons.of("Sputnik.Early", MessageType.OFFER)) == {
                ServiceId.CONTROL: int(ports["cmd"]),
                ServiceId.HEARTBEAT: int(ports["hb"]),
                ServiceId.MONITORING: int(ports["mon"]),
            }
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(10) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    finally:
        ctx.destroy(0)
    wait_until(lambda: set(services(beacons.of("Sputnik.Early", MessageType.DEPART))) == SERVICES)


def test_unknown_type_and_taken_port_announce_nothing(group: str, beacons: BeaconLog) -> None:
    bad = subprocess.run(
        [SATELLITE_RUN, "Sputnk", "-n", "A", "-g", group], capture_output=True, text=True, timeout=30
    )
    assert bad.returncode == 2
    assert "unknown satellite type 'Sputnk'" in bad.stderr
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        busy = subprocess.run(
            [SATELLITE_RUN, "Sputnik", "-n", "B", "-g", group, "--mon-port", port],
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
    assert busy.returncode == 1
    assert f"cannot bind mon port {port}" in busy.stderr
    # A control satellite started afterwards is seen: had the two above announced, it would be too.
    ok = subprocess.Popen([SATELLITE_RUN, "Sputnik", "-n", "C", "-g", group, "--discovery", "chirp"])
    try:
        wait_until(lambda: beacons.of("Sputnik.C", MessageType.OFFER), timeout=15)
    finally:
        ok.terminate()
        ok.wait(10)
    assert not beacons.of("Sputnk.A")
    assert not beacons.of("Sputnik.A")
    assert not beacons.of("Sputnik.B")


def test_class_naming_another_type_withdraws_the_early_offer(
    spawn: Callable[..., Proc], group: str, beacons: BeaconLog
) -> None:
    proc = spawn(sys.executable, VARIANTS, "other-type", "-n", "Twin", "-g", group, ready=READY, timeout=20)
    assert proc.ready is not None
    assert proc.ready.group(1) == "Other.Twin"
    wait_until(lambda: set(services(beacons.of("Other.Twin", MessageType.OFFER))) == SERVICES)
    early = beacons.of("Sputnik.Twin")
    assert [b.type for b in early] == [MessageType.OFFER] * 2 + [MessageType.DEPART] * 2
    assert (
        services(early[:2])
        == services(early[2:])
        == early_services(beacons.of("Other.Twin", MessageType.OFFER))
    )


@pytest.mark.parametrize(
    "mode", ["start-fails", "start-fails-sigterm-on-depart", "start-fails-sigint-on-depart"]
)
def test_failed_start_departs_the_early_offer(group: str, beacons: BeaconLog, mode: str) -> None:
    """Even when a signal arrives while the OFFERs are being departed. The satellite was loaded and
    constructed, so HEARTBEAT was offered too, just before the start: departed with the others."""
    res = subprocess.run(
        [sys.executable, VARIANTS, mode, "-n", "Bad", "-g", group],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert res.returncode == 1
    assert "start refused by the test" in res.stderr
    wait_until(lambda: len(beacons.of("Sputnik.Bad")) == 6, timeout=5)
    bad = beacons.of("Sputnik.Bad")
    assert [b.type for b in bad] == [MessageType.OFFER] * 3 + [MessageType.DEPART] * 3
    assert [b.service for b in bad[:3]] == [ServiceId.CONTROL, ServiceId.MONITORING, ServiceId.HEARTBEAT]
    assert services(bad[:3]) == services(bad[3:])


@pytest.mark.parametrize(("mode", "ready"), [("slow-load", r"^LOADING$"), ("slow-init", r"^CONSTRUCTING$")])
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_before_the_runtime_departs_the_early_offer(
    spawn: Callable[..., Proc], group: str, beacons: BeaconLog, sig: int, mode: str, ready: str
) -> None:
    """While the class loads, or inside `asyncio.run` before the runtime's own signal handlers."""
    proc = spawn(sys.executable, VARIANTS, mode, "-n", "Slow", "-g", group, ready=ready, timeout=20)
    wait_until(lambda: len(beacons.of("Sputnik.Slow", MessageType.OFFER)) == 2, timeout=5)
    proc.signal(sig)
    assert proc.wait(10) == 0
    wait_until(lambda: len(beacons.of("Sputnik.Slow", MessageType.DEPART)) == 2, timeout=5)


@pytest.mark.parametrize("mode", ["sigterm-on-offer", "sigint-on-offer"])
def test_signal_while_the_offer_goes_out_departs_it(group: str, beacons: BeaconLog, mode: str) -> None:
    """The signal lands inside `constellation.launch`, after the OFFERs are sent and before the caller
    holds the object that can depart them."""
    res = subprocess.run(
        [sys.executable, VARIANTS, mode, "-n", "Jumpy", "-g", group],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert res.returncode == 0, res.stderr
    wait_until(lambda: len(beacons.of("Sputnik.Jumpy")) == 4, timeout=5)
    kinds = [b.type for b in beacons.of("Sputnik.Jumpy")]
    assert kinds == [MessageType.OFFER] * 2 + [MessageType.DEPART] * 2


def test_a_request_before_the_runtime_is_answered_by_the_early_offer(
    spawn: Callable[..., Proc], group: str, beacons: BeaconLog
) -> None:
    """A listener that starts while the satellite is still loading (here: for good) finds it at once.
    Its heartbeat is not offered until the runtime beats: a 1.0.2 peer subscribed to it would count
    missed beats and declare the satellite DEAD after ~9 s of loading (`constellation.launch`)."""
    proc = spawn(
        sys.executable, VARIANTS, "slow-load", "-n", "Asked", "-g", group, ready="^LOADING$", timeout=20
    )
    wait_until(lambda: len(beacons.of("Sputnik.Asked", MessageType.OFFER)) == 2, timeout=5)
    offered = services(beacons.of("Sputnik.Asked", MessageType.OFFER))
    assert set(offered) == {ServiceId.CONTROL, ServiceId.MONITORING}
    for junk in (b"", b"CHIRP\x01", b"\xff" * 42, b"CHIRP\x01\x02" + b"\x00" * 60):  # dropped, not fatal
        beacons.sock.sendto(junk, (chirp.MULTICAST_ADDRESS, chirp.PORT))
    for service in (ServiceId.HEARTBEAT, ServiceId.CONTROL, ServiceId.DATA):
        request = Beacon(MessageType.REQUEST, beacons.group_id, chirp.host_id("Ctl.asking"), service, 0)
        beacons.sock.sendto(chirp.encode(request), (chirp.MULTICAST_ADDRESS, chirp.PORT))
    wait_until(lambda: len(beacons.of("Sputnik.Asked", MessageType.OFFER)) == 3, timeout=5)
    answers = beacons.of("Sputnik.Asked", MessageType.OFFER)[2:]
    # CONTROL only: no HEARTBEAT before the runtime beats, and no DATA, which it does not offer
    assert [(b.service, b.port) for b in answers] == [(ServiceId.CONTROL, offered[ServiceId.CONTROL])]
    proc.signal(signal.SIGTERM)
    assert proc.wait(10) == 0
    wait_until(lambda: len(beacons.of("Sputnik.Asked", MessageType.DEPART)) == 2, timeout=5)
    kinds = [b.type for b in beacons.of("Sputnik.Asked")]
    assert kinds[-2:] == [MessageType.DEPART] * 2  # no OFFER after the DEPARTs
    assert not beacons.of("Sputnik.Asked", MessageType.OFFER)[3:]
