"""Evidence of equivocation: one validator's two signatures for conflicting messages
at the same height, view and phase.

A :class:`DoubleSign` holds only what the two signatures cover — the phase, height,
view and the two block hashes — and the signatures: proposals and votes sign
``[height, view, block hash]`` (with the vote's kind) under their own domain tags, so
the record is checked without the blocks. Any node that sees a conflict sends it to
:data:`chain.system.EVIDENCE_ADDRESS` in a transaction; the executor verifies it
against the validator set of its height, records it once in the state (so it is
provable) and proposes the equivocator's removal to the governance contract.
"""

from __future__ import annotations

from .block import Vote, VoteKind
from .codec import Bytes, Record, UInt, record
from .errors import RemoteError
from .hashing import HASH_SIZE, Domain
from .keys import ADDRESS_SIZE, SIGNATURE_SIZE, address_of, signing_bytes, verify
from .validators import ValidatorSet

#: What was signed twice: a proposal (PRE-PREPARE), or a PREPARE or COMMIT vote.
PROPOSAL = 0
PREPARE = VoteKind.PREPARE
COMMIT = VoteKind.COMMIT
KIND_NAMES = {PROPOSAL: "proposal", PREPARE: "prepare", COMMIT: "commit"}


class InvalidEvidence(RemoteError):
    """Evidence that proves nothing: malformed, forged, or not a conflict."""


@record(
    ("kind", UInt(8)),
    ("height", UInt(64)),
    ("view", UInt(32)),
    ("validator", Bytes(ADDRESS_SIZE)),
    ("hash_a", Bytes(HASH_SIZE)),
    ("signature_a", Bytes(SIGNATURE_SIZE)),
    ("hash_b", Bytes(HASH_SIZE)),
    ("signature_b", Bytes(SIGNATURE_SIZE)),
)
class DoubleSign(Record):
    """Validator ``validator`` signed both ``hash_a`` and ``hash_b`` as its ``kind`` at
    (``height``, ``view``). The hashes are in ascending order, so one conflict has one
    encoding."""

    kind: int
    height: int
    view: int
    validator: bytes
    hash_a: bytes
    signature_a: bytes
    hash_b: bytes
    signature_b: bytes

    @classmethod
    def of(cls, kind: int, height: int, view: int, validator: bytes,
           first: tuple[bytes, bytes], second: tuple[bytes, bytes]) -> DoubleSign:
        """From two (block hash, signature) pairs, in either order."""
        a, b = sorted((first, second))
        return cls(kind, height, view, validator, a[0], a[1], b[0], b[1])

    @property
    def key(self) -> bytes:
        """What makes a conflict the same one however it is reported: the validator,
        height, view and phase."""
        return (self.validator + self.height.to_bytes(8, "big") + self.view.to_bytes(4, "big")
                + bytes([self.kind]))

    def _message(self, chain_id: str, block_hash: bytes) -> bytes:
        if self.kind == PROPOSAL:
            return signing_bytes(Domain.PROPOSAL, chain_id, [self.height, self.view, block_hash])
        body = Vote.signing_body(self.kind, self.height, self.view, block_hash)
        return signing_bytes(Domain.VOTE, chain_id, body)

    def verify(self, chain_id: str, validators: ValidatorSet) -> None:
        """Check it against the validator set of its height; raise InvalidEvidence."""
        if self.kind not in KIND_NAMES:
            raise InvalidEvidence(f"unknown kind of signed message {self.kind}")
        if self.height < 1:
            raise InvalidEvidence("evidence for height 0")
        if not self.hash_a < self.hash_b:
            raise InvalidEvidence("the two block hashes must differ and be in ascending order")
        validator = validators.get(self.validator)
        if validator is None:
            raise InvalidEvidence(f"{self.validator.hex()} was not a validator at height "
                                  f"{self.height}")
        if address_of(validator.public_key) != self.validator:  # pragma: no cover
            raise InvalidEvidence("the validator's key does not match its address")
        for block_hash, signature in ((self.hash_a, self.signature_a),
                                      (self.hash_b, self.signature_b)):
            if not verify(validator.public_key, self._message(chain_id, block_hash), signature):
                raise InvalidEvidence(f"a signature of {self.validator.hex()} does not verify")

    def describe(self) -> str:
        return (f"validator {self.validator.hex()} signed two {KIND_NAMES.get(self.kind, '?')}s "
                f"at height {self.height} view {self.view}")
