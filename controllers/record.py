"""The controller's mutable record of one attached satellite; the API hands out SatelliteInfo snapshots."""

from __future__ import annotations

import logging
import time

from protocols import Role, State
from protocols.chp import Heartbeat

from .heartbeats import INITIAL_INTERVAL_MS, HeartbeatWatch
from .link import CommandLink
from .model import SatelliteInfo

log = logging.getLogger(__name__)


class SatelliteRecord:
    """What the heartbeats and the command replies told us about one satellite (internal)."""

    def __init__(self, name: str, host_id: bytes, link: CommandLink, state: State, commands: dict[str, str]):
        self.name = name
        self.host_id = host_id
        self.link = link
        self.watch: HeartbeatWatch | None = None
        self.state = state
        self.role = Role.DYNAMIC  # 1.0.2's assumption until the first heartbeat
        self.interval_ms = INITIAL_INTERVAL_MS
        self.status: str | None = None
        self.last_seen: float | None = None
        self.state_at = time.monotonic()
        self.state_seq = 0  # bumped on every state change we see
        self.lost = False
        self.leaving = False  # acknowledged a shutdown command
        self.outdated = False  # a transition was acknowledged, no state change seen since it was sent
        self.commands = commands

    def apply(self, hb: Heartbeat) -> bool:
        """Take in a heartbeat; False if it is not from this satellite (then nothing changes)."""
        if hb.sender.lower() != self.name.lower():
            log.debug("%s: heartbeat from %r ignored", self.name, hb.sender)
            return False
        now = time.monotonic()
        changed = hb.state is not self.state or self.lost
        self.last_seen = now
        self.lost = False
        self.interval_ms = hb.interval_ms
        self.role = hb.role
        if hb.status is not None:
            self.status = hb.status
        if changed:
            self.state = hb.state
            self.state_at = now
            self.state_seq += 1
            self.outdated = False
        return True

    def mark_lost(self) -> None:
        self.lost = True
        self.state_at = time.monotonic()
        self.state_seq += 1
        self.outdated = False

    def snapshot(self) -> SatelliteInfo:
        return SatelliteInfo(
            name=self.name,
            host_id=self.host_id,
            control=self.link.endpoint,
            heartbeat=self.watch.endpoint if self.watch else None,
            state=State.DEAD if self.lost else self.state,
            role=self.role,
            interval_ms=self.interval_ms,
            status=self.status,
            last_seen=self.last_seen,
            state_at=self.state_at,
            lost=self.lost,
            outdated=self.outdated,
            commands=dict(self.commands),
        )
