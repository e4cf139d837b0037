"""Private msgpack helpers shared by the codecs: bounded unpacking, strict field readers, packing."""

from __future__ import annotations

import functools
import time
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, NoReturn

import msgpack

from .errors import DecodeError, EncodeError, InvalidName, _clip
from .names import validate_canonical_name

# The CHP/CSCP/CMDP/CDTP protocol identifiers (msgpack str, version byte last).
CSCP1 = "CSCP\x01"
CHP1 = "CHP\x01"
CMDP1 = "CMDP\x01"
CDTP2 = "CDTP\x02"

_UINT64_MAX = 2**64 - 1
#: Timestamps must convert to a `datetime` (years 1..9999): 1.0.2 calls `to_datetime()` on every
#: timestamp it receives and its receiving thread dies on an OverflowError.
TS_MIN_S = -62135596800  # 0001-01-01T00:00:00Z
TS_MAX_S = 253402300799  # 9999-12-31T23:59:59Z
_LEAVES = (bool, int, float, str, bytes)
_SCALARS = frozenset({bool, int, float, str, bytes, type(None)})


@functools.lru_cache(maxsize=1024)
def _check_short_canonical(name: str) -> None:
    validate_canonical_name(name)


def _check_canonical(name: str) -> None:
    """validate_canonical_name, cached for the few sender names a process sees.

    The cache is bounded in entries and entry size (long names are checked uncached); a name that
    raises InvalidName is never cached.
    """
    if len(name) <= 128:
        _check_short_canonical(name)
    else:
        validate_canonical_name(name)


def now_ns() -> int:
    """Current time in ns since the epoch."""
    return time.time_ns()


def now_us_ns() -> int:
    """Current time in ns, truncated to microseconds (1.0.2 sends `datetime` in CSCP/CMDP headers)."""
    return time.time_ns() // 1000 * 1000


def _reject_ext(code: int, data: bytes) -> NoReturn:
    raise DecodeError(f"unsupported msgpack extension type {code}")


def as_bytes(frame: object, what: str) -> bytes:
    """A frame as bytes (anything with the buffer protocol), else DecodeError."""
    if isinstance(frame, bytes):
        return frame
    if isinstance(frame, str):
        raise DecodeError(f"{what}: expected bytes, got str")
    try:
        return bytes(memoryview(frame))  # type: ignore[arg-type]
    except TypeError:
        raise DecodeError(f"{what}: expected bytes, got {type(frame).__name__}") from None


def as_frames(frames: object, counts: Iterable[int], proto: str) -> list[bytes]:
    """Validate a multipart message: a sequence (not bytes/str) with an allowed frame count."""
    if isinstance(frames, bytes | bytearray | memoryview | str):
        raise DecodeError(f"{proto}: expected a sequence of frames, got {type(frames).__name__}")
    try:
        items = list(frames)  # type: ignore[call-overload]
    except TypeError:
        raise DecodeError(f"{proto}: expected a sequence of frames, got {type(frames).__name__}") from None
    allowed = tuple(counts)
    if len(items) not in allowed:
        want = " or ".join(str(c) for c in allowed)
        raise DecodeError(f"{proto}: expected {want} frames, got {len(items)}")
    return [as_bytes(f, f"{proto} frame {i}") for i, f in enumerate(items)]


def utf8(frame: bytes, what: str) -> str:
    """Decode a raw UTF-8 text frame strictly."""
    try:
        return frame.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DecodeError(f"{what}: invalid UTF-8 ({exc.reason} at byte {exc.start})") from None


class Reader:
    """Reads msgpack objects one by one from a single frame, with limits bounded by its length.

    `max_buffer_size` = frame length makes msgpack cap every declared str/bin/array/map length by the
    frame length, so a tiny frame cannot make it allocate a huge container.
    """

    __slots__ = ("_n", "_unpacker", "what")

    def __init__(self, frame: bytes, what: str) -> None:
        self.what = what
        self._n = len(frame)
        self._unpacker = msgpack.Unpacker(
            raw=False,
            timestamp=0,
            strict_map_key=True,
            use_list=True,
            ext_hook=_reject_ext,
            max_buffer_size=max(self._n, 1),
        )
        self._unpacker.feed(frame)

    def fail(self, field: str, msg: str) -> NoReturn:
        raise DecodeError(f"{self.what}: {field}: {msg}")

    def any(self, field: str, *, check: bool = True) -> Any:
        """The next object; with `check=False` the caller validates its contents itself."""
        try:
            value = self._unpacker.unpack()
        except DecodeError as exc:
            self.fail(field, str(exc))
        except msgpack.OutOfData:
            self.fail(field, "missing (truncated frame)")
        except RecursionError:
            self.fail(field, "nested too deeply")
        except Exception as exc:  # msgpack raises ValueError, TypeError, UnicodeDecodeError, ...
            self.fail(field, f"malformed msgpack ({type(exc).__name__}: {exc})")
        if check and type(value) not in _SCALARS:
            check_value(value, lambda msg: self.fail(field, msg))
        return value

    def string(self, field: str) -> str:
        value = self.any(field)
        if type(value) is not str:
            self.fail(field, f"expected str, got {_tname(value)}")
        return value

    def protocol(self, expected: str) -> None:
        value = self.string("protocol")
        if value != expected:
            self.fail("protocol", f"expected {expected!r}, got {_clip(value)}")

    def sender(self) -> str:
        value = self.string("sender")
        try:
            _check_canonical(value)
        except InvalidName as exc:
            self.fail("sender", str(exc))
        return value

    def uint(self, field: str, maximum: int = _UINT64_MAX) -> int:
        value = self.any(field)
        if type(value) is not int:
            self.fail(field, f"expected uint, got {_tname(value)}")
        if not 0 <= value <= maximum:
            self.fail(field, f"{value} out of range 0..{maximum}")
        return value

    def timestamp_ns(self, field: str = "time") -> int:
        value = self.any(field, check=False)
        if type(value) is not msgpack.Timestamp:
            self.fail(field, f"expected msgpack Timestamp (ext -1), got {_tname(value)}")
        if not TS_MIN_S <= value.seconds <= TS_MAX_S:
            self.fail(field, f"Timestamp {value.seconds} s is outside years 1..9999")
        return int(value.to_unix_nano())

    def tags(self, field: str = "tags") -> dict[str, Any]:
        value = self.any(field)
        return check_tags(value, lambda msg: self.fail(field, msg))

    def end(self) -> None:
        """Require that the frame holds nothing after the objects read."""
        pos = self._unpacker.tell()
        if pos != self._n:
            self.fail("frame", f"{self._n - pos} trailing byte(s) after the last field")


def check_tags(value: object, fail: Any) -> dict[str, Any]:
    if type(value) is not dict:
        fail(f"expected map, got {_tname(value)}")
    for key in value:  # type: ignore[attr-defined]
        if type(key) is not str:
            fail(f"map keys must be str, got {_tname(key)}")
    return value  # type: ignore[return-value]


def _as_dict(value: object) -> object:
    """Packer fallback: any Mapping (e.g. MappingProxyType) goes out as a map."""
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"cannot pack {type(value).__name__}")


def _tname(value: object) -> str:
    if isinstance(value, msgpack.Timestamp):
        return "Timestamp"
    return type(value).__name__


class Writer:
    """Concatenates msgpack objects into one frame; EncodeError for anything unpackable."""

    __slots__ = ("_packer", "_parts", "what")

    def __init__(self, what: str) -> None:
        self.what = what
        self._packer = msgpack.Packer(use_bin_type=True, datetime=True, default=_as_dict)
        self._parts: list[bytes] = []

    def fail(self, field: str, msg: str) -> NoReturn:
        raise EncodeError(f"{self.what}: {field}: {msg}")

    def any(self, field: str, value: object) -> Writer:
        if type(value) not in _SCALARS:
            check_value(value, lambda msg: self.fail(field, msg))
        try:
            self._parts.append(self._packer.pack(value))
        except Exception as exc:  # TypeError, OverflowError, ValueError from msgpack
            self.fail(field, f"cannot pack {_tname(value)} ({type(exc).__name__}: {exc})")
        return self

    def string(self, field: str, value: object) -> Writer:
        if not isinstance(value, str):
            self.fail(field, f"expected str, got {_tname(value)}")
        return self.any(field, value)  # msgpack raises UnicodeEncodeError for lone surrogates

    def sender(self, value: object) -> Writer:
        if type(value) is not str:
            self.fail("sender", f"expected str, got {_tname(value)}")
        try:
            _check_canonical(value)
        except InvalidName as exc:
            self.fail("sender", str(exc))
        return self.string("sender", value)

    def uint(self, field: str, value: object, maximum: int = _UINT64_MAX) -> Writer:
        if not isinstance(value, int) or isinstance(value, bool):
            self.fail(field, f"expected int, got {_tname(value)}")
        if not 0 <= value <= maximum:
            self.fail(field, f"{value} out of range 0..{maximum}")
        return self.any(field, int(value))

    def timestamp_ns(self, value: object, field: str = "time_ns") -> Writer:
        return self.any(field, timestamp(value, lambda msg: self.fail(field, msg)))

    def tags(self, value: object, field: str = "tags") -> Writer:
        if not isinstance(value, Mapping):
            self.fail(field, f"expected a mapping, got {_tname(value)}")
        for key in value:
            if not isinstance(key, str):
                self.fail(field, f"keys must be str, got {_tname(key)}")
        return self.any(field, dict(value))

    def frame(self) -> bytes:
        return b"".join(self._parts)


def timestamp(value: object, fail: Any) -> msgpack.Timestamp:
    """int ns since the epoch -> msgpack Timestamp (packed as ts32/64/96 like msgpack does)."""
    if not isinstance(value, int) or isinstance(value, bool):
        fail(f"expected int ns since the epoch, got {_tname(value)}")
    seconds = value // 1_000_000_000  # type: ignore[operator]
    if not TS_MIN_S <= seconds <= TS_MAX_S:
        fail(f"{value} ns is outside the years 1..9999 that 1.0.2 can convert")
    return msgpack.Timestamp.from_unix_nano(value)


def check_value(value: object, fail: Any) -> None:
    """Walk a tag/payload value: only what both we and 1.0.2 decode without error.

    Allowed: nil, bool, int, float, str, bin, Timestamp in years 1..9999, aware `datetime` (encoding
    only), arrays and maps with str or bin keys. Iterative, so deep nesting cannot overflow the stack.
    """
    stack: list[Any] = [value]
    pop, extend = stack.pop, stack.extend
    while stack:
        v = pop()
        t = type(v)
        # fast paths for exactly what msgpack decodes to
        if t in _SCALARS:
            continue
        if t is list:
            extend(v)
            continue
        if t is dict and all(type(k) is str for k in v):
            extend(v.values())
            continue
        # general cases (subclasses, encoder-side types)
        if v is None or isinstance(v, _LEAVES):
            continue
        if isinstance(v, msgpack.Timestamp):
            if not TS_MIN_S <= v.seconds <= TS_MAX_S:
                fail(f"Timestamp {v.seconds} s is outside years 1..9999")
        elif isinstance(v, msgpack.ExtType):  # a namedtuple: check before tuple
            fail(f"msgpack extension type {v.code} is not accepted by our decoders")
        elif isinstance(v, list | tuple):
            stack.extend(v)
        elif isinstance(v, Mapping):
            for key, item in v.items():
                if not isinstance(key, str | bytes):
                    fail(f"map keys must be str or bin, got {_tname(key)}")
                stack.append(item)
        elif isinstance(v, bytearray | memoryview):
            continue
        elif isinstance(v, datetime):
            if v.tzinfo is None:
                fail("naive datetime (no tzinfo) cannot be packed")
        else:
            fail(f"cannot send {_tname(v)} (no msgpack representation)")


def pack_one(value: object, what: str) -> bytes:
    """One msgpack object as a frame (payloads)."""
    return Writer(what).any("payload", value).frame()
