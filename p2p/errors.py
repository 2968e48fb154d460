"""The p2p package's exceptions, split as DESIGN.md asks: the remote side sent something
bad (end the connection, maybe ban the peer) versus our own misuse of the API.

Every remote error carries a human-readable reason; the connection layer logs it and,
where the link still works, tells the peer in a GOODBYE before closing.
"""

from __future__ import annotations


class P2PError(Exception):
    """Base of every p2p error."""


class RemoteError(P2PError):
    """The remote peer sent something invalid. The connection ends."""

    #: Whether the offence is one an honest peer cannot commit (a forged or corrupted
    #: frame, a lying HELLO): such a peer is banned for a while, not only dropped.
    bannable: bool = False


class HandshakeFailed(RemoteError):
    """The Noise handshake or the node-key binding failed (bad message, bad signature,
    not the node id we dialled, low-order key)."""

    bannable = True


class DecryptFailed(RemoteError):
    """A transport frame did not authenticate: modified, replayed, reordered or forged."""

    bannable = True


class FrameTooLarge(RemoteError):
    """A frame announced a size over the maximum; refused before its body is read.
    Not banned: an honest peer configured with a larger maximum does this."""


class MalformedMessage(RemoteError):
    """A frame decrypted but is not a valid message (bad encoding, unknown type)."""

    bannable = True


class PeerRefused(RemoteError):
    """The peer is well-behaved but not for us: another chain, another protocol
    version, a banned node id, or our limits are full. Not banned."""


class ProtocolViolation(RemoteError):
    """A valid message at the wrong time (HELLO twice, a response nobody asked for)."""

    bannable = True


class PeerTimeout(RemoteError):
    """The peer stopped answering (handshake, HELLO or PING deadline passed)."""


class PeerGone(P2PError):
    """The connection closed (by either side) before the operation finished."""


class RequestFailed(P2PError):
    """A request/response exchange failed: the peer answered with an error, the request
    timed out, or the peer disconnected."""


class LocalError(P2PError):
    """Our own misuse of the p2p API (a bug in the caller, not the peer's fault)."""
