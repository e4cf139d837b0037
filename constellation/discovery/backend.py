"""The contract between ``Discovery`` and its backends."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from protocols.chirp import ServiceId


class Sink(Protocol):
    """Where a backend reports what it sees (``Discovery`` implements it)."""

    def seen(
        self, backend: str, host_id: bytes, service: ServiceId, address: str, port: int, name: str | None
    ) -> None: ...

    def gone(self, backend: str, host_id: bytes, service: ServiceId, port: int | None) -> None: ...

    def depart(self, host_id: bytes, service: ServiceId, port: int) -> None:
        """A CHIRP DEPART: the node itself says it leaves (every backend's view at ``port`` goes)."""


class Backend(Protocol):
    """A discovery mechanism. Every method is called from the event loop's thread."""

    name: str

    @property
    def counters(self) -> Mapping[str, int]: ...

    async def start(self) -> None:
        """Open sockets, announce the current offers, send the pending requests."""

    def offer(self, service: ServiceId, port: int, previous_port: int | None) -> None:
        """Announce ``service`` on ``port`` (replacing ``previous_port`` if given)."""

    def withdraw(self, service: ServiceId, port: int) -> None:
        """Stop announcing ``service`` (CHIRP DEPART / zeroconf goodbye)."""

    def request(self, service: ServiceId) -> None:
        """Ask peers to announce ``service`` now."""

    async def aclose(self) -> None:
        """Withdraw every offer and close; idempotent."""
