"""`satellite-run Sputnik` with the satellite class swapped, for tests/runtime/test_launch_netns.py.

    python tests/runtime/launch_variants.py MODE [satellite-run options]

MODE: ``other-type`` (the class names the type ``Other``, unlike its entry point), ``start-fails``
(the runtime's start raises a ServiceError), ``slow-load`` (loading the class hangs: a signal arrives
between the early announcement and the runtime), ``slow-init`` (constructing the satellite hangs:
a signal arrives inside `asyncio.run`, before the runtime's signal handlers), ``sigterm-on-offer``
and ``sigint-on-offer`` (the signal arrives the moment the early OFFERs are out, before
`constellation.launch` has returned), ``start-fails-sigterm-on-depart`` and
``start-fails-sigint-on-depart`` (the start fails, and the signal arrives as the early OFFERs are
departed).
"""

from __future__ import annotations

import os
import signal
import sys
from typing import Any

from constellation import cli, launch
from protocols.chirp import MessageType


def _hang() -> None:
    """A hook that never returns: wait for the signal the test sends (its handler raises out of here);
    the test's spawn fixture kills the process if none comes."""
    while True:
        signal.pause()


def main() -> int:
    mode = sys.argv[1]

    if mode in ("sigterm-on-offer", "sigint-on-offer"):
        sig = signal.SIGTERM if mode == "sigterm-on-offer" else signal.SIGINT
        emit = launch.EarlyOffer._emit

        def emit_then_signal(self: launch.EarlyOffer, kind: MessageType, *rest: Any) -> None:
            emit(self, kind, *rest)
            if kind is MessageType.OFFER:
                os.kill(os.getpid(), sig)

        launch.EarlyOffer._emit = emit_then_signal  # type: ignore[method-assign]

    if mode in ("start-fails-sigterm-on-depart", "start-fails-sigint-on-depart"):
        sig = signal.SIGTERM if "sigterm" in mode else signal.SIGINT
        emit = launch.EarlyOffer._emit

        def signal_then_emit(self: launch.EarlyOffer, kind: MessageType, *rest: Any) -> None:
            if kind is MessageType.DEPART:
                os.kill(os.getpid(), sig)
            emit(self, kind, *rest)

        launch.EarlyOffer._emit = signal_then_emit  # type: ignore[method-assign]
        mode = "start-fails"

    def load(_name: str) -> type:
        from constellation import ServiceError
        from satellites.sputnik import Sputnik

        if mode == "other-type":

            class Other(Sputnik):
                satellite_type = "Other"

            return Other
        if mode == "start-fails":

            class Broken(Sputnik):
                satellite_type = "Sputnik"  # the early offers stand until the start fails

                async def start(self) -> None:
                    raise ServiceError("start refused by the test")

            return Broken
        if mode == "slow-init":

            class SlowInit(Sputnik):
                satellite_type = "Sputnik"  # the early offers stand until the signal

                def __init__(self, *args: Any, **kwargs: Any) -> None:
                    print("CONSTRUCTING", flush=True)
                    _hang()

            return SlowInit
        if mode == "slow-load":
            print("LOADING", flush=True)
            _hang()
        raise SystemExit(f"unknown mode {mode!r}")

    cli.load_satellite_type = load  # type: ignore[assignment]
    return cli.main(["Sputnik", *sys.argv[2:]])


if __name__ == "__main__":
    sys.exit(main())
