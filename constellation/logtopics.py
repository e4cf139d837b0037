"""The CMDP log topic of a logger that names no `component` (module loggers: the runtime's own, a
satellite author's `logging.getLogger(__name__)`). Used by the CMDP handler, the fast path and the
console, so that a line shows the topic it goes out on. No imports: the console loads it at start-up."""

from __future__ import annotations

__all__ = ["RUNTIME_TOPICS", "logger_component", "topic_component"]

#: Loggers of the runtime itself -> the 1.0.2 topic of their layer: 1.0.2 logs its CHIRP manager and its
#: heartbeat checker on LINK, so our discovery and peer monitoring do too (a listener subscribed to
#: `LOG/WARNING/LINK` sees a peer's lost heartbeats from either).
RUNTIME_TOPICS: tuple[tuple[str, str], ...] = (
    ("constellation.discovery", "LINK"),
    ("constellation.peers", "LINK"),
    ("constellation.heartbeat", "LINK"),
    ("constellation.satellite", "CTRL"),
    ("constellation.command_server", "CTRL"),
    ("constellation.dispatch", "CTRL"),
    ("constellation.lifecycle", "FSM"),
    ("constellation.metrics", "MNTR"),
    ("constellation.monitoring", "MNTR"),
)
_components: dict[str, str] = {}


def logger_component(name: str) -> str:
    """The log topic of a logger without a `component`: its layer's for the runtime's own loggers
    (`RUNTIME_TOPICS`), else the last part of its name as the CMDP handler sends it (`satellites.sputnik`
    -> `SPUTNIK`, `vendor.psu-2` -> `PSU2`: `topic_component`), so the console shows that."""
    component = _components.get(name)
    if component is None:
        component = topic_component(name.rpartition(".")[2])
        for prefix, topic in RUNTIME_TOPICS:
            if name == prefix or name.startswith(prefix + "."):
                component = topic
                break
        if len(_components) >= 1024:
            _components.clear()
        _components[name] = component
    return component


def topic_component(component: str) -> str:
    """The CMDP topic part for a logger component: upper case, alphanumerics and `_` only."""
    return "".join(c for c in component.upper() if c.isalnum() or c == "_") or "LOG"
