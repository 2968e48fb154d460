"""Code validation and decoding: bytecode -> :class:`Program`, or :class:`InvalidCode`.

Validation runs once, at deploy (and again whenever a node loads code it has not
decoded yet). It refuses code larger than :data:`MAX_CODE_SIZE`, unknown opcodes,
immediates cut off by the end of the code, integer constants longer than 32 bytes,
``SWAP 0``, integer constants with a leading zero byte (each integer has one
encoding, so code disassembles and assembles back to itself), and static jumps (``JUMP``, ``JUMPI``, ``CALLI``) to anything but a
``JUMPDEST`` — each with the byte offset of the offending instruction.

The result is decoded once into parallel lists indexed by *instruction number*, so the
interpreter never parses bytes while running: ``ops[i]``, ``args[i]`` (the immediate,
with static jump targets already turned into instruction numbers) and ``gas[i]``. An
implicit ``STOP`` follows the last instruction, so running off the end ends the call.
Then :func:`vm.fusion.fuse` gives the commonest sequences one dispatch each.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .errors import InvalidCode
from .fusion import fuse
from .opcodes import MAX_CODE_SIZE, OPS, Op


@dataclass(frozen=True, eq=False)
class Program:
    code: bytes
    ops: list[int]
    args: list[Any]  # per instruction: its immediate (a fused one's is a tuple)
    gas: list[int]
    #: byte offset of each instruction (the implicit STOP is at len(code))
    offsets: list[int]
    #: byte offset of each JUMPDEST -> its instruction number (JUMPV checks it)
    jumpdests: dict[int, int]


def decode(code: bytes) -> list[tuple[int, Op, tuple]]:
    """The instructions of ``code`` as (offset, opcode, immediates), checking opcodes and
    immediates but not jump targets. Raises InvalidCode."""
    if len(code) > MAX_CODE_SIZE:
        raise InvalidCode(MAX_CODE_SIZE, f"code is {len(code)} bytes, the limit is "
                                         f"{MAX_CODE_SIZE}")
    out = []
    pc = 0
    n = len(code)
    while pc < n:
        start = pc
        info = OPS.get(code[pc])
        if info is None:
            raise InvalidCode(start, f"unknown opcode 0x{code[pc]:02x}")
        pc += 1
        imms: list[object] = []
        for kind in info.immediates:
            if kind == "u8":
                if pc + 1 > n:
                    raise InvalidCode(start, f"{info.name}: immediate cut off by the end")
                imms.append(code[pc])
                pc += 1
            elif kind == "u16":
                if pc + 2 > n:
                    raise InvalidCode(start, f"{info.name}: immediate cut off by the end")
                imms.append(code[pc] << 8 | code[pc + 1])
                pc += 2
            elif kind == "int":
                if pc + 1 > n:
                    raise InvalidCode(start, "PUSHI: length cut off by the end")
                size = code[pc]
                if size > 32:
                    raise InvalidCode(start, f"PUSHI: {size}-byte constant, at most 32")
                if pc + 1 + size > n:
                    raise InvalidCode(start, "PUSHI: constant cut off by the end")
                if size and not code[pc + 1]:
                    raise InvalidCode(start, "PUSHI: constant with a leading zero byte")
                imms.append(int.from_bytes(code[pc + 1 : pc + 1 + size], "big"))
                pc += 1 + size
            else:  # "bytes"
                if pc + 2 > n:
                    raise InvalidCode(start, "PUSHB: length cut off by the end")
                size = code[pc] << 8 | code[pc + 1]
                if pc + 2 + size > n:
                    raise InvalidCode(start, "PUSHB: constant cut off by the end")
                imms.append(code[pc + 2 : pc + 2 + size])
                pc += 2 + size
        if info.op is Op.SWAP and imms[0] == 0:
            raise InvalidCode(start, "SWAP 0 swaps nothing")
        out.append((start, info.op, tuple(imms)))
    return out


def load_program(code: bytes, *, fused: bool = True) -> Program:
    """Validate ``code`` and decode it for the interpreter, with the common sequences
    fused (:mod:`vm.fusion`; ``fused=False`` only to check that fusing changes nothing).
    Raises InvalidCode."""
    instructions = decode(code)
    jumpdests = {off: i for i, (off, op, _) in enumerate(instructions) if op is Op.JUMPDEST}
    ops: list[int] = []
    args: list[Any] = []
    gas: list[int] = []
    offsets: list[int] = []
    for off, op, imms in instructions:
        arg: object = imms[0] if len(imms) == 1 else imms or None
        if op in (Op.JUMP, Op.JUMPI, Op.CALLI):
            target = imms[0]
            if target not in jumpdests:
                raise InvalidCode(off, f"{op.name} to offset {target}, which is not a JUMPDEST")
            arg = jumpdests[target] if op is not Op.CALLI else (jumpdests[target], imms[1])
        ops.append(int(op))
        args.append(arg)
        gas.append(OPS[op].gas)
        offsets.append(off)
    ops.append(int(Op.STOP))
    args.append(None)
    gas.append(0)
    offsets.append(len(code))
    if fused:
        fuse(ops, args, gas, jumpdests)
    return Program(code, ops, args, gas, offsets, jumpdests)
