"""`SatelliteLog`: the `self.log` of a satellite, with a fast path to CMDP that skips `LogRecord`.

Python `logging` costs 10-20 us a record (LogRecord, findCaller, the handler chain); a satellite that
logs in a loop is bound by that, not by the socket. When the only handler that would take a record is
this satellite's `CmdpLogHandler`, the adapter builds the CMDP message itself: it asks the publisher
first (nothing subscribed: done after the level check), then takes the caller's frame like
`Logger.findCaller`, the thread and process tags like `LogRecord`, and the text like
`LogRecord.getMessage`, and queues the same tuple the handler would. The bytes on the wire are the ones
the normal path gives for the same call (`tests/runtime/test_log_fastpath.py`).

Anything else takes the normal `logging` path, decided on every call (no cached decision goes stale
when handlers, levels or filters change): keyword arguments (`exc_info`, `stack_info`, `extra`,
`stacklevel`), a non-int level, filters on the logger or on a handler in the way, any other handler
whose level lets the record through (a console printing it, a user's file handler), no or several
CMDP handlers of ours in the chain, a logger subclass, a custom LogRecord factory, extra keys beyond
`satellite`/`component`, or `logging._srcfile` unset.

Mirrors CPython 3.11's `logging` (findCaller, LogRecord attributes, `created = time.time()`); a newer
Python (3.12 adds `taskName`, 3.13 takes the time from `time_ns`) must pass the byte-identity tests again.
Where `LogRecord` asks the system for the process id on every record (a ~0.5 us system call here), we
read it once and again in a child after `os.fork` (`os.register_at_fork`); only a child forked behind
Python's back (a C extension calling fork() itself) would report its parent's pid.

Costs on our 2-core VM (thread CPU, `SatelliteLog.log(INFO, "burst %d", i)` into a subscribed
publisher): ~2.0 us a record, of which the caller frame and tags ~0.6, the message ~0.3, the handler
chain walk ~0.2, the record time ~0.2 (the rest: dispatch, checks, the queue).
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Mapping
from types import FrameType
from typing import Any

import msgpack

from .monitoring import (
    LOG_ROUTES,  # the route cache, read inline on the hot path
    CmdpLogHandler,
    log_route,
)

__all__ = ["SatelliteLog"]

TRACE = 5  # Constellation's levels below DEBUG and between WARNING and ERROR (CMDP TRACE, STATUS)
STATUS = 35
_EXTRA_KEYS = frozenset(("satellite", "component"))
_LogRecord = logging.LogRecord
_Logger = logging.Logger
_get_ident = threading.get_ident
_current_thread = threading.current_thread
_PLAIN = frozenset((int, float, str, bytes, bool, type(None)))  # argument types that are never Mappings
_getframe = sys._getframe
#: (python level, component) -> (wire level, topic component, topic bytes).
#: pathname -> (filename, module, skipped by findCaller), as LogRecord and findCaller derive them.
_names: dict[str, tuple[str, str, bool]] = {}
_names_srcfile: str | None = None  # the `logging._srcfile` that `_names` was made with
#: all tag values -> their msgpack map (the key is the whole content: an entry cannot go stale).
_packed: dict[tuple[Any, ...], bytes] = {}


class SatelliteLog(logging.LoggerAdapter[logging.Logger]):
    """A LoggerAdapter (same API, same records) with the CMDP fast path described above."""

    def debug(self, msg: object, *args: object, **kwargs: Any) -> None:
        if kwargs or not self._fast(logging.DEBUG, msg, args):
            self._slow(logging.DEBUG, msg, args, kwargs)

    def info(self, msg: object, *args: object, **kwargs: Any) -> None:
        if kwargs or not self._fast(logging.INFO, msg, args):
            self._slow(logging.INFO, msg, args, kwargs)

    def warning(self, msg: object, *args: object, **kwargs: Any) -> None:
        if kwargs or not self._fast(logging.WARNING, msg, args):
            self._slow(logging.WARNING, msg, args, kwargs)

    def error(self, msg: object, *args: object, **kwargs: Any) -> None:
        if kwargs or not self._fast(logging.ERROR, msg, args):
            self._slow(logging.ERROR, msg, args, kwargs)

    def critical(self, msg: object, *args: object, **kwargs: Any) -> None:
        if kwargs or not self._fast(logging.CRITICAL, msg, args):
            self._slow(logging.CRITICAL, msg, args, kwargs)

    def log(self, level: int, msg: object, *args: object, **kwargs: Any) -> None:
        if kwargs or not self._fast(level, msg, args):
            self._slow(level, msg, args, kwargs)

    # Constellation's two extra levels, as 1.0.2's `ConstellationLogger` offers them to satellite code.

    def trace(self, msg: object, *args: object, **kwargs: Any) -> None:
        """Log at TRACE (5): verbose detail for following the program's flow."""
        if kwargs or not self._fast(TRACE, msg, args):
            self._slow(TRACE, msg, args, kwargs)

    def status(self, msg: object, *args: object, **kwargs: Any) -> None:
        """Log at STATUS (35): important, infrequent information for the operator."""
        if kwargs or not self._fast(STATUS, msg, args):
            self._slow(STATUS, msg, args, kwargs)

    # `exception` (exc_info) and `warn` (deprecated, calls `warning`) are inherited.

    def _slow(self, level: int, msg: object, args: tuple[object, ...], kwargs: dict[str, Any]) -> None:
        """The stock LoggerAdapter path; one more stack level skips our method (findCaller counts it)."""
        kwargs["stacklevel"] = kwargs.get("stacklevel", 1) + 2
        logging.LoggerAdapter.log(self, level, msg, *args, **kwargs)

    def _fast(self, level: int, msg: object, args: tuple[object, ...]) -> bool:
        """True when the call is fully handled (disabled, unsubscribed, or queued for CMDP)."""
        logger = self.logger
        if type(level) is not int or type(logger) is not _Logger:
            return False
        if not logger.isEnabledFor(level):
            return True  # exactly what LoggerAdapter.log does
        if logger.filters or not logging._srcfile or logging.getLogRecordFactory() is not _LogRecord:
            return False
        extra = self.extra
        if not isinstance(extra, dict) or not extra.keys() <= _EXTRA_KEYS:
            return False
        handler = _sole_handler(logger, level, extra.get("satellite"))
        if handler is None:
            return False
        raw = extra.get("component") or logger.name.rpartition(".")[2]
        if type(raw) is not str:
            return False
        route = LOG_ROUTES.get((level, raw))
        if route is None:
            route = log_route(level, raw)
        wire_level, component, topic = route
        publisher = handler.publisher
        if not publisher.wants(topic):
            return True
        try:
            tags = packed_tags(2)
        except (ValueError, TypeError, OverflowError):
            # msgpack refuses a tag (a lone surrogate in a thread name or path): the normal path, where
            # the publisher drops that one message, as it always did, instead of raising into the caller
            return False
        # the record time as the handler sends it (`LogRecord.created` is `time.time()`), inlined
        publisher.push((wire_level, component, message(msg, args), tags, int(time.time() * 1_000_000) * 1000))
        return True


def _sole_handler(logger: logging.Logger, level: int, satellite: object) -> CmdpLogHandler | None:
    """Our CMDP handler if it is the only handler `Logger.callHandlers` would hand the record to.

    A CmdpLogHandler of another satellite ignores our records (they carry our name) and is skipped.
    """
    found: CmdpLogHandler | None = None
    c: logging.Logger | None = logger
    while c is not None:
        for h in c.handlers:
            if h.filters:
                return None
            if type(h) is CmdpLogHandler:
                if h.satellite != satellite:
                    continue
                if found is not None or level < h.level:
                    return None
                found = h
            elif level >= h.level:
                return None
        c = c.parent if c.propagate else None
    return found


def _file_names(fn: str) -> tuple[str, str, bool]:
    """(filename, module, skipped) for a code file name, as LogRecord and `findCaller` derive them."""
    try:
        filename = os.path.basename(fn)
        names = (filename, os.path.splitext(filename)[0])
    except (TypeError, ValueError, AttributeError):
        names = (fn, "Unknown module")
    skipped = fn == logging._srcfile or ("importlib" in fn and "_bootstrap" in fn)
    if len(_names) >= 4096:
        _names.clear()
    entry = _names[fn] = (*names, skipped)
    return entry


def message(msg: object, args: tuple[object, ...]) -> str:
    """`LogRecord(...).getMessage()` for these arguments, or `str(msg)` where it raises (as the handler)."""
    try:
        text = msg if type(msg) is str else str(msg)
        if not args:
            return text
        if len(args) == 1:  # LogRecord formats with a sole non-empty Mapping argument itself
            arg = args[0]
            if type(arg) not in _PLAIN and isinstance(arg, Mapping) and arg:
                return text % arg
        return text % args
    except Exception:
        return str(msg)


def packed_tags(depth: int) -> bytes:
    """The msgpack of `record_tags(record)` for a record made by the logging call `depth` frames up.

    The caller is the frame `Logger.findCaller` would pick: `depth` frames up, past frames of the
    logging module (and importlib's bootstrap).
    """
    global _names_srcfile
    if logging._srcfile is not _names_srcfile:  # the "skipped" flags depend on it
        _names.clear()
        _names_srcfile = logging._srcfile
    f: FrameType = _getframe(depth + 1)
    while True:
        pathname = f.f_code.co_filename
        names = _names.get(pathname) or _file_names(pathname)
        if not names[2]:
            break
        back = f.f_back
        if back is None:
            break
        f = back
    filename, module, _ = names
    lineno, func = f.f_lineno, f.f_code.co_name
    if logging.logThreads:
        thread: int | None = _get_ident()
        thread_name: str | None = _current_thread().name
    else:
        thread = thread_name = None
    process_name: str | None = None
    if logging.logMultiprocessing:
        process_name = "MainProcess"
        mp = sys.modules.get("multiprocessing")
        if mp is not None:
            try:  # noqa: SIM105 (a hot path: contextlib.suppress costs more than the lookup)
                process_name = mp.current_process().name
            except Exception:
                pass
    process = _pid if logging.logProcesses else None
    key = (pathname, lineno, func, thread, thread_name, process, process_name)
    packed = _packed.get(key)
    if packed is None:
        tags = {
            "filename": filename,
            "pathname": pathname,
            "lineno": lineno,
            "funcName": func,
            "module": module,
            "thread": thread,
            "threadName": thread_name,
            "process": process,
            "processName": process_name,
        }
        packed = msgpack.packb(tags, use_bin_type=True)
        if len(_packed) >= 4096:
            _packed.clear()
        _packed[key] = packed
    return packed


_pid = os.getpid()  # a system call each time (~0.5 us here); only a fork changes it


def _forked() -> None:
    global _pid
    _pid = os.getpid()


os.register_at_fork(after_in_child=_forked)
