"""`ConsoleHandler`: terminal log lines written in batches by a thread, never by a logging call on a
running loop, never held back for long, and a stalled terminal blocks no logging call."""

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

from constellation.consolelog import MAX_DELAY_S, PENDING_LIMIT, ConsoleFormatter, ConsoleHandler
from tests.harness import eventually, holds_for, wait_until
from tests.runtime.test_console_stall import console_logger

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
        self.flushes = 0  # batches written (by the writer thread, `flush`, `detach`)
        flush = self.handler._flush

        def counting_flush(detach: bool = False) -> bool:
            self.flushes += 1
            return flush(detach)

        self.handler._flush = counting_flush  # type: ignore[method-assign]
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


def test_a_line_shows_the_topic_it_goes_out_on() -> None:
    """The runtime's module loggers print the CMDP topic of their layer (discovery on LINK, as 1.0.2)."""
    formatter = ConsoleFormatter("[%(component)s] %(message)s")

    def line(logger: str) -> str:
        return formatter.format(logging.LogRecord(logger, logging.INFO, __file__, 1, "x", None, None))

    assert line("constellation.discovery.chirp") == "[LINK] x"
    assert line("constellation.peers.monitor") == "[LINK] x"
    assert line("constellation.metrics") == "[MNTR] x"
    assert line("satellites.sputnik") == "[SPUTNIK] x"


async def test_a_burst_from_a_thread_is_written_in_few_flushes(sink: Sink) -> None:
    sink.handler.attach(asyncio.get_running_loop())

    def burst() -> None:
        for i in range(2000):
            sink.logger.info("burst %d", i)

    await asyncio.to_thread(burst)
    await eventually(lambda: len(sink.lines()) == 2000, timeout=5)
    assert sink.lines() == [f"INFO [SPUTNIK] burst {i}" for i in range(2000)]
    # the writer takes what came in while it wrote: how many batches depends on the machine's load
    # (with a busy core, a few records a batch); below, the exact count when it cannot run meanwhile
    assert sink.flushes < 1000


async def test_records_logged_while_the_writer_waits_are_written_in_one_flush(sink: Sink) -> None:
    sink.handler.attach(asyncio.get_running_loop())
    with sink.handler.lock:  # type: ignore[union-attr]  # the writer cannot take a batch meanwhile
        for i in range(2000):
            sink.logger.info("burst %d", i)
    await eventually(lambda: len(sink.lines()) == 2000, timeout=5)
    assert sink.lines() == [f"INFO [SPUTNIK] burst {i}" for i in range(2000)]
    assert sink.flushes == 1


async def test_a_line_logged_on_the_loop_is_written_without_the_loop(sink: Sink) -> None:
    sink.handler.attach(asyncio.get_running_loop())
    sink.logger.warning("from the loop")
    # The loop does not come round while this coroutine waits: the writer thread writes the line.
    wait_until(lambda: sink.lines() == ["WARNING [SPUTNIK] from the loop"], timeout=5)


async def test_lines_from_a_thread_are_written_while_the_loop_is_blocked(sink: Sink) -> None:
    sink.handler.attach(asyncio.get_running_loop())

    def three() -> None:
        for i in range(3):
            sink.logger.info("tick %d", i)

    thread = threading.Thread(target=three)
    thread.start()
    thread.join(5)
    # This coroutine blocks the loop while it waits.
    wait_until(lambda: len(sink.lines()) == 3, timeout=5)
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
    wait_until(lambda: sink.lines() == ["WARNING [SPUTNIK] last words"], timeout=5)


def test_a_loop_that_never_runs_again_does_not_hold_lines_back(sink: Sink) -> None:
    loop = asyncio.new_event_loop()  # stopped: its queued flush never runs
    try:
        sink.handler.attach(loop)
        sink.logger.info("queued on a stopped loop")
        wait_until(lambda: sink.lines() == ["INFO [SPUTNIK] queued on a stopped loop"], timeout=5)
        sink.logger.info("and again")
        wait_until(lambda: len(sink.lines()) == 2, timeout=5)
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


def line_buffered(fd: int) -> io.TextIOWrapper:
    """A text stream on `fd` as sys.stderr is one: line-buffered, on a buffered binary writer."""
    stream = open(fd, "w", encoding="utf-8", closefd=False)  # noqa: SIM115
    stream.reconfigure(line_buffering=True)
    return stream


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
        flushes = [0]
        flush = handler._flush

        def counting_flush(detach: bool = False) -> bool:
            flushes[0] += 1
            return flush(detach)

        handler._flush = counting_flush  # type: ignore[method-assign]
        handler.attach(asyncio.get_running_loop())
        for i in range(3):
            logger.warning("x" * 70_000 + str(i))  # more than the buffer holds
        logger.warning("buffered")
        await loop_iterations(50)
        assert failures == []  # nothing raised into the loop, logged and written again
        wait_until(lambda: flushes[0] >= 1, timeout=5)  # the writer tried
        start = flushes[0]
        # the writer tries again no more often than every MAX_DELAY_S while new lines come: no spinning
        holds_for(lambda: assert_at_most(flushes[0] - start, 2 + 0.5 / MAX_DELAY_S), 0.5, interval=0.1)
        logger.warning("and more")
        handler.detach()  # serve's finally: must not raise out of satellite-run either
        handler.close()
    finally:
        exceptions.removeHandler(counter)
        exceptions.removeHandler(handler)
        logger.removeHandler(handler)
        with contextlib.suppress(OSError):
            stream.close()
        os.close(w)


def assert_at_most(value: float, bound: float) -> None:
    assert value <= bound


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


async def test_a_stalled_stream_blocks_no_logging_call_and_counts_what_it_drops() -> None:
    """A terminal that stops reading (a pipe nobody reads): logging calls on the loop and from threads
    keep returning at once, the writer waits, lines beyond `PENDING_LIMIT` are dropped and counted,
    and once the reader reads everything kept arrives in order, then the count."""
    r, w = os.pipe()
    stream = line_buffered(w)
    handler, logger = console_logger(stream, "stall")
    line = "y" * 1000
    try:
        handler.attach(asyncio.get_running_loop())
        n = 2 * (PENDING_LIMIT // len(line))  # twice what fits in the pipe, the buffer and the list
        slowest = 0.0
        for i in range(n):  # on the loop's thread
            t0 = time.monotonic()
            logger.warning("%05d %s", i, line)
            slowest = max(slowest, time.monotonic() - t0)
        assert slowest < 0.5  # a logging call never waits for the stream (normally well under 1 ms)
        assert handler._dropped > 0  # the pending list is full: the rest was counted
        await asyncio.to_thread(logger.warning, "from a thread")  # returns too (dropped: list full)
        os.set_blocking(r, False)
        got = bytearray()

        def read_all() -> bytes:
            with contextlib.suppress(BlockingIOError):
                while chunk := os.read(r, 1 << 16):
                    got.extend(chunk)
            return bytes(got)

        wait_until(lambda: b"log lines dropped" in read_all(), timeout=10)
        lines = bytes(got).decode().splitlines()
        kept = [int(x.split()[0]) for x in lines if x[:1].isdigit()]
        assert kept == list(range(len(kept)))  # the first lines, in order, none lost in between
        assert len(kept) * (len(line) + 7) > PENDING_LIMIT  # the pending list's worth at least
        assert lines[-1].startswith("(")
        assert lines[-1].endswith(" log lines dropped: the terminal did not read them in time)")
        dropped = int(lines[-1].split()[0][1:])
        from_thread = lines.count("from a thread")  # queued or dropped, depending on the writer
        assert len(kept) + from_thread + dropped == n + 1  # every line written or counted
        logger.warning("after the stall")
        wait_until(lambda: read_all().endswith(b"after the stall\n"), timeout=5)
    finally:
        logger.removeHandler(handler)
        handler.close()
        with contextlib.suppress(OSError):
            stream.close()
        os.close(w)
        os.close(r)
