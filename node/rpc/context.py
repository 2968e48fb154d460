"""What RPC methods may use of the node: a narrow read/submit surface (in the spirit of
CometBFT's ``rpc/core/env.go``). Methods take an :class:`RPCContext` and never import
the daemon; the daemon hands one in, and tests can hand in their own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from chain.tx import Transaction

from ..chainview import ChainView
from ..events import CommitWaiters, EventBus


@dataclass(frozen=True)
class RPCLimits:
    """Bounds on what one request may ask of the node."""

    #: broadcast_tx_commit gives up waiting after this long.
    commit_timeout_ms: int = 30_000
    #: Largest page of any paged method.
    max_page: int = 100
    #: Widest height range of ``events``.
    max_event_range: int = 10_000
    #: Most transactions in one broadcast_txs.
    max_broadcast_txs: int = 5_000


@dataclass(frozen=True)
class PeerInfo:
    node_id: bytes
    outbound: bool
    address: str | None
    validator: bytes | None
    connected_ms: int


@dataclass(frozen=True)
class NodeInfo:
    node_id: bytes
    moniker: str
    mode: str
    listen: str
    validator: bytes | None
    syncing: bool


class RPCContext(Protocol):
    """The node as RPC methods see it."""

    chain: ChainView
    events: EventBus
    waiters: CommitWaiters
    limits: RPCLimits
    #: The commerce index (listings, orders and reviews by party, events by name), or
    #: None where the node keeps none.
    index: Any

    def node_info(self) -> NodeInfo: ...

    def peers(self) -> list[PeerInfo]: ...

    def mempool_status(self) -> dict[str, int]: ...

    def pending_nonce(self, address: bytes) -> int: ...

    def submit(self, tx: Transaction) -> None:
        """Admit ``tx`` to the mempool and gossip it (raises ``TxRejected``)."""
        ...

    def submit_many(self, txs: list[Transaction]) -> list[Exception | None]:
        """Admit each of ``txs`` on its own: its ``TxRejected`` in its place, or None."""
        ...
