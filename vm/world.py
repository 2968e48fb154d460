"""The world state a block executes against: accounts, code and contract storage as keys
of the authenticated state tree, with a journal for nested calls.

Layout of the state keys (every node computes the same root from the same bytes):

* ``a`` + address -> account: nonce (8 bytes, big-endian) then balance (minimal
  big-endian bytes). An account with nonce 0 and balance 0 is absent.
* ``c`` + address -> a contract's code (immutable once deployed).
* ``s`` + address + key -> a contract's storage value (an empty value is absent).

:class:`WorldState` reads through to the committed tree and keeps every write in a
dict, so a block that is dropped leaves the committed state untouched. Each write also
appends the value it replaced to an undo log: :meth:`checkpoint` is a position in that
log (and in the event list), :meth:`revert` rolls back to it. That is how a failed call
undoes exactly its own writes, however deeply nested.
"""

from __future__ import annotations

from collections.abc import Callable

from chain.block import Event
from storage.state import StateTree

from .interpreter import Fault, Status
from .program import Program

ACCOUNT = b"a"
CODE = b"c"
STORAGE = b"s"
MAX_STORAGE_KEY = 512
_MISSING = object()


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
        self._undo: list[tuple[bytes, object]] = []
        self.events: list[Event] = []

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
        n, n_events = checkpoint  # type: ignore[misc]
        undo = self._undo
        writes = self.writes
        while len(undo) > n:
            key, old = undo.pop()
            if old is _MISSING:
                del writes[key]
            else:
                writes[key] = old  # type: ignore[assignment]
        del self.events[n_events:]

    def forget_journal(self) -> None:
        """Drop the undo log (between transactions: nothing will roll back past here)."""
        self._undo.clear()

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
        return self.get(STORAGE + contract + key) or b""

    def sstore(self, contract: bytes, key: bytes, value: bytes) -> None:
        if len(key) > MAX_STORAGE_KEY:
            raise Fault(Status.ERROR, f"storage key longer than {MAX_STORAGE_KEY} bytes")
        full = STORAGE + contract + key
        new = value or None
        if self.get(full) == new:
            return  # nothing changes: no write for the state tree to do (gas is charged alike)
        self.put(full, new)

    def emit(self, event: Event) -> None:
        self.events.append(event)

    def event_count(self) -> int:
        return len(self.events)
