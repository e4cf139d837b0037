"""Tunables of the peer monitor (every one an argument, so tests can pass tiny values)."""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["MonitorSettings"]


@dataclass(frozen=True, slots=True)
class MonitorSettings:
    """Failure-detection parameters; the defaults meet issue 4 (kill ≤ 1 s, freeze/cut ≤ 2 s).

    - ``lives``, ``life_factor``, ``initial_interval_ms``: 1.0.2's lives counter (3 lives, one per
      1.5 × the announced interval; 2000 ms assumed before the first heartbeat).
    - ``first_beat_max_ms``: cap of the allowance before the first heartbeat of a peer whose
      subscription is connected (the monitor derives it from the group size with 1.0.2's interval
      formula; 30000 is 1.0.2's default maximum interval). A peer that never connects is judged
      with ``initial_interval_ms`` from the subscription on.
    - ``min_interval_ms``: floor for the interval used by the lives counter (an announced 0 would
      otherwise kill a peer instantly).
    - ``zmtp_ivl_ms`` / ``zmtp_timeout_ms`` / ``zmtp_ttl_ms``: ZMTP PING interval and timeout on each
      subscription (libzmq ``ZMQ_HEARTBEAT_IVL``/``_TIMEOUT``/``_TTL``); a frozen peer or a cut link
      drops the connection after about ``zmtp_timeout_ms``. ``zmtp_ttl_ms`` (0 = not sent) asks the
      publisher to drop *our* subscription if we go silent.
    - ``zmtp_pings_per_s`` / ``zmtp_full_rate_peers``: budget of ZMTP PINGs per second for the whole
      monitor (0 = no budget), shrinking in proportion beyond ``zmtp_full_rate_peers`` peers so that a
      whole group sends about ``(zmtp_full_rate_peers + 1) × budget`` PINGs per second however large
      it grows: every PING and PONG wakes libzmq's I/O thread on both sides (~20 µs of CPU each), and
      a group of N satellites has N × (N − 1) subscriptions. A subscription PINGs every
      ``max(zmtp_ivl_ms, 1000 × peers / budget)``: 250 ms up to 32 peers, then growing with the
      square of the group (64 peers: 1 s, 128: 4 s, 192: 9 s).
    - ``zmtp_retune_factor`` / ``zmtp_retunes_per_s``: libzmq fixes the PING interval when a
      subscription connects, so when the group has grown or shrunk until the interval a subscription
      should have differs from its own by this factor, the monitor replaces it (new socket first, the
      old one closed a moment later: no heartbeat is missed), at most ``zmtp_retunes_per_s`` per
      second (0 = never).
    - ``disconnect_grace_s``: after a disconnect, how long a DEPART, a replacement offer or a
      re-handshake may still turn the disconnect into something other than a loss.
    - ``reconnect_ivl_ms`` / ``reconnect_ivl_max_ms``: libzmq reconnect back-off for lost peers.
    - ``max_peers``: bound of the peer table (new peers beyond it are dropped and counted).
    """

    lives: int = 3
    life_factor: float = 1.5
    initial_interval_ms: int = 2000
    first_beat_max_ms: int = 30000
    min_interval_ms: int = 100
    zmtp_ivl_ms: int = 250
    zmtp_timeout_ms: int = 1000
    zmtp_ttl_ms: int = 0
    zmtp_pings_per_s: float = 128.0
    zmtp_full_rate_peers: int = 32
    zmtp_retune_factor: float = 3.0
    zmtp_retunes_per_s: float = 20.0
    disconnect_grace_s: float = 0.3
    reconnect_ivl_ms: int = 100
    reconnect_ivl_max_ms: int = 2000
    max_peers: int = 1024

    def __post_init__(self) -> None:
        if self.lives < 1:
            raise ValueError(f"lives must be >= 1, got {self.lives}")
        if self.life_factor <= 0:
            raise ValueError(f"life_factor must be > 0, got {self.life_factor}")
        if self.zmtp_ivl_ms < 0 or self.zmtp_timeout_ms < 0 or self.zmtp_ttl_ms < 0:
            raise ValueError("ZMTP heartbeat options must be >= 0 ms (0 disables)")
        if self.disconnect_grace_s < 0:
            raise ValueError(f"disconnect_grace_s must be >= 0, got {self.disconnect_grace_s}")
        if self.zmtp_pings_per_s < 0:
            raise ValueError(f"zmtp_pings_per_s must be >= 0, got {self.zmtp_pings_per_s}")
        if self.zmtp_full_rate_peers < 0 or self.zmtp_retunes_per_s < 0:
            raise ValueError("zmtp_full_rate_peers and zmtp_retunes_per_s must be >= 0")
        if self.zmtp_retune_factor and self.zmtp_retune_factor <= 1:
            raise ValueError(f"zmtp_retune_factor must be > 1 (or 0: never), got {self.zmtp_retune_factor}")
        if self.max_peers < 1:
            raise ValueError(f"max_peers must be >= 1, got {self.max_peers}")

    def zmtp_timeout_for(self, ivl_ms: int) -> int:
        """ZMTP timeout (ms) for a subscription PINGing every ``ivl_ms``: ``zmtp_timeout_ms``, but at
        least 3 PING intervals (only longer than 1000 ms beyond 32 peers, where the budget lengthens
        the interval): 128 satellites starting on 2 cores lost peers to 1 s timeouts."""
        return max(self.zmtp_timeout_ms, 3 * ivl_ms) if self.zmtp_timeout_ms else 3 * ivl_ms

    def zmtp_ivl_for(self, peers: int) -> int:
        """ZMTP PING interval (ms) for a subscription when ``peers`` are watched (0: off)."""
        if not self.zmtp_ivl_ms or not self.zmtp_pings_per_s:
            return self.zmtp_ivl_ms
        peers = max(peers, 1)
        rate = self.zmtp_pings_per_s
        if self.zmtp_full_rate_peers and peers > self.zmtp_full_rate_peers:
            rate *= self.zmtp_full_rate_peers / peers
        return max(self.zmtp_ivl_ms, math.ceil(1000 * peers / rate))

    def zmtp_retune_to(self, ivl_ms: int, peers: int) -> int | None:
        """The interval a subscription PINGing every ``ivl_ms`` should be rebuilt with now that
        ``peers`` are watched, or None while it is within ``zmtp_retune_factor`` of it."""
        if not ivl_ms or not self.zmtp_retune_factor or not self.zmtp_retunes_per_s:
            return None
        want = self.zmtp_ivl_for(peers)
        if want >= self.zmtp_retune_factor * ivl_ms or want * self.zmtp_retune_factor <= ivl_ms:
            return want
        return None
