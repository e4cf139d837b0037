"""Discovered services and the merged, bounded service table (pure: no I/O).

Backends report what they see with ``seen``/``gone``; the table merges them so that one
``(host_id, service)`` seen over CHIRP and over zeroconf is one ``Service``. It appears once, and departs
when the last backend that reported it (with the same port) reports it gone. A report with a different
port for a known ``(host_id, service)`` replaces it: depart of the old, appear of the new (1.0.2 semantics).
"""

from __future__ import annotations

import dataclasses
import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum

from protocols.chirp import ServiceId

log = logging.getLogger(__name__)

CHIRP = "chirp"
ZEROCONF = "zeroconf"
BACKENDS = (CHIRP, ZEROCONF)


@dataclass(frozen=True, slots=True)
class Service:
    """One service of one remote node, as currently known."""

    host_id: bytes
    service: ServiceId
    address: str
    port: int
    name: str | None = None  # canonical name; zeroconf TXT carries it, CHIRP only the host id
    backends: frozenset[str] = frozenset()

    @property
    def endpoint(self) -> str:
        return f"tcp://{self.address}:{self.port}"

    @property
    def host_uuid(self) -> uuid.UUID:
        """The host id the way 1.0.2 shows it."""
        return uuid.UUID(bytes=self.host_id)

    @property
    def key(self) -> tuple[bytes, ServiceId]:
        return (self.host_id, self.service)


class Change(Enum):
    APPEAR = "appear"
    DEPART = "depart"


Event = tuple[Change, Service]


class ServiceTable:
    """Merged view of all backends; at most ``max_entries`` services (new ones beyond are dropped)."""

    def __init__(self, max_entries: int = 4096) -> None:
        self._max = max_entries
        self._entries: dict[tuple[bytes, ServiceId], Service] = {}
        self.dropped_full = 0

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[Service]:
        return iter(list(self._entries.values()))

    def snapshot(self, kind: ServiceId | None = None) -> list[Service]:
        return [s for s in self._entries.values() if kind is None or s.service == kind]

    def seen(
        self,
        backend: str,
        host_id: bytes,
        service: ServiceId,
        address: str,
        port: int,
        name: str | None = None,
    ) -> list[Event]:
        """``backend`` reports ``(host_id, service)`` reachable at ``address:port``."""
        key = (host_id, service)
        old = self._entries.get(key)
        if old is not None and old.port == port:
            if backend not in old.backends or (name is not None and old.name is None):
                # another backend confirms it, or we learn the canonical name: no new appearance
                self._entries[key] = dataclasses.replace(
                    old, backends=old.backends | {backend}, name=old.name or name
                )
            return []
        events: list[Event] = []
        if old is not None:
            log.debug("%s: %s moved from port %d to %d: replaced", backend, service.name, old.port, port)
            del self._entries[key]
            events.append((Change.DEPART, old))
        elif len(self._entries) >= self._max:
            self.dropped_full += 1
            log.debug("service table full (%d): dropping %s from %s", self._max, service.name, address)
            return events
        new = Service(host_id, service, address, port, name, frozenset({backend}))
        self._entries[key] = new
        events.append((Change.APPEAR, new))
        return events

    def gone(self, backend: str, host_id: bytes, service: ServiceId, port: int | None = None) -> list[Event]:
        """``backend`` no longer sees ``(host_id, service)`` (at ``port``, when given)."""
        key = (host_id, service)
        old = self._entries.get(key)
        if old is None or backend not in old.backends or (port is not None and port != old.port):
            return []
        remaining = old.backends - {backend}
        if remaining:
            self._entries[key] = dataclasses.replace(old, backends=remaining)
            return []
        del self._entries[key]
        return [(Change.DEPART, old)]

    def drop_backend(self, backend: str) -> list[Event]:
        """Forget everything ``backend`` reported (it stopped)."""
        events: list[Event] = []
        for svc in list(self._entries.values()):
            events.extend(self.gone(backend, svc.host_id, svc.service))
        return events
