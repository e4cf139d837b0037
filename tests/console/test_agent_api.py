"""Agent endpoints over real HTTP against a running server, on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tests.console.conftest import Server, event, plan, run_cli
from tests.harness import wait_until


def _live(server: Server, satellite: str, name: str = "single-satellite-plan.json") -> str:
    r = server.operator().post(
        "/api/deployments", json={"plan": plan(name), "satellite_id": satellite, "mode": "live"}
    )
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "pending"
    return str(r.json()["id"])


def _register(client: httpx.Client, agent_id: str, satellite: str) -> dict[str, Any]:
    r = client.post(
        "/api/agent/register",
        json={
            "agent_id": agent_id,
            "satellite_id": satellite,
            "satellite_name": "RS",
            "agent_version": "0.1.0",
        },
    )
    assert r.status_code == 201, r.text
    return dict(r.json())


def test_auth_failures(server: Server) -> None:
    anon = server.client(agent="sat-a")
    for method, path in (("POST", "/api/agent/register"), ("GET", "/api/agent/workloads")):
        r = anon.request(method, path, json={"agent_id": "sat-a"})
        assert r.status_code == 401
        assert r.json() == {"error": "missing API key (X-API-Key header)"}
    bad = server.client("rs_live_0000000000000000dead", "sat-a")
    r = bad.get("/api/agent/workloads")
    assert r.status_code == 401
    assert r.json()["error"] == "invalid API key"
    # an agent key on operator endpoints: 403; the operator key works
    agent = server.agent("sat-a")
    for path in ("/api/deployments", "/api/agents", f"/api/deployments/{_live(server, 's1')}"):
        r = agent.get(path)
        assert r.status_code == 403, (path, r.text)
        assert "operator" in r.json()["error"]
        assert server.operator().get(path).status_code == 200
    r = agent.post("/api/deployments", json={"plan": plan("single-satellite-plan.json"), "satellite_id": "x"})
    assert r.status_code == 403
    # keys made and revoked through the CLI on the live database (lookups are cached for at most 1 s)
    made = run_cli("keys", "create", "--db-url", server.db_url, "--name", "short-lived")
    assert made.returncode == 0, made.stderr
    short = server.client(made.stdout.strip(), "sat-a")
    assert short.get("/api/agent/capabilities").status_code == 200
    assert run_cli("keys", "revoke", "--db-url", server.db_url, "short-lived").returncode == 0
    wait_until(lambda: short.get("/api/agent/capabilities").status_code == 401, timeout=10)
    assert short.get("/api/agent/workloads").json() == {"error": "API key revoked"}
    assert agent.get("/api/agent/capabilities").status_code == 200


def test_register_poll_report_flow(server: Server) -> None:
    sat = f"9{uuid.uuid4().int % 10**6}"
    agent = server.agent("sat-flow")
    body = _register(agent, "sat-flow", sat)
    assert body["id"] == "sat-flow"
    assert body["status"] == "idle"
    caps = body["capabilities"]
    assert {"event_id", "batch", "lease"} <= set(caps["extensions"])
    assert caps["max_batch_events"] == 500
    assert caps["lease_seconds"] == 300.0
    assert agent.get("/api/agent/capabilities").json() == caps
    # nothing to do yet
    r = agent.get("/api/agent/workloads")
    assert r.status_code == 204
    assert r.content == b""
    # oldest pending live deployment for the agent's satellite, one per poll
    first, second = _live(server, sat), _live(server, sat)
    _live(server, "other-satellite")
    spec = agent.get("/api/agent/workloads").json()
    source = plan("single-satellite-plan.json")
    assert spec["deployment_id"] == first
    assert spec["satellite_id"] == sat
    assert spec["plan_id"] == source["plan_id"]
    assert spec["plan_data"] == source["plan_data"]
    assert spec["events"] == source["events"]
    assert spec["lease_expires_at"].endswith("Z")
    assert agent.get("/api/agent/workloads").json()["deployment_id"] == second
    assert agent.get("/api/agent/workloads").status_code == 204
    op = server.operator()
    assert op.get(f"/api/deployments/{first}").json()["status"] == "dispatched"
    # events drive the status: accepted -> running -> completed
    for i, ev in enumerate(source["events"]):
        r = agent.post(f"/api/deployments/{first}/events", json={**ev, "event_id": f"e{i}", "seq": i})
        assert r.status_code == 201, r.text
        assert r.json()["id"].startswith("evt-")
        assert r.json()["duplicate"] is False
        if i == 0:
            assert op.get(f"/api/deployments/{first}").json()["status"] == "running"
    dep = op.get(f"/api/deployments/{first}").json()
    assert dep["status"] == "completed"
    assert dep["event_count"] == len(source["events"])
    # stored form, chronological, paged with offset/limit
    page = op.get(f"/api/deployments/{first}/events", params={"offset": 5, "limit": 10}).json()
    assert page["total"] == len(source["events"])
    assert page["offset"] == 5
    assert page["limit"] == 10
    assert [e["seq"] for e in page["events"]] == list(range(5, 15))
    stored = page["events"][0]
    assert {"id", "event_type", "step_id", "payload", "event_timestamp", "created_at"} <= set(stored)
    assert stored["event_type"] == source["events"][5]["type"]
    assert stored["event_timestamp"] == source["events"][5]["timestamp"]
    assert stored["payload"] == source["events"][5]["payload"]
    default = op.get(f"/api/deployments/{first}/events").json()
    assert default["offset"] == 0
    assert default["limit"] == 100
    assert len(default["events"]) == 39
    assert op.get(f"/api/deployments/{first}/events", params={"limit": 501}).status_code == 400
    # a closed deployment refuses new events (409) but still acknowledges a retried one
    r = agent.post(f"/api/deployments/{first}/events", json=event())
    assert r.status_code == 409
    assert "completed" in r.json()["error"]
    r = agent.post(
        f"/api/deployments/{first}/events", json={**source["events"][-1], "event_id": "e38", "seq": 38}
    )
    assert r.status_code == 200
    assert r.json()["duplicate"] is True


def test_duplicates_unknown_types_and_batch(server: Server) -> None:
    dep = _live(server, "dup-sat")
    agent = server.agent("sat-dup")
    op = server.operator()
    one = agent.post(f"/api/deployments/{dep}/events", json=event(event_id="a-1", seq=1))
    again = agent.post(f"/api/deployments/{dep}/events", json=event(event_id="a-1", seq=1))
    assert one.status_code == 201
    assert again.status_code == 200
    assert one.json()["id"] == again.json()["id"]
    assert again.json()["duplicate"] is True
    # the Idempotency-Key header works the same, and so does payload.event_id (section 9.3)
    h = {"Idempotency-Key": "hdr-7"}
    ids = {
        agent.post(f"/api/deployments/{dep}/events", json=event(), headers=h).json()["id"] for _ in range(3)
    }
    ev = event()
    ev["payload"] = {"event_id": "pl-1", "seq": 9}
    ids2 = {agent.post(f"/api/deployments/{dep}/events", json=ev).json()["id"] for _ in range(2)}
    assert len(ids) == 1
    assert len(ids2) == 1
    # the same id for a different event is a client bug: 409, nothing stored
    r = agent.post(f"/api/deployments/{dep}/events", json=event("step.completed", event_id="a-1"))
    assert r.status_code == 409
    # types outside the catalogue are stored and flagged
    r = agent.post(f"/api/deployments/{dep}/events", json=event("quantum.entangled", event_id="q"))
    assert r.status_code == 201
    assert r.json()["known_type"] is False
    # batch: each event idempotent
    batch = [event(event_id=f"b-{i}", seq=100 + i) for i in range(5)] + [event(event_id="a-1", seq=1)]
    r = agent.post(f"/api/deployments/{dep}/events/batch", json={"events": batch})
    assert r.status_code == 200, r.text
    res = r.json()
    assert res["stored"] == 5
    assert res["duplicates"] == 1
    assert res["results"][-1]["id"] == one.json()["id"]
    r2 = agent.post(f"/api/deployments/{dep}/events/batch", json={"events": batch})
    assert r2.json()["stored"] == 0
    assert [a["id"] for a in r2.json()["results"]] == [a["id"] for a in res["results"]]
    page = op.get(f"/api/deployments/{dep}/events").json()
    assert page["total"] == 1 + 1 + 1 + 1 + 5
    assert [e["known_type"] for e in page["events"]].count(False) == 1
    # an invalid event anywhere in a batch refuses the whole batch; too many events too
    bad = [event(event_id="c-1"), {"type": "x", "job_id": "j"}]
    r = agent.post(f"/api/deployments/{dep}/events/batch", json={"events": bad})
    assert r.status_code == 400
    assert "timestamp" in r.json()["error"]
    r = agent.post(f"/api/deployments/{dep}/events/batch", json={"events": [event()] * 501})
    assert r.status_code == 400
    assert op.get(f"/api/deployments/{dep}/events").json()["total"] == 9


def test_telemetry_and_agents_view(server: Server) -> None:
    agent = server.agent("sat-tm")
    _register(agent, "sat-tm", "42")
    body = {
        "agent_id": "sat-tm",
        "status": "executing",
        "timestamp": "2026-03-07T14:00:00.123456789+00:00",
        "battery_percent": 82.0,
        "temperature_c": 34.2,
        "position": {"lat": 42.36, "lon": -71.06, "altitude_km": 550.0, "in_eclipse": False},
        "compute_capacity": 1.0,
    }
    r = agent.post("/api/agent/telemetry", json=body)
    assert r.status_code == 200
    assert r.json() == {"ok": True}
    # optional fields may be omitted; the header identifies the agent
    assert agent.post("/api/agent/telemetry", json={}).status_code == 200
    assert agent.post("/api/agent/telemetry", json={"status": "asleep"}).status_code == 400
    view = {a["agent_id"]: a for a in server.operator().get("/api/agents").json()["agents"]}
    me = view["sat-tm"]
    assert me["satellite_id"] == "42"
    assert me["user_agent"] == "rotastellar-agent/0.1.0"
    assert me["status"] == "executing"
    assert me["last_heartbeat_at"] is not None
    # re-register is an upsert back to idle
    _register(agent, "sat-tm", "43")
    view = {a["agent_id"]: a for a in server.operator().get("/api/agents").json()["agents"]}
    assert view["sat-tm"]["satellite_id"] == "43"
    assert view["sat-tm"]["status"] == "idle"


def test_bad_input_gets_clear_4xx(server: Server) -> None:
    dep = _live(server, "bad-sat")
    agent = server.agent("sat-bad")
    url = f"/api/deployments/{dep}/events"
    cases: list[tuple[int, httpx.Response]] = [
        (
            400,
            agent.post(url, content=b'{"type": "job.accepted"', headers={"Content-Type": "application/json"}),
        ),
        (400, agent.post(url, content=b"")),
        (400, agent.post(url, json={"timestamp": "2026-03-12T10:00:00Z", "job_id": "j", "payload": {}})),
        (400, agent.post(url, json=event(timestamp="yesterday"))),
        (400, agent.post(url, json=event(job_id="a\u0000b"))),
        (400, agent.post(url, json=event(seq=-1))),
        (400, agent.post(url, json=[1, 2])),
        (
            400,
            agent.post(
                url,
                content=b'{"type":"a","timestamp":"2026-03-12T10:00:00Z","job_id":"j","payload":{"x":NaN}}',
            ),
        ),
        (
            400,
            agent.post(
                url,
                content=b'{"type":"a","timestamp":"2026-03-12T10:00:00Z","job_id":"j","payload":{"x":1e999}}',
            ),
        ),
        (400, agent.post("/api/agent/telemetry", content=b'{"battery_percent": Infinity}')),
        (400, agent.post("/api/deployments/bad%20id!/events", json=event())),
        (404, agent.post("/api/deployments/dep-doesnotexist/events", json=event())),
        (400, server.client(server.agent_key).post(url, json=event())),  # no X-Agent-ID
        (400, agent.post("/api/agent/register", json={"agent_id": "someone-else"})),
        (413, agent.post(url, content=b"x" * ((1 << 20) + 1), headers={"Content-Type": "application/json"})),
        (404, agent.get("/api/no/such/route")),
        (405, agent.delete("/api/agent/workloads")),
        (
            400,
            server.operator().post("/api/deployments", json={"plan": {"plan_data": 3}, "satellite_id": "s"}),
        ),
        (
            400,
            server.operator().post("/api/deployments", json={"plan": {}, "satellite_id": "s", "mode": "x"}),
        ),
    ]

    def chunks() -> Any:
        for _ in range(20):
            yield b"y" * 65536

    cases.append((413, agent.post(url, content=chunks())))  # chunked: no Content-Length
    for want, r in cases:
        assert r.status_code == want, (r.request.method, r.request.url, r.status_code, r.text)
        assert isinstance(r.json()["error"], str)
        assert r.json()["error"]
    # nothing of the above was stored
    assert server.operator().get(f"/api/deployments/{dep}/events").json()["total"] == 0
    assert server.operator().get(f"/api/deployments/{dep}").json()["status"] == "pending"


def test_openapi_document(server: Server) -> None:
    doc = httpx.get(f"{server.url}/openapi.json").json()
    for path in (
        "/api/agent/register",
        "/api/agent/workloads",
        "/api/deployments/{deployment_id}/events",
        "/api/deployments/{deployment_id}/events/batch",
        "/api/agent/telemetry",
        "/api/deployments",
        "/api/deployments/{deployment_id}/cancel",
    ):
        assert path in doc["paths"]
    body = doc["paths"]["/api/deployments/{deployment_id}/events"]["post"]["requestBody"]
    ref = body["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    assert set(doc["components"]["schemas"][ref]["required"]) == {"type", "timestamp", "job_id"}
