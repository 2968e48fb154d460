"""Fuzzing the executor with random code and random calls.

Whatever the bytes of a contract and whatever a caller sends, executing a block of
valid transactions must end in receipts: no Python exception escapes the executor,
no receipt uses more gas than its transaction's limit, and the fees add up. Two kinds
of code are generated: raw random bytes (mostly refused at deploy, which must itself
end in a receipt) and random *valid* instruction sequences built from the opcode table
(jumps aimed at real JUMPDESTs, small local and stack indexes, calls into itself), which
get deep into the interpreter: loops until out of gas, nested calls, events, storage.
"""

from __future__ import annotations

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from vm_helpers import ALICE, BOB, PROPOSER, TestChain

from chain.block import ReceiptStatus
from chain.tx import Call, Deploy, Transaction
from vm.executor import BlockContext, contract_address, encode_args, intrinsic_gas
from vm.opcodes import OPS, Op
from vm.program import load_program

CHAIN = TestChain()  # one genesis state, never committed to: every example starts from it
_SIMPLE = [info for info in OPS.values() if not info.immediates]
_CONSTANTS = [0, 1, 2, 31, 32, 255, 256, (1 << 255), (1 << 256) - 1]


@st.composite
def instructions(draw: st.DrawFn) -> bytes:
    """A valid instruction sequence: every static jump lands on a JUMPDEST."""
    n = draw(st.integers(1, 40))
    # A prelude of values of both kinds, so most programs get past their first pops.
    items: list[tuple[Op, tuple]] = [
        (Op.PUSHI, (1,)), (Op.PUSHB, (b"k",)), (Op.PUSHI, (2,)), (Op.PUSHB, (b"",)),
        (Op.PUSHI, (0,)), (Op.PUSHI, (7,)),
    ][: draw(st.integers(0, 6))]
    for _ in range(n):
        kind = draw(st.integers(0, 9))
        if kind <= 4:
            items.append((draw(st.sampled_from(_SIMPLE)).op, ()))
        elif kind == 5:
            value = draw(st.sampled_from(_CONSTANTS) | st.integers(0, (1 << 256) - 1))
            items.append((Op.PUSHI, (value,)))
        elif kind == 6:
            data = draw(st.sampled_from([b"", b"k", b"count", b"__init__", bytes(20)])
                        | st.binary(max_size=40))
            items.append((Op.PUSHB, (data,)))
        elif kind == 7:
            op = draw(st.sampled_from([Op.DUP, Op.SWAP, Op.LOAD, Op.STORE, Op.EMIT, Op.CALL]))
            low = 1 if op is Op.SWAP else 0
            items.append((op, (draw(st.integers(low, 3)),)))
        elif kind == 8:
            items.append((draw(st.sampled_from([Op.JUMP, Op.JUMPI, Op.CALLI])), ()))
        else:
            items.append((Op.JUMPDEST, ()))
    # Where each JUMPDEST lands: a jump's size does not depend on its target.
    offsets = []
    pos = 0
    for op, imm in items:
        if op is Op.JUMPDEST:
            offsets.append(pos)
        pos += 1 + (3 if op is Op.CALLI else 2 if op in (Op.JUMP, Op.JUMPI) else
                    len(encode_imm(op, imm)))
    if not offsets:  # nothing to jump to: leave the jumps out
        items = [(op, imm) for op, imm in items if op not in (Op.JUMP, Op.JUMPI, Op.CALLI)]
    targets = draw(st.permutations(offsets)) if offsets else []
    out = bytearray()
    k = 0
    for op, imm in items:
        out.append(op)
        if op in (Op.JUMP, Op.JUMPI, Op.CALLI):
            out += targets[k % len(targets)].to_bytes(2, "big")
            if op is Op.CALLI:
                out.append(k % 3)  # arguments
            k += 1
        else:
            out += encode_imm(op, imm)
    return bytes(out)


def encode_imm(op: Op, imm: tuple) -> bytes:
    if op is Op.PUSHI:
        raw = imm[0].to_bytes((imm[0].bit_length() + 7) >> 3, "big")
        return bytes([len(raw)]) + raw
    if op is Op.PUSHB:
        return len(imm[0]).to_bytes(2, "big") + imm[0]
    return bytes(imm)


calls = st.lists(
    st.tuples(
        st.sampled_from(["", "__init__", "inc", "get", "transfer"]) | st.text(max_size=8),
        st.lists(st.binary(max_size=33), max_size=4),
        st.integers(0, 1_000),  # value
        st.integers(0, 60_000),  # gas above the intrinsic gas
    ),
    min_size=1,
    max_size=4,
)


def run_block(code: bytes, call_list: list) -> None:
    executor = CHAIN.executor
    nonce = executor.account(ALICE.address)[0]
    deploy = Transaction.create(ALICE, CHAIN.genesis.chain_id, nonce,
                                Deploy(code, b"", 0), gas_limit=10**7, gas_price=1)
    target = contract_address(ALICE.address, nonce)
    txs = [deploy]
    bob_nonce = executor.account(BOB.address)[0]
    for i, (method, args, value, extra_gas) in enumerate(call_list):
        unsigned = Call(target, method, encode_args(args), value)
        probe = Transaction.create(BOB, CHAIN.genesis.chain_id, bob_nonce + i, unsigned,
                                   gas_limit=10**6, gas_price=1)
        txs.append(Transaction.create(BOB, CHAIN.genesis.chain_id, bob_nonce + i, unsigned,
                                      gas_limit=intrinsic_gas(probe) + extra_gas, gas_price=1))
    execution = executor.execute(txs, BlockContext(executor.height + 1, 1, PROPOSER))
    assert len(execution.receipts) == len(txs)
    for tx, receipt in zip(txs, execution.receipts, strict=True):
        assert 0 < receipt.gas_used <= tx.gas_limit
        assert receipt.status in (0, 1, 2, 3)
        assert receipt.status == 0 or receipt.events == ()
    for receipt in execution.receipts[1:]:
        event(f"call ended: {ReceiptStatus.NAMES[receipt.status]}")
    assert execution.fees == sum(r.gas_used for r in execution.receipts)
    assert execution.height == executor.height + 1


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=120), calls)
def test_random_bytes_never_escape_the_executor(code: bytes, call_list: list) -> None:
    run_block(code, call_list)


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(instructions(), calls)
def test_random_valid_programs_never_escape_the_executor(code: bytes, call_list: list) -> None:
    load_program(code)  # the generator makes valid code: the deploy really runs it
    run_block(code, call_list)
