"""Every instruction of the VM: what it computes, what it costs, how it fails.

The tests run the :class:`vm.interpreter.Machine` directly against a real
:class:`vm.world.WorldState` (over an in-memory state tree), so each one sees exactly
what a contract call would: the :class:`Outcome` (status, data, reason, gas left) and
the world's storage, balances and events afterwards. Programs are written in assembly
and are small enough that the gas they use can be worked out by hand from the opcode
table (``OPS[op].gas``) plus the documented per-byte charges.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import pytest

from chain.block import MAX_EVENT_DATA, MAX_EVENTS, MAX_REASON, Event
from chain.codec import pack
from storage.kv import MemoryKV
from storage.state import StateTree
from vm.asm import assemble
from vm.interpreter import BlockEnv, Machine, Outcome, Status, signed
from vm.opcodes import (
    GAS_CODE_BYTE,
    GAS_EVENT_BYTE,
    GAS_EXP_BYTE,
    GAS_PER_WORD,
    GAS_RETURN_BYTE,
    GAS_SHA256_WORD,
    GAS_STORE_BYTE,
    INT_MAX,
    INT_MIN,
    MAX_BYTES,
    MAX_CALL_DEPTH,
    MAX_FRAMES,
    OPS,
    STACK_LIMIT,
    UINT_MAX,
    Op,
)
from vm.program import decode, load_program
from vm.world import MAX_STORAGE_KEY, WorldState

CONTRACT = bytes([0xC0]) * 20
CALLER = bytes([0xCA]) * 20
ORIGIN = bytes([0x0A]) * 20
CALLEE = bytes([0xCE]) * 20
OTHER = bytes([0xB0]) * 20
HEIGHT = 41
TIME_MS = 1_767_225_641_000
GAS = 1_000_000


# ---------------------------------------------------------------------------- harness


def new_world() -> WorldState:
    """An empty world whose contracts' code is decoded by the real validator."""
    return WorldState(StateTree(MemoryKV()), lambda _address, code: load_program(code))


def run(
    src: str | bytes,
    *,
    world: WorldState | None = None,
    args: Sequence[bytes] = (),
    value: int = 0,
    gas: int = GAS,
    method: bytes = b"run",
    caller: bytes = CALLER,
) -> Outcome:
    """Run ``src`` (assembly, or bytecode) as the code of CONTRACT, called by CALLER.

    The Outcome's ``gas_left`` leaves out RETURN's per-byte charge (added back here), so
    each test's gas arithmetic is about the instructions it is testing;
    test_return_charges_per_byte_returned checks that charge on its own."""
    code = assemble(src) if isinstance(src, str) else src
    machine = Machine(world if world is not None else new_world(),
                      BlockEnv(HEIGHT, TIME_MS), ORIGIN)
    out = machine.call(caller, CONTRACT, method, list(args), value, gas,
                       program=load_program(code))
    if out.status == Status.OK:
        out = out._replace(gas_left=out.gas_left + GAS_RETURN_BYTE * len(out.data))
    return out


def test_return_charges_per_byte_returned() -> None:
    """Return data can end up in a receipt, so it is paid for by the byte."""
    code = load_program(assemble("PUSHB 0x" + "ab" * 100 + "\nRETURN"))
    machine = Machine(new_world(), BlockEnv(HEIGHT, TIME_MS), ORIGIN)
    out = machine.call(CALLER, CONTRACT, b"run", [], 0, GAS, program=code)
    assert out.data == b"\xab" * 100
    assert out.gas_left == GAS - OPS[Op.PUSHB].gas - GAS_RETURN_BYTE * 100
    short = machine.call(CALLER, CONTRACT, b"run", [], 0, OPS[Op.PUSHB].gas + 999,
                         program=code)
    assert short.status == Status.OUT_OF_GAS


def static_gas(src: str) -> int:
    """The table's gas for every instruction of ``src`` (each runs exactly once)."""
    return sum(OPS[op].gas for _, op, _ in decode(assemble(src)))


def as_int(out: Outcome) -> int:
    """The integer a program RETURNed (RETURN gives an int's minimal big-endian bytes)."""
    assert out.status == Status.OK, out
    return int.from_bytes(out.data, "big")


def push_int(x: int) -> str:
    """A PUSHI line; negative numbers go in as two's complement (the assembler's job)."""
    return f"PUSHI {x}"


def assert_ok(out: Outcome, data: bytes | None = None) -> None:
    assert (out.status, out.reason) == (Status.OK, ""), out
    if data is not None:
        assert out.data == data


def assert_error(out: Outcome, fragment: str = "") -> None:
    """A broken rule of the machine: status ERROR, and a faulted call keeps no gas."""
    assert out.status == Status.ERROR, out
    assert out.data == b""
    assert out.gas_left == 0
    assert fragment in out.reason, out.reason


def assert_reverted(out: Outcome, reason: str, gas_left: int) -> None:
    """A revert names its reason and gives back the gas it did not use."""
    assert (out.status, out.data, out.reason, out.gas_left) == (
        Status.REVERTED, b"", reason, gas_left), out


# ---------------------------------------------------------------------------- unsigned

OVER = "uint overflow"
UNDER = "uint underflow"
DIV0 = "division by zero"
SOVER = "int overflow"

UNSIGNED: list[tuple[str, int, int, int | str]] = [
    ("ADD", 2, 3, 5),
    ("ADD", UINT_MAX, 0, UINT_MAX),
    ("ADD", UINT_MAX - 1, 1, UINT_MAX),
    ("ADD", UINT_MAX, 1, OVER),
    ("ADD", 1 << 255, 1 << 255, OVER),
    ("SUB", 5, 3, 2),
    ("SUB", 3, 3, 0),
    ("SUB", 3, 5, UNDER),
    ("SUB", 0, 1, UNDER),
    ("MUL", 6, 7, 42),
    ("MUL", UINT_MAX, 0, 0),
    ("MUL", UINT_MAX, 1, UINT_MAX),
    ("MUL", 1 << 128, 1 << 127, 1 << 255),
    ("MUL", 1 << 128, 1 << 128, OVER),
    ("DIV", 7, 2, 3),
    ("DIV", 0, 5, 0),
    ("DIV", UINT_MAX, UINT_MAX, 1),
    ("DIV", 7, 0, DIV0),
    ("DIV", 0, 0, DIV0),
    ("MOD", 7, 3, 1),
    ("MOD", 6, 3, 0),
    ("MOD", 7, 0, DIV0),
    ("EXP", 2, 10, 1024),
    ("EXP", 2, 255, 1 << 255),
    ("EXP", 2, 256, OVER),
    ("EXP", 0, 0, 1),
    ("EXP", 0, 1000, 0),
    ("EXP", 1, UINT_MAX, 1),
    ("EXP", UINT_MAX, 1, UINT_MAX),
    ("EXP", UINT_MAX, 2, OVER),
    ("EXP", 3, 300, OVER),
    ("EXP", 10, 77, 10**77),
    ("EXP", 10, 78, OVER),
]


def exp_extra(b: int) -> int:
    """EXP's dynamic gas: GAS_EXP_BYTE per byte of the exponent."""
    return GAS_EXP_BYTE * ((b.bit_length() + 7) // 8)


@pytest.mark.parametrize(("op", "a", "b", "expected"), UNSIGNED)
def test_unsigned_arithmetic(op: str, a: int, b: int, expected: int | str) -> None:
    """Checked unsigned arithmetic: the exact result, or a revert with the exact reason
    (the contract language relies on these reasons to explain a failed transaction)."""
    src = f"PUSHI {a}\nPUSHI {b}\n{op}\nRETURN"
    used = 2 + 2 + OPS[Op[op]].gas + (exp_extra(b) if op == "EXP" else 0)
    out = run(src)
    if isinstance(expected, str):
        assert_reverted(out, expected, GAS - used)
    else:
        assert as_int(out) == expected
        assert out.gas_left == GAS - used


# ---------------------------------------------------------------------------- signed

SIGNED: list[tuple[str, int, int, int | str]] = [
    ("SADD", -5, 3, -2),
    ("SADD", -1, -1, -2),
    ("SADD", INT_MAX, INT_MIN, -1),
    ("SADD", INT_MAX, 1, SOVER),
    ("SADD", INT_MIN, -1, SOVER),
    ("SSUB", -5, 3, -8),
    ("SSUB", 3, 5, -2),
    ("SSUB", -1, INT_MAX, INT_MIN),
    ("SSUB", INT_MIN, 1, SOVER),
    ("SSUB", 0, INT_MIN, SOVER),
    ("SMUL", -4, 5, -20),
    ("SMUL", -4, -5, 20),
    ("SMUL", INT_MIN, 1, INT_MIN),
    ("SMUL", INT_MIN, -1, SOVER),
    ("SMUL", 1 << 128, 1 << 127, SOVER),
    ("SMUL", -(1 << 127), 1 << 128, INT_MIN),
    ("SDIV", 7, 2, 3),
    ("SDIV", -7, 2, -4),  # floor, as in Python (not truncation toward zero)
    ("SDIV", 7, -2, -4),
    ("SDIV", -7, -2, 3),
    ("SDIV", INT_MIN, 1, INT_MIN),
    ("SDIV", INT_MIN, -1, SOVER),
    ("SDIV", 5, 0, DIV0),
    ("SMOD", 7, 2, 1),
    ("SMOD", -7, 2, 1),  # the sign of the divisor, as in Python
    ("SMOD", 7, -2, -1),
    ("SMOD", -7, -2, -1),
    ("SMOD", INT_MIN, -1, 0),
    ("SMOD", 7, 0, DIV0),
]


@pytest.mark.parametrize(("op", "a", "b", "expected"), SIGNED)
def test_signed_arithmetic(op: str, a: int, b: int, expected: int | str) -> None:
    """Signed instructions read words as two's complement, floor like Python and revert
    on results outside the int range."""
    src = f"{push_int(a)}\n{push_int(b)}\n{op}\nRETURN"
    out = run(src)
    used = 2 + 2 + OPS[Op[op]].gas
    if isinstance(expected, str):
        assert_reverted(out, expected, GAS - used)
    else:
        assert signed(as_int(out)) == expected
        assert out.gas_left == GAS - used


@pytest.mark.parametrize(("a", "expected"), [
    (5, -5), (-5, 5), (0, 0), (INT_MAX, -INT_MAX), (-INT_MAX, INT_MAX), (INT_MIN, SOVER),
])
def test_sneg(a: int, expected: int | str) -> None:
    """SNEG of the most negative int has no positive counterpart: it reverts."""
    out = run(f"{push_int(a)}\nSNEG\nRETURN")
    if isinstance(expected, str):
        assert_reverted(out, expected, GAS - 2 - OPS[Op.SNEG].gas)
    else:
        assert signed(as_int(out)) == expected


def test_signed_results_are_256_bit_words() -> None:
    """A negative result is stored as its 32-byte two's complement word."""
    out = run("PUSHI 3\nPUSHI 5\nSSUB\nRETURN")
    assert out.data == b"\xff" * 31 + b"\xfe"


# ---------------------------------------------------------------------------- compare, bits

COMPARE: list[tuple[str, str, str, int]] = [
    ("LT", "PUSHI 1", "PUSHI 2", 1),
    ("LT", "PUSHI 2", "PUSHI 2", 0),
    ("LT", "PUSHI -1", "PUSHI 0", 0),  # unsigned: -1 is the largest word
    ("GT", "PUSHI -1", "PUSHI 0", 1),
    ("GT", "PUSHI 2", "PUSHI 2", 0),
    ("GT", "PUSHI 1", "PUSHI 2", 0),
    ("SLT", "PUSHI -1", "PUSHI 0", 1),
    ("SLT", "PUSHI 0", "PUSHI -1", 0),
    ("SLT", f"PUSHI {INT_MIN}", f"PUSHI {INT_MAX}", 1),
    ("SLT", "PUSHI -3", "PUSHI -3", 0),
    ("SGT", "PUSHI 0", "PUSHI -1", 1),
    ("SGT", "PUSHI -2", "PUSHI -1", 0),
    ("SGT", f"PUSHI {INT_MAX}", f"PUSHI {INT_MIN}", 1),
    ("EQ", "PUSHI 7", "PUSHI 7", 1),
    ("EQ", "PUSHI 7", "PUSHI 8", 0),
    ("EQ", 'PUSHB "ab"', 'PUSHB "ab"', 1),
    ("EQ", 'PUSHB "ab"', 'PUSHB "ac"', 0),
    ("EQ", "PUSHI 0", 'PUSHB ""', 0),  # values of different kinds are unequal
    ("EQ", "PUSHI 97", 'PUSHB "a"', 0),
    ("LT", 'PUSHB "a"', 'PUSHB "b"', 1),  # byte strings compare too, with their own kind
    ("GT", 'PUSHB "b"', 'PUSHB "ab"', 1),
]


@pytest.mark.parametrize(("op", "a", "b", "expected"), COMPARE)
def test_comparisons(op: str, a: str, b: str, expected: int) -> None:
    """Comparisons push 1 or 0 (an int, so ITOB32 accepts it)."""
    out = run(f"{a}\n{b}\n{op}\nITOB32\nRETURN")
    assert_ok(out, expected.to_bytes(32, "big"))


@pytest.mark.parametrize("op", ["LT", "GT"])
def test_ordering_values_of_different_kinds_is_an_error(op: str) -> None:
    assert_error(run(f'PUSHI 1\nPUSHB "a"\n{op}'), "one kind")


@pytest.mark.parametrize(("a", "expected"), [(0, 1), (1, 0), (UINT_MAX, 0)])
def test_iszero(a: int, expected: int) -> None:
    out = run(f"PUSHI {a}\nISZERO\nITOB32\nRETURN")
    assert_ok(out, expected.to_bytes(32, "big"))


BITS: list[tuple[str, int, int, int]] = [
    ("AND", 0b1100, 0b1010, 0b1000),
    ("OR", 0b1100, 0b1010, 0b1110),
    ("XOR", 0b1100, 0b1010, 0b0110),
    ("AND", UINT_MAX, 1 << 200, 1 << 200),
    ("SHL", 1, 255, 1 << 255),
    ("SHL", 1, 256, 0),
    ("SHL", 1, 1000, 0),
    ("SHL", 1, UINT_MAX, 0),
    ("SHL", UINT_MAX, 1, UINT_MAX - 1),  # bits shifted past 256 are dropped
    ("SHL", 5, 0, 5),
    ("SHR", 1 << 255, 255, 1),
    ("SHR", UINT_MAX, 255, 1),
    ("SHR", UINT_MAX, 256, 0),
    ("SHR", UINT_MAX, UINT_MAX, 0),
    ("SHR", 0b1011, 1, 0b101),
]


@pytest.mark.parametrize(("op", "a", "b", "expected"), BITS)
def test_bits(op: str, a: int, b: int, expected: int) -> None:
    out = run(f"PUSHI {a}\nPUSHI {b}\n{op}\nRETURN")
    assert as_int(out) == expected
    assert out.gas_left == GAS - 2 - 2 - OPS[Op[op]].gas


@pytest.mark.parametrize(("a", "expected"), [(0, UINT_MAX), (UINT_MAX, 0), (1, UINT_MAX - 1)])
def test_not_is_256_bits(a: int, expected: int) -> None:
    assert as_int(run(f"PUSHI {a}\nNOT\nRETURN")) == expected


# ---------------------------------------------------------------------------- bytes


@pytest.mark.parametrize(("a", "b"), [(b"ab", b"cd"), (b"", b"x"), (b"x", b""), (b"", b""),
                                      (b"\x00" * 40, b"\xff" * 25)])
def test_concat(a: bytes, b: bytes) -> None:
    """CONCAT joins its operands in stack order and charges per 32 bytes it builds."""
    out = run(f"PUSHB 0x{a.hex()}\nPUSHB 0x{b.hex()}\nCONCAT\nRETURN")
    assert_ok(out, a + b)
    extra = GAS_PER_WORD * ((len(a) + len(b) + 31) // 32)
    assert out.gas_left == GAS - 3 - 3 - OPS[Op.CONCAT].gas - extra


def test_concat_result_longer_than_max_bytes_is_an_error() -> None:
    half = "ab" * (MAX_BYTES // 2)
    assert_ok(run(f"PUSHB 0x{half}\nDUP 0\nCONCAT\nLEN\nITOB32\nRETURN"),
              MAX_BYTES.to_bytes(32, "big"))
    assert_error(run(f"PUSHB 0x{half}\nDUP 0\nCONCAT\nPUSHB 0x00\nCONCAT"), "too long")


@pytest.mark.parametrize("data", [b"", b"a", b"hello world", bytes(300)])
def test_len(data: bytes) -> None:
    assert as_int(run(f"PUSHB 0x{data.hex()}\nLEN\nRETURN")) == len(data)


@pytest.mark.parametrize(("start", "n", "expected"), [
    (1, 3, b"ell"), (0, 5, b"hello"), (5, 0, b""), (0, 0, b""), (4, 1, b"o"),
])
def test_slice(start: int, n: int, expected: bytes) -> None:
    out = run(f'PUSHB "hello"\nPUSHI {start}\nPUSHI {n}\nSLICE\nRETURN')
    assert_ok(out, expected)
    extra = GAS_PER_WORD * ((n + 31) // 32)
    assert out.gas_left == GAS - 3 - 2 - 2 - OPS[Op.SLICE].gas - extra


@pytest.mark.parametrize(("start", "n"), [(3, 3), (6, 0), (0, 6), (1, UINT_MAX), (UINT_MAX, 1)])
def test_slice_out_of_range_reverts(start: int, n: int) -> None:
    out = run(f'PUSHB "hello"\nPUSHI {start}\nPUSHI {n}\nSLICE\nRETURN')
    assert_reverted(out, "slice out of range", GAS - 3 - 2 - 2 - OPS[Op.SLICE].gas)


def test_slice_gas_counts_the_bytes_produced() -> None:
    """SLICE charges GAS_PER_WORD per 32 bytes of the slice, not of its input."""
    data = bytes(range(100))
    out = run(f"PUSHB 0x{data.hex()}\nPUSHI 10\nPUSHI 33\nSLICE\nRETURN")
    assert_ok(out, data[10:43])
    assert out.gas_left == GAS - 3 - 2 - 2 - OPS[Op.SLICE].gas - 2 * GAS_PER_WORD


@pytest.mark.parametrize(("data", "expected"), [
    (b"", 0), (b"\x01\x02", 258), (b"\x00\x00\x07", 7), (b"\xff" * 32, UINT_MAX),
    (b"\x80" + bytes(31), 1 << 255),
])
def test_btoi(data: bytes, expected: int) -> None:
    out = run(f"PUSHB 0x{data.hex()}\nBTOI\nITOB32\nRETURN")
    assert_ok(out, expected.to_bytes(32, "big"))


def test_btoi_longer_than_32_bytes_is_an_error() -> None:
    assert_error(run(f"PUSHB 0x{'01' * 33}\nBTOI"), "at most 32 bytes")


@pytest.mark.parametrize(("a", "expected"), [
    (0, b""), (1, b"\x01"), (255, b"\xff"), (256, b"\x01\x00"), (UINT_MAX, b"\xff" * 32),
])
def test_itob_is_minimal_big_endian(a: int, expected: bytes) -> None:
    """ITOB gives an int's minimal big-endian bytes, and LEN proves the result is bytes."""
    out = run(f"PUSHI {a}\nITOB\nDUP 0\nLEN\nITOB32\nSWAP 1\nCONCAT\nRETURN")
    assert_ok(out, len(expected).to_bytes(32, "big") + expected)


@pytest.mark.parametrize("a", [0, 1, 258, UINT_MAX])
def test_itob32(a: int) -> None:
    assert_ok(run(f"PUSHI {a}\nITOB32\nRETURN"), a.to_bytes(32, "big"))


@pytest.mark.parametrize("size", [0, 1, 31, 32, 33, 64, 65, 1000])
def test_sha256(size: int) -> None:
    """SHA256 matches hashlib and charges GAS_SHA256_WORD per 32 bytes hashed."""
    data = bytes((i * 7) & 0xFF for i in range(size))
    out = run(f"PUSHB 0x{data.hex()}\nSHA256\nRETURN")
    assert_ok(out, hashlib.sha256(data).digest())
    extra = GAS_SHA256_WORD * ((size + 31) // 32)
    assert out.gas_left == GAS - 3 - OPS[Op.SHA256].gas - extra


# ---------------------------------------------------------------------------- stack


def test_pushi_and_pushb() -> None:
    assert as_int(run(f"PUSHI {UINT_MAX}\nRETURN")) == UINT_MAX
    assert_ok(run('PUSHB "hi"\nRETURN'), b"hi")
    assert_ok(run('PUSHB ""\nRETURN'), b"")


def test_pop_drops_the_top() -> None:
    assert as_int(run("PUSHI 1\nPUSHI 2\nPOP\nRETURN")) == 1


def test_dup_copies_the_nth_value() -> None:
    """DUP 0 copies the top; DUP n the value n below it (stack read bottom to top by
    CONCAT-ing it all)."""
    assert_ok(run('PUSHB "a"\nPUSHB "b"\nDUP 0\nCONCAT\nCONCAT\nRETURN'), b"abb")
    assert_ok(run('PUSHB "a"\nPUSHB "b"\nPUSHB "c"\nDUP 2\nCONCAT\nCONCAT\nCONCAT\nRETURN'),
              b"abca")


def test_swap_exchanges_the_top_with_the_nth() -> None:
    assert_ok(run('PUSHB "a"\nPUSHB "b"\nSWAP 1\nCONCAT\nRETURN'), b"ba")
    assert_ok(run('PUSHB "a"\nPUSHB "b"\nPUSHB "c"\nSWAP 2\nCONCAT\nCONCAT\nRETURN'), b"cba")


def test_locals_start_at_zero_and_hold_what_is_stored() -> None:
    out = run("LOAD 0\nITOB32\nLOAD 255\nITOB32\nCONCAT\nRETURN")
    assert_ok(out, bytes(64))
    assert_ok(run('PUSHB "x"\nSTORE 3\nPUSHI 9\nSTORE 255\nLOAD 3\nLOAD 255\nITOB\nCONCAT'
                  "\nRETURN"), b"x\x09")


@pytest.mark.parametrize("src", [
    "POP",
    "PUSHI 1\nADD",
    "SUB",
    "PUSHI 1\nMUL",
    "PUSHI 1\nEXP",
    "SNEG",
    "PUSHI 1\nSLT",
    "NOT",
    "PUSHI 1\nLT",
    "PUSHI 1\nEQ",
    "ISZERO",
    "PUSHI 1\nDUP 1",
    "DUP 0",
    "PUSHI 1\nSWAP 1",
    "STORE 0",
    "RETURN",
    "REVERT",
    "JUMPV",
    "PUSHB \"a\"\nCONCAT",
    "PUSHB \"a\"\nPUSHI 0\nSLICE",
    "SHA256",
    "ARG",
    "BALANCE",
    "SLOAD",
    'PUSHB "k"\nSSTORE',
    'PUSHB "name"\nEMIT 0\nEMIT 0',
    'PUSHB "field"\nEMIT 1',
    "PUSHI 5\nTRANSFER",
    "PUSHI 1\nPUSHI 2\nCALL 0",
    'PUSHI 1\nPUSHI 2\nPUSHI 3\nCALL 1',
    "JUMPI end\nend:",
    "PUSHI 1\nCALLI f 2\nf:\nRETI",
])
def test_stack_underflow_is_an_error(src: str) -> None:
    """Popping more than the stack holds breaks the machine's rules: ERROR, no gas back."""
    assert_error(run(src), "underflow")


PUSHERS = ["PUSHI 1", 'PUSHB "x"', "DUP 0", "LOAD 0", "CALLER", "HEIGHT", "GAS", "NARGS"]


@pytest.mark.parametrize("pusher", PUSHERS)
def test_stack_holds_exactly_stack_limit_values(pusher: str) -> None:
    """STACK_LIMIT values fit; one more is a stack overflow, whatever pushes it."""
    fill = "PUSHI 0\n" * (STACK_LIMIT - 1)
    assert_ok(run(f"{fill}{pusher}\nSTOP"))
    assert_error(run(f"{fill}PUSHI 0\n{pusher}\nSTOP"), "stack overflow")


def test_a_pushing_loop_overflows_the_stack() -> None:
    assert_error(run("top:\nPUSHI 1\nJUMP top"), "stack overflow")


def test_call_on_a_full_stack_does_not_overflow() -> None:
    """CALL pops three values and pushes two: a full stack stays full, no overflow."""
    fill = "PUSHI 0\n" * (STACK_LIMIT - 3)
    src = f"{fill}PUSHB 0x{CALLEE.hex()}\nPUSHI 0\nPUSHB \"m\"\nCALL 0\nSTOP"
    assert_ok(run(src))


# ---------------------------------------------------------------------------- control


def test_jump_skips_code() -> None:
    out = run('JUMP end\nPUSHB "skipped"\nREVERT\nend:\nPUSHI 1\nRETURN')
    assert as_int(out) == 1
    assert out.gas_left == GAS - static_gas("JUMP end\nend:\nPUSHI 1\nRETURN")


@pytest.mark.parametrize(("cond", "taken"), [(0, False), (1, True), (UINT_MAX, True)])
def test_jumpi_jumps_on_nonzero(cond: int, taken: bool) -> None:
    out = run(f'PUSHI {cond}\nJUMPI yes\nPUSHB "no"\nRETURN\nyes:\nPUSHB "yes"\nRETURN')
    assert_ok(out, b"yes" if taken else b"no")


def test_jumpi_on_bytes_is_an_error() -> None:
    assert_error(run("PUSHB 0x01\nJUMPI end\nend:"), "JUMPI condition must be an integer")


JUMPV_SRC = """
    PUSHI {target}
    JUMPV
    PUSHB "no"
    REVERT
there:
    PUSHI 42
    RETURN
"""


def test_jumpv_to_a_jumpdest() -> None:
    """JUMPV takes a byte offset from the stack; here the label `there` is at byte 10."""
    code = assemble(JUMPV_SRC.format(target=10))
    assert [off for off, op, _ in decode(code) if op is Op.JUMPDEST] == [10]
    assert as_int(run(code)) == 42


@pytest.mark.parametrize("target", ["0", "1", "9", "11", "65535", str(UINT_MAX), '"x"'])
def test_jumpv_to_anything_but_a_jumpdest_is_an_error(target: str) -> None:
    op = "PUSHB" if target.startswith('"') else "PUSHI"
    src = JUMPV_SRC.replace("PUSHI {target}", f"{op} {target}")
    assert_error(run(src), "bad jump")


def test_jumpv_into_an_immediate_that_looks_like_a_jumpdest() -> None:
    """The byte at offset 2 of ``PUSHI 1`` is 0x01 (the JUMPDEST opcode) but it is data:
    JUMPV must not land there."""
    code = bytes([Op.PUSHI, 1, 1, Op.PUSHI, 1, 2, Op.JUMPV])
    assert code[2] == Op.JUMPDEST
    assert_error(run(code), "bad jump")


CALLI_SRC = """
    PUSHI 11
    STORE 0          ; the caller's locals: 0 -> 11, 2 -> 22
    PUSHI 22
    STORE 2
    PUSHI 5
    PUSHI 3
    CALLI diff 2     ; diff(5, 3): 5 lands in local 0, 3 in local 1
    ITOB32
    LOAD 0
    ITOB32
    CONCAT
    LOAD 2
    ITOB32
    CONCAT
    RETURN
diff:
    LOAD 2           ; a fresh frame: local 2 is 0 here
    ISZERO
    JUMPI fresh
    PUSHB "callee saw the caller's locals"
    REVERT
fresh:
    LOAD 0
    LOAD 1
    SUB              ; 5 - 3 (reverts if the arguments landed the other way round)
    PUSHI 99
    STORE 0          ; must not leak into the caller's frame
    RETI
"""


def test_calli_passes_arguments_in_a_fresh_frame() -> None:
    """Arguments land in locals 0..n-1 of a new frame (first pushed in local 0); RETI
    restores the caller's locals and leaves the callee's result on the shared stack."""
    out = run(CALLI_SRC)
    assert_ok(out, (2).to_bytes(32, "big") + (11).to_bytes(32, "big") + (22).to_bytes(32, "big"))
    ran = CALLI_SRC.replace('PUSHB "callee saw the caller\'s locals"\n    REVERT', "")
    concats = GAS_PER_WORD * (2 + 3)  # 64 then 96 bytes built
    assert out.gas_left == GAS - static_gas(ran) - concats


def test_calli_with_no_arguments_and_nested_calls() -> None:
    src = """
        CALLI one 0
        RETURN
    one:
        CALLI two 0
        PUSHI 1
        ADD
        RETI
    two:
        PUSHI 41
        RETI
    """
    assert as_int(run(src)) == 42


def test_reti_outside_a_call_is_an_error() -> None:
    assert_error(run("PUSHI 1\nRETI"), "RETI outside an internal call")
    # after the only call has returned, a second RETI is outside again
    assert_error(run("CALLI f 0\nf:\nRETI"), "RETI outside an internal call")


RECURSE = """
    PUSHI {n}
    CALLI down 1
    PUSHB "done"
    RETURN
down:                ; down(n): n frames below this one, then return
    LOAD 0
    ISZERO
    JUMPI bottom
    LOAD 0
    PUSHI 1
    SUB
    CALLI down 1
bottom:
    RETI
"""


def test_max_frames_nested_internal_calls() -> None:
    """down(n) nests n + 1 frames: MAX_FRAMES fit, one more is an error."""
    assert_ok(run(RECURSE.format(n=MAX_FRAMES - 1)), b"done")
    assert_error(run(RECURSE.format(n=MAX_FRAMES)), "too many nested internal calls")


def test_unbounded_recursion_is_an_error_not_a_crash() -> None:
    assert_error(run("f:\nCALLI f 0"), "too many nested internal calls")


def test_stop_ends_the_call_with_empty_data() -> None:
    world = new_world()
    out = run('PUSHI 5\nSTOP\nPUSHB "k"\nPUSHB "v"\nSSTORE', world=world)
    assert_ok(out, b"")
    assert out.gas_left == GAS - 2
    assert world.sload(CONTRACT, b"k") == b""


@pytest.mark.parametrize(("push", "data"), [
    ("PUSHI 0", b""), ("PUSHI 1", b"\x01"), ("PUSHI 258", b"\x01\x02"),
    (f"PUSHI {UINT_MAX}", b"\xff" * 32), ('PUSHB "text"', b"text"), ('PUSHB ""', b""),
    ("PUSHB 0x0000", b"\x00\x00"),
])
def test_return_value(push: str, data: bytes) -> None:
    """RETURN gives bytes as they are and an int as its minimal big-endian bytes."""
    out = run(f"{push}\nRETURN\nPUSHB \"after\"\nREVERT")
    assert_ok(out, data)


def test_revert_undoes_state_and_returns_the_gas_left() -> None:
    world = new_world()
    world.sstore(CONTRACT, b"kept", b"before")
    src = """
        PUSHB "k"
        PUSHB "v"
        SSTORE
        PUSHB "kept"
        PUSHB ""
        SSTORE
        PUSHB "E"
        EMIT 0
        PUSHB "nope"
        REVERT
    """
    out = run(src, world=world)
    used = static_gas(src) + GAS_STORE_BYTE * (1 + 1 + 4)  # EMIT 0: no field bytes
    assert_reverted(out, "nope", GAS - used)
    assert world.sload(CONTRACT, b"k") == b""
    assert world.sload(CONTRACT, b"kept") == b"before"
    assert world.events == []


def test_revert_reason_must_be_utf8_bytes() -> None:
    assert_error(run("PUSHI 5\nREVERT"), "revert reason must be bytes")
    assert_error(run("PUSHB 0xff\nREVERT"), "not UTF-8")
    assert_reverted(run('PUSHB "é"\nREVERT'), "é", GAS - 3)


def test_a_long_revert_reason_is_cut_to_max_reason() -> None:
    out = run(f'PUSHB "{"r" * (MAX_REASON + 50)}"\nREVERT')
    assert_reverted(out, "r" * MAX_REASON, GAS - 3)


def test_a_long_non_ascii_revert_reason_fits_in_a_receipt() -> None:
    """A receipt's reason holds at most MAX_REASON *bytes* of UTF-8 (chain.block's
    Str(MAX_REASON)); a reason of multi-byte characters must be cut to that, or the
    receipt cannot be encoded."""
    reason = "€" * MAX_REASON  # 3 bytes each
    out = run(f'PUSHB "{reason}"\nREVERT')
    assert out.status == Status.REVERTED
    assert reason.startswith(out.reason)
    assert len(out.reason.encode("utf-8")) <= MAX_REASON


# ---------------------------------------------------------------------------- environment


def test_environment_values() -> None:
    """CALLER is who called, ORIGIN who signed the transaction, SELF the contract."""
    out = run("CALLER\nORIGIN\nSELF\nCONCAT\nCONCAT\nRETURN")
    assert_ok(out, CALLER + ORIGIN + CONTRACT)


def test_callvalue_is_moved_before_the_code_runs() -> None:
    world = new_world()
    world.set_account(CALLER, 3, 1_000)
    out = run("CALLVALUE\nITOB32\nSELF\nBALANCE\nITOB32\nCONCAT\nRETURN", world=world, value=77)
    assert_ok(out, (77).to_bytes(32, "big") * 2)
    assert world.account(CALLER) == (3, 923)
    assert world.balance(CONTRACT) == 77


def test_callvalue_the_caller_cannot_pay() -> None:
    world = new_world()
    world.set_account(CALLER, 0, 10)
    out = run("STOP", world=world, value=11, gas=5_000)
    assert (out.status, out.reason, out.gas_left) == (
        Status.REVERTED, "caller cannot pay the call's value", 5_000)
    assert world.balance(CALLER) == 10
    assert world.balance(CONTRACT) == 0


def test_height_time_method_and_gas() -> None:
    out = run("HEIGHT\nITOB32\nTIME\nITOB32\nCONCAT\nMETHOD\nCONCAT\nRETURN", method=b"go")
    assert_ok(out, HEIGHT.to_bytes(32, "big") + TIME_MS.to_bytes(32, "big") + b"go")
    # GAS pushes what is left after its own cost
    out = run("GAS\nRETURN", gas=12_345)
    assert as_int(out) == 12_345 - OPS[Op.GAS].gas
    out = run("PUSHI 1\nPOP\nGAS\nRETURN", gas=500)
    assert as_int(out) == 500 - 2 - 1 - 2


def test_args_and_nargs() -> None:
    args = [b"first", b"", b"\x00third"]
    out = run("NARGS\nITOB32\nPUSHI 2\nARG\nCONCAT\nPUSHI 0\nARG\nCONCAT\nPUSHI 1\nARG\nCONCAT"
              "\nRETURN", args=args)
    assert_ok(out, (3).to_bytes(32, "big") + b"\x00third" + b"first")
    assert as_int(run("NARGS\nRETURN")) == 0


@pytest.mark.parametrize(("nargs", "index"), [(0, "PUSHI 0"), (2, "PUSHI 2"),
                                              (2, f"PUSHI {UINT_MAX}"), (2, "PUSHB 0x00")])
def test_arg_out_of_range_is_an_error(nargs: int, index: str) -> None:
    assert_error(run(f"{index}\nARG", args=[b"a"] * nargs), "no argument")


def test_balance() -> None:
    world = new_world()
    world.set_account(OTHER, 5, 123_456)
    out = run(f"PUSHB 0x{OTHER.hex()}\nBALANCE\nPUSHB 0x{CALLEE.hex()}\nBALANCE\nITOB32\n"
              "SWAP 1\nITOB32\nCONCAT\nRETURN", world=world)
    assert_ok(out, bytes(32) + (123_456).to_bytes(32, "big"))


@pytest.mark.parametrize("address", ["PUSHB 0x" + "ab" * 19, "PUSHB 0x" + "ab" * 21, "PUSHI 5"])
def test_balance_needs_a_20_byte_address(address: str) -> None:
    assert_error(run(f"{address}\nBALANCE"), "20-byte address")


# ---------------------------------------------------------------------------- storage


def test_sload_of_an_unset_key_is_empty_bytes() -> None:
    out = run('PUSHB "nothing"\nSLOAD\nDUP 0\nLEN\nITOB32\nCONCAT\nRETURN')
    assert_ok(out, bytes(32))


def test_sstore_then_sload_and_the_value_persists_in_the_world() -> None:
    world = new_world()
    src = 'PUSHB "key"\nPUSHB "value"\nSSTORE\nPUSHB "key"\nSLOAD\nRETURN'
    out = run(src, world=world)
    assert_ok(out, b"value")
    assert out.gas_left == GAS - static_gas(src) - GAS_STORE_BYTE * (3 + 5)
    assert world.sload(CONTRACT, b"key") == b"value"
    assert world.sload(OTHER, b"key") == b""  # storage belongs to one contract
    # and a later call sees it
    assert_ok(run('PUSHB "key"\nSLOAD\nRETURN', world=world), b"value")


def test_storage_is_per_contract() -> None:
    world = new_world()
    world.sstore(OTHER, b"key", b"theirs")
    assert_ok(run('PUSHB "key"\nSLOAD\nRETURN', world=world), b"")


def test_sstore_of_an_empty_value_deletes_the_key() -> None:
    world = new_world()
    world.sstore(CONTRACT, b"key", b"old")
    src = 'PUSHB "key"\nPUSHB ""\nSSTORE\nPUSHB "key"\nSLOAD\nRETURN'
    out = run(src, world=world)
    assert_ok(out, b"")
    assert out.gas_left == GAS - static_gas(src) - GAS_STORE_BYTE * 3
    assert world.get(b"s" + CONTRACT + b"key") is None


@pytest.mark.parametrize("src", ['PUSHI 1\nPUSHB "v"\nSSTORE', 'PUSHB "k"\nPUSHI 1\nSSTORE',
                                 "PUSHI 1\nSLOAD"])
def test_storage_keys_and_values_must_be_bytes(src: str) -> None:
    assert_error(run(src), "must be bytes")


def test_storage_key_longer_than_the_limit_is_an_error() -> None:
    world = new_world()
    ok_key = "ab" * MAX_STORAGE_KEY
    assert_ok(run(f"PUSHB 0x{ok_key}\nPUSHB \"v\"\nSSTORE", world=world))
    assert world.sload(CONTRACT, bytes.fromhex(ok_key)) == b"v"
    assert_error(run(f"PUSHB 0x{ok_key}ab\nPUSHB \"v\"\nSSTORE", world=world), "storage key")


# ---------------------------------------------------------------------------- events


def test_emit_records_an_event_with_packed_fields() -> None:
    """EMIT n pops n fields (ints as minimal bytes) and a name; data is pack(fields)."""
    world = new_world()
    src = 'PUSHB "Transfer"\nPUSHB "ab"\nPUSHI 258\nPUSHI 0\nEMIT 3\nSTOP'
    out = run(src, world=world)
    data = pack([b"ab", b"\x01\x02", b""])
    assert_ok(out)
    assert world.events == [Event(CONTRACT, "Transfer", data)]
    # charged per byte of the fields, before they are packed
    assert out.gas_left == GAS - static_gas(src) - GAS_EVENT_BYTE * (2 + 2 + 0)


def test_emit_without_fields_and_in_order() -> None:
    world = new_world()
    assert_ok(run('PUSHB "A"\nEMIT 0\nPUSHB "B"\nPUSHB "x"\nEMIT 1', world=world))
    assert world.events == [Event(CONTRACT, "A", pack([])), Event(CONTRACT, "B", pack([b"x"]))]


@pytest.mark.parametrize(("src", "fragment"), [
    ("PUSHI 1\nEMIT 0", "event name must be bytes"),
    ("PUSHB 0xff\nEMIT 0", "not UTF-8"),
    (f'PUSHB "{"n" * 65}"\nEMIT 0', "too long"),
    (f'PUSHB "E"\nPUSHB 0x{"00" * MAX_EVENT_DATA}\nEMIT 1', "too long"),
])
def test_bad_events_are_errors(src: str, fragment: str) -> None:
    """A name must be UTF-8 of at most 64 bytes (chain.block.Event's Str(64)), and data
    at most MAX_EVENT_DATA: anything else could not go into a receipt."""
    world = new_world()
    assert_error(run(src, world=world), fragment)
    assert world.events == []


def test_an_event_name_over_64_utf8_bytes_is_an_error() -> None:
    """The limit is on bytes, not characters: 22 euro signs are 22 characters but 66
    bytes, more than an Event's name may hold (its receipt could not be encoded)."""
    name = "€" * 22
    assert len(name) <= 64 < len(name.encode("utf-8"))
    world = new_world()
    assert_error(run(f'PUSHB "{name}"\nEMIT 0', world=world), "too long")
    assert world.events == []


def test_longest_event_name_is_accepted() -> None:
    world = new_world()
    name = "n" * 64
    assert_ok(run(f'PUSHB "{name}"\nEMIT 0', world=world))
    assert world.events[0].name == name
    world.events[0].encode()  # fits a receipt


def test_at_most_max_events_per_transaction() -> None:
    src = """
        PUSHI {n}
        STORE 0
    loop:
        LOAD 0
        ISZERO
        JUMPI done
        PUSHB "E"
        EMIT 0
        LOAD 0
        PUSHI 1
        SUB
        STORE 0
        JUMP loop
    done:
    """
    world = new_world()
    assert_ok(run(src.format(n=MAX_EVENTS), world=world))
    assert len(world.events) == MAX_EVENTS
    world = new_world()
    assert_error(run(src.format(n=MAX_EVENTS + 1), world=world), "too many events")
    assert world.events == []


# ---------------------------------------------------------------------------- transfer


def test_transfer_moves_the_contracts_coin() -> None:
    world = new_world()
    world.set_account(CONTRACT, 0, 1_000)
    src = f"PUSHB 0x{OTHER.hex()}\nPUSHI 300\nTRANSFER\nSTOP"
    out = run(src, world=world)
    assert_ok(out)
    assert out.gas_left == GAS - static_gas(src)
    assert (world.balance(CONTRACT), world.balance(OTHER)) == (700, 300)


def test_transfer_of_more_than_the_balance_reverts() -> None:
    world = new_world()
    world.set_account(CONTRACT, 0, 100)
    src = f'PUSHB "k"\nPUSHB "v"\nSSTORE\nPUSHB 0x{OTHER.hex()}\nPUSHI 101\nTRANSFER\nSTOP'
    out = run(src, world=world)
    used = static_gas(src) - OPS[Op.STOP].gas + GAS_STORE_BYTE * 2
    assert_reverted(out, "transfer: insufficient balance", GAS - used)
    assert (world.balance(CONTRACT), world.balance(OTHER)) == (100, 0)
    assert world.sload(CONTRACT, b"k") == b""


@pytest.mark.parametrize("src", [f"PUSHB 0x{'ab' * 19}\nPUSHI 1\nTRANSFER",
                                 f'PUSHB 0x{OTHER.hex()}\nPUSHB "1"\nTRANSFER',
                                 "PUSHI 1\nPUSHI 1\nTRANSFER"])
def test_transfer_needs_an_address_and_an_integer(src: str) -> None:
    world = new_world()
    world.set_account(CONTRACT, 0, 100)
    assert_error(run(src, world=world), "TRANSFER needs")


# ---------------------------------------------------------------------------- call


def call_src(callee: bytes, value: int, method: str, args: Sequence[str], before: str = "",
             after: str = "") -> str:
    """Caller code: CALL ``callee``, then return ok (32 bytes) followed by the result."""
    lines = [before, f"PUSHB 0x{callee.hex()}", f"PUSHI {value}", f'PUSHB "{method}"',
             *(f'PUSHB "{a}"' for a in args), f"CALL {len(args)}", "STORE 0", "STORE 1",
             after, "LOAD 0", "ITOB32", "LOAD 1", "CONCAT", "RETURN"]
    return "\n".join(line for line in lines if line)


def with_callee(src: str, world: WorldState | None = None, balance: int = 0) -> WorldState:
    world = world if world is not None else new_world()
    world.set_code(CALLEE, assemble(src))
    if balance:
        world.set_account(CALLEE, 0, balance)
    return world


def ok_and(data: bytes) -> bytes:
    return (1).to_bytes(32, "big") + data


def failed_with(reason: str) -> bytes:
    return bytes(32) + reason.encode()


def test_call_passes_method_arguments_and_caller() -> None:
    """The callee sees the method, the arguments and the calling contract as CALLER."""
    callee = """
        METHOD
        PUSHI 0
        ARG
        CONCAT
        PUSHI 1
        ARG
        CONCAT
        CALLER
        CONCAT
        NARGS
        ITOB
        CONCAT
        RETURN
    """
    world = with_callee(callee)
    out = run(call_src(CALLEE, 0, "m", ["x", "yz"]), world=world)
    assert_ok(out, ok_and(b"mxyz" + CONTRACT + b"\x02"))


def test_call_keeps_the_callees_writes_and_events() -> None:
    world = with_callee('PUSHB "k"\nPUSHB "callee"\nSSTORE\nPUSHB "Hi"\nEMIT 0\nPUSHI 7\nRETURN')
    out = run(call_src(CALLEE, 0, "m", []), world=world)
    assert_ok(out, ok_and(b"\x07"))
    assert world.sload(CALLEE, b"k") == b"callee"
    assert world.sload(CONTRACT, b"k") == b""  # written to the callee's storage
    assert world.events == [Event(CALLEE, "Hi", pack([]))]


def test_a_callee_that_reverts_leaves_the_callers_earlier_writes() -> None:
    world = with_callee('PUSHB "c"\nPUSHB "1"\nSSTORE\nPUSHB "E"\nEMIT 0\n'
                        'PUSHB "no way"\nREVERT')
    before = 'PUSHB "before"\nPUSHB "1"\nSSTORE\nPUSHB "B"\nEMIT 0'
    after = 'PUSHB "after"\nPUSHB "2"\nSSTORE'
    out = run(call_src(CALLEE, 0, "m", [], before=before, after=after), world=world)
    assert_ok(out, failed_with("no way"))
    assert world.sload(CONTRACT, b"before") == b"1"
    assert world.sload(CONTRACT, b"after") == b"2"
    assert world.sload(CALLEE, b"c") == b""
    assert world.events == [Event(CONTRACT, "B", pack([]))]


def test_a_caller_that_reverts_undoes_its_callees_writes() -> None:
    world = with_callee('PUSHB "c"\nPUSHB "1"\nSSTORE')
    out = run(call_src(CALLEE, 0, "m", [], after='PUSHB "caller gives up"\nREVERT'),
              world=world)
    assert out.status == Status.REVERTED
    assert world.sload(CALLEE, b"c") == b""


def test_calling_an_address_without_code_fails_softly() -> None:
    world = new_world()
    out = run(call_src(OTHER, 0, "m", []), world=world)
    assert_ok(out)
    assert out.data[:32] == bytes(32)
    assert b"no contract" in out.data[32:]


def test_call_value_moves_coin_to_the_callee() -> None:
    world = with_callee("CALLVALUE\nSELF\nBALANCE\nITOB32\nSWAP 1\nITOB32\nCONCAT\nRETURN")
    world.set_account(CONTRACT, 0, 100)
    out = run(call_src(CALLEE, 60, "m", []), world=world)
    assert_ok(out, ok_and((60).to_bytes(32, "big") * 2))
    assert (world.balance(CONTRACT), world.balance(CALLEE)) == (40, 60)


def test_call_value_the_caller_cannot_pay() -> None:
    world = with_callee("STOP")
    world.set_account(CONTRACT, 0, 10)
    out = run(call_src(CALLEE, 11, "m", []), world=world)
    assert_ok(out, failed_with("caller cannot pay the call's value"))
    assert (world.balance(CONTRACT), world.balance(CALLEE)) == (10, 0)


def test_a_callees_value_is_returned_when_it_reverts() -> None:
    world = with_callee('PUSHB "no"\nREVERT')
    world.set_account(CONTRACT, 0, 100)
    out = run(call_src(CALLEE, 60, "m", []), world=world)
    assert_ok(out, failed_with("no"))
    assert (world.balance(CONTRACT), world.balance(CALLEE)) == (100, 0)


def test_call_gas_a_failing_callee_uses_all_it_was_forwarded() -> None:
    """CALL forwards all but 1/64 of the gas left; a callee that runs out uses all it got
    and the caller finishes on the rest."""
    world = with_callee("loop:\nJUMP loop")
    src = call_src(CALLEE, 0, "m", [])
    out = run(src, world=world, gas=100_000)
    assert_ok(out, failed_with("out of gas"))
    before_call = static_gas(src.split("CALL 0")[0])
    left = 100_000 - before_call - OPS[Op.CALL].gas
    left >>= 6  # the part kept back
    after_call = static_gas(src.split("CALL 0")[1]) + GAS_PER_WORD * 2  # CONCAT of 42 bytes
    assert out.gas_left == left - after_call


def test_call_gas_a_returning_callee_gives_back_what_it_did_not_use() -> None:
    callee = "PUSHI 1\nRETURN"
    world = with_callee(callee)
    src = call_src(CALLEE, 0, "m", [])
    out = run(src, world=world, gas=100_000)
    assert_ok(out, ok_and(b"\x01"))
    loading = GAS_CODE_BYTE * len(assemble(callee))  # the callee's code, once per tx
    returned = GAS_RETURN_BYTE * 1  # the callee returns one byte
    assert out.gas_left == (100_000 - static_gas(src) - static_gas(callee) - GAS_PER_WORD * 2
                            - loading - returned)


@pytest.mark.parametrize("src", [
    f'PUSHB 0x{CALLEE.hex()}\nPUSHI 0\nPUSHB "m"\nPUSHI 1\nCALL 1',  # an int argument
    'PUSHB "short"\nPUSHI 0\nPUSHB "m"\nCALL 0',  # not an address
    f'PUSHB 0x{CALLEE.hex()}\nPUSHB "0"\nPUSHB "m"\nCALL 0',  # value not an int
    f"PUSHB 0x{CALLEE.hex()}\nPUSHI 0\nPUSHI 5\nCALL 0",  # method not bytes
])
def test_call_operands_of_the_wrong_kind_are_errors(src: str) -> None:
    assert_error(run(src, world=with_callee("STOP")), "CALL")


SELF_CALL = """
    SELF
    PUSHI 0
    PUSHB "m"
    CALL 0
    JUMPI ok
    POP             ; the inner call failed: this is the deepest level that ran
    PUSHI 0
    RETURN
ok:
    BTOI            ; how many levels ran below the inner call
    PUSHI 1
    ADD
    RETURN
"""


def test_self_calls_stop_at_the_call_depth_limit() -> None:
    """Unbounded self-calls end at MAX_CALL_DEPTH as a failed inner call (not a Python
    recursion error): depths 1..MAX_CALL_DEPTH run below the outermost call."""
    world = new_world()
    world.set_code(CONTRACT, assemble(SELF_CALL))
    out = run(SELF_CALL, world=world, gas=10**9)
    assert as_int(out) == MAX_CALL_DEPTH


# ---------------------------------------------------------------------------- type errors

TYPE_ERRORS: list[str] = [
    *(f'PUSHB "a"\nPUSHI 1\n{op}' for op in
      ["ADD", "SUB", "MUL", "DIV", "MOD", "EXP", "SADD", "SSUB", "SMUL", "SDIV", "SMOD",
       "SLT", "SGT", "AND", "OR", "XOR", "SHL", "SHR"]),
    *(f'PUSHI 1\nPUSHB "a"\n{op}' for op in ["ADD", "SUB", "MUL", "EXP", "SDIV", "SHL"]),
    'PUSHB "a"\nSNEG',
    'PUSHB "a"\nNOT',
    'PUSHB ""\nISZERO',
    "PUSHI 1\nPUSHI 2\nCONCAT",
    'PUSHB "a"\nPUSHI 2\nCONCAT',
    "PUSHI 1\nLEN",
    "PUSHI 1\nPUSHI 0\nPUSHI 0\nSLICE",
    'PUSHB "abc"\nPUSHB ""\nPUSHI 0\nSLICE',
    "PUSHI 1\nBTOI",
    'PUSHB "a"\nITOB',
    'PUSHB "a"\nITOB32',
    "PUSHI 1\nSHA256",
    'PUSHB "a"\nJUMPI end\nend:',
]


@pytest.mark.parametrize("src", TYPE_ERRORS)
def test_values_of_the_wrong_kind_are_errors(src: str) -> None:
    """Bytes where an int belongs (or the reverse) breaks the machine's rules: ERROR,
    all the gas is used, and nothing the call did stays."""
    world = new_world()
    out = run('PUSHB "k"\nPUSHB "v"\nSSTORE\n' + src, world=world)
    assert_error(out)
    assert world.sload(CONTRACT, b"k") == b""


# ---------------------------------------------------------------------------- gas

GAS_PROGRAMS: list[tuple[str, int]] = [
    ("PUSHI 6\nPUSHI 7\nMUL\nPUSHI 2\nADD\nPOP\nSTOP", 0),
    ('PUSHB "key"\nPUSHB "value!"\nSSTORE', GAS_STORE_BYTE * (3 + 6)),
    ('PUSHB "key"\nPUSHB ""\nSSTORE', GAS_STORE_BYTE * 3),
    (f"PUSHB 0x{'00' * 33}\nSHA256\nPOP", GAS_SHA256_WORD * 2),
    ('PUSHB ""\nSHA256\nPOP', 0),
    ("PUSHI 3\nPUSHI 129\nEXP\nPOP", GAS_EXP_BYTE * 1),
    ("PUSHI 1\nPUSHI 0x010000\nEXP\nPOP", GAS_EXP_BYTE * 3),
    ("PUSHI 5\nPUSHI 0\nEXP\nPOP", 0),
    ('PUSHB "E"\nPUSHB "abc"\nPUSHI 5\nEMIT 2', GAS_EVENT_BYTE * (3 + 1)),  # per field byte
    (f"PUSHB 0x{'11' * 20}\nPUSHB 0x{'22' * 20}\nCONCAT\nPOP", GAS_PER_WORD * 2),
    (f"PUSHB 0x{'11' * 64}\nPUSHI 0\nPUSHI 64\nSLICE\nPOP", GAS_PER_WORD * 2),
    (f"PUSHB 0x{'11' * 64}\nPUSHI 64\nPUSHI 0\nSLICE\nPOP", 0),
    ("GAS\nPOP\nCALLER\nBALANCE\nPOP\nJUMP x\nx:\nPUSHB \"k\"\nSLOAD\nPOP", 0),
    ("PUSHI 1\nDUP 0\nSWAP 1\nSTORE 0\nLOAD 0\nLT\nPOP\nPUSHI 5\nCALLI f 1\nSTOP\nf:\nRETI", 0),
]


@pytest.mark.parametrize(("src", "dynamic"), GAS_PROGRAMS)
def test_gas_of_straight_line_programs(src: str, dynamic: int) -> None:
    """Gas used is the table's gas of each instruction run plus the documented per-byte
    charges — exactly, since fees and every node's state depend on it."""
    used = static_gas(src) + dynamic
    out = run(src)
    assert_ok(out)
    assert out.gas_left == GAS - used
    # exactly enough gas is enough; one less runs out
    assert_ok(run(src, gas=used))
    assert run(src, gas=used).gas_left == 0
    short = run(src, gas=used - 1)
    assert (short.status, short.reason, short.gas_left) == (Status.OUT_OF_GAS, "out of gas", 0)


def test_running_out_of_gas_undoes_state() -> None:
    world = new_world()
    world.set_account(CONTRACT, 0, 50)
    src = f"""
        PUSHB "k"
        PUSHB "v"
        SSTORE
        PUSHB "E"
        EMIT 0
        PUSHB 0x{OTHER.hex()}
        PUSHI 50
        TRANSFER
    loop:
        JUMP loop
    """
    out = run(src, world=world, gas=50_000)
    assert (out.status, out.data, out.reason, out.gas_left) == (
        Status.OUT_OF_GAS, b"", "out of gas", 0)
    assert world.sload(CONTRACT, b"k") == b""
    assert world.events == []
    assert (world.balance(CONTRACT), world.balance(OTHER)) == (50, 0)


def test_running_out_on_a_dynamic_charge_writes_nothing() -> None:
    """SSTORE's per-byte gas is charged before the write: too little of it, no write."""
    world = new_world()
    src = 'PUSHB "key"\nPUSHB "value"\nSSTORE'
    gas = static_gas(src) + GAS_STORE_BYTE * 8 - 1
    out = run(src, world=world, gas=gas)
    assert (out.status, out.gas_left) == (Status.OUT_OF_GAS, 0)
    assert world.sload(CONTRACT, b"key") == b""


def test_exp_charges_for_the_exponent_before_computing() -> None:
    """A huge exponent costs its 32 bytes of gas even though 2**big reverts."""
    src = f"PUSHI 2\nPUSHI {UINT_MAX}\nEXP"
    out = run(src, gas=static_gas(src) + GAS_EXP_BYTE * 32 - 1)
    assert (out.status, out.gas_left) == (Status.OUT_OF_GAS, 0)
    out = run(src)
    assert_reverted(out, "uint overflow", GAS - static_gas(src) - GAS_EXP_BYTE * 32)
