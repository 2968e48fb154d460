"""The Noise Protocol Framework (revision 34), as much of it as ``Noise_XX`` needs.

Named after the spec, one to one, so this file can be read beside it:
:class:`CipherState` (§5.1), :class:`SymmetricState` (§5.2), :class:`HandshakeState`
(§5.3), with the spec's operations as methods (``initialize_key`` = InitializeKey,
``mix_hash`` = MixHash, ``encrypt_and_hash`` = EncryptAndHash, ``split`` = Split, ...).

Crypto functions (§4): DH is X25519 (libsodium ``crypto_scalarmult``), the cipher is
ChaChaPoly (IETF ChaCha20-Poly1305, nonce = 32 zero bits then the 64-bit counter little
endian), and the hash is BLAKE2b (Agora's choice) or SHA256 (kept so both published
XX vectors replay). HMAC and HKDF are §4.3's, over the chosen hash.

This module is sans-I/O: it turns bytes into bytes. Framing, timeouts and sockets are
the connection layer's job. Only the ``XX`` pattern is defined; the token interpreter
is general, so another pattern would be a table entry.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import nacl.bindings
import nacl.exceptions

from .errors import DecryptFailed, HandshakeFailed, LocalError

if TYPE_CHECKING:
    from _hashlib import _HashObject  # what hashlib constructors return (typeshed)

DHLEN = 32
KEYLEN = 32
TAGLEN = 16
#: §3: every Noise message, handshake or transport, is at most 65535 bytes.
MAX_MESSAGE_LEN = 65535
#: §5.1: the nonce 2^64-1 is reserved; a CipherState never uses it.
MAX_NONCE = 2**64 - 1

#: Message patterns (§7.5): XX, a tuple of messages, each a tuple of tokens. The
#: initiator sends messages 0 and 2, the responder message 1.
PATTERNS: dict[str, tuple[tuple[str, ...], ...]] = {
    "XX": (("e",), ("e", "ee", "s", "es"), ("s", "se")),
}


@dataclass(frozen=True)
class HashFunction:
    """HASH, HASHLEN and BLOCKLEN of §4.3 (BLOCKLEN is the HMAC block size)."""

    name: str
    new: Callable[[], _HashObject]
    hashlen: int

    def hash(self, data: bytes) -> bytes:
        h = self.new()
        h.update(data)
        return h.digest()

    def hmac(self, key: bytes, data: bytes) -> bytes:
        # The hmac module uses the hash object's own block_size: 128 for BLAKE2b, 64 for
        # SHA256, as §4.3 requires.
        return hmac.new(key, data, self.new).digest()

    def hkdf(self, chaining_key: bytes, ikm: bytes, num_outputs: int) -> tuple[bytes, ...]:
        """HKDF(chaining_key, input_key_material, num_outputs) of §4.3."""
        temp_key = self.hmac(chaining_key, ikm)
        output1 = self.hmac(temp_key, b"\x01")
        output2 = self.hmac(temp_key, output1 + b"\x02")
        if num_outputs == 2:
            return output1, output2
        output3 = self.hmac(temp_key, output2 + b"\x03")
        return output1, output2, output3


BLAKE2B = HashFunction("BLAKE2b", hashlib.blake2b, 64)
SHA256 = HashFunction("SHA256", hashlib.sha256, 32)
HASHES = {h.name: h for h in (BLAKE2B, SHA256)}


@dataclass(frozen=True)
class KeyPair:
    """An X25519 key pair."""

    private: bytes
    public: bytes

    @classmethod
    def from_private(cls, private: bytes) -> KeyPair:
        if len(private) != DHLEN:
            raise LocalError("an X25519 private key is 32 bytes")
        return cls(private, nacl.bindings.crypto_scalarmult_base(private))

    @classmethod
    def generate(cls) -> KeyPair:
        """GENERATE_KEYPAIR() of §4.1, from the operating system's randomness."""
        return cls.from_private(os.urandom(DHLEN))


def dh(key_pair: KeyPair, public_key: bytes) -> bytes:
    """DH(key_pair, public_key) of §4.1: X25519.

    libsodium refuses a result of all zeros (the peer sent a low-order point); §12.1
    allows that, and it is the remote side's fault, so it fails the handshake.
    """
    try:
        return nacl.bindings.crypto_scalarmult(key_pair.private, public_key)
    except (nacl.exceptions.RuntimeError, nacl.exceptions.ValueError,
            nacl.exceptions.TypeError) as exc:
        raise HandshakeFailed(f"X25519 refused the peer's public key ({exc})") from None


def _chachapoly_nonce(n: int) -> bytes:
    # §12.3: 32 bits of zeros followed by the little-endian 64-bit nonce.
    return b"\x00\x00\x00\x00" + n.to_bytes(8, "little")


class CipherState:
    """§5.1: a key ``k`` (or none) and a counter nonce ``n``."""

    __slots__ = ("k", "n")

    def __init__(self) -> None:
        self.k: bytes | None = None
        self.n = 0

    def initialize_key(self, key: bytes | None) -> None:
        self.k = key
        self.n = 0

    def has_key(self) -> bool:
        return self.k is not None

    def set_nonce(self, nonce: int) -> None:
        self.n = nonce

    def encrypt_with_ad(self, ad: bytes, plaintext: bytes) -> bytes:
        if self.k is None:
            return plaintext
        if self.n >= MAX_NONCE:
            raise LocalError("the cipher's nonces are exhausted; the session must end")
        ciphertext = nacl.bindings.crypto_aead_chacha20poly1305_ietf_encrypt(
            plaintext, ad, _chachapoly_nonce(self.n), self.k)
        self.n += 1
        return ciphertext

    def decrypt_with_ad(self, ad: bytes, ciphertext: bytes) -> bytes:
        """Decrypt and authenticate; on failure ``n`` is not advanced (§5.1) and
        :class:`DecryptFailed` is raised."""
        if self.k is None:
            return ciphertext
        if self.n >= MAX_NONCE:
            raise DecryptFailed("the cipher's nonces are exhausted")
        try:
            plaintext = nacl.bindings.crypto_aead_chacha20poly1305_ietf_decrypt(
                ciphertext, ad, _chachapoly_nonce(self.n), self.k)
        except (nacl.exceptions.CryptoError, nacl.exceptions.ValueError,
                nacl.exceptions.TypeError):
            raise DecryptFailed(
                f"frame {self.n} does not authenticate (modified, replayed or out of order)"
            ) from None
        self.n += 1
        return plaintext


class SymmetricState:
    """§5.2: the chaining key ``ck``, the handshake hash ``h`` and a CipherState."""

    __slots__ = ("hash", "ck", "h", "cipher_state")

    def __init__(self, hash_function: HashFunction) -> None:
        self.hash = hash_function
        self.ck = b""
        self.h = b""
        self.cipher_state = CipherState()

    def initialize_symmetric(self, protocol_name: bytes) -> None:
        hashlen = self.hash.hashlen
        if len(protocol_name) <= hashlen:
            self.h = protocol_name.ljust(hashlen, b"\x00")
        else:
            self.h = self.hash.hash(protocol_name)
        self.ck = self.h
        self.cipher_state.initialize_key(None)

    def mix_key(self, input_key_material: bytes) -> None:
        self.ck, temp_k = self.hash.hkdf(self.ck, input_key_material, 2)
        self.cipher_state.initialize_key(temp_k[:KEYLEN])  # truncated when HASHLEN is 64

    def mix_hash(self, data: bytes) -> None:
        self.h = self.hash.hash(self.h + data)

    def get_handshake_hash(self) -> bytes:
        return self.h

    def encrypt_and_hash(self, plaintext: bytes) -> bytes:
        ciphertext = self.cipher_state.encrypt_with_ad(self.h, plaintext)
        self.mix_hash(ciphertext)
        return ciphertext

    def decrypt_and_hash(self, ciphertext: bytes) -> bytes:
        plaintext = self.cipher_state.decrypt_with_ad(self.h, ciphertext)
        self.mix_hash(ciphertext)
        return plaintext

    def split(self) -> tuple[CipherState, CipherState]:
        temp_k1, temp_k2 = self.hash.hkdf(self.ck, b"", 2)
        c1, c2 = CipherState(), CipherState()
        c1.initialize_key(temp_k1[:KEYLEN])
        c2.initialize_key(temp_k2[:KEYLEN])
        return c1, c2


class HandshakeState:
    """§5.3: a SymmetricState plus the DH keys ``s e rs re`` and the pattern.

    After the last message ``write_message`` / ``read_message`` return the two
    CipherStates of ``Split()``: (initiator-to-responder, responder-to-initiator).
    Keys may be injected (``e``) only so tests can replay the published vectors.
    """

    def __init__(
        self,
        pattern: str,
        initiator: bool,
        prologue: bytes,
        s: KeyPair,
        *,
        hash_function: HashFunction = BLAKE2B,
        e: KeyPair | None = None,
    ) -> None:
        if pattern not in PATTERNS:
            raise LocalError(f"unknown handshake pattern {pattern!r}")
        self.protocol_name = f"Noise_{pattern}_25519_ChaChaPoly_{hash_function.name}".encode()
        self.symmetric_state = SymmetricState(hash_function)
        self.symmetric_state.initialize_symmetric(self.protocol_name)
        self.symmetric_state.mix_hash(prologue)
        # XX has no pre-messages, so nothing else is mixed in here.
        self.initiator = initiator
        self.s = s
        self.e = e
        self.rs: bytes | None = None
        self.re: bytes | None = None
        self.message_patterns = list(PATTERNS[pattern])
        self._my_turn = initiator

    @property
    def finished(self) -> bool:
        return not self.message_patterns

    def write_message(self, payload: bytes) -> tuple[bytes, tuple[CipherState, CipherState] | None]:
        """WriteMessage(payload): the handshake message, and the split CipherStates
        once the pattern is complete."""
        if self.finished or not self._my_turn:
            raise LocalError("it is not our turn to write a handshake message")
        ss = self.symmetric_state
        out = bytearray()
        for token in self.message_patterns.pop(0):
            if token == "e":
                if self.e is None:
                    self.e = KeyPair.generate()
                out += self.e.public
                ss.mix_hash(self.e.public)
            elif token == "s":
                out += ss.encrypt_and_hash(self.s.public)
            else:
                ss.mix_key(self._dh_token(token))
        out += ss.encrypt_and_hash(payload)
        if len(out) > MAX_MESSAGE_LEN:
            raise LocalError("handshake payload too large for one Noise message")
        self._my_turn = False
        return bytes(out), self._split_if_done()

    def read_message(self, message: bytes) -> tuple[bytes, tuple[CipherState, CipherState] | None]:
        """ReadMessage(message): the payload, and the split CipherStates once the
        pattern is complete. Raises :class:`HandshakeFailed` on any bad input."""
        if self.finished or self._my_turn:
            raise HandshakeFailed("a handshake message arrived out of turn")
        if len(message) > MAX_MESSAGE_LEN:
            raise HandshakeFailed("handshake message over 65535 bytes")
        ss = self.symmetric_state
        view = memoryview(message)
        pos = 0
        for token in self.message_patterns.pop(0):
            if token == "e":
                if len(message) - pos < DHLEN:
                    raise HandshakeFailed("handshake message too short for an ephemeral key")
                self.re = bytes(view[pos:pos + DHLEN])
                pos += DHLEN
                ss.mix_hash(self.re)
            elif token == "s":
                size = DHLEN + (TAGLEN if ss.cipher_state.has_key() else 0)
                if len(message) - pos < size:
                    raise HandshakeFailed("handshake message too short for a static key")
                self.rs = self._decrypt(bytes(view[pos:pos + size]))
                pos += size
            else:
                ss.mix_key(self._dh_token(token))
        payload = self._decrypt(bytes(view[pos:]))
        self._my_turn = True
        return payload, self._split_if_done()

    def _decrypt(self, ciphertext: bytes) -> bytes:
        try:
            return self.symmetric_state.decrypt_and_hash(ciphertext)
        except DecryptFailed:
            raise HandshakeFailed("handshake message does not authenticate") from None

    def _dh_token(self, token: str) -> bytes:
        # §7.1: "es" is DH(e, rs) for the initiator and DH(s, re) for the responder;
        # "se" the other way round.
        e, s, re, rs = self.e, self.s, self.re, self.rs
        if token == "ee":
            pair, remote = e, re
        elif token == "ss":
            pair, remote = s, rs
        elif token == "es":
            pair, remote = (e, rs) if self.initiator else (s, re)
        elif token == "se":
            pair, remote = (s, re) if self.initiator else (e, rs)
        else:
            raise LocalError(f"unknown token {token!r}")
        if pair is None or remote is None:
            raise LocalError(f"token {token!r} before its keys are known")
        return dh(pair, remote)

    def _split_if_done(self) -> tuple[CipherState, CipherState] | None:
        return self.symmetric_state.split() if self.finished else None
