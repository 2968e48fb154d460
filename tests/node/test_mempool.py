"""The mempool: every refusal with its code and reason, nonce gaps, replays, balances
across pending transactions, limits and eviction, proposal order, and the re-check
after a committed block.

Admission runs against a real :class:`vm.executor.Executor` (signatures, chain id,
committed nonces and balances); blocks are built, certified and committed with
``vm_helpers.TestChain``. The property test at the end drives the pool with random
operations over a small fake application, so it can run many cases quickly.
"""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st
from vm_helpers import ALICE, BOB, CAROL, CHAIN, RICH, TestChain, key, make_genesis

import chain.tx
from chain.tx import Transaction, Transfer
from node.mempool import Code, Dropped, Mempool, TxRejected
from vm.errors import InvalidTx

POOR = key("mempool-poor")
DAVE = key("mempool-dave")
POOR_BALANCE = 2_500_000
GAS = 1_000_000  # TestChain's default gas limit: at gas price 1, a max fee of GAS


@pytest.fixture
def tc() -> TestChain:
    return TestChain(genesis=make_genesis({
        ALICE.address: RICH, BOB.address: RICH, CAROL.address: RICH, DAVE.address: RICH,
        POOR.address: POOR_BALANCE,
    }))


def pool_of(tc: TestChain, **limits: int) -> Mempool:
    return Mempool(tc.executor, invalid_tx=InvalidTx, **limits)


def pay(tc: TestChain, sender, nonce: int, *, price: int = 1, amount: int = 1,
        memo: str = "", gas_limit: int = GAS) -> Transaction:
    """A signed transfer from ``sender`` with an explicit nonce."""
    return Transaction.create(sender, CHAIN, nonce, Transfer(BOB.address, amount),
                              gas_limit=gas_limit, gas_price=price, memo=memo)


def fresh(tx: Transaction) -> Transaction:
    """The same transaction as a peer would deliver it: decoded, nothing cached."""
    return Transaction.decode(tx.encode())


def refused(pool: Mempool, tx: Transaction) -> TxRejected:
    before = (set(pool_hashes(pool)), pool.size_bytes, pool.status())
    with pytest.raises(TxRejected) as info:
        pool.add(tx)
    assert (set(pool_hashes(pool)), pool.size_bytes, pool.status()) == before, \
        "a refusal must leave the pool as it was"
    return info.value


def pool_hashes(pool: Mempool) -> list[bytes]:
    return [tx.hash for tx in pool]


def nonces(txs: list[Transaction]) -> list[tuple[str, int]]:
    names = {ALICE.address: "alice", BOB.address: "bob", CAROL.address: "carol",
             DAVE.address: "dave", POOR.address: "poor"}
    return [(names[tx.sender_address], tx.nonce) for tx in txs]


UNLIMITED = {"max_bytes": 10**9, "max_gas": 10**18, "max_txs": 10**6}

# ----------------------------------------------------------------------- admission


def test_admits_a_transfer_and_reports_it(tc: TestChain) -> None:
    pool = pool_of(tc)
    tx = pay(tc, ALICE, 0)
    assert pool.add(tx) == []
    assert len(pool) == 1 and tx.hash in pool and pool.get(tx.hash) is tx
    assert pool.get(bytes(32)) is None
    assert pool.size_bytes == len(tx.encode())
    assert pool.status() == {"count": 1, "bytes": len(tx.encode()), "ready": 1, "queued": 0,
                             "senders": 1}
    assert pool.pending_nonce(ALICE.address) == 1
    assert pool.pending_nonce(BOB.address) == 0  # not pooled: the committed nonce


def test_replay_of_a_pooled_transaction_is_already_known(tc: TestChain) -> None:
    pool = pool_of(tc)
    tx = pay(tc, ALICE, 0)
    pool.add(tx)
    err = refused(pool, fresh(tx))
    assert err.code == Code.ALREADY_KNOWN == "already_known"
    assert str(err) == err.reason == f"transaction {tx.hash.hex()} is already in the mempool"


def test_replay_of_a_committed_transaction_is_nonce_too_low(tc: TestChain) -> None:
    tx = pay(tc, ALICE, 0)
    tc.run([tx])
    err = refused(pool_of(tc), fresh(tx))
    assert err.code == Code.NONCE_TOO_LOW
    assert err.reason == "nonce 0 is already used: the account's next nonce is 1"


def test_wrong_chain_id_is_invalid(tc: TestChain) -> None:
    tx = Transaction.create(ALICE, "other-chain", 0, Transfer(BOB.address, 1), gas_limit=GAS,
                            gas_price=1)
    err = refused(pool_of(tc), tx)
    assert err.code == Code.INVALID
    assert err.reason == f"transaction is for chain 'other-chain', this is chain {CHAIN!r}"


def test_forged_signature_is_invalid(tc: TestChain) -> None:
    tx = pay(tc, ALICE, 0, amount=1)
    forged = dataclasses.replace(tx, action=Transfer(BOB.address, 10**6))  # same signature
    err = refused(pool_of(tc), forged)
    assert err.code == Code.INVALID
    assert err.reason == "transaction signature does not verify"


def test_gas_limit_below_intrinsic_gas_is_invalid(tc: TestChain) -> None:
    err = refused(pool_of(tc), pay(tc, ALICE, 0, gas_limit=100))
    assert err.code == Code.INVALID
    assert err.reason.startswith("gas limit 100 is below the intrinsic gas")


def test_larger_than_the_whole_pool_is_too_large(tc: TestChain) -> None:
    tx = pay(tc, ALICE, 0)
    err = refused(pool_of(tc, max_bytes=100), tx)
    assert err.code == Code.TOO_LARGE
    assert err.reason == f"transaction is {len(tx.encode())} bytes, the mempool holds at most 100"


@pytest.fixture
def verified_keys(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """The public keys of every signature check made from here on, in order."""
    calls: list[bytes] = []
    real_verify = chain.tx.verify

    def counting_verify(public_key: bytes, message: bytes, signature: bytes) -> bool:
        calls.append(public_key)
        return real_verify(public_key, message, signature)

    monkeypatch.setattr(chain.tx, "verify", counting_verify)
    return calls


def test_a_flood_past_a_full_pool_costs_no_signature_checks(
        tc: TestChain, verified_keys: list[bytes]) -> None:
    """Overloaded, a node refused each transaction past a full pool only after
    verifying its signature: a flood cost an ed25519 check apiece. Now a transaction
    that would need room nothing cheaper can give is refused first; one that can evict
    is still verified before it does."""
    calls = verified_keys
    pool = pool_of(tc, max_txs=2)
    pool.add(pay(tc, BOB, 0, price=5))
    pool.add(pay(tc, CAROL, 0, price=5))
    calls.clear()
    flood = [pay(tc, ALICE, 0, price=p, memo=str(i)) for i, p in enumerate([1, 5, 5, 2])]
    assert [refused(pool, tx).code for tx in flood] == [Code.POOL_FULL] * 4
    assert calls == []
    richer = pay(tc, ALICE, 0, price=6)
    dropped = pool.add(richer)  # evicts one of the 5s, after its signature checked out
    assert calls == [ALICE.public_key] and [d.code for d in dropped] == [Code.EVICTED]


def test_signature_is_verified_once_per_transaction(tc: TestChain,
                                                    verified_keys: list[bytes]) -> None:
    calls = verified_keys
    pool = pool_of(tc, max_txs=1)
    occupant = pay(tc, BOB, 0, price=5)
    pool.add(occupant)
    tx = pay(tc, ALICE, 0, price=1)
    assert refused(pool, fresh(tx)).code == Code.POOL_FULL  # no room: not verified
    assert refused(pool, fresh(tx)).code == Code.POOL_FULL  # gossiped again
    pool.remove([occupant.hash])
    pool.add(fresh(tx))
    assert refused(pool, fresh(tx)).code == Code.ALREADY_KNOWN
    tc.run([fresh(tx)])  # block execution checks it too
    assert calls == [BOB.public_key, ALICE.public_key]


# ----------------------------------------------------------------------- nonces


def test_nonce_gap_is_queued_then_promoted_when_filled(tc: TestChain) -> None:
    pool = pool_of(tc)
    txs = [pay(tc, ALICE, n) for n in range(3)]
    pool.add(txs[2])
    assert pool.status()["ready"] == 0 and pool.status()["queued"] == 1
    assert pool.pending_nonce(ALICE.address) == 0
    assert pool.reap(**UNLIMITED) == []
    pool.add(txs[0])
    assert (pool.status()["ready"], pool.status()["queued"]) == (1, 1)
    assert pool.reap(**UNLIMITED) == [txs[0]]
    pool.add(txs[1])
    assert (pool.status()["ready"], pool.status()["queued"]) == (3, 0)
    assert pool.pending_nonce(ALICE.address) == 3
    assert pool.reap(**UNLIMITED) == txs


def test_nonce_too_far_ahead_is_a_nonce_gap(tc: TestChain) -> None:
    pool = pool_of(tc, max_nonce_ahead=3)
    err = refused(pool, pay(tc, ALICE, 4))
    assert err.code == Code.NONCE_GAP
    assert err.reason == ("nonce 4 is too far ahead: the sender's next nonce is 0 and at "
                          "most 3 more may wait behind a gap")
    pool.add(pay(tc, ALICE, 3))  # just within
    for n in range(3):
        pool.add(pay(tc, ALICE, n))
    # The window moves with the ready run, not with the committed nonce.
    assert pool.pending_nonce(ALICE.address) == 4
    pool.add(pay(tc, ALICE, 7))
    assert "the sender's next nonce is 4" in refused(pool, pay(tc, ALICE, 8)).reason


# ----------------------------------------------------------------------- balance


def test_insufficient_balance_for_one_transaction(tc: TestChain) -> None:
    err = refused(pool_of(tc), pay(tc, POOR, 0, amount=POOR_BALANCE))
    assert err.code == Code.INSUFFICIENT_BALANCE
    assert err.reason == (f"balance {POOR_BALANCE} cannot pay up to {GAS + POOR_BALANCE} "
                          f"(max fee {GAS} + value {POOR_BALANCE}) on top of 0 for the "
                          "sender's pending transactions with lower nonces")


def test_insufficient_balance_counts_the_pending_transactions(tc: TestChain) -> None:
    pool = pool_of(tc)
    pool.add(pay(tc, POOR, 0, amount=0))
    pool.add(pay(tc, POOR, 1, amount=0))
    err = refused(pool, pay(tc, POOR, 2, amount=0))  # alone it is affordable
    assert err.code == Code.INSUFFICIENT_BALANCE
    assert err.reason == (f"balance {POOR_BALANCE} cannot pay up to {GAS} (max fee {GAS} + "
                          f"value 0) on top of {2 * GAS} for the sender's pending "
                          "transactions with lower nonces")


def test_gap_filler_drops_the_higher_nonces_it_makes_unaffordable(tc: TestChain) -> None:
    """Lower nonces win, so the pool ends up as if the transactions came in order."""
    t0 = pay(tc, POOR, 0, amount=200_000)  # 1.2M, then 1M each: the third does not fit
    t1, t2 = pay(tc, POOR, 1, amount=0), pay(tc, POOR, 2, amount=0)
    in_order = pool_of(tc)
    in_order.add(t0)
    in_order.add(t1)
    assert refused(in_order, t2).code == Code.INSUFFICIENT_BALANCE

    out_of_order = pool_of(tc)
    out_of_order.add(t2)
    out_of_order.add(t1)
    assert out_of_order.add(t0) == [Dropped(
        t2, Code.INSUFFICIENT_BALANCE,
        f"balance {POOR_BALANCE} no longer covers it after nonce 0 was admitted")]
    assert set(pool_hashes(out_of_order)) == set(pool_hashes(in_order)) == {t0.hash, t1.hash}
    assert out_of_order.reap(**UNLIMITED) == [t0, t1]


# ----------------------------------------------------------------------- replacement


def test_replacement_needs_the_price_bump(tc: TestChain) -> None:
    pool = pool_of(tc, replace_bump_percent=10)
    old = pay(tc, ALICE, 0, price=10)
    pool.add(old)
    err = refused(pool, pay(tc, ALICE, 0, price=10, amount=2))
    assert err.code == Code.UNDERPRICED_REPLACEMENT
    assert err.reason == ("replacing nonce 0 needs a gas price of at least 11 (10% over 10), "
                          "got 10")
    new = pay(tc, ALICE, 0, price=11, amount=2)
    assert pool.add(new) == [Dropped(old, Code.REPLACED,
                                     f"replaced by {new.hash.hex()} with gas price 11")]
    assert old.hash not in pool and pool.get(new.hash) is new
    assert len(pool) == 1 and pool.size_bytes == len(new.encode())


def test_replacement_that_costs_more_drops_what_it_makes_unaffordable(tc: TestChain) -> None:
    pool = pool_of(tc)
    t0, t1 = pay(tc, POOR, 0, amount=0), pay(tc, POOR, 1, amount=0)
    pool.add(t0)
    pool.add(t1)
    dearer = pay(tc, POOR, 0, price=2, amount=0)  # 2M: with nonce 1, over the balance
    assert [(d.tx, d.code) for d in pool.add(dearer)] == [
        (t0, Code.REPLACED), (t1, Code.INSUFFICIENT_BALANCE)]
    assert pool_hashes(pool) == [dearer.hash]


# ----------------------------------------------------------------------- limits


def test_sender_limit(tc: TestChain) -> None:
    pool = pool_of(tc, max_per_sender=3)
    for n in range(3):
        pool.add(pay(tc, ALICE, n))
    err = refused(pool, pay(tc, ALICE, 3))
    assert err.code == Code.SENDER_LIMIT
    assert err.reason == "the sender already has 3 transactions in the mempool, the limit"
    pool.add(pay(tc, ALICE, 2, price=2))  # a replacement does not add one
    pool.add(pay(tc, BOB, 0))  # other senders are not limited by Alice
    assert len(pool) == 4


def test_gap_filler_at_the_sender_limit_displaces_the_highest_nonce(tc: TestChain) -> None:
    """Otherwise a sender whose gap opened at the limit could never fill it."""
    pool = pool_of(tc, max_per_sender=3)
    t0, t1, t2, t3 = (pay(tc, ALICE, n) for n in range(4))
    for tx in (t0, t2, t3):
        pool.add(tx)
    assert pool.add(t1) == [Dropped(t3, Code.SENDER_LIMIT,
                                    "displaced by the lower nonce 1: the sender is at the "
                                    "limit of 3 transactions")]
    assert pool.reap(**UNLIMITED) == [t0, t1, t2]


def test_full_pool_evicts_the_cheapest_tail_of_another_sender(tc: TestChain) -> None:
    pool = pool_of(tc, max_txs=3)
    alice0, bob0, carol0 = pay(tc, ALICE, 0, price=5), pay(tc, BOB, 0, price=2), \
        pay(tc, CAROL, 0, price=3)
    for tx in (alice0, bob0, carol0):
        pool.add(tx)
    alice1 = pay(tc, ALICE, 1, price=4)
    assert pool.add(alice1) == [Dropped(
        bob0, Code.EVICTED, f"evicted for {alice1.hash.hex()} with gas price 4: the mempool "
        "is full")]
    assert set(pool_hashes(pool)) == {alice0.hash, alice1.hash, carol0.hash}
    err = refused(pool, pay(tc, DAVE, 0, price=3))  # Carol's 3 is not strictly cheaper
    assert err.code == Code.POOL_FULL
    assert err.reason == (f"the mempool is full (3 transactions, {pool.size_bytes} bytes) "
                          "and holds nothing evictable cheaper than gas price 3 (counting the "
                          "sender's lower nonces)")


def test_full_pool_never_evicts_a_transaction_other_nonces_depend_on(tc: TestChain) -> None:
    pool = pool_of(tc, max_txs=3)
    bob0, bob1, carol0 = (pay(tc, BOB, 0, price=1), pay(tc, BOB, 1, price=9),
                          pay(tc, CAROL, 0, price=6))
    for tx in (bob0, bob1, carol0):
        pool.add(tx)
    # Bob's nonce 0 is the cheapest, but removing it would strand his nonce 1. His
    # tail, nonce 1, runs only after nonce 0, so it is worth what nonce 0 bids (1), not
    # its own 9: the tail goes, nonce 0 stays.
    assert refused(pool, pay(tc, ALICE, 0, price=1)).code == Code.POOL_FULL
    assert [d.tx for d in pool.add(pay(tc, ALICE, 0, price=5))] == [bob1]
    assert bob0.hash in pool and carol0.hash in pool


def test_full_pool_by_bytes_evicts_as_many_as_needed_or_none(tc: TestChain) -> None:
    bob0, bob1, carol0 = (pay(tc, BOB, 0, price=5), pay(tc, BOB, 1, price=1),
                          pay(tc, CAROL, 0, price=3))
    limit = sum(len(tx.encode()) for tx in (bob0, bob1, carol0))
    big_memo = "m" * (len(bob0.encode()) // 2)  # needs the room of two small ones
    pool = pool_of(tc, max_bytes=limit)
    for tx in (bob0, bob1, carol0):
        pool.add(tx)
    # Bob's tail (1) would go, but then the cheapest tail is Carol's 3: not below 2, so
    # nothing goes at all.
    assert refused(pool, pay(tc, ALICE, 0, price=2, memo=big_memo)).code == Code.POOL_FULL
    assert pool.status()["ready"] == 3
    big = pay(tc, ALICE, 0, price=4, memo=big_memo)
    assert [d.tx for d in pool.add(big)] == [bob1, carol0]
    assert set(pool_hashes(pool)) == {big.hash, bob0.hash}
    assert pool.size_bytes <= limit


# ----------------------------------------------------------------------- reap


def ordering_pool(tc: TestChain) -> tuple[Mempool, dict[str, Transaction]]:
    pool = pool_of(tc)
    txs = {
        "a0": pay(tc, ALICE, 0, price=1), "a1": pay(tc, ALICE, 1, price=10),
        "b0": pay(tc, BOB, 0, price=5, gas_limit=5 * GAS), "c0": pay(tc, CAROL, 0, price=5),
        "b1": pay(tc, BOB, 1, price=5), "d2": pay(tc, DAVE, 2, price=99),  # queued
    }
    for tx in txs.values():
        pool.add(tx)
    return pool, txs


def test_reap_orders_by_gas_price_then_nonce_ties_by_arrival(tc: TestChain) -> None:
    pool, t = ordering_pool(tc)
    expected = [t["b0"], t["c0"], t["b1"], t["a0"], t["a1"]]  # Alice's 10 waits for her 1
    assert pool.reap(**UNLIMITED) == expected
    assert pool.reap(**UNLIMITED) == expected  # reaping does not change the pool
    again, _ = ordering_pool(tc)
    assert again.reap(**UNLIMITED) == expected


def test_reap_respects_the_limits(tc: TestChain) -> None:
    pool, t = ordering_pool(tc)
    assert pool.reap(max_bytes=10**9, max_gas=10**18, max_txs=2) == [t["b0"], t["c0"]]
    # Bob's nonce 0 asks for more gas than the block has: his nonce 1 must wait too.
    assert pool.reap(max_bytes=10**9, max_gas=3 * GAS, max_txs=10) == [t["c0"], t["a0"], t["a1"]]
    two = len(t["b0"].encode()) + len(t["c0"].encode())
    assert pool.reap(max_bytes=two, max_gas=10**18, max_txs=10) == [t["b0"], t["c0"]]


def test_reap_leaves_out_the_freshly_admitted_unless_nothing_older_is_ready(
        tc: TestChain) -> None:
    """A proposal built of transactions the other validators have not had by gossip
    yet makes them fetch those before voting: ``settled`` leaves out what came in the
    last moment (with its sender's later nonces), unless nothing older is ready."""
    now = [100.0]
    pool = Mempool(tc.executor, invalid_tx=InvalidTx, clock=lambda: now[0])
    old = [pay(tc, ALICE, 0), pay(tc, ALICE, 1)]
    for tx in old:
        pool.add(tx)
    now[0] = 100.5
    fresh_bob, fresh_alice = pay(tc, BOB, 0, price=9), pay(tc, ALICE, 2, price=9)
    pool.add(fresh_bob)
    pool.add(fresh_alice)
    now[0] = 100.51
    assert pool.reap(**UNLIMITED, settled=0.05) == old
    assert pool.reap(**UNLIMITED) == [fresh_bob, *old, fresh_alice]
    now[0] = 100.6  # settled now
    assert pool.reap(**UNLIMITED, settled=0.05) == [fresh_bob, *old, fresh_alice]
    lone = Mempool(tc.executor, invalid_tx=InvalidTx, clock=lambda: now[0])
    lone.add(fresh_bob)
    assert lone.reap(**UNLIMITED, settled=0.05) == [fresh_bob]  # nothing older: taken
    # A batch is gossiped once all of it is in: stamp() makes its first ones as fresh
    # as its last.
    pool.stamp([old[1].hash])
    now[0] = 100.62
    assert pool.reap(**UNLIMITED, settled=0.05) == [fresh_bob, old[0]]


# ----------------------------------------------------------------------- blocks


def test_update_removes_committed_transactions(tc: TestChain) -> None:
    pool = pool_of(tc)
    alice = [pay(tc, ALICE, n) for n in range(3)]
    bob0 = pay(tc, BOB, 0, price=2)
    for tx in [*alice, bob0]:
        pool.add(tx)
    block = pool.reap(max_bytes=10**9, max_gas=10**18, max_txs=2)
    assert block == [bob0, alice[0]]
    tc.run([fresh(tx) for tx in block])
    assert pool.update(fresh(tx) for tx in block) == []
    assert pool_hashes(pool) == [alice[1].hash, alice[2].hash]
    assert pool.status() == {"count": 2, "bytes": pool.size_bytes, "ready": 2, "queued": 0,
                             "senders": 1}
    assert pool.pending_nonce(ALICE.address) == 3 and pool.pending_nonce(BOB.address) == 1
    assert pool.reap(**UNLIMITED) == alice[1:]


def test_update_drops_used_nonces_and_what_the_balance_no_longer_covers(tc: TestChain) -> None:
    pool = pool_of(tc)
    ours = [pay(tc, POOR, 0, amount=0), pay(tc, POOR, 1, amount=0)]
    for tx in ours:
        pool.add(tx)
    alice1 = pay(tc, ALICE, 1)
    pool.add(alice1)  # queued behind Alice's nonce 0, which this pool never sees
    # Transactions this pool never saw spend POOR's nonce 0 and most of the balance.
    theirs = [pay(tc, POOR, 0, amount=2_000_000, gas_limit=10_000), pay(tc, ALICE, 0)]
    tc.run(theirs)
    nonce, balance = tc.executor.account(POOR.address)
    assert nonce == 1 and balance < GAS
    assert (pool.status()["ready"], pool.status()["queued"]) == (2, 1)  # not updated yet
    dropped = pool.update(theirs)
    assert dropped == [
        Dropped(ours[0], Code.NONCE_TOO_LOW, "nonce 0 is used: the account is at 1"),
        Dropped(ours[1], Code.INSUFFICIENT_BALANCE,
                f"balance {balance} no longer covers it: {GAS} for this and the lower nonces"),
    ]
    assert pool_hashes(pool) == [alice1.hash]
    assert pool.status()["ready"] == 1  # Alice's gap was filled by the block
    assert pool.reap(**UNLIMITED) == [alice1]


def test_update_rereads_only_the_accounts_the_block_changed(tc: TestChain) -> None:
    """The executor names the accounts a committed block changed; the pool re-reads
    only those senders (it read every pooled sender once per block: 2,000 state reads
    a block under load) and drops the same as a full re-check would."""
    pool = pool_of(tc)
    ours = [pay(tc, POOR, 0, amount=0), pay(tc, POOR, 1, amount=0)]
    carol = pay(tc, CAROL, 0)
    for tx in [*ours, carol]:
        pool.add(tx)
    theirs = [pay(tc, POOR, 0, amount=2_000_000, gas_limit=10_000)]
    tc.run(theirs)
    changed = tc.executor.changed_accounts
    assert POOR.address in changed and CAROL.address not in changed
    app, reads = pool.app, []

    class Counting:
        def check_stateless(self, tx: Transaction) -> None:
            app.check_stateless(tx)

        def check_recipient(self, tx: Transaction) -> None:
            app.check_recipient(tx)

        def account(self, address: bytes) -> tuple[int, int]:
            reads.append(address)
            return app.account(address)

    pool.app = Counting()
    dropped = pool.update(theirs, changed)
    assert reads == [POOR.address]
    assert [d.code for d in dropped] == [Code.NONCE_TOO_LOW, Code.INSUFFICIENT_BALANCE]
    assert pool_hashes(pool) == [carol.hash]


def test_remove_leaves_higher_nonces_queued(tc: TestChain) -> None:
    pool = pool_of(tc)
    txs = [pay(tc, ALICE, n) for n in range(3)]
    for tx in txs:
        pool.add(tx)
    assert pool.remove([txs[1].hash, bytes(32)]) == 1
    assert (pool.status()["ready"], pool.status()["queued"]) == (1, 1)
    assert pool.reap(**UNLIMITED) == [txs[0]]
    pool.add(txs[1])
    assert pool.reap(**UNLIMITED) == txs


# ----------------------------------------------------------------------- properties


class FakeInvalid(Exception):
    pass


class FakeApp:
    """Committed accounts the test changes itself; ``check_stateless`` refuses memo
    "bad"."""

    def __init__(self, balances: list[int]) -> None:
        self.accounts = {k.address: [0, b] for k, b in zip(KEYS, balances, strict=True)}

    def check_stateless(self, tx: Transaction) -> None:
        if tx.memo == "bad":
            raise FakeInvalid("bad memo")

    def check_recipient(self, tx: Transaction) -> None:
        pass

    def account(self, address: bytes) -> tuple[int, int]:
        nonce, balance = self.accounts[address]
        return nonce, balance

    def apply(self, tx: Transaction) -> None:
        """Execute ``tx`` as a block would, failing if it could not be applied."""
        account = self.accounts[tx.sender_address]
        assert tx.nonce == account[0], "reaped out of nonce order"
        assert account[1] >= tx.max_fee + tx.value, "reaped a transaction it cannot pay"
        account[0] += 1
        account[1] -= tx.max_fee + tx.value


KEYS = [key(f"mempool-prop-{i}") for i in range(4)]
UNSIGNED = bytes(64)  # the fake application does not verify signatures

# What each kind of operation draws; adds are the most frequent, so the pool fills up.
OPERATIONS = {
    # sender, nonce relative to the pool's next one for the sender, gas price, amount, memo
    "add": st.tuples(st.integers(0, 3), st.sampled_from([-1, 0, 0, 0, 1, 2, 3]),
                     st.integers(1, 5), st.integers(0, 30),
                     st.sampled_from(["", "", "", "", "bad", "x" * 80])),
    "commit": st.tuples(st.integers(0, 5)),  # how many to reap into the block
    "foreign": st.tuples(st.integers(0, 3), st.integers(0, 60)),  # sender, spent
    "remove": st.tuples(st.integers(0, 20)),
    "again": st.tuples(st.integers(0, 20)),  # gossip delivers a seen one once more
}
ops = st.lists(
    st.sampled_from(["add"] * 8 + ["commit", "commit", "foreign", "remove", "again"])
    .flatmap(lambda kind: OPERATIONS[kind].map(lambda args: (kind, *args))),
    min_size=20, max_size=60)


def check_invariants(pool: Mempool, app: FakeApp) -> None:
    pooled = list(pool)
    assert len(pool) == len(pooled) == pool.status()["count"] <= pool.max_txs
    assert pool.size_bytes == sum(len(tx.encode()) for tx in pooled) <= pool.max_bytes
    ready = 0
    for k in KEYS:
        nonce, balance = app.account(k.address)
        mine = sorted(tx.nonce for tx in pooled if tx.sender_address == k.address)
        assert len(mine) <= pool.max_per_sender and len(set(mine)) == len(mine)
        assert all(n >= nonce for n in mine)
        assert sum(tx.max_fee + tx.value for tx in pooled
                   if tx.sender_address == k.address) <= balance
        run = nonce
        while run in mine:
            run += 1
        assert pool.pending_nonce(k.address) == run
        ready += run - nonce
    assert pool.status()["ready"] == ready
    assert pool.status()["queued"] == len(pooled) - ready
    assert pool._queued == pool.status()["queued"]  # kept exact, not recounted
    # Eviction bookkeeping: each sender's worth is its cheapest transaction, and its
    # tail is in the heap at that worth (so _cheapest_tail finds the true minimum).
    live = {(item[0], item[3].hash) for item in pool._tails}
    for sender in pool._senders.values():
        assert sender.min_price == min(e.gas_price for e in sender.txs.values())
        assert (sender.min_price, sender.txs[sender.last].hash) in live
    cheapest = pool._cheapest_tail()
    assert (cheapest[0] if cheapest else None) == min(
        (s.min_price for s in pool._senders.values()), default=None)
    # Reaping everything gives exactly the ready transactions, each sender's in nonce
    # order from the committed nonce, and each the dearest of the senders' next ones.
    reaped = pool.reap(**UNLIMITED)
    assert len(reaped) == ready
    heads = {k.address: app.account(k.address)[0] for k in KEYS}
    by_key = {(tx.sender_address, tx.nonce): tx for tx in pooled}
    for tx in reaped:
        assert tx.nonce == heads[tx.sender_address]
        waiting = [by_key[a, n].gas_price for a, n in heads.items() if (a, n) in by_key]
        assert tx.gas_price == max(waiting)
        heads[tx.sender_address] += 1


@settings(max_examples=300)  # a few ms each; fewer miss the rarer drops
@given(st.lists(st.sampled_from([0, 60, 150, 400, 10_000]), min_size=4, max_size=4), ops)
def test_random_operations_keep_the_invariants(balances: list[int], script: list) -> None:
    app = FakeApp(balances)
    pool = Mempool(app, invalid_tx=FakeInvalid, max_txs=6, max_bytes=5 * 180,
                   max_per_sender=4, max_nonce_ahead=2)
    seen: list[Transaction] = []

    def attempt(tx: Transaction) -> Code | None:
        was_pooled = tx.hash in pool
        try:
            dropped = pool.add(tx)
        except TxRejected as exc:
            assert exc.code in set(Code) - {Code.REPLACED, Code.EVICTED}
            if exc.code == Code.POOL_FULL and len(pool) == pool.max_txs and \
                    pool.size_bytes + len(tx.encode()) <= pool.max_bytes:
                # Room for one more by count only: nothing of another sender was worth
                # less than the newcomer (it would have been evicted).
                mine = pool._senders.get(tx.sender_address)
                value = mine.newcomer_value(tx.nonce, tx.gas_price) if mine else tx.gas_price
                assert all(s.min_price >= value for s in pool._senders.values()
                           if s is not mine)
            assert exc.code != Code.INVALID or tx.memo == "bad"
            assert (exc.code == Code.ALREADY_KNOWN) == was_pooled
            event(f"refused: {exc.code}")
            return exc.code
        assert tx.memo != "bad"
        for d in dropped:
            event(f"dropped on add: {d.code}")
        return None

    for op in script:
        if op[0] == "add":
            _, who, ahead, price, amount, memo = op
            sender = KEYS[who]
            nonce = max(0, pool.pending_nonce(sender.address) + ahead)
            tx = Transaction(CHAIN, sender.public_key, nonce, 10, price,
                             Transfer(BOB.address, amount), memo, UNSIGNED)
            seen.append(tx)
            attempt(tx)
        elif op[0] == "again" and seen:
            attempt(fresh(seen[op[1] % len(seen)]))
        elif op[0] == "commit":
            block = pool.reap(max_bytes=10**9, max_gas=10**9, max_txs=op[1])
            for tx in block:
                app.apply(tx)
            for d in pool.update(block):
                event(f"dropped on update: {d.code}")
            assert not any(tx.hash in pool for tx in block)
        elif op[0] == "foreign":  # a transaction this pool never saw commits
            account = app.accounts[KEYS[op[1]].address]
            account[0] += 1
            account[1] = max(0, account[1] - op[2])
            for d in pool.update([]):
                event(f"dropped on update: {d.code}")
        elif op[0] == "remove" and len(pool):
            hashes = sorted(pool_hashes(pool))
            assert pool.remove([hashes[op[1] % len(hashes)]]) == 1
        check_invariants(pool, app)


def test_a_dear_tail_behind_a_gap_does_not_shield_a_queue_of_cheap_junk() -> None:
    """Hostile test (attack2e_tailshield): eviction compared only each sender's tail
    price. Senders who never sent nonce 0 filled a pool with nonces 1..15 at price 1
    behind a tail at price 1000: nothing of theirs could run or be evicted, they paid
    nothing, and a legitimate transaction at any price up to 1000 was refused
    pool_full. A tail is now worth its sender's cheapest transaction."""
    attackers = [key(f"mempool-shield-{i}") for i in range(4)]
    tc = TestChain(genesis=make_genesis({k.address: RICH for k in [ALICE, *attackers]}))
    pool = pool_of(tc, max_txs=64, max_nonce_ahead=16, max_queued=64)  # no quota here
    for attacker in attackers:
        for n in range(1, 17):  # nonce 0 never sent: all queued behind a gap
            pool.add(pay(tc, attacker, n, price=1000 if n == 16 else 1))
    assert len(pool) == 64 and pool.status()["ready"] == 0
    victim = pay(tc, ALICE, 0, price=2)
    [evicted] = pool.add(victim)
    assert evicted.code == Code.EVICTED and evicted.tx.gas_price == 1000  # a tail worth 1
    assert victim.hash in pool and len(pool) == 64


def test_transactions_behind_gaps_may_hold_only_a_quarter_of_the_pool() -> None:
    """The same attack with every nonce at price 1000: worth 1000 each, never run, never
    paid for. At most max_queued (a quarter of the pool by default) are admitted; the
    rest of the pool stays for transactions that can run."""
    attackers = [key(f"mempool-park-{i}") for i in range(4)]
    honest = [key(f"mempool-honest-{i}") for i in range(48)]
    tc = TestChain(genesis=make_genesis({k.address: RICH for k in [*attackers, *honest]}))
    pool = pool_of(tc, max_txs=64, max_nonce_ahead=16)
    assert pool.max_queued == 16
    refusals = []
    for attacker in attackers:
        for n in range(1, 17):
            try:
                pool.add(pay(tc, attacker, n, price=1000))
            except TxRejected as exc:
                refusals.append(exc)
    assert len(pool) == 16 and len(refusals) == 48
    assert {e.code for e in refusals} == {Code.NONCE_GAP}
    assert "send the missing nonces first" in refusals[0].reason
    for k in honest:  # ready ones at a low price still find room
        pool.add(pay(tc, k, 0, price=1))
    assert len(pool) == 64 and pool.status()["ready"] == 48
    # A gap filled makes room for more queued ones once the next block counts again.
    tc.run([pay(tc, attackers[0], 0, price=1000)])
    pool.update([], tc.executor.changed_accounts)
    assert pool.status()["queued"] == 0 and pool.status()["ready"] == 64
    pool.add(pay(tc, attackers[1], 0, price=1000))  # evicts an honest tail worth 1


def test_a_dear_tail_does_not_shield_its_senders_cheap_ready_queue(tc: TestChain) -> None:
    """The same with the queue ready: Bob's tail bids 1000 but runs only after his
    nonces at price 1, so it is worth 1 when room is needed."""
    pool = pool_of(tc, max_txs=4)
    for n in range(3):
        pool.add(pay(tc, BOB, n, price=1))
    bob3 = pay(tc, BOB, 3, price=1000)
    pool.add(bob3)
    [evicted] = pool.add(pay(tc, CAROL, 0, price=2))
    assert evicted.tx == bob3
    # Carol's own nonce 1 at a high price is worth what her nonce 0 bids (2): Bob's
    # new tail (1) goes for it, but not a tail at 2.
    assert [d.tx.nonce for d in pool.add(pay(tc, CAROL, 1, price=500))] == [2]
    assert refused(pool, pay(tc, ALICE, 0, price=1)).code == Code.POOL_FULL


def test_a_forged_transaction_is_told_invalid_before_any_code_that_invites_a_retry(
        tc: TestChain) -> None:
    """Hostile test (attack4_broadcast_txs): with the signature checked after the pool's
    own checks, a forged transaction or one for another chain was told nonce_gap,
    nonce_too_low or insufficient_balance — and a client retries a nonce gap. Only a
    full pool (a flood must not cost a verification each) still answers first."""
    pool = pool_of(tc, max_txs=2)
    tc.run([pay(tc, ALICE, 0)])
    pool.update([], None)

    def forged(tx: Transaction) -> Transaction:
        return fresh(dataclasses.replace(tx, signature=bytes(64)))

    def other_chain(sender, nonce: int) -> Transaction:
        return Transaction.create(sender, "another-chain", nonce, Transfer(BOB.address, 1),
                                  gas_limit=GAS, gas_price=1)

    cases = {
        "used nonce": forged(pay(tc, ALICE, 0)),
        "far nonce": forged(pay(tc, ALICE, 40)),
        "unfunded": forged(pay(tc, key("mempool-nobody"), 0)),
        "other chain, far nonce": other_chain(ALICE, 40),
        "other chain, unfunded": other_chain(key("mempool-nobody"), 0),
    }
    for what, tx in cases.items():
        assert refused(pool, tx).code == Code.INVALID, what
    pool.add(pay(tc, BOB, 0, price=5))
    pool.add(pay(tc, CAROL, 0, price=5))
    # Full, and nothing pooled is worth less: refused for room, unverified.
    assert refused(pool, forged(pay(tc, ALICE, 1, price=2))).code == Code.POOL_FULL


def test_a_filled_gap_frees_its_place_in_the_queued_quota_at_once() -> None:
    """Review: the queued count only rose between blocks, so out-of-order delivery
    (nonce 1 before 0) from more senders than the quota was refused nonce_gap until the
    next block even though nothing waited behind a gap any more."""
    senders = [key(f"mempool-reorder-{i}") for i in range(20)]
    tc = TestChain(genesis=make_genesis({k.address: RICH for k in senders}))
    pool = pool_of(tc, max_queued=10)
    for k in senders:
        pool.add(pay(tc, k, 1))
        pool.add(pay(tc, k, 0))
    assert len(pool) == 40 and pool.status()["queued"] == 0
    # remove() opens gaps: they count against the quota at once.
    pool.remove([pay(tc, k, 0).hash for k in senders[:10]])
    assert pool.status()["queued"] == 10
    assert refused(pool, pay(tc, senders[10], 3)).code == Code.NONCE_GAP
