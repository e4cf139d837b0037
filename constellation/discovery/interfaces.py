"""Interface selection, the way ConstellationDAQ 1.0.2 does it (``core/network.py``).

The address list always starts with ``127.0.0.1``. Named interfaces (case-insensitive; an IPv4 address
of a usable interface is accepted too) add their first IPv4 address. With no names, every interface that
is running (up, with a carrier), has an IPv4 address and is multicast-capable (loopback always counts)
is used. Duplicates are removed, order is kept. Enumeration sees the current network namespace (never
``/sys/class/net``): on Linux with the interface ioctls (`SIOCGIFFLAGS`, `SIOCGIFADDR`) on a throw-away
socket, which takes well under a millisecond where importing psutil takes 30 ms of a satellite's first
0.1 s (`constellation.launch`); elsewhere with psutil.
"""

from __future__ import annotations

import os
import socket
import struct
import sys
from collections.abc import Mapping, Sequence

from .errors import UnknownInterface

LOOPBACK = "127.0.0.1"


def usable_interfaces() -> dict[str, str]:
    """Map interface name -> first IPv4 address, for every interface 1.0.2 would accept."""
    if sys.platform == "linux":
        return _usable_linux()
    return _usable_psutil()


# <linux/sockios.h> and <net/if.h>
_SIOCGIFFLAGS = 0x8913
_SIOCGIFADDR = 0x8915
_IFF_LOOPBACK = 0x8
_IFF_RUNNING = 0x40  # up with a carrier: psutil's (and so 1.0.2's) `isup`
_IFF_MULTICAST = 0x1000
_IFREQ = struct.Struct("16s16x")  # struct ifreq: the name, then a 16-byte union (flags or sockaddr_in)


def _usable_linux() -> dict[str, str]:
    import fcntl

    result: dict[str, str] = {}
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for _, name in socket.if_nameindex():
            request = _IFREQ.pack(os.fsencode(name))  # a name need not be UTF-8
            try:
                flags = struct.unpack_from("H", fcntl.ioctl(sock, _SIOCGIFFLAGS, request), 16)[0]
                if not flags & _IFF_RUNNING or not flags & (_IFF_MULTICAST | _IFF_LOOPBACK):
                    continue
                addr = fcntl.ioctl(sock, _SIOCGIFADDR, request)  # EADDRNOTAVAIL: no IPv4 address
            except OSError:
                continue  # gone since the listing, or no IPv4 address
            result[name] = socket.inet_ntoa(addr[20:24])  # sockaddr_in: family, port, then the address
    return result


def _usable_psutil() -> dict[str, str]:
    import psutil

    addrs = psutil.net_if_addrs()
    result: dict[str, str] = {}
    for name, stats in psutil.net_if_stats().items():
        if not stats.isup:
            continue
        ipv4 = next((a.address for a in addrs.get(name, ()) if a.family == socket.AF_INET), None)
        if ipv4 is None:
            continue
        flags = set(stats.flags.split(",")) if stats.flags else set()
        if "multicast" not in flags and "loopback" not in flags:
            continue
        result[name] = str(ipv4)
    return result


def select_addresses(
    interfaces: Sequence[str] | None, usable: Mapping[str, str] | None = None
) -> tuple[str, ...]:
    """IPv4 addresses to use for discovery, ``127.0.0.1`` first.

    Raises ``UnknownInterface`` (with the list of usable interfaces) for a name that is not usable.
    """
    if isinstance(interfaces, str):
        raise TypeError("interfaces must be a sequence of names, not a single string")
    usable = dict(usable_interfaces() if usable is None else usable)
    by_lower = {name.lower(): addr for name, addr in usable.items()}
    by_addr = set(usable.values())
    selected = [LOOPBACK]
    if interfaces is None:
        selected.extend(usable.values())
    else:
        for wanted in interfaces:
            if wanted.lower() in by_lower:
                selected.append(by_lower[wanted.lower()])
            elif wanted in by_addr:
                selected.append(wanted)
            else:
                known = ", ".join(f"{n} ({a})" for n, a in sorted(usable.items())) or "none"
                raise UnknownInterface(
                    f"{wanted!r} is not a running, multicast-capable IPv4 interface; usable: {known}"
                )
    return tuple(dict.fromkeys(selected))
