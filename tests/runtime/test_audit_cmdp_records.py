"""CMDP audit: the framework's own log records that a 1.0.2 Monitor shows for a state change.

1.0.2 (observed with a 1.0.2 satellite on `LOG/STATUS`, `LOG/INFO`; source `core/fsm.py` and
`core/satellite.py`):

- every transition command, `_failure` included, logs `State transition <event> initiated` (STATUS, FSM);
- `start` logs `Starting run '<id>'` at INFO on CTRL (its `log_satellite` is the `CTRL` logger).
"""

from __future__ import annotations

import pytest

from constellation import Satellite
from protocols import cmdp
from tests.runtime.conftest import drive_to_run, monitor_sub, wait_state

pytestmark = pytest.mark.timeout(60)


def _record(level: cmdp.Level, topic: str, text: str):
    def match(m: object) -> bool:
        return isinstance(m, cmdp.LogMessage) and (m.level, m.topic, m.text) == (level, topic, text)

    return match


async def test_failure_command_logs_initiated_like_every_transition(
    make_satellite, client, zctx, debug_logging
) -> None:
    sat = await make_satellite()
    sub = await monitor_sub(zctx, sat, b"LOG/STATUS/FSM")
    cl = client(sat)
    await cl("initialize", {})
    await sub.until(_record(cmdp.Level.STATUS, "FSM", "State transition initialize initiated"))
    await wait_state(cl, "INIT")
    assert (await cl("_failure")).verb == "transitioning"
    await wait_state(cl, "ERROR")
    await sub.until(_record(cmdp.Level.STATUS, "FSM", "State transition failure initiated"), timeout=3)


async def test_starting_a_run_is_logged_on_ctrl(make_satellite, client, zctx, debug_logging) -> None:
    sat = await make_satellite()
    sub = await monitor_sub(zctx, sat, b"LOG/INFO")
    await drive_to_run(client(sat), "r7")
    msg = await sub.until(lambda m: isinstance(m, cmdp.LogMessage) and m.text == "Starting run 'r7'")
    assert (msg.level, msg.topic) == (cmdp.Level.INFO, "CTRL")


class Broken(Satellite):
    def do_initializing(self, config: object) -> str:
        raise ValueError("boom")


async def test_failing_hook_record_is_on_the_satellites_topic_with_its_traceback(
    make_satellite, client, zctx, debug_logging
) -> None:
    sat = await make_satellite(Broken)
    sub = await monitor_sub(zctx, sat, b"LOG/CRITICAL")
    cl = client(sat)
    await cl("initialize", {})
    msg = await sub.until(lambda m: isinstance(m, cmdp.LogMessage) and "boom" in m.text)
    assert msg.text == "ValueError in _wrap_initialize: boom"
    assert msg.tags["traceback"].endswith("ValueError: boom")
    assert msg.topic == "BROKEN"


async def test_discovery_and_peer_monitoring_log_on_link_like_1_0_2(
    make_satellite, zctx, debug_logging
) -> None:
    """1.0.2 logs its CHIRP manager and heartbeat checker on LINK (`get_logger("LINK")`): a listener
    subscribed to `LOG/WARNING/LINK` sees lost peers and discovery trouble. Ours come from module
    loggers (`constellation.discovery.chirp`, `constellation.peers.monitor`, ...), not CHIRP/MONITOR."""
    from constellation.discovery import chirp, dnssd, service
    from constellation.peers import monitor, watcher

    sat = await make_satellite()
    sub = await monitor_sub(zctx, sat, b"LOG/DEBUG/LINK", b"LOG/WARNING/LINK", b"LOG?")
    note = await sub.until(lambda m: isinstance(m, cmdp.Notification))
    for module in (chirp, dnssd, service, monitor, watcher):
        module.log.debug("from %s", module.__name__)
        msg = await sub.until(
            lambda m, name=module.__name__: isinstance(m, cmdp.LogMessage) and name in m.text
        )
        assert (msg.level, msg.topic) == (cmdp.Level.DEBUG, "LINK"), module.__name__
    monitor.log.warning("peer table full")
    msg = await sub.until(lambda m: isinstance(m, cmdp.LogMessage) and m.text == "peer table full")
    assert (msg.level, msg.topic) == (cmdp.Level.WARNING, "LINK")
    # every topic our runtime logs on is announced, in 1.0.2's order
    assert list(note.topics) == [sat.type_name.upper(), "LINK", "FSM", "CTRL", "MNTR"]
