"""The reaction policy, exhaustively: every role x event x local state against issue 4's rules."""

from __future__ import annotations

import itertools
import logging

import pytest

from constellation.peers import Effect, EventKind, PeerEvent, PeerReactor, Reactions, decide
from protocols import Role, State

K = EventKind
INTERRUPTING_ROLES = {Role.ESSENTIAL, Role.DYNAMIC}
HEADING_TO_ORBIT_OR_RUN = {State.launching, State.reconfiguring, State.starting, State.stopping}


def expected(role: Role, kind: EventKind, local: State) -> set[Effect]:
    """Issue 4, written independently of the table."""
    wants_interrupt = (role in INTERRUPTING_ROLES and kind in (K.ERROR_STATE, K.SAFE_STATE, K.LOST)) or (
        role is Role.ESSENTIAL and kind is K.DEPARTED
    )
    out: set[Effect] = set()
    if wants_interrupt and local in (State.ORBIT, State.RUN):
        out.add(Effect.INTERRUPT)
    if wants_interrupt and local in HEADING_TO_ORBIT_OR_RUN:
        out.add(Effect.INTERRUPT_WHEN_STEADY)
    if role is not Role.NONE and kind.is_failure and local in (State.starting, State.RUN):
        out.add(Effect.MARK_DEGRADED)
    if kind in (K.ERROR_STATE, K.SAFE_STATE, K.LOST) or (kind is K.DEPARTED and role is Role.ESSENTIAL):
        out.add(Effect.LOG_WARNING)
    elif kind in (K.DEPARTED, K.REPLACED, K.RECOVERED):
        out.add(Effect.LOG_INFO)
    return out


@pytest.mark.parametrize(
    ("role", "kind", "local"), list(itertools.product(Role, EventKind, State)), ids=lambda v: v.name
)
def test_every_cell(role: Role, kind: EventKind, local: State) -> None:
    assert set(decide(role, kind, local).effects) == expected(role, kind, local)


def test_spot_checks_in_words() -> None:
    # ESSENTIAL departure in ORBIT interrupts; DYNAMIC departure is only logged
    assert decide(Role.ESSENTIAL, K.DEPARTED, State.ORBIT).interrupt
    r = decide(Role.DYNAMIC, K.DEPARTED, State.ORBIT)
    assert not r.interrupt
    assert r.log_level == logging.INFO
    # TRANSIENT silence in RUN: warning and degraded, no interrupt
    r = decide(Role.TRANSIENT, K.LOST, State.RUN)
    assert (r.interrupt, r.mark_degraded, r.log_level) == (False, True, logging.WARNING)
    # NONE never touches run metadata
    assert not any(decide(Role.NONE, k, State.RUN).mark_degraded for k in EventKind)
    # no interrupt from INIT, SAFE or ERROR
    for local in (State.NEW, State.INIT, State.SAFE, State.ERROR, State.interrupting):
        assert not decide(Role.ESSENTIAL, K.LOST, local).interrupt
        assert not decide(Role.ESSENTIAL, K.LOST, local).interrupt_when_steady


def test_latch_once_per_peer_until_recovered() -> None:
    r = PeerReactor()
    assert r.react("Sat.A", Role.DYNAMIC, K.ERROR_STATE, State.RUN).interrupt
    # still failed: neither SAFE, LOST nor DEPARTED act again
    for kind in (K.SAFE_STATE, K.LOST, K.DEPARTED, K.ERROR_STATE):
        assert r.react("sat.a", Role.DYNAMIC, kind, State.RUN).effects == frozenset()
    # another peer is independent
    assert r.react("Sat.B", Role.DYNAMIC, K.LOST, State.RUN).interrupt
    assert set(r.failed()) == {"sat.a", "sat.b"}
    # recovery clears the latch (and is logged)
    assert r.react("Sat.A", Role.DYNAMIC, K.RECOVERED, State.RUN).log_level == logging.INFO
    assert r.react("Sat.A", Role.DYNAMIC, K.LOST, State.RUN).interrupt
    # a replacement (restart under the same name) clears it too
    r.react("Sat.B", Role.DYNAMIC, K.REPLACED, State.ORBIT)
    assert r.react("Sat.B", Role.DYNAMIC, K.ERROR_STATE, State.ORBIT).interrupt


def test_latch_is_set_even_when_no_action_was_possible() -> None:
    """1.0.2: a peer that failed while we were in INIT does not interrupt us later in ORBIT."""
    r = PeerReactor()
    assert not r.react("Sat.A", Role.ESSENTIAL, K.ERROR_STATE, State.INIT).interrupt
    assert not r.react("Sat.A", Role.ESSENTIAL, K.ERROR_STATE, State.ORBIT).interrupt


def test_latch_is_bounded() -> None:
    r = PeerReactor(max_peers=3)
    for i in range(10):
        r.react(f"Sat.P{i}", Role.DYNAMIC, K.LOST, State.RUN)
    assert len(r.failed()) == 3
    assert r.react("Sat.P0", Role.DYNAMIC, K.LOST, State.RUN).interrupt  # forgotten, acts again


def _event(kind: EventKind, role: Role = Role.ESSENTIAL, name: str = "Sat.A") -> PeerEvent:
    return PeerEvent(name, role, kind, "why", State.DEAD, 0.0)


def test_reactions_apply_effects(caplog: pytest.LogCaptureFixture) -> None:
    local = [State.RUN]
    calls: list[tuple[str, str]] = []
    reactions = Reactions(
        local_state=lambda: local[0],
        interrupt=lambda why: calls.append(("interrupt", why)),
        mark_degraded=lambda why: calls.append(("degraded", why)),
    )
    with caplog.at_level(logging.INFO, logger="constellation.peers.reactions"):
        reactions(_event(K.LOST))
        reactions(_event(K.LOST))  # latched
    assert [c[0] for c in calls] == ["degraded", "interrupt"]
    assert calls[0][1] == "Sat.A (ESSENTIAL) lost: why"
    assert [r.levelno for r in caplog.records] == [logging.WARNING]
    # TRANSIENT in RUN: degraded only
    calls.clear()
    reactions(_event(K.ERROR_STATE, Role.TRANSIENT, "Sat.T"))
    assert [c[0] for c in calls] == ["degraded"]


def test_reactions_defer_interrupt_until_steady() -> None:
    local = [State.starting]
    calls: list[str] = []
    reactions = Reactions(
        local_state=lambda: local[0], interrupt=calls.append, mark_degraded=lambda why: None
    )
    reactions(_event(K.ERROR_STATE, Role.DYNAMIC))
    assert calls == []
    assert reactions.deferred is not None
    reactions.on_steady(State.RUN)
    assert calls == ["Sat.A (DYNAMIC) error state: why"]
    assert reactions.deferred is None
    # a deferred interrupt is dropped if the transition ends outside ORBIT/RUN
    local[0] = State.launching
    reactions(_event(K.LOST, Role.DYNAMIC, "Sat.B"))
    reactions.on_steady(State.ERROR)
    assert len(calls) == 1


def test_reactions_can_leave_deferral_to_the_satellite() -> None:
    calls: list[str] = []
    reactions = Reactions(
        local_state=lambda: State.starting,
        interrupt=calls.append,
        mark_degraded=lambda why: None,
        interrupt_defers=True,
    )
    reactions(_event(K.LOST, Role.DYNAMIC))
    assert calls == ["Sat.A (DYNAMIC) lost: why"]
    assert reactions.deferred is None
    # never from a state that does not head to ORBIT/RUN
    reactions2 = Reactions(
        local_state=lambda: State.landing,
        interrupt=calls.append,
        mark_degraded=lambda why: None,
        interrupt_defers=True,
    )
    reactions2(_event(K.LOST, Role.DYNAMIC, "Sat.B"))
    assert len(calls) == 1
