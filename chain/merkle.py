"""Merkle trees as in RFC 6962 §2.1 (and RFC 9162 §2.1.3 for proof verification).

Leaves and interior nodes are domain-separated so a leaf can never be passed off as a
node: ``leaf = SHA-256(0x00 || data)``, ``node = SHA-256(0x01 || left || right)``, and the
empty tree hashes to ``SHA-256("")``. The tree over n leaves splits at the largest power
of two below n; building it level by level and promoting an odd last node unchanged
gives exactly that shape, so that is how :func:`merkle_root` computes it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import ClassVar

from .codec import Bytes, ListOf, Record, UInt, record
from .hashing import EMPTY_HASH, HASH_SIZE

LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"
MAX_PROOF_DEPTH = 64

_sha256 = hashlib.sha256


def leaf_hash(data: bytes) -> bytes:
    """RFC 6962 leaf hash: SHA-256(0x00 || data)."""
    return _sha256(LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 6962 interior node hash: SHA-256(0x01 || left || right)."""
    return _sha256(NODE_PREFIX + left + right).digest()


def _levels(hashes: list[bytes]) -> list[list[bytes]]:
    levels = [hashes]
    while len(hashes) > 1:
        nxt = [node_hash(hashes[i], hashes[i + 1]) for i in range(0, len(hashes) - 1, 2)]
        if len(hashes) & 1:
            nxt.append(hashes[-1])
        levels.append(nxt)
        hashes = nxt
    return levels


def root_of_leaf_hashes(hashes: Sequence[bytes]) -> bytes:
    """The Merkle tree hash of leaves already hashed with :func:`leaf_hash`."""
    if not hashes:
        return EMPTY_HASH
    return _levels(list(hashes))[-1][0]


def merkle_root(leaves: Sequence[bytes]) -> bytes:
    """MTH(D[n]) of RFC 6962 over the raw leaf inputs."""
    return root_of_leaf_hashes([leaf_hash(d) for d in leaves])


@record(("index", UInt(32)), ("size", UInt(32)), ("path", ListOf(Bytes(HASH_SIZE), MAX_PROOF_DEPTH)))
class InclusionProof(Record):
    """The audit path of leaf ``index`` in a tree of ``size`` leaves (RFC 6962 PATH).

    The proof does not authenticate ``size`` (a proof for leaf 4 of 5 also verifies
    as leaf 1 of 2): check it against a trusted count, such as ``Header.tx_count``.
    """

    MAX_SIZE: ClassVar[int] = 4 * 1024

    index: int
    size: int
    path: tuple[bytes, ...]

    def verify(self, leaf_data: bytes, root: bytes) -> bool:
        """True iff ``leaf_data`` is leaf ``index`` of the tree with this ``root``."""
        return verify_inclusion(leaf_hash(leaf_data), self.index, self.size, self.path, root)


class MerkleTree:
    """The levels of the tree over ``leaves`` (raw leaf inputs), kept to answer many
    inclusion proofs without hashing the leaves again."""

    def __init__(self, leaves: Sequence[bytes]) -> None:
        self.size = len(leaves)
        self._levels = _levels([leaf_hash(d) for d in leaves])

    def proof(self, index: int) -> InclusionProof:
        """The inclusion proof of leaf ``index``."""
        if not 0 <= index < self.size:
            raise IndexError(f"leaf {index} outside a tree of {self.size}")
        path: list[bytes] = []
        i = index
        for level in self._levels[:-1]:
            sibling = i ^ 1
            if sibling < len(level):
                path.append(level[sibling])
            i >>= 1
        return InclusionProof(index, self.size, tuple(path))


def inclusion_proof(leaves: Sequence[bytes], index: int) -> InclusionProof:
    """The inclusion proof of ``leaves[index]`` (raw leaf inputs)."""
    if not 0 <= index < len(leaves):
        raise IndexError(f"leaf {index} outside a tree of {len(leaves)}")
    return MerkleTree(leaves).proof(index)


def verify_inclusion(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes] | None, root: bytes
) -> bool:
    """RFC 9162 §2.1.3.2: verify an inclusion proof for a leaf *hash*.

    Never raises: a malformed proof (wrong lengths, too long or too short) is simply
    not valid. A missing proof (None) is the empty path, as in the RFC 9162 reference
    verifier: it proves the only leaf of a one-leaf tree and nothing else.
    """
    if proof is None:
        proof = ()
    if index < 0 or index >= size:
        return False
    if len(leaf) != HASH_SIZE or len(root) != HASH_SIZE:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0 or len(p) != HASH_SIZE:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root
