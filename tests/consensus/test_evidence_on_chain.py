"""Evidence of a double vote ends on chain, once, in the deterministic simulation with
real nodes' applications: each simulated validator runs the real executor (in memory),
mempool and ChainApp, the governance contract in its genesis.

One validator of five signs a second, conflicting vote after each of its votes (and
equivocates its proposals). The honest nodes' consensus cores find the conflicts; each
node's :class:`node.evidence.EvidenceReporter` sends them in transactions signed with
its validator key, gossiped to every mempool. The chain must then hold each conflict
recorded exactly once (several honest nodes report the same one: the later reports
are reverted, never recorded again), a removal proposal against the equivocator (one
per epoch), and — once the honest validators vote for it — a set without the
equivocator from two heights after the vote, every certificate checked against the set
of its own height. Forged evidence is refused by every node's mempool.
"""

from __future__ import annotations

import contextlib
import logging

import msgpack
import pytest
from consensus_sim import CHAIN, Behaviour, Simulation, install_verify_cache

from chain.block import Block, CommitCertificate, ReceiptStatus
from chain.evidence import DoubleSign
from chain.genesis import Genesis
from chain.system import EVIDENCE_ADDRESS, GOVERNANCE_ADDRESS
from chain.tx import Call, Transaction
from consensus.core import REPUTATION_WINDOW, Core, Evidence
from consensus.signlog import MemoryStorage, SignLog
from node.app import ChainApp
from node.evidence import EvidenceReporter
from node.genesis import FIXED_TIME_MS, GenesisValidator, genesis_document
from node.mempool import Code, Mempool, TxRejected
from storage.kv import MemoryKV
from vm.contracts import decode_result, encode_call
from vm.errors import InvalidTx
from vm.executor import EVIDENCE_METHOD, Executor, encode_args

SEEDS = [seed if seed < 100 else pytest.param(seed, marks=pytest.mark.slow)
         for seed in range(120)]
BYZANTINE = 4


@pytest.fixture(autouse=True)
def fast_and_quiet(monkeypatch, caplog):
    install_verify_cache(monkeypatch)
    caplog.set_level(logging.CRITICAL, logger="agora")


class RealApp(ChainApp):
    """ChainApp over an in-memory executor, with what the simulation reads of an app
    (``blocks``, ``certificates``, ``clock``, ``validator_set``)."""

    def __init__(self, genesis: Genesis) -> None:
        executor = Executor(MemoryKV(), genesis)
        super().__init__(executor, Mempool(executor, invalid_tx=InvalidTx),
                         clock_ms=lambda: FIXED_TIME_MS + int(self.clock * 1000) + self._bump)
        self.clock = 0.0
        self._bump = 0
        self.blocks: list[Block] = []
        self.certificates: list[CommitCertificate] = []

    def propose(self, height, view, last_commit, proposer, salt: int = 0) -> Block:
        """``salt``: another block for the same slot (an equivocating proposer's)."""
        block = super().propose(height, view, last_commit, proposer)
        if not salt:
            return block
        self._bump = 0
        self._bump = block.header.time_ms + salt - self.clock_ms()
        try:
            return super().propose(height, view, last_commit, proposer)
        finally:
            self._bump = 0

    def commit(self, block: Block, certificate: CommitCertificate) -> None:
        super().commit(block, certificate)
        self.blocks.append(block)
        self.certificates.append(certificate)


class ChainSim(Simulation):
    def __init__(self, seed: int) -> None:
        super().__init__(5, seed, behaviours={
            BYZANTINE: Behaviour(double_vote=True, equivocate_proposals=True)})
        validators = [GenesisValidator(k.public_key, 1, f"v{i}") for i, k in enumerate(self.keys)]
        self.genesis = Genesis.from_dict(genesis_document(
            CHAIN, validators, balances={k.address: 10**24 for k in self.keys},
            proposal_ttl=10_000))
        self.reporters: dict[int, EvidenceReporter] = {}
        self.nodes = [self._make_node(i, MemoryStorage(), RealApp(self.genesis), n.behaviour)
                      for i, n in enumerate(self.nodes)]

    def _make_node(self, i, storage, app, behaviour, *, guard=False):
        if not isinstance(app, RealApp):  # Simulation.__init__'s fakes, replaced above
            return super()._make_node(i, storage, app, behaviour, guard=guard)
        height = len(app.blocks)
        core = Core(CHAIN, app.known_validator_set, app, SignLog.in_memory(storage),
                    key=self.keys[i], height=height,
                    last_commit=app.certificates[-1] if height else None,
                    last_block=app.blocks[-1] if height else None, timeouts=self.timeouts,
                    recent_blocks=app.blocks[-(REPUTATION_WINDOW + 1):],
                    double_sign_guard=guard)
        node = super()._make_node(i, storage, app, behaviour, guard=guard)
        node.core = core
        self.reporters[i] = EvidenceReporter(self.keys[i], app.executor,
                                             app.mempool.pending_nonce, self.gossip)
        return node

    def gossip(self, tx: Transaction) -> None:
        """A transaction reaches every live node's mempool (refusals are theirs)."""
        for node in self.nodes:
            if node.alive:
                # A refusal (a duplicate, a spent nonce) is that node's: not admitted there.
                with contextlib.suppress(Exception):
                    node.app.mempool.add(tx)

    def _act(self, node, actions, reply_to=None):
        super()._act(node, actions, reply_to)
        for action in actions:
            if type(action) is Evidence and node.alive and not node.behaviour.byzantine:
                self.reporters[node.index].report(action)

    def assert_agreement(self) -> None:
        self.assert_no_fork()
        for node in self.honest:
            ex = node.app.executor
            for block, cert in zip(node.app.blocks, node.app.certificates, strict=True):
                vset = ex.validator_set(block.height)
                assert block.header.validators_hash == vset.hash
                cert.verify(CHAIN, vset, height=block.height, block_hash=block.hash)


def events(ex: Executor, contract: bytes, name: str) -> list[tuple[int, list[bytes]]]:
    out = []
    for h in range(1, ex.height + 1):
        for receipt in ex.blocks.receipts(h) or []:
            if receipt.status != ReceiptStatus.OK:
                continue
            for e in receipt.events:
                if e.contract == contract and e.name == name:
                    out.append((h, msgpack.unpackb(e.data)))
    return out


def gov_view(ex: Executor, method: str, *args):
    status, data, reason = ex.call_view(bytes(20), GOVERNANCE_ADDRESS, method,
                                        msgpack.unpackb(encode_call("governance", method, *args)))
    assert status == ReceiptStatus.OK, reason
    return decode_result("governance", method, data)


def run_until(sim: ChainSim, cond, max_time: float) -> None:
    assert sim.run(cond, max_time=max_time), \
        f"not reached by t={sim.now:.1f}, heights {sim.heights()}"


@pytest.mark.parametrize("seed", SEEDS)
def test_a_double_voter_is_recorded_once_and_voted_out(seed: int) -> None:
    sim = ChainSim(seed)
    culprit = sim.keys[BYZANTINE].address
    sim.start()
    honest = sim.honest
    ex0 = honest[0].app.executor

    def recorded() -> bool:
        return all(gov_view(n.app.executor, "proposal_count") >= 1 for n in honest)

    run_until(sim, recorded, max_time=400)
    # The removal proposal names the equivocator, opened by the evidence recorder.
    proposal = gov_view(ex0, "proposal", 1)
    assert proposal["kind"] == 2 and proposal["validator"] == culprit
    assert proposal["proposer"] == EVIDENCE_ADDRESS
    # The honest validators vote it through.
    for node in honest:
        key = node.key
        tx = Transaction.create(key, CHAIN, node.app.mempool.pending_nonce(key.address),
                                Call(GOVERNANCE_ADDRESS, "vote",
                                     encode_call("governance", "vote", 1, True), 0),
                                gas_limit=2_000_000, gas_price=1)
        sim.gossip(tx)

    def removed() -> bool:
        return all(n.app.executor.validator_set(n.app.executor.height + 2).get(culprit) is None
                   for n in honest)

    run_until(sim, removed, max_time=sim.now + 400)
    passed_at = min(h for h, _ in events(ex0, GOVERNANCE_ADDRESS, "ValidatorUpdate"))
    target = passed_at + 2 + REPUTATION_WINDOW
    run_until(sim, lambda: min(sim.heights()) >= target, max_time=sim.now + 800)
    sim.assert_agreement()
    for node in honest:
        ex = node.app.executor
        # Each conflict recorded exactly once, however many honest nodes reported it.
        recorded_keys = [DoubleSign.decode(fields[4]).key
                         for _, fields in events(ex, EVIDENCE_ADDRESS, "Equivocation")]
        assert recorded_keys and len(recorded_keys) == len(set(recorded_keys))
        assert all(DoubleSign.decode(f[4]).validator == culprit
                   for _, f in events(ex, EVIDENCE_ADDRESS, "Equivocation"))
        # One removal proposal in that epoch, however many conflicts were recorded.
        proposed = events(ex, GOVERNANCE_ADDRESS, "Proposed")
        assert len([p for h, p in proposed if h <= passed_at]) == 1
        # From passed_at + 2 on, the equivocator is out: not in the set, never a signer.
        assert ex.validator_set(passed_at + 1).get(culprit) is not None
        assert ex.validator_set(passed_at + 2).get(culprit) is None
        for block, cert in zip(node.app.blocks, node.app.certificates, strict=True):
            if block.height >= passed_at + 2:
                assert all(s.validator != culprit for s in cert.signatures)
                assert block.header.proposer != culprit


def test_forged_evidence_is_refused_by_every_mempool() -> None:
    sim = ChainSim(0)
    sim.start()
    run_until(sim, lambda: min(sim.heights()) >= 2, max_time=100)
    sender = sim.keys[BYZANTINE]  # funded, and sends nothing itself
    record = DoubleSign.of(2, 1, 0, sim.keys[1].address, (b"\1" * 32, b"\2" * 64),
                           (b"\3" * 32, b"\4" * 64))
    tx = Transaction.create(sender, CHAIN, 0,
                            Call(EVIDENCE_ADDRESS, EVIDENCE_METHOD,
                                 encode_args([record.encode()]), 0),
                            gas_limit=2_000_000, gas_price=1)
    for node in sim.nodes:
        with pytest.raises(TxRejected, match="does not verify") as refused:
            node.app.mempool.add(tx)
        assert refused.value.code is Code.INVALID
        assert tx.hash not in node.app.mempool
