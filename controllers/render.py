"""Rich renderings of controller snapshots. Pure functions of values: no sockets, no controller calls."""

from __future__ import annotations

import time
from collections.abc import Mapping

from rich.table import Table
from rich.text import Text

from protocols import State

from .model import SatelliteInfo, Summary, summarize

_STYLE = {
    State.NEW: "white",
    State.INIT: "cyan",
    State.ORBIT: "blue",
    State.RUN: "green",
    State.SAFE: "yellow",
    State.ERROR: "bold red",
    State.DEAD: "bold red",
}


def state_text(state: State) -> Text:
    style = _STYLE.get(state, "magenta" if state.is_transitional else "")
    return Text(state.name, style=style)


def satellites_table(
    satellites: Mapping[str, SatelliteInfo], *, title: str | None = None, now: float | None = None
) -> Table:
    """One row per satellite: name, state, role, heartbeat interval and age, status."""
    now = time.monotonic() if now is None else now
    summary = summarize(i.state for i in satellites.values())
    caption = f"group state: {summary.value}" if summary is not Summary.EMPTY else "no satellites"
    table = Table(title=title, caption=caption, title_justify="left", caption_justify="left")
    table.add_column("satellite", style="bold")
    table.add_column("state")
    table.add_column("role")
    table.add_column("interval", justify="right")
    table.add_column("last beat", justify="right")
    table.add_column("status", overflow="fold")
    for name, info in sorted(satellites.items(), key=lambda kv: kv[0].lower()):
        age = "-" if info.last_seen is None else f"{max(0.0, now - info.last_seen):.1f} s ago"
        table.add_row(
            name,
            state_text(info.state),
            info.role.name,
            f"{info.interval_ms} ms",
            age,
            info.status or "",
        )
    return table
