"""Audit: CHIRP DEPART on every way a ``satellite-run`` process ends, and what a hook that raises does.

Real processes in the namespace, beacons watched on loopback. The satellite is Sputnik with its
``do_initializing`` replaced by one that raises (``HOOK`` below); ``-`` keeps the real hook; ``loop``
makes the runtime's main coroutine raise once ``initialize`` arrives.

Covered elsewhere, not repeated: SIGTERM/SIGINT (tests/runtime/test_cli.py, test_discovery_netns.py,
tests/discovery/test_processes.py), a failed start and signals during start-up
(test_launch_netns.py), ``shutdown`` (tests/discovery/test_audit_chirp.py).
"""

from __future__ import annotations

import signal
import sys

import pytest

from protocols.chirp import MessageType
from tests.fuzz.support import READY, Client
from tests.harness import BeaconLog, wait_until

pytestmark = [pytest.mark.netns, pytest.mark.timeout(60)]

HOOK = r"""
import sys
from satellites.sputnik.sputnik import Sputnik
from constellation import cli

kind = sys.argv.pop(1)
exc = {
    "exception": RuntimeError("boom"),
    "systemexit": SystemExit(3),
    "keyboardinterrupt": KeyboardInterrupt(),
    "baseexception": BaseException("boom"),
}.get(kind)

def boom(self, config):
    raise exc

if exc is not None:
    Sputnik.do_initializing = boom
if kind == "loop":  # the runtime's main coroutine fails once `initialize` arrives
    import asyncio

    def trigger(self, config):
        self._loop_failure.get_loop().call_soon_threadsafe(self._loop_failure.set)
        return "Initialized"

    async def broken(self):
        self._loop_failure = asyncio.Event()
        loop = asyncio.get_running_loop()
        self._loop_failure.get_loop = lambda: loop
        await self._loop_failure.wait()
        raise RuntimeError("the loop failed")

    Sputnik.do_initializing = trigger
    Sputnik.wait_closed = broken
sys.exit(cli.main(sys.argv[1:]))
"""

NAME = "Sputnik.Hook"


def _start(spawn, group: str, kind: str):
    proc = spawn(
        sys.executable, "-c", HOOK, kind, "Sputnik", "-n", "Hook", "-g", group, "-i", "lo", ready=READY
    )  # fmt: skip
    return proc, Client(int(proc.ready["cmd"]))


def test_the_runtime_failing_still_departs(spawn, group: str) -> None:
    """An exception out of the runtime's main coroutine (asyncio.run raises): DEPARTs, exit code 1."""
    log = BeaconLog(group)
    proc, client = _start(spawn, group, "loop")
    try:
        wait_until(lambda: len(log.of(NAME, MessageType.OFFER)) >= 3, timeout=5)
        assert client.call("initialize", {}).verb == "transitioning"
        assert proc.wait(10) == 1
        wait_until(lambda: _departs(log) == 3, timeout=5)
        assert "RuntimeError: the loop failed" in proc.output
    finally:
        client.close()
        log.close()


def _departs(log: BeaconLog) -> int:
    return len(log.of(NAME, MessageType.DEPART))


def _state_is(client: Client, state: str) -> bool:
    return client.call("get_state").verb == state


@pytest.mark.parametrize("kind", ["exception", "-"])
def test_a_failing_hook_leaves_the_satellite_up_in_error_and_sigterm_departs(
    spawn, group: str, kind: str
) -> None:
    log = BeaconLog(group)
    proc, client = _start(spawn, group, kind)
    try:
        wait_until(lambda: len(log.of(NAME, MessageType.OFFER)) >= 3, timeout=5)
        assert client.call("initialize", {}).verb == "transitioning"
        wait_until(lambda: _state_is(client, "ERROR" if kind == "exception" else "INIT"), timeout=5)
        assert _departs(log) == 0  # still here: no DEPART
        proc.signal(signal.SIGTERM)
        assert proc.wait(10) == 0
        wait_until(lambda: _departs(log) == 3, timeout=5)
    finally:
        client.close()
        log.close()


def test_a_hook_raising_baseexception_leaves_a_recoverable_satellite(spawn, group: str) -> None:
    _proc, client = _start(spawn, group, "baseexception")
    try:
        assert client.call("initialize", {}).verb == "transitioning"
        wait_until(lambda: _state_is(client, "ERROR"), timeout=5)
        assert client.call("initialize", {}).verb == "transitioning"
        wait_until(lambda: _state_is(client, "ERROR"), timeout=5)  # the hook fails again: ERROR again
    finally:
        client.close()


@pytest.mark.parametrize("kind", ["systemexit", "keyboardinterrupt"])
def test_a_hook_raising_systemexit_does_not_end_the_process(spawn, group: str, kind: str) -> None:
    log = BeaconLog(group)
    _proc, client = _start(spawn, group, kind)
    try:
        wait_until(lambda: len(log.of(NAME, MessageType.OFFER)) >= 3, timeout=5)
        assert client.call("initialize", {}).verb == "transitioning"
        # it exits after its DEPARTs: the DEPARTs (or ERROR) tell which happened
        wait_until(lambda: _departs(log) == 3 or _state_is(client, "ERROR"), timeout=5)
        assert _departs(log) == 0
        assert client.call("get_state", timeout=1).verb == "ERROR"
    finally:
        client.close()
        log.close()
