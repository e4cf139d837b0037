"""A peer monitor in its own process: ``python -m tests.peers.monnode GROUP NAME [--interface IF]...``.

Discovers the group's HEARTBEAT services over CHIRP, watches them with ``PeerMonitor`` and prints
``READY`` then one ``EVENT <monotonic> <name> <kind> <state> <detail>`` line per peer event.
CLOCK_MONOTONIC is system-wide, so a parent (or a process on another virtual host) can compare times.
"""

from __future__ import annotations

import argparse
import asyncio
import signal

from constellation.discovery import Discovery
from constellation.peers import MonitorSettings, PeerEvent, PeerMonitor
from protocols.chirp import ServiceId


def _print(event: PeerEvent) -> None:
    print(
        f"EVENT {event.time:.6f} {event.name} {event.kind.value} {event.state.name} {event.detail}",
        flush=True,
    )


async def main(args: argparse.Namespace) -> None:
    settings = MonitorSettings(zmtp_ivl_ms=args.zmtp_ivl_ms, zmtp_timeout_ms=args.zmtp_timeout_ms)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with PeerMonitor(args.name, settings=settings, on_event=_print) as monitor:
        disc = Discovery(
            args.group,
            args.name,
            backends=("chirp",),
            interfaces=args.interface or None,
            on_appear=monitor.service_appeared,
            on_depart=monitor.service_departed,
        )
        disc.request(ServiceId.HEARTBEAT)
        async with disc:
            print("READY", flush=True)
            await stop.wait()
    print("CLOSED", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("group")
    parser.add_argument("name")
    parser.add_argument("--interface", action="append", default=[])
    parser.add_argument("--zmtp-ivl-ms", type=int, default=MonitorSettings().zmtp_ivl_ms)
    parser.add_argument("--zmtp-timeout-ms", type=int, default=MonitorSettings().zmtp_timeout_ms)
    asyncio.run(main(parser.parse_args()))
