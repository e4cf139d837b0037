"""Fixtures for the peer-monitor tests: a started PeerMonitor fed by CHIRP discovery, event recorder."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import pytest

from constellation.discovery import Discovery
from constellation.peers import EventKind, MonitorSettings, PeerEvent, PeerMonitor
from protocols.chirp import ServiceId
from tests.harness import Proc, WaitTimeout, eventually


@dataclass
class Events:
    """Every PeerEvent, in order."""

    seen: list[PeerEvent] = field(default_factory=list)

    def __call__(self, event: PeerEvent) -> None:
        self.seen.append(event)

    def of(self, name: str, kind: EventKind | None = None) -> list[PeerEvent]:
        return [
            e for e in self.seen if e.name.casefold() == name.casefold() and (kind is None or e.kind is kind)
        ]

    def of_kind(self, kind: EventKind) -> list[PeerEvent]:
        return [e for e in self.seen if e.kind is kind]

    async def first(self, name: str, kind: EventKind, timeout: float = 5.0) -> PeerEvent:
        try:
            found = await eventually(lambda: self.of(name, kind), timeout=timeout)
        except WaitTimeout:
            raise WaitTimeout(f"no {kind.name} for {name} within {timeout}s; events: {self.seen}") from None
        return found[0]


@dataclass
class Watching:
    monitor: PeerMonitor
    events: Events
    discovery: Discovery


Factory = Callable[..., "asyncio.Future[Watching]"]


@pytest.fixture
async def watching(group: str) -> AsyncIterator[Callable[..., object]]:
    """await watching(settings=None) -> Watching: a PeerMonitor discovering `group` on loopback."""
    made: list[Watching] = []

    async def make(
        settings: MonitorSettings | None = None, name: str = "Test.Monitor", backends: str = "chirp"
    ) -> Watching:
        events = Events()
        monitor = PeerMonitor(name, settings=settings, on_event=events)
        await monitor.start()
        disc = Discovery(
            group,
            name,
            backends=backends.split(","),
            interfaces=["lo"],
            on_appear=monitor.service_appeared,
            on_depart=monitor.service_departed,
        )
        disc.request(ServiceId.HEARTBEAT)
        w = Watching(monitor, events, disc)
        made.append(w)
        await disc.start()
        return w

    yield make
    async with asyncio.timeout(10):
        for w in reversed(made):
            await w.discovery.aclose()
            await w.monitor.aclose()


def hbnode(spawn: Callable[..., Proc], group: str, name: str, *extra: str, host: int | None = None) -> Proc:
    """Start a raw heartbeat publisher (tests/peers/hbnode.py); returns once it beats."""
    argv = [sys.executable, "-m", "tests.peers.hbnode", group, name, *extra]
    return spawn(*argv, ready=r"READY hb=(\d+)", timeout=20, host=host)
