"""Satellite benchmark: our runtime vs a real ConstellationDAQ 1.0.2 satellite vs a raw pyzmq floor.

    .venv/bin/python benchmarks/satellite_bench.py [--rtt 2000] [--idle 10] [--json out.json]

Not a test. It re-executes itself inside a private network namespace (``tests/netns/netns-run``, as
the test suite does), so every packet stays on loopback. In one run, one after the other, it starts:

- ``ours``:  our ``Sputnik`` satellite plus a ``burst`` command (``benchmarks/satellite_ours_bench.py``);
- ``1.0.2``: the real 1.0.2 ``Mariner`` plus a ``burst`` command (``benchmarks/satellite_cdaq_bench.py``,
  in the cached oracle venv);
- ``floor``: a pyzmq REP + msgpack echo of get_state, and a raw pyzmq PUB answering the same ``burst``
  command with pre-built CMDP log messages (header with timestamp and tags msgpack-encoded per record),
  read by the very same subscriber code (``benchmarks/satellite_floor.py``);

and measures for each: start-up to first get_state reply, CHIRP discovery (process start to the first
CONTROL OFFER seen by a listening observer, and a listening observer's REQUEST to the OFFER in reply),
get_state round trips (median, p99), idle RSS, OS threads and CPU over a fixed window, and log records per
second delivered to one subscriber (INFO and WARNING bursts of the same size for both, losses counted; for
ours also a 10x burst, beyond the bounded log queue, where the producer is paced to the sender; for the
floor the raw publisher's rate). Everything but the log rates is measured one target after the other,
with no other target running; the log bursts come last, with a fresh process of each target up and the
targets taking turns (one burst of each case per round), so that the medians of all three come from the
same minutes of this shared machine. A table with ratios follows.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
for _path in (str(ROOT), str(HERE)):
    if _path not in sys.path:
        sys.path.insert(0, _path)

import psutil  # noqa: E402
import satellite_probe as probe  # noqa: E402
import zmq  # noqa: E402

from protocols import chirp  # noqa: E402
from tests.harness import (  # noqa: E402
    NETNS_RUN,
    free_tcp_port,
    in_netns,
    oracle_python,
    prepare_oracle,
    unique_group,
)


@dataclass
class Target:
    key: str
    label: str
    argv: Callable[[str, dict[str, int]], list[str]]  # (group, ports) -> argv
    canonical: str | None  # None: no CHIRP (the floor)
    burst: bool
    rtt_n: int
    overload: bool = False  # also the 10x burst, beyond our bounded log queue (the producer is paced)
    bare: bool = False  # also the bare pyzmq loop (satellite_floor.py's burst_bare)


@dataclass
class Result:
    key: str
    startup_s: float | None = None
    startup_cpu_s: float | None = None
    first_offer_s: float | None = None
    request_to_offer_s: float | None = None
    offer_after_reply_s: float | None = None
    rtt_median_ms: float | None = None
    rtt_p99_ms: float | None = None
    rss_mib: float | None = None
    threads: int | None = None
    idle_cpu_pct: float | None = None
    logs: dict[str, dict[str, float]] = field(default_factory=dict)
    error: str | None = None


def targets(args: argparse.Namespace) -> list[Target]:
    cdaq = oracle_python()
    py = sys.executable

    def ours(group: str, p: dict[str, int]) -> list[str]:
        return [
            py, str(HERE / "satellite_ours_bench.py"), "--name", "Bench", "--group", group,
            "--interface", "lo", "--cmd-port", str(p["cmd"]), "--hb-port", str(p["hb"]),
            "--mon-port", str(p["mon"]), "--level", args.level, *args.ours_arg,
        ]  # fmt: skip

    def theirs(group: str, p: dict[str, int]) -> list[str]:
        return [
            str(cdaq), str(HERE / "satellite_cdaq_bench.py"), "-n", "Bench", "-g", group, "-i", "lo",
            "--cmd-port", str(p["cmd"]), "--hb-port", str(p["hb"]), "--mon-port", str(p["mon"]),
            "-l", args.level,
        ]  # fmt: skip

    def floor(group: str, p: dict[str, int]) -> list[str]:
        return [py, str(HERE / "satellite_floor.py"), str(p["cmd"]), "--mon-port", str(p["mon"])]

    all_targets = [
        Target(
            "ours",
            "ours (Sputnik)",
            ours,
            "Sputnik.Bench",
            True,
            args.rtt,
            overload=True,
        ),
        Target(
            "cdaq",
            "1.0.2 (Mariner)",
            theirs,
            "Mariner.Bench",
            True,
            args.rtt_cdaq,
        ),
        Target("floor", "raw floor", floor, None, True, args.rtt, bare=True),
    ]
    return [t for t in all_targets if t.key in args.only]


@dataclass
class Alive:
    """A target's process for the interleaved log bursts."""

    target: Target
    result: Result
    proc: subprocess.Popen[bytes]
    ports: dict[str, int]
    log: IO[str]
    ctx: zmq.Context[zmq.Socket[bytes]]

    def fail(self, exc: BaseException) -> None:
        self.result.error = _failure(exc, self.log)

    def close(self) -> None:
        _stop(self.proc)
        self.ctx.destroy(linger=0)
        self.log.close()
        os.unlink(self.log.name)


def measure(target: Target, args: argparse.Namespace) -> Result:
    """Everything but the log rates (`measure_logs`), with no other target's process up."""
    result = Result(target.key)
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    observer: probe.ChirpObserver | None = None
    log = _output_file(target)
    proc: subprocess.Popen[bytes] | None = None
    try:
        # Start-up and discovery: median of several fresh starts (new group and ports each time);
        # the last process stays up for everything else.
        startups: list[float] = []
        offers: list[float] = []
        startup_cpu: list[float] = []
        for _ in range(args.starts):
            if proc is not None:
                _stop(proc)
            if observer is not None:
                observer.close()
            group = unique_group("bench")
            ports = {"cmd": free_tcp_port(), "hb": free_tcp_port(), "mon": free_tcp_port()}
            observer = probe.ChirpObserver(group) if target.canonical else None
            argv = target.argv(group, ports)
            t0 = time.monotonic()
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
            startups.append(probe.startup_to_first_reply(ctx, ports["cmd"], t0, timeout=60))
            cpu = psutil.Process(proc.pid).cpu_times()
            startup_cpu.append(cpu.user + cpu.system)
            if observer is not None and target.canonical is not None:
                host = chirp.host_id(target.canonical)
                offers.append(observer.wait_offer(host, chirp.ServiceId.CONTROL, t0, 10) - t0)
        assert proc is not None
        result.startup_s = statistics.median(startups)
        result.startup_cpu_s = statistics.median(startup_cpu)
        if observer is not None and target.canonical is not None:
            result.first_offer_s = statistics.median(offers)
            result.offer_after_reply_s = statistics.median(
                o - s for o, s in zip(offers, startups, strict=True)
            )
            samples = [
                observer.request_to_offer(host, chirp.ServiceId.CONTROL, 5) for _ in range(args.chirp_n)
            ]
            result.request_to_offer_s = statistics.median(samples)
        lat = probe.get_state_rtt(ctx, ports["cmd"], target.rtt_n)
        result.rtt_median_ms, result.rtt_p99_ms = lat.median_ms, lat.p99_ms
        stats = probe.process_stats(proc.pid, args.idle)
        result.rss_mib, result.threads, result.idle_cpu_pct = stats.rss_mib, stats.threads, stats.idle_cpu_pct
        if proc.poll() is not None:
            raise probe.ProbeFailed(f"process exited with {proc.returncode} during the run")
    except Exception as exc:
        result.error = _failure(exc, log)
    finally:
        if observer is not None:
            observer.close()
        if proc is not None:
            _stop(proc)
        ctx.destroy(linger=0)
        log.close()
        os.unlink(log.name)
    return result


def _output_file(target: Target) -> IO[str]:
    return tempfile.NamedTemporaryFile("w+", prefix=f"bench-{target.key}-", suffix=".log", delete=False)


def _failure(exc: BaseException, log: IO[str]) -> str:
    log.flush()
    log.seek(0)
    tail = log.read()[-2000:]
    return f"{exc!r}\n--- output tail ---\n{tail}"


def launch(target: Target, result: Result) -> Alive | None:
    """A fresh process of the target for the log bursts (None, and the error noted, if it fails)."""
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    log = _output_file(target)
    ports = {"cmd": free_tcp_port(), "hb": free_tcp_port(), "mon": free_tcp_port()}
    proc = subprocess.Popen(
        target.argv(unique_group("bench"), ports),
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    alive = Alive(target, result, proc, ports, log, ctx)
    try:
        probe.startup_to_first_reply(ctx, ports["cmd"], time.monotonic(), timeout=60)
    except Exception as exc:
        alive.fail(exc)
        alive.close()
        return None
    return alive


def log_cases(target: Target, args: argparse.Namespace) -> list[tuple[str, str, int, int, str]]:
    """(label, level, records, bursts, command) of a target's log-rate rows."""
    cases = [
        ("INFO", "INFO", args.burst, args.burst_reps, "burst"),
        ("WARNING", "WARNING", args.burst, args.burst_reps, "burst"),
    ]
    if target.overload:
        cases.append(("INFO overload", "INFO", args.burst * 10, 1, "burst"))
    if target.bare:
        cases.append(("INFO bare", "INFO", args.burst, args.burst_reps, "burst_bare"))
    return cases


def measure_logs(alive: list[Alive], args: argparse.Namespace) -> None:
    """The log bursts of all targets in turn, round after round (one burst of each case per round), so
    each target's median comes from the same minutes of the machine as the others': the rate of a fast
    publisher moves by a third between a quiet and a busy minute here, 1.0.2's much less."""
    runs: dict[tuple[str, str], list[probe.Throughput]] = {}
    rounds = max((reps for a in alive for _, _, _, reps, _ in log_cases(a.target, args)), default=0)
    for round_no in range(rounds):
        for a in alive:
            if a.result.error:
                continue
            try:
                for label, level, n, reps, command in log_cases(a.target, args):
                    if round_no < reps:
                        run = probe.log_throughput(
                            a.ctx, a.ports["cmd"], a.ports["mon"], level, n, burst_command=command
                        )
                        runs.setdefault((a.target.key, label), []).append(run)
                if a.proc.poll() is not None:
                    raise probe.ProbeFailed(f"process exited with {a.proc.returncode} during the run")
            except Exception as exc:
                a.fail(exc)
    for a in alive:
        for label, *_ in log_cases(a.target, args):
            done = runs.get((a.target.key, label))
            if done:
                a.result.logs[label] = {
                    "sent": sum(r.sent for r in done),
                    "received": sum(r.received for r in done),
                    "lost": sum(r.lost for r in done),
                    "per_second": statistics.median(r.per_second for r in done),
                    "reps": len(done),
                }


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


# --- report ---------------------------------------------------------------------------------------


def _fmt(value: float | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def _ratio(a: float | None, b: float | None) -> str:
    if a is None or b is None or abs(b) < 1e-3:
        return "n/a"
    return f"{a / b:.2f}x"


ROWS: list[tuple[str, str, str, str]] = [
    # (label, attribute, format, target text)
    ("get_state RTT median (ms)", "rtt_median_ms", ".3f", "<= 3x floor"),
    ("get_state RTT p99 (ms)", "rtt_p99_ms", ".3f", ""),
    ("start-up to first reply (s)", "startup_s", ".3f", "<= 1.0.2"),
    ("CPU time used until the first reply (s)", "startup_cpu_s", ".3f", ""),
    ("start to first CHIRP OFFER (s)", "first_offer_s", ".3f", "<= 0.1"),
    ("first reply -> first OFFER (s)", "offer_after_reply_s", ".3f", ""),
    ("CHIRP REQUEST -> OFFER (s)", "request_to_offer_s", ".4f", "<= 0.1"),
    ("RSS idle (MiB)", "rss_mib", ".1f", "<= 1.2x 1.0.2"),
    ("idle CPU (% of a core)", "idle_cpu_pct", ".2f", "< 0.3"),
    ("OS threads", "threads", "d", ""),
]


def report(results: dict[str, Result], args: argparse.Namespace) -> str:
    ours, cdaq, floor = (results.get(k) for k in ("ours", "cdaq", "floor"))
    head = f"| metric | ours | 1.0.2 | floor | ours/1.0.2 | ours/floor | target |\n|{'---|' * 7}"
    lines = [head]
    for label, attr, spec, goal in ROWS:
        vals = [getattr(r, attr) if r else None for r in (ours, cdaq, floor)]
        lines.append(
            f"| {label} | {_fmt(vals[0], spec)} | {_fmt(vals[1], spec)} | {_fmt(vals[2], spec)} | "
            f"{_ratio(vals[0], vals[1])} | {_ratio(vals[0], vals[2])} | {goal} |"
        )
    printed = {
        "INFO": f"INFO burst of {args.burst}, not printed",
        "WARNING": f"WARNING burst of {args.burst}, also printed",
        "INFO overload": f"INFO burst of {args.burst * 10}, not printed",
        "INFO bare": f"INFO burst of {args.burst}, bare pyzmq loop (floor only: header encoded once)",
    }
    for case, text in printed.items():
        rates, losses = [], []
        for r in (ours, cdaq, floor):
            # the floor publishes the same way for both levels (it prints nothing): same burst, same row
            entry = r.logs.get(case) if r else None
            rates.append(entry["per_second"] if entry else None)
            losses.append(f" ({int(entry['lost'])}/{int(entry['sent'])})" if entry else "")
        goal = {
            "INFO overload": "10x the queue: paced to the sender, none lost",
            "INFO bare": "the most a Python publisher gets through pyzmq",
        }.get(case, ">= 10x 1.0.2")
        lines.append(
            f"| logs/s, {text} (lost/sent) | {_fmt(rates[0], ',.0f')}{losses[0]} | "
            f"{_fmt(rates[1], ',.0f')}{losses[1]} | {_fmt(rates[2], ',.0f')}{losses[2]} | "
            f"{_ratio(rates[0], rates[1])} | {_ratio(rates[0], rates[2])} | {goal} |"
        )
    bare, base = (r.logs.get(k) if r else None for r, k in ((floor, "INFO bare"), (cdaq, "INFO")))
    if bare and base:
        ratio = bare["per_second"] / base["per_second"]
        lines.append(
            f"\nbare pyzmq loop / 1.0.2's unprinted INFO rate: {ratio:.2f}x "
            f"(10x 1.0.2 = {10 * base['per_second']:,.0f}/s)"
        )
    errors = [f"{k}: {r.error}" for k, r in results.items() if r.error]
    conditions = (
        f"RTT over {args.rtt} (1.0.2: {args.rtt_cdaq}) get_state requests after 20 warm-up; "
        f"start-up and discovery: median of {args.starts} starts; idle window {args.idle} s; "
        f"log rates: median of {args.burst_reps} bursts to one LOG/<LEVEL> subscriber, the targets taking "
        f"turns; satellites' console "
        f"level {args.level}; "
        f"CHIRP REQUEST->OFFER median of {args.chirp_n}; loopback inside a private network namespace."
    )
    return "\n".join([*lines, "", conditions, *(["", "ERRORS:", *errors] if errors else [])])


def parse(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rtt", type=int, default=2000, help="get_state round trips (ours, floor)")
    ap.add_argument("--rtt-cdaq", type=int, default=200, help="get_state round trips for 1.0.2 (~25 ms each)")
    ap.add_argument("--idle", type=float, default=20.0, help="idle CPU window in seconds (10 ms ticks)")
    ap.add_argument("--burst", type=int, default=5_000, help="log records per burst (both satellites)")
    ap.add_argument("--burst-reps", type=int, default=7, help="bursts per level (median rate reported)")
    ap.add_argument("--chirp-n", type=int, default=5, help="CHIRP REQUEST->OFFER samples")
    ap.add_argument("--starts", type=int, default=5, help="fresh starts for start-up/discovery (median)")
    ap.add_argument("--level", default="WARNING", help="console log level of the satellites")
    ap.add_argument("--only", nargs="+", default=["ours", "cdaq", "floor"], choices=["ours", "cdaq", "floor"])
    ap.add_argument("--json", type=Path, help="also write the raw results here")
    ap.add_argument(
        "--ours-arg", action="append", default=[], help="extra satellite-run argument for ours (repeatable)"
    )
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    raw = sys.argv[1:] if argv is None else argv
    args = parse(raw)
    if not in_netns():
        prepare_oracle()  # needs the package registry: outside the namespace
        os.execv(str(NETNS_RUN), [str(NETNS_RUN), "--", sys.executable, str(Path(__file__).resolve()), *raw])
    results: dict[str, Result] = {}
    chosen = targets(args)
    for target in chosen:
        print(f"measuring {target.label} ...", file=sys.stderr, flush=True)
        results[target.key] = measure(target, args)
    alive: list[Alive] = []
    try:
        for target in chosen:
            if target.burst and not results[target.key].error:
                kept = launch(target, results[target.key])
                if kept is not None:
                    alive.append(kept)
        names = ", ".join(a.target.label for a in alive)
        print(f"log bursts, {names} taking turns ...", file=sys.stderr, flush=True)
        measure_logs(alive, args)
    finally:
        for a in alive:
            a.close()
    print(report(results, args))
    if args.json:
        args.json.write_text(json.dumps({k: asdict(v) for k, v in results.items()}, indent=2) + "\n")
    return 1 if any(r.error for r in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
