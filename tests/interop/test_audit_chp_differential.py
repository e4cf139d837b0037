"""Audit: our Sputnik and a 1.0.2 Mariner send the same heartbeats through the paths the issue-3
differential test does not walk: every role, interrupt to SAFE, recovery from SAFE, failure to ERROR,
recovery from ERROR (wire doc §3.2, §4.2, §4.3).

Compared per extrasystole: state, flags and the status frame's text; per regular beat after each step:
state and flags. A steady state's status is the type's hook return value ("Initialized with 4
channels" here, "Initialized" there), so for steady states only the framework's part is compared
(present, and the "; Interrupted" suffix after an interrupt).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import zmq

from protocols import State, chp
from tests.fuzz.support import Client, spawn_mariner, start_sputnik
from tests.harness import unique_group

pytestmark = [pytest.mark.netns, pytest.mark.interop, pytest.mark.timeout(150)]

STEPS: list[tuple[str, Any, State]] = [
    ("initialize", {"_autonomy": {"role": "NONE"}}, State.INIT),
    ("initialize", {"_autonomy": {"role": "TRANSIENT"}}, State.INIT),
    ("launch", None, State.ORBIT),
    ("_interrupt", None, State.SAFE),
    ("initialize", {"_autonomy": {"role": "ESSENTIAL"}}, State.INIT),
    ("launch", None, State.ORBIT),
    ("start", "r1", State.RUN),
    ("_interrupt", None, State.SAFE),
    ("initialize", {"_autonomy": {"role": "DYNAMIC"}}, State.INIT),
    ("_failure", None, State.ERROR),
    ("initialize", {}, State.INIT),
]


def _collect(ctx: zmq.Context, cmd: int, hb: int) -> list[tuple[str, int, str | None, bool]]:
    client = Client(cmd)
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.LINGER, 0)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    sub.connect(f"tcp://127.0.0.1:{hb}")
    try:
        client.wait_state(State.NEW, timeout=30)
        assert sub.poll(10_000), "no heartbeat"
        sub.recv_multipart()
        beats: list[tuple[str, int, str | None, bool]] = []
        for command, payload, target in STEPS:
            rep = client.call(command, payload)
            assert rep.verb == "transitioning", (command, rep)
            client.wait_state(target)
            # after each step: drain the extrasystoles, then the next regular beat's flags
            end = time.monotonic() + 5
            while sub.poll(max(0, int((end - time.monotonic()) * 1000))):
                b = chp.decode(sub.recv_multipart())
                if b.is_extrasystole:
                    beats.append((b.state.name, int(b.flags), b.status, True))
                elif b.state is target:
                    beats.append((b.state.name, int(b.flags), None, False))
                    break
        return beats
    finally:
        sub.close(0)
        client.close()


def test_same_heartbeats_as_cdaq_for_roles_interrupt_failure_and_recovery(cdaq_python: Path, spawn) -> None:
    sat = start_sputnik(spawn, unique_group(), "Seq")
    ports = spawn_mariner(spawn, cdaq_python, "Seq")
    ctx = zmq.Context()
    try:
        ours = _collect(ctx, sat.cmd, sat.hb)
        theirs = _collect(ctx, ports["cmd"], ports["hb"])
    finally:
        ctx.destroy(linger=0)
    assert _framework_part(ours) == _framework_part(theirs)
    # one regular beat per step; two extrasystoles per step (transitional + steady), one for _failure
    assert len(ours) == len(STEPS) + 2 * len(STEPS) - 1


def _framework_part(
    beats: list[tuple[str, int, str | None, bool]],
) -> list[tuple[str, int, str | None, bool]]:
    out = []
    for state, flags, status, extra in beats:
        if extra and State[state].is_steady and state != "ERROR":
            assert status, (state, flags)
            status = "; Interrupted" if status.endswith("; Interrupted") else "<hook>"
        out.append((state, flags, status, extra))
    return out


def _intervals(ctx: zmq.Context, hb: int) -> list[int]:
    """The announced interval after each subscription step (two regular beats after the step)."""
    url = f"tcp://127.0.0.1:{hb}"

    def sub(topic: bytes | None = b"") -> zmq.Socket:
        s = ctx.socket(zmq.SUB)
        s.setsockopt(zmq.LINGER, 0)
        if topic is not None:
            s.setsockopt(zmq.SUBSCRIBE, topic)
        s.connect(url)
        return s

    watch = sub()
    others: dict[str, zmq.Socket] = {}

    def settle() -> int:
        regular = 0
        last = 0
        while regular < 2:
            assert watch.poll(5000), "no heartbeat"
            b = chp.decode(watch.recv_multipart())
            if not b.is_extrasystole:
                regular, last = regular + 1, b.interval_ms
        return last

    steps = [
        lambda: others.update(a=sub(), b=sub()),  # three subscribers
        lambda: others["a"].setsockopt(zmq.UNSUBSCRIBE, b""),  # one unsubscribes, stays connected
        lambda: others["b"].setsockopt(zmq.SUBSCRIBE, b""),  # the same SUB subscribes twice
        lambda: others.pop("b").close(0),  # ... and disconnects
        lambda: others.pop("a").close(0),  # the unsubscribed one disconnects
        lambda: others.update(c=sub(None)),  # connected, never subscribed
    ]
    seen = [settle()]
    for step in steps:
        step()
        seen.append(settle())
    for s in (watch, *others.values()):
        s.close(0)
    return seen


@pytest.mark.slow  # ~32 s of settling heartbeat intervals: keeps the default suite under 10 minutes
def test_subscriber_counting_like_cdaq(cdaq_python: Path, spawn) -> None:
    """Empty-topic subscriptions only (a non-empty topic is a documented deviation, docs/runtime.md)."""
    sat = start_sputnik(spawn, unique_group(), "Subs")
    ports = spawn_mariner(spawn, cdaq_python, "Subs")
    Client(ports["cmd"]).wait_state(State.NEW, timeout=30)
    ctx = zmq.Context()
    try:
        ours = _intervals(ctx, sat.hb)
        theirs = _intervals(ctx, ports["hb"])
    finally:
        ctx.destroy(linger=0)
    assert ours == theirs
    # a SUB that subscribes twice counts twice and unsubscribes once when it leaves: both end at
    # N=2 (1500 ms) with one subscriber left
    assert ours == [500, 2121, 1500, 2121, 1500, 1500, 1500]
