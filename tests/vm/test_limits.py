"""Resource limits a transaction cannot buy its way past with gas."""

from __future__ import annotations

from vm_helpers import ALICE, BOB, TestChain

from vm.interpreter import Status
from vm.opcodes import MAX_BYTES

GROW = f"""
    METHOD
    PUSHB "grow"
    EQ
    JUMPI grow
    STOP
grow:
    PUSHB 0x{'ab' * (MAX_BYTES // 2)}
    STORE 0
again:
    LOAD 0
    LOAD 0
    CONCAT
    POP
    JUMP again
"""


def test_byte_strings_a_transaction_builds_are_bounded() -> None:
    """Concatenating 64 KiB values over and over, with gas to spare: the call stops at
    the per-transaction memory limit (not when the node runs out of memory), with a
    receipt that says so, and the fee is charged."""
    chain = TestChain()
    deploy, contract = chain.deploy(ALICE, GROW, gas_limit=10_000_000)
    assert chain.run_one(deploy).status == Status.OK
    before = chain.balance(ALICE.address)
    receipt = chain.run_one(chain.call(ALICE, contract, "grow", gas_limit=50_000_000))
    assert receipt.status == Status.ERROR
    assert "memory limit" in receipt.reason
    assert receipt.gas_used == 50_000_000  # a fault keeps no gas
    assert chain.balance(ALICE.address) == before - receipt.gas_used


def test_a_constructor_runs_only_at_deploy() -> None:
    """A call naming ``__init__`` must not re-run the constructor (which could, say,
    mint the supply again to the caller): the call fails and changes nothing."""
    chain = TestChain()
    deploy, contract = chain.deploy(ALICE, """
        METHOD
        PUSHB "__init__"
        EQ
        JUMPI init
        STOP
    init:
        PUSHB "owner"
        CALLER
        SSTORE
        STOP
    """)
    assert chain.run_one(deploy).status == Status.OK
    world = chain.executor._world()
    assert world.sload(contract, b"owner") == ALICE.address
    receipt = chain.run_one(chain.call(BOB, contract, "__init__"))
    assert receipt.status == Status.ERROR
    assert "only at deploy" in receipt.reason
    assert chain.executor._world().sload(contract, b"owner") == ALICE.address
