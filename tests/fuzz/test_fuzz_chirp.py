"""Fuzz CHIRP: malformed, random and mutated multicast datagrams never break the satellite's discovery.

Inputs (all on the namespace's loopback multicast route): every CHIRP input of the wire reference's
section 12 (a ``CHIRP\\x02`` beacon, an 11-byte datagram, unknown message types and service ids, in our
own group), other lengths and magics, thousands of random datagrams and of mutated beacons (other
groups), plus valid REQUESTs, DEPARTs of unknown hosts and OFFERs of non-heartbeat services in our group.
Between batches a CHIRP REQUEST must still be answered with our OFFER (1.0.2's CHIRP thread dies on the
first malformed datagram and never answers again); afterwards the satellite is healthy in ORBIT.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocols import chirp
from protocols.chirp import MessageType, ServiceId
from tests.fuzz.conftest import assert_healthy
from tests.fuzz.support import Chirper, Sat

pytestmark = [pytest.mark.netns, pytest.mark.timeout(120)]


@pytest.fixture(scope="module")
def chirper(orbiting: Sat):
    c = Chirper(orbiting.group)
    yield c
    c.close()


def _section12(c: Chirper) -> list[tuple[str, bytes]]:
    good = c.beacon(MessageType.REQUEST, ServiceId.CONTROL)
    return [
        ("CHIRP\\x02 beacon", b"CHIRP\x02" + good[6:]),
        ("11-byte datagram", good[:11]),
        *((f"type {t}", good[:6] + bytes([t]) + good[7:]) for t in (0, 4, 0x7F, 0xFF)),
        *((f"service {s}", good[:39] + bytes([s]) + good[40:]) for s in (0, 5, 0x80, 0xFF)),
        ("empty", b""),
        ("41 bytes", good[:41]),
        ("43 bytes", good + b"\x00"),
        ("1 KiB", good * 24 + b"x" * 16),
        ("60 KiB", random.Random(5).randbytes(60_000)),
        ("bad magic", b"CHIRQ" + good[5:]),
        ("lower-case magic", b"chirp" + good[5:]),
        ("version 0", b"CHIRP\x00" + good[6:]),
    ]


def test_section12_datagrams_do_not_stop_discovery(orbiting: Sat, chirper: Chirper) -> None:
    host = chirp.host_id(orbiting.name)
    assert chirper.request_offer(host, ServiceId.CONTROL)[0] == orbiting.cmd
    for label, data in _section12(chirper):
        for _ in range(5):
            chirper.send(data)
        port, _ = chirper.request_offer(host, ServiceId.CONTROL)
        assert port == orbiting.cmd, label
    assert chirper.request_offer(host, ServiceId.HEARTBEAT)[0] == orbiting.hb
    assert chirper.request_offer(host, ServiceId.MONITORING)[0] == orbiting.mon
    assert_healthy(orbiting)


def test_thousands_of_random_and_mutated_datagrams(orbiting: Sat, chirper: Chirper) -> None:
    rng = random.Random(42)
    host = chirp.host_id(orbiting.name)
    foreign = chirp.group_id("fuzz_elsewhere")
    sent = 0
    latencies = []
    for batch in range(20):
        for i in range(250):
            kind = (batch + i) % 6
            if kind == 0:  # random bytes of random length
                data = rng.randbytes(rng.choice([0, 1, 5, 6, 11, 41, 42, 42, 43, 100, 1500]))
            elif kind == 1:  # random 42-byte datagram with the right magic and version
                data = chirp.MAGIC + rng.randbytes(36)
            elif kind == 2:  # a valid beacon of another group with 1-3 flipped bytes
                b = bytearray(chirp.encode(chirp.Beacon(
                    rng.choice(list(MessageType)), foreign, rng.randbytes(16),
                    rng.choice(list(ServiceId)), rng.randint(0, 65535),
                )))  # fmt: skip
                for _ in range(rng.randint(1, 3)):
                    b[rng.randrange(42)] ^= rng.randint(1, 255)
                data = bytes(b)
            elif kind == 3:  # our group: a REQUEST for a random service, answered with OFFERs
                data = chirper.beacon(MessageType.REQUEST, rng.choice(list(ServiceId)))
            elif kind == 4:  # our group: DEPART of hosts nobody knows
                data = chirper.beacon(
                    MessageType.DEPART, rng.choice(list(ServiceId)), rng.randint(0, 65535), rng.randbytes(16)
                )
            else:  # our group: OFFERs of services that no one monitors (never HEARTBEAT, see §4.4)
                service = rng.choice([ServiceId.CONTROL, ServiceId.MONITORING, ServiceId.DATA])
                data = chirper.beacon(MessageType.OFFER, service, rng.randint(1, 65535), rng.randbytes(16))
            chirper.send(data)
            sent += 1
        port, seconds = chirper.request_offer(host, ServiceId.CONTROL)
        assert port == orbiting.cmd
        latencies.append(seconds)
    assert sent == 5000
    assert max(latencies) < 2.0
    assert_healthy(orbiting)


DATAGRAMS = st.one_of(
    st.binary(max_size=64),
    st.binary(min_size=36, max_size=36).map(lambda rest: chirp.MAGIC + rest),
    st.binary(min_size=42, max_size=42),
)
FUZZ = settings(deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])


def _send_one(orbiting: Sat, chirper: Chirper, data: bytes) -> None:
    """(Valid HEARTBEAT OFFERs in our group are left out: a never-beating heartbeat peer would rightly
    make our satellite interrupt itself, see §4.4.)"""
    try:
        b = chirp.decode(data)
        if (
            b.group_id == chirper.group_id
            and b.type is MessageType.OFFER
            and b.service is ServiceId.HEARTBEAT
        ):
            return
    except ValueError:
        pass
    chirper.send(data)
    assert orbiting.proc.popen.poll() is None


@settings(FUZZ, max_examples=2000)
@given(data=DATAGRAMS)
def test_hypothesis_datagrams(orbiting: Sat, chirper: Chirper, data: bytes) -> None:
    """Arbitrary datagrams, including arbitrary beacons in any group; the satellite keeps answering."""
    _send_one(orbiting, chirper, data)


@pytest.mark.slow
@pytest.mark.timeout(900)
@settings(FUZZ, max_examples=50_000)
@given(data=DATAGRAMS)
def test_hypothesis_datagrams_long(orbiting: Sat, chirper: Chirper, long_fuzz: None, data: bytes) -> None:
    _send_one(orbiting, chirper, data)


def test_healthy_after_hypothesis_datagrams(orbiting: Sat, chirper: Chirper) -> None:
    host = chirp.host_id(orbiting.name)
    assert chirper.request_offer(host, ServiceId.CONTROL)[0] == orbiting.cmd
    assert_healthy(orbiting)
