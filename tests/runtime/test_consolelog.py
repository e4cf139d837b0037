"""`ConsoleHandler`: terminal log lines flushed once per loop iteration, never held back for long."""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import os
import sys
import tempfile
import threading
import time
from collections.abc import Iterator

import pytest

from constellation.consolelog import MAX_DELAY_S, ConsoleFormatter, ConsoleHandler
from tests.harness import eventually, wait_until

pytestmark = pytest.mark.timeout(30)


async def loop_iterations(n: int) -> None:
    """Let the event loop come round `n` times: stepping it, not waiting for time to pass."""
    for _ in range(n):
        await asyncio.sleep(0)


class Sink:
    """A file descriptor to log to, and what has reached it (not what sits in a buffer)."""

    def __init__(self, encoding: str = "utf-8", unbuffered: bool = False) -> None:
        self.fd, self.path = tempfile.mkstemp(prefix="consolelog-")
        if unbuffered:  # sys.stderr under PYTHONUNBUFFERED: the text layer writes through to the descriptor
            raw = io.FileIO(self.fd, "w", closefd=False)
            self.stream = io.TextIOWrapper(raw, encoding, "backslashreplace", write_through=True)
        else:  # sys.stderr otherwise: a line-buffered text layer on a buffered binary writer
            self.stream = open(self.fd, "w", encoding=encoding, errors="backslashreplace", closefd=False)  # noqa: SIM115
            self.stream.reconfigure(line_buffering=True)
        self.handler = ConsoleHandler(self.stream)
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

    def raw(self) -> bytes:
        with open(self.path, "rb") as f:
            return f.read()

    def close(self) -> None:
        self.logger.removeHandler(self.handler)
        self.handler.close()
        self.stream.close()
        os.close(self.fd)
        os.unlink(self.path)


@pytest.fixture(params=["buffered", "unbuffered"])
def sink(request: pytest.FixtureRequest) -> Iterator[Sink]:
    s = Sink(unbuffered=request.param == "unbuffered")
    yield s
    s.close()


@pytest.fixture
def buffered_sink() -> Iterator[Sink]:
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
    assert sink.lines() == [f"INFO [SPUTNIK] burst {i}" for i in range(2000)]
    # one flush per loop iteration: how many iterations the burst spans depends on the machine's load
    # (with a busy core, under 3 records an iteration); below, the exact count for one iteration
    assert sink.flushes < 1000


async def test_records_of_one_loop_iteration_are_written_in_one_flush(sink: Sink) -> None:
    sink.handler.attach(asyncio.get_running_loop())
    await loop_iterations(1)
    t0 = time.monotonic()
    for i in range(2000):  # on the loop's thread: all within one iteration
        sink.logger.info("burst %d", i)
    took = time.monotonic() - t0
    await eventually(lambda: len(sink.lines()) == 2000, timeout=5)
    # the loop's flush, plus the watchdog's if the iteration outlasted MAX_DELAY_S (a loaded machine)
    assert sink.flushes <= 1 + int(took / MAX_DELAY_S)


async def test_a_line_logged_on_the_loop_is_out_after_the_iteration(sink: Sink) -> None:
    sink.handler.attach(asyncio.get_running_loop())
    sink.logger.warning("from the loop")
    assert sink.lines() == []  # buffered until the loop comes round
    await loop_iterations(2)
    assert sink.lines() == ["WARNING [SPUTNIK] from the loop"]


async def test_a_blocked_loop_holds_lines_back_no_longer_than_max_delay(sink: Sink) -> None:
    sink.handler.attach(asyncio.get_running_loop())

    def three() -> None:
        for i in range(3):
            sink.logger.info("tick %d", i)

    thread = threading.Thread(target=three)
    thread.start()
    thread.join(5)
    # This coroutine blocks the loop while it waits: only the MAX_DELAY_S rule can flush.
    wait_until(lambda: len(sink.lines()) == 3, timeout=MAX_DELAY_S * 20)
    assert sink.lines() == [f"INFO [SPUTNIK] tick {i}" for i in range(3)]


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


def watchdogs() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "console-log-flush"]


async def test_a_loop_blocked_after_the_last_line_does_not_hold_it_back(sink: Sink) -> None:
    # "connecting to the device" and then the loop hangs: the line is what shows where.
    sink.handler.attach(asyncio.get_running_loop())
    sink.logger.warning("last words")
    assert sink.lines() == []
    wait_until(lambda: sink.lines() == ["WARNING [SPUTNIK] last words"], timeout=MAX_DELAY_S * 40)


def test_a_loop_that_never_runs_again_does_not_hold_lines_back(sink: Sink) -> None:
    loop = asyncio.new_event_loop()  # stopped: its queued flush never runs
    try:
        sink.handler.attach(loop)
        sink.logger.info("queued on a stopped loop")
        wait_until(
            lambda: sink.lines() == ["INFO [SPUTNIK] queued on a stopped loop"], timeout=MAX_DELAY_S * 40
        )
        sink.logger.info("and again")
        wait_until(lambda: len(sink.lines()) == 2, timeout=MAX_DELAY_S * 40)
    finally:
        sink.handler.detach()
        loop.close()


async def test_lines_keep_their_order_with_direct_writes_to_the_stream(buffered_sink: Sink) -> None:
    # tracebacks, warnings and print(file=sys.stderr) go through sys.stderr's text layer, not the handler
    buffered_sink.handler.attach(asyncio.get_running_loop())
    buffered_sink.logger.warning("logged first")
    print("printed second", file=buffered_sink.stream)
    buffered_sink.logger.warning("logged third")
    await eventually(lambda: len(buffered_sink.lines()) == 3, timeout=5)
    assert buffered_sink.lines() == [
        "WARNING [SPUTNIK] logged first",
        "printed second",
        "WARNING [SPUTNIK] logged third",
    ]


async def test_a_flush_of_the_stream_writes_out_the_lines(buffered_sink: Sink) -> None:
    # what `satellite-run` does before os._exit, what interpreter exit and multiprocessing's children do
    buffered_sink.handler.attach(asyncio.get_running_loop())
    buffered_sink.logger.warning("pending")
    buffered_sink.stream.flush()
    assert buffered_sink.lines() == ["WARNING [SPUTNIK] pending"]


def pipe_without_reader() -> tuple[io.TextIOWrapper, int]:
    r, w = os.pipe()
    os.close(r)
    stream = open(w, "w", encoding="utf-8", closefd=False)  # noqa: SIM115
    stream.reconfigure(line_buffering=True)
    return stream, w


async def test_a_pipe_whose_reader_went_away_raises_nowhere_and_does_not_spin() -> None:
    stream, w = pipe_without_reader()
    handler = ConsoleHandler(stream)
    logger = logging.getLogger(f"consolelog.epipe{id(handler)}")
    logger.propagate = False
    logger.addHandler(handler)
    failures: list[logging.LogRecord] = []
    exceptions = logging.getLogger("asyncio")
    counter = logging.Handler()
    counter.emit = failures.append  # type: ignore[method-assign]
    exceptions.addHandler(counter)
    exceptions.addHandler(handler)  # as on the root logger of satellite-run
    errors: list[str] = []
    handler.handleError = lambda record: errors.append(record.getMessage())  # type: ignore[method-assign]
    try:
        logger.warning("without a loop")  # flushed at once: reported by handleError, not raised
        assert errors == ["without a loop"]
        handler.attach(asyncio.get_running_loop())
        for i in range(3):
            logger.warning("x" * 70_000 + str(i))  # more than the buffer holds
        logger.warning("buffered")
        await loop_iterations(50)
        assert failures == []  # no "Exception in callback" from the loop's flush, logged and flushed again
        handler.detach()  # serve's finally: must not raise out of satellite-run either
        handler.close()
    finally:
        exceptions.removeHandler(counter)
        exceptions.removeHandler(handler)
        logger.removeHandler(handler)
        with contextlib.suppress(OSError):
            stream.close()
        os.close(w)


def test_no_stream_drops_lines_and_a_stream_without_a_buffer_is_written_per_record(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sys, "stderr", None)  # Python started with descriptor 2 closed
    handler = ConsoleHandler()
    handler.handle(logging.makeLogRecord({"msg": "nowhere"}))
    handler.close()
    captured = io.StringIO()  # pytest's capture: no descriptor, no binary buffer
    monkeypatch.setattr(sys, "stderr", captured)
    handler = ConsoleHandler()
    loop = asyncio.new_event_loop()
    try:
        handler.attach(loop)  # nothing to batch: ignored
        handler.handle(logging.makeLogRecord({"msg": "captured"}))
        assert captured.getvalue() == "captured\n"
        assert watchdogs() == [] or all(t.daemon for t in watchdogs())
    finally:
        handler.close()
        loop.close()


@pytest.mark.parametrize("unbuffered", [False, True])
@pytest.mark.parametrize("encoding", ["utf-8", "latin-1", "ascii"])
async def test_encoding_and_lone_surrogates_as_the_stream_writes_them(
    encoding: str, unbuffered: bool
) -> None:
    text = "caf\u00e9 \u20ac \udcff end"
    batched, plain = Sink(encoding, unbuffered), Sink(encoding, unbuffered)
    try:
        plain.stream.write(f"INFO [SPUTNIK] {text}\n")  # what stderr's own text layer makes of it
        batched.handler.attach(asyncio.get_running_loop())
        batched.logger.info(text)
        await eventually(lambda: batched.raw() != b"", timeout=5)
        assert batched.raw() == plain.raw()
    finally:
        batched.close()
        plain.close()


async def test_detach_ends_the_watchdog_and_attach_starts_one(sink: Sink) -> None:
    before = set(watchdogs())
    sink.handler.attach(asyncio.get_running_loop())
    (mine,) = set(watchdogs()) - before
    assert mine.daemon
    sink.handler.detach()
    mine.join(5)
    assert not mine.is_alive()


def test_a_forked_child_flushes_its_lines_at_once(sink: Sink) -> None:
    loop = asyncio.new_event_loop()
    try:
        sink.handler.attach(loop)
        pid = os.fork()
        if pid == 0:  # the child: no loop runs here, no watchdog either; leaves without any flush
            try:
                sink.logger.warning("from the child")
            finally:
                os._exit(0)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert sink.lines() == ["WARNING [SPUTNIK] from the child"]
    finally:
        sink.handler.detach()
        loop.close()
