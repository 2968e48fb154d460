"""Transactions spread through real nodes: five peer managers on 127.0.0.1 in a line,
each with its own executor and mempool, wired by TxRelay."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from vm_helpers import ALICE, BOB, CHAIN, GAS_PRICE, make_genesis

from chain.genesis import Genesis
from chain.keys import PrivateKey
from chain.tx import Transaction, Transfer
from node.mempool import Mempool, TxRejected
from node.txrelay import TxRelay
from p2p.messages import TxBatch
from p2p.peers import P2PSettings, PeerManager
from storage.kv import MemoryKV
from vm.errors import InvalidTx
from vm.executor import Executor

SETTINGS = P2PSettings(listen_port=0, pex=False, handshake_timeout=2.0, ping_interval=1.0,
                       peer_timeout=5.0)
GAS = 21_000


@dataclass
class Node:
    network: PeerManager
    mempool: Mempool
    relay: TxRelay


def make_node(genesis: Genesis, name: str, seed: int) -> Node:
    executor = Executor(MemoryKV(), genesis)
    mempool = Mempool(executor, invalid_tx=InvalidTx)
    network = PeerManager(PrivateKey.from_seed_text(name), CHAIN, SETTINGS,
                          rng=random.Random(seed))
    relay = TxRelay(mempool, network, chain_id=CHAIN, max_tx_bytes=executor.params.max_tx_bytes)
    return Node(network, mempool, relay)


@pytest.fixture
async def line() -> AsyncIterator[list[Node]]:
    """Five nodes, node i connected to node i+1 only."""
    genesis = make_genesis()
    nodes = [make_node(genesis, f"line-node-{i}", i) for i in range(5)]
    try:
        for node in nodes:
            await node.network.start()
        async with asyncio.timeout(10):
            for left, right in zip(nodes, nodes[1:], strict=False):
                assert await left.network.dial(right.network.address) is not None
        yield nodes
    finally:
        for node in nodes:
            await node.network.stop()


def transfer(key: PrivateKey, nonce: int, amount: int = 5) -> Transaction:
    return Transaction.create(key, CHAIN, nonce, Transfer(BOB.address, amount),
                              gas_limit=GAS, gas_price=GAS_PRICE)


async def until_everywhere(nodes: list[Node], txs: list[Transaction]) -> float:
    """Wait (bounded) until every node's mempool admitted every tx; returns the
    ``time.perf_counter()`` at which the last one did."""
    wanted = {tx.hash for tx in txs}
    missing = {i for i, n in enumerate(nodes) if not all(h in n.mempool for h in wanted)}
    done = asyncio.Event()
    finished = [time.perf_counter()]

    def watch(i: int, node: Node) -> None:
        def admitted(tx: Transaction) -> None:
            if i in missing and all(h in node.mempool for h in wanted):
                missing.discard(i)
                if not missing:
                    finished[0] = time.perf_counter()
                    done.set()
        node.relay.on_admitted.append(admitted)

    for i, node in enumerate(nodes):
        watch(i, node)
    if missing:
        async with asyncio.timeout(5):
            await done.wait()
    return finished[0]


def link_counts(nodes: list[Node]) -> list[tuple[int, int]]:
    """For each link i -> i+1: (txs node i sent to i+1, txs i+1 sent to i)."""
    out = []
    for left, right in zip(nodes, nodes[1:], strict=False):
        forward = left.network.peers[right.network.node_id]
        backward = right.network.peers[left.network.node_id]
        assert forward.txs_sent == backward.txs_received
        assert backward.txs_sent == forward.txs_received
        out.append((forward.txs_sent, backward.txs_sent))
    return out


async def test_a_tx_reaches_every_mempool_within_a_second_carried_once_per_link(line) -> None:
    tx = transfer(ALICE, 0)
    start = time.perf_counter()
    line[0].relay.submit(tx)
    elapsed = await until_everywhere(line, [tx]) - start
    assert elapsed < 1.0, f"took {elapsed:.3f} s"
    assert all(tx.hash in node.mempool for node in line)
    assert link_counts(line) == [(1, 0)] * 4  # once per link, never echoed back


async def test_a_flood_from_both_ends_is_carried_once_per_link(line) -> None:
    left = [transfer(ALICE, n) for n in range(40)]
    right = [transfer(BOB, n) for n in range(40)]
    for a, b in zip(left, right, strict=True):
        line[0].relay.submit(a)
        line[4].relay.submit(b)
    await until_everywhere(line, left + right)
    assert link_counts(line) == [(40, 40)] * 4
    for node in line:
        assert node.mempool.pending_nonce(ALICE.address) == 40


async def test_a_refused_tx_does_not_spread(line) -> None:
    line[0].relay.submit(transfer(ALICE, 0))
    await until_everywhere(line, [transfer(ALICE, 0)])
    with pytest.raises(TxRejected, match="already in the mempool"):
        line[0].relay.submit(transfer(ALICE, 0))
    assert link_counts(line) == [(1, 0)] * 4


async def test_a_peer_relaying_a_forged_tx_is_dropped_and_banned(line) -> None:
    honest = transfer(ALICE, 0)
    forged = Transaction(CHAIN, ALICE.public_key, 1, GAS, GAS_PRICE, Transfer(BOB.address, 10**6),
                         "", bytes(64))
    gone = asyncio.Event()
    middle, victim = line[1], line[2]
    victim.network.on_peer_disconnected.append(
        lambda node_id, reason: gone.set() if node_id == middle.network.node_id else None)
    # The middle node misbehaves: it pushes the forged tx straight onto the link.
    peer = middle.network.peers[victim.network.node_id]
    assert peer.conn.send(TxBatch((honest.encode(), forged.encode())))
    async with asyncio.timeout(5):
        await gone.wait()
    reason = [r for n, r in victim.network.disconnects if n == middle.network.node_id][-1]
    assert "invalid transaction" in reason and "signature" in reason and "banned" in reason
    assert honest.hash in victim.mempool and forged.hash not in victim.mempool
    assert victim.network.bans.is_banned(middle.network.node_id,
                                         asyncio.get_running_loop().time())


# --------------------------------------------------------------------- regressions from the review


async def test_a_valid_tx_batched_with_a_forged_one_still_gets_in_from_an_honest_peer(
        line) -> None:
    """Review r3(b): the whole batch was marked seen on arrival, so the valid tx behind
    the forged one (never looked at: the peer is banned there) kept every honest copy
    of it out for good."""
    valid = transfer(BOB, 0)
    forged = Transaction(CHAIN, ALICE.public_key, 1, GAS, GAS_PRICE, Transfer(BOB.address, 10**6),
                         "", bytes(64))
    gone = asyncio.Event()
    middle, victim, honest = line[1], line[2], line[3]
    victim.network.on_peer_disconnected.append(
        lambda node_id, reason: gone.set() if node_id == middle.network.node_id else None)
    peer = middle.network.peers[victim.network.node_id]
    assert peer.conn.send(TxBatch((forged.encode(), valid.encode())))
    async with asyncio.timeout(5):
        await gone.wait()
    assert victim.network.bans.is_banned(middle.network.node_id,
                                         asyncio.get_running_loop().time())
    assert valid.hash not in victim.mempool  # the batch was dropped at the forged tx
    honest.relay.submit(valid)
    await until_everywhere([victim, honest], [valid])
    assert honest.network.peers[victim.network.node_id].txs_sent == 1


async def test_a_tx_refused_for_a_passing_reason_gets_in_when_it_comes_again(line) -> None:
    """Review r3(b): a tx refused for now (here a nonce gap) was marked seen, so no
    later copy was ever looked at, even once the reason had passed."""
    victim, right, left = line[2], line[3], line[1]
    gap = transfer(ALICE, victim.mempool.max_nonce_ahead + 1)  # too far ahead of nonce 0
    first = transfer(ALICE, 0)
    # In this order over one link: the gap tx is refused, then nonce 0 fills the gap.
    assert right.network.peers[victim.network.node_id].conn.send(
        TxBatch((gap.encode(), first.encode())))
    await until_everywhere([victim], [first])
    assert gap.hash not in victim.mempool
    assert right.network.node_id in victim.network.peers  # a race, not an offence
    # Another copy, from another peer, now that the gap is closed.
    assert left.network.peers[victim.network.node_id].conn.send(TxBatch((gap.encode(),)))
    await until_everywhere([victim], [gap])
    assert victim.mempool.pending_nonce(ALICE.address) == 1  # the gap tx waits queued


async def test_a_peer_that_connects_later_gets_the_pools_txs(line) -> None:
    """Review r3(a): a tx was offered only to the peers connected when it was admitted;
    a link that came up later never carried it."""
    early = transfer(ALICE, 0)
    line[0].relay.submit(early)
    await until_everywhere(line, [early])
    late = make_node(make_genesis(), "late-node", 99)
    await late.network.start()
    try:
        mine = transfer(BOB, 0)
        late.relay.submit(mine)  # no peers yet: it goes nowhere now
        assert late.network.peers == {}
        async with asyncio.timeout(5):
            link = await late.network.dial(line[4].network.address)
        assert link is not None
        # Each side sends the other what its pool holds, once.
        await until_everywhere([*line, late], [early, mine])
        assert (link.txs_sent, link.txs_received) == (1, 1)
    finally:
        await late.network.stop()


def test_refusals_in_a_batch_leave_no_reference_cycles() -> None:
    """Bench under overload: every refusal kept by submit_many held its traceback, whose
    frame held the list holding the refusal — a cycle per refused transaction, ~17,000
    a second, which ran the cyclic collector's full collections (100-500 ms each) about
    once a second. Refusals now leave nothing for the collector to find."""
    import gc

    node = make_node(make_genesis(), "cycle-node", 0)
    txs = [Transaction.create(ALICE, CHAIN, n, Transfer(BOB.address, 1), gas_limit=GAS,
                              gas_price=GAS_PRICE) for n in range(40, 140)]  # far ahead
    # Refused "invalid" (another chain): TxRejected raised in place of InvalidTx.
    txs += [Transaction.create(ALICE, "another-chain", n, Transfer(BOB.address, 1),
                               gas_limit=GAS, gas_price=GAS_PRICE) for n in range(100)]
    gc.collect()
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        outcomes = node.relay.submit_many(txs)
        assert all(isinstance(o, TxRejected) for o in outcomes)
        del outcomes
        # (A handful found once, whatever the batch: not seven objects per refusal.)
        assert gc.collect() < 20
    finally:
        if was_enabled:
            gc.enable()
