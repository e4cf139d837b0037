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
    - ``zmtp_pings_per_s``: budget of ZMTP PINGs per second for the whole monitor (0 = no budget). A
      new subscription gets ``max(zmtp_ivl_ms, 1000 × peers / budget)``: 250 ms up to 32 peers, then
      longer (64 peers: 500 ms, 128: 1 s), since every PING and PONG wakes libzmq's I/O thread on
      both sides and a group of N satellites has N × (N − 1) subscriptions.
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
        if self.max_peers < 1:
            raise ValueError(f"max_peers must be >= 1, got {self.max_peers}")

    def zmtp_timeout_for(self, ivl_ms: int) -> int:
        """ZMTP timeout (ms) for a subscription PINGing every ``ivl_ms``: ``zmtp_timeout_ms``, but at
        least 3 PING intervals (only longer than 1000 ms beyond 32 peers, where the budget lengthens
        the interval): 128 satellites starting on 2 cores lost peers to 1 s timeouts."""
        return max(self.zmtp_timeout_ms, 3 * ivl_ms) if self.zmtp_timeout_ms else 3 * ivl_ms

    def zmtp_ivl_for(self, peers: int) -> int:
        """ZMTP PING interval (ms) for a new subscription when ``peers`` are watched (0: off)."""
        if not self.zmtp_ivl_ms or not self.zmtp_pings_per_s:
            return self.zmtp_ivl_ms
        return max(self.zmtp_ivl_ms, math.ceil(1000 * max(peers, 1) / self.zmtp_pings_per_s))
