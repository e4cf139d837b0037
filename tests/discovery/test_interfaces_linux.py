"""The Linux interface enumeration (ioctls) agrees with psutil's, on interfaces of every kind that
matters: up or down, running (carrier) or not, multicast or not, one or two IPv4 addresses, an alias,
none. Runs in a fresh namespace of its own (nested), so the interfaces it creates are seen by no other
test."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import _unavailable
from tests.harness import NETNS_RUN, userns_available

pytestmark = [
    pytest.mark.timeout(60),
    pytest.mark.skipif(sys.platform != "linux", reason="the ioctl enumeration is Linux only"),
]

SETUP = """
set -e
ip link add va type veth peer name vb && ip link set va up && ip link set vb up
ip addr add 10.9.9.9/24 dev va && ip addr add 10.9.6.6/24 dev va
ip link add vc type veth peer name vd && ip link set vc up && ip link set vd up
ip link set vc multicast off && ip addr add 10.9.8.8/24 dev vc
ip link add ve type veth peer name vf && ip addr add 10.9.5.5/24 dev ve
ip link add vg type veth peer name vh && ip link set vg up && ip addr add 10.9.4.4/24 dev vg
ip addr add 10.9.3.3/24 dev va label va:1
exec "$@"
"""
CHECK = """
import json
from constellation.discovery import interfaces as i
fast, reference = i._usable_linux(), i._usable_psutil()
print(json.dumps({"same_order": list(fast.items()) == list(reference.items()), "usable": fast}))
"""


def test_ioctl_enumeration_matches_psutil() -> None:
    ok, why = userns_available()
    if not ok:
        _unavailable(f"needs a network namespace of its own: {why}")
    out = subprocess.run(
        [str(NETNS_RUN), "--hosts", "1", "--", "sh", "-c", SETUP, "sh", sys.executable, "-c", CHECK],
        capture_output=True, text=True, timeout=50,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["same_order"], out.stdout
    names = result["usable"]
    assert names["lo"] == "127.0.0.1"
    assert names["va"] == "10.9.9.9"  # the first address of two
    assert "vc" not in names  # not multicast-capable
    assert "ve" not in names  # down
    assert "vg" not in names  # up but not running (its peer is down): 1.0.2 (psutil `isup`) skips it
    assert "va:1" not in names  # an alias is an address of va, not an interface
    assert not {"vb", "vd", "vf", "vh"} & set(names)  # no IPv4 address


def test_an_interface_name_that_is_not_utf8_is_enumerated() -> None:
    """Linux names are bytes; psutil (and so 1.0.2) fails on such a name, the satellite must not."""
    ok, why = userns_available()
    if not ok:
        _unavailable(f"needs a network namespace of its own: {why}")
    setup = """
    set -e
    a=$(printf 'd\\377x') b=$(printf 'e\\377x')
    ip link add "$a" type veth peer name "$b" && ip link set "$a" up && ip link set "$b" up
    ip addr add 10.9.2.2/24 dev "$a"
    exec "$@"
    """
    check = "import json\nfrom constellation.discovery import interfaces as i\n"
    check += "print(json.dumps(i._usable_linux()))\n"
    out = subprocess.run(
        [str(NETNS_RUN), "--hosts", "1", "--", "sh", "-c", setup, "sh", sys.executable, "-c", check],
        capture_output=True, text=True, timeout=50,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["d\udcffx"] == "10.9.2.2"
