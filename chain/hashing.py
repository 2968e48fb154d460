"""SHA-256, the one hash function of the chain, and the domain tags of signatures."""

from __future__ import annotations

import hashlib

HASH_SIZE = 32
#: SHA-256 of the empty string: the hash of an empty Merkle tree (RFC 6962 §2.1).
EMPTY_HASH = hashlib.sha256(b"").digest()
ZERO_HASH = bytes(HASH_SIZE)

_sha256 = hashlib.sha256


def sha256(data: bytes) -> bytes:
    """SHA-256 digest of ``data``."""
    return _sha256(data).digest()


class Domain:
    """Signature domain tags: one per kind of signed message, so a signature made for
    one kind can never be presented as another. They are the first element of the
    signed array, next to the chain id (see :func:`chain.keys.signing_bytes`)."""

    TX = "agora/tx/v1"
    VOTE = "agora/vote/v1"
    PROPOSAL = "agora/proposal/v1"
    VIEW_CHANGE = "agora/view-change/v1"
    NODE_KEY = "agora/node-key/v1"
