"""State proofs: membership and non-membership of a key, checkable with only a root.

The state tree (see :mod:`storage.state`) is a radix-16 Merkle tree over
``SHA-256(key)``. A proof lists, from the root down, every internal node on the key's
path as its child bitmap plus the hashes of its *other* children, and ends in one of:

* a leaf for this key: the key is present, and the leaf's value hash must equal
  SHA-256 of the claimed value;
* a leaf for another key that occupies the slot where this key would be: absent;
* an empty slot (the last node has no child at the key's next nibble), or an empty
  tree: absent.

Verification rebuilds the hashes bottom-up and compares with the root. It needs no
database and never raises on a malformed proof; it returns False.

Hashes (domain-separated as in RFC 6962):
``leaf = SHA-256(0x00 || key_hash || value_hash)`` and
``node = SHA-256(0x01 || bitmap (2 bytes, big-endian; bit i = child i) || child hashes in
nibble order)``; the empty tree is SHA-256("").
"""

from __future__ import annotations

import hashlib
from typing import ClassVar

from chain.codec import Bytes, ListOf, Nested, Record, UInt, record
from chain.hashing import EMPTY_HASH, HASH_SIZE
from chain.merkle import LEAF_PREFIX, NODE_PREFIX

#: A SHA-256 key hash has 64 nibbles, so no path is longer.
MAX_DEPTH = 64

_sha256 = hashlib.sha256


def leaf_hash(key_hash: bytes, value_hash: bytes) -> bytes:
    """Hash of the leaf holding a key (by its hash) and a value (by its hash)."""
    return _sha256(LEAF_PREFIX + key_hash + value_hash).digest()


def node_hash(bitmap: int, child_hashes: list[bytes]) -> bytes:
    """Hash of an internal node from its bitmap and its present children, in order."""
    return _sha256(NODE_PREFIX + bitmap.to_bytes(2, "big") + b"".join(child_hashes)).digest()


def nibble(key_hash: bytes, depth: int) -> int:
    """The ``depth``-th 4-bit digit of a key hash, most significant first."""
    b = key_hash[depth >> 1]
    return b & 15 if depth & 1 else b >> 4


def same_prefix(a: bytes, b: bytes, nibbles: int) -> bool:
    """True iff ``a`` and ``b`` agree on their first ``nibbles`` nibbles."""
    full = nibbles >> 1
    if a[:full] != b[:full]:
        return False
    return not nibbles & 1 or (a[full] >> 4) == (b[full] >> 4)


@record(("bitmap", UInt(16)), ("siblings", ListOf(Bytes(HASH_SIZE), 15)))
class ProofStep(Record):
    """One internal node on the path: which children exist, and all but ours."""

    MAX_SIZE: ClassVar[int] = 1024

    bitmap: int
    siblings: tuple[bytes, ...]


@record(
    ("steps", ListOf(Nested(ProofStep), MAX_DEPTH)),
    ("leaf_key_hash", Bytes(max_len=HASH_SIZE)),
    ("leaf_value_hash", Bytes(max_len=HASH_SIZE)),
)
class StateProof(Record):
    """Proof that a key has a value, or no value, under a state root.

    ``leaf_key_hash`` / ``leaf_value_hash`` are empty when the path ends at an empty
    slot; otherwise they describe the leaf at the end of the path (which is this key's
    leaf for a membership proof, another key's for a non-membership proof).
    """

    MAX_SIZE: ClassVar[int] = 64 * 1024
    steps: tuple[ProofStep, ...]
    leaf_key_hash: bytes
    leaf_value_hash: bytes

    def verify(self, root: bytes, key: bytes, value: bytes | None) -> bool:
        """See :func:`verify_state_proof`."""
        return verify_state_proof(root, key, value, self)


def verify_state_proof(root: bytes, key: bytes, value: bytes | None, proof: StateProof) -> bool:
    """True iff ``proof`` shows that ``key`` maps to ``value`` (None: is absent) under
    ``root``. Never raises for a malformed proof."""
    key_hash = _sha256(key).digest()
    steps = proof.steps
    depth = len(steps)
    if depth > MAX_DEPTH:
        return False
    okh, ovh = proof.leaf_key_hash, proof.leaf_value_hash
    current: bytes | None
    if okh or ovh:
        if len(okh) != HASH_SIZE or len(ovh) != HASH_SIZE:
            return False
        if okh == key_hash:
            if value is None or _sha256(value).digest() != ovh:
                return False
        elif value is not None or not same_prefix(okh, key_hash, depth):
            # The other leaf must sit exactly where this key's path leads.
            return False
        current = leaf_hash(okh, ovh)
    else:
        if value is not None:
            return False
        if depth == 0:
            return root == EMPTY_HASH
        current = None
    for d in range(depth - 1, -1, -1):
        step = steps[d]
        bitmap = step.bitmap
        if not 0 <= bitmap <= 0xFFFF:
            return False
        bit = 1 << nibble(key_hash, d)
        count = bitmap.bit_count()
        siblings = list(step.siblings)
        if current is None:
            # The deepest node has no child where this key would go.
            if bitmap & bit or count != len(siblings):
                return False
            children = siblings
        else:
            if not bitmap & bit or count != len(siblings) + 1:
                return False
            siblings.insert((bitmap & (bit - 1)).bit_count(), current)
            children = siblings
        current = node_hash(bitmap, children)
    return current == root
