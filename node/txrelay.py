"""Between the mempool and transaction gossip: transactions from peers and from local
clients enter the mempool, and those it admits spread onward.

Only admitted transactions are relayed, so a node never spends its peers' bandwidth on
what it refused itself. A peer whose batch holds a transaction that no honest node
could have admitted — bytes that do not decode, or a transaction the stateless checks
refuse (forged signature, another chain, bad gas fields; ``Code.INVALID``) — is dropped
and banned: honest peers only relay what their own mempool admitted, and those checks
are the same on every node of the chain. Everything else a mempool refuses (a nonce
already used, a full pool) is a race an honest peer runs into, and is let go quietly.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from chain.errors import DecodeError
from chain.tx import Transaction
from p2p.peers import PeerManager

from .mempool import Code, Dropped, Mempool, TxRejected

log = logging.getLogger("agora.mempool")


class TxRelay:
    """Wires ``mempool`` to ``network``: it becomes the network's transaction handler."""

    def __init__(self, mempool: Mempool, network: PeerManager, *, max_tx_bytes: int) -> None:
        self.mempool = mempool
        self.network = network
        self.max_tx_bytes = max_tx_bytes
        #: Called with every transaction the mempool admits, local or from a peer.
        self.on_admitted: list[Callable[[Transaction], None]] = []
        network.on_txs = self.received

    def submit(self, tx: Transaction) -> list[Dropped]:
        """A local client's transaction: admit it (or raise :class:`TxRejected`) and
        gossip it to every peer. Returns what the admission displaced."""
        dropped = self.mempool.add(tx)
        self._admitted(tx)
        self.network.gossip_txs([(tx.hash, tx.encode())])
        return dropped

    def received(self, peer: bytes, txs: list[tuple[bytes, bytes]]) -> None:
        """Transactions new to this node arrived from ``peer`` (already de-duplicated
        by the gossip seen-set)."""
        admitted: list[tuple[bytes, bytes]] = []
        for tx_hash, raw in txs:
            try:
                tx = Transaction.decode(raw, self.max_tx_bytes)
                self.mempool.add(tx)
            except DecodeError as exc:
                self.network.punish(peer, f"sent an undecodable transaction: {exc}")
                break
            except TxRejected as exc:
                if exc.code is Code.INVALID:
                    self.network.punish(peer, f"sent an invalid transaction {tx_hash.hex()}: "
                                              f"{exc.reason}")
                    break
                log.debug("transaction %s from peer %s not admitted: %s", tx_hash.hex(),
                          peer.hex()[:12], exc.reason)
                continue
            self._admitted(tx)
            admitted.append((tx_hash, raw))
        if admitted:
            self.network.gossip_txs(admitted, origin=peer)

    def _admitted(self, tx: Transaction) -> None:
        for callback in self.on_admitted:
            callback(tx)
