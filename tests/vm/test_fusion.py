"""Fused instructions (vm/fusion.py) change nothing a chain can see.

Every fused sequence runs both ways — fused, and as its plain instructions — over edge
cases of its inputs (empty and nearly full stacks, values of the wrong kind, byte
strings at the size limits, stored values too long for an integer, read-only calls,
missing arguments), at every gas amount around the sequence, and must end alike:
status, reason, return data, gas left, storage written and events. Then the commerce
flows of the contract tests run both ways and every call must report the same.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable

import pytest
import test_escrow_paths
import test_groups

import vm.testing
from storage.kv import MemoryKV
from storage.state import StateTree
from vm.asm import assemble
from vm.fusion import FIRST, fuse
from vm.interpreter import BlockEnv, Machine, Outcome, Status
from vm.opcodes import MAX_BYTES, STACK_LIMIT, Op
from vm.program import Program, load_program
from vm.testing import Contract
from vm.world import WorldState

CONTRACT = bytes([0xC0]) * 20
CALLER = bytes([0xCA]) * 20
GAS = 1_000_000


def _world() -> WorldState:
    world = WorldState(StateTree(MemoryKV()), lambda _a, code: load_program(code))
    world.sstore(CONTRACT, b"kshort", b"\x01\x02\x03")
    world.sstore(CONTRACT, b"klong", b"\x07" * 33)
    world.sstore(CONTRACT, b"k", b"\x05")
    for base in (b"k", b"kshort"):
        world.sstore_field(CONTRACT, base, b"short", b"\x01\x02\x03")
        world.sstore_field(CONTRACT, base, b"long", b"\x07" * 33)
    world.forget_journal()
    return world


@functools.lru_cache(maxsize=64)
def _load(code: bytes, fused: bool) -> Program:
    return load_program(code, fused=fused)


def _run(code: bytes, fused: bool, gas: int, *, args: list[bytes], method: bytes,
         static: bool) -> tuple[Outcome, dict, list]:
    world = _world()
    machine = Machine(world, BlockEnv(7, 1_000), CALLER)
    out = machine.call(CALLER, CONTRACT, method, args, 0, gas, program=_load(code, fused),
                       static=static)
    return out, dict(world.changes()), list(world.events)


def _alike(src: str, *, args: list[bytes] = (), method: bytes = b"run",  # type: ignore[assignment]
           static: bool = False, must_fuse: int | None = None) -> Outcome:
    """Run ``src`` fused and plain at full gas and at every gas amount that ends inside
    its last 80 gas; all must agree. Returns the full-gas outcome."""
    code = assemble(src)
    if must_fuse is not None:
        assert must_fuse in load_program(code).ops, "the sequence was not fused"
    kw = {"args": list(args), "method": method, "static": static}
    full = _run(code, False, GAS, **kw)
    assert _run(code, True, GAS, **kw) == full
    used = GAS - full[0].gas_left
    for gas in range(max(0, used - 80), used + 3):
        assert _run(code, True, gas, **kw) == _run(code, False, gas, **kw), gas
    return full[0]


STACKS = {  # setups: what the stack holds when the sequence starts
    "empty": "",
    "int": "PUSHI 9",
    "bytes": 'PUSHB "v"',
    "two": 'PUSHB "v"\nPUSHI 3',
    "full-1": "\n".join(["PUSHI 1"] * (STACK_LIMIT - 1)),
    "full-2": "\n".join(["PUSHI 1"] * (STACK_LIMIT - 2)),
    "huge": "PUSHB 0x" + "ab" * 1024 + "\n" + "DUP 0\nCONCAT\n" * 6,  # MAX_BYTES
}
LOCALS = {  # setups of local 0
    "key": 'PUSHB "k"',
    "short": 'PUSHB "kshort"',
    "long": 'PUSHB "klong"',
    "int": "PUSHI 300",
    "max-int": "PUSHI " + str(2**256 - 1),
    "zero": "PUSHI 0",
    "huge": "PUSHB 0x" + "ab" * 1024 + "\n" + "DUP 0\nCONCAT\n" * 6,  # MAX_BYTES
    "too-long-key": "PUSHB 0x" + "cd" * 600,  # longer than a storage key may be
}
assert "CONCAT\n" * 6 and MAX_BYTES == 1024 * 2**6

EPILOGUE = "RETURN\nt:\nPUSHB \"jumped\"\nRETURN"


def _program(local: str, stack: str, sequence: str) -> str:
    return f"{LOCALS[local]}\nSTORE 0\n{STACKS[stack]}\n{sequence}\n{EPILOGUE}"


@pytest.mark.parametrize("local", list(LOCALS))
@pytest.mark.parametrize("stack", list(STACKS))
@pytest.mark.parametrize("sequence,code", [
    ('LOAD 0\nPUSHB "s"\nCONCAT', 0x80),
    ('LOAD 0\nPUSHB "short"\nSLOADR', 0x81),
    ('LOAD 0\nPUSHB "none"\nSLOADR\nBTOI', 0x82),
    ('LOAD 0\nPUSHB "short"\nSLOADR\nBTOI', 0x82),
    ('LOAD 0\nPUSHB "long"\nSLOADR\nBTOI', 0x82),
    ('LOAD 0\nPUSHB "x"\nSSTORER', 0x83),
    ('LOAD 0\nPUSHB "short"\nSSTORER', 0x83),
    ("LOAD 0\nITOB", 0x89),
    ("LOAD 0\nLOAD 0", 0x8A),
])
def test_a_sequence_on_a_local_runs_alike_fused(local: str, stack: str, sequence: str,
                                                code: int) -> None:
    _alike(_program(local, stack, sequence), must_fuse=code)


def test_a_read_only_call_that_stores_fails_alike() -> None:
    out = _alike(_program("key", "bytes", 'LOAD 0\nPUSHB "x"\nSSTORER'),
                 static=True, must_fuse=0x83)
    assert out.status == Status.ERROR and "read-only" in out.reason


@pytest.mark.parametrize("stack", [*STACKS, "zero", "ok-bytes"])
@pytest.mark.parametrize("sequence,code", [
    ("ISZERO\nJUMPI t", 0x84),
    ("PUSHI 5\nGT\nISZERO\nJUMPI t", 0x85),
    ("PUSHI 0\nGT\nISZERO\nJUMPI t", 0x85),
    ("SLOAD\nBTOI", 0x88),
])
def test_a_test_and_jump_or_a_load_runs_alike_fused(stack: str, sequence: str,
                                                     code: int) -> None:
    setup = {"zero": "PUSHI 0", "ok-bytes": 'PUSHB "kshort"'}.get(stack)
    src = f"{setup or STACKS[stack]}\n{sequence}\n{EPILOGUE}"
    _alike(src, must_fuse=code)


@pytest.mark.parametrize("depth", [0, 1, 2, 3])
@pytest.mark.parametrize("bound", [0, 1, 5, 2**256 - 1])
@pytest.mark.parametrize("stack", ["empty", "bytes", "two", "full-1", "args"])
def test_an_argument_length_check_runs_alike_fused(depth: int, bound: int,
                                                    stack: str) -> None:
    setup = 'PUSHB ""\nPUSHB "abcdef"\nPUSHI 4' if stack == "args" else STACKS[stack]
    src = f"{setup}\nDUP {depth}\nLEN\nPUSHI {bound}\nGT\nISZERO\nJUMPI t\n{EPILOGUE}"
    _alike(src, must_fuse=0x86)


@pytest.mark.parametrize("n", [0, 1, 2, 7])
@pytest.mark.parametrize("nargs", [0, 1, 3])
@pytest.mark.parametrize("stack", ["empty", "full-1", "full-2"])
def test_reading_an_argument_runs_alike_fused(n: int, nargs: int, stack: str) -> None:
    src = f"{STACKS[stack]}\nPUSHI {n}\nARG\n{EPILOGUE}"
    _alike(src, args=[bytes([k]) * (k + 1) for k in range(nargs)], must_fuse=0x8B)


@pytest.mark.parametrize("method", [b"run", b"a", b"zzz", b"m" * 70])
@pytest.mark.parametrize("bound", ['"run"', '"b"', '""', "0x" + "6d" * 40])
@pytest.mark.parametrize("stack", ["empty", "full-1", "full-2"])
def test_the_dispatchers_method_test_runs_alike_fused(method: bytes, bound: str,
                                                      stack: str) -> None:
    src = f"{STACKS[stack]}\nMETHOD\nPUSHB {bound}\nLT\nISZERO\nJUMPI t\n{EPILOGUE}"
    _alike(src, method=method, must_fuse=0x87)


def test_a_jump_to_a_fused_sequence_charges_its_jumpdest_alike() -> None:
    """Jumped to, fallen into, and through JUMPV: the marker's gas is charged once."""
    body = 'LOAD 0\nPUSHB "short"\nSLOADR'
    for how in ("JUMP here", "PUSHI 1\nJUMPI here", "", "PUSHI {here}\nJUMPV"):
        if "{here}" in how:
            prefix = f'{LOCALS["key"]}\nSTORE 0'
            offset = len(assemble(prefix + "\nPUSHI 200\nJUMPV"))  # a 1-byte target
            how = how.format(here=offset)
        src = f'{LOCALS["key"]}\nSTORE 0\n{how}\nhere:\n{body}\n{EPILOGUE}'
        out = _alike(src, must_fuse=0x81)
        assert out.status == Status.OK, (how, out.reason)


def test_fuse_never_fuses_across_a_jumpdest_and_leaves_the_rest_in_place() -> None:
    code = assemble('LOAD 0\nPUSHB "s"\nhere:\nSLOADR\nBTOI\nJUMP here')
    plain = load_program(code, fused=False)
    ops, args, gas = list(plain.ops), list(plain.args), list(plain.gas)
    fuse(ops, args, gas, dict(plain.jumpdests))
    assert all(op < 0x80 for op in ops)  # LOAD PUSHB is not a sequence, SLOADR BTOI neither
    code = assemble('LOAD 0\nPUSHB "s"\nSLOADR\nBTOI\nSTOP')
    fused = load_program(code)
    assert fused.ops[0] == 0x82 and fused.ops[1:] == load_program(code, fused=False).ops[1:]
    assert set(FIRST) == set(range(0x80, 0x8C))
    assert all(isinstance(first, Op) for first in FIRST.values())


# ----------------------------------------------------------- the commerce contracts


def _flows(module: object) -> list[Callable[[], None]]:
    return [f for name, f in sorted(vars(module).items())
            if name.startswith("test_") and callable(f) and not getattr(f, "pytestmark", None)
            and f.__code__.co_argcount == 0 and "1000" not in name]  # that one is slow


def _record(flow: Callable[[], None], fused: bool, monkeypatch: pytest.MonkeyPatch) -> list:
    """Every call the flow makes, with how it went (status, value, gas, events, reason)."""
    log: list = []
    invoke = Contract.invoke

    def recording(self: Contract, method: dict, args: tuple, **kw: object) -> object:
        result = invoke(self, method, args, **kw)  # type: ignore[arg-type]
        log.append((self.address, method["name"], args, kw, result))
        return result

    loader = functools.lru_cache(maxsize=64)(lambda code: load_program(code, fused=fused))
    with monkeypatch.context() as m:
        m.setattr(Contract, "invoke", recording)
        m.setattr(vm.testing, "_program", loader)
        flow()
    return log


@pytest.mark.parametrize("flow", _flows(test_escrow_paths) + _flows(test_groups)[:6],
                         ids=lambda f: f.__name__)
def test_a_commerce_flow_reports_the_same_fused_and_plain(
        flow: Callable[[], None], monkeypatch: pytest.MonkeyPatch) -> None:
    fused = _record(flow, True, monkeypatch)
    assert fused, "the flow made no calls"
    assert fused == _record(flow, False, monkeypatch)


def test_commerce_calls_run_out_of_gas_alike(monkeypatch: pytest.MonkeyPatch) -> None:
    """Order, ship, confirm and review, each first tried with a share of the gas it
    needs: every try fails (or succeeds) alike, with the same gas used."""
    from commerce_helpers import BUYER, MERCHANT, Market

    def flow_at(share: float) -> None:
        m = Market()
        lid = m.listing()
        oid = m.order(lid)
        for contract, method, args, sender in (
                (m.escrow, "ship", (oid, "TRK"), MERCHANT),
                (m.escrow, "confirm", (oid, True), BUYER),
                (m.reviews, "post_review", (oid, 5, "as described"), BUYER)):
            abi = contract.method_abi(method)
            contract.invoke(abi, args, sender=sender, value=0, gas=int(300_000 * share))
            contract.invoke(abi, args, sender=sender, value=0, gas=None)

    tried = []
    for share in (0.0001, 0.001, 0.01, 0.03, 0.1, 0.2, 0.3, 0.45, 0.6, 1.0):
        run = functools.partial(flow_at, share)
        fused = _record(run, True, monkeypatch)
        assert fused == _record(run, False, monkeypatch), share
        tried += [r[-1].status for r in fused]
    assert Status.OUT_OF_GAS in tried and Status.OK in tried


def test_stack_limits_in_the_table_are_what_the_setups_assume() -> None:
    assert STACK_LIMIT == 1024 and list(itertools.islice(STACKS, 1)) == ["empty"]
