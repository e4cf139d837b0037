"""CHIRP v1 backend: UDP multicast 239.192.7.123:7123, byte-compatible with ConstellationDAQ 1.0.2.

Sockets (as 1.0.2, ``core/multicast.py``): one receive socket bound to ``0.0.0.0:7123`` with SO_REUSEADDR
and SO_REUSEPORT, joined to the group on every selected interface address; one send socket per address
(IP_MULTICAST_IF, TTL 8, loop only on ``127.0.0.1``). All are asyncio datagram endpoints owned by this
object: no threads. A REQUEST from our group is answered at once (like C++; 1.0.2 waits 0-200 ms).
Anything malformed, from another group or from ourselves is counted and dropped; the handler of one
datagram cannot take the receiver down.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections import Counter
from collections.abc import Callable, Mapping, Sequence

from protocols import DecodeError
from protocols import chirp as wire
from protocols.chirp import Beacon, MessageType, ServiceId

from .backend import Sink
from .errors import DiscoveryError
from .service import CHIRP
from .sockets import recv_socket, send_socket

log = logging.getLogger(__name__)


class _Endpoint(asyncio.DatagramProtocol):
    def __init__(self, on_datagram: Callable[[bytes, str], None] | None, label: str) -> None:
        self._on_datagram = on_datagram
        self._label = label

    def datagram_received(self, data: bytes, addr: tuple[str | object, int]) -> None:
        if self._on_datagram is None:
            return
        try:
            self._on_datagram(data, str(addr[0]))
        except Exception:  # never let one datagram kill the receiver
            log.exception("CHIRP: error while handling a datagram from %s", addr[0])

    def error_received(self, exc: Exception) -> None:
        log.debug("CHIRP %s socket error: %s", self._label, exc)


class ChirpBackend:
    """CHIRP announcements and listening for one node (group + host id)."""

    name = CHIRP

    def __init__(
        self,
        group_id: bytes,
        host_id: bytes,
        addresses: Sequence[str],
        sink: Sink,
        *,
        offers: Mapping[ServiceId, int] | None = None,
        requests: Sequence[ServiceId] = (),
        multicast_address: str = wire.MULTICAST_ADDRESS,
        port: int = wire.PORT,
    ) -> None:
        self._group_id = group_id
        self._host_id = host_id
        self._addresses = tuple(addresses)
        self._sink = sink
        self._offers: dict[ServiceId, int] = dict(offers or {})
        self._pending_requests = list(requests)
        self._target = (multicast_address, port)
        self._recv: asyncio.DatagramTransport | None = None
        self._send: list[asyncio.DatagramTransport] = []
        self._counters: Counter[str] = Counter()
        self._closed = False

    @property
    def counters(self) -> Mapping[str, int]:
        return dict(self._counters)

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            for address in self._addresses:
                transport, _ = await loop.create_datagram_endpoint(
                    functools.partial(_Endpoint, None, f"send {address}"), sock=send_socket(address)
                )
                self._send.append(transport)
            sock = recv_socket(self._addresses, *self._target)
            self._recv, _ = await loop.create_datagram_endpoint(
                lambda: _Endpoint(self._on_datagram, "receive"), sock=sock
            )
        except OSError as exc:
            self._close_transports()
            raise DiscoveryError(f"cannot open CHIRP sockets on {', '.join(self._addresses)}: {exc}") from exc
        log.debug("CHIRP on %s", ", ".join(self._addresses))
        for service, port in self._offers.items():
            self._emit(MessageType.OFFER, service, port)
        for service in self._pending_requests:
            self._emit(MessageType.REQUEST, service, 0)
        self._pending_requests.clear()

    def offer(self, service: ServiceId, port: int, previous_port: int | None) -> None:
        if previous_port is not None and previous_port != port:
            self._emit(MessageType.DEPART, service, previous_port)
        self._offers[service] = port
        self._emit(MessageType.OFFER, service, port)

    def withdraw(self, service: ServiceId, port: int) -> None:
        self._offers.pop(service, None)
        self._emit(MessageType.DEPART, service, port)

    def request(self, service: ServiceId) -> None:
        if self._recv is None and not self._closed:
            self._pending_requests.append(service)
        else:
            self._emit(MessageType.REQUEST, service, 0)

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        for service, port in self._offers.items():
            self._emit(MessageType.DEPART, service, port)
        self._close_transports()
        await asyncio.sleep(0)  # let the transports flush and report connection_lost

    def _close_transports(self) -> None:
        if self._recv is not None:
            self._recv.close()
        for transport in self._send:
            transport.close()  # a datagram transport flushes its buffer before closing the socket
        self._send.clear()

    def _emit(self, type_: MessageType, service: ServiceId, port: int) -> None:
        if not self._send or (self._closed and type_ is not MessageType.DEPART):
            return
        data = wire.encode(Beacon(type_, self._group_id, self._host_id, service, port))
        for transport in self._send:
            transport.sendto(data, self._target)
        self._counters[f"sent_{type_.name.lower()}"] += 1

    def _on_datagram(self, data: bytes, source: str) -> None:
        self._counters["received"] += 1
        try:
            beacon = wire.decode(data)
        except DecodeError as exc:
            self._counters["malformed"] += 1
            log.debug("CHIRP: dropped malformed datagram from %s (%d bytes): %s", source, len(data), exc)
            return
        if beacon.group_id != self._group_id:
            self._counters["other_group"] += 1
            return
        if beacon.host_id == self._host_id:
            self._counters["own"] += 1
            return
        if beacon.type is MessageType.REQUEST:
            port = self._offers.get(beacon.service)
            if port is not None:
                self._emit(MessageType.OFFER, beacon.service, port)
        elif beacon.type is MessageType.OFFER:
            if beacon.port == 0:
                self._counters["malformed"] += 1
                log.debug("CHIRP: dropped OFFER with port 0 from %s", source)
                return
            self._sink.seen(CHIRP, beacon.host_id, beacon.service, source, beacon.port, None)
        elif beacon.port != 0:  # DEPART; 1.0.2 ignores DEPART with port 0 too
            self._sink.depart(beacon.host_id, beacon.service, beacon.port)
