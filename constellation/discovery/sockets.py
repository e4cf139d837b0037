"""CHIRP's UDP sockets, configured as 1.0.2 does (``core/multicast.py``); plain `socket`, no asyncio.

`constellation.launch` sends a satellite's first OFFERs with `send_socket` before asyncio is imported.
"""

from __future__ import annotations

import socket
from collections.abc import Sequence

__all__ = ["RECV_BUFFER", "TTL", "recv_socket", "send_socket"]

TTL = 8
RECV_BUFFER = 1 << 20  # many OFFERs can arrive at once when a whole constellation answers a REQUEST


def recv_socket(addresses: Sequence[str], group: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if hasattr(socket, "SO_REUSEPORT"):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECV_BUFFER)
        sock.bind(("0.0.0.0", port))
        for address in addresses:
            mreq = socket.inet_aton(group) + socket.inet_aton(address)
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


def send_socket(address: str) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, TTL)
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 1 if address == "127.0.0.1" else 0)
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(address))
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock
