"""Between the mempool and transaction gossip: transactions from peers and from local
clients enter the mempool, and those it admits spread onward.

Only admitted transactions are relayed, so a node never spends its peers' bandwidth on
what it refused itself. A peer whose batch holds a transaction that no honest node
could have admitted — bytes that do not decode, a forged signature, another chain — is
dropped and banned: honest peers only relay what their own mempool admitted, and those
checks are the same on every node. Everything else a mempool refuses (a nonce already
used, a full pool) is a race an honest peer runs into, and is let go quietly.

A transaction counts as *seen* (later copies are ignored) only once its fate is
settled: admitted, or refused for a reason that will not pass. One refused for now (a
full pool, a nonce gap) may come again from another peer and get another chance. A
peer that connects gets the pool's transactions, so a link that was down when they
spread still carries them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from chain.errors import DecodeError
from chain.tx import Transaction
from p2p.peers import Peer, PeerManager

from .mempool import Code, Dropped, Mempool, TxRejected

log = logging.getLogger("agora.mempool")

#: Refusals that will not change with time: a copy of such a transaction is ignored.
_SETTLED = frozenset({Code.INVALID, Code.TOO_LARGE, Code.ALREADY_KNOWN, Code.NONCE_TOO_LOW})


class TxRelay:
    """Wires ``mempool`` to ``network``: it becomes the network's transaction handler."""

    def __init__(self, mempool: Mempool, network: PeerManager, *, chain_id: str,
                 max_tx_bytes: int) -> None:
        self.mempool = mempool
        self.network = network
        self.chain_id = chain_id
        self.max_tx_bytes = max_tx_bytes
        #: Called with every transaction the mempool admits, local or from a peer.
        self.on_admitted: list[Callable[[Transaction], None]] = []
        network.on_txs = self.received
        network.on_peer_connected.append(self._peer_connected)

    def submit(self, tx: Transaction) -> list[Dropped]:
        """A local client's transaction: admit it (or raise :class:`TxRejected`) and
        gossip it to every peer. Returns what the admission displaced."""
        dropped = self.mempool.add(tx)
        self._admitted(tx)
        self.network.gossip_txs([(tx.hash, tx.encode())])
        return dropped

    def submit_many(self, txs: list[Transaction]) -> list[TxRejected | None]:
        """Many local transactions (``broadcast_txs``): each admitted or refused on its
        own (the refusal in its place, None where admitted), gossiped in one batch, and
        consensus told of them once all are in, so no block is built from half of them."""
        outcomes: list[TxRejected | None] = []
        admitted: list[Transaction] = []
        for tx in txs:
            try:
                self.mempool.add(tx)
            except TxRejected as exc:
                # Without its traceback or the exception it replaced (whose traceback
                # holds the same frames): a kept exception holds this frame, whose
                # ``outcomes`` holds the exception — a reference cycle per refusal,
                # which under a flood of refusals kept the cyclic collector running
                # full collections of the whole heap every second.
                exc.__context__ = exc.__cause__ = None
                outcomes.append(exc.with_traceback(None))
                continue
            outcomes.append(None)
            admitted.append(tx)
        if admitted:
            self.mempool.stamp(tx.hash for tx in admitted)
            self.network.gossip_txs([(tx.hash, tx.encode()) for tx in admitted])
            for tx in admitted:
                self._admitted(tx)
        return outcomes

    def received(self, peer: bytes, txs: list[tuple[bytes, bytes]]) -> None:
        """Transactions not seen yet arrived from ``peer``."""
        admitted: list[tuple[bytes, bytes]] = []
        gossip = self.network.gossip
        for tx_hash, raw in txs:
            try:
                tx = Transaction.decode(raw, self.max_tx_bytes)
            except DecodeError as exc:
                self.network.punish(peer, f"sent an undecodable transaction: {exc}")
                break
            try:
                self.mempool.add(tx)
            except TxRejected as exc:
                if exc.code in _SETTLED:
                    gossip.mark_seen(tx_hash)
                if exc.code is Code.INVALID and self._forged(tx):
                    self.network.punish(peer, f"sent an invalid transaction {tx_hash.hex()}: "
                                              f"{exc.reason}")
                    break
                log.debug("transaction %s from peer %s not admitted: %s", tx_hash.hex(),
                          peer.hex()[:12], exc.reason)
                continue
            self._admitted(tx)
            admitted.append((tx_hash, raw))
        if admitted:
            self.mempool.stamp(tx_hash for tx_hash, _ in admitted)
            self.network.gossip_txs(admitted, origin=peer)

    def _forged(self, tx: Transaction) -> bool:
        """Refused for a reason only a forger (or a broken node) could cause: another
        chain or a signature that does not verify. (An INVALID refusal can also come
        from the application's view of state, which no peer is to blame for.)"""
        return tx.chain_id != self.chain_id or not tx.has_valid_signature()

    def _peer_connected(self, peer: Peer) -> None:
        pending = [(tx.hash, tx.encode()) for tx in self.mempool]
        if pending:
            self.network.gossip_txs_to(peer.node_id, pending)

    def _admitted(self, tx: Transaction) -> None:
        for callback in self.on_admitted:
            callback(tx)
