"""Fixtures for discovery tests: Discovery instances closed at teardown, event recorders, raw CHIRP."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field

import pytest

from constellation.discovery import Discovery, Service
from protocols import chirp as wire
from tests.harness import eventually


@dataclass
class Recorder:
    """Collects appear/depart events with their monotonic time."""

    appeared: list[tuple[float, Service]] = field(default_factory=list)
    departed: list[tuple[float, Service]] = field(default_factory=list)

    def appear(self, svc: Service) -> None:
        self.appeared.append((time.monotonic(), svc))

    def depart(self, svc: Service) -> None:
        self.departed.append((time.monotonic(), svc))

    def first_appear(self, pred: Callable[[Service], bool]) -> tuple[float, Service] | None:
        return next(((t, s) for t, s in self.appeared if pred(s)), None)

    def first_depart(self, pred: Callable[[Service], bool]) -> tuple[float, Service] | None:
        return next(((t, s) for t, s in self.departed if pred(s)), None)


MakeFn = Callable[..., tuple[Discovery, Recorder]]
SendFn = Callable[[bytes], None]


async def first(
    find: Callable[[], tuple[float, Service] | None], timeout: float = 5.0
) -> tuple[float, Service]:
    """``eventually(find)`` for a Recorder lookup, typed as found (a timeout raises)."""
    found = await eventually(find, timeout)
    assert found is not None
    return found


def _from_others(disc: Discovery) -> int:
    counts = disc.counters
    return counts.get("chirp.received", 0) - counts.get("chirp.own", 0)


async def chirp_fence(disc: Discovery, service: wire.ServiceId = wire.ServiceId.CONTROL) -> None:
    """REQUEST `service` and wait until a beacon of another node has arrived since (its OFFER in reply).

    A fence for "nothing happens": what other nodes sent before the REQUEST arrived before that reply,
    so a departure or a beacon that should not come would have been seen by then."""
    before = _from_others(disc)
    disc.request(service)
    await eventually(lambda: _from_others(disc) > before, 5)


@pytest.fixture
async def make() -> AsyncIterator[MakeFn]:
    """make(group, name, **kw) -> (Discovery not yet started, Recorder); every one is closed at teardown."""
    made: list[Discovery] = []

    def _make(group: str, name: str, **kw: object) -> tuple[Discovery, Recorder]:
        rec = Recorder()
        kw.setdefault("interfaces", ["lo"])
        disc = Discovery(group, name, on_appear=rec.appear, on_depart=rec.depart, **kw)  # type: ignore[arg-type]
        made.append(disc)
        return disc, rec

    yield _make
    async with asyncio.timeout(10):
        for disc in reversed(made):
            await disc.aclose()


@pytest.fixture
def chirp_sender() -> Iterator[SendFn]:
    """send(datagram) to 239.192.7.123:7123 on loopback, like any other node would."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton("127.0.0.1"))
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 1)

    def send(data: bytes) -> None:
        sock.sendto(data, (wire.MULTICAST_ADDRESS, wire.PORT))

    yield send
    sock.close()
