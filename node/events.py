"""The node's event bus: what happened on the chain, told once to everyone listening.

Three kinds of event, all published after a block is written (so a listener that reads
the chain sees what it was told about):

* :class:`BlockCommitted` — the block and its receipts;
* :class:`TxCommitted` — one transaction of it, where it is and its receipt;
* :class:`ContractEvent` — one event a contract emitted in a successful transaction.

RPC waiters (``broadcast_tx_commit``), WebSocket subscriptions, metrics and the index
all listen here; nothing else in the node calls them. The per-transaction and per-event
kinds are built only while someone listens for them, so a bus nobody reads costs one
call per block.

Listeners run synchronously inside the commit step and must be quick: hand slow work to
a queue. One that raises is logged and kept; it never stops the commit or the others.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from chain.block import Block, Event, Receipt, ReceiptStatus
from chain.tx import Transaction

log = logging.getLogger("agora.events")


@dataclass(frozen=True, slots=True)
class BlockCommitted:
    block: Block
    receipts: list[Receipt]


@dataclass(frozen=True, slots=True)
class TxCommitted:
    height: int
    index: int
    tx: Transaction
    receipt: Receipt
    time_ms: int


@dataclass(frozen=True, slots=True)
class ContractEvent:
    height: int
    tx_index: int
    event_index: int
    tx_hash: bytes
    event: Event
    time_ms: int


E = TypeVar("E", BlockCommitted, TxCommitted, ContractEvent)
Listener = Callable[[Any], None]


class EventBus:
    def __init__(self) -> None:
        self._listeners: dict[type, list[Listener]] = {
            BlockCommitted: [], TxCommitted: [], ContractEvent: []}

    def listen(self, kind: type[E], listener: Callable[[E], None]) -> Callable[[], None]:
        """Call ``listener`` with every event of ``kind``; returns the call that stops it."""
        listeners = self._listeners[kind]
        listeners.append(listener)

        def stop() -> None:
            if listener in listeners:
                listeners.remove(listener)
        return stop

    def listening(self, kind: type) -> int:
        return len(self._listeners[kind])

    def _tell(self, kind: type, event: object) -> None:
        for listener in list(self._listeners[kind]):
            try:
                listener(event)
            except Exception:  # a listener's bug must not stop the commit
                log.exception("event listener %r failed on %s", listener, kind.__name__)

    def block_committed(self, block: Block, receipts: list[Receipt]) -> None:
        """Publish a written block, its transactions and its contract events."""
        self._tell(BlockCommitted, BlockCommitted(block, receipts))
        want_txs = self._listeners[TxCommitted]
        want_events = self._listeners[ContractEvent]
        if not (want_txs or want_events):
            return
        height = block.height
        time_ms = block.header.time_ms
        for index, (tx, receipt) in enumerate(zip(block.txs, receipts, strict=True)):
            if want_txs:
                self._tell(TxCommitted, TxCommitted(height, index, tx, receipt, time_ms))
            if want_events and receipt.status == ReceiptStatus.OK:
                for n, event in enumerate(receipt.events):
                    self._tell(ContractEvent, ContractEvent(height, index, n, tx.hash,
                                                            event, time_ms))


class NodeStopping(Exception):
    """The node is shutting down; the operation cannot finish."""


class CommitWaiters:
    """Futures resolved with (height, index) when a transaction commits (for
    ``broadcast_tx_commit``). Register before submitting, so a fast commit is not missed."""

    def __init__(self, bus: EventBus) -> None:
        self._waiters: dict[bytes, list[asyncio.Future[tuple[int, int]]]] = {}
        self._stop_listening = bus.listen(BlockCommitted, self._committed)

    def __len__(self) -> int:
        return sum(len(w) for w in self._waiters.values())

    def wait(self, tx_hash: bytes) -> asyncio.Future[tuple[int, int]]:
        future: asyncio.Future[tuple[int, int]] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(tx_hash, []).append(future)
        return future

    def forget(self, tx_hash: bytes, future: asyncio.Future) -> None:
        waiters = self._waiters.get(tx_hash)
        if waiters and future in waiters:
            waiters.remove(future)
            if not waiters:
                del self._waiters[tx_hash]

    def _committed(self, event: BlockCommitted) -> None:
        if not self._waiters:
            return
        for index, tx in enumerate(event.block.txs):
            for future in self._waiters.pop(tx.hash, ()):
                if not future.done():
                    future.set_result((event.block.height, index))

    def close(self) -> None:
        """Tell everyone still waiting that the node is stopping."""
        self._stop_listening()
        for waiters in self._waiters.values():
            for future in waiters:
                if not future.done():
                    future.set_exception(NodeStopping("the node is stopping"))
        self._waiters.clear()
