"""Commerce: listings, orders, group deals, merchants, arbiters, reviews and contract
events, read from the commerce contracts' views and the node's index (node/index.py).

=========  ==================================================================
method     answers with
=========  ==================================================================
listing    a listing (catalog ``listing``), its outcomes (escrow
           ``listing_record``) and its reviews' reputation (reviews
           ``listing_reviews``)
listings   a merchant's listings, newest first, each as the catalog holds it
order      an order (escrow ``order``), the terms it agreed to, and its
           history of transitions from the index, oldest first
orders     a buyer's or a merchant's orders (optionally in one state), newest
           first, as the index summarises them
group      a group deal (escrow ``group``) and the orders placed into it
merchant   a merchant's outcomes (escrow ``merchant_record``), reputation
           (reviews ``merchant_reviews``) and counts from the index
arbiter    an arbiter's registration (catalog ``arbiter``) and its cases
           (escrow ``arbiter_record``)
reviews    the reviews of a merchant, a listing or an order, newest first
events     contract events by contract, name and height range, newest first
=========  ==================================================================

Conventions: contract records are decoded by the ABI into typed models whose uints are
decimal strings, addresses ``agora1...`` and bytes hex (``chainview.abi_to_json``),
with the raw return data beside; identifiers (listing, order, group ids) are JSON
integers. A listing, order or group that does not exist is -32001 Not found. Paged
methods answer ``items`` and ``next``; pass ``next`` as ``before`` for the next page
(a cursor is opaque). Pages hold at most the node's ``rpc.max_page`` items, ``events``
searches at most ``rpc.max_event_range`` heights.

Cost: the lists are read from the index, and ``listings`` reads each listing of its
page straight from the state (a listing is one state key: the catalog's record, decoded
as its ``listing`` view would return it, no VM run): a page of 100 costs a few
milliseconds, most of it building the answer's JSON.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, StrictInt, StrictStr, create_model, model_validator

from chain.address import address_to_text
from chain.block import ReceiptStatus
from vm.compiler.abi import AbiError, decode_value, encode_value
from vm.compiler.types import name_key
from vm.world import RECORD, STORAGE, decode_record

from ...chainview import KnownContract, NotFound, abi_to_json
from ...index import (
    GROUP_STATES,
    ORDER_STATES,
    STATE_NUMBERS,
    ChainIndex,
    IndexedEvent,
    ReviewEntry,
)
from ..context import RPCContext
from ..protocol import Params, cannot_answer, not_found, rpc_method
from ..views import Address, Amount, EventView, Hex, View
from .common import AddressText, Limit, answering, page_size

# ---------------------------------------------------------------- parameters

_ID_MAX = (1 << 64) - 1
#: A listing, order or group id (they count from 1).
Id = Annotated[StrictInt, Field(ge=1, le=_ID_MAX)]
#: The ``next`` of a list ordered by id.
IdCursor = Annotated[StrictStr, Field(pattern=r"^[1-9][0-9]{0,19}$", description=(
    "The `next` of the previous page."))]
#: The ``next`` of a list ordered by where its items happened (height:tx:event).
PosCursor = Annotated[StrictStr, Field(pattern=r"^[0-9]{1,19}:[0-9]{1,10}:[0-9]{1,5}$",
                                       description="The `next` of the previous page.")]
StateName = Literal["paid", "shipped", "delivered", "completed", "declined", "cancelled",
                    "return_requested", "refunded", "disputed", "resolved", "return_shipped",
                    "joined"]
assert set(StateName.__args__) == set(STATE_NUMBERS)  # type: ignore[attr-defined]


def _id_cursor(text: str | None, param: str = "before") -> int | None:
    if text is None:
        return None
    value = int(text)
    if value > _ID_MAX:
        raise cannot_answer(f"{param}: not a cursor of this list")
    return value


def _pos_cursor(text: str | None, param: str = "before") -> tuple[int, int, int] | None:
    """A height:tx:event cursor; ``param`` names the parameter it came in."""
    if text is None:
        return None
    h, t, e = (int(x) for x in text.split(":"))
    if h >= 1 << 63 or t >= 1 << 32 or e >= 1 << 16:
        raise cannot_answer(f"{param}: not a cursor of this list")
    return (h, t, e)


def _pos_text(pos: tuple[int, int, int] | None) -> str | None:
    return None if pos is None else f"{pos[0]}:{pos[1]}:{pos[2]}"


# ---------------------------------------------------------------- result models

_JSON_TYPES: dict[str, Any] = {"uint": Amount, "int": str, "Address": Address, "bytes": Hex,
                               "bool": bool, "str": str}


def _abi_model(name: str, doc: str, fields: list[dict[str, str]],
               leave_out: tuple[str, ...] = ()) -> type[View]:
    """A view of an ABI record's (or event's) fields, typed by the API's conventions:
    the same fields as the contract, so the OpenRPC schema follows the contracts."""
    model: type[View] = create_model(  # type: ignore[call-overload]
        name, __base__=View, __doc__=doc,
        **{f["name"]: (_JSON_TYPES[f["type"]], ...) for f in fields
           if f["name"] not in leave_out})
    return model


def _record_fields(contract: str, record: str) -> list[dict[str, str]]:
    from vm.contracts import compiled
    return compiled(contract).abi["records"][record]


def _event_fields(contract: str, event: str) -> list[dict[str, str]]:
    from vm.contracts import compiled
    return next(e["fields"] for e in compiled(contract).abi["events"] if e["name"] == event)


ListingRecord = _abi_model(
    "ListingRecord", "A listing as the catalog holds it now (catalog.agc Listing).",
    _record_fields("catalog", "Listing"))
ArbiterRecord = _abi_model(
    "ArbiterRecord", "An arbiter's registration (catalog.agc Arbiter).",
    _record_fields("catalog", "Arbiter"))
OrderRecord = _abi_model(
    "OrderRecord", "An order as the escrow holds it now (escrow.agc Order); a member's "
    "order of a filled group reads as paid.", _record_fields("escrow", "Order"))
OrderTerms = _abi_model(
    "OrderTerms", "What the order agreed to when it was placed: the fields of its "
    "OrderPlaced event, copied into the order and never changed since.",
    _event_fields("escrow", "OrderPlaced"), leave_out=("order_id",))
GroupRecord = _abi_model(
    "GroupRecord", "A group deal (escrow.agc Group).", _record_fields("escrow", "Group"))
StatsRecord = _abi_model(
    "StatsRecord", "The outcomes of a merchant's or a listing's orders (escrow.agc Stats).",
    _record_fields("escrow", "Stats"))
CasesRecord = _abi_model(
    "CasesRecord", "An arbiter's record of cases (escrow.agc Cases).",
    _record_fields("escrow", "Cases"))
ReputationRecord = _abi_model(
    "ReputationRecord", "Reviews counted (reviews.agc Reputation).",
    _record_fields("reviews", "Reputation"))


class IndexedEventView(EventView):
    """A contract event and where it happened (the shape of an ``events`` subscription's
    notification)."""

    height: int
    tx_index: int
    event_index: int
    tx_hash: Hex
    time_ms: int = Field(description="The block's time.")

    @classmethod
    def from_index(cls, e: IndexedEvent, ctx: RPCContext) -> IndexedEventView:
        base = EventView.of(e.event, ctx.chain)
        return cls(height=e.height, tx_index=e.tx_index, event_index=e.event_index,
                   tx_hash=e.tx_hash.hex(), time_ms=e.time_ms, **dict(base))


class ListingView(View):
    listing_id: int
    listing: ListingRecord  # type: ignore[valid-type]
    stats: StatsRecord = Field(description="Its orders' outcomes (escrow listing_record).")  # type: ignore[valid-type]
    reputation: ReputationRecord = Field(description="Its reviews (reviews listing_reviews).")  # type: ignore[valid-type]
    height: int = Field(description="The state read.")
    raw: Hex = Field(description="The catalog's return data of listing().")


class ListingItemView(View):
    listing_id: int
    listing: ListingRecord  # type: ignore[valid-type]


class ListingsView(View):
    merchant: Address
    total: int = Field(description="How many listings the merchant has published.")
    items: list[ListingItemView]
    next: str | None = Field(None, description="Pass as `before` for the next page.")
    height: int


class OrderView(View):
    order_id: int
    state: str = Field(description="The state's name: paid, shipped, ... (escrow.agc).")
    order: OrderRecord  # type: ignore[valid-type]
    terms: OrderTerms  # type: ignore[valid-type]
    history: list[IndexedEventView] = Field(description=(
        "Its transitions, oldest first: OrderPlaced, OrderChanged, Payout, "
        "SettlementOffered, and the GroupChanged that filled or failed its group."))
    history_next: str | None = Field(None, description=(
        "More history: pass as `history_after`."))
    height: int
    raw: Hex = Field(description="The escrow's return data of order().")


class OrderSummaryView(View):
    """An order as the index follows it (call ``order`` for all of it)."""

    order_id: int
    listing_id: int
    buyer: Address
    merchant: Address
    group_id: int = Field(description="0: not a group order.")
    state: str
    paid: Amount
    in_tokens: bool
    placed_height: int
    placed_time_ms: int
    updated_height: int = Field(description="Its last transition.")
    updated_time_ms: int


class OrdersView(View):
    buyer: Address | None
    merchant: Address | None
    state: str | None
    items: list[OrderSummaryView]
    next: str | None = Field(None, description="Pass as `before` for the next page.")
    height: int


class MemberView(View):
    order_id: int
    buyer: Address
    state: str | None = Field(description="Its order's state (cancelled: it left).")


class GroupView(View):
    group_id: int
    state: str = Field(description="open, filled or failed")
    group: GroupRecord  # type: ignore[valid-type]
    members: list[MemberView] = Field(description="The orders placed into the group, newest "
                                                   "first.")
    next: str | None = Field(None, description="More members: pass as `before`.")
    height: int
    raw: Hex


class MerchantView(View):
    merchant: Address
    stats: StatsRecord  # type: ignore[valid-type]
    reputation: ReputationRecord  # type: ignore[valid-type]
    average_rating: float | None = Field(description="rating_sum / reviews, 2 decimals.")
    listings: int
    orders: int
    orders_by_state: dict[str, int] = Field(description="Its orders now, by state (only "
                                                        "states with some).")
    height: int


class ArbiterView(View):
    arbiter: Address
    registration: ArbiterRecord  # type: ignore[valid-type]
    cases: CasesRecord  # type: ignore[valid-type]
    height: int


class ReplyView(View):
    text: str
    height: int
    tx_hash: Hex
    time_ms: int


class ReviewView(View):
    order_id: int
    listing_id: int
    merchant: Address
    buyer: Address
    rating: int
    text: str
    height: int
    tx_hash: Hex
    time_ms: int
    reply: ReplyView | None


class ReviewsView(View):
    items: list[ReviewView]
    next: str | None = Field(None, description="Pass as `before` for the next page.")
    height: int


class EventsView(View):
    contract: Address
    contract_name: str | None
    name: str | None
    from_height: int = Field(description="The first height searched, as asked (or the "
                                         "default).")
    to_height: int = Field(description=(
        "The last height searched: the one asked (or the default), at most the latest. "
        "Below from_height when the chain has not reached from_height yet: nothing was "
        "searched, the page is empty."))
    items: list[IndexedEventView]
    next: str | None = Field(None, description="Pass as `before` for the next page.")
    height: int = Field(description="The latest height the node has indexed.")


# ---------------------------------------------------------------- reading helpers


def _index(ctx: RPCContext) -> ChainIndex:
    if ctx.index is None:
        raise cannot_answer("this node keeps no commerce index")
    return ctx.index


def _read(ctx: RPCContext, contract: str, method: str, *args: bytes) -> tuple[Any, bytes, int]:
    """A commerce view: (decoded value, return data, height read)."""
    with answering():
        known: KnownContract = ctx.chain.contract(contract)
        out = ctx.chain.call(known.address, method, list(args))
    if out.status != ReceiptStatus.OK:
        raise cannot_answer(f"the {contract} contract's {method} view failed: "
                            f"{out.reason or ReceiptStatus.NAMES.get(out.status)}")
    spec = known.method(method)
    assert spec is not None and spec["output"] is not None
    return decode_value(spec["output"], out.data, known.abi["records"]), out.data, out.height


def _json(contract: str, record: str, value: Any) -> dict[str, Any]:
    from vm.contracts import compiled
    records = compiled(contract).abi["records"]
    return abi_to_json(record, value, records)


def _uint(n: int) -> bytes:
    return encode_value("uint", n)


_NOBODY = bytes(20)

_NOBODY_TEXT = address_to_text(_NOBODY)


def _uint_json(stored: bytes) -> str:
    if len(stored) > 32:
        raise AbiError(f"uint of {len(stored)} bytes")
    return str(int.from_bytes(stored, "big"))


def _address_json(stored: bytes) -> str:
    # what the view returns for it: a missing address reads as 20 zero bytes
    if not stored or stored == _NOBODY:
        return _NOBODY_TEXT
    return abi_to_json("Address", stored)


def _stored_json(type_name: str) -> Any:
    """A function: a record field's stored bytes -> the JSON of the value a view that
    returns the record gives for it (``decode_value`` then ``abi_to_json``, the common
    types without the generic dispatch)."""
    fast = {"uint": _uint_json, "Address": _address_json, "bytes": bytes.hex,
            "str": lambda b: b.decode("utf-8", "replace")}
    if type_name in fast:
        return fast[type_name]
    return lambda b: abi_to_json(type_name, decode_value(type_name, b))


#: A catalog listing's fields: (the field's key in its record, its name, a function of
#: its stored bytes -> its JSON).
_LISTING_FIELDS = [(name_key(f["name"]), f["name"], _stored_json(f["type"]))
                   for f in _record_fields("catalog", "Listing")]
#: The storage key of the catalog's ``listings`` map (``listings: Map[uint, Listing]``).
_LISTINGS_VAR = name_key("listings")


def _stored_listings(ctx: RPCContext, ids: list[int], height: int) -> list[dict[str, Any]]:
    """The catalog's listings ``ids`` at ``height`` as the API shows the catalog's
    ``listing`` view of each -- read straight from the state, without running the view.

    A contract's record is one state key (vm/world.py): ``s`` + the contract + 0x00 +
    the record's storage key, which for ``self.listings[id]`` is the compiler's
    (vm/compiler/codegen.py ``_storage_key``): the variable's length-prefixed name, then
    the id as 32 bytes. Its value holds the fields set, each under its length-prefixed
    name, as the bytes the contract stored (integers big-endian, empty ones left out);
    the view reads each (a missing address as 20 zero bytes) and returns them packed,
    so the stored bytes, decoded by the field's ABI type, are the view's value. (The
    tests compare the two, field for field.)
    """
    if not ids:
        return []
    with answering():
        catalog = ctx.chain.contract("catalog").address
        prefix = STORAGE + catalog + RECORD + _LISTINGS_VAR
        raws = [ctx.chain.state_value(prefix + listing_id.to_bytes(32, "big"), height)
                for listing_id in ids]
    out = []
    for listing_id, raw in zip(ids, raws, strict=True):
        problem, fields = decode_record(raw, strict=False) if raw is not None else ("", {})
        try:
            value = {name: to_json(fields.get(key, b"")) for key, name, to_json in _LISTING_FIELDS}
        except (AbiError, ValueError) as exc:
            problem = str(exc)
        if problem:
            raise cannot_answer(f"listing {listing_id} cannot be read: {problem}")
        out.append(value)
    return out


# ---------------------------------------------------------------- listings


class ListingParams(Params):
    listing_id: Id


@rpc_method("listing", ListingParams, ListingView)
async def listing(ctx: RPCContext, p: ListingParams) -> ListingView:
    """A listing as the catalog holds it now, with its orders' outcomes and its
    reviews' reputation."""
    value, raw, height = _read(ctx, "catalog", "listing", _uint(p.listing_id))
    if value["merchant"] == _NOBODY:
        raise not_found(f"no listing {p.listing_id}")
    stats, _, _ = _read(ctx, "escrow", "listing_record", _uint(p.listing_id))
    reputation, _, _ = _read(ctx, "reviews", "listing_reviews", _uint(p.listing_id))
    return ListingView(listing_id=p.listing_id, listing=_json("catalog", "Listing", value),
                       stats=_json("escrow", "Stats", stats),
                       reputation=_json("reviews", "Reputation", reputation),
                       height=height, raw=raw.hex())


class ListingsParams(Params):
    merchant: AddressText
    limit: Limit | None = None
    before: IdCursor | None = None


@rpc_method("listings", ListingsParams, ListingsView)
async def listings(ctx: RPCContext, p: ListingsParams) -> ListingsView:
    """A merchant's listings, newest first, a page at a time, each as the catalog holds
    it now (all read at one height, the answer's ``height``).

    The ids come from the index; each listing is read from the state directly (its
    record, decoded as the catalog's ``listing`` view would return it, with no VM run),
    so a page costs a key read per listing."""
    merchant: bytes = p.merchant  # type: ignore[assignment]
    index = _index(ctx)
    page = index.listings(merchant, page_size(p.limit, ctx.limits.max_page),
                          _id_cursor(p.before))
    height = ctx.chain.height
    items = [ListingItemView(listing_id=listing_id, listing=value)
             for listing_id, value in zip(page.items, _stored_listings(ctx, page.items, height),
                                          strict=True)]
    return ListingsView(merchant=address_to_text(merchant), total=index.listing_count(merchant),
                        items=items, next=None if page.next is None else str(page.next),
                        height=height)


# ---------------------------------------------------------------- orders


class OrderParams(Params):
    order_id: Id
    history_limit: Limit | None = Field(None, description=(
        "At most this many history entries (default and most: the node's page size)."))
    history_after: PosCursor | None = Field(None, description=(
        "The `history_next` of a previous answer."))


_TERMS = tuple(OrderTerms.model_fields)


@rpc_method("order", OrderParams, OrderView)
async def order(ctx: RPCContext, p: OrderParams) -> OrderView:
    """An order as the escrow holds it now, the terms it was placed with, and its
    history of transitions (oldest first, with height, tx hash and time)."""
    value, raw, height = _read(ctx, "escrow", "order", _uint(p.order_id))
    if value["buyer"] == _NOBODY:
        raise not_found(f"no order {p.order_id}")
    record = _json("escrow", "Order", value)
    history: list[IndexedEventView] = []
    history_next = None
    if ctx.index is not None:
        limit = p.history_limit if p.history_limit is not None else ctx.limits.max_page
        page = ctx.index.history(p.order_id, page_size(limit, ctx.limits.max_page),
                                 _pos_cursor(p.history_after, "history_after"))
        history = [IndexedEventView.from_index(e, ctx) for e in page.items]
        history_next = _pos_text(page.next)
    return OrderView(order_id=p.order_id, state=ORDER_STATES.get(value["state"], "unknown"),
                     order=record, terms={k: record[k] for k in _TERMS}, history=history,
                     history_next=history_next, height=height, raw=raw.hex())


class OrdersParams(Params):
    buyer: AddressText | None = Field(None, description="Orders this account placed.")
    merchant: AddressText | None = Field(None, description="Orders this merchant received.")
    state: StateName | None = Field(None, description="Only orders in this state now.")
    limit: Limit | None = None
    before: IdCursor | None = None

    @model_validator(mode="after")
    def _one_party(self) -> OrdersParams:
        if (self.buyer is None) == (self.merchant is None):
            raise ValueError("name either buyer or merchant")
        return self


@rpc_method("orders", OrdersParams, OrdersView)
async def orders(ctx: RPCContext, p: OrdersParams) -> OrdersView:
    """A buyer's or a merchant's orders, newest first (optionally only those in one
    state), as the index follows them; ``order`` gives all of one."""
    buyer: bytes | None = p.buyer  # type: ignore[assignment]
    merchant: bytes | None = p.merchant  # type: ignore[assignment]
    page = _index(ctx).orders(
        buyer=buyer, merchant=merchant,
        state=STATE_NUMBERS[p.state] if p.state is not None else None,
        limit=page_size(p.limit, ctx.limits.max_page), before=_id_cursor(p.before))
    items = [OrderSummaryView(
        order_id=e.order_id, listing_id=e.listing, buyer=address_to_text(e.buyer),
        merchant=address_to_text(e.merchant), group_id=e.group,
        state=ORDER_STATES.get(e.state, "unknown"), paid=str(e.paid), in_tokens=e.in_tokens,
        placed_height=e.placed[0], placed_time_ms=e.placed_time_ms,
        updated_height=e.updated[0], updated_time_ms=e.updated_time_ms)
        for e in page.items]
    return OrdersView(buyer=address_to_text(buyer) if buyer else None,
                      merchant=address_to_text(merchant) if merchant else None,
                      state=p.state, items=items,
                      next=None if page.next is None else str(page.next),
                      height=ctx.chain.height)


# ---------------------------------------------------------------- group deals


class GroupParams(Params):
    group_id: Id
    limit: Limit | None = Field(None, description="Members per page.")
    before: IdCursor | None = None


@rpc_method("group", GroupParams, GroupView)
async def group(ctx: RPCContext, p: GroupParams) -> GroupView:
    """A group deal and the orders placed into it (newest first, a page at a time)."""
    value, raw, height = _read(ctx, "escrow", "group", _uint(p.group_id))
    if value["merchant"] == _NOBODY:
        raise not_found(f"no group {p.group_id}")
    page = _index(ctx).members(p.group_id, page_size(p.limit, ctx.limits.max_page),
                               _id_cursor(p.before))
    members = [MemberView(order_id=m.order_id, buyer=address_to_text(m.member),
                          state=ORDER_STATES.get(m.state) if m.state is not None else None)
               for m in page.items]
    return GroupView(group_id=p.group_id, state=GROUP_STATES.get(value["state"], "unknown"),
                     group=_json("escrow", "Group", value), members=members,
                     next=None if page.next is None else str(page.next), height=height,
                     raw=raw.hex())


# ---------------------------------------------------------------- merchants and arbiters


class MerchantParams(Params):
    merchant: AddressText


@rpc_method("merchant", MerchantParams, MerchantView)
async def merchant(ctx: RPCContext, p: MerchantParams) -> MerchantView:
    """A merchant's reputation: its orders' outcomes (escrow), its reviews (reviews
    contract), and how many listings and orders it has (index). An account that never
    sold anything has zeros."""
    address: bytes = p.merchant  # type: ignore[assignment]
    stats, _, height = _read(ctx, "escrow", "merchant_record", address)
    reputation, _, _ = _read(ctx, "reviews", "merchant_reviews", address)
    index = _index(ctx)
    by_state = {ORDER_STATES.get(s, str(s)): n for s, n in sorted(index.order_counts(address)
                                                                   .items())}
    reviews_count = reputation["reviews"]
    return MerchantView(
        merchant=address_to_text(address), stats=_json("escrow", "Stats", stats),
        reputation=_json("reviews", "Reputation", reputation),
        average_rating=round(reputation["rating_sum"] / reviews_count, 2)
        if reviews_count else None,
        listings=index.listing_count(address), orders=sum(by_state.values()),
        orders_by_state=by_state, height=height)


class ArbiterParams(Params):
    arbiter: AddressText


@rpc_method("arbiter", ArbiterParams, ArbiterView)
async def arbiter(ctx: RPCContext, p: ArbiterParams) -> ArbiterView:
    """An arbiter's registration (name, fee, ruling window, active) and its record of
    cases (ruled, for whom, missed, fees)."""
    address: bytes = p.arbiter  # type: ignore[assignment]
    registration, _, height = _read(ctx, "catalog", "arbiter", address)
    if registration["ruling_window"] == 0:
        raise not_found(f"{address_to_text(address)} is not a registered arbiter")
    cases, _, _ = _read(ctx, "escrow", "arbiter_record", address)
    return ArbiterView(arbiter=address_to_text(address),
                       registration=_json("catalog", "Arbiter", registration),
                       cases=_json("escrow", "Cases", cases), height=height)


# ---------------------------------------------------------------- reviews


class ReviewsParams(Params):
    merchant: AddressText | None = Field(None, description="Reviews of this merchant.")
    listing_id: Id | None = Field(None, description="Reviews of this listing.")
    order_id: Id | None = Field(None, description="The review of this order (one at most).")
    limit: Limit | None = None
    before: PosCursor | None = None

    @model_validator(mode="after")
    def _one_subject(self) -> ReviewsParams:
        if sum(x is not None for x in (self.merchant, self.listing_id, self.order_id)) != 1:
            raise ValueError("name one of merchant, listing_id or order_id")
        return self


def _review_view(ctx: RPCContext, entry: ReviewEntry) -> ReviewView:
    _, fields = ctx.chain.decode_event(entry.reviewed.event)
    if fields is None:
        raise cannot_answer(f"the review of order {entry.order_id} cannot be decoded")
    reply = None
    if entry.replied is not None:
        _, reply_fields = ctx.chain.decode_event(entry.replied.event)
        reply = ReplyView(text=(reply_fields or {}).get("text", ""),
                          height=entry.replied.height, tx_hash=entry.replied.tx_hash.hex(),
                          time_ms=entry.replied.time_ms)
    return ReviewView(order_id=entry.order_id, listing_id=int(fields["listing"]),
                      merchant=fields["merchant"], buyer=fields["buyer"],
                      rating=int(fields["rating"]), text=fields["text"],
                      height=entry.reviewed.height, tx_hash=entry.reviewed.tx_hash.hex(),
                      time_ms=entry.reviewed.time_ms, reply=reply)


@rpc_method("reviews", ReviewsParams, ReviewsView)
async def reviews(ctx: RPCContext, p: ReviewsParams) -> ReviewsView:
    """The reviews of a merchant, of a listing or of one order, newest first, each with
    the merchant's reply if there is one."""
    index = _index(ctx)
    limit = page_size(p.limit, ctx.limits.max_page)
    if p.order_id is not None:
        entry = index.review(p.order_id)  # one at most: no paging
        found = [entry] if entry is not None else []
        return ReviewsView(items=[_review_view(ctx, e) for e in found], next=None,
                           height=ctx.chain.height)
    page = index.reviews(merchant=p.merchant, listing=p.listing_id,  # type: ignore[arg-type]
                         limit=limit, before=_pos_cursor(p.before))
    return ReviewsView(items=[_review_view(ctx, e) for e in page.items],
                       next=_pos_text(page.next), height=ctx.chain.height)


# ---------------------------------------------------------------- events


class EventsParams(Params):
    contract: Annotated[StrictStr, Field(max_length=90)] = Field(
        description="A known contract's name (token, catalog, escrow, reviews) or any "
                    "contract's address.")
    name: Annotated[StrictStr, Field(min_length=1, max_length=64)] | None = Field(
        None, description="Only events of this name (OrderPlaced, Transfer, ...).")
    from_height: Annotated[StrictInt, Field(ge=0, lt=1 << 63)] | None = Field(
        None, description="Default: as far back as the range limit allows.")
    to_height: Annotated[StrictInt, Field(ge=0, lt=1 << 63)] | None = Field(
        None, description="Default: the latest height.")
    limit: Limit | None = None
    before: PosCursor | None = None


@rpc_method("events", EventsParams, EventsView)
async def events(ctx: RPCContext, p: EventsParams) -> EventsView:
    """Contract events by contract (and name) in a height range, newest first, decoded
    by the ABI where the contract is known.

    The range ``from_height..to_height`` may span at most the node's
    ``rpc.max_event_range`` heights (a wider one is refused, -32004: ask in narrower
    ranges, as is one with ``from_height`` above ``to_height``); by default it ends at
    the latest height and spans that many. The answer says the range searched
    (``to_height`` at most the latest height) and the latest height (``height``).

    A ``from_height`` the chain has not reached yet (a poller that has seen every
    block, asking from the next) is not an error: the answer is an empty page, with
    ``next`` null, ``to_height`` and ``height`` the latest height (below
    ``from_height``: nothing was searched) -- as every list of this API answers what
    there is, and, past its newest item, nothing. Ask again once ``height`` reaches
    ``from_height``.
    """
    index = _index(ctx)
    with answering():
        try:
            known: KnownContract | None = ctx.chain.contract(p.contract)
            address = known.address  # type: ignore[union-attr]
        except NotFound:
            from ...chainview import parse_address
            try:
                address = parse_address(p.contract)
            except ValueError:
                raise not_found(f"no known contract {p.contract!r}: name token, catalog, "
                                "escrow or reviews, or give a contract's address") from None
            known = None
    tip = index.height
    widest = ctx.limits.max_event_range
    # Asked from a height not reached yet (a poller ahead of the chain): an empty page
    # (to_height below from_height), not an error; see the docstring.
    to_height = p.to_height if p.to_height is not None else max(tip, p.from_height or 0)
    from_height = p.from_height if p.from_height is not None else max(0, to_height - widest + 1)
    if from_height > to_height:
        raise cannot_answer(f"from_height {from_height} is above to_height {to_height}")
    if to_height - from_height + 1 > widest:
        raise cannot_answer(
            f"heights {from_height}..{to_height} are {to_height - from_height + 1} heights; "
            f"this node searches at most {widest} in one request: ask in narrower ranges")
    to_height = min(to_height, tip)
    page = index.events(address, p.name, from_height, to_height,
                        page_size(p.limit, ctx.limits.max_page), _pos_cursor(p.before))
    return EventsView(contract=address_to_text(address),
                      contract_name=known.name if known is not None else None, name=p.name,
                      from_height=from_height, to_height=to_height,
                      items=[IndexedEventView.from_index(e, ctx) for e in page.items],
                      next=_pos_text(page.next), height=tip)
