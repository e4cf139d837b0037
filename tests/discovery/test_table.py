"""Pure parts of discovery: the merged service table, interface selection, names and TXT."""

from __future__ import annotations

import pytest

import constellation.discovery as discovery
from constellation.discovery import (
    Discovery,
    ServiceTable,
    UnknownBackend,
    UnknownInterface,
    instance_name,
    select_addresses,
    txt_record,
)
from constellation.discovery.dnssd import pick_address
from constellation.discovery.service import Change
from protocols.chirp import ServiceId

H1 = bytes(range(16))
H2 = bytes(range(1, 17))


def test_exported_members() -> None:
    for name in discovery.__all__:
        assert hasattr(discovery, name), name
    assert {"Discovery", "Service", "DiscoveryError"} <= set(discovery.__all__)


def test_same_service_over_two_backends_appears_once_and_departs_with_the_last() -> None:
    table = ServiceTable()
    events = table.seen("chirp", H1, ServiceId.CONTROL, "10.0.0.1", 4000)
    assert [c for c, _ in events] == [Change.APPEAR]
    assert table.seen("zeroconf", H1, ServiceId.CONTROL, "10.0.0.1", 4000, "Type.Name") == []
    (svc,) = table.snapshot()
    assert svc.backends == {"chirp", "zeroconf"}
    assert svc.name == "Type.Name"  # learned from the second backend
    assert svc.endpoint == "tcp://10.0.0.1:4000"
    assert table.gone("chirp", H1, ServiceId.CONTROL, 4000) == []
    assert table.snapshot()[0].backends == {"zeroconf"}
    events = table.gone("zeroconf", H1, ServiceId.CONTROL, 4000)
    assert [(c, s.port) for c, s in events] == [(Change.DEPART, 4000)]
    assert table.snapshot() == []


def test_new_port_replaces_and_stale_depart_is_ignored() -> None:
    table = ServiceTable()
    table.seen("chirp", H1, ServiceId.HEARTBEAT, "10.0.0.1", 4000)
    events = table.seen("chirp", H1, ServiceId.HEARTBEAT, "10.0.0.1", 4001)
    assert [(c, s.port) for c, s in events] == [(Change.DEPART, 4000), (Change.APPEAR, 4001)]
    assert table.gone("chirp", H1, ServiceId.HEARTBEAT, 4000) == []  # old port: not the current one
    assert table.gone("zeroconf", H1, ServiceId.HEARTBEAT, 4001) == []  # backend never reported it
    assert [s.port for s in table.snapshot(ServiceId.HEARTBEAT)] == [4001]
    assert table.snapshot(ServiceId.CONTROL) == []


def test_table_is_bounded() -> None:
    table = ServiceTable(max_entries=1)
    table.seen("chirp", H1, ServiceId.CONTROL, "a", 1)
    assert table.seen("chirp", H2, ServiceId.CONTROL, "b", 2) == []
    assert table.dropped_full == 1
    assert len(table) == 1
    # replacing a known entry still works when full
    assert len(table.seen("chirp", H1, ServiceId.CONTROL, "a", 3)) == 2


def test_drop_backend() -> None:
    table = ServiceTable()
    table.seen("chirp", H1, ServiceId.CONTROL, "a", 1)
    table.seen("zeroconf", H2, ServiceId.CONTROL, "b", 2, "X.y")
    events = table.drop_backend("chirp")
    assert [s.host_id for _, s in events] == [H1]
    assert [s.host_id for s in table.snapshot()] == [H2]


def test_select_addresses_like_102() -> None:
    usable = {"lo": "127.0.0.1", "net0": "10.77.0.1", "Br0": "10.77.0.254"}
    assert select_addresses(None, usable) == ("127.0.0.1", "10.77.0.1", "10.77.0.254")
    assert select_addresses([], usable) == ("127.0.0.1",)
    assert select_addresses(["NET0", "net0"], usable) == ("127.0.0.1", "10.77.0.1")
    assert select_addresses(["br0", "10.77.0.1"], usable) == ("127.0.0.1", "10.77.0.254", "10.77.0.1")
    with pytest.raises(UnknownInterface, match=r"'eth7'.*net0 \(10\.77\.0\.1\)"):
        select_addresses(["eth7"], usable)
    with pytest.raises(TypeError):
        select_addresses("lo", usable)


def test_unknown_backend_is_refused() -> None:
    with pytest.raises(UnknownBackend, match="mdns"):
        Discovery("g", "A.b", backends=("chirp", "mdns"))
    with pytest.raises(UnknownBackend):
        Discovery("g", "A.b", backends=())


def test_instance_name_and_txt() -> None:
    assert instance_name("Sputnik.One", "EDDA") == "Sputnik.One@edda"
    long = instance_name("Sputnik." + "x" * 60, "edda")
    assert len(long.encode()) <= 63
    assert long == instance_name("sputnik." + "X" * 60, "EDDA")  # hashes of lower-cased names
    txt = txt_record("edda", "Sputnik.One", ServiceId.HEARTBEAT)
    assert txt == {
        "txtvers": "1",
        "group": "edda",
        "name": "Sputnik.One",
        "service": "HEARTBEAT",
        "protocol": "CHP1",
    }


def test_pick_address_prefers_routable() -> None:
    assert pick_address(["127.0.0.1", "10.77.0.1"]) == "10.77.0.1"
    assert pick_address(["127.0.0.1"]) == "127.0.0.1"
    assert pick_address([]) is None


def test_stale_report_of_one_backend_does_not_flip_the_service() -> None:
    table = ServiceTable()
    table.seen("chirp", H1, ServiceId.CONTROL, "a", 4000)
    table.seen("zeroconf", H1, ServiceId.CONTROL, "a", 4000, "T.n")
    events = table.seen("chirp", H1, ServiceId.CONTROL, "a", 4001)  # chirp saw the change
    assert [(c, s.port) for c, s in events] == [(Change.DEPART, 4000), (Change.APPEAR, 4001)]
    assert table.snapshot()[0].name == "T.n" or table.snapshot()[0].name is None
    assert table.seen("zeroconf", H1, ServiceId.CONTROL, "a", 4000, "T.n") == []  # stale repeat
    assert [s.port for s in table.snapshot()] == [4001]
    assert table.seen("zeroconf", H1, ServiceId.CONTROL, "a", 4001, "T.n") == []  # catches up
    assert table.snapshot()[0].backends == {"chirp", "zeroconf"}


def test_disagreeing_backend_takes_over_when_the_current_one_departs() -> None:
    table = ServiceTable()
    table.seen("chirp", H1, ServiceId.CONTROL, "a", 4000)
    assert table.seen("zeroconf", H1, ServiceId.CONTROL, "b", 5000, "T.n") == []  # first report: kept aside
    events = table.gone("chirp", H1, ServiceId.CONTROL, 4000)
    assert [(c, s.port) for c, s in events] == [(Change.DEPART, 4000), (Change.APPEAR, 5000)]
    assert table.snapshot()[0].backends == {"zeroconf"}
    assert [c for c, _ in table.gone("zeroconf", H1, ServiceId.CONTROL)] == [Change.DEPART]
    assert len(table) == 0


def test_chirp_depart_removes_the_zeroconf_view_at_the_same_port_and_holds_late_reports() -> None:
    table = ServiceTable()
    table.seen("chirp", H1, ServiceId.CONTROL, "10.0.0.1", 4000)
    table.seen("zeroconf", H1, ServiceId.CONTROL, "10.0.0.1", 4000, "Sputnik.X")
    assert table.depart(H1, ServiceId.CONTROL, 3999) == []  # not the port CHIRP knows: ignored
    events = table.depart(H1, ServiceId.CONTROL, 4000)
    assert [(c, s.port, s.backends) for c, s in events] == [(Change.DEPART, 4000, frozenset({"zeroconf"}))]
    assert table.snapshot() == []
    # a late zeroconf report of the same port is held back, and its goodbye is harmless
    assert table.seen("zeroconf", H1, ServiceId.CONTROL, "10.0.0.1", 4000, "Sputnik.X") == []
    assert table.held_departed == 1
    assert table.snapshot() == []
    assert table.gone("zeroconf", H1, ServiceId.CONTROL, 4000) == []
    # the node offers again over CHIRP: it is back, and the held zeroconf view joins it
    table.seen("zeroconf", H1, ServiceId.CONTROL, "10.0.0.1", 4000, "Sputnik.X")
    events = table.seen("chirp", H1, ServiceId.CONTROL, "10.0.0.1", 4000)
    assert [c for c, _ in events] == [Change.APPEAR]
    (svc,) = table.snapshot()
    assert svc.backends == {"chirp", "zeroconf"}
    assert svc.name == "Sputnik.X"


def test_chirp_depart_keeps_a_zeroconf_view_at_another_port_and_other_ports_end_the_hold() -> None:
    table = ServiceTable()
    table.seen("zeroconf", H1, ServiceId.HEARTBEAT, "10.0.0.1", 5000, "S.Y")
    table.seen("chirp", H1, ServiceId.HEARTBEAT, "10.0.0.1", 5000)
    table.seen("chirp", H1, ServiceId.HEARTBEAT, "10.0.0.1", 5001)  # moved (CHIRP saw the change)
    events = table.depart(H1, ServiceId.HEARTBEAT, 5001)
    # DEPART for 5001 only: the zeroconf view at 5000 takes its place, as before
    assert [(c, s.port) for c, s in events] == [(Change.DEPART, 5001), (Change.APPEAR, 5000)]
    table.gone("zeroconf", H1, ServiceId.HEARTBEAT, 5000)
    # a zeroconf report at a port other than the departed one is a new incarnation: not held
    events = table.seen("zeroconf", H1, ServiceId.HEARTBEAT, "10.0.0.1", 5002, "S.Y")
    assert [(c, s.port) for c, s in events] == [(Change.APPEAR, 5002)]
    assert table.held_departed == 0


def test_departed_memory_is_bounded() -> None:
    from constellation.discovery.service import MAX_DEPARTED

    table = ServiceTable()
    for i in range(MAX_DEPARTED + 10):
        host = i.to_bytes(16, "big")
        table.seen("chirp", host, ServiceId.CONTROL, "a", 1)
        table.depart(host, ServiceId.CONTROL, 1)
    assert len(table._departed) == MAX_DEPARTED
    assert len(table) == 0
    assert table._entries == {}
    first = (0).to_bytes(16, "big")  # the oldest DEPART was forgotten: a report is no longer held
    assert [c for c, _ in table.seen("zeroconf", first, ServiceId.CONTROL, "a", 1, "A.b")] == [Change.APPEAR]


def test_each_registration_has_its_own_txt_run() -> None:
    from constellation.discovery import DnssdBackend

    assert txt_record("edda", "Sputnik.One", ServiceId.CONTROL, "0a1b2c3d")["run"] == "0a1b2c3d"
    backend = DnssdBackend("edda", "Sputnik.One", ["127.0.0.1"], Discovery("edda", "Ctl.x"))
    first, second = (backend._info(ServiceId.CONTROL, 4000) for _ in range(2))
    # same name, port and server, yet never byte-identical packets (docs: "Quick restarts")
    assert (first.name, first.port, first.server) == (second.name, second.port, second.server)
    assert first.properties[b"run"] != second.properties[b"run"]
    assert len(first.properties[b"run"] or b"") == 8
