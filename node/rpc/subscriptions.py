"""WebSocket subscriptions: ``subscribe`` / ``unsubscribe`` / ``unsubscribe_all``.

Three kinds, each told from the event bus as blocks commit:

* ``blocks`` — every new header, in order;
* ``txs`` — committed transactions, all or those touching one ``account``;
* ``events`` — contract events, filtered by ``contract``, ``event`` name, ``order_id``
  (events that carry one) and ``account`` (events naming that address in one of their
  ``Address`` fields).

A notification is a JSON-RPC notification ``{"method": "subscription", "params":
{"subscription": ID, "result": ...}}``. Each result is built and serialised once, however
many subscribers it goes to.

The hub works once per committed block (one :class:`~node.events.BlockCommitted`):
it matches the block against the subscriptions and hands each connection everything
of that block for it in one :meth:`Connection.notify` call — a header, the block's
matching transactions, its matching events, in block order. Results are not rendered on
the commit step: a transaction's or an event's is rendered by the first connection's
writer that sends it (:class:`TxNote`, :class:`EventNote`) and shared with the others,
so a block of thousands of transactions does not hold the commit step.

Matching costs the commit step work in proportion to the block and to what matches,
never to the subscriptions that do not match. Subscriptions with the same filters form
one group, told one shared list of results. ``txs`` groups are found by the accounts a
transaction touches. An ``events`` group sits in one bucket, by its most selective
filter: its ``order_id``, else its ``account``, else its (``contract``, ``event``) pair
with either left open. An event is looked up by its order id, by each ``Address`` value
it carries and by its four (contract, name) keys, and only the groups found have their
other filters checked; its fields are decoded at most once, and only if a group keyed
by order or account might want it. The hub counts the groups it examined
(:attr:`Hub.examined`) and the events it decoded (:attr:`Hub.decoded`), so tests can
see this. Subscriptions are capped per connection and node-wide.

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
from chain.block import Event, Receipt, ReceiptStatus
from chain.tx import Transaction
from storage.blockstore import touched_addresses

from ..chainview import ChainView
from ..events import BlockCommitted, EventBus
from .methods.common import AddressText
from .protocol import Codes, Params, RPCError, rpc_method
from .views import EventView, HeaderView, ReceiptView, tx_json

log = logging.getLogger("agora.rpc.ws")


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


class Note:
    """A notification result rendered on first use (by a connection's writer, off the
    commit step), then shared by every connection it goes to."""

    __slots__ = ("_text",)

    def __init__(self) -> None:
        self._text: str | None = None

    def text(self) -> str:
        if self._text is None:
            self._text = self._render()
        return self._text

    def _render(self) -> str:
        raise NotImplementedError  # pragma: no cover - every kind of note overrides it


class TxNote(Note):
    """A committed transaction's notification result."""

    __slots__ = ("_chain", "_tx", "_receipt", "_height", "_index", "_time_ms")

    def __init__(self, chain: ChainView, tx: Transaction, receipt: Receipt, height: int,
                 index: int, time_ms: int) -> None:
        super().__init__()
        self._chain: ChainView | None = chain
        self._tx: Transaction | None = tx
        self._receipt: Receipt | None = receipt
        self._height = height
        self._index = index
        self._time_ms = time_ms

    def _render(self) -> str:
        tx, receipt, chain = self._tx, self._receipt, self._chain
        assert tx is not None and receipt is not None and chain is not None
        self._tx = self._receipt = self._chain = None  # only the text is kept
        return _dumps({
            "hash": tx.hash.hex(), "height": self._height, "index": self._index,
            "time_ms": self._time_ms,
            "tx": tx_json(tx, chain),
            "receipt": ReceiptView.of(receipt, chain, tx).model_dump(mode="json")})


#: An event's contract name and fields as JSON, as :meth:`ChainView.decode_event` gives.
_Decoded = tuple[str | None, dict[str, Any] | None]


class EventNote(Note):
    """A contract event's notification result (its fields decoded here unless matching
    had to decode them already)."""

    __slots__ = ("_chain", "_event", "_decoded", "_tx", "_height", "_tx_index",
                 "_event_index", "_time_ms")

    def __init__(self, chain: ChainView, event: Event, decoded: _Decoded | None,
                 tx: Transaction, height: int, tx_index: int, event_index: int,
                 time_ms: int) -> None:
        super().__init__()
        self._chain: ChainView | None = chain
        self._event: Event | None = event
        self._decoded = decoded
        self._tx: Transaction | None = tx
        self._height = height
        self._tx_index = tx_index
        self._event_index = event_index
        self._time_ms = time_ms

    def _render(self) -> str:
        e, chain, tx = self._event, self._chain, self._tx
        assert e is not None and chain is not None and tx is not None
        contract_name, fields = (self._decoded if self._decoded is not None
                                 else chain.decode_event(e))
        self._event = self._chain = self._tx = self._decoded = None
        view = EventView(contract=address_to_text(e.contract), contract_name=contract_name,
                         name=e.name, fields=fields, data=e.data.hex())
        return _dumps({"height": self._height, "tx_index": self._tx_index,
                       "event_index": self._event_index, "tx_hash": tx.hash.hex(),
                       "time_ms": self._time_ms, **view.model_dump(mode="json")})


#: What a subscription is told of one block: ready texts or notes rendered on use.
Notes = Sequence[str | Note]


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


#: An ``events`` group's filters: contract, event name, order id (decimal text, as an
#: event's fields carry it) and account (address text, likewise).
_EventKey = tuple[bytes | None, str | None, str | None, str | None]


class _EventGroup:
    """The ``events`` subscriptions with one set of filters."""

    __slots__ = ("contract", "event", "order_id", "account", "subs")

    def __init__(self, key: _EventKey) -> None:
        self.contract, self.event, self.order_id, self.account = key
        self.subs: dict[str, Subscription] = {}


class Hub:
    """Every live subscription of the node, indexed for cheap matching."""

    def __init__(self, bus: EventBus, chain: ChainView, *, max_per_connection: int = 20,
                 max_total: int = 10_000) -> None:
        self.chain = chain
        self.max_per_connection = max_per_connection
        self.max_total = max_total
        #: Work counters: ``events`` groups examined against an event (each of the
        #: four (contract, name) look-ups that finds a group counts one), and events
        #: whose fields were decoded for matching.
        self.examined = 0
        self.decoded = 0
        self._ids = itertools.count(1)
        self._count = 0
        self._blocks: dict[str, Subscription] = {}
        self._txs_all: dict[str, Subscription] = {}
        self._txs_by_account: dict[bytes, dict[str, Subscription]] = {}
        self._event_groups: dict[_EventKey, _EventGroup] = {}
        self._events_by_order: dict[str, dict[_EventKey, _EventGroup]] = {}
        self._events_by_account: dict[str, dict[_EventKey, _EventGroup]] = {}
        self._events_by_kind: dict[tuple[bytes | None, str | None], _EventGroup] = {}
        #: (contract, event name) of a known contract's event -> (its Address fields,
        #: whether it has an order_id field). Bounded by the known contracts' ABIs.
        self._field_kinds: dict[tuple[bytes, str], tuple[tuple[str, ...], bool]] = {}
        self._stops: list[Callable[[], None]] = [bus.listen(BlockCommitted, self._block)]

    def close(self) -> None:
        for stop in self._stops:
            stop()
        self._stops.clear()

    def __len__(self) -> int:
        return self._count

    # ------------------------------------------------------------ membership

    def add(self, conn: Connection, kind: str, **filters: Any) -> Subscription:
        if len(conn.subscriptions) >= self.max_per_connection:
            raise RPCError(Codes.LIMIT, "Limit reached",
                           f"a connection may hold at most {self.max_per_connection} "
                           "subscriptions; unsubscribe from one first")
        if self._count >= self.max_total:
            raise RPCError(Codes.LIMIT, "Limit reached",
                           f"this node holds at most {self.max_total} subscriptions for "
                           "all its clients together; try again later or use another node")
        sub = Subscription(f"{next(self._ids):x}", kind, conn, **filters)
        conn.subscriptions[sub.id] = sub
        self._count += 1
        if kind == "blocks":
            self._blocks[sub.id] = sub
        elif kind == "txs":
            if sub.account is None:
                self._txs_all[sub.id] = sub
            else:
                self._txs_by_account.setdefault(sub.account, {})[sub.id] = sub
        else:
            key = _event_key(sub)
            group = self._event_groups.get(key)
            if group is None:
                group = self._event_groups[key] = _EventGroup(key)
                if group.order_id is not None:
                    self._events_by_order.setdefault(group.order_id, {})[key] = group
                elif group.account is not None:
                    self._events_by_account.setdefault(group.account, {})[key] = group
                else:
                    self._events_by_kind[(group.contract, group.event)] = group
            group.subs[sub.id] = sub
        return sub

    def remove(self, sub: Subscription) -> None:
        if sub.connection.subscriptions.pop(sub.id, None) is None:
            return
        self._count -= 1
        if sub.kind == "blocks":
            self._blocks.pop(sub.id, None)
        elif sub.kind == "txs":
            if sub.account is None:
                self._txs_all.pop(sub.id, None)
            else:
                subs = self._txs_by_account.get(sub.account)
                if subs is not None:
                    subs.pop(sub.id, None)
                    if not subs:
                        del self._txs_by_account[sub.account]
        else:
            key = _event_key(sub)
            group = self._event_groups.get(key)
            if group is None:
                return
            group.subs.pop(sub.id, None)
            if group.subs:
                return
            del self._event_groups[key]
            if group.order_id is not None:
                _unindex(self._events_by_order, group.order_id, key)
            elif group.account is not None:
                _unindex(self._events_by_account, group.account, key)
            else:
                del self._events_by_kind[(group.contract, group.event)]

    def remove_all(self, conn: Connection) -> int:
        subs = list(conn.subscriptions.values())
        for sub in subs:
            self.remove(sub)
        return len(subs)

    # ------------------------------------------------------------ telling

    def _block(self, event: BlockCommitted) -> None:
        if not self._count:
            return
        out: dict[Connection, list[tuple[str, Notes]]] = {}

        def tell(subs: dict[str, Subscription], notes: Notes) -> None:
            for sub in subs.values():
                items = out.get(sub.connection)
                if items is None:
                    out[sub.connection] = [(sub.id, notes)]
                else:
                    items.append((sub.id, notes))

        if self._blocks:
            tell(self._blocks,
                 [_dumps(HeaderView.of(event.block.header).model_dump(mode="json"))])
        if event.block.txs and (self._txs_all or self._txs_by_account):
            self._txs(event, tell)
        if event.block.txs and self._event_groups:
            self._contract_events(event, tell)
        for conn, items in out.items():
            conn.notify(items)

    def _txs(self, event: BlockCommitted,
             tell: Callable[[dict[str, Subscription], Notes], None]) -> None:
        block = event.block
        height, time_ms, chain = block.height, block.header.time_ms, self.chain
        notes: list[TxNote | None]
        if self._txs_all:
            every = [TxNote(chain, tx, receipt, height, index, time_ms)
                     for index, (tx, receipt) in enumerate(zip(block.txs, event.receipts,
                                                               strict=True))]
            tell(self._txs_all, every)  # one list, shared
            notes = list(every)
        else:
            notes = [None] * len(block.txs)
        by_account = self._txs_by_account
        if not by_account:
            return
        matched: dict[bytes, list[str | Note]] = {}
        for index, tx in enumerate(block.txs):
            for address in touched_addresses(tx):
                if address not in by_account:
                    continue
                note = notes[index]
                if note is None:
                    note = notes[index] = TxNote(chain, tx, event.receipts[index], height,
                                                 index, time_ms)
                matched.setdefault(address, []).append(note)
        for address, account_notes in matched.items():
            tell(by_account[address], account_notes)  # one list per account, shared

    def _contract_events(self, event: BlockCommitted,
                         tell: Callable[[dict[str, Subscription], Notes], None]) -> None:
        block = event.block
        height, time_ms, chain = block.height, block.header.time_ms, self.chain
        by_kind, by_order, by_account = (self._events_by_kind, self._events_by_order,
                                         self._events_by_account)
        matched: dict[_EventGroup, list[str | Note]] = {}
        hits: list[_EventGroup] = []
        for tx_index, (tx, receipt) in enumerate(zip(block.txs, event.receipts, strict=True)):
            if receipt.status != ReceiptStatus.OK:
                continue
            for event_index, e in enumerate(receipt.events):
                contract, name = e.contract, e.name
                if by_kind:
                    for kind in ((contract, name), (contract, None), (None, name),
                                 (None, None)):
                        group = by_kind.get(kind)
                        if group is not None:
                            self.examined += 1
                            hits.append(group)
                decoded: _Decoded | None = None
                if by_order or by_account:
                    kinds = self._fields_of(e)
                    if kinds is not None and ((by_order and kinds[1])
                                              or (by_account and kinds[0])):
                        decoded = chain.decode_event(e)
                        self.decoded += 1
                        fields = decoded[1]
                        if fields is not None:
                            self._by_fields(contract, name, fields, kinds[0], hits)
                if not hits:
                    continue
                note = EventNote(chain, e, decoded, tx, height, tx_index, event_index,
                                 time_ms)
                for group in hits:
                    group_notes = matched.get(group)
                    if group_notes is None:
                        matched[group] = [note]
                    else:
                        group_notes.append(note)
                hits.clear()
        for group, group_notes in matched.items():
            tell(group.subs, group_notes)  # one list per group, shared

    def _by_fields(self, contract: bytes, name: str, fields: dict[str, Any],
                   address_fields: tuple[str, ...], hits: list[_EventGroup]) -> None:
        """Add to ``hits`` the groups keyed by this event's order id or by an address
        it carries whose other filters it meets."""
        addresses = {value for f in address_fields
                     if isinstance(value := fields.get(f), str)}
        order_id = fields.get("order_id")
        if self._events_by_order and isinstance(order_id, str):
            for group in self._events_by_order.get(order_id, {}).values():
                self.examined += 1
                if ((group.contract is None or group.contract == contract)
                        and (group.event is None or group.event == name)
                        and (group.account is None or group.account in addresses)):
                    hits.append(group)
        if self._events_by_account:
            for address in addresses:
                for group in self._events_by_account.get(address, {}).values():
                    self.examined += 1
                    if ((group.contract is None or group.contract == contract)
                            and (group.event is None or group.event == name)):
                        hits.append(group)

    def _fields_of(self, e: Event) -> tuple[tuple[str, ...], bool] | None:
        """The names of ``e``'s Address fields and whether it has an order_id, by its
        contract's ABI; None for an event the node cannot decode."""
        key = (e.contract, e.name)
        kinds = self._field_kinds.get(key)
        if kinds is None:
            known = self.chain.contracts.get(e.contract)
            spec = known.event(e.name) if known is not None else None
            if spec is None:
                return None
            kinds = self._field_kinds[key] = (
                tuple(f["name"] for f in spec["fields"] if f["type"] == "Address"),
                any(f["name"] == "order_id" for f in spec["fields"]))
        return kinds


def _event_key(sub: Subscription) -> _EventKey:
    return (sub.contract, sub.event,
            None if sub.order_id is None else str(sub.order_id),
            None if sub.account is None else address_to_text(sub.account))


def _unindex(index: dict[str, dict[_EventKey, _EventGroup]], at: str, key: _EventKey) -> None:
    groups = index.get(at)
    if groups is not None:
        groups.pop(key, None)
        if not groups:
            del index[at]


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


# O(1) work each: they need no RPC work slot (and a crowd of clients subscribing
# at once would otherwise queue for one, a loop turn per subscription).
@rpc_method("subscribe", SubscribeParams, SubscriptionView, websocket_only=True,
            unthrottled=True)
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


@rpc_method("unsubscribe", UnsubscribeParams, bool, websocket_only=True, unthrottled=True)
async def unsubscribe(ctx: SubscriberContext, p: UnsubscribeParams) -> bool:
    """End one subscription of this connection; false if it had no such subscription."""
    sub = ctx.connection.subscriptions.get(p.subscription)
    if sub is None:
        return False
    ctx.hub.remove(sub)
    return True


@rpc_method("unsubscribe_all", Params, int, websocket_only=True, unthrottled=True)
async def unsubscribe_all(ctx: SubscriberContext, _: Params) -> int:
    """End every subscription of this connection; how many there were."""
    return ctx.hub.remove_all(ctx.connection)
