"""``make demo``: start a few Sputnik satellites, drive them through a cycle, shut them down.

Run as ``python -m controllers.demo [--satellites N]``. Discovery uses multicast (CHIRP, mDNS), and no
multicast packet may leave the machine, so the demo re-executes itself inside a private network
namespace (``tests/netns/netns-run``) unless it already runs in one (``NETNS_HOSTS`` is set).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console

from protocols import State

from .controller import Controller
from .errors import ControllerError
from .model import Replies
from .render import satellites_table

NETNS_RUN = Path(__file__).resolve().parents[1] / "tests" / "netns" / "netns-run"
NAMES = ("Alpha", "Beta", "Gamma", "Delta", "Epsilon", "Zeta", "Eta", "Theta")
READY_TIMEOUT = 15.0
STEP_TIMEOUT = 10.0
RUN_SECONDS = 0.5

console = Console(highlight=False)


class Satellite:
    """A ``satellite-run Sputnik`` child process; its output is drained and kept for error reports."""

    def __init__(self, name: str, group: str) -> None:
        self.name = name
        self.group = group
        self.proc: asyncio.subprocess.Process | None = None
        self.lines: list[str] = []
        self.ready: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._reader: asyncio.Task[None] | None = None

    async def start(self) -> None:
        argv = [sys.executable, "-m", "constellation", "Sputnik", "--name", self.name]
        argv += ["--group", self.group, "--interface", "lo", "--level", "WARNING"]
        self.proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.proc is not None
        assert self.proc.stdout is not None
        async for raw in self.proc.stdout:
            line = raw.decode(errors="replace").rstrip()
            self.lines = [*self.lines[-49:], line]
            if line.startswith("READY ") and not self.ready.done():
                self.ready.set_result(line)
        if not self.ready.done():
            self.ready.set_exception(RuntimeError(f"exited before READY:\n{self.tail()}"))

    def tail(self) -> str:
        return "\n".join(f"    | {line}" for line in self.lines[-15:])

    async def wait(self, timeout: float) -> int | None:
        """Exit code within ``timeout``; otherwise terminate (then kill) and return None."""
        assert self.proc is not None
        try:
            async with asyncio.timeout(timeout):
                return await self.proc.wait()
        except TimeoutError:
            pass
        for stop, grace in ((self.proc.terminate, 3.0), (self.proc.kill, 3.0)):
            if self.proc.returncode is None:
                stop()
                try:
                    async with asyncio.timeout(grace):
                        await self.proc.wait()
                except TimeoutError:
                    continue
        return None


class Trail:
    """The states each satellite went through (fed by the controller's on_change hook)."""

    def __init__(self) -> None:
        self.ctl: Controller | None = None
        self.paths: dict[str, list[State]] = {}

    def record(self) -> None:
        assert self.ctl is not None
        for name, state in self.ctl.states.items():
            path = self.paths.setdefault(name, [])
            if not path or path[-1] is not state:
                path.append(state)

    def take(self) -> str:
        """One line per distinct path since the last call, e.g. ``INIT -> launching -> ORBIT``."""
        paths = {n: " -> ".join(s.name for s in p) for n, p in self.paths.items()}
        self.paths = {n: p[-1:] for n, p in self.paths.items()}
        by_path: dict[str, list[str]] = {}
        for name, path in sorted(paths.items()):
            by_path.setdefault(path, []).append(name)
        return "\n".join(f"   heartbeats: {p}  ({', '.join(ns)})" for p, ns in by_path.items())


def _outcome(replies: Replies) -> str:
    texts = {r.text.replace(n, "<name>") for n, r in replies.items() if not isinstance(r, ControllerError)}
    if replies.ok and len(texts) == 1:
        return f"SUCCESS {texts.pop()!r} from all {len(replies)}"
    parts = []
    for name, r in replies.items():
        if isinstance(r, ControllerError):
            parts.append(f"[red]{name}: {r}[/]")
        elif r.ok:
            parts.append(f"{name}: {r.text}")
        else:
            parts.append(f"[red]{name}: {r.type.name} {r.text}[/]")
    return "; ".join(parts)


async def _step(ctl: Controller, trail: Trail, command: str, payload: object, target: State) -> None:
    t0 = time.monotonic()
    shown = f" {payload!r}" if payload is not None else ""
    console.print(f"\n[bold]>> {command}{shown}[/] to all ({len(ctl.satellites)}) in parallel")
    replies = await ctl.command_all(command, payload)
    console.print(f"   replies: {_outcome(replies)}")
    replies.raise_for_status()
    await ctl.await_state(target, timeout=STEP_TIMEOUT)
    elapsed = (time.monotonic() - t0) * 1000
    console.print(f"   every satellite reports {target.name} in its heartbeats after {elapsed:.0f} ms")
    console.print(trail.take())
    console.print(satellites_table(ctl.satellites, title=f"after {command}"))


async def _custom(ctl: Controller) -> None:
    console.print("\n[bold]>> set_channel[/] (Sputnik's custom command) on each satellite")
    for i, name in enumerate(sorted(ctl.satellites)):
        reply = (await ctl.command(name, "set_channel", [i, 1.5 * (i + 1)])).raise_for_status()
        console.print(f"   {name}: {reply.text} -> payload {reply.payload}")
    name = sorted(ctl.satellites)[-1]
    reply = (await ctl.command(name, "get_channels")).raise_for_status()
    console.print(f"   {name} get_channels: {reply.text} {reply.payload}")


async def run(n: int, group: str) -> int:
    t_start = time.monotonic()
    names = [f"Sputnik.{NAMES[i]}" for i in range(n)]
    console.rule(f"Constellation demo: {n} Sputnik satellites in group {group!r} (loopback only)")
    sats = [Satellite(name.split(".")[1], group) for name in names]
    trail = Trail()
    ctl = Controller(group, "demo", interfaces=["lo"], on_change=trail.record)
    trail.ctl = ctl
    try:
        await ctl.start()
        await asyncio.gather(*(s.start() for s in sats))
        for sat in sats:
            assert sat.proc is not None
            async with asyncio.timeout(READY_TIMEOUT):
                line = await sat.ready
            console.print(f"started {line.split()[1]} (pid {sat.proc.pid}): {' '.join(line.split()[2:])}")
        t0 = time.monotonic()
        await ctl.await_satellites(names, timeout=STEP_TIMEOUT)
        found = (time.monotonic() - t0) * 1000
        console.print(
            f"controller {ctl.canonical_name} discovered all {n} after {found:.0f} ms (CHIRP/zeroconf)"
        )
        await ctl.wait_for(lambda: all(i.last_seen for i in ctl.satellites.values()), timeout=STEP_TIMEOUT)
        console.print(satellites_table(ctl.satellites, title="discovered"))
        trail.take()

        await _step(ctl, trail, "initialize", {"channels": 4, "beep_period": 0.02}, State.INIT)
        await _custom(ctl)
        await _step(ctl, trail, "launch", None, State.ORBIT)
        await _step(ctl, trail, "start", "demo_run_1", State.RUN)
        console.print(f"   running for {RUN_SECONDS} s (Sputnik beeps every 20 ms) ...")
        await asyncio.sleep(RUN_SECONDS)  # a demo: let the run do something
        await _step(ctl, trail, "stop", None, State.ORBIT)
        await _step(ctl, trail, "land", None, State.INIT)

        console.print("\n[bold]>> shutdown[/] to all")
        replies = await ctl.command_all("shutdown")
        console.print(f"   replies: {_outcome(replies)}")
        replies.raise_for_status()
        await ctl.wait_for(lambda: not ctl.satellites, timeout=STEP_TIMEOUT)
        console.print("   every satellite departed (CHIRP DEPART)")
        codes = await asyncio.gather(*(s.wait(5.0) for s in sats))
        if any(code != 0 for code in codes):
            raise RuntimeError(f"satellite exit codes {codes}")
        console.print(f"   all {n} processes exited with 0")
        console.rule(f"demo complete in {time.monotonic() - t_start:.1f} s")
        return 0
    except (ControllerError, RuntimeError, TimeoutError) as exc:
        console.print(f"\n[bold red]demo failed:[/] {type(exc).__name__}: {exc}")
        if ctl.satellites:
            console.print(satellites_table(ctl.satellites, title="state at failure"))
        for sat in sats:
            if sat.lines:
                console.print(f"  output of Sputnik.{sat.name}:\n{sat.tail()}")
        return 1
    finally:
        await ctl.aclose()
        await asyncio.gather(*(s.wait(0) for s in sats if s.proc is not None))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m controllers.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--satellites", "-n", type=int, default=3, choices=range(1, len(NAMES) + 1))
    parser.add_argument("--group", "-g", default=None, help="group name (default: a fresh one)")
    rest = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(rest)
    if "NETNS_HOSTS" not in os.environ:
        if not NETNS_RUN.exists():
            print(f"demo: {NETNS_RUN} not found: run the demo from a source checkout", file=sys.stderr)
            return 2
        sys.stdout.flush()
        argv_in = [str(NETNS_RUN), "--", sys.executable, "-m", "controllers.demo", *rest]
        os.execv(str(NETNS_RUN), argv_in)  # exit code 125: namespaces unavailable (message on stderr)
    group = args.group or f"demo_{uuid.uuid4().hex[:8]}"
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
    return asyncio.run(run(args.satellites, group))


if __name__ == "__main__":
    sys.exit(main())
