"""The block store: blocks, headers and certificates by height and hash, the tx index,
the account history index with paging, and what put_block refuses.

The chain is real: signed transactions, headers linked by prev_hash, tx and receipt
roots computed from the contents, and commit certificates of three of the four
validators (checked against the validator set when built).
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from storage_helpers import (
    ACCOUNTS,
    ALICE,
    BOB,
    CAROL,
    CHAIN,
    DAVE,
    SHOP,
    VALIDATORS,
    ChainBlock,
    certify,
    history_model,
    make_block,
    make_chain,
)

from chain.block import Block, Receipt
from chain.hashing import sha256
from chain.tx import Call, Deploy, Transaction, Transfer
from storage.blockstore import BlockStore, HistoryEntry, touched_addresses
from storage.errors import BatchError, InvalidArgument, OutOfOrder
from storage.kv import KVStore, LevelDBKV, MemoryKV
from storage.state import StateTree

N = 12
CHAIN_BLOCKS = make_chain(N, seed=2)
MODEL = history_model(CHAIN_BLOCKS)
ADDRESSES = [a.address for a in ACCOUNTS] + [SHOP]


def put_all(store: BlockStore, blocks: list[ChainBlock]) -> None:
    for cb in blocks:
        with store.kv.batch() as b:
            store.put_block(b, cb.block, cb.commit, cb.receipts)


@pytest.fixture(params=["memory", "leveldb"])
def kv(request: pytest.FixtureRequest, tmp_path: Path):
    kv = MemoryKV() if request.param == "memory" else LevelDBKV(tmp_path / "db")
    yield kv
    kv.close()


@pytest.fixture
def store(kv: KVStore) -> BlockStore:
    s = BlockStore(kv)
    put_all(s, CHAIN_BLOCKS)
    return s


def next_block(txs: list[Transaction] | None = None) -> ChainBlock:
    if txs is None:
        txs = [Transaction.create(ALICE, CHAIN, 1_000, Transfer(BOB.address, 5),
                                  gas_limit=50_000, gas_price=1)]
    return make_block(N + 1, CHAIN_BLOCKS[-1], txs)


def snapshot(kv: KVStore) -> list[tuple[bytes, bytes]]:
    return list(kv.iterate())


def page_through(store: BlockStore, address: bytes, limit: int) -> list[list[HistoryEntry]]:
    pages = []
    before = None
    while True:
        page = store.history(address, limit=limit, before=before)
        if not page:
            return pages
        pages.append(page)
        assert len(pages) <= 200, "paging does not terminate"
        before = (page[-1].height, page[-1].index)


def as_tuples(entries: list[HistoryEntry]) -> list[tuple[int, int, bytes]]:
    return [(e.height, e.index, e.tx_hash) for e in entries]


# ---------------------------------------------------------------- the chain


def test_the_test_chain_is_varied() -> None:
    """The fixture chain covers what the index tests rely on."""
    txs = [tx for cb in CHAIN_BLOCKS for tx in cb.block.txs]
    assert any(len(cb.block.txs) == 0 for cb in CHAIN_BLOCKS)
    assert any(len(cb.block.txs) >= 4 for cb in CHAIN_BLOCKS)
    assert any(type(t.action) is Transfer and t.action.to == t.sender_address for t in txs)
    assert any(type(t.action) is Transfer and t.action.to != t.sender_address for t in txs)
    assert any(type(t.action) is Call for t in txs)
    assert any(type(t.action) is Deploy for t in txs)
    assert all(len(MODEL[a]) >= 8 for a in (ALICE.address, BOB.address, CAROL.address))


# -------------------------------------------------------------------- reads


def test_empty_store() -> None:
    store = BlockStore(MemoryKV())
    assert store.height == 0
    assert store.block(1) is None
    assert store.header(0) is None
    assert store.commit(1) is None
    assert store.height_of(CHAIN_BLOCKS[0].block.hash) is None
    assert store.block_by_hash(CHAIN_BLOCKS[0].block.hash) is None
    assert store.tx(sha256(b"x")) is None
    assert store.history(ALICE.address) == []


def test_blocks_headers_and_certificates_by_height(store: BlockStore) -> None:
    assert store.height == N
    for cb in CHAIN_BLOCKS:
        h = cb.block.height
        block = store.block(h)
        assert block == cb.block
        assert block is not None and block.encode() == cb.block.encode()
        assert store.header(h) == cb.block.header
        cert = store.commit(h)
        assert cert == cb.commit
        assert cert is not None
        cert.verify(CHAIN, VALIDATORS, height=h, block_hash=cb.block.hash)
        if h > 1:
            # Each stored block carries its parent's certificate, as stored.
            assert block.last_commit == store.commit(h - 1)
            assert block.header.prev_hash == store.header(h - 1).hash  # type: ignore[union-attr]
    for missing in (0, N + 1, N + 100, 2**64 - 1):
        assert store.block(missing) is None
        assert store.header(missing) is None
        assert store.commit(missing) is None


def test_blocks_and_headers_by_hash(store: BlockStore) -> None:
    for cb in CHAIN_BLOCKS:
        assert store.height_of(cb.block.hash) == cb.block.height
        assert store.block_by_hash(cb.block.hash) == cb.block
        assert store.header_by_hash(cb.block.hash) == cb.block.header
        assert store.commit(store.height_of(cb.block.hash)) == cb.commit  # type: ignore[arg-type]
    unknown = sha256(b"no such block")
    assert store.height_of(unknown) is None
    assert store.block_by_hash(unknown) is None
    assert store.header_by_hash(unknown) is None
    # A tx hash is not a block hash.
    tx_hash = next(tx.hash for cb in CHAIN_BLOCKS for tx in cb.block.txs)
    assert store.height_of(tx_hash) is None


def test_tx_index(store: BlockStore) -> None:
    count = 0
    for cb in CHAIN_BLOCKS:
        for i, tx in enumerate(cb.block.txs):
            rec = store.tx(tx.hash)
            assert rec is not None
            assert (rec.height, rec.index) == (cb.block.height, i)
            assert rec.tx == tx
            assert rec.tx.encode() == tx.encode()
            assert rec.receipt == cb.receipts[i]
            count += 1
    assert count >= 25
    assert store.tx(sha256(b"never sent")) is None
    assert store.tx(CHAIN_BLOCKS[0].block.hash) is None


def test_reopened_leveldb_reads_the_same(tmp_path: Path) -> None:
    kv = LevelDBKV(tmp_path / "db")
    put_all(BlockStore(kv), CHAIN_BLOCKS)
    kv.close()
    kv = LevelDBKV(tmp_path / "db", create=False)
    try:
        store = BlockStore(kv)
        assert store.height == N
        for cb in CHAIN_BLOCKS:
            assert store.block_by_hash(cb.block.hash) == cb.block
            assert store.commit(cb.block.height) == cb.commit
        for address in ADDRESSES:
            assert as_tuples(store.history(address, limit=1000)) == MODEL[address]
    finally:
        kv.close()


# ------------------------------------------------------------------ history


def test_history_is_newest_first_and_complete(store: BlockStore) -> None:
    for address in ADDRESSES:
        got = as_tuples(store.history(address, limit=1000))
        assert got == MODEL[address], address.hex()
        keys = [(h, i) for h, i, _ in got]
        assert keys == sorted(keys, reverse=True)
        assert len(set(keys)) == len(keys)
    assert store.history(sha256(b"nobody")[:20]) == []


def test_history_names_sender_and_recipient(store: BlockStore) -> None:
    seen_pair = seen_self = seen_call = seen_deploy = False
    for cb in CHAIN_BLOCKS:
        for i, tx in enumerate(cb.block.txs):
            entry = (cb.block.height, i, tx.hash)
            histories = {a: as_tuples(store.history(a, limit=1000)) for a in ADDRESSES}
            holders = {a for a, h in histories.items() if entry in h}
            action = tx.action
            if type(action) is Transfer:
                assert holders == {tx.sender_address, action.to}
                if action.to == tx.sender_address:
                    seen_self = True
                    assert histories[action.to].count(entry) == 1  # once, not twice
                else:
                    seen_pair = True
            elif type(action) is Call:
                assert holders == {tx.sender_address, SHOP}
                seen_call = True
            else:
                assert holders == {tx.sender_address}
                seen_deploy = True
            assert touched_addresses(tx) == holders
    assert seen_pair and seen_self and seen_call and seen_deploy


def test_history_limit(store: BlockStore) -> None:
    full = MODEL[ALICE.address]
    assert as_tuples(store.history(ALICE.address)) == full[:50]
    assert as_tuples(store.history(ALICE.address, limit=1)) == full[:1]
    assert as_tuples(store.history(ALICE.address, limit=5)) == full[:5]
    assert store.history(ALICE.address, limit=0) == []
    assert store.history(ALICE.address, limit=-3) == []


@pytest.mark.parametrize("limit", [1, 2, 3, 7])
def test_history_paging_returns_every_entry_once(store: BlockStore, limit: int) -> None:
    for address in ADDRESSES:
        pages = page_through(store, address, limit)
        flat = [e for page in pages for e in page]
        assert as_tuples(flat) == MODEL[address]  # in order, no gaps, no duplicates
        assert all(len(p) == limit for p in pages[:-1])
        assert pages and 1 <= len(pages[-1]) <= limit


@functools.cache
def _shared_memory_store() -> BlockStore:
    store = BlockStore(MemoryKV())
    put_all(store, CHAIN_BLOCKS)
    return store


@settings(max_examples=60)
@given(limit=st.integers(1, 40), who=st.sampled_from(ADDRESSES))
def test_history_paging_any_page_size(limit: int, who: bytes) -> None:
    store = _shared_memory_store()
    flat = [e for page in page_through(store, who, limit) for e in page]
    assert as_tuples(flat) == MODEL[who]


def test_history_before_cursor_edges(store: BlockStore) -> None:
    full = MODEL[BOB.address]

    def older_than(h: int, i: int) -> list[tuple[int, int, bytes]]:
        return [e for e in full if (e[0], e[1]) < (h, i)]

    assert store.history(BOB.address, before=(0, 0)) == []
    assert store.history(BOB.address, before=(1, 0)) == []
    assert as_tuples(store.history(BOB.address, before=(N + 5, 0), limit=1000)) == full
    assert as_tuples(store.history(BOB.address, before=(2**63, 2**31), limit=1000)) == full
    for h in range(1, N + 2):
        for i in (0, 1, 2, 3, 6, 1000):
            got = as_tuples(store.history(BOB.address, before=(h, i), limit=1000))
            assert got == older_than(h, i), (h, i)


def test_custom_touched_lists(kv: KVStore) -> None:
    store = BlockStore(kv)
    put_all(store, CHAIN_BLOCKS[:2])
    extra = sha256(b"escrow contract")[:20]
    txs = [
        Transaction.create(CAROL, CHAIN, 500, Transfer(DAVE.address, 1), gas_limit=50_000,
                           gas_price=1),
        Transaction.create(ALICE, CHAIN, 500, Deploy(b"code", b"", 0), gas_limit=50_000,
                           gas_price=1),
        Transaction.create(BOB, CHAIN, 500, Call(SHOP, "pay", b"", 3), gas_limit=50_000,
                           gas_price=1),
    ]
    cb = make_block(3, CHAIN_BLOCKS[1], txs)
    touched = [[CAROL.address, extra], [], [BOB.address, SHOP, extra, extra]]
    with kv.batch() as b:
        store.put_block(b, cb.block, cb.commit, cb.receipts, touched=touched)
    model = history_model([*CHAIN_BLOCKS[:2], cb], touched={3: touched})
    for address in [*ADDRESSES, extra]:
        assert as_tuples(store.history(address, limit=1000)) == model.get(address, [])
    # The custom lists replace the default: Dave (the recipient) and Alice (a sender)
    # are not recorded for these transactions.
    assert all(e.height != 3 for e in store.history(DAVE.address, limit=1000))
    assert all(e.height != 3 for e in store.history(ALICE.address, limit=1000))
    assert as_tuples(store.history(extra)) == [(3, 2, txs[2].hash), (3, 0, txs[0].hash)]
    assert store.tx(txs[1].hash) is not None  # indexed by hash even when it touched nobody


# ------------------------------------------------------------ put_block refusals


def assert_refused(store: BlockStore, error: type[Exception], block: Block, commit,
                   receipts, touched=None) -> None:
    before = snapshot(store.kv)
    with store.kv.batch() as b:
        with pytest.raises(error):
            store.put_block(b, block, commit, receipts, touched)
        assert len(b) == 0  # nothing was added to the batch
    assert snapshot(store.kv) == before


def test_put_block_refuses_out_of_order_heights(store: BlockStore) -> None:
    following = next_block()
    skipping = make_block(N + 2, following, [])  # N + 1 is missing
    same_height = make_block(N, CHAIN_BLOCKS[-2], list(following.block.txs))
    genesis_again = make_block(1, None, [])
    last = CHAIN_BLOCKS[-1]  # the very block already stored, again
    for cb in (skipping, same_height, genesis_again, last):
        assert_refused(store, OutOfOrder, cb.block, cb.commit, cb.receipts)
    assert store.height == N
    assert store.block(N) == last.block


def test_first_block_must_be_height_one() -> None:
    store = BlockStore(MemoryKV())
    second = CHAIN_BLOCKS[1]
    assert_refused(store, OutOfOrder, second.block, second.commit, second.receipts)
    put_all(store, CHAIN_BLOCKS[:1])
    assert store.height == 1


def test_put_block_refuses_a_block_that_does_not_extend_the_chain(store: BlockStore) -> None:
    # A fork: block N' differs from the stored block N, and N+1 is built on N'.
    fork_parent = make_block(N, CHAIN_BLOCKS[-2], [])
    assert fork_parent.block.hash != CHAIN_BLOCKS[-1].block.hash
    orphan = make_block(N + 1, fork_parent, [])
    assert_refused(store, OutOfOrder, orphan.block, orphan.commit, orphan.receipts)
    assert store.height_of(orphan.block.hash) is None


def test_put_block_refuses_a_certificate_for_another_block(store: BlockStore) -> None:
    cb = next_block()
    wrong_hash = certify(N + 1, sha256(b"another block"))
    wrong_height = certify(N, cb.block.hash)
    parent_cert = CHAIN_BLOCKS[-1].commit
    for cert in (wrong_hash, wrong_height, parent_cert):
        assert_refused(store, OutOfOrder, cb.block, cert, cb.receipts)


def test_put_block_refuses_a_wrong_receipt_count(store: BlockStore) -> None:
    txs = [Transaction.create(k, CHAIN, 900, Transfer(DAVE.address, 7), gas_limit=50_000,
                              gas_price=1) for k in (ALICE, BOB, CAROL)]
    cb = make_block(N + 1, CHAIN_BLOCKS[-1], txs)
    n = len(cb.block.txs)
    receipt = Receipt(0, 1, b"", "", ())
    assert_refused(store, ValueError, cb.block, cb.commit, cb.receipts[:-1])
    assert_refused(store, ValueError, cb.block, cb.commit, (*cb.receipts, receipt))
    assert_refused(store, ValueError, cb.block, cb.commit, ())
    assert_refused(store, ValueError, cb.block, cb.commit, cb.receipts,
                   touched=[[ALICE.address]] * (n + 1))
    with store.kv.batch() as b:
        store.put_block(b, cb.block, cb.commit, cb.receipts)
    assert store.height == N + 1


def test_empty_block_with_no_receipts_is_fine(store: BlockStore) -> None:
    cb = make_block(N + 1, CHAIN_BLOCKS[-1], [])
    with store.kv.batch() as b:
        store.put_block(b, cb.block, cb.commit, ())
    assert store.block(N + 1) == cb.block
    assert store.height == N + 1


# ------------------------------------------------------------------ atomicity


def test_put_block_in_a_failed_batch_leaves_the_store_unchanged(store: BlockStore) -> None:
    cb = next_block()
    tx = cb.block.txs[0]
    before = snapshot(store.kv)
    history_before = store.history(ALICE.address, limit=1000)
    with pytest.raises(RuntimeError), store.kv.batch() as b:
        store.put_block(b, cb.block, cb.commit, cb.receipts)
        raise RuntimeError("the state transition failed after the block was added")
    assert snapshot(store.kv) == before
    assert store.height == N
    assert store.block(N + 1) is None
    assert store.header(N + 1) is None
    assert store.commit(N + 1) is None
    assert store.height_of(cb.block.hash) is None
    assert store.block_by_hash(cb.block.hash) is None
    assert store.tx(tx.hash) is None
    assert store.history(ALICE.address, limit=1000) == history_before
    # Then the same block goes in normally.
    with store.kv.batch() as b:
        store.put_block(b, cb.block, cb.commit, cb.receipts)
    assert store.height == N + 1
    assert store.block_by_hash(cb.block.hash) == cb.block
    rec = store.tx(tx.hash)
    assert rec is not None and (rec.height, rec.index) == (N + 1, 0)
    assert store.history(ALICE.address, limit=1)[0] == HistoryEntry(N + 1, 0, tx.hash)


def test_block_and_state_in_one_batch_are_all_or_nothing(kv: KVStore) -> None:
    blocks, tree = BlockStore(kv), StateTree(kv)
    cb1 = CHAIN_BLOCKS[0]
    with kv.batch() as b:
        blocks.put_block(b, cb1.block, cb1.commit, cb1.receipts)
        update = tree.prepare({b"alice": b"100"})
        tree.write(update, b)
    tree.committed(update)
    root1 = tree.root_hash()
    cb2 = CHAIN_BLOCKS[1]
    with pytest.raises(RuntimeError), kv.batch() as b:
        blocks.put_block(b, cb2.block, cb2.commit, cb2.receipts)
        tree.write(tree.prepare({b"alice": b"90", b"bob": b"10"}), b)
        raise RuntimeError
    assert blocks.height == 1
    assert tree.version == 0
    assert tree.root_hash() == root1
    assert StateTree(kv).root_hash() == root1
    assert StateTree(kv).get(b"bob") is None


def test_put_block_into_a_finished_batch_raises_batch_error(store: BlockStore) -> None:
    """A batch already written must not silently swallow a block: WriteBatch refuses
    use after it is finished, and put_block must not bypass that."""
    cb = next_block()
    with store.kv.batch() as b:
        pass
    with pytest.raises(BatchError):
        store.put_block(b, cb.block, cb.commit, cb.receipts)
    assert store.height == N


# --- receipts by height, certificates by hash, argument checks -----------------------


def test_receipts_by_height_and_their_proofs(store: BlockStore) -> None:
    for cb in CHAIN_BLOCKS:
        h = cb.block.height
        assert store.receipts(h) == list(cb.receipts)
        for i, receipt in enumerate(cb.receipts):
            got = store.receipt_proof(h, i)
            assert got is not None
            stored, proof = got
            assert stored == receipt
            assert proof.size == cb.block.header.tx_count
            assert proof.verify(receipt.encode(), cb.block.header.receipts_root)
            # A receipt with another status is not what the header committed to.
            other = dataclasses.replace(receipt, status=(receipt.status + 1) % 4)
            assert not proof.verify(other.encode(), cb.block.header.receipts_root)
        assert store.receipt_proof(h, len(cb.receipts)) is None
        assert store.receipt_proof(h, -1) is None
    assert store.receipts(N + 1) is None
    assert store.receipt_proof(N + 1, 0) is None


def test_commit_certificates_by_hash(store: BlockStore) -> None:
    for cb in CHAIN_BLOCKS:
        assert store.commit_by_hash(cb.block.hash) == cb.commit
    assert store.commit_by_hash(sha256(b"no such block")) is None


def test_history_refuses_bad_cursors_and_addresses(store: BlockStore) -> None:
    for cursor in ((1, 1 << 40), (2**64, 0), (-1, 0), (1, -1)):
        with pytest.raises(InvalidArgument, match="out of range"):
            store.history(BOB.address, before=cursor)
    for address in (b"", BOB.address[:19], BOB.address + b"\x00"):
        with pytest.raises(InvalidArgument, match="20 bytes"):
            store.history(address)


def test_put_block_refuses_touched_accounts_that_are_not_addresses(store: BlockStore) -> None:
    cb = next_block()
    before = snapshot(store.kv)
    with pytest.raises(InvalidArgument, match="must be addresses"), store.kv.batch() as b:
        store.put_block(b, cb.block, cb.commit, cb.receipts, touched=[[b"short"]])
    assert snapshot(store.kv) == before
