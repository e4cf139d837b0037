"""The benchmark satellite's ``--unchecked-log`` experiment (``benchmarks/satellite_ours_bench.py``).

It must do what docs/benchmarks.md says it does: the first record per level takes the real fast path,
every later one is queued with that record's route and tags and a fresh text and time, skipping the
checks (shown by a filter added afterwards that the experiment ignores and the real path obeys). The
class patch is undone after each test. A publisher on a loopback XPUB (its socket task not running,
no subscriber connected); the subscription is handed to it as that task would.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Callable

import pytest
import zmq
import zmq.asyncio

from benchmarks import satellite_ours_bench
from constellation import cli
from constellation.monitoring import CmdpLogHandler, MonitoringPublisher
from constellation.satlog import SatelliteLog

NAME = "Sputnik.Unchecked"
Rig = tuple[SatelliteLog, MonitoringPublisher]


@pytest.fixture
async def new_rig(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Callable[[], Rig]]:
    """Rigs are made inside the test: pytest attaches its capture handlers to every non-propagating
    logger when a test phase begins, which would (rightly) send every record down the normal path."""
    monkeypatch.setattr(SatelliteLog, "_fast", SatelliteLog._fast)  # restored after the test
    ctx = zmq.asyncio.Context()
    loggers: list[logging.Logger] = []

    def make() -> Rig:
        sock = ctx.socket(zmq.XPUB)
        sock.setsockopt(zmq.LINGER, 0)
        sock.bind_to_random_port("tcp://127.0.0.1")
        logger = logging.getLogger(f"unchecked{uuid.uuid4().hex[:10]}")
        logger.setLevel(logging.DEBUG)
        logger.propagate = False
        loggers.append(logger)
        log = SatelliteLog(logger, {"satellite": NAME, "component": "SPUTNIK"})
        publisher = MonitoringPublisher(sock, NAME, log, queue_size=100)
        publisher._on_subscription([b"\x01LOG/INFO"])
        logger.addHandler(CmdpLogHandler(publisher, NAME))
        return log, publisher

    try:
        yield make
    finally:
        for logger in loggers:
            for h in list(logger.handlers):
                logger.removeHandler(h)
            logger.filters.clear()
        ctx.destroy(linger=0)


async def test_later_records_reuse_the_first_ones_route_and_tags_with_fresh_text(
    new_rig: Callable[[], Rig],
) -> None:
    log, publisher = new_rig()
    satellite_ours_bench.unchecked_log()
    log.info("burst %d", 0)
    log.info("burst %d", 1)  # another line: the real path would tag this record with it
    log.info("burst %d", 2)
    queue = list(publisher._queue)
    assert [r[2] for r in queue] == ["burst 0", "burst 1", "burst 2"]
    first = queue[0]
    assert first[1] == "SPUTNIK"
    assert isinstance(first[3], bytes)
    assert b"satellite_ours_bench.py" in first[3]  # the first record's caller is the experiment's wrapper
    for record in queue[1:]:
        assert record[:2] == first[:2]
        assert record[3] is first[3]
        assert record[4] >= first[4]
    log.debug("not subscribed")  # the level is enabled, but the real path finds no DEBUG subscription
    log.logger.setLevel(logging.WARNING)
    log.info("disabled")  # the level check is kept
    assert len(publisher._queue) == 3


async def test_it_skips_the_checks_that_the_real_fast_path_makes(new_rig: Callable[[], Rig]) -> None:
    log, publisher = new_rig()
    log.info("real 0")
    log.logger.addFilter(lambda record: False)
    log.info("real 1")  # the real path hands it to logging, whose filter drops it
    assert [r[2] for r in publisher._queue] == ["real 0"]
    log.logger.filters.clear()
    satellite_ours_bench.unchecked_log()
    log.info("unchecked 0")
    log.logger.addFilter(lambda record: False)
    log.info("unchecked 1")  # queued although a filter now rejects every record: unsound on purpose
    assert [r[2] for r in publisher._queue] == ["real 0", "unchecked 0", "unchecked 1"]


def test_main_takes_the_flag_out_and_the_type_applies_it_when_it_loads(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(SatelliteLog, "_fast", SatelliteLog._fast)
    monkeypatch.setattr(cli, "load_satellite_type", cli.load_satellite_type)
    monkeypatch.setitem(satellite_ours_bench._experiment, "unchecked_log", False)
    seen: list[list[str]] = []
    monkeypatch.setattr(cli, "main", lambda argv: seen.append(argv) or 0)
    plain = SatelliteLog._fast
    assert satellite_ours_bench.main(["--name", "A", "--unchecked-log", "--level", "WARNING"]) == 0
    assert seen == [["Sputnik", "--name", "A", "--level", "WARNING"]]
    assert cli.load_satellite_type is satellite_ours_bench.bench_type
    # not before the type loads (satellite-run offers the ports first, without the runtime's imports)
    assert SatelliteLog._fast is plain
    satellite_ours_bench.bench_type("Sputnik")
    assert SatelliteLog._fast is not plain
