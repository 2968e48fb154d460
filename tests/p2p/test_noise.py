"""The Noise core against the published XX vectors and against `noiseprotocol`, an
implementation no one here wrote; and the spec's CipherState rules."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from noise.connection import Keypair as TheirKeypair
from noise.connection import NoiseConnection

from chain.keys import PrivateKey
from p2p.errors import DecryptFailed, HandshakeFailed, LocalError
from p2p.messages import Ping, decode_message, encode_message
from p2p.noise import (
    BLAKE2B,
    HASHES,
    MAX_NONCE,
    CipherState,
    HandshakeState,
    KeyPair,
)
from p2p.secure import (
    PROLOGUE,
    ChannelState,
    NodeKeyProof,
    SecureChannel,
    node_id_of,
    noise_static_key,
)

VECTORS = json.loads((Path(__file__).parent.parent / "vectors" / "noise-xx.json").read_text())[
    "vectors"]
H = bytes.fromhex


@pytest.mark.parametrize("vector", VECTORS, ids=lambda v: v["protocol_name"])
def test_published_xx_vectors(vector: dict) -> None:
    hash_function = HASHES[vector["protocol_name"].rsplit("_", 1)[1]]
    initiator = HandshakeState(
        "XX", True, H(vector["init_prologue"]), KeyPair.from_private(H(vector["init_static"])),
        hash_function=hash_function, e=KeyPair.from_private(H(vector["init_ephemeral"])))
    responder = HandshakeState(
        "XX", False, H(vector["resp_prologue"]), KeyPair.from_private(H(vector["resp_static"])),
        hash_function=hash_function, e=KeyPair.from_private(H(vector["resp_ephemeral"])))
    assert initiator.protocol_name.decode() == vector["protocol_name"]
    messages = vector["messages"]
    # Messages 0-2: the handshake, alternating initiator / responder.
    for index, message in enumerate(messages[:3]):
        writer, reader = (initiator, responder) if index % 2 == 0 else (responder, initiator)
        ciphertext, split_w = writer.write_message(H(message["payload"]))
        assert ciphertext.hex() == message["ciphertext"], f"message {index}"
        payload, split_r = reader.read_message(ciphertext)
        assert payload == H(message["payload"])
        assert (split_w is None) == (split_r is None) == (index < 2)
    # Split() gives (initiator->responder, responder->initiator) on both sides.
    i_send, i_recv = split_w if writer is initiator else split_r  # type: ignore[misc]
    r_recv, r_send = split_r if reader is responder else split_w  # type: ignore[misc]
    assert initiator.symmetric_state.get_handshake_hash().hex() == vector["handshake_hash"]
    assert responder.symmetric_state.get_handshake_hash().hex() == vector["handshake_hash"]
    # Messages 3-5: transport, responder first.
    for index, message in enumerate(messages[3:], start=3):
        send, recv = (r_send, i_recv) if index % 2 == 1 else (i_send, r_recv)
        ciphertext = send.encrypt_with_ad(b"", H(message["payload"]))
        assert ciphertext.hex() == message["ciphertext"], f"message {index}"
        assert recv.decrypt_with_ad(b"", ciphertext) == H(message["payload"])


# ---------------------------------------------------------------------- interop


def _their_side(node_key: PrivateKey, initiator: bool) -> NoiseConnection:
    conn = NoiseConnection.from_name(b"Noise_XX_25519_ChaChaPoly_BLAKE2b")
    if initiator:
        conn.set_as_initiator()
    else:
        conn.set_as_responder()
    conn.set_keypair_from_private_bytes(TheirKeypair.STATIC, noise_static_key(node_key).private)
    conn.set_prologue(PROLOGUE)
    conn.start_handshake()
    return conn


def _frame(message: bytes) -> bytes:
    return len(message).to_bytes(2, "big") + message


def _unframe(data: bytes) -> list[bytes]:
    out = []
    while data:
        size = int.from_bytes(data[:2], "big")
        out.append(data[2:2 + size])
        data = data[2 + size:]
    return out


def _proof(node_key: PrivateKey) -> bytes:
    return NodeKeyProof.make(node_key, noise_static_key(node_key).public).encode()


def _their_transport_frame(conn: NoiseConnection, frame: bytes) -> bytes:
    # Our framing: a frame's first plaintext starts with its 4-byte length.
    return _frame(conn.encrypt(len(frame).to_bytes(4, "big") + frame))


def _their_read_frame(conn: NoiseConnection, wire: bytes) -> bytes:
    (message,) = _unframe(wire)
    plaintext = bytes(conn.decrypt(message))
    assert int.from_bytes(plaintext[:4], "big") == len(plaintext) - 4
    return plaintext[4:]


def test_interop_we_initiate_noiseprotocol_responds() -> None:
    ours_key, theirs_key = PrivateKey.from_seed_text("ours"), PrivateKey.from_seed_text("theirs")
    ours = SecureChannel(ours_key, initiator=True, expected_peer=node_id_of(theirs_key.public_key))
    theirs = _their_side(theirs_key, initiator=False)

    (m1,) = _unframe(ours.initiate())
    assert bytes(theirs.read_message(m1)) == b""
    reply, frames = ours.receive_data(_frame(bytes(theirs.write_message(_proof(theirs_key)))))
    assert frames == [] and ours.state is ChannelState.OPEN
    (m3,) = _unframe(reply)
    payload = NodeKeyProof.decode(bytes(theirs.read_message(m3)))
    assert theirs.handshake_finished
    # noiseprotocol drops its handshake state once finished; the static key it
    # authenticated is the one derived from our node key.
    payload.check(noise_static_key(ours_key).public)
    assert payload.public_key == ours_key.public_key
    assert ours.remote_node_id == node_id_of(theirs_key.public_key)
    assert ours.handshake_hash == theirs.get_handshake_hash()

    # Transport, both ways.
    frame = encode_message(Ping(7))
    assert _their_read_frame(theirs, ours.seal(frame)) == frame
    _, frames = ours.receive_data(_their_transport_frame(theirs, encode_message(Ping(8))))
    assert [decode_message(f) for f in frames] == [Ping(8)]


def test_interop_noiseprotocol_initiates_we_respond() -> None:
    ours_key, theirs_key = PrivateKey.from_seed_text("ours"), PrivateKey.from_seed_text("theirs")
    ours = SecureChannel(ours_key, initiator=False)
    theirs = _their_side(theirs_key, initiator=True)

    reply, _ = ours.receive_data(_frame(bytes(theirs.write_message(b""))))
    (m2,) = _unframe(reply)
    payload = NodeKeyProof.decode(bytes(theirs.read_message(m2)))
    payload.check(theirs.noise_protocol.handshake_state.rs.public_bytes)
    assert payload.public_key == ours_key.public_key
    reply, frames = ours.receive_data(_frame(bytes(theirs.write_message(_proof(theirs_key)))))
    assert reply == b"" and frames == [] and ours.state is ChannelState.OPEN
    assert theirs.handshake_finished
    assert ours.remote_node_id == node_id_of(theirs_key.public_key)
    assert ours.handshake_hash == theirs.get_handshake_hash()

    _, frames = ours.receive_data(_their_transport_frame(theirs, b"hello"))
    assert frames == [b"hello"]
    assert _their_read_frame(theirs, ours.seal(b"world")) == b"world"


# ---------------------------------------------------------------------- CipherState


def _keyed() -> tuple[CipherState, CipherState]:
    a, b = CipherState(), CipherState()
    a.initialize_key(bytes(range(32)))
    b.initialize_key(bytes(range(32)))
    return a, b


def test_cipher_state_without_key_is_identity() -> None:
    c = CipherState()
    assert not c.has_key()
    assert c.encrypt_with_ad(b"ad", b"text") == b"text"
    assert c.decrypt_with_ad(b"ad", b"text") == b"text"


def test_failed_decrypt_does_not_advance_the_nonce() -> None:
    a, b = _keyed()
    ciphertext = a.encrypt_with_ad(b"", b"one")
    forged = bytes([ciphertext[0] ^ 1]) + ciphertext[1:]
    with pytest.raises(DecryptFailed):
        b.decrypt_with_ad(b"", forged)
    assert b.n == 0
    assert b.decrypt_with_ad(b"", ciphertext) == b"one"
    assert b.n == 1


def test_associated_data_is_authenticated() -> None:
    a, b = _keyed()
    ciphertext = a.encrypt_with_ad(b"ad-1", b"x")
    with pytest.raises(DecryptFailed):
        b.decrypt_with_ad(b"ad-2", ciphertext)


def test_replayed_and_reordered_ciphertexts_fail() -> None:
    a, b = _keyed()
    first, second = a.encrypt_with_ad(b"", b"1"), a.encrypt_with_ad(b"", b"2")
    with pytest.raises(DecryptFailed):
        b.decrypt_with_ad(b"", second)  # reordered
    assert b.decrypt_with_ad(b"", first) == b"1"
    with pytest.raises(DecryptFailed):
        b.decrypt_with_ad(b"", first)  # replayed
    assert b.decrypt_with_ad(b"", second) == b"2"


def test_the_reserved_nonce_is_never_used() -> None:
    a, b = _keyed()
    a.set_nonce(MAX_NONCE - 1)
    b.set_nonce(MAX_NONCE - 1)
    assert b.decrypt_with_ad(b"", a.encrypt_with_ad(b"", b"last")) == b"last"
    with pytest.raises(LocalError):
        a.encrypt_with_ad(b"", b"one too many")
    with pytest.raises(DecryptFailed):
        b.decrypt_with_ad(b"", b"\x00" * 17)


# ---------------------------------------------------------------------- HandshakeState


def _pair() -> tuple[HandshakeState, HandshakeState]:
    return (HandshakeState("XX", True, b"p", KeyPair.generate()),
            HandshakeState("XX", False, b"p", KeyPair.generate()))


def test_low_order_ephemeral_key_fails_the_handshake() -> None:
    initiator, responder = _pair()
    initiator.write_message(b"")
    responder.read_message(bytes(32))  # an all-zero (low-order) public key
    with pytest.raises(HandshakeFailed, match="X25519"):
        responder.write_message(b"")  # "ee" would be all zeros


def test_turns_are_enforced() -> None:
    initiator, responder = _pair()
    with pytest.raises(LocalError):
        responder.write_message(b"")
    with pytest.raises(HandshakeFailed, match="out of turn"):
        initiator.read_message(b"\x00" * 32)


def test_truncated_handshake_messages_fail() -> None:
    initiator, responder = _pair()
    with pytest.raises(HandshakeFailed, match="too short"):
        responder.read_message(b"\x01" * 31)
    initiator, responder = _pair()
    message, _ = initiator.write_message(b"")
    responder.read_message(message)
    reply, _ = responder.write_message(b"")
    with pytest.raises(HandshakeFailed, match="too short"):
        initiator.read_message(reply[:32 + 20])


def test_prologue_mismatch_fails_at_the_first_authenticated_message() -> None:
    initiator = HandshakeState("XX", True, b"one", KeyPair.generate())
    responder = HandshakeState("XX", False, b"two", KeyPair.generate())
    responder.read_message(initiator.write_message(b"")[0])
    with pytest.raises(HandshakeFailed, match="authenticate"):
        initiator.read_message(responder.write_message(b"")[0])


def test_blake2b_is_the_default_and_hkdf_outputs_hashlen_bytes() -> None:
    state = HandshakeState("XX", True, b"", KeyPair.generate())
    assert state.protocol_name == b"Noise_XX_25519_ChaChaPoly_BLAKE2b"
    outputs = BLAKE2B.hkdf(b"k" * 64, b"ikm", 3)
    assert [len(o) for o in outputs] == [64, 64, 64] and len(set(outputs)) == 3


def test_unknown_pattern_is_refused() -> None:
    with pytest.raises(LocalError):
        HandshakeState("NN", True, b"", KeyPair.generate())
