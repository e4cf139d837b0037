"""A raw CHIRP socket on the loopback multicast route, for tests and benchmarks that watch or send
beacons themselves (inside the private network namespace only: the caller checks)."""

from __future__ import annotations

import socket
import struct

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
