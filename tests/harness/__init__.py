"""Test harness: deadlines instead of sleeps, loopback ports, unique groups, the namespace and the oracle.

Used by the test suite and by ``benchmarks/``. Nothing here sends a packet; the namespace helpers only
tell whether we are inside a private network namespace (see ``tests/netns/netns-run``).
"""

from __future__ import annotations

from tests.harness.chirpsock import BeaconLog, loopback_chirp_socket
from tests.harness.netns import NETNS_RUN, in_netns, netns_hosts, userns_available
from tests.harness.oracle import OracleUnavailable, oracle_python, prepare_oracle
from tests.harness.procs import Proc, ProcessFailed, spawn_process
from tests.harness.wait import (
    WaitTimeout,
    eventually,
    free_tcp_port,
    holds_for,
    unique_group,
    wait_until,
)

__all__ = [
    "NETNS_RUN",
    "BeaconLog",
    "OracleUnavailable",
    "Proc",
    "ProcessFailed",
    "WaitTimeout",
    "eventually",
    "free_tcp_port",
    "holds_for",
    "in_netns",
    "loopback_chirp_socket",
    "netns_hosts",
    "oracle_python",
    "prepare_oracle",
    "spawn_process",
    "unique_group",
    "userns_available",
    "wait_until",
]
