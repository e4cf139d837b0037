"""Listen to a group's logs and metrics with the real ConstellationDAQ 1.0.2 listener classes.

Runs in the oracle venv:  python listen_monitor.py GROUP TOPIC [TOPIC...]

Uses the same classes as the 1.0.2 ``Monitor`` tool (``StandaloneListener`` + ``MonitoringListener``,
CHIRP discovery of MONITORING services, one SUB socket per publisher). Prints ``{"event": "ready"}``
once listening, then one JSON line per received log record, metric or notification. Stops on SIGTERM.
"""

from __future__ import annotations

import json
import logging
import signal
import sys
from datetime import datetime
from typing import Any

from constellation.core.cmdp import Metric
from constellation.core.logging import setup_cli_logging
from constellation.tools.monitor import Monitor


def emit(**obj: Any) -> None:
    print(json.dumps(obj, default=str), flush=True)


class JsonMonitor(Monitor):
    """The 1.0.2 Monitor, reporting what it receives as JSON instead of rendering it."""

    def receive_log(self, record: logging.LogRecord) -> None:
        emit(
            event="log",
            sender=getattr(record, "sender", None),
            level=record.levelname,
            topic=record.name,
            message=record.getMessage(),
        )

    def receive_metric(self, sender: str, metric: Metric, timestamp: datetime, value: Any) -> None:
        emit(event="metric", sender=sender, name=metric.name, unit=metric.unit, value=value, time=timestamp)

    def receive_notification(self, sender: str, topics_prefix: str, topics: dict[str, str]) -> None:
        emit(event="notification", sender=sender, prefix=topics_prefix, topics=topics)


def main() -> int:
    group, *topics = sys.argv[1:]
    setup_cli_logging("WARNING")
    mon = JsonMonitor("oraclemon", group, None, None)
    mon.set_topics(topics)
    signal.signal(signal.SIGTERM, lambda *_: mon._com_thread_evt.set())
    emit(event="ready", topics=topics)
    mon.run_listener()
    return 0


if __name__ == "__main__":
    sys.exit(main())
