"""Concurrent ingest: requests that share a group commit (and, on PostgreSQL, one pipeline) keep
their own outcomes: each event stored once, repeats acknowledged with the stored id, refusals alone."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest

from tests.console.conftest import Server, event, plan


def _live(server: Server, satellite: str) -> str:
    body = {"plan": plan("single-satellite-plan.json"), "satellite_id": satellite, "mode": "live"}
    r = server.operator().post("/api/deployments", json=body)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


@pytest.mark.timeout(90)
async def test_concurrent_single_and_batch_events(server: Server) -> None:
    tag = uuid.uuid4().hex[:8]
    open_deps = [_live(server, f"conc-{tag}-{i}") for i in range(3)]
    closed = _live(server, f"conc-{tag}-closed")
    agent_of = {dep: f"agent-{tag}-{i}" for i, dep in enumerate([*open_deps, closed])}
    done = server.agent(agent_of[closed]).post(
        f"/api/deployments/{closed}/events", json=event("job.completed", event_id=f"{tag}-end")
    )
    assert done.status_code == 201, done.text

    headers = {"X-API-Key": server.agent_key, "User-Agent": "rotastellar-agent/0.1.0"}
    async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=30.0) as client:

        async def post(dep: str, body: dict[str, Any], batch: bool = False) -> httpx.Response:
            path = f"/api/deployments/{dep}/events" + ("/batch" if batch else "")
            return await client.post(
                path, json=body, headers={"X-Agent-ID": agent_of.get(dep, f"agent-{tag}")}
            )

        singles = [
            (dep, event(event_id=f"{tag}-{dep[-6:]}-{k}", seq=k)) for dep in open_deps for k in range(40)
        ]
        batches = [
            (dep, {"events": [event(event_id=f"{tag}-{dep[-6:]}-b{j}-{k}", seq=1000 + k) for k in range(50)]})
            for dep in open_deps
            for j in range(2)
        ]
        requests = [post(dep, body) for dep, body in singles]
        requests += [post(dep, body) for dep, body in singles]  # every single event sent twice at once
        requests += [post(dep, body, batch=True) for dep, body in batches]
        requests += [post(closed, event(event_id=f"{tag}-late-{k}")) for k in range(10)]
        requests += [post("dep-" + "0" * 32, event(event_id=f"{tag}-nowhere-{k}")) for k in range(10)]
        responses = await asyncio.gather(*requests)

        n = len(singles)
        first, second = responses[:n], responses[n : 2 * n]
        batch_responses = responses[2 * n : 2 * n + len(batches)]
        late, nowhere = responses[2 * n + len(batches) : -10], responses[-10:]
        acked: dict[str, set[str]] = {dep: set() for dep in open_deps}
        for (dep, _body), a, b in zip(singles, first, second, strict=True):
            assert sorted((a.status_code, b.status_code)) == [200, 201], (a.text, b.text)
            assert a.json()["id"] == b.json()["id"]  # the repeat gets the stored id
            assert {a.json()["duplicate"], b.json()["duplicate"]} == {True, False}
            acked[dep].add(a.json()["id"])
        for (dep, _body), r in zip(batches, batch_responses, strict=True):
            assert r.status_code == 200, r.text
            assert r.json()["stored"] == 50
            assert r.json()["duplicates"] == 0
            acked[dep].update(ack["id"] for ack in r.json()["results"])
        assert all(r.status_code == 409 and "completed" in r.json()["error"] for r in late)
        assert all(r.status_code == 404 for r in nowhere)

        # a reused id with different content, racing its original: one stored, the other refused
        dep = open_deps[0]
        racing = await asyncio.gather(
            post(dep, event(event_id=f"{tag}-race", payload={"v": 1})),
            post(dep, event(event_id=f"{tag}-race", payload={"v": 2})),
        )
        assert sorted(r.status_code for r in racing) == [201, 409], [r.text for r in racing]
        acked[dep].add(next(r.json()["id"] for r in racing if r.status_code == 201))

    op = server.operator()
    for dep in open_deps:
        stored: list[str] = []
        while True:
            page = op.get(f"/api/deployments/{dep}/events", params={"offset": len(stored), "limit": 500})
            assert page.status_code == 200, page.text
            stored += [e["id"] for e in page.json()["events"]]
            if len(stored) >= page.json()["total"]:
                break
        assert len(stored) == len(set(stored)) == len(acked[dep])  # each acknowledged event once
        assert set(stored) == acked[dep]
        shown = op.get(f"/api/deployments/{dep}").json()
        assert shown["event_count"] == len(acked[dep])
        assert shown["status"] == "dispatched"
    assert op.get(f"/api/deployments/{closed}").json()["event_count"] == 1
