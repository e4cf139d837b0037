"""CMDP audit against a real 1.0.2 satellite: subscriptions, notifications, metric values, log records.

Two probe satellites answer the same commands (``emit``: a record at a level, ``exc``: ``log.exception``,
``foreign``: a record of a non-satellite logger, ``stat_value``: a one-off metric of a given kind,
``register``: a metric registered at run time): ours (the real ``satellite-run`` code path with the class
swapped, canonical name ``Sputnik.P``) and 1.0.2's (``Satellite`` subclass, ``Probe.P``). Raw pyzmq SUB
sockets and the 1.0.2 ``MonitoringListener`` classes (what its ``Monitor`` tool uses) read them.

Differences that are documented and deliberate are factored out, each where it applies: the type name
(``<TYPE>``), our extra ``LOG_DROPPED`` metric, 1.0.2's warning about an empty subscription (ours logs
none), the topic of a non-satellite logger (ours: the last part of the name, docs/runtime.md).
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import zmq

from protocols import State, cmdp, cscp
from tests.fuzz.support import READY, Client, json_lines, wait_json
from tests.harness import WaitTimeout, free_tcp_port, unique_group, wait_until

pytestmark = [pytest.mark.netns, pytest.mark.interop, pytest.mark.timeout(120)]

_COMMON = """
import logging, sys
VALUES = {"none": None, "list": [1, 2], "dict": {"a": 1}, "int": 7, "float": 1.5, "str": "x",
          "bool": True, "bytes": b"\\x00\\x01", "nested": [{"a": [1]}], "huge": 2**64 - 1}
LEVELS = {"TRACE": 5, "DEBUG": 10, "INFO": 20, "WARNING": 30, "STATUS": 35, "ERROR": 40, "CRITICAL": 50}
"""

CDAQ_PROBE = (
    _COMMON
    + """
from typing import Any
from constellation.core.commandmanager import cscp_requestable
from constellation.core.logging import setup_cli_logging
from constellation.core.satellite import Satellite, SatelliteArgumentParser

from constellation.core.monitoring import schedule_metric

R = tuple[str, Any, dict[str, Any]]

class Probe(Satellite):
    pulsing = False

    @schedule_metric("Hz", 0.2)
    def pulse(self) -> int | None:
        return 1 if self.pulsing else None  # None: nothing sent

    @cscp_requestable()
    def set_pulsing(self, on: str) -> R:
        self.pulsing = on == "on"
        return "ok", None, {}

    @cscp_requestable()
    def emit(self, level: str, text: str) -> R:
        self.log.log(LEVELS[level], text)
        return "ok", None, {}

    @cscp_requestable()
    def emit_long(self, n: int) -> R:
        self.log.warning("probe:long " + "L" * n)
        return "ok", None, {}

    @cscp_requestable()
    def foreign(self, name: str, text: str) -> R:
        logging.getLogger(name).warning(text)
        return "ok", None, {}

    @cscp_requestable()
    def exc(self, text: str) -> R:
        try:
            raise ValueError("boom")
        except ValueError:
            self.log.exception(text)
        return "ok", None, {}

    @cscp_requestable()
    def stat_value(self, name: str, kind: str) -> R:
        if name not in self._metrics:
            self.register_metric(name, "u", "A probe.")
        self.stat(name, VALUES[kind])
        return "ok", None, {}

    @cscp_requestable()
    def register(self, name: str) -> R:
        self.register_metric(name, "", "Registered at run time.")
        return "ok", None, {}

parser = SatelliteArgumentParser(description="probe")
args = vars(parser.parse_args())
setup_cli_logging(args.pop("level"))
s = Probe(**args)
print("READY", flush=True)
s.run_satellite()
"""
)

OUR_PROBE = (
    _COMMON
    + """
from constellation import cli

def load(_name):
    from constellation import Satellite, command, metric

    class Probe(Satellite):
        satellite_type = "Sputnik"  # the entry point satellite-run finds; the class is swapped

        pulsing = False

        @metric(unit="Hz", interval=0.2)
        def pulse(self) -> int | None:
            return 1 if self.pulsing else None  # None: nothing sent

        @command
        def set_pulsing(self, on: str) -> str:
            self.pulsing = on == "on"
            return "ok"

        @command
        def emit(self, level: str, text: str) -> str:
            self.log.log(LEVELS[level], text)
            return "ok"

        @command
        def emit_long(self, n: int) -> str:
            self.log.warning("probe:long " + "L" * n)
            return "ok"

        @command
        def foreign(self, name: str, text: str) -> str:
            logging.getLogger(name).warning(text)
            return "ok"

        @command
        def exc(self, text: str) -> str:
            try:
                raise ValueError("boom")
            except ValueError:
                self.log.exception(text)
            return "ok"

        @command
        def stat_value(self, name: str, kind: str) -> str:
            if name not in self._mon.stat_topics:
                self.register_metric(name, "u", "A probe.")
            self.stat(name, VALUES[kind])
            return "ok"

        @command
        def register(self, name: str) -> str:
            self.register_metric(name, "", "Registered at run time.")
            return "ok"

    return Probe

cli.load_satellite_type = load
sys.exit(cli.main(["Sputnik", *sys.argv[1:]]))
"""
)

LISTENER = '''
import json, logging, signal, sys
from constellation.core.logging import setup_cli_logging
from constellation.tools.monitor import Monitor

def emit(**obj):
    print(json.dumps(obj, default=repr), flush=True)

class JsonMonitor(Monitor):
    """The 1.0.2 Monitor; reports each record as the Monitor's handlers would see it."""

    def receive_log(self, record):
        emit(event="log", sender=getattr(record, "sender", None), level=record.levelname,
             topic=record.name, message=record.getMessage(), created=record.created,
             funcName=record.funcName, module=record.module, filename=record.filename,
             lineno=record.lineno, traceback=getattr(record, "traceback", None))

    def receive_metric(self, sender, metric, timestamp, value):
        emit(event="metric", sender=sender, name=metric.name, unit=metric.unit, value=value,
             time=timestamp.timestamp())

group, *topics = sys.argv[1:]
setup_cli_logging("CRITICAL")
mon = JsonMonitor("auditmon", group, None, None)
mon.set_topics(topics)
signal.signal(signal.SIGTERM, lambda *_: mon._com_thread_evt.set())
emit(event="ready")
mon.run_listener()
'''


class Probe:
    """One probe satellite (ours or 1.0.2's) and a REQ client to it."""

    def __init__(self, kind: str, cmd: int, mon: int, own_topic: str, sender: str) -> None:
        self.kind, self.mon, self.own_topic, self.sender = kind, mon, own_topic, sender
        self.client = Client(cmd)

    def call(self, command: str, *args: Any) -> None:
        reply = self.client.call(command, list(args) if args else None)
        assert reply.verb_type is cscp.VerbType.SUCCESS, (self.kind, command, reply)


def _start_probe(kind: str, spawn: Callable[..., Any], cdaq_python: Path, tmp: Path, group: str) -> Probe:
    if kind == "1.0.2":
        script = tmp / "probe_cdaq.py"
        script.write_text(CDAQ_PROBE)
        ports = {k: free_tcp_port() for k in ("cmd", "hb", "mon")}
        spawn(
            str(cdaq_python), str(script), "-g", group, "-n", "P", "-i", "lo", "-l", "CRITICAL",
            "--cmd-port", str(ports["cmd"]), "--hb-port", str(ports["hb"]), "--mon-port", str(ports["mon"]),
            ready=r"^READY$", timeout=30,
        )  # fmt: skip
        probe = Probe(kind, ports["cmd"], ports["mon"], "PROBE", "Probe.P")
    else:
        script = tmp / "probe_ours.py"
        script.write_text(OUR_PROBE)
        proc = spawn(
            sys.executable, str(script), "-g", group, "-n", "P", "-i", "lo", "-l", "CRITICAL",
            ready=READY, timeout=30,
        )  # fmt: skip
        m = proc.ready
        probe = Probe(kind, int(m["cmd"]), int(m["mon"]), "SPUTNIK", m["name"])
    probe.client.wait_state(State.NEW, timeout=30)
    return probe


class Subs:
    """Raw SUB sockets on one publisher, each recording what it receives."""

    def __init__(self, ctx: zmq.Context[zmq.Socket[bytes]], port: int) -> None:
        self.ctx, self.port = ctx, port
        self.socks: dict[str, zmq.Socket[bytes]] = {}
        self.got: dict[str, list[Any]] = {}

    def add(self, key: str, *topics: bytes) -> zmq.Socket[bytes]:
        s = self.ctx.socket(zmq.SUB)
        s.setsockopt(zmq.LINGER, 0)
        s.setsockopt(zmq.RCVHWM, 0)
        for t in topics:
            s.subscribe(t)
        s.connect(f"tcp://127.0.0.1:{self.port}")
        self.socks[key] = s
        self.got[key] = []
        return s

    def pump(self, quiet: float = 0.3, limit: float = 10.0) -> None:
        """Read every socket until none has received anything for `quiet` seconds."""
        poller = zmq.Poller()
        for s in self.socks.values():
            poller.register(s, zmq.POLLIN)
        by_sock = {s: k for k, s in self.socks.items()}
        end = time.monotonic() + limit
        while time.monotonic() < end:
            ready = dict(poller.poll(int(quiet * 1000)))
            if not ready:
                return
            for s in ready:
                self.got[by_sock[s]].append(cmdp.decode(s.recv_multipart()))
        raise AssertionError(f"publisher never went quiet within {limit}s")

    def window(self, seconds: float) -> None:
        """Read every socket for `seconds` (a rate measurement, not a synchronisation)."""
        poller = zmq.Poller()
        for s in self.socks.values():
            poller.register(s, zmq.POLLIN)
        by_sock = {s: k for k, s in self.socks.items()}
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            for s in dict(poller.poll(max(1, int(left * 1000)))):
                self.got[by_sock[s]].append(cmdp.decode(s.recv_multipart()))

    def until(
        self, key: str, predicate: Callable[[Any], bool], ping: Callable[[], None], timeout: float = 15
    ) -> None:
        """Call `ping` until `key` got a message matching `predicate` (subscriptions are asynchronous)."""
        end = time.monotonic() + timeout
        while not any(predicate(m) for m in self.got[key]):
            assert time.monotonic() < end, f"{key}: nothing matching within {timeout}s: {self.got[key][-5:]}"
            ping()
            self.pump(quiet=0.2, limit=5)

    def clear(self) -> None:
        for v in self.got.values():
            v.clear()


def _is_metric(name: str) -> Callable[[Any], bool]:
    return lambda m: isinstance(m, cmdp.Metric) and m.name == name


def _probe_logs_and_states(msgs: list[Any], own: str) -> list[tuple[Any, ...]]:
    """The messages the scenario caused, normalised: probe records (type name as <TYPE>) and STATE."""
    out: list[tuple[Any, ...]] = []
    for m in msgs:
        if isinstance(m, cmdp.LogMessage) and m.text.startswith("probe:"):
            out.append(("LOG", m.level.name, m.topic.replace(own, "<TYPE>"), m.text))
        elif isinstance(m, cmdp.Metric) and m.name in ("STATE", "RUN_ID"):
            out.append(("STAT", m.name, m.value, m.unit))
    return out


def _subscription_scenario(probe: Probe, ctx: zmq.Context[zmq.Socket[bytes]]) -> dict[str, Any]:
    subs = Subs(ctx, probe.mon)
    own = probe.own_topic.encode()
    subs.add("LOG/WARNING", b"LOG/WARNING")
    subs.add("LOG/CRITICAL/<TYPE>", b"LOG/CRITICAL/" + own)
    subs.add("LOG/WARNING/FSM", b"LOG/WARNING/FSM")
    subs.add("STAT/", b"STAT/")
    subs.add("STAT/STATE 1", b"STAT/STATE", b"STAT/PING")
    subs.add("STAT/STATE 2", b"STAT/STATE", b"STAT/PING")
    for key in ("LOG/WARNING",):
        subs.until(
            key, lambda m: isinstance(m, cmdp.LogMessage), lambda: probe.call("emit", "WARNING", "ping")
        )
    subs.until(
        "LOG/CRITICAL/<TYPE>",
        lambda m: isinstance(m, cmdp.LogMessage),
        lambda: probe.call("emit", "CRITICAL", "ping"),
    )
    # a record of a plain logger named FSM (topic FSM on both sides) shows that subscription is active
    subs.until(
        "LOG/WARNING/FSM",
        lambda m: isinstance(m, cmdp.LogMessage),
        lambda: probe.call("foreign", "FSM", "ping"),
    )
    for key in ("STAT/", "STAT/STATE 1", "STAT/STATE 2"):
        subs.until(key, _is_metric("PING"), lambda: probe.call("stat_value", "PING", "int"))
    # The empty topic last: it enables nothing itself and receives what the others cause.
    empty = subs.add("", b"", b"LOG/WARNING/BARRIER")
    subs.until("", lambda m: isinstance(m, cmdp.LogMessage), lambda: probe.call("foreign", "barrier", "ping"))
    # One STAT/STATE subscriber leaves; the other still holds the topic. Its next subscription is the
    # barrier: the publisher has taken the unsubscription once the new topic is served.
    subs.socks["STAT/STATE 1"].unsubscribe(b"STAT/STATE")
    subs.socks["STAT/STATE 1"].subscribe(b"STAT/PONG")
    subs.until("STAT/STATE 1", _is_metric("PONG"), lambda: probe.call("stat_value", "PONG", "int"))
    subs.pump()
    subs.clear()
    del empty

    for level in ("TRACE", "DEBUG", "INFO", "WARNING", "STATUS", "ERROR", "CRITICAL"):
        probe.call("emit", level, f"probe:{level}")
    for command, payload, target in (
        ("initialize", {}, State.INIT), ("launch", None, State.ORBIT), ("start", "r1", State.RUN),
        ("stop", None, State.ORBIT),
    ):  # fmt: skip
        assert probe.client.call(command, payload).verb == "transitioning"
        probe.client.wait_state(target)
    subs.pump()
    seen: dict[str, Any] = {k: _probe_logs_and_states(v, probe.own_topic) for k, v in subs.got.items()}
    # the default periodic metrics: sampled at the first tick after INIT, with these types and units
    seen["periodic"] = sorted(
        {
            (m.name, type(m.value).__name__, m.unit)
            for m in subs.got["STAT/"]
            if m.name in ("CPU_LOAD_AVG", "MEM_AVAIL")
        }
    )
    return seen


def test_subscription_semantics_are_1_0_2s(cdaq_python: Path, spawn, tmp_path: Path) -> None:
    """Level topics are not thresholds, component topics, `LOG/`-less `STAT/`, the empty topic, two
    subscribers of one topic of which one leaves: what each SUB receives equals 1.0.2's."""
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    seen: dict[str, dict[str, Any]] = {}
    try:
        for kind in ("1.0.2", "ours"):
            probe = _start_probe(kind, spawn, cdaq_python, tmp_path, unique_group())
            seen[kind] = _subscription_scenario(probe, ctx)
            probe.client.close()
    finally:
        ctx.destroy(linger=0)
    warning = [("LOG", "WARNING", "<TYPE>", "probe:WARNING")]
    critical = [("LOG", "CRITICAL", "<TYPE>", "probe:ERROR"), ("LOG", "CRITICAL", "<TYPE>", "probe:CRITICAL")]
    states = [
        ("STAT", "STATE", s, "") for s in ("initializing", "INIT", "launching", "ORBIT", "starting", "RUN")
    ] + [("STAT", "STATE", s, "") for s in ("stopping", "ORBIT")]
    with_run_id = [*states[:5], ("STAT", "RUN_ID", "r1", ""), *states[5:]]  # RUN_ID while starting
    assert seen["ours"]["LOG/WARNING"] == warning
    assert seen["ours"]["LOG/CRITICAL/<TYPE>"] == critical
    assert seen["ours"]["LOG/WARNING/FSM"] == []
    assert seen["ours"]["STAT/STATE 2"] == states
    assert seen["ours"]["STAT/STATE 1"] == []
    assert seen["ours"]["STAT/"] == with_run_id
    assert seen["ours"][""] == warning + critical + with_run_id
    assert seen["ours"]["periodic"] == [("CPU_LOAD_AVG", "float", "%"), ("MEM_AVAIL", "float", "MiB")]
    assert seen["ours"] == seen["1.0.2"]


def test_notifications_list_the_same_topics_as_1_0_2(cdaq_python: Path, spawn, tmp_path: Path) -> None:
    """`LOG?`/`STAT?` on subscribe, and `STAT?` again for a metric registered at run time."""
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    seen: dict[str, list[tuple[str, list[str], dict[str, str]]]] = {}
    try:
        for kind in ("1.0.2", "ours"):
            probe = _start_probe(kind, spawn, cdaq_python, tmp_path, unique_group())
            subs = Subs(ctx, probe.mon)
            subs.add("n", b"LOG?", b"STAT?")
            deadline = time.monotonic() + 15
            while sum(isinstance(m, cmdp.Notification) for m in subs.got["n"]) < 2:
                assert time.monotonic() < deadline, subs.got["n"]
                subs.pump(quiet=0.5)
            probe.call("register", "NEW_ONE")
            subs.until("n", lambda m: "NEW_ONE" in getattr(m, "topics", {}), lambda: None)
            subs.pump()
            notes = []
            for m in subs.got["n"]:
                assert isinstance(m, cmdp.Notification)
                assert m.sender == probe.sender
                topics = {
                    t.replace(probe.own_topic, "<TYPE>"): d
                    for t, d in m.topics.items()
                    if t not in ("LOG_DROPPED", "PULSE")  # PULSE: its description differs on purpose
                }
                notes.append((m.kind, sorted(topics), topics))
            seen[kind] = notes
            probe.client.close()
    finally:
        ctx.destroy(linger=0)
    assert [n[:2] for n in seen["ours"]] == [
        ("LOG", sorted(["<TYPE>", "LINK", "FSM", "CTRL", "MNTR"])),
        ("STAT", sorted(["RUN_ID", "STATE", "CPU_LOAD_AVG", "MEM_AVAIL"])),
        ("STAT", sorted(["RUN_ID", "STATE", "CPU_LOAD_AVG", "MEM_AVAIL", "NEW_ONE"])),
    ]
    assert seen["ours"] == seen["1.0.2"]  # descriptions included


def test_every_metric_value_1_0_2_sends_is_decoded(cdaq_python: Path, spawn, tmp_path: Path) -> None:
    """1.0.2's `stat()` packs whatever it is given: nil, lists, maps, bin. Before, our decoder raised
    DecodeError for all of them, so our listeners lost those metrics."""
    probe = _start_probe("1.0.2", spawn, cdaq_python, tmp_path, unique_group())
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    try:
        sub = ctx.socket(zmq.SUB)
        sub.setsockopt(zmq.LINGER, 0)
        sub.subscribe(b"STAT/PROBE")
        sub.connect(f"tcp://127.0.0.1:{probe.mon}")
        expected = {"none": None, "list": [1, 2], "dict": {"a": 1}, "bytes": b"\x00\x01",
                    "nested": [{"a": [1]}], "huge": 2**64 - 1, "bool": True}  # fmt: skip
        # the first value also proves the subscription is active
        deadline = time.monotonic() + 15
        while True:
            probe.call("stat_value", "PROBE", "int")
            if sub.poll(300):
                break
            assert time.monotonic() < deadline, "subscription never active"
        while sub.poll(300):
            sub.recv_multipart()
        for kind, value in expected.items():
            probe.call("stat_value", "PROBE", kind)
            assert sub.poll(5000), kind
            msg = cmdp.decode(sub.recv_multipart())
            assert isinstance(msg, cmdp.Metric)
            assert (msg.sender, msg.name, msg.value, msg.unit) == ("Probe.P", "PROBE", value, "u")
            assert type(msg.value) is type(value)
    finally:
        probe.client.close()
        ctx.destroy(linger=0)


def test_records_reach_the_1_0_2_monitor_as_1_0_2s_do(cdaq_python: Path, spawn, tmp_path: Path) -> None:
    """The 1.0.2 Monitor's listener gets the same record fields from ours as from 1.0.2: level, topic,
    text (non-ASCII, several lines, 1 MiB), caller tags and a creation time with µs. From
    `log.exception` ours carries the `traceback` tag (which the Monitor prints); 1.0.2 sends none and
    names its own logging module as the caller."""
    group = unique_group()
    probes = {k: _start_probe(k, spawn, cdaq_python, tmp_path, group) for k in ("1.0.2", "ours")}
    script = tmp_path / "listener.py"
    script.write_text(LISTENER)
    monitor = spawn(
        str(cdaq_python), str(script), group, "LOG/WARNING", "LOG/CRITICAL",
        ready=r'"event": "ready"', timeout=30,
    )  # fmt: skip
    senders = {p.sender: k for k, p in probes.items()}

    def logs(kind: str) -> list[dict[str, Any]]:
        return [
            o for o in json_lines(monitor) if o.get("event") == "log" and senders.get(o["sender"]) == kind
        ]

    for kind, probe in probes.items():  # the listener found the publisher once a ping arrives
        deadline = time.monotonic() + 30
        while not logs(kind):
            assert time.monotonic() < deadline, monitor.output_tail(30)
            probe.call("emit", "WARNING", "ping")
            with contextlib.suppress(WaitTimeout):
                wait_until(lambda k=kind: logs(k), timeout=0.3, interval=0.02)
    text = "probe:Grüße ☃ \u2028 zeile 2\nzeile 3 \x00 end"
    long_n = 1 << 20
    started = time.time()
    for probe in probes.values():
        probe.call("emit", "WARNING", text)
        probe.call("exc", "probe:exc")
        probe.call("emit_long", long_n)
        probe.call("emit", "ERROR", "probe:error")
    for kind in probes:
        wait_json(
            monitor,
            lambda o, k=kind: senders.get(o.get("sender")) == k and o.get("message") == "probe:error",
            30,
        )
    got = {
        k: {o["message"].split(" ", 1)[0]: o for o in logs(k) if o["message"].startswith("probe:")}
        for k in probes
    }
    for kind in probes:
        plain = got[kind]["probe:Grüße"]
        assert plain["message"] == text
        assert (plain["level"], plain["funcName"], plain["filename"]) == (
            "WARNING",
            "emit",
            Path("probe_cdaq.py" if kind == "1.0.2" else "probe_ours.py").name,
        )
        assert started - 1 < plain["created"] < time.time() + 1
        assert plain["created"] != int(plain["created"])  # sub-second (µs) precision
        assert len(got[kind]["probe:long"]["message"]) == len("probe:long ") + long_n
        assert got[kind]["probe:error"]["level"] == "CRITICAL"  # ERROR goes out as CRITICAL
        assert got[kind]["probe:exc"]["level"] == "CRITICAL"
    strip = ("created", "sender", "topic", "lineno", "filename", "module", "traceback", "funcName")
    for key in got["ours"]:
        ours = {k: v for k, v in got["ours"][key].items() if k not in strip}
        theirs = {k: v for k, v in got["1.0.2"][key].items() if k not in strip}
        assert ours == theirs, key
        assert got["ours"][key]["topic"] == "SPUTNIK"
        assert got["1.0.2"][key]["topic"] == "PROBE"
    assert got["1.0.2"]["probe:exc"]["traceback"] is None
    tb = got["ours"]["probe:exc"]["traceback"]
    assert tb.startswith("Traceback (most recent call last):"), tb
    assert tb.endswith("ValueError: boom"), tb
    assert got["ours"]["probe:exc"]["funcName"] == "exc"


def test_periodic_metrics_are_sampled_in_the_same_states_as_1_0_2(
    cdaq_python: Path, spawn, tmp_path: Path
) -> None:
    """A periodic metric (interval 0.2 s) is sampled in INIT, ORBIT, SAFE and again after leaving ERROR,
    never in NEW or ERROR: which states see values, for ours and 1.0.2 (a one-second look each; the two
    are driven side by side, each in a thread of its own: 8 s instead of 16)."""
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()

    def observe(probe: Probe) -> list[tuple[str, bool]]:
        subs = Subs(ctx, probe.mon)
        subs.add("s", b"STAT/PULSE", b"STAT/PING")
        subs.until("s", _is_metric("PING"), lambda p=probe: p.call("stat_value", "PING", "int"))
        probe.call("set_pulsing", "on")
        phases: list[tuple[str, bool]] = []
        steps = [(None, None, State.NEW), ("initialize", {}, State.INIT), ("launch", None, State.ORBIT),
                 ("_interrupt", None, State.SAFE), ("_failure", None, State.ERROR),
                 ("initialize", {}, State.INIT)]  # fmt: skip
        for command, payload, state in steps:
            if command is not None:
                assert probe.client.call(command, payload).verb == "transitioning"
                probe.client.wait_state(state)
            subs.window(0.3)  # what the transition itself caused (a value sampled on the way)
            subs.clear()
            subs.window(1.0)  # one second in the state: at 0.2 s, several values or none
            phases.append((state.name, any(_is_metric("PULSE")(m) for m in subs.got["s"])))
            subs.clear()
        probe.client.close()
        return phases

    try:
        probes = {k: _start_probe(k, spawn, cdaq_python, tmp_path, unique_group()) for k in ("1.0.2", "ours")}
        with ThreadPoolExecutor(len(probes)) as pool:
            running = {kind: pool.submit(observe, probe) for kind, probe in probes.items()}
            seen = {kind: future.result(timeout=90) for kind, future in running.items()}
    finally:
        ctx.destroy(linger=0)
    assert seen["ours"] == [
        ("NEW", False), ("INIT", True), ("ORBIT", True), ("SAFE", True), ("ERROR", False), ("INIT", True)
    ]  # fmt: skip
    assert seen["ours"] == seen["1.0.2"]
