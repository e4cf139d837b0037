"""Fixtures for controller tests: a started Controller on loopback, closed at teardown, and its history."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from controllers import Controller, Liveness
from protocols import State

MakeCtl = Callable[..., Controller]


class History:
    """Every distinct (satellite, state) the controller reported, in order (from its on_change hook)."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, State]] = []
        self.last: dict[str, State] = {}
        self.ctl: Controller | None = None

    def record(self) -> None:
        assert self.ctl is not None
        for name, state in self.ctl.states.items():
            if self.last.get(name) is not state:
                self.last[name] = state
                self.seen.append((name, state))

    def of(self, name: str) -> list[State]:
        return [s for n, s in self.seen if n == name]


@pytest.fixture
async def make_ctl(group: str) -> AsyncIterator[Callable[..., tuple[Controller, History]]]:
    """make_ctl(**kw) -> (started Controller in ``group`` on lo, History); closed at teardown."""
    made: list[Controller] = []

    async def make(**kw: object) -> tuple[Controller, History]:
        history = History()
        kw.setdefault("interfaces", ["lo"])
        kw.setdefault("liveness", Liveness())
        ctl = Controller(group, on_change=history.record, **kw)  # type: ignore[arg-type]
        history.ctl = ctl
        made.append(ctl)
        await ctl.start()
        return ctl, history

    yield make  # type: ignore[misc]
    async with asyncio.timeout(10):
        for ctl in made:
            await ctl.aclose()


@pytest.fixture
def mariner(cdaq_python: Path, spawn: Callable[..., object], group: str) -> Callable[[str], object]:
    """mariner(NAME) starts a real 1.0.2 SatelliteMariner in the test's group on loopback."""

    def start(name: str) -> object:
        return spawn(str(cdaq_python.with_name("SatelliteMariner")), "-g", group, "-n", name, "-i", "lo")

    return start


READY = r"^READY (?P<name>\S+) cmd=(?P<cmd>\d+) hb=(?P<hb>\d+) mon=(?P<mon>\d+)"


@pytest.fixture
def sputnik(spawn: Callable[..., object], group: str) -> Callable[[str], object]:
    """sputnik(NAME): our ``satellite-run Sputnik`` in the test's group on loopback, after its ready line."""
    import sys

    def start(name: str) -> object:
        argv = [sys.executable, "-m", "constellation", "Sputnik", "-n", name, "-g", group, "-i", "lo"]
        return spawn(*argv, ready=READY, timeout=20)

    return start
