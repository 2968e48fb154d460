"""Values <-> the byte strings contracts take and give, by ABI type name.

Integers are minimal big-endian (``int`` as its 256-bit two's complement word; zero is
empty), ``bool`` is empty or ``01``, an ``Address`` is its 20 bytes, ``bytes`` are
themselves and ``str`` is UTF-8. Event data, and a record a method returns, is a
msgpack array of such byte strings (a record decodes to a dict of its fields, by the
ABI's ``records``).
"""

from __future__ import annotations

import msgpack

from chain.address import address_from_text
from chain.errors import InvalidAddress

_WORD = 1 << 256
UINT_MAX = _WORD - 1
INT_MIN, INT_MAX = -(1 << 255), (1 << 255) - 1


class AbiError(ValueError):
    """A value does not fit its ABI type (says which and why)."""


def _minimal(n: int) -> bytes:
    return n.to_bytes((n.bit_length() + 7) >> 3, "big")


def encode_value(type_name: str, value: object) -> bytes:
    """A Python value as the bytes a contract takes for ``type_name``."""
    if type_name == "uint":
        if type(value) is not int or not 0 <= value <= UINT_MAX:
            raise AbiError(f"uint must be an integer in 0..2**256-1, got {value!r}")
        return _minimal(value)
    if type_name == "int":
        if type(value) is not int or not INT_MIN <= value <= INT_MAX:
            raise AbiError(f"int must be an integer in -2**255..2**255-1, got {value!r}")
        return _minimal(value % _WORD)
    if type_name == "bool":
        if type(value) is not bool:
            raise AbiError(f"bool must be True or False, got {value!r}")
        return b"\x01" if value else b""
    if type_name == "Address":
        if isinstance(value, str):
            try:
                value = address_from_text(value)
            except InvalidAddress as exc:
                raise AbiError(f"Address: {exc}") from None
        if type(value) is not bytes or len(value) != 20:
            raise AbiError(f"Address must be 20 bytes or an agora1... text, got {value!r}")
        return value
    if type_name == "bytes":
        if type(value) is not bytes:
            raise AbiError(f"bytes must be bytes, got {value!r}")
        return value
    if type_name == "str":
        if type(value) is not str:
            raise AbiError(f"str must be text, got {value!r}")
        return value.encode()
    raise AbiError(f"unknown ABI type {type_name!r}")


def decode_value(type_name: str, data: bytes,
                 records: dict[str, list[dict]] | None = None) -> object:
    """The Python value of bytes a contract gave for ``type_name`` (a record's name,
    looked up in ``records``, decodes to a dict of its fields)."""
    if records is not None and type_name in records:
        return decode_event(records[type_name], data)
    if type_name in ("uint", "int", "bool"):
        if len(data) > 32:
            raise AbiError(f"{type_name} of {len(data)} bytes")
        n = int.from_bytes(data, "big")
        if type_name == "bool":
            return n != 0
        return n - _WORD if type_name == "int" and n > INT_MAX else n
    if type_name == "Address":
        return data
    if type_name == "str":
        return data.decode("utf-8", "replace")
    return data


def decode_event(fields: list[dict], data: bytes) -> dict[str, object]:
    """An event's (or a returned record's) fields by name, from its packed data and the
    ABI's field list."""
    try:
        raw = msgpack.unpackb(data, raw=False)
    except (ValueError, msgpack.UnpackException) as exc:
        raise AbiError(f"not a packed array of {len(fields)} values: {exc}") from None
    if type(raw) is not list or len(raw) != len(fields) \
            or any(type(v) is not bytes for v in raw):
        raise AbiError(f"not a packed array of {len(fields)} byte strings")
    return {f["name"]: decode_value(f["type"], v) for f, v in zip(fields, raw, strict=True)}
