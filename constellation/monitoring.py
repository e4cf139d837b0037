"""CMDP publisher: one task owns the monitoring XPUB; logs and metrics reach it through a bounded queue.

Messages are produced only for topics someone subscribed to (a subscription enables every topic it is a
prefix of, exactly what ZeroMQ will deliver; the empty topic enables nothing, like 1.0.2). `LOG?` and
`STAT?` subscriptions get the topic list at once and again whenever it changes. Log records from any
thread go into a bounded deque; when it is full the record is dropped and counted, and the drops are
reported as a WARNING log and the `LOG_DROPPED` metric, so a burst of logging never blocks a hook for
long: a thread two send batches ahead of the sender waits for it (`constellation.pacing`), else it would
starve the event loop of the GIL; 5 ms for a sender that sends nothing, 0.1 s a call for a slow one.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

import msgpack
import zmq
import zmq.asyncio

from protocols import EncodeError, cmdp

from .fastwire import TS64, LogEncoder, pack_timestamp, second_of
from .logtopics import logger_component, topic_component
from .pacing import SendPacer

__all__ = [
    "LOG_ROUTES",
    "CmdpLogHandler",
    "MonitoringPublisher",
    "log_route",
    "packed_record_tags",
    "topic_component",
]

log = logging.getLogger(__name__)
_QUEUE = 8192
_BATCH = 512  # messages per drain callback: ~1-2 ms of sending
_METRIC_ROOM = 1024  # places beyond a full log queue that only metrics may take
#: A log record waiting to be encoded: (level, topic, text, tags, time_ns); tags may come msgpack-packed.
RawLog = tuple[cmdp.Level, str, str, dict[str, Any] | bytes, int]


class MonitoringPublisher:
    def __init__(
        self,
        sock: zmq.asyncio.Socket,
        name: str,
        logger: logging.LoggerAdapter[logging.Logger] | None = None,
        queue_size: int = _QUEUE,
    ) -> None:
        self._sock = sock
        self._name = name
        self._log = logger or logging.LoggerAdapter(log, {})
        self._loop = asyncio.get_running_loop()
        self._queue: collections.deque[cmdp.Metric | RawLog] = collections.deque()
        # A synchronous view of the same socket, used only by this publisher's task: XPUB sends never
        # block, and skipping the asyncio future per message doubles the log throughput.
        self._sync_sock: zmq.Socket[bytes] = zmq.Socket.shadow(sock.underlying)
        self._log_encoder = LogEncoder(name)
        self._queue_size = queue_size
        # Built here, on the loop's thread (the sender). A producer thread two batches ahead waits until
        # one is left: the sender then still has a batch to send while the producer wakes up.
        ahead = max(1, min(2 * _BATCH, queue_size // 2))
        self._pacer = SendPacer(ahead, max(1, ahead // 2))
        self._running = False  # run() is reading subscriptions (and drains are allowed)
        self._draining = False  # a _drain callback is scheduled or running
        self._sleeping = False  # queue found empty: the next push schedules _kick
        self._subs: set[bytes] = set()
        self._prefixes: tuple[bytes, ...] = ()
        #: topic -> `wants(topic)`, filled by `wants`; read directly by the log fast path (satlog)
        self.topic_wanted: dict[bytes, bool] = {}
        self.log_topics: dict[str, str] = {}
        self.stat_topics: dict[str, str] = {}
        self.units: dict[str, str] = {}
        self.dropped = 0
        self._reported_drops = 0
        self._last_drop_report = 0.0
        self._drop_timer = False
        self.sent = 0
        self.on_subscriptions: Callable[[], None] | None = None

    # -- topic registry -----------------------------------------------------------------------------

    def register_log_topic(self, topic: str, description: str = "") -> None:
        self.log_topics[topic.upper()] = description
        if b"LOG?" in self._subs:
            self._notify("LOG")

    def register_metric(self, name: str, unit: str = "", description: str = "") -> None:
        """Announce a metric (EncodeError for a name, unit or description the STAT? map cannot carry:
        one bad entry would make every later notification fail)."""
        cmdp.check_metric_entry(name, unit, description)
        self.stat_topics[name.upper()] = description
        self.units[name.upper()] = unit
        if b"STAT?" in self._subs:
            self._notify("STAT")

    def unregister_metric(self, name: str) -> bool:
        """Withdraw a metric from the `STAT?` list (announced if it was there); False if unknown."""
        key = name.upper()
        self.units.pop(key, None)
        if self.stat_topics.pop(key, None) is None:
            return False
        if b"STAT?" in self._subs:
            self._notify("STAT")
        return True

    # -- producers (any thread) -------------------------------------------------------------------

    def wants(self, topic: bytes) -> bool:
        """True if some subscription would receive `topic`."""
        # The cache first, then the subscriptions: `_on_subscription` replaces them in the other order,
        # so an answer from old subscriptions can only land in the old cache, never in the new one.
        cache = self.topic_wanted
        hit = cache.get(topic)
        if hit is None:
            hit = any(topic.startswith(p) for p in self._prefixes)
            if len(cache) < 4096:
                cache[topic] = hit
        return hit

    def push(self, msg: cmdp.Metric | RawLog) -> bool:
        """Queue a message for sending; False (and counted) when the queue is full."""
        queue = self._queue
        # Metrics are few and carry the state (STAT/STATE): they get room beyond the log records' bound
        # (the type is looked at only once the queue is full: this is every log record's path).
        size = self._queue_size
        if len(queue) >= size and (type(msg) is not cmdp.Metric or len(queue) >= size + _METRIC_ROOM):
            self.dropped += 1
            if self._running:
                self._pacer.wait_for_sender(queue)
            return False
        queue.append(msg)
        if self._sleeping:
            self._sleeping = False
            with contextlib.suppress(RuntimeError):  # loop closed during shutdown
                self._loop.call_soon_threadsafe(self._kick)
        elif len(queue) >= self._pacer.ahead and self._running:
            self._pacer.wait_for_sender(queue)
        return True

    def stat(self, name: str, value: Any, unit: str | None = None, *, announce: bool = False) -> None:
        """Publish a metric value now if anyone subscribed (thread-safe). None sends nothing (as for a
        periodic metric); a value, name or unit the wire cannot carry is an EncodeError here. With
        `announce`, an unregistered name is registered first (and announced on `STAT?`)."""
        if value is None:
            return
        cmdp.check_metric_value(value)
        cmdp.check_metric_text("name", name, empty=False)
        if unit is not None:
            cmdp.check_metric_text("unit", unit)
        key = name.upper()
        if announce and key not in self.stat_topics:
            self.register_metric(name, unit or "", "")
        if not self.wants(cmdp.metric_topic(key)):
            return
        unit = self.units.get(key, "") if unit is None else unit
        self.push(cmdp.Metric(self._name, key, value, unit))

    # -- the socket task ----------------------------------------------------------------------------

    async def run(self) -> None:
        """Own the socket: read subscriptions here; queued messages go out from `_drain` callbacks."""
        self._running = True
        self._kick()
        try:
            while True:
                self._on_subscription(await self._sock.recv_multipart())
        finally:
            self._running = False

    # Draining runs as plain loop callbacks, one batch each (other tasks, such as the command server,
    # run between batches: a burst never delays a reply by more than a batch). A producer on another
    # thread that keeps the GIL gives it up when it is two batches ahead (`SendPacer`), or else once per
    # switch interval (5 ms); a callback is served in the first loop iteration after that, where a task
    # behind an Event and asyncio.wait took three. After each batch the sender releases waiting producers.

    def _kick(self) -> None:
        if self._running and not self._draining:
            self._draining = True
            self._drain()

    def _drain(self) -> None:
        if not self._running:
            self._draining = False
            return
        try:
            if self._queue:
                self._pacer.sending()
                self._flush(_BATCH)
                self._pacer.sent(self._queue)
            self._report_drops()
        except Exception:  # a callback that raised would leave the publisher stalled
            with contextlib.suppress(Exception):
                self._log.exception("CMDP publisher: unexpected error, continuing")
        if self._queue:
            self._loop.call_soon(self._drain)
            return
        self._draining = False
        self._sleeping = True
        if self._queue:  # raced with a producer that saw _sleeping False
            self._sleeping = False
            self._kick()

    def _flush(self, limit: int) -> None:
        # The frames go out with the socket's base `send` (bytes only, flags given): `send_multipart`
        # and the pyzmq sugar layer cost more than libzmq's send of a small frame (about 3x). Log records
        # are encoded here as `LogEncoder.encode` does, inlined: the call and its argument tuple cost
        # ~0.15 us a record, a tenth of the whole send. Timestamps of the second of the previous one are
        # packed from its base (`fastwire.second_of`): 0.07 us where `pack_timestamp` takes 0.18.
        # Every frame is built before the first is sent.
        send = super(zmq.Socket, self._sync_sock).send
        more = zmq.SNDMORE | zmq.NOBLOCK
        last = zmq.NOBLOCK
        encoder = self._log_encoder
        prefix, topics, pack = encoder.prefix, encoder.topics, encoder.pack
        base, seconds, span = 0, 0, 0  # the second of the last timestamp (fastwire.second_of): none yet
        queue = self._queue
        sent = 0
        for _ in range(min(limit, len(queue))):
            msg = queue.popleft()
            try:
                if isinstance(msg, tuple):
                    level, component, text, tags, time_ns = msg
                    topic = topics.get((level, component)) or encoder.topic(level, component)
                    delta = time_ns - base
                    if 0 < delta < span:
                        stamp = TS64(b"\xd7\xff", delta << 34 | seconds)
                    else:
                        stamp = pack_timestamp(time_ns)
                        base, seconds, span = second_of(time_ns)
                    header = prefix + stamp + (tags if type(tags) is bytes else pack(tags))
                    payload = text.encode("utf-8", "replace")
                else:
                    topic, header, payload = cmdp.encode(msg)
                send(topic, more)
                send(header, more)
                send(payload, last)
            except (EncodeError, zmq.ZMQError, TypeError, ValueError, OverflowError) as exc:
                self._log.debug("CMDP message dropped: %s", exc)  # (msgpack raises the last three)
                continue
            sent += 1
        self.sent += sent

    def _report_drops(self) -> None:
        """Report new drops (at most once a second), sent directly: a full queue must not drop the report."""
        if self.dropped <= self._reported_drops:
            return
        wait = self._last_drop_report + 1.0 - time.monotonic()
        if wait > 0:
            if not self._drop_timer:
                self._drop_timer = True
                self._loop.call_later(wait, self._drop_timer_fired)
            return
        new = self.dropped - self._reported_drops
        self._reported_drops = self.dropped
        self._last_drop_report = time.monotonic()
        text = f"{new} log messages dropped (queue full), {self.dropped} in total"
        record = logging.LogRecord(log.name, logging.WARNING, __file__, 0, text, None, None, "_report_drops")
        # to the console and other handlers; our CMDP handler skips it (sent below instead)
        self._log.logger.handle(_with(record, {**(self._log.extra or {}), "cmdp_direct": True}))
        try:
            if self.wants(cmdp.log_topic(cmdp.Level.WARNING, "MNTR")):
                tags = record_tags(record)
                ns = int(record.created * 1_000_000) * 1000
                self._sync_sock.send_multipart(
                    self._log_encoder.encode(cmdp.Level.WARNING, "MNTR", text, tags, ns)
                )
            if self.wants(cmdp.metric_topic("LOG_DROPPED")):
                metric = cmdp.Metric(self._name, "LOG_DROPPED", self.dropped, "")
                self._sync_sock.send_multipart(cmdp.encode(metric))
        except zmq.ZMQError as exc:
            self._log.debug("drop report not sent: %s", exc)

    def _drop_timer_fired(self) -> None:
        self._drop_timer = False
        self._kick()

    def _on_subscription(self, frames: list[bytes]) -> None:
        if len(frames) != 1 or not frames[0] or frames[0][0] not in (0, 1):
            return  # malformed subscription message: ignored
        raw = bytes(frames[0])
        topic, subscribe = raw[1:], raw[0] == 1
        if subscribe:
            self._subs.add(topic)
        else:
            self._subs.discard(topic)
        self._prefixes = tuple(t for t in self._subs if t.startswith((b"LOG/", b"STAT/")))
        self.topic_wanted = {}
        if subscribe and topic == b"LOG?":
            self._notify("LOG")
        elif subscribe and topic == b"STAT?":
            self._notify("STAT")
        if self.on_subscriptions is not None:
            self.on_subscriptions()

    def _notify(self, kind: str) -> None:
        """Send the topic list from the socket's thread, whichever thread registered a topic."""
        with contextlib.suppress(RuntimeError):  # loop closed during shutdown
            self._loop.call_soon_threadsafe(self._send_notification, kind)

    def _send_notification(self, kind: str) -> None:
        topics = self.log_topics if kind == "LOG" else self.stat_topics
        note = cmdp.Notification(self._name, kind, dict(topics))  # type: ignore[arg-type]
        with contextlib.suppress(EncodeError, zmq.ZMQError):
            self._sync_sock.send_multipart(cmdp.encode(note), zmq.NOBLOCK)


class CmdpLogHandler(logging.Handler):
    """Turns log records of one satellite into CMDP messages (checked against subscriptions first).

    Records carrying a `satellite` attribute (our LoggerAdapters) are taken only if it is ours; records
    without one (plain `logging.getLogger(__name__)` in hook code) are taken when `foreign` is True.
    The topic is the record's `component` attribute, or `logger_component` of the logger's name.
    """

    def __init__(self, publisher: MonitoringPublisher, name: str, foreign: bool = True) -> None:
        super().__init__(level=1)
        #: read by `constellation.satlog.SatelliteLog`'s fast path, which queues on the same publisher
        self.publisher = publisher
        self.satellite = name
        self._foreign = foreign

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(record, "cmdp_direct", False):
            return
        owner = getattr(record, "satellite", None)
        if owner is None:
            if not self._foreign:
                return
        elif owner != self.satellite:
            return
        raw = getattr(record, "component", None) or logger_component(record.name)
        route = LOG_ROUTES.get((record.levelno, raw)) if type(raw) is str else None
        if route is None:
            route = log_route(record.levelno, raw)
        level, component, topic = route
        if not self.publisher.wants(topic):
            return
        try:
            text = record.getMessage()
        except Exception:
            text = str(record.msg)
        time_ns = int(record.created * 1_000_000) * 1000
        self.publisher.push((level, component, text, packed_record_tags(record), time_ns))


#: (python level, component) -> (wire level, topic component, topic bytes); read inline by satlog.
LOG_ROUTES: dict[tuple[int, str], tuple[cmdp.Level, str, bytes]] = {}


def log_route(level: int, raw: object) -> tuple[cmdp.Level, str, bytes]:
    """(wire level, topic component, topic) of a record at `level` from component `raw`, cached."""
    wire_level = cmdp.Level.from_python_level(level)
    component = topic_component(str(raw))
    route = (wire_level, component, cmdp.log_topic(wire_level, component))
    if type(level) is int and type(raw) is str:
        if len(LOG_ROUTES) >= 1024:
            LOG_ROUTES.clear()
        LOG_ROUTES[(level, raw)] = route
    return route


def record_tags(record: logging.LogRecord) -> dict[str, Any]:
    """The CMDP tags of a log record, as 1.0.2 sends them (plus `traceback` when there is one)."""
    tags: dict[str, Any] = {
        "filename": record.filename,
        "pathname": record.pathname,
        "lineno": record.lineno,
        "funcName": record.funcName,
        "module": record.module,
        "thread": record.thread,
        "threadName": record.threadName,
        "process": record.process,
        "processName": record.processName,
    }
    tb = getattr(record, "traceback", None)  # 1.0.2 passes it as `extra={"traceback": ...}`
    if isinstance(tb, str) and tb:
        tags["traceback"] = tb
    elif record.exc_info and record.exc_info[0] is not None:
        tags["traceback"] = logging.Formatter().formatException(record.exc_info)
    return tags


_TAG_KEYS = ("filename", "pathname", "lineno", "funcName", "module", "thread", "threadName", "process",
             "processName")  # fmt: skip
#: all tag values -> their msgpack map (the key is the whole content: an entry cannot go stale).
_packed_tags: dict[tuple[Any, ...], bytes] = {}
_ID_TYPES = frozenset((int, type(None)))  # of `thread` and `process` (None: logging.logThreads False)


def packed_record_tags(record: logging.LogRecord) -> dict[str, Any] | bytes:
    """`record_tags(record)`, msgpack-packed once per distinct content (a call site in a thread);
    the dict itself with a traceback, or when a value cannot be packed or looked up (the publisher then
    drops that one message, as it does for any record it cannot encode)."""
    if getattr(record, "traceback", None) or (record.exc_info and record.exc_info[0] is not None):
        return record_tags(record)
    lineno, thread, process = record.lineno, record.thread, record.process
    if type(lineno) is not int or type(thread) not in _ID_TYPES or type(process) not in _ID_TYPES:
        # True == 1 == 1.0 (one dict key) but msgpack sends each differently: a record factory's odd
        # number would get a cached record's bytes
        return record_tags(record)
    key = (record.filename, record.pathname, lineno, record.funcName, record.module, thread,
           record.threadName, process, record.processName)  # fmt: skip
    try:
        packed = _packed_tags.get(key)
    except TypeError:  # an unhashable value set by a custom record factory
        return record_tags(record)
    if packed is None:
        tags = dict(zip(_TAG_KEYS, key, strict=True))
        try:
            packed = msgpack.packb(tags, use_bin_type=True)
        except (ValueError, TypeError, OverflowError):
            return tags
        if len(_packed_tags) >= 4096:
            _packed_tags.clear()
        _packed_tags[key] = packed
    return packed


def _with(record: logging.LogRecord, extra: dict[str, Any]) -> logging.LogRecord:
    record.__dict__.update(extra)
    return record
