"""Group commit: one thread owns the write connection; concurrent writes share one transaction.

Requests queue ``fn(conn)``; the writer thread takes everything queued (up to ``max_batch``), runs it in
one transaction, commits (one fsync for the lot), then resolves each caller's future. A function that
raises a :class:`~console.errors.ConsoleError` only fails its own caller. Any other exception rolls the
batch back and the writer replays each function alone, so one bad request never fails its neighbours.
Nothing is acknowledged before its transaction committed. The thread keeps one connection between
groups (a checkout per group cost more than the statement on PostgreSQL) and opens a fresh one after
any error; results go straight to the caller's event loop.

A caller may queue a :class:`Statement` instead of a function: one SQL statement whose result row
``finish`` turns into the answer (or a refusal). On PostgreSQL consecutive statements of a group are
sent in one pipeline, so a group of N costs two round trips (pipeline, commit) instead of 2N + 2.
``finish`` may raise :class:`Recheck` when its row may predate a concurrent commit (a statement reads
with the snapshot it started with, also after waiting for a row lock): the writer then runs that
statement once more, alone, after the group committed (a new statement sees what committed meanwhile),
and a second ``Recheck`` is answered with its ``answer``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeAlias, TypeVar

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError

from console.errors import ConsoleError

__all__ = ["Recheck", "Statement", "Writer"]

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Statement(Generic[T]):
    """One statement (driver paramstyle) that changes nothing when ``finish(row)`` refuses."""

    sql: str
    params: dict[str, Any]
    finish: Callable[[Any], T]


class Recheck(Exception):
    """Raised by ``Statement.finish``: the row may be stale, run the statement again (once).

    ``answer`` is the refusal to give if the re-run is still undecided.
    """

    def __init__(self, answer: ConsoleError) -> None:
        super().__init__(answer.message)
        self.answer = answer


_Fn: TypeAlias = "Callable[[Connection], Any] | Statement[Any]"
# the work, the caller's future, the caller's loop (resolved there by call_soon_threadsafe)
_Item: TypeAlias = tuple[_Fn, "asyncio.Future[Any]", asyncio.AbstractEventLoop]
_STOP: Any = object()


class _Failed:
    __slots__ = ("exc",)

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


class _Again:
    """A statement whose ``finish`` asked for a re-run (:class:`Recheck`)."""

    __slots__ = ("stmt",)

    def __init__(self, stmt: Statement[Any]) -> None:
        self.stmt = stmt


class Writer:
    def __init__(self, engine: Engine, *, max_batch: int = 256) -> None:
        self._engine = engine
        self._postgres = engine.dialect.name == "postgresql"
        self._max_batch = max_batch
        self._queue: queue.SimpleQueue[_Item | Any] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="console-writer", daemon=True)
        self._started = False
        self._closed = False
        self._conn: Connection | None = None  # the writer thread's own, kept between groups

    def start(self) -> None:
        if not self._started:
            self._started = True
            self._thread.start()

    def close(self, timeout: float = 10.0) -> None:
        """Finish queued work and stop the thread. Idempotent."""
        if self._started and not self._closed:
            self._closed = True
            self._queue.put(_STOP)
            self._thread.join(timeout)

    async def run(self, fn: Callable[[Connection], T] | Statement[T]) -> T:
        """Run ``fn(conn)`` (or the statement) in a committed transaction; raises what ``fn`` raised."""
        if self._closed:
            raise RuntimeError("writer is closed")
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[T] = loop.create_future()
        self._queue.put((fn, fut, loop))
        return await fut

    def _run(self) -> None:
        try:
            self._loop()
        finally:
            self._drop_connection()

    def _connection(self) -> Connection:
        if self._conn is None:
            self._conn = self._engine.connect()
        return self._conn

    def _drop_connection(self) -> None:
        """After an error: a fresh connection for the next group (a broken one is discarded)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception:
                log.warning("closing the write connection failed", exc_info=True)

    def _loop(self) -> None:
        while True:
            first = self._queue.get()
            if first is _STOP:
                return
            batch: list[_Item] = [first]
            stop = False
            while len(batch) < self._max_batch:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    stop = True
                    break
                batch.append(item)
            self._execute(batch)
            if stop:
                return

    def _execute(self, batch: list[_Item]) -> None:
        results: list[Any] = []
        try:
            if self._postgres and all(isinstance(item[0], Statement) for item in batch):
                # BEGIN, statements, COMMIT: one pipeline
                results = _statements(self._connection(), [item[0] for item in batch], commit=True)
            else:
                results = self._transaction(batch)
        except Exception:
            self._drop_connection()
            if len(batch) == 1:
                log.exception("write failed")
                _settle(batch[0], _Failed(_unexpected()))
                return
            for item in batch:  # isolate the culprit: replay one by one
                self._execute([item])
            return
        again: list[tuple[_Item, Statement[Any]]] = []
        for item, result in zip(batch, results, strict=True):
            if isinstance(result, _Again):
                again.append((item, result.stmt))
            else:
                _settle(item, result)
        for item, stmt in again:  # after the others are answered: a re-run may wait for a row lock
            _settle(item, self._again(stmt))

    def _again(self, stmt: Statement[Any]) -> Any:
        """Run ``stmt`` once more in a transaction of its own (its first run changed nothing)."""
        try:
            return _statements(self._connection(), [stmt], commit=True, last=True)[0]
        except Exception:
            self._drop_connection()
            log.exception("write failed")
            return _Failed(_unexpected())

    def _transaction(self, batch: list[_Item]) -> list[Any]:
        results: list[Any] = []
        conn = self._connection()
        with conn.begin():
            i = 0
            while i < len(batch):
                fn = batch[i][0]
                if isinstance(fn, Statement):
                    j = i + 1
                    while j < len(batch) and isinstance(batch[j][0], Statement):
                        j += 1
                    results.extend(_statements(conn, [item[0] for item in batch[i:j]]))
                    i = j
                    continue
                try:
                    results.append(fn(conn))
                except ConsoleError as exc:  # a refusal: changes nothing (checks come before writes)
                    results.append(_Failed(exc))
                i += 1
        return results


def _statements(conn: Connection, stmts: list[Any], *, commit: bool = False, last: bool = False) -> list[Any]:
    """Run statements in order (pipelined on psycopg), then let each ``finish`` judge its row.

    ``commit``: the connection has no transaction open; BEGIN (implicit) and COMMIT travel in the
    same pipeline. Safe because a refused statement changed nothing, and nothing is judged (so
    nothing acknowledged) before the pipeline, COMMIT included, has completed. ``last``: a re-run, where
    a :class:`Recheck` is final.
    """
    driver = conn.connection.driver_connection
    rows: list[Any] = []
    if conn.dialect.name == "postgresql" and driver is not None:
        try:
            if commit and len(stmts) == 1:  # alone: one statement is its own transaction (no pipeline)
                driver.autocommit = True
                try:
                    rows = [driver.execute(stmts[0].sql, stmts[0].params).fetchone()]
                finally:
                    if not driver.broken:
                        driver.autocommit = False
                return _judge(stmts, rows, last)
            with driver.pipeline():
                cursors = []
                for st in stmts:
                    cur = driver.cursor()
                    cur.execute(st.sql, st.params)
                    cursors.append(cur)
                if commit:
                    driver.commit()
            rows = [cur.fetchone() for cur in cursors]
        except Exception as exc:  # as SQLAlchemy does: a typed DBAPIError (409/400/503), a dead link dropped
            if getattr(driver, "broken", False) or getattr(driver, "closed", False):
                conn.invalidate()
            dbapi_error = conn.dialect.loaded_dbapi.Error
            if isinstance(exc, dbapi_error):
                raise DBAPIError.instance(stmts[0].sql, None, exc, dbapi_error) from exc
            raise
    else:
        rows = [conn.exec_driver_sql(st.sql, st.params).first() for st in stmts]
        if commit:
            conn.commit()
    return _judge(stmts, rows, last)


def _judge(stmts: list[Any], rows: list[Any], last: bool = False) -> list[Any]:
    results: list[Any] = []
    for st, row in zip(stmts, rows, strict=True):
        try:
            results.append(st.finish(row))
        except ConsoleError as exc:
            results.append(_Failed(exc))
        except Recheck as exc:
            results.append(_Failed(exc.answer) if last else _Again(st))
    return results


def _unexpected() -> BaseException:
    import sys

    exc = sys.exc_info()[1]
    return exc if exc is not None else RuntimeError("write failed")


def _settle(item: _Item, result: Any) -> None:
    """Hand the result to the caller's event loop (from the writer thread)."""
    with contextlib.suppress(RuntimeError):  # the caller's loop is closed: nobody waits any more
        item[2].call_soon_threadsafe(_resolve, item[1], result)


def _resolve(fut: asyncio.Future[Any], result: Any) -> None:
    if fut.done():  # the caller was cancelled (the write itself still happened)
        return
    if isinstance(result, _Failed):
        fut.set_exception(result.exc)
    else:
        fut.set_result(result)
