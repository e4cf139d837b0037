"""Our ``Sputnik`` plus one extra command, for the satellite benchmark.

``python benchmarks/satellite_ours_bench.py --name NAME --group GROUP [satellite-run options]`` runs
exactly what ``satellite-run Sputnik`` runs (same CLI code, logging set-up and shutdown path; canonical
name ``Sputnik.NAME``), with the satellite class extended by ``burst(n, level)``: emit ``n`` log records
at ``level`` from a worker thread (where sync commands and hooks run) as fast as possible, then reply.
It mirrors ``satellite_cdaq_bench.py`` for 1.0.2, so both satellites get the same log-burst request.

``--unchecked-log`` (anywhere among the arguments; an experiment, not a `satellite-run` option): a
bound on the log producer's work. After one record per level has taken the real fast path, every further
record skips all of its checks but the level (the handler chain, filters, the record factory, the
component, route and subscription) and its tag work (caller frame, thread and process): it is queued
with the first record's route and tags, a fresh text and a fresh time. Unsound on purpose (a handler or
filter added later is ignored, so is an unsubscription; every record carries the first one's tags,
which name the experiment's wrapper as the caller): it shows what the log rate would be if those
checks and tags cost nothing (``satellite_bench.py --ours-arg=--unchecked-log``; docs/benchmarks.md).
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from constellation import cli  # light: the runtime loads after the CHIRP announcement, as in satellite-run

if TYPE_CHECKING:
    from constellation import Satellite

LEVELS = {"TRACE": 5, "DEBUG": 10, "INFO": 20, "WARNING": 30, "STATUS": 35, "CRITICAL": 40}
_experiment = {"unchecked_log": False}  # set by main; applied where the type loads (after the offers)


def bench_type(name: str) -> type[Satellite]:  # name: cli.load_satellite_type's signature
    """Sputnik plus a log-burst command (type name kept: canonical name Sputnik.NAME)."""
    from constellation import command
    from satellites.sputnik import Sputnik

    if _experiment["unchecked_log"]:
        unchecked_log()

    class BenchSputnik(Sputnik):
        satellite_type = "Sputnik"

        @command
        def burst(self, n: int, level: str) -> tuple[str, object]:
            """Emit n log records at the given level (INFO, WARNING, ...) as fast as possible."""
            levelno = LEVELS[level.upper()]
            for i in range(n):
                self.log.log(levelno, "burst %d", i)
            return f"emitted {n}", n

    return BenchSputnik


def unchecked_log() -> None:
    """Patch `SatelliteLog._fast` for the ``--unchecked-log`` experiment (see the module docstring)."""
    import time

    from constellation.satlog import SatelliteLog

    checked = SatelliteLog._fast

    def first(self: SatelliteLog, level: int, msg: object, args: tuple[object, ...]) -> bool:
        publisher = _publisher(self)
        if publisher is None:
            return checked(self, level, msg, args)
        queue = publisher._queue
        before = len(queue)
        done = checked(self, level, msg, args)
        # the real fast path queued it (and no other thread pushed or took one meanwhile): take its route
        # and tags; if not, the next record tries again
        try:
            record: Any = queue[-1] if len(queue) == before + 1 else None
            ours = type(record) is tuple and record[2] == (msg % args if args else msg)  # type: ignore[operator]
        except Exception:  # the sender took it meanwhile, or a text that does not format: try again
            ours = False
        if ours:
            route0, route1, _text, tags, _time = record
            self.__dict__.setdefault("_unchecked", {})[level] = (publisher.push, route0, route1, tags)
        return done

    def _fast(self: SatelliteLog, level: int, msg: object, args: tuple[object, ...]) -> bool:
        try:
            push, route0, route1, tags = self._unchecked[level]  # type: ignore[attr-defined]
        except (AttributeError, KeyError):
            return first(self, level, msg, args)
        try:
            enabled = self.logger._cache[level]  # type: ignore[attr-defined]
        except KeyError:
            enabled = self.logger.isEnabledFor(level)
        if enabled:
            text = msg % args if args else msg  # type: ignore[operator]
            push((route0, route1, text, tags, int(time.time() * 1_000_000) * 1000))
        return True

    SatelliteLog._fast = _fast  # type: ignore[method-assign]


def _publisher(log: Any) -> Any:
    """The publisher of this satellite's CMDP handler on the logger chain (as the fast path finds it:
    propagation respected, another satellite's handler skipped), or None. Mirrors the handler walk of
    `SatelliteLog._fast` (constellation/satlog.py) and the queued tuple's layout: change them together."""
    import logging

    from constellation.monitoring import CmdpLogHandler

    satellite = (log.extra or {}).get("satellite")
    c: logging.Logger | None = log.logger
    while c is not None:
        for h in c.handlers:
            if type(h) is CmdpLogHandler and h.satellite == satellite:
                return h.publisher
        c = c.parent if c.propagate else None
    return None


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if "--unchecked-log" in args:
        args.remove("--unchecked-log")
        _experiment["unchecked_log"] = True
    # The real satellite-run code path, with the satellite class swapped for the bench subclass (loaded
    # where satellite-run loads its type: after the ports are bound and announced).
    cli.load_satellite_type = bench_type
    return cli.main(["Sputnik", *args])


if __name__ == "__main__":
    sys.exit(main())
