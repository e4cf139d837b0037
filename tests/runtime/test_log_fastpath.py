"""`SatelliteLog`'s fast path: the same wire bytes as the normal logging path, and every fallback.

Each test gets a private logger hierarchy (`<unique>` with `propagate=False`, holding our
`CmdpLogHandler`, and its child `<unique>.mod` the adapter logs to), so pytest's own root handlers are
not in the way. The publisher is a recorder that notes which pushes came from `CmdpLogHandler.emit`
(the normal path: a LogRecord through the handler); every other push is the fast path's. Both queue the
tags pre-packed (`bytes`), except where a tag cannot be packed (the dict, dropped by the encoder).
"""

from __future__ import annotations

import _thread
import logging
import os
import sys
import threading
import time
import uuid
from collections import UserDict
from collections.abc import Callable, Iterator
from typing import Any

import msgpack
import pytest

from constellation.fastwire import LogEncoder
from constellation.monitoring import CmdpLogHandler, RawLog
from constellation.satlog import SatelliteLog
from protocols import cmdp
from tests.harness import wait_until

NAME = "Sputnik.Fast"


class Recorder:
    """A MonitoringPublisher stand-in: every topic wanted unless told otherwise; pushes recorded."""

    def __init__(self) -> None:
        self.pushed: list[RawLog] = []
        self.asked: list[bytes] = []
        self.wanted: Callable[[bytes], bool] = lambda _topic: True
        self.topic_wanted: dict[bytes, bool] = {}  # the publisher's cache: empty, so `wants` is asked

    def wants(self, topic: bytes) -> bool:
        self.asked.append(topic)
        return self.wanted(topic)

    def push(self, msg: RawLog) -> bool:
        if sys._getframe(1).f_code is CmdpLogHandler.emit.__code__:
            _VIA_HANDLER.add(id(msg))
        self.pushed.append(msg)
        return True


#: ids of the recorded messages the handler pushed (the messages stay referenced while a test checks)
_VIA_HANDLER: set[int] = set()


class Rig:
    def __init__(self) -> None:
        _VIA_HANDLER.clear()
        self.parent = logging.getLogger(f"lfp{uuid.uuid4().hex[:10]}")
        self.parent.propagate = False
        self.parent.setLevel(1)  # everything, TRACE (5) included
        self.logger = logging.getLogger(f"{self.parent.name}.mod")
        self.pub = Recorder()
        self.handler = CmdpLogHandler(self.pub, NAME)  # type: ignore[arg-type]
        self.parent.addHandler(self.handler)
        self.extra = {"satellite": NAME, "component": "SPUTNIK"}
        self.log = SatelliteLog(self.logger, self.extra)
        self.stock = logging.LoggerAdapter(self.logger, self.extra)

    def take(self) -> list[RawLog]:
        out, self.pub.pushed = self.pub.pushed, []
        return out

    def close(self) -> None:
        for lg in (self.parent, self.logger):
            for h in list(lg.handlers):
                lg.removeHandler(h)
            lg.filters.clear()
            lg.disabled = False


@pytest.fixture
def new_rig() -> Iterator[Callable[[], Rig]]:
    """Rigs are made inside the test: pytest attaches its capture handler to every non-propagating
    logger when a test phase begins, which would (rightly) send everything down the normal path."""
    made: list[Rig] = []

    def make() -> Rig:
        made.append(Rig())
        return made[-1]

    yield make
    for r in made:
        r.close()


@pytest.fixture
def frozen_time(monkeypatch: pytest.MonkeyPatch) -> float:
    now = 1_763_800_000.123456
    monkeypatch.setattr(time, "time", lambda: now)
    return now


def fast(msg: RawLog) -> bool:
    return id(msg) not in _VIA_HANDLER


def tags_of(msg: RawLog) -> dict[str, Any]:
    raw = msg[3]
    return msgpack.unpackb(raw) if isinstance(raw, bytes) else raw


def wire(msg: RawLog) -> list[bytes]:
    return LogEncoder(NAME).encode(*msg)


def normal(rig: Rig) -> Iterator[None]:
    """Forces the normal path for the duration: a pass-through filter on the logger."""
    return _with_filter(rig.logger)


def _with_filter(lg: logging.Logger) -> Iterator[None]:
    class _Ctx:
        def __enter__(self) -> None:
            lg.addFilter(_pass)

        def __exit__(self, *exc: object) -> None:
            lg.removeFilter(_pass)

    return _Ctx()  # type: ignore[return-value]


def _pass(record: logging.LogRecord) -> bool:
    return True


# -- byte identity ------------------------------------------------------------------------------------

CALLS: list[tuple[str, Callable[[logging.LoggerAdapter[logging.Logger]], None]]] = [
    ("info", lambda a: a.info("burst %d", 7)),
    ("debug", lambda a: a.debug("plain")),
    ("warning", lambda a: a.warning("w %s and %r", "x", [1])),
    ("error", lambda a: a.error("e")),  # ERROR goes out as CRITICAL
    ("critical", lambda a: a.critical("c %s", "ü✓")),
    ("log-status", lambda a: a.log(35, "status %05.1f", 3.14159)),
    ("log-trace", lambda a: a.log(5, "trace")),
    ("log-odd-level", lambda a: a.log(27, "between INFO and WARNING")),
    ("mapping", lambda a: a.info("%(a)s-%(b)d", {"a": "x", "b": 2})),
    ("empty-mapping", lambda a: a.info("m %s", {})),  # not unpacked: formats the dict
    ("percent-no-args", lambda a: a.info("100% sure")),
    ("bad-format", lambda a: a.info("%d items", "many")),  # getMessage raises: the handler sends msg
    ("too-few-args", lambda a: a.info("%s %s", 1)),
    ("object-msg", lambda a: a.info(ValueError("boom"))),
    ("tuple-arg", lambda a: a.info("%s", (1, 2))),
    ("userdict-mapping", lambda a: a.info("%(a)s", UserDict(a=1))),  # a Mapping that is not a dict
    ("str-subclass-msg", lambda a: a.info(_Text("sub %s"), "x")),
    ("bool-and-none-args", lambda a: a.info("%s %s", True, None)),
]


class _Text(str):
    def __str__(self) -> str:
        return "text " + super().__str__()


def _emit_both(rig: Rig, call: Callable[[logging.LoggerAdapter[logging.Logger]], None]) -> list[RawLog]:
    """The same call site through the fast path, the normal path of ours, and a stock LoggerAdapter."""
    out = []
    for adapter, force_normal in ((rig.log, False), (rig.log, True), (rig.stock, False)):
        if force_normal:
            with normal(rig):
                call(adapter)
        else:
            call(adapter)
        (msg,) = rig.take()
        out.append(msg)
    return out


@pytest.mark.parametrize("case", [c[0] for c in CALLS])
def test_fast_path_wire_bytes_equal_the_normal_path(
    new_rig: Callable[[], Rig], frozen_time: float, case: str
) -> None:
    rig = new_rig()
    call = dict(CALLS)[case]
    quick, slow, stock = _emit_both(rig, call)
    assert fast(quick)
    assert not fast(slow)
    assert not fast(stock)
    assert tags_of(slow)["funcName"] == "<lambda>"
    assert tags_of(slow)["filename"] == "test_log_fastpath.py"
    assert wire(quick) == wire(slow) == wire(stock)
    # and the normal path's frames are what the validating codec gives for the record
    level, topic, text, _, ns = slow
    assert wire(slow) == cmdp.encode(cmdp.LogMessage(NAME, level, topic, text, tags_of(slow), ns))


@pytest.mark.parametrize(("method", "level"), [("trace", cmdp.Level.TRACE), ("status", cmdp.Level.STATUS)])
def test_constellation_levels_trace_and_status(
    new_rig: Callable[[], Rig], frozen_time: float, method: str, level: cmdp.Level
) -> None:
    """1.0.2's satellite logger has `trace` and `status`; ours too, fast and normal path alike."""
    rig = new_rig()

    def call(a: logging.LoggerAdapter[logging.Logger]) -> None:
        getattr(a, method)("%s at %d", method, int(level))

    call(rig.log)
    (quick,) = rig.take()
    with normal(rig):
        call(rig.log)
    (slow,) = rig.take()
    assert fast(quick)
    assert not fast(slow)
    assert quick[0] is level
    assert quick[2] == f"{method} at {int(level)}"
    assert not fast(slow)
    assert tags_of(slow)["funcName"] == "call"  # the caller, not our method
    assert wire(quick) == wire(slow)
    assert wire(quick)[0] == f"LOG/{level.name}/SPUTNIK".encode()


def test_unpackable_tags_fall_back_instead_of_raising(new_rig: Callable[[], Rig]) -> None:
    """A thread name msgpack cannot encode (a lone surrogate, e.g. from device bytes) must not make the
    log call raise in the caller: the record takes the normal path, as with a stock adapter."""
    rig = new_rig()
    result: list[BaseException | None] = []

    def work() -> None:
        threading.current_thread().name = "dev-\udcff"
        try:
            rig.log.info("from a badly named thread")
            result.append(None)
        except BaseException as exc:  # the failure this test is about
            result.append(exc)

    t = threading.Thread(target=work)
    t.start()
    t.join(10)
    assert result == [None]
    (msg,) = rig.take()
    assert not fast(msg)  # normal path: the publisher drops it when encoding, counted as before
    assert isinstance(msg[3], dict)
    assert msg[3]["threadName"] == "dev-\udcff"


def test_identical_from_worker_threads_with_changing_names(
    new_rig: Callable[[], Rig], frozen_time: float
) -> None:
    rig = new_rig()
    results: list[list[RawLog]] = []

    def work() -> None:
        for name in ("worker-a", "worker-b"):
            threading.current_thread().name = name
            results.append(_emit_both(rig, lambda a: a.info("from %s", "thread")))

    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(results) == 6
    for quick, slow, stock in results:
        assert fast(quick)
        assert wire(quick) == wire(slow) == wire(stock)
    names = {msgpack.unpackb(r[0][3])["threadName"] for r in results}
    assert names == {"worker-a", "worker-b"}
    assert len({msgpack.unpackb(r[0][3])["thread"] for r in results}) >= 1


def test_process_tag_is_the_childs_after_a_fork(new_rig: Callable[[], Rig], frozen_time: float) -> None:
    """The pid is cached (a system call per record otherwise); a forked child must send its own."""
    rig = new_rig()
    rig.log.info("parent")
    (parent,) = rig.take()
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: log through both paths, report the wire bytes, exit at once
        try:
            quick, slow, stock = _emit_both(rig, lambda a: a.info("child"))
            same = fast(quick) and wire(quick) == wire(slow) == wire(stock)
            os.write(write_end, msgpack.packb([same, msgpack.unpackb(quick[3])["process"]]))
        finally:
            os._exit(0)
    os.close(write_end)
    try:
        with os.fdopen(read_end, "rb") as r:
            ok, child_pid = msgpack.unpackb(r.read())
    finally:
        os.waitpid(pid, 0)
    assert ok
    assert child_pid == pid
    assert msgpack.unpackb(parent[3])["process"] == os.getpid() != pid


def test_caller_behind_logging_frames_is_found(new_rig: Callable[[], Rig], frozen_time: float) -> None:
    rig = new_rig()
    # `warn` (deprecated) is logging's code calling our `warning`: findCaller skips it, so must we
    with pytest.warns(DeprecationWarning, match="warn"):
        rig.log.warn("old")
    (quick,) = rig.take()
    with normal(rig), pytest.warns(DeprecationWarning, match="warn"):
        rig.log.warn("old")
    (slow,) = rig.take()
    assert fast(quick)
    q, s = tags_of(quick), tags_of(slow)
    assert not fast(slow)
    assert q["funcName"] == s["funcName"] == "test_caller_behind_logging_frames_is_found"
    assert q["lineno"] == s["lineno"] - 3


def test_time_is_the_record_time(new_rig: Callable[[], Rig]) -> None:
    rig = new_rig()
    before = time.time_ns()
    rig.log.info("now")
    after = time.time_ns()
    ((_, _, _, _, ns),) = rig.take()
    assert before // 1000 * 1000 <= ns <= after
    assert ns % 1000 == 0


# -- nothing to do ------------------------------------------------------------------------------------


def test_unsubscribed_topic_builds_nothing(
    new_rig: Callable[[], Rig], monkeypatch: pytest.MonkeyPatch
) -> None:
    rig = new_rig()
    records: list[str] = []
    real = logging.Logger.makeRecord

    def counting(self: logging.Logger, *args: Any, **kwargs: Any) -> logging.LogRecord:
        records.append(self.name)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(logging.Logger, "makeRecord", counting)
    rig.pub.wanted = lambda topic: topic == b"LOG/WARNING/SPUTNIK"
    rig.log.info("nobody listens")
    assert rig.take() == []
    assert records == []
    assert rig.pub.asked == [b"LOG/INFO/SPUTNIK"]
    rig.log.warning("someone listens")
    assert [m[2] for m in rig.take()] == ["someone listens"]
    assert records == []


def test_level_changes_at_runtime(new_rig: Callable[[], Rig]) -> None:
    rig = new_rig()
    rig.logger.setLevel(logging.WARNING)
    rig.log.info("dropped")
    rig.log.debug("dropped")
    assert rig.take() == []
    assert rig.pub.asked == []
    rig.logger.setLevel(logging.NOTSET)  # back to the parent's level (1)
    rig.log.debug("kept")
    assert [(fast(m), m[2]) for m in rig.take()] == [(True, "kept")]
    logging.disable(logging.INFO)
    try:
        rig.log.info("disabled globally")
        assert rig.take() == []
    finally:
        logging.disable(logging.NOTSET)


def test_disabled_logger_emits_nothing(new_rig: Callable[[], Rig]) -> None:
    rig = new_rig()
    rig.logger.disabled = True
    rig.log.warning("x")
    assert rig.take() == []


# -- fallbacks: every one goes through logging, and gives the same CMDP message ------------------------


class Capture(logging.Handler):
    def __init__(self, level: int = logging.NOTSET) -> None:
        super().__init__(level)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.mark.parametrize("where", ["logger", "parent"])
def test_another_handler_that_takes_the_record_gets_it(new_rig: Callable[[], Rig], where: str) -> None:
    rig = new_rig()
    cap = Capture(logging.INFO)
    (rig.logger if where == "logger" else rig.parent).addHandler(cap)
    rig.log.info("printed %d", 1)
    rig.log.debug("below the console level")
    msgs = rig.take()
    assert [(fast(m), m[2]) for m in msgs] == [(False, "printed 1"), (True, "below the console level")]
    assert [r.getMessage() for r in cap.records] == ["printed 1"]
    assert cap.records[0].lineno == msgpack.unpackb(msgs[1][3])["lineno"] - 1


def test_handler_added_later_is_never_skipped(new_rig: Callable[[], Rig]) -> None:
    rig = new_rig()
    rig.log.info("before")
    cap = Capture()
    rig.parent.addHandler(cap)
    rig.log.info("after")
    rig.parent.removeHandler(cap)
    rig.log.info("removed again")
    assert [(fast(m), m[2]) for m in rig.take()] == [
        (True, "before"),
        (False, "after"),
        (True, "removed again"),
    ]
    assert [r.msg for r in cap.records] == ["after"]


def test_handler_level_changes_at_runtime(new_rig: Callable[[], Rig]) -> None:
    rig = new_rig()
    cap = Capture(logging.CRITICAL)
    rig.parent.addHandler(cap)
    rig.log.warning("one")
    cap.setLevel(logging.WARNING)
    rig.log.warning("two")
    assert [(fast(m), m[2]) for m in rig.take()] == [(True, "one"), (False, "two")]
    assert [r.msg for r in cap.records] == ["two"]


def test_handlers_beyond_propagate_false_do_not_count(new_rig: Callable[[], Rig]) -> None:
    rig = new_rig()
    grand = logging.getLogger(rig.parent.name.rpartition(".")[0] or "")  # the root: pytest's handlers
    assert grand.handlers, "pytest's capture handlers on the root logger"
    rig.log.info("x")
    assert fast(rig.take()[0])
    rig.parent.propagate = True  # now the root's handlers would see it
    try:
        rig.log.info("y")
        assert not fast(rig.take()[0])
    finally:
        rig.parent.propagate = False


@pytest.mark.parametrize("where", ["logger filter", "our handler filter", "other handler filter"])
def test_any_filter_takes_the_normal_path(new_rig: Callable[[], Rig], where: str) -> None:
    rig = new_rig()
    seen: list[str] = []

    def note(record: logging.LogRecord) -> bool:
        seen.append(record.getMessage())
        return True

    if where == "logger filter":
        rig.logger.addFilter(note)
    elif where == "our handler filter":
        rig.handler.addFilter(note)
    else:
        other = Capture(logging.CRITICAL)  # would not take INFO, but its filter exists
        other.addFilter(note)
        rig.parent.addHandler(other)
    try:
        rig.log.info("filtered %s", "x")
    finally:
        rig.handler.removeFilter(note)
    (msg,) = rig.take()
    _, _, text, _, _ = msg
    assert not fast(msg)
    assert text == "filtered x"
    if where != "other handler filter":
        assert seen == ["filtered x"]


@pytest.mark.parametrize(
    "kwargs",
    [{"exc_info": True}, {"stack_info": True}, {"extra": {"k": 1}}, {"stacklevel": 1}],
    ids=["exc_info", "stack_info", "extra", "stacklevel"],
)
def test_keyword_arguments_take_the_normal_path(new_rig: Callable[[], Rig], kwargs: dict[str, Any]) -> None:
    rig = new_rig()
    try:
        raise RuntimeError("the cause")
    except RuntimeError:
        rig.log.info("with %s", "kwargs", **kwargs)
    (msg,) = rig.take()
    _, _, text, _, _ = msg
    assert not fast(msg)
    tags = tags_of(msg)
    assert text == "with kwargs"
    assert tags["funcName"] == "test_keyword_arguments_take_the_normal_path"
    if "exc_info" in kwargs:
        assert "RuntimeError: the cause" in tags["traceback"]


def test_exception_carries_the_traceback(new_rig: Callable[[], Rig]) -> None:
    rig = new_rig()
    try:
        raise KeyError("k")
    except KeyError:
        rig.log.exception("failed")
    ((level, _, _, tags, _),) = rig.take()
    assert level is cmdp.Level.CRITICAL
    assert isinstance(tags, dict)
    assert "KeyError" in tags["traceback"]


def test_stacklevel_is_honoured_on_the_normal_path(new_rig: Callable[[], Rig]) -> None:
    rig = new_rig()

    def helper() -> None:
        rig.log.info("from helper", stacklevel=2)

    helper()
    line = helper.__code__.co_firstlineno + 3
    (msg,) = rig.take()
    _, _, _, _, _ = msg
    assert not fast(msg)
    tags = tags_of(msg)
    assert (tags["funcName"], tags["lineno"]) == (
        "test_stacklevel_is_honoured_on_the_normal_path",
        line,
    )


def test_record_factory_and_logger_class(new_rig: Callable[[], Rig]) -> None:
    rig = new_rig()
    made: list[str] = []
    old = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        made.append("x")
        return old(*args, **kwargs)

    logging.setLogRecordFactory(factory)
    try:
        rig.log.info("custom factory")
    finally:
        logging.setLogRecordFactory(old)
    assert made == ["x"]
    assert not fast(rig.take()[0])

    class Special(logging.Logger):
        pass

    special = SatelliteLog(Special(f"{rig.parent.name}.special"), rig.extra)
    special.logger.parent = rig.parent
    special.info("subclass")
    assert not fast(rig.take()[0])


@pytest.mark.parametrize(
    ("field", "odd"), [("lineno", True), ("lineno", 1.0), ("thread", 1.0), ("process", True)]
)
def test_tag_cache_keeps_the_type_of_an_odd_tag_value(
    new_rig: Callable[[], Rig], field: str, odd: object
) -> None:
    """A record factory's values that equal (and hash as) a cached record's: True == 1 == 1.0, but
    msgpack sends true, 1 and 1.0 differently; each record's tags must be its own, as 1.0.2 packs them."""
    rig = new_rig()
    base = {"name": rig.logger.name, "msg": "m", "levelno": 20, "satellite": NAME}
    base |= {"lineno": 1, "thread": 1, "process": 1}
    rig.handler.handle(logging.makeLogRecord(base))
    rig.handler.handle(logging.makeLogRecord({**base, field: odd}))
    plain, other = rig.take()
    assert tags_of(plain)[field] == 1
    assert type(tags_of(other)[field]) is type(odd)
    assert wire(other)[1] == wire((*other[:3], tags_of(other), other[4]))[1]


def test_tag_cache_takes_unhashable_values_and_renamed_threads(new_rig: Callable[[], Rig]) -> None:
    rig = new_rig()
    base = {"name": rig.logger.name, "msg": "m", "levelno": 20, "satellite": NAME}
    rig.handler.handle(logging.makeLogRecord({**base, "processName": ["from", "a", "factory"]}))
    rig.handler.handle(logging.makeLogRecord({**base, "threadName": "before"}))
    rig.handler.handle(logging.makeLogRecord({**base, "threadName": "after"}))  # same thread, renamed
    odd, before, after = rig.take()
    assert tags_of(odd)["processName"] == ["from", "a", "factory"]
    assert (tags_of(before)["threadName"], tags_of(after)["threadName"]) == ("before", "after")
    for msg in (odd, before, after):
        assert wire(msg) == wire((*msg[:3], tags_of(msg), msg[4]))


def test_other_satellites_handlers_are_ignored_but_two_of_ours_are_not(new_rig: Callable[[], Rig]) -> None:
    rig = new_rig()
    other_pub = Recorder()
    rig.logger.addHandler(CmdpLogHandler(other_pub, "Sputnik.Other"))  # type: ignore[arg-type]
    rig.log.info("ours only")
    assert fast(rig.take()[0])
    assert other_pub.pushed == []
    second = CmdpLogHandler(Recorder(), NAME)  # type: ignore[arg-type]
    rig.logger.addHandler(second)
    rig.log.info("twice")
    assert not fast(rig.take()[0])


def test_without_our_handler_logging_decides(new_rig: Callable[[], Rig]) -> None:
    rig = new_rig()
    rig.parent.removeHandler(rig.handler)
    cap = Capture(logging.CRITICAL)
    rig.parent.addHandler(cap)
    rig.log.info("nobody")
    rig.log.critical("cap")
    assert rig.take() == []
    assert [r.msg for r in cap.records] == ["cap"]


def test_extra_keys_and_odd_levels(new_rig: Callable[[], Rig]) -> None:
    rig = new_rig()
    more = SatelliteLog(rig.logger, {**rig.extra, "traceback": "tb"})
    more.info("with traceback extra")
    (msg,) = rig.take()
    _, _, _, _, _ = msg
    assert not fast(msg)
    tags = tags_of(msg)
    assert tags["traceback"] == "tb"
    with pytest.raises(TypeError):
        rig.log.log("INFO", "a string level")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        rig.stock.log("INFO", "a string level")  # type: ignore[arg-type]


def test_nested_adapter_goes_through_logging_with_the_right_caller(new_rig: Callable[[], Rig]) -> None:
    rig = new_rig()
    # the outer adapter passes `extra`, which the inner one replaces (stock 3.11 behaviour, kept)
    outers = [logging.LoggerAdapter(a, {"component": "OUTER"}) for a in (rig.log, rig.stock)]  # type: ignore[arg-type]
    for outer in outers:
        outer.info("nested")
    (ours, stock) = rig.take()
    assert not fast(ours)
    assert tags_of(ours) == tags_of(stock)
    assert ours[1] == stock[1] == "SPUTNIK"
    assert tags_of(ours)["funcName"] == "test_nested_adapter_goes_through_logging_with_the_right_caller"


def test_tags_are_cached_per_code_object_not_per_name_and_offset(
    new_rig: Callable[[], Rig], frozen_time: float
) -> None:
    """The fast path caches a caller's tags by its code object and instruction (the line is only
    decoded on a miss). Functions compiled again and again, all named `emit`, in the same file, calling
    from the same instruction on a different line each time, must each get their own line. (The cache
    keeps each code object, so no other can take a freed one's id while its entry lives.)"""
    rig = new_rig()
    kept: list[RawLog] = []  # `fast` tells the paths apart by message id: keep them all alive
    for k in range(40):
        namespace: dict[str, Any] = {}
        source = "\n" * k + "def emit(log):\n    log.info('at %d', 1)\n"
        exec(compile(source, "generated_callers.py", "exec"), namespace)
        namespace["emit"](rig.log)
        (quick,) = rig.take()
        with normal(rig):
            namespace["emit"](rig.log)
        (slow,) = rig.take()
        kept += (quick, slow)
        assert fast(quick)
        assert not fast(slow)
        assert tags_of(quick)["lineno"] == k + 2
        assert wire(quick) == wire(slow)
        # `emit` and its globals form a cycle: break it, so that nothing but the tag cache can keep its
        # code alive (without that, the next `emit` gets the same address, and this test fails)
        namespace.clear()


def test_caller_without_a_python_frame_takes_the_normal_path(
    new_rig: Callable[[], Rig], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A log method called with no Python frame above it (the target of `_thread.start_new_thread`, an
    atexit callback) must not raise: `findCaller` then takes the deepest frame, so the normal path."""
    rig = new_rig()
    errors: list[BaseException | None] = []
    monkeypatch.setattr(sys, "unraisablehook", lambda u: errors.append(u.exc_value))
    _thread.start_new_thread(rig.log.info, ("no caller %d", 1))
    wait_until(lambda: rig.pub.pushed or errors)
    assert errors == []
    (msg,) = rig.take()
    assert not fast(msg)
    assert msg[2] == "no caller 1"
    assert tags_of(msg)["funcName"] == "info"  # SatelliteLog.info, the deepest frame


def _gen_caller(log: logging.LoggerAdapter[logging.Logger]) -> Iterator[None]:
    log.info("from a generator")
    yield


async def _coro_caller(log: logging.LoggerAdapter[logging.Logger]) -> None:
    log.info("from a coroutine")


def _run_coro(log: logging.LoggerAdapter[logging.Logger]) -> None:
    coro = _coro_caller(log)
    with pytest.raises(StopIteration):
        coro.send(None)


def _traced(call: Callable[[logging.LoggerAdapter[logging.Logger]], None]) -> Callable[..., None]:
    """`call` under a line tracer (as coverage or a debugger): frames get `f_lineno` set while traced."""

    def tracer(frame: Any, event: str, arg: object) -> Any:
        return tracer

    def run(log: logging.LoggerAdapter[logging.Logger]) -> None:
        old = sys.gettrace()
        sys.settrace(tracer)
        try:
            call(log)
        finally:
            sys.settrace(old)

    return run


_EXEC = compile("def execd(log):\n    log.info('from exec')\n", "<string>", "exec")


def _exec_caller(log: logging.LoggerAdapter[logging.Logger]) -> None:
    namespace: dict[str, Any] = {}
    exec(_EXEC, namespace)  # a new function each time, with the same code object
    namespace["execd"](log)


CALLERS: dict[str, Callable[[logging.LoggerAdapter[logging.Logger]], None]] = {
    "generator": lambda log: next(_gen_caller(log)),
    "coroutine": _run_coro,
    "lambda": lambda log: log.info("from a lambda"),
    "exec": _exec_caller,
    "traced": _traced(lambda log: log.info("traced %s", "x")),
    "traced generator": _traced(lambda log: next(_gen_caller(log))),
}


@pytest.mark.parametrize("kind", list(CALLERS))
def test_callers_of_every_kind_get_the_normal_paths_tags(
    new_rig: Callable[[], Rig], frozen_time: float, kind: str
) -> None:
    """findCaller's frame and line, whatever the caller: each call twice through the fast path (the
    second from the tag cache), once through the normal path, once through a stock adapter."""
    rig = new_rig()
    call = CALLERS[kind]
    call(rig.log)
    call(rig.log)
    (quick, cached) = rig.take()
    with normal(rig):
        call(rig.log)
    (slow,) = rig.take()
    call(rig.stock)
    (stock,) = rig.take()
    assert fast(quick)
    assert fast(cached)
    assert not fast(slow)
    assert wire(quick) == wire(cached) == wire(slow) == wire(stock)


def test_parent_level_set_after_the_level_cache_was_filled(new_rig: Callable[[], Rig]) -> None:
    """The fast path reads `Logger._cache` (`isEnabledFor`'s answers): a level set on a parent after
    the cache was filled must count at once (setLevel clears every logger's cache), as must a level
    that is not cached yet."""
    rig = new_rig()
    rig.log.info("one")
    rig.parent.setLevel(logging.WARNING)
    rig.log.info("dropped")
    rig.log.log(33, "first at 33")  # not cached yet: above WARNING
    rig.log.log(27, "dropped too")  # not cached yet: below
    rig.parent.setLevel(1)
    rig.log.info("two")
    assert [(fast(m), m[2]) for m in rig.take()] == [(True, "one"), (True, "first at 33"), (True, "two")]


def test_threads_not_started_by_threading_get_the_normal_paths_names(
    new_rig: Callable[[], Rig], frozen_time: float
) -> None:
    """`current_thread()` in a thread `threading` did not start makes a dummy Thread ("Dummy-N"); the
    fast path's direct read of `threading._active` must give the same name and ident."""
    rig = new_rig()
    results: list[list[RawLog]] = []
    idents: list[int] = []

    def work() -> None:
        idents.append(threading.get_ident())
        results.append(_emit_both(rig, lambda a: a.info("from %s", "outside")))

    for _ in range(2):
        _thread.start_new_thread(work, ())
        n = len(idents) + 1
        wait_until(lambda n=n: len(results) == n)
    for (quick, slow, stock), ident in zip(results, idents, strict=True):
        assert fast(quick)
        assert wire(quick) == wire(slow) == wire(stock)
        assert tags_of(quick)["thread"] == ident
        assert tags_of(quick)["threadName"].startswith("Dummy-")


def test_extra_mutated_after_the_adapter_was_made_or_not_a_plain_dict(
    new_rig: Callable[[], Rig], frozen_time: float
) -> None:
    """`extra` is read on every call: a new component is the topic at once; another satellite's name
    hands the record to logging (our handler ignores it: nothing is sent). A dict subclass (whose `get`
    or `keys` could answer anything) always takes the normal path."""
    rig = new_rig()
    rig.extra["component"] = "OTHER"
    rig.log.info("renamed")
    (quick,) = rig.take()
    assert fast(quick)
    assert quick[1] == "OTHER"
    rig.extra["satellite"] = "Sputnik.Else"
    rig.log.info("not ours")
    assert rig.take() == []

    class Extra(dict[str, Any]):
        def get(self, key: str, default: Any = None) -> Any:
            return "LIE" if key == "component" else super().get(key, default)

    odd = SatelliteLog(rig.logger, Extra(satellite=NAME, component="SPUTNIK"))
    odd.info("subclass")
    (slow,) = rig.take()
    assert not fast(slow)
    assert slow[1] == "SPUTNIK"  # the record's attribute, as makeRecord copies the items
