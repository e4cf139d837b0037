"""CDTP2 data messages, shape only (wire doc §8).

One frame: str ``"CDTP\\x02"``, str sender, uint type (0 DATA, 1 BOR, 2 EOR), array of records.
A record is an array of 3: uint sequence, map tags (str keys), array of bin blocks.
BOR and EOR carry exactly two records: ``[0, user_tags, []]`` and ``[1, config | run metadata, []]``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, NoReturn

import msgpack

from . import _wire
from .errors import EncodeError

__all__ = ["CDTPType", "DataMessage", "DataRecord", "bor", "decode", "encode", "eor"]


class CDTPType(IntEnum):
    DATA = 0
    BOR = 1
    EOR = 2


@dataclass(frozen=True, slots=True)
class DataRecord:
    sequence: int
    tags: Mapping[str, Any] = field(default_factory=dict)
    blocks: tuple[bytes, ...] = ()


@dataclass(frozen=True, slots=True)
class DataMessage:
    sender: str
    type: CDTPType
    records: tuple[DataRecord, ...]


def bor(sender: str, user_tags: Mapping[str, Any], config: Mapping[str, Any]) -> DataMessage:
    """Begin-of-run: user tags and the full stored configuration."""
    return DataMessage(sender, CDTPType.BOR, (DataRecord(0, dict(user_tags)), DataRecord(1, dict(config))))


def eor(sender: str, user_tags: Mapping[str, Any], run_metadata: Mapping[str, Any]) -> DataMessage:
    """End-of-run: user tags and the run metadata."""
    return DataMessage(
        sender, CDTPType.EOR, (DataRecord(0, dict(user_tags)), DataRecord(1, dict(run_metadata)))
    )


_UINT64_MAX = 2**64 - 1
_MAX_TYPE = max(CDTPType)


def _check_shape(mtype: CDTPType, count: int, fail: Callable[[str], Any]) -> None:
    if mtype is not CDTPType.DATA and count != 2:
        fail(f"{mtype.name} must carry exactly 2 records, got {count}")


def encode(msg: DataMessage) -> bytes:
    """The single frame of `msg`."""
    try:
        mtype = CDTPType(msg.type)
    except ValueError:
        raise EncodeError(f"CDTP: type: invalid {msg.type!r}") from None

    def fail(text: str) -> NoReturn:
        raise EncodeError(f"CDTP: {text}")

    _check_shape(mtype, len(msg.records), fail)
    head = _wire.Writer("CDTP").string("protocol", _wire.CDTP2).sender(msg.sender).uint("type", int(mtype))
    body = []
    for i, rec in enumerate(msg.records):
        seq, tags, blocks = rec.sequence, rec.tags, rec.blocks
        if type(seq) is not int or not 0 <= seq <= _UINT64_MAX:
            fail(f"record {i}: sequence must be a uint64, got {seq!r}")
        if not isinstance(tags, Mapping):
            fail(f"record {i}: tags must be a mapping, got {type(tags).__name__}")
        if tags:
            if not all(type(k) is str for k in tags):
                fail(f"record {i}: tag keys must be str")
            _wire.check_value(tags, lambda m, i=i: fail(f"record {i} tags: {m}"))
        if not all(isinstance(b, bytes | bytearray | memoryview) for b in blocks):
            fail(f"record {i}: blocks must be bytes")
        body.append([seq, tags if type(tags) is dict else dict(tags), list(blocks)])
    try:
        packed: bytes = msgpack.Packer(use_bin_type=True, datetime=True).pack(
            body
        )  # one per call: thread-safe
    except Exception as exc:  # defensive: everything was validated above
        fail(f"records: cannot pack ({type(exc).__name__}: {exc})")
    return head.frame() + packed


def decode(data: bytes) -> DataMessage:
    """Parse one CDTP2 frame; DecodeError for anything malformed."""
    frame = _wire.as_bytes(data, "CDTP")
    r = _wire.Reader(frame, "CDTP")
    r.protocol(_wire.CDTP2)
    sender = r.sender()
    mtype = CDTPType(r.uint("type", _MAX_TYPE))
    raw = r.any("records", check=False)  # validated record by record below
    r.end()
    if type(raw) is not list:
        r.fail("records", f"expected array, got {type(raw).__name__}")
    _check_shape(mtype, len(raw), lambda m: r.fail("records", m))
    records = []
    for i, entry in enumerate(raw):
        if type(entry) is not list or len(entry) != 3:
            r.fail(f"record {i}", "expected an array of 3 (sequence, tags, blocks)")
        seq, tags, blocks = entry
        if type(seq) is not int or seq < 0:
            r.fail(f"record {i}", f"sequence must be a uint, got {seq!r}")
        if type(tags) is not dict:
            r.fail(f"record {i}", f"tags must be a map, got {type(tags).__name__}")
        if tags:
            if not all(type(k) is str for k in tags):
                r.fail(f"record {i}", "tag keys must be str")
            _wire.check_value(tags, lambda m, i=i: r.fail(f"record {i} tags", m))
        if type(blocks) is not list or not all(type(b) is bytes for b in blocks):
            r.fail(f"record {i}", "blocks must be an array of bin")
        records.append(DataRecord(seq, tags, tuple(blocks)))
    return DataMessage(sender, mtype, tuple(records))
