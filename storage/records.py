"""Integrity envelopes for stored records.

Every record a typed store writes is *sealed*: a 4-byte CRC-32 of the payload followed
by the payload. Reading unseals and checks it, and decoding with the strict chain codec
checks the rest, so a truncated or bit-flipped record surfaces as
:class:`~storage.errors.Corruption` naming its key — never as data. (Records addressed
by a hash, like tree nodes and historical values, are checked against that hash
instead, which is stronger.)
"""

from __future__ import annotations

import zlib
from typing import TypeVar

from chain.codec import Record, unpack
from chain.errors import DecodeError

from .errors import Corruption

R = TypeVar("R", bound=Record)

_crc32 = zlib.crc32


def be64(n: int) -> bytes:
    """8-byte big-endian: heights and versions in keys sort numerically."""
    return n.to_bytes(8, "big")


def seal(payload: bytes) -> bytes:
    """CRC-32 (big-endian) + payload."""
    return _crc32(payload).to_bytes(4, "big") + payload


def unseal(key: bytes, raw: bytes) -> bytes:
    """The payload of a sealed record, or Corruption naming ``key``."""
    if len(raw) < 4:
        raise Corruption(key, "record shorter than its checksum")
    payload = raw[4:]
    if _crc32(payload).to_bytes(4, "big") != raw[:4]:
        raise Corruption(key, "checksum mismatch")
    return payload


def load_record(cls: type[R], key: bytes, raw: bytes) -> R:
    """Unseal and strictly decode a stored chain record."""
    payload = unseal(key, raw)
    try:
        return cls.decode(payload)
    except DecodeError as exc:
        raise Corruption(key, f"undecodable {cls.__name__}: {exc}") from None


def load_plain(key: bytes, raw: bytes, max_size: int = 1 << 24) -> object:
    """Unseal and strictly unpack a stored plain msgpack value."""
    payload = unseal(key, raw)
    try:
        return unpack(payload, max_size)
    except DecodeError as exc:
        raise Corruption(key, f"undecodable record: {exc}") from None
