"""What ``agora bench`` submits: the ``transfer``, ``escrow`` and ``mixed`` workloads.

Every account is derived from a seed text (``bench-...``) and funded in genesis; the
coordinator keeps each account's next nonce, so a phase's streams start where the last
left off.

``transfer``: one phase; ``--senders`` accounts (default: a tenth of the transactions,
50 to 2,000) each send their share of native transfers to the next account.

``escrow``: the v2 commerce flow, one order = four transactions: ``place_order``
(buyer), ``ship`` (merchant), ``confirm`` then ``post_review`` (buyer). Order ids are
NOT predictable: the escrow numbers orders with a chain-wide counter (``order_count +=
1`` in ``open``), in the order the proposer puts the buyers' transactions in a block,
and they come back only in the receipt (``return_value``) and the ``OrderPlaced``
event. So the flow runs in three phases, each signed before its own clock starts:

1. ``orders``: every buyer places two orders (its two ``place_order`` with sequential
   nonces), each from one of the merchants' listings;
2. (off the clock) the ``OrderPlaced`` events of phase 1's heights give each order's
   id; ``ships``: every merchant ships its orders (sequential nonces);
3. ``confirm+review``: every buyer confirms each order (waiving the return window,
   so it completes) and reviews it, four transactions in nonce order (a review needs
   its order ended, and the nonce order puts each confirm before its review).

The report gives each phase's rate as well as the whole run's. ``mixed`` is the same
three phases with native transfers (30% of the transactions) and group-deal joins
(20%; ``join_group``, each group filling on its last join) submitted alongside the
escrow flow (50%), in the same proportions in every phase.

Off the clock, before phase 1 (``setup``): each merchant publishes a listing (with
commissions, so orders pay a referral, a cashback and a review bounty: a v2 listing),
the group merchants a listing with a group deal, and the groups are started by their
leaders. One probe order runs the whole flow (and a probe join), one transaction at a
time: their receipts' gas is what the phases' gas limits are set from (x1.25 + 10,000,
as the wallet does), since a needlessly high limit would leave the block gas limit,
not the node, deciding how many calls fit in a block.

After each phase the events in its heights are counted against what was submitted
(orders placed, ships, reviews, joins): a reverted call commits too, and must not pass
for throughput.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from chain.address import address_from_text
from chain.keys import PrivateKey
from chain.system import CATALOG_ADDRESS, ESCROW_ADDRESS, REVIEWS_ADDRESS
from chain.tx import Transaction
from node.rpc.client import RPCClient
from vm.contracts import encode_call

from .load import ActionSpec, Observer, StreamSpec, build_tx

NOBODY = bytes(20)
DAY_MS = 86_400_000
PRICE = 10**15
GROUP_PRICE = 5 * 10**14
FUNDS = 10**24
SETUP_GAS = 1_000_000
CONTRACTS = {"catalog": CATALOG_ADDRESS, "escrow": ESCROW_ADDRESS, "reviews": REVIEWS_ADDRESS}


@dataclass
class Account:
    index: int
    seed: str
    key: PrivateKey
    nonce: int = 0

    @property
    def address(self) -> bytes:
        return self.key.address


class Accounts:
    """Every bench account, numbered in the order first named (node = index % nodes)."""

    def __init__(self, nodes: int) -> None:
        self.nodes = nodes
        self.by_seed: dict[str, Account] = {}
        self.by_address: dict[bytes, Account] = {}
        self.by_index: list[Account] = []

    def __getitem__(self, seed: str) -> Account:
        account = self.by_seed.get(seed)
        if account is None:
            account = Account(len(self.by_seed), seed, PrivateKey.from_seed_text(seed))
            self.by_seed[seed] = account
            self.by_address[account.address] = account
            self.by_index.append(account)
        return account

    def stream(self, seed: str, actions: list[ActionSpec]) -> StreamSpec:
        a = self[seed]
        return StreamSpec(a.index, seed, a.index % self.nodes, a.nonce, actions)


def call(contract: str, method: str, *args: object, value: int = 0,
         gas: int = SETUP_GAS) -> ActionSpec:
    return ("call", CONTRACTS[contract], method, encode_call(contract, method, *args), value,
            gas)


@dataclass
class Phase:
    """One clock's worth of streams, and what must come of them."""

    name: str
    streams: list[StreamSpec]
    kinds: dict[str, int]
    #: event name -> how many must appear in the phase's heights (with a filter name)
    expect: dict[str, int] = field(default_factory=dict)
    from_height: int = 0
    to_height: int = 0
    #: When its load started (time.monotonic()); set by the runner.
    started_at: float = 0.0


@dataclass
class Net:
    """What a workload needs of the running localnet (off the clock)."""

    clients: list[RPCClient]
    chain_id: str
    accounts: Accounts
    observer: Observer
    arbiter: bytes
    referrer: bytes
    log: Callable[[str], None]
    _events: dict[tuple[str, str, int, int], list[dict[str, Any]]] = field(
        default_factory=dict)

    def sign(self, seed: str, action: ActionSpec) -> Transaction:
        a = self.accounts[seed]
        tx = build_tx(a.key, self.chain_id, a.nonce, action)
        a.nonce += 1
        return tx

    async def run(self, txs: list[Transaction], what: str) -> list[dict[str, Any]]:
        """Submit setup transactions, wait for their commit; their receipts, each ok."""
        client = self.clients[0]
        for i in range(0, len(txs), 500):
            answers = await client.broadcast_txs(txs[i:i + 500])
            bad = [a for a in answers if a.get("error")]
            if bad:
                raise RuntimeError(f"{what}: {len(bad)} refused, e.g. {bad[0]['error']}")
        hashes = [tx.hash.hex() for tx in txs]
        if not await self.observer.wait_for(hashes, 120):
            raise RuntimeError(f"{what}: not committed within 120 s")
        receipts: list[dict[str, Any]] = []
        for i in range(0, len(hashes), 50):
            found = await asyncio.gather(*(client.tx(h) for h in hashes[i:i + 50]))
            receipts += [f["receipt"] for f in found]
        for r in receipts:
            if r["status"] != "ok":
                raise RuntimeError(f"{what}: a transaction {r['status']}: {r['reason']}")
        return receipts

    async def commit(self, seed: str, action: ActionSpec, what: str) -> dict[str, Any]:
        result = await self.clients[0].broadcast_tx_commit(self.sign(seed, action))
        receipt: dict[str, Any] = result["receipt"]
        if receipt["status"] != "ok":
            raise RuntimeError(f"{what}: {receipt['status']}: {receipt['reason']}")
        return receipt

    async def events(self, contract: str, name: str, from_height: int,
                     to_height: int) -> list[dict[str, Any]]:
        """Every ``name`` event of ``contract`` in the heights (read once per range)."""
        key = (contract, name, from_height, to_height)
        if key not in self._events:
            self._events[key] = await self._read_events(*key)
        return self._events[key]

    async def _read_events(self, contract: str, name: str, from_height: int,
                           to_height: int) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for lo in range(from_height, to_height + 1, 10_000):
            hi = min(to_height, lo + 9_999)
            async for e in self.clients[0].pages("events", contract=contract, name=name,
                                                 from_height=lo, to_height=hi, limit=100):
                out.append(e)
        return out


class Workload(ABC):
    name = ""

    @abstractmethod
    def seeds(self) -> list[str]:
        """Every account the workload uses (all funded in genesis)."""

    async def setup(self, net: Net) -> dict[str, Any]:
        """Off the clock; what the report should say of it."""
        return {}

    @abstractmethod
    def phases(self, net: Net) -> AsyncIterator[Phase]:
        """The phases in order; each is run (and its heights set) before the next is
        asked for."""

    async def check(self, net: Net, phase: Phase) -> dict[str, dict[str, int]]:
        """Expected against found, per event counted."""
        return {}


def _spread(total: int, parts: int) -> list[int]:
    """``total`` split in ``parts`` as evenly as can be."""
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def transfer_streams(accounts: Accounts, seeds: list[str], total: int) -> list[StreamSpec]:
    shares = _spread(total, len(seeds))
    streams = []
    for i, (seed, n) in enumerate(zip(seeds, shares, strict=True)):
        if n:
            to = accounts[seeds[(i + 1) % len(seeds)]].address
            streams.append(accounts.stream(seed, [("transfer", to, 1)] * n))
    return streams


class Transfers(Workload):
    name = "transfer"

    def __init__(self, txs: int, senders: int | None) -> None:
        self.txs = txs
        count = senders or min(2_000, max(50, txs // 10))
        self.senders = [f"bench-sender-{i}" for i in range(max(1, min(count, txs)))]

    def seeds(self) -> list[str]:
        return list(self.senders)

    async def phases(self, net: Net) -> AsyncIterator[Phase]:
        yield Phase("transfers", transfer_streams(net.accounts, self.senders, self.txs),
                    {"transfer": self.txs})


class Commerce(Workload):
    """``escrow`` (mixed=False) and ``mixed``; see the module docstring."""

    ORDERS_PER_BUYER = 2
    SHIPS_PER_MERCHANT = 16
    GROUP_MERCHANTS = 2
    #: each phase's share of the escrow transactions: place 1, ship 1, confirm+review 2
    SHARES = (0.25, 0.25, 0.5)

    def __init__(self, txs: int, mixed: bool, senders: int | None) -> None:
        self.name = "mixed" if mixed else "escrow"
        self.mixed = mixed
        if mixed:
            self.orders = max(1, txs // 8)
            transfers = txs * 3 // 10
            joins = max(0, txs - 4 * self.orders - transfers)
        else:
            self.orders = max(1, txs // 4)
            transfers = joins = 0
        self.buyers = [f"bench-buyer-{i}"
                       for i in range(math.ceil(self.orders / self.ORDERS_PER_BUYER))]
        self.merchants = [f"bench-merchant-{i}" for i in
                          range(max(2, math.ceil(self.orders / self.SHIPS_PER_MERCHANT)))]
        # Transfers and joins per phase, in the phases' proportions.
        self.transfers = [round(transfers * s) for s in self.SHARES]
        count = senders or max(4, min(1_000, transfers // 10))
        self.senders = [f"bench-sender-{i}" for i in range(count)] if transfers else []
        # Groups of `members` members (plus their leader): each fills on its last join.
        self.members_per_group = max(2, min(100, joins // 8)) if joins else 0
        self.groups_per_phase = [round(joins * s / self.members_per_group) if joins else 0
                                 for s in self.SHARES]
        self.members = [f"bench-member-{i}" for i in range(self.members_per_group)]
        self.leaders = [f"bench-leader-{g}" for g in range(sum(self.groups_per_phase))]
        self.group_merchants = ([f"bench-gmerchant-{i}" for i in range(self.GROUP_MERCHANTS)]
                                if self.leaders else [])
        self.probes = ["bench-probe-buyer", "bench-probe-leader", "bench-probe-member"]
        # Filled in by setup:
        self.listing: dict[str, tuple[int, int]] = {}   # merchant -> (listing id, version)
        self.group_ids: list[int] = []
        self.gas: dict[str, int] = {}
        self.orders_of: dict[bytes, list[int]] = {}     # buyer address -> order ids

    def seeds(self) -> list[str]:
        return [*self.merchants, *self.group_merchants, *self.probes, *self.buyers,
                *self.senders, *self.members, *self.leaders]

    def _merchant_of(self, order: int) -> str:
        return self.merchants[order % len(self.merchants)]

    # ------------------------------------------------------------ setup

    async def setup(self, net: Net) -> dict[str, Any]:
        stock: dict[str, int] = {m: 10 for m in self.merchants}
        for j in range(self.orders):
            stock[self._merchant_of(j)] += 1
        arbiter = net.arbiter
        txs = []
        sellers = [*self.merchants, *self.group_merchants]
        for i, m in enumerate(sellers):
            txs.append(net.sign(m, call(
                "catalog", "create_listing", f"bench item {i}",
                hashlib.sha256(f"bench item {i}".encode()).digest(), PRICE, 0,
                stock.get(m, 10**9), 3 * DAY_MS, 14 * DAY_MS, 7 * DAY_MS, 2 * DAY_MS,
                arbiter, NOBODY, NOBODY, False, 5_000)))
        receipts = await net.run(txs, "create_listing")
        ids = {m: int(r["return_value"]) for m, r in zip(sellers, receipts, strict=True)}
        txs = [net.sign(m, call("catalog", "set_commissions", ids[m], 200, 100, 100))
               for m in self.merchants]
        txs += [net.sign(m, call("catalog", "set_group_deal", ids[m], GROUP_PRICE,
                                 self.members_per_group + 1, 2 * DAY_MS))
                for m in self.group_merchants]
        await net.run(txs, "set_commissions / set_group_deal")
        for i in range(0, len(sellers), 50):
            chunk = sellers[i:i + 50]
            views = await asyncio.gather(*(net.clients[0].listing(ids[m]) for m in chunk))
            for m, view in zip(chunk, views, strict=True):
                self.listing[m] = (ids[m], int(view["listing"]["version"]))
        await self._probe(net)
        if self.leaders:
            txs = []
            for g, leader in enumerate(self.leaders):
                listing, version = self.listing[self.group_merchants[g % len(
                    self.group_merchants)]]
                txs.append(net.sign(leader, call("escrow", "start_group", listing, version,
                                                 1, arbiter, NOBODY, value=GROUP_PRICE)))
            receipts = await net.run(txs, "start_group")
            self.group_ids = [_group_id(r) for r in receipts]
        return {"gas_limits": dict(self.gas), "listings": len(sellers),
                "groups": len(self.group_ids), "orders": self.orders,
                "buyers": len(self.buyers), "merchants": len(self.merchants),
                "members_per_group": self.members_per_group,
                "transfer_senders": len(self.senders)}

    async def _probe(self, net: Net) -> None:
        """One order through the flow (and one join), one transaction at a time: the gas
        each step uses sets the phases' gas limits."""
        merchant = self.merchants[0]
        listing, version = self.listing[merchant]
        buyer = self.probes[0]
        used: dict[str, int] = {}
        r = await net.commit(buyer, call("escrow", "place_order", listing, version, 1,
                                         net.arbiter, net.referrer, value=PRICE), "probe order")
        used["place_order"] = r["gas_used"]
        order = int(r["return_value"])
        for seed, method, args in ((merchant, "ship", (order, f"TRK-{order}")),
                                   (buyer, "confirm", (order, True)),
                                   (buyer, "post_review", (order, 5, "as described"))):
            contract = "reviews" if method == "post_review" else "escrow"
            r = await net.commit(seed, call(contract, method, *args), f"probe {method}")
            used[method] = r["gas_used"]
        if self.group_merchants:
            listing, version = self.listing[self.group_merchants[0]]
            r = await net.commit(self.probes[1], call("escrow", "start_group", listing, version,
                                                      1, net.arbiter, NOBODY,
                                                      value=GROUP_PRICE), "probe group")
            group = _group_id(r)
            r = await net.commit(self.probes[2], call("escrow", "join_group", group, version, 1,
                                                      net.arbiter, NOBODY, value=GROUP_PRICE),
                                 "probe join")
            used["join_group"] = r["gas_used"]
        self.gas = {m: int(g * 1.25) + 10_000 for m, g in used.items()}

    # ------------------------------------------------------------ phases

    def _extras(self, net: Net, p: int) -> tuple[list[StreamSpec], dict[str, int], int]:
        """Phase ``p``'s transfers and joins: (streams, kinds, joins)."""
        streams: list[StreamSpec] = []
        kinds: dict[str, int] = {}
        if self.senders and self.transfers[p]:
            streams += transfer_streams(net.accounts, self.senders, self.transfers[p])
            kinds["transfer"] = self.transfers[p]
        joins = 0
        if self.groups_per_phase[p]:
            first = sum(self.groups_per_phase[:p])
            groups = list(range(first, first + self.groups_per_phase[p]))
            for member in self.members:
                actions = []
                for g in groups:
                    _, version = self.listing[self.group_merchants[g % len(
                        self.group_merchants)]]
                    actions.append(call("escrow", "join_group", self.group_ids[g], version, 1,
                                        net.arbiter, NOBODY, value=GROUP_PRICE,
                                        gas=self.gas["join_group"]))
                streams.append(net.accounts.stream(member, actions))
            joins = len(groups) * len(self.members)
            kinds["join_group"] = joins
        return streams, kinds, joins

    async def phases(self, net: Net) -> AsyncIterator[Phase]:
        gas = self.gas
        # 1. orders
        streams, kinds, joins = self._extras(net, 0)
        for b, buyer in enumerate(self.buyers):
            actions = []
            for k in range(self.ORDERS_PER_BUYER):
                j = b * self.ORDERS_PER_BUYER + k
                if j >= self.orders:
                    break
                listing, version = self.listing[self._merchant_of(j)]
                actions.append(call("escrow", "place_order", listing, version, 1, net.arbiter,
                                    net.referrer, value=PRICE, gas=gas["place_order"]))
            streams.append(net.accounts.stream(buyer, actions))
        phase = Phase("orders", streams, {"place_order": self.orders, **kinds},
                      {"orders placed": self.orders, "group joins": joins})
        yield phase
        # the order ids, off the clock
        placed = await net.events("escrow", "OrderPlaced", phase.from_height + 1,
                                  phase.to_height)
        by_merchant: dict[bytes, list[int]] = {}
        self.orders_of = {}
        for e in placed:
            f = e["fields"]
            if f["group"] != "0":
                continue
            order = int(f["order_id"])
            self.orders_of.setdefault(address_from_text(f["buyer"]), []).append(order)
            by_merchant.setdefault(address_from_text(f["merchant"]), []).append(order)
        # 2. ships
        streams, kinds, joins = self._extras(net, 1)
        ships = 0
        for merchant in self.merchants:
            orders = sorted(by_merchant.get(net.accounts[merchant].address, []))
            if orders:
                streams.append(net.accounts.stream(merchant, [
                    call("escrow", "ship", o, f"TRK-{o}", gas=gas["ship"]) for o in orders]))
                ships += len(orders)
        yield Phase("ships", streams, {"ship": ships, **kinds},
                    {"orders shipped": ships, "group joins": joins})
        # 3. confirm + review
        streams, kinds, joins = self._extras(net, 2)
        reviews = 0
        for buyer in self.buyers:
            actions = []
            for o in sorted(self.orders_of.get(net.accounts[buyer].address, [])):
                actions.append(call("escrow", "confirm", o, True, gas=gas["confirm"]))
                actions.append(call("reviews", "post_review", o, 5, "as described, quick",
                                    gas=gas["post_review"]))
                reviews += 1
            if actions:
                streams.append(net.accounts.stream(buyer, actions))
        yield Phase("confirm+review", streams,
                    {"confirm": reviews, "post_review": reviews, **kinds},
                    {"orders reviewed": reviews, "group joins": joins})

    async def check(self, net: Net, phase: Phase) -> dict[str, dict[str, int]]:
        lo, hi = phase.from_height + 1, phase.to_height
        found: dict[str, int] = {}
        if hi < lo:
            return {k: {"expected": v, "found": 0} for k, v in phase.expect.items() if v}
        if phase.expect.get("orders placed") or phase.expect.get("group joins"):
            placed = await net.events("escrow", "OrderPlaced", lo, hi)
            found["orders placed"] = sum(1 for e in placed if e["fields"]["group"] == "0")
            found["group joins"] = len(placed) - found["orders placed"]
        if phase.expect.get("orders shipped"):
            changed = await net.events("escrow", "OrderChanged", lo, hi)
            found["orders shipped"] = sum(1 for e in changed
                                          if str(e["fields"]["note"]).startswith("TRK-"))
        if phase.expect.get("orders reviewed"):
            found["orders reviewed"] = len(await net.events("reviews", "Reviewed", lo, hi))
        return {k: {"expected": v, "found": found.get(k, 0)}
                for k, v in phase.expect.items() if v or found.get(k)}


def _group_id(receipt: dict[str, Any]) -> int:
    for e in receipt["events"]:
        if e["name"] == "GroupChanged":
            return int(e["fields"]["group_id"])
    raise RuntimeError("start_group committed without a GroupChanged event")


def make(workload: str, txs: int, senders: int | None) -> Workload:
    if workload == "transfer":
        return Transfers(txs, senders)
    return Commerce(txs, workload == "mixed", senders)


__all__ = ["Account", "Accounts", "Net", "Phase", "Workload", "make"]
