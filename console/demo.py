"""`python -m console.demo`: the Console server and its pull protocol, end to end, on loopback.

Starts `operator-console serve` on a fresh SQLite database, then shows both deployment modes:

1. *live*: an agent registers, pulls the workload (the deployment is leased to it), reports events with
   client event ids (a repeat is acknowledged once) and completes it;
2. *simulated*: the server itself plays the example plan's full event timeline at high speed.

Everything binds 127.0.0.1 and the server is stopped at the end. Part of `make demo`.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

SPEED = 2500.0  # the example plan spans about two hours of mission time: about 3 s here
CLI = [sys.executable, "-m", "console.cli"]


def _cli(*argv: str) -> str:
    done = subprocess.run([*CLI, *argv], capture_output=True, text=True, timeout=60, check=False)
    if done.returncode != 0:
        raise SystemExit(f"operator-console {argv[0]} failed: {done.stderr.strip()}")
    return done.stdout.strip()


def _start_server(db: Path) -> tuple[subprocess.Popen[str], str]:
    server = subprocess.Popen(
        [*CLI, "serve", "--db", str(db), "--port", "0", "--rate-limits", "off"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert server.stdout is not None
    deadline = time.monotonic() + 30
    for line in server.stdout:
        if m := re.search(r"listening on (http://\S+)", line):
            return server, m.group(1)
        if time.monotonic() > deadline:
            break
    server.kill()
    raise SystemExit("operator-console serve did not start")


def _steps_table(title: str, events: Sequence[dict[str, Any]]) -> Table:
    """One row per step (in order of first appearance): how many events, the last one, mission time."""
    rows: dict[str, list[dict[str, Any]]] = {}
    for ev in events:
        rows.setdefault(str(ev.get("step_id") or "(job)"), []).append(ev)
    table = Table(title=title, title_justify="left")
    for column in ("step", "events", "last event", "mission time"):
        table.add_column(column)
    for step, evs in rows.items():
        table.add_row(
            step, str(len(evs)), str(evs[-1].get("event_type")), str(evs[-1].get("event_timestamp"))
        )
    return table


def _live(out: Console, base: str, agent_key: str, files: tuple[Path, Path], plan: dict[str, Any]) -> None:
    db, plan_file = files
    satellite = str(plan["satellite_id"])
    dep_id = _cli("deploy", "--db", str(db), str(plan_file), "--satellite", satellite, "--mode", "live")
    out.print(f">> operator deployed the plan for satellite {satellite} in [bold]live[/] mode: {dep_id}")
    agent = {"X-API-Key": agent_key, "X-Agent-ID": "agent-demo-1", "User-Agent": "console-demo/1"}
    with httpx.Client(base_url=base, headers=agent, timeout=10) as http:
        reply = http.post(
            "/api/agent/register",
            json={
                "agent_id": "agent-demo-1",
                "satellite_id": satellite,
                "version": "demo",
                "capabilities": [],
            },
        )
        offered = ", ".join(reply.json().get("capabilities", {}).get("extensions", []))
        out.print(f"   agent registered ({reply.status_code}); server offers {offered}")
        work = http.get("/api/agent/workloads")
        spec = work.json()
        out.print(
            f"   agent polled: {work.status_code}, workload {spec.get('deployment_id')} (now leased to it)"
        )
        again = http.get("/api/agent/workloads")
        out.print(f"   a second poll finds nothing more: {again.status_code}")
        steps = [e for e in plan["events"] if isinstance(e, dict)][:4]
        for seq, event in enumerate(steps, 1):
            body = {**event, "event_id": f"demo-{seq}", "seq": seq}
            r = http.post(f"/api/deployments/{dep_id}/events", json=body)
            out.print(f"   event {event['type']:<18} -> {r.status_code} stored")
        dup = http.post(
            f"/api/deployments/{dep_id}/events", json={**steps[-1], "event_id": "demo-4", "seq": 4}
        )
        out.print(
            f"   the same event sent again (a retry after a lost ack) -> {dup.status_code} "
            f"duplicate={dup.json().get('duplicate')}"
        )
        done: dict[str, Any] = {
            "type": "job.completed",
            "timestamp": "2026-03-12T12:04:59Z",
            "job_id": steps[0].get("job_id"),
            "payload": {},
            "event_id": "demo-done",
            "seq": len(steps) + 1,
        }
        http.post(f"/api/deployments/{dep_id}/events", json=done)
    shown = json.loads(_cli("deployments", "--db", str(db), dep_id, "--json"))
    deployment = shown.get("deployment", shown)
    out.print(
        f"   deployment is now [bold]{deployment.get('status')}[/] "
        f"with {len(shown.get('events', []))} events stored"
    )


def _simulated(
    out: Console, base: str, operator_key: str, files: tuple[Path, Path], plan: dict[str, Any]
) -> None:
    db, plan_file = files
    dep_id = _cli(
        "deploy",
        "--db",
        str(db),
        str(plan_file),
        "--satellite",
        str(plan["satellite_id"]),
        "--mode",
        "simulated",
        "--speed",
        str(SPEED),
    )
    out.print(f">> operator deployed the same plan in [bold]simulated[/] mode at {SPEED:g}x: {dep_id}")
    headers = {"X-API-Key": operator_key}
    with httpx.Client(base_url=base, headers=headers, timeout=10) as http:
        deadline = time.monotonic() + 60
        status = ""
        while time.monotonic() < deadline:
            status = http.get(f"/api/deployments/{dep_id}").json().get("status", "")
            if status in {"completed", "failed", "cancelled"}:
                break
            time.sleep(0.2)
        events = http.get(f"/api/deployments/{dep_id}/events", params={"limit": 500}).json()["events"]
    out.print(_steps_table(f"simulated timeline: {len(events)} events, deployment {status}", events))


def main(argv: Sequence[str] | None = None) -> int:
    out = Console()
    out.rule("Console server demo")
    plan_text = resources.files("console.examples").joinpath("single-satellite-plan.json").read_text()
    plan = json.loads(plan_text)
    with tempfile.TemporaryDirectory(prefix="console-demo-") as tmp:
        db, plan_file = Path(tmp) / "console.db", Path(tmp) / "plan.json"
        plan_file.write_text(plan_text)
        operator_key = _cli("keys", "create", "--db", str(db), "--name", "ops", "--scope", "operator")
        agent_key = _cli("keys", "create", "--db", str(db), "--name", "agent-demo-1")
        server, base = _start_server(db)
        out.print(f">> operator-console serving {base} on {db.name} (SQLite, WAL)")
        try:
            _live(out, base, agent_key, (db, plan_file), plan)
            _simulated(out, base, operator_key, (db, plan_file), plan)
        finally:
            server.terminate()
            server.wait(10)
    out.rule("Console demo complete")
    return 0


if __name__ == "__main__":
    sys.exit(main())
