"""Headers, blocks, votes, commit certificates and receipts.

A block at height h carries the commit certificate of block h-1 (``last_commit``),
so every stored block proves its parent final. A commit certificate is self-contained:
the height, view and block hash plus the COMMIT signatures of validators holding more
than two thirds of the voting power — what light and syncing nodes check.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar

from .codec import Bytes, ListOf, Nested, Optional, Record, Str, UInt, record
from .errors import InvalidCertificate, RemoteError
from .hashing import HASH_SIZE, ZERO_HASH, Domain, sha256
from .keys import SIGNATURE_SIZE, PrivateKey, address_of, signing_bytes, verify
from .merkle import InclusionProof, inclusion_proof, merkle_root
from .tx import MAX_CHAIN_ID, Address, Transaction
from .validators import MAX_VALIDATORS, ValidatorSet

Hash = Bytes(HASH_SIZE)
MAX_BLOCK_TXS = 65_536
MAX_BLOCK_SIZE = 16 * 1024 * 1024
MAX_EVENTS = 256
MAX_EVENT_DATA = 4 * 1024
MAX_RETURN_DATA = 64 * 1024
MAX_REASON = 256


class InvalidBlock(RemoteError):
    """A block is internally inconsistent (roots, chain id, heights, last commit)."""


@record(
    ("chain_id", Str(MAX_CHAIN_ID)),
    ("height", UInt(64)),
    ("time_ms", UInt(64)),
    ("prev_hash", Hash),
    ("tx_root", Hash),
    ("receipts_root", Hash),
    ("state_root", Hash),
    ("validators_hash", Hash),
    ("next_validators_hash", Hash),
    ("proposer", Address),
    ("tx_count", UInt(32)),
    ("last_commit_hash", Hash),
)
class Header(Record):
    """A block header. ``state_root`` is the state *after* applying this block.

    ``tx_count`` lets a light node check that an inclusion proof's tree size is the
    block's (RFC 6962 proofs do not authenticate it), and ``last_commit_hash`` binds
    the parent's certificate carried in the block, so one block hash means one set of
    stored bytes. For the first block it is ZERO_HASH and ``prev_hash`` is the genesis
    hash.
    """

    MAX_SIZE: ClassVar[int] = 1024
    chain_id: str
    height: int
    time_ms: int
    prev_hash: bytes
    tx_root: bytes
    receipts_root: bytes
    state_root: bytes
    validators_hash: bytes
    next_validators_hash: bytes
    proposer: bytes
    tx_count: int
    last_commit_hash: bytes

    @property
    def hash(self) -> bytes:
        """The block hash: SHA-256 of the encoded header."""
        cached = self.__dict__.get("_hash")
        if cached is None:
            cached = sha256(self.encode())
            object.__setattr__(self, "_hash", cached)
        return cached


class VoteKind:
    """The phases a validator signs. COMMIT votes make commit certificates."""

    PREPARE = 1
    COMMIT = 2
    ALL = (PREPARE, COMMIT)


@record(
    ("kind", UInt(8)),
    ("height", UInt(64)),
    ("view", UInt(32)),
    ("block_hash", Hash),
    ("validator", Address),
    ("signature", Bytes(SIGNATURE_SIZE)),
)
class Vote(Record):
    """A validator's signed vote for a block hash at (height, view, phase)."""

    MAX_SIZE: ClassVar[int] = 256
    kind: int
    height: int
    view: int
    block_hash: bytes
    validator: bytes
    signature: bytes

    @staticmethod
    def signing_body(kind: int, height: int, view: int, block_hash: bytes) -> list:
        return [kind, height, view, block_hash]

    @classmethod
    def create(
        cls, key: PrivateKey, chain_id: str, kind: int, height: int, view: int, block_hash: bytes
    ) -> Vote:
        body = cls.signing_body(kind, height, view, block_hash)
        return cls(kind, height, view, block_hash, key.address,
                   key.sign(Domain.VOTE, chain_id, body))

    def verify(self, chain_id: str, public_key: bytes) -> bool:
        """True iff this vote is validly signed by ``public_key`` for ``chain_id`` and
        ``public_key`` is the key of the validator the vote names."""
        if self.kind not in VoteKind.ALL or address_of(public_key) != self.validator:
            return False
        body = self.signing_body(self.kind, self.height, self.view, self.block_hash)
        return verify(public_key, signing_bytes(Domain.VOTE, chain_id, body), self.signature)


@record(("validator", Address), ("signature", Bytes(SIGNATURE_SIZE)))
class CommitSig(Record):
    """One validator's COMMIT signature inside a certificate."""

    validator: bytes
    signature: bytes


@record(
    ("height", UInt(64)),
    ("view", UInt(32)),
    ("block_hash", Hash),
    ("signatures", ListOf(Nested(CommitSig), MAX_VALIDATORS)),
)
class CommitCertificate(Record):
    """Proof that validators with > 2/3 of the power committed ``block_hash``."""

    #: 1,024 signers of ~90 bytes each, with room to spare. Decoding untrusted input
    #: costs memory in proportion to its size, so every type has a tight limit.
    MAX_SIZE: ClassVar[int] = 128 * 1024

    height: int
    view: int
    block_hash: bytes
    signatures: tuple[CommitSig, ...]

    @classmethod
    def from_votes(cls, votes: Iterable[Vote]) -> CommitCertificate:
        """Assemble a certificate from COMMIT votes for one (height, view, block)."""
        votes = list(votes)
        if not votes:
            raise InvalidCertificate("no votes")
        first = votes[0]
        for v in votes:
            if (v.kind, v.height, v.view, v.block_hash) != (
                VoteKind.COMMIT, first.height, first.view, first.block_hash
            ):
                raise InvalidCertificate("votes are not COMMITs for one height, view and block")
        sigs = tuple(CommitSig(v.validator, v.signature) for v in votes)
        return cls(first.height, first.view, first.block_hash, sigs)

    def verify(
        self, chain_id: str, validators: ValidatorSet, *, height: int, block_hash: bytes
    ) -> None:
        """Check the certificate against a validator set; raise InvalidCertificate.

        It must be for the expected height and block, name no signer twice and no
        signer outside the set, reach more than two thirds of the power, and carry
        only valid COMMIT signatures for its own (height, view, block). Everything
        cheap is checked before the first signature, so a junk certificate costs no
        ed25519 verification.
        """
        if self.height != height:
            raise InvalidCertificate(f"certificate is for height {self.height}, expected {height}")
        if self.block_hash != block_hash:
            raise InvalidCertificate("certificate is for another block")
        signers = []
        seen: set[bytes] = set()
        power = 0
        for sig in self.signatures:
            if sig.validator in seen:
                raise InvalidCertificate(f"signer {sig.validator.hex()} appears twice")
            seen.add(sig.validator)
            validator = validators.get(sig.validator)
            if validator is None:
                raise InvalidCertificate(f"signer {sig.validator.hex()} is not a validator")
            signers.append((validator, sig.signature))
            power += validator.power
        if not validators.has_quorum(power):
            raise InvalidCertificate(
                f"signers hold {power} of {validators.total_power} power; need more than 2/3"
            )
        body = Vote.signing_body(VoteKind.COMMIT, self.height, self.view, self.block_hash)
        message = signing_bytes(Domain.VOTE, chain_id, body)
        for validator, signature in signers:
            if not verify(validator.public_key, message, signature):
                raise InvalidCertificate(
                    f"signature of {validator.address.hex()} does not verify"
                )

    def verify_trusting(self, chain_id: str, trusted: ValidatorSet, *,
                        block_hash: bytes | None = None) -> None:
        """Check that validators of an earlier, ``trusted`` set holding more than a
        third of its power signed this certificate (so at least one honest validator
        of that set did); signers outside it are not counted. For a certificate of a
        height whose own set is not known yet: it proves the chain got there, not the
        block (a syncing node then checks each block against its own height's set, and
        a light node skips ahead this way; CometBFT's trust level). Raises
        InvalidCertificate."""
        if block_hash is not None and self.block_hash != block_hash:
            raise InvalidCertificate("certificate is for another block")
        body = Vote.signing_body(VoteKind.COMMIT, self.height, self.view, self.block_hash)
        message = signing_bytes(Domain.VOTE, chain_id, body)
        seen: set[bytes] = set()
        counted = []
        for sig in self.signatures:
            if sig.validator in seen:
                raise InvalidCertificate(f"signer {sig.validator.hex()} appears twice")
            seen.add(sig.validator)
            validator = trusted.get(sig.validator)
            if validator is not None:
                counted.append((validator, sig.signature))
        power = sum(v.power for v, _ in counted)
        if not trusted.exceeds_one_third(power):
            raise InvalidCertificate(f"signers of the trusted set hold {power} of "
                                     f"{trusted.total_power} power; need more than 1/3")
        for validator, signature in counted:
            if not verify(validator.public_key, message, signature):
                raise InvalidCertificate(
                    f"signature of {validator.address.hex()} does not verify"
                )


@record(("contract", Address), ("name", Str(64)), ("data", Bytes(max_len=MAX_EVENT_DATA)))
class Event(Record):
    """An event emitted by a contract: its name and ABI-encoded fields."""

    contract: bytes
    name: str
    data: bytes


class ReceiptStatus:
    """How a transaction ended. A failed one is still included and pays its fee."""

    OK = 0
    REVERTED = 1
    OUT_OF_GAS = 2
    ERROR = 3
    NAMES = {OK: "ok", REVERTED: "reverted", OUT_OF_GAS: "out_of_gas", ERROR: "error"}


@record(
    ("status", UInt(8)),
    ("gas_used", UInt(64)),
    ("return_data", Bytes(max_len=MAX_RETURN_DATA)),
    ("reason", Str(MAX_REASON)),
    ("events", ListOf(Nested(Event), MAX_EVENTS)),
)
class Receipt(Record):
    """The outcome of one transaction in a block."""

    MAX_SIZE: ClassVar[int] = MAX_RETURN_DATA + MAX_EVENTS * (MAX_EVENT_DATA + 128) + 1024

    status: int
    gas_used: int
    return_data: bytes
    reason: str
    events: tuple[Event, ...]


def receipts_root(receipts: Iterable[Receipt]) -> bytes:
    return merkle_root([r.encode() for r in receipts])


def tx_root(txs: Iterable[Transaction]) -> bytes:
    return merkle_root([t.encode() for t in txs])


@record(
    ("header", Nested(Header)),
    ("txs", ListOf(Nested(Transaction), MAX_BLOCK_TXS)),
    ("last_commit", Optional(Nested(CommitCertificate))),
)
class Block(Record):
    """A header, its transactions and the certificate that committed the parent."""

    MAX_SIZE: ClassVar[int] = MAX_BLOCK_SIZE
    header: Header
    txs: tuple[Transaction, ...]
    last_commit: CommitCertificate | None

    @property
    def hash(self) -> bytes:
        return self.header.hash

    @property
    def height(self) -> int:
        return self.header.height

    def tx_proof(self, index: int) -> InclusionProof:
        """Inclusion proof of transaction ``index`` under ``header.tx_root``."""
        return inclusion_proof([t.encode() for t in self.txs], index)

    def validate_basic(self, chain_id: str, genesis_hash: bytes | None = None) -> None:
        """Checks that need no state or validator set; raises InvalidBlock.

        The header must be for ``chain_id`` and a positive height; ``tx_root`` and
        ``tx_count`` must match the transactions, which must be for this chain and
        distinct; ``last_commit`` must be present exactly when there is a parent,
        name the parent and match ``last_commit_hash``; the first block's
        ``prev_hash`` must be the genesis hash (when given). (Signatures of the
        certificate and the transactions are checked where the validator set and the
        caches are: in consensus and the mempool.)
        """
        h = self.header
        if h.chain_id != chain_id:
            raise InvalidBlock(f"block is for chain {h.chain_id!r}, this is chain {chain_id!r}")
        if h.height < 1:
            raise InvalidBlock("block height starts at 1")
        if h.tx_count != len(self.txs):
            raise InvalidBlock(f"header counts {h.tx_count} transactions, block has {len(self.txs)}")
        if tx_root(self.txs) != h.tx_root:
            raise InvalidBlock("tx root does not match the transactions")
        seen: set[bytes] = set()
        for i, tx in enumerate(self.txs):
            if tx.chain_id != chain_id:
                raise InvalidBlock(f"transaction {i} is for chain {tx.chain_id!r}")
            if tx.hash in seen:
                raise InvalidBlock(f"transaction {i} appears twice in the block")
            seen.add(tx.hash)
        if h.height == 1:
            if self.last_commit is not None or h.last_commit_hash != ZERO_HASH:
                raise InvalidBlock("the first block has no parent to certify")
            if genesis_hash is not None and h.prev_hash != genesis_hash:
                raise InvalidBlock("the first block does not follow this genesis")
        else:
            lc = self.last_commit
            if lc is None:
                raise InvalidBlock("missing the parent's commit certificate")
            if lc.height != h.height - 1 or lc.block_hash != h.prev_hash:
                raise InvalidBlock("last commit does not certify the parent block")
            if sha256(lc.encode()) != h.last_commit_hash:
                raise InvalidBlock("last commit does not match the header's last_commit_hash")
