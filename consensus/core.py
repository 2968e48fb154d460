"""The PBFT-style protocol core: one block per height, events in, actions out.

Sans-I/O, like aioquic's ``QuicConnection``: the driver feeds decoded messages
(:meth:`Core.on_message`), fired timers (:meth:`Core.on_timer`) and blocks fetched by
sync (:meth:`Core.on_certified_block`), always with ``now``; the core answers with a
list of actions — messages to broadcast, timers to set, blocks to commit, heights to
sync, evidence found. It never reads a clock, touches a socket or opens a database;
the application (``ConsensusApp``: build a block, validate one) and the sign log are
passed in, and the simulation tests pass in fakes.

Theory of operation, for height h and view v (DESIGN.md "Consensus")
--------------------------------------------------------------------
* The proposer of (h, v) is ``(h + v) mod m`` of the *active* validators, in genesis
  order: those that signed a certificate, or proposed, in the ``REPUTATION_WINDOW``
  committed blocks before h-1 (Diem/Aptos "leader reputation", in its simplest form;
  block h-1 is left out so that the proposer of the next height is known while this
  one is decided, for its early messages). Every honest node reads that from the same
  committed blocks, so all compute the same proposer; a validator that is down drops out of the rotation after
  at most a window of heights instead of costing a view-change timeout at each of its
  turns, and is back as soon as one certificate carries its COMMIT (late COMMITs for
  the last height are added to its certificate until the next block is proposed, so a
  live validator is seen even when it is never among the first 2/3 to vote).
* View 0: the proposer proposes ``block_interval`` after the previous commit if
  transactions wait, else after ``idle_interval`` (an empty block keeps time moving).
  Its PRE-PREPARE (:class:`Proposal`) carries the block.
* A validator that finds the proposal valid (right proposer and height, a certificate
  for the parent, the application accepts it: same state root when executed) signs a
  PREPARE for its hash. On PREPAREs of more than 2/3 of the power the block is
  *prepared*: the prepared certificate goes to the sign log, then a COMMIT is signed.
* On COMMITs of more than 2/3 for one (view, hash) the block commits with those
  votes as its certificate — whatever view we are in, since the certificate alone
  proves finality. If we lack the block, we ask the driver to sync it.
* The view timer (``view_timeout * 2**v``, capped) expiring means view v failed: the
  validator stops voting in v and signs a VIEW-CHANGE for v+1 with its highest
  prepared certificate. Seeing VIEW-CHANGEs of more than 1/3 of the power for higher
  views (so at least one honest validator gave up) it joins the smallest of them.
* The proposer of v+1, on VIEW-CHANGEs of a quorum, sends NEW-VIEW: those view
  changes and a proposal, which must be the block of the highest prepared certificate
  among them, or any new block if none prepared. Validators check that justification
  before preparing.

Safety in one paragraph: a block B committed at (h, v) was prepared by a quorum, so
any quorum of VIEW-CHANGEs for a later view includes an honest validator that prepared
B at v (quorums intersect in an honest validator); no other block can be prepared at
a view >= v (by induction over NEW-VIEWs), so every later NEW-VIEW must re-propose B.
The sign log keeps a restarted validator from signing a conflicting vote for a
(height, view, phase) it signed before, and from voting in a view it has left.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from chain.block import Block, CommitCertificate, CommitSig, Vote, VoteKind
from chain.codec import pack
from chain.errors import InvalidCertificate
from chain.hashing import sha256
from chain.keys import PrivateKey
from chain.validators import ValidatorSet

from .errors import InvalidMessage, InvalidProposal, LocalError
from .messages import (
    CompactProposal,
    Decision,
    Message,
    NewView,
    PreparedCertificate,
    Proposal,
    ViewChange,
    ViewChangeMessage,
    VoteMessage,
    message_height,
)
from .signlog import COMMIT, PREPARE, PROPOSE, VIEW_CHANGE, SignLog

log = logging.getLogger("agora.consensus")

#: Messages for the next height kept until this one commits, per kind and sender.
_MAX_FUTURE = 4096
#: A peer behind by a height gets the whole decided block at most this often (seconds);
#: a vote for the decided block is answered with its small COMMIT votes more often.
_BLOCK_REPLY_INTERVAL = 1.0
#: Peers remembered for that limit (those helped within the interval are kept).
_MAX_HELPED = 1024
#: Pieces of evidence kept (the driver may persist and forget them).
_MAX_EVIDENCE = 1024
#: Votes for views further ahead of ours than this are dropped: a Byzantine validator
#: could sign votes for a million views. A node that far behind catches up by sync.
_MAX_VIEWS_AHEAD = 8
#: Committed blocks whose signers and proposers make the active set (leader reputation).
REPUTATION_WINDOW = 10


def block_activity(block: Block) -> frozenset[bytes]:
    """The validators a committed block shows alive: its proposer, and the signers of
    the certificate it carries (of its parent)."""
    signers = {block.header.proposer}
    if block.last_commit is not None:
        signers.update(sig.validator for sig in block.last_commit.signatures)
    return frozenset(signers)


class ConsensusApp(Protocol):
    """The application, as consensus sees it (ABCI-like; the executor behind it)."""

    def has_pending_txs(self) -> bool:
        """Do transactions wait in the mempool?"""

    def propose(self, height: int, view: int, last_commit: CommitCertificate | None,
                proposer: bytes) -> Block:
        """Build this validator's block for ``height`` on the committed state, naming
        ``proposer`` (this validator: the core decides whose turn it is)."""

    def validate(self, block: Block, *, certified: bool = False) -> None:
        """Execute ``block`` on the committed state and check it (roots, time, txs);
        raise :class:`InvalidProposal` with the reason. ``certified``: a quorum has
        committed it already, so checks that depend on our own view of the world (our
        clock) do not apply — only that it executes to its roots."""


#: The validator set of a height, or None while the chain has not decided it (block h
#: decides the set of h + 2, so after committing h the sets up to h + 2 are known).
SetSource = Callable[[int], ValidatorSet | None]


@dataclass(frozen=True)
class Timeouts:
    """Timing of the protocol, in seconds (``[consensus]`` in the config)."""

    block_interval: float = 0.2
    idle_interval: float = 1.0
    view_timeout: float = 2.0
    max_view_timeout: float = 60.0

    def view(self, view: int) -> float:
        """How long view ``view`` may take. View 0 also waits for the proposal."""
        timeout = min(self.max_view_timeout, self.view_timeout * 2 ** min(view, 30))
        return timeout + (self.idle_interval if view == 0 else 0.0)


# ---------------------------------------------------------------------- actions


class TimerKind(enum.Enum):
    """What a :class:`Timer` is for."""

    #: The proposer of view 0: propose now (or, with nothing to propose, at the idle
    #: deadline).
    PROPOSE = "propose"
    #: The view ran out of time: leave it.
    VIEW = "view"


@dataclass(frozen=True)
class Timer:
    """A timer the driver fires back through :meth:`Core.on_timer`."""

    kind: TimerKind
    height: int
    view: int


@dataclass(frozen=True)
class Broadcast:
    message: Message


@dataclass(frozen=True)
class Reply:
    """Send ``message`` to the peer the message being handled came from."""

    message: Message


@dataclass(frozen=True)
class SetTimer:
    timer: Timer
    at: float


@dataclass(frozen=True)
class Commit:
    """Commit ``block`` with ``certificate`` (one atomic batch), before the next event."""

    block: Block
    certificate: CommitCertificate


@dataclass(frozen=True)
class Sync:
    """We are behind: fetch committed blocks up to ``height`` (inclusive) from peers and
    feed them to :meth:`Core.on_certified_block` in order."""

    height: int


@dataclass(frozen=True)
class Evidence:
    """Two conflicting messages signed by one validator."""

    validator: bytes
    first: Vote | CompactProposal
    second: Vote | CompactProposal


Action = Broadcast | Reply | SetTimer | Commit | Sync | Evidence


def _signed_header(proposal: Proposal) -> CompactProposal:
    """A proposal without its transactions' bodies: still verifiable evidence."""
    return CompactProposal.of(proposal)


# ---------------------------------------------------------------------- state


class Phase(enum.Enum):
    """Where this validator is in the current view of the height."""

    #: Waiting for the view's proposal.
    PROPOSE = "propose"
    #: PREPARE sent.
    PREPARE = "prepare"
    #: Prepared, COMMIT sent.
    COMMIT = "commit"
    #: VIEW-CHANGE sent for ``view``.
    VIEW_CHANGE = "view_change"


@dataclass
class _Height:
    """Everything about the height being decided; replaced wholesale on commit."""

    height: int
    started: float
    view: int = 0
    phase: Phase = Phase.PROPOSE
    proposal: Proposal | None = None
    #: Valid blocks seen at this height, by hash.
    blocks: dict[bytes, Block] = field(default_factory=dict)
    #: Blocks that came with view changes or NEW-VIEWs, not validated yet.
    unchecked: dict[bytes, Block] = field(default_factory=dict)
    #: (kind, view, block hash) -> validator -> vote.
    votes: dict[tuple[int, int, bytes], dict[bytes, Vote]] = field(default_factory=dict)
    #: (validator, kind, view) -> the first vote seen (equivocation check).
    first_votes: dict[tuple[bytes, int, int], Vote] = field(default_factory=dict)
    #: view -> the first proposal seen for it (equivocation check).
    proposals: dict[int, Proposal] = field(default_factory=dict)
    #: view -> validator -> view change.
    view_changes: dict[int, dict[bytes, ViewChange]] = field(default_factory=dict)
    prepared: PreparedCertificate | None = None
    new_view_sent: set[int] = field(default_factory=set)
    #: Our VIEW-CHANGE for ``view``, repeated while no quorum has left the view.
    own_view_change: ViewChangeMessage | None = None


class Core:
    """One validator's (or observer's, with ``key=None``) view of the protocol."""

    def __init__(
        self,
        chain_id: str,
        validators: ValidatorSet | SetSource,
        app: ConsensusApp,
        signlog: SignLog,
        *,
        key: PrivateKey | None,
        height: int,
        last_commit: CommitCertificate | None,
        last_block: Block | None = None,
        timeouts: Timeouts | None = None,
        recent_blocks: list[Block] | None = None,
        double_sign_guard: bool = False,
    ) -> None:
        """``height`` is the last committed height, ``last_block`` that block and
        ``last_commit`` its certificate; ``recent_blocks`` the last committed blocks,
        oldest first (up to :data:`REPUTATION_WINDOW`, for the proposer rotation).

        ``validators``: the set of every height (a function of the height, see
        :data:`SetSource`), or one set for every height. A key outside the set of the
        height being decided signs nothing there (a validator voted in starts at its
        first height, one voted out stops).

        ``double_sign_guard``: this validator has lost its sign log, so it may have
        signed, before, something for the heights now being decided. It signs nothing
        until it has seen a height commit by votes it collected live: that height was
        in progress after this process started, so at or past any height the lost log
        covered (CometBFT's ``double_sign_check_height``, made exact)."""
        self.chain_id = chain_id
        if isinstance(validators, ValidatorSet):
            fixed = validators
            self._set_source: SetSource = lambda _height: fixed
        else:
            self._set_source = validators
        self._sets: dict[int, ValidatorSet] = {}
        self.app = app
        self.signlog = signlog
        self.key = key
        #: The key's address, validator or not; ``address`` is it while the key is in
        #: the set of the height being decided, else None.
        self.key_address = key.address if key is not None else None
        self.address: bytes | None = None
        self.timeouts = timeouts or Timeouts()
        self.last_commit = last_commit
        self.last_block = last_block
        self.state = _Height(height + 1, 0.0)
        #: When each peer (None: a caller that names none) was last helped behind.
        self._helped: dict[bytes | None, float] = {}
        self.future: dict[tuple, Message] = {}
        self.evidence: list[Evidence] = []
        self._evidence_keys: set[tuple] = set()
        self._sync_target = 0
        self._committing = False
        #: Times this node moved to a later view of a height (read by metrics).
        self.view_changes = 0
        #: The activity of the last committed blocks, oldest first, the newest the
        #: block of height ``self.height - 1`` (one more than a window: see proposer).
        self._activity: list[frozenset[bytes]] = [
            block_activity(b) for b in (recent_blocks or [])][-REPUTATION_WINDOW - 1:]
        self._rotations: dict[int, tuple[bytes, ...]] = {}
        self._update_address()
        self.guarded = double_sign_guard and self.key_address is not None
        if self.guarded and self.address is not None:
            validators_now = self.validators
            others = validators_now.total_power - self._power([self.address])
            if not validators_now.has_quorum(others):
                log.warning("double-sign guard off: the other validators cannot commit "
                            "without this one, so waiting for them would halt the chain")
                self.guarded = False

    # ------------------------------------------------------------------ queries

    def set_at(self, height: int) -> ValidatorSet | None:
        """The validator set of ``height``, or None if the chain has not decided it."""
        found = self._sets.get(height)
        if found is None:
            found = self._set_source(height)
            if found is not None:
                if len(self._sets) > 16:  # keep the heights around the one decided
                    low = self.state.height - 2
                    self._sets = {h: v for h, v in self._sets.items() if h >= low}
                self._sets[height] = found
        return found

    def validators_at(self, height: int) -> ValidatorSet:
        """The validator set of ``height``; InvalidMessage if it is not known yet."""
        found = self.set_at(height)
        if found is None:
            raise InvalidMessage(f"the validator set of height {height} is not known yet")
        return found

    @property
    def validators(self) -> ValidatorSet:
        """The validator set of the height being decided."""
        return self.validators_at(self.state.height)

    def _update_address(self) -> None:
        key = self.key_address
        self.address = key if key is not None and \
            self.validators.get(key) is not None else None

    @property
    def height(self) -> int:
        """The height being decided."""
        return self.state.height

    @property
    def view(self) -> int:
        return self.state.view

    @property
    def signing(self) -> bool:
        """Does this node sign now: a validator not held back by the double-sign
        guard? Every signature (proposal, vote, view change) asks this first."""
        return self.address is not None and not self.guarded

    def proposer(self, height: int, view: int) -> bytes:
        """Deterministic from the committed chain (see the module doc), for the
        height being decided and the next; other heights get the plain rotation
        (nothing checks a proposer there: a far-ahead proposal only sends us
        syncing, on its certificate, and a late one for the height just decided is
        checked against the proposer its block names)."""
        rotation = self.rotation(height)
        return rotation[(height + view) % len(rotation)]

    def rotation(self, height: int) -> tuple[bytes, ...]:
        """The validators that take turns proposing at ``height``: all until the
        chain holds a window of blocks, then those active in it."""
        cached = self._rotations.get(height)
        if cached is not None:
            return cached
        everyone = tuple(v.address for v in self.validators_at(height).validators)
        # The window of height h ends at block h-2; _activity ends at block
        # self.height-1, so drop (self.height + 1 - h) entries from its end.
        lag = self.state.height + 1 - height
        if lag not in (0, 1):
            return everyone
        window = self._activity[:len(self._activity) - lag][-REPUTATION_WINDOW:]
        rotation = everyone
        if len(window) == REPUTATION_WINDOW:
            active = frozenset().union(*window)
            rotation = tuple(a for a in everyone if a in active) or everyone
        self._rotations = {h: r for h, r in self._rotations.items() if h >= self.state.height}
        self._rotations[height] = rotation
        return rotation

    def _power(self, addresses, height: int | None = None) -> int:
        """The power of ``addresses`` in the set of ``height`` (default: the height
        being decided)."""
        vset = self.validators if height is None else self.validators_at(height)
        total = 0
        for address in addresses:
            validator = vset.get(address)
            if validator is not None:
                total += validator.power
        return total

    # ------------------------------------------------------------------ starting

    def start(self, now: float) -> list[Action]:
        """Begin deciding ``self.height``. Resumes in the highest view the sign log
        shows this validator signed in, so a restart never votes in a view it left."""
        return self._enter_height(now)

    def _enter_height(self, now: float) -> list[Action]:
        st = self.state
        st.started = now
        out: list[Action] = []
        resumed = self.signlog.highest_view(st.height)
        if resumed is not None:
            st.view = resumed
            prepared = self.signlog.prepared.get(st.height)
            if prepared is not None:
                st.prepared, block = prepared
                st.unchecked[block.hash] = block
            if self.signlog.signed_view_change(st.height, resumed) and \
                    not self.signlog.voted_in(st.height, resumed):
                return self._start_view_change(resumed, now, resign=True)
            # It voted (or proposed) in that view after entering it: resume there.
            # Its next VIEW-CHANGE, for the view after, carries what it prepared.
            log.info("resuming height %d in view %d from the sign log", st.height, resumed)
        out.append(SetTimer(Timer(TimerKind.VIEW, st.height, st.view),
                            now + self.timeouts.view(st.view)))
        if st.view == 0 and self.proposer(st.height, 0) == self.address:
            out.append(SetTimer(Timer(TimerKind.PROPOSE, st.height, 0),
                                now + self.timeouts.block_interval))
        for message in self._take_future(st.height):
            if self.state is not st or self._committing:
                self._store_future(message)  # a buffered message finished the height
                continue
            try:
                out += self._handle(message, now)
            except InvalidMessage as exc:  # its sender is long gone: drop it
                log.warning("dropping a buffered message for height %d: %s", st.height, exc)
        return out

    # ------------------------------------------------------------------ timers

    def _check_not_committing(self) -> None:
        if self._committing:
            raise LocalError("the driver must call committed() after a Commit action")

    def on_timer(self, timer: Timer, now: float) -> list[Action]:
        self._check_not_committing()
        st = self.state
        if timer.height != st.height or timer.view != st.view:
            return []  # stale
        if timer.kind is TimerKind.PROPOSE:
            return self._on_propose_timer(now)
        if st.phase is Phase.VIEW_CHANGE and not self.validators.has_quorum(self._power(
                {v for view, changes in st.view_changes.items() if view >= st.view
                 for v in changes})):
            # PBFT: move past a view only once a quorum has left the previous one (a
            # view change for this view or a later one: both left it). Alone (the
            # others are down or cut off), climbing views would leave this validator
            # ever further ahead of them when they come back; it repeats its
            # VIEW-CHANGE instead, so late ones can still join it.
            return self._repeat_view_change(now)
        return self._start_view_change(st.view + 1, now)

    def _repeat_view_change(self, now: float) -> list[Action]:
        st = self.state
        out: list[Action] = [SetTimer(Timer(TimerKind.VIEW, st.height, st.view),
                                      now + self.timeouts.view(st.view))]
        if st.own_view_change is not None:
            out.append(Broadcast(st.own_view_change))
        return out

    def on_txs_available(self, now: float) -> list[Action]:
        """The mempool has transactions. A proposer waiting out an idle height
        proposes now, rather than at the idle deadline, once ``block_interval`` has
        passed since the last block (before that, the propose timer does it)."""
        st = self.state
        if (self._committing or st.view != 0 or st.phase is not Phase.PROPOSE or st.proposal
                is not None or not self.signing
                or self.proposer(st.height, 0) != self.address
                or now < st.started + self.timeouts.block_interval):
            return []
        return self._on_propose_timer(now)

    def _on_propose_timer(self, now: float) -> list[Action]:
        st = self.state
        if not self.signing:
            return []
        if st.phase is not Phase.PROPOSE or st.view != 0 or st.proposal is not None:
            return []
        idle_at = st.started + self.timeouts.idle_interval
        if not self.app.has_pending_txs() and now < idle_at:
            return [SetTimer(Timer(TimerKind.PROPOSE, st.height, 0), idle_at)]
        block = self.app.propose(st.height, 0, self.last_commit, self.proposer(st.height, 0))
        proposal = self._sign_proposal(0, block)
        if proposal is None:
            return []
        return [Broadcast(proposal)] + self._accept_proposal(proposal, block, now)

    def _sign_proposal(self, view: int, block: Block) -> Proposal | None:
        assert self.key is not None
        if not self.signing:
            return None
        if not self.signlog.permit(block.height, view, PROPOSE, block.hash):
            log.warning("not proposing at height %d view %d: the sign log holds another "
                        "proposal", block.height, view)
            return None
        return Proposal.create(self.key, self.chain_id, view, block)

    # ------------------------------------------------------------------ messages

    def on_message(self, message: Message, now: float,
                   sender: bytes | None = None) -> list[Action]:
        """A message from the network (``sender``: the peer it came from, which a
        :class:`Reply` goes to). Raises :class:`InvalidMessage` if it is forged or
        breaks the protocol (penalise the peer); stale ones are ignored."""
        self._check_not_committing()
        height = message_height(message)
        st = self.state
        if type(message) is Decision:
            return self._on_decision(message, now)
        if height < st.height:
            if type(message) is VoteMessage and height == st.height - 1:
                self._late_commit_vote(message.vote)
            return self._help_behind(message, height, now, sender)
        if height > st.height:
            return self._from_the_future(message, height, now)
        return self._handle(message, now)

    def _handle(self, message: Message, now: float) -> list[Action]:
        if type(message) is VoteMessage:
            return self._on_vote(message.vote, now)
        if type(message) is Proposal:
            return self._on_proposal(message, now)
        if type(message) is ViewChangeMessage:
            return self._on_view_change(message, now)
        return self._on_new_view(message, now)  # type: ignore[arg-type]

    def _from_the_future(self, message: Message, height: int, now: float) -> list[Action]:
        """A message for a later height. A proposal for a later height carries the
        certificate of its parent: proof, signed by a quorum, that the chain has moved
        on. If that parent is the block we are deciding and we hold it, commit it now;
        otherwise sync. Other messages for the next height wait until we get there;
        anything further ahead is dropped (only a certificate may send us syncing, so
        one Byzantine validator cannot)."""
        st = self.state
        block = None
        if type(message) is Proposal:
            block = message.block
        elif type(message) is NewView:
            block = message.proposal.block
        certificate = block.last_commit if block is not None else None
        if certificate is not None and certificate.height >= st.height:
            try:
                self._verify_ahead(certificate)
            except InvalidCertificate as exc:
                raise InvalidMessage(f"parent certificate: {exc}") from None
            if height == st.height + 1:
                self._check_signature(message)
                self._store_future(message)
                known = st.blocks.get(certificate.block_hash)
                if known is not None:
                    return self._commit_with(known, certificate, now)
            return self._request_sync(certificate.height)
        if height == st.height + 1 and self._view_of(message) <= _MAX_VIEWS_AHEAD:
            self._check_signature(message)
            self._store_future(message)
        return []

    @staticmethod
    def _view_of(message: Message) -> int:
        if type(message) is VoteMessage:
            return message.vote.view
        if type(message) is ViewChangeMessage:
            return message.view_change.view
        return message.view  # type: ignore[union-attr]

    def _late_commit_vote(self, vote: Vote) -> None:
        """A COMMIT for the block just decided, from a validator not in its
        certificate: add it, so the next block's certificate shows that validator
        alive (the proposer rotation reads it)."""
        cert = self.last_commit
        if (cert is None or vote.kind != VoteKind.COMMIT or vote.view != cert.view
                or vote.block_hash != cert.block_hash
                or any(s.validator == vote.validator for s in cert.signatures)):
            return
        self._check_vote(vote)
        self.last_commit = CommitCertificate(cert.height, cert.view, cert.block_hash,
                                             cert.signatures + (CommitSig(vote.validator,
                                                                          vote.signature),))

    def _help_behind(self, message: Message, height: int, now: float,
                     sender: bytes | None) -> list[Action]:
        """A validator still votes on the height we just decided: it missed the
        COMMITs. Answer the peer that sent it (not everyone) with what finishes its
        height, each peer at most once per ``block_interval`` (the whole block at most
        once per :data:`_BLOCK_REPLY_INTERVAL`): an old message anyone can replay must
        turn neither into a flood nor, replayed by one peer, into silence for the
        validator that really is behind."""
        cert = self.last_commit
        if height != self.state.height - 1 or self.last_block is None or cert is None:
            return []
        holds_block = (type(message) is VoteMessage
                       and message.vote.block_hash == cert.block_hash)
        wait = self.timeouts.block_interval if holds_block else \
            max(self.timeouts.block_interval, _BLOCK_REPLY_INTERVAL)
        if now - self._helped.get(sender, float("-inf")) < wait:
            return []
        self._check_signature_behind(message)
        if len(self._helped) >= _MAX_HELPED:
            longest = max(self.timeouts.block_interval, _BLOCK_REPLY_INTERVAL)
            self._helped = {p: t for p, t in self._helped.items() if now - t < longest}
            if len(self._helped) >= _MAX_HELPED:  # that many peers helped at once
                self._helped.clear()
        self._helped[sender] = now
        if holds_block:
            # It voted for the block, so it holds it: the COMMIT votes finish its height
            # (a few hundred bytes where the whole block would be resent and decoded).
            return [Reply(VoteMessage(Vote(VoteKind.COMMIT, cert.height, cert.view,
                                           cert.block_hash, sig.validator, sig.signature)))
                    for sig in cert.signatures]
        return [Reply(Decision(self.last_block, cert))]

    def _on_decision(self, decision: Decision, now: float) -> list[Action]:
        st = self.state
        block, certificate = decision.block, decision.certificate
        if block.height < st.height:
            return []
        try:
            self._verify_ahead(certificate, block.hash)
        except InvalidCertificate as exc:
            raise InvalidMessage(f"decision for block {block.height}: {exc}") from None
        if block.height > st.height:
            return self._request_sync(block.height)
        return self.on_certified_block(block, certificate, now)

    def _verify_ahead(self, certificate: CommitCertificate,
                      block_hash: bytes | None = None) -> None:
        """Check a certificate of the height being decided or a later one: against its
        own height's set when the chain has decided it, else (too far ahead) against
        the newest set we know, of which more than a third must have signed — enough
        to go syncing, where each block is checked against its own set. Raises
        InvalidCertificate."""
        vset = self.set_at(certificate.height)
        if vset is not None:
            certificate.verify(self.chain_id, vset, height=certificate.height,
                               block_hash=certificate.block_hash if block_hash is None
                               else block_hash)
            return
        certificate.verify_trusting(self.chain_id, self.validators_at(self.state.height + 1),
                                    block_hash=block_hash)

    def _check_set_hashes(self, block: Block) -> None:
        """A certified block names the sets the chain decided for its height and the
        next (the application checks it too; this keeps a core over a bare
        application honest about which set it checked the certificate against)."""
        header = block.header
        vset = self.set_at(header.height)
        if vset is not None and header.validators_hash != vset.hash:
            raise InvalidMessage(f"block {header.height} names another validator set than "
                                 "its height's")

    def _store_future(self, message: Message) -> None:
        if len(self.future) >= _MAX_FUTURE:
            return
        kind = type(message)
        # One per sender, kind and view: a Byzantine validator cannot crowd out the
        # others' messages by signing many different ones.
        if type(message) is VoteMessage:
            v = message.vote
            key: tuple = (kind, v.validator, v.kind, v.view)
        elif type(message) is ViewChangeMessage:
            vc = message.view_change
            key = (kind, vc.validator, vc.view)
        else:
            key = (kind, message.view, message_height(message))  # type: ignore[union-attr]
        self.future.setdefault(key, message)

    def _take_future(self, height: int) -> list[Message]:
        ready = [m for m in self.future.values() if message_height(m) == height]
        self.future = {k: m for k, m in self.future.items() if message_height(m) > height}
        return ready

    def _request_sync(self, height: int) -> list[Action]:
        if height <= self._sync_target:
            return []  # a sync that far is under way
        self._sync_target = height
        return [Sync(height)]

    def on_sync_done(self) -> None:
        """The driver's sync ended (caught up or gave up): a later Sync may be asked."""
        self._sync_target = 0

    # ---- signatures

    def _public_key(self, validator: bytes, height: int) -> bytes:
        entry = self.validators_at(height).get(validator)
        if entry is None:
            raise InvalidMessage(f"{validator.hex()} is not a validator at height {height}")
        return entry.public_key

    def _check_vote(self, vote: Vote, kind: int | None = None) -> None:
        if kind is not None and vote.kind != kind:
            raise InvalidMessage("a vote of the wrong kind")
        if not vote.verify(self.chain_id, self._public_key(vote.validator, vote.height)):
            raise InvalidMessage(f"vote signature of {vote.validator.hex()} does not verify")

    def _check_signature_behind(self, message: Message) -> None:
        """A message for the height just decided, checked before we answer it: signed
        by a validator of that height. A proposal is checked against the proposer its
        block names (a view-0 proposal's signer) — the rotation of a decided height is
        not kept (its window has moved on), and the plain rotation would name another
        validator and blame an honest proposer that was merely late."""
        if type(message) is NewView:
            # Its proposal is signed by the new view's proposer, whom the decided
            # height's lost rotation named: check a view change inside instead.
            if not message.view_changes:
                raise InvalidMessage("NEW-VIEW without view changes")
            self._check_view_change(message.view_changes[0])
            return
        if type(message) is not Proposal:
            self._check_signature(message)
            return
        proposal = message
        block = proposal.block
        if not proposal.verify(self.chain_id,
                               self._public_key(block.header.proposer, block.height)):
            raise InvalidMessage("proposal signature does not verify")

    def _check_signature(self, message: Message) -> None:
        if type(message) is VoteMessage:
            self._check_vote(message.vote)
        elif type(message) is Proposal:
            self._check_proposal(message)
        elif type(message) is ViewChangeMessage:
            self._check_view_change(message.view_change)
        else:
            self._check_proposal(message.proposal, fresh=False)  # type: ignore[union-attr]

    def _check_proposal(self, proposal: Proposal, *, fresh: bool = True) -> None:
        block = proposal.block
        expected = self.proposer(block.height, proposal.view)
        if fresh and block.header.proposer != expected:
            raise InvalidMessage(f"block {block.height} view {proposal.view} names proposer "
                                 f"{block.header.proposer.hex()}, expected {expected.hex()}")
        if not proposal.verify(self.chain_id, self._public_key(expected, block.height)):
            raise InvalidMessage("proposal signature does not verify")

    def _check_prepared(self, cert: PreparedCertificate, height: int, before_view: int) -> None:
        if cert.view >= before_view:
            raise InvalidMessage("prepared certificate is not from an earlier view")
        signers = set()
        for vote in cert.votes:
            if (vote.kind, vote.height, vote.view, vote.block_hash) != (
                    VoteKind.PREPARE, height, cert.view, cert.block_hash):
                raise InvalidMessage("prepared certificate holds a vote for something else")
            if vote.validator in signers:
                raise InvalidMessage("prepared certificate names a validator twice")
            signers.add(vote.validator)
            self._check_vote(vote)
        if not self.validators_at(height).has_quorum(self._power(signers, height)):
            raise InvalidMessage("prepared certificate lacks a quorum")

    def _check_view_change(self, vc: ViewChange) -> None:
        if vc.view == 0:
            raise InvalidMessage("a view change to view 0")
        if not vc.verify(self.chain_id, self._public_key(vc.validator, vc.height)):
            raise InvalidMessage(f"view change signature of {vc.validator.hex()} does not verify")
        if vc.prepared is not None:
            self._check_prepared(vc.prepared, vc.height, vc.view)

    # ---- PRE-PREPARE

    def _on_proposal(self, proposal: Proposal, now: float) -> list[Action]:
        self._check_proposal(proposal)
        if proposal.view != 0:
            raise InvalidMessage("a proposal for a view > 0 must come inside a NEW-VIEW")
        st = self.state
        out = self._note_proposal(proposal)
        if st.view != 0 or st.phase is not Phase.PROPOSE or st.proposal is not None:
            return out
        return out + self._accept_proposal(proposal, proposal.block, now)

    def _note_proposal(self, proposal: Proposal) -> list[Action]:
        """Record it; two different proposals for one view are evidence."""
        st = self.state
        first = st.proposals.setdefault(proposal.view, proposal)
        if first.block.hash != proposal.block.hash:
            return self._evidence(first.block.header.proposer, first, proposal)
        return []

    def _accept_proposal(self, proposal: Proposal, block: Block, now: float) -> list[Action]:
        """Validate the block of the current view's proposal and PREPARE it."""
        st = self.state
        try:
            self._validate(block)
        except InvalidProposal as exc:
            log.warning("rejecting block %d view %d from %s: %s", block.height, proposal.view,
                        block.header.proposer.hex()[:12], exc)
            raise InvalidMessage(f"invalid proposal: {exc}", blameless=exc.blameless) from None
        st.proposal = proposal
        st.phase = Phase.PREPARE
        out: list[Action] = []
        vote = self._sign_vote(VoteKind.PREPARE, proposal.view, block.hash)
        if vote is not None:
            out.append(Broadcast(VoteMessage(vote)))
            out += self._on_vote(vote, now)
        return out + self._check_quorums(now)

    def _validate(self, block: Block, *, certified: bool = False) -> None:
        st = self.state
        if block.hash in st.blocks:
            return
        if block.height != st.height:
            raise InvalidProposal(f"block is for height {block.height}, deciding {st.height}")
        lc = block.last_commit
        if st.height > 1:
            if lc is None:
                raise InvalidProposal("the block lacks its parent's certificate")
            try:
                lc.verify(self.chain_id, self.validators_at(st.height - 1),
                          height=st.height - 1, block_hash=block.header.prev_hash)
            except InvalidCertificate as exc:
                raise InvalidProposal(f"parent certificate: {exc}") from None
        self.app.validate(block, certified=certified)
        st.blocks[block.hash] = block

    def _sign_vote(self, kind: int, view: int, block_hash: bytes) -> Vote | None:
        if not self.signing:
            return None
        assert self.key is not None
        phase = PREPARE if kind == VoteKind.PREPARE else COMMIT
        if not self.signlog.permit(self.state.height, view, phase, block_hash):
            log.warning("not signing %s at height %d view %d: the sign log holds a "
                        "conflicting vote", "PREPARE" if phase == PREPARE else "COMMIT",
                        self.state.height, view)
            return None
        return Vote.create(self.key, self.chain_id, kind, self.state.height, view, block_hash)

    # ---- PREPARE / COMMIT

    def _on_vote(self, vote: Vote, now: float) -> list[Action]:
        st = self.state
        if vote.kind not in VoteKind.ALL:
            raise InvalidMessage(f"unknown vote kind {vote.kind}")
        if vote.view > st.view + _MAX_VIEWS_AHEAD:
            return []
        key = (vote.validator, vote.kind, vote.view)
        first = st.first_votes.get(key)
        if first is not None:
            if first.block_hash == vote.block_hash:
                return []  # a duplicate
            self._check_vote(vote)
            return self._evidence(vote.validator, first, vote)
        self._check_vote(vote)
        st.first_votes[key] = vote
        st.votes.setdefault((vote.kind, vote.view, vote.block_hash), {})[vote.validator] = vote
        return self._check_quorums(now)

    def _check_quorums(self, now: float) -> list[Action]:
        st = self.state
        # COMMIT quorums first: in any view, they finish the height.
        for (kind, _view, block_hash), votes in list(st.votes.items()):
            if kind == VoteKind.COMMIT and self.validators.has_quorum(self._power(votes)):
                certificate = CommitCertificate.from_votes(votes.values())
                block = st.blocks.get(block_hash)
                if block is None:
                    return self._request_sync(st.height)
                if self.guarded:
                    self._lift_guard(st.height)
                return self._commit_with(block, certificate, now)
        proposal = st.proposal
        if st.phase is not Phase.PREPARE or proposal is None:
            return []
        block_hash = proposal.block.hash
        prepares = st.votes.get((VoteKind.PREPARE, st.view, block_hash), {})
        if not self.validators.has_quorum(self._power(prepares)):
            return []
        prepared = PreparedCertificate(st.view, block_hash, tuple(prepares.values()))
        st.prepared = prepared
        st.phase = Phase.COMMIT
        if not self.signing:
            return []
        self.signlog.record_prepared(st.height, prepared, proposal.block)
        vote = self._sign_vote(VoteKind.COMMIT, st.view, block_hash)
        if vote is None:
            return []
        return [Broadcast(VoteMessage(vote))] + self._on_vote(vote, now)

    def _lift_guard(self, height: int) -> None:
        self.guarded = False
        log.warning("double-sign guard lifted: height %d committed by votes seen live, "
                    "so nothing the lost sign log held can conflict with what this "
                    "validator signs from height %d on", height, height + 1)

    def _check_own_signature(self, block: Block, certificate: CommitCertificate) -> None:
        """While guarded: say so when the chain shows a signature of ours that this
        process did not make (the lost sign log's)."""
        for cert in (block.last_commit, certificate):
            if cert is not None and any(s.validator == self.address for s in cert.signatures):
                log.warning("double-sign guard: the certificate of height %d carries this "
                            "validator's signature, made before its sign log was lost; "
                            "it will not sign until a height commits without it",
                            cert.height)
                return

    def _commit_with(self, block: Block, certificate: CommitCertificate,
                     now: float) -> list[Action]:
        """Decide the height. The next height starts only when the driver has written
        the block and calls :meth:`committed`: until then the application state is the
        old one, and validating the next height's proposals against it would fail."""
        st = self.state
        if self.guarded:
            self._check_own_signature(block, certificate)
        log.debug("decided block %d (%s) in view %d", st.height, block.hash.hex()[:12],
                  certificate.view)
        self.last_commit = certificate
        self.last_block = block
        self.state = _Height(st.height + 1, now)
        was = self.address
        self._update_address()
        if self.address != was and self.key_address is not None:
            log.warning("this node's validator key %s %s the validator set at height %d",
                        self.key_address.hex()[:12],
                        "joins" if self.address is not None else "leaves", st.height + 1)
        self._committing = True
        return [Commit(block, certificate)]

    def committed(self, now: float) -> list[Action]:
        """The driver has committed the block of the last :class:`Commit` action."""
        if not self._committing:
            raise LocalError("committed() without a Commit action to acknowledge")
        self._committing = False
        if self.last_block is not None:
            self._activity.append(block_activity(self.last_block))
            del self._activity[:-REPUTATION_WINDOW - 1]
        self.signlog.forget_below(self.state.height)
        # The evidence of decided heights went to the driver (and on chain): the budget
        # is per height, so one validator's endless conflicts cannot use it up for good.
        self._evidence_keys = {k for k in self._evidence_keys if k[1] >= self.state.height}
        del self.evidence[:-_MAX_EVIDENCE // 2]
        return self._enter_height(now)

    def on_certified_block(self, block: Block, certificate: CommitCertificate,
                           now: float) -> list[Action]:
        """A committed block fetched by sync. Raises :class:`InvalidMessage` if the
        certificate or the block does not check out; ignored if already decided."""
        self._check_not_committing()
        st = self.state
        if block.height != st.height:
            return []
        try:
            certificate.verify(self.chain_id, self.validators, height=st.height,
                               block_hash=block.hash)
        except InvalidCertificate as exc:
            raise InvalidMessage(f"synced block {block.height}: {exc}") from None
        self._check_set_hashes(block)
        try:
            self._validate(block, certified=True)
        except InvalidProposal as exc:
            raise InvalidMessage(f"synced block {block.height}: {exc}") from None
        return self._commit_with(block, certificate, now)

    # ---- VIEW-CHANGE / NEW-VIEW

    def _start_view_change(self, view: int, now: float, *, resign: bool = False) -> list[Action]:
        st = self.state
        if view < st.view or (view == st.view and st.phase is Phase.VIEW_CHANGE and not resign):
            return []
        self.view_changes += view > st.view
        st.view = view
        st.phase = Phase.VIEW_CHANGE
        st.proposal = None
        st.view_changes = {v: c for v, c in st.view_changes.items() if v >= view}
        out: list[Action] = [SetTimer(Timer(TimerKind.VIEW, st.height, view),
                                      now + self.timeouts.view(view))]
        if self.signing:
            assert self.key is not None
            # The sign log holds the digest of what the view change says, so a
            # restart can repeat it but never sign a different one for that view.
            digest = sha256(pack(ViewChange.signing_body(st.height, view, st.prepared)))
            if self.signlog.permit(st.height, view, VIEW_CHANGE, digest):
                vc = ViewChange.create(self.key, self.chain_id, st.height, view, st.prepared)
                prepared_block = None
                if st.prepared is not None:
                    prepared_block = (st.blocks.get(st.prepared.block_hash)
                                      or st.unchecked.get(st.prepared.block_hash))
                message = ViewChangeMessage(vc, prepared_block)
                st.own_view_change = message
                out.append(Broadcast(message))
                out += self._on_view_change(message, now)
        log.info("height %d: view change to view %d", st.height, view)
        return out

    def _on_view_change(self, message: ViewChangeMessage, now: float) -> list[Action]:
        st = self.state
        vc = message.view_change
        if vc.view < st.view or vc.validator in st.view_changes.get(vc.view, ()):
            return []  # a view we have left, or a duplicate
        if any(vc.validator in changes for view, changes in st.view_changes.items()
               if view > vc.view > st.view):
            return []  # that validator has already moved past this view
        self._check_view_change(vc)
        block = message.prepared_block
        if block is not None and vc.prepared is not None and block.hash == vc.prepared.block_hash:
            st.unchecked.setdefault(block.hash, block)
        st.view_changes.setdefault(vc.view, {})[vc.validator] = vc
        out: list[Action] = []
        if vc.view > st.view:
            # Only a validator's highest view change ahead of us matters: memory stays
            # at one per validator whatever views a Byzantine one signs.
            for view, changes in st.view_changes.items():
                if st.view < view < vc.view:
                    changes.pop(vc.validator, None)
            # f+1: validators with more than 1/3 of the power left our view.
            ahead: dict[bytes, int] = {}
            for view, changes in st.view_changes.items():
                if view > st.view:
                    for validator in changes:
                        ahead[validator] = min(view, ahead.get(validator, view))
            if self.validators.exceeds_one_third(self._power(ahead)):
                out += self._start_view_change(min(ahead.values()), now)
        return out + self._maybe_new_view(now)

    def _maybe_new_view(self, now: float) -> list[Action]:
        st = self.state
        view = st.view
        if (st.phase is not Phase.VIEW_CHANGE or view in st.new_view_sent
                or self.proposer(st.height, view) != self.address):
            return []
        changes = st.view_changes.get(view, {})
        if not self.validators.has_quorum(self._power(changes)):
            return []
        highest = self._highest_prepared(changes.values())
        if highest is not None:
            block = st.blocks.get(highest.block_hash) or st.unchecked.get(highest.block_hash)
            if block is None:
                return []  # wait for a view change that brings the block
        else:
            block = self.app.propose(st.height, view, self.last_commit,
                                     self.proposer(st.height, view))
        proposal = self._sign_proposal(view, block)
        if proposal is None:
            return []
        st.new_view_sent.add(view)
        new_view = NewView(tuple(changes.values()), proposal)
        return [Broadcast(new_view)] + self._on_new_view(new_view, now)

    @staticmethod
    def _highest_prepared(changes) -> PreparedCertificate | None:
        best = None
        for vc in changes:
            if vc.prepared is not None and (best is None or vc.prepared.view > best.view):
                best = vc.prepared
        return best

    def _on_new_view(self, new_view: NewView, now: float) -> list[Action]:
        st = self.state
        proposal = new_view.proposal
        view = proposal.view
        if view < st.view or (view == st.view and st.proposal is not None):
            return []
        if view == 0:
            raise InvalidMessage("a NEW-VIEW for view 0")
        signers = set()
        for vc in new_view.view_changes:
            if vc.height != st.height or vc.view != view:
                raise InvalidMessage("NEW-VIEW holds a view change for another height or view")
            if vc.validator in signers:
                raise InvalidMessage("NEW-VIEW names a validator twice")
            signers.add(vc.validator)
            self._check_view_change(vc)
        if not self.validators.has_quorum(self._power(signers)):
            raise InvalidMessage("NEW-VIEW lacks a quorum of view changes")
        highest = self._highest_prepared(new_view.view_changes)
        self._check_proposal(proposal, fresh=highest is None)
        if highest is not None and proposal.block.hash != highest.block_hash:
            raise InvalidMessage("NEW-VIEW does not re-propose the highest prepared block")
        try:
            self._validate(proposal.block)
        except InvalidProposal as exc:
            raise InvalidMessage(f"invalid proposal: {exc}") from None
        out = self._note_proposal(proposal)
        # Enter the view: the justification shows a quorum left the old ones.
        if view > st.view or st.phase is Phase.VIEW_CHANGE:
            self.view_changes += view > st.view
            st.view = view
            out.append(SetTimer(Timer(TimerKind.VIEW, st.height, view),
                                now + self.timeouts.view(view)))
        st.phase = Phase.PROPOSE
        return out + self._accept_proposal(proposal, proposal.block, now)

    # ---- evidence

    def _evidence(self, validator: bytes, first, second) -> list[Action]:
        # One piece per (validator, height, view, kind of message), at most
        # _MAX_EVIDENCE kept (pruned at each commit, so the budget is per height): a
        # Byzantine validator can sign conflicts without end.
        key = (validator, self.state.height, first.view, type(first).__name__,
               getattr(first, "kind", None))
        if key in self._evidence_keys or len(self.evidence) >= _MAX_EVIDENCE:
            return []
        self._evidence_keys.add(key)
        if type(first) is Proposal:  # keep the signed headers, not two whole blocks
            first, second = _signed_header(first), _signed_header(second)
        evidence = Evidence(validator, first, second)
        self.evidence.append(evidence)
        log.warning("evidence: validator %s signed two conflicting messages at height %d",
                    validator.hex()[:12], self.state.height)
        return [evidence]
