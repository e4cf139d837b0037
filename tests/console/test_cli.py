"""The ``operator-console`` admin commands: stdout carries only what a script needs."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

from protocols.console_api import API_KEY_PATTERN
from tests.console.conftest import DATA, run_cli


def test_keys_deploy_list_show_cancel(new_db_url: Callable[[], str]) -> None:
    db = ["--db-url", new_db_url()]
    made = run_cli("keys", "create", *db, "--name", "ops", "--scope", "operator")
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip()
    assert made.stdout == key + "\n"
    assert API_KEY_PATTERN.match(key)
    agent_key = run_cli("keys", "create", *db, "--name", "sat").stdout.strip()
    assert agent_key != key
    assert run_cli("keys", "revoke", *db, "sat").returncode == 0
    listing = run_cli("keys", "list", *db).stdout
    assert listing.splitlines() == ["ops\toperator\tactive", "sat\tagent\trevoked"]
    assert key not in listing

    plan_file = DATA / "single-satellite-plan.json"
    deployed = run_cli("deploy", *db, str(plan_file), "--satellite", "99901")
    assert deployed.returncode == 0, deployed.stderr
    dep = deployed.stdout.strip()
    assert re.fullmatch(r"dep-[0-9a-f]{32}", dep)
    rows = run_cli("deployments", *db).stdout.splitlines()
    assert len(rows) == 1
    assert rows[0].split("\t")[:4] == [dep, "pending", "live", "99901"]
    shown = json.loads(run_cli("deployments", *db, dep, "--json").stdout)
    assert shown["id"] == dep
    assert shown["status"] == "pending"
    assert shown["events"] == []
    text = run_cli("deployments", *db, dep).stdout
    assert f"id: {dep}" in text
    assert run_cli("cancel", *db, dep).returncode == 0
    as_list = json.loads(run_cli("deployments", *db, "--json").stdout)
    assert [(d["id"], d["status"]) for d in as_list] == [(dep, "cancelled")]


def test_cli_errors(tmp_path: Path) -> None:
    db = ["--db", str(tmp_path / "console.db")]  # SQLite by path; the errors do not depend on the backend
    assert run_cli("keys", "create", *db, "--name", "ops").returncode == 0
    dup = run_cli("keys", "create", *db, "--name", "ops")
    assert dup.returncode == 1
    assert dup.stdout == ""
    assert "already exists" in dup.stderr
    missing = run_cli("keys", "revoke", *db, "nobody")
    assert missing.returncode == 1
    assert "no key named" in missing.stderr
    dep = run_cli("deploy", *db, str(DATA / "ocp-primitives-plan.json"), "--satellite", "2").stdout.strip()
    assert run_cli("cancel", *db, dep).returncode == 0
    again = run_cli("cancel", *db, dep)
    assert again.returncode == 1
    assert "already cancelled" in again.stderr
    usage = run_cli("deploy", *db)  # missing PLAN and --satellite
    assert usage.returncode == 2
    assert "usage: operator-console deploy" in usage.stderr
    assert run_cli("keys", "create", *db, "--name", "x", "--scope", "root").returncode == 2
    assert (
        run_cli(
            "deploy", *db, str(DATA / "single-satellite-plan.json"), "--satellite", "1", "--speed", "0"
        ).returncode
        == 2
    )
    nofile = run_cli("deploy", *db, "/nonexistent/plan.json", "--satellite", "1")
    assert nofile.returncode == 1
    assert "cannot read plan" in nofile.stderr
    notplan = run_cli("deploy", *db, str(DATA / "constellation-fleet.json"), "--satellite", "1")
    assert notplan.returncode == 1
    assert "not a JSON object" in notplan.stderr
    unknown = run_cli("deployments", *db, "dep-missing")
    assert unknown.returncode == 1
    assert unknown.stdout == ""
    assert "no deployment" in unknown.stderr
