"""A deterministic in-memory network for the consensus core.

Virtual time, one event queue, a seeded random generator: every run of a seed is the
same run. Messages are delivered after a random delay (so they are reordered), can be
dropped across partitions, and nodes can crash, restart from their sign log, or
misbehave on purpose (:class:`Behaviour`). Blocks are small fakes whose state root is
a hash chain, so an application check still catches a wrong parent or state root.
"""

from __future__ import annotations

import heapq
import itertools
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache

import chain.block
import consensus.messages
from chain.block import Block, CommitCertificate, Header, Vote
from chain.hashing import ZERO_HASH, sha256
from chain.keys import PrivateKey
from chain.keys import verify as real_verify
from chain.merkle import merkle_root
from chain.validators import Validator, ValidatorSet
from consensus.core import (
    REPUTATION_WINDOW,
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
)
from consensus.errors import InvalidMessage, InvalidProposal
from consensus.messages import Message, Proposal, VoteMessage
from consensus.signlog import MemoryStorage, SignLog

CHAIN = "agora-sim"
GENESIS_HASH = sha256(b"agora-sim genesis")
EMPTY_ROOT = merkle_root([])
TIMEOUTS = Timeouts(block_interval=0.05, idle_interval=0.2, view_timeout=0.5,
                    max_view_timeout=8.0)


@lru_cache(maxsize=1 << 16)
def cached_verify(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """The real ed25519 check, memoised: every simulated node verifies the same vote,
    and the answer cannot differ between them."""
    return real_verify(public_key, message, signature)


def install_verify_cache(monkeypatch) -> None:
    monkeypatch.setattr(chain.block, "verify", cached_verify)
    monkeypatch.setattr(consensus.messages, "verify", cached_verify)


def keys(n: int) -> list[PrivateKey]:
    return [PrivateKey.from_seed_text(f"sim-validator-{i}") for i in range(n)]


class FakeApp:
    """The application side: a chain of empty blocks whose state root hashes the
    parent's root with the height and time, checked like the executor would."""

    def __init__(self, validators: ValidatorSet) -> None:
        self.validators = validators
        self.blocks: list[Block] = []
        self.certificates: list[CommitCertificate] = []
        self.clock = 0.0  # set by the simulation before each event
        self.pending = True

    @property
    def tip(self) -> tuple[bytes, bytes, int]:
        if not self.blocks:
            return GENESIS_HASH, ZERO_HASH, 0
        h = self.blocks[-1].header
        return h.hash, h.state_root, h.time_ms

    @staticmethod
    def next_root(parent_root: bytes, height: int, time_ms: int) -> bytes:
        return sha256(parent_root + height.to_bytes(8, "big") + time_ms.to_bytes(8, "big"))

    def has_pending_txs(self) -> bool:
        return self.pending

    def propose(self, height: int, view: int, last_commit: CommitCertificate | None,
                proposer: bytes = b"", salt: int = 0) -> Block:
        prev_hash, prev_root, prev_time = self.tip
        time_ms = max(prev_time + 1, int(self.clock * 1000)) + salt
        vset = self.validators
        header = Header(CHAIN, height, time_ms, prev_hash, EMPTY_ROOT, EMPTY_ROOT,
                        self.next_root(prev_root, height, time_ms), vset.hash, vset.hash,
                        proposer or vset.validators[(height + view) % len(vset)].address, 0,
                        sha256(last_commit.encode()) if last_commit is not None else ZERO_HASH)
        return Block(header, (), last_commit)

    def validate(self, block: Block, *, certified: bool = False) -> None:
        prev_hash, prev_root, prev_time = self.tip
        h = block.header
        if h.height != len(self.blocks) + 1 or h.prev_hash != prev_hash:
            raise InvalidProposal("does not extend our chain")
        if h.time_ms <= prev_time:
            raise InvalidProposal("time does not advance")
        if h.state_root != self.next_root(prev_root, h.height, h.time_ms):
            raise InvalidProposal("wrong state root")

    def commit(self, block: Block, certificate: CommitCertificate) -> None:
        self.validate(block)
        self.blocks.append(block)
        self.certificates.append(certificate)


@dataclass
class Behaviour:
    """How a node departs from the protocol (all False: honest)."""

    #: Sends one block to some validators and another block to the rest.
    equivocate_proposals: bool = False
    #: Every vote it sends is followed by a conflicting vote to some validators.
    double_vote: bool = False

    @property
    def byzantine(self) -> bool:
        return self.equivocate_proposals or self.double_vote


@dataclass
class SimNode:
    index: int
    key: PrivateKey
    app: FakeApp
    storage: MemoryStorage
    core: Core
    behaviour: Behaviour = field(default_factory=Behaviour)
    alive: bool = True
    rejected: list[str] = field(default_factory=list)


class Simulation:
    def __init__(self, n: int, seed: int, *, delay: tuple[float, float] = (0.001, 0.08),
                 timeouts: Timeouts = TIMEOUTS,
                 behaviours: dict[int, Behaviour] | None = None) -> None:
        self.rng = random.Random(seed)
        self.delay = delay
        self.timeouts = timeouts
        self.keys = keys(n)
        self.validators = ValidatorSet(Validator(k.public_key, 1) for k in self.keys)
        self.now = 0.0
        self._queue: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = itertools.count()
        self.partition: list[set[int]] | None = None
        self.evidence: list[Evidence] = []
        #: Called after a node broadcasts (tests crash a node at a precise step).
        self.after_broadcast: Callable[[SimNode, Message], None] | None = None
        behaviours = behaviours or {}
        self.nodes = [self._make_node(i, MemoryStorage(), FakeApp(self.validators),
                                      behaviours.get(i, Behaviour())) for i in range(n)]

    # ------------------------------------------------------------------ nodes

    def _make_node(self, i: int, storage: MemoryStorage, app: FakeApp,
                   behaviour: Behaviour, *, guard: bool = False) -> SimNode:
        height = len(app.blocks)
        core = Core(CHAIN, self.validators, app, SignLog.in_memory(storage), key=self.keys[i],
                    height=height, last_commit=app.certificates[-1] if height else None,
                    last_block=app.blocks[-1] if height else None, timeouts=self.timeouts,
                    recent_blocks=app.blocks[-(REPUTATION_WINDOW + 1):],
                    double_sign_guard=guard)
        return SimNode(i, self.keys[i], app, storage, core, behaviour)

    def start(self) -> None:
        for node in self.nodes:
            self._act(node, node.core.start(self.now))

    def crash(self, i: int) -> None:
        self.nodes[i].alive = False

    def restart(self, i: int, *, lose_signlog: bool = False) -> SimNode:
        """A new core from the node's sign log and committed chain (memory is lost).
        ``lose_signlog``: its sign log is gone too, so it starts under the double-sign
        guard, as the daemon starts a validator whose sign log is missing."""
        old = self.nodes[i]
        storage = MemoryStorage() if lose_signlog else old.storage
        node = self._make_node(i, storage, old.app, old.behaviour, guard=lose_signlog)
        self.nodes[i] = node
        self._act(node, node.core.start(self.now))
        return node

    @property
    def honest(self) -> list[SimNode]:
        return [n for n in self.nodes if not n.behaviour.byzantine]

    # ------------------------------------------------------------------ events

    def _at(self, when: float, event: Callable[[], None]) -> None:
        heapq.heappush(self._queue, (when, next(self._seq), event))

    def _connected(self, a: int, b: int) -> bool:
        if self.partition is None:
            return True
        return any(a in group and b in group for group in self.partition)

    def send(self, sender: SimNode, to: SimNode, message: Message) -> None:
        if not self._connected(sender.index, to.index):
            return
        index = to.index

        def deliver() -> None:
            node = self.nodes[index]
            if node.alive and self._connected(sender.index, index):
                self._receive(node, message, sender.index)
        self._at(self.now + self.rng.uniform(*self.delay), deliver)

    def _receive(self, node: SimNode, message: Message, sender: int) -> None:
        node.app.clock = self.now
        try:
            actions = node.core.on_message(message, self.now)
        except InvalidMessage as exc:
            node.rejected.append(str(exc))
            return
        self._act(node, actions, reply_to=sender)

    def _act(self, node: SimNode, actions: list[Action], reply_to: int | None = None) -> None:
        for action in actions:
            if not node.alive:
                return  # it crashed: nothing after that point happens
            kind = type(action)
            if kind is Broadcast:
                self._broadcast(node, action.message)
            elif kind is Reply:
                if reply_to is not None:
                    self.send(node, self.nodes[reply_to], action.message)
            elif kind is SetTimer:
                self._set_timer(node, action.timer, action.at)
            elif kind is Commit:
                node.app.commit(action.block, action.certificate)
                self._act(node, node.core.committed(self.now))
            elif kind is Sync:
                self._sync(node, action.height)
            elif kind is Evidence:
                self.evidence.append(action)

    def _set_timer(self, node: SimNode, timer: Timer, at: float) -> None:
        core = node.core

        def fire() -> None:
            current = self.nodes[node.index]
            if current.alive and current.core is core:
                current.app.clock = self.now
                self._act(current, core.on_timer(timer, self.now))
        self._at(at, fire)

    def _broadcast(self, node: SimNode, message: Message) -> None:
        if not node.alive:
            return  # crashed in the middle of acting: the rest never leaves the node
        self._send_all(node, message)
        if self.after_broadcast is not None:
            self.after_broadcast(node, message)

    def _send_all(self, node: SimNode, message: Message) -> None:
        others = [n for n in self.nodes if n is not node]
        b = node.behaviour
        if b.equivocate_proposals and type(message) is Proposal:
            alt_block = node.app.propose(message.block.height, message.view,
                                         message.block.last_commit,
                                         proposer=message.block.header.proposer, salt=1)
            alt = Proposal.create(node.key, CHAIN, message.view, alt_block)
            half = len(others) // 2
            for i, other in enumerate(others):
                self.send(node, other, message if i < half else alt)
            return
        for other in others:
            self.send(node, other, message)
        if b.double_vote and type(message) is VoteMessage:
            v = message.vote
            fake = Vote.create(node.key, CHAIN, v.kind, v.height, v.view,
                               sha256(v.block_hash + b"double"))
            for other in others[: len(others) // 2 + 1]:
                self.send(node, other, VoteMessage(fake))

    def _sync(self, node: SimNode, target: int) -> None:
        """Serve a sync from the longest honest chain, after a round trip."""
        def serve() -> None:
            current = self.nodes[node.index]
            if not current.alive:
                return
            source = max((n for n in self.honest if n.alive and n is not current),
                         key=lambda n: len(n.app.blocks), default=None)
            if source is not None:
                for height in range(len(current.app.blocks) + 1,
                                    min(target, len(source.app.blocks)) + 1):
                    current.app.clock = self.now
                    block = source.app.blocks[height - 1]
                    certificate = source.app.certificates[height - 1]
                    try:
                        actions = current.core.on_certified_block(block, certificate, self.now)
                    except InvalidMessage as exc:
                        current.rejected.append(str(exc))
                        break
                    self._act(current, actions)
            current.core.on_sync_done()
        self._at(self.now + 2 * self.delay[1], serve)

    def run(self, until: Callable[[], bool], *, max_time: float) -> bool:
        """Process events until ``until()`` holds (True) or virtual time passes
        ``max_time`` (False)."""
        while self._queue:
            if until():
                return True
            when = self._queue[0][0]
            if when > max_time:
                self.now = max_time  # time passes; the event stays queued for later
                return until()
            _, _, event = heapq.heappop(self._queue)
            self.now = when
            event()
        return until()

    # ------------------------------------------------------------------ checks

    def heights(self, nodes: list[SimNode] | None = None) -> list[int]:
        return [len(n.app.blocks) for n in (nodes if nodes is not None else self.honest)]

    def assert_no_fork(self) -> None:
        """No two honest nodes committed different blocks at any height."""
        chains = [n.app.blocks for n in self.honest]
        longest = max(chains, key=len)
        for blocks in chains:
            for mine, theirs in zip(blocks, longest, strict=False):
                assert mine.hash == theirs.hash, f"fork at height {mine.height}"

    def assert_agreement(self) -> None:
        """No two honest nodes committed different blocks at any height, and every
        certificate verifies."""
        self.assert_no_fork()
        for node in self.honest:
            for block, cert in zip(node.app.blocks, node.app.certificates, strict=True):
                cert.verify(CHAIN, self.validators, height=block.height, block_hash=block.hash)
                assert all(sig.validator for sig in cert.signatures)




def run_to(sim: Simulation, height: int, *, max_time: float, nodes=None) -> None:
    """Run until every node given (default: the honest) reached ``height``."""
    ok = sim.run(lambda: min(sim.heights(nodes)) >= height, max_time=max_time)
    assert ok, f"stuck at heights {sim.heights()} at t={sim.now:.1f}"
