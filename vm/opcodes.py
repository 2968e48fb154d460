"""The instruction set: one table, read by the validator, the interpreter, the assembler
and the disassembler alike.

Theory of operation
-------------------
A stack machine over two kinds of value: unsigned 256-bit integers (``int`` in
0..2**256-1; signed instructions read them as two's complement) and byte strings of at
most :data:`MAX_BYTES`. Each instruction is one opcode byte followed by its immediates:

* ``u8`` / ``u16`` — an unsigned big-endian number (local slot, count, jump target);
* ``int`` — a length byte (0..32) then that many big-endian bytes: a constant integer;
* ``bytes`` — a u16 length then that many bytes: a constant byte string.

Jump targets are byte offsets of ``JUMPDEST`` instructions. Static jumps (``JUMP``,
``JUMPI``, ``CALLI``) are checked once, at deploy; ``JUMPV`` takes its target from the
stack and is checked when it runs. Every instruction costs its ``gas`` up front, and
some charge more for the bytes they touch (see the interpreter).

The machine is designed for the contract language to target: checked unsigned and
signed arithmetic (overflow, underflow and division by zero revert), storage by key,
events, native transfers, and calls into other contracts by method name. A call's
arguments are byte strings (``ARG``); ``BTOI``/``ITOB`` convert between the kinds.
``PACK``/``UNPACK`` turn several values into one byte string and back (the encoding of
call arguments and event data: a msgpack array of byte strings), so a method can return
a whole record. ``STATICCALL`` calls another contract read-only: that call, and every
call it makes, faults on any write (storage, event, coin), so a ``@view`` stays a view
across contracts. ``SLOADR`` / ``SSTORER`` read and write one field of a stored record
(a base key and a field name): all of a record's fields live in one state key, so a
block rewrites one key of the state tree per record, not per field (``vm/world.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

UINT_MAX = (1 << 256) - 1
INT_MIN = -(1 << 255)
INT_MAX = (1 << 255) - 1
MAX_BYTES = 64 * 1024  # longest byte string a value may be
MAX_ALLOCATED = 16 * 1024 * 1024  # bytes CONCAT and SLICE may build in one transaction
STACK_LIMIT = 1024  # values on one call's stack
LOCALS = 256  # local slots per frame (LOAD/STORE take a u8)
MAX_FRAMES = 1024  # nested internal calls (CALLI) in one contract call
MAX_CALL_DEPTH = 64  # nested contract calls (CALL)
MAX_CODE_SIZE = 64 * 1024


class Op(IntEnum):
    # control
    STOP = 0x00
    JUMPDEST = 0x01
    JUMP = 0x02
    JUMPI = 0x03
    JUMPV = 0x04
    CALLI = 0x05
    RETI = 0x06
    RETURN = 0x07
    REVERT = 0x08
    # stack and locals
    PUSHI = 0x10
    PUSHB = 0x11
    POP = 0x12
    DUP = 0x13
    SWAP = 0x14
    LOAD = 0x15
    STORE = 0x16
    # unsigned arithmetic (checked)
    ADD = 0x20
    SUB = 0x21
    MUL = 0x22
    DIV = 0x23
    MOD = 0x24
    EXP = 0x25
    # signed arithmetic (checked; // and % floor, as in Python)
    SADD = 0x28
    SSUB = 0x29
    SMUL = 0x2A
    SDIV = 0x2B
    SMOD = 0x2C
    SNEG = 0x2D
    # comparison and bits
    LT = 0x30
    GT = 0x31
    SLT = 0x32
    SGT = 0x33
    EQ = 0x34
    ISZERO = 0x35
    AND = 0x36
    OR = 0x37
    XOR = 0x38
    NOT = 0x39
    SHL = 0x3A
    SHR = 0x3B
    # byte strings
    CONCAT = 0x40
    LEN = 0x41
    SLICE = 0x42
    BTOI = 0x43
    ITOB = 0x44
    ITOB32 = 0x45
    SHA256 = 0x46
    PACK = 0x47
    UNPACK = 0x48
    # environment
    CALLER = 0x50
    ORIGIN = 0x51
    CALLVALUE = 0x52
    SELF = 0x53
    HEIGHT = 0x54
    TIME = 0x55
    METHOD = 0x56
    ARG = 0x57
    NARGS = 0x58
    BALANCE = 0x59
    GAS = 0x5A
    # state and the outside world
    SLOAD = 0x60
    SSTORE = 0x61
    EMIT = 0x62
    TRANSFER = 0x63
    CALL = 0x64
    STATICCALL = 0x65
    SLOADR = 0x66
    SSTORER = 0x67


@dataclass(frozen=True)
class OpInfo:
    op: Op
    immediates: tuple[str, ...]  # kinds: "u8", "u16", "int", "bytes"
    gas: int
    stack: str  # what it pops -> what it pushes, for people (top of stack last)

    @property
    def name(self) -> str:
        return self.op.name


_TABLE = [
    (Op.STOP, (), 0, "-> (ends the call, returns empty bytes)"),
    (Op.JUMPDEST, (), 1, "-> (marks a jump target)"),
    (Op.JUMP, ("u16",), 3, "->"),
    (Op.JUMPI, ("u16",), 4, "cond:int -> (jumps if cond != 0)"),
    (Op.JUMPV, (), 5, "target:int -> (target must be a JUMPDEST)"),
    (Op.CALLI, ("u16", "u8"), 10, "args... -> (new frame, args in locals 0..n-1)"),
    (Op.RETI, (), 5, "-> (back to the instruction after CALLI)"),
    (Op.RETURN, (), 0, "value -> (ends the call, returns value)"),
    (Op.REVERT, (), 0, "reason:bytes -> (undoes the call, with reason)"),
    (Op.PUSHI, ("int",), 2, "-> int"),
    (Op.PUSHB, ("bytes",), 3, "-> bytes"),
    (Op.POP, (), 1, "a ->"),
    (Op.DUP, ("u8",), 2, "x_n .. x_0 -> x_n .. x_0 x_n"),
    (Op.SWAP, ("u8",), 2, "x_n .. x_0 -> x_0 .. x_n (n >= 1)"),
    (Op.LOAD, ("u8",), 2, "-> locals[n]"),
    (Op.STORE, ("u8",), 2, "v -> (locals[n] = v)"),
    (Op.ADD, (), 3, "a b -> a+b"),
    (Op.SUB, (), 3, "a b -> a-b"),
    (Op.MUL, (), 5, "a b -> a*b"),
    (Op.DIV, (), 5, "a b -> a//b"),
    (Op.MOD, (), 5, "a b -> a%b"),
    (Op.EXP, (), 10, "a b -> a**b (+10 gas per byte of b)"),
    (Op.SADD, (), 3, "a b -> a+b (signed)"),
    (Op.SSUB, (), 3, "a b -> a-b (signed)"),
    (Op.SMUL, (), 5, "a b -> a*b (signed)"),
    (Op.SDIV, (), 5, "a b -> a//b (signed, floor)"),
    (Op.SMOD, (), 5, "a b -> a%b (signed, floor)"),
    (Op.SNEG, (), 3, "a -> -a (signed)"),
    (Op.LT, (), 3, "a b -> a<b"),
    (Op.GT, (), 3, "a b -> a>b"),
    (Op.SLT, (), 3, "a b -> a<b (signed)"),
    (Op.SGT, (), 3, "a b -> a>b (signed)"),
    (Op.EQ, (), 3, "a b -> a==b (values of different kinds are unequal)"),
    (Op.ISZERO, (), 3, "a:int -> a==0"),
    (Op.AND, (), 3, "a b -> a&b"),
    (Op.OR, (), 3, "a b -> a|b"),
    (Op.XOR, (), 3, "a b -> a^b"),
    (Op.NOT, (), 3, "a -> ~a (256 bits)"),
    (Op.SHL, (), 3, "a n -> a<<n (256 bits)"),
    (Op.SHR, (), 3, "a n -> a>>n"),
    (Op.CONCAT, (), 3, "a:bytes b:bytes -> a+b (+1 gas per 32 bytes)"),
    (Op.LEN, (), 2, "b:bytes -> len(b)"),
    (Op.SLICE, (), 3, "b:bytes start n -> b[start:start+n] (+1 gas per 32 bytes)"),
    (Op.BTOI, (), 3, "b:bytes -> int (big-endian, at most 32 bytes)"),
    (Op.ITOB, (), 3, "a:int -> bytes (minimal big-endian; 0 -> empty)"),
    (Op.ITOB32, (), 3, "a:int -> bytes (32 bytes big-endian)"),
    (Op.SHA256, (), 30, "b:bytes -> bytes (+6 gas per 32 bytes)"),
    (Op.PACK, ("u8",), 5,
     "v_1..v_n -> bytes (a msgpack array of the values as byte strings; +1 gas per 32 "
     "bytes)"),
    (Op.UNPACK, ("u8",), 5,
     "b:bytes -> v_1..v_n (b must be a canonical msgpack array of exactly n byte "
     "strings, else revert; +1 gas per 32 bytes)"),
    (Op.CALLER, (), 2, "-> address of the caller"),
    (Op.ORIGIN, (), 2, "-> address of the transaction's sender"),
    (Op.CALLVALUE, (), 2, "-> native coin sent with the call"),
    (Op.SELF, (), 2, "-> this contract's address"),
    (Op.HEIGHT, (), 2, "-> block height"),
    (Op.TIME, (), 2, "-> block time (ms)"),
    (Op.METHOD, (), 2, "-> method name (bytes; '__init__' at deploy)"),
    (Op.ARG, (), 3, "i -> argument i (bytes)"),
    (Op.NARGS, (), 2, "-> number of arguments"),
    (Op.BALANCE, (), 100, "address:bytes -> native balance"),
    (Op.GAS, (), 2, "-> gas left"),
    (Op.SLOAD, (), 200, "key:bytes -> value:bytes (empty if unset)"),
    (Op.SSTORE, (), 500, "key:bytes value:bytes -> (+50 gas per byte; empty value deletes)"),
    (Op.SLOADR, (), 200, "base:bytes field:bytes -> value:bytes (a field of the record stored "
                         "under base; empty if unset; +4 gas per 32 bytes of the record the "
                         "first time a transaction reads it)"),
    (Op.SSTORER, (), 500, "value:bytes base:bytes field:bytes -> (+50 gas per byte of all "
                          "three, +8 per byte of the record the first time a transaction "
                          "writes it; empty value unsets; the record's bounds are checked "
                          "when the transaction's call ends)"),
    (Op.EMIT, ("u8",), 100, "name:bytes f_1..f_n -> (+10 gas per byte of data)"),
    (Op.TRANSFER, (), 1000, "to:bytes amount:int -> (native coin from this contract)"),
    (Op.CALL, ("u8",), 1000,
     "contract:bytes value:int method:bytes a_1..a_n -> result ok (ok: 1 or 0; result: "
     "the return value, or the revert reason)"),
    (Op.STATICCALL, ("u8",), 1000,
     "contract:bytes method:bytes a_1..a_n -> result ok (as CALL, with no value, and the "
     "callee and everything it calls may not change state)"),
]

OPS: dict[int, OpInfo] = {op: OpInfo(op, imm, gas, stack) for op, imm, gas, stack in _TABLE}
BY_NAME: dict[str, OpInfo] = {info.name: info for info in OPS.values()}
assert len(OPS) == len(Op), "every opcode has a table row"

# Dynamic gas, charged by the interpreter on top of the table's.
GAS_PER_WORD = 1  # CONCAT, SLICE: per 32 bytes produced
GAS_SHA256_WORD = 6
GAS_EXP_BYTE = 10
GAS_STORE_BYTE = 50  # SSTORE: per byte of key and value written
GAS_EVENT_BYTE = 10
GAS_RETURN_BYTE = 10  # RETURN: per byte returned (return data can land in a receipt)
GAS_RECORD_BYTE = 8  # SSTORER: per byte a record holds, the first time a transaction writes it
GAS_RECORD_WORD = 4  # SLOADR: per 32 bytes a record holds, the first time a transaction reads it
MAX_RECORD_FIELDS = 64  # set fields of one stored record (a record type has at most 64)
MAX_RECORD_BYTES = 4096  # bytes of a stored record's field names and values
GAS_CODE_BYTE = 2  # a call: per byte of the callee's code, once per contract per transaction
FRAME_BYTES = 8 * LOCALS + 64  # what a CALLI frame counts toward MAX_ALLOCATED
