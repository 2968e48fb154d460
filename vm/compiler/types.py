"""The contract language's types, and how each is held on the VM stack and in storage.

On the stack, ``uint`` and ``int`` are VM integers (``int`` as two's complement),
``bool`` is the integer 0 or 1, and ``Address`` (20 bytes), ``bytes`` and ``str``
(UTF-8) are VM byte strings. In storage and in call arguments every value is a byte
string: integers minimal big-endian (zero is empty, so a zero value deletes its storage
key), ``bool`` empty or ``01``; a missing key therefore reads as the zero value of its
type.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass


@dataclass(frozen=True)
class Type:
    name: str

    @property
    def is_integer(self) -> bool:
        return self.name in ("uint", "int")

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
    """A record: ``class Order(Record)``. Stored in one state key, read and written a
    field at a time (SLOADR / SSTORER, under the record's key); held in a function as
    one local slot per field; returned from a method (or through an interface) as one
    byte string, its fields PACKed in order."""

    fields: tuple[tuple[str, Type], ...]

    def field(self, name: str) -> Type | None:
        return dict(self.fields).get(name)

    def index(self, name: str) -> int:
        return [f for f, _ in self.fields].index(name)

    @property
    def shape(self) -> str:
        """What a caller and a callee must agree on: field names and types, in order
        (not the record's name, which each contract chooses)."""
        return "(" + ",".join(f"{n}:{t}" for n, t in self.fields) + ")"


@dataclass(frozen=True)
class InterfaceMethod:
    name: str
    params: tuple[tuple[str, Type], ...]
    returns: Type | None
    view: bool


def signature(name: str, params: list[tuple[str, Type]] | tuple[tuple[str, Type], ...],
              returns: Type | None) -> str:
    """A method's full type: ``transfer(Address,uint)->bool``; a record result is
    written by its shape."""
    ret = "" if returns is None else \
        returns.shape if isinstance(returns, RecordType) else returns.name
    return f"{name}({','.join(t.name for _, t in params)})->{ret}"


def selector(name: str, params: list[tuple[str, Type]] | tuple[tuple[str, Type], ...],
             returns: Type | None) -> str:
    """The method name a contract calls another contract's method by: the name, then 8
    hex digits of SHA-256 of the full signature (``transfer/1a2b3c4d``). A callee
    answers to its plain names (for transactions) and to these; a caller whose
    interface declares other argument or result types than the callee's method finds
    no such method and reverts, instead of decoding one type as another."""
    digest = hashlib.sha256(signature(name, params, returns).encode()).hexdigest()
    return f"{name}/{digest[:8]}"


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

#: Limits the VM's instructions set (u8 counts, u16 lengths), checked with a source
#: position before any code is generated.
MAX_PARAMS = 64        # a transaction passes at most 64 arguments
MAX_FIELDS = 64        # of a record or an event (PACK / UNPACK / EMIT take a u8 count)
MAX_LITERAL = 65_535   # bytes of a string or bytes literal (PUSHB's u16 length)
ABI_NAMES = {t: t.name for t in (UINT, INT, BOOL, ADDRESS, BYTES, STR)}
