"""The interpreter: runs one contract call with gas, limits and journaled state.

Theory of operation
-------------------
:meth:`Machine.call` is one contract call: it takes a checkpoint of the world state,
moves the call's value, runs the callee's :class:`Program`, and either keeps what the
call did or rolls the state back to the checkpoint. A nested ``CALL`` is the same
method one level deeper, so a callee that fails undoes only its own changes: the
caller sees ``ok = 0`` and the revert reason, and its own earlier writes stand unless
it reverts too.

Everything that can go wrong inside a call is a :class:`Fault` carrying the receipt
status it ends in:

* ``REVERTED`` — ``REVERT``, and the checked arithmetic of the contract language
  (overflow, underflow, division by zero), a transfer the contract cannot pay;
* ``OUT_OF_GAS`` — all of the call's gas is used;
* ``ERROR`` — the code broke the machine's rules: stack underflow or overflow, a value
  of the wrong kind, a ``JUMPV`` to a non-target, too many frames, a value too long,
  more byte strings built than a transaction may hold (:data:`MAX_ALLOCATED`).

A call made with ``STATICCALL`` (or :meth:`Machine.call` with ``static=True``) is
read-only, and so is every call it makes: a storage write, an event, a coin transfer or
a call with value faults with ``ERROR``. That is how a contract's ``@view`` stays a
view when it reads another contract: the VM, not the callee's good manners, keeps it
from writing.

Gas is charged per instruction before it runs (from the decoded program), plus per
byte for work that grows with its input. A faulted call keeps no gas: it all counts as
used (the fee is paid); a reverted one returns what is left, as the caller may go on.

The loop keeps everything in locals and tests the commonest instructions first: it is
the hottest code in the VM (``python -m bench.vm``). First of all come the fused
instructions of :mod:`vm.fusion`: the commonest sequences of compiled code, each run in
one dispatch with the same gas, checks and faults as its instructions one by one.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import NamedTuple, Protocol

import msgpack

from chain.block import MAX_EVENT_DATA, MAX_EVENTS, MAX_REASON, MAX_RETURN_DATA, Event
from chain.codec import pack, packb_plain

from .fusion import FIRST as FUSED_FIRST
from .opcodes import (
    FRAME_BYTES,
    GAS_CODE_BYTE,
    GAS_EVENT_BYTE,
    GAS_EXP_BYTE,
    GAS_PER_WORD,
    GAS_RETURN_BYTE,
    GAS_SHA256_WORD,
    GAS_STORE_BYTE,
    INT_MAX,
    INT_MIN,
    LOCALS,
    MAX_ALLOCATED,
    MAX_BYTES,
    MAX_CALL_DEPTH,
    MAX_FRAMES,
    MAX_RECORD_BYTES,
    MAX_RECORD_FIELDS,
    STACK_LIMIT,
    UINT_MAX,
    Op,
)
from .program import Program

_sha256 = hashlib.sha256
_SIGN = 1 << 255
_WORD = 1 << 256
ADDRESS_SIZE = 20
INIT_METHOD = b"__init__"


class Status:
    """Receipt statuses (the same numbers as :class:`chain.block.ReceiptStatus`)."""

    OK = 0
    REVERTED = 1
    OUT_OF_GAS = 2
    ERROR = 3


class Fault(Exception):  # noqa: N818 - not an error of ours: how a call ends
    """Ends a contract call with ``status`` and ``reason`` (never escapes the VM).
    ``gas_left`` is what a reverted call gives back (set where the gas is known)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.gas_left = 0


def _revert(reason: str) -> Fault:
    return Fault(Status.REVERTED, reason)


def _error(reason: str) -> Fault:
    return Fault(Status.ERROR, reason)


class Outcome(NamedTuple):
    """How a call ended: status, return data (or empty), reason (or empty), gas left."""

    status: int
    data: bytes
    reason: str
    gas_left: int


@dataclass(frozen=True)
class BlockEnv:
    """What a contract may know of its block."""

    height: int
    time_ms: int


class Host(Protocol):
    """The world state as the VM sees it (:class:`vm.world.WorldState`)."""

    def balance(self, address: bytes) -> int: ...
    def transfer(self, src: bytes, dst: bytes, amount: int) -> bool: ...
    def sload(self, contract: bytes, key: bytes) -> bytes: ...
    def sstore(self, contract: bytes, key: bytes, value: bytes) -> None: ...
    def sload_field(self, contract: bytes, base: bytes, field: bytes) -> bytes: ...
    def sstore_field(self, contract: bytes, base: bytes, field: bytes,
                     value: bytes) -> None: ...
    def record_gas(self, contract: bytes, base: bytes, write: bool) -> int: ...
    def oversized_record(self) -> bool: ...
    def program(self, address: bytes) -> Program | None: ...
    def set_code(self, address: bytes, code: bytes) -> None: ...
    def emit(self, event: Event) -> None: ...
    def event_count(self) -> int: ...
    def checkpoint(self) -> object: ...
    def revert(self, checkpoint: object) -> None: ...


def fit_reason(reason: str) -> str:
    """``reason`` cut to what a receipt holds: MAX_REASON bytes of UTF-8, at a
    character boundary (the limit counts bytes, not characters)."""
    raw = reason.encode()
    if len(raw) <= MAX_REASON:
        return reason
    return raw[:MAX_REASON].decode("utf-8", "ignore")


def signed(x: int) -> int:
    """A 256-bit word read as two's complement."""
    return x - _WORD if x & _SIGN else x


def _as_bytes(value: object) -> bytes:
    """A value as bytes: itself, or an int's minimal big-endian form."""
    if type(value) is bytes:
        return value
    assert type(value) is int
    return value.to_bytes((value.bit_length() + 7) >> 3, "big")


def _name(op: int) -> str:
    """An instruction's name in a fault's reason; a fused one's is its first one's."""
    return Op(op).name if op < 0x80 else FUSED_FIRST[op].name


def _text(value: object, what: str) -> str:
    if type(value) is not bytes:
        raise _error(f"{what} must be bytes")
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        raise _error(f"{what} is not UTF-8") from None


_OVERSIZED = (f"a stored record holds at most {MAX_RECORD_FIELDS} fields and "
              f"{MAX_RECORD_BYTES:,} bytes of field names and values")
_READ_ONLY = "read-only call: it may not write storage, emit events or move coin"
_MEMORY = f"memory limit: a transaction may build at most {MAX_ALLOCATED:,} bytes of byte strings"


def _pack(stack: list, n: int) -> int:
    """PACK n: the top n values as one msgpack array of byte strings; returns its size."""
    if n > len(stack):
        raise IndexError
    values = [_as_bytes(v) for v in stack[-n:]] if n else []
    if n:
        del stack[-n:]
    if sum(map(len, values)) + 5 * n + 5 > MAX_BYTES:  # before building it
        raise _error("PACK result too long")
    packed = packb_plain(values)
    if len(packed) > MAX_BYTES:
        raise _error("PACK result too long")
    stack.append(packed)
    return len(packed)


def _unpack(stack: list, n: int) -> int:
    """UNPACK n: a canonical msgpack array of exactly n byte strings -> its n values
    (first on the bottom); anything else reverts, so a caller never reads garbage."""
    data = stack.pop()
    if type(data) is not bytes:
        raise _error("UNPACK needs bytes")
    try:
        values = msgpack.unpackb(data, raw=False, use_list=True, max_array_len=n,
                                 max_map_len=0, max_ext_len=0, strict_map_key=True)
    except (ValueError, msgpack.UnpackException, RecursionError):
        values = None
    if (type(values) is not list or len(values) != n
            or any(type(v) is not bytes for v in values)
            or packb_plain(values) != data):
        raise _revert(f"UNPACK: not a packed array of {n} byte strings")
    stack.extend(values)
    return len(data)


class Machine:
    """Runs the contract calls of one transaction against a :class:`Host`."""

    def __init__(self, host: Host, block: BlockEnv, origin: bytes) -> None:
        self.host = host
        self.block = block
        self.origin = origin
        #: bytes of byte strings built so far by all calls of the transaction: a bound
        #: on the memory one transaction can make a node hold, whatever its gas
        self.allocated = 0
        #: contracts whose code this transaction has paid to load
        self.loaded: set[bytes] = set()

    def call(
        self,
        caller: bytes,
        contract: bytes,
        method: bytes,
        args: list[bytes],
        value: int,
        gas: int,
        depth: int = 0,
        program: Program | None = None,
        static: bool = False,
    ) -> Outcome:
        """Call ``method`` of ``contract`` (or run ``program`` as it, for a deploy);
        ``static``: read-only, for this call and every call it makes."""
        host = self.host
        if depth > MAX_CALL_DEPTH:
            return Outcome(Status.ERROR, b"", "call depth limit exceeded", gas)
        if program is None:
            if method == INIT_METHOD:  # or anyone could re-run a constructor
                return Outcome(Status.ERROR, b"", "__init__ runs only at deploy", gas)
            program = host.program(contract)
            if program is None:
                return Outcome(Status.ERROR, b"", f"no contract at {contract.hex()}", gas)
            if contract not in self.loaded:  # reading and decoding code is work too
                gas -= GAS_CODE_BYTE * len(program.code)
                if gas < 0:
                    return Outcome(Status.OUT_OF_GAS, b"", "out of gas loading the code", 0)
                self.loaded.add(contract)
        checkpoint = host.checkpoint()
        if value and not host.transfer(caller, contract, value):
            return Outcome(Status.REVERTED, b"", "caller cannot pay the call's value", gas)
        try:
            data, gas_left = self._run(program, contract, caller, method, args, value, gas,
                                       depth, static)
        except Fault as fault:
            host.revert(checkpoint)
            return Outcome(fault.status, b"", fit_reason(fault.reason), fault.gas_left)
        if depth == 0 and host.oversized_record():
            # checked once the transaction's call is done, not at each field it assigns
            host.revert(checkpoint)
            return Outcome(Status.ERROR, b"", _OVERSIZED, 0)
        return Outcome(Status.OK, data, "", gas_left)

    def deploy(
        self, caller: bytes, address: bytes, program: Program, args: list[bytes], value: int,
        gas: int,
    ) -> Outcome:
        """Place ``program`` at ``address`` and run its constructor (method ``__init__``);
        if the constructor fails there is no contract. The data of a successful
        outcome is the new address."""
        host = self.host
        checkpoint = host.checkpoint()
        host.set_code(address, program.code)
        out = self.call(caller, address, INIT_METHOD, args, value, gas, program=program)
        if out.status != Status.OK:
            host.revert(checkpoint)
            return out
        return out._replace(data=address)

    def _run(
        self,
        program: Program,
        contract: bytes,
        caller: bytes,
        method: bytes,
        args: list[bytes],
        value: int,
        gas: int,
        depth: int,
        static: bool,
    ) -> tuple[bytes, int]:
        """The interpreter loop: (return data, gas left), or raises Fault."""
        ops = program.ops
        imm = program.args
        costs = program.gas
        host = self.host
        stack: list = []
        push = stack.append
        pop = stack.pop
        local: list = [0] * LOCALS
        frames: list = []  # (return instruction, caller's locals) per CALLI
        i = 0
        op = -1
        try:
            while True:
                op = ops[i]
                gas -= costs[i]
                if gas < 0:
                    raise Fault(Status.OUT_OF_GAS, "out of gas")
                if op >= 0x80:  # a fused sequence (vm/fusion.py): the same steps, one dispatch
                    if op == 0x84:  # IFZ: ISZERO; JUMPI t
                        if not stack:
                            raise _error("stack underflow at ISZERO")
                        a = pop()
                        if type(a) is not int:
                            raise _error("ISZERO needs an integer")
                        t = imm[i]
                        gas -= t[1]
                        if gas < 0:
                            raise Fault(Status.OUT_OF_GAS, "out of gas")
                        i = i + 2 if a else t[0]
                    elif op <= 0x83:  # LCAT, SLOADF, SLOADFI, SSTOREF: LOAD a; PUSHB s; then
                        t = imm[i]  # CONCAT, SLOADR, SLOADR; BTOI or SSTORER
                        k = local[t[0]]
                        s = t[1]
                        n = len(stack)
                        if n + 1 > STACK_LIMIT:
                            raise _error("stack overflow")
                        gas -= t[2]
                        if gas < 0:
                            raise Fault(Status.OUT_OF_GAS, "out of gas")
                        if n + 2 > STACK_LIMIT:
                            raise _error("stack overflow")
                        gas -= t[3]
                        if gas < 0:
                            raise Fault(Status.OUT_OF_GAS, "out of gas")
                        if op == 0x83:  # SSTOREF: SSTORER, the value below
                            if not n:
                                raise _error("stack underflow at SSTORER")
                            v = pop()
                            if type(k) is not bytes or type(v) is not bytes:
                                raise _error("SSTORER value, base and field must be bytes")
                            if static:
                                raise _error(_READ_ONLY)
                            gas -= (GAS_STORE_BYTE * (len(k) + len(s) + len(v))
                                    + host.record_gas(contract, k, True))
                            if gas < 0:
                                raise Fault(Status.OUT_OF_GAS, "out of gas")
                            host.sstore_field(contract, k, s, v)
                            i += 3
                        elif op == 0x80:  # LCAT: CONCAT
                            if type(k) is not bytes:
                                raise _error("CONCAT needs two byte strings")
                            m = len(k) + len(s)
                            if m > MAX_BYTES:
                                raise _error("CONCAT result too long")
                            gas -= GAS_PER_WORD * ((m + 31) >> 5)
                            if gas < 0:
                                raise Fault(Status.OUT_OF_GAS, "out of gas")
                            self.allocated += m
                            if self.allocated > MAX_ALLOCATED:
                                raise _error(_MEMORY)
                            push(k + s)
                            i += 3
                        else:  # SLOADF, SLOADFI: SLOADR (; BTOI)
                            if type(k) is not bytes:
                                raise _error("SLOADR base and field must be bytes")
                            gas -= host.record_gas(contract, k, False)
                            if gas < 0:
                                raise Fault(Status.OUT_OF_GAS, "out of gas")
                            k = host.sload_field(contract, k, s)
                            if op == 0x82:  # SLOADFI
                                gas -= t[4]
                                if gas < 0:
                                    raise Fault(Status.OUT_OF_GAS, "out of gas")
                                if len(k) > 32:
                                    raise _error("BTOI needs at most 32 bytes")
                                k = int.from_bytes(k, "big")
                                i += 4
                            else:
                                i += 3
                            push(k)
                    elif op == 0x89:  # LOADB: LOAD a; ITOB
                        a, c2 = imm[i]
                        x = local[a]
                        if len(stack) + 1 > STACK_LIMIT:
                            raise _error("stack overflow")
                        gas -= c2
                        if gas < 0:
                            raise Fault(Status.OUT_OF_GAS, "out of gas")
                        if type(x) is not int:
                            raise _error("ITOB needs an integer")
                        x = x.to_bytes((x.bit_length() + 7) >> 3, "big")
                        push(x)
                        self.allocated += len(x)
                        if self.allocated > MAX_ALLOCATED:
                            raise _error(_MEMORY)
                        i += 2
                    elif op == 0x8A:  # LOAD2: LOAD a; LOAD b
                        a, b, c2 = imm[i]
                        push(local[a])
                        if len(stack) > STACK_LIMIT:
                            raise _error("stack overflow")
                        gas -= c2
                        if gas < 0:
                            raise Fault(Status.OUT_OF_GAS, "out of gas")
                        push(local[b])
                        if len(stack) > STACK_LIMIT:
                            raise _error("stack overflow")
                        i += 2
                    elif op == 0x88:  # SLOADI: SLOAD; BTOI
                        if not stack:
                            raise _error("stack underflow at SLOAD")
                        k = stack[-1]
                        if type(k) is not bytes:
                            raise _error("SLOAD key must be bytes")
                        v = host.sload(contract, k)
                        gas -= imm[i][0]
                        if gas < 0:
                            raise Fault(Status.OUT_OF_GAS, "out of gas")
                        if len(v) > 32:
                            raise _error("BTOI needs at most 32 bytes")
                        stack[-1] = int.from_bytes(v, "big")
                        i += 2
                    elif op == 0x85:  # IFNGT: PUSHI n; GT; ISZERO; JUMPI t
                        nn, t, c2, c3, c4 = imm[i]
                        if len(stack) + 1 > STACK_LIMIT:
                            raise _error("stack overflow")
                        gas -= c2
                        if gas < 0:
                            raise Fault(Status.OUT_OF_GAS, "out of gas")
                        if not stack:
                            raise _error("stack underflow at GT")
                        a = pop()
                        if type(a) is not int:
                            raise _error("GT compares two values of one kind")
                        gas -= c3
                        if gas < 0:
                            raise Fault(Status.OUT_OF_GAS, "out of gas")
                        gas -= c4
                        if gas < 0:
                            raise Fault(Status.OUT_OF_GAS, "out of gas")
                        i = i + 4 if a > nn else t
                    elif op == 0x86:  # LENCHK: DUP d; LEN; PUSHI n; GT; ISZERO; JUMPI t
                        d, nn, t, c2, c3, c4, c5, c6 = imm[i]
                        n = len(stack)
                        if d >= n:
                            raise _error("stack underflow at DUP")
                        x = stack[-1 - d]
                        if n + 1 > STACK_LIMIT:
                            raise _error("stack overflow")
                        gas -= c2
                        if gas < 0:
                            raise Fault(Status.OUT_OF_GAS, "out of gas")
                        if type(x) is not bytes:
                            raise _error("LEN needs bytes")
                        gas -= c3
                        if gas < 0:
                            raise Fault(Status.OUT_OF_GAS, "out of gas")
                        if n + 2 > STACK_LIMIT:
                            raise _error("stack overflow")
                        gas -= c4
                        if gas < 0:
                            raise Fault(Status.OUT_OF_GAS, "out of gas")
                        gas -= c5
                        if gas < 0:
                            raise Fault(Status.OUT_OF_GAS, "out of gas")
                        gas -= c6
                        if gas < 0:
                            raise Fault(Status.OUT_OF_GAS, "out of gas")
                        i = i + 6 if len(x) > nn else t
                    elif op == 0x8B:  # ARGI: PUSHI n; ARG
                        nn, c2 = imm[i]
                        if len(stack) + 1 > STACK_LIMIT:
                            raise _error("stack overflow")
                        gas -= c2
                        if gas < 0:
                            raise Fault(Status.OUT_OF_GAS, "out of gas")
                        if nn >= len(args):
                            raise _error(f"no argument {nn!r} (the call has {len(args)})")
                        push(args[nn])
                        i += 2
                    else:  # METHODLT: METHOD; PUSHB s; LT; ISZERO; JUMPI t
                        s, t, c2, c3, c4, c5 = imm[i]
                        n = len(stack)
                        if n + 1 > STACK_LIMIT:
                            raise _error("stack overflow")
                        gas -= c2
                        if gas < 0:
                            raise Fault(Status.OUT_OF_GAS, "out of gas")
                        if n + 2 > STACK_LIMIT:
                            raise _error("stack overflow")
                        gas -= c3
                        if gas < 0:
                            raise Fault(Status.OUT_OF_GAS, "out of gas")
                        gas -= GAS_PER_WORD * ((min(len(method), len(s)) + 31) >> 5)
                        gas -= c4
                        if gas < 0:
                            raise Fault(Status.OUT_OF_GAS, "out of gas")
                        gas -= c5
                        if gas < 0:
                            raise Fault(Status.OUT_OF_GAS, "out of gas")
                        i = i + 5 if method < s else t
                # -- the commonest instructions first, in the order the commerce
                # contracts use them (storage keys: PUSHB, LOAD, ITOB32, CONCAT, SLOAD,
                # BTOI; control: JUMPDEST, JUMPI, DUP, ISZERO), each inline
                elif op == 0x15:  # LOAD
                    push(local[imm[i]])
                    if len(stack) > STACK_LIMIT:
                        raise _error("stack overflow")
                    i += 1
                elif op == 0x10 or op == 0x11:  # PUSHI, PUSHB
                    push(imm[i])
                    if len(stack) > STACK_LIMIT:
                        raise _error("stack overflow")
                    i += 1
                elif op == 0x01:  # JUMPDEST
                    i += 1
                elif op == 0x40:  # CONCAT
                    b = pop()
                    a = stack[-1]
                    if type(a) is not bytes or type(b) is not bytes:
                        raise _error("CONCAT needs two byte strings")
                    n = len(a) + len(b)
                    if n > MAX_BYTES:
                        raise _error("CONCAT result too long")
                    stack[-1] = a + b
                    gas -= GAS_PER_WORD * ((n + 31) >> 5)
                    if gas < 0:
                        raise Fault(Status.OUT_OF_GAS, "out of gas")
                    self.allocated += n
                    if self.allocated > MAX_ALLOCATED:
                        raise _error(_MEMORY)
                    i += 1
                elif op == 0x13:  # DUP
                    push(stack[-1 - imm[i]])
                    if len(stack) > STACK_LIMIT:
                        raise _error("stack overflow")
                    i += 1
                elif op == 0x03:  # JUMPI
                    c = pop()
                    if type(c) is not int:
                        raise _error("JUMPI condition must be an integer")
                    i = imm[i] if c else i + 1
                elif op == 0x35:  # ISZERO
                    a = stack[-1]
                    if type(a) is not int:
                        raise _error("ISZERO needs an integer")
                    stack[-1] = 0 if a else 1
                    i += 1
                elif op == 0x44 or op == 0x45:  # ITOB, ITOB32
                    a = stack[-1]
                    if type(a) is not int:
                        raise _error(f"{Op(op).name} needs an integer")
                    a = a.to_bytes(32 if op == 0x45 else (a.bit_length() + 7) >> 3, "big")
                    stack[-1] = a
                    self.allocated += len(a)
                    if self.allocated > MAX_ALLOCATED:
                        raise _error(_MEMORY)
                    i += 1
                elif op == 0x43:  # BTOI
                    a = stack[-1]
                    if type(a) is not bytes or len(a) > 32:
                        raise _error("BTOI needs at most 32 bytes")
                    stack[-1] = int.from_bytes(a, "big")
                    i += 1
                elif op == 0x60:  # SLOAD
                    key = stack[-1]
                    if type(key) is not bytes:
                        raise _error("SLOAD key must be bytes")
                    stack[-1] = host.sload(contract, key)
                    i += 1
                elif op == 0x61:  # SSTORE
                    v = pop()
                    key = pop()
                    if type(key) is not bytes or type(v) is not bytes:
                        raise _error("SSTORE key and value must be bytes")
                    if static:
                        raise _error(_READ_ONLY)
                    gas -= GAS_STORE_BYTE * (len(key) + len(v))
                    if gas < 0:
                        raise Fault(Status.OUT_OF_GAS, "out of gas")
                    host.sstore(contract, key, v)
                    i += 1
                elif op == 0x66:  # SLOADR
                    field = pop()
                    base = stack[-1]
                    if type(base) is not bytes or type(field) is not bytes:
                        raise _error("SLOADR base and field must be bytes")
                    gas -= host.record_gas(contract, base, False)
                    if gas < 0:
                        raise Fault(Status.OUT_OF_GAS, "out of gas")
                    stack[-1] = host.sload_field(contract, base, field)
                    i += 1
                elif op == 0x67:  # SSTORER
                    field = pop()
                    base = pop()
                    v = pop()
                    if type(base) is not bytes or type(field) is not bytes or type(v) is not bytes:
                        raise _error("SSTORER value, base and field must be bytes")
                    if static:
                        raise _error(_READ_ONLY)
                    gas -= (GAS_STORE_BYTE * (len(base) + len(field) + len(v))
                            + host.record_gas(contract, base, True))
                    if gas < 0:
                        raise Fault(Status.OUT_OF_GAS, "out of gas")
                    host.sstore_field(contract, base, field, v)
                    i += 1
                elif op == 0x34:  # EQ
                    b = pop()
                    a = pop()
                    if type(a) is bytes:
                        gas -= GAS_PER_WORD * ((len(a) + 31) >> 5)
                    push(1 if type(a) is type(b) and a == b else 0)
                    i += 1
                elif op == 0x12:  # POP
                    pop()
                    i += 1
                elif op == 0x16:  # STORE
                    local[imm[i]] = pop()
                    i += 1
                elif op == 0x14:  # SWAP
                    n = imm[i]
                    stack[-1], stack[-1 - n] = stack[-1 - n], stack[-1]
                    i += 1
                elif op == 0x30 or op == 0x31:  # LT, GT
                    b = pop()
                    a = pop()
                    if type(a) is not type(b):
                        raise _error(f"{Op(op).name} compares two values of one kind")
                    if type(a) is bytes:
                        gas -= GAS_PER_WORD * ((min(len(a), len(b)) + 31) >> 5)
                    push(1 if (a < b if op == 0x30 else a > b) else 0)
                    i += 1
                elif op == 0x20:  # ADD
                    b = pop()
                    a = pop()
                    if type(a) is not int or type(b) is not int:
                        raise _error("ADD needs two integers")
                    a += b
                    if a > UINT_MAX:
                        raise _revert("uint overflow")
                    push(a)
                    i += 1
                elif op == 0x41:  # LEN
                    a = stack[-1]
                    if type(a) is not bytes:
                        raise _error("LEN needs bytes")
                    stack[-1] = len(a)
                    i += 1
                elif op == 0x21:  # SUB
                    b = pop()
                    a = pop()
                    if type(a) is not int or type(b) is not int:
                        raise _error("SUB needs two integers")
                    a -= b
                    if a < 0:
                        raise _revert("uint underflow")
                    push(a)
                    i += 1
                elif op == 0x02:  # JUMP
                    i = imm[i]
                # -- everything else
                elif op == 0x00:  # STOP
                    return b"", gas
                elif op == 0x07:  # RETURN
                    data = _as_bytes(pop())
                    if len(data) > MAX_RETURN_DATA:
                        raise _error("return value too long")
                    gas -= GAS_RETURN_BYTE * len(data)  # it may end up in a receipt
                    if gas < 0:
                        raise Fault(Status.OUT_OF_GAS, "out of gas")
                    return data, gas
                elif op == 0x08:  # REVERT
                    raise _revert(_text(pop(), "revert reason"))
                elif op == 0x04:  # JUMPV
                    t = pop()
                    target = program.jumpdests.get(t) if type(t) is int else None
                    if target is None:
                        raise _error(f"bad jump to {t!r}: not a JUMPDEST")
                    i = target
                elif op == 0x05:  # CALLI
                    target, nargs = imm[i]
                    if len(frames) >= MAX_FRAMES:
                        raise _error("too many nested internal calls")
                    if nargs > len(stack):
                        raise IndexError
                    self.allocated += FRAME_BYTES
                    if self.allocated > MAX_ALLOCATED:
                        raise _error("memory limit: too many frames and values")
                    frames.append((i + 1, local))
                    local = [0] * LOCALS
                    if nargs:
                        local[:nargs] = stack[-nargs:]
                        del stack[-nargs:]
                    i = target
                elif op == 0x06:  # RETI
                    if not frames:
                        raise _error("RETI outside an internal call")
                    i, local = frames.pop()
                elif op <= 0x2D:  # MUL, DIV, MOD, EXP, SADD, SSUB, SMUL, SDIV, SMOD, SNEG
                    if op == 0x25 and stack and type(stack[-1]) is int:  # EXP: per byte
                        gas -= GAS_EXP_BYTE * ((stack[-1].bit_length() + 7) >> 3)
                        if gas < 0:
                            raise Fault(Status.OUT_OF_GAS, "out of gas")
                    i = self._arith(op, stack, i)
                elif op <= 0x3B:  # SLT, SGT, AND, OR, XOR, NOT, SHL, SHR
                    self._bits(op, stack)
                    i += 1
                elif op <= 0x46:  # SLICE, SHA256
                    gas -= self._bytes_op(op, stack)
                    if gas < 0:
                        raise Fault(Status.OUT_OF_GAS, "out of gas")
                    self.allocated += len(stack[-1])  # every new byte string counts
                    if self.allocated > MAX_ALLOCATED:
                        raise _error(_MEMORY)
                    i += 1
                elif op <= 0x48:  # PACK, UNPACK
                    built = _pack(stack, imm[i]) if op == 0x47 else _unpack(stack, imm[i])
                    gas -= GAS_PER_WORD * ((built + 31) >> 5)
                    if gas < 0:
                        raise Fault(Status.OUT_OF_GAS, "out of gas")
                    if len(stack) > STACK_LIMIT:
                        raise _error("stack overflow")
                    self.allocated += built
                    if self.allocated > MAX_ALLOCATED:
                        raise _error(f"memory limit: a transaction may build at most "
                                     f"{MAX_ALLOCATED:,} bytes of byte strings")
                    i += 1
                elif op <= 0x5A:  # CALLER, ORIGIN, CALLVALUE, SELF, HEIGHT, TIME,
                    # METHOD, ARG, NARGS, BALANCE, GAS
                    if op == 0x50:  # CALLER
                        push(caller)
                    elif op == 0x51:  # ORIGIN
                        push(self.origin)
                    elif op == 0x52:  # CALLVALUE
                        push(value)
                    elif op == 0x53:  # SELF
                        push(contract)
                    elif op == 0x54:  # HEIGHT
                        push(self.block.height)
                    elif op == 0x55:  # TIME
                        push(self.block.time_ms)
                    elif op == 0x56:  # METHOD
                        push(method)
                    elif op == 0x57:  # ARG
                        n = pop()
                        if type(n) is not int or n >= len(args):
                            raise _error(f"no argument {n!r} (the call has {len(args)})")
                        push(args[n])
                    elif op == 0x58:  # NARGS
                        push(len(args))
                    elif op == 0x59:  # BALANCE
                        a = pop()
                        if type(a) is not bytes or len(a) != ADDRESS_SIZE:
                            raise _error("BALANCE needs a 20-byte address")
                        push(host.balance(a))
                    else:  # GAS
                        push(gas)
                    if len(stack) > STACK_LIMIT:
                        raise _error("stack overflow")
                    i += 1
                elif op == 0x62:  # EMIT
                    if static:
                        raise _error(_READ_ONLY)
                    n = imm[i]
                    if n > len(stack) - 1:
                        raise IndexError
                    fields = [_as_bytes(f) for f in stack[-n:]] if n else []
                    if n:
                        del stack[-n:]
                    name = _text(pop(), "event name")
                    size = sum(map(len, fields))  # charge and check before packing
                    gas -= GAS_EVENT_BYTE * size
                    if gas < 0:
                        raise Fault(Status.OUT_OF_GAS, "out of gas")
                    if len(name.encode()) > 64 or size > MAX_EVENT_DATA:
                        raise _error("event name or data too long")
                    data = pack(fields)
                    if len(data) > MAX_EVENT_DATA:
                        raise _error("event name or data too long")
                    if host.event_count() >= MAX_EVENTS:
                        raise _error("too many events")
                    host.emit(Event(contract, name, data))
                    i += 1
                elif op == 0x63:  # TRANSFER
                    amount = pop()
                    to = pop()
                    if type(amount) is not int or type(to) is not bytes or len(to) != 20:
                        raise _error("TRANSFER needs a 20-byte address and an integer")
                    if static and amount:
                        raise _error(_READ_ONLY)
                    if not host.transfer(contract, to, amount):
                        raise _revert("transfer: insufficient balance")
                    i += 1
                else:  # CALL, STATICCALL
                    n = imm[i]
                    plain = op == 0x64
                    if n + 2 + plain > len(stack):
                        raise IndexError
                    call_args = stack[-n:] if n else []
                    if n:
                        del stack[-n:]
                    if any(type(a) is not bytes for a in call_args):
                        raise _error(f"{Op(op).name} arguments must be bytes")
                    callee_method = pop()
                    call_value = pop() if plain else 0
                    callee = pop()
                    if (type(callee) is not bytes or len(callee) != ADDRESS_SIZE
                            or type(call_value) is not int or type(callee_method) is not bytes):
                        raise _error(f"{Op(op).name} needs an address, an integer value and "
                                     "a method")
                    if static and call_value:
                        raise _error(_READ_ONLY)
                    forwarded = gas - (gas >> 6)  # keep 1/64 to finish with
                    out = self.call(contract, callee, callee_method, call_args, call_value,
                                    forwarded, depth + 1, static=static or not plain)
                    gas -= forwarded - out.gas_left
                    if out.status == Status.OK:
                        push(out.data)
                        push(1)
                    else:
                        push(out.reason.encode())
                        push(0)
                    if len(stack) > STACK_LIMIT:
                        raise _error("stack overflow")
                    i += 1
        except Fault as fault:
            if fault.status == Status.REVERTED:
                fault.gas_left = gas  # a revert gives back the gas it did not use
            raise
        except IndexError:
            raise _error(f"stack underflow at {_name(op)}") from None
        except TypeError:
            raise _error(f"{_name(op)}: a value of the wrong kind") from None

    @staticmethod
    def _arith(op: int, stack: list, i: int) -> int:
        """The arithmetic instructions other than ADD and SUB; returns the next i."""
        pop = stack.pop
        if op == 0x2D:  # SNEG
            a = pop()
            if type(a) is not int:
                raise _error("SNEG needs an integer")
            r = -signed(a)
            if r > INT_MAX:
                raise _revert("int overflow")
            stack.append(r & UINT_MAX)
            return i + 1
        b = pop()
        a = pop()
        if type(a) is not int or type(b) is not int:
            raise _error(f"{Op(op).name} needs two integers")
        if op == 0x22:  # MUL
            r = a * b
            if r > UINT_MAX:
                raise _revert("uint overflow")
        elif op == 0x23 or op == 0x24:  # DIV, MOD
            if not b:
                raise _revert("division by zero")
            r = a // b if op == 0x23 else a % b
        elif op == 0x25:  # EXP
            if a > 1 and b * (a.bit_length() - 1) >= 256:  # before computing it
                raise _revert("uint overflow")
            r = a**b
            if r > UINT_MAX:
                raise _revert("uint overflow")
        else:
            sa, sb = signed(a), signed(b)
            if op == 0x28:  # SADD
                r = sa + sb
            elif op == 0x29:  # SSUB
                r = sa - sb
            elif op == 0x2A:  # SMUL
                r = sa * sb
            else:  # SDIV, SMOD
                if not sb:
                    raise _revert("division by zero")
                r = sa // sb if op == 0x2B else sa % sb
            if not INT_MIN <= r <= INT_MAX:
                raise _revert("int overflow")
            r &= UINT_MAX
        stack.append(r)
        return i + 1

    @staticmethod
    def _bits(op: int, stack: list) -> None:
        """Comparison (signed) and bit instructions."""
        pop = stack.pop
        if op == 0x39:  # NOT
            a = pop()
            if type(a) is not int:
                raise _error("NOT needs an integer")
            stack.append(UINT_MAX ^ a)
            return
        b = pop()
        a = pop()
        if type(a) is not int or type(b) is not int:
            raise _error(f"{Op(op).name} needs two integers")
        if op == 0x32:  # SLT
            r = 1 if signed(a) < signed(b) else 0
        elif op == 0x33:  # SGT
            r = 1 if signed(a) > signed(b) else 0
        elif op == 0x36:  # AND
            r = a & b
        elif op == 0x37:  # OR
            r = a | b
        elif op == 0x38:  # XOR
            r = a ^ b
        elif op == 0x3A:  # SHL
            r = (a << b) & UINT_MAX if b < 256 else 0
        else:  # SHR
            r = a >> b if b < 256 else 0
        stack.append(r)

    @staticmethod
    def _bytes_op(op: int, stack: list) -> int:
        """SLICE and SHA256 (the other byte-string instructions run inline in the
        loop); returns the extra gas they cost."""
        pop = stack.pop
        if op == 0x42:  # SLICE
            n = pop()
            start = pop()
            b = pop()
            if type(b) is not bytes or type(start) is not int or type(n) is not int:
                raise _error("SLICE needs bytes, a start and a length")
            if start + n > len(b):
                raise _revert("slice out of range")
            stack.append(b[start : start + n])
            return GAS_PER_WORD * ((n + 31) >> 5)
        a = pop()  # SHA256
        if type(a) is not bytes:
            raise _error("SHA256 needs bytes")
        stack.append(_sha256(a).digest())
        return GAS_SHA256_WORD * ((len(a) + 31) >> 5)
