"""Every standard command's reply, exact as 1.0.2 (wire doc §2.2, §2.3), decoded with our codecs."""

from __future__ import annotations

import asyncio
import datetime as dt

import msgpack
import pytest
import zmq

from constellation import Satellite, State, command
from protocols import cscp
from protocols.cscp import VerbType as V
from tests.runtime.conftest import wait_state

PUBLIC = {
    "get_name", "get_version", "get_cnstln_version", "get_commands", "get_state", "get_role",
    "get_status", "get_config", "get_run_id", "initialize", "launch", "land", "start", "stop", "shutdown",
}  # fmt: skip
HIDDEN = {"_interrupt", "_failure", "_get_commands"}


class Custom(Satellite, version="3.1"):
    @command(allowed_states=(State.INIT, State.ORBIT))
    def set_channel(self, channel: int, value: float) -> tuple[str, object, dict[str, object]]:
        """Set a channel."""
        return f"set {channel} to {value}", {"channel": channel, "value": value}, {"tagx": 1}

    @command
    async def echo(self, text: str, flag: bool) -> str:
        return f"{text}:{flag}"

    @command
    def raw(self, payload) -> object:  # type: ignore[no-untyped-def]
        return payload

    @command
    def _secret(self) -> str:
        """Hidden."""
        return "hush"

    @command
    def boom(self) -> str:
        raise RuntimeError("kaputt")

    @command
    def notimpl(self) -> str:
        raise NotImplementedError("later")

    def do_reconfigure(self, partial: object) -> None:
        return None


async def test_identity_commands(make_satellite, client) -> None:
    sat = await make_satellite(Custom, "One")
    cl = client(sat)
    assert (await cl("get_name")).verb == "Custom.One"
    rep = await cl("get_version")
    assert (rep.verb_type, rep.verb, rep.payload, dict(rep.tags)) == (V.SUCCESS, "3.1", None, {})
    assert (await cl("get_cnstln_version")).verb == "1.0.2"
    rep = await cl("get_status")
    assert (rep.verb, rep.payload) == ("Satellite not initialized yet.", None)
    rep = await cl("get_config")
    assert (rep.verb, rep.payload) == ("Dictionary attached in payload", {})
    rep = await cl("get_run_id")
    assert (rep.verb, rep.payload, dict(rep.tags)) == ("", None, {})
    rep = await cl("get_role")
    assert (rep.verb, rep.payload) == ("DYNAMIC", 6)


async def test_get_state_has_last_changed_tags(make_satellite, client) -> None:
    sat = await make_satellite()
    rep = await client(sat)("get_state")
    assert (rep.verb_type, rep.verb, rep.payload) == (V.SUCCESS, "NEW", 0x10)
    assert set(rep.tags) == {"last_changed", "last_changed_iso"}
    ts = rep.tags["last_changed"]
    assert isinstance(ts, msgpack.Timestamp)
    iso = dt.datetime.fromisoformat(rep.tags["last_changed_iso"])
    assert iso.tzinfo is not None
    assert abs(iso.timestamp() * 1e9 - ts.to_unix_nano()) < 1e6


async def test_get_state_wire_bytes(make_satellite, client) -> None:
    sat = await make_satellite()
    frames = await client(sat).raw(cscp.encode(cscp.request("BaseController.ctl", "get_state")))
    assert len(frames) == 3
    assert frames[1] == b"\x01\xa3NEW"
    assert frames[2] == b"\x10"
    unpacker = msgpack.Unpacker(timestamp=3)
    unpacker.feed(frames[0])
    proto, sender, _, tags = list(unpacker)
    assert (proto, sender) == ("CSCP\x01", "Satellite.T")
    assert isinstance(tags["last_changed"], dt.datetime)  # a real Timestamp ext on the wire


async def test_get_commands_listing(make_satellite, client) -> None:
    sat = await make_satellite(Custom)
    cl = client(sat)
    rep = await cl("get_commands")
    names = set(rep.payload)
    assert names == PUBLIC | {"reconfigure", "set_channel", "echo", "raw", "boom", "notimpl"}
    assert rep.verb == f"{len(names)} commands known"
    assert rep.payload["set_channel"] == "Set a channel.\nArguments: channel: int, value: float."
    assert rep.payload["echo"] == "Arguments: text: str, flag: bool."
    assert rep.payload["raw"] == "Arguments: payload."
    assert rep.payload["get_name"] == "Return the canonical name of the Satellite.\nNo arguments."
    assert rep.payload["initialize"] == (
        "Initiate 'initialize' state transition via a CSCP request.\nArguments: config_dict: dict."
    )
    assert rep.payload["start"].endswith("\nArguments: run_identifier: str.")
    assert rep.payload["get_commands"].startswith(
        "Return all commands supported by the Satellite.\n\n        "
    )
    hidden = await cl("_get_commands")
    assert set(hidden.payload) == HIDDEN | {"_secret"}
    assert hidden.verb == "4 commands known"
    assert hidden.payload["_secret"] == "Hidden.\nNo arguments."


async def test_reconfigure_only_listed_when_implemented(make_satellite, client) -> None:
    sat = await make_satellite()
    cl = client(sat)
    assert set((await cl("get_commands")).payload) == PUBLIC
    rep = await cl("reconfigure", {})
    assert (rep.verb_type, rep.verb) == (V.UNKNOWN, "Unknown command: reconfigure")


async def test_generic_reply_rules(make_satellite, client) -> None:
    sat = await make_satellite()
    cl = client(sat)
    rep = await cl("Get_NAME")
    assert rep.verb == "Satellite.T"  # case-insensitive
    rep = await cl("nonsense")
    assert (rep.verb_type, rep.verb, rep.payload) == (V.UNKNOWN, "Unknown command: nonsense", None)
    rep = await cl("get_name", 5)
    assert (rep.verb_type, rep.verb, rep.payload) == (
        V.INCOMPLETE, "Wrong argument: Expected no arguments, got 1", "Expected no arguments, got 1",
    )  # fmt: skip
    assert (await cl("get_name", [])).verb_type is V.SUCCESS  # falsy payloads are accepted
    rep = await cl("launch")
    assert (rep.verb_type, rep.verb, rep.payload) == (
        V.INVALID, "Transition not allowed: Can't launch when in New.", "Can't launch when in New.",
    )  # fmt: skip
    rep = await cl("stop")
    assert rep.verb == "Transition not allowed: Can't stop when in New."
    frames = cscp.encode(cscp.reply("BaseController.ctl", V.SUCCESS, "get_name"))
    rep = cscp.decode(await cl.raw(frames))
    assert (rep.verb_type, rep.verb) == (
        V.INVALID, "Received malformed request with msg verb: (<Type.SUCCESS: 1>, 'get_name')",
    )  # fmt: skip


async def test_start_argument_checks(make_satellite, client) -> None:
    sat = await make_satellite()
    cl = client(sat)
    for payload, text in [
        (None, "Parameter 'run_identifier' must be str, got NoneType"),
        (5, "Parameter 'run_identifier' must be str, got int"),
        (["r"], "Parameter 'run_identifier' must be str, got list"),
        ("bad id", "Run identifier contains invalid characters"),
    ]:
        rep = await cl("start", payload)
        assert (rep.verb_type, rep.verb, rep.payload) == (V.INCOMPLETE, f"Wrong argument: {text}", text)
    rep = await cl("start", "ok_1")  # valid id, wrong state: the FSM refuses
    assert rep.verb == "Transition not allowed: Can't start when in New."


async def test_initialize_payload_checks(make_satellite, client) -> None:
    sat = await make_satellite()
    cl = client(sat)
    rep = await cl("initialize", 5)
    assert rep.verb_type is V.INCOMPLETE
    assert rep.verb.startswith("Wrong argument: configuration must be a map")
    rep = await cl("initialize", {"a": [1, "x"]})
    assert rep.verb == "Wrong argument: array value of key `a` not homogeneous"
    rep = await cl("initialize", {"A": 1, "a": 2})
    assert rep.verb == "Wrong argument: key `a` already present"
    rep = await cl("initialize", {"_conditions": {"require_starting_after": "Other.X"}})
    assert (rep.verb_type, rep.verb) == (
        V.INVALID,
        "Exception: Value of key `_conditions.require_starting_after` is not valid: "
        "Dependent remote satellite Other.X is not present",
    )
    rep = await cl("initialize", {"_require_launching_after": "Satellite.T"})
    assert rep.verb.endswith("Satellite cannot depend on itself")
    rep = await cl("initialize", {"_require_run_after": "Other.X"})
    assert rep.verb_type is V.INVALID
    assert "transitional states" in rep.verb
    assert (await cl("get_state")).verb == "NEW"
    rep = await cl("initialize")  # a missing payload counts as {} (1.0.2)
    assert (rep.verb, rep.payload) == ("transitioning", "initialize")
    await wait_state(cl, "INIT")


async def test_custom_commands(make_satellite, client) -> None:
    sat = await make_satellite(Custom)
    cl = client(sat)
    rep = await cl("set_channel", [1, 2.5])
    assert (rep.verb_type, rep.verb) == (V.INVALID, "Command not allowed in NEW state")
    await cl("initialize", {})
    await wait_state(cl, "INIT")
    rep = await cl("set_channel", [1, 2.5])
    assert (rep.verb, rep.payload, dict(rep.tags)) == (
        "set 1 to 2.5",
        {"channel": 1, "value": 2.5},
        {"tagx": 1},
    )
    rep = await cl("set_channel", [1, 2])  # an int is a float
    assert rep.payload == {"channel": 1, "value": 2.0}
    for payload, text in [
        ([1], "Expected 2 payload elements, got 1"),
        (7, "Payload must be a list with 2 elements, got int"),
        (["1", 2.0], "Parameter 'channel' must be int, got str"),
        ([True, 2.0], "Parameter 'channel' must be int, got bool"),
        ([1, "x"], "Parameter 'value' must be float, got str"),
    ]:
        rep = await cl("set_channel", payload)
        assert (rep.verb_type, rep.verb, rep.payload) == (V.INCOMPLETE, f"Wrong argument: {text}", text)
    assert (await cl("echo", ["hi", True])).verb == "hi:True"
    rep = await cl("raw", [{"k": [1, 2]}])
    assert (rep.verb, rep.payload) == ("Command returned: {'k': [1, 2]}", {"k": [1, 2]})
    assert (await cl("_SECRET")).verb == "hush"
    rep = await cl("boom")
    assert (rep.verb_type, rep.verb, rep.payload) == (V.INVALID, "Exception: kaputt", "kaputt")
    rep = await cl("notimpl")
    assert (rep.verb_type, rep.verb) == (V.NOTIMPLEMENTED, "WrongImplementation: later")


class Unpackable(Satellite):
    @command
    def bad(self) -> tuple[str, object]:
        return "x", object()


async def test_unpackable_reply_gives_error(make_satellite, client) -> None:
    sat = await make_satellite(Unpackable)
    cl = client(sat)
    rep = await cl("bad")
    assert rep.verb_type is V.ERROR
    assert "cannot send object" in rep.verb
    assert (await cl("get_name")).verb == "Unpackable.T"


BAD_BODIES = [
    [],
    [b"garbage"],
    [b"\xa5CSCP\x01", b"\x00\xa8get_name"],  # header without sender/time/tags
    cscp.encode(cscp.request("A.b", "get_name"))[:1] * 4,  # 4 frames
    [b"\xa5CSCP\x01\xa3A.b\x05\x80", b"\x00\xa8get_name"],  # int instead of a Timestamp
    [b"\xa4CHP\x01\xa3A.b\xd6\xff\x00\x00\x00\x01\x80", b"\x00\xa8get_name"],  # wrong protocol
    [b"\xa5CSCP\x01\xa3A.b\xd6\xff\x00\x00\x00\x01\x80", b"\x09\xa8get_name"],  # verb type 9
    [b"\xa5CSCP\x01\xa3A.b\xd6\xff\x00\x00\x00\x01\x80", b"\x00\x05"],  # int command
    [b"\xa5CSCP\x01\xa3A.b\xd6\xff\x00\x00\x00\x01\x80", b"\x00\xa8get_name", b"\xc1"],  # bad payload
]


@pytest.mark.parametrize("body", BAD_BODIES)
async def test_undecodable_requests_get_error_and_we_keep_serving(make_satellite, client, body) -> None:
    sat = await make_satellite()
    cl = client(sat)
    rep = cscp.decode(await cl.raw(body) if body else await cl.raw([b""]))
    assert rep.verb_type is V.ERROR
    assert rep.verb.startswith("Undecodable request: ")
    assert rep.sender == "Satellite.T"
    assert (await cl("get_state")).verb == "NEW"  # same REQ socket, still in step


async def test_router_survives_raw_dealer_garbage(make_satellite, client, zctx) -> None:
    sat = await make_satellite()
    dealer = zctx.socket(zmq.DEALER)
    dealer.setsockopt(zmq.LINGER, 0)
    dealer.connect(f"tcp://127.0.0.1:{sat.ports['cmd']}")
    await dealer.send_multipart([b"no-delimiter", b"x"])  # no empty delimiter frame
    await dealer.send_multipart([b"", b"", b""])
    for expected_prefix in ([], [b""]):  # the envelope we sent comes back, then the reply
        async with asyncio.timeout(3):
            reply = await dealer.recv_multipart()
        assert reply[:-2] == expected_prefix
        assert cscp.decode(reply[-2:]).verb_type is V.ERROR
    assert (await client(sat)("get_name")).verb == "Satellite.T"


async def test_listing_order_is_the_1_0_2_order(make_satellite, client) -> None:
    sat = await make_satellite(Custom)
    names = list((await client(sat)("get_commands")).payload)
    assert names[-1] == "reconfigure"  # appended at run time in 1.0.2
    assert names[:-1] == sorted(names[:-1])


class Exiting(Satellite):
    @command
    def leave(self, code: int) -> str:
        raise SystemExit(code)

    @command
    async def interrupt_me(self) -> str:
        raise KeyboardInterrupt


async def test_a_command_raising_systemexit_gets_an_error_reply_and_the_satellite_serves_on(
    make_satellite, client
) -> None:
    """sys.exit() in a command (worker thread) or KeyboardInterrupt in an async one is that command's
    error: before, it left the event loop and ended the process."""
    sat = await make_satellite(Exiting)
    cl = client(sat)
    rep = await cl("leave", [3])
    assert (rep.verb_type, rep.verb, rep.payload) == (V.INVALID, "Exception: SystemExit: 3", "SystemExit: 3")
    rep = await cl("interrupt_me")
    assert (rep.verb_type, rep.verb) == (V.INVALID, "Exception: KeyboardInterrupt: ")
    assert (await cl("get_state")).verb == "NEW"
