"""The world state a block executes against: accounts, code and contract storage as keys
of the authenticated state tree, with a journal for nested calls.

Layout of the state keys (every node computes the same root from the same bytes):

* ``a`` + address -> account: nonce (8 bytes, big-endian) then balance (minimal
  big-endian bytes). An account with nonce 0 and balance 0 is absent.
* ``c`` + address -> a contract's code (immutable once deployed).
* ``s`` + address + key -> a contract's storage value (an empty value is absent).
* ``s`` + address + ``0x00`` + base -> a stored record: all its fields in one key, a
  msgpack array ``[field, value, field, value, ...]`` sorted by field, empty values left
  out (an empty record is absent). Contracts reach a field with ``SLOADR`` / ``SSTORER``
  (base, field); plain storage keys may not start with ``0x00``, so the two never meet.
  One key per record, not per field, is what keeps a block's state-tree work small.
  A record holds at most MAX_RECORD_FIELDS fields and MAX_RECORD_BYTES bytes of names
  and values, checked when a transaction's call ends; a transaction pays for a record's
  size the first time it reads it and the first time it writes it (:meth:`record_gas`),
  as the whole record is decoded, and rewritten, for the sake of one field.

:class:`WorldState` reads through to the committed tree and keeps every write in a
dict, so a block that is dropped leaves the committed state untouched. Each write also
appends the value it replaced to an undo log: :meth:`checkpoint` is a position in that
log (and in the event list), :meth:`revert` rolls back to it. That is how a failed call
undoes exactly its own writes, however deeply nested. Records are decoded once per
block into ``_records``; their field writes are journaled the same way, and
:meth:`changes` writes them back, encoded, when the block's writes go to the tree.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

import msgpack

from chain.block import Event
from chain.codec import packb_plain
from storage.errors import Corruption
from storage.state import StateTree

from .interpreter import Fault, Status
from .opcodes import GAS_RECORD_BYTE, GAS_RECORD_WORD, MAX_RECORD_BYTES, MAX_RECORD_FIELDS
from .program import Program

ACCOUNT = b"a"
CODE = b"c"
STORAGE = b"s"
MAX_STORAGE_KEY = 512
RECORD = b"\x00"  # storage keys that start with it hold records
_MISSING = object()
_RESERVED = "storage keys that start with a zero byte hold records (SLOADR / SSTORER)"


def account_key(address: bytes) -> bytes:
    return ACCOUNT + address


def encode_account(nonce: int, balance: int) -> bytes | None:
    if not nonce and not balance:
        return None
    return nonce.to_bytes(8, "big") + balance.to_bytes((balance.bit_length() + 7) >> 3, "big")


def decode_account(raw: bytes | None) -> tuple[int, int]:
    if raw is None:
        return 0, 0
    return int.from_bytes(raw[:8], "big"), int.from_bytes(raw[8:], "big")


class WorldState:
    """Pending state of one block over a committed :class:`StateTree`."""

    def __init__(
        self, tree: StateTree, load_program: Callable[[bytes, bytes], Program | None]
    ) -> None:
        self._tree = tree
        self._load_program = load_program
        self._reads: dict[bytes, bytes | None] = {}
        self.writes: dict[bytes, bytes | None] = {}
        self._undo: list[tuple] = []
        self.events: list[Event] = []
        #: state key -> [fields dict, size in bytes] of each record read or written in
        #: this block; written back to ``writes`` by :meth:`changes`
        self._records: dict[bytes, list] = {}
        self._dirty: set[bytes] = set()
        #: records this transaction has read / written (their first touch is charged)
        self._read_tx: set[bytes] = set()
        self._written_tx: set[bytes] = set()

    # ------------------------------------------------------------ raw keys

    def get(self, key: bytes) -> bytes | None:
        v = self.writes.get(key, _MISSING)
        if v is not _MISSING:
            return v  # type: ignore[return-value]
        v = self._reads.get(key, _MISSING)
        if v is _MISSING:
            v = self._reads[key] = self._tree.get(key)
        return v  # type: ignore[return-value]

    def put(self, key: bytes, value: bytes | None) -> None:
        writes = self.writes
        self._undo.append((key, writes.get(key, _MISSING)))
        writes[key] = value

    # ------------------------------------------------------------ journal

    def checkpoint(self) -> tuple[int, int]:
        return len(self._undo), len(self.events)

    def revert(self, checkpoint: object) -> None:
        n, n_events = cast(tuple[int, int], checkpoint)
        undo = self._undo
        writes = self.writes
        while len(undo) > n:
            entry = undo.pop()
            if len(entry) == 3:  # a record's field
                record, field, old = entry
                fields = record[0]
                cur = fields.pop(field, b"")
                record[1] -= len(cur) + len(field) if cur else 0
                if old:
                    fields[field] = old
                    record[1] += len(old) + len(field)
                continue
            key, old = entry
            if old is _MISSING:
                del writes[key]
            else:
                writes[key] = old
        del self.events[n_events:]

    def forget_journal(self) -> None:
        """Drop the undo log (between transactions: nothing will roll back past here)."""
        self._undo.clear()
        self._read_tx.clear()
        self._written_tx.clear()

    # ------------------------------------------------------------ accounts

    def account(self, address: bytes) -> tuple[int, int]:
        return decode_account(self.get(ACCOUNT + address))

    def set_account(self, address: bytes, nonce: int, balance: int) -> None:
        self.put(ACCOUNT + address, encode_account(nonce, balance))

    def balance(self, address: bytes) -> int:
        return self.account(address)[1]

    def add_balance(self, address: bytes, amount: int) -> None:
        nonce, balance = self.account(address)
        self.set_account(address, nonce, balance + amount)

    def transfer(self, src: bytes, dst: bytes, amount: int) -> bool:
        """Move ``amount`` from ``src`` to ``dst``; False (and nothing moved) if ``src``
        cannot pay."""
        if amount == 0:
            return True
        nonce, balance = self.account(src)
        if balance < amount:
            return False
        if src != dst:
            self.set_account(src, nonce, balance - amount)
            self.add_balance(dst, amount)
        return True

    # ------------------------------------------------------------ contracts

    def code(self, address: bytes) -> bytes | None:
        return self.get(CODE + address)

    def set_code(self, address: bytes, code: bytes) -> None:
        self.put(CODE + address, code)

    def program(self, address: bytes) -> Program | None:
        code = self.code(address)
        return None if code is None else self._load_program(address, code)

    def sload(self, contract: bytes, key: bytes) -> bytes:
        if len(key) > MAX_STORAGE_KEY:
            return b""
        if key[:1] == RECORD:
            raise Fault(Status.ERROR, _RESERVED)
        return self.get(STORAGE + contract + key) or b""

    def sstore(self, contract: bytes, key: bytes, value: bytes) -> None:
        if len(key) > MAX_STORAGE_KEY:
            raise Fault(Status.ERROR, f"storage key longer than {MAX_STORAGE_KEY} bytes")
        if key[:1] == RECORD:
            raise Fault(Status.ERROR, _RESERVED)
        full = STORAGE + contract + key
        new = value or None
        if self.get(full) == new:
            return  # nothing changes: no write for the state tree to do (gas is charged alike)
        self.put(full, new)

    # ------------------------------------------------------------ records

    def _record(self, key: bytes) -> list:
        record = self._records.get(key)
        if record is None:
            raw = self.get(key)
            if raw is None:
                record = [{}, 0]
            else:
                problem, fields = decode_record(raw, strict=False)
                if problem:  # our own bytes, checked when written: the store is damaged
                    raise Corruption(key, problem)
                record = [fields, sum(len(f) + len(v) for f, v in fields.items())]
            self._records[key] = record
        return record

    def record_gas(self, contract: bytes, base: bytes, write: bool) -> int:
        """The gas for touching the record under ``base``, paid the first time a
        transaction reads it (per 32 bytes it holds) and the first time it writes it (per
        byte: the whole record is rewritten at the block's end); 0 after that."""
        if len(base) > MAX_STORAGE_KEY:
            return 0
        key = STORAGE + contract + RECORD + base
        touched = self._written_tx if write else self._read_tx
        if key in touched:
            return 0
        touched.add(key)
        size = self._record(key)[1]
        return GAS_RECORD_BYTE * size if write else GAS_RECORD_WORD * ((size + 31) >> 5)

    def oversized_record(self) -> bool:
        """Whether a record this transaction wrote is past its bounds: checked when the
        transaction's call ends, so a record may pass through a larger state while
        fields are assigned one at a time."""
        records = self._records
        return any(records[key][1] > MAX_RECORD_BYTES or len(records[key][0]) > MAX_RECORD_FIELDS
                   for key in self._written_tx)

    def sload_field(self, contract: bytes, base: bytes, field: bytes) -> bytes:
        """A field of the record stored under ``base`` (empty if unset)."""
        if len(base) + len(field) > MAX_STORAGE_KEY:
            return b""
        return self._record(STORAGE + contract + RECORD + base)[0].get(field, b"")

    def sstore_field(self, contract: bytes, base: bytes, field: bytes, value: bytes) -> None:
        """Set a field of the record stored under ``base`` (an empty value unsets it)."""
        if len(base) + len(field) > MAX_STORAGE_KEY:
            raise Fault(Status.ERROR, f"storage key longer than {MAX_STORAGE_KEY} bytes")
        key = STORAGE + contract + RECORD + base
        record = self._record(key)
        fields = record[0]
        old = fields.get(field, b"")
        if old == value:
            return  # nothing changes (gas is charged alike)
        size = record[1] - (len(old) + len(field) if old else 0)
        if value:
            size += len(value) + len(field)
            fields[field] = value
        else:
            del fields[field]
        record[1] = size
        self._undo.append((record, field, old))
        self._dirty.add(key)
        self._written_tx.add(key)  # (its bounds are checked when the call ends)

    def changes(self) -> dict[bytes, bytes | None]:
        """Every state key this block changes (records written back): what the state
        tree takes."""
        for key in sorted(self._dirty):  # (the root does not depend on it; still)
            fields = self._records[key][0]
            if fields:
                flat: list[bytes] = []
                for field in sorted(fields):
                    flat += (field, fields[field])
                value: bytes | None = packb_plain(flat)
            else:
                value = None
            committed = self._reads.get(key, _MISSING)
            if committed is _MISSING:
                committed = self._reads[key] = self._tree.get(key)
            if committed != value:
                self.writes[key] = value
            else:
                self.writes.pop(key, None)  # changed and changed back
        self._dirty.clear()
        return self.writes

    def emit(self, event: Event) -> None:
        self.events.append(event)

    def event_count(self) -> int:
        return len(self.events)


def decode_record(raw: bytes, *, strict: bool = True) -> tuple[str, dict[bytes, bytes]]:
    """A stored record's bytes -> ("", its fields), or (what is wrong, {}): a msgpack
    array [field, value, ...] of byte strings; ``strict`` (bytes from outside, as a
    genesis file's): fields strictly ascending, no empty value, within
    MAX_RECORD_FIELDS and MAX_RECORD_BYTES, in the one canonical encoding. Records read
    back from the state were written by :meth:`WorldState.changes`, so only their shape
    is checked there (decoding is paid by a read's gas)."""
    try:
        flat = msgpack.unpackb(raw, raw=False, use_list=True, max_map_len=0, max_ext_len=0)
    except (ValueError, msgpack.UnpackException) as exc:
        return f"undecodable stored record: {exc}", {}
    if type(flat) is not list or len(flat) % 2 or not set(map(type, flat)) <= {bytes}:
        return "a stored record is not [field, value, ...] of byte strings", {}
    it = iter(flat)
    fields = dict(zip(it, it, strict=True))
    if not strict:
        return "", fields
    names = flat[0::2]
    if names != sorted(set(names)) or not all(fields.values()):
        return "a stored record's fields are not strictly ascending, or one is empty", {}
    if len(fields) > MAX_RECORD_FIELDS or sum(map(len, flat)) > MAX_RECORD_BYTES:
        return "a stored record is larger than a record may be", {}
    if packb_plain(flat) != raw:
        return "a stored record is not in its one canonical encoding", {}
    return "", fields
