"""Rate limits with Retry-After, lease expiry and redelivery, cancellation; on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from tests.console.conftest import Server, event, plan
from tests.harness import wait_until


def _deploy(server: Server, satellite: str, mode: str = "live") -> str:
    body = {"plan": plan("ocp-primitives-plan.json"), "satellite_id": satellite, "mode": mode}
    r = server.operator().post("/api/deployments", json=body)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def test_published_rate_limits_by_default(start_server: Callable[..., Server]) -> None:
    server = start_server("--events-per-minute", "5")
    agent = server.agent("sat-rl")
    assert (
        agent.post("/api/agent/register", json={"agent_id": "sat-rl", "satellite_id": "rl"}).status_code
        == 201
    )
    caps = agent.get("/api/agent/capabilities").json()["rate_limits"]
    assert caps == {"poll_min_interval_s": 10.0, "events_per_minute": 5.0, "telemetry_min_interval_s": 30.0}
    # poll: 1 per 10 s per agent
    assert agent.get("/api/agent/workloads").status_code == 204
    r = agent.get("/api/agent/workloads")
    assert r.status_code == 429
    assert 1 <= int(r.headers["Retry-After"]) <= 10
    assert "poll" in r.json()["error"]
    # another agent has its own budget
    assert (
        server.agent("sat-rl-2").post("/api/agent/register", json={"agent_id": "sat-rl-2"}).status_code == 201
    )
    assert server.agent("sat-rl-2").get("/api/agent/workloads").status_code == 204
    # telemetry: 1 per 30 s per agent
    assert agent.post("/api/agent/telemetry", json={"status": "idle"}).status_code == 200
    r = agent.post("/api/agent/telemetry", json={"status": "idle"})
    assert r.status_code == 429
    assert 20 <= int(r.headers["Retry-After"]) <= 30
    # events: N per minute per deployment (here 5); a batch costs one token
    dep = _deploy(server, "rl")
    codes = [
        agent.post(f"/api/deployments/{dep}/events", json=event(event_id=f"e{i}")).status_code
        for i in range(6)
    ]
    assert codes == [201] * 5 + [429]
    r = agent.post(f"/api/deployments/{dep}/events", json=event(event_id="e9"))
    assert r.status_code == 429
    assert 1 <= int(r.headers["Retry-After"]) <= 12
    # a refused event was not stored
    assert server.operator().get(f"/api/deployments/{dep}/events").json()["total"] == 5
    other = _deploy(server, "rl")
    r = agent.post(f"/api/deployments/{other}/events/batch", json={"events": [event(event_id="b")]})
    assert r.status_code == 200


def test_lease_expiry_redelivers_silent_deployments(start_server: Callable[..., Server]) -> None:
    server = start_server("--rate-limits", "off", "--lease-seconds", "0.5")
    a, b = server.agent("sat-a"), server.agent("sat-b")
    for agent, name in ((a, "sat-a"), (b, "sat-b")):
        assert (
            agent.post("/api/agent/register", json={"agent_id": name, "satellite_id": "L1"}).status_code
            == 201
        )
    silent = _deploy(server, "L1")
    talking = _deploy(server, "L1")
    assert a.get("/api/agent/workloads").json()["deployment_id"] == silent
    assert a.get("/api/agent/workloads").json()["deployment_id"] == talking
    # the talking deployment reports within its lease: it is never handed out again
    assert a.post(f"/api/deployments/{talking}/events", json=event("job.accepted")).status_code == 201

    # the silent one comes back once its lease expired, to whichever agent polls next
    def redelivered() -> httpx.Response | None:
        r = b.get("/api/agent/workloads")
        assert r.status_code in (200, 204), r.text
        return r if r.status_code == 200 else None

    spec = wait_until(redelivered, timeout=10, interval=0.05)
    assert spec.json()["deployment_id"] == silent
    dep = server.operator().get(f"/api/deployments/{silent}").json()
    assert dep["status"] == "dispatched"
    assert dep["agent_id"] == "sat-b"
    assert dep["dispatch_count"] == 2
    # the first holder lost it: its late events are refused, the new holder's accepted
    r = a.post(f"/api/deployments/{silent}/events", json=event("job.accepted"))
    assert r.status_code == 409
    assert "another agent" in r.json()["error"]
    assert b.post(f"/api/deployments/{silent}/events", json=event("job.accepted")).status_code == 201
    assert server.operator().get(f"/api/deployments/{talking}").json()["dispatch_count"] == 1


def test_cancellation(server: Server) -> None:
    op = server.operator()
    agent = server.agent("sat-c")
    assert (
        agent.post("/api/agent/register", json={"agent_id": "sat-c", "satellite_id": "C1"}).status_code == 201
    )
    pending = _deploy(server, "C1")
    r = op.post(f"/api/deployments/{pending}/cancel")
    assert r.status_code == 200
    assert r.json()["status"] == "cancelled"
    assert agent.get("/api/agent/workloads").status_code == 204  # never dispatched
    running = _deploy(server, "C1")
    assert agent.get("/api/agent/workloads").json()["deployment_id"] == running
    assert agent.post(f"/api/deployments/{running}/events", json=event("job.accepted")).status_code == 201
    assert op.post(f"/api/deployments/{running}/cancel").json()["status"] == "cancelled"
    r = agent.post(f"/api/deployments/{running}/events", json=event())
    assert r.status_code == 409
    assert "cancelled" in r.json()["error"]
    again = op.post(f"/api/deployments/{running}/cancel")
    assert again.status_code == 409
    assert op.post("/api/deployments/dep-nope/cancel").status_code == 404
    assert agent.post(f"/api/deployments/{running}/cancel").status_code == 403
    listed = {d["id"]: d["status"] for d in op.get("/api/deployments").json()["deployments"]}
    assert listed[pending] == listed[running] == "cancelled"
