"""Fixtures of the fuzz suite: one launched Sputnik per module, and the "still alive" check.

Each fuzz module gets its own satellite (``satellite-run Sputnik``, unique group, in ORBIT so that a stray
transition would show), throws its inputs at one socket, and then asserts with :func:`assert_healthy`
that the satellite is alive, still in ORBIT, answers ``get_state`` quickly and keeps beating.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from protocols import State, cscp
from tests.fuzz.support import READY, SATELLITE_RUN, Client, HeartbeatSub, Sat
from tests.harness import in_netns, spawn_process, unique_group

pytestmark = [pytest.mark.netns]


@pytest.fixture(scope="module")
def orbiting() -> Iterator[Sat]:
    """A Sputnik in ORBIT, shared by the tests of one module; its output is shown on failure."""
    if not in_netns():
        pytest.skip("needs the private network namespace (run plain pytest or make test)")
    group = unique_group("fuzz")
    proc, match = spawn_process(
        [SATELLITE_RUN, "Sputnik", "-n", "Fuzz", "-g", group, "-i", "lo", "-l", "WARNING"],
        ready=READY,
        timeout=30,
    )
    assert match is not None
    sat = Sat(proc, match["name"], int(match["cmd"]), int(match["hb"]), int(match["mon"]), group)
    client = Client(sat.cmd)
    try:
        assert client.call("initialize", {"channels": 2}).verb == "transitioning"
        client.wait_state(State.INIT)
        assert client.call("launch").verb == "transitioning"
        client.wait_state(State.ORBIT)
    finally:
        client.close()
    yield sat
    code = proc.stop(grace=5.0)
    assert code in (0, -15), f"satellite exited with {code}:\n{proc.output_tail()}"


@pytest.fixture(scope="session")
def long_fuzz(request: pytest.FixtureRequest) -> None:
    """Skip the long (``slow``) fuzz variants unless selected explicitly with ``-m slow``."""
    expr = request.config.option.markexpr or ""
    if "slow" not in expr or "not slow" in expr:
        pytest.skip("long fuzz variant: run with -m slow")


def assert_healthy(sat: Sat, state: State = State.ORBIT, reply_within: float = 1.0) -> None:
    """Alive, in ``state``, answering get_state within ``reply_within`` s, heartbeats flowing."""
    assert sat.proc.popen.poll() is None, f"satellite died:\n{sat.proc.output_tail()}"
    client = Client(sat.cmd)
    beats = HeartbeatSub(sat.hb)
    try:
        t = time.monotonic()
        reply = client.call("get_state", timeout=reply_within)
        elapsed = time.monotonic() - t
        assert reply.verb_type is cscp.VerbType.SUCCESS, reply
        assert reply.payload == state, f"state {reply.verb}, expected {state.name}"
        assert elapsed < reply_within
        hb = beats.next(timeout=5.0)
        assert hb.sender == sat.name
        assert hb.state is state
    finally:
        client.close()
        beats.close()
