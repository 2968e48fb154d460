"""Wire messages: one frozen record per kind, decoded once at the edge.

A frame's plaintext is the canonical encoding of ``[tag, field, ...]`` (a
``chain.codec.OneOf`` union), so decoding is strict: unknown tags, wrong types,
oversize lists and non-canonical encodings are refused with :class:`MalformedMessage`
before anything reaches the peer manager. Consensus and block-sync payloads travel as
opaque bytes here; their own packages decode them at their own edge.
"""

from __future__ import annotations

from typing import ClassVar

from chain.codec import Bytes, ListOf, OneOf, Record, Str, UInt, record, unpack
from chain.errors import DecodeError
from chain.keys import ADDRESS_SIZE
from chain.tx import MAX_CHAIN_ID, MAX_TX_SIZE

from .errors import MalformedMessage

#: The protocol version this node speaks. A peer with another version is refused.
PROTOCOL_VERSION = 1
MAX_ADDRESS = 255
MAX_REASON = 256
MAX_METHOD = 32
MAX_PEX_ADDRESSES = 64
#: Transactions per gossip batch (the sender also caps a batch's bytes).
MAX_TX_BATCH = 4096
#: Largest body of a request, response or consensus message.
MAX_BODY = 16 * 1024 * 1024

NodeId = Bytes(ADDRESS_SIZE)


@record(
    ("chain_id", Str(MAX_CHAIN_ID)),
    ("version", UInt(16)),
    ("node_id", NodeId),
    ("listen_address", Str(MAX_ADDRESS)),
    ("height", UInt(64)),
    ("validator", Bytes(max_len=ADDRESS_SIZE)),
)
class Hello(Record):
    """The first message each side sends after the handshake. ``listen_address`` is
    ``host:port`` where the node accepts connections (empty: it does not);
    ``validator`` is the validator address it signs with (empty: not a validator),
    used only to route consensus traffic — votes carry their own signatures."""

    TAG: ClassVar[int] = 0
    chain_id: str
    version: int
    node_id: bytes
    listen_address: str
    height: int
    validator: bytes


@record(("reason", Str(MAX_REASON)))
class Goodbye(Record):
    """Sent before closing a link, so the peer's log says why."""

    TAG: ClassVar[int] = 1
    reason: str


@record(("nonce", UInt(64)))
class Ping(Record):
    TAG: ClassVar[int] = 2
    nonce: int


@record(("nonce", UInt(64)))
class Pong(Record):
    TAG: ClassVar[int] = 3
    nonce: int


@record(("txs", ListOf(Bytes(max_len=MAX_TX_SIZE), MAX_TX_BATCH)))
class TxBatch(Record):
    """Encoded transactions, gossiped together. Each is decoded and checked by the
    mempool; the hash of these bytes is the seen-set key."""

    TAG: ClassVar[int] = 4
    txs: tuple[bytes, ...]


@record()
class PexRequest(Record):
    """Ask a peer for addresses of other peers it knows."""

    TAG: ClassVar[int] = 5


@record(("addresses", ListOf(Str(MAX_ADDRESS), MAX_PEX_ADDRESSES)))
class PexAddresses(Record):
    """Peer addresses as ``nodeid@host:port``."""

    TAG: ClassVar[int] = 6
    addresses: tuple[str, ...]


@record(("request_id", UInt(64)), ("method", Str(MAX_METHOD)), ("body", Bytes(max_len=MAX_BODY)))
class Request(Record):
    """A request the peer must answer with a :class:`Response` of the same id."""

    TAG: ClassVar[int] = 7
    request_id: int
    method: str
    body: bytes


@record(("request_id", UInt(64)), ("error", Str(MAX_REASON)), ("body", Bytes(max_len=MAX_BODY)))
class Response(Record):
    """The answer to a request: ``error`` is empty on success."""

    TAG: ClassVar[int] = 8
    request_id: int
    error: str
    body: bytes


@record(("body", Bytes(max_len=MAX_BODY)))
class ConsensusMessage(Record):
    """A consensus message (proposal, vote, view change), opaque to p2p."""

    TAG: ClassVar[int] = 9
    body: bytes


Message = Hello | Goodbye | Ping | Pong | TxBatch | PexRequest | PexAddresses | Request | \
    Response | ConsensusMessage
_UNION = OneOf(Hello, Goodbye, Ping, Pong, TxBatch, PexRequest, PexAddresses, Request, Response,
               ConsensusMessage)


_MAX_ARRAYS = 2


def encode_message(message: Message) -> bytes:
    """The frame plaintext for ``message``."""
    return _UNION.encode(message)


def decode_message(frame: bytes) -> Message:
    """Strictly decode a frame's plaintext; raises :class:`MalformedMessage`."""
    try:
        # A message holds at most two arrays: itself and one list field.
        raw = unpack(frame, len(frame), "message", plain=False, max_arrays=_MAX_ARRAYS)
        return _UNION.load(raw)  # type: ignore[return-value]
    except DecodeError as exc:
        raise MalformedMessage(f"malformed message: {exc}") from None
