"""The light node's JSON-RPC methods: the full node's names, parameters and result
shapes (the same pydantic models), every value proven before it is returned.

=================  =======================================================================
method             how it is proven
=================  =======================================================================
status, header,    the verified head / a verified header (``light_status`` adds the
commit            light client's own state: nodes, trusted root, liars caught)
account            the account key (and the code key, for ``is_contract``) by state proof;
                   ``pending_nonce`` counts the primary's mempool (not state: a wrong one
                   only gets a transaction refused) and is never below the proven nonce
token_balance,     the contract view run here over proven state (node/light/proven.py)
call
listing, arbiter   contract views over proven state, as the full node runs them
order              the order by its view; each history entry by the proof of its
                   transaction's receipt, rebuilt from the proven event
group              the group by its view; each member by the state key that holds its
                   order, and that order's state by its record
merchant           outcomes and reputation by their views; the counts from the merchant's
                   listings and orders, each item proven by its record
reviews            each review by its record in the reviews contract and the proven
                   receipt of the transaction that posted it (and of the reply)
tx                 the transaction and its receipt by inclusion proof under the verified
                   header of its height
broadcast_tx_*     forwarded to the primary; ``broadcast_tx_commit`` answers with the
                   receipt proven, not the primary's word
=================  =======================================================================

Lists (order history, a group's members, a merchant's reviews, listings and orders)
come from the full node's index, which is not under the state root: every item in them
is proven, but that none is left out cannot be, except where the state counts them
(a first page of reviews must hold as many as the proven reputation counts).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from chain.address import address_from_text, address_to_text
from chain.block import ReceiptStatus
from chain.errors import InvalidAddress, InvalidTransaction
from chain.system import TOKEN_ADDRESS
from chain.tx import Transaction
from vm.compiler.abi import decode_value, encode_value
from vm.compiler.types import name_key
from vm.world import RECORD, STORAGE, decode_record

from ..chainview import ChainView, NotFound, ViewError, abi_to_json, known_contracts
from ..index import GROUP_STATES, ORDER_STATES
from ..rpc.client import RPCFailed
from ..rpc.methods import commerce as C
from ..rpc.methods import state as S
from ..rpc.methods.blocks import HeightParams
from ..rpc.methods.txs import TxHashParams, TxParams
from ..rpc.protocol import Codes, NoParams, Params, RPCError, cannot_answer, not_found, rpc_method
from ..rpc.views import (
    AccountView,
    BroadcastCommitView,
    BroadcastView,
    CallResultView,
    CommitView,
    ContractView,
    EventView,
    HeaderView,
    InclusionProofView,
    ReceiptView,
    StatusView,
    TokenBalanceView,
    TxResultView,
    TxView,
)
from .client import LightClient
from .errors import BadProof, CannotProve, InvalidLightBlock, LightError, NoHonestNode, Unreachable
from .proven import Proven, ProvenTx
from .verifier import LightBlock

#: Most list items one answer proves (a merchant's orders and listings).
MAX_PROVEN_ITEMS = 2_000


class LightChainView(ChainView):
    """The ABI-side of a chain view (contracts, decoding) from the genesis alone: what
    the shared RPC views need to render, with no chain behind it."""

    def __init__(self, genesis: Any) -> None:  # noqa: D107 - no executor on purpose
        self.genesis = genesis
        self.genesis_hash = genesis.hash
        self.contracts = known_contracts(genesis)
        self._by_name = {c.name: c for c in self.contracts.values()}


class LightContext:
    """What the light methods use: the client, proven reads, the ABI view."""

    def __init__(self, client: LightClient, moniker: str = "light") -> None:
        self.client = client
        self.proven = Proven(client)
        self.chain = LightChainView(client.genesis)
        self.moniker = moniker
        self.node_id = client.genesis_hash[:0]  # a light node has no p2p identity

    def primary(self):  # noqa: ANN201
        return self.client.need_primary()


#: The most one request may take, however slow the nodes asked.
REQUEST_DEADLINE_S = 20.0
#: Items of one list the primary names (per page; whole lists: MAX_PROVEN_ITEMS).
MAX_PAGE_ITEMS = 200
_PASSED_ON = {Codes.NOT_FOUND, Codes.TX_REJECTED, Codes.TIMEOUT}


async def _answering(ctx: LightContext, work: Callable[[], Any]) -> Any:
    """Run ``work()``, turning the light node's refusals into JSON-RPC errors. An answer
    of the primary's that does not match its proof gets the primary caught and dropped,
    one that does not come (down, too slow) gets it demoted, and the question is asked
    again of the next node. The whole request is bounded by REQUEST_DEADLINE_S."""
    try:
        async with asyncio.timeout(REQUEST_DEADLINE_S):
            return await _attempts(ctx, work)
    except TimeoutError:
        primary = ctx.client.primary
        if primary is not None:
            ctx.client.demote(primary, f"took over {REQUEST_DEADLINE_S:.0f} s to answer")
        raise RPCError(Codes.UNAVAILABLE, f"no answer within {REQUEST_DEADLINE_S:.0f} s: "
                       "the nodes asked are too slow; try again") from None


async def _attempts(ctx: LightContext, work: Callable[[], Any]) -> Any:
    unreachable = 0
    for _ in range(len(ctx.client.nodes()) + 2):
        primary = ctx.client.primary
        try:
            return await work()
        except (BadProof, InvalidLightBlock) as exc:
            if primary is None:
                raise cannot_answer(f"cannot prove this: {exc}") from None
            if ctx.client.primary is primary:
                ctx.client.caught(primary, "invalid answer", str(exc))
        except Unreachable as exc:
            unreachable += 1
            if primary is None or unreachable > 1 or not ctx.client.witnesses:
                raise RPCError(Codes.UNAVAILABLE,
                               f"the primary did not answer: {_short(str(exc))}") from None
            ctx.client.demote(primary, "did not answer")
        except NoHonestNode as exc:
            raise RPCError(Codes.UNAVAILABLE, str(exc)) from None
        except CannotProve as exc:
            raise cannot_answer(f"cannot prove this: {_short(str(exc))}") from None
        except RPCFailed as exc:
            # What the primary refused, in our words (its own text, cut short, beside).
            said = _short(f"{exc.message}: {exc.data}" if exc.data else str(exc.message))
            if exc.code in _PASSED_ON:
                raise RPCError(exc.code, "Not found" if exc.code == Codes.NOT_FOUND
                               else str(exc.message)[:80], f"the primary says: {said}") from None
            raise cannot_answer(f"the primary could not answer ({said})") from None
        except NotFound as exc:
            raise not_found(str(exc)) from None
        except (ViewError, LightError) as exc:
            raise cannot_answer(_short(str(exc))) from None
    raise RPCError(Codes.UNAVAILABLE, "every node given to this light node was caught lying "
                                      "or did not answer: give it honest ones (--primary, "
                                      "--witness)")


def _short(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


async def _at_least(ctx: LightContext, claimed: Any) -> LightBlock:
    """The verified head, at least at the height the primary's answer was read at
    (its index may be a block ahead of our head: catch up rather than accuse)."""
    height = claimed.get("height") if isinstance(claimed, dict) else None
    if not isinstance(height, int) or height < 0:
        raise BadProof(f"{ctx.primary().url}'s answer does not say the height it was read at")
    if height > ctx.client.height:
        await ctx.client.sync()
    if height > ctx.client.height:
        raise CannotProve(f"the primary answered from height {height}; the light node has "
                          f"verified up to {ctx.client.height} (try again in a moment)")
    return ctx.proven.head()


async def _ask_primary(ctx: LightContext, method: str, **params: Any) -> Any:
    """The primary's (unproven) answer to ``method``; only ever a list of claims the
    caller proves item by item."""
    return await ctx.primary().call(method, **params)


async def _block(ctx: LightContext, height: int | None) -> LightBlock:
    if height is None:
        return ctx.proven.head()
    if height > ctx.client.height:
        await ctx.client.sync()
    if height > ctx.client.height:
        raise NotFound(f"height {height} is beyond the verified head {ctx.client.height}")
    return await ctx.client.verify_height(height)


# ---------------------------------------------------------------- node and headers


@rpc_method("status", NoParams, StatusView)
async def status(ctx: LightContext, _: NoParams) -> StatusView:
    """The light node's verified head."""
    block = ctx.client.latest
    g = ctx.client.genesis
    return StatusView(
        chain_id=g.chain_id, node_id="", moniker=ctx.moniker, mode="light",
        height=ctx.client.height,
        latest_block_hash=(block.hash if block else ctx.client.genesis_hash).hex(),
        latest_block_time_ms=block.header.time_ms if block else g.time_ms,
        state_root=block.header.state_root.hex() if block else "",
        syncing=bool(ctx.client.last_error), peers=len(ctx.client.nodes()), validator=None,
        mempool={}, genesis_hash=ctx.client.genesis_hash.hex())


@rpc_method("light_status", NoParams, dict[str, Any])
async def light_status(ctx: LightContext, _: NoParams) -> dict[str, Any]:
    """The light client: verified head, trusted root, primary and witnesses, and every
    node caught lying (what, when, the evidence)."""
    return ctx.client.status()


@rpc_method("header", HeightParams, HeaderView)
async def header(ctx: LightContext, p: HeightParams) -> HeaderView:
    """A verified header (the verified head when no height is given)."""
    return await _answering(ctx, lambda: _header(ctx, p.height))


async def _header(ctx: LightContext, height: int | None) -> HeaderView:
    if height is None and ctx.client.latest is None:
        raise NotFound("no header verified yet")
    return HeaderView.of((await _block(ctx, height)).header)


@rpc_method("commit", HeightParams, CommitView)
async def commit(ctx: LightContext, p: HeightParams) -> CommitView:
    """The commit certificate of a verified header."""
    async def work() -> CommitView:
        return CommitView.of((await _block(ctx, p.height)).commit)
    return await _answering(ctx, work)


@rpc_method("contracts", Params, list[ContractView])
async def contracts(ctx: LightContext, _: Params) -> list[ContractView]:
    """The genesis contracts (from the genesis file this light node trusts)."""
    return [ContractView(name=c.name, address=address_to_text(c.address), abi=c.abi)
            for c in ctx.chain.contracts.values()]


# ---------------------------------------------------------------- accounts and calls


@rpc_method("account", S.AccountParams, AccountView)
async def account(ctx: LightContext, p: S.AccountParams) -> AccountView:
    """Balance and nonce, proven; ``pending_nonce`` counts the primary's mempool."""
    address: bytes = p.address  # type: ignore[assignment]

    async def work() -> AccountView:
        block = await _block(ctx, p.height)
        nonce, balance, is_contract = await ctx.proven.account(address, block)
        pending = nonce
        try:
            claimed = await _ask_primary(ctx, "account", address=address_to_text(address))
            if isinstance(claimed.get("pending_nonce"), int):
                pending = max(nonce, min(claimed["pending_nonce"], nonce + 10_000))
        except (RPCFailed, Unreachable, AttributeError):
            pass
        return AccountView(address=address_to_text(address), balance=str(balance), nonce=nonce,
                           pending_nonce=pending, height=block.height, is_contract=is_contract)
    return await _answering(ctx, work)


@rpc_method("token_balance", S.TokenBalanceParams, TokenBalanceView)
async def token_balance(ctx: LightContext, p: S.TokenBalanceParams) -> TokenBalanceView:
    """An account's reward-token balance (the token contract's ``balance_of``, run here
    over proven state)."""
    address: bytes = p.address  # type: ignore[assignment]

    async def work() -> TokenBalanceView:
        block = await _block(ctx, p.height)
        token = ctx.chain.contract("token")
        out = await ctx.proven.call(token.address, "balance_of",
                                    [encode_value("Address", address)], block=block)
        if out.status != ReceiptStatus.OK:
            raise cannot_answer(f"the token contract refused: {out.reason}")
        return TokenBalanceView(address=address_to_text(address),
                                token=address_to_text(TOKEN_ADDRESS),
                                balance=str(int.from_bytes(out.data, "big")), height=out.height)
    return await _answering(ctx, work)


@rpc_method("call", S.CallParams, CallResultView)
async def call(ctx: LightContext, p: S.CallParams) -> CallResultView:
    """A read-only contract call run here over proven state."""
    chain = ctx.chain

    async def work() -> CallResultView:
        known = chain.contract(p.contract)
        args = chain.encode_args(known, p.method, p.args)
        block = await _block(ctx, p.height)
        out = await ctx.proven.call(
            known.address, p.method, args, block=block,
            sender=p.sender if p.sender is not None else bytes(20),  # type: ignore[arg-type]
            gas=p.gas, value=int(p.value), time_ms=p.time_ms)
        return S.call_result(chain, known, p.method, out)
    return await _answering(ctx, work)


# ---------------------------------------------------------------- commerce


async def _views(ctx: LightContext, reads: list[tuple[str, str, bytes]], block: LightBlock
                 ) -> list[tuple[Any, bytes]]:
    """Commerce views run together over proven state: (decoded value, return data)."""
    knowns = [ctx.chain.contract(name) for name, _, _ in reads]
    outs = await ctx.proven.calls([(k.address, method, [arg])
                                   for k, (_, method, arg) in zip(knowns, reads, strict=True)],
                                  block=block)
    values = []
    for known, (name, method, _), out in zip(knowns, reads, outs, strict=True):
        if out.status != ReceiptStatus.OK:
            raise cannot_answer(f"the {name} contract's {method} view failed: "
                                f"{out.reason or ReceiptStatus.NAMES.get(out.status)}")
        spec = known.method(method)
        assert spec is not None and spec["output"] is not None
        values.append((decode_value(spec["output"], out.data, known.abi["records"]), out.data))
    return values


def _json(contract: str, record: str, value: Any) -> dict[str, Any]:
    from vm.contracts import compiled
    return abi_to_json(record, value, compiled(contract).abi["records"])


def _uint(n: int) -> bytes:
    return encode_value("uint", n)


_NOBODY = bytes(20)


@rpc_method("listing", C.ListingParams, C.ListingView)
async def listing(ctx: LightContext, p: C.ListingParams) -> C.ListingView:
    """A listing, its outcomes and its reputation, proven."""
    async def work() -> C.ListingView:
        block = ctx.proven.head()
        (value, raw), (stats, _), (rep, _) = await _views(ctx, [
            ("catalog", "listing", _uint(p.listing_id)),
            ("escrow", "listing_record", _uint(p.listing_id)),
            ("reviews", "listing_reviews", _uint(p.listing_id))], block)
        if value["merchant"] == _NOBODY:
            raise not_found(f"no listing {p.listing_id}")
        return C.ListingView(listing_id=p.listing_id,
                             listing=_json("catalog", "Listing", value),
                             stats=_json("escrow", "Stats", stats),
                             reputation=_json("reviews", "Reputation", rep),
                             height=block.height, raw=raw.hex())
    return await _answering(ctx, work)


@rpc_method("arbiter", C.ArbiterParams, C.ArbiterView)
async def arbiter(ctx: LightContext, p: C.ArbiterParams) -> C.ArbiterView:
    """An arbiter's registration and record, proven."""
    address: bytes = p.arbiter  # type: ignore[assignment]

    async def work() -> C.ArbiterView:
        block = ctx.proven.head()
        (reg, _), (cases, _) = await _views(ctx, [
            ("catalog", "arbiter", encode_value("Address", address)),
            ("escrow", "arbiter_record", encode_value("Address", address))], block)
        if reg["ruling_window"] == 0:
            raise not_found(f"{address_to_text(address)} is not a registered arbiter")
        return C.ArbiterView(arbiter=address_to_text(address),
                             registration=_json("catalog", "Arbiter", reg),
                             cases=_json("escrow", "Cases", cases), height=block.height)
    return await _answering(ctx, work)


async def _proven_events(ctx: LightContext, items: list[dict[str, Any]]
                         ) -> list[C.IndexedEventView]:
    """Index entries (``IndexedEventView`` JSON) the primary named, each rebuilt from the
    proven receipt of its transaction; an entry its receipt does not hold is a lie."""
    if len(items) > 200:
        raise CannotProve("more than 200 entries in one answer")
    try:
        hashes = [bytes.fromhex(i["tx_hash"]) for i in items]
    except (KeyError, TypeError, ValueError):
        raise BadProof(f"{ctx.primary().url} sent a malformed list entry") from None
    proven = await _proven_txs(ctx, list(dict.fromkeys(hashes)))
    out = []
    for item, h in zip(items, hashes, strict=True):
        ptx = proven[h]
        index = item.get("event_index")
        events = ptx.receipt.events
        if not isinstance(index, int) or not 0 <= index < len(events):
            raise BadProof(f"{ctx.primary().url} named event {index!r} of transaction "
                           f"{h.hex()}, which its proven receipt does not have")
        event = events[index]
        if (item.get("name") != event.name or item.get("data") != event.data.hex()
                or item.get("height") != ptx.height or item.get("tx_index") != ptx.index):
            raise BadProof(f"{ctx.primary().url}'s entry for transaction {h.hex()} does not "
                           "match its proven receipt")
        base = EventView.of(event, ctx.chain)
        out.append(C.IndexedEventView(height=ptx.height, tx_index=ptx.index, event_index=index,
                                      tx_hash=h.hex(), time_ms=ptx.block.header.time_ms,
                                      **dict(base)))
    return out


async def _proven_txs(ctx: LightContext, hashes: list[bytes]) -> dict[bytes, ProvenTx]:
    """Transactions proven in one batch (each against its verified header)."""
    if not hashes:
        return {}

    async def ask(provider: Any) -> dict[bytes, ProvenTx]:
        answers = await provider.tx_proofs(hashes)
        out = {}
        for h, answer in zip(hashes, answers, strict=True):
            if isinstance(answer, RPCFailed):
                raise BadProof(f"{provider.url} named transaction {h.hex()} and then said "
                               f"it has none: {answer}")
            out[h] = await ctx.proven.check_tx(provider, h, answer)
        return out
    return await ctx.client._with_primary(ask)


@rpc_method("order", C.OrderParams, C.OrderView)
async def order(ctx: LightContext, p: C.OrderParams) -> C.OrderView:
    """An order, proven, with its history (each entry proven by its receipt)."""
    async def work() -> C.OrderView:
        block = ctx.proven.head()
        [(value, raw)] = await _views(ctx, [("escrow", "order", _uint(p.order_id))], block)
        if value["buyer"] == _NOBODY:
            raise not_found(f"no order {p.order_id}")
        record = _json("escrow", "Order", value)
        params: dict[str, Any] = {"order_id": p.order_id}
        if p.history_limit is not None:
            params["history_limit"] = p.history_limit
        if p.history_after is not None:
            params["history_after"] = p.history_after
        claimed = await _ask_primary(ctx, "order", **params)
        items = _list(claimed, "history")
        if len(items) > MAX_PAGE_ITEMS:
            raise BadProof(f"{ctx.primary().url} sent {len(items)} history entries in a page")
        history = await _proven_events(ctx, items)
        _check_history(ctx, history, p.order_id, int(value["group"]))
        return C.OrderView(order_id=p.order_id,
                           state=ORDER_STATES.get(value["state"], "unknown"), order=record,
                           terms={k: record[k] for k in C.OrderTerms.model_fields},
                           history=history, history_next=claimed.get("history_next"),
                           height=block.height, raw=raw.hex())
    return await _answering(ctx, work)


_ORDER_EVENTS = {"OrderPlaced", "OrderChanged", "Payout", "SettlementOffered"}


def _check_history(ctx: LightContext, history: list[C.IndexedEventView], order_id: int,
                   group_id: int) -> None:
    """Every proven entry must be the escrow's event of this order (or of its group),
    once, oldest first."""
    escrow = address_to_text(ctx.chain.contract("escrow").address)
    last: tuple[int, int, int] | None = None
    for e in history:
        fields = e.fields or {}
        ours = (e.name in _ORDER_EVENTS and fields.get("order_id") == str(order_id)) or (
            e.name == "GroupChanged" and group_id and fields.get("group_id") == str(group_id))
        if e.contract != escrow or not ours:
            raise BadProof(f"{ctx.primary().url} put an event that is not order {order_id}'s "
                           f"({e.name} of transaction {e.tx_hash}) in its history")
        pos = (e.height, e.tx_index, e.event_index)
        if last is not None and pos <= last:
            raise BadProof(f"{ctx.primary().url} repeated or reordered order {order_id}'s "
                           "history")
        last = pos


def _list(claimed: Any, key: str) -> list[dict[str, Any]]:
    items = claimed.get(key) if isinstance(claimed, dict) else None
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise BadProof(f"the primary's answer has no list {key!r}")
    return items


def _id32(n: int) -> bytes:
    """A uint map key as the compiler stores it (32 bytes, big-endian)."""
    return n.to_bytes(32, "big")


def _record_key(contract: bytes, var: str, key: bytes) -> bytes:
    return STORAGE + contract + RECORD + name_key(var) + key


def _record_fields(raw: bytes | None) -> dict[bytes, bytes]:
    if raw is None:
        return {}
    problem, fields = decode_record(raw, strict=False)
    if problem:
        raise CannotProve(f"a stored record cannot be read: {problem}")
    return fields


async def _order_views(ctx: LightContext, ids: list[int], block: LightBlock
                       ) -> list[dict[str, Any]]:
    """The escrow's ``order`` view of each id, run together over proven state."""
    return [v for v, _ in await _views(ctx, [("escrow", "order", _uint(i)) for i in ids],
                                       block)]


async def _order_states(ctx: LightContext, ids: list[int], block: LightBlock
                        ) -> list[str | None]:
    return [ORDER_STATES.get(v["state"]) if v["state"] else None
            for v in await _order_views(ctx, ids, block)]


def _uint_of(stored: bytes | None) -> int:
    return int.from_bytes(stored or b"", "big")


@rpc_method("group", C.GroupParams, C.GroupView)
async def group(ctx: LightContext, p: C.GroupParams) -> C.GroupView:
    """A group deal, proven, and its members, each proven by its order's record (its
    group and buyer) and, while in, the escrow's membership key."""
    async def work() -> C.GroupView:
        params: dict[str, Any] = {"group_id": p.group_id}
        if p.limit is not None:
            params["limit"] = p.limit
        if p.before is not None:
            params["before"] = p.before
        try:
            claimed = await _ask_primary(ctx, "group", **params)
        except RPCFailed as exc:
            if exc.code != Codes.NOT_FOUND:
                raise
            claimed = {"members": [], "height": ctx.client.height}
        block = await _at_least(ctx, claimed)
        [(value, raw)] = await _views(ctx, [("escrow", "group", _uint(p.group_id))], block)
        if value["merchant"] == _NOBODY:
            raise not_found(f"no group {p.group_id}")
        items = _list(claimed, "members")
        if len(items) > MAX_PAGE_ITEMS:
            raise BadProof(f"{ctx.primary().url} sent {len(items)} members in a page")
        escrow = ctx.chain.contract("escrow").address
        try:
            pairs = [(int(m["order_id"]), address_from_text(m["buyer"])) for m in items]
        except (KeyError, TypeError, ValueError, InvalidAddress):
            raise BadProof(f"{ctx.primary().url} sent a malformed member") from None
        if len({oid for oid, _ in pairs}) != len(pairs):
            raise BadProof(f"{ctx.primary().url} listed a member of group {p.group_id} twice")
        member_keys = [STORAGE + escrow + name_key("members") + _id32(p.group_id) + buyer
                       for _, buyer in pairs]
        proven = await ctx.proven.values(member_keys, block)
        orders = await _order_views(ctx, [oid for oid, _ in pairs], block)
        members = []
        for (oid, buyer), mk, o in zip(pairs, member_keys, orders, strict=True):
            state = ORDER_STATES.get(o["state"]) if o["state"] else None
            if (o["group"] != p.group_id or o["buyer"] != buyer
                    or (state != "cancelled" and _uint_of(proven[mk]) != oid)):
                raise BadProof(f"{ctx.primary().url} named order {oid} of "
                               f"{address_to_text(buyer)} a member of group {p.group_id}; the "
                               "proven state does not")
            members.append(C.MemberView(order_id=oid, buyer=address_to_text(buyer),
                                        state=state))
        return C.GroupView(group_id=p.group_id,
                           state=GROUP_STATES.get(value["state"], "unknown"),
                           group=_json("escrow", "Group", value), members=members,
                           next=claimed.get("next"), height=block.height, raw=raw.hex())
    return await _answering(ctx, work)


@rpc_method("merchant", C.MerchantParams, C.MerchantView)
async def merchant(ctx: LightContext, p: C.MerchantParams) -> C.MerchantView:
    """A merchant's outcomes and reputation, proven; its listing and order counts from
    its listings and orders, each proven by its record."""
    address: bytes = p.merchant  # type: ignore[assignment]

    async def work() -> C.MerchantView:
        text = address_to_text(address)
        listing_ids, h1 = await _all_ids(ctx, "listings", "listing_id", merchant=text)
        order_ids, h2 = await _all_ids(ctx, "orders", "order_id", merchant=text)
        block = await _at_least(ctx, {"height": max(h1, h2)})
        (stats, _), (rep, _) = await _views(ctx, [
            ("escrow", "merchant_record", encode_value("Address", address)),
            ("reviews", "merchant_reviews", encode_value("Address", address))], block)
        catalog = ctx.chain.contract("catalog").address
        lkeys = [_record_key(catalog, "listings", _id32(i)) for i in listing_ids]
        proven = await ctx.proven.values(lkeys, block)
        for i, k in zip(listing_ids, lkeys, strict=True):
            if _record_fields(proven[k]).get(name_key("merchant")) != address:
                raise BadProof(f"{ctx.primary().url} named listing {i} the merchant's; the "
                               "proven state does not")
        orders = await _order_views(ctx, order_ids, block)
        by_number: dict[int, int] = {}
        for i, value in zip(order_ids, orders, strict=True):
            if value["merchant"] != address:
                raise BadProof(f"{ctx.primary().url} named order {i} the merchant's; the "
                               "proven state does not")
            by_number[value["state"]] = by_number.get(value["state"], 0) + 1
        ordered = {ORDER_STATES.get(s, str(s)): n for s, n in sorted(by_number.items())}
        reviews_count = rep["reviews"]
        return C.MerchantView(
            merchant=text, stats=_json("escrow", "Stats", stats),
            reputation=_json("reviews", "Reputation", rep),
            average_rating=round(rep["rating_sum"] / reviews_count, 2) if reviews_count else None,
            listings=len(listing_ids), orders=len(order_ids), orders_by_state=ordered,
            height=block.height)
    return await _answering(ctx, work)


async def _all_ids(ctx: LightContext, method: str, key: str, **params: Any
                   ) -> tuple[list[int], int]:
    """Every id of a paged list of the primary's, and the highest height its pages were
    read at. Bounded: at most MAX_PROVEN_ITEMS ids, in pages of 100; a page that is
    empty yet says there is more, an id or a cursor seen twice, is a lie."""
    ids: list[int] = []
    cursors: set[str] = set()
    height = 0
    before = None
    for _ in range(MAX_PROVEN_ITEMS // 100 + 2):
        page = await _ask_primary(ctx, method, limit=100, before=before, **params)
        items = _list(page, "items")
        if len(items) > MAX_PAGE_ITEMS:
            raise BadProof(f"{ctx.primary().url} sent {len(items)} {method} in a page of 100")
        for item in items:
            value = item.get(key)
            if not isinstance(value, int) or isinstance(value, bool):
                raise BadProof(f"{ctx.primary().url} sent a malformed {method} item")
            ids.append(value)
        h = page.get("height")
        if isinstance(h, int):
            height = max(height, h)
        if len(ids) > MAX_PROVEN_ITEMS:
            raise CannotProve(f"more than {MAX_PROVEN_ITEMS} {method} to prove in one answer")
        before = page.get("next")
        if not before:
            if len(set(ids)) != len(ids):
                raise BadProof(f"{ctx.primary().url} listed an item of {method} twice")
            return ids, height
        if not items or not isinstance(before, str) or before in cursors:
            raise BadProof(f"{ctx.primary().url}'s {method} pages do not end (an empty page, "
                           "or a cursor given twice)")
        cursors.add(before)
    raise CannotProve(f"more than {MAX_PROVEN_ITEMS} {method} to prove in one answer")


@rpc_method("reviews", C.ReviewsParams, C.ReviewsView)
async def reviews(ctx: LightContext, p: C.ReviewsParams) -> C.ReviewsView:
    """Reviews of a merchant, a listing or an order, each proven by its record and the
    receipts that posted it and its reply; for a merchant or a listing, the reviews
    the primary lists in all its pages must be as many as the proven reputation
    counts (none hidden, none twice)."""
    async def work() -> C.ReviewsView:
        params: dict[str, Any] = {}
        for k in ("merchant", "listing_id", "order_id", "limit", "before"):
            v = getattr(p, k)
            if v is not None:
                params[k] = address_to_text(v) if k == "merchant" else v
        claimed = await _ask_primary(ctx, "reviews", **params)
        items = _list(claimed, "items")
        if len(items) > MAX_PAGE_ITEMS:
            raise BadProof(f"{ctx.primary().url} sent {len(items)} reviews in a page")
        try:
            ids = [int(i["order_id"]) for i in items]
            posted = [bytes.fromhex(i["tx_hash"]) for i in items]
            replied = [bytes.fromhex(i["reply"]["tx_hash"]) if i.get("reply") else None
                       for i in items]
        except (KeyError, TypeError, ValueError):
            raise BadProof(f"{ctx.primary().url} sent a malformed review") from None
        if len(set(ids)) != len(ids):
            raise BadProof(f"{ctx.primary().url} listed a review twice")
        every: list[int] | None = None
        height = claimed.get("height") if isinstance(claimed.get("height"), int) else -1
        if p.merchant is not None or p.listing_id is not None:
            subject = {k: v for k, v in params.items() if k in ("merchant", "listing_id")}
            every, h = await _all_ids(ctx, "reviews", "order_id", **subject)
            height = max(height, h)
        block = await _at_least(ctx, {"height": height})
        calls = [("reviews", "review", _uint(i)) for i in ids]
        if p.merchant is not None:
            calls.append(("reviews", "merchant_reviews", encode_value("Address", p.merchant)))
        elif p.listing_id is not None:
            calls.append(("reviews", "listing_reviews", _uint(p.listing_id)))
        values = await _views(ctx, calls, block)
        if every is not None:
            counted = values[-1][0]["reviews"]
            if counted != len(every) or not set(ids) <= set(every):
                raise BadProof(f"{ctx.primary().url} listed {len(every)} review(s) where the "
                               f"proven reputation counts {counted}")
        txs = await _proven_txs(ctx, list(dict.fromkeys(
            posted + [r for r in replied if r is not None])))
        out = []
        for oid, value, post, reply in zip(ids, values, posted, replied, strict=False):
            record = value[0]
            if record["rating"] == 0:
                raise BadProof(f"{ctx.primary().url} showed a review of order {oid}; the "
                               "proven state holds none")
            if (p.merchant is not None and record["merchant"] != p.merchant
                    or p.listing_id is not None and record["listing"] != p.listing_id
                    or p.order_id is not None and oid != p.order_id):
                raise BadProof(f"{ctx.primary().url} showed the review of order {oid} as "
                               "one it is not")
            posted_at = _event_in(ctx, txs[post], "Reviewed", oid)
            reply_view = None
            if record["replied"]:
                if reply is None:
                    raise BadProof(f"{ctx.primary().url} hid the merchant's reply to the "
                                   f"review of order {oid}")
                at = _event_in(ctx, txs[reply], "Replied", oid)
                reply_view = C.ReplyView(text=record["reply"], height=txs[reply].height,
                                         tx_hash=reply.hex(), time_ms=at)
            out.append(C.ReviewView(
                order_id=oid, listing_id=record["listing"],
                merchant=address_to_text(record["merchant"]),
                buyer=address_to_text(record["buyer"]), rating=record["rating"],
                text=record["text"], height=txs[post].height, tx_hash=post.hex(),
                time_ms=posted_at, reply=reply_view))
        if p.order_id is not None and not out:
            # "no review" must be proven too
            [(record, _)] = await _views(ctx, [("reviews", "review", _uint(p.order_id))], block)
            if record["rating"] != 0:
                raise BadProof(f"{ctx.primary().url} hid the review of order {p.order_id}")
        return C.ReviewsView(items=out, next=claimed.get("next"), height=block.height)
    return await _answering(ctx, work)


def _event_in(ctx: LightContext, ptx: ProvenTx, name: str, order_id: int) -> int:
    """The block time of ``ptx`` if its proven receipt emitted ``name`` for the order."""
    reviews_address = ctx.chain.contract("reviews").address
    for e in ptx.receipt.events:
        if e.contract == reviews_address and e.name == name:
            _, fields = ctx.chain.decode_event(e)
            if fields is not None and fields.get("order_id") == str(order_id):
                return ptx.block.header.time_ms
    raise BadProof(f"transaction {ptx.tx.hash.hex()} did not emit {name} for order {order_id}")


# ---------------------------------------------------------------- transactions


@rpc_method("tx", TxHashParams, TxResultView)
async def tx(ctx: LightContext, p: TxHashParams) -> TxResultView:
    """A committed transaction and its receipt, proven under the verified header."""
    async def work() -> TxResultView:
        ptx = await ctx.proven.tx(p.hash)  # type: ignore[arg-type]
        return _tx_view(ctx, ptx, p.prove)
    return await _answering(ctx, work)


def _tx_view(ctx: LightContext, ptx: ProvenTx, prove: bool) -> TxResultView:
    proof = header = None
    if prove:
        header = HeaderView.of(ptx.block.header)
        proof = InclusionProofView.of(ptx.tx_proof)
    return TxResultView(hash=ptx.tx.hash.hex(), height=ptx.height, index=ptx.index,
                        tx=TxView.of(ptx.tx, ctx.chain),
                        receipt=ReceiptView.of(ptx.receipt, ctx.chain, ptx.tx),
                        proof=proof, header=header)


def _checked_tx(ctx: LightContext, raw: bytes) -> Transaction:
    try:
        return Transaction.decode_and_validate(raw, ctx.client.chain_id)
    except InvalidTransaction as exc:
        raise RPCError(Codes.TX_REJECTED, "Transaction rejected",
                       {"code": "invalid", "reason": str(exc)}) from None


@rpc_method("broadcast_tx_async", TxParams, BroadcastView, unthrottled=True)
async def broadcast_tx_async(ctx: LightContext, p: TxParams) -> Any:
    """Forwarded to the primary."""
    _checked_tx(ctx, p.tx)  # type: ignore[arg-type]
    raw: bytes = p.tx  # type: ignore[assignment]
    return await _answering(ctx, lambda: _ask_primary(ctx, "broadcast_tx_async", tx=raw.hex()))


@rpc_method("broadcast_tx_sync", TxParams, BroadcastView, unthrottled=True)
async def broadcast_tx_sync(ctx: LightContext, p: TxParams) -> Any:
    """Forwarded to the primary."""
    _checked_tx(ctx, p.tx)  # type: ignore[arg-type]
    raw: bytes = p.tx  # type: ignore[assignment]
    return await _answering(ctx, lambda: _ask_primary(ctx, "broadcast_tx_sync", tx=raw.hex()))


@rpc_method("broadcast_tx_commit", TxParams, BroadcastCommitView, unthrottled=True)
async def broadcast_tx_commit(ctx: LightContext, p: TxParams) -> BroadcastCommitView:
    """Forwarded to the primary; answered with the receipt proven under a verified
    header (the primary's word that it committed is not taken)."""
    tx_ = _checked_tx(ctx, p.tx)  # type: ignore[arg-type]

    async def work() -> BroadcastCommitView:
        await _ask_primary(ctx, "broadcast_tx_commit", tx=tx_.encode().hex())
        ptx = await ctx.proven.tx(tx_.hash)
        return BroadcastCommitView(hash=tx_.hash.hex(), height=ptx.height, index=ptx.index,
                                   receipt=ReceiptView.of(ptx.receipt, ctx.chain, ptx.tx))
    return await _answering(ctx, work)
