"""The three measurements of the autonomy benchmark (``autonomy_bench.py``), one implementation at a time."""

from __future__ import annotations

import contextlib
import itertools
import math
import os
import signal
import statistics
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
from autonomy_fleet import Fleet, FleetError, HeartbeatTap, Sat, make_workdir

from protocols import State
from tests.harness import netns_hosts, unique_group

LINK = Path(__file__).resolve().parents[1] / "tests" / "netns" / "netns-link"
REACTED = {State.interrupting, State.SAFE}
VICTIM_HOST = 1  # kill and stop; every cut uses a fresh host whose link stays down (see _trial)
_cut_hosts = iter(range(2, 251))


def trials_for(n: int, args: Any) -> int:
    return max(len(args.roles), math.ceil(int(args.samples) / (n - 1)))


def hosts_needed(args: Any) -> int:
    """Virtual hosts for a run: host 1, plus one per cut trial."""
    cuts = len(args.only) * sum(trials_for(n, args) for n in args.sizes) if "cut" in args.faults else 0
    return 1 + cuts


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=__import__("sys").stderr, flush=True)


def pct(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..1); None without values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


# --- detection latency ------------------------------------------------------------------------------


@dataclass
class Detection:
    impl: str
    n: int
    fault: str
    latencies: list[float] = field(default_factory=list)  # seconds, one per observer and trial
    missed: int = 0  # observers that did not interrupt before the deadline
    trials: int = 0
    roles: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def p50(self) -> float | None:
        return pct(self.latencies, 0.50)

    @property
    def p99(self) -> float | None:
        return pct(self.latencies, 0.99)


def _fault(fault: str, victim: Sat) -> None:
    if fault == "kill":
        os.kill(victim.pid, signal.SIGKILL)
    elif fault == "stop":
        os.kill(victim.pid, signal.SIGSTOP)
    elif fault == "cut":
        subprocess.run([str(LINK), str(victim.host), "down"], check=True, timeout=10)
    else:
        raise ValueError(fault)


def _trial(
    fleet: Fleet,
    tap: HeartbeatTap,
    observers: list[Sat],
    fault: str,
    name: str,
    role: str,
    args: Any,
    deadline: float,
) -> list[float | None]:
    """One victim on a virtual host to ORBIT with the observers, the fault, each observer's latency
    (None: missed).

    A cut victim gets a host of its own whose link is never brought up again: a process killed behind a
    cut link leaves its unsent heartbeats in the kernel, and at link-up they would reach the observers,
    which then see the dead peer "recover" and lose it again a few seconds later, in the next trial
    (seen with 1.0.2: interrupts 0.4-4 s after the next cut, caused by the previous victim).
    """
    host = next(_cut_hosts) if fault == "cut" else VICTIM_HOST
    if host > netns_hosts():
        raise RuntimeError(f"no virtual host left for a cut trial (have {netns_hosts()})")
    victim = fleet.spawn(name, iface="net0", host=host)
    try:
        fleet.wait_ready([victim])
        tap.connect(victim.hb_ep)
        config = {victim.name: {"_autonomy": {"role": role}}}
        fleet.drive_to_orbit([*observers, victim], lambda s: config.get(s.name, {}))
        time.sleep(args.settle)  # let every observer hear the victim beat in ORBIT
        names = [o.name for o in observers]
        t0 = time.monotonic()
        _fault(fault, victim)
        tap.wait(lambda: all(tap.first(nm, REACTED, t0) for nm in names), deadline)
        return [None if (t := tap.first(nm, REACTED, t0)) is None else t - t0 for nm in names]
    finally:
        tap.disconnect(victim.hb_ep)
        fleet.kill(victim)


def detection(impl: str, n: int, faults: list[str], args: Any) -> list[Detection]:
    """N-1 observers in the namespace's root (interface br0) and one victim on virtual host 1 (net0)."""
    results = [Detection(impl, n, f) for f in faults]
    fleet = Fleet(impl, unique_group("auto"), make_workdir())
    tap = HeartbeatTap()
    deadline = args.deadline_ours if impl == "ours" else args.deadline_cdaq
    try:
        observers = fleet.start([f"O{i}" for i in range(1, n)], iface="br0")
        for o in observers:
            tap.connect(o.hb_ep)
        for res in results:
            res.trials = trials_for(n, args)
            for trial in range(res.trials):
                role = args.roles[trial % len(args.roles)]
                res.roles.append(role)
                seen = _trial(fleet, tap, observers, res.fault, f"V{res.fault}{trial}", role, args, deadline)
                ok = [t for t in seen if t is not None]
                res.latencies += ok
                res.missed += len(seen) - len(ok)
                p50 = f"p50 {pct(ok, 0.5):.3f} s, " if ok else ""
                log(
                    f"{impl} n={n} {res.fault} #{trial} {role}: {p50}{len(seen) - len(ok)}/{len(seen)} missed"
                )
    except Exception as exc:  # a broken scenario is reported, the others still run
        for res in results:
            if not res.latencies and not res.missed:
                res.error = repr(exc)[:1500]
        log(f"{impl} n={n}: ERROR {exc!r}")
    finally:
        tap.close()
        fleet.close()
    return results


# --- heartbeat message rate -------------------------------------------------------------------------


@dataclass
class Rate:
    impl: str
    n: int
    window_s: float = 0.0
    published_per_s: float | None = None  # CHP messages sent by all satellites (each once)
    to_peers_per_s: float | None = None  # deliveries to satellite subscribers (our tap excluded)
    with_tap_per_s: float | None = None  # deliveries incl. our tap (1.0.2 reference method)
    mean_subscribers: float | None = None  # peer subscriptions per satellite (TCP connections, tap excluded)
    median_interval_ms: float | None = None
    lo_packets_per_s: float | None = None  # every packet on loopback (CHP, ZMTP PING/PONG, TCP ACKs, CHIRP)
    lo_kib_per_s: float | None = None
    error: str | None = None


def lo_counters() -> tuple[int, int]:
    """(packets, bytes) received on ``lo`` of this network namespace (/proc/net/dev is per namespace)."""
    for line in Path("/proc/net/dev").read_text().splitlines():
        name, _, data = line.partition(":")
        if name.strip() == "lo":
            fields = data.split()
            return int(fields[1]), int(fields[0])
    raise RuntimeError("no lo in /proc/net/dev")


def hb_subscribers(sats: list[Sat]) -> dict[str, int]:
    """ESTABLISHED TCP connections accepted on each satellite's heartbeat port (loopback, this netns)."""
    by_port = {s.hb: s.name for s in sats}
    counts = dict.fromkeys(by_port.values(), 0)
    for c in psutil.net_connections("tcp"):
        if c.status == psutil.CONN_ESTABLISHED and c.laddr and c.laddr.port in by_port and c.raddr:
            counts[by_port[c.laddr.port]] += 1
    return counts


def _settled(tap: HeartbeatTap, names: list[str]) -> bool:
    """Every satellite's last three regular beats announce the same interval."""
    for nm in names:
        regular = [b.interval_ms for b in tap.snapshot(nm) if not b.extra][-3:]
        if len(regular) < 3 or len(set(regular)) != 1:
            return False
    return True


def rate(impl: str, n: int, args: Any) -> Rate:
    res = Rate(impl, n)
    fleet = Fleet(impl, unique_group("rate"), make_workdir())
    tap = HeartbeatTap()
    try:
        sats = fleet.start([f"R{i}" for i in range(n)], iface="lo")
        for s in sats:
            tap.connect(s.hb_ep)
        names = [s.name for s in sats]
        tap.wait(lambda: _settled(tap, names), args.rate_settle)
        p0, b0 = lo_counters()
        t0 = time.monotonic()
        time.sleep(args.rate_window)  # the counting window (a measurement, not a synchronisation)
        t1 = time.monotonic()
        p1, b1 = lo_counters()
        counts = tap.count(names, t0, t1)
        subs = hb_subscribers(sats)
        peers = {nm: max(0, subs[nm] - 1) for nm in names}  # minus our tap
        res.window_s = t1 - t0
        res.lo_packets_per_s = (p1 - p0) / res.window_s
        res.lo_kib_per_s = (b1 - b0) / 1024 / res.window_s
        res.published_per_s = sum(counts.values()) / res.window_s
        res.to_peers_per_s = sum(counts[nm] * peers[nm] for nm in names) / res.window_s
        res.with_tap_per_s = sum(counts[nm] * (peers[nm] + 1) for nm in names) / res.window_s
        res.mean_subscribers = statistics.mean(peers.values())
        intervals = [b.interval_ms for nm in names for b in tap.snapshot(nm)[-1:]]
        res.median_interval_ms = statistics.median(intervals) if intervals else None
        log(
            f"{impl} rate n={n}: {res.to_peers_per_s:.1f} msgs/s to peers, subs {res.mean_subscribers:.1f}, "
            f"lo {res.lo_packets_per_s:.0f} packets/s"
        )
    except Exception as exc:
        res.error = repr(exc)[:1500]
        log(f"{impl} rate n={n}: ERROR {exc!r}")
    finally:
        tap.close()
        fleet.close()
    return res


# --- largest stable group ---------------------------------------------------------------------------


@dataclass
class Stable:
    impl: str
    n: int
    stable: bool = False
    reason: str = ""
    rss_mib: float | None = None
    threads: int | None = None
    mean_subscribers: float | None = None
    startup_s: float | None = None
    load: tuple[float, float, float] | None = None


def stable(impl: str, n: int, args: Any) -> Stable:
    """N satellites on loopback to ORBIT, then ``args.stable_window`` s: nobody leaves ORBIT, nobody falls
    silent (gap > 3 announced intervals at the tap), every process lives."""
    res = Stable(impl, n)
    fleet = Fleet(impl, unique_group("stable"), make_workdir())
    tap = HeartbeatTap()
    try:
        t_start = time.monotonic()
        sats = fleet.start([f"S{i}" for i in range(n)], iface="lo", timeout=120)
        for s in sats:
            tap.connect(s.hb_ep)
        fleet.drive_to_orbit(sats, lambda s: {}, timeout=120 + 2 * n)
        res.startup_s = time.monotonic() - t_start
        time.sleep(args.stable_settle)  # the mesh forms (everybody subscribes to everybody)
        t0 = time.monotonic()
        end = t0 + args.stable_window
        while time.monotonic() < end:
            time.sleep(min(5.0, max(0.0, end - time.monotonic())))
            if dead := [s.name for s in sats if not s.alive()]:
                raise FleetError(f"exited: {dead[:5]} ({len(dead)})")
            if res.rss_mib is None and time.monotonic() > t0 + args.stable_window / 2:
                res.rss_mib, res.threads = fleet.resources()
                subs = hb_subscribers(sats)
                res.mean_subscribers = statistics.mean(max(0, v - 1) for v in subs.values())
        t1 = time.monotonic()
        left, silent = [], []
        for s in sats:
            beats = [b for b in tap.snapshot(s.name) if b.t >= t0 - 0.5]
            if bad := [b for b in beats if b.t >= t0 and b.state is not State.ORBIT]:
                left.append(f"{s.name}->{bad[0].state.name}")
            times = [t0, *(b.t for b in beats if b.t >= t0), t1]
            limit = 3 * max((b.interval_ms for b in beats), default=2000) / 1000
            if max(b - a for a, b in itertools.pairwise(times)) > limit:
                silent.append(s.name)
        res.load = os.getloadavg()
        res.stable = not left and not silent
        res.reason = "; ".join(
            x for x in (f"left ORBIT: {left[:4]} ({len(left)})" if left else "",
                        f"silent: {silent[:4]} ({len(silent)})" if silent else "") if x
        )  # fmt: skip
        log(f"{impl} stable n={n}: {res.stable} {res.reason} rss {res.rss_mib} threads {res.threads}")
    except Exception as exc:
        lines = str(exc).strip().splitlines() or [""]
        res.reason = f"{type(exc).__name__}: {lines[0][:120]}" + (
            f" ... {lines[-1][:120]}" if len(lines) > 1 else ""
        )
        log(f"{impl} stable n={n}: FAILED {exc!r}")
    finally:
        tap.close()
        with contextlib.suppress(Exception):
            fleet.close()
    return res
