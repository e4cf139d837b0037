"""Discovery instances in one process, inside the private network namespace (loopback)."""

from __future__ import annotations

import asyncio
import functools
import os
import time
from collections.abc import Callable

import pytest
from zeroconf import IPVersion, ServiceStateChange
from zeroconf.asyncio import AsyncServiceInfo, AsyncZeroconf

from constellation.discovery import (
    Discovery,
    DiscoveryClosed,
    InvalidOffer,
    Service,
    UnknownInterface,
)
from protocols import chirp as wire
from protocols.chirp import Beacon, MessageType, ServiceId
from tests.discovery.conftest import MakeFn, SendFn, first
from tests.harness import eventually

pytestmark = [pytest.mark.netns, pytest.mark.timeout(60)]

LATENCY = 0.1  # the target: an already-listening process sees a new satellite within 0.1 s
BOTH = ("chirp", "zeroconf")


def _received_at_least(disc: Discovery, n: int) -> bool:
    return disc.counters.get("chirp.received", 0) >= n


def named(name: str) -> Callable[[Service], bool]:
    hid = wire.host_id(name)
    return lambda s: s.host_id == hid


@pytest.mark.parametrize("backends", [("chirp",), ("zeroconf",), BOTH])
async def test_listening_peer_sees_offer_within_100ms_and_depart_on_close(
    make: MakeFn, group: str, backends: tuple[str, ...]
) -> None:
    listener, rec = make(group, "Ctl.listener", backends=backends)
    await listener.start()
    sat, _ = make(group, "Sputnik.One", backends=backends)
    sat.offer(ServiceId.CONTROL, 4100)
    sat.offer(ServiceId.HEARTBEAT, 4101)
    t0 = time.monotonic()
    await sat.start()
    t_appear, _svc = await first(lambda: rec.first_appear(named("Sputnik.One")), timeout=5)
    latency = t_appear - t0
    assert latency < LATENCY, f"{backends}: seen after {latency * 1000:.1f} ms"
    await eventually(lambda: len(listener.services()) == 2, timeout=5)
    assert {(s.service, s.port, s.address) for s in listener.services()} == {
        (ServiceId.CONTROL, 4100, "127.0.0.1"),
        (ServiceId.HEARTBEAT, 4101, "127.0.0.1"),
    }
    control = listener.services(ServiceId.CONTROL)[0]
    assert control.endpoint == "tcp://127.0.0.1:4100"
    if "zeroconf" in backends:
        await eventually(lambda: listener.services(ServiceId.CONTROL)[0].name == "Sputnik.One")
    if backends == BOTH:  # deduplicated: one service seen on both backends, appeared once
        await eventually(lambda: all(s.backends == set(BOTH) for s in listener.services()))
        assert len([s for _, s in rec.appeared if s.service is ServiceId.CONTROL]) == 1
    # our own offers never show up in our own table
    assert sat.services() == [] or all(s.host_id != sat.host_id for s in sat.services())
    t0 = time.monotonic()
    await sat.aclose()
    await eventually(lambda: len(rec.departed) == 2, timeout=5)
    assert listener.services() == []
    assert rec.departed[-1][0] - t0 < 1.0
    assert len([s for _, s in rec.appeared if s.service is ServiceId.CONTROL]) == 1


@pytest.mark.parametrize("backends", [("chirp",), ("zeroconf",), BOTH])
async def test_new_listener_finds_existing_node(make: MakeFn, group: str, backends: tuple[str, ...]) -> None:
    sat, _ = make(group, "Sputnik.Old", backends=backends)
    sat.offer(ServiceId.CONTROL, 4200)
    await sat.start()
    listener, rec = make(group, "Ctl.new", backends=backends)
    listener.request(ServiceId.CONTROL)  # CHIRP REQUEST, sent at start; zeroconf browses anyway
    t0 = time.monotonic()
    await listener.start()
    t_appear, svc = await first(lambda: rec.first_appear(named("Sputnik.Old")), timeout=5)
    # CHIRP: the REQUEST is answered at once. zeroconf: a new browser's first query is delayed by
    # python-zeroconf itself by 20-120 ms (README-netns), so only CHIRP is held to the 0.1 s target.
    limit = LATENCY if "chirp" in backends else 0.5
    assert t_appear - t0 < limit, f"{backends}: found after {(t_appear - t0) * 1000:.1f} ms"
    assert svc.port == 4200


async def test_port_change_is_depart_plus_appear(make: MakeFn, group: str, chirp_sender: SendFn) -> None:
    listener, rec = make(group, "Ctl.l", backends=BOTH)
    await listener.start()
    sat, _ = make(group, "Sputnik.Mover", backends=BOTH)
    sat.offer(ServiceId.CONTROL, 4300)
    await sat.start()
    await first(lambda: rec.first_appear(named("Sputnik.Mover")))
    sat.offer(ServiceId.CONTROL, 4301)  # DEPART 4300 + OFFER 4301, zeroconf update
    await eventually(lambda: [s.port for s in listener.services()] == [4301])
    await first(lambda: rec.first_depart(lambda s: s.port == 4300))
    # a restart without DEPART (1.0.2 style): a raw OFFER with yet another port replaces the entry
    beacon = Beacon(MessageType.OFFER, wire.group_id(group), sat.host_id, ServiceId.CONTROL, 4302)
    chirp_sender(wire.encode(beacon))
    await first(lambda: rec.first_appear(lambda s: s.port == 4302))
    assert [s.port for s in listener.services()] == [4302]
    assert rec.first_depart(lambda s: s.port == 4301) is not None
    ports = [s.port for _, s in rec.appeared]
    assert ports.count(4300) == ports.count(4301) == ports.count(4302) == 1


async def test_withdraw_departs(make: MakeFn, group: str) -> None:
    listener, rec = make(group, "Ctl.w", backends=BOTH)
    await listener.start()
    sat, _ = make(group, "Sputnik.W", backends=BOTH)
    sat.offer(ServiceId.MONITORING, 4400)
    await sat.start()
    await eventually(lambda: listener.services(ServiceId.MONITORING))
    sat.withdraw(ServiceId.MONITORING)
    await eventually(lambda: rec.departed, timeout=5)
    assert listener.services() == []


@pytest.mark.parametrize("backends", [("chirp",), ("zeroconf",)])
async def test_group_isolation_and_case_insensitive_group(
    make: MakeFn, group: str, backends: tuple[str, ...]
) -> None:
    listener, rec = make(group.lower(), "Ctl.iso", backends=backends)
    await listener.start()
    other, _ = make(group + "x", "Sputnik.Other", backends=backends)
    other.offer(ServiceId.CONTROL, 4500)
    await other.start()
    same, _ = make(group.upper(), "Sputnik.Same", backends=backends)
    same.offer(ServiceId.CONTROL, 4501)
    await same.start()
    await first(lambda: rec.first_appear(named("Sputnik.Same")))
    # the other group's offer went out before ours: had it not been filtered, it would be here
    await eventually(lambda: listener.counters.get(f"{backends[0]}.other_group", 0) >= 1)
    assert [s.port for s in listener.services()] == [4501]


async def test_malformed_datagrams_leave_the_receiver_working(
    make: MakeFn,
    group: str,
    chirp_sender: SendFn,
) -> None:
    listener, rec = make(group, "Ctl.fuzz", backends=("chirp",))
    await listener.start()
    gid = wire.group_id(group)
    good = wire.encode(Beacon(MessageType.OFFER, gid, wire.host_id("X.y"), ServiceId.CONTROL, 4600))
    bad = [
        os.urandom(42),
        os.urandom(7),
        b"",
        b"CHIRP\x02" + good[6:],  # wrong version
        good[:11],  # 11 bytes
        good + b"\x00",  # 43 bytes
        good[:6] + b"\x09" + good[7:],  # bad type
        good[:39] + b"\x00" + good[40:],  # service 0 ("none")
        good[:39] + b"\x07" + good[40:],  # unknown service
        b"CHIRQ" + good[5:],  # bad magic
        good[:40] + b"\x00\x00",  # OFFER with port 0
    ]
    for data in bad:
        chirp_sender(data)
    await eventually(lambda: listener.counters.get("chirp.malformed", 0) >= len(bad), timeout=5)
    assert listener.services() == []
    sat, _ = make(group, "Sputnik.AfterFuzz", backends=("chirp",))
    sat.offer(ServiceId.CONTROL, 4601)
    await sat.start()
    await first(lambda: rec.first_appear(named("Sputnik.AfterFuzz")))
    # and our own answers to REQUESTs still work
    chirp_sender(wire.encode(Beacon(MessageType.REQUEST, gid, wire.host_id("Z.z"), ServiceId.CONTROL, 0)))
    await eventually(lambda: sat.counters.get("chirp.sent_offer", 0) >= 2)


async def test_malformed_zeroconf_records_are_ignored(make: MakeFn, group: str) -> None:
    listener, rec = make(group, "Ctl.zc", backends=("zeroconf",))
    await listener.start()
    azc = AsyncZeroconf(interfaces=["127.0.0.1"], ip_version=IPVersion.V4Only)
    try:
        bad_txts: list[dict[str | bytes, str | bytes | None]] = [
            {"group": group},  # no name
            {"name": "A.b"},  # no group
            {"group": group, "name": "A.c", "service": "HEARTBEAT"},  # wrong service for _cscp
            {b"group": group.encode(), b"name": b"\xff\xfe", b"service": b"CONTROL"},  # not UTF-8
        ]
        for i, txt in enumerate(bad_txts):
            info = AsyncServiceInfo(
                "_cscp._tcp.local.",
                f"bad{i}._cscp._tcp.local.",
                port=4700 + i,
                properties=txt,
                server=f"bad{i}.local.",
                parsed_addresses=["127.0.0.1"],
            )
            await azc.async_register_service(info, cooperating_responders=True)
        await eventually(lambda: listener.counters.get("zeroconf.malformed", 0) >= len(bad_txts), timeout=5)
        assert listener.services() == []
        sat, _ = make(group, "Sputnik.Z", backends=("zeroconf",))
        sat.offer(ServiceId.CONTROL, 4710)
        await sat.start()
        await first(lambda: rec.first_appear(named("Sputnik.Z")))
    finally:
        async with asyncio.timeout(5):
            await azc.async_close()


async def test_callback_errors_do_not_stop_discovery(make: MakeFn, group: str) -> None:
    calls: list[int] = []

    def explode(svc: object) -> None:
        calls.append(1)
        raise RuntimeError("callback bug")

    from constellation.discovery import Discovery

    listener = Discovery(group, "Ctl.cb", backends=("chirp",), interfaces=["lo"], on_appear=explode)
    async with listener:
        for i, name in enumerate(("S.a", "S.b")):
            sat, _ = make(group, name, backends=("chirp",))
            sat.offer(ServiceId.CONTROL, 4800 + i)
            await sat.start()
        await eventually(lambda: len(listener.services()) == 2)
        assert len(calls) == 2
        assert listener.counters["callback_errors"] == 2


async def test_api_errors(make: MakeFn, group: str) -> None:
    disc, _ = make(group, "Ctl.api", backends=("chirp",))
    with pytest.raises(InvalidOffer):
        disc.offer(ServiceId.CONTROL, 0)
    with pytest.raises(InvalidOffer):
        disc.offer(9, 4000)  # type: ignore[arg-type]
    await disc.start()
    with pytest.raises(DiscoveryClosed):
        await disc.start()
    await disc.aclose()
    await disc.aclose()  # idempotent
    with pytest.raises(DiscoveryClosed):
        disc.offer(ServiceId.CONTROL, 4000)
    bad, _ = make(group, "Ctl.bad", interfaces=["nosuchif0"])
    with pytest.raises(UnknownInterface, match="nosuchif0"):
        await bad.start()


async def test_no_threads_and_nothing_left_behind(make: MakeFn, group: str) -> None:
    import threading

    before = set(threading.enumerate())
    disc, _ = make(group, "Ctl.threads", backends=BOTH)
    disc.offer(ServiceId.CONTROL, 4900)
    await disc.start()
    assert set(threading.enumerate()) == before  # everything runs on this event loop
    await disc.aclose()
    await asyncio.sleep(0)
    names = {t.get_name() for t in asyncio.all_tasks()}
    assert not any(n.startswith("discovery-") for n in names), names


async def test_thousands_of_random_and_mutated_datagrams(
    make: MakeFn, group: str, chirp_sender: SendFn
) -> None:
    import random

    rng = random.Random(1234)
    listener, rec = make(group, "Ctl.bulk", backends=("chirp",))
    listener.offer(ServiceId.HEARTBEAT, 4950)
    await listener.start()
    gid = wire.group_id(group)
    good = wire.encode(Beacon(MessageType.OFFER, gid, wire.host_id("Q.q"), ServiceId.CONTROL, 4951))
    malformed = 0
    for i in range(3000):
        if i % 2:
            data = bytes(rng.getrandbits(8) for _ in range(rng.choice((0, 1, 6, 41, 42, 43, 200))))
        else:  # mutate one header byte of a valid beacon of our group: magic, version, type or service
            mutated = bytearray(good)
            pos = rng.choice((0, 4, 5, 6, 39))
            mutated[pos] = rng.choice([b for b in range(256) if b != good[pos]])
            data = bytes(mutated)
        try:
            wire.decode(data)
        except ValueError:
            malformed += 1
        chirp_sender(data)
        if i % 100 == 99:  # stay within the socket's receive buffer: wait until it has caught up
            await eventually(functools.partial(_received_at_least, listener, i + 1), timeout=5)
    assert listener.counters["chirp.malformed"] >= malformed
    sat, _ = make(group, "Sputnik.Bulk", backends=("chirp",))
    sat.offer(ServiceId.CONTROL, 4952)
    sat.request(ServiceId.HEARTBEAT)
    await sat.start()
    await first(lambda: rec.first_appear(named("Sputnik.Bulk")))
    # it still answers REQUESTs: the new node's HEARTBEAT request is answered with our offer
    await eventually(lambda: sat.services(ServiceId.HEARTBEAT))


async def test_zeroconf_resolves_instances_missing_from_the_cache(make: MakeFn, group: str) -> None:
    """An instance whose SRV/TXT/A are not cached (only its PTR arrived) is queried, not dropped."""
    from constellation.discovery.dnssd import DnssdBackend

    listener, rec = make(group, "Ctl.q", backends=("zeroconf",))
    await listener.start()
    sat, _ = make(group, "Sputnik.Q", backends=("zeroconf",))
    sat.offer(ServiceId.CONTROL, 4990)
    await sat.start()
    await first(lambda: rec.first_appear(named("Sputnik.Q")))
    backend = listener._backends[0]
    assert isinstance(backend, DnssdBackend)
    assert backend._azc is not None
    cache = backend._azc.zeroconf.cache
    fqdn = "Sputnik.Q@" + group.lower() + "._cscp._tcp.local."
    records = [*cache.async_entries_with_name(fqdn)]
    records += [
        r for srv in records if hasattr(srv, "server") for r in cache.async_entries_with_name(srv.server)
    ]
    assert records
    cache.async_remove_records(records)
    backend._forget(fqdn)  # as if only the PTR had been seen so far
    await eventually(lambda: rec.departed)
    backend._events.put_nowait(("_cscp._tcp.local.", fqdn, ServiceStateChange.Updated))
    await eventually(lambda: len(rec.appeared) == 2, timeout=5)
    assert rec.appeared[-1][1].port == 4990
    assert listener.counters.get("zeroconf.unresolved", 0) == 0
    assert listener.counters["zeroconf.queried"] == 1
