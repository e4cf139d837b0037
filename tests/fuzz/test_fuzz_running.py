"""The command socket under fuzz while a run is in progress (``do_run`` busy in its worker).

Same inputs as ``test_fuzz_cscp`` (section 12 through REQ, a pipelined blast of mutated requests
through a DEALER), aimed at a Sputnik in RUN. Afterwards it is still in RUN with the same run id,
answers quickly, beats, and stops cleanly to ORBIT.
"""

from __future__ import annotations

import random
import time

import pytest

from protocols import State, cscp
from tests.fuzz.conftest import assert_healthy
from tests.fuzz.support import Client, Sat
from tests.fuzz.test_fuzz_cscp import SECTION_12, Dealer

pytestmark = [pytest.mark.netns, pytest.mark.timeout(120)]


@pytest.fixture(scope="module")
def running(orbiting: Sat) -> Sat:
    client = Client(orbiting.cmd)
    try:
        assert client.call("start", "fuzz_run_1").verb == "transitioning"
        client.wait_state(State.RUN)
    finally:
        client.close()
    return orbiting


def test_fuzz_while_running(running: Sat) -> None:
    client = Client(running.cmd)
    try:
        for label, frames, _expected in SECTION_12:
            assert client.raw(frames, timeout=3.0) is not None, label
    finally:
        client.close()

    rng = random.Random(99)
    good = cscp.encode(cscp.request("Test.fuzz", "get_run_id"))
    d = Dealer(running.cmd)
    try:
        n = 2000
        for _ in range(n):
            body = [bytearray(f) for f in good]
            f = rng.randrange(len(body))
            body[f][rng.randrange(len(body[f]))] ^= rng.randint(1, 255)
            d.sock.send_multipart([b"", *(bytes(x) for x in body)])
        got, deadline = 0, time.monotonic() + 30
        while got < n and time.monotonic() < deadline:
            if d.sock.poll(1000):
                d.sock.recv_multipart()
                got += 1
        assert got == n
    finally:
        d.close()

    assert_healthy(running, State.RUN)
    client = Client(running.cmd)
    try:
        assert client.call("get_run_id").verb == "fuzz_run_1"
        assert client.call("stop").verb == "transitioning"
        client.wait_state(State.ORBIT)
    finally:
        client.close()
    assert_healthy(running, State.ORBIT)
