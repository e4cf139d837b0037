"""Our ``Sputnik`` plus one extra command, for the satellite benchmark.

``python benchmarks/satellite_ours_bench.py --name NAME --group GROUP [satellite-run options]`` runs
exactly what ``satellite-run Sputnik`` runs (same CLI code, logging set-up and shutdown path; canonical
name ``Sputnik.NAME``), with the satellite class extended by ``burst(n, level)``: emit ``n`` log records
at ``level`` from a worker thread (where sync commands and hooks run) as fast as possible, then reply.
It mirrors ``satellite_cdaq_bench.py`` for 1.0.2, so both satellites get the same log-burst request.
"""

from __future__ import annotations

import sys

from constellation import cli, command
from satellites.sputnik import Sputnik

LEVELS = {"TRACE": 5, "DEBUG": 10, "INFO": 20, "WARNING": 30, "STATUS": 35, "CRITICAL": 40}


class BenchSputnik(Sputnik):
    """Sputnik plus a log-burst command (type name kept: canonical name Sputnik.NAME)."""

    satellite_type = "Sputnik"

    @command
    def burst(self, n: int, level: str) -> tuple[str, object]:
        """Emit n log records at the given level (INFO, WARNING, ...) as fast as possible."""
        levelno = LEVELS[level.upper()]
        for i in range(n):
            self.log.log(levelno, "burst %d", i)
        return f"emitted {n}", n


def main() -> int:
    # The real satellite-run code path, with the satellite class swapped for the bench subclass.
    cli.load_satellite_type = lambda _name: BenchSputnik  # type: ignore[assignment]
    return cli.main(["Sputnik", *sys.argv[1:]])


if __name__ == "__main__":
    sys.exit(main())
