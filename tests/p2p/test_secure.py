"""SecureChannel, driven by hand like h11's ConnectionPair: every byte between the two
ends passes through the test, which can cut, change, replay or reorder it."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chain.hashing import Domain
from chain.keys import PrivateKey, address_of
from p2p.errors import (
    DecryptFailed,
    FrameTooLarge,
    HandshakeFailed,
    LocalError,
    MalformedMessage,
    PeerRefused,
    RemoteError,
)
from p2p.noise import HandshakeState, KeyPair
from p2p.secure import (
    PROLOGUE,
    ChannelState,
    NodeKeyProof,
    SecureChannel,
    noise_static_key,
)

A = PrivateKey.from_seed_text("node-a")
B = PrivateKey.from_seed_text("node-b")


def handshake(initiator: SecureChannel, responder: SecureChannel) -> None:
    """Run the three messages; both ends must be open afterwards."""
    reply, frames = responder.receive_data(initiator.initiate())
    assert frames == []
    reply, frames = initiator.receive_data(reply)
    assert frames == [] and initiator.state is ChannelState.OPEN
    last, frames = responder.receive_data(reply)
    assert last == b"" and frames == [] and responder.state is ChannelState.OPEN


def open_pair(max_frame: int = 1 << 20) -> tuple[SecureChannel, SecureChannel]:
    a = SecureChannel(A, True, expected_peer=B.address, max_frame=max_frame)
    b = SecureChannel(B, False, max_frame=max_frame)
    handshake(a, b)
    return a, b


def noise_messages(wire: bytes) -> list[bytes]:
    """Split wire bytes into their length-prefixed Noise messages (prefix kept)."""
    out = []
    while wire:
        size = 2 + int.from_bytes(wire[:2], "big")
        out.append(wire[:size])
        wire = wire[size:]
    return out


@pytest.mark.parametrize("a_dials", [True, False])
def test_good_handshake_in_both_directions(a_dials: bool) -> None:
    dialler, listener = (A, B) if a_dials else (B, A)
    i = SecureChannel(dialler, True, expected_peer=listener.address)
    r = SecureChannel(listener, False)
    handshake(i, r)
    assert i.remote_node_id == listener.address and i.remote_public_key == listener.public_key
    assert r.remote_node_id == dialler.address and r.remote_public_key == dialler.public_key
    assert i.handshake_hash == r.handshake_hash and len(i.handshake_hash or b"") == 64
    for sender, receiver in ((i, r), (r, i)):
        frames = [b"", b"x", bytes(range(256)) * 1000]  # empty, tiny, and 4 Noise messages
        wire = b"".join(sender.seal(f) for f in frames)
        assert receiver.receive_data(wire) == (b"", frames)


def test_frames_survive_any_split_of_the_byte_stream() -> None:
    a, b = open_pair()
    frames = [b"first", bytes(70_000), b"third"]
    wire = b"".join(a.seal(f) for f in frames)
    rng = random.Random(5)
    got: list[bytes] = []
    pos = 0
    while pos < len(wire):
        step = rng.choice([1, 2, 3, 17, 4096, 65537])
        got += b.receive_data(wire[pos:pos + step])[1]
        pos += step
    assert got == frames


def test_every_noise_message_fits_the_spec_limit() -> None:
    a, _ = open_pair(max_frame=1 << 21)
    for message in noise_messages(a.seal(bytes(1 << 21))):
        assert len(message) - 2 <= 65535


def test_dialling_the_wrong_node_key_is_refused() -> None:
    c = PrivateKey.from_seed_text("node-c")
    i = SecureChannel(A, True, expected_peer=c.address)
    r = SecureChannel(B, False)
    reply, _ = r.receive_data(i.initiate())
    with pytest.raises(PeerRefused, match=f"dialled node {c.address.hex()} but reached "
                                          f"{B.address.hex()}"):
        i.receive_data(reply)
    assert i.state is ChannelState.CLOSED
    with pytest.raises(LocalError):
        i.receive_data(b"")


def _impostor_responder(proof: bytes) -> tuple[SecureChannel, bytes]:
    """An initiator's channel and the responder message 2 carrying ``proof``."""
    i = SecureChannel(A, True)
    rogue = HandshakeState("XX", False, PROLOGUE, noise_static_key(B))
    msg1 = i.initiate()
    rogue.read_message(msg1[2:])
    message, _ = rogue.write_message(proof)
    return i, len(message).to_bytes(2, "big") + message


def test_a_proof_signed_over_another_static_key_is_refused() -> None:
    other_static = KeyPair.generate().public
    i, msg2 = _impostor_responder(NodeKeyProof.make(B, other_static).encode())
    with pytest.raises(HandshakeFailed, match="does not verify"):
        i.receive_data(msg2)


def test_a_proof_for_a_key_the_peer_does_not_hold_is_refused() -> None:
    # Claims C's identity, but C never signed B's static key: the signature is B's.
    c = PrivateKey.from_seed_text("node-c")
    signature = B.sign(Domain.NODE_KEY, "", [noise_static_key(B).public])
    i, msg2 = _impostor_responder(NodeKeyProof(c.public_key, signature).encode())
    with pytest.raises(HandshakeFailed, match="does not verify"):
        i.receive_data(msg2)


def test_a_malformed_proof_is_refused() -> None:
    i, msg2 = _impostor_responder(b"\x92\x01")
    with pytest.raises(HandshakeFailed, match="malformed node-key proof"):
        i.receive_data(msg2)


def test_a_proof_in_the_first_message_is_refused() -> None:
    rogue = HandshakeState("XX", True, PROLOGUE, noise_static_key(A))
    message, _ = rogue.write_message(b"unexpected")
    with pytest.raises(HandshakeFailed, match="unexpected payload"):
        SecureChannel(B, False).receive_data(len(message).to_bytes(2, "big") + message)


@pytest.mark.parametrize("index", [0, 1, 2])
def test_a_modified_handshake_byte_ends_the_handshake(index: int) -> None:
    i = SecureChannel(A, True)
    r = SecureChannel(B, False)
    msg1 = i.initiate()
    msgs = [msg1]

    def tamper(message: bytes) -> bytes:
        return message[:-1] + bytes([message[-1] ^ 0x40])

    if index == 0:
        msgs[0] = tamper(msg1)  # the ephemeral key (unauthenticated) — caught next turn
    reply, _ = r.receive_data(msgs[0])
    if index == 1:
        reply = tamper(reply)
    if index in (0, 1):
        with pytest.raises(HandshakeFailed, match="authenticate"):
            i.receive_data(reply)
        return
    msg3, _ = i.receive_data(reply)
    with pytest.raises(HandshakeFailed, match="authenticate"):
        r.receive_data(tamper(msg3))


def test_modified_replayed_and_reordered_frames_end_the_channel() -> None:
    a, b = open_pair()
    first, second = a.seal(b"one"), a.seal(b"two")
    tampered = first[:5] + bytes([first[5] ^ 1]) + first[6:]
    with pytest.raises(DecryptFailed, match="frame 0 does not authenticate"):
        b.receive_data(tampered)
    assert b.state is ChannelState.CLOSED

    a, b = open_pair()
    first, second = a.seal(b"one"), a.seal(b"two")
    assert b.receive_data(first)[1] == [b"one"]
    with pytest.raises(DecryptFailed):
        b.receive_data(first)  # replayed

    a, b = open_pair()
    first, second = a.seal(b"one"), a.seal(b"two")
    with pytest.raises(DecryptFailed):
        b.receive_data(second)  # reordered


def test_a_frame_over_the_maximum_is_refused_before_its_body_arrives() -> None:
    a = SecureChannel(A, True, max_frame=1 << 22)
    b = SecureChannel(B, False, max_frame=100_000)
    handshake(a, b)
    wire = noise_messages(a.seal(bytes(1 << 22)))
    assert len(wire) == 65  # the body would follow in 64 more messages
    with pytest.raises(FrameTooLarge, match="4194304 bytes announced, over the maximum of 100000"):
        b.receive_data(wire[0])
    assert b._frame is None  # nothing was allocated for it


def test_a_frame_at_the_maximum_is_accepted() -> None:
    a, b = open_pair(max_frame=200_000)
    assert b.receive_data(a.seal(bytes(200_000)))[1] == [bytes(200_000)]
    with pytest.raises(LocalError, match="over the maximum"):
        a.seal(bytes(200_001))


def test_frame_length_lies_are_refused() -> None:
    a, b = open_pair()
    send = a._send
    assert send is not None
    # A first message carrying more than its announced length.
    lie = send.encrypt_with_ad(b"", (3).to_bytes(4, "big") + b"four")
    with pytest.raises(MalformedMessage, match="longer than its announced length"):
        b.receive_data(len(lie).to_bytes(2, "big") + lie)

    a, b = open_pair()
    send = a._send
    assert send is not None
    first = send.encrypt_with_ad(b"", (70_000).to_bytes(4, "big") + bytes(65_000))
    second = send.encrypt_with_ad(b"", bytes(6_000))  # 1,000 bytes too many
    b.receive_data(len(first).to_bytes(2, "big") + first)
    with pytest.raises(MalformedMessage, match="longer than its announced length"):
        b.receive_data(len(second).to_bytes(2, "big") + second)

    a, b = open_pair()
    assert a._send is not None
    short = a._send.encrypt_with_ad(b"", b"ab")
    with pytest.raises(MalformedMessage, match="lacks its length"):
        b.receive_data(len(short).to_bytes(2, "big") + short)


def test_a_transport_message_shorter_than_a_tag_is_refused() -> None:
    _, b = open_pair()
    with pytest.raises(MalformedMessage, match="authentication tag"):
        b.receive_data(b"\x00\x05hello")


def test_misuse_is_a_local_error() -> None:
    i = SecureChannel(A, True)
    with pytest.raises(LocalError):
        i.seal(b"too early")
    i.initiate()
    with pytest.raises(LocalError):
        i.initiate()
    with pytest.raises(LocalError):
        SecureChannel(B, False).initiate()


@given(st.binary(max_size=4096))
def test_random_bytes_before_the_handshake_never_escape_as_anything_else(data: bytes) -> None:
    r = SecureChannel(B, False)
    try:
        reply, frames = r.receive_data(data)
    except RemoteError:
        assert r.state is ChannelState.CLOSED
    else:
        assert frames == []


@given(st.binary(max_size=4096))
def test_random_bytes_after_the_handshake_never_escape_as_anything_else(data: bytes) -> None:
    _, b = open_pair()
    try:
        _, frames = b.receive_data(data)
    except RemoteError:
        assert b.state is ChannelState.CLOSED
    else:
        assert frames == []  # nothing unauthenticated is ever delivered


def test_the_node_id_is_the_node_key_address() -> None:
    i, r = open_pair()
    assert r.remote_node_id == address_of(A.public_key) == A.address
