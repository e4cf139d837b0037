"""Simulated deployments: the Console itself plays the event timeline at the chosen speed.

The timeline is the plan's precomputed CAE event list when the plan file carries one (``events``,
section 3.1); otherwise it is derived here from ``plan_data`` (segments, placements, transfer schedule;
section 3.2). Event *i* is due ``(t_i - t_0) / speed`` seconds after the deployment was created; each is
stored with ``event_id = "sim-<i>"`` and ``seq = i``, so a restart (or a second Console process on the
same database) resumes without duplicates. A timeline without a terminal event ends ``completed``.
"""

from __future__ import annotations

import asyncio
import bisect
import functools
import logging
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, select

from console.db import deployments
from console.errors import ConsoleError
from console.ingest import add_event
from console.queries import SimDeployment, active_simulations, load_timeline
from protocols.console_api import TERMINAL_STATUSES, AgentEvent

__all__ = ["Simulator", "derive_timeline", "offsets", "parse_time"]

log = logging.getLogger(__name__)

_FRACTION = re.compile(r"(\.\d{6})\d+")


def parse_time(value: object) -> datetime | None:
    """RFC 3339 to an aware datetime (nanoseconds truncated), or None."""
    if not isinstance(value, str):
        return None
    try:
        dt = datetime.fromisoformat(_FRACTION.sub(r"\1", value.replace("z", "Z")))
    except ValueError:
        return None
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=UTC)


def offsets(timeline: list[dict[str, Any]]) -> list[float]:
    """Seconds from the first event; unparseable timestamps keep the previous offset (no delay)."""
    result: list[float] = []
    first: datetime | None = None
    last = 0.0
    for ev in timeline:
        t = parse_time(ev.get("timestamp"))
        if t is not None and first is None:
            first = t
        if t is not None and first is not None:
            last = max(last, (t - first).total_seconds())
        result.append(last)
    return result


def _stamp(start: datetime, offset_s: float) -> str:
    return (start + timedelta(seconds=offset_s)).strftime("%Y-%m-%dT%H:%M:%SZ")


def derive_timeline(plan_data: Mapping[str, Any], job_id: str) -> list[dict[str, Any]]:
    """Event envelopes for a CAE plan (section 3.2 shapes) without a precomputed event list."""
    env = plan_data.get("orbital_environment") or {}
    start = parse_time(env.get("prediction_start")) or parse_time(plan_data.get("created_at"))
    start = start or datetime.now(UTC).replace(microsecond=0)
    job = plan_data.get("job") or plan_data.get("preset") or {}
    plan = plan_data.get("plan") or {}
    segments = sorted(plan.get("segments") or [], key=lambda s: (s.get("start_s", 0), s.get("seq", 0)))
    total = float(plan.get("total_duration_s") or 0)
    out: list[tuple[float, dict[str, Any]]] = []

    def emit(t: float, kind: str, step_id: str | None, payload: dict[str, Any]) -> None:
        ev: dict[str, Any] = {
            "type": kind,
            "timestamp": _stamp(start, t),
            "job_id": job_id,
            "payload": payload,
        }
        if step_id is not None:
            ev["step_id"] = step_id
        out.append((t, ev))

    steps = job.get("steps")
    emit(
        0,
        "job.accepted",
        None,
        {
            "preset": job.get("id", "custom"),
            "category": job.get("category"),
            "steps": len(steps) if isinstance(steps, list) else steps,
            "security": job.get("security", {}),
        },
    )
    for placement in plan_data.get("placement_decisions") or []:
        emit(
            0,
            "placement.decided",
            placement.get("step_id"),
            {"location": placement.get("location"), "reason": placement.get("reason")},
        )
    emit(
        0,
        "plan.created",
        None,
        {
            "segments": len(segments),
            "windows_used": plan.get("windows_used"),
            "total_duration_s": total,
        },
    )
    transfers = {t.get("id"): t for t in (plan_data.get("transfer_schedule") or {}).get("transfers") or []}
    passes = {p.get("id"): p for p in env.get("ground_passes") or []}
    last_of = {s.get("transfer_id") or s.get("step_id"): i for i, s in enumerate(segments)}
    seen: set[Any] = set()
    for i, seg in enumerate(segments):
        t0 = float(seg.get("start_s") or 0)
        dur = float(seg.get("duration_s") or 0)
        kind = seg.get("kind")
        if kind == "compute":
            sid = seg.get("step_id")
            loc = seg.get("location", "onboard")
            emit(t0, "step.started", sid, {"location": loc, "window": seg.get("window_id") or "ground"})
            if dur >= 60:
                for pct in (25, 50, 75):
                    emit(t0 + dur * pct / 100, "step.progress", sid, {"percent": pct})
            emit(t0 + dur, "step.completed", sid, {"duration_s": dur, "location": loc})
        elif kind in ("transfer", "pass"):
            tid = seg.get("transfer_id") or seg.get("step_id")
            spec = transfers.get(tid, {})
            if tid not in seen:
                seen.add(tid)
                emit(
                    t0,
                    "transfer.started",
                    tid,
                    {
                        "type": seg.get("direction") or spec.get("direction", "downlink"),
                        "raw_data_mb": spec.get("raw_data_mb"),
                        "total_transfer_mb": spec.get("total_transfer_mb"),
                        "fec_scheme": spec.get("fec_scheme"),
                    },
                )
            station = passes.get(seg.get("pass_id"), {})
            emit(
                t0,
                "transfer.pass_started",
                tid,
                {
                    "ground_station": station.get("station_id"),
                    "station_name": station.get("station_name"),
                    "elevation_peak_deg": station.get("max_elevation_deg"),
                },
            )
            emit(
                t0 + dur,
                "transfer.pass_completed",
                tid,
                {"data_transferred_mb": seg.get("data_mb"), "ground_station": station.get("station_id")},
            )
            if last_of.get(tid) == i:
                emit(
                    t0 + dur,
                    "transfer.completed",
                    tid,
                    {"total_transferred_mb": spec.get("total_transfer_mb"), "duration_s": t0 + dur},
                )
        elif kind == "isl_transfer":
            tid = seg.get("transfer_id")
            route = seg.get("route") or []
            common = {
                "transfer_id": tid,
                "from_satellite": seg.get("from_satellite"),
                "to_satellite": seg.get("to_satellite"),
                "data_mb": seg.get("data_mb"),
            }
            emit(
                t0,
                "isl_transfer.started",
                seg.get("step_id"),
                {
                    **common,
                    "src_satellite": seg.get("from_satellite"),
                    "dst_satellite": seg.get("to_satellite"),
                    "route": route,
                    "hops": max(len(route) - 1, 1),
                },
            )
            emit(
                t0 + dur,
                "isl_transfer.completed",
                seg.get("step_id"),
                {"transfer_id": tid, "total_time_s": dur, "total_data_mb": seg.get("data_mb")},
            )
    end = max([total, *(t for t, _ in out)])
    confidence = (plan_data.get("error_budget") or {}).get("delivery_confidence")
    emit(
        end,
        "job.completed",
        None,
        {"total_duration_s": end, "status": "success", "delivery_confidence": confidence},
    )
    out.sort(key=lambda item: item[0])  # stable: same-time events keep their causal order
    return [ev for _, ev in out]


def _emit(dep_id: str, timeline: list[dict[str, Any]], start: int, stop: int) -> Callable[[Connection], int]:
    def run(conn: Connection) -> int:
        row = conn.execute(select(deployments.c.status).where(deployments.c.id == dep_id)).first()
        if row is None or row.status in TERMINAL_STATUSES:
            return 0
        for i in range(start, stop):
            ev = AgentEvent.model_validate({**timeline[i], "event_id": f"sim-{i}", "seq": i})
            try:
                add_event(conn, dep_id, ev, agent_id=None, simulator=True)
            except ConsoleError:  # terminal event already stored (e.g. job.failed mid-timeline)
                return i - start
        if stop >= len(timeline):
            conn.execute(
                deployments.update()
                .where(deployments.c.id == dep_id)
                .where(deployments.c.status.not_in(TERMINAL_STATUSES))
                .values(status="completed", updated_at=time.time())
            )
        return stop - start

    return run


Runner = Callable[[Callable[[Connection], Any]], Awaitable[Any]]


class Simulator:
    """Periodically emits the due events of every active simulated deployment."""

    def __init__(self, read: Runner, write: Runner, *, tick_s: float = 0.05, idle_tick_s: float = 0.25):
        self._read = read
        self._write = write
        self._tick_s = tick_s
        self._idle_tick_s = idle_tick_s
        self._cache: dict[str, tuple[list[dict[str, Any]], list[float]]] = {}

    async def run(self) -> None:
        while True:
            try:
                active = await self.step()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("simulation tick failed")
                active = 0
            await asyncio.sleep(self._tick_s if active else self._idle_tick_s)

    async def step(self) -> int:
        sims: list[SimDeployment] = await self._read(active_simulations)
        live_ids = {s.id for s in sims}
        for stale in set(self._cache) - live_ids:
            del self._cache[stale]
        now = time.time()
        for sim in sims:
            if sim.id not in self._cache:
                timeline = await self._read(functools.partial(load_timeline, dep_id=sim.id))
                self._cache[sim.id] = (timeline, offsets(timeline))
            timeline, offs = self._cache[sim.id]
            due = bisect.bisect_right(offs, (now - sim.started_at) * sim.speed)
            if due > sim.emitted or (due >= len(timeline) and sim.emitted >= len(timeline)):
                await self._write(_emit(sim.id, timeline, sim.emitted, due))
        return len(sims)
