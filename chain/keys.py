"""ed25519 keys (PyNaCl) and domain-separated signing.

Every signature in Agora is made over :func:`signing_bytes`: the canonical encoding of
``[domain tag, chain id, body]``. The tag says what kind of message is signed and the
chain id which chain it is for, so a transaction cannot be replayed on another chain
and a vote signature cannot be passed off as a transaction signature.
"""

from __future__ import annotations

from typing import Any

import nacl.bindings
import nacl.exceptions
import nacl.signing

from .codec import pack
from .errors import LocalError
from .hashing import sha256

PUBLIC_KEY_SIZE = 32
SIGNATURE_SIZE = 64
SEED_SIZE = 32
ADDRESS_SIZE = 20


def signing_bytes(domain: str, chain_id: str, body: Any) -> bytes:
    """The exact bytes signed for a message of kind ``domain`` on ``chain_id``."""
    return pack([domain, chain_id, body])


def address_of(public_key: bytes) -> bytes:
    """Address = the first 20 bytes of SHA-256(public key)."""
    return sha256(public_key)[:ADDRESS_SIZE]


def verify(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """True iff ``signature`` is a valid ed25519 signature of ``message`` by the key.

    Never raises on bad input: a malformed key or signature simply does not verify.
    libsodium rejects non-canonical S values, so signatures are not malleable.
    """
    if len(public_key) != PUBLIC_KEY_SIZE or len(signature) != SIGNATURE_SIZE:
        return False
    try:
        nacl.bindings.crypto_sign_open(signature + message, public_key)
    except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError,
            nacl.exceptions.TypeError, ValueError):
        return False
    return True


class PrivateKey:
    """An ed25519 signing key made from a 32-byte seed (RFC 8032 secret key)."""

    __slots__ = ("_signing", "public_key", "address")

    def __init__(self, seed: bytes) -> None:
        if type(seed) is not bytes or len(seed) != SEED_SIZE:
            raise LocalError("an ed25519 seed is exactly 32 bytes")
        self._signing = nacl.signing.SigningKey(seed)
        self.public_key: bytes = bytes(self._signing.verify_key)
        self.address: bytes = address_of(self.public_key)

    @classmethod
    def generate(cls) -> PrivateKey:
        """A fresh key from the operating system's randomness."""
        return cls(bytes(nacl.signing.SigningKey.generate()))

    @classmethod
    def from_seed_text(cls, text: str) -> PrivateKey:
        """A deterministic key derived from a text (tests, localnet demo accounts)."""
        return cls(sha256(b"agora/test-seed/" + text.encode()))

    @property
    def seed(self) -> bytes:
        """The 32-byte secret seed (handle with care)."""
        return bytes(self._signing)

    def sign_raw(self, message: bytes) -> bytes:
        """Sign raw bytes. Prefer :meth:`sign`, which adds domain and chain id."""
        return self._signing.sign(message).signature

    def sign(self, domain: str, chain_id: str, body: Any) -> bytes:
        """Sign ``body`` for message kind ``domain`` on ``chain_id``."""
        return self.sign_raw(signing_bytes(domain, chain_id, body))

    def __repr__(self) -> str:
        return f"PrivateKey(public_key={self.public_key.hex()})"
