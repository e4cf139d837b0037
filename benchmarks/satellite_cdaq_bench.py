"""A ConstellationDAQ 1.0.2 Mariner with one extra command, for the satellite benchmark (oracle venv only).

``python benchmarks/satellite_cdaq_bench.py -g GROUP -n NAME -i lo --cmd-port P --mon-port Q ...`` runs the
real 1.0.2 ``Mariner`` (canonical name ``Mariner.NAME``) plus ``burst(n, level)``, which emits ``n`` log
records at ``level`` from the command thread as fast as 1.0.2's logging allows and then replies. It is the
only way to make a 1.0.2 satellite produce a log burst on demand; everything else is stock Mariner.
"""

from __future__ import annotations

import logging
from typing import Any

from constellation.core import __version__
from constellation.core.commandmanager import cscp_requestable
from constellation.core.logging import setup_cli_logging
from constellation.core.satellite import SatelliteArgumentParser
from constellation.satellites.Mariner.Mariner import Mariner as StockMariner


class Mariner(StockMariner):
    """Stock 1.0.2 Mariner plus a log-burst command (class name kept: canonical name Mariner.NAME)."""

    @cscp_requestable()
    def burst(self, n: int, level: str) -> tuple[str, Any, dict[str, Any]]:
        """Emit n log records at the given level (INFO, WARNING, ...) as fast as possible."""
        levelno = logging.getLevelNamesMapping()[level.upper()]
        for i in range(n):
            self.log.log(levelno, "burst %d", i)
        return f"emitted {n}", n, {}


def main() -> None:
    parser = SatelliteArgumentParser(description=__doc__, version=__version__)
    args = vars(parser.parse_args())
    setup_cli_logging(args.pop("level"))
    Mariner(**args).run_satellite()


if __name__ == "__main__":
    main()
