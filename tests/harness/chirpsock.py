"""A raw CHIRP socket on the loopback multicast route, for tests and benchmarks that watch or send
beacons themselves (inside the private network namespace only: the caller checks), and `BeaconLog`,
which records every beacon of one group with its arrival time."""

from __future__ import annotations

import socket
import struct
import threading
import time

from protocols import chirp

LOOPBACK = "127.0.0.1"


def loopback_chirp_socket() -> socket.socket:
    """Bound to the CHIRP port (shared with every satellite of this host), joined to the multicast group
    on loopback, and sending to it over loopback (TTL 1, own datagrams looped back)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(("", chirp.PORT))
    mreq = struct.pack("4s4s", socket.inet_aton(chirp.MULTICAST_ADDRESS), socket.inet_aton(LOOPBACK))
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(LOOPBACK))
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 1)
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
    return sock


class BeaconLog:
    """Every CHIRP beacon of one group seen on loopback, in arrival order, stamped (monotonic) by a
    background thread, so the arrival of a beacon is known exactly even when it is looked for later."""

    def __init__(self, group: str) -> None:
        self.group_id = chirp.group_id(group)
        self.beacons: list[tuple[float, chirp.Beacon]] = []
        self.sock = loopback_chirp_socket()
        self.sock.settimeout(0.05)
        self._changed = threading.Condition()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, name="chirp-beacon-log", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(2048)
            except TimeoutError:
                continue
            except OSError:
                return
            arrived = time.monotonic()
            try:
                beacon = chirp.decode(data)
            except ValueError:
                continue
            if beacon.group_id == self.group_id:
                with self._changed:
                    self.beacons.append((arrived, beacon))
                    self._changed.notify_all()

    def of(self, name: str, kind: chirp.MessageType | None = None) -> list[chirp.Beacon]:
        """The beacons of the canonical `name` (of one `kind`, or all), in arrival order."""
        host = chirp.host_id(name)
        with self._changed:
            return [b for _, b in self.beacons if b.host_id == host and (kind is None or b.type is kind)]

    def wait_offer(self, host: bytes, service: chirp.ServiceId, after: float, timeout: float) -> float:
        """Arrival time (monotonic) of the first OFFER of `service` from `host` after `after`;
        TimeoutError when none comes within `timeout` seconds."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for arrived, b in self.beacons:
                    if (
                        arrived >= after
                        and b.type is chirp.MessageType.OFFER
                        and b.host_id == host
                        and b.service is service
                    ):
                        return arrived
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"no CHIRP OFFER {service.name} within {timeout}s")
                self._changed.wait(remaining)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()
