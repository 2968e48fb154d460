"""node/app.py's ChainApp, the application as consensus sees it, over a real executor
(vm_helpers.TestChain) and mempool, with a clock the test sets.

Regressions from the second review: the check that a block's time is not too far
ahead of our clock applied to certified blocks too (sync, DECISION), so a node whose
clock was slow could never catch up, and the driver banned the honest peers that
served it; and refusing a proposal for it blamed its sender, so honest nodes with
skewed clocks banned each other.
"""

from __future__ import annotations

import dataclasses

import pytest
from vm_helpers import ALICE, BOB, CHAIN, VALIDATORS, TestChain, vset

from chain.block import Block
from consensus.core import Commit, Core
from consensus.errors import InvalidMessage, InvalidProposal
from consensus.messages import Proposal
from consensus.signlog import SignLog
from node.app import MAX_CLOCK_DRIFT_MS, ChainApp
from node.mempool import Mempool
from vm.errors import InvalidTx

#: How far the next block's time is ahead of the test's (slow) clock.
AHEAD_MS = 60_000


class Clock:
    def __init__(self, ms: int) -> None:
        self.ms = ms

    def __call__(self) -> int:
        return self.ms


def chain_app(tc: TestChain, clock: Clock) -> ChainApp:
    return ChainApp(tc.executor, Mempool(tc.executor, invalid_tx=InvalidTx),
                    clock_ms=clock)


def next_block(tc: TestChain, proposer: bytes = VALIDATORS[0].address) -> Block:
    """Block 1, with one transfer, as its proposer builds it."""
    return tc.build([tc.transfer(ALICE, BOB.address, 5)], proposer)


def slow_clock(block: Block, behind_ms: int = AHEAD_MS) -> Clock:
    return Clock(block.header.time_ms - behind_ms)


def test_a_certified_block_far_ahead_of_our_clock_is_accepted() -> None:
    tc = TestChain()
    block = next_block(tc)
    app = chain_app(tc, slow_clock(block))
    app.validate(block, certified=True)


def test_a_proposal_far_ahead_of_our_clock_is_refused_without_blame() -> None:
    tc = TestChain()
    block = next_block(tc)
    app = chain_app(tc, slow_clock(block))
    with pytest.raises(InvalidProposal, match="ahead of our clock") as info:
        app.validate(block)
    assert info.value.blameless
    # Within the drift allowed, the same block is a valid proposal.
    app.clock_ms.ms = block.header.time_ms - MAX_CLOCK_DRIFT_MS
    app.validate(block)


def test_certified_skips_only_the_clock_check() -> None:
    tc = TestChain()
    block = next_block(tc)
    bad = dataclasses.replace(block, header=dataclasses.replace(block.header,
                                                                state_root=bytes(32)))
    app = chain_app(tc, slow_clock(block, behind_ms=0))
    for certified in (False, True):
        with pytest.raises(InvalidProposal, match="state root") as info:
            app.validate(bad, certified=certified)
        assert not info.value.blameless


def test_a_node_with_a_slow_clock_commits_a_certified_block_but_does_not_vote_for_it(
        ) -> None:
    """clock_certified.py: the core over a ChainApp whose clock is a minute slow."""
    tc = TestChain()
    validators = vset()
    proposer_index = 1  # of height 1, view 0: validator (1 + 0) mod 4
    block = next_block(tc, VALIDATORS[proposer_index].address)
    app = chain_app(tc, slow_clock(block))

    def core() -> Core:
        c = Core(CHAIN, validators, app, SignLog.in_memory(), key=VALIDATORS[2], height=0,
                 last_commit=None)
        c.start(0.0)
        assert c.proposer(1, 0) == VALIDATORS[proposer_index].address
        return c

    with pytest.raises(InvalidMessage, match="ahead of our clock") as info:
        core().on_message(Proposal.create(VALIDATORS[proposer_index], CHAIN, 0, block), 0.0)
    assert info.value.blameless
    certificate = tc.certify(block)
    assert core().on_certified_block(block, certificate, 0.0) == [Commit(block, certificate)]
    app.commit(block, certificate)
    assert tc.executor.height == 1


def test_a_proposal_takes_at_most_the_nodes_cap_and_leaves_the_rest_for_the_next() -> None:
    tc = TestChain()
    pool = Mempool(tc.executor, invalid_tx=InvalidTx)
    txs = [tc.transfer(ALICE, BOB.address, 1, nonce=n) for n in range(5)]
    for tx in txs:
        pool.add(tx)
    app = ChainApp(tc.executor, pool, clock_ms=Clock(AHEAD_MS), max_txs=3)
    block = app.propose(1, 0, None, VALIDATORS[0].address)
    assert list(block.txs) == txs[:3]  # in nonce order: the next block can take the rest
    # Without a cap of its own the node takes what genesis allows.
    uncapped = ChainApp(tc.executor, pool, clock_ms=Clock(AHEAD_MS))
    assert list(uncapped.propose(1, 0, None, VALIDATORS[0].address).txs) == txs
