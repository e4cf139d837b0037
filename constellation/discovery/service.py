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
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum

from protocols.chirp import ServiceId

log = logging.getLogger(__name__)

CHIRP = "chirp"
ZEROCONF = "zeroconf"
BACKENDS = (CHIRP, ZEROCONF)
MAX_DEPARTED = 1024  # CHIRP DEPARTs remembered to hold back late reports of the same port (oldest go first)


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


@dataclass(frozen=True, slots=True)
class _View:
    """What one backend last reported for one (host_id, service)."""

    address: str
    port: int
    name: str | None


@dataclass(slots=True)
class _Entry:
    views: dict[str, _View]
    current: Service | None = None


@dataclass(slots=True)
class _Departed:
    """A CHIRP DEPART for one (host_id, service): reports of other backends at ``port`` are held back."""

    port: int
    held: dict[str, _View]


class ServiceTable:
    """Merged view of all backends; at most ``max_entries`` services (new ones beyond are dropped).

    Each backend's last report is kept per ``(host_id, service)``. A backend reporting a port that differs
    from the current one replaces the service only if that backend itself saw the port change (so a
    stale cache of one backend cannot flip a service back and forth); when the current service departs,
    another backend's differing report, if any, appears in its place.
    """

    def __init__(self, max_entries: int = 4096) -> None:
        self._max = max_entries
        self._entries: dict[tuple[bytes, ServiceId], _Entry] = {}
        self._departed: OrderedDict[tuple[bytes, ServiceId], _Departed] = OrderedDict()
        self.dropped_full = 0
        self.held_departed = 0  # reports held back because the node had sent a CHIRP DEPART for that port

    def __len__(self) -> int:
        return sum(1 for e in self._entries.values() if e.current is not None)

    def __iter__(self) -> Iterator[Service]:
        return iter(self.snapshot())

    def snapshot(self, kind: ServiceId | None = None) -> list[Service]:
        return [
            e.current
            for e in self._entries.values()
            if e.current is not None and (kind is None or e.current.service == kind)
        ]

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
        departed = self._departed.get(key)
        if departed is not None:
            if backend != CHIRP and port == departed.port:
                # a late report (a delayed zeroconf answer or resolve) of a node that said it left
                departed.held[backend] = _View(address, port, name)
                self.held_departed += 1
                log.debug("%s: %s at port %d held back: CHIRP DEPART seen", backend, service.name, port)
                return []
            del self._departed[key]  # a CHIRP OFFER, or another port: a new incarnation
            events = self._seen(backend, host_id, service, address, port, name)
            for other, view in departed.held.items():
                if other != backend and view.port == port:
                    events += self._seen(other, host_id, service, view.address, view.port, view.name)
            return events
        return self._seen(backend, host_id, service, address, port, name)

    def _seen(
        self, backend: str, host_id: bytes, service: ServiceId, address: str, port: int, name: str | None
    ) -> list[Event]:
        key = (host_id, service)
        entry = self._entries.get(key)
        if entry is None:
            if len(self._entries) >= self._max:
                self.dropped_full += 1
                log.debug("service table full (%d): dropping %s from %s", self._max, service.name, address)
                return []
            entry = self._entries[key] = _Entry({})
        previous = entry.views.get(backend)
        entry.views[backend] = _View(address, port, name)
        current = entry.current
        if current is not None and current.port == port:
            if backend not in current.backends or (name is not None and current.name is None):
                # another backend confirms it, or we learn the canonical name: no new appearance
                entry.current = dataclasses.replace(
                    current, backends=current.backends | {backend}, name=current.name or name
                )
            return []
        if current is not None and (previous is None or previous.port == port):
            return []  # a first or repeated report that disagrees: keep the current one
        events: list[Event] = []
        if current is not None:
            log.debug("%s: %s moved from port %d to %d: replaced", backend, service.name, current.port, port)
            events.append((Change.DEPART, current))
        entry.current = self._build(host_id, service, entry, port)
        events.append((Change.APPEAR, entry.current))
        return events

    def gone(self, backend: str, host_id: bytes, service: ServiceId, port: int | None = None) -> list[Event]:
        """``backend`` no longer sees ``(host_id, service)`` (at ``port``, when given)."""
        key = (host_id, service)
        departed = self._departed.get(key)
        if departed is not None and (port is None or port == departed.port):
            departed.held.pop(backend, None)
        entry = self._entries.get(key)
        if entry is None:
            return []
        view = entry.views.get(backend)
        if view is None or (port is not None and port != view.port):
            return []
        del entry.views[backend]
        current = entry.current
        events: list[Event] = []
        if current is not None and backend in current.backends:
            remaining = current.backends - {backend}
            if remaining:
                entry.current = dataclasses.replace(current, backends=remaining)
                return []
            events.append((Change.DEPART, current))
            entry.current = None
            if entry.views:  # another backend knows it at another port: that one is now current
                newest = next(reversed(entry.views.values()))
                entry.current = self._build(host_id, service, entry, newest.port)
                events.append((Change.APPEAR, entry.current))
        if not entry.views:
            del self._entries[key]
        return events

    def depart(self, host_id: bytes, service: ServiceId, port: int) -> list[Event]:
        """A CHIRP DEPART: the node leaves on purpose, so every backend's view of it at ``port`` goes.

        It counts only when CHIRP knows the service at ``port``. Until CHIRP offers the service again
        (or another backend reports another port), reports of other backends at ``port`` are held back:
        a zeroconf answer or resolve that was under way when the node left must not bring it back.
        """
        key = (host_id, service)
        entry = self._entries.get(key)
        view = entry.views.get(CHIRP) if entry is not None else None
        if entry is None or view is None or view.port != port:
            return []
        self._departed[key] = _Departed(port, {})
        self._departed.move_to_end(key)
        while len(self._departed) > MAX_DEPARTED:
            self._departed.popitem(last=False)
        events = self.gone(CHIRP, host_id, service, port)
        for backend in [b for b, v in entry.views.items() if v.port == port]:
            events += self.gone(backend, host_id, service, port)
        return events

    def drop_backend(self, backend: str) -> list[Event]:
        """Forget everything ``backend`` reported (it stopped)."""
        events: list[Event] = []
        for host_id, service in list(self._entries):
            events.extend(self.gone(backend, host_id, service))
        return events

    @staticmethod
    def _build(host_id: bytes, service: ServiceId, entry: _Entry, port: int) -> Service:
        agreeing = {b: v for b, v in entry.views.items() if v.port == port}
        first = next(iter(agreeing.values()))
        name = next((v.name for v in agreeing.values() if v.name), None)
        return Service(host_id, service, first.address, port, name, frozenset(agreeing))
