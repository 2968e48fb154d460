"""A secure channel between two nodes: the Noise XX handshake bound to node keys, then
encrypted, length-prefixed frames. Sans-I/O, in the manner of h11's ``Connection``:
bytes in through :meth:`SecureChannel.receive_data`, bytes out as return values, no
sockets and no clock (the connection layer owns both).

Theory of operation
-------------------
Wire format. Every Noise message, handshake or transport, travels as a 2-byte
big-endian length followed by that many bytes; Noise caps a message at 65535 bytes
(§3), so the prefix can never announce more. The three XX handshake messages come
first. After them, one application *frame* of any length up to ``max_frame`` is sent as
one or more transport messages: the first plaintext starts with the frame's 4-byte
length, the rest of the frame follows in as many messages as it needs. Because that
length is inside the encryption, it is authenticated: a peer cannot cut a frame short,
and a frame announcing more than ``max_frame`` is refused after one 64 KiB message,
before its body is read or allocated.

Node-key binding. Each node has an ed25519 node key; its id is the key's address
(``chain.keys.address_of``). The Noise static key is the X25519 key derived from it
(libsodium's ed25519-to-curve25519 map), and each side's handshake payload is a
:class:`NodeKeyProof`: the ed25519 public key and its signature, in the
``agora/node-key/v1`` domain, over the Noise static public key. The initiator learns
and checks the responder's identity from message 2, the responder the initiator's from
message 3. As with libp2p's Noise, the proof is not tied to a chain: a node id is a
network identity, and the chain is checked by HELLO right after the handshake.

Ordering. Transport nonces are counters (§5.1), so a replayed, dropped, reordered or
modified frame fails to authenticate and :class:`DecryptFailed` ends the channel.

States (:class:`ChannelState`): HANDSHAKE (messages 0..2 in turn) -> OPEN -> CLOSED
(after any error; every later call raises, so a caller cannot keep using a channel in
an unknown state).
"""

from __future__ import annotations

import enum
from typing import ClassVar

import nacl.bindings

from chain.codec import Bytes, Record, record
from chain.errors import DecodeError
from chain.hashing import Domain
from chain.keys import (
    PUBLIC_KEY_SIZE,
    SIGNATURE_SIZE,
    PrivateKey,
    address_of,
    signing_bytes,
    verify,
)

from .errors import (
    FrameTooLarge,
    HandshakeFailed,
    LocalError,
    MalformedMessage,
    PeerRefused,
    RemoteError,
)
from .noise import MAX_MESSAGE_LEN, TAGLEN, CipherState, HandshakeState, KeyPair

PROLOGUE = b"agora/p2p/v1"
#: Chain id used in the node-key proof's signature: the proof is chain-independent.
NODE_KEY_CHAIN = ""
#: Default largest application frame (a block of 8 MiB plus its envelope).
DEFAULT_MAX_FRAME = 8 * 1024 * 1024 + 64 * 1024
_LEN = 2  # the Noise message length prefix
_FRAME_LEN = 4  # the frame length at the start of a frame's first plaintext
_FIRST_ROOM = MAX_MESSAGE_LEN - TAGLEN - _FRAME_LEN
_NEXT_ROOM = MAX_MESSAGE_LEN - TAGLEN


def node_id_of(public_key: bytes) -> bytes:
    """A node's id: the 20-byte address of its ed25519 node key."""
    return address_of(public_key)


def noise_static_key(node_key: PrivateKey) -> KeyPair:
    """The X25519 static key derived from an ed25519 node key."""
    private = nacl.bindings.crypto_sign_ed25519_sk_to_curve25519(
        node_key.seed + node_key.public_key)
    return KeyPair.from_private(private)


@record(("public_key", Bytes(PUBLIC_KEY_SIZE)), ("signature", Bytes(SIGNATURE_SIZE)))
class NodeKeyProof(Record):
    """A handshake payload: "the holder of this node key owns this Noise static key"."""

    MAX_SIZE: ClassVar[int] = 128
    public_key: bytes
    signature: bytes

    @classmethod
    def make(cls, node_key: PrivateKey, static_public: bytes) -> NodeKeyProof:
        return cls(node_key.public_key,
                   node_key.sign(Domain.NODE_KEY, NODE_KEY_CHAIN, [static_public]))

    def check(self, static_public: bytes) -> None:
        message = signing_bytes(Domain.NODE_KEY, NODE_KEY_CHAIN, [static_public])
        if not verify(self.public_key, message, self.signature):
            raise HandshakeFailed("the peer's node-key signature over its Noise key "
                                  "does not verify")


class ChannelState(enum.Enum):
    """HANDSHAKE (messages 0..2 in turn) -> OPEN -> CLOSED."""

    HANDSHAKE = "handshake"
    OPEN = "open"
    #: After any error, or closed by its owner: every later call raises.
    CLOSED = "closed"


def _frame_noise_message(message: bytes) -> bytes:
    return len(message).to_bytes(_LEN, "big") + message


class SecureChannel:
    """One end of a channel. ``initiator`` is the side that dialled.

    ``expected_peer`` (a node id) is checked once the peer has proved its key: dialling
    ``id@host:port`` and reaching another node ends the handshake.
    """

    def __init__(
        self,
        node_key: PrivateKey,
        initiator: bool,
        *,
        expected_peer: bytes | None = None,
        max_frame: int = DEFAULT_MAX_FRAME,
        ephemeral: KeyPair | None = None,
    ) -> None:
        self.initiator = initiator
        self.max_frame = max_frame
        self.state = ChannelState.HANDSHAKE
        self.remote_public_key: bytes | None = None
        self.remote_node_id: bytes | None = None
        self.handshake_hash: bytes | None = None
        self._node_key = node_key
        self._expected = expected_peer
        self._handshake = HandshakeState("XX", initiator, PROLOGUE, noise_static_key(node_key),
                                         e=ephemeral)
        self._send: CipherState | None = None
        self._recv: CipherState | None = None
        self._buffer = bytearray()
        self._frame: bytearray | None = None  # the frame being reassembled
        self._frame_len = 0

    # ------------------------------------------------------------------ handshake

    def initiate(self) -> bytes:
        """The initiator's first handshake message (``-> e``), framed for the wire."""
        if not self.initiator or len(self._handshake.message_patterns) != 3:
            raise LocalError("only a fresh initiator starts a handshake")
        message, _ = self._handshake.write_message(b"")
        return _frame_noise_message(message)

    def _handshake_step(self, message: bytes) -> bytes:
        """Read one handshake message; return what to send back (may be empty)."""
        hs = self._handshake
        payload, split = hs.read_message(message)
        if hs.rs is not None and self.remote_public_key is None:
            self._check_identity(payload, hs.rs)
        elif payload:
            raise HandshakeFailed("unexpected payload in the first handshake message")
        if split is not None:  # the responder has read message 3
            self._open(split)
            return b""
        proof = NodeKeyProof.make(self._node_key, hs.s.public).encode()
        reply, split = hs.write_message(proof)
        if split is not None:  # the initiator has written message 3
            self._open(split)
        return _frame_noise_message(reply)

    def _check_identity(self, payload: bytes, static_public: bytes) -> None:
        try:
            proof = NodeKeyProof.decode(payload)
        except DecodeError as exc:
            raise HandshakeFailed(f"malformed node-key proof: {exc}") from None
        proof.check(static_public)
        node_id = node_id_of(proof.public_key)
        if self._expected is not None and node_id != self._expected:
            raise PeerRefused(f"dialled node {self._expected.hex()} but reached "
                              f"{node_id.hex()}")
        self.remote_public_key = proof.public_key
        self.remote_node_id = node_id

    def _open(self, split: tuple[CipherState, CipherState]) -> None:
        initiator_to_responder, responder_to_initiator = split
        if self.initiator:
            self._send, self._recv = initiator_to_responder, responder_to_initiator
        else:
            self._send, self._recv = responder_to_initiator, initiator_to_responder
        self.handshake_hash = self._handshake.symmetric_state.get_handshake_hash()
        self.state = ChannelState.OPEN

    # ------------------------------------------------------------------ data

    def receive_data(self, data: bytes) -> tuple[bytes, list[bytes]]:
        """Feed bytes from the peer. Returns (bytes to send back, whole frames).

        Raises a :class:`RemoteError` subclass on bad input; the channel is then
        closed for good.
        """
        if self.state is ChannelState.CLOSED:
            raise LocalError("the channel is closed")
        try:
            return self._receive(data)
        except RemoteError:
            self.state = ChannelState.CLOSED
            raise

    def _receive(self, data: bytes) -> tuple[bytes, list[bytes]]:
        buf = self._buffer
        buf += data
        reply = b""
        frames: list[bytes] = []
        pos = 0
        end = len(buf)
        while end - pos >= _LEN:
            size = (buf[pos] << 8) | buf[pos + 1]
            if end - pos - _LEN < size:
                break
            message = bytes(buf[pos + _LEN:pos + _LEN + size])
            pos += _LEN + size
            if self.state is ChannelState.HANDSHAKE:
                reply += self._handshake_step(message)
            else:
                frame = self._transport_message(message)
                if frame is not None:
                    frames.append(frame)
        del buf[:pos]
        return reply, frames

    def _transport_message(self, message: bytes) -> bytes | None:
        if len(message) < TAGLEN:
            raise MalformedMessage(f"a {len(message)}-byte transport message cannot hold "
                                   "its authentication tag")
        assert self._recv is not None
        plaintext = self._recv.decrypt_with_ad(b"", message)
        frame = self._frame
        if frame is None:
            if len(plaintext) < _FRAME_LEN:
                raise MalformedMessage("a frame's first message lacks its length")
            length = int.from_bytes(plaintext[:_FRAME_LEN], "big")
            if length > self.max_frame:
                raise FrameTooLarge(f"frame of {length} bytes announced, over the maximum "
                                    f"of {self.max_frame}")
            body = plaintext[_FRAME_LEN:]
            if len(body) > length:
                raise MalformedMessage("frame longer than its announced length")
            if len(body) == length:
                return body
            self._frame = bytearray(body)
            self._frame_len = length
            return None
        if len(frame) + len(plaintext) > self._frame_len:
            raise MalformedMessage("frame longer than its announced length")
        frame += plaintext
        if len(frame) < self._frame_len:
            return None
        self._frame = None
        return bytes(frame)

    def seal(self, frame: bytes) -> bytes:
        """Encrypt one frame into wire bytes (one Noise message per 64 KiB)."""
        if self.state is not ChannelState.OPEN:
            raise LocalError(f"cannot send a frame in state {self.state.value}")
        if len(frame) > self.max_frame:
            raise LocalError(f"frame of {len(frame)} bytes is over the maximum of "
                             f"{self.max_frame}")
        assert self._send is not None
        encrypt = self._send.encrypt_with_ad
        first = len(frame).to_bytes(_FRAME_LEN, "big") + frame[:_FIRST_ROOM]
        out = [_frame_noise_message(encrypt(b"", first))]
        for start in range(_FIRST_ROOM, len(frame), _NEXT_ROOM):
            out.append(_frame_noise_message(encrypt(b"", frame[start:start + _NEXT_ROOM])))
        return b"".join(out)

    def close(self) -> None:
        """Mark the channel closed (the connection layer closes the socket)."""
        self.state = ChannelState.CLOSED
