"""zeroconf / DNS-SD backend (python-zeroconf asyncio API, on the caller's event loop: no threads).

One DNS-SD service type per Constellation service (``SERVICE_TYPES``). The instance name is
``<canonical name>@<group, lower-cased>`` (hashed when longer than 63 bytes); TXT records carry ``group``,
``name`` (canonical name), ``service`` (CONTROL, ...), ``protocol`` (CSCP1, ...) and ``txtvers``.
Registration uses ``cooperating_responders=True`` (no 1.2 s probing), browsing uses QM questions (several
instances may share one network namespace), and both are restricted to the selected interface addresses.
A service departs on a goodbye (unregister) and when its records expire (TTL, ``ttl`` seconds).
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import logging
import secrets
from collections import Counter
from collections.abc import Mapping, Sequence

from zeroconf import DNSQuestionType, IPVersion, ServiceStateChange, Zeroconf
from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo, AsyncZeroconf

from protocols import chirp as wire
from protocols.chirp import ServiceId

from .backend import Sink
from .errors import DiscoveryError
from .service import ZEROCONF

log = logging.getLogger(__name__)

SERVICE_TYPES: Mapping[ServiceId, str] = {
    ServiceId.CONTROL: "_cscp._tcp.local.",
    ServiceId.HEARTBEAT: "_chp._tcp.local.",
    ServiceId.MONITORING: "_cmdp._tcp.local.",
    ServiceId.DATA: "_cdtp._tcp.local.",
}
PROTOCOLS: Mapping[ServiceId, str] = {
    ServiceId.CONTROL: "CSCP1",
    ServiceId.HEARTBEAT: "CHP1",
    ServiceId.MONITORING: "CMDP1",
    ServiceId.DATA: "CDTP2",
}
_BY_TYPE = {t: s for s, t in SERVICE_TYPES.items()}
TXT_VERSION = "1"
DEFAULT_TTL = 120  # seconds, for every record we publish (python-zeroconf's PTR default is 75 min)
RESOLVE_TIMEOUT_MS = 1500
EXPIRY_CHECK_S = 2.0  # how often known instances are checked for expired records
MAX_EVENTS = 1024
MAX_NAMES = 4096
MAX_QUERIES = 64  # concurrent resolutions of instances whose records are not cached yet


def instance_name(canonical_name: str, group: str) -> str:
    """DNS-SD instance label for a node: readable when it fits in 63 bytes, hashed otherwise."""
    label = f"{canonical_name}@{group.lower()}"
    if len(label.encode()) <= 63:
        return label
    return f"{wire.host_id(canonical_name).hex()[:20]}@{wire.group_id(group).hex()[:20]}"


def txt_record(group: str, canonical_name: str, service: ServiceId, run: str | None = None) -> dict[str, str]:
    """The TXT record of one service. ``run`` makes each registration's packets unique (see ``_info``)."""
    txt = {
        "txtvers": TXT_VERSION,
        "group": group,
        "name": canonical_name,
        "service": service.name,
        "protocol": PROTOCOLS[service],
    }
    if run is not None:
        txt["run"] = run
    return txt


def pick_address(addresses: Sequence[str]) -> str | None:
    """The address a peer should connect to: the first non-loopback IPv4 one, else loopback."""
    v4 = [a for a in addresses if ipaddress.ip_address(a).version == 4]
    routable = [a for a in v4 if not ipaddress.ip_address(a).is_loopback]
    for candidate in (routable, v4):
        if candidate:
            return candidate[0]
    return None


class _Malformed(Exception):
    """A DNS-SD record that is not a valid Constellation announcement (internal; counted, never raised)."""


class DnssdBackend:
    """Registers our offers and browses the four Constellation service types."""

    name = ZEROCONF

    def __init__(
        self,
        group: str,
        canonical_name: str,
        addresses: Sequence[str],
        sink: Sink,
        *,
        offers: Mapping[ServiceId, int] | None = None,
        ttl: int = DEFAULT_TTL,
    ) -> None:
        self._group = group
        self._group_id = wire.group_id(group)
        self._canonical = canonical_name
        self._host_id = wire.host_id(canonical_name)
        self._addresses = tuple(addresses)
        self._sink = sink
        self._ttl = ttl
        self._offers: dict[ServiceId, int] = dict(offers or {})
        self._registered: dict[ServiceId, AsyncServiceInfo] = {}
        self._azc: AsyncZeroconf | None = None
        self._browser: AsyncServiceBrowser | None = None
        self._events: asyncio.Queue[tuple[str, str, ServiceStateChange]] = asyncio.Queue(MAX_EVENTS)
        self._ops: asyncio.Queue[tuple[ServiceId, int | None]] = asyncio.Queue()
        self._known: dict[str, tuple[bytes, ServiceId, int]] = {}  # instance fqdn -> what we reported
        self._expired: dict[str, str] = {}  # instance fqdn -> service type, departed by expiry (bounded)
        self._tasks: list[asyncio.Task[None]] = []
        self._queries: dict[str, asyncio.Task[None]] = {}  # instance fqdn -> resolution in flight
        self._counters: Counter[str] = Counter()
        self._closed = False

    @property
    def counters(self) -> Mapping[str, int]:
        return dict(self._counters)

    async def start(self) -> None:
        try:
            self._azc = AsyncZeroconf(interfaces=list(self._addresses), ip_version=IPVersion.V4Only)
        except OSError as exc:
            raise DiscoveryError(f"cannot open mDNS sockets on {', '.join(self._addresses)}: {exc}") from exc
        self._browser = AsyncServiceBrowser(
            self._azc.zeroconf,
            list(SERVICE_TYPES.values()),
            handlers=[self._on_change],
            question_type=DNSQuestionType.QM,
        )
        for service, port in self._offers.items():
            await self._register(service, port)
        self._tasks = [
            asyncio.create_task(self._resolve_loop(), name="discovery-zeroconf-resolve"),
            asyncio.create_task(self._register_loop(), name="discovery-zeroconf-register"),
            asyncio.create_task(self._expiry_loop(), name="discovery-zeroconf-expiry"),
        ]

    def offer(self, service: ServiceId, port: int, previous_port: int | None) -> None:
        self._offers[service] = port
        if self._azc is not None:
            self._ops.put_nowait((service, port))

    def withdraw(self, service: ServiceId, port: int) -> None:
        self._offers.pop(service, None)
        if self._azc is not None:
            self._ops.put_nowait((service, None))

    def request(self, service: ServiceId) -> None:
        """Browsing is continuous; nothing to send."""

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        tasks = [*self._tasks, *self._queries.values()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._browser is not None:
            await self._browser.async_cancel()
        if self._azc is not None:
            if self._registered:
                waits = [await self._azc.async_unregister_service(i) for i in self._registered.values()]
                self._registered.clear()
                # the first goodbye goes out at once; the rest follow within about 250 ms
                await asyncio.gather(*waits, return_exceptions=True)
            await self._azc.async_close()

    # -- registration -------------------------------------------------------------------------------

    def _info(self, service: ServiceId, port: int) -> AsyncServiceInfo:
        """A fresh registration, with a random TXT ``run`` (docs/discovery.md, "Quick restarts").

        python-zeroconf drops a packet identical to one received in the last 800 ms. Without ``run``, a
        node restarted under the same name and ports sends announcements and goodbyes identical to its
        previous run's, and observers silently ignored them.
        """
        type_ = SERVICE_TYPES[service]
        server = f"cnstln-{self._host_id.hex()[:16]}-{self._group_id.hex()[:8]}.local."
        return AsyncServiceInfo(
            type_,
            f"{instance_name(self._canonical, self._group)}.{type_}",
            port=port,
            properties=txt_record(self._group, self._canonical, service, secrets.token_hex(4)),
            server=server,
            host_ttl=self._ttl,
            other_ttl=self._ttl,
            parsed_addresses=list(self._addresses),
        )

    async def _register(self, service: ServiceId, port: int | None) -> None:
        assert self._azc is not None
        old = self._registered.pop(service, None)
        if port is None:
            if old is not None:
                await self._azc.async_unregister_service(old)
            return
        info = self._info(service, port)
        if old is not None:
            await self._azc.async_update_service(info)
        else:
            await self._azc.async_register_service(info, cooperating_responders=True)
        self._registered[service] = info

    async def _register_loop(self) -> None:
        while True:
            service, port = await self._ops.get()
            try:
                await self._register(service, port)
            except Exception:
                log.exception("zeroconf: cannot (un)register %s", service.name)

    # -- browsing -----------------------------------------------------------------------------------

    def _on_change(
        self, zeroconf: Zeroconf, service_type: str, name: str, state_change: ServiceStateChange
    ) -> None:
        try:
            self._events.put_nowait((service_type, name, state_change))
        except asyncio.QueueFull:
            self._counters["dropped_events"] += 1

    async def _resolve_loop(self) -> None:
        """Handle browser events in order; records not yet in the cache are queried concurrently."""
        while True:
            service_type, name, change = await self._events.get()
            try:
                if change is ServiceStateChange.Removed:
                    self._counters["removed"] += 1  # a goodbye (or an expired PTR) handled
                    query = self._queries.pop(name, None)
                    if query is not None:
                        query.cancel()
                    self._forget(name)
                    continue
                assert self._azc is not None
                info = AsyncServiceInfo(service_type, name)
                if info.load_from_cache(self._azc.zeroconf):
                    self._accept(service_type, name, info)
                elif name not in self._queries:
                    if len(self._queries) >= MAX_QUERIES:
                        self._counters["dropped_queries"] += 1
                        continue
                    task = asyncio.create_task(self._query(service_type, name, info))
                    self._queries[name] = task
                    task.add_done_callback(functools.partial(self._query_done, name))
            except Exception:  # never let one record kill the browser
                log.exception("zeroconf: error while handling %s (%s)", name, change)

    def _query_done(self, name: str, task: asyncio.Task[None]) -> None:
        if self._queries.get(name) is task:
            del self._queries[name]

    async def _query(self, service_type: str, name: str, info: AsyncServiceInfo) -> None:
        assert self._azc is not None
        try:
            if await info.async_request(
                self._azc.zeroconf, RESOLVE_TIMEOUT_MS, question_type=DNSQuestionType.QM
            ):
                self._counters["queried"] += 1
                self._accept(service_type, name, info)
            else:
                self._counters["unresolved"] += 1
                log.debug("zeroconf: could not resolve %s", name)
        except Exception:
            log.exception("zeroconf: error while resolving %s", name)

    async def _expiry_loop(self) -> None:
        """Depart services whose SRV/TXT/A records expired (killed without goodbyes).

        python-zeroconf raises every PTR TTL to at least 1125 s, and a browser only reports Removed when
        the PTR expires. So every ``EXPIRY_CHECK_S`` each known instance is checked in the cache; when its
        records are no longer valid it is queried once (a live responder answers and refreshes them), and
        departs if nobody answers. Instances that departed this way are re-resolved when their records
        come back (a restart may not make the browser report them as new).
        """
        while True:
            await asyncio.sleep(EXPIRY_CHECK_S)
            known = list(self._known.items())
            alive = await asyncio.gather(
                *(self._still_there(SERVICE_TYPES[service], name) for name, (_, service, _) in known),
                return_exceptions=True,
            )
            for (name, (_, service, port)), ok in zip(known, alive, strict=True):
                if isinstance(ok, BaseException):
                    log.error("zeroconf: error while checking %s: %r", name, ok)
                    continue
                if not ok and self._known.get(name, (None, None, None))[2] == port:
                    log.debug("zeroconf: %s expired", name)
                    self._forget(name)
                    if len(self._expired) < MAX_NAMES:
                        self._expired[name] = SERVICE_TYPES[service]
            assert self._azc is not None
            for name, type_ in list(self._expired.items()):
                if AsyncServiceInfo(type_, name).load_from_cache(self._azc.zeroconf):
                    del self._expired[name]
                    self._events.put_nowait((type_, name, ServiceStateChange.Updated))

    async def _still_there(self, service_type: str, name: str) -> bool:
        assert self._azc is not None
        info = AsyncServiceInfo(service_type, name)
        if info.load_from_cache(self._azc.zeroconf):
            return True
        alive = await info.async_request(
            self._azc.zeroconf, RESOLVE_TIMEOUT_MS, question_type=DNSQuestionType.QM
        )
        self._counters["refreshed" if alive else "expired"] += 1
        return alive

    def _forget(self, name: str) -> None:
        known = self._known.pop(name, None)
        if known is not None:
            self._sink.gone(ZEROCONF, known[0], known[1], known[2])

    def _accept(self, service_type: str, name: str, info: AsyncServiceInfo) -> None:
        """Report a resolved instance (or forget it, if it is no longer a valid one of our group)."""
        service = _BY_TYPE.get(service_type)
        if service is None:
            return
        try:
            found = self._parse(service, info)
        except _Malformed as exc:
            self._counters["malformed"] += 1
            log.debug("zeroconf: ignoring %s: %s", name, exc)
            found = None
        if found is None:
            self._forget(name)  # an update may have made a known instance invalid
            return
        host_id, address, port, canonical = found
        if name not in self._known and len(self._known) >= MAX_NAMES:
            self._counters["dropped_full"] += 1
            return
        self._known[name] = (host_id, service, port)
        self._sink.seen(ZEROCONF, host_id, service, address, port, canonical)

    def _parse(self, service: ServiceId, info: AsyncServiceInfo) -> tuple[bytes, str, int, str] | None:
        """(host id, address, port, canonical name); None for other groups and ourselves."""
        try:
            txt = {k.decode(): v.decode() for k, v in info.properties.items() if v is not None}
        except UnicodeDecodeError:
            raise _Malformed("TXT is not UTF-8") from None
        group, canonical = txt.get("group"), txt.get("name")
        if not group or not canonical:
            raise _Malformed("TXT lacks group or name")
        if txt.get("service") != service.name:
            raise _Malformed(f"TXT service {txt.get('service')!r} does not match {SERVICE_TYPES[service]}")
        if wire.group_id(group) != self._group_id:
            self._counters["other_group"] += 1
            return None
        host_id = wire.host_id(canonical)
        if host_id == self._host_id:
            self._counters["own"] += 1
            return None
        if not info.port:
            raise _Malformed("no port")
        address = pick_address(info.parsed_addresses(IPVersion.V4Only))
        if address is None:
            raise _Malformed("no IPv4 address")
        return host_id, address, info.port, canonical
