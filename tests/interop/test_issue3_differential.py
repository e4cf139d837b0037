"""Differential CSCP: the same raw requests to our Sputnik and to a 1.0.2 Mariner get the same replies.

Every request here is one that 1.0.2 can decode (the undecodable ones of section 12 kill 1.0.2's command
thread; ``tests/fuzz`` covers those for us). For each, the reply type, the reply text and the payload of
ours must equal 1.0.2's, with the satellites' names and their type-specific state texts factored out.
Sent in NEW and again in ORBIT, where argument and state checks meet.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import msgpack
import pytest

from protocols import State, cscp
from tests.fuzz.support import Client, spawn_mariner, start_sputnik
from tests.harness import free_tcp_port, unique_group

pytestmark = [pytest.mark.netns, pytest.mark.interop, pytest.mark.timeout(120)]

P = msgpack.packb


def _req(command: str, *payload: Any, verb_type: int = 0) -> list[bytes]:
    frames = cscp.encode(cscp.request("Test.diff", command))
    frames[1] = P(verb_type) + P(command)
    return [*frames, *(P(p) for p in payload)]


CASES: list[tuple[str, list[bytes]]] = [
    ("get_name", _req("get_name")),
    ("get_name with payload", _req("get_name", [1])),
    ("get_name with nil payload", _req("get_name", None)),
    ("get_name with empty list", _req("get_name", [])),
    ("get_state with payload", _req("get_state", 7)),
    ("GET_ROLE upper case", _req("GET_ROLE")),
    ("get_status", _req("get_status")),
    ("get_run_id", _req("get_run_id")),
    ("get_cnstln_version", _req("get_cnstln_version")),
    ("unknown command", _req("no_such_thing")),
    ("unknown upper case", _req("No_Such_THING")),
    ("get_metrics (not in 1.0.2)", _req("get_metrics")),
    ("_get_remotes (not in 1.0.2)", _req("_get_remotes")),
    ("verb type SUCCESS", _req("get_state", verb_type=1)),
    ("verb type ERROR", _req("get_name", verb_type=6)),
    ("launch", _req("launch")),
    ("land", _req("land")),
    ("stop", _req("stop")),
    ("_interrupt", _req("_interrupt")),
    ("start r1", _req("start", "r1")),
    ("start int", _req("start", 5)),
    ("start list", _req("start", ["r1"])),
    ("start no payload", _req("start")),
    ("start bad characters", _req("start", "bad run!")),
    ("initialize list", _req("initialize", [1, 2])),
    ("initialize int", _req("initialize", 3)),
    ("initialize str", _req("initialize", "cfg")),
    ("shutdown with payload", _req("shutdown", 1)),
    ("launch with payload", _req("launch", {"x": 1})),
]


def _normalise(reply: cscp.Message, name: str) -> tuple[Any, ...]:
    def clean(value: Any) -> Any:
        if isinstance(value, str):
            return value.replace(name, "<NAME>")
        return value

    return reply.verb_type.name, clean(reply.verb), clean(reply.payload)


def _ask_all(client: Client, name: str, cases: list[tuple[str, list[bytes]]]) -> dict[str, tuple[Any, ...]]:
    out = {}
    for label, frames in cases:
        raw = client.raw(list(frames), timeout=5.0)
        assert raw is not None, f"{name}: no reply to {label}"
        out[label] = _normalise(cscp.decode(raw), name)
    return out


def _to_orbit(client: Client) -> None:
    assert client.call("initialize", {}).verb_type is cscp.VerbType.SUCCESS
    client.wait_state(State.INIT)
    assert client.call("launch").verb_type is cscp.VerbType.SUCCESS
    client.wait_state(State.ORBIT)


# Where our text deliberately says more than 1.0.2's (same reply type, same "Wrong argument: " prefix):
# 1.0.2 answers a non-map configuration with "Wrong argument: not a dictionary".
MORE_EXPLICIT = {"initialize list", "initialize int", "initialize str"}


def _same(label: str, a: tuple[Any, ...], b: tuple[Any, ...]) -> bool:
    if label in MORE_EXPLICIT:
        return a[0] == b[0] and a[1].split(":")[0] == b[1].split(":")[0]
    return a == b


def _compare(ours: dict[str, tuple[Any, ...]], theirs: dict[str, tuple[Any, ...]]) -> None:
    diffs = {k: {"ours": ours[k], "1.0.2": theirs[k]} for k in ours if not _same(k, ours[k], theirs[k])}
    assert not diffs, "replies differ from 1.0.2:\n" + "\n".join(f"  {k}: {v}" for k, v in diffs.items())


def test_same_replies_as_cdaq_in_new_and_orbit(cdaq_python: Path, spawn) -> None:
    sat = start_sputnik(spawn, unique_group(), "Diff")
    port = free_tcp_port()
    spawn(
        str(cdaq_python.with_name("SatelliteMariner")),
        "-g", unique_group(), "-n", "Diff", "-i", "lo", "--cmd-port", str(port),
    )  # fmt: skip
    ours, theirs = Client(sat.cmd), Client(port)
    try:
        theirs.wait_state(State.NEW, timeout=30)
        # "launch"/"start r1"/... in NEW are refused and change nothing: both stay in NEW.
        _compare(_ask_all(ours, "Sputnik.Diff", CASES), _ask_all(theirs, "Mariner.Diff", CASES))
        assert ours.state() is State.NEW
        _to_orbit(ours)
        _to_orbit(theirs)
        # In ORBIT, leave out what would legitimately move the satellites on.
        in_orbit = [c for c in CASES if c[0] not in ("launch", "land", "_interrupt", "start r1")]
        _compare(_ask_all(ours, "Sputnik.Diff", in_orbit), _ask_all(theirs, "Mariner.Diff", in_orbit))
        assert ours.state() is State.ORBIT
        assert theirs.state() is State.ORBIT
    finally:
        ours.close()
        theirs.close()


def test_same_extrasystoles_and_state_metrics_as_cdaq(cdaq_python: Path, spawn) -> None:
    """Driven through the same cycle, ours and a 1.0.2 Mariner send the same extrasystoles (state, flags,
    status frame present) and the same STAT/STATE sequence, and announce the same LOG? topics."""
    import zmq

    from protocols import chp, cmdp

    sat = start_sputnik(spawn, unique_group(), "Seq")
    ports = spawn_mariner(spawn, cdaq_python, "Seq")
    targets = {
        "ours": (sat.cmd, sat.hb, sat.mon, "SPUTNIK"),
        "1.0.2": (ports["cmd"], ports["hb"], ports["mon"], "MARINER"),
    }
    ctx = zmq.Context()
    seen: dict[str, dict[str, Any]] = {}
    try:
        for key, (cmd, hb, mon, own_topic) in targets.items():
            client = Client(cmd)
            client.wait_state(State.NEW, timeout=30)
            hb_sub = ctx.socket(zmq.SUB)
            hb_sub.setsockopt(zmq.SUBSCRIBE, b"")
            hb_sub.connect(f"tcp://127.0.0.1:{hb}")
            mon_sub = ctx.socket(zmq.SUB)
            for t in (b"STAT/STATE", b"LOG?"):
                mon_sub.setsockopt(zmq.SUBSCRIBE, t)
            mon_sub.connect(f"tcp://127.0.0.1:{mon}")
            assert hb_sub.poll(10_000), f"{key}: no heartbeat"
            assert mon_sub.poll(10_000), f"{key}: no LOG? notification"
            note = cmdp.decode(mon_sub.recv_multipart())
            assert isinstance(note, cmdp.Notification)
            log_topics = [t.replace(own_topic, "<TYPE>") for t in note.topics]
            for command, payload, target in (
                ("initialize", {}, State.INIT), ("launch", None, State.ORBIT), ("start", "r1", State.RUN),
                ("stop", None, State.ORBIT), ("land", None, State.INIT),
            ):  # fmt: skip
                assert client.call(command, payload).verb == "transitioning"
                client.wait_state(target)
            # Ten state changes: initializing, INIT, launching, ORBIT, starting, RUN, stopping, ORBIT,
            # landing, INIT; each gives one extrasystole and one STAT/STATE (regular beats are skipped).
            extras: list[tuple[str, int, bool]] = []
            states: list[object] = []
            end = time.monotonic() + 10
            while len(extras) < 10 and hb_sub.poll(max(0, int((end - time.monotonic()) * 1000))):
                beat = chp.decode(hb_sub.recv_multipart())
                if beat.is_extrasystole:
                    extras.append((beat.state.name, int(beat.flags), beat.status is not None))
            while len(states) < 10 and mon_sub.poll(max(0, int((end - time.monotonic()) * 1000))):
                msg = cmdp.decode(mon_sub.recv_multipart())
                if isinstance(msg, cmdp.Metric):
                    states.append(msg.value)
            seen[key] = {"extrasystoles": extras, "STAT/STATE": states, "LOG?": log_topics}
            client.close()
    finally:
        ctx.destroy(linger=0)
    assert len(seen["ours"]["extrasystoles"]) == 10, seen
    assert len(seen["ours"]["STAT/STATE"]) == 10, seen
    assert seen["ours"] == seen["1.0.2"]
