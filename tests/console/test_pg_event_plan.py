"""PostgreSQL single-event statement: its cost must not grow with the deployment's events.

A fresh database has no statistics until autovacuum's first ANALYZE; a repeat lookup by
(deployment_id, client_event_id) was then planned on ix_events_deployment and read every event of the
deployment, per event. The statement now checks repeats through the unique index (ON CONFLICT) and
looks the stored event up only when nothing was inserted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import Connection

from console import ingest, ops
from console.db import make_engine, migrate
from console.errors import Conflict
from protocols.console_api import AgentEvent
from tests.console.conftest import event


@pytest.fixture(scope="module", params=["postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", ()):
        yield from _nodes(child)


def _run(conn: Connection, dep: str, ev: dict[str, Any], agent: str = "agent-1") -> Any:
    sql, params, finish = ingest.pg_event_statement(dep, AgentEvent.model_validate(ev), agent_id=agent)
    row = conn.exec_driver_sql(sql, params).first()
    return finish(row)


@pytest.mark.timeout(120)
def test_new_event_reads_no_other_events(new_db_url: Callable[[], str]) -> None:
    engine = make_engine(new_db_url(), pool_size=1)
    try:
        migrate(engine)
        with engine.begin() as conn:
            dep = ops.create_deployment(
                conn, plan={"plan_id": "p", "plan_data": {}}, satellite_id="s", mode="live", speed=1,
                timeline=[],
            )  # fmt: skip
            for k in range(300):  # no ANALYZE: the state a fresh database is in for its first minute
                ack = _run(conn, dep, event(event_id=f"e-{k}", seq=k))
                assert not ack.duplicate
        with engine.connect() as conn:
            sql, params, _ = ingest.pg_event_statement(
                dep, AgentEvent.model_validate(event(event_id="e-new")), agent_id="agent-1"
            )
            explained = conn.exec_driver_sql("EXPLAIN (ANALYZE, FORMAT JSON) " + sql, params).scalar_one()
            conn.rollback()
        nodes = list(_nodes(explained[0]["Plan"]))
        reads = [n for n in nodes if n.get("Relation Name") == "events" and n["Node Type"] != "ModifyTable"]
        assert reads, "expected the (gated) stored-event lookup in the plan"
        for n in reads:  # the lookup of a stored event runs only when nothing was inserted
            assert n["Actual Loops"] == 0, n
        with engine.begin() as conn:  # and the lookup still answers repeats and reused ids
            again = _run(conn, dep, event(event_id="e-7", seq=7))
            assert again.duplicate
            with pytest.raises(Conflict):
                _run(conn, dep, event(event_id="e-8", seq=8, payload={"other": True}))
            count = conn.exec_driver_sql(
                "SELECT event_count FROM deployments WHERE id = %(d)s", {"d": dep}
            ).scalar_one()
            assert count == 300
    finally:
        engine.dispose()
