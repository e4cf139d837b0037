"""The Console runtime behind the HTTP routes: engines, writer, auth cache, rate limits, simulator."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import TypeVar

import anyio.to_thread
from sqlalchemy import Connection, Engine, text

from console.db import make_engine, migrate
from console.errors import Forbidden, Unauthorized
from console.ops import KeyInfo, hash_key, lookup_key
from console.ratelimit import RateLimiter
from console.settings import Settings
from console.simulate import Simulator
from console.writer import Statement, Writer
from protocols.console_api import Capabilities, RateLimits

__all__ = ["Console"]

T = TypeVar("T")


class Console:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.write_engine: Engine = make_engine(
            settings.db_url, synchronous=settings.synchronous, pool_size=1, writer=True
        )
        self.read_engine: Engine = make_engine(
            settings.db_url, synchronous=settings.synchronous, pool_size=8, writer=False
        )
        self.writer = Writer(self.write_engine)
        self.postgres = self.write_engine.dialect.name == "postgresql"
        on = settings.rate_limits
        self.poll_limit = RateLimiter(
            "poll", 1, 1 / settings.poll_min_interval_s if on and settings.poll_min_interval_s > 0 else 0
        )
        self.event_limit = RateLimiter(
            "events", settings.events_per_minute, settings.events_per_minute / 60 if on else 0
        )
        self.telemetry_limit = RateLimiter(
            "telemetry",
            1,
            1 / settings.telemetry_min_interval_s if on and settings.telemetry_min_interval_s > 0 else 0,
        )
        self._keys: dict[str, tuple[float, KeyInfo | None]] = {}
        self._sim_task: asyncio.Task[None] | None = None
        self.schema_version = 0

    # --- lifecycle ---------------------------------------------------------------------------------

    async def start(self) -> None:
        self.schema_version = await anyio.to_thread.run_sync(migrate, self.write_engine)
        self.writer.start()
        sim = Simulator(self.read, self.write, tick_s=self.settings.sim_tick_s)
        self._sim_task = asyncio.create_task(sim.run(), name="console-simulator")

    async def aclose(self) -> None:
        if self._sim_task is not None:
            self._sim_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sim_task
            self._sim_task = None
        await anyio.to_thread.run_sync(self.writer.close)
        self.write_engine.dispose()
        self.read_engine.dispose()

    # --- database access -----------------------------------------------------------------------------

    async def write(self, fn: Callable[[Connection], T] | Statement[T]) -> T:
        return await self.writer.run(fn)

    async def read(self, fn: Callable[[Connection], T]) -> T:
        def run() -> T:
            with self.read_engine.begin() as conn:
                return fn(conn)

        return await anyio.to_thread.run_sync(run)

    async def ping(self) -> bool:
        await self.read(lambda c: c.execute(text("SELECT 1")).scalar_one())
        return True

    # --- auth ------------------------------------------------------------------------------------------

    async def authenticate(self, key: str | None, *, operator: bool = False) -> KeyInfo:
        """The key's record; 401 when missing, unknown or revoked, 403 for an agent key on operator routes.

        Lookups are cached for ``key_cache_s`` (by hash), so a revocation takes effect within that time.
        """
        if not key:
            raise Unauthorized("missing API key (X-API-Key header)")
        digest = hash_key(key)
        now = time.monotonic()
        cached = self._keys.get(digest)
        if cached is not None and now - cached[0] < self.settings.key_cache_s:
            info = cached[1]
        else:
            info = await self.read(lambda c: lookup_key(c, key))
            if len(self._keys) > 10_000:
                self._keys.clear()
            self._keys[digest] = (now, info)
        if info is None:
            raise Unauthorized("invalid API key")
        if info.revoked:
            raise Unauthorized("API key revoked")
        if operator and info.scope != "operator":
            raise Forbidden("this endpoint needs an operator key")
        return info

    def capabilities(self) -> Capabilities:
        s = self.settings
        return Capabilities(
            lease_seconds=s.lease_seconds,
            rate_limits=RateLimits(
                poll_min_interval_s=s.poll_min_interval_s if self.poll_limit.enabled else 0,
                events_per_minute=s.events_per_minute if self.event_limit.enabled else 0,
                telemetry_min_interval_s=s.telemetry_min_interval_s if self.telemetry_limit.enabled else 0,
            ),
        )
