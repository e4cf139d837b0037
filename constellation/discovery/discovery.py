"""``Discovery``: CHIRP and zeroconf composed behind one API, with one merged service table."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from types import TracebackType

from protocols import chirp as wire
from protocols.chirp import ServiceId

from .backend import Backend
from .chirp import ChirpBackend
from .dnssd import DEFAULT_TTL, DnssdBackend
from .errors import DiscoveryClosed, InvalidOffer, UnknownBackend
from .interfaces import select_addresses
from .service import BACKENDS, CHIRP, Change, Event, Service, ServiceTable

log = logging.getLogger(__name__)

Callback = Callable[[Service], None]


class Discovery:
    """Announce our services and track the group's services, over CHIRP and/or zeroconf.

    Callbacks run on the event loop, one at a time, in the order things were seen; an exception in a
    callback is logged and does not affect discovery. ``aclose()`` withdraws every offer (CHIRP DEPART,
    zeroconf goodbye) and does not call ``on_depart`` for the services still known.
    """

    def __init__(
        self,
        group: str,
        canonical_name: str,
        *,
        backends: Sequence[str] = BACKENDS,
        interfaces: Sequence[str] | None = None,
        on_appear: Callback | None = None,
        on_depart: Callback | None = None,
        max_services: int = 4096,
        zeroconf_ttl: int = DEFAULT_TTL,
    ) -> None:
        if isinstance(backends, str):
            backends = (backends,)
        unknown = [b for b in backends if b not in BACKENDS]
        if unknown or not backends:
            raise UnknownBackend(f"unknown discovery backend(s) {unknown}; choose from {list(BACKENDS)}")
        if not group:
            raise ValueError("group must not be empty")
        self.group = group
        self.canonical_name = canonical_name
        self.group_id = wire.group_id(group)
        self.host_id = wire.host_id(canonical_name)
        self._backend_names = tuple(dict.fromkeys(backends))
        self._interfaces = None if interfaces is None else tuple(interfaces)
        self._on_appear = on_appear
        self._on_depart = on_depart
        self._zeroconf_ttl = zeroconf_ttl
        self._table = ServiceTable(max_services)
        self._offers: dict[ServiceId, int] = {}
        self._requests: list[ServiceId] = []
        self._backends: list[Backend] = []
        self._addresses: tuple[str, ...] = ()
        self._state = "new"  # new -> started -> closed
        self._callback_errors = 0

    # -- lifecycle ----------------------------------------------------------------------------------

    async def start(self) -> None:
        if self._state != "new":
            raise DiscoveryClosed(f"Discovery already {self._state}")
        self._state = "started"
        self._addresses = select_addresses(self._interfaces)
        try:
            for name in self._backend_names:
                backend: Backend
                if name == CHIRP:
                    backend = ChirpBackend(
                        self.group_id,
                        self.host_id,
                        self._addresses,
                        self,
                        offers=self._offers,
                        requests=self._requests,
                    )
                else:
                    backend = DnssdBackend(
                        self.group,
                        self.canonical_name,
                        self._addresses,
                        self,
                        offers=self._offers,
                        ttl=self._zeroconf_ttl,
                    )
                self._backends.append(backend)
                await backend.start()
        except BaseException:
            await self.aclose()
            raise
        self._requests.clear()
        log.debug("discovery for %s in group %s on %s", self.canonical_name, self.group, self._addresses)

    async def aclose(self) -> None:
        """Withdraw every offer and close every backend; idempotent."""
        if self._state == "closed":
            return
        self._state = "closed"
        for backend in self._backends:
            try:
                await backend.aclose()
            except Exception:
                log.exception("error while closing discovery backend %s", backend.name)

    async def __aenter__(self) -> Discovery:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    # -- what we announce ---------------------------------------------------------------------------

    def offer(self, service: ServiceId, port: int) -> None:
        """Announce ``service`` on TCP ``port`` (now if started, else at start)."""
        self._check_open()
        service = _service_id(service)
        if not 1 <= port <= 65535:
            raise InvalidOffer(f"port must be in 1..65535, got {port}")
        previous = self._offers.get(service)
        if previous == port:
            return
        self._offers[service] = port
        for backend in self._backends:
            backend.offer(service, port, previous)

    def withdraw(self, service: ServiceId) -> None:
        """Stop announcing ``service`` (CHIRP DEPART, zeroconf goodbye). Unknown services are ignored."""
        self._check_open()
        service = _service_id(service)
        port = self._offers.pop(service, None)
        if port is not None:
            for backend in self._backends:
                backend.withdraw(service, port)

    def request(self, service: ServiceId) -> None:
        """Ask the group to announce ``service`` (CHIRP REQUEST; sent at start if not started yet)."""
        self._check_open()
        service = _service_id(service)
        if self._state == "new":
            self._requests.append(service)
        for backend in self._backends:
            backend.request(service)

    @property
    def offers(self) -> Mapping[ServiceId, int]:
        return dict(self._offers)

    # -- what we see --------------------------------------------------------------------------------

    def services(self, kind: ServiceId | None = None) -> list[Service]:
        """Snapshot of the services currently known (of one kind, if given)."""
        return self._table.snapshot(kind)

    @property
    def addresses(self) -> tuple[str, ...]:
        """The interface addresses in use (after ``start``)."""
        return self._addresses

    @property
    def counters(self) -> dict[str, int]:
        """Dropped/received input and sent beacons, per backend (``chirp.malformed``, ...)."""
        total: Counter[str] = Counter()
        for backend in self._backends:
            total.update({f"{backend.name}.{k}": v for k, v in backend.counters.items()})
        total["table.dropped_full"] = self._table.dropped_full
        total["table.held_departed"] = self._table.held_departed
        total["callback_errors"] = self._callback_errors
        return dict(total)

    # -- Sink (called by backends) ------------------------------------------------------------------

    def seen(
        self, backend: str, host_id: bytes, service: ServiceId, address: str, port: int, name: str | None
    ) -> None:
        if self._state == "started":
            self._dispatch(self._table.seen(backend, host_id, service, address, port, name))

    def gone(self, backend: str, host_id: bytes, service: ServiceId, port: int | None) -> None:
        if self._state == "started":
            self._dispatch(self._table.gone(backend, host_id, service, port))

    def depart(self, host_id: bytes, service: ServiceId, port: int) -> None:
        if self._state == "started":
            self._dispatch(self._table.depart(host_id, service, port))

    def _dispatch(self, events: list[Event]) -> None:
        for change, svc in events:
            callback = self._on_appear if change is Change.APPEAR else self._on_depart
            log.debug(
                "%s %s %s at %s (%s)",
                change.value,
                svc.name or svc.host_uuid,
                svc.service.name,
                svc.endpoint,
                ",".join(sorted(svc.backends)),
            )
            if callback is None:
                continue
            try:
                callback(svc)
            except Exception:
                self._callback_errors += 1
                log.exception("discovery %s callback failed for %s", change.value, svc)

    def _check_open(self) -> None:
        if self._state == "closed":
            raise DiscoveryClosed("Discovery is closed")


def _service_id(service: ServiceId | int) -> ServiceId:
    try:
        return ServiceId(service)
    except ValueError:
        raise InvalidOffer(f"unknown service id {service!r}") from None
