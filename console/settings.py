"""Server settings (from the CLI), with the published defaults."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from console.db import Synchronous

__all__ = ["Settings", "db_url_from"]


def db_url_from(db: str | None, db_url: str | None) -> str:
    if db_url:
        return db_url
    return f"sqlite:///{Path(db or 'console.db').resolve()}"


@dataclass(frozen=True, slots=True)
class Settings:
    db_url: str
    lease_seconds: float = 300.0
    rate_limits: bool = True
    poll_min_interval_s: float = 10.0
    events_per_minute: float = 100.0
    telemetry_min_interval_s: float = 30.0
    max_body_bytes: int = 1 << 20
    key_cache_s: float = 1.0
    synchronous: Synchronous = "full"
    sim_tick_s: float = 0.05
