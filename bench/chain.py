"""A single-node chain for benchmarks: build a block the way a proposer does, then time
what a validator does with it (execute_block + commit). The proposer's execution is
forgotten first, so the block really runs again: without that, execute_block found the
proposer's result and the time was the commit's alone."""

from __future__ import annotations

import time

from chain.block import Block, CommitCertificate, Vote, VoteKind
from chain.genesis import Genesis
from chain.keys import PrivateKey
from chain.tx import Transaction
from chain.validators import Validator, ValidatorSet
from node.genesis import GenesisValidator
from storage.kv import KVStore
from vm.executor import Executor

VALIDATORS = [PrivateKey.from_seed_text(f"bench-validator-{i}") for i in range(4)]


#: The benchmark chains' validators, as their genesis lists them.
GENESIS_VALIDATORS = [GenesisValidator(k.public_key, 1, f"bench-{i}")
                      for i, k in enumerate(VALIDATORS)]


class BenchChain:
    def __init__(self, kv: KVStore, genesis: Genesis) -> None:
        self.genesis = genesis
        self.ex = Executor(kv, genesis)
        self.vset = ValidatorSet(Validator(k.public_key, 1) for k in VALIDATORS)
        self.last_commit: CommitCertificate | None = None

    def run(self, txs: list[Transaction]) -> tuple[float, list]:
        """Propose, certify, then execute and commit ``txs`` as the next block: the
        seconds the validator's part took, and the receipts."""
        ex = self.ex
        for tx in txs:
            ex.verify_signature(tx)  # the mempool's work, not the block's
        height = ex.height + 1
        block = ex.build_block(txs, time_ms=self.genesis.time_ms + 1000 * height,
                               proposer=VALIDATORS[height % 4].address,
                               validators_hash=self.vset.hash,
                               next_validators_hash=self.vset.hash, last_commit=self.last_commit)
        header = block.header
        cert = CommitCertificate.from_votes(
            Vote.create(k, self.genesis.chain_id, VoteKind.COMMIT, height, 0, block.hash)
            for k in VALIDATORS
        )
        block = Block.decode(block.encode())  # as received: no cached encodings
        for tx in block.txs:
            ex.verify_signature(tx)  # a cache hit
        ex.forget_executions()  # a validator that did not build the block runs it itself
        t = time.perf_counter()
        root, receipts = ex.execute_block(block)
        ex.commit(block, cert)
        elapsed = time.perf_counter() - t
        assert root == header.state_root
        self.last_commit = cert
        return elapsed, receipts
