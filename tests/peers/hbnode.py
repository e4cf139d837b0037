"""A raw heartbeat publisher for peer-monitor tests: ``python -m tests.peers.hbnode GROUP NAME [options]``.

XPUB bound on ``--bind`` (random port unless ``--port``), CHP1 heartbeats encoded with ``protocols.chp``
every 0.8 × interval (``--period-factor``), the HEARTBEAT service offered over CHIRP (our
``Discovery``). Prints ``READY hb=<port>`` once beating. Signals drive it:

- SIGUSR1: go to ``--fail-state`` (ERROR by default) with an extrasystole; SIGUSR2: back to ``--state``;
- SIGHUP: stop beating while the process and its sockets stay alive (an application hang);
- SIGTERM/SIGINT: orderly exit: CHIRP DEPART first, then the socket closes (``--close-first-ms N``:
  the other way round, DEPART N ms after the close); prints ``CLOSED``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import time

import zmq
import zmq.asyncio

from constellation.discovery import Discovery
from protocols import HeartbeatFlags, Role, State, chp
from protocols.chirp import ServiceId


async def main(args: argparse.Namespace) -> None:
    ctx = zmq.asyncio.Context()
    pub = ctx.socket(zmq.XPUB)
    pub.setsockopt(zmq.LINGER, 0)
    if args.port:
        pub.bind(f"tcp://{args.bind}:{args.port}")
        port = args.port
    else:
        port = pub.bind_to_random_port(f"tcp://{args.bind}")
    role = Role.parse(args.role)
    state = State[args.state]
    wake = asyncio.Event()
    stop = asyncio.Event()
    hung = asyncio.Event()
    loop = asyncio.get_running_loop()

    def set_state(new: State) -> None:
        nonlocal state
        state = new
        wake.set()

    loop.add_signal_handler(signal.SIGUSR1, set_state, State[args.fail_state])
    loop.add_signal_handler(signal.SIGUSR2, set_state, State[args.state])
    loop.add_signal_handler(signal.SIGHUP, hung.set)

    def leave() -> None:
        stop.set()
        wake.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, leave)

    async def drain_subscriptions() -> None:
        while True:
            await pub.recv_multipart()

    backends = args.backends.split(",")
    disc = Discovery(args.group, args.name, backends=backends, interfaces=args.interface or None)
    disc.offer(ServiceId.HEARTBEAT, port)
    drain = asyncio.create_task(drain_subscriptions())
    async with disc:
        print(f"READY hb={port} t={time.monotonic():.6f}", flush=True)
        extrasystole = False
        while not stop.is_set():
            if not hung.is_set():
                flags = role.flags | (HeartbeatFlags.IS_EXTRASYSTOLE if extrasystole else 0)
                hb = chp.Heartbeat(args.name, state, flags, args.interval_ms, args.status or None)
                await pub.send_multipart(chp.encode(hb))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(args.period_factor * args.interval_ms / 1000):
                    await wake.wait()
            extrasystole = wake.is_set()
            wake.clear()
        drain.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await drain
        if args.close_first_ms >= 0:  # the unfriendly order: socket closed, DEPART a moment later
            pub.close(0)
            await asyncio.sleep(args.close_first_ms / 1000)
        # orderly exit: DEPART leaves while the heartbeat socket still works (leaving `async with`)
    pub.close(0)
    ctx.term()
    print("CLOSED", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("group")
    parser.add_argument("name")
    parser.add_argument("--role", default="DYNAMIC")
    parser.add_argument("--state", default="ORBIT")
    parser.add_argument("--fail-state", default="ERROR")
    parser.add_argument("--status", default="")
    parser.add_argument("--interval-ms", type=int, default=1000)
    parser.add_argument("--period-factor", type=float, default=0.8, help="beat every F x interval")
    parser.add_argument("--bind", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--interface", action="append", default=[])
    parser.add_argument("--backends", default="chirp")
    parser.add_argument("--close-first-ms", type=int, default=-1, help="close the socket N ms before DEPART")
    asyncio.run(main(parser.parse_args()))
