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
CMDP handlers of ours in the chain, a logger subclass, a custom LogRecord factory, an `extra` that is
not a plain dict or has keys beyond `satellite`/`component`, `logging._srcfile` unset, no Python frame
above the log method (a `_thread` target, an atexit callback), or tags msgpack refuses. Not checked:
a subclass of this adapter overriding `process` (the fast path does not call it).

Mirrors CPython 3.11's `logging` (findCaller, LogRecord attributes, `created = time.time()`); a newer
Python (3.12 adds `taskName`, 3.13 takes the time from `time_ns`) must pass the byte-identity tests again.
Where `LogRecord` asks the system for the process id on every record (a ~0.5 us system call here), we
read it once and again in a child after `os.fork` (`os.register_at_fork`); only a child forked behind
Python's back (a C extension calling fork() itself) would report its parent's pid.

The checks read three private names of the standard library as its own functions do, to save a call
each: `Logger._cache` (`isEnabledFor`'s answers), `logging._logRecordFactory` (`getLogRecordFactory`)
and `threading._active` (`current_thread`).

Costs on our 2-core VM (`SatelliteLog.log(INFO, "burst %d", i)` into a subscribed publisher, one
thread): ~1.9 us a record: dispatch and the level check ~0.15, the other checks and the handler chain
walk ~0.35, the topic and its subscription ~0.2, the caller, thread and process tags ~0.25, their
cached msgpack ~0.15 (the line number is decoded only on a cache miss: ~0.35 us on its own), the
message ~0.3, the time and the queue ~0.3.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Mapping
from types import CodeType, FrameType
from typing import Any

import msgpack

from .logtopics import logger_component
from .monitoring import (
    LOG_ROUTES,  # the route cache, read inline on the hot path
    CmdpLogHandler,
    log_route,
)

__all__ = ["SatelliteLog"]

TRACE = 5  # Constellation's levels below DEBUG and between WARNING and ERROR (CMDP TRACE, STATUS)
STATUS = 35
_EXTRA_KEYS = frozenset(("satellite", "component"))
_logging = logging
_LogRecord = logging.LogRecord
_Logger = logging.Logger
_get_ident = threading.get_ident
_current_thread = threading.current_thread
_active = threading._active  # type: ignore[attr-defined]  # ident -> Thread, read by current_thread
_modules = sys.modules
_PLAIN = frozenset((int, float, str, bytes, bool, type(None)))  # argument types that are never Mappings
_getframe = sys._getframe
#: (python level, component) -> (wire level, topic component, topic bytes).
#: pathname -> (filename, module, skipped by findCaller), as LogRecord and findCaller derive them.
_names: dict[str, tuple[str, str, bool]] = {}
_names_srcfile: str | None = None  # the `logging._srcfile` that `_names` was made with
#: (id of the caller's code, its instruction, thread, thread name, process, process name) -> (the code
#: object, kept so that its id is not reused while the entry lives, the msgpack of the record's tags)
_packed: dict[tuple[Any, ...], tuple[CodeType, bytes]] = {}


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
        """True when the call is fully handled (disabled, unsubscribed, or queued for CMDP).

        One function, no calls on the common path: each call costs about as much as a check here.
        """
        logger = self.logger
        if type(level) is not int or type(logger) is not _Logger:
            return False
        if logger.disabled:
            return True  # exactly what LoggerAdapter.log does (via isEnabledFor)
        try:  # `Logger.isEnabledFor`, whose answer the logger caches (cleared by any setLevel)
            enabled = logger._cache[level]  # type: ignore[attr-defined]
        except KeyError:
            enabled = logger.isEnabledFor(level)
        if not enabled:
            return True
        factory = _logging._logRecordFactory  # type: ignore[attr-defined]  # getLogRecordFactory()
        if logger.filters or not _logging._srcfile or factory is not _LogRecord:
            return False
        extra = self.extra
        if type(extra) is not dict or not extra.keys() <= _EXTRA_KEYS:
            return False
        # The handlers `Logger.callHandlers` would hand the record to: ours must be the only one that
        # takes it. A CmdpLogHandler of another satellite ignores our records (they carry our name).
        satellite = extra.get("satellite")
        handler: CmdpLogHandler | None = None
        c: logging.Logger | None = logger
        while c is not None:
            for h in c.handlers:
                if h.filters:
                    return False
                if type(h) is CmdpLogHandler:
                    if h.satellite != satellite:
                        continue
                    if handler is not None or level < h.level:
                        return False
                    handler = h
                elif level >= h.level:
                    return False
            c = c.parent if c.propagate else None
        if handler is None:
            return False
        raw = extra.get("component") or logger_component(logger.name)
        if type(raw) is not str:
            return False
        route = LOG_ROUTES.get((level, raw)) or log_route(level, raw)
        publisher = handler.publisher
        wanted = publisher.topic_wanted.get(route[2])
        if wanted is None:
            wanted = publisher.wants(route[2])
        if not wanted:
            return True
        # The tags, as `LogRecord` and `Logger.findCaller` derive them: the caller is two frames up
        # (past this method and the level method), past frames of logging itself (and importlib's
        # bootstrap). Packed once per distinct content, found by the caller's code object and
        # instruction (`f_lineno` decodes the line table: ~0.3 us, the costliest tag) and the thread.
        if _logging._srcfile is not _names_srcfile:  # the "skipped" flags depend on it
            _reset_names()
        try:
            f: FrameType = _getframe(2)
        except ValueError:  # no Python caller (a `_thread` target, an atexit callback): findCaller
            return False  # then takes the deepest frame, ours; the normal path does that
        code = f.f_code
        names = _names.get(code.co_filename) or _file_names(code.co_filename)
        while names[2]:
            back = f.f_back
            if back is None:
                break
            f = back
            code = f.f_code
            names = _names.get(code.co_filename) or _file_names(code.co_filename)
        if _logging.logThreads:
            thread: int | None = _get_ident()
            try:  # `threading.current_thread()`, inlined
                thread_name: str | None = _active[thread].name
            except KeyError:
                thread_name = _current_thread().name
        else:
            thread = thread_name = None
        process_name: str | None = None
        if _logging.logMultiprocessing:
            process_name = "MainProcess"
            mp = _modules.get("multiprocessing")
            if mp is not None:
                try:  # noqa: SIM105 (a hot path: contextlib.suppress costs more than the lookup)
                    process_name = mp.current_process().name
                except Exception:
                    pass
        process = _pid if _logging.logProcesses else None
        # id(code) is unique while the entry holds the code object (checked, for clarity)
        key = (id(code), f.f_lasti, thread, thread_name, process, process_name)
        entry = _packed.get(key)
        if entry is not None and entry[0] is code:
            tags = entry[1]
        else:
            try:
                tags = _pack_tags(key, code, f.f_lineno, names)
            except (ValueError, TypeError, OverflowError):
                # msgpack refuses a tag (a lone surrogate in a thread name or path): the normal path,
                # where the publisher drops that one message, as it always did, instead of raising
                return False
        # `LogRecord.getMessage`, inlined for a str message and plain arguments
        if not args:
            text = msg if type(msg) is str else message(msg, args)
        elif type(msg) is str and (len(args) != 1 or type(args[0]) in _PLAIN):
            try:
                text = msg % args
            except Exception:
                text = msg  # as the handler: the unformatted message
        else:
            text = message(msg, args)
        # the record time as the handler sends it (`LogRecord.created` is `time.time()`)
        publisher.push((route[0], route[1], text, tags, int(time.time() * 1_000_000) * 1000))
        return True


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


def _reset_names() -> None:
    global _names_srcfile
    _names.clear()
    _names_srcfile = _logging._srcfile


def _pack_tags(key: tuple[Any, ...], code: CodeType, lineno: int, names: tuple[str, str, bool]) -> bytes:
    """The msgpack of `record_tags` for a call at `lineno` of `code` (`key`: see `_fast`), remembered."""
    _, _, thread, thread_name, process, process_name = key
    tags = {
        "filename": names[0],
        "pathname": code.co_filename,
        "lineno": lineno,
        "funcName": code.co_name,
        "module": names[1],
        "thread": thread,
        "threadName": thread_name,
        "process": process,
        "processName": process_name,
    }
    packed: bytes = msgpack.packb(tags, use_bin_type=True)
    if len(_packed) >= 4096:
        _packed.clear()
    _packed[key] = (code, packed)
    return packed


_pid = os.getpid()  # a system call each time (~0.5 us here); only a fork changes it


def _forked() -> None:
    global _pid
    _pid = os.getpid()


os.register_at_fork(after_in_child=_forked)
