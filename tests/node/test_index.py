"""The commerce index (node/index.py) over real blocks: the commerce contracts in
genesis with the demo's listings, blocks executed and committed by the executor
(vm_helpers.TestChain, no network), the index fed by the event bus as a node feeds it.

What must hold: the index is exactly "the first N blocks" — after a crash that lost
its writes, catch_up brings it to what an index built from scratch holds; indexing is
idempotent; an order's state is followed through every transition (a group's fill and
failure included); lists page newest first with exclusive cursors; genesis listings
and arbiters are there from height 0, even where the genesis state is pruned.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import msgpack
import pytest
from rpc_helpers import (
    ARBITER,
    BUYER_1,
    BUYER_2,
    BUYER_3,
    COIN,
    MERCHANT,
    MUG,
    NOBODY,
    REFERRER,
    TEA,
    TEA_GROUP_PRICE,
    TEA_VERSION,
    Calls,
    commerce_node,
)
from vm_helpers import GENESIS_TIME_MS, RICH, TestChain, make_genesis, vset

from chain.block import Block, Event, Receipt
from chain.system import COMMERCE_CONTRACTS, ESCROW_ADDRESS
from chain.tx import Call, Transaction
from node.chainview import ChainView, NotKept
from node.events import EventBus
from node.index import FORMAT, PREFIX, ChainIndex
from storage.kv import KVStore, MemoryKV
from vm.compiler.abi import encode_value
from vm.contracts import Demo, compiled, encode_call, genesis_contracts

DAY, MINUTE = 86_400_000, 60_000
PRICE = 3 * COIN


class Market:
    """A chain with the commerce contracts, its index, and the bus between them."""

    def __init__(self, *, history: int = 100) -> None:
        self.chain = TestChain(MemoryKV(), genesis(), history=history)
        self.view = ChainView(self.chain.executor)
        self.bus = EventBus()
        self.kv = MemoryKV()  # the index's own store (a node shares its chain's)
        self.index = ChainIndex(self.kv, self.view)
        self.index.catch_up()
        self.index.attach(self.bus)
        self.time_ms = GENESIS_TIME_MS

    def call(self, key, contract: str, method: str, *args: object,
             value: int = 0) -> Transaction:
        return self.chain.tx(key, Call(COMMERCE_CONTRACTS[contract], method,
                                       encode_call(contract, method, *args), value),
                             gas_limit=1_000_000)

    def block(self, *txs: Transaction, publish: bool = True,
              advance_ms: int = 1_000) -> tuple[Block, list[Receipt]]:
        """Commit ``txs`` as the next block (``advance_ms`` after the last), then tell
        the bus, as ChainApp.commit does (unless ``publish`` is off: a crash)."""
        self.time_ms += advance_ms
        block = self.chain.executor.build_block(
            list(txs), time_ms=self.time_ms, proposer=vset().validators[0].address,
            validators_hash=vset().hash, next_validators_hash=vset().hash,
            last_commit=self.chain.last_commit)
        receipts = self.chain.commit(block)
        bad = [r.reason for r in receipts if r.status != 0]
        assert not bad, bad
        if publish:
            self.bus.block_committed(block, receipts)
        return block, receipts

    def listing(self, title: str = "Board", *, group_window: int = 0) -> int:
        _, (r,) = self.block(self.call(
            MERCHANT, "catalog", "create_listing", title, hashlib.sha256(title.encode()).digest(),
            PRICE, 0, 1_000, 3 * DAY, 14 * DAY, 0, 2 * DAY, ARBITER.address, NOBODY, NOBODY,
            True, 5_000))
        listing_id = int.from_bytes(r.return_data, "big")
        if group_window:
            self.block(self.call(MERCHANT, "catalog", "set_group_deal", listing_id,
                                 PRICE // 2, 3, group_window))
        return listing_id

    def place(self, listing_id: int, buyer=BUYER_1, version: int = 1) -> Transaction:
        return self.call(buyer, "escrow", "place_order", listing_id, version, 1, NOBODY,
                         NOBODY, value=PRICE)


def genesis():
    return make_genesis(
        balances={k.address: RICH for k in (MERCHANT, ARBITER, BUYER_1, BUYER_2, BUYER_3,
                                            REFERRER)},
        contracts=genesis_contracts(demo=Demo(merchant=MERCHANT.address,
                                              arbiter=ARBITER.address),
                                    time_ms=GENESIS_TIME_MS))


def contents(kv: KVStore) -> dict[bytes, bytes]:
    return dict(kv.iterate(PREFIX))


def rebuilt(m: Market) -> dict[bytes, bytes]:
    """What an index built from scratch over the same chain holds."""
    fresh = MemoryKV()
    ChainIndex(fresh, m.view).catch_up()
    return contents(fresh)


def ids(page) -> list[int]:
    return [x if isinstance(x, int) else x.order_id for x in page.items]


def every_page(fetch, limit: int) -> Iterator[list]:
    before = None
    while True:
        page = fetch(limit, before)
        yield page.items
        if page.next is None:
            return
        before = page.next


@pytest.fixture
def m() -> Market:
    return Market()


# ---------------------------------------------------------------------- consistency


def test_catch_up_after_a_crash_holds_what_a_fresh_index_holds(m: Market) -> None:
    board = m.listing()
    m.block(m.place(board), m.place(board, BUYER_2))
    m.block(m.call(MERCHANT, "escrow", "ship", 1, "T1"))
    assert m.index.height == m.chain.height == 3
    # The node dies between committing blocks and indexing them: the index's writes of
    # three blocks never happen (the bus is told nothing).
    m.index.close()
    m.block(m.call(BUYER_1, "escrow", "confirm", 1, True), publish=False)
    m.block(m.call(MERCHANT, "escrow", "ship", 2, "T2"), m.place(board, BUYER_3),
            publish=False)
    m.block(m.call(BUYER_1, "reviews", "post_review", 1, 4, "good"), publish=False)
    assert m.index.height == 3
    # The restart: a new index over the same store catches up, then listens again.
    index = ChainIndex(m.kv, m.view)
    assert index.catch_up() == 3
    assert index.height == m.chain.height == 6
    assert contents(m.kv) == rebuilt(m)
    assert index.order(1).state == 4 and index.order(2).state == 2
    assert [r.order_id for r in index.reviews(merchant=MERCHANT.address, limit=5).items] == [1]
    index.attach(m.bus)
    m.block(m.call(MERCHANT, "reviews", "reply", 1, "thanks"))
    assert index.height == 7 and contents(m.kv) == rebuilt(m)
    assert index.review(1).replied is not None


def test_a_block_missed_between_commit_and_index_is_caught_up_on_the_next(m: Market) -> None:
    board = m.listing()
    m.block(m.place(board), publish=False)  # committed, the index never told
    m.block(m.place(board, BUYER_2))        # the next one finds the gap and fills it
    assert m.index.height == m.chain.height
    assert ids(m.index.orders(merchant=MERCHANT.address, limit=10)) == [2, 1]
    assert contents(m.kv) == rebuilt(m)


def test_indexing_is_idempotent(m: Market) -> None:
    board = m.listing()
    block, receipts = m.block(m.place(board), m.place(board, BUYER_2))
    before = contents(m.kv)
    m.bus.block_committed(block, receipts)  # told twice
    assert m.index.catch_up() == 0          # and caught up with nothing to do
    assert contents(m.kv) == before
    with pytest.raises(ValueError, match="not the next"):
        m.index.index_block(block, receipts)
    assert contents(m.kv) == before == rebuilt(m)


def test_a_new_format_rebuilds_the_index(m: Market) -> None:
    board = m.listing()
    m.block(m.place(board))
    expected = contents(m.kv)
    m.kv.put(PREFIX + b"V", bytes((FORMAT + 1,)))
    m.kv.put(PREFIX + b"Zstale", b"from an old layout")
    index = ChainIndex(m.kv, m.view)
    assert index.height == -1  # wiped
    index.catch_up()
    assert contents(m.kv) == expected


# ---------------------------------------------------------------------- genesis


def test_genesis_listings_and_arbiters_are_indexed_at_height_0(m: Market) -> None:
    assert m.index.height == 0
    assert ids(m.index.listings(MERCHANT.address, 10)) == [TEA, MUG]
    assert m.index.listing_count(MERCHANT.address) == 2
    assert m.index.arbiters(10).items == [(ARBITER.address, 0)]
    board = m.listing()
    _, (r,) = m.block(m.call(BUYER_2, "catalog", "register_arbiter", "Second", 100, DAY))
    assert ids(m.index.listings(MERCHANT.address, 10)) == [board, TEA, MUG]
    assert sorted(m.index.arbiters(10).items) == sorted(
        [(ARBITER.address, 0), (BUYER_2.address, m.chain.height)])


def test_genesis_is_read_even_where_its_state_is_pruned() -> None:
    m = Market(history=2)
    for _ in range(4):
        m.block(m.call(MERCHANT, "catalog", "pause", MUG))
    with pytest.raises(NotKept):
        m.view.state_root(0)  # so the index rebuilds the genesis state to read it
    fresh = MemoryKV()
    index = ChainIndex(fresh, m.view)
    index.catch_up()
    assert ids(index.listings(MERCHANT.address, 10)) == [TEA, MUG]
    assert contents(fresh) == contents(m.kv)


# ---------------------------------------------------------------------- orders


def test_an_order_is_followed_through_its_transitions(m: Market) -> None:
    board = m.listing()
    m.block(m.place(board), m.place(board, BUYER_2))
    placed_at = m.chain.height
    m.block(m.call(MERCHANT, "escrow", "ship", 1, "T1"), m.call(BUYER_2, "escrow", "cancel", 2))
    m.block(m.call(BUYER_1, "escrow", "confirm", 1, True))
    one, two = m.index.order(1), m.index.order(2)
    assert (one.state, one.buyer, one.merchant, one.listing, one.paid) == (
        4, BUYER_1.address, MERCHANT.address, board, PRICE)
    assert one.placed[0] == placed_at and one.updated[0] == m.chain.height
    assert two.state == 6 and not two.in_tokens and two.group == 0
    history = m.index.history(1, 10).items
    assert [(e.event.name, e.height) for e in history] == [
        ("OrderPlaced", placed_at), ("OrderChanged", placed_at + 1),
        ("Payout", placed_at + 2), ("OrderChanged", placed_at + 2)]
    assert all(e.event.contract == ESCROW_ADDRESS for e in history)
    assert ids(m.index.orders(buyer=BUYER_1.address, state=4, limit=5)) == [1]
    assert ids(m.index.orders(buyer=BUYER_1.address, state=2, limit=5)) == []
    assert ids(m.index.orders(merchant=MERCHANT.address, state=6, limit=5)) == [2]
    assert m.index.order_counts(MERCHANT.address) == {4: 1, 6: 1}
    assert m.index.order(99) is None and m.index.history(99, 5).items == []


def test_a_group_that_fills_in_one_block_and_one_that_fails(m: Market) -> None:
    deal = m.listing("Tea", group_window=MINUTE)
    # Group 1 on the genesis tea: started, then two joins in one block that fill it.
    m.block(m.call(BUYER_1, "escrow", "start_group", TEA, TEA_VERSION, 1, NOBODY, NOBODY,
                   value=TEA_GROUP_PRICE))
    m.block(m.call(BUYER_2, "escrow", "join_group", 1, TEA_VERSION, 1, NOBODY, NOBODY,
                   value=TEA_GROUP_PRICE),
            m.call(BUYER_3, "escrow", "join_group", 1, TEA_VERSION, 1, NOBODY, NOBODY,
                   value=TEA_GROUP_PRICE))
    members = m.index.members(1, 10).items
    assert [(x.order_id, x.member, x.state) for x in members] == [
        (3, BUYER_3.address, 1), (2, BUYER_2.address, 1), (1, BUYER_1.address, 1)]
    assert [e.event.name for e in m.index.history(2, 5).items] == ["OrderPlaced",
                                                                   "GroupChanged"]
    assert m.index.order_counts(MERCHANT.address) == {1: 3}
    # Group 2: one joins and leaves, one stays; the deadline passes, anyone closes it,
    # and the one left is refunded by a claim.
    version = 2  # created, then set_group_deal
    m.block(m.call(BUYER_1, "escrow", "start_group", deal, version, 1, NOBODY, NOBODY,
                   value=PRICE // 2))
    m.block(m.call(BUYER_2, "escrow", "join_group", 2, version, 1, NOBODY, NOBODY,
                   value=PRICE // 2))
    m.block(m.call(BUYER_2, "escrow", "leave_group", 5))
    assert [(x.order_id, x.state) for x in m.index.members(2, 10).items] == [(5, 6), (4, 12)]
    m.block(m.call(REFERRER, "escrow", "close_group", 2), advance_ms=2 * MINUTE)
    four = [e.event.name for e in m.index.history(4, 10).items]
    assert four == ["OrderPlaced", "GroupChanged"] and m.index.order(4).state == 12
    m.block(m.call(REFERRER, "escrow", "claim", 4))
    assert m.index.order(4).state == 6
    assert [e.event.name for e in m.index.history(4, 10).items] == [
        "OrderPlaced", "GroupChanged", "Payout", "OrderChanged"]
    assert contents(m.kv) == rebuilt(m)


def _escrow_event(name: str, **values: object) -> Event:
    """An escrow event as the contract emits it; fields not given are 0 / empty."""
    fields = next(e["fields"] for e in compiled("escrow").abi["events"]
                  if e["name"] == name)
    zero = {"uint": 0, "int": 0, "bool": False, "Address": bytes(20), "bytes": b"",
            "str": ""}
    return Event(ESCROW_ADDRESS, name, msgpack.packb(
        [encode_value(f["type"], values.get(f["name"], zero[f["type"]])) for f in fields],
        use_bin_type=True))


def _synthetic_block(height: int, receipts: list[Receipt]) -> SimpleNamespace:
    return SimpleNamespace(
        height=height, header=SimpleNamespace(time_ms=GENESIS_TIME_MS + height),
        txs=[SimpleNamespace(hash=(height << 32 | i).to_bytes(32, "big"))
             for i in range(len(receipts))])


@pytest.mark.parametrize("groups", [100, 400])
def test_group_fills_cost_the_groups_own_members_not_the_whole_block(
        m: Market, monkeypatch: pytest.MonkeyPatch, groups: int) -> None:
    """A block where each of ``groups`` size-2 groups fills (a join_group each: an
    OrderPlaced then GroupChanged(filled)) decodes a bounded number of records per
    fill: the fill looks at its group's members, not at every order the block touched
    (that was quadratic: 2,000 fills in a block took 5 s of the commit step)."""
    def placed(order_id: int, group: int, buyer: bytes) -> Event:
        return _escrow_event("OrderPlaced", order_id=order_id, listing=TEA, quantity=1,
                             buyer=buyer, merchant=MERCHANT.address, group=group,
                             paid=TEA_GROUP_PRICE)

    def changed(group: int, state: int, members: int) -> Event:
        return _escrow_event("GroupChanged", group_id=group, listing=TEA, state=state,
                             members=members, size=2)

    leaders = [Receipt(0, 1, b"", "", [placed(g, g, g.to_bytes(20, "big")), changed(g, 1, 1)])
               for g in range(1, groups + 1)]
    joins = [Receipt(0, 1, b"", "", [placed(groups + g, g, (1 << 32 | g).to_bytes(20, "big")),
                                     changed(g, 2, 2)])
             for g in range(1, groups + 1)]
    m.index.close()  # fed by hand
    m.index.index_block(_synthetic_block(1, leaders), leaders)  # type: ignore[arg-type]
    decodes = 0
    unpackb = msgpack.unpackb

    def counting(*args: Any, **kwargs: Any) -> Any:
        nonlocal decodes
        decodes += 1
        return unpackb(*args, **kwargs)

    monkeypatch.setattr(msgpack, "unpackb", counting)
    m.index.index_block(_synthetic_block(2, joins), joins)  # type: ignore[arg-type]
    monkeypatch.undo()
    # 2 events decoded per join, and per fill its 2 members read and moved: about 8
    # per group. The quadratic rescan decoded every order touched so far per fill:
    # about groups**2 / 2 (5,000 at 100 groups, 80,000 at 400).
    assert decodes <= 10 * groups, decodes
    # and the fills are applied: every order PAID, the groups' members listed
    assert {m.index.order(i).state for i in range(1, 2 * groups + 1)} == {1}
    assert m.index.order_counts(MERCHANT.address) == {1: 2 * groups}
    assert [(x.order_id, x.state) for x in m.index.members(groups, 5).items] == [
        (2 * groups, 1), (groups, 1)]
    assert [e.event.name for e in m.index.history(1, 5).items] == ["OrderPlaced",
                                                                   "GroupChanged"]


# ---------------------------------------------------------------------- paging


def test_pages_are_newest_first_with_exclusive_cursors(m: Market) -> None:
    board = m.listing()
    for _ in range(5):  # 25 orders in 5 blocks of 5
        m.block(*(m.place(board) for _ in range(5)))
    index = m.index
    pages = list(every_page(lambda n, b: index.orders(buyer=BUYER_1.address, limit=n,
                                                      before=b), 10))
    assert [[e.order_id for e in p] for p in pages] == [
        list(range(25, 15, -1)), list(range(15, 5, -1)), list(range(5, 0, -1))]
    assert ids(index.orders(buyer=BUYER_1.address, limit=3, before=4)) == [3, 2, 1]
    assert ids(index.orders(buyer=BUYER_1.address, limit=3, before=1)) == []
    assert index.orders(buyer=BUYER_1.address, limit=5, before=6).next is None
    assert ids(index.orders(buyer=BUYER_2.address, limit=3)) == []

    # Events: pages of 4 over five blocks of five OrderPlaced, cursors within a block.
    top = m.chain.height
    whole = index.events(ESCROW_ADDRESS, "OrderPlaced", 0, top, 100).items
    assert [e.pos for e in whole] == sorted((e.pos for e in whole), reverse=True)
    assert len(whole) == 25
    pages = list(every_page(lambda n, b: index.events(ESCROW_ADDRESS, "OrderPlaced", 0, top,
                                                      n, b), 4))
    assert [e for p in pages for e in p] == whole and len(pages) == 7
    # the range bounds what is searched; the cursor continues inside it
    window = index.events(ESCROW_ADDRESS, "OrderPlaced", top - 1, top, 3)
    assert [e.height for e in window.items] == [top] * 3
    rest = index.events(ESCROW_ADDRESS, "OrderPlaced", top - 1, top, 100, window.next)
    assert [e.height for e in rest.items] == [top] * 2 + [top - 1] * 5
    assert index.events(ESCROW_ADDRESS, None, top, top, 100).items == \
        index.events(ESCROW_ADDRESS, "OrderPlaced", top, top, 100).items
    assert index.events(ESCROW_ADDRESS, "Nothing", 0, top, 10).items == []

    # History oldest first, cursor after.
    m.block(m.call(MERCHANT, "escrow", "ship", 1, "T"))
    m.block(m.call(BUYER_1, "escrow", "confirm", 1, True))
    whole = index.history(1, 10).items
    pages = []
    after = None
    while True:
        page = index.history(1, 1, after)
        pages += page.items
        if page.next is None:
            break
        after = page.next
    assert pages == whole and len(whole) == 4


# ---------------------------------------------------------------------- a real node


async def test_a_node_indexes_on_restart_what_it_committed_while_its_index_was_away(
        tmp_path: Path) -> None:
    chain_id = "agora-index-restart"
    calls = Calls(chain_id)
    async with commerce_node(tmp_path, chain_id) as net:
        net.node.index.close()  # the index stops listening (as if it died)
        answer = await net.commit(calls(BUYER_1, "escrow", "place_order", TEA, TEA_VERSION, 1,
                                        NOBODY, NOBODY, value=40 * COIN))
        assert (await net.client.orders(buyer=BUYER_1.address))["items"] == []
    async with commerce_node(tmp_path, chain_id) as net:  # the restart catches up
        assert net.node.index.height >= answer["height"]
        mine = await net.client.orders(buyer=BUYER_1.address)
        assert [(i["order_id"], i["placed_height"], i["state"]) for i in mine["items"]] == [
            (1, answer["height"], "paid")]
        # and listens again
        shipped = await net.commit(calls(MERCHANT, "escrow", "ship", 1, "T"))
        order = await net.client.order(1)
        assert [(e["name"], e["height"]) for e in order["history"]] == [
            ("OrderPlaced", answer["height"]), ("OrderChanged", shipped["height"])]
