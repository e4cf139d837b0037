"""Pure parts: the group summary, typed replies and broadcast results, exported names."""

from __future__ import annotations

import pytest

import controllers
from controllers import CommandFailed, CommandTimeout, Replies, Reply, Summary, summarize
from protocols import State
from protocols.cscp import VerbType


@pytest.mark.parametrize(
    ("states", "expected"),
    [
        ([], Summary.EMPTY),
        ([State.NEW], Summary.NEW),
        ([State.RUN, State.ORBIT, State.INIT], Summary.INIT),
        ([State.RUN, State.RUN], Summary.RUN),
        ([State.ORBIT, State.starting], Summary.TRANSITIONING),
        ([State.ORBIT, State.interrupting], Summary.TRANSITIONING),
        ([State.RUN, State.SAFE], Summary.ERROR),
        ([State.launching, State.ERROR], Summary.ERROR),
        ([State.INIT, State.DEAD], Summary.ERROR),
    ],
)
def test_summary_like_1_0_2(states: list[State], expected: Summary) -> None:
    assert summarize(states) is expected


def test_reply_raise_for_status() -> None:
    ok = Reply("Sputnik.A", VerbType.SUCCESS, "NEW", 0x10, {"last_changed": 1})
    assert ok.ok
    assert ok.raise_for_status() is ok
    bad = Reply("Sputnik.A", VerbType.INVALID, "Transition not allowed: Can't launch when in New.")
    with pytest.raises(CommandFailed, match=r"Sputnik.A: launch: INVALID: Transition not allowed"):
        bad.raise_for_status("launch")


def test_replies_collects_each_outcome() -> None:
    ok = Reply("Sputnik.A", VerbType.SUCCESS, "transitioning", "launch")
    timeout = CommandTimeout("Sputnik.B", "launch", "no reply")
    replies = Replies("launch", {"Sputnik.A": ok, "Sputnik.B": timeout})
    assert dict(replies) == {"Sputnik.A": ok, "Sputnik.B": timeout}
    assert not replies.ok
    assert replies.failed == {"Sputnik.B": timeout}
    with pytest.raises(CommandTimeout):
        replies.raise_for_status()
    assert Replies("launch", {"Sputnik.A": ok}).raise_for_status().ok


def test_public_api_is_exported() -> None:
    for name in ("Controller", "Reply", "Replies", "SatelliteInfo", "Summary", "CommandTimeout", "Liveness"):
        assert name in controllers.__all__
