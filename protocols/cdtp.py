"""CDTP2 data messages, shape only (wire doc §8).

One frame: str ``"CDTP\\x02"``, str sender, uint type (0 DATA, 1 BOR, 2 EOR), array of records.
A record is an array of 3: uint sequence, map tags (str keys), array of bin blocks.
BOR and EOR carry exactly two records: ``[0, user_tags, []]`` and ``[1, config | run metadata, []]``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

import msgpack

from . import _wire
from .errors import DecodeError, EncodeError

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


def _check_shape(mtype: CDTPType, count: int, fail: Any) -> None:
    if mtype is not CDTPType.DATA and count != 2:
        fail(f"{mtype.name} must carry exactly 2 records, got {count}")


def encode(msg: DataMessage) -> bytes:
    """The single frame of `msg`."""
    try:
        mtype = CDTPType(msg.type)
    except ValueError:
        raise EncodeError(f"CDTP: type: invalid {msg.type!r}") from None

    def fail(text: str) -> None:
        raise EncodeError(f"CDTP: {text}")

    _check_shape(mtype, len(msg.records), fail)
    w = _wire.Writer("CDTP").string("protocol", _wire.CDTP2).sender(msg.sender).uint("type", int(mtype))
    packer = msgpack.Packer()
    parts = [w.frame(), packer.pack_array_header(len(msg.records))]
    for i, rec in enumerate(msg.records):
        rw = _wire.Writer(f"CDTP record {i}").uint("sequence", rec.sequence).tags(rec.tags)
        for block in rec.blocks:
            if not isinstance(block, bytes | bytearray | memoryview):
                raise EncodeError(f"CDTP record {i}: blocks must be bytes, got {type(block).__name__}")
        parts += [packer.pack_array_header(3), rw.frame(), packer.pack_array_header(len(rec.blocks))]
        parts += [packer.pack(bytes(b)) for b in rec.blocks]
    return b"".join(parts)


def decode(data: bytes) -> DataMessage:
    """Parse one CDTP2 frame; DecodeError for anything malformed."""
    frame = _wire.as_bytes(data, "CDTP")
    r = _wire.Reader(frame, "CDTP")
    r.protocol(_wire.CDTP2)
    sender = r.sender()
    mtype = CDTPType(r.uint("type", max(CDTPType)))
    raw = r.any("records")
    r.end()
    if type(raw) is not list:
        r.fail("records", f"expected array, got {type(raw).__name__}")
    records = []
    for i, entry in enumerate(raw):
        what = f"record {i}"
        if type(entry) is not list or len(entry) != 3:
            r.fail(what, "expected an array of 3 (sequence, tags, blocks)")
        seq, tags, blocks = entry
        if type(seq) is not int or seq < 0:
            r.fail(what, f"sequence must be a uint, got {seq!r}")
        _wire.check_tags(tags, lambda m, what=what: r.fail(f"{what} tags", m))
        if type(blocks) is not list or any(type(b) is not bytes for b in blocks):
            r.fail(what, "blocks must be an array of bin")
        records.append(DataRecord(seq, tags, tuple(blocks)))

    def fail(text: str) -> None:
        raise DecodeError(f"CDTP: {text}")

    _check_shape(mtype, len(records), fail)
    return DataMessage(sender, mtype, tuple(records))
