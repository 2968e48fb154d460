"""PACK, UNPACK and STATICCALL: a whole record in one value, and views that stay views
across contracts (the VM, not the callee, keeps a read-only call from writing)."""

from __future__ import annotations

import msgpack
import pytest
from test_opcodes import (
    CALLEE,
    CONTRACT,
    GAS,
    OTHER,
    assert_error,
    assert_ok,
    assert_reverted,
    ok_and,
    run,
    static_gas,
    with_callee,
)

from vm.asm import assemble
from vm.opcodes import GAS_PER_WORD, MAX_BYTES, OPS, Op


def packed(*values: bytes) -> bytes:
    return msgpack.packb(list(values), use_bin_type=True)


# ---------------------------------------------------------------------------- PACK


def test_pack_builds_one_array_of_byte_strings_first_value_first() -> None:
    src = 'PUSHB "ab"\nPUSHI 258\nPUSHB ""\nPACK 3\nRETURN'
    out = run(src)
    assert_ok(out, packed(b"ab", b"\x01\x02", b""))  # integers as minimal big-endian


def test_pack_of_nothing_is_an_empty_array_and_costs_per_word() -> None:
    assert_ok(run("PACK 0\nRETURN"), packed())
    big = "ab" * 100
    src = f"PUSHB 0x{big}\nPACK 1\nRETURN"
    out = run(src)
    data = packed(bytes.fromhex(big))
    assert_ok(out, data)
    assert out.gas_left == GAS - static_gas(src) - GAS_PER_WORD * ((len(data) + 31) // 32)


def test_pack_more_values_than_the_stack_holds_is_an_error() -> None:
    assert_error(run('PUSHB "a"\nPACK 2'), "stack underflow")


def test_pack_refuses_a_result_longer_than_a_value_may_be() -> None:
    half = MAX_BYTES // 2
    src = f"PUSHB 0x{'ab' * half}\nDUP 0\nPACK 2\nRETURN"  # two halves + headers
    assert_error(run(src, gas=10**8), "PACK result too long")


# ---------------------------------------------------------------------------- UNPACK


def test_unpack_gives_back_the_values_in_order() -> None:
    data = packed(b"x", b"", b"\x07" * 33)
    src = f"PUSHB 0x{data.hex()}\nUNPACK 3\nCONCAT\nCONCAT\nRETURN"
    out = run(src)
    assert_ok(out, b"x" + b"\x07" * 33)


def test_pack_then_unpack_is_the_identity() -> None:
    src = 'PUSHB "a"\nPUSHB "bc"\nPACK 2\nUNPACK 2\nSWAP 1\nCONCAT\nRETURN'
    assert_ok(run(src), b"bca")


@pytest.mark.parametrize("data", [
    packed(b"a", b"b"),                        # two values, three expected
    packed(b"a", b"b", b"c", b"d"),            # four
    msgpack.packb(["a", "b", "c"]),            # text, not byte strings
    msgpack.packb([1, 2, 3]),                  # integers
    msgpack.packb([b"a", [b"b"], b"c"], use_bin_type=True),  # nested
    msgpack.packb({b"a": b"b"}, use_bin_type=True),          # a map
    packed(b"a", b"b", b"c") + b"\x00",        # trailing bytes
    b"\xdc\x00\x03" + packed(b"a", b"b", b"c")[1:],  # a non-canonical array header
    b"\x93\xc5\x00\x01a\xc4\x01b\xc4\x01c",    # a non-canonical bin header
    b"",                                       # nothing at all
    b"\x93\xc4",                               # cut short
])
def test_unpack_reverts_on_anything_but_a_canonical_array_of_n_byte_strings(
        data: bytes) -> None:
    src = f"PUSHB 0x{data.hex()}\nUNPACK 3\nSTOP"
    out = run(src)
    assert_reverted(out, "UNPACK: not a packed array of 3 byte strings",
                    GAS - static_gas(f"PUSHB 0x{data.hex()}\nUNPACK 3"))


def test_unpack_needs_bytes() -> None:
    assert_error(run("PUSHI 5\nUNPACK 1"), "UNPACK needs bytes")


def test_unpack_more_than_the_stack_limit_is_an_overflow() -> None:
    data = packed(*([b"x"] * 200))
    fill = "PUSHI 0\n" * 900
    assert_error(run(f"{fill}PUSHB 0x{data.hex()}\nUNPACK 200"), "stack overflow")


# ---------------------------------------------------------------------------- STATICCALL


def static_call_src(callee: bytes, method: str, args: list[str]) -> str:
    """Caller code: STATICCALL ``callee``, then return ok (32 bytes) and the result."""
    lines = [f"PUSHB 0x{callee.hex()}", f'PUSHB "{method}"',
             *(f'PUSHB "{a}"' for a in args), f"STATICCALL {len(args)}", "STORE 0", "STORE 1",
             "LOAD 0", "ITOB32", "LOAD 1", "CONCAT", "RETURN"]
    return "\n".join(lines)


def test_a_static_call_reads_storage_and_returns() -> None:
    world = with_callee('PUSHB "k"\nSLOAD\nMETHOD\nCONCAT\nPUSHI 0\nARG\nCONCAT\nRETURN')
    world.sstore(CALLEE, b"k", b"stored-")
    out = run(static_call_src(CALLEE, "get", ["!"]), world=world)
    assert_ok(out, ok_and(b"stored-get!"))


WRITES = {
    "SSTORE": 'PUSHB "k"\nPUSHB "v"\nSSTORE\nSTOP',
    "EMIT": 'PUSHB "E"\nEMIT 0\nSTOP',
    "TRANSFER": f"PUSHB 0x{OTHER.hex()}\nPUSHI 1\nTRANSFER\nSTOP",
    "CALL with value": f'PUSHB 0x{OTHER.hex()}\nPUSHI 1\nPUSHB "m"\nCALL 0\nSTOP',
}


@pytest.mark.parametrize("what", WRITES)
def test_a_static_call_that_writes_fails_and_changes_nothing(what: str) -> None:
    world = with_callee(WRITES[what], balance=10)
    out = run(static_call_src(CALLEE, "m", []), world=world)
    assert out.status == 0 and out.data[:32] == bytes(32), out  # the call failed ...
    assert b"read-only call" in out.data[32:]                    # ... and says why
    assert world.sload(CALLEE, b"k") == b""
    assert world.events == []
    assert (world.balance(CALLEE), world.balance(OTHER)) == (10, 0)


def test_the_same_writes_succeed_through_a_plain_call() -> None:
    world = with_callee(WRITES["SSTORE"])
    src = (f'PUSHB 0x{CALLEE.hex()}\nPUSHI 0\nPUSHB "m"\nCALL 0\nITOB32\nRETURN')
    out = run(src, world=world)
    assert_ok(out, (1).to_bytes(32, "big"))
    assert world.sload(CALLEE, b"k") == b"v"


def test_a_transfer_of_nothing_is_not_a_write() -> None:
    world = with_callee(f"PUSHB 0x{OTHER.hex()}\nPUSHI 0\nTRANSFER\nPUSHI 9\nRETURN")
    assert_ok(run(static_call_src(CALLEE, "m", []), world=world), ok_and(b"\x09"))


def test_read_only_reaches_every_call_the_static_callee_makes() -> None:
    """CALLEE plain-CALLs OTHER, which writes: inside a static call that fails too."""
    world = with_callee(f'PUSHB 0x{OTHER.hex()}\nPUSHI 0\nPUSHB "m"\nCALL 0\nITOB32\n'
                        'SWAP 1\nCONCAT\nRETURN')
    world.set_code(OTHER, assemble('PUSHB "k"\nPUSHB "v"\nSSTORE\nSTOP'))
    out = run(static_call_src(CALLEE, "m", []), world=world)
    # the outer static call succeeds; the inner call it made failed (ok = 0)
    assert_ok(out)
    assert out.data[:32] == (1).to_bytes(32, "big")
    assert out.data[32:64] == bytes(32)
    assert b"read-only call" in out.data[64:]
    assert world.sload(OTHER, b"k") == b""


def test_a_static_caller_itself_may_write_after_the_call() -> None:
    world = with_callee("PUSHI 1\nRETURN")
    src = (f'PUSHB 0x{CALLEE.hex()}\nPUSHB "m"\nSTATICCALL 0\nPOP\nPOP\n'
           'PUSHB "mine"\nPUSHB "1"\nSSTORE\nSTOP')
    assert_ok(run(src, world=world))
    assert world.sload(CONTRACT, b"mine") == b"1"


@pytest.mark.parametrize("src", [
    f"PUSHB 0x{CALLEE.hex()}\nPUSHB \"m\"\nPUSHI 1\nSTATICCALL 1",  # an int argument
    'PUSHB "short"\nPUSHB "m"\nSTATICCALL 0',                        # not an address
    f"PUSHB 0x{CALLEE.hex()}\nPUSHI 5\nSTATICCALL 0",               # method not bytes
    'PUSHB "m"\nSTATICCALL 0',                                       # too few operands
])
def test_staticcall_operands_of_the_wrong_kind_are_errors(src: str) -> None:
    out = run(src, world=with_callee("STOP"))
    assert_error(out)


def test_staticcall_costs_the_same_as_call() -> None:
    assert OPS[Op.STATICCALL].gas == OPS[Op.CALL].gas
    assert CONTRACT != CALLEE
