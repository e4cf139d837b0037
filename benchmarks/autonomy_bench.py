"""Autonomy benchmark: our satellites vs real ConstellationDAQ 1.0.2 satellites, side by side in one run.

    .venv/bin/python benchmarks/autonomy_bench.py [--quick] [--sizes 2 8 32] [--rate-sizes 2 8 32 64]
        [--stable-ours 48 96 192 256] [--stable-cdaq 48] [--only ours cdaq] [--skip stable] [--json out.json]

Not a test. It prepares the 1.0.2 oracle venv (outside), then re-executes itself inside a private network
namespace with virtual hosts (``tests/netns/netns-run --hosts H``, H = 1 + one per link-cut trial): every
packet stays on loopback or the namespace's bridge. Ours = ``satellite-run Sputnik --discovery chirp``;
1.0.2 = the stock ``SatelliteMariner`` of the oracle venv (CHIRP only). Both are driven by raw CSCP
(get_state, initialize, launch) and watched by one passive heartbeat SUB (the "tap"). Three measurements:

1. **Detection**: a group of N = N-1 observers (root namespace, CHIRP on ``br0``) plus one victim on
   a virtual host (``netns-exec K``, CHIRP on ``net0``; host 1 for kill/stop, a fresh host per cut whose
   link stays down), all in ORBIT, the victim ESSENTIAL or DYNAMIC
   (alternating). Fault: SIGKILL, SIGSTOP or ``netns-link 1 down``. Latency = from just before the fault
   to the tap's receipt of each observer's first heartbeat in ``interrupting``/SAFE (the extrasystole of
   its interrupt), one sample per observer and trial; p50/p99 over all samples; an observer that does not
   interrupt within the deadline counts as missed.
2. **Heartbeat rate**: N satellites on loopback (state NEW, idle), once every satellite announces the
   same interval three times in a row, CHP messages received by the tap over a window. Each satellite
   publishes once per beat to all its subscribers; the subscribers per satellite are counted as the
   ESTABLISHED TCP connections on its heartbeat port (minus the tap's own). Reported: messages delivered
   to peers per second (tap excluded) and including the tap (how 1.0.2's reference 3/20/153/428 was
   obtained: the tap is itself a subscriber and lengthens 1.0.2's interval a little).
3. **Stable group**: N satellites on loopback to ORBIT, then a window (60 s): stable = every process
   alive, none leaves ORBIT (an interrupt after a peer was judged lost shows here), none falls silent at
   the tap (gap > 3 announced intervals). Sizes are tried upwards until one fails or the time budget is
   spent; RSS and OS threads (psutil, all satellites) sampled in the middle of the window.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
for _path in (str(ROOT), str(HERE)):
    if _path not in sys.path:
        sys.path.insert(0, _path)

import psutil  # noqa: E402
from autonomy_scenarios import (  # noqa: E402
    Detection,
    Rate,
    Stable,
    detection,
    hosts_needed,
    log,
    rate,
    stable,
)

from tests.harness import NETNS_RUN, in_netns, netns_hosts, prepare_oracle  # noqa: E402

IMPLS = {"ours": "ours", "cdaq": "1.0.2"}
TARGET = {"kill": 1.0, "stop": 2.0, "cut": 2.0}
MIB_PER_SAT = {"ours": 48, "cdaq": 45}  # a little above the measured idle RSS, for the RAM guard


def _f(v: float | None, spec: str = ".3f") -> str:
    return "n/a" if v is None else format(v, spec)


def report(det: list[Detection], rates: list[Rate], stab: list[Stable], args: argparse.Namespace) -> str:
    out: list[str] = []
    if det:
        out += ["### Failure detection: fault -> others interrupting (s)", "",
                "| fault | N | ours p50 | ours p99 | ours missed "
                "| 1.0.2 p50 | 1.0.2 p99 | 1.0.2 missed | target |",
                "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
        keys = sorted({(d.fault, d.n) for d in det}, key=lambda k: (list(TARGET).index(k[0]), k[1]))
        for fault, n in keys:
            row = [fault, str(n)]
            for impl in IMPLS:
                d = next((x for x in det if (x.impl, x.fault, x.n) == (impl, fault, n)), None)
                if d is None:
                    row += ["-", "-", "-"]
                elif d.error:
                    row += ["error", "error", "see below"]
                else:
                    tot = len(d.latencies) + d.missed
                    row += [_f(d.p50), _f(d.p99), f"{d.missed}/{tot}"]
            row.append(f"<= {TARGET[fault]:.0f} s")
            out.append("| " + " | ".join(row) + " |")
        out.append("")
    if rates:
        out += ["### Heartbeat messages per second on the wire (idle, NEW)", "",
                "| N | ours to peers | ours incl. tap | ours subs/sat | ours interval (ms) "
                "| ours lo packets/s | 1.0.2 to peers | 1.0.2 incl. tap | 1.0.2 subs/sat "
                "| 1.0.2 interval (ms) | 1.0.2 lo packets/s "
                "| 1.0.2 reference |",
                "|---|---|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
        ref = {2: "3", 8: "20", 32: "153", 64: "428"}
        for n in sorted({r.n for r in rates}):
            row = [str(n)]
            for impl in IMPLS:
                r = next((x for x in rates if (x.impl, x.n) == (impl, n)), None)
                if r is None or r.error:
                    row += ["error" if r else "-"] * 5
                else:
                    row += [_f(r.to_peers_per_s, ".1f"), _f(r.with_tap_per_s, ".1f"),
                            _f(r.mean_subscribers, ".1f"), _f(r.median_interval_ms, ".0f"),
                            _f(r.lo_packets_per_s, ",.0f")]  # fmt: skip
            row.append(ref.get(n, ""))
            out.append("| " + " | ".join(row) + " |")
        out.append("")
    if stab:
        out += ["### Stable group (all in ORBIT for the window)", "",
                "| impl | N | stable | start+ORBIT (s) | RSS sum (MiB) | threads sum | threads/sat "
                "| peer subs/sat | load avg (1 min) | note |",
                "|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
        for s in stab:
            tps = f"{s.threads / s.n:.1f}" if s.threads else "n/a"
            load = f"{s.load[0]:.1f}" if s.load else "n/a"
            out.append(
                f"| {IMPLS[s.impl]} | {s.n} | {'yes' if s.stable else 'NO'} | {_f(s.startup_s, '.0f')} | "
                f"{_f(s.rss_mib, ',.0f')} | {s.threads or 'n/a'} | {tps} | {_f(s.mean_subscribers, '.1f')} | "
                f"{load} | {s.reason} |"
            )
        for impl in IMPLS:
            ok = [s.n for s in stab if s.impl == impl and s.stable]
            if any(s.impl == impl for s in stab):
                out.append(f"\nlargest stable group, {IMPLS[impl]}: {max(ok) if ok else 'none'}")
        out.append("")
    errors = [f"{d.impl} n={d.n} {d.fault}: {d.error}" for d in det if d.error]
    errors += [f"{r.impl} rate n={r.n}: {r.error}" for r in rates if r.error]
    out.append(
        f"Conditions: samples >= {args.samples} per cell (observers x trials, roles {'/'.join(args.roles)} "
        f"alternating), settle {args.settle} s, deadline ours {args.deadline_ours} s / 1.0.2 "
        f"{args.deadline_cdaq} s; rate window {args.rate_window} s; stable window {args.stable_window} s; "
        f"RLIMIT_NOFILE {resource.getrlimit(resource.RLIMIT_NOFILE)[0]}; load average at the end "
        f"{'/'.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} cores."
    )
    if errors:
        out += ["", "ERRORS:", *errors]
    return "\n".join(out)


def parse(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smoke run: small sizes, short windows")
    ap.add_argument("--only", nargs="+", default=list(IMPLS), choices=list(IMPLS))
    ap.add_argument("--skip", nargs="*", default=[], choices=["detect", "rate", "stable"])
    ap.add_argument("--sizes", nargs="+", type=int, default=[2, 8, 32], help="group sizes for detection")
    ap.add_argument("--faults", nargs="+", default=list(TARGET), choices=list(TARGET))
    ap.add_argument("--roles", nargs="+", default=["ESSENTIAL", "DYNAMIC"], help="victim roles, alternating")
    ap.add_argument("--samples", type=int, default=6, help="min samples per detection cell")
    ap.add_argument("--settle", type=float, default=2.0, help="s in ORBIT before the fault")
    ap.add_argument("--deadline-ours", type=float, default=10.0, help="s to wait for ours to interrupt")
    ap.add_argument("--deadline-cdaq", type=float, default=60.0, help="s to wait for 1.0.2 to interrupt")
    ap.add_argument("--rate-sizes", nargs="+", type=int, default=[2, 8, 32, 64])
    ap.add_argument("--rate-window", type=float, default=30.0, help="s of counting")
    ap.add_argument("--rate-settle", type=float, default=40.0, help="max s to wait for stable intervals")
    ap.add_argument("--stable-ours", nargs="+", type=int, default=[48, 96, 192, 256])
    ap.add_argument("--stable-cdaq", nargs="+", type=int, default=[48])
    ap.add_argument("--stable-window", type=float, default=60.0)
    ap.add_argument("--stable-settle", type=float, default=10.0, help="s after ORBIT before the window")
    ap.add_argument("--stable-budget", type=float, default=1200.0, help="s per implementation for stepping")
    ap.add_argument("--json", type=Path, help="also write the raw results here")
    args = ap.parse_args(argv)
    if args.quick:
        args.sizes, args.rate_sizes = [2, 4], [2, 8]
        args.samples, args.roles = 2, args.roles[:2]
        args.rate_window, args.rate_settle = 10.0, 15.0
        args.stable_ours, args.stable_cdaq = [8], [8]
        args.stable_window, args.stable_settle = 10.0, 3.0
        args.deadline_cdaq = 30.0
    return args


def main(argv: list[str] | None = None) -> int:
    raw = sys.argv[1:] if argv is None else argv
    args = parse(raw)
    if not in_netns():
        prepare_oracle()  # needs the package registry: outside the namespace
        script = str(Path(__file__).resolve())
        hosts = str(hosts_needed(args))
        os.execv(str(NETNS_RUN), [str(NETNS_RUN), "--hosts", hosts, "--", sys.executable, script, *raw])
    if netns_hosts() < hosts_needed(args):
        print(f"run under tests/netns/netns-run --hosts {hosts_needed(args)}", file=sys.stderr)
        return 2
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # every satellite inherits it
    log(f"RLIMIT_NOFILE {soft} -> {hard}; load {os.getloadavg()}")
    det: list[Detection] = []
    rates: list[Rate] = []
    stab: list[Stable] = []
    if "detect" not in args.skip:
        for n in args.sizes:
            for impl in args.only:
                det += detection(impl, n, args.faults, args)
    if "rate" not in args.skip:
        for n in args.rate_sizes:
            for impl in args.only:
                rates.append(rate(impl, n, args))
    if "stable" not in args.skip:
        for impl in args.only:
            t0 = time.monotonic()
            for n in args.stable_ours if impl == "ours" else args.stable_cdaq:
                need = n * MIB_PER_SAT[impl] / 1024
                avail = psutil.virtual_memory().available / 2**30
                if need > 0.8 * avail or time.monotonic() - t0 > args.stable_budget:
                    log(
                        f"{impl} stable n={n}: skipped (~{need:.1f} GiB of {avail:.1f} free, or budget spent)"
                    )
                    break
                stab.append(stable(impl, n, args))
                if not stab[-1].stable:
                    break
    text = report(det, rates, stab, args)
    print(text)
    if args.json:
        data: dict[str, Any] = {"detection": [asdict(d) for d in det], "rate": [asdict(r) for r in rates],
                                "stable": [asdict(s) for s in stab]}  # fmt: skip
        args.json.write_text(json.dumps(data, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
