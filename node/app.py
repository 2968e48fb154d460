"""The application as consensus sees it: the executor and the mempool behind the
small ``ConsensusApp`` interface (``has_pending_txs``, ``propose``, ``validate``) plus
``commit``, which the driver calls for each Commit action: it writes the block,
re-checks the mempool, then publishes the block on the event bus (``node/events.py``).

Blocks are built from the mempool's ready transactions in proposal order and executed
once (the executor keeps the proposer's execution); a transaction's signature checked
at admission is not checked again (the executor caches verified hashes).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from chain.block import Block, CommitCertificate, receipts_root
from chain.validators import ValidatorSet
from consensus.errors import InvalidProposal
from storage.errors import VersionNotAvailable
from vm.errors import InvalidBlock
from vm.executor import Executor

from .events import EventBus
from .mempool import Mempool

log = logging.getLogger("agora.node")

#: How far ahead of our clock a block's time may be (validators' clocks drift).
MAX_CLOCK_DRIFT_MS = 10_000
#: Room left in a block for its header and certificate.
_BLOCK_OVERHEAD = 64 * 1024


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


class ChainApp:
    """Executor + mempool for consensus."""

    def __init__(self, executor: Executor, mempool: Mempool, *,
                 clock_ms: Callable[[], int] = wall_clock_ms,
                 events: EventBus | None = None, settle_s: float = 0.0,
                 max_txs: int | None = None) -> None:
        self.executor = executor
        #: The proposer's own cap on a block's transactions (the chain's is in genesis).
        self.max_txs = max_txs
        #: A proposal takes transactions admitted at least this long ago when there
        #: are any (see Mempool.reap): the others have them by gossip, no fetching.
        self.settle_s = settle_s
        self.mempool = mempool
        self.clock_ms = clock_ms
        #: Told of each committed block (RPC waiters, subscriptions, metrics, index).
        self.events = events if events is not None else EventBus()

    def validator_set(self, height: int) -> ValidatorSet:
        """The validator set of ``height`` (known up to the committed height + 2)."""
        return self.executor.validator_set(height)

    def known_validator_set(self, height: int) -> ValidatorSet | None:
        try:
            return self.executor.validator_set(height)
        except VersionNotAvailable:
            return None

    def has_pending_txs(self) -> bool:
        return self.mempool.status()["ready"] > 0

    def _parent_time(self) -> int:
        ex = self.executor
        parent = ex.blocks.header(ex.height) if ex.height else None
        return parent.time_ms if parent is not None else ex.genesis.time_ms

    def propose(self, height: int, view: int, last_commit: CommitCertificate | None,
                proposer: bytes) -> Block:
        ex = self.executor
        params = ex.params
        time_ms = max(self._parent_time() + 1, self.clock_ms())
        txs = self.mempool.reap(max_bytes=params.max_block_bytes - _BLOCK_OVERHEAD,
                                max_gas=params.max_block_gas,
                                max_txs=min(params.max_block_txs, self.max_txs or params.max_block_txs),
                                settled=self.settle_s)
        # Block h names the set deciding it and commits to the set of h + 1, which
        # block h - 1 decided (CometBFT: a change is in force two heights after the
        # block that passes it).
        vhash = ex.validator_set(height).hash
        nhash = ex.validator_set(height + 1).hash
        try:
            return ex.build_block(txs, time_ms=time_ms, proposer=proposer, validators_hash=vhash,
                                  next_validators_hash=nhash, last_commit=last_commit)
        except InvalidBlock as exc:
            # The mempool keeps only transactions that apply; if one does not, our
            # view of state is off. An empty block keeps the chain going meanwhile.
            log.error("could not build block %d from the mempool (%s); proposing it empty",
                      height, exc)
            return ex.build_block([], time_ms=time_ms, proposer=proposer, validators_hash=vhash,
                                  next_validators_hash=nhash, last_commit=last_commit)

    def validate(self, block: Block, *, certified: bool = False) -> None:
        h = block.header
        if h.height != self.executor.height + 1:
            raise InvalidProposal(f"block {h.height} does not follow height "
                                  f"{self.executor.height}")
        if h.validators_hash != self.executor.validator_set(h.height).hash:
            raise InvalidProposal("the block names another validator set than its height's")
        if h.next_validators_hash != self.executor.validator_set(h.height + 1).hash:
            raise InvalidProposal("the block commits to another next validator set than "
                                  "the one the chain decided")
        if h.time_ms <= self._parent_time():
            raise InvalidProposal("the block's time is not after its parent's")
        if not certified and h.time_ms > self.clock_ms() + MAX_CLOCK_DRIFT_MS:
            # Our clock may be the wrong one: do not vote for it, but blame nobody.
            raise InvalidProposal(f"the block's time is more than {MAX_CLOCK_DRIFT_MS} ms "
                                  "ahead of our clock", blameless=True)
        try:
            root, receipts = self.executor.execute_block(block)
        except InvalidBlock as exc:
            raise InvalidProposal(str(exc)) from None
        if root != h.state_root:
            raise InvalidProposal("the block's state root is not the one its transactions give")
        if receipts_root(receipts) != h.receipts_root:
            raise InvalidProposal("the block's receipts root is not the one its "
                                  "transactions give")

    def _drop_unfit(self) -> None:
        """Governance changed the parameters of the next block: drop the waiting
        transactions they no longer admit (a gas price below the new minimum, a gas
        limit above the new block limit), or every block built from the pool would be
        invalid. Their senders resend at the new price."""
        params = self.executor.params
        unfit = [tx.hash for tx in self.mempool
                 if tx.gas_price < params.min_gas_price or tx.gas_limit > params.max_block_gas]
        if unfit:
            self.mempool.remove(unfit)
            log.info("dropped %d waiting transactions the new chain parameters refuse "
                     "(min gas price %d, block gas limit %d)", len(unfit),
                     params.min_gas_price, params.max_block_gas)

    def commit(self, block: Block, certificate: CommitCertificate) -> None:
        """Write the block (one atomic, synced batch), re-check the mempool, then
        publish the block on the event bus."""
        params = self.executor.params
        receipts = self.executor.commit(block, certificate)
        if self.executor.params is not params:
            self._drop_unfit()
        self.mempool.update(block.txs, self.executor.changed_accounts)
        self.events.block_committed(block, receipts)
