"""Simulated mode (the server plays the timeline) and crash durability; on SQLite and PostgreSQL."""

from __future__ import annotations

import signal
from collections.abc import Callable
from typing import Any

import pytest

from tests.console.conftest import DATA, PLANS, Server, event, plan, run_cli
from tests.harness import wait_until


def _events(server: Server, dep: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    while True:
        page = server.operator().get(
            f"/api/deployments/{dep}/events", params={"offset": len(out), "limit": 500}
        )
        assert page.status_code == 200
        out += page.json()["events"]
        if len(out) >= page.json()["total"]:
            return out


def _status(server: Server, dep: str) -> str:
    return str(server.operator().get(f"/api/deployments/{dep}").json()["status"])


@pytest.mark.parametrize("plan_file", [p.name for p in PLANS])
def test_simulated_mode_plays_the_full_timeline(server: Server, plan_file: str) -> None:
    source = plan(plan_file)
    satellite = f"sim-{plan_file.split('-')[0]}"
    # through the CLI on the same database while the server runs (the server picks it up)
    done = run_cli(
        "deploy", "--db-url", server.db_url, str(DATA / plan_file), "--satellite", satellite,
        "--mode", "simulated", "--speed", "200000",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    dep = done.stdout.strip()
    assert dep.startswith("dep-")
    wait_until(lambda: _status(server, dep) == "completed", timeout=20, interval=0.05)
    stored = _events(server, dep)
    assert [e["event_type"] for e in stored] == [e["type"] for e in source["events"]]
    assert [e["step_id"] for e in stored] == [e.get("step_id") for e in source["events"]]
    assert [e["payload"] for e in stored] == [e["payload"] for e in source["events"]]
    assert [e["event_timestamp"] for e in stored] == [e["timestamp"] for e in source["events"]]
    assert [e["seq"] for e in stored] == list(range(len(source["events"])))
    assert all(e["known_type"] for e in stored)
    # agents cannot report on a simulated deployment, and it is never handed to one
    agent = server.agent("sat-sim")
    r = agent.post(f"/api/deployments/{dep}/events", json=event())
    assert r.status_code == 409
    agent.post("/api/agent/register", json={"agent_id": "sat-sim", "satellite_id": satellite})
    assert agent.get("/api/agent/workloads").status_code == 204


def test_simulated_speed_paces_the_timeline(server: Server) -> None:
    # single-satellite plan: 7,499 s end to end; at 500x about 15 s, so after the first events it is
    # visibly in progress (running, part of the timeline), and cancelling stops it there.
    body = {"plan": plan("single-satellite-plan.json"), "satellite_id": "99901", "mode": "simulated",
            "speed_multiplier": 500}  # fmt: skip
    dep = server.operator().post("/api/deployments", json=body).json()["id"]
    wait_until(lambda: _status(server, dep) == "running", timeout=10, interval=0.02)
    assert server.operator().post(f"/api/deployments/{dep}/cancel").json()["status"] == "cancelled"
    emitted = len(_events(server, dep))
    assert 1 <= emitted < 39
    assert _status(server, dep) == "cancelled"
    assert len(_events(server, dep)) == emitted


def test_simulated_timeline_derived_from_plan_data(server: Server) -> None:
    source = plan("single-satellite-plan.json")
    del source["events"]  # only the CAE plan: the Console derives the timeline from its segments
    body = {"plan": source, "satellite_id": "99901", "mode": "simulated", "speed_multiplier": 1e6}
    dep = server.operator().post("/api/deployments", json=body).json()["id"]
    wait_until(lambda: _status(server, dep) == "completed", timeout=20, interval=0.05)
    kinds = [e["event_type"] for e in _events(server, dep)]
    assert kinds[0] == "job.accepted"
    assert kinds[-1] == "job.completed"
    segments = source["plan_data"]["plan"]["segments"]
    compute = [s["step_id"] for s in segments if s["kind"] == "compute"]
    assert kinds.count("step.started") == len(compute) == kinds.count("step.completed")
    assert kinds.count("transfer.pass_started") == 2
    assert kinds.count("transfer.completed") == 1


def test_acknowledged_events_survive_sigkill(start_server: Callable[..., Server]) -> None:
    server = start_server("--rate-limits", "off")
    dep = (
        server.operator()
        .post("/api/deployments", json={"plan": plan("ocp-primitives-plan.json"), "satellite_id": "D1"})
        .json()["id"]
    )
    agent = server.agent("sat-d")
    acked: dict[str, str] = {}
    for i in range(40):
        r = agent.post(f"/api/deployments/{dep}/events", json=event(event_id=f"k{i}", seq=i))
        assert r.status_code == 201
        acked[f"k{i}"] = r.json()["id"]
    batch = [event(event_id=f"b{i}", seq=100 + i) for i in range(200)]
    r = agent.post(f"/api/deployments/{dep}/events/batch", json={"events": batch})
    assert r.json()["stored"] == 200
    acked.update({f"b{i}": a["id"] for i, a in enumerate(r.json()["results"])})
    assert server.proc is not None
    server.proc.signal(signal.SIGKILL)
    assert server.proc.wait(10) == -signal.SIGKILL
    server.stop()
    restarted = Server(server.db_url, ("--rate-limits", "off"), server.operator_key, server.agent_key).start()
    try:
        stored = _events(restarted, dep)
        assert {e["event_id"]: e["id"] for e in stored} == acked
        # retries after the restart are still recognised
        agent2 = restarted.agent("sat-d")
        r = agent2.post(f"/api/deployments/{dep}/events", json=event(event_id="k7", seq=7))
        assert r.status_code == 200
        assert r.json()["id"] == acked["k7"]
    finally:
        restarted.stop()
