"""The FSM table against the 1.0.2 transition list (wire doc §3.2), written out independently here."""

from __future__ import annotations

import itertools

import pytest

from constellation import TRANSITIONS, Event, TransitionNotAllowed, next_state
from protocols import State

S = State
ALLOWED = {
    ("initialize", "NEW"): "initializing",
    ("initialize", "INIT"): "initializing",
    ("initialize", "SAFE"): "initializing",
    ("initialize", "ERROR"): "initializing",
    ("launch", "INIT"): "launching",
    ("land", "ORBIT"): "landing",
    ("reconfigure", "ORBIT"): "reconfiguring",
    ("start", "ORBIT"): "starting",
    ("stop", "RUN"): "stopping",
    ("interrupt", "ORBIT"): "interrupting",
    ("interrupt", "RUN"): "interrupting",
}
LIVE_STATES = [s for s in State if s is not State.DEAD]


@pytest.mark.parametrize(("event", "state"), list(itertools.product(list(Event), LIVE_STATES)))
def test_every_pair(event: Event, state: State) -> None:
    if event is Event.FAILURE:
        assert next_state(state, event) is State.ERROR  # failure from every state, ERROR -> ERROR too
        return
    expected = ALLOWED.get((event.value, state.name))
    if expected is None:
        with pytest.raises(TransitionNotAllowed) as err:
            next_state(state, event)
        assert str(err.value) == f"Can't {event.value} when in {state.name.capitalize()}."
    else:
        assert next_state(state, event) is State[expected]


def test_table_has_nothing_else() -> None:
    extra = {(e.value, s.name) for (s, e) in TRANSITIONS if e is not Event.FAILURE} - set(ALLOWED)
    assert not extra


def test_transitional_states_complete_to_their_targets() -> None:
    for (_, _), via in TRANSITIONS.items():
        if via.is_transitional:
            assert via.target in (S.INIT, S.ORBIT, S.RUN, S.SAFE)


def test_messages_match_python_statemachine_spelling() -> None:
    with pytest.raises(TransitionNotAllowed, match=r"^Can't launch when in Safe\.$"):
        next_state(State.SAFE, Event.LAUNCH)
    with pytest.raises(TransitionNotAllowed, match=r"^Can't initialize when in Initializing\.$"):
        next_state(State.initializing, Event.INITIALIZE)
