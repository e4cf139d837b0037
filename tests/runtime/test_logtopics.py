"""`constellation/logtopics.py` (bed3893 and its review): "the console shows the same topic" as the CMDP
record goes out on, for loggers that name no `component`. A logger's last name part may hold what a
CMDP topic cannot (`logging.getLogger("vendor.psu-2")`): the CMDP handler sends `PSU2`
(`logtopics.topic_component`), the console printed `PSU-2`."""

from __future__ import annotations

import logging

import pytest

from constellation.consolelog import ConsoleFormatter
from constellation.logtopics import logger_component
from protocols import cmdp
from tests.runtime.conftest import monitor_sub

pytestmark = pytest.mark.timeout(60)


def _console_topic(logger: str) -> str:
    record = logging.LogRecord(logger, logging.WARNING, __file__, 1, "x", None, None)
    return ConsoleFormatter("%(component)s").format(record)


@pytest.mark.parametrize(
    ("logger", "topic"),
    [
        ("vendor.psu-2", "PSU2"),
        ("vendor.Ünits", "ÜNITS"),  # str.isalnum: what topic_component keeps
        ("vendor.", "LOG"),  # nothing left: topic_component's fallback
        ("constellation.discovery.chirp", "LINK"),
        ("constellation.peers", "LINK"),
        ("constellation.discoveryx", "DISCOVERYX"),  # a prefix only at a dot
        ("satellites.sputnik", "SPUTNIK"),
    ],
)
async def test_the_console_shows_the_topic_the_record_goes_out_on(
    make_satellite, zctx, logger: str, topic: str
) -> None:
    sat = await make_satellite()
    sub = await monitor_sub(zctx, sat, b"LOG/WARNING/")
    logging.getLogger(logger).warning("review %s", logger)
    msg = await sub.until(lambda m: isinstance(m, cmdp.LogMessage) and m.text == f"review {logger}")
    assert msg.topic == topic
    assert _console_topic(logger) == topic


def test_logger_component_is_the_wire_topic_and_cached_consistently() -> None:
    for _ in range(2):  # the second answer comes from the cache
        assert logger_component("vendor.psu-2") == "PSU2"
        assert logger_component("constellation.heartbeat") == "LINK"
    # the satellite's own adapters name no component: their loggers' topics are 1.0.2's
    for logger, topic in (
        ("constellation.satellite", "CTRL"),
        ("constellation.lifecycle", "FSM"),
        ("constellation.heartbeat", "LINK"),
        ("constellation.monitoring", "MNTR"),
    ):
        assert logger_component(logger) == topic
