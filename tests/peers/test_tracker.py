"""PeerTracker, sans-I/O: lives, grace after a disconnect, state events, with an explicit clock."""

from __future__ import annotations

import math

import pytest

from constellation.peers import EventKind, MonitorSettings, PeerTracker
from protocols import HeartbeatFlags, Role, State
from protocols.chp import Heartbeat

K = EventKind
S = MonitorSettings(disconnect_grace_s=0.3)


def tracker(now: float = 0.0, settings: MonitorSettings = S) -> PeerTracker:
    return PeerTracker(b"\x00" * 16, "tcp://127.0.0.1:1", None, settings, now)


def hb(
    state: State = State.ORBIT, interval: int = 1000, role: Role = Role.DYNAMIC, status: str | None = None
):
    return Heartbeat("Sat.A", state, role.flags, interval, status)


def kinds(verdicts) -> list[EventKind]:
    return [k for k, _ in verdicts]


def test_before_first_heartbeat_assumes_1_0_2_defaults() -> None:
    t = tracker()
    assert (t.state, t.role, t.lives, t.interval_ms) == (State.DEAD, Role.DYNAMIC, 3, 2000)
    assert t.deadline() == 3.0  # 1.5 x 2000 ms
    assert kinds(t.on_tick(3.0)) == []
    assert kinds(t.on_tick(6.0)) == []
    assert kinds(t.on_tick(9.0)) == [K.LOST]


def test_never_connected_peer_is_judged_from_the_subscription() -> None:
    t = tracker(now=10.0)
    t.first_beat_interval_ms = 20000  # only for a connected peer
    assert kinds(t.on_tick(13.0)) == []
    assert kinds(t.on_tick(16.0)) == []
    (verdict,) = t.on_tick(19.0)
    assert verdict[0] is K.LOST
    assert verdict[1] == "no heartbeat in 9.0 s since subscribing (3 lives at 2000 ms)"


def test_connected_peer_gets_the_first_beat_allowance_from_the_handshake() -> None:
    t = tracker()
    t.first_beat_interval_ms = 20000
    assert t.on_tick(1.0) == []
    t.on_handshake(1.0)
    assert (t.lives, t.deadline()) == (3, 1.0 + 30.0)  # 1.5 x 20000 ms from the handshake
    assert t.on_tick(9.5) == []  # 1.0.2's 2000 ms assumption would have lost it here
    assert t.on_tick(31.0) == []
    assert t.on_tick(61.0) == []
    (verdict,) = t.on_tick(91.0)  # a hung application is still judged by its lives
    assert verdict == (K.LOST, "no heartbeat in 91.0 s since subscribing (3 lives at 20000 ms)")


def test_first_beat_allowance_ends_with_the_first_beat_and_the_first_handshake() -> None:
    t = tracker()
    t.first_beat_interval_ms = 20000
    t.on_handshake(0.5)
    t.on_tick(30.5)  # one life gone under the allowance
    t.on_disconnected(31.0)
    t.on_handshake(31.1)  # a later handshake does not restore the lives
    assert (t.lives, t.deadline()) == (2, 30.5 + 30.0)
    t.on_heartbeat(hb(interval=1000), 32.0)
    assert (t.lives, t.deadline()) == (3, 32.0 + 1.5)  # now judged by the announced interval


def test_lives_one_per_expiry_then_lost() -> None:
    t = tracker()
    assert kinds(t.on_heartbeat(hb(), 0.0)) == [K.STATE_CHANGED]
    assert t.name == "Sat.A"
    assert t.on_tick(1.49) == []
    assert t.lives == 3
    assert t.on_tick(1.5) == []
    assert t.lives == 2
    assert t.deadline() == 3.0
    assert t.on_tick(3.0) == []
    assert t.lives == 1
    (verdict,) = t.on_tick(4.5)
    assert verdict[0] is K.LOST
    assert "no heartbeat for 4.5 s" in verdict[1]
    assert t.state is State.DEAD
    assert t.deadline() == math.inf
    assert t.on_tick(100.0) == []  # lost once


def test_heartbeat_restores_lives() -> None:
    t = tracker()
    t.on_heartbeat(hb(), 0.0)
    t.on_tick(1.5)
    t.on_tick(3.0)
    assert t.lives == 1
    assert t.on_heartbeat(hb(), 3.1) == []
    assert t.lives == 3
    assert t.deadline() == 3.1 + 1.5


def test_a_stalled_loop_costs_one_life_not_all() -> None:
    t = tracker()
    t.on_heartbeat(hb(), 0.0)
    assert t.on_tick(60.0) == []  # we were frozen for a minute: one life gone, clock restarted
    assert t.lives == 2
    assert t.on_heartbeat(hb(), 60.001) == []


def test_announced_interval_is_used_and_floored() -> None:
    t = tracker()
    t.on_heartbeat(hb(interval=0), 0.0)
    assert t.deadline() == 1.5 * S.min_interval_ms / 1000
    t.on_heartbeat(hb(interval=30000), 1.0)
    assert t.deadline() == 1.0 + 45.0


def test_disconnect_then_grace_then_lost() -> None:
    t = tracker()
    t.on_heartbeat(hb(), 0.0)
    t.on_handshake(0.0)
    assert t.connected
    assert t.on_disconnected(0.5) == []
    assert t.deadline() == 0.8
    assert t.on_tick(0.79) == []
    (verdict,) = t.on_tick(0.8)
    assert verdict[0] is K.LOST
    assert "connection lost" in verdict[1]


def test_reconnect_within_grace_is_not_a_loss() -> None:
    t = tracker()
    t.on_heartbeat(hb(), 0.0)
    t.on_disconnected(0.5)
    t.on_handshake(0.6)
    assert t.on_tick(0.9) == []
    assert t.deadline() == 1.5


def test_heartbeat_within_grace_clears_suspicion() -> None:
    t = tracker()
    t.on_disconnected(0.1)
    t.on_heartbeat(hb(), 0.2)
    assert t.on_tick(0.5) == []


def test_recovery_after_loss() -> None:
    t = tracker()
    t.on_heartbeat(hb(), 0.0)
    t.on_disconnected(1.0)
    assert kinds(t.on_tick(1.3)) == [K.LOST]
    assert t.on_disconnected(2.0) == []  # already lost: nothing new
    assert kinds(t.on_heartbeat(hb(), 5.0)) == [K.STATE_CHANGED, K.RECOVERED]
    assert t.state is State.ORBIT
    assert not t.lost


def test_error_and_safe_are_edges_with_status() -> None:
    t = tracker()
    t.on_heartbeat(hb(), 0.0)
    v = t.on_heartbeat(hb(State.ERROR, status="boom"), 0.1)
    assert kinds(v) == [K.STATE_CHANGED, K.ERROR_STATE]
    assert v[1][1] == "reports state ERROR: boom"
    assert t.on_heartbeat(hb(State.ERROR), 0.2) == []  # repeated: no new event
    assert kinds(t.on_heartbeat(hb(State.SAFE), 0.3)) == [K.STATE_CHANGED, K.SAFE_STATE]
    assert kinds(t.on_heartbeat(hb(State.initializing), 0.4)) == [K.STATE_CHANGED, K.RECOVERED]
    assert t.status == "boom"  # the last non-empty status is kept


def test_dead_code_from_a_1_0_2_sender_counts_as_error() -> None:
    t = tracker()
    t.on_heartbeat(hb(), 0.0)
    assert kinds(t.on_heartbeat(hb(State.DEAD), 0.1)) == [K.STATE_CHANGED, K.ERROR_STATE]


def test_role_follows_flags() -> None:
    t = tracker()
    t.on_heartbeat(hb(role=Role.ESSENTIAL), 0.0)
    assert t.role is Role.ESSENTIAL
    t.on_heartbeat(Heartbeat("Sat.A", State.ORBIT, HeartbeatFlags.MARK_DEGRADED, 1000), 0.1)
    assert t.role is Role.TRANSIENT


def test_zmtp_ping_budget_scales_the_interval() -> None:
    s = MonitorSettings()
    # 250 ms up to 32 peers, then with the square of the group: the group's PINGs/s stay constant
    assert [s.zmtp_ivl_for(n) for n in (1, 8, 32, 33, 64, 128, 191)] == [250, 250, 250, 266, 1000, 4000, 8907]
    total = [n * 1000 * (n - 1) / s.zmtp_ivl_for(n - 1) for n in (33, 65, 129, 193)]
    assert max(total) / min(total) < 1.1
    assert MonitorSettings(zmtp_pings_per_s=0).zmtp_ivl_for(500) == 250
    assert MonitorSettings(zmtp_full_rate_peers=0).zmtp_ivl_for(128) == 1000  # linear only
    # the timeout stays 1000 ms up to 32 peers, then 3 PING intervals
    assert [s.zmtp_timeout_for(s.zmtp_ivl_for(n)) for n in (1, 32, 64, 128)] == [1000, 1000, 3000, 12000]
    assert MonitorSettings(zmtp_timeout_ms=0).zmtp_timeout_for(250) == 750
    assert MonitorSettings(zmtp_ivl_ms=0).zmtp_ivl_for(500) == 0


def test_zmtp_retune_only_beyond_the_factor() -> None:
    s = MonitorSettings()  # factor 3
    assert s.zmtp_retune_to(250, 32) is None
    assert s.zmtp_retune_to(250, 55) is None  # wants 739 ms: within 3x
    assert s.zmtp_retune_to(250, 56) == 766
    assert s.zmtp_retune_to(4000, 20) == 250  # the group shrank
    assert s.zmtp_retune_to(0, 500) is None  # PINGs off stay off
    assert MonitorSettings(zmtp_retunes_per_s=0).zmtp_retune_to(250, 192) is None
    assert MonitorSettings(zmtp_retune_factor=0).zmtp_retune_to(250, 192) is None
    with pytest.raises(ValueError, match="zmtp_retune_factor"):
        MonitorSettings(zmtp_retune_factor=1.0)


def test_stale_copies_are_ignored_only_while_two_subscriptions_overlap() -> None:
    t = tracker()
    t.on_heartbeat(Heartbeat("Sat.A", State.ORBIT, Role.DYNAMIC.flags, 1000, time_ns=100), 0.0)
    t.overlapping = 1  # a PING retune: the lagging old socket delivers an older beat late
    t.on_heartbeat(Heartbeat("Sat.A", State.ERROR, Role.DYNAMIC.flags, 1000, time_ns=300), 0.1)
    assert t.on_heartbeat(Heartbeat("Sat.A", State.ORBIT, Role.DYNAMIC.flags, 1000, time_ns=200), 0.2) == []
    assert t.state is State.ERROR
    assert t.on_heartbeat(Heartbeat("Sat.A", State.ERROR, Role.DYNAMIC.flags, 1000, time_ns=300), 0.2) == []
    t.overlapping = 0  # outside an overlap every beat counts (a peer's clock may step back)
    verdicts = t.on_heartbeat(Heartbeat("Sat.A", State.ORBIT, Role.DYNAMIC.flags, 1000, time_ns=50), 0.3)
    assert t.state is State.ORBIT
    assert (K.STATE_CHANGED, "ERROR -> ORBIT") in verdicts
