"""Consensus messages: PRE-PREPARE (a :class:`Proposal`), PREPARE and COMMIT (a
:class:`VoteMessage` around ``chain.block.Vote``), VIEW-CHANGE and NEW-VIEW.

Each is a frozen record, signed in its own domain and bound to the chain id, and
decoded once at the edge by :func:`decode_message`. Checking a signature needs the
validator set of the message's height, so it is the core's job, not the decoder's.

A VIEW-CHANGE signs its height, view and the (view, block hash) of the sender's
prepared certificate; the certificate itself is made of PREPARE votes that carry their
own signatures. The prepared block travels beside the signed part (its hash is what
is signed), so a NEW-VIEW can carry the view changes without repeating the block.
"""

from __future__ import annotations

from typing import ClassVar

from chain.block import (
    MAX_BLOCK_SIZE,
    MAX_BLOCK_TXS,
    Block,
    CommitCertificate,
    Hash,
    Header,
    Vote,
    VoteKind,
)
from chain.codec import Bytes, ListOf, Nested, OneOf, Optional, Record, UInt, record, unpack
from chain.errors import DecodeError
from chain.hashing import Domain
from chain.keys import SIGNATURE_SIZE, PrivateKey, signing_bytes, verify
from chain.tx import Address, Transaction
from chain.validators import MAX_VALIDATORS

from .errors import InvalidMessage

#: A block and a few thousand votes: the largest consensus message (a NEW-VIEW).
MAX_MESSAGE = MAX_BLOCK_SIZE + 4 * 1024 * 1024
#: Arrays a message may hold: a full block (each transaction and its action are
#: arrays) plus certificates. Caps the lists that decoding may build (see
#: chain.codec.unpack).
MAX_ARRAYS = 3 * MAX_BLOCK_TXS + 8 * MAX_VALIDATORS * (MAX_VALIDATORS // 16 + 4)


@record(("view", UInt(32)), ("block", Nested(Block)), ("signature", Bytes(SIGNATURE_SIZE)))
class Proposal(Record):
    """PRE-PREPARE: the proposer of (height, view) proposes ``block``."""

    TAG: ClassVar[int] = 0
    MAX_SIZE: ClassVar[int] = MAX_MESSAGE
    view: int
    block: Block
    signature: bytes

    @staticmethod
    def signing_body(height: int, view: int, block_hash: bytes) -> list:
        return [height, view, block_hash]

    @classmethod
    def create(cls, key: PrivateKey, chain_id: str, view: int, block: Block) -> Proposal:
        body = cls.signing_body(block.height, view, block.hash)
        return cls(view, block, key.sign(Domain.PROPOSAL, chain_id, body))

    @property
    def height(self) -> int:
        return self.block.height

    def verify(self, chain_id: str, public_key: bytes) -> bool:
        body = self.signing_body(self.block.height, self.view, self.block.hash)
        return verify(public_key, signing_bytes(Domain.PROPOSAL, chain_id, body), self.signature)


@record(("vote", Nested(Vote)))
class VoteMessage(Record):
    """PREPARE or COMMIT (``vote.kind``)."""

    TAG: ClassVar[int] = 1
    vote: Vote


@record(("view", UInt(32)), ("block_hash", Hash), ("votes", ListOf(Nested(Vote), MAX_VALIDATORS)))
class PreparedCertificate(Record):
    """PREPARE votes of more than 2/3 of the power for one (height, view, block)."""

    view: int
    block_hash: bytes
    votes: tuple[Vote, ...]


@record(
    ("height", UInt(64)),
    ("view", UInt(32)),
    ("prepared", Optional(Nested(PreparedCertificate))),
    ("validator", Address),
    ("signature", Bytes(SIGNATURE_SIZE)),
)
class ViewChange(Record):
    """VIEW-CHANGE: ``validator`` leaves for ``view`` at ``height``, carrying the
    highest certificate it prepared at this height (None: it prepared nothing)."""

    height: int
    view: int
    prepared: PreparedCertificate | None
    validator: bytes
    signature: bytes

    @staticmethod
    def signing_body(height: int, view: int, prepared: PreparedCertificate | None) -> list:
        summary = [] if prepared is None else [prepared.view, prepared.block_hash]
        return [height, view, summary]

    @classmethod
    def create(cls, key: PrivateKey, chain_id: str, height: int, view: int,
               prepared: PreparedCertificate | None) -> ViewChange:
        body = cls.signing_body(height, view, prepared)
        return cls(height, view, prepared, key.address,
                   key.sign(Domain.VIEW_CHANGE, chain_id, body))

    def verify(self, chain_id: str, public_key: bytes) -> bool:
        body = self.signing_body(self.height, self.view, self.prepared)
        return verify(public_key, signing_bytes(Domain.VIEW_CHANGE, chain_id, body), self.signature)


@record(("view_change", Nested(ViewChange)), ("prepared_block", Optional(Nested(Block))))
class ViewChangeMessage(Record):
    """A VIEW-CHANGE on the wire, with the prepared block so the next proposer can
    re-propose it even if it never saw it."""

    TAG: ClassVar[int] = 2
    MAX_SIZE: ClassVar[int] = MAX_MESSAGE
    view_change: ViewChange
    prepared_block: Block | None


@record(("view_changes", ListOf(Nested(ViewChange), MAX_VALIDATORS)), ("proposal", Nested(Proposal)))
class NewView(Record):
    """NEW-VIEW: the proposer of a view > 0 shows the VIEW-CHANGEs of a quorum and
    proposes the block they oblige it to (the highest prepared one, if any)."""

    TAG: ClassVar[int] = 3
    MAX_SIZE: ClassVar[int] = MAX_MESSAGE
    view_changes: tuple[ViewChange, ...]
    proposal: Proposal

    @property
    def height(self) -> int:
        return self.proposal.height

    @property
    def view(self) -> int:
        return self.proposal.view


@record(("block", Nested(Block)), ("certificate", Nested(CommitCertificate)))
class Decision(Record):
    """A committed block with its certificate, sent to validators still voting on a
    height that is decided: enough for them to commit it (or to sync up to it)."""

    TAG: ClassVar[int] = 4
    MAX_SIZE: ClassVar[int] = MAX_MESSAGE
    block: Block
    certificate: CommitCertificate

    @property
    def height(self) -> int:
        return self.block.height


@record(
    ("view", UInt(32)),
    ("header", Nested(Header)),
    ("last_commit", Optional(Nested(CommitCertificate))),
    ("tx_hashes", ListOf(Hash, MAX_BLOCK_TXS)),
    ("signature", Bytes(SIGNATURE_SIZE)),
)
class CompactProposal(Record):
    """A PRE-PREPARE on the wire: the block's transactions by hash, since gossip has
    already brought them to the validators' mempools; a receiver fetches only what it
    lacks. The signature is the proposal's own (it covers the header hash, and the
    header's tx_root covers the transactions), so the full proposal rebuilt from it
    verifies as if it had been sent whole."""

    TAG: ClassVar[int] = 5
    MAX_SIZE: ClassVar[int] = MAX_MESSAGE
    view: int
    header: Header
    last_commit: CommitCertificate | None
    tx_hashes: tuple[bytes, ...]
    signature: bytes

    @classmethod
    def of(cls, proposal: Proposal) -> CompactProposal:
        block = proposal.block
        return cls(proposal.view, block.header, block.last_commit,
                   tuple(tx.hash for tx in block.txs), proposal.signature)

    @property
    def height(self) -> int:
        return self.header.height

    def verify(self, chain_id: str, public_key: bytes) -> bool:
        body = Proposal.signing_body(self.header.height, self.view, self.header.hash)
        return verify(public_key, signing_bytes(Domain.PROPOSAL, chain_id, body), self.signature)

    def assemble(self, txs: tuple[Transaction, ...]) -> Proposal:
        """The full proposal, given the transactions in order."""
        return Proposal(self.view, Block(self.header, txs, self.last_commit), self.signature)


Message = Proposal | VoteMessage | ViewChangeMessage | NewView | Decision
WireMessage = Message | CompactProposal
_UNION = OneOf(Proposal, VoteMessage, ViewChangeMessage, NewView, Decision, CompactProposal)


def encode_message(message: WireMessage) -> bytes:
    return _UNION.encode(message)


def decode_message(data: bytes) -> WireMessage:
    """Strictly decode a consensus message; raises :class:`InvalidMessage`."""
    try:
        raw = unpack(data, MAX_MESSAGE, "consensus message", plain=False, max_arrays=MAX_ARRAYS)
        return _UNION.load(raw)  # type: ignore[return-value]
    except DecodeError as exc:
        raise InvalidMessage(f"malformed consensus message: {exc}") from None


def message_height(message: Message) -> int:
    if type(message) is VoteMessage:
        return message.vote.height
    if type(message) is ViewChangeMessage:
        return message.view_change.height
    return message.height  # type: ignore[union-attr]


__all__ = ["CompactProposal", "Decision", "Message", "NewView", "PreparedCertificate", "Proposal", "ViewChange",
           "ViewChangeMessage", "VoteKind", "VoteMessage", "decode_message", "encode_message"]
