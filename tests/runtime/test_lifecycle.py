"""Transitions end to end in-process: hooks, statuses, failures, interrupt, reconfigure, responsiveness."""

from __future__ import annotations

import asyncio
import threading
import time

from constellation import Configuration, Satellite, StopToken
from protocols.cscp import VerbType as V
from tests.harness import eventually
from tests.runtime.conftest import wait_state


async def drive(cl, command: str, payload: object = None, expect: str | None = None) -> None:
    rep = await cl(command, payload)
    assert (rep.verb_type, rep.verb) == (V.SUCCESS, "transitioning"), rep
    if expect:
        await wait_state(cl, expect)


async def test_full_cycle_with_default_hooks(make_satellite, client) -> None:
    sat = await make_satellite()
    cl = client(sat)
    await drive(cl, "initialize", {}, "INIT")
    assert (await cl("get_status")).verb == "Initialized"
    await drive(cl, "launch", None, "ORBIT")
    assert (await cl("get_status")).verb == "Launched"
    await drive(cl, "start", "run_1", "RUN")
    assert (await cl("get_status")).verb == "Started"
    assert (await cl("get_run_id")).verb == "run_1"
    await drive(cl, "stop", None, "ORBIT")
    assert (await cl("get_status")).verb == "Finished RUN; Stopped"
    await drive(cl, "land", None, "INIT")
    assert (await cl("get_status")).verb == "Landed"
    rep = await cl("shutdown")
    assert (rep.verb_type, rep.verb, rep.payload) == (V.SUCCESS, "Satellite.T queued for reentry", None)
    await asyncio.wait_for(sat.wait_closed(), 2)


async def test_shutdown_refused_outside_new_init_safe_error(make_satellite, client) -> None:
    sat = await make_satellite()
    cl = client(sat)
    await drive(cl, "initialize", {}, "INIT")
    await drive(cl, "launch", None, "ORBIT")
    rep = await cl("shutdown")
    assert (rep.verb_type, rep.verb) == (V.INVALID, "Command not allowed in ORBIT state")


class Hooks(Satellite):
    def __init__(self, *a: object, **kw: object) -> None:
        super().__init__(*a, **kw)  # type: ignore[arg-type]
        self.calls: list[str] = []
        self.fail_in: str | None = None
        self.gate = threading.Event()
        self.block_in: str | None = None

    def _hook(self, name: str) -> None:
        self.calls.append(name)
        if self.block_in == name:
            self.gate.wait(10)
        if self.fail_in == name:
            raise RuntimeError(f"boom in {name}")

    def do_initializing(self, config: Configuration) -> str:
        self.fail_in = config.get_str("fail_in", "") or None
        self.block_in = config.get_str("block_in", "") or None
        self._hook("initializing")
        return "ready"

    def do_launching(self) -> None:
        self._hook("launching")

    def do_landing(self) -> None:
        self._hook("landing")

    async def do_starting(self, run_id: str) -> str:
        self._hook("starting")
        return f"go {run_id}"

    def do_run(self, stop: StopToken) -> str:
        self._hook("run")
        n = 0
        while not stop.wait(0.01):
            n += 1
        return "ran"

    def do_stopping(self) -> str:
        self._hook("stopping")
        return "halted"

    def do_reconfigure(self, partial: Configuration) -> None:
        self._hook("reconfigure")
        if "rate" in partial:
            partial.get_float("rate")

    def do_failure(self) -> None:
        self.calls.append("failure")


async def test_hook_statuses_and_order(make_satellite, client) -> None:
    sat = await make_satellite(Hooks)
    cl = client(sat)
    await drive(cl, "initialize", {}, "INIT")
    assert (await cl("get_status")).verb == "ready"
    await drive(cl, "launch", None, "ORBIT")
    assert (await cl("get_status")).verb == "Launched"  # None -> default text
    await drive(cl, "start", "r7", "RUN")
    assert (await cl("get_status")).verb == "go r7"
    await drive(cl, "stop", None, "ORBIT")
    assert (await cl("get_status")).verb == "ran; halted"
    assert sat.calls == ["initializing", "launching", "starting", "run", "stopping"]


async def test_failing_hook_goes_to_error_with_status(make_satellite, client) -> None:
    sat = await make_satellite(Hooks)
    cl = client(sat)
    await drive(cl, "initialize", {"fail_in": "launching"}, "INIT")
    await drive(cl, "launch", None, "ERROR")
    assert (await cl("get_status")).verb == "RuntimeError in _wrap_launch: boom in launching"
    await eventually(lambda: "failure" in sat.calls)
    rep = await cl("launch")
    assert rep.verb == "Transition not allowed: Can't launch when in Error."
    await drive(cl, "initialize", {}, "INIT")  # ERROR is left only by initialize


async def test_failing_run_goes_to_error(make_satellite, client) -> None:
    sat = await make_satellite(Hooks)
    cl = client(sat)
    await drive(cl, "initialize", {"fail_in": "run"}, "INIT")
    await drive(cl, "launch", None, "ORBIT")
    await drive(cl, "start", "r1", None)
    await wait_state(cl, "ERROR")
    assert (await cl("get_status")).verb == "RuntimeError in _wrap_start: boom in run"


async def test_interrupt_from_run_and_orbit(make_satellite, client) -> None:
    sat = await make_satellite(Hooks)
    cl = client(sat)
    await drive(cl, "initialize", {}, "INIT")
    await drive(cl, "launch", None, "ORBIT")
    await drive(cl, "start", "r1", "RUN")
    rep = await cl("_interrupt")
    assert (rep.verb, rep.payload) == ("transitioning", "interrupt")
    await wait_state(cl, "SAFE")
    assert (await cl("get_status")).verb == "ran; Interrupted"
    assert sat.calls[-2:] == ["stopping", "landing"]  # default do_interrupting: stop, then land
    for cmd in ("launch", "land", "start", "stop"):
        assert (await cl(cmd, "r" if cmd == "start" else None)).verb_type is V.INVALID
    await drive(cl, "initialize", {}, "INIT")
    await drive(cl, "launch", None, "ORBIT")
    await drive(cl, "_interrupt", None, "SAFE")
    assert (await cl("get_status")).verb == "; Interrupted"
    rep = await cl("_interrupt")
    assert rep.verb == "Transition not allowed: Can't interrupt when in Safe."


async def test_failure_from_every_steady_state(make_satellite, client) -> None:
    sat = await make_satellite(Hooks)
    cl = client(sat)
    rep = await cl("_failure")
    assert (rep.verb, rep.payload) == ("transitioning", "failure")
    await wait_state(cl, "ERROR")
    assert (await cl("get_status")).verb == "Failure requested"
    await drive(cl, "_failure", None, "ERROR")  # ERROR -> ERROR is allowed
    await drive(cl, "initialize", {}, "INIT")
    await drive(cl, "launch", None, "ORBIT")
    await drive(cl, "start", "r1", "RUN")
    await drive(cl, "_failure", None, "ERROR")
    # ERROR is entered at once (a stuck hook cannot hold a failure up); do_failure runs right after
    await eventually(lambda: sat.calls.count("failure") == 3)
    assert sat.calls.count("failure") == 3


async def test_command_socket_answers_fast_while_a_hook_blocks(make_satellite, client) -> None:
    sat = await make_satellite(Hooks)
    cl = client(sat)
    await drive(cl, "initialize", {"block_in": "launching"}, "INIT")
    await drive(cl, "launch", None, "launching")
    worst = 0.0
    for _ in range(50):
        rep = await cl("get_state")
        assert rep.verb == "launching"
        worst = max(worst, cl.last_rtt)
    assert worst < 0.1, f"slowest get_state {worst * 1000:.1f} ms while a hook blocks"
    # a failure while the hook still blocks is immediate, and the hook's late return changes nothing
    await drive(cl, "_failure", None, "ERROR")
    sat.gate.set()
    await eventually(lambda: "failure" in sat.calls)
    assert (await cl("get_state")).verb == "ERROR"


class Tunable(Satellite):
    def do_initializing(self, config: Configuration) -> None:
        self.rate = config.get_float("rate", 1.0)

    def do_reconfigure(self, partial: Configuration) -> None:
        if "rate" in partial:
            self.rate = partial.get_float("rate")


async def test_reconfigure(make_satellite, client) -> None:
    sat = await make_satellite(Tunable)
    cl = client(sat)
    await drive(cl, "initialize", {"rate": 1.5}, "INIT")
    rep = await cl("reconfigure", {"rate": 2.0})
    assert (rep.verb_type, rep.verb) == (V.INVALID, "Command not allowed in INIT state")
    await drive(cl, "launch", None, "ORBIT")
    rep = await cl("reconfigure", {"rate": 2.5})
    assert (rep.verb, rep.payload) == ("transitioning", "reconfigure")
    await wait_state(cl, "ORBIT")
    assert (await cl("get_status")).verb == "Reconfigured"
    assert (await cl("get_config")).payload["rate"] == 2.5
    assert sat.rate == 2.5
    await drive(cl, "reconfigure", {"rate": "fast"}, "ERROR")
    assert (await cl("get_status")).verb == (
        "ConfigError in _wrap_reconfigure: Value of key `rate` is not valid: expected float, got str"
    )


async def test_reconfigure_unused_keys_error(make_satellite, client) -> None:
    sat = await make_satellite(Hooks)
    cl = client(sat)
    await drive(cl, "initialize", {}, "INIT")
    await drive(cl, "launch", None, "ORBIT")
    await drive(cl, "reconfigure", {"unknown_key": 1}, "ERROR")
    assert (await cl("get_status")).verb == (
        "RuntimeError in _wrap_reconfigure: 1 keys of the configuration were not used: ['unknown_key']"
    )


async def test_unused_keys_reported_on_initialize(make_satellite, client) -> None:
    sat = await make_satellite(Hooks)
    cl = client(sat)
    await drive(cl, "initialize", {"Extra": 1, "sect": {"a": 1}, "_role": "TRANSIENT"}, "INIT")
    assert (await cl("get_status")).verb == "ready (2 unused keys)"
    cfg = (await cl("get_config")).payload
    assert "extra" not in cfg
    assert "sect" not in cfg
    assert cfg["_role"] == "TRANSIENT"
    assert (await cl("get_role")).verb == "TRANSIENT"


async def test_async_do_run_stops_on_token(make_satellite, client) -> None:
    class Async(Satellite):
        async def do_run(self, stop: StopToken) -> str:
            t0 = time.monotonic()
            await stop
            return f"waited {time.monotonic() - t0 > 0}"

    sat = await make_satellite(Async)
    cl = client(sat)
    await drive(cl, "initialize", {}, "INIT")
    await drive(cl, "launch", None, "ORBIT")
    await drive(cl, "start", "a", "RUN")
    await drive(cl, "stop", None, "ORBIT")
    assert (await cl("get_status")).verb == "waited True; Stopped"


async def test_initialize_leaves_error_even_if_a_hook_is_stuck(make_satellite, client) -> None:
    sat = await make_satellite(Hooks)
    cl = client(sat)
    await drive(cl, "initialize", {"block_in": "launching"}, "INIT")
    await drive(cl, "launch", None, "launching")
    await drive(cl, "_failure", None, "ERROR")
    await drive(cl, "initialize", {}, "INIT")  # the launching hook is still blocked in its thread
    assert sat.calls.count("initializing") == 2
    sat.gate.set()  # its late return must not complete the abandoned launch
    await eventually(lambda: sat._executor._work_queue.empty() and sat.calls.count("failure") == 1)
    await drive(cl, "launch", None, "ORBIT")
    assert (await cl("get_status")).verb == "Launched"
