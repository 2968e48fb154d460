"""The executor end to end: small contracts deployed and called through blocks, the
receipts of calls that fail, the rules that make a whole block invalid, the mempool
checks and genesis.

Every test goes through :class:`vm_helpers.TestChain`, which builds, executes,
certifies and commits blocks the way a node does, so what is checked here is what a
validator would compute and store.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from vm_helpers import (
    ALICE,
    BLOCK_INTERVAL_MS,
    BOB,
    CAROL,
    CHAIN,
    GENESIS_TIME_MS,
    PROPOSER,
    VALIDATORS,
    TestChain,
    key,
    make_genesis,
    vset,
)

from chain.address import address_to_text
from chain.block import MAX_REASON, Block, Event, Header, Receipt, ReceiptStatus
from chain.codec import pack
from chain.errors import InvalidGenesis
from chain.hashing import ZERO_HASH, sha256
from chain.keys import PrivateKey
from chain.merkle import merkle_root
from chain.tx import Transaction, Transfer
from storage.kv import LevelDBKV, MemoryKV
from vm.asm import assemble
from vm.errors import InvalidBlock, InvalidTx, NotExecuted
from vm.executor import Executor, contract_address, intrinsic_gas
from vm.world import CODE, STORAGE

# ----------------------------------------------------------------------- contracts


def dispatch(*methods: str) -> str:
    """Assembly that jumps to the label named like the called method, for each of
    ``methods`` (``__init__`` jumps to ``init``); other methods fall through."""
    lines = []
    for method in methods:
        label = "init" if method == "__init__" else method
        lines += ["    METHOD", f'    PUSHB "{method}"', "    EQ", f"    JUMPI {label}"]
    return "\n".join(lines) + "\n"


UNKNOWN = """
    PUSHB "unknown method"
    REVERT
"""

COUNTER = dispatch("__init__", "inc", "get") + UNKNOWN + """
init:
    STOP
inc:                    ; n += 1; returns the new n
    PUSHB "n"
    PUSHB "n"
    SLOAD
    BTOI
    PUSHI 1
    ADD
    ITOB
    SSTORE
get:
    PUSHB "n"
    SLOAD
    RETURN
"""

TOKEN = dispatch("__init__", "transfer", "balance_of") + UNKNOWN + """
init:                   ; mint ARG 0 to the deployer
    CALLER
    PUSHI 0
    ARG
    BTOI
    ITOB
    SSTORE
    STOP
transfer:               ; transfer(to, amount): balances are stored under the address
    CALLER
    SLOAD
    BTOI
    STORE 0             ; the sender's balance
    PUSHI 1
    ARG
    BTOI
    STORE 1             ; the amount
    PUSHI 0
    ARG
    STORE 2             ; the recipient
    LOAD 0
    LOAD 1
    LT
    JUMPI insufficient
    CALLER
    LOAD 0
    LOAD 1
    SUB
    ITOB
    SSTORE
    LOAD 2
    LOAD 2
    SLOAD
    BTOI
    LOAD 1
    ADD
    ITOB
    SSTORE
    PUSHB "Transfer"
    CALLER
    LOAD 2
    LOAD 1
    EMIT 3
    STOP
insufficient:
    PUSHB "insufficient balance"
    REVERT
balance_of:             ; balance_of(address) -> minimal big-endian balance
    PUSHI 0
    ARG
    SLOAD
    RETURN
"""

GREETER = dispatch("__init__", "greet") + UNKNOWN + """
init:
    STOP
greet:                  ; greet(name): remembers who asked, returns "hello " + name
    PUSHB "caller"
    CALLER
    SSTORE
    PUSHB "hello "
    PUSHI 0
    ARG
    CONCAT
    RETURN
"""

RELAY = dispatch("__init__", "relay") + UNKNOWN + """
init:
    STOP
relay:                  ; relay(greeter, name): stores and returns greeter.greet(name)
    PUSHI 0
    ARG
    PUSHI 0
    PUSHB "greet"
    PUSHI 1
    ARG
    CALL 1
    JUMPI relayed
    REVERT              ; the callee's reason
relayed:
    STORE 0
    PUSHB "last"
    LOAD 0
    SSTORE
    LOAD 0
    RETURN
"""

# Each failing method first overwrites "touched" (the constructor sets it to "0"), so a
# receipt that rolled the call back leaves "0" in place; "touch" is the control that
# succeeds and keeps the write.
FAULTS = dispatch("__init__") + """
    PUSHB "touched"
    PUSHB "1"
    SSTORE
""" + dispatch("spin", "stack", "divide", "badjump", "refuse", "recurse", "touch") + UNKNOWN + """
init:
    PUSHB "touched"
    PUSHB "0"
    SSTORE
    STOP
touch:
    STOP
spin:
    JUMP spin
stack:
    PUSHI 1
    JUMP stack
divide:
    PUSHI 1
    PUSHI 0
    DIV
    RETURN
badjump:
    PUSHI 0             ; offset 0 is METHOD, not a JUMPDEST
    JUMPV
refuse:
    PUSHB "refused by contract"
    REVERT
recurse:                ; calls itself until a call fails, then reverts with its reason
    SELF
    PUSHI 0
    PUSHB "recurse"
    CALL 0
    JUMPI recursed
    REVERT
recursed:
    POP
    STOP
"""

# outer.run(inner) writes, sends 40 with a call to inner.fail (which writes and
# reverts), then records the outcome and returns the callee's reason.
OUTER = dispatch("__init__", "run") + UNKNOWN + """
init:
    STOP
run:
    PUSHB "outer"
    PUSHB "written"
    SSTORE
    PUSHI 0
    ARG
    PUSHI 40
    PUSHB "fail"
    CALL 0
    STORE 0             ; ok
    STORE 1             ; the reason
    PUSHB "ok"
    LOAD 0
    ITOB32
    SSTORE
    PUSHB "after"
    LOAD 1
    SSTORE
    LOAD 1
    RETURN
"""

INNER = dispatch("__init__", "fail") + UNKNOWN + """
init:
    STOP
fail:
    PUSHB "inner"
    PUSHB "written"
    SSTORE
    PUSHB "inner failed"
    REVERT
"""

ALWAYS_REVERTS = """
    PUSHB "constructor says no"
    REVERT
"""

DAVE = key("dave")  # not rich: funded explicitly where a test needs a small balance


# ----------------------------------------------------------------------- helpers


def u(n: int) -> bytes:
    """An integer as the minimal big-endian bytes the VM's ITOB makes."""
    return n.to_bytes((n.bit_length() + 7) // 8, "big")


def storage(chain: TestChain, contract: bytes, key_: bytes) -> bytes:
    """A committed storage value of ``contract`` (empty when unset)."""
    return chain.executor.tree.get(STORAGE + contract + key_) or b""


def all_storage(chain: TestChain, contract: bytes) -> dict[bytes, bytes]:
    """Every committed storage entry of ``contract``."""
    return dict(chain.executor.tree.iterate(STORAGE + contract))


def code_at(chain: TestChain, address: bytes) -> bytes | None:
    return chain.executor.tree.get(CODE + address)


def nonce_of(chain: TestChain, address: bytes) -> int:
    return chain.executor.account(address)[0]


def deployed(chain: TestChain, source: str, sender: PrivateKey = ALICE, **kw) -> bytes:
    """Deploy ``source`` in a block of its own; the contract's address."""
    tx, address = chain.deploy(sender, source, **kw)
    receipt = chain.run_one(tx)
    assert receipt.status == ReceiptStatus.OK, receipt.reason
    return address


def unexecuted_block(chain: TestChain, txs: list[Transaction],
                     proposer: bytes = PROPOSER) -> Block:
    """A well-formed next block whose roots were never computed: what a proposer might
    send before anyone executed it (``execute_block`` must judge its transactions)."""
    height = chain.height + 1
    parent = chain.executor.blocks.header(height - 1) if height > 1 else None
    header = Header(
        CHAIN, height, GENESIS_TIME_MS + height * BLOCK_INTERVAL_MS,
        parent.hash if parent is not None else chain.genesis.hash,
        merkle_root([t.encode() for t in txs]), ZERO_HASH, ZERO_HASH,
        vset().hash, vset().hash, proposer, len(txs),
        sha256(chain.last_commit.encode()) if chain.last_commit is not None else ZERO_HASH,
    )
    return Block(header, tuple(txs), chain.last_commit)


def committed_view(chain: TestChain) -> tuple:
    """What must not move when a block is refused or dropped."""
    ex = chain.executor
    return (ex.height, ex.state_root(), ex.blocks.height,
            [ex.account(k.address) for k in (ALICE, BOB, CAROL, DAVE, *VALIDATORS)])


def assert_block_invalid(chain: TestChain, txs: list[Transaction], bad_index: int,
                         match: str) -> None:
    """Both entry points refuse the block, name transaction ``bad_index`` and leave the
    committed state as it was."""
    before = committed_view(chain)
    bad = txs[bad_index]
    with pytest.raises(InvalidBlock) as exc:
        chain.build(txs)  # Executor.execute
    message = str(exc.value)
    assert f"transaction {bad_index} ({bad.hash.hex()[:16]})" in message
    assert match in message
    with pytest.raises(InvalidBlock, match=match) as exc:
        chain.executor.execute_block(unexecuted_block(chain, txs))
    assert f"transaction {bad_index} ({bad.hash.hex()[:16]})" in str(exc.value)
    assert committed_view(chain) == before


# ----------------------------------------------------------------------- contracts


def test_counter_counts_across_blocks() -> None:
    """State written by one call is read by the next, in the same block and in later
    ones: the basic promise of contract storage."""
    chain = TestChain()
    counter = deployed(chain, COUNTER)
    receipts = chain.run([chain.call(ALICE, counter, "inc"), chain.call(BOB, counter, "inc")])
    assert [r.status for r in receipts] == [ReceiptStatus.OK, ReceiptStatus.OK]
    assert [r.return_data for r in receipts] == [u(1), u(2)]
    assert chain.run_one(chain.call(CAROL, counter, "inc")).return_data == u(3)
    assert storage(chain, counter, b"n") == u(3)
    assert chain.executor.call_view(ALICE.address, counter, "get", []) == (
        ReceiptStatus.OK, u(3), "")


def test_counter_view_changes_nothing() -> None:
    """call_view runs a state-changing method but throws the change away: a query must
    never move the committed state."""
    chain = TestChain()
    counter = deployed(chain, COUNTER)
    root = chain.executor.state_root()
    assert chain.executor.call_view(ALICE.address, counter, "inc", []) == (
        ReceiptStatus.OK, u(1), "")
    assert chain.executor.call_view(ALICE.address, counter, "inc", []) == (
        ReceiptStatus.OK, u(1), "")
    assert chain.executor.state_root() == root
    assert storage(chain, counter, b"n") == b""


def test_token_mints_transfers_and_refuses_overdrafts() -> None:
    """A token keyed by caller address: the constructor mints to the deployer, a
    transfer moves balances and emits an event, an overdraft reverts with the
    contract's reason and moves nothing."""
    chain = TestChain()
    token = deployed(chain, TOKEN, args=[u(1000)])

    def balance_of(who: bytes) -> int:
        status, data, reason = chain.executor.call_view(CAROL.address, token, "balance_of",
                                                        [who])
        assert (status, reason) == (ReceiptStatus.OK, "")
        return int.from_bytes(data, "big")

    assert (balance_of(ALICE.address), balance_of(BOB.address)) == (1000, 0)
    r = chain.run_one(chain.call(ALICE, token, "transfer", [BOB.address, u(300)]))
    assert r.status == ReceiptStatus.OK
    assert r.events == (Event(token, "Transfer", pack([ALICE.address, BOB.address, u(300)])),)
    assert (balance_of(ALICE.address), balance_of(BOB.address)) == (700, 300)

    r = chain.run_one(chain.call(BOB, token, "transfer", [CAROL.address, u(301)]))
    assert (r.status, r.reason, r.events) == (ReceiptStatus.REVERTED, "insufficient balance", ())
    assert (balance_of(BOB.address), balance_of(CAROL.address)) == (300, 0)

    r = chain.run_one(chain.call(BOB, token, "transfer", [CAROL.address, u(300)]))
    assert r.status == ReceiptStatus.OK
    assert (balance_of(ALICE.address), balance_of(BOB.address), balance_of(CAROL.address)) == (
        700, 0, 300)
    # The map lives in the token's storage, one entry per holder with a balance.
    assert all_storage(chain, token) == {STORAGE + token + ALICE.address: u(700),
                                         STORAGE + token + CAROL.address: u(300)}


def test_contract_calls_another_and_keeps_its_answer() -> None:
    """CALL passes a method and arguments; the callee sees the calling contract as its
    CALLER; the caller gets the return value and can store it."""
    chain = TestChain()
    greeter = deployed(chain, GREETER)
    relay = deployed(chain, RELAY)
    r = chain.run_one(chain.call(BOB, relay, "relay", [greeter, b"bob"]))
    assert (r.status, r.return_data, r.reason) == (ReceiptStatus.OK, b"hello bob", "")
    assert storage(chain, relay, b"last") == b"hello bob"
    assert storage(chain, greeter, b"caller") == relay


def test_a_failing_callee_fails_the_relay_with_its_reason() -> None:
    """The caller receives ok=0 and the callee's reason (here: a method the callee does
    not have) and can pass it on; nothing the relay did stays."""
    chain = TestChain()
    counter = deployed(chain, COUNTER)  # has no "greet"
    relay = deployed(chain, RELAY)
    r = chain.run_one(chain.call(BOB, relay, "relay", [counter, b"bob"]))
    assert (r.status, r.reason) == (ReceiptStatus.REVERTED, "unknown method")
    assert all_storage(chain, relay) == {}


# ----------------------------------------------------------------------- failures

FAULT_CASES = [
    # method, status, reason, gas limit, whether every unit of gas is used
    ("spin", ReceiptStatus.OUT_OF_GAS, "out of gas", 200_000, True),
    ("stack", ReceiptStatus.ERROR, "stack overflow", 200_000, True),
    ("divide", ReceiptStatus.REVERTED, "division by zero", 200_000, False),
    ("badjump", ReceiptStatus.ERROR, "bad jump to 0: not a JUMPDEST", 200_000, True),
    ("recurse", ReceiptStatus.REVERTED, "call depth limit exceeded", 2_000_000, False),
    ("refuse", ReceiptStatus.REVERTED, "refused by contract", 200_000, False),
]


@pytest.mark.parametrize(("method", "status", "reason", "gas_limit", "all_gas"), FAULT_CASES,
                         ids=[c[0] for c in FAULT_CASES])
def test_failed_call_pays_its_fee_and_changes_nothing_else(
    method: str, status: int, reason: str, gas_limit: int, all_gas: bool,
) -> None:
    """A call that fails is still a valid transaction: it is included, the nonce moves,
    the sender pays exactly gas_used * gas_price to the proposer, the value it sent comes
    back, and the contract's storage and balance are as before."""
    chain = TestChain()
    faults = deployed(chain, FAULTS)
    proposer = VALIDATORS[2].address
    price = 7
    contract_state = all_storage(chain, faults)
    assert contract_state == {STORAGE + faults + b"touched": b"0"}
    alice_before = chain.balance(ALICE.address)
    nonce_before = nonce_of(chain, ALICE.address)
    proposer_before = chain.balance(proposer)

    tx = chain.call(ALICE, faults, method, value=11, gas_limit=gas_limit, gas_price=price)
    [r] = chain.run([tx], proposer=proposer)

    assert (r.status, r.reason, r.return_data, r.events) == (status, reason, b"", ())
    assert r.gas_used > intrinsic_gas(tx)
    if all_gas:
        assert r.gas_used == gas_limit  # a fault keeps no gas
    else:
        assert r.gas_used < gas_limit  # a revert gives back what it did not use
    fee = r.gas_used * price
    assert chain.balance(ALICE.address) == alice_before - fee
    assert chain.balance(proposer) == proposer_before + fee
    assert nonce_of(chain, ALICE.address) == nonce_before + 1
    assert all_storage(chain, faults) == contract_state
    assert chain.balance(faults) == 0


def test_the_control_method_does_write() -> None:
    """The same contract's succeeding method keeps its write and the value: without
    this, the failure tests above could pass on a contract that never writes."""
    chain = TestChain()
    faults = deployed(chain, FAULTS)
    r = chain.run_one(chain.call(ALICE, faults, "touch", value=11))
    assert r.status == ReceiptStatus.OK
    assert storage(chain, faults, b"touched") == b"1"
    assert chain.balance(faults) == 11


def test_a_reverted_nested_call_undoes_only_the_callee() -> None:
    """The caller writes, calls a callee (with value) that writes and reverts, then
    carries on: the caller's writes stay, the callee's write and the value it was sent
    do not, and the caller sees ok=0 with the callee's reason."""
    chain = TestChain()
    inner = deployed(chain, INNER)
    outer = deployed(chain, OUTER, value=100)
    r = chain.run_one(chain.call(BOB, outer, "run", [inner]))
    assert (r.status, r.return_data, r.reason) == (ReceiptStatus.OK, b"inner failed", "")
    assert all_storage(chain, outer) == {
        STORAGE + outer + b"outer": b"written",
        STORAGE + outer + b"ok": bytes(32),
        STORAGE + outer + b"after": b"inner failed",
    }
    assert all_storage(chain, inner) == {}
    assert (chain.balance(outer), chain.balance(inner)) == (100, 0)


def test_a_long_revert_reason_is_cut_to_fit_the_receipt() -> None:
    """A receipt's reason is at most MAX_REASON bytes of UTF-8. A contract may revert
    with a longer text, ASCII or not: the transaction must still get its REVERTED
    receipt with the reason cut to fit (at a character boundary) — never a receipt
    that cannot be encoded, which would make the block impossible to execute."""
    chain = TestChain()
    ascii_text = "x" * 300
    multibyte = "\u00e9" * 200  # 2 bytes each in UTF-8: 400 bytes
    loud = deployed(chain, dispatch("__init__", "ascii", "multibyte") + f"""
    STOP
init:
    STOP
ascii:
    PUSHB "{ascii_text}"
    REVERT
multibyte:
    PUSHB "{multibyte}"
    REVERT
""")
    [r] = chain.run([chain.call(ALICE, loud, "ascii")])
    assert (r.status, r.reason) == (ReceiptStatus.REVERTED, "x" * MAX_REASON)
    receipts = chain.run([chain.call(ALICE, loud, "multibyte")])  # must not raise EncodeError
    [r] = receipts
    assert r.status == ReceiptStatus.REVERTED
    assert len(r.reason.encode()) <= MAX_REASON
    assert multibyte.startswith(r.reason)
    assert len(r.reason) >= MAX_REASON // 2 - 1  # cut where it must be, not emptied
    assert chain.executor.blocks.receipts(chain.height) == receipts


def test_an_event_name_over_64_bytes_fails_the_call() -> None:
    """An event name is at most 64 bytes of UTF-8 in a receipt. EMIT must refuse a
    longer one (here 64 characters, 128 bytes) by failing the call, not emit an event
    no receipt can hold; a 64-byte ASCII name is fine."""
    chain = TestChain()
    ascii_name = "e" * 64
    multibyte = "\u00e9" * 64
    emitter = deployed(chain, dispatch("__init__", "ascii", "multibyte") + f"""
    STOP
init:
    STOP
ascii:
    PUSHB "{ascii_name}"
    EMIT 0
    STOP
multibyte:
    PUSHB "{multibyte}"
    EMIT 0
    STOP
""")
    [r] = chain.run([chain.call(ALICE, emitter, "ascii")])
    assert (r.status, r.events) == (ReceiptStatus.OK, (Event(emitter, ascii_name, pack([])),))
    before = chain.balance(ALICE.address)
    [r] = chain.run([chain.call(ALICE, emitter, "multibyte")])  # must not raise EncodeError
    assert (r.status, r.events) == (ReceiptStatus.ERROR, ())
    assert "too long" in r.reason
    assert chain.balance(ALICE.address) == before - r.gas_used


# ----------------------------------------------------------------------- deploy


def test_deploy_returns_the_contract_address_and_stores_the_code() -> None:
    """The receipt of a deploy says where the contract is: contract_address(sender,
    nonce), which clients compute before sending."""
    chain = TestChain()
    chain.run([chain.transfer(ALICE, BOB.address, 1)])  # Alice's next nonce is 1
    code = assemble(COUNTER)
    tx, expected = chain.deploy(ALICE, code)
    assert tx.nonce == 1
    r = chain.run_one(tx)
    assert r.status == ReceiptStatus.OK
    assert r.return_data == expected == contract_address(ALICE.address, 1)
    assert code_at(chain, expected) == code
    assert code_at(chain, contract_address(ALICE.address, 0)) is None


def test_deploy_of_invalid_code_fails_and_charges() -> None:
    """Code that does not validate is refused with the offset of the bad byte; the
    transaction is still valid: nonce and fee (all its gas) are taken, no code stored."""
    chain = TestChain()
    prefix = assemble('PUSHI 1\nPOP\nPUSHB "x"')
    code = prefix + b"\xff"  # no such opcode
    alice_before = chain.balance(ALICE.address)
    proposer_before = chain.balance(PROPOSER)
    tx, address = chain.deploy(ALICE, code, gas_limit=500_000, gas_price=3)
    r = chain.run_one(tx)
    assert r.status == ReceiptStatus.ERROR
    assert f"offset {len(prefix)}" in r.reason
    assert r.return_data == b""
    assert r.gas_used == 500_000
    assert chain.balance(ALICE.address) == alice_before - 3 * 500_000
    assert chain.balance(PROPOSER) == proposer_before + 3 * 500_000
    assert nonce_of(chain, ALICE.address) == 1
    assert code_at(chain, address) is None


def test_a_reverting_constructor_leaves_no_contract_and_returns_the_value() -> None:
    """No contract without a successful constructor: the code is not stored, the value
    sent with the deploy goes back, and calling the address finds nothing."""
    chain = TestChain()
    alice_before = chain.balance(ALICE.address)
    tx, address = chain.deploy(ALICE, ALWAYS_REVERTS, value=5_000)
    r = chain.run_one(tx)
    assert (r.status, r.reason, r.return_data) == (
        ReceiptStatus.REVERTED, "constructor says no", b"")
    assert code_at(chain, address) is None
    assert chain.balance(address) == 0
    assert chain.balance(ALICE.address) == alice_before - r.gas_used
    r = chain.run_one(chain.call(BOB, address, "anything"))
    assert r.status == ReceiptStatus.ERROR
    assert r.reason == f"no contract at {address.hex()}"


def test_value_moves_with_deploys_and_calls() -> None:
    """Native coin sent with a deploy or a call ends up in the contract; the sender pays
    value plus fee and nothing more."""
    chain = TestChain()
    alice_before = chain.balance(ALICE.address)
    tx, counter = chain.deploy(ALICE, COUNTER, value=500)
    r1 = chain.run_one(tx)
    assert r1.status == ReceiptStatus.OK
    assert chain.balance(counter) == 500
    assert chain.balance(ALICE.address) == alice_before - 500 - r1.gas_used

    bob_before = chain.balance(BOB.address)
    r2 = chain.run_one(chain.call(BOB, counter, "inc", value=300))
    assert r2.status == ReceiptStatus.OK
    assert chain.balance(counter) == 800
    assert chain.balance(BOB.address) == bob_before - 300 - r2.gas_used

    r3 = chain.run_one(chain.call(BOB, counter, "no-such-method", value=50))
    assert r3.status == ReceiptStatus.REVERTED
    assert chain.balance(counter) == 800
    assert chain.balance(BOB.address) == bob_before - 300 - r2.gas_used - r3.gas_used


# ----------------------------------------------------------------------- blocks


def test_fees_of_a_block_go_to_its_proposer() -> None:
    """The proposer is credited the sum of gas_used * gas_price over the block's
    transactions, failed ones included, at their own prices."""
    chain = TestChain()
    counter = deployed(chain, COUNTER)
    proposer = VALIDATORS[3].address
    assert chain.balance(proposer) == 0
    txs = [
        chain.transfer(ALICE, DAVE.address, 10**6, gas_price=2),
        chain.call(BOB, counter, "inc", gas_price=3),
        chain.call(CAROL, counter, "nope", gas_price=5),  # reverts, still pays
        chain.deploy(BOB, GREETER, gas_price=1)[0],
    ]
    before = {k.address: chain.balance(k.address) for k in (ALICE, BOB, CAROL)}
    receipts = chain.run(txs, proposer=proposer)
    assert [r.status for r in receipts] == [ReceiptStatus.OK, ReceiptStatus.OK,
                                            ReceiptStatus.REVERTED, ReceiptStatus.OK]
    assert receipts[0].gas_used == intrinsic_gas(txs[0])  # a transfer costs its intrinsic gas
    fees = [r.gas_used * t.gas_price for r, t in zip(receipts, txs, strict=True)]
    assert chain.balance(proposer) == sum(fees)
    assert chain.balance(ALICE.address) == before[ALICE.address] - fees[0] - 10**6
    assert chain.balance(BOB.address) == before[BOB.address] - fees[1] - fees[3]
    assert chain.balance(CAROL.address) == before[CAROL.address] - fees[2]
    assert chain.balance(DAVE.address) == 10**6


def test_a_nonce_gap_invalidates_the_block() -> None:
    """A transaction that skips a nonce cannot be applied: the block is invalid, named
    by that transaction, and nothing is committed."""
    chain = TestChain()
    good = chain.transfer(ALICE, BOB.address, 1)
    gap = chain.transfer(BOB, CAROL.address, 1, nonce=1)  # Bob is at 0
    assert_block_invalid(chain, [good, gap], 1, "nonce 1, the account's next nonce is 0")


def test_a_replayed_nonce_invalidates_the_block() -> None:
    """Once nonce 0 is used, neither the same transaction nor another one with that
    nonce can be included again."""
    chain = TestChain()
    first = chain.transfer(ALICE, BOB.address, 1, nonce=0)
    chain.run([first])
    other = chain.transfer(ALICE, CAROL.address, 2, nonce=0)
    assert_block_invalid(chain, [other], 0, "nonce 0, the account's next nonce is 1")
    fresh = chain.transfer(BOB, CAROL.address, 1, nonce=0)
    assert_block_invalid(chain, [fresh, first], 1, "nonce 0, the account's next nonce is 1")
    # A block with the nonce in order is fine.
    [r] = chain.run([chain.transfer(ALICE, CAROL.address, 2, nonce=1)])
    assert r.status == ReceiptStatus.OK


def test_the_same_nonce_twice_in_one_block_is_invalid() -> None:
    """Two different transactions with one nonce in a block: the second is the replay."""
    chain = TestChain()
    a = chain.transfer(ALICE, BOB.address, 1, nonce=0)
    b = chain.transfer(ALICE, CAROL.address, 1, nonce=0)
    assert_block_invalid(chain, [a, b], 1, "nonce 0, the account's next nonce is 1")


def test_a_forged_signature_invalidates_the_block() -> None:
    """Blocks are checked for signatures too (validate_basic does not): a transaction
    whose signature does not verify makes the block invalid."""
    chain = TestChain()
    good = chain.transfer(ALICE, BOB.address, 1, nonce=0)
    tx = chain.transfer(BOB, CAROL.address, 10**20, nonce=0)
    forged = dataclasses.replace(tx, signature=bytes([tx.signature[0] ^ 1]) + tx.signature[1:])
    assert_block_invalid(chain, [good, forged], 1, "signature does not verify")


def test_a_sender_who_cannot_pay_the_maximum_invalidates_the_block() -> None:
    """The sender must hold gas_limit * gas_price + value up front, even if the gas
    actually used would be affordable; exactly enough is enough."""
    chain = TestChain(genesis=make_genesis({ALICE.address: 10**30,
                                            DAVE.address: 1_000_000 + 5}))
    counter = deployed(chain, COUNTER)
    too_much = chain.transfer(DAVE, BOB.address, 6, gas_limit=1_000_000, nonce=0)
    assert_block_invalid(chain, [too_much], 0, "cannot pay up to 1000006")
    call = chain.call(DAVE, counter, "inc", value=6, gas_limit=1_000_000, nonce=0)
    assert_block_invalid(chain, [call], 0, "cannot pay up to 1000006")
    exact = chain.transfer(DAVE, BOB.address, 5, gas_limit=1_000_000, nonce=0)
    [r] = chain.run([exact])
    assert r.status == ReceiptStatus.OK
    assert chain.balance(DAVE.address) == 1_000_000 - r.gas_used


def test_gas_price_below_the_minimum_is_invalid() -> None:
    """The genesis min_gas_price is a hard floor for inclusion."""
    chain = TestChain(genesis=make_genesis(min_gas_price=5))
    cheap = chain.transfer(ALICE, BOB.address, 1, gas_price=4, nonce=0)
    assert_block_invalid(chain, [cheap], 0, "gas price 4 is below the minimum 5")
    with pytest.raises(InvalidTx, match="below the minimum"):
        chain.executor.check_tx(cheap)
    [r] = chain.run([chain.transfer(ALICE, BOB.address, 1, gas_price=5, nonce=0)])
    assert r.status == ReceiptStatus.OK


def test_gas_limit_below_the_intrinsic_gas_is_invalid() -> None:
    """A transaction must at least pay for itself; a transfer with exactly its intrinsic
    gas is valid and uses all of it."""
    chain = TestChain()
    probe = chain.transfer(ALICE, BOB.address, 1, gas_limit=10_000, nonce=0)
    need = intrinsic_gas(probe)
    assert 2_000 < need < 10_000  # both limits encode in the same number of bytes
    exact = chain.transfer(ALICE, BOB.address, 1, gas_limit=need, nonce=0)
    assert intrinsic_gas(exact) == need  # same encoded size
    short = chain.transfer(ALICE, BOB.address, 1, gas_limit=need - 1, nonce=0)
    assert_block_invalid(chain, [short], 0, f"is below the intrinsic gas {need}")
    deploy_short, _ = chain.deploy(ALICE, COUNTER, gas_limit=3_000, nonce=0)
    assert_block_invalid(chain, [deploy_short], 0, "is below the intrinsic gas")
    [r] = chain.run([exact])
    assert (r.status, r.gas_used) == (ReceiptStatus.OK, need)


def test_a_dropped_block_leaves_no_trace() -> None:
    """execute_block works on a scratch state: if the block is never committed the
    committed state, root and height are untouched, and another block at that height
    commits normally — even one deploying different code at the same address after the
    dropped block ran (and cached) its own."""
    chain = TestChain()
    before = committed_view(chain)
    tx, address = chain.deploy(ALICE, 'PUSHB "A"\nRETURN', nonce=0)
    dropped = chain.build([tx, chain.call(BOB, address, "x", nonce=0),
                           chain.transfer(CAROL, DAVE.address, 99, nonce=0)])
    root, receipts = chain.executor.execute_block(dropped)
    assert root == dropped.header.state_root != before[1]
    assert receipts[1].return_data == b"A"
    assert committed_view(chain) == before
    assert code_at(chain, address) is None
    assert chain.executor.blocks.block(1) is None

    tx2, address2 = chain.deploy(ALICE, 'PUSHB "B"\nRETURN', nonce=0)
    assert address2 == address
    receipts = chain.run([tx2, chain.call(BOB, address, "x", nonce=0)])
    assert [r.return_data for r in receipts] == [address, b"B"]
    assert chain.height == 1
    assert chain.balance(DAVE.address) == 0
    assert chain.executor.blocks.block(1).hash != dropped.hash
    with pytest.raises(NotExecuted):  # its execution was on a state that is gone
        chain.executor.commit(dropped, chain.certify(dropped))


def test_commit_needs_the_block_executed_first() -> None:
    """commit() writes only what execute_block() (or build_block(), for the proposer)
    computed; a block it never executed is a bug in the caller, refused without
    writing anything."""
    chain = TestChain()
    other = TestChain()  # the same block, built on another node
    block = other.build([other.transfer(ALICE, BOB.address, 5)])
    before = committed_view(chain)
    with pytest.raises(NotExecuted):
        chain.executor.commit(block, chain.certify(block))
    assert committed_view(chain) == before
    chain.commit(block)  # executes then commits
    assert chain.height == 1


def test_a_block_is_executed_once_by_its_proposer(monkeypatch) -> None:
    """build_block's execution is kept: validating and committing the proposer's own
    block does not run its transactions again."""
    chain = TestChain()
    block = chain.build([chain.transfer(ALICE, BOB.address, 5)])
    runs = []
    real = chain.executor.execute
    monkeypatch.setattr(chain.executor, "execute", lambda *a, **k: runs.append(1) or real(*a, **k))
    root, receipts = chain.executor.execute_block(block)
    assert root == block.header.state_root and len(receipts) == 1
    chain.executor.commit(block, chain.certify(block))
    assert runs == [] and chain.height == 1


def test_commit_refuses_a_header_with_another_state_root() -> None:
    """A block whose header claims a state root its transactions do not give is not
    written, even once executed."""
    chain = TestChain()
    block = unexecuted_block(chain, [chain.transfer(ALICE, BOB.address, 5)])
    chain.executor.execute_block(block)
    before = committed_view(chain)
    with pytest.raises(InvalidBlock, match="state root"):
        chain.executor.commit(block, chain.certify(block))
    assert committed_view(chain) == before


def test_stored_header_receipts_and_tx_index() -> None:
    """What commit writes: the header carries the new state root, the receipts are kept
    in order, and each transaction can be found by hash with its receipt."""
    chain = TestChain()
    counter = deployed(chain, COUNTER)
    txs = [chain.call(ALICE, counter, "inc"), chain.transfer(BOB, CAROL.address, 3),
           chain.call(CAROL, counter, "nope")]
    receipts = chain.run(txs)
    blocks = chain.executor.blocks
    assert blocks.height == chain.height == 2
    assert blocks.header(2).state_root == chain.executor.state_root()
    assert blocks.header(1).state_root != blocks.header(2).state_root
    assert blocks.receipts(2) == receipts
    assert [r.status for r in receipts] == [ReceiptStatus.OK, ReceiptStatus.OK,
                                            ReceiptStatus.REVERTED]
    for i, tx in enumerate(txs):
        record = blocks.tx(tx.hash)
        assert (record.height, record.index, record.tx, record.receipt) == (2, i, tx,
                                                                            receipts[i])
    assert blocks.tx(sha256(b"not a transaction")) is None


# ----------------------------------------------------------------------- check_tx


def test_check_tx_accepts_a_good_transaction() -> None:
    """A well-formed, signed, affordable transaction with the next nonce (or one ahead,
    which may follow queued transactions) enters the mempool."""
    chain = TestChain()
    chain.executor.check_tx(chain.transfer(ALICE, BOB.address, 1, nonce=0))
    chain.executor.check_tx(chain.transfer(ALICE, BOB.address, 1, nonce=3))
    chain.executor.check_tx(chain.deploy(BOB, COUNTER, nonce=0)[0])


def test_check_tx_refuses_a_bad_signature() -> None:
    """A transaction whose signature does not verify, or that was signed by another
    key than the sender it names, is refused."""
    chain = TestChain()
    tx = chain.transfer(ALICE, BOB.address, 1, nonce=0)
    flipped = bytes([tx.signature[0] ^ 1]) + tx.signature[1:]
    with pytest.raises(InvalidTx, match="signature"):
        chain.executor.check_tx(dataclasses.replace(tx, signature=flipped))
    other = chain.transfer(BOB, CAROL.address, 1, nonce=0)
    with pytest.raises(InvalidTx, match="signature"):
        chain.executor.check_tx(dataclasses.replace(tx, signature=other.signature))
    chain.executor.check_tx(tx)  # the untouched one is fine


def test_check_tx_refuses_another_chain() -> None:
    """A transaction signed for another chain cannot be replayed here."""
    chain = TestChain()
    tx = Transaction.create(ALICE, "some-other-chain", 0, Transfer(BOB.address, 1),
                            gas_limit=100_000, gas_price=1)
    with pytest.raises(InvalidTx, match="some-other-chain"):
        chain.executor.check_tx(tx)


def test_check_tx_refuses_a_used_nonce() -> None:
    """After nonce 0 is committed, a transaction with nonce 0 can never be included."""
    chain = TestChain()
    chain.run([chain.transfer(ALICE, BOB.address, 1, nonce=0)])
    with pytest.raises(InvalidTx, match="nonce 0 already used"):
        chain.executor.check_tx(chain.transfer(ALICE, CAROL.address, 1, nonce=0))
    chain.executor.check_tx(chain.transfer(ALICE, CAROL.address, 1, nonce=1))


def test_check_tx_refuses_a_sender_who_cannot_pay() -> None:
    """The mempool applies the block rule: gas_limit * gas_price + value up front."""
    chain = TestChain(genesis=make_genesis({DAVE.address: 100_005}))
    ok = chain.transfer(DAVE, BOB.address, 5, gas_limit=100_000, nonce=0)
    chain.executor.check_tx(ok)
    with pytest.raises(InvalidTx, match="cannot pay"):
        chain.executor.check_tx(chain.transfer(DAVE, BOB.address, 6, gas_limit=100_000,
                                               nonce=0))
    with pytest.raises(InvalidTx, match="cannot pay"):
        chain.executor.check_tx(chain.transfer(BOB, DAVE.address, 1, nonce=0))  # Bob: 0


def test_coin_sent_to_a_contract_by_a_transfer_stays_with_its_sender() -> None:
    """A contract only takes coin through a payable method, where it can account for
    it: a plain transfer to it is refused at the mempool and, in a block, ends in an
    ERROR receipt whose fee is paid while the coin stays put."""
    chain = TestChain()
    counter = deployed(chain, COUNTER)
    tx = chain.transfer(ALICE, counter, 500)
    with pytest.raises(InvalidTx, match="payable methods"):
        chain.executor.check_tx(tx)
    before = chain.balance(ALICE.address)
    receipt = chain.run_one(tx)
    assert receipt.status == ReceiptStatus.ERROR
    assert "payable methods" in receipt.reason
    assert receipt.gas_used == intrinsic_gas(tx)
    assert chain.balance(counter) == 0
    assert chain.balance(ALICE.address) == before - intrinsic_gas(tx)  # gas price 1
    assert nonce_of(chain, ALICE.address) == tx.nonce + 1
    # nothing stops a transfer of nothing, or a transfer to an account
    nothing = chain.transfer(ALICE, counter, 0)
    chain.executor.check_tx(nothing)
    assert chain.run_one(nothing).status == ReceiptStatus.OK
    assert chain.run_one(chain.transfer(ALICE, BOB.address, 5)).status == ReceiptStatus.OK


# ----------------------------------------------------------------------- genesis

GENESIS_COUNTER = bytes.fromhex("11" * 20)


def counter_genesis(code: bytes | None = None) -> dict:
    """A genesis contract entry: a counter already at 5, holding 777 coins."""
    return {
        "address": address_to_text(GENESIS_COUNTER),
        "code": (assemble(COUNTER) if code is None else code).hex(),
        "balance": "777",
        "storage": {b"n".hex(): u(5).hex()},
    }


def test_genesis_balances_and_contracts_are_in_the_state() -> None:
    """At height 0 the genesis balances and contracts (code, balance, storage) are in
    the state, and the contract works from the first block."""
    genesis = make_genesis(contracts=[counter_genesis()])
    chain = TestChain(genesis=genesis)
    assert chain.height == 0
    assert chain.balance(ALICE.address) == 10**30
    assert chain.balance(DAVE.address) == 0
    assert chain.balance(GENESIS_COUNTER) == 777
    assert code_at(chain, GENESIS_COUNTER) == assemble(COUNTER)
    assert storage(chain, GENESIS_COUNTER, b"n") == u(5)
    assert chain.executor.call_view(BOB.address, GENESIS_COUNTER, "get", []) == (
        ReceiptStatus.OK, u(5), "")
    r = chain.run_one(chain.call(BOB, GENESIS_COUNTER, "inc"))
    assert (r.status, r.return_data) == (ReceiptStatus.OK, u(6))
    assert chain.balance(GENESIS_COUNTER) == 777


def test_genesis_contracts_change_the_genesis_hash_and_root() -> None:
    """The contracts are part of what nodes agree on at genesis."""
    plain = TestChain()
    with_contract = TestChain(genesis=make_genesis(contracts=[counter_genesis()]))
    assert plain.genesis.hash != with_contract.genesis.hash
    assert plain.executor.state_root() != with_contract.executor.state_root()


def test_a_genesis_contract_with_invalid_code_is_refused() -> None:
    """Invalid code cannot enter through genesis either: the executor refuses it
    before writing anything, naming the contract and the offset."""
    prefix = assemble("PUSHI 1\nPOP")
    genesis = make_genesis(contracts=[counter_genesis(prefix + b"\xff")])
    kv = MemoryKV()
    with pytest.raises(InvalidGenesis) as exc:
        Executor(kv, genesis)
    assert GENESIS_COUNTER.hex() in str(exc.value)
    assert f"offset {len(prefix)}: unknown opcode 0xff" in str(exc.value)
    assert list(kv.iterate()) == []


def test_reopening_a_store_keeps_the_chain(tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """A node restarting on its LevelDB directory resumes at its height, root and
    balances, with genesis not written again, and goes on committing."""
    genesis = make_genesis(contracts=[counter_genesis()])
    kv = LevelDBKV(tmp_path / "db")
    chain = TestChain(kv, genesis)
    chain.run([chain.transfer(ALICE, DAVE.address, 1234),
               chain.call(BOB, GENESIS_COUNTER, "inc")])
    height, root = chain.height, chain.executor.state_root()
    balances = [chain.balance(k.address) for k in (ALICE, BOB, DAVE)]
    kv.close()

    def no_genesis(self: Executor) -> None:
        raise AssertionError("genesis written again")

    monkeypatch.setattr(Executor, "_write_genesis", no_genesis)
    kv = LevelDBKV(tmp_path / "db")
    again = TestChain(kv, genesis)
    assert height == 1
    assert (again.height, again.executor.state_root()) == (height, root)
    assert [again.balance(k.address) for k in (ALICE, BOB, DAVE)] == balances
    assert storage(again, GENESIS_COUNTER, b"n") == u(6)
    again.last_commit = again.executor.blocks.commit(1)
    r = again.run_one(again.call(CAROL, GENESIS_COUNTER, "inc"))
    assert (r.status, r.return_data, again.height) == (ReceiptStatus.OK, u(7), 2)
    kv.close()


def test_receipt_encoding_round_trips() -> None:
    """Receipts with events and reasons are what blocks commit to: they must decode to
    themselves from the stored bytes."""
    chain = TestChain()
    token = deployed(chain, TOKEN, args=[u(10)])
    receipts = chain.run([chain.call(ALICE, token, "transfer", [BOB.address, u(4)]),
                          chain.call(BOB, token, "transfer", [ALICE.address, u(99)])])
    for r in receipts:
        assert Receipt.decode(r.encode()) == r
    assert receipts[0].events and receipts[1].reason == "insufficient balance"
