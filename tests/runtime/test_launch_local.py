"""`constellation.launch` without multicast: pre-bound ports adopted by the runtime, early beacons sent
to a unicast loopback target, lazy package exports, and what the announcing phase may import."""

from __future__ import annotations

import asyncio
import functools
import os
import signal
import socket
import subprocess
import sys
from typing import Any

import pytest
import zmq
import zmq.asyncio

from constellation import Satellite, ServiceError, cli
from constellation.launch import SERVICES, EarlyOffer, ExitSignals, Prebound, prebind_host
from protocols import chirp, chp, cscp
from protocols.chirp import MessageType, ServiceId
from protocols.lazy import lazy_exports
from tests.harness import eventually

pytestmark = pytest.mark.timeout(60)


def test_prebind_host() -> None:
    assert prebind_host("*") == "0.0.0.0"
    assert prebind_host("127.0.0.1") == "127.0.0.1"
    for unresolvable in ("lo", "eth0", "localhost", "::1", "[::1]", ""):
        assert prebind_host(unresolvable) is None  # libzmq resolves these itself


def test_prebound_ports_listen_before_any_zmq_socket_exists() -> None:
    bound = Prebound("127.0.0.1", {})
    try:
        assert set(bound.ports) == set(SERVICES)
        assert len(set(bound.ports.values())) == 3
        for port in bound.ports.values():
            socket.create_connection(("127.0.0.1", port), timeout=2).close()  # the kernel accepts
    finally:
        bound.close()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", bound.ports["cmd"]), timeout=2)


def test_prebound_port_in_use_names_key_and_port_and_keeps_nothing_open() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with socket.socket() as free:
            free.bind(("127.0.0.1", 0))
            free_port = free.getsockname()[1]
        with pytest.raises(OSError, match=rf"cannot bind hb port {port} on 127\.0\.0\.1"):
            Prebound("127.0.0.1", {"cmd": free_port, "hb": port})
    with socket.socket() as again:  # the cmd listener made before the failure was closed
        again.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        again.bind(("127.0.0.1", free_port))


def test_take_moves_ownership() -> None:
    bound = Prebound("127.0.0.1", {})
    fds = bound.take()
    bound.close()  # owns nothing any more: must not close the taken descriptors
    try:
        for fd in fds.values():
            os.fstat(fd)
            assert socket.socket(fileno=os.dup(fd)).getsockname()[0] == "127.0.0.1"
    finally:
        for fd in fds.values():
            os.close(fd)


async def test_satellite_adopts_listeners_and_answers_a_request_sent_before_it_started() -> None:
    bound = Prebound("127.0.0.1", {})
    ports = dict(bound.ports)
    ctx = zmq.asyncio.Context()
    req = ctx.socket(zmq.REQ)
    req.setsockopt(zmq.LINGER, 0)
    req.connect(f"tcp://127.0.0.1:{ports['cmd']}")
    await req.send_multipart(cscp.encode(cscp.request("Ctl.early", "get_name")))  # waits in the backlog
    sat = Satellite(
        "Early", "g", bind="127.0.0.1", discovery=(), listen_fds=bound.take(),
        cmd_port=ports["cmd"], hb_port=ports["hb"], mon_port=ports["mon"],
    )  # fmt: skip
    try:
        async with sat, asyncio.timeout(5):
            assert sat.ports == ports
            reply = cscp.decode(await req.recv_multipart())
            assert reply.verb_type is cscp.VerbType.SUCCESS
            assert reply.verb == "Satellite.Early"
            sub = ctx.socket(zmq.SUB)  # the heartbeat listener was adopted too
            sub.setsockopt(zmq.LINGER, 0)
            sub.setsockopt(zmq.SUBSCRIBE, b"")
            sub.connect(f"tcp://127.0.0.1:{ports['hb']}")
            assert chp.decode(await sub.recv_multipart()).sender == "Satellite.Early"
    finally:
        ctx.destroy(0)
    for port in ports.values():  # closed with the satellite: the ports are free again
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", port))


async def test_listeners_of_a_satellite_that_never_started_are_closed() -> None:
    bound = Prebound("127.0.0.1", {})
    port = bound.ports["cmd"]
    sat = Satellite("Never", "g", bind="127.0.0.1", discovery=(), listen_fds=bound.take(), cmd_port=port)
    await sat.aclose()
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))


def _unicast_receiver() -> socket.socket:
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    rx.settimeout(3)
    return rx


def test_early_offer_sends_the_runtime_beacons_and_withdraw_departs_them() -> None:
    ports = {"cmd": 40001, "hb": 40002, "mon": 40003}
    with _unicast_receiver() as rx:
        early = EarlyOffer("Grp", "Sputnik.One", ["127.0.0.1"], ports, target=rx.getsockname())
        offers = [chirp.decode(rx.recv(64)) for _ in range(3)]
        assert early.open
        early.withdraw()
        departs = [chirp.decode(rx.recv(64)) for _ in range(3)]
        assert not early.open
    for kind, beacons in ((MessageType.OFFER, offers), (MessageType.DEPART, departs)):
        assert {(b.service, b.port) for b in beacons} == {
            (ServiceId.CONTROL, 40001),
            (ServiceId.HEARTBEAT, 40002),
            (ServiceId.MONITORING, 40003),
        }
        for b in beacons:
            assert b.type is kind
            assert b.group_id == chirp.group_id("grp")
            assert b.host_id == chirp.host_id("sputnik.one")


def test_early_offer_offers_more_and_withdraw_departs_them_too() -> None:
    """`satellite-run` offers HEARTBEAT once the satellite is constructed, just before its start."""
    with _unicast_receiver() as rx:
        early = EarlyOffer("Grp", "Sputnik.One", ["127.0.0.1"], {"cmd": 40001}, target=rx.getsockname())
        assert chirp.decode(rx.recv(64)).service is ServiceId.CONTROL
        early.offer({"hb": 40002})
        hb = chirp.decode(rx.recv(64))
        assert (hb.type, hb.service, hb.port) == (MessageType.OFFER, ServiceId.HEARTBEAT, 40002)
        early.withdraw()
        departs = [chirp.decode(rx.recv(64)) for _ in range(2)]
    assert {(b.type, b.service, b.port) for b in departs} == {
        (MessageType.DEPART, ServiceId.CONTROL, 40001),
        (MessageType.DEPART, ServiceId.HEARTBEAT, 40002),
    }


def test_ready_offers_heartbeat_and_renews_control_only_when_it_was_offered_long_ago() -> None:
    """A 1.0.2 controller's `get_name` on the first CONTROL offer gives up after 5 s, for good: a
    satellite that took longer than `renew_after` to load departs CONTROL and offers it anew."""
    with _unicast_receiver() as rx:
        ports = {"cmd": 40001, "mon": 40003}
        fresh = EarlyOffer("Grp", "Sputnik.One", ["127.0.0.1"], ports, target=rx.getsockname())
        late = EarlyOffer("Grp", "Sputnik.Two", ["127.0.0.1"], ports, target=rx.getsockname())
        assert len([chirp.decode(rx.recv(64)) for _ in range(4)]) == 4
        fresh.ready(40002)  # just offered: HEARTBEAT only
        late.ready(40002, renew_after=0.0)
        got = [chirp.decode(rx.recv(64)) for _ in range(4)]
        rx.settimeout(0.2)
        with pytest.raises(TimeoutError):
            rx.recv(64)
        for early in (fresh, late):
            early.close()
    one, two = chirp.host_id("Sputnik.One"), chirp.host_id("Sputnik.Two")
    assert [(b.host_id, b.type, b.service, b.port) for b in got] == [
        (one, MessageType.OFFER, ServiceId.HEARTBEAT, 40002),
        (two, MessageType.OFFER, ServiceId.HEARTBEAT, 40002),
        (two, MessageType.DEPART, ServiceId.CONTROL, 40001),
        (two, MessageType.OFFER, ServiceId.CONTROL, 40001),
    ]


def test_early_offer_close_keeps_the_offers_standing() -> None:
    with _unicast_receiver() as rx:
        early = EarlyOffer("Grp", "Sputnik.One", ["127.0.0.1"], {"cmd": 1}, target=rx.getsockname())
        assert chirp.decode(rx.recv(64)).type is MessageType.OFFER
        early.close()
        early.withdraw()  # closed: sends nothing
        rx.settimeout(0.2)
        with pytest.raises(TimeoutError):
            rx.recv(64)


def test_lazy_exports_load_on_first_use_and_cache() -> None:
    import types

    pkg = types.ModuleType("lazy_pkg_under_test")
    sys.modules[pkg.__name__] = pkg
    try:
        getattr_, dir_ = lazy_exports(pkg.__name__, {"chirp": "protocols.chirp", "encode": "protocols.chirp"})
        assert getattr_("chirp") is chirp
        assert getattr_("encode") is chirp.encode
        assert vars(pkg)["encode"] is chirp.encode  # cached: the next lookup does not come here
        assert {"chirp", "encode"} <= set(dir_())
        with pytest.raises(AttributeError, match="has no attribute 'nope'"):
            getattr_("nope")
    finally:
        del sys.modules[pkg.__name__]


def test_package_exports_resolve() -> None:
    import constellation
    import constellation.discovery
    import protocols

    for module in (constellation, constellation.discovery, protocols):
        for name in module.__all__:
            assert getattr(module, name) is not None, (module.__name__, name)


ANNOUNCE_PHASE = """
import sys
from constellation import cli
parser, settings, explicit = cli._parse(["Sputnik", "-n", "One", "-g", "grp", "--bind", "127.0.0.1"])
import constellation.launch, constellation.discovery.interfaces
heavy = sorted(m for m in ("zmq", "asyncio", "msgpack", "psutil", "zeroconf", "importlib.metadata",
                           "satellites.sputnik", "constellation.satellite", "pkgutil", "typing")
               if m in sys.modules)
print(",".join(heavy) or "none")
"""


def test_announcing_phase_imports_only_the_standard_library_basics() -> None:
    """The budget behind 'seen within 0.1 s': everything up to the early OFFER stays this light."""
    out = subprocess.run([sys.executable, "-c", ANNOUNCE_PHASE], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "none"


def _free_again(ports: dict[str, int]) -> bool:
    """Every port can be bound again: no listener (ours or libzmq's) is left open on it."""
    for port in ports.values():
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                return False
    return True


def _settings(ports: dict[str, int]) -> cli.Settings:
    return cli.Settings(
        satellite_type="Sputnik", type_name="Sputnik", name="Leak", group="g", bind="127.0.0.1",
        discovery=(), cmd_port=ports["cmd"], hb_port=ports["hb"], mon_port=ports["mon"],
    )  # fmt: skip


class _RefusesToStart(Satellite):
    async def start(self) -> None:
        raise ServiceError("refused before binding")


class _HalfStarts(Satellite):
    async def start(self) -> None:
        await super().start()
        raise ServiceError("refused after binding")


class _BadInit(Satellite):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        raise ValueError("bad init")


@pytest.mark.parametrize("cls", [_RefusesToStart, _HalfStarts, _BadInit])
async def test_serve_closes_the_adopted_listeners_when_the_satellite_fails_to_come_up(cls: type) -> None:
    bound = Prebound("127.0.0.1", {})
    ports = dict(bound.ports)
    with pytest.raises((ServiceError, ValueError)):
        await cli.serve(_settings(ports), cls, listen_fds=bound.take())
    assert _free_again(ports)


async def test_adopted_listener_reports_its_own_port_whatever_port_was_asked() -> None:
    bound = Prebound("127.0.0.1", {})
    ports = dict(bound.ports)
    sat = Satellite("Own", "g", bind="127.0.0.1", discovery=(), listen_fds=bound.take(), hb_port=1)
    async with sat:
        assert sat.ports == ports  # the descriptor's port, not 0 (none asked) or 1 (another asked)


def _accepted_socket(peer: tuple[str, int]) -> socket.socket | None:
    """A duplicate of this process's accepted TCP socket whose peer is `peer` (libzmq's), or None."""
    for name in os.listdir("/proc/self/fd"):
        try:
            s = socket.socket(fileno=os.dup(int(name)))
        except OSError:
            continue
        try:
            if s.type == socket.SOCK_STREAM and s.getpeername() == peer:
                return s
        except OSError:
            pass
        s.close()
    return None


@pytest.mark.skipif(sys.platform != "linux", reason="/proc/self/fd")
async def test_a_connection_from_the_backlog_is_tuned_as_libzmq_tunes_its_own() -> None:
    """libzmq sets the per-connection options (TCP_NODELAY, keepalive) when it accepts, so a connection
    that waited in the pre-bound listener's backlog gets them as one made after the start does."""
    bound = Prebound("127.0.0.1", {})
    ports = dict(bound.ports)
    early = socket.create_connection(("127.0.0.1", ports["cmd"]), timeout=2)
    sat = Satellite("Tuned", "g", bind="127.0.0.1", discovery=(), listen_fds=bound.take())
    try:
        async with sat, asyncio.timeout(5):
            late = socket.create_connection(("127.0.0.1", ports["cmd"]), timeout=2)
            try:
                for client in (early, late):
                    peer = client.getsockname()
                    accepted = await eventually(functools.partial(_accepted_socket, peer))
                    assert accepted is not None
                    with accepted:
                        assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
                        assert accepted.getsockname() == ("127.0.0.1", ports["cmd"])
            finally:
                late.close()
    finally:
        early.close()


async def test_async_with_closes_the_adopted_listeners_when_start_fails_after_binding() -> None:
    bound = Prebound("127.0.0.1", {})
    ports = dict(bound.ports)
    sat = _HalfStarts("Half", "g", bind="127.0.0.1", discovery=(), listen_fds=bound.take())
    with pytest.raises(ServiceError, match="refused after binding"):
        async with sat:
            pytest.fail("started")
    assert _free_again(ports)


def test_exit_signals_held_then_raised_at_release_and_handlers_restored() -> None:
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    signals = ExitSignals()
    signals.hold()
    try:
        os.kill(os.getpid(), signal.SIGTERM)  # held: noted, nothing raised
        with pytest.raises(KeyboardInterrupt):
            signals.release()
        signals.release()  # raised once only
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)  # not held: at once (handled as kill returns)
    finally:
        signals.restore()
    assert {sig: signal.getsignal(sig) for sig in before} == before
