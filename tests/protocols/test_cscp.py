"""CSCP1 against the Appendix A.2/A.3 captures, the §2.3 reply shapes, and malformed frames."""

from __future__ import annotations

import msgpack
import pytest
from hypothesis import given

from protocols import DecodeError, EncodeError, Role, State, cscp
from tests.protocols import captures as cap
from tests.protocols.strategies import cscp_messages

MARINER = "Mariner.One"
CTL = "BaseController.ctl"


def _at(msg: cscp.Message, time_ns: int) -> cscp.Message:
    return cscp.Message(msg.sender, msg.verb_type, msg.verb, msg.payload, msg.tags, time_ns)


def test_initialize_request_capture() -> None:
    frames = [cap.CSCP_INIT_HEADER, cap.CSCP_INIT_VERB, cap.CSCP_INIT_PAYLOAD]
    msg = cscp.decode(frames)
    assert msg == cscp.Message(
        CTL, cscp.VerbType.REQUEST, "initialize", cap.CSCP_INIT_CONFIG, {}, msg.time_ns
    )
    assert msg.time_ns == cap.CSCP_INIT_TIME_NS == 1795298851_947831000
    assert msg.is_request
    built = _at(cscp.request(CTL, "initialize", cap.CSCP_INIT_CONFIG), cap.CSCP_INIT_TIME_NS)
    assert cscp.encode(built) == frames


def test_start_request_capture() -> None:
    msg = _at(cscp.request(CTL, "start", "run_007"), cap.CSCP_INIT_TIME_NS)
    frames = cscp.encode(msg)
    assert frames == [cap.CSCP_INIT_HEADER, cap.CSCP_START_VERB, cap.CSCP_START_PAYLOAD]
    assert cscp.decode(frames) == msg


def test_get_state_reply_capture() -> None:
    frames = [cap.CSCP_STATE_HEADER, cap.CSCP_STATE_VERB, cap.CSCP_STATE_PAYLOAD]
    msg = cscp.decode(frames)
    assert msg.sender == MARINER
    assert msg.verb_type is cscp.VerbType.SUCCESS
    assert msg.verb == "NEW"
    assert msg.payload == State.NEW
    assert msg.time_ns == cap.CSCP_STATE_TIME_NS
    assert msg.tags == {
        "last_changed": msgpack.Timestamp.from_unix_nano(cap.CSCP_STATE_LAST_CHANGED_NS),
        "last_changed_iso": cap.CSCP_STATE_ISO,
    }
    assert cscp.encode(msg) == frames
    built = cscp.get_state_reply(MARINER, State.NEW, cap.CSCP_STATE_LAST_CHANGED_NS + 999)  # µs precision
    assert cscp.encode(_at(built, cap.CSCP_STATE_TIME_NS)) == frames


def test_get_state_reply_iso_without_fraction() -> None:
    msg = cscp.get_state_reply(MARINER, State.RUN, 1_800_000_000 * 10**9)
    assert msg.tags["last_changed_iso"] == "2027-01-15T08:00:00+00:00"  # datetime.isoformat() drops .000000
    assert msg.verb == "RUN"
    assert msg.payload == 0x40
    assert type(msg.payload) is int
    with pytest.raises(EncodeError):
        cscp.get_state_reply(MARINER, State.DEAD, 0)


def test_transition_and_role_reply_captures() -> None:
    init = cscp.encode(cscp.transition_reply(MARINER, "initialize"))
    assert init[1:] == [cap.CSCP_INIT_REPLY_VERB, cap.CSCP_INIT_REPLY_PAYLOAD]
    role = cscp.encode(cscp.get_role_reply(MARINER, Role.DYNAMIC))
    assert role[1:] == [cap.CSCP_ROLE_REPLY_VERB, cap.CSCP_ROLE_REPLY_PAYLOAD]
    assert cscp.transition_reply(MARINER, "_interrupt").payload == "interrupt"
    assert cscp.transition_reply(MARINER, "_failure").payload == "failure"
    with pytest.raises(EncodeError):
        cscp.transition_reply(MARINER, "get_name")


def test_standard_reply_shapes() -> None:
    cmds = {"get_name": "Get the canonical name.\nNo arguments.", "start": "Start a run.\nArguments: run_id."}
    r = cscp.get_commands_reply(MARINER, cmds)
    assert (r.verb_type, r.verb, r.payload, r.tags) == (cscp.VerbType.SUCCESS, "2 commands known", cmds, {})
    r = cscp.get_config_reply(MARINER, {})
    assert (r.verb, r.payload) == ("Dictionary attached in payload", {})
    assert len(cscp.encode(r)) == 3  # an empty map is still a payload
    r = cscp.shutdown_reply(MARINER)
    assert (r.verb, r.payload, len(cscp.encode(r))) == ("Mariner.One queued for reentry", None, 2)
    r = cscp.unknown_command_reply(MARINER, "get_metrics")
    assert (r.verb_type, r.verb) == (cscp.VerbType.UNKNOWN, "Unknown command: get_metrics")
    r = cscp.command_not_allowed_reply(MARINER, State.RUN)
    assert (r.verb_type, r.verb) == (cscp.VerbType.INVALID, "Command not allowed in RUN state")
    r = cscp.wrong_argument_reply(MARINER, "Expected no arguments, got 1")
    assert (r.verb_type, r.payload) == (cscp.VerbType.INCOMPLETE, "Expected no arguments, got 1")
    assert r.verb == "Wrong argument: Expected no arguments, got 1"
    for role, flags in ((Role.ESSENTIAL, 7), (Role.TRANSIENT, 4), (Role.NONE, 0)):
        r = cscp.get_role_reply(MARINER, role)
        assert (r.verb, r.payload) == (role.name, flags)
    with pytest.raises(EncodeError):
        cscp.reply(MARINER, cscp.VerbType.REQUEST, "x")


@pytest.mark.parametrize("verb_type", list(cscp.VerbType))
def test_every_verb_type(verb_type: cscp.VerbType) -> None:
    msg = cscp.Message(MARINER, verb_type, "text", None, {}, 1)
    frames = cscp.encode(msg)
    assert frames[1][0] == verb_type
    assert cscp.decode(frames) == msg


def test_nil_payload_frame_means_no_payload() -> None:
    frames = [cap.CSCP_INIT_HEADER, cap.CSCP_INIT_VERB, b"\xc0"]
    assert cscp.decode(frames).payload is None


@given(cscp_messages)
def test_round_trip(msg: cscp.Message) -> None:
    frames = cscp.encode(msg)
    assert len(frames) == (2 if msg.payload is None else 3)
    assert cscp.decode(frames) == msg


H, V = cap.CSCP_INIT_HEADER, cap.CSCP_INIT_VERB


def _header(*objs: object) -> bytes:
    return b"".join(msgpack.packb(o, datetime=True) for o in objs)


TS = msgpack.Timestamp(1, 0)
MALFORMED = {
    "one frame": [H],
    "four frames": [H, V, b"\x01", b"\x02"],
    "not a frame list": H,
    "str frame": [H, "verb"],
    "wrong protocol": [_header("CSCP\x02", CTL, TS, {}), V],
    "CHP protocol": [_header("CHP\x01", CTL, TS, {}), V],
    "bin protocol": [_header(b"CSCP\x01", CTL, TS, {}), V],
    "bad sender": [_header("CSCP\x01", "ctl", TS, {}), V],
    "int timestamp": [_header("CSCP\x01", CTL, 12345, {}), V],
    "float timestamp": [_header("CSCP\x01", CTL, 1.5, {}), V],
    "other ext": [_header("CSCP\x01", CTL, msgpack.ExtType(5, b"abcd"), {}), V],
    "ext -1 wrong length": [_header("CSCP\x01", CTL) + b"\xd5\xff\x00\x01" + b"\x80", V],
    "nanoseconds too big": [_header("CSCP\x01", CTL) + b"\xd7\xff" + b"\xff" * 8 + b"\x80", V],
    "tags not a map": [_header("CSCP\x01", CTL, TS, []), V],
    "tags int key": [_header("CSCP\x01", CTL) + msgpack.packb(TS) + b"\x81\x01\x02", V],
    "tags missing": [_header("CSCP\x01", CTL, TS), V],
    "header trailing byte": [H + b"\x00", V],
    "verb trailing byte": [H, V + b"\x00"],
    "verb as array": [H, msgpack.packb([0, "x"])],
    "verb type str": [H, msgpack.packb("0") + msgpack.packb("x")],
    "verb type bool": [H, b"\xc3" + msgpack.packb("x")],
    "verb type 7": [H, b"\x07" + msgpack.packb("x")],
    "verb type negative": [H, b"\xff" + msgpack.packb("x")],
    "verb text bin": [H, b"\x00" + msgpack.packb(b"x")],
    "verb text missing": [H, b"\x00"],
    "invalid utf-8 text": [H, b"\x00\xa2\xc3\x28"],
    "empty payload frame": [H, V, b""],
    "two payload objects": [H, V, b"\x01\x02"],
    "payload other ext": [H, V, msgpack.packb(msgpack.ExtType(1, b"x"))],
    "array bomb": [H, V, b"\xdd\xff\xff\xff\xff"],
    "map bomb": [H, V, b"\xdf\xff\xff\xff\xff"],
    "str bomb": [H, V, b"\xdb\xff\xff\xff\xff"],
    "deep nesting": [H, V, b"\x91" * 100_000 + b"\x00"],
    "empty frames": [b"", b""],
}


@pytest.mark.parametrize("frames", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed(frames: list[bytes]) -> None:
    with pytest.raises(DecodeError):
        cscp.decode(frames)


def test_encode_rejects() -> None:
    bad = [
        cscp.Message("ctl", cscp.VerbType.REQUEST, "x"),
        cscp.Message(CTL, cscp.VerbType.REQUEST, 5),  # type: ignore[arg-type]
        cscp.Message(CTL, 9, "x"),  # type: ignore[arg-type]
        cscp.Message(CTL, cscp.VerbType.REQUEST, "x", object()),
        cscp.Message(CTL, cscp.VerbType.REQUEST, "x", 2**64),
        cscp.Message(CTL, cscp.VerbType.REQUEST, "x", tags={1: 2}),  # type: ignore[dict-item]
        cscp.Message(CTL, cscp.VerbType.REQUEST, "x", time_ns=1.5),  # type: ignore[arg-type]
        cscp.Message(CTL, cscp.VerbType.REQUEST, "\ud800"),
    ]
    for msg in bad:
        with pytest.raises(EncodeError):
            cscp.encode(msg)


def test_reply_helpers_reject_values_outside_the_enums() -> None:
    for make in (
        lambda: cscp.reply(MARINER, 9, "x"),  # type: ignore[arg-type]
        lambda: cscp.get_state_reply(MARINER, 0x11, 0),  # type: ignore[arg-type]
        lambda: cscp.get_role_reply(MARINER, "boss"),  # type: ignore[arg-type]
        lambda: cscp.command_not_allowed_reply(MARINER, 3),  # type: ignore[arg-type]
        lambda: cscp.get_state_reply(MARINER, State.NEW, 2**80),
    ):
        with pytest.raises(EncodeError):
            make()
