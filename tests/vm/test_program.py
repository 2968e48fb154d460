"""Code validation: what :func:`vm.program.load_program` refuses at deploy, and where.

Deploy-time validation is what lets the interpreter run without checking jump targets
or parsing immediates, so every refusal matters: code that slips through could jump
into the middle of a constant. Each refusal is an :class:`InvalidCode` carrying the
byte offset of the offending instruction, which the deployer sees in the receipt.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from storage.kv import MemoryKV
from storage.state import StateTree
from vm.asm import assemble
from vm.errors import InvalidCode, RemoteError
from vm.interpreter import BlockEnv, Machine, Status
from vm.opcodes import MAX_CODE_SIZE, OPS, Op
from vm.program import decode, load_program
from vm.world import WorldState

CONTRACT = bytes([0xC0]) * 20
CALLER = bytes([0xCA]) * 20
UNKNOWN = [b for b in range(256) if b not in OPS]
PREFIX = bytes([Op.JUMPDEST, Op.PUSHI, 1, 5])  # 4 valid bytes before the bad instruction


def invalid_at(code: bytes) -> int:
    """The offset InvalidCode names for ``code`` (failing the test if it loads)."""
    with pytest.raises(InvalidCode) as info:
        load_program(code)
    return info.value.offset


def run(code: bytes, gas: int = 10_000) -> tuple[int, bytes, int, WorldState]:
    world = WorldState(StateTree(MemoryKV()), lambda _address, c: load_program(c))
    out = Machine(world, BlockEnv(1, 1), CALLER).call(CALLER, CONTRACT, b"m", [], 0, gas,
                                                     program=load_program(code))
    return out.status, out.data, out.gas_left, world


def test_unknown_opcodes_exist() -> None:
    """The table leaves gaps (a guard for the parametrized test below)."""
    assert len(UNKNOWN) == 256 - len(Op) > 100


@pytest.mark.parametrize("byte", UNKNOWN)
def test_unknown_opcode(byte: int) -> None:
    assert invalid_at(bytes([byte])) == 0
    assert invalid_at(PREFIX + bytes([byte, Op.STOP])) == len(PREFIX)


def test_invalid_code_is_a_remote_error_with_offset_and_reason() -> None:
    """Bad code is the deployer's fault, not ours: it must be a RemoteError."""
    with pytest.raises(InvalidCode) as info:
        load_program(b"\x01\xff")
    assert isinstance(info.value, RemoteError)
    assert (info.value.offset, info.value.reason) == (1, "unknown opcode 0xff")
    assert "offset 1" in str(info.value)


TRUNCATED: list[tuple[str, bytes]] = [
    ("u8 of DUP", bytes([Op.DUP])),
    ("u8 of EMIT", bytes([Op.EMIT])),
    ("u16 of JUMP, no bytes", bytes([Op.JUMP])),
    ("u16 of JUMP, one byte", bytes([Op.JUMP, 0])),
    ("u16 of JUMPI", bytes([Op.JUMPI, 0])),
    ("u8 after the u16 of CALLI", bytes([Op.CALLI, 0, 0])),
    ("u16 of CALLI", bytes([Op.CALLI, 0])),
    ("int length", bytes([Op.PUSHI])),
    ("int constant", bytes([Op.PUSHI, 2, 1])),
    ("int constant, empty", bytes([Op.PUSHI, 32])),
    ("bytes length, none", bytes([Op.PUSHB])),
    ("bytes length, one byte", bytes([Op.PUSHB, 0])),
    ("bytes constant", bytes([Op.PUSHB, 0, 3, 1, 2])),
    ("bytes constant, long", bytes([Op.PUSHB, 1, 0]) + bytes(255)),
]


@pytest.mark.parametrize("code", [c for _, c in TRUNCATED], ids=[name for name, _ in TRUNCATED])
def test_truncated_immediates(code: bytes) -> None:
    """An immediate cut off by the end of the code is refused at the instruction's offset,
    whichever kind of immediate it is."""
    assert invalid_at(code) == 0
    assert invalid_at(PREFIX + code) == len(PREFIX)


def test_complete_immediates_load() -> None:
    """The same instructions with their immediates complete are valid (so the refusals
    above are about the truncation, not the instruction)."""
    code = bytes([Op.JUMPDEST, Op.DUP, 0, Op.EMIT, 0, Op.JUMP, 0, 0, Op.JUMPI, 0, 0,
                  Op.CALLI, 0, 0, 0, Op.PUSHI, 2, 1, 0, Op.PUSHB, 0, 3, 1, 2, 3])
    program = load_program(code)
    assert program.offsets == [0, 1, 3, 5, 8, 11, 15, 19, 25]


def test_pushi_of_32_bytes_is_the_longest() -> None:
    load_program(bytes([Op.PUSHI, 32]) + b"\xff" * 32)
    for size in (33, 34, 255):
        code = PREFIX + bytes([Op.PUSHI, size]) + b"\x01" * size
        assert invalid_at(code) == len(PREFIX)


@pytest.mark.parametrize("constant", [b"\x00", b"\x00\x01", b"\x00" * 32, b"\x00\xff" * 16])
def test_pushi_with_a_leading_zero_byte(constant: bytes) -> None:
    """Each integer has exactly one encoding (zero is the empty constant), so that code
    disassembles and assembles back to the same bytes."""
    code = PREFIX + bytes([Op.PUSHI, len(constant)]) + constant
    assert invalid_at(code) == len(PREFIX)


def test_pushi_of_zero_is_the_empty_constant() -> None:
    program = load_program(bytes([Op.PUSHI, 0, Op.PUSHI, 1, 0x80]))
    assert program.args[:2] == [0, 0x80]


def test_swap_0_is_refused_and_swap_1_is_not() -> None:
    assert invalid_at(PREFIX + bytes([Op.SWAP, 0])) == len(PREFIX)
    load_program(bytes([Op.SWAP, 1]))
    load_program(bytes([Op.SWAP, 255]))


# Code with a JUMPDEST at 0 and at 5; other offsets hold other instructions' bytes.
# 0: JUMPDEST, 1: PUSHI 1 (bytes 1..3, byte 3 is 0x01), 4: POP, 5: JUMPDEST
BODY = bytes([Op.JUMPDEST, Op.PUSHI, 1, 1, Op.POP, Op.JUMPDEST])


@pytest.mark.parametrize("op", [Op.JUMP, Op.JUMPI, Op.CALLI])
@pytest.mark.parametrize("target", [1, 2, 3, 4, 6, 9, 0xFFFF])
def test_static_jump_to_a_non_jumpdest(op: Op, target: int) -> None:
    """JUMP, JUMPI and CALLI are checked once, at deploy. Offset 3 holds the byte 0x01
    (JUMPDEST's opcode) as PUSHI data: it is still not a jump target. The jump itself
    sits at offset 6, past the end of BODY (so 6 is itself, not a JUMPDEST)."""
    jump = bytes([op]) + target.to_bytes(2, "big") + (b"\x00" if op is Op.CALLI else b"")
    assert BODY[3] == Op.JUMPDEST
    assert invalid_at(BODY + jump) == len(BODY)


@pytest.mark.parametrize("op", [Op.JUMP, Op.JUMPI, Op.CALLI])
@pytest.mark.parametrize("target", [0, 5])
def test_static_jump_to_a_jumpdest(op: Op, target: int) -> None:
    """Targets are byte offsets, decoded to instruction numbers for the interpreter."""
    jump = bytes([op]) + target.to_bytes(2, "big") + (b"\x02" if op is Op.CALLI else b"")
    program = load_program(BODY + jump, fused=False)
    index = {0: 0, 5: 3}[target]  # JUMPDEST at byte 5 is instruction 3
    assert program.args[4] == ((index, 2) if op is Op.CALLI else index)
    assert program.jumpdests == {0: 0, 5: 3}
    # fused, a jump lands just past its JUMPDEST, which charges the marker's gas too
    fused = load_program(BODY + jump)
    assert fused.args[4] == ((index + 1, 2) if op is Op.CALLI else index + 1)
    assert fused.jumpdests == {0: 1, 5: 4}
    assert fused.gas[index + 1] == program.gas[index] + program.gas[index + 1]


def test_a_forward_jump_is_checked_too() -> None:
    assert invalid_at(bytes([Op.JUMP, 0, 4, Op.POP, Op.POP])) == 0
    load_program(bytes([Op.JUMP, 0, 4, Op.POP, Op.JUMPDEST]))


def test_jumpv_is_not_checked_at_deploy() -> None:
    """JUMPV takes its target from the stack, so deploy cannot check it; it fails when it
    runs instead."""
    code = bytes([Op.PUSHI, 1, 3, Op.JUMPV])
    load_program(code)
    status, _, gas_left, _ = run(code)
    assert (status, gas_left) == (Status.ERROR, 0)


def test_oversize_code() -> None:
    """MAX_CODE_SIZE bytes load; one more is refused (named at the limit)."""
    program = load_program(bytes([Op.JUMPDEST]) * MAX_CODE_SIZE)
    assert len(program.ops) == MAX_CODE_SIZE + 1
    assert invalid_at(bytes([Op.JUMPDEST]) * (MAX_CODE_SIZE + 1)) == MAX_CODE_SIZE
    assert invalid_at(b"\xff" * (MAX_CODE_SIZE + 1)) == MAX_CODE_SIZE  # size is checked first


def test_the_first_problem_is_reported() -> None:
    code = bytes([Op.POP, Op.SWAP, 0, 0xFF, Op.PUSHI])
    assert invalid_at(code) == 1


def test_empty_code_is_valid_and_just_stops() -> None:
    program = load_program(b"")
    assert (program.ops, program.offsets, program.gas) == ([Op.STOP], [0], [0])
    status, data, gas_left, _ = run(b"", gas=777)
    assert (status, data, gas_left) == (Status.OK, b"", 777)


def test_running_off_the_end_is_a_stop() -> None:
    """An implicit STOP (costing nothing) follows the last instruction: the call ends OK
    with empty data and keeps what it did."""
    code = assemble('PUSHB "k"\nPUSHB "v"\nSSTORE\nPUSHI 42')
    program = load_program(code)
    assert program.ops[-1] == Op.STOP
    assert program.offsets[-1] == len(code)
    status, data, gas_left, world = run(code)
    assert (status, data) == (Status.OK, b"")
    assert gas_left == 10_000 - (3 + 3 + 500 + 50 * 2 + 2)
    assert world.sload(CONTRACT, b"k") == b"v"


def test_decoded_program_matches_the_table() -> None:
    """The interpreter trusts the decoded lists: each instruction's gas is the table's,
    immediates are decoded, jumps point at instruction numbers (before fusing)."""
    code = assemble('start:\nPUSHI 258\nPUSHB "ab"\nDUP 1\nCALLI start 3\nJUMP start')
    program = load_program(code, fused=False)
    assert program.code == code
    ops = [Op.JUMPDEST, Op.PUSHI, Op.PUSHB, Op.DUP, Op.CALLI, Op.JUMP, Op.STOP]
    assert program.ops == [int(op) for op in ops]
    assert program.gas == [OPS[op].gas for op in ops[:-1]] + [0]
    assert program.args == [None, 258, b"ab", 1, (0, 3), 0, None]
    assert program.offsets == [0, 1, 5, 10, 12, 16, 19]
    assert program.jumpdests == {0: 0}


def test_decode_lists_every_instruction() -> None:
    code = bytes([Op.PUSHI, 1, 7, Op.CALLI, 0, 9, 2, Op.STOP, Op.PUSHB, 0, 1, 0xAA])
    assert decode(code) == [(0, Op.PUSHI, (7,)), (3, Op.CALLI, (9, 2)), (7, Op.STOP, ()),
                            (8, Op.PUSHB, (b"\xaa",))]


def _encode(instructions: list[tuple[int, Op, tuple]]) -> bytes:
    out = bytearray()
    for _, op, imms in instructions:
        out.append(op)
        for kind, value in zip(OPS[op].immediates, imms, strict=True):
            if kind == "u8":
                out.append(value)
            elif kind == "u16":
                out += value.to_bytes(2, "big")
            elif kind == "int":
                raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
                out += bytes([len(raw)]) + raw
            else:
                out += len(value).to_bytes(2, "big") + value
    return bytes(out)


@settings(max_examples=300)
@given(st.binary(max_size=64))
def test_arbitrary_bytes_decode_canonically_or_are_refused(code: bytes) -> None:
    """Whatever the bytes, validation either refuses them with InvalidCode at an offset
    inside the code, or decodes them into instructions that encode back to exactly the
    same bytes (one encoding per instruction), with consistent offsets."""
    try:
        program = load_program(code)
    except InvalidCode as exc:
        assert 0 <= exc.offset < max(len(code), 1)
        return
    instructions = decode(code)
    assert _encode(instructions) == code
    assert program.offsets == [off for off, _, _ in instructions] + [len(code)]
    assert len(program.ops) == len(program.args) == len(program.gas) == len(instructions) + 1
