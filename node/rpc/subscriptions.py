"""WebSocket subscriptions: ``subscribe`` / ``unsubscribe`` / ``unsubscribe_all``.

Three kinds, each told from the event bus as blocks commit:

* ``blocks`` — every new header, in order;
* ``txs`` — committed transactions, all or those touching one ``account``;
* ``events`` — contract events, filtered by ``contract``, ``event`` name, ``order_id``
  (events that carry one) and ``account`` (events with that address in a field).

A notification is a JSON-RPC notification ``{"method": "subscription", "params":
{"subscription": ID, "result": ...}}``. Each result is built and serialised once, however
many subscribers it goes to.

The hub works once per committed block (one :class:`~node.events.BlockCommitted`):
it matches the block against the subscriptions and hands each connection everything
of that block for it in one :meth:`Connection.notify` call — a header, the block's
matching transactions, its matching events, in block order. Transactions are only
matched on the commit step (by the addresses they touch); their results are rendered
by the first connection's writer that sends them (:class:`TxNote`) and shared with the
others, so a block of thousands of transactions does not hold the commit step.

No subscriber can stall the node or another subscriber: the hub never waits on a
connection. A connection that still has its queue limit of messages unsent when the
next block's notifications arrive has fallen behind, and is told why in its close
frame and dropped (like CometBFT's ``close_on_slow_client``, never its silent drops
or its stalls). One block's notifications are taken whole, however many, so a reader
that keeps up is never dropped for a big block; a connection thus holds at most its
limit plus one block's notifications, and the texts are shared between connections.
"""

from __future__ import annotations

import itertools
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, Protocol

from pydantic import Field, StrictStr

from chain.address import address_to_text
from chain.block import Receipt, ReceiptStatus
from chain.tx import Transaction
from storage.blockstore import touched_addresses

from ..chainview import ChainView
from ..events import BlockCommitted, EventBus
from .methods.common import AddressText
from .protocol import Codes, Params, RPCError, rpc_method
from .views import EventView, HeaderView, ReceiptView, TxView

log = logging.getLogger("agora.rpc.ws")


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


class TxNote:
    """A committed transaction's notification result, rendered on first use (by a
    connection's writer, off the commit step) and then shared."""

    __slots__ = ("_chain", "_tx", "_receipt", "_height", "_index", "_time_ms", "_text")

    def __init__(self, chain: ChainView, tx: Transaction, receipt: Receipt, height: int,
                 index: int, time_ms: int) -> None:
        self._chain: ChainView | None = chain
        self._tx: Transaction | None = tx
        self._receipt: Receipt | None = receipt
        self._height = height
        self._index = index
        self._time_ms = time_ms
        self._text: str | None = None

    def text(self) -> str:
        if self._text is None:
            tx, receipt, chain = self._tx, self._receipt, self._chain
            assert tx is not None and receipt is not None and chain is not None
            self._text = _dumps({
                "hash": tx.hash.hex(), "height": self._height, "index": self._index,
                "time_ms": self._time_ms,
                "tx": TxView.of(tx, chain).model_dump(mode="json"),
                "receipt": ReceiptView.of(receipt, chain, tx).model_dump(mode="json")})
            self._tx = self._receipt = self._chain = None  # only the text is kept
        return self._text


#: What a subscription is told of one block: ready texts or transaction notes.
Notes = Sequence["str | TxNote"]


class Connection(Protocol):
    """One WebSocket client, as the hub sees it."""

    subscriptions: dict[str, Subscription]

    def notify(self, items: list[tuple[str, Notes]]) -> None:
        """Queue one block's ``(subscription id, results)`` without waiting; a
        connection still that far behind is dropped instead."""
        ...


@dataclass(eq=False)
class Subscription:
    id: str
    kind: str
    connection: Connection
    account: bytes | None = None
    contract: bytes | None = None
    event: str | None = None
    order_id: int | None = None
    description: dict[str, Any] = field(default_factory=dict)


class Hub:
    """Every live subscription of the node, indexed for cheap matching."""

    def __init__(self, bus: EventBus, chain: ChainView, *, max_per_connection: int = 20) -> None:
        self.chain = chain
        self.max_per_connection = max_per_connection
        self._ids = itertools.count(1)
        self._blocks: dict[str, Subscription] = {}
        self._txs_all: dict[str, Subscription] = {}
        self._txs_by_account: dict[bytes, dict[str, Subscription]] = {}
        self._events: dict[str, Subscription] = {}
        self._stops: list[Callable[[], None]] = [bus.listen(BlockCommitted, self._block)]

    def close(self) -> None:
        for stop in self._stops:
            stop()
        self._stops.clear()

    def __len__(self) -> int:
        return (len(self._blocks) + len(self._txs_all) + len(self._events)
                + sum(len(s) for s in self._txs_by_account.values()))

    # ------------------------------------------------------------ membership

    def add(self, conn: Connection, kind: str, **filters: Any) -> Subscription:
        if len(conn.subscriptions) >= self.max_per_connection:
            raise RPCError(Codes.LIMIT, "Limit reached",
                           f"a connection may hold at most {self.max_per_connection} "
                           "subscriptions; unsubscribe from one first")
        sub = Subscription(f"{next(self._ids):x}", kind, conn, **filters)
        conn.subscriptions[sub.id] = sub
        if kind == "blocks":
            self._blocks[sub.id] = sub
        elif kind == "txs":
            if sub.account is None:
                self._txs_all[sub.id] = sub
            else:
                self._txs_by_account.setdefault(sub.account, {})[sub.id] = sub
        else:
            self._events[sub.id] = sub
        return sub

    def remove(self, sub: Subscription) -> None:
        sub.connection.subscriptions.pop(sub.id, None)
        self._blocks.pop(sub.id, None)
        self._txs_all.pop(sub.id, None)
        self._events.pop(sub.id, None)
        if sub.account is not None and sub.kind == "txs":
            subs = self._txs_by_account.get(sub.account)
            if subs is not None:
                subs.pop(sub.id, None)
                if not subs:
                    del self._txs_by_account[sub.account]

    def remove_all(self, conn: Connection) -> int:
        subs = list(conn.subscriptions.values())
        for sub in subs:
            self.remove(sub)
        return len(subs)

    # ------------------------------------------------------------ telling

    def _block(self, event: BlockCommitted) -> None:
        if not (self._blocks or self._txs_all or self._txs_by_account or self._events):
            return
        out: dict[Connection, list[tuple[str, Notes]]] = {}

        def tell(sub: Subscription, notes: Notes) -> None:
            items = out.get(sub.connection)
            if items is None:
                out[sub.connection] = [(sub.id, notes)]
            else:
                items.append((sub.id, notes))

        if self._blocks:
            header = [_dumps(HeaderView.of(event.block.header).model_dump(mode="json"))]
            for sub in self._blocks.values():
                tell(sub, header)
        if event.block.txs and (self._txs_all or self._txs_by_account):
            self._txs(event, tell)
        if event.block.txs and self._events:
            self._contract_events(event, tell)
        for conn, items in out.items():
            conn.notify(items)

    def _txs(self, event: BlockCommitted,
             tell: Callable[[Subscription, Notes], None]) -> None:
        block = event.block
        height, time_ms, chain = block.height, block.header.time_ms, self.chain
        notes: list[TxNote | None]
        if self._txs_all:
            every = [TxNote(chain, tx, receipt, height, index, time_ms)
                     for index, (tx, receipt) in enumerate(zip(block.txs, event.receipts,
                                                               strict=True))]
            for sub in self._txs_all.values():
                tell(sub, every)  # one list, shared
            notes = list(every)
        else:
            notes = [None] * len(block.txs)
        if not self._txs_by_account:
            return
        matched: dict[Subscription, list[str | TxNote]] = {}
        for index, tx in enumerate(block.txs):
            for address in touched_addresses(tx):
                subs = self._txs_by_account.get(address)
                if not subs:
                    continue
                note = notes[index]
                if note is None:
                    note = notes[index] = TxNote(chain, tx, event.receipts[index], height,
                                                 index, time_ms)
                for sub in subs.values():
                    matched.setdefault(sub, []).append(note)
        for sub, sub_notes in matched.items():
            tell(sub, sub_notes)

    def _contract_events(self, event: BlockCommitted,
                         tell: Callable[[Subscription, Notes], None]) -> None:
        block = event.block
        time_ms = block.header.time_ms
        matched: dict[Subscription, list[str | TxNote]] = {}
        subs = list(self._events.values())
        for tx_index, (tx, receipt) in enumerate(zip(block.txs, event.receipts, strict=True)):
            if receipt.status != ReceiptStatus.OK:
                continue
            for event_index, e in enumerate(receipt.events):
                view: EventView | None = None
                text = ""
                for sub in subs:
                    if sub.contract is not None and sub.contract != e.contract:
                        continue
                    if sub.event is not None and sub.event != e.name:
                        continue
                    if view is None:
                        view = EventView.of(e, self.chain)
                    if sub.order_id is not None and (view.fields is None or view.fields.get(
                            "order_id") != str(sub.order_id)):
                        continue
                    if sub.account is not None:
                        wanted = address_to_text(sub.account)
                        if view.fields is None or wanted not in view.fields.values():
                            continue
                    if not text:
                        text = _dumps({"height": block.height, "tx_index": tx_index,
                                       "event_index": event_index, "tx_hash": tx.hash.hex(),
                                       "time_ms": time_ms, **view.model_dump(mode="json")})
                    matched.setdefault(sub, []).append(text)
        for sub, texts in matched.items():
            tell(sub, texts)


# ---------------------------------------------------------------- the methods


class SubscribeParams(Params):
    kind: Literal["blocks", "txs", "events"] = Field(
        description="blocks (new headers), txs (committed transactions) or events "
                    "(contract events).")
    account: AddressText | None = Field(
        None, description="txs: only those touching this account; events: only those "
                          "naming it in a field.")
    contract: Annotated[StrictStr, Field(max_length=90)] | None = Field(
        None, description="events: a known contract's name or address.")
    event: Annotated[StrictStr, Field(max_length=64)] | None = Field(
        None, description="events: only events with this name.")
    order_id: Annotated[int, Field(ge=0, lt=1 << 256)] | None = Field(
        None, description="events: only events of this order.")


class SubscriptionView(Params):
    subscription: str


class UnsubscribeParams(Params):
    subscription: Annotated[StrictStr, Field(max_length=32)]


class SubscriberContext(Protocol):
    chain: ChainView
    hub: Hub
    connection: Connection


@rpc_method("subscribe", SubscribeParams, SubscriptionView, websocket_only=True)
async def subscribe(ctx: SubscriberContext, p: SubscribeParams) -> SubscriptionView:
    """Subscribe to new blocks, committed transactions or contract events; answers
    with the subscription's id, which every notification names."""
    if p.kind != "events" and (p.contract or p.event or p.order_id is not None):
        raise RPCError(Codes.INVALID_PARAMS, "Invalid params",
                       "contract, event and order_id filter events only")
    if p.kind == "blocks" and p.account is not None:
        raise RPCError(Codes.INVALID_PARAMS, "Invalid params",
                       "account filters txs and events only")
    contract = None
    if p.contract is not None:
        from ..chainview import NotFound
        try:
            contract = ctx.chain.contract(p.contract).address
        except NotFound as exc:
            raise RPCError(Codes.INVALID_PARAMS, "Invalid params", f"contract: {exc}") from None
    sub = ctx.hub.add(ctx.connection, p.kind, account=p.account,
                      contract=contract, event=p.event, order_id=p.order_id)
    return SubscriptionView(subscription=sub.id)


@rpc_method("unsubscribe", UnsubscribeParams, bool, websocket_only=True)
async def unsubscribe(ctx: SubscriberContext, p: UnsubscribeParams) -> bool:
    """End one subscription of this connection; false if it had no such subscription."""
    sub = ctx.connection.subscriptions.get(p.subscription)
    if sub is None:
        return False
    ctx.hub.remove(sub)
    return True


@rpc_method("unsubscribe_all", Params, int, websocket_only=True)
async def unsubscribe_all(ctx: SubscriberContext, _: Params) -> int:
    """End every subscription of this connection; how many there were."""
    return ctx.hub.remove_all(ctx.connection)
