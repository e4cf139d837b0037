"""`ConsoleHandler`: terminal log lines flushed once per loop iteration, never held back for long."""

from __future__ import annotations

import asyncio
import logging
import os
import tempfile
import threading
import time
from collections.abc import Iterator

import pytest

from constellation.consolelog import MAX_DELAY_S, ConsoleFormatter, ConsoleHandler
from tests.harness import eventually, wait_until

pytestmark = pytest.mark.timeout(30)


class Sink:
    """A file descriptor to log to, and what has reached it (not what sits in a buffer)."""

    def __init__(self) -> None:
        self.fd, self.path = tempfile.mkstemp(prefix="consolelog-")
        self.handler = ConsoleHandler(self.fd)
        self.handler.setFormatter(ConsoleFormatter("%(levelname)s [%(component)s] %(message)s"))
        self.flushes = 0
        flush = self.handler.flush

        def counting_flush() -> None:
            self.flushes += 1
            flush()

        self.handler.flush = counting_flush  # type: ignore[method-assign]
        self.logger = logging.getLogger(f"consolelog.{id(self)}.sputnik")
        self.logger.propagate = False
        self.logger.setLevel(1)
        self.logger.addHandler(self.handler)

    def lines(self) -> list[str]:
        with open(self.path, encoding="utf-8") as f:
            return f.read().splitlines()

    def close(self) -> None:
        self.logger.removeHandler(self.handler)
        self.handler.close()
        os.close(self.fd)
        os.unlink(self.path)


@pytest.fixture
def sink() -> Iterator[Sink]:
    s = Sink()
    yield s
    s.close()


def test_without_a_loop_every_record_is_written_at_once(sink: Sink) -> None:
    sink.logger.info("one")
    assert sink.lines() == ["INFO [SPUTNIK] one"]
    sink.logger.log(35, "two", extra={"component": "FSM"})
    sink.logger.log(5, "three")
    assert sink.lines()[1:] == ["STATUS [FSM] two", "TRACE [SPUTNIK] three"]


async def test_a_burst_from_a_thread_is_flushed_by_the_loop_in_few_writes(sink: Sink) -> None:
    sink.handler.attach(asyncio.get_running_loop())

    def burst() -> None:
        for i in range(2000):
            sink.logger.info("burst %d", i)

    await asyncio.to_thread(burst)
    await eventually(lambda: len(sink.lines()) == 2000, timeout=5)
    assert sink.lines()[-1] == "INFO [SPUTNIK] burst 1999"
    assert sink.flushes < 200  # per loop iteration (or MAX_DELAY_S), not per record


async def test_a_line_logged_on_the_loop_is_out_after_the_iteration(sink: Sink) -> None:
    sink.handler.attach(asyncio.get_running_loop())
    sink.logger.warning("from the loop")
    assert sink.lines() == []  # buffered until the loop comes round
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert sink.lines() == ["WARNING [SPUTNIK] from the loop"]


async def test_a_blocked_loop_holds_lines_back_no_longer_than_max_delay(sink: Sink) -> None:
    sink.handler.attach(asyncio.get_running_loop())
    stop = threading.Event()

    def steady() -> None:  # a record every 10 ms while the loop is blocked
        i = 0
        while not stop.is_set():
            sink.logger.info("tick %d", i)
            i += 1
            time.sleep(0.01)

    thread = threading.Thread(target=steady)
    thread.start()
    try:
        # This coroutine blocks the loop while it waits: only the MAX_DELAY_S rule can flush.
        wait_until(lambda: len(sink.lines()) >= 3, timeout=MAX_DELAY_S * 20)
        assert sink.lines()[0] == "INFO [SPUTNIK] tick 0"
    finally:
        stop.set()
        thread.join(5)


async def test_detach_writes_out_the_buffer_and_returns_to_flush_per_record(sink: Sink) -> None:
    sink.handler.attach(asyncio.get_running_loop())
    sink.logger.info("buffered")
    sink.handler.detach()
    assert sink.lines() == ["INFO [SPUTNIK] buffered"]
    sink.logger.info("direct")
    assert sink.lines()[-1] == "INFO [SPUTNIK] direct"


def test_a_closed_loop_falls_back_to_flushing_at_once(sink: Sink) -> None:
    loop = asyncio.new_event_loop()
    sink.handler.attach(loop)
    loop.close()
    sink.logger.info("after the loop")
    assert sink.lines() == ["INFO [SPUTNIK] after the loop"]
