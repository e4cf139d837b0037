"""Fuzz the heartbeat *receiving* side: a fake peer in our group beats garbage at our satellite.

Section 12, row 3: a CHP message that fails to decode (an int timestamp, a state code outside the table,
...) kills 1.0.2's heartbeat-checker thread and sends the satellite to ERROR. Here a fake peer
(``Fake.Peer``) offers HEARTBEAT over CHIRP in our satellite's group, so our satellite subscribes to it
like to any peer; the fake then sends thousands of malformed heartbeats between valid ones (role NONE,
so a valid beat can never make our satellite react). Afterwards our satellite is healthy in ORBIT and
still tracks the peer (it answers its REQUEST and keeps its state).
"""

from __future__ import annotations

import random
import time

import msgpack
import pytest
import zmq

from protocols import chirp, chp
from protocols.chirp import MessageType, ServiceId
from protocols.states import HeartbeatFlags, State
from tests.fuzz.conftest import assert_healthy
from tests.fuzz.support import LOOPBACK, Chirper, Client, Sat

pytestmark = [pytest.mark.netns, pytest.mark.timeout(120)]

P = msgpack.packb
FAKE = "Fake.Peer"


def _valid() -> list[bytes]:
    return chp.encode(chp.Heartbeat(FAKE, State.ORBIT, HeartbeatFlags.NONE, 500))


def _garbage(rng: random.Random) -> list[bytes]:
    ts = msgpack.Timestamp.from_unix_nano(time.time_ns())
    header = [P("CHP\x01"), P(FAKE), P(ts), P(0x30), P(0), P(500)]
    kind = rng.randrange(12)
    if kind == 0:  # section 12: an int instead of the Timestamp
        header[2] = P(int(time.time()))
    elif kind == 1:  # section 12: a state code outside the table
        header[3] = P(rng.choice([0x00, 0x11, 0x99, 0xEF, 0x100, -1]))
    elif kind == 2:
        header[0] = P(rng.choice(["CHP\x02", "CSCP\x01", "", "chp\x01"]))
    elif kind == 3:
        header[5] = P(rng.choice([-1, 2**40, "500", None]))
    elif kind == 4:
        header[4] = P(rng.choice([-1, 256, 2**33, 1.5]))
    elif kind == 5:
        header = header[: rng.randrange(6)]
    elif kind == 6:
        header.append(P(rng.randrange(100)))
    elif kind == 7:
        return [b"".join(header), b"\xff\xfe not utf-8", b"third frame"]
    elif kind == 8:
        return [b"".join(header), rng.randbytes(rng.randrange(1, 40))]
    elif kind == 9:
        return [rng.randbytes(rng.randrange(0, 64))]
    elif kind == 10:
        b = bytearray(b"".join(header))
        b[rng.randrange(len(b))] ^= rng.randint(1, 255)
        return [bytes(b)]
    else:
        header[1] = P(rng.choice(["", "no dot", "Other.Peer", 7]))
    return [b"".join(header)]


def test_malformed_heartbeats_from_a_peer_do_not_break_the_satellite(orbiting: Sat) -> None:
    ctx = zmq.Context()
    pub = ctx.socket(zmq.XPUB)
    pub.setsockopt(zmq.LINGER, 0)
    pub.setsockopt(zmq.SNDHWM, 0)
    port = pub.bind_to_random_port(f"tcp://{LOOPBACK}")
    chirper = Chirper(orbiting.group)
    host = chirp.host_id(FAKE)
    try:
        # Offer the fake HEARTBEAT service until our satellite subscribes to it (a b"\x01" arrives).
        deadline = time.monotonic() + 15
        subscribed = False
        while not subscribed:
            assert time.monotonic() < deadline, "our satellite never subscribed to the fake peer's heartbeats"
            chirper.send(chirper.beacon(MessageType.OFFER, ServiceId.HEARTBEAT, port, host))
            pub.send_multipart(_valid())
            if pub.poll(200):
                subscribed = pub.recv() == b"\x01"
        rng = random.Random(12)
        sent = 0
        for _ in range(40):  # 40 x (1 valid + 100 malformed): the peer stays alive in between
            pub.send_multipart(_valid())
            for _ in range(100):
                pub.send_multipart(_garbage(rng))
                sent += 1
            time.sleep(0.02)  # pace like a (very chatty) peer, keeping valid beats < 1.5 x 500 ms apart
        assert sent == 4000
        pub.send_multipart(_valid())
        assert_healthy(orbiting, State.ORBIT)
        # Still a working CHIRP node and still subscribed to the peer.
        assert chirper.request_offer(chirp.host_id(orbiting.name), ServiceId.CONTROL)[0] == orbiting.cmd
        # The receiving path is alive, not just ignored: a valid DYNAMIC "ERROR" beat from the peer makes
        # our launched satellite interrupt itself (section 4.5), as it would without the garbage.
        client = Client(orbiting.cmd)
        try:
            failing = chp.Heartbeat(FAKE, State.ERROR, HeartbeatFlags(0x06), 500, "fuzz peer failed")
            pub.send_multipart(chp.encode(failing))
            client.wait_state(State.SAFE, timeout=10)
        finally:
            client.close()
    finally:
        with_depart = chirper.beacon(MessageType.DEPART, ServiceId.HEARTBEAT, port, host)
        chirper.send(with_depart)
        chirper.close()
        ctx.destroy(linger=0)
    assert_healthy(orbiting, State.SAFE)
