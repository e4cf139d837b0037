"""Plan files: a WorkloadSpec-shaped JSON object whose timeline is checked (or derived) at the edge."""

from __future__ import annotations

from typing import Any

from console.errors import BadRequest
from console.simulate import derive_timeline
from protocols.console_api import AgentEvent

__all__ = ["validate_plan"]


def validate_plan(plan: dict[str, Any], job_fallback: str) -> list[dict[str, Any]]:
    """The timeline of a plan file: its own `events` (each a valid envelope) or one derived from it."""
    raw = plan.get("events")
    plan_data = plan.get("plan_data")
    if not isinstance(plan_data, dict):
        raise BadRequest("plan.plan_data must be an object")
    if raw is None:
        job_id = str(plan_data.get("job_id") or plan.get("plan_id") or job_fallback)
        raw = derive_timeline(plan_data, job_id)
    if not isinstance(raw, list):
        raise BadRequest("plan.events must be a list of event envelopes")
    for i, ev in enumerate(raw):
        try:
            AgentEvent.model_validate(ev)
        except ValueError as exc:
            raise BadRequest(f"plan.events[{i}] is not a valid event: {exc}") from None
    return raw
