"""Token buckets keyed by agent or deployment, bounded in size, with an injectable clock."""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from console.errors import RateLimited

__all__ = ["Bucket", "RateLimiter"]


@dataclass(slots=True)
class Bucket:
    tokens: float
    stamp: float


class RateLimiter:
    """``capacity`` tokens refilled at ``rate`` per second; ``rate <= 0`` disables the limit.

    Used only from the event loop thread. At most ``max_keys`` buckets are kept (least recently
    used dropped first), so a stream of made-up ids cannot grow memory without bound.
    """

    def __init__(
        self,
        name: str,
        capacity: float,
        rate: float,
        *,
        max_keys: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self.capacity = capacity
        self.rate = rate
        self._max_keys = max_keys
        self._clock = clock
        self._buckets: OrderedDict[str, Bucket] = OrderedDict()

    @property
    def enabled(self) -> bool:
        return self.rate > 0 and self.capacity > 0

    def take(self, key: str, cost: float = 1.0) -> None:
        """Spend ``cost`` tokens or raise :class:`RateLimited` with the wait in seconds."""
        if not self.enabled:
            return
        now = self._clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = Bucket(self.capacity, now)
            self._buckets[key] = bucket
            if len(self._buckets) > self._max_keys:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
            bucket.tokens = min(self.capacity, bucket.tokens + (now - bucket.stamp) * self.rate)
            bucket.stamp = now
        cost = min(cost, self.capacity)
        if bucket.tokens + 1e-9 < cost:
            wait = (cost - bucket.tokens) / self.rate
            raise RateLimited(f"rate limited: {self.name}; retry after {math.ceil(wait)} s", wait)
        bucket.tokens -= cost
