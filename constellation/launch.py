"""The first tenth of a second of `satellite-run`: bind the ports and announce them before the runtime loads.

A process that is already listening must see a new satellite within 0.1 s (issue 3), but importing the
runtime (pyzmq, asyncio, msgpack, the satellite type) takes longer than that. So `satellite-run` does
this first, with the standard library and `protocols.chirp` only:

1. `Prebound` binds and listens on the three TCP ports (CONTROL, HEARTBEAT, MONITORING). The kernel
   accepts connections into the listen backlog from then on.
2. `EarlyOffer` sends the CHIRP OFFERs for CONTROL and MONITORING, exactly the beacons the runtime's
   discovery sends, and answers REQUESTs for them until the runtime's discovery runs. HEARTBEAT follows
   once the satellite type is loaded and constructed, just before the satellite starts (and beats):
   a 1.0.2 peer that subscribes to an offered heartbeat counts missed beats from then on (3 lives of
   1.5 x 2 s), and would declare a satellite whose type takes ~9 s to load DEAD and interrupt its own
   run. It must not come later either: a 1.0.2 controller that got our `get_state` reply waits 1 s for
   our HEARTBEAT offer, then never follows our heartbeats; the runtime's own discovery offers it only
   after importing the discovery stack, with the command socket already answering. A type that takes
   longer than 5 s to load outlasts a 1.0.2 controller's `get_name` on the early CONTROL offer, which
   it never retries: CONTROL is then departed and offered anew when ready (`EarlyOffer.ready`).
3. The runtime starts; its ZeroMQ sockets adopt the listening descriptors (``ZMQ_USE_FD``, the
   socket-activation option of libzmq) instead of binding their own, and serve whatever connected in
   the meantime: a controller that connected and sent a command on the early OFFER gets its reply as
   soon as the command socket runs, without a reconnect.
4. Once the runtime's discovery has made its own OFFERs, `EarlyOffer.close` closes the early sockets
   without a DEPART (the runtime departs the same services at exit). If the start fails instead,
   `EarlyOffer.withdraw` sends the DEPARTs, so no peer keeps a satellite that never came up.

`announce` does steps 1 and 2; `scan_entry_point` finds the satellite type's registered name for the
announcement without `importlib.metadata`. Only CHIRP is early: zeroconf starts with the runtime.
Nothing is pre-bound when the bind address is not an IPv4 address or ``*`` (libzmq also accepts
interface and host names there), and nothing is offered early without CHIRP.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import re
import select
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence

from protocols import chirp
from protocols.chirp import Beacon, MessageType, ServiceId
from protocols.errors import DecodeError

from .discovery.sockets import recv_socket, send_socket

__all__ = [
    "EARLY",
    "RENEW_AFTER_S",
    "SERVICES",
    "EarlyOffer",
    "ExitSignals",
    "Prebound",
    "announce",
    "prebind_host",
    "scan_entry_point",
]

#: The ports offered before the runtime runs (see step 2 above).
EARLY = ("cmd", "mon")
#: CONTROL offered longer ago than this when the satellite is ready is offered anew (`EarlyOffer.ready`).
RENEW_AFTER_S = 3.0
#: The satellite's port keys and the CHIRP services they are offered as.
SERVICES: Mapping[str, ServiceId] = {
    "cmd": ServiceId.CONTROL,
    "hb": ServiceId.HEARTBEAT,
    "mon": ServiceId.MONITORING,
}
BACKLOG = 100  # libzmq's default ZMQ_BACKLOG


def prebind_host(bind: str) -> str | None:
    """The IPv4 address to pre-bind for a ZeroMQ bind address, or None when it cannot be pre-bound."""
    if bind == "*":
        return "0.0.0.0"
    try:
        return str(ipaddress.IPv4Address(bind))
    except ValueError:
        return None


class Prebound:
    """Listening TCP sockets for the satellite's ports, bound before pyzmq is imported.

    ``ports`` maps ``cmd``/``hb``/``mon`` to the bound port (a requested port, or one the kernel chose for
    0). `take` hands the descriptors over (ownership moves: the caller's ZeroMQ socket closes them).
    Raises OSError naming the port when one cannot be bound; nothing stays open then.
    """

    def __init__(self, host: str, ports: Mapping[str, int]) -> None:
        self.host = host
        self.ports: dict[str, int] = {}
        self._socks: dict[str, socket.socket] = {}
        try:
            for key in SERVICES:
                self._socks[key] = sock = _listener(host, ports.get(key, 0), key)
                self.ports[key] = sock.getsockname()[1]
        except BaseException:
            self.close()
            raise

    def take(self) -> dict[str, int]:
        """The listening descriptors by port key; this object no longer owns (or closes) them."""
        fds = {key: sock.detach() for key, sock in self._socks.items()}
        self._socks.clear()
        return fds

    def close(self) -> None:
        for sock in self._socks.values():
            sock.close()
        self._socks.clear()


def _listener(host: str, port: int, key: str) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as libzmq's own listeners
        sock.bind((host, port))
        sock.listen(BACKLOG)
        sock.setblocking(False)  # libzmq accepts from its poller and expects EAGAIN, never a wait
    except OSError as exc:
        sock.close()
        raise OSError(exc.errno, f"cannot bind {key} port {port} on {host}: {exc.strerror}") from None
    return sock


class EarlyOffer:
    """CHIRP OFFERs for `ports` (by port key), sent on every address at construction; until `close` or
    `withdraw`, a REQUEST for one of these services from our group is answered with its OFFER, as the
    runtime's discovery does (a listener that starts in the ~0.2 s before the runtime's discovery runs
    would otherwise wait for it). Answering needs a multicast target: none for a unicast one (tests).
    """

    def __init__(
        self,
        group: str,
        canonical_name: str,
        addresses: Sequence[str],
        ports: Mapping[str, int],
        *,
        target: tuple[str, int] = (chirp.MULTICAST_ADDRESS, chirp.PORT),
    ) -> None:
        self._group_id = chirp.group_id(group)
        self._host_id = chirp.host_id(canonical_name)
        self._offers = {SERVICES[key]: port for key, port in ports.items()}
        self._offered_at = time.monotonic()
        self._target = target
        self._socks: list[socket.socket] = []
        self._answerer: _Answerer | None = None
        try:
            self._socks.extend(send_socket(address) for address in addresses)
            self._emit(MessageType.OFFER)
            if ipaddress.IPv4Address(target[0]).is_multicast:
                self._answerer = _Answerer(recv_socket(addresses, *target), self._answer)
        except BaseException:
            self.close()
            raise

    @property
    def open(self) -> bool:
        return bool(self._socks)

    def offer(self, ports: Mapping[str, int]) -> None:
        """Offer more ports (by key) now; REQUESTs for them are answered from now on, and `withdraw`
        departs them with the others."""
        added = {SERVICES[key]: port for key, port in ports.items()}
        self._offers = {**self._offers, **added}  # a new map: the answering thread may iterate the old
        for service in added:
            self._emit(MessageType.OFFER, service)

    def ready(self, hb_port: int, renew_after: float = RENEW_AFTER_S) -> None:
        """The satellite is loaded and constructed, about to start: offer HEARTBEAT (step 2 above).
        If CONTROL was offered more than `renew_after` s ago, DEPART and OFFER it again: a 1.0.2
        controller that sent `get_name` on the first OFFER gives up after 5 s and never asks again
        unless the service departs and is offered anew (a satellite type that takes that long to load).
        Between `renew_after` and 5 s a controller that did get its answer sees a departure and a
        return; the 3 s default keeps that to slow types only."""
        self.offer({"hb": hb_port})
        if time.monotonic() - self._offered_at > renew_after and ServiceId.CONTROL in self._offers:
            self._emit(MessageType.DEPART, ServiceId.CONTROL)
            self._emit(MessageType.OFFER, ServiceId.CONTROL)

    def withdraw(self) -> None:
        """DEPART every early offer (the start failed) and close; no OFFER can follow the DEPARTs."""
        self._stop_answering()
        self._emit(MessageType.DEPART)
        self.close()

    def close(self) -> None:
        """Close the sockets; the offers stand (the runtime's discovery has taken them over)."""
        self._stop_answering()
        for sock in self._socks:
            sock.close()
        self._socks.clear()

    def _stop_answering(self) -> None:
        if self._answerer is not None:
            self._answerer.stop()
            self._answerer = None

    def _answer(self, data: bytes) -> None:
        try:
            beacon = chirp.decode(data)
        except DecodeError:
            return  # malformed datagrams are dropped, as the runtime does
        if (
            beacon.type is MessageType.REQUEST
            and beacon.group_id == self._group_id
            and beacon.host_id != self._host_id
            and beacon.service in self._offers
        ):
            self._emit(MessageType.OFFER, beacon.service)

    def _emit(self, kind: MessageType, only: ServiceId | None = None) -> None:
        for service, port in self._offers.items():
            if only is not None and service is not only:
                continue
            data = chirp.encode(Beacon(kind, self._group_id, self._host_id, service, port))
            for sock in self._socks:
                with contextlib.suppress(OSError):  # a full or unroutable interface: the runtime offers again
                    sock.sendto(data, self._target)


class _Answerer:
    """A thread handing every datagram of `sock` to `handle` until `stop` (which waits for it)."""

    def __init__(self, sock: socket.socket, handle: Callable[[bytes], None]) -> None:
        self._sock = sock
        self._handle = handle
        self._wake_r, self._wake_w = os.pipe()
        self._thread = threading.Thread(target=self._run, name="chirp-early", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            while True:
                readable, _, _ = select.select([self._sock.fileno(), self._wake_r], [], [])
                if self._wake_r in readable:
                    return
                try:
                    data = self._sock.recv(2048)
                except OSError:
                    continue
                self._handle(data)
        finally:
            self._sock.close()

    def stop(self) -> None:
        os.write(self._wake_w, b"x")
        self._thread.join()
        os.close(self._wake_r)
        os.close(self._wake_w)


class ExitSignals:
    """`satellite-run`'s SIGINT and SIGTERM outside the runtime's own handlers: KeyboardInterrupt at
    once (for SIGINT, asyncio.run would only cancel its task, which a satellite still being constructed
    does not notice), or, while held, noted and raised at `release`.

    A flag rather than a signal mask: the mask is per thread, and a signal a worker thread takes still
    runs its Python handler in the main thread.
    """

    def __init__(self) -> None:
        self._held = False
        self._pending = False
        self._previous: dict[int, object] = {}

    def hold(self) -> None:
        """Hold from now on; (re)installs the handlers (the runtime's event loop removes its own)."""
        self._held = True
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous = signal.signal(sig, self._handle)
            self._previous.setdefault(sig, previous)

    def release(self) -> None:
        self._held = False
        if self._pending:
            self._pending = False
            raise KeyboardInterrupt

    def restore(self) -> None:
        """The handlers from before the first `hold` (held signals are dropped: the process is leaving)."""
        for sig, handler in self._previous.items():
            if handler is not None:  # None: a handler not set from Python, which cannot be put back
                signal.signal(sig, handler)  # type: ignore[arg-type]

    def _handle(self, signum: int, frame: object) -> None:
        if self._held:
            self._pending = True
        else:
            raise KeyboardInterrupt


def announce(
    bind: str,
    ports: Mapping[str, int],
    group: str,
    canonical_name: str,
    *,
    offer: bool,
    interfaces: Sequence[str] | None,
) -> tuple[Prebound | None, EarlyOffer | None]:
    """Bind the ports and, if `offer` (CHIRP is on), offer the `EARLY` ones at once on the `interfaces`'
    addresses; OSError (naming the port) if one is in use.

    Nothing is pre-bound for a bind address libzmq resolves itself (an interface or host name); nothing
    is offered early when the interfaces cannot be resolved here (the runtime reports that error).
    """
    host = prebind_host(bind)
    if host is None:
        return None, None
    prebound = Prebound(host, ports)
    if not offer:
        return prebound, None
    from .discovery.errors import DiscoveryError
    from .discovery.interfaces import select_addresses

    try:
        ports = {key: port for key, port in prebound.ports.items() if key in EARLY}
        early = EarlyOffer(group, canonical_name, select_addresses(interfaces), ports)
    except (DiscoveryError, OSError):
        return prebound, None
    return prebound, early


def scan_entry_point(group: str, name: str) -> str | None:
    """The name of the entry point in `group` registered as `name` (case-insensitive), read straight
    from the installed distributions' ``entry_points.txt`` on sys.path; None if not found that way.

    A shortcut for the start-up announcement only: `importlib.metadata` takes 20 ms to import, a fifth
    of the time a satellite has to announce itself. `importlib.metadata` stays the authority: the type
    is loaded through it, and an announcement it disagrees with is withdrawn (`constellation.cli`).
    """
    wanted = name.lower()
    seen: set[str] = set()  # as importlib.metadata: the first distribution of a name shadows the others
    for entry in sys.path:
        try:
            dists = [d for d in os.scandir(entry or ".") if d.name.endswith((".dist-info", ".egg-info"))]
        except OSError:
            continue
        for dist in dists:
            project = re.sub(r"[-_.]+", "_", os.path.splitext(dist.name)[0].partition("-")[0]).lower()
            if project in seen:
                continue
            seen.add(project)
            try:
                with open(os.path.join(dist.path, "entry_points.txt"), encoding="utf-8") as f:
                    text = f.read()
            except OSError:
                continue
            section = None
            for line in text.splitlines():
                line = line.strip()
                if line.startswith("[") and line.endswith("]"):
                    section = line[1:-1].strip()
                elif section == group and "=" in line:
                    key = line.partition("=")[0].strip()
                    if key.lower() == wanted:
                        return key
    return None
