"""Validator-set changes in the deterministic simulation: a scripted schedule of sets.

Each node runs a :class:`ScheduledApp`, a fake application that knows the schedule
``{H: set}`` ("executing block H decided this set for H + 2 on", CometBFT's rule) and,
like the real executor, answers only for heights its own chain has decided: up to its
committed height + 2. Its Core is given that app's ``validator_set``. Headers carry
``validators_hash = set(h).hash`` and ``next_validators_hash = set(h + 1).hash``, which
the app checks. A fifth, *standby* node runs a Core with a key outside the genesis set
from the start: it observes, then signs from the height its key joins.

Every scenario checks, besides agreement:

* each committed certificate against the set of its own height (from the schedule,
  never the genesis set), each header's two set hashes, each proposer;
* each full certificate check the cores made (``CommitCertificate.verify``, recorded
  by a wrapper) used the set the schedule gives that height, and each trusting check
  (``verify_trusting``, for a certificate beyond the sets the node knows) used the
  newest set that node knew, for a height really beyond it;
* a node never broadcasts a signed message for a height whose set lacks its key.

Seeds 0-99 run in the default suite, 100-199 join under ``-m slow``.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from consensus_sim import (
    CHAIN,
    EMPTY_ROOT,
    Behaviour,
    FakeApp,
    SimNode,
    Simulation,
    install_verify_cache,
    keys,
    run_to,
)

from chain.block import Block, CommitCertificate, Header
from chain.hashing import ZERO_HASH, sha256
from chain.keys import PrivateKey
from chain.validators import Validator, ValidatorSet, apply_updates, check_step
from consensus.core import REPUTATION_WINDOW, Core, block_activity
from consensus.errors import InvalidProposal
from consensus.messages import Message, message_height
from consensus.signlog import MemoryStorage, SignLog

SEEDS = [seed if seed < 100 else pytest.param(seed, marks=pytest.mark.slow)
         for seed in range(200)]

#: The unpatched checks, for the test's own verification (not recorded).
VERIFY = CommitCertificate.verify
VERIFY_TRUSTING = CommitCertificate.verify_trusting

Schedule = dict[int, ValidatorSet]


@pytest.fixture(autouse=True)
def fast_and_quiet(monkeypatch, caplog):
    install_verify_cache(monkeypatch)
    caplog.set_level(logging.ERROR, logger="agora.consensus")


# ---------------------------------------------------------------------- sets


def set_of(ks: list[PrivateKey]) -> ValidatorSet:
    return ValidatorSet(Validator(k.public_key, 1) for k in ks)


def step(old: ValidatorSet, key: PrivateKey, power: int) -> ValidatorSet:
    """``old`` with ``key`` added (power > 0) or removed (0), under governance's rules."""
    new = apply_updates(old, [(key.public_key, power)])
    check_step(old, new)
    return new


def scheduled_set(genesis: ValidatorSet, schedule: Schedule, height: int) -> ValidatorSet:
    """The set in force at ``height``: block H's decision applies from H + 2."""
    current = genesis
    for decided_at in sorted(schedule):
        if decided_at + 2 <= height:
            current = schedule[decided_at]
    return current


class ScheduledApp(FakeApp):
    """FakeApp whose chain changes its validator set on a schedule."""

    def __init__(self, genesis: ValidatorSet, schedule: Schedule) -> None:
        super().__init__(genesis)
        self.genesis = genesis
        self.schedule = schedule

    def validator_set(self, height: int) -> ValidatorSet | None:
        """The set of ``height``, or None if this node's chain has not decided it."""
        if height > len(self.blocks) + 2:
            return None
        return scheduled_set(self.genesis, self.schedule, max(height, 1))

    def _known(self, height: int) -> ValidatorSet:
        vset = self.validator_set(height)
        assert vset is not None, f"set of {height} asked at committed height {len(self.blocks)}"
        return vset

    def header_sets(self, height: int, salt: int) -> tuple[bytes, bytes]:
        """(validators_hash, next_validators_hash) for a block this node proposes."""
        return self._known(height).hash, self._known(height + 1).hash

    def propose(self, height: int, view: int, last_commit: CommitCertificate | None,
                proposer: bytes = b"", salt: int = 0) -> Block:
        prev_hash, prev_root, prev_time = self.tip
        time_ms = max(prev_time + 1, int(self.clock * 1000)) + salt
        vset = self._known(height)
        validators_hash, next_hash = self.header_sets(height, salt)
        header = Header(CHAIN, height, time_ms, prev_hash, EMPTY_ROOT, EMPTY_ROOT,
                        self.next_root(prev_root, height, time_ms), validators_hash,
                        next_hash,
                        proposer or vset.validators[(height + view) % len(vset)].address, 0,
                        sha256(last_commit.encode()) if last_commit is not None else ZERO_HASH)
        return Block(header, (), last_commit)

    def validate(self, block: Block, *, certified: bool = False) -> None:
        super().validate(block, certified=certified)
        h = block.header
        if h.validators_hash != self._known(h.height).hash:
            raise InvalidProposal(f"validators_hash of block {h.height} is not its set's")
        if h.next_validators_hash != self._known(h.height + 1).hash:
            raise InvalidProposal(f"next_validators_hash of block {h.height} is not the "
                                  "set the chain decided")


class LyingApp(ScheduledApp):
    """A Byzantine validator's app: its blocks claim sets the chain never decided (the
    honest validators in ``victims`` removed) — in next_validators_hash, or with
    ``lie_current`` in validators_hash. With ``honest_alt`` the second block of an
    equivocation (salt != 0) tells the truth. It accepts any block that executes."""

    victims: frozenset[bytes] = frozenset()
    lie_current = False
    honest_alt = False

    def header_sets(self, height: int, salt: int) -> tuple[bytes, bytes]:
        current, following = self._known(height), self._known(height + 1)
        if salt and self.honest_alt:
            return current.hash, following.hash

        def without(vset: ValidatorSet) -> bytes:
            return ValidatorSet(v for v in vset if v.address not in self.victims).hash
        if self.lie_current:
            return without(current), following.hash
        return current.hash, without(following)

    def validate(self, block: Block, *, certified: bool = False) -> None:
        FakeApp.validate(self, block, certified=certified)


@dataclass
class Liar(Behaviour):
    """Byzantine (its app lies about sets), whatever the message-level flags say."""

    @property
    def byzantine(self) -> bool:
        return True


# ---------------------------------------------------------------------- recording checks


@dataclass(frozen=True)
class Check:
    core: Core | None
    certificate_height: int
    height: int  # the height the caller checked it for (full) / the core's height
    set_hash: bytes
    trusting: bool
    passed: bool


class Recorder:
    """Every certificate check made while a test runs, and who made it."""

    def __init__(self) -> None:
        self.checks: list[Check] = []

    def by(self, core: Core, *, trusting: bool = False) -> list[Check]:
        return [c for c in self.checks if c.core is core and c.trusting is trusting]


@pytest.fixture
def recorder(monkeypatch) -> Recorder:
    rec = Recorder()

    def caller() -> Core | None:
        found = sys._getframe(2).f_locals.get("self")
        return found if isinstance(found, Core) else None

    def verify(self, chain_id, validators, *, height, block_hash):
        core = caller()
        try:
            VERIFY(self, chain_id, validators, height=height, block_hash=block_hash)
        except Exception:
            rec.checks.append(Check(core, self.height, height, validators.hash, False, False))
            raise
        rec.checks.append(Check(core, self.height, height, validators.hash, False, True))

    def verify_trusting(self, chain_id, trusted, *, block_hash=None):
        core = caller()
        at = core.height if core is not None else -1
        try:
            VERIFY_TRUSTING(self, chain_id, trusted, block_hash=block_hash)
        except Exception:
            rec.checks.append(Check(core, self.height, at, trusted.hash, True, False))
            raise
        rec.checks.append(Check(core, self.height, at, trusted.hash, True, True))

    monkeypatch.setattr(CommitCertificate, "verify", verify)
    monkeypatch.setattr(CommitCertificate, "verify_trusting", verify_trusting)
    return rec


# ---------------------------------------------------------------------- the simulation


class ScheduledSimulation(Simulation):
    """``genesis`` validators (keys 0..genesis-1) and ``standby`` more nodes with keys
    outside the genesis set; every node's app follows ``schedule``."""

    def __init__(self, seed: int, schedule: Schedule, *, genesis: int = 4, standby: int = 1,
                 apps: dict[int, Callable[[ValidatorSet, Schedule], ScheduledApp]] | None = None,
                 behaviours: dict[int, Behaviour] | None = None, **kwargs) -> None:
        self.genesis = set_of(keys(genesis))
        self.schedule = schedule
        self._apps = apps or {}
        #: (node index, height) of every message a node broadcast.
        self.broadcasts: list[tuple[int, int]] = []
        super().__init__(genesis + standby, seed, behaviours=behaviours, **kwargs)
        # Simulation's set of every key: nothing here may check against one fixed set.
        del self.validators

    def _make_node(self, i: int, storage: MemoryStorage, app: FakeApp, behaviour: Behaviour,
                   *, guard: bool = False) -> SimNode:
        if not isinstance(app, ScheduledApp):  # Simulation.__init__'s plain fake
            app = self._apps.get(i, ScheduledApp)(self.genesis, self.schedule)
        assert isinstance(app, ScheduledApp)
        height = len(app.blocks)
        core = Core(CHAIN, app.validator_set, app, SignLog.in_memory(storage), key=self.keys[i],
                    height=height, last_commit=app.certificates[-1] if height else None,
                    last_block=app.blocks[-1] if height else None, timeouts=self.timeouts,
                    recent_blocks=app.blocks[-(REPUTATION_WINDOW + 1):],
                    double_sign_guard=guard)
        return SimNode(i, self.keys[i], app, storage, core, behaviour)

    def _send_all(self, node: SimNode, message: Message) -> None:
        self.broadcasts.append((node.index, message_height(message)))
        super()._send_all(node, message)

    def expected(self, height: int) -> ValidatorSet:
        return scheduled_set(self.genesis, self.schedule, height)

    def address(self, i: int) -> bytes:
        return self.keys[i].address

    def alive(self) -> list[SimNode]:
        return [n for n in self.nodes if n.alive]

    def run_until_any_committed(self, height: int, *, max_time: float) -> SimNode:
        """Stop at the first event after which some node has committed ``height``."""
        assert self.run(lambda: max(self.heights(self.nodes)) >= height,
                        max_time=max_time), f"nobody reached {height}: {self.heights()}"
        return max(self.nodes, key=lambda n: len(n.app.blocks))

    def assert_agreement(self) -> None:
        """No fork among the honest; each block's certificate checks out against the
        set of its own height, the parent certificate it carries against its parent's
        height's set, its header names both sets and a proposer of its height's set;
        and nobody broadcast for a height whose set lacks its key."""
        self.assert_no_fork()
        for node in self.honest:
            for block, cert in zip(node.app.blocks, node.app.certificates, strict=True):
                h, header = block.height, block.header
                vset = self.expected(h)
                VERIFY(cert, CHAIN, vset, height=h, block_hash=block.hash)
                assert header.validators_hash == vset.hash, f"block {h}: validators_hash"
                assert header.next_validators_hash == self.expected(h + 1).hash, \
                    f"block {h}: next_validators_hash"
                assert vset.get(header.proposer) is not None, f"block {h}: proposer"
                if h > 1:
                    assert block.last_commit is not None
                    VERIFY(block.last_commit, CHAIN, self.expected(h - 1), height=h - 1,
                           block_hash=header.prev_hash)
        for index, height in self.broadcasts:
            assert self.expected(height).get(self.address(index)) is not None, \
                f"node {index} signed at height {height}, outside that height's set"

    def assert_checks(self, recorder: Recorder) -> None:
        """No certificate was ever checked against the wrong set."""
        assert recorder.checks, "no certificate check recorded"
        switch = min(self.schedule) + 2
        assert any(not c.trusting and c.height >= switch for c in recorder.checks), \
            "no certificate checked after the first change"
        for c in recorder.checks:
            assert c.core is not None, "a certificate checked outside the cores"
            if c.trusting:
                # Only for heights the node's chain has not decided the set of yet,
                # against the newest set it knows (that of its height + 1).
                assert c.certificate_height > c.height + 1, c
                assert c.set_hash == self.expected(c.height + 1).hash, c
            else:
                assert c.set_hash == self.expected(c.height).hash, \
                    f"certificate of {c.certificate_height} checked against the wrong set ({c})"

    def check(self, recorder: Recorder) -> None:
        self.assert_agreement()
        self.assert_checks(recorder)


#: Virtual seconds a run may take to reach its height (a healthy one needs a tenth of
#: that; a stuck one gives up after a second or so of wall time).
BUDGET = 100.0


def advance(sim: Simulation, height: int, nodes: list[SimNode] | None = None) -> None:
    run_to(sim, height, max_time=sim.now + BUDGET, nodes=nodes)


def signers(node: SimNode) -> dict[int, set[bytes]]:
    """Height -> the validators whose COMMIT the node's chain shows for it (the
    certificate it committed with, and the one the next block carries)."""
    out: dict[int, set[bytes]] = {}
    for cert in node.app.certificates:
        out.setdefault(cert.height, set()).update(s.validator for s in cert.signatures)
    for block in node.app.blocks:
        if block.last_commit is not None:
            lc = block.last_commit
            out.setdefault(lc.height, set()).update(s.validator for s in lc.signatures)
    return out


def proposers(node: SimNode) -> dict[int, bytes]:
    return {b.height: b.header.proposer for b in node.app.blocks}


def rejections(sim: Simulation) -> list[tuple[int, str]]:
    return [(n.index, r) for n in sim.honest for r in n.rejected]


def old_rotation_proposer(blocks: list[Block], vset: ValidatorSet, height: int) -> bytes:
    """The proposer of (height, 0) had ``vset`` stayed in force (the core's rule)."""
    window = [block_activity(b) for b in blocks[:height - 2]][-REPUTATION_WINDOW:]
    everyone = tuple(v.address for v in vset)
    rotation = everyone
    if len(window) == REPUTATION_WINDOW:
        active = frozenset().union(*window)
        rotation = tuple(a for a in everyone if a in active) or everyone
    return rotation[height % len(rotation)]


# ---------------------------------------------------------------------- scenarios


@pytest.mark.parametrize("seed", SEEDS)
def test_a_validator_voted_in_joins_at_h_plus_2(seed: int, recorder: Recorder) -> None:
    """Block H votes in the standby: from H + 2 on every honest node uses the set of
    five; the new validator signs and, in its turn, proposes."""
    ks = keys(5)
    H = 1 + seed % 12
    schedule = {H: step(set_of(ks[:4]), ks[4], 1)}
    sim = ScheduledSimulation(seed, schedule)
    new = sim.address(4)
    sim.start()
    advance(sim, H + 16)
    sim.check(recorder)
    assert not rejections(sim) and not sim.evidence
    for node in sim.honest:
        signed = signers(node)
        assert all(new not in signed[h] for h in signed if h < H + 2)
        assert any(new in signed[h] for h in signed if h >= H + 2), "the new validator never signed"
        assert new in proposers(node).values(), "the new validator never proposed"
        assert all(h >= H + 2 for h, p in proposers(node).items() if p == new)
        # Every honest core switched: they are past H + 2 and track the five.
        assert len(node.core.validators) == 5
    assert sim.nodes[4].core.address == new
    assert any(i == 4 for i, _ in sim.broadcasts)
    # A switch on time costs no view change: no honest node waited for a proposer the
    # new set does not have, nor ignored the new validator's votes.
    first = sim.nodes[0].app.certificates
    assert all(c.view == 0 for c in first[H - 1:H + 3]), [c.view for c in first]


@pytest.mark.parametrize("seed", SEEDS)
def test_a_validator_voted_out_while_it_is_the_next_proposer(seed: int,
                                                             recorder: Recorder) -> None:
    """Five genesis validators; block H removes the one the old rotation makes the
    proposer of H + 2, view 0. It keeps running honestly with its key (or, for a
    quarter of the seeds, crashes as it leaves): the chain goes on without a view
    change, and it never signs or proposes again."""
    ks = keys(5)
    H = 1 + seed % 12
    gone = (H + 2) % 5  # the old rotation's proposer of H + 2 (all five active)
    schedule = {H: step(set_of(ks), ks[gone], 0)}
    sim = ScheduledSimulation(seed, schedule, genesis=5, standby=0)
    address = sim.address(gone)
    crash = seed % 4 == 0
    sim.start()
    if crash:
        sim.run_until_any_committed(H, max_time=sim.now + BUDGET)
        sim.crash(gone)
    advance(sim, H + 14, nodes=sim.alive())
    sim.check(recorder)
    assert not rejections(sim) and not sim.evidence
    chain = sim.nodes[(gone + 1) % 5].app
    assert old_rotation_proposer(chain.blocks, sim.expected(H + 1), H + 2) == address
    for node in sim.honest:
        signed = signers(node)
        assert all(address not in signed[h] for h in signed if h >= H + 2)
        assert all(p != address for h, p in proposers(node).items() if h >= H + 2)
    if not crash:
        # It was a live validator until then (it signed at H + 1, its last height in
        # the set), and it followed the chain after as an observer.
        assert (gone, H + 1) in sim.broadcasts
        assert sim.nodes[gone].core.address is None
        assert sim.nodes[gone].core.key_address == address
        assert all(h < H + 2 for i, h in sim.broadcasts if i == gone)
    # The new proposer of H + 2 is known to all: no view change at the switch (with
    # the removed one down, H + 1 may need one: it still is in that height's rotation).
    assert all(c.view == 0 for c in chain.certificates[H + crash:H + 3]), \
        [c.view for c in chain.certificates]


@pytest.mark.parametrize("seed", SEEDS)
def test_a_byzantine_proposer_cannot_vote_honest_validators_out(seed: int,
                                                                recorder: Recorder) -> None:
    """One Byzantine validator of four proposes blocks whose header claims a set
    without some honest validators (in next_validators_hash, or for some seeds in
    validators_hash), alone or while also equivocating or double voting. The honest
    reject those blocks; the chain keeps the scheduled sets (the standby still joins at
    H + 2)."""
    ks = keys(5)
    H = 1 + seed % 10
    byzantine = seed % 4
    honest_validators = [k.address for i, k in enumerate(ks[:4]) if i != byzantine]
    mode = seed // 4 % 3  # 0: lies only, 1: and equivocates, 2: and double votes

    def liar(genesis: ValidatorSet, schedule: Schedule) -> ScheduledApp:
        app = LyingApp(genesis, schedule)
        app.victims = frozenset(honest_validators[:1 + seed % 2])
        app.lie_current = seed % 5 == 0
        app.honest_alt = True
        return app

    sim = ScheduledSimulation(
        seed, {H: step(set_of(ks[:4]), ks[4], 1)}, apps={byzantine: liar},
        behaviours={byzantine: Liar(equivocate_proposals=mode == 1, double_vote=mode == 2)})
    sim.start()
    advance(sim, H + 14)
    sim.check(recorder)
    culprit = sim.address(byzantine)
    found = rejections(sim)
    assert found, "no lying proposal reached an honest validator"
    assert all("validators_hash" in reason for _, reason in found), found
    for node in sim.honest:
        # No committed block names a set other than the schedule's (assert_agreement);
        # unless it equivocated with a truthful second block, none is the liar's.
        if mode != 1:
            assert culprit not in proposers(node).values()
        assert len(node.core.validators) == 5
    for evidence in sim.evidence:
        assert evidence.validator == culprit


@pytest.mark.parametrize("seed", SEEDS)
def test_a_change_while_the_proposer_at_the_switch_is_down(seed: int,
                                                            recorder: Recorder) -> None:
    """The standby is voted in at H while the proposer of H + 1 (view 0, old set) or
    of H + 2 (view 0, new set) is crashed: the switch happens through view changes.
    The crashed validator then restarts from its sign log and catches up."""
    ks = keys(5)
    H = 2 + seed % 11
    sim = ScheduledSimulation(seed, {H: step(set_of(ks[:4]), ks[4], 1)})
    sim.start()
    target = H + 1 + seed % 2
    first = sim.run_until_any_committed(target - 2, max_time=sim.now + BUDGET)
    # The proposer of (target, 0) as the cores see it (its set is known by now).
    victim_address = first.core.proposer(target, 0)
    victim = next(i for i in range(5) if sim.address(i) == victim_address)
    sim.crash(victim)
    alive = sim.alive()
    advance(sim, H + 14, nodes=alive)
    views = [c.view for c in alive[0].app.certificates]
    assert views[target - 1] > 0, f"height {target} was decided in view 0: {views}"
    sim.restart(victim)
    advance(sim, H + 18)
    sim.check(recorder)
    assert not rejections(sim)
    for node in sim.honest:
        assert len(node.core.validators) == 5
        assert all(h >= H + 2 for h, p in proposers(node).items() if p == sim.address(4))


@pytest.mark.parametrize("seed", SEEDS)
def test_a_validator_down_across_the_change_catches_up_by_sync(seed: int,
                                                                 recorder: Recorder) -> None:
    """A genesis validator crashes before H (the standby is voted in at H) and restarts
    from its sign log after H + 5: certificates beyond the sets it knows only send it
    syncing (a trusting check against the newest set it knows), and each synced block
    is checked against its own height's set, across the change."""
    ks = keys(5)
    H = 3 + seed % 10
    victim = seed % 4
    sim = ScheduledSimulation(seed, {H: step(set_of(ks[:4]), ks[4], 1)})
    sim.start()
    sim.run_until_any_committed(H - 1 - seed % 3, max_time=sim.now + BUDGET)
    sim.crash(victim)
    ahead = H + 6 + seed % 4
    advance(sim, ahead, nodes=sim.alive())
    node = sim.restart(victim)
    behind = len(node.app.blocks)
    assert behind < H
    advance(sim, ahead + 6)
    sim.check(recorder)
    assert node.core.address == sim.address(victim)
    full = {c.certificate_height for c in recorder.by(node.core) if c.passed}
    missing = set(range(behind + 1, ahead)) - full
    assert not missing, f"heights {sorted(missing)} never checked by the restarted node"
    trusting = [c for c in recorder.by(node.core, trusting=True) if c.passed]
    assert trusting, "the restarted node synced without a certificate from far ahead"
    assert all(c.set_hash == sim.genesis.hash for c in trusting if c.height + 1 < H + 2)
    assert not rejections(sim)


def restart_at_the_switch(seed: int, recorder: Recorder) -> ScheduledSimulation:
    ks = keys(5)
    H = 1 + seed % 10
    victim = 4 if seed % 2 == 0 else seed // 2 % 4
    at = H + seed // 3 % 2  # crash once it has committed H or H + 1
    pause = (0.0, 0.3, 5.0)[seed // 5 % 3]
    lose_signlog = seed % 7 == 0
    sim = ScheduledSimulation(seed, {H: step(set_of(ks[:4]), ks[4], 1)})
    sim.start()
    assert sim.run(lambda: len(sim.nodes[victim].app.blocks) >= at, max_time=sim.now + BUDGET)
    sim.crash(victim)
    sim.run(lambda: False, max_time=sim.now + pause)
    node = sim.restart(victim, lose_signlog=lose_signlog)
    assert node.core.height == at + 1
    assert (node.core.address is not None) == (victim != 4 or at + 1 >= H + 2)
    advance(sim, max(H + 14, *sim.heights()) + 6)
    sim.check(recorder)
    assert node.core.address == sim.address(victim)
    new = sim.address(4)
    signed = signers(sim.nodes[0])
    assert all(new not in signed[h] for h in signed if h < H + 2)
    if not lose_signlog:
        assert any(sim.address(victim) in signed[h] for h in signed if h > at + 1)
    return sim


@pytest.mark.parametrize("seed", SEEDS)
def test_a_node_restarting_at_the_switch(seed: int, recorder: Recorder) -> None:
    """The standby or a genesis validator crashes just after committing H or H + 1
    (the standby is voted in at H) and restarts from its sign log — at once, a little
    later or much later, for some seeds with its sign log lost — so its new core's
    first height is H + 1 or H + 2, on either side of the switch."""
    sim = restart_at_the_switch(seed, recorder)
    assert not rejections(sim)


@pytest.mark.parametrize("seed", [549, 789])
def test_a_late_proposal_for_the_height_just_decided_is_not_refused(seed: int,
                                                                    recorder: Recorder) -> None:
    """As above; in these runs the restarted validator, the proposer of (14, 0) in the
    reputation rotation (the standby, in the set since 12, is not active yet), proposes
    late, after node 0 has committed 14. Core._help_behind checks the proposal with
    proposer(14, 0), and rotation() gives a height two below the one being decided the
    plain rotation of its whole set (the standby's turn): "block 14 view 0 names
    proposer <node 2>, expected <standby>" — an honest peer refused (the driver punishes
    it) and not helped. A NEW-VIEW from a lagging proposer hit the same check. Fixed:
    a late proposal is checked against the proposer its block names."""
    sim = restart_at_the_switch(seed, recorder)
    assert not rejections(sim), rejections(sim)


@pytest.mark.parametrize("seed", SEEDS)
def test_two_successive_changes(seed: int, recorder: Recorder) -> None:
    """The standby is voted in at H1, then a genesis validator voted out at H2 > H1 + 2
    (it keeps running): sets of 4, 5, then 4 again, each from two heights after."""
    ks = keys(5)
    H1 = 1 + seed % 8
    H2 = H1 + 3 + seed // 8 % 5
    gone = seed % 4
    five = step(set_of(ks[:4]), ks[4], 1)
    schedule = {H1: five, H2: step(five, ks[gone], 0)}
    sim = ScheduledSimulation(seed, schedule)
    new, old = sim.address(4), sim.address(gone)
    sim.start()
    advance(sim, H2 + 14)
    sim.check(recorder)
    assert not rejections(sim) and not sim.evidence
    for node in sim.honest:
        signed = signers(node)
        assert all(new not in signed[h] for h in signed if h < H1 + 2)
        assert any(new in signed[h] for h in signed if h >= H1 + 2)
        assert all(old not in signed[h] for h in signed if h >= H2 + 2)
        assert all(p != old for h, p in proposers(node).items() if h >= H2 + 2)
        assert [len(sim.expected(b.height)) for b in node.app.blocks[H1 - 1:H1 + 3]] == \
            [4, 4, 5, 5]
        assert len(node.core.validators) == 4
    assert sim.nodes[gone].core.address is None
    assert sim.nodes[4].core.address == new
    assert all(h < H2 + 2 for i, h in sim.broadcasts if i == gone)
    assert all(h >= H1 + 2 for i, h in sim.broadcasts if i == 4)
