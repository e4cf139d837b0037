"""Suite-wide fixtures and the namespace guard.

Every packet stays on this machine: a plain ``pytest`` re-executes itself inside a private user+network
namespace (``tests/netns/netns-run --hosts 3``), after preparing the ConstellationDAQ 1.0.2 oracle, which
needs the package registry and therefore must be built outside. Where namespaces cannot be created, tests
that need the network (marker ``netns`` or the fixtures below) skip with the reason, except under
``CI=true``, where they fail. ``NO_NETNS=1`` disables the re-execution (network tests then skip).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.harness import (
    NETNS_RUN,
    OracleUnavailable,
    Proc,
    in_netns,
    netns_hosts,
    oracle_python,
    prepare_oracle,
    spawn_process,
    unique_group,
    userns_available,
)

HOSTS = 3
ON_CI = os.environ.get("CI", "").lower() == "true"


def pytest_configure(config: pytest.Config) -> None:
    if in_netns() or hasattr(config, "workerinput"):
        return
    try:
        prepare_oracle()  # outside the namespace: it needs the package registry
    except OracleUnavailable as exc:  # the interop tests will skip (fail on CI) with this reason
        print(f"conftest: {exc}", file=sys.stderr)
    if os.environ.get("NO_NETNS") or not userns_available()[0]:
        return
    sys.stdout.flush()
    sys.stderr.flush()
    args = [str(NETNS_RUN), "--hosts", str(HOSTS), "--", sys.executable, "-m", "pytest"]
    os.execv(str(NETNS_RUN), [*args, *config.invocation_params.args])


def _unavailable(reason: str) -> None:
    """Skip, or fail under CI=true, because the network namespace or the oracle is missing."""
    if ON_CI:
        pytest.fail(f"required under CI=true: {reason}", pytrace=False)
    pytest.skip(reason)


def require_netns(hosts: int = 0) -> None:
    if not in_netns():
        ok, why = userns_available()
        _unavailable(
            "needs the private network namespace: run `make test` or plain `pytest`"
            + ("" if ok else f" ({why})")
        )
    if netns_hosts() < hosts:
        _unavailable(f"needs {hosts} virtual hosts (tests/netns/netns-run --hosts {hosts})")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    expr = config.option.markexpr or ""
    run_slow = "slow" in expr and "not slow" not in expr
    for item in items:
        marker = item.get_closest_marker("hosts")
        if marker is not None:
            item.add_marker(pytest.mark.netns)
        if not run_slow and item.get_closest_marker("slow") is not None:
            item.add_marker(pytest.mark.skip(reason="slow: run with -m slow"))


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("netns") is not None:
        marker = item.get_closest_marker("hosts")
        require_netns(int(marker.args[0]) if marker is not None else 0)


@pytest.fixture
def group() -> str:
    """A Constellation group no other test uses."""
    return unique_group()


SpawnFn = Callable[..., Proc]


@pytest.fixture
def spawn() -> Iterator[SpawnFn]:
    """spawn(*argv, ready=REGEX, timeout=15, env=None, host=None, pass_fds=()) -> Proc; stopped at teardown.

    The returned Proc has ``.ready`` (the ready-line match, or None). Inside the namespace only.
    """
    require_netns()
    procs: list[Proc] = []

    def start(
        *argv: str,
        ready: str | None = None,
        timeout: float = 15.0,
        env: dict[str, str] | None = None,
        host: int | None = None,
        pass_fds: tuple[int, ...] = (),
    ) -> Proc:
        if host is not None:
            require_netns(host)
        proc, match = spawn_process(argv, ready=ready, timeout=timeout, env=env, host=host, pass_fds=pass_fds)
        proc.ready = match  # type: ignore[attr-defined]
        procs.append(proc)
        return proc

    yield start
    for proc in reversed(procs):
        proc.stop(grace=3.0)


@pytest.fixture(scope="session")
def cdaq_python() -> Path:
    """Python of a cached scratch venv holding ConstellationDAQ==1.0.2 (the oracle)."""
    require_netns()  # every 1.0.2 node sends multicast: never outside the namespace
    try:
        return oracle_python()
    except OracleUnavailable as exc:
        _unavailable(str(exc))
        raise  # unreachable: _unavailable raises


@pytest.fixture
def on_host(spawn: SpawnFn) -> Callable[..., Proc]:
    """on_host(k, *argv, ready=None, ...) -> Proc running on virtual host k."""

    def start(k: int, *argv: str, **kw: object) -> Proc:
        return spawn(*argv, host=k, **kw)

    return start


@pytest.fixture
def link() -> Iterator[Callable[..., None]]:
    """link(k, "down"|"up"|"loss", PCT|"clear"): impair host k's link; every link is cleared at teardown."""
    import subprocess

    require_netns(1)
    tool = NETNS_RUN.with_name("netns-link")

    def ctl(k: int, *action: str) -> None:
        subprocess.run([str(tool), str(k), *action], check=True, timeout=10)

    yield ctl
    for k in range(1, netns_hosts() + 1):
        subprocess.run([str(tool), str(k), "clear"], check=False, timeout=10)
