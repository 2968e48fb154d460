"""WebSocket subscriptions: ``subscribe`` / ``unsubscribe`` / ``unsubscribe_all``.

Three kinds, each told from the event bus as blocks commit:

* ``blocks`` — every new header, in order;
* ``txs`` — committed transactions, all or those touching one ``account``;
* ``events`` — contract events, filtered by ``contract``, ``event`` name, ``order_id``
  (events that carry one) and ``account`` (events with that address in a field).

A notification is a JSON-RPC notification ``{"method": "subscription", "params":
{"subscription": ID, "result": ...}}``. Each result is built and serialised once, however
many subscribers it goes to.

No subscriber can stall the node or another subscriber: the hub only ever puts into a
connection's bounded queue without waiting (:meth:`Connection.push`); a connection whose
queue is full has fallen behind, and is told why in its close frame and dropped (like
CometBFT's ``close_on_slow_client``, never its silent drops or its stalls).
"""

from __future__ import annotations

import itertools
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, Protocol

from pydantic import Field, StrictStr

from chain.address import address_to_text
from storage.blockstore import touched_addresses

from ..chainview import ChainView
from ..events import BlockCommitted, ContractEvent, EventBus, TxCommitted
from .methods.common import AddressText
from .protocol import Codes, Params, RPCError, rpc_method
from .views import EventView, HeaderView, ReceiptView, TxView

log = logging.getLogger("agora.rpc.ws")


class Connection(Protocol):
    """One WebSocket client, as the hub sees it."""

    subscriptions: dict[str, Subscription]

    def push(self, text: str) -> None:
        """Queue ``text`` without waiting; a full queue drops the connection."""
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

    def send(self, result_json: str) -> None:
        self.connection.push(
            '{"jsonrpc":"2.0","method":"subscription","params":{"subscription":"'
            + self.id + '","result":' + result_json + "}}")


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
        self._bus = bus
        self._tx_listening = False
        self._event_listening = False

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
        self._listen_as_needed()
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
        self._listen_as_needed()

    def remove_all(self, conn: Connection) -> int:
        subs = list(conn.subscriptions.values())
        for sub in subs:
            self.remove(sub)
        return len(subs)

    def _listen_as_needed(self) -> None:
        # The bus builds per-tx and per-event objects only while someone listens.
        want_txs = bool(self._txs_all or self._txs_by_account)
        if want_txs != self._tx_listening:
            self._tx_listening = want_txs
            if want_txs:
                self._stop_txs = self._bus.listen(TxCommitted, self._tx)
            else:
                self._stop_txs()
        want_events = bool(self._events)
        if want_events != self._event_listening:
            self._event_listening = want_events
            if want_events:
                self._stop_events = self._bus.listen(ContractEvent, self._event)
            else:
                self._stop_events()

    # ------------------------------------------------------------ telling

    def _block(self, event: BlockCommitted) -> None:
        if not self._blocks:
            return
        text = json.dumps(HeaderView.of(event.block.header).model_dump(mode="json"),
                          separators=(",", ":"))
        for sub in list(self._blocks.values()):
            sub.send(text)

    def _tx(self, event: TxCommitted) -> None:
        targets = list(self._txs_all.values())
        if self._txs_by_account:
            for address in touched_addresses(event.tx):
                subs = self._txs_by_account.get(address)
                if subs:
                    targets.extend(subs.values())
        if not targets:
            return
        result = {"hash": event.tx.hash.hex(), "height": event.height, "index": event.index,
                  "time_ms": event.time_ms,
                  "tx": TxView.of(event.tx, self.chain).model_dump(mode="json"),
                  "receipt": ReceiptView.of(event.receipt, self.chain,
                                            event.tx).model_dump(mode="json")}
        text = json.dumps(result, separators=(",", ":"))
        for sub in dict.fromkeys(targets):  # a sub may match twice; tell it once
            sub.send(text)

    def _event(self, event: ContractEvent) -> None:
        e = event.event
        view: EventView | None = None
        text = ""
        for sub in list(self._events.values()):
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
                result = {"height": event.height, "tx_index": event.tx_index,
                          "event_index": event.event_index, "tx_hash": event.tx_hash.hex(),
                          "time_ms": event.time_ms, **view.model_dump(mode="json")}
                text = json.dumps(result, separators=(",", ":"))
            sub.send(text)


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
    sub = ctx.hub.add(ctx.connection, p.kind, account=p.account,  # type: ignore[arg-type]
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
