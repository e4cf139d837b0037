"""CDTP2 message shape against the Appendix A.8 capture."""

from __future__ import annotations

import msgpack
import pytest
from hypothesis import given

from protocols import DecodeError, EncodeError, cdtp
from tests.protocols import captures as cap
from tests.protocols.strategies import data_messages

SENDER = "PyRandomTransmitter.T"


def test_data_prefix_capture() -> None:
    # The dump shows 64 records of two 8-byte blocks; the first record's blocks are visible in part.
    # header: a5 "CDTP\x02" (6) + b5 sender (22) + 00 DATA (1) + dc 00 40 (3) = 32 bytes
    assert cap.CDTP_DATA_PREFIX[32:38] == bytes.fromhex("93 01 80 92 c4 08")
    first = cap.CDTP_DATA_PREFIX[38:46]  # the first block's 8 bytes
    records = tuple(cdtp.DataRecord(i + 1, {}, (first, bytes(8))) for i in range(64))
    data = cdtp.encode(cdtp.DataMessage(SENDER, cdtp.CDTPType.DATA, records))
    assert data.startswith(cap.CDTP_DATA_PREFIX[:-8])
    assert len(data) == 29 + 3 + 64 * (1 + 1 + 1 + 1 + 2 * 10)  # header, array16, 64 x [seq, {}, [2 bins]]
    assert cdtp.decode(data) == cdtp.DataMessage(SENDER, cdtp.CDTPType.DATA, records)


def test_eor_shape() -> None:
    start = msgpack.Timestamp(1795298851, 0)
    meta = {
        "version": "1.0.2",
        "cnstln_version": "1.0.2",
        "cnstln_codename": "Corona Australis",
        "run_id": "d1",
        "time_start": start,
        "license": "ODC-By-1.0",
        "time_end": msgpack.Timestamp(1795298900, 5000),
        "condition_code": 16,
        "condition": "DEGRADED",
        "data_records": 1561536,
    }
    msg = cdtp.eor(SENDER, {}, meta)
    data = cdtp.encode(msg)
    unpacker = msgpack.Unpacker(timestamp=0)
    unpacker.feed(data)
    assert list(unpacker) == ["CDTP\x02", SENDER, 2, [[0, {}, []], [1, meta, []]]]
    back = cdtp.decode(data)
    assert back == msg
    assert back.records[1].tags["time_start"] == start


def test_bor_shape() -> None:
    msg = cdtp.bor(SENDER, {"tag": 1}, {"_data": {"bor_timeout": 10}})
    assert [r.sequence for r in msg.records] == [0, 1]
    assert cdtp.decode(cdtp.encode(msg)) == msg


@given(data_messages)
def test_round_trip(msg: cdtp.DataMessage) -> None:
    assert cdtp.decode(cdtp.encode(msg)) == msg


def _msg(*objs: object) -> bytes:
    return b"".join(msgpack.packb(o) for o in objs)


MALFORMED = {
    "wrong protocol": _msg("CDTP\x01", SENDER, 0, []),
    "bad sender": _msg("CDTP\x02", "T", 0, []),
    "type 3": _msg("CDTP\x02", SENDER, 3, []),
    "records not array": _msg("CDTP\x02", SENDER, 0, {}),
    "record of 2": _msg("CDTP\x02", SENDER, 0, [[1, {}]]),
    "negative sequence": _msg("CDTP\x02", SENDER, 0, [[-1, {}, []]]),
    "tags int key": _msg("CDTP\x02", SENDER, 0) + b"\x91\x93\x01\x81\x01\x01\x90",
    "str block": _msg("CDTP\x02", SENDER, 0, [[1, {}, ["x"]]]),
    "BOR with one record": _msg("CDTP\x02", SENDER, 1, [[0, {}, []]]),
    "EOR with three records": _msg("CDTP\x02", SENDER, 2, [[0, {}, []]] * 3),
    "trailing": _msg("CDTP\x02", SENDER, 0, []) + b"\x00",
    "bin bomb": _msg("CDTP\x02", SENDER, 0) + b"\x91\x93\x01\x80\x91\xc6\xff\xff\xff\xff",
    "not bytes": "CDTP",
}


@pytest.mark.parametrize("data", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed(data: bytes) -> None:
    with pytest.raises(DecodeError):
        cdtp.decode(data)


def test_encode_rejects() -> None:
    for msg in (
        cdtp.DataMessage(SENDER, cdtp.CDTPType.BOR, ()),
        cdtp.DataMessage(SENDER, 7, ()),  # type: ignore[arg-type]
        cdtp.DataMessage(SENDER, cdtp.CDTPType.DATA, (cdtp.DataRecord(-1),)),
        cdtp.DataMessage(SENDER, cdtp.CDTPType.DATA, (cdtp.DataRecord(1, {}, ("x",)),)),  # type: ignore[arg-type]
        cdtp.DataMessage("x", cdtp.CDTPType.DATA, ()),
    ):
        with pytest.raises(EncodeError):
            cdtp.encode(msg)
