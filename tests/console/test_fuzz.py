"""Property-based API fuzzing: schemathesis against the server's own OpenAPI document finds no 5xx."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.console.conftest import Server, event, plan

SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
MAX_EXAMPLES = int(os.environ.get("CONSOLE_FUZZ_EXAMPLES", "25"))


def test_schemathesis_finds_no_server_error(server: Server) -> None:
    # some state worth hitting: a registered agent, a live deployment with events, a simulated one
    op, agent = server.operator(), server.agent("sat-fuzz")
    agent.post("/api/agent/register", json={"agent_id": "sat-fuzz", "satellite_id": "99901"})
    dep = op.post(
        "/api/deployments", json={"plan": plan("single-satellite-plan.json"), "satellite_id": "99901"}
    )
    agent.post(f"/api/deployments/{dep.json()['id']}/events", json=event(event_id="f1"))
    op.post(
        "/api/deployments",
        json={"plan": plan("ocp-primitives-plan.json"), "satellite_id": "99902", "mode": "simulated"},
    )
    argv = [
        str(SCHEMATHESIS), "run", f"{server.url}/openapi.json",
        "--header", f"X-API-Key: {server.operator_key}",
        "--checks", "not_a_server_error",
        "--max-examples", str(MAX_EXAMPLES),
        "--seed", "20261122",
        "--request-timeout", "10",
    ]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, timeout=240, check=False)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "passed" in done.stdout
    assert "13/13" in done.stdout  # every operation of the document was exercised
    # and the server is still healthy afterwards
    assert server.client().get("/healthz").json() == {"ok": True}
