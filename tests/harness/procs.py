"""Real subprocesses with a ready line, a deadline and guaranteed clean-up."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence


class ProcessFailed(AssertionError):
    """A subprocess exited or missed its deadline before printing what we waited for."""


class Proc:
    """A running subprocess whose merged stdout/stderr is collected line by line in the background."""

    def __init__(
        self,
        argv: Sequence[str],
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
        pass_fds: Sequence[int] = (),
    ):
        self.argv = list(argv)
        self.popen = subprocess.Popen(
            self.argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
            cwd=cwd,
            text=True,
            errors="replace",
            start_new_session=True,  # so that clean-up can signal the whole process group
            pass_fds=tuple(pass_fds),
        )
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, name=f"proc-reader-{self.popen.pid}", daemon=True)
        self._reader.start()

    @property
    def pid(self) -> int:
        return self.popen.pid

    def _read(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    @property
    def output(self) -> str:
        with self._changed:
            return "\n".join(self.lines)

    def wait_for(
        self, pattern: str | re.Pattern[str], timeout: float = 10.0, start: int = 0
    ) -> re.Match[str]:
        """Wait for an output line (from index ``start`` on) matching ``pattern``; return the match."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        seen = start
        with self._changed:
            while True:
                for line in self.lines[seen:]:
                    if m := rx.search(line):
                        return m
                seen = len(self.lines)
                if self.popen.poll() is not None and not self._reader.is_alive():
                    raise ProcessFailed(
                        f"{self.argv[0]} exited with {self.popen.returncode} before printing "
                        f"{rx.pattern!r}; output:\n{self.output_tail()}"
                    )
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise ProcessFailed(
                        f"{self.argv[0]} did not print {rx.pattern!r} within {timeout}s; output:\n"
                        f"{self.output_tail()}"
                    )
                self._changed.wait(min(remaining, 0.1))

    def output_tail(self, n: int = 40) -> str:
        return "\n".join(self.lines[-n:])

    def signal(self, sig: int) -> None:
        if self.popen.poll() is None:
            os.kill(self.popen.pid, sig)

    def wait(self, timeout: float = 10.0) -> int:
        """Wait for exit within ``timeout`` (raises ProcessFailed on a hang); return the exit code."""
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            raise ProcessFailed(
                f"{self.argv[0]} did not exit within {timeout}s:\n{self.output_tail()}"
            ) from None

    def stop(self, grace: float = 5.0) -> int:
        """SIGTERM the process group, then SIGKILL it after ``grace`` seconds. Idempotent."""
        if self.popen.poll() is None:
            for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
                try:
                    os.killpg(self.popen.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    self.popen.wait(wait)
                    break
                except subprocess.TimeoutExpired:
                    continue
        # Processes left in the group (grandchildren) go too.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        self._reader.join(5.0)
        return self.popen.returncode if self.popen.returncode is not None else -9


def spawn_process(
    argv: Sequence[str],
    *,
    ready: str | None = None,
    timeout: float = 15.0,
    env: Mapping[str, str] | None = None,
    host: int | None = None,
    cwd: str | None = None,
    pass_fds: Sequence[int] = (),
) -> tuple[Proc, re.Match[str] | None]:
    """Start ``argv`` (on virtual host ``host`` when given) and wait for a line matching ``ready``.
    ``pass_fds``: descriptors the child inherits under the same numbers (as `subprocess.Popen`'s).

    The caller owns clean-up (the ``spawn`` fixture does it); on a missed ready line the process is
    stopped before ProcessFailed propagates.
    """
    if host is not None:
        argv = [os.environ["NETNS_EXEC"], str(host), *argv]
    proc = Proc(argv, env=env, cwd=cwd, pass_fds=pass_fds)
    if ready is None:
        return proc, None
    try:
        return proc, proc.wait_for(ready, timeout)
    except BaseException:
        proc.stop(grace=1.0)
        raise
