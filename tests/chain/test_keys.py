"""ed25519 keys: RFC 8032 / DJB sign.input known answers and domain-separated signing."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from chain_helpers import CHAIN, OTHER_CHAIN
from hypothesis import given, settings
from hypothesis import strategies as st

from chain.codec import unpack
from chain.errors import LocalError
from chain.hashing import EMPTY_HASH, ZERO_HASH, Domain, sha256
from chain.keys import (
    ADDRESS_SIZE,
    PUBLIC_KEY_SIZE,
    SIGNATURE_SIZE,
    PrivateKey,
    address_of,
    signing_bytes,
    verify,
)

VECTORS = Path(__file__).resolve().parents[1] / "vectors"
RFC8032 = json.loads((VECTORS / "ed25519.json").read_text())["vectors"]


def _sign_input() -> list[tuple[bytes, bytes, bytes, bytes]]:
    rows = []
    for line in (VECTORS / "ed25519.txt").read_text().splitlines():
        sk, pk, msg, sm, tail = line.split(":")
        assert tail == ""
        rows.append((bytes.fromhex(sk), bytes.fromhex(pk), bytes.fromhex(msg), bytes.fromhex(sm)))
    return rows


SIGN_INPUT = _sign_input()


def _flip(data: bytes, bit: int) -> bytes:
    out = bytearray(data)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


def test_vector_files_are_complete() -> None:
    assert [v["name"] for v in RFC8032] == ["TEST 1", "TEST 2", "TEST 3", "TEST 1024", "TEST SHA(abc)"]
    assert len(SIGN_INPUT) == 256
    # Line n has an (n-1)-byte message.
    assert [len(m) for _, _, m, _ in SIGN_INPUT] == list(range(256))


@pytest.mark.parametrize("vector", RFC8032, ids=lambda v: v["name"])
def test_rfc8032_known_answers(vector: dict) -> None:
    seed = bytes.fromhex(vector["secret_key"])
    public_key = bytes.fromhex(vector["public_key"])
    message = bytes.fromhex(vector["message"])
    signature = bytes.fromhex(vector["signature"])
    key = PrivateKey(seed)
    assert key.public_key == public_key
    assert key.seed == seed
    assert key.address == sha256(public_key)[:20]
    assert key.sign_raw(message) == signature
    assert verify(public_key, message, signature)
    # A flipped bit anywhere in the signature, the message or the key breaks it.
    for bit in (0, 7, 255, 256, 511):
        assert not verify(public_key, message, _flip(signature, bit))
    if message:
        assert not verify(public_key, _flip(message, 0), signature)
        assert not verify(public_key, _flip(message, len(message) * 8 - 1), signature)
    assert not verify(public_key, message + b"\x00", signature)
    assert not verify(_flip(public_key, 3), message, signature)


def test_rfc8032_sha_abc_message_is_sha512_of_abc() -> None:
    vector = RFC8032[-1]
    assert bytes.fromhex(vector["message"]) == hashlib.sha512(b"abc").digest()


def test_djb_sign_input_known_answers() -> None:
    for i, (sk, pk, msg, sm) in enumerate(SIGN_INPUT):
        seed, signature = sk[:32], sm[:64]
        assert sk[32:] == pk, i
        assert sm[64:] == msg, i
        key = PrivateKey(seed)
        assert key.public_key == pk, i
        assert key.sign_raw(msg) == signature, i
        assert verify(pk, msg, signature), i
        assert not verify(pk, msg, _flip(signature, i % 512)), i
        if msg:
            assert not verify(pk, _flip(msg, i % (len(msg) * 8)), signature), i


def test_verify_never_raises_on_malformed_input() -> None:
    key = PrivateKey.from_seed_text("k")
    sig = key.sign_raw(b"m")
    assert verify(key.public_key, b"m", sig)
    assert not verify(key.public_key[:31], b"m", sig)
    assert not verify(key.public_key + b"\x00", b"m", sig)
    assert not verify(key.public_key, b"m", sig[:63])
    assert not verify(key.public_key, b"m", sig + b"\x00")
    assert not verify(b"", b"m", b"")
    assert not verify(bytes(32), b"m", bytes(64))  # small-order key, zero signature
    assert not verify(b"\xff" * 32, b"m", sig)  # not a curve point
    # S >= L (non-canonical S) is refused: signatures are not malleable.
    order = 2**252 + 27742317777372353535851937790883648493
    s = int.from_bytes(sig[32:], "little")
    malleated = sig[:32] + (s + order).to_bytes(32, "little")
    assert not verify(key.public_key, b"m", malleated)


@settings(max_examples=50)
@given(seed=st.binary(min_size=32, max_size=32), message=st.binary(max_size=300))
def test_sign_and_verify_round_trip(seed: bytes, message: bytes) -> None:
    key = PrivateKey(seed)
    sig = key.sign_raw(message)
    assert len(sig) == SIGNATURE_SIZE
    assert len(key.public_key) == PUBLIC_KEY_SIZE
    assert key.sign_raw(message) == sig  # deterministic
    assert verify(key.public_key, message, sig)
    assert not verify(key.public_key, message + b"x", sig)


def test_bad_seeds_are_a_local_error() -> None:
    for seed in (b"", bytes(31), bytes(33), bytearray(32), "0" * 32, None):
        with pytest.raises(LocalError, match="exactly 32 bytes"):
            PrivateKey(seed)  # type: ignore[arg-type]


def test_from_seed_text_is_deterministic_and_distinct() -> None:
    a1 = PrivateKey.from_seed_text("alice")
    a2 = PrivateKey.from_seed_text("alice")
    b = PrivateKey.from_seed_text("bob")
    assert a1.public_key == a2.public_key
    assert a1.seed == sha256(b"agora/test-seed/alice")
    assert a1.public_key != b.public_key
    assert a1.address != b.address
    assert a1.public_key.hex() in repr(a1)
    assert a1.seed.hex() not in repr(a1)
    assert PrivateKey.generate().public_key != PrivateKey.generate().public_key


def test_address_is_first_20_bytes_of_sha256_of_the_key() -> None:
    key = PrivateKey.from_seed_text("alice")
    assert address_of(key.public_key) == sha256(key.public_key)[:ADDRESS_SIZE]
    assert len(key.address) == ADDRESS_SIZE
    assert key.address == address_of(key.public_key)


def test_hashing_constants() -> None:
    assert EMPTY_HASH.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert bytes(32) == ZERO_HASH
    assert sha256(b"abc").hex() == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    tags = [Domain.TX, Domain.VOTE, Domain.PROPOSAL, Domain.NODE_KEY]
    assert len(set(tags)) == len(tags)


def test_signing_bytes_bind_domain_and_chain_id() -> None:
    body = [1, b"x", "y"]
    data = signing_bytes(Domain.TX, CHAIN, body)
    assert unpack(data) == [Domain.TX, CHAIN, body]
    others = {
        signing_bytes(Domain.VOTE, CHAIN, body),
        signing_bytes(Domain.TX, OTHER_CHAIN, body),
        signing_bytes(Domain.TX, CHAIN, [1, b"x", "z"]),
    }
    assert data not in others
    assert len(others) == 3


def test_sign_is_domain_and_chain_separated() -> None:
    key = PrivateKey.from_seed_text("alice")
    body = [7, b"\x01" * 32]
    sig = key.sign(Domain.TX, CHAIN, body)
    assert sig == key.sign_raw(signing_bytes(Domain.TX, CHAIN, body))
    assert verify(key.public_key, signing_bytes(Domain.TX, CHAIN, body), sig)
    assert not verify(key.public_key, signing_bytes(Domain.VOTE, CHAIN, body), sig)
    assert not verify(key.public_key, signing_bytes(Domain.TX, OTHER_CHAIN, body), sig)
    assert not verify(key.public_key, signing_bytes(Domain.TX, CHAIN, [8, b"\x01" * 32]), sig)
    other = PrivateKey.from_seed_text("bob")
    assert not verify(other.public_key, signing_bytes(Domain.TX, CHAIN, body), sig)
