"""The contract language's types, and how each is held on the VM stack and in storage.

On the stack, ``uint`` and ``int`` are VM integers (``int`` as two's complement),
``bool`` is the integer 0 or 1, and ``Address`` (20 bytes), ``bytes`` and ``str``
(UTF-8) are VM byte strings. In storage and in call arguments every value is a byte
string: integers minimal big-endian (zero is empty, so a zero value deletes its storage
key), ``bool`` empty or ``01``; a missing key therefore reads as the zero value of its
type.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Type:
    name: str

    @property
    def is_integer(self) -> bool:
        return self.name in ("uint", "int")

    @property
    def on_stack_as_int(self) -> bool:
        return self.name in ("uint", "int", "bool")

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True)
class MapType(Type):
    key: Type
    value: Type

    def __str__(self) -> str:
        return f"Map[{self.key}, {self.value}]"


@dataclass(frozen=True)
class RecordType(Type):
    """A record stored field by field: ``class Order(Record)``."""

    fields: tuple[tuple[str, Type], ...]

    def field(self, name: str) -> Type | None:
        return dict(self.fields).get(name)


@dataclass(frozen=True)
class InterfaceMethod:
    name: str
    params: tuple[tuple[str, Type], ...]
    returns: Type | None
    view: bool


def name_key(name: str) -> bytes:
    """The storage key part for a variable or record field: its length-prefixed name
    (a map key follows as 32 bytes for integers, 20 for addresses, a SHA-256 for byte
    strings, so a key never runs into the next)."""
    raw = name.encode()
    return bytes([len(raw)]) + raw


UINT = Type("uint")
INT = Type("int")
BOOL = Type("bool")
ADDRESS = Type("Address")
BYTES = Type("bytes")
STR = Type("str")
NONE = Type("None")

BY_NAME = {t.name: t for t in (UINT, INT, BOOL, ADDRESS, BYTES, STR)}
ABI_NAMES = {t: t.name for t in (UINT, INT, BOOL, ADDRESS, BYTES, STR)}
