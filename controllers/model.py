"""Values the controller hands out: replies, satellite snapshots, the group summary. No I/O here."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from protocols import Role, State
from protocols.cscp import Message, VerbType

from .errors import CommandError, CommandFailed, ControllerError


@dataclass(frozen=True, slots=True)
class Reply:
    """A CSCP reply: verb ``type`` and ``text``, ``payload`` (None: no payload frame) and ``tags``."""

    sender: str
    type: VerbType
    text: str
    payload: Any = None
    tags: Mapping[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.type is VerbType.SUCCESS

    def raise_for_status(self, command: str = "") -> Reply:
        """Return ``self`` if SUCCESS, else raise :class:`CommandFailed`."""
        if not self.ok:
            raise CommandFailed(self, command)
        return self

    @classmethod
    def from_message(cls, msg: Message) -> Reply:
        return cls(msg.sender, VerbType(msg.verb_type), msg.verb, msg.payload, dict(msg.tags))


class Summary(Enum):
    """The state of a whole group, like 1.0.2's ``ctrl.state``."""

    EMPTY = "EMPTY"  # no satellites
    NEW = "NEW"
    INIT = "INIT"
    ORBIT = "ORBIT"
    RUN = "RUN"
    TRANSITIONING = "TRANSITIONING"
    ERROR = "ERROR"  # some satellite is ERROR, SAFE or lost (DEAD)


_FAILED = frozenset({State.ERROR, State.SAFE, State.DEAD})


def summarize(states: Iterable[State]) -> Summary:
    """ERROR if any is ERROR/SAFE/DEAD, else TRANSITIONING if any is transitional, else the lowest."""
    seen = list(states)
    if not seen:
        return Summary.EMPTY
    if any(s in _FAILED for s in seen):
        return Summary.ERROR
    if any(s.is_transitional for s in seen):
        return Summary.TRANSITIONING
    return Summary[min(seen).name]


@dataclass(frozen=True, slots=True)
class SatelliteInfo:
    """What the controller knows about one satellite, at one moment (a snapshot).

    ``state`` is DEAD while ``lost`` (heartbeats stopped or the connection dropped); ``state_at``
    is the monotonic time of the last state change we saw, ``last_seen`` that of the last heartbeat
    (None before the first one). ``outdated`` is True between a transition command's reply and the
    first state change reported after it was sent.
    """

    name: str
    host_id: bytes
    control: str  # tcp endpoint of the command socket
    heartbeat: str | None  # tcp endpoint of the heartbeat socket, once offered
    state: State
    role: Role
    interval_ms: int
    status: str | None
    last_seen: float | None
    state_at: float
    lost: bool
    outdated: bool
    commands: Mapping[str, str] = field(repr=False)

    @property
    def type(self) -> str:
        return self.name.partition(".")[0]


Outcome = Reply | CommandError


class Replies(Mapping[str, Outcome]):
    """Result of a broadcast: canonical name -> :class:`Reply`, or the :class:`CommandError` it raised."""

    def __init__(self, command: str, outcomes: Mapping[str, Outcome]) -> None:
        self.command = command
        self._outcomes = dict(outcomes)

    def __getitem__(self, key: str) -> Outcome:
        return self._outcomes[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._outcomes)

    def __len__(self) -> int:
        return len(self._outcomes)

    def __repr__(self) -> str:
        return f"Replies({self.command!r}, {self._outcomes!r})"

    @property
    def ok(self) -> bool:
        """Every target answered SUCCESS."""
        return all(isinstance(o, Reply) and o.ok for o in self._outcomes.values())

    @property
    def failed(self) -> dict[str, Outcome]:
        return {k: o for k, o in self._outcomes.items() if not (isinstance(o, Reply) and o.ok)}

    def raise_for_status(self) -> Replies:
        """Return ``self`` if every target answered SUCCESS, else raise for the first failure."""
        for outcome in self._outcomes.values():
            if isinstance(outcome, ControllerError):
                raise outcome
            outcome.raise_for_status(self.command)
        return self
