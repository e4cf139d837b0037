"""Our ``Sputnik`` plus one extra command, for the satellite benchmark.

``python benchmarks/satellite_ours_bench.py --name NAME --group GROUP [satellite-run options]`` runs
exactly what ``satellite-run Sputnik`` runs (same CLI code, logging set-up and shutdown path; canonical
name ``Sputnik.NAME``), with the satellite class extended by ``burst(n, level)``: emit ``n`` log records
at ``level`` from a worker thread (where sync commands and hooks run) as fast as possible, then reply.
It mirrors ``satellite_cdaq_bench.py`` for 1.0.2, so both satellites get the same log-burst request.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from constellation import cli  # light: the runtime loads after the CHIRP announcement, as in satellite-run

if TYPE_CHECKING:
    from constellation import Satellite

LEVELS = {"TRACE": 5, "DEBUG": 10, "INFO": 20, "WARNING": 30, "STATUS": 35, "CRITICAL": 40}


def bench_type(_name: str) -> type[Satellite]:
    """Sputnik plus a log-burst command (type name kept: canonical name Sputnik.NAME)."""
    from constellation import command
    from satellites.sputnik import Sputnik

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


def main() -> int:
    # The real satellite-run code path, with the satellite class swapped for the bench subclass (loaded
    # where satellite-run loads its type: after the ports are bound and announced).
    cli.load_satellite_type = bench_type
    return cli.main(["Sputnik", *sys.argv[1:]])


if __name__ == "__main__":
    sys.exit(main())
