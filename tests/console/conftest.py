"""Console fixtures: real ``operator-console serve`` processes on SQLite and on PostgreSQL (pgserver).

Every test that takes ``backend`` runs twice. PostgreSQL comes from the pip package ``pgserver``
(started once per session, one fresh database per server); where it cannot start the PostgreSQL half
skips with the reason, except under ``CI=true`` where it fails.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from console import ops
from console.db import make_engine, migrate
from tests.harness import Proc, WaitTimeout, spawn_process, wait_until

ON_CI = os.environ.get("CI", "").lower() == "true"
DATA = Path(__file__).parent / "data"
PLANS = sorted(p for p in DATA.glob("*-plan.json"))
CONSOLE = [sys.executable, "-m", "console.cli"]


def run_cli(*args: str, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CONSOLE, *args], capture_output=True, text=True, timeout=timeout, check=False)


_PG_CHILD = """
import sys, pgserver
srv = pgserver.get_server(sys.argv[1], cleanup_mode=None)
print(srv.get_uri(), flush=True)
"""


def _start_postgres(pgdata: Path) -> str:
    """Start PostgreSQL with pgserver; return its URI (the postmaster outlives the starter).

    As root inside the test namespace only uid 0 is mapped, and PostgreSQL refuses to run as root, so
    there the starter runs in a nested user namespace where we are uid 1001 (pgserver's own approach
    of switching to a "pgserver" system user needs a uid the namespace does not have).
    """
    argv = [sys.executable, "-c", _PG_CHILD, str(pgdata)]
    if os.geteuid() == 0 and shutil.which("unshare"):
        argv = ["unshare", "--user", "--map-user=1001", "--map-group=1001", *argv]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith("postgresql://")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"exit {done.returncode}: {done.stderr.strip()[-500:]}")
    return lines[-1]


def _stop_postgres(pgdata: Path) -> None:
    pidfile = pgdata / "postmaster.pid"
    try:
        pid = int(pidfile.read_text().split("\n", 1)[0])
    except (OSError, ValueError):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGINT)  # "fast" shutdown
    with contextlib.suppress(WaitTimeout):
        wait_until(lambda: not pidfile.exists(), timeout=15)


@pytest.fixture(scope="session")
def postgres() -> Iterator[str]:
    """URI of a pgserver PostgreSQL for the session (skip, or fail under CI=true, when unavailable)."""
    try:
        import pgserver  # noqa: F401
    except ImportError as exc:
        _unavailable(f"pgserver not installed: {exc}")
    root = Path(tempfile.mkdtemp(prefix="console-pg-"))
    os.chmod(root, 0o755)
    pgdata = root / "data"
    try:
        uri = _start_postgres(pgdata)
    except Exception as exc:
        shutil.rmtree(root, ignore_errors=True)
        _unavailable(f"pgserver could not start PostgreSQL: {exc}")
    yield uri
    _stop_postgres(pgdata)
    shutil.rmtree(root, ignore_errors=True)


def _create_database(uri: str, name: str) -> str:
    import psycopg

    with psycopg.connect(uri, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return uri.replace("/postgres?", f"/{name}?", 1).replace("postgresql://", "postgresql+psycopg://", 1)


def _unavailable(reason: str) -> None:
    if ON_CI:
        pytest.fail(f"required under CI=true: {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    """The database backend; module-scoped so that a module's tests share one server per backend."""
    return str(request.param)


def _fresh_db_url(backend: str, request: pytest.FixtureRequest, folder: Path) -> str:
    if backend == "sqlite":
        return f"sqlite:///{folder / f'console-{uuid.uuid4().hex[:8]}.db'}"
    uri = request.getfixturevalue("postgres")
    return _create_database(uri, f"c_{uuid.uuid4().hex[:12]}")


@pytest.fixture
def new_db_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], str]:
    """new_db_url() -> the URL of a fresh, empty database on this test's backend."""
    return lambda: _fresh_db_url(backend, request, tmp_path)


@dataclass
class Server:
    """A running ``operator-console serve`` with an operator and an agent key."""

    db_url: str
    flags: tuple[str, ...]
    operator_key: str = ""
    agent_key: str = ""
    proc: Proc | None = None
    url: str = ""
    clients: list[httpx.Client] = field(default_factory=list)

    def start(self) -> Server:
        argv = [*CONSOLE, "serve", "--db-url", self.db_url, "--port", "0", *self.flags]
        self.proc, match = spawn_process(argv, ready=r"listening on (http://\S+)", timeout=30)
        assert match is not None
        self.url = match.group(1)
        return self

    def stop(self) -> None:
        for c in self.clients:
            c.close()
        self.clients.clear()
        if self.proc is not None:
            self.proc.stop(grace=5.0)
            self.proc = None

    def client(self, key: str | None = None, agent: str | None = None, **headers: str) -> httpx.Client:
        h = dict(headers)
        if key is not None:
            h["X-API-Key"] = key
        if agent is not None:
            h["X-Agent-ID"] = agent
        h.setdefault("User-Agent", "rotastellar-agent/0.1.0")
        client = httpx.Client(base_url=self.url, headers=h, timeout=10.0)
        self.clients.append(client)
        return client

    def operator(self) -> httpx.Client:
        return self.client(self.operator_key)

    def agent(self, agent_id: str) -> httpx.Client:
        return self.client(self.agent_key, agent_id)


def prepare_db(db_url: str) -> tuple[str, str]:
    """Migrate a database and create one operator and one agent key in it."""
    engine = make_engine(db_url, pool_size=1)
    try:
        migrate(engine)
        with engine.begin() as conn:
            op = ops.create_key(conn, f"op-{uuid.uuid4().hex[:6]}", "operator")
            ag = ops.create_key(conn, f"ag-{uuid.uuid4().hex[:6]}", "agent")
        return op, ag
    finally:
        engine.dispose()


@pytest.fixture
def start_server(new_db_url: Callable[[], str]) -> Iterator[Callable[..., Server]]:
    """start_server(*flags, db_url=None) -> a running Server; stopped at teardown."""
    servers: list[Server] = []

    def start(*flags: str, db_url: str | None = None) -> Server:
        url = db_url or new_db_url()
        op, ag = prepare_db(url)
        server = Server(url, flags, op, ag).start()
        servers.append(server)
        return server

    yield start
    for s in servers:
        s.stop()


@pytest.fixture(scope="module")
def server(
    backend: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """A server with rate limits off, shared by the tests of a module (they use distinct ids)."""
    url = _fresh_db_url(backend, request, tmp_path_factory.mktemp("console"))
    op, ag = prepare_db(url)
    shared = Server(url, ("--rate-limits", "off"), op, ag).start()
    yield shared
    shared.stop()


def plan(name: str) -> dict[str, Any]:
    import json

    return dict(json.loads((DATA / name).read_text()))


def event(kind: str = "step.progress", **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": kind,
        "timestamp": "2026-03-12T10:00:00Z",
        "job_id": "job-test",
        "payload": {"percent": 50},
    }
    body.update(extra)
    return body
