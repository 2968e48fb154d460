"""The PBFT core fed by hand, one message at a time (h11 ``ConnectionPair`` style).

Each test builds the core of one validator of four (or an observer) over a
``FakeApp`` and an in-memory sign log, feeds it exactly the messages it constructs,
signed with the other validators' keys, and checks the actions that come back. No
network, no clock, no randomness: ``now`` is whatever the test says.

With four validators of power 1, a quorum is 3 and "more than a third" is 2. The
proposer of (height, view) is validator ``(height + view) % 4``: at height 1 that is
1 for view 0, 2 for view 1 and 3 for view 2; at height 2, 2 for view 0.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterable

import pytest
from consensus_sim import CHAIN, TIMEOUTS, FakeApp, keys

import consensus.core
from chain.block import Block, CommitCertificate, Vote, VoteKind
from chain.hashing import sha256
from chain.keys import PrivateKey
from chain.validators import Validator, ValidatorSet
from consensus.core import (
    _BLOCK_REPLY_INTERVAL,
    _MAX_FUTURE,
    _MAX_HELPED,
    _MAX_VIEWS_AHEAD,
    Action,
    Broadcast,
    Commit,
    Core,
    Evidence,
    Reply,
    SetTimer,
    Sync,
    Timeouts,
    Timer,
    TimerKind,
)
from consensus.errors import InvalidMessage, LocalError
from consensus.messages import (
    CompactProposal,
    Decision,
    Message,
    NewView,
    PreparedCertificate,
    Proposal,
    ViewChange,
    ViewChangeMessage,
    VoteMessage,
)
from consensus.signlog import VIEW_CHANGE, MemoryStorage, SignLog

KEYS = keys(4)
ADDR = [k.address for k in KEYS]
OUTSIDER = PrivateKey.from_seed_text("not-a-validator")
VSET = ValidatorSet(Validator(k.public_key, 1) for k in KEYS)
PREPARE, COMMIT = VoteKind.PREPARE, VoteKind.COMMIT
OTHER_HASH = b"\x0b" * 32


def proposer_of(height: int, view: int) -> int:
    return (height + view) % len(KEYS)


# ---------------------------------------------------------------------- messages


def make_block(height: int = 1, view: int = 0, *, app: FakeApp | None = None,
               last_commit: CommitCertificate | None = None, salt: int = 0,
               proposer: bytes = b"", **header_changes) -> Block:
    """The block the (fake) application builds; a fresh app is at genesis, so every
    fresh app builds the same block for the same arguments."""
    block = (app or FakeApp(VSET)).propose(height, view, last_commit, proposer=proposer,
                                           salt=salt)
    if header_changes:
        block = dataclasses.replace(
            block, header=dataclasses.replace(block.header, **header_changes))
    return block


def proposal(block: Block, view: int = 0, *, signer: PrivateKey | None = None,
             chain_id: str = CHAIN) -> Proposal:
    key = KEYS[proposer_of(block.height, view)] if signer is None else signer
    return Proposal.create(key, chain_id, view, block)


def vote(i: int, kind: int, block_hash: bytes, *, height: int = 1, view: int = 0) -> VoteMessage:
    return VoteMessage(Vote.create(KEYS[i], CHAIN, kind, height, view, block_hash))


def votes(signers: Iterable[int], kind: int, block_hash: bytes, *, height: int = 1,
          view: int = 0) -> list[VoteMessage]:
    return [vote(i, kind, block_hash, height=height, view=view) for i in signers]


def prepared_cert(signers: Iterable[int], block_hash: bytes, *, height: int = 1,
                  view: int = 0) -> PreparedCertificate:
    return PreparedCertificate(view, block_hash, tuple(
        m.vote for m in votes(signers, PREPARE, block_hash, height=height, view=view)))


def commit_cert(signers: Iterable[int], block_hash: bytes, *, height: int = 1,
                view: int = 0) -> CommitCertificate:
    return CommitCertificate.from_votes(
        m.vote for m in votes(signers, COMMIT, block_hash, height=height, view=view))


def view_change(i: int, view: int = 1, *, height: int = 1,
                prepared: PreparedCertificate | None = None) -> ViewChange:
    return ViewChange.create(KEYS[i], CHAIN, height, view, prepared)


def vc_message(i: int, view: int = 1, *, prepared: PreparedCertificate | None = None,
               block: Block | None = None) -> ViewChangeMessage:
    return ViewChangeMessage(view_change(i, view, prepared=prepared), block)


def new_view(changes: Iterable[ViewChange], block: Block, view: int = 1, *,
             signer: PrivateKey | None = None) -> NewView:
    return NewView(tuple(changes), proposal(block, view, signer=signer))


def chain_of_one() -> tuple[FakeApp, Block, CommitCertificate]:
    """An application that committed block 1 (certified by 0, 1 and 3)."""
    app = FakeApp(VSET)
    block = make_block(1)
    certificate = commit_cert((0, 1, 3), block.hash)
    app.commit(block, certificate)
    return app, block, certificate


# ---------------------------------------------------------------------- actions


def sent(actions: list[Action], kind: type) -> list:
    return [a.message for a in actions if type(a) is Broadcast and type(a.message) is kind]


def sent_votes(actions: list[Action], kind: int) -> list[Vote]:
    return [m.vote for m in sent(actions, VoteMessage) if m.vote.kind == kind]


def of_type(actions: list[Action], kind: type) -> list:
    return [a for a in actions if type(a) is kind]


def timer_set(actions: list[Action], kind: TimerKind) -> list[SetTimer]:
    return [a for a in of_type(actions, SetTimer) if a.timer.kind is kind]


# ---------------------------------------------------------------------- the node


class Node:
    """Validator ``index`` (None: an observer) with its app and sign log, driven by
    hand. ``restart()`` builds a new core over the same storage and app, as after a
    crash: everything in memory is lost, the sign log and committed blocks are not."""

    def __init__(self, index: int | None, *, app: FakeApp | None = None,
                 storage: MemoryStorage | None = None, compact_bytes: int | None = None,
                 start_at: float = 0.0) -> None:
        self.index = index
        self.app = app or FakeApp(VSET)
        self.storage = storage if storage is not None else MemoryStorage()
        signlog = (SignLog(self.storage) if compact_bytes is None
                   else SignLog(self.storage, compact_bytes=compact_bytes))
        height = len(self.app.blocks)
        self.core = Core(CHAIN, VSET, self.app, signlog,
                         key=KEYS[index] if index is not None else None, height=height,
                         last_commit=self.app.certificates[-1] if height else None,
                         timeouts=TIMEOUTS)
        self.start_actions = self.core.start(start_at)

    def restart(self, now: float = 0.0) -> Node:
        return Node(self.index, app=self.app, storage=self.storage, start_at=now)

    def feed(self, *messages: Message, now: float = 0.0,
             sender: bytes | None = None) -> list[Action]:
        out: list[Action] = []
        for message in messages:
            self.app.clock = now
            out += self.core.on_message(message, now, sender)
        return out

    def fire(self, kind: TimerKind, view: int, now: float, height: int | None = None) -> list[Action]:
        self.app.clock = now
        return self.core.on_timer(Timer(kind, height or self.core.height, view), now)

    def finish_commit(self, actions: list[Action], now: float = 0.0) -> list[Action]:
        """Write the block of the (single) Commit action, then tell the core."""
        [commit] = of_type(actions, Commit)
        self.app.commit(commit.block, commit.certificate)
        self.app.clock = now
        return self.core.committed(now)

    @property
    def signed_anything(self) -> bool:
        return bool(self.storage.data)


def prepared_node() -> tuple[Node, Proposal]:
    """Validator 2 after PREPAREs of 0, 1 and itself for block 1 in view 0: prepared,
    and its COMMIT sent."""
    node = Node(2)
    p = proposal(make_block(1))
    out = node.feed(p, *votes((0, 1), PREPARE, p.block.hash))
    assert [v.block_hash for v in sent_votes(out, COMMIT)] == [p.block.hash]
    return node, p


# ====================================================================== normal path


def test_start_sets_the_view_timer_and_the_proposers_propose_timer() -> None:
    proposer, other = Node(1), Node(2)
    assert proposer.start_actions == [
        SetTimer(Timer(TimerKind.VIEW, 1, 0), TIMEOUTS.view(0)),
        SetTimer(Timer(TimerKind.PROPOSE, 1, 0), TIMEOUTS.block_interval),
    ]
    assert other.start_actions == [SetTimer(Timer(TimerKind.VIEW, 1, 0), TIMEOUTS.view(0))]


def test_proposer_with_pending_txs_proposes_after_block_interval() -> None:
    node = Node(1)
    out = node.fire(TimerKind.PROPOSE, 0, TIMEOUTS.block_interval)
    [p] = sent(out, Proposal)
    assert (p.height, p.view, p.block.header.proposer) == (1, 0, ADDR[1])
    assert p.verify(CHAIN, KEYS[1].public_key)
    assert p.block.last_commit is None
    [prepare] = sent_votes(out, PREPARE)
    assert (prepare.validator, prepare.view, prepare.block_hash) == (ADDR[1], 0, p.block.hash)


def test_idle_proposer_rearms_until_the_idle_interval() -> None:
    node = Node(1)
    node.app.pending = False
    out = node.fire(TimerKind.PROPOSE, 0, TIMEOUTS.block_interval)
    assert out == [SetTimer(Timer(TimerKind.PROPOSE, 1, 0), TIMEOUTS.idle_interval)]
    out = node.fire(TimerKind.PROPOSE, 0, TIMEOUTS.idle_interval)
    assert len(sent(out, Proposal)) == 1


def test_proposer_prepares_then_commits_its_own_block() -> None:
    node = Node(1)
    [p] = sent(node.fire(TimerKind.PROPOSE, 0, 0.05), Proposal)
    h = p.block.hash
    assert node.feed(vote(0, PREPARE, h)) == []
    out = node.feed(vote(3, PREPARE, h))
    assert [v.block_hash for v in sent_votes(out, COMMIT)] == [h]
    assert node.feed(vote(0, COMMIT, h)) == []
    [commit] = of_type(node.feed(vote(3, COMMIT, h)), Commit)
    assert commit.block == p.block
    commit.certificate.verify(CHAIN, VSET, height=1, block_hash=h)
    assert {s.validator for s in commit.certificate.signatures} == {ADDR[0], ADDR[1], ADDR[3]}


def test_full_round_at_a_validator_then_the_next_height_starts() -> None:
    node = Node(2)
    p = proposal(make_block(1))
    h = p.block.hash
    assert [v.block_hash for v in sent_votes(node.feed(p), PREPARE)] == [h]
    assert sent_votes(node.feed(vote(0, PREPARE, h)), COMMIT) == []
    assert [v.block_hash for v in sent_votes(node.feed(vote(1, PREPARE, h)), COMMIT)] == [h]
    assert node.feed(vote(0, COMMIT, h)) == []
    out = node.feed(vote(1, COMMIT, h), now=0.3)
    [commit] = of_type(out, Commit)
    commit.certificate.verify(CHAIN, VSET, height=1, block_hash=h)

    # Until the driver acknowledges the commit, the core refuses input.
    with pytest.raises(LocalError):
        node.feed(vote(3, COMMIT, h))
    with pytest.raises(LocalError):
        node.fire(TimerKind.VIEW, 0, 1.0)

    out = node.finish_commit(out, now=0.4)
    assert node.core.height == 2
    # Validator 2 proposes at height 2: both timers, counted from the commit.
    assert set(of_type(out, SetTimer)) == {
        SetTimer(Timer(TimerKind.VIEW, 2, 0), 0.4 + TIMEOUTS.view(0)),
        SetTimer(Timer(TimerKind.PROPOSE, 2, 0), 0.4 + TIMEOUTS.block_interval),
    }
    with pytest.raises(LocalError):
        node.core.committed(0.5)  # nothing to acknowledge
    # Timers of the decided height are stale.
    assert node.fire(TimerKind.VIEW, 0, 1.0, height=1) == []

    [p2] = sent(node.fire(TimerKind.PROPOSE, 0, 0.45), Proposal)
    assert (p2.height, p2.block.header.prev_hash) == (2, h)
    assert p2.block.last_commit == commit.certificate


# ====================================================================== proposals


def test_non_proposer_prepares_a_valid_proposal_once() -> None:
    node = Node(0)
    p = proposal(make_block(1))
    assert [(v.validator, v.height, v.view, v.block_hash) for v in sent_votes(node.feed(p), PREPARE)
            ] == [(ADDR[0], 1, 0, p.block.hash)]
    assert node.feed(p) == []  # the same proposal again


def test_two_proposals_for_one_view_are_evidence() -> None:
    node = Node(3)
    first, second = proposal(make_block(1)), proposal(make_block(1, salt=1))
    node.feed(first)
    out = node.feed(second)
    # Kept as signed headers (CompactProposal): verifiable, without two whole blocks.
    expected = Evidence(ADDR[1], CompactProposal.of(first), CompactProposal.of(second))
    assert of_type(out, Evidence) == [expected] == node.core.evidence
    assert sent_votes(out, PREPARE) == []


def _at_height_two() -> tuple[Node, FakeApp]:
    app, _block, _cert = chain_of_one()
    node_app = FakeApp(VSET)
    node_app.commit(app.blocks[0], app.certificates[0])
    return Node(0, app=node_app), app


BAD_PROPOSALS = {
    "wrong proposer": lambda: proposal(make_block(1, proposer=ADDR[3]), signer=KEYS[3]),
    "bad signature": lambda: proposal(make_block(1), signer=KEYS[3]),
    "signed for another chain": lambda: proposal(make_block(1), chain_id="other-chain"),
    "view 1 outside a NEW-VIEW": lambda: proposal(make_block(1, 1), 1),
    "the app rejects the block": lambda: proposal(make_block(1, state_root=b"\x01" * 32)),
    "block on another parent": lambda: proposal(make_block(1, prev_hash=OTHER_HASH)),
}


@pytest.mark.parametrize("case", BAD_PROPOSALS)
def test_bad_proposal_is_refused_and_nothing_is_signed(case: str) -> None:
    node = Node(0)
    with pytest.raises(InvalidMessage):
        node.feed(BAD_PROPOSALS[case]())
    assert not node.signed_anything
    # The refusal does not keep the node from preparing the genuine proposal.
    good = proposal(make_block(1))
    assert [v.block_hash for v in sent_votes(node.feed(good), PREPARE)] == [good.block.hash]


def _with_forged_signature(cert: CommitCertificate) -> CommitCertificate:
    """The last signer's signature replaced by another signer's."""
    sigs = list(cert.signatures)
    sigs[-1] = dataclasses.replace(sigs[-1], signature=sigs[0].signature)
    return dataclasses.replace(cert, signatures=tuple(sigs))


PARENT_CERTIFICATES = {
    "missing": lambda block: None,
    "without a quorum": lambda block: commit_cert((0, 1), block.hash),
    "for another block": lambda block: commit_cert((0, 1, 3), OTHER_HASH),
    "forged signature": lambda block: _with_forged_signature(commit_cert((0, 1, 3), block.hash)),
}


@pytest.mark.parametrize("case", PARENT_CERTIFICATES)
def test_proposal_with_a_bad_parent_certificate_is_refused(case: str) -> None:
    node, world = _at_height_two()
    parent = world.blocks[0]
    bad = proposal(make_block(2, app=world, last_commit=PARENT_CERTIFICATES[case](parent)))
    with pytest.raises(InvalidMessage):
        node.feed(bad)
    assert not node.signed_anything
    good = proposal(make_block(2, app=world, last_commit=world.certificates[0]))
    assert [v.block_hash for v in sent_votes(node.feed(good), PREPARE)] == [good.block.hash]


# ====================================================================== votes


def test_badly_signed_or_outsider_votes_are_refused() -> None:
    node = Node(0)
    genuine = vote(1, PREPARE, OTHER_HASH).vote
    forged = dataclasses.replace(genuine, validator=ADDR[2])  # 1's signature, 2's name
    outsider = Vote.create(OUTSIDER, CHAIN, PREPARE, 1, 0, OTHER_HASH)
    other_chain = Vote.create(KEYS[1], "other-chain", PREPARE, 1, 0, OTHER_HASH)
    for bad in (forged, outsider, other_chain):
        with pytest.raises(InvalidMessage):
            node.feed(VoteMessage(bad))
    assert node.core.evidence == []


def test_duplicate_votes_are_counted_once() -> None:
    node = Node(2)
    p = proposal(make_block(1))
    node.feed(p)
    prepare = vote(0, PREPARE, p.block.hash)
    assert node.feed(prepare, prepare, prepare) == []  # 2 distinct signers: no quorum
    assert len(sent_votes(node.feed(vote(1, PREPARE, p.block.hash)), COMMIT)) == 1


def test_double_vote_is_evidence_and_the_second_vote_does_not_count() -> None:
    node = Node(None)  # an observer, so that all four validators can vote
    x, y = make_block(1).hash, OTHER_HASH
    first, second = vote(0, COMMIT, x), vote(0, COMMIT, y)
    assert node.feed(first) == []
    out = node.feed(second)
    assert out == [Evidence(ADDR[0], first.vote, second.vote)]
    assert node.core.evidence == out
    # Were 0's second vote counted, 1 and 3 would make a quorum for y (and a sync).
    assert node.feed(*votes((1, 3), COMMIT, y)) == []
    assert node.feed(vote(2, COMMIT, y)) == [Sync(1)]


def test_a_forged_conflicting_vote_is_not_evidence() -> None:
    node = Node(2)
    node.feed(vote(0, COMMIT, make_block(1).hash))
    framed = dataclasses.replace(vote(1, COMMIT, OTHER_HASH).vote, validator=ADDR[0])
    with pytest.raises(InvalidMessage):
        node.feed(VoteMessage(framed))
    assert node.core.evidence == []


def test_votes_too_far_ahead_in_view_are_ignored() -> None:
    node = Node(2)
    far = _MAX_VIEWS_AHEAD + 1
    assert node.feed(*votes((0, 1, 3), COMMIT, OTHER_HASH, view=far)) == []
    # At the limit they count: a COMMIT quorum, for a block we lack.
    assert node.feed(*votes((0, 1, 3), COMMIT, OTHER_HASH, view=far - 1))[-1:] == [Sync(1)]


# ====================================================================== sync


def test_commit_quorum_for_an_unknown_block_syncs_once_while_in_flight() -> None:
    node = Node(2)
    outs = [node.feed(m) for m in votes((0, 1, 3), COMMIT, OTHER_HASH)]
    assert outs == [[], [], [Sync(1)]]
    assert node.feed(vote(0, PREPARE, OTHER_HASH)) == []  # a sync is under way
    node.core.on_sync_done()
    assert node.feed(vote(1, PREPARE, OTHER_HASH)) == [Sync(1)]


def test_certified_block_from_sync_commits() -> None:
    node = Node(2)
    block = make_block(1)
    certificate = commit_cert((0, 1, 3), block.hash)
    out = node.core.on_certified_block(block, certificate, 0.0)
    assert out == [Commit(block, certificate)]
    node.finish_commit(out)
    assert node.core.height == 2
    assert node.core.on_certified_block(block, certificate, 0.0) == []  # already decided


def test_certified_block_for_another_height_is_ignored() -> None:
    _app, block, certificate = chain_of_one()
    world = FakeApp(VSET)
    world.commit(block, certificate)
    block2 = make_block(2, app=world, last_commit=certificate)
    assert Node(2).core.on_certified_block(
        block2, commit_cert((0, 1, 3), block2.hash, height=2), 0.0) == []


BAD_SYNCED = {
    "certificate without a quorum": lambda b: (b, commit_cert((0, 1), b.hash)),
    "certificate for another block": lambda b: (b, commit_cert((0, 1, 3), OTHER_HASH)),
    "certificate for another height": lambda b: (b, commit_cert((0, 1, 3), b.hash, height=2)),
    "certificate with a forged signature": lambda b: (
        b, _with_forged_signature(commit_cert((0, 1, 3), b.hash))),
    "block the app rejects": lambda b: (
        make_block(1, state_root=b"\x01" * 32),
        commit_cert((0, 1, 3), make_block(1, state_root=b"\x01" * 32).hash)),
}


@pytest.mark.parametrize("case", BAD_SYNCED)
def test_certified_block_that_does_not_check_out_is_refused(case: str) -> None:
    node = Node(2)
    block, certificate = BAD_SYNCED[case](make_block(1))
    with pytest.raises(InvalidMessage):
        node.core.on_certified_block(block, certificate, 0.0)
    assert node.core.height == 1


# ====================================================================== the next height


def test_proposal_for_the_next_height_commits_the_block_we_hold() -> None:
    world, block1, cert1 = chain_of_one()
    node = Node(3)
    node.feed(proposal(block1))  # we hold block 1 (and PREPAREd it)
    p2 = proposal(make_block(2, app=world, last_commit=cert1))
    out = node.feed(p2)
    assert out == [Commit(block1, cert1)]
    out = node.finish_commit(out)
    # The buffered proposal is handled at height 2.
    assert [v.block_hash for v in sent_votes(out, PREPARE)] == [p2.block.hash]


def test_proposal_for_the_next_height_syncs_if_we_lack_the_block() -> None:
    world, _block1, cert1 = chain_of_one()
    node = Node(3)
    assert node.feed(proposal(make_block(2, app=world, last_commit=cert1))) == [Sync(1)]


def test_proposal_for_the_next_height_with_a_bad_certificate_is_refused() -> None:
    world, block1, _cert1 = chain_of_one()
    weak = commit_cert((0, 1), block1.hash)
    node = Node(3)
    with pytest.raises(InvalidMessage):
        node.feed(proposal(make_block(2, app=world, last_commit=weak)))
    assert node.core.future == {}


def assert_next_height_messages_were_kept(node: Node, world, block1, cert1) -> None:
    """Feed height-2 PREPAREs and the proposal, then commit height 1: our PREPARE and
    the two buffered ones make a quorum at once."""
    p2 = proposal(make_block(2, app=world, last_commit=cert1))
    assert node.feed(*votes((0, 2), PREPARE, p2.block.hash, height=2)) == []
    assert node.feed(p2) == [Sync(1)]
    out = node.finish_commit(node.core.on_certified_block(block1, cert1, 0.0))
    assert [v.block_hash for v in sent_votes(out, PREPARE)] == [p2.block.hash]
    assert [v.block_hash for v in sent_votes(out, COMMIT)] == [p2.block.hash]


def test_messages_for_the_next_height_wait_until_it_starts() -> None:
    world, block1, cert1 = chain_of_one()
    assert_next_height_messages_were_kept(Node(3), world, block1, cert1)


def test_badly_signed_vote_for_the_next_height_is_refused_at_once() -> None:
    node = Node(3)
    forged = dataclasses.replace(vote(1, PREPARE, OTHER_HASH, height=2).vote, validator=ADDR[2])
    with pytest.raises(InvalidMessage):
        node.feed(VoteMessage(forged))
    assert node.core.future == {}


def test_invalid_buffered_message_is_dropped_without_breaking_the_height() -> None:
    world, block1, cert1 = chain_of_one()
    node = Node(0)
    # A NEW-VIEW for height 2 whose justification lacks a quorum: its proposal is
    # correctly signed, so it is kept until height 2, where it fails.
    bad = new_view([view_change(3, height=2)], make_block(2, 1, app=world, last_commit=cert1))
    assert node.feed(bad) == [Sync(1)]
    out = node.finish_commit(node.core.on_certified_block(block1, cert1, 0.0))
    assert out == [SetTimer(Timer(TimerKind.VIEW, 2, 0), TIMEOUTS.view(0))]
    assert node.core.view == 0
    p2 = proposal(make_block(2, app=world, last_commit=cert1))
    assert [v.block_hash for v in sent_votes(node.feed(p2), PREPARE)] == [p2.block.hash]


def test_forged_next_height_proposal_does_not_displace_the_genuine_one() -> None:
    """BUG: a proposal for height+1 that carries a valid parent certificate is
    buffered without checking its proposer or signature, and the buffer keeps the
    first proposal per (view, height). Anyone holding the (public) certificate can
    send a forged proposal first; at height+1 it is dropped as invalid, and the
    genuine proposal, which was never stored, is lost: the node cannot PREPARE."""
    world, block1, cert1 = chain_of_one()
    node = Node(3)
    genuine = proposal(make_block(2, app=world, last_commit=cert1))
    forged = proposal(genuine.block, signer=KEYS[0])  # 2's block, signed by 0
    with contextlib.suppress(InvalidMessage):  # refusing it at once is fine too
        node.feed(forged)
    node.feed(genuine)
    out = node.finish_commit(node.core.on_certified_block(block1, cert1, 0.0))
    assert [v.block_hash for v in sent_votes(out, PREPARE)] == [genuine.block.hash]


# ====================================================================== view change


def test_timeouts_grow_with_the_view_and_are_capped() -> None:
    t = Timeouts(block_interval=0.2, idle_interval=1.0, view_timeout=2.0, max_view_timeout=60.0)
    assert [t.view(v) for v in range(6)] == [3.0, 4.0, 8.0, 16.0, 32.0, 60.0]
    assert t.view(10**9) == 60.0


def test_view_timer_sends_a_view_change_and_sets_a_longer_timer() -> None:
    node = Node(0)
    t0 = TIMEOUTS.view(0)
    out = node.fire(TimerKind.VIEW, 0, t0)
    [message] = sent(out, ViewChangeMessage)
    vc = message.view_change
    assert (vc.height, vc.view, vc.validator, vc.prepared, message.prepared_block) == (
        1, 1, ADDR[0], None, None)
    assert vc.verify(CHAIN, KEYS[0].public_key)
    assert timer_set(out, TimerKind.VIEW) == [SetTimer(Timer(TimerKind.VIEW, 1, 1), t0 + TIMEOUTS.view(1))]
    assert node.core.view == 1
    assert node.fire(TimerKind.VIEW, 0, t0) == []  # stale: view 0 is over
    t1 = t0 + TIMEOUTS.view(1)
    # Alone in view 1 (no quorum has left view 0): it repeats its view change and
    # waits, rather than running ahead of validators that come back later.
    out = node.fire(TimerKind.VIEW, 1, t1)
    assert sent(out, ViewChangeMessage) == [message]
    assert timer_set(out, TimerKind.VIEW) == [SetTimer(Timer(TimerKind.VIEW, 1, 1), t1 + TIMEOUTS.view(1))]
    assert node.core.view == 1
    # With a quorum in view 1 but no NEW-VIEW (its proposer is silent), it moves on.
    node.feed(vc_message(2))
    node.feed(vc_message(3))
    t2 = t1 + TIMEOUTS.view(1)
    out = node.fire(TimerKind.VIEW, 1, t2)
    assert [m.view_change.view for m in sent(out, ViewChangeMessage)] == [2]
    assert timer_set(out, TimerKind.VIEW) == [SetTimer(Timer(TimerKind.VIEW, 1, 2), t2 + TIMEOUTS.view(2))]
    assert TIMEOUTS.view(2) > TIMEOUTS.view(1)


def test_prepared_validator_sends_its_certificate_and_block_in_the_view_change() -> None:
    node, p = prepared_node()
    [message] = sent(node.fire(TimerKind.VIEW, 0, 1.0), ViewChangeMessage)
    prepared = message.view_change.prepared
    assert prepared is not None
    assert (prepared.view, prepared.block_hash) == (0, p.block.hash)
    assert {v.validator for v in prepared.votes} == {ADDR[0], ADDR[1], ADDR[2]}
    assert message.prepared_block == p.block
    assert message.view_change.verify(CHAIN, KEYS[2].public_key)


def test_validator_joins_the_smallest_higher_view_on_f_plus_1_view_changes() -> None:
    node = Node(0)
    assert sent(node.feed(vc_message(1, 3)), ViewChangeMessage) == []  # one is not enough
    assert node.core.view == 0
    out = node.feed(vc_message(2, 2))
    assert [m.view_change.view for m in sent(out, ViewChangeMessage)] == [2]
    assert timer_set(out, TimerKind.VIEW) == [SetTimer(Timer(TimerKind.VIEW, 1, 2), TIMEOUTS.view(2))]
    assert node.core.view == 2


def test_new_proposer_with_a_quorum_of_view_changes_proposes_a_fresh_block() -> None:
    node = Node(2)  # the proposer of view 1
    node.fire(TimerKind.VIEW, 0, 1.0)
    assert sent(node.feed(vc_message(0)), NewView) == []  # 2 of 4
    out = node.feed(vc_message(3))
    [nv] = sent(out, NewView)
    assert nv.view == 1 and nv.proposal.block.header.proposer == ADDR[2]
    assert nv.proposal.verify(CHAIN, KEYS[2].public_key)
    assert {vc.validator for vc in nv.view_changes} == {ADDR[0], ADDR[2], ADDR[3]}
    assert [(v.view, v.block_hash) for v in sent_votes(out, PREPARE)] == [
        (1, nv.proposal.block.hash)]
    assert sent(node.feed(vc_message(1)), NewView) == []  # only one NEW-VIEW per view


def test_new_proposer_re_proposes_a_prepared_block_it_never_saw() -> None:
    """BUG (see the report): the re-proposed block is the one prepared in view 0, so
    its header names view 0's proposer (1); ``_check_proposal`` demands that the
    header name the proposer of the NEW-VIEW's view (2), and the core refuses its own
    NEW-VIEW: feeding the last view change raises InvalidMessage."""
    node = Node(2)
    a = make_block(1)
    node.fire(TimerKind.VIEW, 0, 1.0)
    node.feed(vc_message(0, prepared=prepared_cert((0, 1, 3), a.hash), block=a))
    [nv] = sent(node.feed(vc_message(3)), NewView)
    assert nv.proposal.block == a and nv.view == 1


def test_new_proposer_re_proposes_the_highest_prepared_block() -> None:
    """BUG (same as above): block b, prepared in view 1, names validator 2 as its
    proposer; the core refuses to re-propose it in view 2."""
    node = Node(3)  # the proposer of view 2
    a, b = make_block(1), make_block(1, 1)
    node.feed(vc_message(0, 2, prepared=prepared_cert((0, 1, 3), a.hash), block=a))
    # f+1 view changes for view 2: the node joins it, and its own makes a quorum.
    out = node.feed(vc_message(1, 2, prepared=prepared_cert((0, 1, 2), b.hash, view=1), block=b))
    [nv] = sent(out, NewView)
    assert nv.view == 2 and nv.proposal.block == b


def _valid_new_view(block: Block | None = None, prepared: PreparedCertificate | None = None
                    ) -> NewView:
    return new_view([view_change(1, prepared=prepared), view_change(2), view_change(3)],
                    block or make_block(1, 1))


def test_validator_prepares_a_justified_new_view() -> None:
    node = Node(0)
    nv = _valid_new_view()
    out = node.feed(nv, now=0.5)
    assert timer_set(out, TimerKind.VIEW) == [SetTimer(Timer(TimerKind.VIEW, 1, 1), 0.5 + TIMEOUTS.view(1))]
    assert [(v.view, v.block_hash) for v in sent_votes(out, PREPARE)] == [
        (1, nv.proposal.block.hash)]
    assert node.core.view == 1


def test_validator_prepares_a_new_view_re_proposing_the_prepared_block() -> None:
    # A prepared block whose header happens to name view 1's proposer.
    c = make_block(1, 1)
    nv = _valid_new_view(c, prepared_cert((0, 1, 3), c.hash))
    assert [v.block_hash for v in sent_votes(Node(0).feed(nv), PREPARE)] == [c.hash]


def test_validator_prepares_the_re_proposal_of_a_block_from_an_earlier_view() -> None:
    """BUG: block a was proposed (and prepared) in view 0, by validator 1, and its
    header says so. Re-proposed in view 1 by validator 2 as the protocol requires,
    ``_check_proposal`` refuses it because the header does not name validator 2."""
    a = make_block(1)
    nv = _valid_new_view(a, prepared_cert((0, 1, 3), a.hash))
    assert [v.block_hash for v in sent_votes(Node(0).feed(nv), PREPARE)] == [a.hash]


def _forged_view_change() -> ViewChange:
    return dataclasses.replace(view_change(0), validator=ADDR[1])


def _c() -> Block:
    """A block naming view 1's proposer, used as "the prepared block" below so that
    every NEW-VIEW refused here breaks only the rule its case names."""
    return make_block(1, 1)


BAD_NEW_VIEWS = {
    "lacks a quorum": lambda: new_view([view_change(2), view_change(3)], make_block(1, 1)),
    "names a validator twice": lambda: new_view(
        [view_change(2), view_change(3), view_change(3)], make_block(1, 1)),
    "view change for another view": lambda: new_view(
        [view_change(1, 2), view_change(2), view_change(3)], make_block(1, 1)),
    "view change for another height": lambda: new_view(
        [view_change(1, height=2), view_change(2), view_change(3)], make_block(1, 1)),
    "forged view change": lambda: new_view(
        [_forged_view_change(), view_change(2), view_change(3)], make_block(1, 1)),
    "prepared certificate without a quorum": lambda: _valid_new_view(
        _c(), prepared_cert((0, 1), _c().hash)),
    "prepared certificate naming a validator twice": lambda: _valid_new_view(
        _c(), PreparedCertificate(0, _c().hash, prepared_cert((0, 1, 1), _c().hash).votes)),
    "prepared certificate of COMMIT votes": lambda: _valid_new_view(
        _c(), PreparedCertificate(0, _c().hash, tuple(
            m.vote for m in votes((0, 1, 3), COMMIT, _c().hash)))),
    "prepared certificate with votes for another block": lambda: _valid_new_view(
        _c(), PreparedCertificate(0, _c().hash, prepared_cert((0, 1, 3), OTHER_HASH).votes)),
    "prepared certificate with a forged vote": lambda: _valid_new_view(
        _c(), PreparedCertificate(0, _c().hash, prepared_cert((0, 1), _c().hash).votes + (
            dataclasses.replace(vote(0, PREPARE, _c().hash).vote, validator=ADDR[3]),))),
    "prepared certificate not from an earlier view": lambda: _valid_new_view(
        _c(), prepared_cert((0, 1, 3), _c().hash, view=1)),
    "does not re-propose the prepared block": lambda: _valid_new_view(
        _c(), prepared_cert((0, 1, 3), OTHER_HASH)),
    "re-proposes a lower prepared block": lambda: new_view(
        [view_change(1, 2, prepared=prepared_cert((0, 1, 3), make_block(1, 2).hash)),
         view_change(2, 2, prepared=prepared_cert((0, 1, 2), OTHER_HASH, view=1)),
         view_change(3, 2)], make_block(1, 2), 2),
    "wrong proposer": lambda: new_view(
        [view_change(1), view_change(2), view_change(3)],
        make_block(1, 1, proposer=ADDR[3]), signer=KEYS[3]),
    "badly signed proposal": lambda: new_view(
        [view_change(1), view_change(2), view_change(3)], make_block(1, 1), signer=KEYS[1]),
    "a NEW-VIEW for view 0": lambda: new_view(
        [view_change(1, 0), view_change(2, 0), view_change(3, 0)], make_block(1), 0),
}


@pytest.mark.parametrize("case", BAD_NEW_VIEWS)
def test_unjustified_new_view_is_refused(case: str) -> None:
    node = Node(0)
    with pytest.raises(InvalidMessage):
        node.feed(BAD_NEW_VIEWS[case]())
    assert not node.signed_anything
    assert node.core.view == 0


def test_new_view_with_a_block_the_app_rejects_keeps_the_view_timer_running() -> None:
    """BUG: ``_on_new_view`` enters the new view (``st.view``, ``st.phase``) and only
    then validates the block; when the app rejects it, the InvalidMessage discards
    the SetTimer for the new view. The node is left in view 1 with no live timer:
    its view-0 timer is now stale, so it never times out of view 1 by itself."""
    node = Node(0)
    bad_block = make_block(1, 1, state_root=b"\x01" * 32)
    with pytest.raises(InvalidMessage):
        node.feed(_valid_new_view(bad_block))
    assert not node.signed_anything
    out = node.fire(TimerKind.VIEW, 0, TIMEOUTS.view(0))
    assert [m.view_change.view for m in sent(out, ViewChangeMessage)] == [1]


# ====================================================================== sign log


def test_restarted_validator_re_sends_its_prepare_but_never_a_conflicting_one() -> None:
    node = Node(2)
    a, b = proposal(make_block(1)), proposal(make_block(1, salt=1))
    node.feed(a)
    restarted = node.restart()
    assert timer_set(restarted.start_actions, TimerKind.VIEW) == [
        SetTimer(Timer(TimerKind.VIEW, 1, 0), TIMEOUTS.view(0))]
    assert [v.block_hash for v in sent_votes(restarted.feed(a), PREPARE)] == [a.block.hash]
    again = node.restart()
    assert sent_votes(again.feed(b), PREPARE) == []


def test_restarted_validator_resumes_in_the_view_it_signed_in() -> None:
    node = Node(0)
    node.feed(_valid_new_view())  # PREPAREs in view 1
    restarted = node.restart(now=5.0)
    assert restarted.core.view == 1
    assert restarted.start_actions == [SetTimer(Timer(TimerKind.VIEW, 1, 1), 5.0 + TIMEOUTS.view(1))]


def test_validator_never_votes_in_a_view_it_left_even_after_restart() -> None:
    node = Node(2)
    node.fire(TimerKind.VIEW, 0, 1.0)
    p = proposal(make_block(1))
    assert sent_votes(node.feed(p), PREPARE) == []
    restarted = node.restart(now=2.0)
    [again] = sent(restarted.start_actions, ViewChangeMessage)
    assert (again.view_change.view, again.view_change.validator) == (1, ADDR[2])
    assert restarted.core.view == 1
    out = restarted.feed(p, *votes((0, 1, 3), PREPARE, p.block.hash))
    assert sent(out, VoteMessage) == []


def test_prepared_certificate_survives_a_restart_into_the_view_change() -> None:
    node, p = prepared_node()
    restarted = node.restart()
    [message] = sent(restarted.fire(TimerKind.VIEW, 0, 1.0), ViewChangeMessage)
    prepared = message.view_change.prepared
    assert prepared is not None and (prepared.view, prepared.block_hash) == (0, p.block.hash)
    assert {v.validator for v in prepared.votes} == {ADDR[0], ADDR[1], ADDR[2]}
    assert message.prepared_block == p.block
    # Restarted once more, after that VIEW-CHANGE: it sends it again, certificate included.
    [again] = sent(restarted.restart().start_actions, ViewChangeMessage)
    assert again == message


def test_crash_between_commit_action_and_block_write_keeps_the_sign_log() -> None:
    """BUG: ``_commit_with`` calls ``signlog.forget_below(h + 1)`` when it returns the
    Commit action, before the driver has written the block. If the log is due for
    compaction then, the file is rewritten without height h; a crash before the block
    is stored restarts the validator at height h with no memory of its votes, and it
    PREPAREs a conflicting block for a (height, view) it already signed."""
    node = Node(2, compact_bytes=1)  # compact at every commit
    a = proposal(make_block(1))
    node.feed(a, *votes((0, 1), PREPARE, a.block.hash))
    assert of_type(node.feed(*votes((0, 1), COMMIT, a.block.hash)), Commit)
    # Crash: the driver never wrote block 1.
    restarted = node.restart()
    equivocation = proposal(make_block(1, salt=1))
    assert sent_votes(restarted.feed(equivocation), PREPARE) == []


# ====================================================================== observer


def test_observer_never_signs_but_commits_on_a_commit_quorum() -> None:
    node = Node(None)
    assert node.start_actions == [SetTimer(Timer(TimerKind.VIEW, 1, 0), TIMEOUTS.view(0))]
    p = proposal(make_block(1))
    h = p.block.hash
    assert node.feed(p, *votes((0, 1, 2), PREPARE, h)) == []
    out = node.feed(*votes((0, 1, 2), COMMIT, h))
    assert out == [Commit(p.block, commit_cert((0, 1, 2), h))]
    node.finish_commit(out)
    out = node.fire(TimerKind.VIEW, 0, 1.0)
    assert sent(out, ViewChangeMessage) == [] and len(of_type(out, SetTimer)) == 1
    assert not node.signed_anything


def test_key_outside_the_validator_set_is_an_observer() -> None:
    core = Core(CHAIN, VSET, FakeApp(VSET), SignLog(MemoryStorage()), key=OUTSIDER, height=0,
                last_commit=None, timeouts=TIMEOUTS)
    core.start(0.0)
    assert core.on_message(proposal(make_block(1)), 0.0) == []
    assert core.on_timer(Timer(TimerKind.VIEW, 1, 0), 1.0) == [
        SetTimer(Timer(TimerKind.VIEW, 1, 1), 1.0 + TIMEOUTS.view(1))]


# ====================================================================== regressions from the second review


def chain_of(n: int) -> FakeApp:
    """An application that committed blocks 1..n, each certified by 0, 1 and 3."""
    app, certificate = FakeApp(VSET), None
    for height in range(1, n + 1):
        block = make_block(height, app=app, last_commit=certificate)
        certificate = commit_cert((0, 1, 3), block.hash, height=height)
        app.commit(block, certificate)
    return app


def caught_up(index: int | None, world: FakeApp) -> Node:
    """Validator ``index`` that decided ``world``'s blocks through its core (by sync),
    so that the core holds the last one and its certificate."""
    node = Node(index)
    for block, certificate in zip(world.blocks, world.certificates, strict=True):
        node.finish_commit(node.core.on_certified_block(block, certificate, 0.0))
    return node


def replayed(certificate: CommitCertificate) -> VoteMessage:
    """A COMMIT vote rebuilt from a public certificate: anyone can send it."""
    sig = certificate.signatures[0]
    return VoteMessage(Vote(VoteKind.COMMIT, certificate.height, certificate.view,
                            certificate.block_hash, sig.validator, sig.signature))


def conflicting_votes(i: int, count: int, *, kind: int = PREPARE, height: int = 1,
                      view: int = 0) -> list[VoteMessage]:
    """``count`` votes of validator ``i`` for one (height, view, kind), all different."""
    return [VoteMessage(Vote.create(KEYS[i], CHAIN, kind, height, view,
                                    sha256(n.to_bytes(8, "big")))) for n in range(count)]


def prepared_in_view_one() -> tuple[Node, Block]:
    """Validator 0 that left view 0 by VIEW-CHANGE, PREPAREd the block of the NEW-VIEW
    for view 1 and prepared it there (its COMMIT sent)."""
    node = Node(0)
    node.fire(TimerKind.VIEW, 0, TIMEOUTS.view(0))
    nv = new_view([view_change(0), view_change(1), view_change(3)], make_block(1, 1))
    block = nv.proposal.block
    out = node.feed(nv, *votes((2, 3), PREPARE, block.hash, view=1))
    assert [(v.view, v.block_hash) for v in sent_votes(out, COMMIT)] == [(1, block.hash)]
    return node, block


def test_restart_after_preparing_in_a_view_reached_by_view_change_resumes_there() -> None:
    """Review 2: on restart the core re-signed its VIEW-CHANGE for view 1 carrying the
    certificate it prepared in view 1, then refused its own message ("not from an
    earlier view"): Core.start raised and the validator could never start again."""
    node, block = prepared_in_view_one()
    restarted = node.restart(now=5.0)
    assert restarted.core.view == 1
    assert restarted.start_actions == [SetTimer(Timer(TimerKind.VIEW, 1, 1), 5.0 + TIMEOUTS.view(1))]
    # Its next VIEW-CHANGE, for view 2, carries what it prepared in view 1, and the block.
    [message] = sent(restarted.fire(TimerKind.VIEW, 1, 5.0 + TIMEOUTS.view(1)), ViewChangeMessage)
    vc = message.view_change
    assert (vc.height, vc.view, vc.validator) == (1, 2, ADDR[0])
    assert vc.prepared is not None
    assert (vc.prepared.view, vc.prepared.block_hash) == (1, block.hash)
    assert {v.validator for v in vc.prepared.votes} == {ADDR[0], ADDR[2], ADDR[3]}
    assert message.prepared_block == block and vc.verify(CHAIN, KEYS[0].public_key)
    # Restarted once more: it repeats that view change, certificate included.
    again = restarted.restart(now=10.0)
    assert sent(again.start_actions, ViewChangeMessage) == [message]
    assert again.core.view == 2


def test_the_sign_log_refuses_a_different_view_change_for_a_view() -> None:
    """The sign log used to record every view change as b"": after a restart the core
    could sign a second, different VIEW-CHANGE for a view it had already left."""
    node = Node(0)
    [first] = sent(node.fire(TimerKind.VIEW, 0, TIMEOUTS.view(0)), ViewChangeMessage)
    assert first.view_change.prepared is None
    signlog = node.core.signlog
    logged = signlog.signed[(1, 1, VIEW_CHANGE)]
    # Suppose the log now holds a prepared certificate for height 1 (it cannot happen
    # in the protocol, which is the point): the view change a restart would sign for
    # view 1 differs from the one signed, so it is not signed.
    a = make_block(1)
    signlog.record_prepared(1, prepared_cert((0, 1, 3), a.hash), a)
    restarted = node.restart(now=2.0)
    assert sent(restarted.start_actions, ViewChangeMessage) == []
    assert restarted.core.view == 1
    assert restarted.core.signlog.signed[(1, 1, VIEW_CHANGE)] == logged
    # The same view change again is permitted (a restart repeats it).
    assert restarted.core.signlog.permit(1, 1, VIEW_CHANGE, logged)


def test_evidence_is_one_piece_per_validator_height_view_and_kind() -> None:
    """Review 2: every conflicting vote became one more piece of evidence, so one
    Byzantine validator could grow every node's memory without bound."""
    node = Node(None)  # an observer: all four validators may vote
    flood = [m for kind in (PREPARE, COMMIT) for view in (0, 1)
             for m in conflicting_votes(1, 500, kind=kind, view=view)]
    assert len(flood) == 2_000
    out = node.feed(*flood)
    evidence = of_type(out, Evidence)
    assert evidence == node.core.evidence
    assert sorted((e.first.kind, e.first.view) for e in evidence) == [
        (PREPARE, 0), (PREPARE, 1), (COMMIT, 0), (COMMIT, 1)]
    for e in evidence:
        first, second = e.first, e.second
        assert e.validator == ADDR[1] and first.block_hash != second.block_hash
        assert (first.kind, first.height, first.view) == (second.kind, second.height,
                                                          second.view)
        assert first.verify(CHAIN, KEYS[1].public_key)
        assert second.verify(CHAIN, KEYS[1].public_key)
    assert node.feed(*flood[::50]) == []  # nothing new
    # Another validator's double vote is still caught.
    [other] = of_type(node.feed(*conflicting_votes(2, 2)), Evidence)
    assert other.validator == ADDR[2] and len(node.core.evidence) == 5


def test_evidence_kept_is_bounded(monkeypatch) -> None:
    monkeypatch.setattr(consensus.core, "_MAX_EVIDENCE", 3)
    node = Node(None)
    for view in range(4):
        node.feed(*conflicting_votes(1, 2, view=view))
    assert [e.first.view for e in node.core.evidence] == [0, 1, 2]


def test_conflicting_proposals_are_one_piece_of_evidence_kept_as_signed_headers() -> None:
    node = Node(3)
    proposals = [proposal(make_block(1, salt=salt)) for salt in range(50)]
    out = node.feed(*proposals)
    assert of_type(out, Evidence) == node.core.evidence == [
        Evidence(ADDR[1], CompactProposal.of(proposals[0]), CompactProposal.of(proposals[1]))]
    [e] = node.core.evidence
    assert type(e.first) is type(e.second) is CompactProposal
    assert e.first.verify(CHAIN, KEYS[1].public_key)
    assert e.second.verify(CHAIN, KEYS[1].public_key)


def test_one_validator_cannot_crowd_out_the_next_height_buffer() -> None:
    """Review 2: the buffer for the next height (_MAX_FUTURE messages) was keyed by
    block hash too, so one validator signing that many different votes filled it and
    the honest proposal and votes for the next height were dropped."""
    world, block1, cert1 = chain_of_one()
    node = Node(3)
    assert node.feed(*conflicting_votes(1, _MAX_FUTURE, height=2)) == []
    assert_next_height_messages_were_kept(node, world, block1, cert1)


def test_a_stale_message_for_the_last_height_gets_a_rate_limited_reply() -> None:
    """Review 2: a replayed old vote (rebuilt from any block's public last_commit) made
    the node broadcast its whole last block to every peer, once per block_interval,
    for ever. Now only a message for the height just decided is answered, and only to
    its sender (Reply), still at most once per block_interval. A vote for the decided
    block is answered with the certificate's COMMIT votes (its sender holds the block:
    under load the slowest validator's votes always arrive late, and resending the
    whole block each height was a cost every node paid); anything else gets the
    decision, block and all."""
    world = chain_of(2)
    node = caught_up(2, world)
    assert node.core.height == 3
    cert = world.certificates[1]
    commits = [Reply(VoteMessage(Vote(VoteKind.COMMIT, cert.height, cert.view, cert.block_hash,
                                      s.validator, s.signature))) for s in cert.signatures]
    assert len(commits) >= 3
    decision = Reply(Decision(world.blocks[1], cert))
    t, interval = 10.0, TIMEOUTS.block_interval
    assert node.feed(replayed(world.certificates[0]), now=t) == []  # height 1: nothing
    assert node.feed(replayed(cert), now=t) == commits
    assert node.feed(vote(0, PREPARE, world.blocks[1].hash, height=2), now=t + interval / 2
                     ) == []
    assert node.feed(vote(0, PREPARE, world.blocks[1].hash, height=2), now=t + interval
                     ) == commits
    # The whole block goes to a peer at most once per _BLOCK_REPLY_INTERVAL.
    other = vote(1, PREPARE, b"\x07" * 32, height=2)
    assert node.feed(other, now=t + 2 * interval) == []
    assert node.feed(other, now=t + interval + _BLOCK_REPLY_INTERVAL) == [decision]
    for k in range(3, 7):
        assert node.feed(replayed(world.certificates[0]), now=t + k * interval) == []


def test_a_peer_replaying_old_votes_does_not_silence_the_reply_to_another() -> None:
    """Hostile test (replay_late_vote): the reply limit was one for the whole node, so a
    peer replaying a public COMMIT of the last height every millisecond took every
    reply, and the validator that really was behind (the next proposer, say) got none
    and waited for a view change. The limit is now per peer."""
    world = chain_of(2)
    node = caught_up(2, world)
    cert = world.certificates[1]
    commits = [Reply(VoteMessage(Vote(VoteKind.COMMIT, cert.height, cert.view, cert.block_hash,
                                      s.validator, s.signature))) for s in cert.signatures]
    attacker, behind = b"\xaa" * 32, b"\xbb" * 32
    t, interval = 10.0, TIMEOUTS.block_interval
    for k in range(100):  # one every 1/100 of the interval
        out = node.feed(replayed(cert), now=t + k * interval / 100, sender=attacker)
        assert out == (commits if k == 0 else [])  # the attacker: once per interval
    assert node.feed(vote(3, COMMIT, world.blocks[1].hash, height=2), now=t + interval / 2,
                     sender=behind) == commits
    # A forged vote does not use a peer's turn.
    forged = vote(2, COMMIT, world.blocks[1].hash, height=2)
    forged = dataclasses.replace(forged, vote=dataclasses.replace(forged.vote,
                                                                  signature=bytes(64)))
    other = b"\xcc" * 32
    with pytest.raises(InvalidMessage):
        node.feed(forged, now=t + interval / 2, sender=other)
    out = node.feed(vote(2, COMMIT, world.blocks[1].hash, height=2), now=t + interval / 2,
                    sender=other)
    grown = node.core.last_commit  # (a late COMMIT from outside it joins the certificate)
    assert grown is not None and out == [
        Reply(VoteMessage(Vote(VoteKind.COMMIT, grown.height, grown.view, grown.block_hash,
                               s.validator, s.signature))) for s in grown.signatures]


def test_the_peers_remembered_for_the_reply_limit_are_bounded() -> None:
    world = chain_of(2)
    node = caught_up(2, world)
    t = 10.0
    for k in range(3 * _MAX_HELPED):
        node.feed(replayed(world.certificates[1]), now=t + k * 0.01,
                  sender=k.to_bytes(32, "big"))
        assert len(node.core._helped) <= _MAX_HELPED


def test_a_lone_validator_repeats_its_view_change_rather_than_climbing() -> None:
    """Review 2: a validator alone (the others down) climbed one view per timeout, and
    once they came back, ever further ahead of them, the chain never committed again."""
    node = Node(0)
    t = TIMEOUTS.view(0)
    [mine] = sent(node.fire(TimerKind.VIEW, 0, t), ViewChangeMessage)
    for _ in range(5):
        t += TIMEOUTS.view(1)
        out = node.fire(TimerKind.VIEW, 1, t)
        assert sent(out, ViewChangeMessage) == [mine]
        assert timer_set(out, TimerKind.VIEW) == [SetTimer(Timer(TimerKind.VIEW, 1, 1), t + TIMEOUTS.view(1))]
        assert node.core.view == 1
    # Restarted, still alone: the same.
    node = node.restart(now=t)
    assert sent(node.start_actions, ViewChangeMessage) == [mine]
    t += TIMEOUTS.view(1)
    assert sent(node.fire(TimerKind.VIEW, 1, t), ViewChangeMessage) == [mine]
    # Two of four is no quorum yet; with a third, view 1's proposer (2) being silent,
    # the timer moves it on to view 2.
    node.feed(vc_message(1), now=t)
    t += TIMEOUTS.view(1)
    assert sent(node.fire(TimerKind.VIEW, 1, t), ViewChangeMessage) == [mine]
    node.feed(vc_message(3), now=t)
    t += TIMEOUTS.view(1)
    assert [m.view_change.view for m in sent(node.fire(TimerKind.VIEW, 1, t), ViewChangeMessage)
            ] == [2]
    assert node.core.view == 2
