"""Where the private network namespace is, and whether we are inside one."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from pathlib import Path

NETNS_RUN = Path(__file__).resolve().parents[1] / "netns" / "netns-run"


def in_netns() -> bool:
    """True inside ``netns-run`` (which exports NETNS_HOSTS)."""
    return "NETNS_HOSTS" in os.environ


def netns_hosts() -> int:
    """Number of virtual hosts of the namespace we are in (0 outside or without --hosts)."""
    try:
        return int(os.environ.get("NETNS_HOSTS", "0"))
    except ValueError:
        return 0


@functools.cache
def userns_available() -> tuple[bool, str]:
    """Can this machine create the namespaces netns-run needs? Returns (ok, reason)."""
    for tool in ("unshare", "ip", "bridge"):
        if shutil.which(tool) is None:
            return False, f"'{tool}' is not installed (packages util-linux and iproute2)"
    for argv in (["unshare", "--user", "--map-root-user", "--net", "true"], ["unshare", "--net", "true"]):
        try:
            if subprocess.run(argv, capture_output=True, timeout=10).returncode == 0:
                return True, ""
        except (OSError, subprocess.TimeoutExpired):
            continue
    return False, "user and network namespaces cannot be created on this machine"
