"""Canonical encoding: msgpack of fixed-order arrays, strict in both directions.

Every value that is hashed or signed is a *record*: a frozen dataclass whose fields
each have a declared *kind* (``UInt(64)``, ``Bytes(32)``, ``Str(64)`` ...). A record
encodes as a msgpack array of its fields in declaration order; there are no maps and no
floats anywhere, so one value has exactly one encoding.

Decoding is where untrusted bytes enter, so it is strict: the bytes are unpacked once
(in C), every field is checked against its kind, and the result must re-encode to the
very same bytes. That last rule alone rejects every non-minimal integer, length or
string header; together with the kind checks it rejects truncated input, trailing
bytes, wrong types, floats, maps, extension types, out-of-range integers and oversize
input. Every failure is a :class:`~chain.errors.DecodeError` naming the field.

Integers wider than 64 bits (amounts are up to 256 bits) do not fit a msgpack int, so
:class:`BigUInt` encodes them as minimal big-endian bytes: zero is ``b""`` and a leading
zero byte is refused.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar, dataclass_transform

import msgpack

from .errors import DecodeError, EncodeError

#: Hard ceiling for anything decoded by this module; callers pass tighter limits.
MAX_DECODE_SIZE = 16 * 1024 * 1024

T = TypeVar("T", bound="Record")


class Kind:
    """The declared type of one field: converts between values and msgpack objects."""

    def load(self, raw: Any) -> Any:
        """Check a decoded msgpack object and return the field value, or raise a
        DecodeError (without a path: the enclosing record adds it)."""
        raise NotImplementedError  # pragma: no cover - every kind overrides it

    def dump(self, value: Any) -> Any:
        """Check a field value and return the msgpack object that encodes it, or raise
        an EncodeError (without a path: the enclosing record adds it)."""
        raise NotImplementedError  # pragma: no cover - every kind overrides it


def _bad(what: str) -> DecodeError:
    return DecodeError(what)


class UInt(Kind):
    """An unsigned integer of at most ``bits`` bits (``bits`` <= 64), a msgpack int."""

    def __init__(self, bits: int) -> None:
        if not 0 < bits <= 64:
            raise ValueError("UInt holds at most 64 bits; use BigUInt")
        self.bits = bits
        self.limit = 1 << bits

    def load(self, raw: Any) -> int:
        if type(raw) is not int:
            raise _bad(f"expected an integer, got {type(raw).__name__}")
        if not 0 <= raw < self.limit:
            raise _bad(f"integer out of range for u{self.bits}")
        return raw

    def dump(self, value: Any) -> int:
        if type(value) is not int or not 0 <= value < self.limit:
            raise EncodeError(f"{value!r} is not a u{self.bits}")
        return value


class BigUInt(Kind):
    """An unsigned integer of up to ``bits`` bits, as minimal big-endian bytes."""

    def __init__(self, bits: int = 256) -> None:
        self.bits = bits
        self.limit = 1 << bits
        self.max_len = (bits + 7) // 8

    def load(self, raw: Any) -> int:
        if type(raw) is not bytes:
            raise _bad(f"expected bytes for a u{self.bits}, got {type(raw).__name__}")
        if len(raw) > self.max_len:
            raise _bad(f"u{self.bits} longer than {self.max_len} bytes")
        if raw[:1] == b"\x00":
            raise _bad("non-minimal integer (leading zero byte)")
        value = int.from_bytes(raw, "big")
        if value >= self.limit:
            raise _bad(f"integer out of range for u{self.bits}")
        return value

    def dump(self, value: Any) -> bytes:
        if type(value) is not int or not 0 <= value < self.limit:
            raise EncodeError(f"{value!r} is not a u{self.bits}")
        return value.to_bytes((value.bit_length() + 7) // 8, "big")


class Bytes(Kind):
    """A byte string of exactly ``size`` bytes, or of at most ``max_len`` bytes."""

    def __init__(self, size: int | None = None, *, max_len: int | None = None) -> None:
        if (size is None) == (max_len is None):
            raise ValueError("give exactly one of size and max_len")
        self.size = size
        self.max_len = max_len

    def _ok(self, value: Any) -> bool:
        if type(value) is not bytes:
            return False
        if self.size is not None:
            return len(value) == self.size
        return len(value) <= self.max_len  # type: ignore[operator]

    def _what(self) -> str:
        return f"{self.size} bytes" if self.size is not None else f"at most {self.max_len} bytes"

    def load(self, raw: Any) -> bytes:
        if not self._ok(raw):
            got = f"{len(raw)} bytes" if type(raw) is bytes else type(raw).__name__
            raise _bad(f"expected {self._what()}, got {got}")
        return raw

    def dump(self, value: Any) -> bytes:
        if not self._ok(value):
            raise EncodeError(f"expected {self._what()}, got {value!r:.80}")
        return value


class Str(Kind):
    """A UTF-8 text of at most ``max_len`` bytes once encoded."""

    def __init__(self, max_len: int) -> None:
        self.max_len = max_len

    def load(self, raw: Any) -> str:
        if type(raw) is not str:
            raise _bad(f"expected text, got {type(raw).__name__}")
        if len(raw) > self.max_len or len(raw.encode()) > self.max_len:
            raise _bad(f"text longer than {self.max_len} bytes")
        return raw

    def dump(self, value: Any) -> str:
        try:
            ok = type(value) is str and len(value.encode()) <= self.max_len
        except UnicodeEncodeError:  # a lone surrogate, e.g. from JSON "\ud800"
            raise EncodeError("text is not valid Unicode") from None
        if not ok:
            raise EncodeError(f"expected text of at most {self.max_len} bytes")
        return value


class Bool(Kind):
    """``True`` or ``False`` (msgpack booleans, never 0/1)."""

    def load(self, raw: Any) -> bool:
        if type(raw) is not bool:
            raise _bad(f"expected a boolean, got {type(raw).__name__}")
        return raw

    def dump(self, value: Any) -> bool:
        if type(value) is not bool:
            raise EncodeError("expected a boolean")
        return value


class Optional(Kind):
    """Either nil or a value of ``inner``."""

    def __init__(self, inner: Kind) -> None:
        self.inner = inner

    def load(self, raw: Any) -> Any:
        return None if raw is None else self.inner.load(raw)

    def dump(self, value: Any) -> Any:
        return None if value is None else self.inner.dump(value)


class ListOf(Kind):
    """A list of at most ``max_len`` items of one kind (a tuple in Python)."""

    def __init__(self, item: Kind, max_len: int) -> None:
        self.item = item
        self.max_len = max_len

    def load(self, raw: Any) -> tuple[Any, ...]:
        if type(raw) is not list:
            raise _bad(f"expected a list, got {type(raw).__name__}")
        if len(raw) > self.max_len:
            raise _bad(f"list longer than {self.max_len}")
        load = self.item.load
        try:
            return tuple(map(load, raw))
        except DecodeError:
            pass
        # Find the failing item again to name it (only on the error path).
        for i, x in enumerate(raw):
            try:
                load(x)
            except DecodeError as exc:
                raise exc.at(f"[{i}]") from None
        raise AssertionError("unreachable: an item failed once")  # pragma: no cover

    def dump(self, value: Any) -> list[Any]:
        if not isinstance(value, tuple | list) or len(value) > self.max_len:
            raise EncodeError(f"expected a sequence of at most {self.max_len}")
        dump = self.item.dump
        try:
            return list(map(dump, value))
        except EncodeError:
            pass
        for i, x in enumerate(value):  # name the failing item (only on the error path)
            try:
                dump(x)
            except EncodeError as exc:
                raise exc.at(f"[{i}]") from None
        raise AssertionError("unreachable: an item failed once")  # pragma: no cover


class Nested(Kind):
    """A record of one type, encoded as its field array."""

    def __init__(self, cls: type[Record]) -> None:
        self.cls = cls

    def load(self, raw: Any) -> Record:
        return self.cls.from_raw(raw)

    def dump(self, value: Any) -> list[Any]:
        if type(value) is not self.cls:
            raise EncodeError(f"expected {self.cls.__name__}")
        return value.to_raw()


class OneOf(Kind):
    """One of several record types, encoded as ``[tag, field, field, ...]``.

    Each member class declares a class attribute ``TAG`` (a small int) that is unique
    within the union; the tag comes first so a decoder knows which fields follow.
    """

    def __init__(self, *classes: type[Record]) -> None:
        self.by_tag: dict[int, type[Record]] = {}
        for cls in classes:
            tag = cls.TAG
            if tag is None or tag in self.by_tag:
                raise ValueError(f"{cls.__name__} needs a unique TAG")
            self.by_tag[tag] = cls

    def load(self, raw: Any) -> Record:
        if type(raw) is not list or not raw or type(raw[0]) is not int:
            raise _bad("expected [tag, fields...]")
        cls = self.by_tag.get(raw[0])
        if cls is None:
            raise _bad(f"unknown tag {raw[0]}")
        try:
            return cls.from_raw(raw[1:])
        except DecodeError as exc:
            raise exc.at(f"<{cls.__name__}>") from None

    def dump(self, value: Any) -> list[Any]:
        cls = type(value)
        if self.by_tag.get(getattr(cls, "TAG", None)) is not cls:  # type: ignore[arg-type]
            raise EncodeError(f"{cls.__name__} is not a member of this union")
        return [cls.TAG, *value.to_raw()]

    def encode(self, value: Record) -> bytes:
        """The canonical bytes of ``[tag, fields...]`` (as ``pack(self.dump(value))``
        gives), nested records contributing their cached encodings."""
        cls = type(value)
        if self.by_tag.get(getattr(cls, "TAG", None)) is not cls:  # type: ignore[arg-type]
            raise EncodeError(f"{cls.__name__} is not a member of this union")
        try:
            fields = value._encode_fields()
        except EncodeError:
            return _pack_checked(self.dump(value))  # raises, naming the field
        return _array_header(1 + len(cls.SCHEMA)) + _pack_checked(cls.TAG) + fields


class Record:
    """Base of every encodable record: a frozen dataclass plus a field schema.

    Subclasses are declared with :func:`record`, which pairs each dataclass field with a
    kind. ``encode()`` caches its bytes on the instance (records are immutable), and a
    record made by ``decode()`` keeps the input bytes, which are canonical by then.
    """

    SCHEMA: ClassVar[tuple[tuple[str, Kind], ...]] = ()
    TAG: ClassVar[int | None] = None
    #: Largest encoding accepted by ``decode`` for this type.
    MAX_SIZE: ClassVar[int] = MAX_DECODE_SIZE

    @classmethod
    def from_raw(cls: type[T], raw: Any) -> T:
        """Build a record from unpacked msgpack objects, checking every field."""
        schema = cls.SCHEMA
        if type(raw) is not list:
            raise _bad(f"expected a list of {len(schema)} fields")
        if len(raw) != len(schema):
            raise _bad(f"expected {len(schema)} fields, got {len(raw)}")
        values: list[Any] = []
        append = values.append
        for (name, kind), x in zip(schema, raw, strict=True):
            try:
                append(kind.load(x))
            except DecodeError as exc:
                raise exc.at(f".{name}") from None
        return cls(*values)

    def to_raw(self) -> list[Any]:
        """The field values as msgpack objects, each checked against its kind."""
        out: list[Any] = []
        append = out.append
        for name, kind in self.SCHEMA:
            try:
                append(kind.dump(getattr(self, name)))
            except EncodeError as exc:
                raise exc.at(f".{name}") from None
        return out

    def encode(self) -> bytes:
        """The canonical bytes of this record (computed once).

        A msgpack array is its header followed by its items' encodings, so a record is
        assembled from its fields' bytes, and a nested record (a block's transactions,
        a certificate's signatures) contributes its own cached encoding rather than
        being unpacked into objects and packed again: a block of transactions that
        arrived as bytes encodes by concatenation.
        """
        cached = self.__dict__.get("_encoded")
        if cached is None:
            try:
                if _is_flat(type(self)):  # no nested records: one packb is quickest
                    cached = _pack_checked(self.to_raw())
                else:
                    cached = _array_header(len(self.SCHEMA)) + self._encode_fields()
            except EncodeError:
                # Encode the slow way for the error: it names the failing field's path.
                try:
                    cached = _pack_checked(self.to_raw())
                except EncodeError as exc:
                    raise exc.at(type(self).__name__) from None
            object.__setattr__(self, "_encoded", cached)
        return cached

    def _encode_fields(self) -> bytes:
        """The fields' encodings, concatenated (the array without its header): each
        run of plain fields packed in one call, nested records from their caches."""
        parts: list[bytes] = []
        run: list[Any] = []
        for (name, kind), nested in zip(self.SCHEMA, _nesting(type(self)), strict=True):
            if nested:
                if run:
                    parts.append(_pack_run(run))
                    run = []
                parts.append(_encode_value(kind, getattr(self, name)))
            else:
                run.append(kind.dump(getattr(self, name)))
        if run:
            parts.append(_pack_run(run))
        return b"".join(parts)

    @classmethod
    def decode(cls: type[T], data: bytes, max_size: int | None = None) -> T:
        """Strictly decode ``data`` as this record type (see the module docstring)."""
        raw = unpack(data, cls.MAX_SIZE if max_size is None else max_size, cls.__name__,
                     plain=False)
        try:
            value = cls.from_raw(raw)
        except DecodeError as exc:
            raise exc.at(cls.__name__) from None
        data = bytes(data)
        object.__setattr__(value, "_encoded", data)
        if not _is_flat(cls):
            _keep_nested_encodings(value, data)
        return value


# dataclass_transform: type checkers see a decorated class as the frozen dataclass it
# becomes (fields in order, a typed __init__).
@dataclass_transform(frozen_default=True, eq_default=True)
def record(*schema: tuple[str, Kind]) -> Callable[[type[T]], type[T]]:
    """Class decorator: make ``cls`` a frozen dataclass whose fields have these kinds.

    The schema must name the dataclass fields in declaration order; a mismatch is a
    programming error caught at import time.
    """

    def wrap(cls: type[T]) -> type[T]:
        cls = dataclasses.dataclass(frozen=True, eq=True)(cls)
        # A dataclass by now, which its static type (a Record) cannot say.
        names = tuple(f.name for f in dataclasses.fields(cls))  # type: ignore[arg-type]
        if names != tuple(name for name, _ in schema):
            raise TypeError(f"{cls.__name__}: schema {schema} does not match fields {names}")
        cls.SCHEMA = tuple(schema)
        return cls

    return wrap


def _array_header(n: int) -> bytes:
    """The msgpack header of an array of ``n`` items (fixarray, array 16, array 32)."""
    if n < 16:
        return bytes((0x90 | n,))
    if n < 0x10000:
        return b"\xdc" + n.to_bytes(2, "big")
    return b"\xdd" + n.to_bytes(4, "big")


_NESTING: dict[type, tuple[bool, ...]] = {}


def _nesting(cls: type[Record]) -> tuple[bool, ...]:
    """For each field of ``cls``: does it hold a nested record, by itself, in a list
    or optionally? (Those the concatenating encoder takes from the record's cache.)"""
    plan = _NESTING.get(cls)
    if plan is None:
        def nests(kind: Kind) -> bool:
            if type(kind) is Optional:
                return nests(kind.inner)
            return type(kind) is Nested or (type(kind) is ListOf
                                            and type(kind.item) is Nested)
        plan = _NESTING[cls] = tuple(nests(kind) for _, kind in cls.SCHEMA)
    return plan


def _is_flat(cls: type[Record]) -> bool:
    """True if no field of ``cls`` holds a nested record: one packb is quickest."""
    return not any(_nesting(cls))


def _pack_run(values: list[Any]) -> bytes:
    """Consecutive plain field values, packed in one call, without the array header."""
    packed = _pack_checked(values)
    return packed[len(_array_header(len(values))):]


def _keep_nested_encodings(value: Record, data: bytes) -> None:
    """Give the records nested in a freshly decoded ``value`` (one level: a block's
    header and transactions, a message's block) their slices of ``data`` as their
    cached encodings, so hashing a decoded block's transactions does not pack each one
    again. ``data`` is canonical (decode checked it), so each slice is too."""
    reader = msgpack.Unpacker(max_buffer_size=len(data))
    reader.feed(data)
    reader.read_array_header()

    def keep(item: Record) -> None:
        start = reader.tell()
        reader.skip()
        object.__setattr__(item, "_encoded", data[start:reader.tell()])

    for name, kind in value.SCHEMA:
        field = getattr(value, name)
        t = type(kind)
        if t is Optional and field is not None:
            kind, t = kind.inner, type(kind.inner)  # type: ignore[attr-defined]
        if t is Nested and field is not None:
            keep(field)
        elif t is ListOf and type(kind.item) is Nested:  # type: ignore[attr-defined]
            reader.read_array_header()
            for item in field:
                keep(item)
        else:
            reader.skip()


def _encode_value(kind: Kind, value: Any) -> bytes:
    """The canonical bytes of one field: what ``_pack_checked(kind.dump(value))`` gives,
    built from nested records' cached encodings where there are any."""
    t = type(kind)
    if t is Nested:
        if type(value) is not kind.cls:  # type: ignore[attr-defined]
            raise EncodeError("not the declared record type")
        return value.encode()
    if t is ListOf and type(kind.item) is Nested:  # type: ignore[attr-defined]
        cls = kind.item.cls  # type: ignore[attr-defined]
        if not isinstance(value, tuple | list) or len(value) > kind.max_len:  # type: ignore[attr-defined]
            raise EncodeError("not a short enough sequence")
        parts = [_array_header(len(value))]
        for item in value:
            if type(item) is not cls:
                raise EncodeError("not the declared record type")
            parts.append(item.encode())
        return b"".join(parts)
    if t is Optional:
        return b"\xc0" if value is None else _encode_value(kind.inner, value)  # type: ignore[attr-defined]
    return _pack_checked(kind.dump(value))


def _shared_packer(*, strict_types: bool) -> Callable[[Any], bytes]:
    """A packing function with msgpack.packb's result and a fraction of its cost: packb
    builds a Packer, with its buffer, on every call (4x the work of packing a small
    record); one shared C Packer does not. Sharing it is safe for what the callers pass
    — exact lists, tuples, bytes, str and ints, never a subclass (whose ``__iter__`` the
    packer would call back into, re-entrantly) and no threads: it packs in one call that
    holds the GIL and empties its buffer when packing fails. (Its buffer keeps the size
    of the largest value packed, at most a block.) The pure-Python fallback is none of
    that, so it keeps packb."""
    if msgpack.Packer.__module__ != "msgpack._cmsgpack":  # pragma: no cover
        return lambda raw: msgpack.packb(raw, use_bin_type=True, strict_types=strict_types)
    return msgpack.Packer(use_bin_type=True, strict_types=strict_types).pack


#: msgpack.packb(raw, use_bin_type=True) without its per-call Packer (lists and tuples
#: both become arrays): for plain values the caller has checked (no floats).
packb_plain = _shared_packer(strict_types=False)
_packb_strict = _shared_packer(strict_types=True)


def _pack_checked(raw: Any) -> bytes:
    """msgpack-encode objects known to hold no floats (records check every field)."""
    try:
        return _packb_strict(raw)
    except (TypeError, ValueError, OverflowError) as exc:
        raise EncodeError(f"cannot encode: {exc}") from exc


def pack(raw: Any) -> bytes:
    """msgpack-encode plain objects the canonical way (bin type for bytes, no floats)."""
    # msgpack packs floats natively, so the "no floats" rule is checked here; unpack()
    # refuses them, and nothing we sign or hash may contain one.
    stack = [raw]
    while stack:
        item = stack.pop()
        if type(item) is list:
            stack.extend(item)
        elif isinstance(item, float):
            raise EncodeError("cannot encode: floats are not allowed")
    try:
        return _packb_strict(raw)
    except (TypeError, ValueError, OverflowError) as exc:
        raise EncodeError(f"cannot encode: {exc}") from exc


def unpack(
    data: bytes,
    max_size: int = MAX_DECODE_SIZE,
    what: str = "value",
    *,
    plain: bool = True,
    max_arrays: int | None = None,
) -> Any:
    """Unpack canonical msgpack bytes into plain objects, or raise DecodeError.

    Besides msgpack's own checks it refuses input larger than ``max_size`` and input
    that does not re-encode to exactly the same bytes (the canonical-form rule). With
    ``plain`` (the default) it also walks the result to refuse floats, maps and
    extension types; record decoding skips that walk because every field kind refuses
    them anyway.

    ``max_arrays`` caps how many arrays the input may hold. An empty array is one byte
    on the wire but a Python list of some 60 bytes, so input from the network whose
    shape is known (a few arrays at most) sets it to stop that amplification while
    unpacking, before the lists exist.
    """
    if type(data) is not bytes:
        if isinstance(data, bytearray | memoryview):
            data = bytes(data)
        else:
            raise DecodeError(f"{what}: expected bytes, got {type(data).__name__}")
    if len(data) > max_size:
        raise DecodeError(f"{what}: {len(data)} bytes exceeds the limit of {max_size}")
    if not data:
        raise DecodeError(f"{what}: empty input")
    hook = None if max_arrays is None else _ArrayBudget(max_arrays, what)

    def no_maps(pairs: Any) -> Any:
        raise DecodeError(f"{what}: maps are not allowed")

    def no_extensions(code: int, data: bytes) -> Any:
        raise DecodeError(f"{what}: extension types are not allowed")

    try:
        # Maps and extensions are refused while unpacking, not after: an empty map is
        # one byte on the wire but a 64-byte dict in memory.
        raw = msgpack.unpackb(
            data,
            raw=False,
            use_list=True,
            strict_map_key=True,
            list_hook=hook,
            object_pairs_hook=no_maps,
            ext_hook=no_extensions,
        )
    except msgpack.ExtraData:
        raise DecodeError(f"{what}: trailing bytes after the value") from None
    except (msgpack.OutOfData, msgpack.FormatError, msgpack.StackError) as exc:
        raise DecodeError(f"{what}: malformed or truncated msgpack ({type(exc).__name__})") from None
    except (ValueError, TypeError, UnicodeDecodeError) as exc:
        raise DecodeError(f"{what}: malformed msgpack: {exc}") from None
    if plain:
        _refuse_floats_and_maps(raw, what)
    try:
        again = _pack_checked(raw)
    except EncodeError:
        again = None
    if again != data:
        raise DecodeError(f"{what}: not in canonical encoding")
    return raw


class _ArrayBudget:
    """A msgpack ``list_hook`` that refuses input holding more than ``limit`` arrays."""

    __slots__ = ("left", "what")

    def __init__(self, limit: int, what: str) -> None:
        self.left = limit
        self.what = what

    def __call__(self, items: list[Any]) -> list[Any]:
        self.left -= 1
        if self.left < 0:
            raise DecodeError(f"{self.what}: more nested arrays than this message may hold")
        return items


def _refuse_floats_and_maps(raw: Any, what: str) -> None:
    # Records reject maps and floats field by field, but plain unpack() is also used for
    # framing and storage envelopes, so the rule is enforced here once for everyone.
    stack = [raw]
    while stack:
        item = stack.pop()
        t = type(item)
        if t is list:
            stack.extend(item)
        elif t is float:
            raise DecodeError(f"{what}: floats are not allowed")
        elif t is dict:
            raise DecodeError(f"{what}: maps are not allowed")
        elif t is msgpack.ExtType or t is msgpack.Timestamp:
            # msgpack turns the timestamp extension (type -1) into a Timestamp, not an
            # ExtType, and re-packs it identically, so it needs its own check.
            raise DecodeError(f"{what}: extension types are not allowed")
