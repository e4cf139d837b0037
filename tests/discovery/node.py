"""A discovery node for multi-process tests: ``python -m tests.discovery.node GROUP NAME [options]``.

Prints ``T0 <monotonic>`` just before start, ``READY`` after, one ``APPEAR``/``DEPART`` line per event
(``<monotonic> <service> <name|host hex> <endpoint> <backends>``), and ``CLOSED`` after a clean exit on
SIGINT/SIGTERM. CLOCK_MONOTONIC is system-wide, so the parent can compare the times with its own.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import time

from constellation.discovery import Discovery, Service
from protocols.chirp import ServiceId


def _line(kind: str, svc: Service) -> None:
    who = svc.name or svc.host_id.hex()
    backends = ",".join(sorted(svc.backends))
    print(
        f"{kind} {time.monotonic():.6f} {svc.service.name} {who} {svc.endpoint} {backends}",
        flush=True,
    )


async def main(args: argparse.Namespace) -> None:
    disc = Discovery(
        args.group,
        args.name,
        backends=args.backends.split(","),
        interfaces=args.interface or None,
        on_appear=lambda s: _line("APPEAR", s),
        on_depart=lambda s: _line("DEPART", s),
        zeroconf_ttl=args.ttl,
    )
    for spec in args.offer:
        service, port = spec.split("=")
        disc.offer(ServiceId[service], int(port))
    for service in args.request:
        disc.request(ServiceId[service])
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print(f"T0 {time.monotonic():.6f}", flush=True)
    async with disc:
        print(f"READY {','.join(disc.addresses)}", flush=True)
        await stop.wait()
    print("CLOSED", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("group")
    parser.add_argument("name")
    parser.add_argument("--backends", default="chirp,zeroconf")
    parser.add_argument("--offer", action="append", default=[], help="SERVICE=PORT")
    parser.add_argument("--request", action="append", default=[], help="SERVICE")
    parser.add_argument("--interface", "-i", action="append", default=[])
    parser.add_argument("--ttl", type=int, default=120, help="zeroconf record TTL in seconds")
    asyncio.run(main(parser.parse_args()))
