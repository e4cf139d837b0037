"""PostgreSQL: a retry that races the request storing the same event gets the duplicate answer.

Two Console processes share one database. Request 1 stored event X but has not committed; request 2
(the agent's retry, on the other process) waits for the deployment row lock, and its statement then
reads with the snapshot it started with, from before request 1 committed. It must still answer as a
later retry does (200, the stored id), never 409: an agent takes 409 for "deployment gone/closed".
Request 1's open transaction is one connection; request 2 goes through the writer of a second engine;
the test waits until request 2 is blocked on the lock, then commits request 1.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from sqlalchemy import Connection, Engine

from console import ingest, ops
from console.db import make_engine, migrate
from console.errors import Conflict, Unavailable
from console.writer import Recheck, Statement, Writer
from protocols.console_api import AgentEvent
from tests.console.conftest import event
from tests.harness import eventually, wait_until


@pytest.fixture(scope="module", params=["postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@dataclass
class Db:
    engine: Engine
    uri: str  # libpq URI, for the lock monitor

    def deployment(self) -> str:
        with self.engine.begin() as conn:
            return ops.create_deployment(
                conn, plan={"plan_id": "p", "plan_data": {}}, satellite_id="s", mode="live", speed=1,
                timeline=[],
            )  # fmt: skip

    def count(self, dep: str) -> tuple[int, int]:
        """(events stored, the deployment's event_count)."""
        with self.engine.connect() as conn:
            p = {"d": dep}
            stored = conn.exec_driver_sql("SELECT count(*) FROM events WHERE deployment_id = %(d)s", p)
            counted = conn.exec_driver_sql("SELECT event_count FROM deployments WHERE id = %(d)s", p)
            return int(stored.scalar_one()), int(counted.scalar_one())


@pytest.fixture
def db(new_db_url: Callable[[], str]) -> Iterator[Db]:
    url = new_db_url()
    engine = make_engine(url, pool_size=2)
    migrate(engine)
    try:
        yield Db(engine, url.replace("postgresql+psycopg://", "postgresql://", 1))
    finally:
        engine.dispose()


def _ev(kind: str = "step.progress", **extra: Any) -> AgentEvent:
    return AgentEvent.model_validate(event(kind, **extra))


def _single(dep: str, ev: AgentEvent) -> Statement[Any]:
    return Statement(*ingest.pg_event_statement(dep, ev, agent_id="agent-1"))


def _first_run(conn: Connection, dep: str, ev: AgentEvent) -> Any:
    """Request 1: the single-event statement, in a transaction the caller leaves open."""
    sql, params, finish = ingest.pg_event_statement(dep, ev, agent_id="agent-1")
    return finish(conn.exec_driver_sql(sql, params).first())


async def _race(
    db: Db, first: Callable[[Connection], Any], retry: Callable[[Writer], Any]
) -> tuple[Any, Any]:
    """Run ``first`` in an open transaction, start ``retry`` on a writer of another engine, wait until
    the retry waits for a lock, commit ``first``; return both outcomes (the retry's may be an error)."""
    other = make_engine(db.engine.url.render_as_string(hide_password=False), pool_size=1)
    writer = Writer(other)
    writer.start()
    try:
        with db.engine.connect() as holder, psycopg.connect(db.uri, autocommit=True) as monitor:
            tx = holder.begin()
            first_result = first(holder)
            holder_pid = holder.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()
            task = asyncio.ensure_future(retry(writer))

            def retry_blocked() -> bool:
                assert not task.done(), task  # it must wait for request 1, not answer before
                blocked = monitor.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE %s = ANY(pg_blocking_pids(pid))",
                    (holder_pid,),
                ).fetchone()
                return blocked is not None and blocked[0] > 0

            # the writer thread works while this waits; a timeout means the retry never waited for
            # request 1's lock
            await eventually(retry_blocked, timeout=10)
            tx.commit()
        outcome = await asyncio.wait_for(asyncio.gather(task, return_exceptions=True), 15)
        return first_result, outcome[0]
    finally:
        writer.close()
        other.dispose()


@pytest.mark.timeout(120)
@pytest.mark.parametrize("kind", ["step.progress", "job.completed"])
async def test_single_retry_racing_the_first_request_is_a_duplicate(db: Db, kind: str) -> None:
    dep = db.deployment()
    ev = _ev(kind, event_id="e-1", seq=1)
    first, retry = await _race(
        db, lambda c: _first_run(c, dep, ev), lambda w: w.run(_single(dep, ev))
    )  # job.completed: request 1 also closed the deployment, which must not turn the retry into a 409
    assert not first.duplicate
    assert not isinstance(retry, BaseException), f"retry answered {retry!r}"
    assert retry.duplicate
    assert retry.id == first.id
    assert db.count(dep) == (1, 1)
    # a later retry agrees, and a refusal that stands is still a refusal after its re-run
    writer = Writer(db.engine)
    writer.start()
    try:
        later = await writer.run(_single(dep, ev))
        assert later.duplicate
        assert later.id == first.id
        if kind == "job.completed":
            with pytest.raises(Conflict, match="completed"):
                await writer.run(_single(dep, _ev(event_id="e-2", seq=2)))
    finally:
        writer.close()
    assert db.count(dep) == (1, 1)


@pytest.mark.timeout(120)
async def test_batch_retry_racing_the_first_request_gets_the_stored_ids(db: Db) -> None:
    dep = db.deployment()
    evs = [_ev(event_id=f"b-{k}", seq=k) for k in range(3)]

    def first(conn: Connection) -> list[ingest.Ack]:
        return ingest.store_events(conn, dep, evs[:2], agent_id="agent-1")

    def retry(writer: Writer) -> Any:  # the same two events and one more, as an agent's outbox resends
        return writer.run(lambda c: ingest.store_events(c, dep, evs, agent_id="agent-1"))

    stored, retried = await _race(db, first, retry)
    assert not isinstance(retried, BaseException), f"retry answered {retried!r}"
    assert [a[:2] for a in retried[:2]] == [(a[0], True) for a in stored]
    assert retried[2][1] is False
    assert db.count(dep) == (3, 3)


@pytest.mark.timeout(120)
async def test_single_first_then_batch_retry(db: Db) -> None:
    dep = db.deployment()
    ev = _ev("job.completed", event_id="c-1", seq=1)

    def retry(writer: Writer) -> Any:
        return writer.run(lambda c: ingest.store_events(c, dep, [ev], agent_id="agent-1"))

    first, retried = await _race(db, lambda c: _first_run(c, dep, ev), retry)
    assert not isinstance(retried, BaseException), f"retry answered {retried!r}"
    assert retried == [(first.id, True, True)]
    assert db.count(dep) == (1, 1)


@pytest.mark.timeout(60)
async def test_undecided_after_the_rerun_is_a_transient_answer(db: Db) -> None:
    runs: list[Any] = []

    def finish(row: Any) -> Any:
        runs.append(row)
        raise Recheck(Unavailable("still undecided", retry_after_s=2))

    writer = Writer(db.engine)
    writer.start()
    try:
        with pytest.raises(Unavailable, match="still undecided") as err:
            await writer.run(Statement("SELECT 1", {}, finish))
        assert err.value.status == 503
        assert err.value.retry_after_s == 2
        assert len(runs) == 2  # the statement ran once more, then its answer stood
        assert await writer.run(Statement("SELECT 2", {}, lambda row: row[0])) == 2  # writer still serves
    finally:
        writer.close()


def test_public_ids_after_a_fork_while_the_lock_is_held() -> None:
    with ingest._public_id._lock:  # as if another thread were drawing an id at the moment of the fork
        pid = os.fork()
        if pid == 0:  # child: must not wait for a lock nobody here will release
            ok = False
            try:
                ok = ingest._public_id().startswith("evt-")
            finally:
                os._exit(0 if ok else 1)
    status: list[int] = []

    def reaped() -> bool:
        got, st = os.waitpid(pid, os.WNOHANG)
        if got == pid:
            status.append(st)
        return bool(status)

    try:
        wait_until(reaped, timeout=10)
    except AssertionError:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        raise
    assert os.waitstatus_to_exitcode(status[0]) == 0


async def test_transient_answer_is_503_with_retry_after() -> None:
    import httpx
    from fastapi import FastAPI

    from console.http import install_error_handlers

    app = FastAPI()
    install_error_handlers(app)

    @app.post("/undecided")
    async def undecided() -> None:
        raise Unavailable("event_id 'e-1' is being stored by a concurrent request; retry", retry_after_s=1.2)

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://console.test") as client:
        r = await client.post("/undecided")
    assert r.status_code == 503
    assert r.headers["retry-after"] == "2"  # whole seconds, rounded up
    assert r.json() == {"error": "event_id 'e-1' is being stored by a concurrent request; retry"}
