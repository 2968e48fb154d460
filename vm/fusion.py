"""Superinstructions: the sequences compiled contracts run most, each run as one step.

Theory of operation
-------------------
The interpreter pays for every instruction it dispatches, whatever the instruction
does, and most of a commerce call is short, fixed sequences: build a storage key from a
cached base and a field name, then load or store under it; test a condition and jump;
check an argument's length. :func:`fuse` rewrites a decoded :class:`~vm.program.Program`
once, when the code is loaded, so that each such sequence is dispatched once:

* the first instruction of the sequence gets an internal opcode (``0x80`` and up, never
  valid in code) and an immediate holding what the whole sequence needs, including the
  gas of each later instruction;
* the later instructions stay where they were, so nothing else moves, and a sequence
  is only fused if none of its later instructions is a ``JUMPDEST`` (nothing jumps into
  its middle).

A fused instruction does exactly what its sequence does, in the same order: it charges
each instruction's gas where that instruction would start, makes the same checks and
fails with the same status, reason and gas at the same point (``tests/vm/test_fusion``
runs every sequence both ways, at every gas amount and with every kind of bad input).
Consensus sees only the unfused semantics.

:func:`fuse` also folds each ``JUMPDEST`` into the instruction after it: jumps land
after the marker and that instruction charges the marker's gas too, which is the same
total at the same point, as nothing runs in between.
"""

from __future__ import annotations

from typing import Any

from .opcodes import Op

# internal opcodes: (name, the sequence it runs)
LCAT = 0x80  # LOAD a; PUSHB s; CONCAT                     -> local[a] + s
SLOADF = 0x81  # LOAD a; PUSHB s; SLOADR                     -> field s of record local[a]
SLOADFI = 0x82  # LOAD a; PUSHB s; SLOADR; BTOI              -> the same, as an integer
SSTOREF = 0x83  # LOAD a; PUSHB s; SSTORER                 v -> (field s of local[a] = v)
IFZ = 0x84  # ISZERO; JUMPI t                               c -> (jump if c == 0)
IFNGT = 0x85  # PUSHI n; GT; ISZERO; JUMPI t                a -> (jump unless a > n)
LENCHK = 0x86  # DUP d; LEN; PUSHI n; GT; ISZERO; JUMPI t    -> (jump unless len(x_d) > n)
METHODLT = 0x87  # METHOD; PUSHB s; LT; ISZERO; JUMPI t      -> (jump unless method < s)
SLOADI = 0x88  # SLOAD; BTOI                                 k -> int(sload(k))
LOADB = 0x89  # LOAD a; ITOB                                -> bytes(local[a])
LOAD2 = 0x8A  # LOAD a; LOAD b                              -> local[a] local[b]
ARGI = 0x8B  # PUSHI n; ARG                                 -> argument n

_SEQUENCES: list[tuple[int, tuple[Op, ...]]] = [  # longest first where they share a start
    (SSTOREF, (Op.LOAD, Op.PUSHB, Op.SSTORER)),
    (SLOADFI, (Op.LOAD, Op.PUSHB, Op.SLOADR, Op.BTOI)),
    (SLOADF, (Op.LOAD, Op.PUSHB, Op.SLOADR)),
    (LCAT, (Op.LOAD, Op.PUSHB, Op.CONCAT)),
    (LOADB, (Op.LOAD, Op.ITOB)),
    (LOAD2, (Op.LOAD, Op.LOAD)),
    (LENCHK, (Op.DUP, Op.LEN, Op.PUSHI, Op.GT, Op.ISZERO, Op.JUMPI)),
    (IFNGT, (Op.PUSHI, Op.GT, Op.ISZERO, Op.JUMPI)),
    (ARGI, (Op.PUSHI, Op.ARG)),
    (METHODLT, (Op.METHOD, Op.PUSHB, Op.LT, Op.ISZERO, Op.JUMPI)),
    (IFZ, (Op.ISZERO, Op.JUMPI)),
    (SLOADI, (Op.SLOAD, Op.BTOI)),
]

#: each internal opcode -> the instruction it starts with (for error messages)
FIRST: dict[int, Op] = {code: seq[0] for code, seq in _SEQUENCES}
#: each first instruction -> the sequences starting with it, in _SEQUENCES' order (so
#: fusing a program looks only at the sequences that can start where it stands)
_STARTING: dict[int, list[tuple[int, tuple[int, ...]]]] = {}
_LENGTH: dict[int, int] = {code: len(seq) for code, seq in _SEQUENCES}
for _code, _seq in _SEQUENCES:
    _STARTING.setdefault(int(_seq[0]), []).append((_code, tuple(int(op) for op in _seq)))


def _matches(ops: list[int], i: int, seq: tuple[int, ...]) -> bool:
    """The sequence is at ``i``, and nothing jumps into its middle."""
    end = i + len(seq)
    return (end <= len(ops) and tuple(ops[i:end]) == seq
            and Op.JUMPDEST not in ops[i + 1 : end])


def _immediate(code: int, args: list[Any], gas: list[int], i: int) -> object:
    """What the fused instruction at ``i`` needs: the sequence's immediates, then the gas
    of each instruction after the first (the first's is charged by the loop, as ever)."""
    n = _LENGTH[code]
    costs = tuple(gas[i + 1 : i + n])
    if code in (LCAT, SLOADF, SLOADFI, SSTOREF):
        return (args[i], args[i + 1], *costs)
    if code == IFZ:
        return (args[i + 1], *costs)
    if code == IFNGT:
        return (args[i], args[i + 3], *costs)
    if code == LENCHK:
        return (args[i], args[i + 2], args[i + 5], *costs)
    if code == METHODLT:
        return (args[i + 1], args[i + 4], *costs)
    if code == SLOADI:
        return costs
    if code in (LOADB, ARGI):
        return (args[i], *costs)
    assert code == LOAD2
    return (args[i], args[i + 1], *costs)


def fuse(ops: list[int], args: list[Any], gas: list[int],
         jumpdests: dict[int, int]) -> None:
    """Rewrite decoded code in place: fold each JUMPDEST into the instruction after it,
    then give each common sequence one fused instruction (see the module docstring)."""
    n = len(ops)
    moved: dict[int, int] = {}
    for j in range(n - 1):
        if ops[j] == Op.JUMPDEST and ops[j + 1] != Op.JUMPDEST:
            gas[j + 1] += gas[j]  # charged where the marker was, as nothing runs between
            gas[j] = 0  # falling through onto the marker: charged once, just after
            moved[j] = j + 1
    if moved:
        for j in range(n):
            op = ops[j]
            if op == Op.JUMP or op == Op.JUMPI:
                args[j] = moved.get(args[j], args[j])
            elif op == Op.CALLI:
                target, nargs = args[j]
                args[j] = (moved.get(target, target), nargs)
        for offset, j in jumpdests.items():
            jumpdests[offset] = moved.get(j, j)
    i = 0
    while i < n:
        for code, seq in _STARTING.get(ops[i], ()):
            if _matches(ops, i, seq):
                args[i] = _immediate(code, args, gas, i)
                ops[i] = code
                i += len(seq)
                break
        else:
            i += 1
