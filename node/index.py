"""The node's commerce index: what the contracts keep no list of, built from their
events.

The commerce contracts answer "what is order 7?" but not "which orders did this buyer
place?" -- they keep no lists (a list in contract storage would make someone pay gas
for every reader's convenience). This index is the node's own, derived from the
committed blocks, and answers the list questions of the RPC API (``listings``,
``orders``, ``group``, ``reviews``, ``events``) and the order timelines of ``order``.

What it keeps (all in the node's LevelDB under the key prefix ``x``; ``storage/``
uses ``b`` for blocks and ``s`` for the state tree):

* every contract event of every successful transaction, by (contract, height, tx,
  event) with its name, tx hash, block time and data; and by (contract, name, ...);
* listings by merchant (genesis listings included);
* orders by buyer and by merchant, all and by current state, with a summary of each
  (listing, parties, group, what was paid, state, when placed and last touched);
* each order's history: OrderPlaced, OrderChanged, Payout and SettlementOffered, and
  the GroupChanged that filled (or failed) its group;
* the orders placed into each group (members, a member who left shows CANCELLED);
* reviews by order, by merchant and by listing (the Reviewed and Replied events);
* registered arbiters (those of genesis: the ones genesis listings name -- the
  catalog keeps no list of arbiters to read them from);
* per-state order counts and listing counts of each merchant.

An order's state is followed exactly: every transition emits OrderChanged except the
one the escrow takes without a loop -- a group filling turns its JOINED members into
PAID orders -- which the index applies to the group's members when it sees the
GroupChanged that fills it (a loop over at most the catalog's ``max_group_size``
members, once per group).

Consistency. Each block is indexed in one write batch together with the index's own
height, so the index is always exactly "the first N blocks". It listens to the event
bus (``BlockCommitted``), which publishes a block after it is written: a crash between
the block's commit and the index's write loses nothing, since :meth:`ChainIndex.catch_up`
(run at start) indexes the blocks between the index's height and the chain's. A block
at or below the index's height is ignored, so indexing is idempotent. The index's
batches are not synced: the chain's next synced commit flushes them, and a lost one is
caught up. A format change (``FORMAT``) rebuilds the index from genesis.

Genesis. Listings and arbiters created at genesis emitted no events; the index reads
them at height 0 from the catalog's views (from the genesis state, rebuilt in memory
if this node no longer keeps it).

Reading. Every list is newest first (ids descending, or (height, tx, event)
descending) and paged: a page of ``limit`` items and the cursor of the next page.
Identifiers are kept as 8-byte keys: contract counters grow by one per transaction
and never approach 2**64.

Cost, on the commit path: 20-30 us per event, 30-70 us per commerce transaction
(measured over LevelDB on the escrow benchmark's mix -- create_listing, place_order,
ship, confirm, post_review -- blocks of 300 calls: about 5% on top of the block's
execute_block + commit). Reads are key-range scans and point reads, no VM work.
"""

from __future__ import annotations

import itertools
import logging
import struct
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import msgpack

from chain.block import Block, Event, Receipt, ReceiptStatus
from chain.system import CATALOG_ADDRESS, ESCROW_ADDRESS, REVIEWS_ADDRESS
from storage.kv import KVStore, WriteBatch
from vm.compiler.abi import encode_value

from .chainview import ChainView, NotKept
from .events import BlockCommitted, EventBus

log = logging.getLogger("agora.index")

#: The layout of the keys below; a different stored format rebuilds the index.
FORMAT = 1
PREFIX = b"x"

_HEIGHT = PREFIX + b"H"        # -> height (8 bytes)
_FORMAT = PREFIX + b"V"        # -> FORMAT (1 byte)
_EVENT = PREFIX + b"E"         # contract + pos -> [name, tx_hash, time_ms, data]
_EVENT_NAME = PREFIX + b"e"    # contract + len(name) + name + pos -> b""
_LISTING = PREFIX + b"l"       # merchant + listing id -> b""
_ORDER = PREFIX + b"O"         # order id -> summary (see OrderEntry)
_BY_BUYER = PREFIX + b"b"      # buyer + order id -> b""
_BY_MERCHANT = PREFIX + b"m"   # merchant + order id -> b""
_BUYER_STATE = PREFIX + b"B"   # buyer + state + order id -> b""
_MERCHANT_STATE = PREFIX + b"M"  # merchant + state + order id -> b""
_HISTORY = PREFIX + b"h"       # order id + pos -> b"" (the escrow's event at pos)
_MEMBER = PREFIX + b"g"        # group id + order id -> member address
_REVIEW = PREFIX + b"r"        # order id -> [Reviewed pos, Replied pos or None]
_REVIEW_MERCHANT = PREFIX + b"Rm"  # merchant + pos -> order id
_REVIEW_LISTING = PREFIX + b"Rl"   # listing id + pos -> order id
_ARBITER = PREFIX + b"a"       # arbiter -> height registered (8 bytes)
_COUNT = PREFIX + b"c"         # kind + subject -> count (8 bytes)

_POS = struct.Struct(">QIH")   # height, tx index, event index: 14 bytes, sorts in order
_ID = struct.Struct(">Q")
ID_MAX = (1 << 64) - 1
_POS_MAX_TX = (1 << 32) - 1
_POS_MAX_EVENT = (1 << 16) - 1

# Order and group states (escrow.agc)
ORDER_STATES = {1: "paid", 2: "shipped", 3: "delivered", 4: "completed", 5: "declined",
                6: "cancelled", 7: "return_requested", 8: "refunded", 9: "disputed",
                10: "resolved", 11: "return_shipped", 12: "joined"}
STATE_NUMBERS = {name: n for n, name in ORDER_STATES.items()}
GROUP_STATES = {1: "open", 2: "filled", 3: "failed"}
_PAID, _JOINED = 1, 12
_GROUP_FILLED, _GROUP_FAILED = 2, 3

Pos = tuple[int, int, int]
C = TypeVar("C")
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Page(Generic[T, C]):
    """A page of a list, and the cursor of the next page (None: this was the last)."""

    items: list[T]
    next: C | None


@dataclass(frozen=True, slots=True)
class IndexedEvent:
    """A contract event where it happened."""

    height: int
    tx_index: int
    event_index: int
    tx_hash: bytes
    time_ms: int
    event: Event

    @property
    def pos(self) -> Pos:
        return (self.height, self.tx_index, self.event_index)


@dataclass(frozen=True, slots=True)
class OrderEntry:
    """What the index knows of an order (from its events): where it was placed, and
    its last transition (``updated``: an OrderChanged, or its group's fill)."""

    order_id: int
    listing: int
    buyer: bytes
    merchant: bytes
    group: int
    state: int
    paid: int
    in_tokens: bool
    placed: Pos
    placed_time_ms: int
    updated: Pos
    updated_time_ms: int


@dataclass(frozen=True, slots=True)
class ReviewEntry:
    order_id: int
    reviewed: IndexedEvent
    replied: IndexedEvent | None


@dataclass(frozen=True, slots=True)
class MemberEntry:
    order_id: int
    member: bytes
    state: int | None


# ---------------------------------------------------------------- encoding


def _id(n: int) -> bytes:
    return _ID.pack(n)


def _pos(height: int, tx_index: int, event_index: int) -> bytes:
    return _POS.pack(height, tx_index, event_index)


def _uint(raw: bytes) -> int:
    return int.from_bytes(raw, "big")


def _name_key(name: str) -> bytes:
    raw = name.encode()
    return bytes((len(raw),)) + raw


def _count_key(kind: bytes, subject: bytes, state: int = 0) -> bytes:
    return _COUNT + kind + subject + bytes((state,))


def _event_fields(abi: dict[str, Any], name: str) -> dict[str, int]:
    for e in abi["events"]:
        if e["name"] == name:
            return {f["name"]: i for i, f in enumerate(e["fields"])}
    raise KeyError(f"no event {name}")


_MISSING = object()


class _Overlay:
    """The keys a block reads back while it is being indexed (order summaries, counts,
    reviews): written at the end into the block's batch, read from here first.

    ``joined`` maps each group to the orders placed into it in this block (their
    member keys are in the batch, which cannot be read back), so a group's fill
    touches only its own members, not every order the block has touched."""

    __slots__ = ("kv", "ops", "joined")

    def __init__(self, kv: KVStore) -> None:
        self.kv = kv
        self.ops: dict[bytes, bytes | None] = {}
        self.joined: dict[int, list[bytes]] = {}

    def get(self, key: bytes) -> bytes | None:
        value = self.ops.get(key, _MISSING)
        if value is _MISSING:
            return self.kv.get(key)
        return value  # type: ignore[return-value]

    def put(self, key: bytes, value: bytes) -> None:
        self.ops[key] = value

    def add(self, key: bytes, n: int) -> None:
        raw = self.get(key)
        count = max(0, (_ID.unpack(raw)[0] if raw else 0) + n)
        self.ops[key] = _ID.pack(count)

    def flush(self, batch: WriteBatch) -> None:
        put, delete = batch.writers()
        for key, value in self.ops.items():
            if value is None:
                delete(key)
            else:
                put(key, value)
        batch.added(len(self.ops))


class ChainIndex:
    """The commerce index over one node's store (see the module docstring).

    ``ChainIndex(kv, chain)``, then :meth:`catch_up` (indexes what the chain has that
    the index has not), then :meth:`attach` to the event bus; :meth:`close` detaches.
    """

    def __init__(self, kv: KVStore, chain: ChainView, *, progress_every_s: float = 5.0) -> None:
        self.kv = kv
        self.chain = chain
        self.progress_every_s = progress_every_s
        self._detach: Callable[[], None] | None = None
        self._closed = False
        self._name_keys: dict[tuple[bytes, str], bytes] = {}
        # The raw writers of the batch of the block being indexed.
        self._put: Callable[[bytes, bytes], None] = _no_batch
        self._delete: Callable[[bytes], None] = _no_batch
        names = {c.name: c for c in chain.contracts.values()}
        #: The commerce contracts are known (their code is ours): their events are
        #: indexed into lists; otherwise only the generic event index is kept.
        self.commerce = all(n in names for n in ("catalog", "escrow", "reviews"))
        self._handlers: dict[tuple[bytes, str], Callable[..., None]] = {}
        if self.commerce:
            catalog, escrow, reviews = (names[n].abi for n in ("catalog", "escrow", "reviews"))
            self._f = {
                "ListingCreated": _event_fields(catalog, "ListingCreated"),
                "ArbiterRegistered": _event_fields(catalog, "ArbiterRegistered"),
                "OrderPlaced": _event_fields(escrow, "OrderPlaced"),
                "OrderChanged": _event_fields(escrow, "OrderChanged"),
                "Payout": _event_fields(escrow, "Payout"),
                "SettlementOffered": _event_fields(escrow, "SettlementOffered"),
                "GroupChanged": _event_fields(escrow, "GroupChanged"),
                "Reviewed": _event_fields(reviews, "Reviewed"),
                "Replied": _event_fields(reviews, "Replied"),
            }
            self._handlers = {
                (CATALOG_ADDRESS, "ListingCreated"): self._listing_created,
                (CATALOG_ADDRESS, "ArbiterRegistered"): self._arbiter_registered,
                (ESCROW_ADDRESS, "OrderPlaced"): self._order_placed,
                (ESCROW_ADDRESS, "OrderChanged"): self._order_changed,
                (ESCROW_ADDRESS, "Payout"): self._payout,
                (ESCROW_ADDRESS, "SettlementOffered"): self._settlement_offered,
                (ESCROW_ADDRESS, "GroupChanged"): self._group_changed,
                (REVIEWS_ADDRESS, "Reviewed"): self._reviewed,
                (REVIEWS_ADDRESS, "Replied"): self._replied,
            }
        stored = kv.get(_FORMAT)
        if kv.get(_HEIGHT) is not None and stored != bytes((FORMAT,)):
            log.warning("the commerce index has format %s, this node writes %d: rebuilding it",
                        stored[0] if stored else "(none)", FORMAT)
            self._wipe()

    # ------------------------------------------------------------ lifecycle

    @property
    def height(self) -> int:
        """The last height indexed (-1: not even genesis yet)."""
        raw = self.kv.get(_HEIGHT)
        return _ID.unpack(raw)[0] if raw is not None else -1

    def catch_up(self) -> int:
        """Index every committed block the index does not have yet; how many."""
        height = self.height
        if height > self.chain.height:
            log.warning("the commerce index is at height %d, beyond the chain's %d: "
                        "rebuilding it", height, self.chain.height)
            self._wipe()
            height = -1
        if height < 0:
            self._index_genesis()
            height = 0
        target = self.chain.height
        behind = target - height
        if behind <= 0:
            return 0
        if behind >= 1000:
            log.info("commerce index: catching up %d blocks (%d..%d)", behind, height + 1,
                     target)
        started = last_report = time.monotonic()
        for h in range(height + 1, target + 1):
            self.index_block(self.chain.block(h), self.chain.receipts(h))
            now = time.monotonic()
            if now - last_report >= self.progress_every_s:
                last_report = now
                done = h - height
                log.info("commerce index: %d/%d blocks (height %d), %.0f blocks/s", done,
                         behind, h, done / (now - started))
        if behind >= 1000:
            log.info("commerce index: caught up to height %d in %.1f s", target,
                     time.monotonic() - started)
        return behind

    def attach(self, bus: EventBus) -> None:
        """Index each block the bus publishes as committed."""
        if self._detach is None:
            self._detach = bus.listen(BlockCommitted, self._committed)

    def close(self) -> None:
        self._closed = True
        if self._detach is not None:
            self._detach()
            self._detach = None

    def _committed(self, event: BlockCommitted) -> None:
        if self._closed:
            return
        height = event.block.height
        indexed = self.height
        if height <= indexed:
            return  # already indexed: idempotent
        if height > indexed + 1:
            self.catch_up()  # the block is written already, so this includes it
            return
        self.index_block(event.block, event.receipts)

    def _wipe(self) -> None:
        """Delete the whole index, 10,000 keys to a batch."""
        while True:
            it = self.kv.iterate(PREFIX)
            try:
                keys = [k for k, _ in itertools.islice(it, 10_000)]
            finally:
                it.close()  # type: ignore[attr-defined]
            if not keys:
                return
            with self.kv.batch() as b:
                for key in keys:
                    b.delete(key)

    # ------------------------------------------------------------ writing

    def index_block(self, block: Block, receipts: list[Receipt]) -> None:
        """Index ``block`` (the next height) in one batch with the new height."""
        height = block.height
        if height != self.height + 1:
            raise ValueError(f"the index is at height {self.height}; block {height} is not "
                             "the next")
        overlay = _Overlay(self.kv)
        with self.kv.batch() as batch:
            self._put, self._delete = batch.writers()
            put = self._put
            written = 0
            try:
                written = self._events(block, receipts, overlay)
            finally:
                self._put = self._delete = _no_batch
            overlay.flush(batch)
            put(_HEIGHT, _id(height))
            put(_FORMAT, bytes((FORMAT,)))
            batch.added(written + 2)
        if len(self._name_keys) > 10_000:  # names are the contracts' own; bound it anyway
            self._name_keys.clear()

    def _events(self, block: Block, receipts: list[Receipt], overlay: _Overlay) -> int:
        """Write the block's events into the batch; how many keys."""
        height = block.height
        time_ms = block.header.time_ms
        handlers = self._handlers
        name_keys = self._name_keys
        packb, unpackb, pack_pos = msgpack.packb, msgpack.unpackb, _POS.pack
        put = self._put
        written = 0
        for tx_index, receipt in enumerate(receipts):
            if receipt.status != ReceiptStatus.OK or not receipt.events:
                continue
            tx_hash = block.txs[tx_index].hash
            for event_index, event in enumerate(receipt.events):
                contract, name = event.contract, event.name
                pos = pack_pos(height, tx_index, event_index)
                put(_EVENT + contract + pos, packb((name, tx_hash, time_ms, event.data)))
                by_name = name_keys.get((contract, name))
                if by_name is None:
                    by_name = name_keys[(contract, name)] = \
                        _EVENT_NAME + contract + _name_key(name)
                put(by_name + pos, b"")
                written += 2
                handler = handlers.get((contract, name))
                if handler is not None:
                    try:
                        handler(overlay, unpackb(event.data), pos, time_ms)
                    except (ValueError, TypeError, IndexError, KeyError,
                            msgpack.UnpackException, struct.error):
                        log.warning("commerce index: cannot read %s event at %d:%d:%d",
                                    name, height, tx_index, event_index)
        return written

    def _index_genesis(self) -> None:
        """Height 0: the listings (and the arbiters they name) that genesis holds."""
        with self.kv.batch() as batch:
            if self.commerce:
                overlay = _Overlay(self.kv)
                for listing_id, listing in self._genesis_listings():
                    merchant = listing["merchant"]
                    batch.put(_LISTING + merchant + _id(listing_id), b"")
                    overlay.add(_count_key(b"l", merchant), 1)
                    for arbiter in (listing["arbiter_1"], listing["arbiter_2"],
                                    listing["arbiter_3"]):
                        if arbiter != bytes(20):
                            batch.put(_ARBITER + arbiter, _id(0))
                overlay.flush(batch)
            batch.put(_HEIGHT, _id(0))
            batch.put(_FORMAT, bytes((FORMAT,)))

    def _genesis_listings(self) -> Iterator[tuple[int, dict[str, Any]]]:
        chain = self.chain
        try:
            chain.state_root(0)
        except NotKept:
            # The genesis state is pruned here: rebuild it in memory to read it.
            from storage.kv import MemoryKV
            from vm.executor import Executor
            chain = ChainView(Executor(MemoryKV(), self.chain.genesis))
        listing_id = 1
        while listing_id <= ID_MAX:
            listing = chain.view("catalog", "listing", encode_value("uint", listing_id),
                                 height=0)
            if not listing or listing["merchant"] == bytes(20):
                return
            yield listing_id, listing
            listing_id += 1

    # The handlers: (overlay, the event's fields as raw values, pos, block time). Keys
    # nobody reads back while the block is indexed go straight into the batch
    # (self._put / self._delete, the batch's raw writers); the others through the
    # overlay.

    def _listing_created(self, o: _Overlay, v: list[bytes], pos: bytes, time_ms: int) -> None:
        f = self._f["ListingCreated"]
        listing_id = _uint(v[f["listing_id"]])
        merchant = v[f["merchant"]]
        if listing_id > ID_MAX:
            return
        self._put(_LISTING + merchant + _id(listing_id), b"")
        o.add(_count_key(b"l", merchant), 1)

    def _arbiter_registered(self, o: _Overlay, v: list[bytes], pos: bytes, time_ms: int) -> None:
        self._put(_ARBITER + v[self._f["ArbiterRegistered"]["arbiter"]], pos[:8])

    def _order_placed(self, o: _Overlay, v: list[bytes], pos: bytes, time_ms: int) -> None:
        f = self._f["OrderPlaced"]
        order_id = _uint(v[f["order_id"]])
        listing = _uint(v[f["listing"]])
        group = _uint(v[f["group"]])
        if max(order_id, listing, group) > ID_MAX:
            return
        buyer, merchant = v[f["buyer"]], v[f["merchant"]]
        state = _JOINED if group else _PAID
        oid = _id(order_id)
        o.put(_ORDER + oid, msgpack.packb((
            listing, buyer, merchant, group, state, v[f["paid"]], _uint(v[f["in_tokens"]]) != 0,
            pos, time_ms, pos, time_ms)))
        put = self._put
        put(_BY_BUYER + buyer + oid, b"")
        put(_BY_MERCHANT + merchant + oid, b"")
        put(_BUYER_STATE + buyer + bytes((state,)) + oid, b"")
        put(_MERCHANT_STATE + merchant + bytes((state,)) + oid, b"")
        put(_HISTORY + oid + pos, b"")
        o.add(_count_key(b"m", merchant, state), 1)
        if group:
            put(_MEMBER + _id(group) + oid, buyer)
            o.joined.setdefault(group, []).append(oid)

    def _order_changed(self, o: _Overlay, v: list[bytes], pos: bytes, time_ms: int) -> None:
        f = self._f["OrderChanged"]
        self._touch(o, _uint(v[f["order_id"]]), pos, time_ms, _uint(v[f["state"]]))

    def _payout(self, o: _Overlay, v: list[bytes], pos: bytes, time_ms: int) -> None:
        self._touch(o, _uint(v[self._f["Payout"]["order_id"]]), pos, time_ms, None)

    def _settlement_offered(self, o: _Overlay, v: list[bytes], pos: bytes, time_ms: int) -> None:
        order_id = _uint(v[self._f["SettlementOffered"]["order_id"]])
        self._touch(o, order_id, pos, time_ms, None)

    def _touch(self, o: _Overlay, order_id: int, pos: bytes, time_ms: int,
               state: int | None) -> None:
        """Add the event at ``pos`` to the order's history; with a ``state`` (a
        transition), move the order to it."""
        if order_id > ID_MAX:
            return
        oid = _id(order_id)
        put = self._put
        put(_HISTORY + oid + pos, b"")
        if state is None:
            return
        raw = o.get(_ORDER + oid)
        if raw is None:
            return  # an order the index never saw placed (cannot happen on one chain)
        entry = msgpack.unpackb(raw)
        old = entry[4]
        if state != old and 0 < state < 256:
            buyer, merchant = entry[1], entry[2]
            delete = self._delete
            delete(_BUYER_STATE + buyer + bytes((old,)) + oid)
            delete(_MERCHANT_STATE + merchant + bytes((old,)) + oid)
            put(_BUYER_STATE + buyer + bytes((state,)) + oid, b"")
            put(_MERCHANT_STATE + merchant + bytes((state,)) + oid, b"")
            o.add(_count_key(b"m", merchant, old), -1)
            o.add(_count_key(b"m", merchant, state), 1)
            entry[4] = state
        entry[9], entry[10] = pos, time_ms
        o.put(_ORDER + oid, msgpack.packb(entry))

    def _group_changed(self, o: _Overlay, v: list[bytes], pos: bytes, time_ms: int) -> None:
        f = self._f["GroupChanged"]
        state = _uint(v[f["state"]])
        group = _uint(v[f["group_id"]])
        if state not in (_GROUP_FILLED, _GROUP_FAILED) or group > ID_MAX:
            return
        # Every member still JOINED: PAID now (filled), or still JOINED until a claim
        # refunds it (failed). Either way the group's end is in its history. Members
        # who joined in this very block have their member key in the batch, not yet in
        # the store: the overlay lists them by group (o.joined). So the work is the
        # group's own members (at most the catalog's max_group_size), whatever else the
        # block holds.
        prefix = _MEMBER + _id(group)
        members = {k[len(prefix):] for k, _ in self.kv.iterate(prefix)}
        members.update(o.joined.get(group, ()))
        for oid in sorted(members):
            raw = o.get(_ORDER + oid)
            if raw is None or msgpack.unpackb(raw)[4] != _JOINED:
                continue
            self._touch(o, _ID.unpack(oid)[0], pos, time_ms,
                        _PAID if state == _GROUP_FILLED else None)

    def _reviewed(self, o: _Overlay, v: list[bytes], pos: bytes, time_ms: int) -> None:
        f = self._f["Reviewed"]
        order_id, listing = _uint(v[f["order_id"]]), _uint(v[f["listing"]])
        if max(order_id, listing) > ID_MAX:
            return
        oid = _id(order_id)
        merchant = v[f["merchant"]]
        o.put(_REVIEW + oid, msgpack.packb((pos, None)))
        self._put(_REVIEW_MERCHANT + merchant + pos, oid)
        self._put(_REVIEW_LISTING + _id(listing) + pos, oid)

    def _replied(self, o: _Overlay, v: list[bytes], pos: bytes, time_ms: int) -> None:
        order_id = _uint(v[self._f["Replied"]["order_id"]])
        if order_id > ID_MAX:
            return
        raw = o.get(_REVIEW + _id(order_id))
        if raw is not None:
            o.put(_REVIEW + _id(order_id), msgpack.packb((msgpack.unpackb(raw)[0], pos)))

    # ------------------------------------------------------------ reading

    def event_at(self, contract: bytes, pos: Pos) -> IndexedEvent | None:
        raw = self.kv.get(_EVENT + contract + _pos(*pos))
        if raw is None:
            return None
        name, tx_hash, time_ms, data = msgpack.unpackb(raw)
        return IndexedEvent(pos[0], pos[1], pos[2], tx_hash, time_ms,
                            Event(contract, name, data))

    def events(self, contract: bytes, name: str | None, from_height: int, to_height: int,
               limit: int, before: Pos | None = None) -> Page[IndexedEvent, Pos]:
        """Events of ``contract`` (named ``name``, or all) in heights
        ``from_height..to_height``, newest first, after the cursor ``before``."""
        if name is not None and len(name.encode()) > 64:
            return Page([], None)  # longer than any event name (chain.block.Event)
        prefix = _EVENT + contract if name is None else \
            _EVENT_NAME + contract + _name_key(name)
        top = (to_height, _POS_MAX_TX, _POS_MAX_EVENT)
        if before is not None and before <= top:
            top = before
        items: list[IndexedEvent] = []
        n = len(prefix)
        for key, value in self.kv.iterate(prefix, start=prefix + _pos(*top), reverse=True):
            pos = _POS.unpack(key[n:n + 14])
            if pos == before:
                continue
            if pos[0] < from_height:
                break
            if len(items) == limit:
                return Page(items, items[-1].pos)
            if name is None:
                event_name, tx_hash, time_ms, data = msgpack.unpackb(value)
                items.append(IndexedEvent(pos[0], pos[1], pos[2], tx_hash, time_ms,
                                          Event(contract, event_name, data)))
            else:
                found = self.event_at(contract, pos)
                if found is not None:
                    items.append(found)
        return Page(items, None)

    def listings(self, merchant: bytes, limit: int,
                 before: int | None = None) -> Page[int, int]:
        """A merchant's listing ids, newest first."""
        return self._ids(_LISTING + merchant, limit, before)

    def orders(self, *, buyer: bytes | None = None, merchant: bytes | None = None,
               state: int | None = None, limit: int,
               before: int | None = None) -> Page[OrderEntry, int]:
        """A buyer's or a merchant's orders (in ``state``, or all), newest first."""
        if (buyer is None) == (merchant is None):
            raise ValueError("orders of a buyer or of a merchant")
        party = buyer if buyer is not None else merchant
        assert party is not None
        if state is None:
            prefix = (_BY_BUYER if buyer is not None else _BY_MERCHANT) + party
        else:
            prefix = (_BUYER_STATE if buyer is not None else _MERCHANT_STATE) + party \
                + bytes((state,))
        ids = self._ids(prefix, limit, before)
        entries = [self.order(i) for i in ids.items]
        return Page([e for e in entries if e is not None], ids.next)

    def order(self, order_id: int) -> OrderEntry | None:
        if not 0 <= order_id <= ID_MAX:
            return None
        raw = self.kv.get(_ORDER + _id(order_id))
        if raw is None:
            return None
        (listing, buyer, merchant, group, state, paid, in_tokens, placed, placed_time,
         updated, updated_time) = msgpack.unpackb(raw)
        return OrderEntry(order_id, listing, buyer, merchant, group, state, _uint(paid),
                          in_tokens, _POS.unpack(placed), placed_time, _POS.unpack(updated),
                          updated_time)

    def history(self, order_id: int, limit: int,
                after: Pos | None = None) -> Page[IndexedEvent, Pos]:
        """An order's history, oldest first (a timeline), after the cursor ``after``."""
        if not 0 <= order_id <= ID_MAX:
            return Page([], None)
        prefix = _HISTORY + _id(order_id)
        n = len(prefix)
        start = prefix + _pos(*after) if after is not None else None
        items: list[IndexedEvent] = []
        for key, _ in self.kv.iterate(prefix, start=start):
            pos = _POS.unpack(key[n:])
            if pos == after:
                continue
            if len(items) == limit:
                return Page(items, items[-1].pos)
            found = self.event_at(ESCROW_ADDRESS, pos)
            if found is not None:
                items.append(found)
        return Page(items, None)

    def members(self, group_id: int, limit: int,
                before: int | None = None) -> Page[MemberEntry, int]:
        """The orders placed into a group, newest first."""
        if not 0 <= group_id <= ID_MAX:
            return Page([], None)
        prefix = _MEMBER + _id(group_id)
        items: list[MemberEntry] = []
        for order_id, member in self._id_items(prefix, before):
            if len(items) == limit:
                return Page(items, items[-1].order_id)
            entry = self.order(order_id)
            items.append(MemberEntry(order_id, member, entry.state if entry else None))
        return Page(items, None)

    def review(self, order_id: int) -> ReviewEntry | None:
        if not 0 <= order_id <= ID_MAX:
            return None
        raw = self.kv.get(_REVIEW + _id(order_id))
        if raw is None:
            return None
        reviewed, replied = msgpack.unpackb(raw)
        first = self.event_at(REVIEWS_ADDRESS, _POS.unpack(reviewed))
        if first is None:
            return None
        reply = self.event_at(REVIEWS_ADDRESS, _POS.unpack(replied)) if replied else None
        return ReviewEntry(order_id, first, reply)

    def reviews(self, *, merchant: bytes | None = None, listing: int | None = None,
                limit: int, before: Pos | None = None) -> Page[ReviewEntry, Pos]:
        """Reviews of a merchant or of a listing, newest first."""
        if (merchant is None) == (listing is None):
            raise ValueError("reviews of a merchant or of a listing")
        if listing is not None and not 0 <= listing <= ID_MAX:
            return Page([], None)
        prefix = _REVIEW_MERCHANT + merchant if merchant is not None else \
            _REVIEW_LISTING + _id(listing)  # type: ignore[arg-type]
        n = len(prefix)
        start = prefix + _pos(*before) if before is not None else None
        items: list[ReviewEntry] = []
        last: Pos | None = None
        for key, value in self.kv.iterate(prefix, start=start, reverse=True):
            pos = _POS.unpack(key[n:])
            if pos == before:
                continue
            if len(items) == limit:
                return Page(items, last)
            found = self.review(_ID.unpack(value)[0])
            if found is not None:
                items.append(found)
                last = pos
        return Page(items, None)

    def arbiters(self, limit: int, before: bytes | None = None) -> Page[tuple[bytes, int],
                                                                         bytes]:
        """Registered arbiters (address, height registered), by address descending."""
        start = _ARBITER + before if before is not None else None
        items: list[tuple[bytes, int]] = []
        for key, value in self.kv.iterate(_ARBITER, start=start, reverse=True):
            address = key[len(_ARBITER):]
            if address == before:
                continue
            if len(items) == limit:
                return Page(items, items[-1][0])
            items.append((address, _ID.unpack(value)[0]))
        return Page(items, None)

    def order_counts(self, merchant: bytes) -> dict[int, int]:
        """How many of a merchant's orders are in each state now."""
        prefix = _COUNT + b"m" + merchant
        return {key[-1]: _ID.unpack(value)[0]
                for key, value in self.kv.iterate(prefix)
                if len(key) == len(prefix) + 1 and _ID.unpack(value)[0] > 0}

    def listing_count(self, merchant: bytes) -> int:
        raw = self.kv.get(_count_key(b"l", merchant))
        return _ID.unpack(raw)[0] if raw else 0

    def _ids(self, prefix: bytes, limit: int, before: int | None) -> Page[int, int]:
        items: list[int] = []
        for order_id, _ in self._id_items(prefix, before):
            if len(items) == limit:
                return Page(items, items[-1])
            items.append(order_id)
        return Page(items, None)

    def _id_items(self, prefix: bytes, before: int | None) -> Iterator[tuple[int, bytes]]:
        """(id, value) of the keys ``prefix + id``, ids descending, below ``before``."""
        if before is not None:
            if before <= 0:
                return
            start = prefix + _id(min(before - 1, ID_MAX))
        else:
            start = None
        n = len(prefix)
        for key, value in self.kv.iterate(prefix, start=start, reverse=True):
            if len(key) == n + 8:
                yield _ID.unpack(key[n:])[0], value


def _no_batch(*_: object) -> None:
    raise RuntimeError("the index writes only while it indexes a block")
