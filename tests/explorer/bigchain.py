"""A big chain for the explorer's performance tests: a node home holding ``blocks``
committed blocks (10,000 by default) of a market's history, built in seconds, and a
real node to serve it.

* :func:`build_big_chain` — a single-validator home (like ``commerce_node`` in
  tests/node/rpc_helpers.py: the commerce contracts and the demo listings in genesis),
  then every block built, certified and committed in this process the way a node's
  proposer and its commit path do it (``Executor.build_block``, a commit certificate
  signed by the home's validator key, ``Executor.commit``), and indexed by the node's
  own :class:`~node.index.ChainIndex` as the daemon indexes each committed block. No
  consensus timing, no sockets, unsynced writes: 10,000 blocks (5,600 transactions)
  take about 3 s on the reference machine (2 cores). The node that opens the home
  later finds its index caught up and serves the chain as it would any other.
* :func:`serve` — an async context manager running a real :class:`node.daemon.Node`
  on such a home (RPC on a free 127.0.0.1 port), which goes on making blocks.
* :class:`BigChain` — the facts a test needs to name its subjects: a busy account,
  the main merchant, a listing, an order with a long timeline, a group, an arbiter,
  old and new transactions, the height.

What the blocks hold (spread over the whole chain: a Poisson-like stream per block, so
the counts grow with ``blocks``; at 10,000 blocks, about): 3,200 transfers in and out
of an exchange's hot wallet (deposits, withdrawals, and two payout batches of 250 in
one block each: the busiest blocks), 400 transfers between buyers, 60 token transfers,
44 listings of four merchants (two from genesis; group deals, price and stock changes,
pauses), three arbiters (two registered on chain), 520 orders paid in coin or in
reward tokens and taken through their lifecycle -- shipped and confirmed, declined,
cancelled, never shipped (claimed), never confirmed (claimed), partly refunded,
returned (requested, accepted, shipped back, refunded), disputed and ruled, settled,
or left on the way (paid, shipped, delivered, return requested, disputed) -- a dozen
group deals (members leaving, joining, filling; one that fails and is refunded), 230
reviews and 100 merchant replies, and one order with a long timeline (16 escrow
events: a partial refund, a return turned into a dispute with settlement offers on
both sides, the arbiter's ruling and its payouts, the review bounty). The main
merchant has about 340 orders and 150 reviews, the escrow 1,400 transactions in its
history. Block times are ``interval_ms`` (30 s) apart on average and end about now,
so the history spans three and a half days and its newest blocks are recent.

Every transaction must succeed: a receipt that is not OK stops the build, naming the
step (so a change to the contracts' rules shows up here, not as a thin chain).
"""

from __future__ import annotations

import bisect
import logging
import random
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Callable, Generator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgpack

from chain.block import CommitCertificate, Receipt, ReceiptStatus, Vote, VoteKind
from chain.keys import PrivateKey
from chain.system import COMMERCE_CONTRACTS, ESCROW_ADDRESS
from chain.tx import Call, Transaction, Transfer
from node.chainview import ChainView
from node.config import Config, ConsensusSection, NodeSection, P2PSection, RPCSection
from node.daemon import Node
from node.genesis import GenesisValidator, genesis_document
from node.home import Home, init_home
from node.index import ChainIndex
from node.localnet import free_base_port
from node.rpc.client import RPCClient
from storage.kv import LevelDBKV
from vm.contracts import Demo, encode_call
from vm.executor import Executor

log = logging.getLogger("agora.tests.bigchain")

CHAIN_ID = "agora-bigchain"
COIN = 10**18
NOBODY = bytes(20)
MINUTE, HOUR, DAY = 60_000, 3_600_000, 86_400_000
CALL_GAS = 1_000_000
TRANSFER_GAS = 25_000
BPS = 10_000


def actor(name: str) -> PrivateKey:
    """The key of one of the chain's actors (the same in every build): ``exchange``,
    ``merchant-0`` .. ``merchant-3`` (0 is the main one), ``arbiter-0`` .. ``arbiter-2``
    (0 is genesis' demo arbiter), ``buyer-0`` .. ``buyer-47`` (0..7 also hold reward
    tokens from genesis), ``referrer-0`` .. ``referrer-2``, ``customer-0`` ..
    ``customer-199`` (the exchange's customers: they only receive)."""
    return PrivateKey.from_seed_text(f"bigchain-{name}")


EXCHANGE = actor("exchange")
MERCHANTS = [actor(f"merchant-{i}") for i in range(4)]
ARBITERS = [actor(f"arbiter-{i}") for i in range(3)]
BUYERS = [actor(f"buyer-{i}") for i in range(48)]
TOKEN_BUYERS = BUYERS[:8]
REFERRERS = [actor(f"referrer-{i}") for i in range(3)]
CUSTOMERS = [actor(f"customer-{i}").address for i in range(200)]
#: The arbiters' (fee in basis points, ruling window): the demo arbiter's from genesis.
ARBITER_TERMS = {ARBITERS[0].address: (200, 3 * DAY), ARBITERS[1].address: (300, 2 * DAY),
                 ARBITERS[2].address: (150, 12 * HOUR)}
ARBITER_NAMES = {ARBITERS[1].address: "Fair Trade Mediation",
                 ARBITERS[2].address: "Quick Resolve Co-op"}


@dataclass(frozen=True)
class BigChain:
    """A built home and what is in it. Heights and ids are exact for the chain as
    built; a node started on the home (:func:`serve`) goes on making (empty) blocks, so
    its height is at least :attr:`height`."""

    home: Path
    chain_id: str
    #: The height as built (the last block holds :attr:`new_tx`).
    height: int
    genesis_time_ms: int
    build_seconds: float
    #: The exchange's hot wallet: thousands of transfers in and out (account_history).
    busy_account: bytes
    #: The main merchant: most listings, orders and reviews; genesis' demo merchant.
    merchant: bytes
    #: The main merchant's listing with the most orders.
    listing: int
    #: The order with the longest timeline (about 16 escrow events), placed early.
    order: int
    #: A group deal that filled (its members' orders went on to ship), or 0.
    group: int
    #: A group deal that failed (closed after its deadline, its members refunded), or 0.
    failed_group: int
    #: Genesis' demo arbiter: most cases, rulings, fees.
    arbiter: bytes
    #: A buyer with many orders (and reviews).
    buyer: bytes
    #: The first transaction of the chain (an old block) and its height.
    old_tx: bytes
    old_tx_height: int
    #: A transaction in the last block built, and its height (== height).
    new_tx: bytes
    new_tx_height: int
    #: The block with the most transactions (a payout batch) and how many it holds.
    busy_block: int
    busy_block_txs: int
    merchants: tuple[bytes, ...]
    arbiters: tuple[bytes, ...]
    #: What was committed: ``txs``, ``transfers``, ``listings``, ``orders``, ``groups``,
    #: ``reviews``, ``replies``; ``tx:<step>`` (``tx:ship``, ``tx:post_review``, ...);
    #: ``escrow_txs`` and ``busy_account_txs`` (their account_history lengths, the
    #: block's own transactions only); ``merchant_orders``, ``merchant_reviews`` (the
    #: main merchant's); ``planned:<outcome>`` (orders by the end they were headed for:
    #: complete, decline, cancel, unshipped, unconfirmed, partial, return, dispute,
    #: settle, open -- those placed late are still on their way).
    counts: Mapping[str, int] = field(default_factory=dict)


# ------------------------------------------------------------------ the plan


Action = Call | Transfer


@dataclass
class Step:
    """One transaction of a flow: sent ``delay_ms`` after the flow's previous step
    committed (0: in the block being assembled). ``action`` may be a callable, called
    when the block is assembled (to read a listing's version as it is then)."""

    delay_ms: int
    key: PrivateKey
    action: Action | Callable[[], Action]
    memo: str = ""
    what: str = ""


@dataclass(frozen=True)
class Done:
    """What a flow is told of its step once committed."""

    receipt: Receipt
    height: int
    tx_hash: bytes


Flow = Generator[Step, Done, None]


def call(contract: str, method: str, *args: object, value: int = 0) -> Call:
    return Call(COMMERCE_CONTRACTS[contract], method, encode_call(contract, method, *args),
                value)


def events(receipt: Receipt, contract: bytes, name: str) -> list[list[bytes]]:
    """The fields (raw values) of ``receipt``'s events ``name`` of ``contract``."""
    return [msgpack.unpackb(e.data) for e in receipt.events
            if e.contract == contract and e.name == name]


def first_uint(receipt: Receipt, contract: bytes, name: str) -> int:
    """The first field of the first such event (an order, group or listing id)."""
    found = events(receipt, contract, name)
    assert found, f"no {name} event in the receipt"
    return int.from_bytes(found[0][0], "big")


def share_of(amount: int, bps: int) -> int:
    return amount // BPS * bps + amount % BPS * bps // BPS


@dataclass
class Listing:
    id: int
    merchant: PrivateKey
    price: int
    token_price: int
    version: int
    ship: int
    confirm: int
    returns: int
    answer: int
    arbiters: tuple[bytes, ...]
    no_arbiter_ok: bool
    group: tuple[int, int, int] | None = None  # price, size, window
    paused: bool = False
    orders: int = 0


PRODUCTS = {
    0: ["Walnut cutting board", "Oak serving tray", "Cast iron skillet, 26 cm",
        "Hand-forged bread knife", "Maple spoon set", "Cherry wood salad bowl",
        "Leather knife roll", "Olive wood pestle and mortar", "Copper measuring cups",
        "Beeswax board butter", "Ash wood rolling pin", "Carbon steel wok"],
    1: ["Sencha, first flush, 100 g", "Oolong sampler", "Hojicha, roasted, 200 g",
        "Matcha, ceremonial grade", "Jasmine pearls, 50 g", "Cast iron teapot"],
    2: ["Stoneware dinner plate", "Speckled espresso cups (pair)", "Ceramic planter",
        "Porcelain tea bowl", "Glazed serving platter", "Raku vase"],
    3: ["USB-C travel charger", "Mechanical keyboard kit", "Noise-cancelling earbuds",
        "E-ink reader cover", "Solar power bank", "Bluetooth tracker (4 pack)"],
}
MERCHANT_WEIGHTS = (0.6, 0.14, 0.14, 0.12)
PRICES = [5, 8, 12, 15, 18, 20, 25, 30, 35, 40, 55, 60, 80, 120]
#: Terms profiles: ship, confirm, return, answer windows; the arbiters (indexes into
#: ARBITERS); whether an order may go without one.
PROFILES = {
    "standard": (3 * DAY, 10 * DAY, 14 * DAY, 2 * DAY, (0, 1), False),
    "returns": (2 * DAY, 5 * DAY, 7 * DAY, DAY, (0,), False),
    "final": (2 * DAY, 7 * DAY, 0, DAY, (2,), True),
    "express": (6 * HOUR, 12 * HOUR, 0, 6 * HOUR, (2, 1), True),
}
GOOD = ["Exactly as described, well packed.", "Lovely quality, fast delivery!",
        "Second order from this shop, still great.", "Perfect gift, thank you.",
        "Arrived early and works a treat.", "Beautiful craftsmanship."]
MIXED = ["Fine, but shipping took a while.", "OK product, the box was damaged.",
         "Not quite the colour in the photo.", "Does the job."]
BAD = ["Never arrived in time.", "Broke after a week.", "Not as described at all.",
       "Had to open a dispute to get anything back."]
REPLIES = ["Thank you for your order!", "Glad you like it, come again.",
           "Sorry about the delay, we changed couriers.",
           "We are sorry to hear that; please contact us.", "Thanks for the feedback!"]
OUTCOMES = {"complete": 52, "decline": 6, "cancel": 5, "unshipped": 4, "unconfirmed": 5,
            "partial": 4, "return": 8, "dispute": 6, "settle": 4, "open": 6}


class Market:
    """The flows of the market, scheduled on the chain's heights (block times are
    fixed in advance), and the model of what the chain holds that the flows read."""

    def __init__(self, blocks: int, times: list[int], seed: int) -> None:
        self.blocks = blocks
        self.times = times
        self.rng = random.Random(seed)
        self.plan: dict[int, list[tuple[Step, Flow]]] = defaultdict(list)
        self.listings: dict[int, Listing] = {}
        self.counts: Counter[str] = Counter()
        self.facts: dict[str, Any] = {}
        self.buyer_orders: Counter[bytes] = Counter()
        self.withdrawals = 0
        self.groups_filled: list[int] = []
        self.groups_failed: list[int] = []

    # ------------------------------------------------------------ scheduling

    def height_after(self, height: int, delay_ms: int) -> int:
        """The first height after ``height`` whose time is ``delay_ms`` after it."""
        at = bisect.bisect_left(self.times, self.times[height] + delay_ms)
        return max(at, height + 1)

    def start(self, height: int, flow: Flow) -> None:
        """Start ``flow``: its first step goes into the block ``height`` (delay 0) or
        later."""
        try:
            step = next(flow)
        except StopIteration:
            return
        at = height if step.delay_ms == 0 else self.height_after(height, step.delay_ms)
        if at <= self.blocks:
            self.plan[at].append((step, flow))

    def advance(self, flow: Flow, done: Done) -> None:
        try:
            step = flow.send(done)
        except StopIteration:
            return
        at = self.height_after(done.height, step.delay_ms)
        if at <= self.blocks:  # past the chain's end: the flow stays where it is
            self.plan[at].append((step, flow))

    def soon(self, most: int = HOUR) -> int:
        return self.rng.randint(MINUTE, most)

    def within(self, window: int) -> int:
        """A delay well inside ``window``."""
        return self.rng.randint(MINUTE, max(MINUTE, min(window // 4, 3 * HOUR)))

    # ------------------------------------------------------------ arrivals

    def arrivals(self, h: int) -> None:
        """Start the flows that begin in block ``h``."""
        rng, n = self.rng, self.blocks
        if h == 1:
            assert n >= 200, "a big chain has at least 200 blocks"
            self.start(h, self.setup_flow())
        if h == max(2, n // 10):
            self.start(h, self.saga_flow())
        if h in (max(3, int(n * 0.35)), max(4, int(n * 0.75))):
            for i in range(250):  # one block of the exchange's payouts: the busiest
                self.start(h, self.payout_flow(h, i))
        if h == n:
            self.start(h, self.withdrawal_flow())  # the newest block holds a transaction
        if h == max(5, n // 3):
            self.start(h, self.group_flow(fill=False))
        open_listings = [lst for lst in self.listings.values() if not lst.paused]
        if not open_listings:
            return
        if rng.random() < 0.045:
            self.start(h, self.order_flow())
        if rng.random() < 1 / 800 and h < n - 200:
            self.start(h, self.group_flow(fill=True))
        if rng.random() < 0.12:
            self.start(h, self.deposit_flow())
        if rng.random() < 0.16:
            self.start(h, self.withdrawal_flow())
        if rng.random() < 0.04:
            self.start(h, self.peer_flow())
        if rng.random() < 0.006:
            self.start(h, self.token_flow())
        if rng.random() < 1 / 600:
            self.start(h, self.listing_flow(rng.choices(range(4), MERCHANT_WEIGHTS)[0]))
        if rng.random() < 0.002:
            self.start(h, self.price_flow())
        if rng.random() < 0.001:
            self.start(h, self.stock_flow())
        if rng.random() < 0.0005:
            self.start(h, self.pause_flow())

    # ------------------------------------------------------------ transfers

    def transfer(self, key: PrivateKey, to: bytes, amount: int, memo: str = "") -> Step:
        return Step(0, key, Transfer(to, amount), memo, "transfer")

    def deposit_flow(self) -> Flow:
        buyer = self.rng.choice(BUYERS)
        yield self.transfer(buyer, EXCHANGE.address, self.rng.randint(1, 500) * COIN,
                            "deposit")

    def withdrawal_flow(self) -> Flow:
        self.withdrawals += 1
        to = self.rng.choice([b.address for b in BUYERS] + CUSTOMERS
                             + [m.address for m in MERCHANTS])
        yield self.transfer(EXCHANGE, to, self.rng.randint(1, 2_000) * COIN // 10,
                            f"withdrawal #{self.withdrawals}")

    def payout_flow(self, h: int, i: int) -> Flow:
        yield self.transfer(EXCHANGE, CUSTOMERS[i % len(CUSTOMERS)],
                            self.rng.randint(1, 100) * COIN, f"payout batch {h} #{i}")

    def peer_flow(self) -> Flow:
        a, b = self.rng.sample(BUYERS, 2)
        memo = self.rng.choice(["", "", "dinner", "rent share", "thanks!", "gift"])
        yield self.transfer(a, b.address, self.rng.randint(1, 50) * COIN, memo)

    def token_flow(self) -> Flow:
        a = self.rng.choice(TOKEN_BUYERS)
        b = self.rng.choice([x for x in BUYERS if x is not a])
        yield Step(0, a, call("token", "transfer", b.address, self.rng.randint(1, 20) * COIN),
                   what="token.transfer")

    # ------------------------------------------------------------ listings

    def setup_flow(self) -> Flow:
        """Block 1 on: two more arbiters register, the genesis listings get stock, and
        each merchant publishes its first listings."""
        for key in ARBITERS[1:]:
            fee, window = ARBITER_TERMS[key.address]
            done = yield Step(0, key, call("catalog", "register_arbiter",
                                           ARBITER_NAMES[key.address], fee, window),
                              what="register_arbiter")
            self.facts.setdefault("old_tx", (done.tx_hash, done.height))
        m = MERCHANTS[0]
        for lid in (1, 2):
            yield Step(MINUTE, m, call("catalog", "set_stock", lid, 100_000), what="set_stock")
        # The demo's listings (vm.contracts.publish_demo): the mug, the tea (group deal).
        self.listings[1] = Listing(1, m, 25 * COIN, 25 * COIN, 2, 3 * DAY, 14 * DAY, 7 * DAY,
                                   2 * DAY, (ARBITERS[0].address,), False)
        self.listings[2] = Listing(2, m, 40 * COIN, 0, 3, 2 * DAY, 10 * DAY, 0, 2 * DAY,
                                   (ARBITERS[0].address,), True, (30 * COIN, 3, 2 * DAY))
        for merchant, count in ((0, 9), (1, 4), (2, 4), (3, 4)):
            for _ in range(count):
                self.start(self._now, self.listing_flow(merchant, delay=self.soon(4 * HOUR)))
        # One more group deal, short-windowed: its groups fill (or fail) within hours.
        self.start(self._now, self.listing_flow(0, delay=self.soon(), group=(45 * COIN, 4,
                                                                             6 * HOUR)))

    def listing_flow(self, merchant: int, *, delay: int = 0,
                     group: tuple[int, int, int] | None = None) -> Flow:
        rng = self.rng
        m = MERCHANTS[merchant]
        profile = rng.choice(list(PROFILES)) if group is None else "final"
        ship, confirm, returns, answer, arbiters, no_arbiter_ok = PROFILES[profile]
        arbs = tuple(ARBITERS[i].address for i in arbiters)
        title = rng.choice(PRODUCTS[merchant])
        price = rng.choice(PRICES) * COIN
        token_price = rng.choice(PRICES) * COIN if rng.random() < 0.4 else 0
        description = random.Random(title).randbytes(32)
        a = (*arbs, NOBODY, NOBODY, NOBODY)[:3]
        done = yield Step(delay, m, call("catalog", "create_listing", title, description, price,
                                         token_price, 100_000, ship, confirm, returns, answer,
                                         a[0], a[1], a[2], no_arbiter_ok, 5_000),
                          what="create_listing")
        lid = first_uint(done.receipt, COMMERCE_CONTRACTS["catalog"], "ListingCreated")
        version = 1
        if rng.random() < 0.7 or group is not None:
            referral, cashback, bounty = (rng.choice([0, 100, 200, 300]), rng.choice([50, 100, 200]),
                                          rng.choice([50, 100, 200]))
            yield Step(self.soon(10 * MINUTE), m, call("catalog", "set_commissions", lid,
                                                       referral, cashback, bounty),
                       what="set_commissions")
            version += 1
        if group is not None:
            yield Step(self.soon(10 * MINUTE), m, call("catalog", "set_group_deal", lid, *group),
                       what="set_group_deal")
            version += 1
        self.listings[lid] = Listing(lid, m, price, token_price, version, ship, confirm, returns,
                                     answer, arbs, no_arbiter_ok, group)

    def _changeable(self) -> list[Listing]:
        return [x for x in self.listings.values() if x.group is None and not x.paused]

    def price_flow(self) -> Flow:
        choices = self._changeable()
        if not choices:
            return
        lst = self.rng.choice(choices)

        def action() -> Action:
            # Assembled now: an order of this listing later in the block reads the new
            # version (an earlier one the old: the order in the block is the order run).
            lst.version += 1
            lst.price = max(COIN, lst.price * self.rng.randint(85, 115) // 100)
            return call("catalog", "set_price", lst.id, lst.price, lst.token_price)

        yield Step(0, lst.merchant, action, what="set_price")

    def stock_flow(self) -> Flow:
        choices = self._changeable()
        if choices:
            lst = self.rng.choice(choices)
            yield Step(0, lst.merchant, call("catalog", "set_stock", lst.id,
                                             self.rng.randint(50_000, 100_000)),
                       what="set_stock")

    def pause_flow(self) -> Flow:
        choices = [x for x in self._changeable() if x.id != 1]  # the saga's listing
        if not choices:
            return
        lst = self.rng.choice(choices)
        lst.paused = True  # from now: no order is placed in the block the pause is in
        yield Step(0, lst.merchant, call("catalog", "pause", lst.id), what="pause")
        yield Step(self.rng.randint(HOUR, DAY), lst.merchant, call("catalog", "resume", lst.id),
                   what="resume")
        lst.paused = False

    # ------------------------------------------------------------ orders

    def pick_listing(self) -> Listing:
        open_listings = [x for x in self.listings.values() if not x.paused]
        by_merchant = defaultdict(list)
        for x in open_listings:
            by_merchant[x.merchant.address].append(x)
        merchants = [m for m in MERCHANTS if m.address in by_merchant]
        weights = [MERCHANT_WEIGHTS[MERCHANTS.index(m)] for m in merchants]
        m = self.rng.choices(merchants, weights)[0]
        return self.rng.choice(by_merchant[m.address])

    def place(self, lst: Listing, buyer: PrivateKey, arbiter: bytes, referrer: bytes,
              quantity: int, tokens: bool) -> Step:
        if tokens:
            def action() -> Action:
                data = (lst.id.to_bytes(32, "big") + lst.version.to_bytes(32, "big")
                        + quantity.to_bytes(32, "big") + arbiter + referrer)
                return call("token", "transfer_and_call", ESCROW_ADDRESS,
                            lst.token_price * quantity, data)
        else:
            def action() -> Action:
                return call("escrow", "place_order", lst.id, lst.version, quantity, arbiter,
                            referrer, value=lst.price * quantity)
        return Step(0, buyer, action, what="place_order")

    def order_flow(self) -> Flow:
        rng = self.rng
        lst = self.pick_listing()
        if lst.group is not None and lst.price == 0:
            return
        buyer = rng.choice(BUYERS)
        arbiter = rng.choice(lst.arbiters) if lst.arbiters else NOBODY
        if lst.no_arbiter_ok and rng.random() < 0.2:
            arbiter = NOBODY
        referrer = rng.choice(REFERRERS).address if rng.random() < 0.3 else NOBODY
        quantity = 1 if rng.random() < 0.85 else rng.randint(2, 3)
        tokens = lst.token_price > 0 and buyer in TOKEN_BUYERS and rng.random() < 0.4
        outcome = rng.choices(list(OUTCOMES), list(OUTCOMES.values()))[0]
        if outcome == "return" and lst.returns == 0:
            outcome = "complete"
        if outcome == "dispute" and arbiter == NOBODY:
            outcome = "settle"
        paid = (lst.token_price if tokens else lst.price) * quantity
        done = yield self.place(lst, buyer, arbiter, referrer, quantity, tokens)
        oid = self.placed(done, lst, buyer, tokens)
        self.counts[f"planned:{outcome}"] += 1
        yield from self.lifecycle(oid, lst, buyer, arbiter, paid, outcome)

    def placed(self, done: Done, lst: Listing, buyer: PrivateKey, tokens: bool) -> int:
        oid = first_uint(done.receipt, ESCROW_ADDRESS, "OrderPlaced")
        lst.orders += 1
        self.buyer_orders[buyer.address] += 1
        if lst.merchant is MERCHANTS[0]:
            self.counts["merchant_orders"] += 1
        return oid

    def escrow(self, delay: int, key: PrivateKey, method: str, *args: object,
               value: int = 0) -> Step:
        return Step(delay, key, call("escrow", method, *args, value=value), what=method)

    def lifecycle(self, oid: int, lst: Listing, buyer: PrivateKey, arbiter: bytes, held: int,
                  outcome: str, *, from_fill: bool = False) -> Flow:
        """Take order ``oid`` (PAID, holding ``held``) to its ``outcome``, then maybe a
        review and a reply."""
        rng, m = self.rng, lst.merchant
        anyone = rng.choice(BUYERS + REFERRERS)
        if outcome == "decline":
            yield self.escrow(self.within(lst.ship), m, "decline", oid)
            return
        if outcome == "cancel":
            yield self.escrow(self.within(lst.ship), buyer, "cancel", oid)
            return
        if outcome == "unshipped":
            yield self.escrow(lst.ship + self.soon(), anyone, "claim", oid)
            yield from self.review(oid, lst, buyer, rng.choice([1, 1, 2]))
            return
        # An order left on its way: where it stops.
        stop = rng.choice(["paid", "shipped", "delivered", "return_requested", "disputed"]) \
            if outcome == "open" else ""
        if stop == "paid":
            return  # the merchant has not shipped yet
        if outcome == "partial":
            part = held // rng.choice([4, 5, 10])
            yield self.escrow(self.within(lst.ship), m, "refund", oid, part)
            held -= part
        yield self.escrow(self.within(lst.ship), m, "ship", oid,
                          f"{rng.choice(['DHL', 'UPS', 'PostNL', 'GLS'])}-{oid:07d}")
        if stop == "disputed" and arbiter != NOBODY:
            yield self.escrow(self.within(lst.confirm), buyer, "open_dispute", oid,
                              value=share_of(held, ARBITER_TERMS[arbiter][0]))
            return  # the arbiter has not ruled yet
        if stop in ("delivered", "return_requested") and lst.returns:
            yield self.escrow(self.within(lst.confirm), buyer, "confirm", oid, False)
            if stop == "return_requested":
                yield self.escrow(self.within(lst.returns), buyer, "request_return", oid)
            return
        if stop:
            return  # SHIPPED, waiting for the buyer
        rating = rng.choice([4, 5, 5, 5, 3])
        if outcome in ("complete", "partial"):
            yield self.escrow(self.within(lst.confirm), buyer, "confirm", oid, True)
        elif outcome == "unconfirmed":
            # Nobody confirms: anyone applies what silence decides at the deadline.
            yield self.escrow(lst.confirm + self.soon(), anyone, "claim", oid)
            if lst.returns:
                return  # DELIVERED: its return window runs for days
        elif outcome == "return":
            yield self.escrow(self.within(lst.confirm), buyer, "confirm", oid, False)
            yield self.escrow(self.within(lst.returns), buyer, "request_return", oid)
            yield self.escrow(self.within(lst.answer), m, "accept_return", oid)
            yield self.escrow(self.within(lst.answer), buyer, "ship_back", oid,
                              f"RET-{oid:07d}")
            yield self.escrow(self.within(lst.answer), m, "confirm_receipt", oid)
            rating = rng.choice([2, 3, 4])
        elif outcome == "dispute":
            fee, ruling = ARBITER_TERMS[arbiter]
            yield self.escrow(self.within(lst.confirm), buyer, "open_dispute", oid,
                              value=share_of(held, fee))
            to_buyer = rng.choice([0, held // 2, held])
            arbiter_key = next(k for k in ARBITERS if k.address == arbiter)
            yield self.escrow(self.within(ruling), arbiter_key, "resolve", oid, to_buyer)
            rating = 1 if to_buyer == 0 else rng.choice([2, 3])
        elif outcome == "settle":
            to_buyer = held // rng.choice([2, 3, 4])
            yield self.escrow(self.within(lst.confirm), buyer, "settle", oid, to_buyer)
            yield self.escrow(self.within(lst.confirm), m, "settle", oid, to_buyer)
            rating = rng.choice([2, 3, 4])
        if rng.random() < 0.6:
            yield from self.review(oid, lst, buyer, rating)

    def review(self, oid: int, lst: Listing, buyer: PrivateKey, rating: int) -> Flow:
        rng = self.rng
        text = rng.choice(GOOD if rating >= 4 else MIXED if rating >= 2 else BAD)
        yield Step(self.soon(6 * HOUR), buyer, call("reviews", "post_review", oid, rating, text),
                   what="post_review")
        if lst.merchant is MERCHANTS[0]:
            self.counts["merchant_reviews"] += 1
        if rng.random() < 0.5:
            yield Step(self.soon(DAY), lst.merchant,
                       call("reviews", "reply", oid, rng.choice(REPLIES)), what="reply")

    def saga_flow(self) -> Flow:
        """The order with the long timeline: on the mug (genesis listing 1: returns,
        the demo arbiter), referred; partly refunded, shipped, delivered, a return
        asked for, settlement offers that do not meet, the merchant contests (a
        dispute), another offer, the arbiter's ruling and its payouts, a review and a
        reply."""
        lst = self.listings[1]
        buyer, m, arbiter = BUYERS[-1], lst.merchant, ARBITERS[0]
        paid = lst.price
        done = yield self.place(lst, buyer, arbiter.address, REFERRERS[0].address, 1, False)
        oid = self.placed(done, lst, buyer, False)
        self.facts["saga"] = oid
        held = paid - 3 * COIN
        yield self.escrow(self.soon(), m, "refund", oid, 3 * COIN)
        yield self.escrow(self.soon(), m, "ship", oid, f"DHL-{oid:07d}")
        yield self.escrow(self.soon(), buyer, "confirm", oid, False)
        yield self.escrow(self.soon(), buyer, "request_return", oid)
        yield self.escrow(self.soon(), buyer, "settle", oid, held)
        yield self.escrow(self.soon(), m, "settle", oid, held // 4)
        fee = ARBITER_TERMS[arbiter.address][0]
        yield self.escrow(self.soon(), m, "contest", oid, value=share_of(held, fee))
        yield self.escrow(self.soon(), buyer, "settle", oid, held // 2)
        yield self.escrow(self.soon(), arbiter, "resolve", oid, held * 3 // 5)
        yield Step(self.soon(), buyer, call("reviews", "post_review", oid, 2,
                                            "Returned it; the arbiter had to decide. Fair "
                                            "in the end."), what="post_review")
        self.counts["merchant_reviews"] += 1
        yield Step(self.soon(), m, call("reviews", "reply", oid,
                                        "Sorry it came to that. We now pack mugs twice."),
                   what="reply")

    # ------------------------------------------------------------ group deals

    def group_flow(self, fill: bool) -> Flow:
        """A group deal on a listing that has one: the leader starts it, members join
        (one leaves and is replaced); filled, every member's order ships and goes on;
        unfilled (``fill`` False), its deadline passes, anyone closes it and claims
        each member's refund."""
        rng = self.rng
        deals = [x for x in self.listings.values() if x.group is not None]
        if not deals:
            return
        # One that fails: the shortest deadline, so that it passes within the chain.
        lst = rng.choice(deals) if fill else min(deals, key=lambda x: x.group[2] if x.group else 0)
        assert lst.group is not None
        gprice, size, window = lst.group
        arbiter = lst.arbiters[0] if lst.arbiters else NOBODY
        people = rng.sample(BUYERS, size + 2)
        leader, others = people[0], people[1:]

        def start() -> Action:
            return call("escrow", "start_group", lst.id, lst.version, 1, arbiter, NOBODY,
                        value=gprice)

        def join(who: PrivateKey) -> Step:
            def action() -> Action:
                return call("escrow", "join_group", gid, lst.version, 1, arbiter, NOBODY,
                            value=gprice)
            return Step(rng.randint(MINUTE, window // (2 * size + 2)), who, action,
                        what="join_group")

        done = yield Step(0, leader, start, what="start_group")
        gid = first_uint(done.receipt, ESCROW_ADDRESS, "GroupChanged")
        members = [(self.placed(done, lst, leader, False), leader)]
        joiners = others[:size - 1] if fill else others[:1]
        if fill and rng.random() < 0.5:
            # One joins, then leaves; someone else takes the place.
            leaver = others[-1]
            done = yield join(leaver)
            left = self.placed(done, lst, leaver, False)
            yield self.escrow(rng.randint(MINUTE, window // (2 * size + 2)), leaver,
                              "leave_group", left)
        for who in joiners:
            done = yield join(who)
            members.append((self.placed(done, lst, who, False), who))
        if not fill:
            self.groups_failed.append(gid)
            yield self.escrow(window + self.soon(), rng.choice(REFERRERS), "close_group", gid)
            for oid, _ in members:
                yield self.escrow(self.soon(10 * MINUTE), rng.choice(REFERRERS), "claim", oid)
            return
        self.groups_filled.append(gid)
        state = int.from_bytes(events(done.receipt, ESCROW_ADDRESS, "GroupChanged")[0][3], "big")
        assert state == 2, "the group did not fill"
        for oid, who in members:
            outcome = rng.choices(["complete", "complete", "decline", "open"])[0]
            self.counts[f"planned:{outcome}"] += 1
            self.start(done.height + 1, self.lifecycle(oid, lst, who, arbiter, gprice, outcome))

    # ------------------------------------------------------------ the driver's hooks

    _now = 0

    def due(self, h: int) -> list[tuple[Step, Flow]]:
        self._now = h
        self.arrivals(h)
        return self.plan.pop(h, [])


def block_times(blocks: int, interval_ms: int, end_ms: int, rng: random.Random) -> list[int]:
    """times[0] the genesis time, times[h] block h's: ``interval_ms`` apart on average
    (half to one and a half of it), the last one ``end_ms``."""
    steps = [rng.randint(interval_ms // 2, interval_ms * 3 // 2) for _ in range(blocks)]
    start = end_ms - sum(steps)
    start -= start % 1000  # genesis_time in whole seconds
    times = [start]
    for s in steps:
        times.append(times[-1] + s)
    return times


def market_genesis(chain_id: str, validator: PrivateKey, time_ms: int) -> dict[str, Any]:
    balances = {EXCHANGE.address: 10**9 * COIN}
    balances.update({k.address: 10**6 * COIN for k in MERCHANTS + ARBITERS + BUYERS + REFERRERS})
    return genesis_document(
        chain_id, [GenesisValidator(validator.public_key, 10, "validator-0")],
        time_ms=time_ms, balances=balances, commerce=True,
        token_balances={k.address: 10_000 * COIN for k in TOKEN_BUYERS},
        demo=Demo(merchant=MERCHANTS[0].address, arbiter=ARBITERS[0].address))


# ------------------------------------------------------------------ the build


def build_big_chain(path: Path, blocks: int = 10_000, *, seed: int = 2026,
                    interval_ms: int = 30_000, chain_id: str = CHAIN_ID,
                    index: bool = True) -> BigChain:
    """Make a node home at ``path`` (which must not exist yet or be empty) holding
    ``blocks`` committed blocks of a market's history; the last block's time is about
    now. ``index`` False leaves the commerce index to the node, which catches up when
    it starts (as after an upgrade)."""
    started = time.perf_counter()
    init_home(path, chain_id=chain_id, validator=True)
    home = Home(path)
    validator = home.validator_key()
    rng = random.Random(seed)
    times = block_times(blocks, interval_ms, int(time.time() * 1000) - interval_ms, rng)
    home.write_genesis(market_genesis(chain_id, validator, times[0]))
    write_config(home)
    genesis = home.genesis()
    market = Market(blocks, times, seed)
    nonces: dict[bytes, int] = {}
    counts: Counter[str] = Counter()
    home.data_dir.mkdir(parents=True, exist_ok=True)
    kv = LevelDBKV(str(home.data_dir / "chain"))
    txs_total = 0
    busiest = (0, 0)
    new_tx: tuple[bytes, int] | None = None
    try:
        ex = Executor(kv, genesis, history=home.config().storage.history)
        chain_index = None
        if index:
            chain_index = ChainIndex(kv, ChainView(ex))
            chain_index.catch_up()  # genesis' listings and arbiter
        vhash = ex.validator_set(1).hash
        last_commit: CommitCertificate | None = None
        for h in range(1, blocks + 1):
            due = market.due(h)
            txs = []
            for step, _ in due:
                action = step.action() if callable(step.action) else step.action
                sender = step.key.address
                nonce = nonces.get(sender, 0)
                nonces[sender] = nonce + 1
                gas = TRANSFER_GAS if type(action) is Transfer else CALL_GAS
                txs.append(Transaction.create(step.key, chain_id, nonce, action,
                                              gas_limit=gas, gas_price=1, memo=step.memo))
            if ex.validator_set(h + 1).hash != vhash:
                raise AssertionError("the validator set changed")
            block = ex.build_block(txs, time_ms=times[h], proposer=validator.address,
                                   validators_hash=vhash, next_validators_hash=vhash,
                                   last_commit=last_commit)
            certificate = CommitCertificate.from_votes([Vote.create(
                validator, chain_id, VoteKind.COMMIT, h, 0, block.hash)])
            ex.execute_block(block)  # the proposer's own execution, kept: no second run
            receipts = ex.commit(block, certificate, sync=False)
            if chain_index is not None:
                chain_index.index_block(block, receipts)
            last_commit = certificate
            txs_total += len(txs)
            if len(txs) > busiest[1]:
                busiest = (h, len(txs))
            for (step, flow), tx, receipt in zip(due, txs, receipts, strict=True):
                if receipt.status != ReceiptStatus.OK:
                    raise AssertionError(
                        f"block {h}: {step.what or type(tx.action).__name__} by "
                        f"{step.key.address.hex()[:12]} failed: {receipt.reason}")
                if h == blocks:
                    new_tx = (tx.hash, h)
                tally(counts, step, tx)
                market.advance(flow, Done(receipt, h, tx.hash))
        if chain_index is not None:
            chain_index.close()
    finally:
        kv.close()
    seconds = time.perf_counter() - started
    counts.update(market.counts)
    counts["txs"] = txs_total
    counts["transfers"] = counts["tx:transfer"]
    counts["orders"] = counts["tx:place_order"] + counts["tx:start_group"] + \
        counts["tx:join_group"]
    counts["groups"] = counts["tx:start_group"]
    counts["listings"] = counts["tx:create_listing"] + 2  # and genesis' two
    counts["reviews"] = counts["tx:post_review"]
    counts["replies"] = counts["tx:reply"]
    main = MERCHANTS[0]
    listing = max((x for x in market.listings.values() if x.merchant is main),
                  key=lambda x: x.orders).id
    old_tx = market.facts["old_tx"]
    assert new_tx is not None
    log.info("built %d blocks (%d transactions) in %.1f s", blocks, txs_total, seconds)
    return BigChain(
        home=path, chain_id=chain_id, height=blocks, genesis_time_ms=times[0],
        build_seconds=seconds, busy_account=EXCHANGE.address, merchant=main.address,
        listing=listing, order=market.facts.get("saga", 0),
        group=market.groups_filled[0] if market.groups_filled else 0,
        failed_group=market.groups_failed[0] if market.groups_failed else 0,
        arbiter=ARBITERS[0].address, buyer=market.buyer_orders.most_common(1)[0][0],
        old_tx=old_tx[0], old_tx_height=old_tx[1], new_tx=new_tx[0], new_tx_height=new_tx[1],
        busy_block=busiest[0], busy_block_txs=busiest[1],
        merchants=tuple(k.address for k in MERCHANTS),
        arbiters=tuple(k.address for k in ARBITERS), counts=counts)


def verify_chain(path: Path) -> dict[str, float]:
    """Check a built home (no node running on it) the way a syncing node would take
    its blocks, and its index against the daemon's: every block's certificate against
    its height's validator set, every block executed again on a fresh store (from
    genesis) giving the state and receipts roots its header names; then a commerce
    index built over that fresh store by catching up from genesis, as a new node does,
    must hold exactly the keys and values of the home's index. Raises AssertionError;
    returns the seconds each part took."""
    from storage.kv import MemoryKV

    home = Home(path)
    genesis = home.genesis()
    kv = LevelDBKV(str(home.data_dir / "chain"))
    took = {}
    try:
        stored = Executor(kv, genesis, history=home.config().storage.history)
        fresh_kv = MemoryKV()
        fresh = Executor(fresh_kv, genesis, history=home.config().storage.history)
        started = time.perf_counter()
        for h in range(1, stored.height + 1):
            block, certificate = stored.blocks.block(h), stored.blocks.commit(h)
            assert block is not None and certificate is not None, f"block {h} is missing"
            certificate.verify(genesis.chain_id, fresh.validator_set(h), height=h,
                               block_hash=block.hash)
            root, _ = fresh.execute_block(block)
            assert root == block.header.state_root, f"block {h}: another state root"
            fresh.commit(block, certificate, sync=False)
        assert fresh.state_root() == stored.state_root()
        took["replay"] = time.perf_counter() - started
        started = time.perf_counter()
        index = ChainIndex(fresh_kv, ChainView(fresh))
        index.catch_up()
        took["index_catch_up"] = time.perf_counter() - started
        from node.index import PREFIX
        ours = dict(kv.iterate(PREFIX))
        theirs = dict(fresh_kv.iterate(PREFIX))
        assert ours.keys() == theirs.keys(), \
            f"index keys differ: {len(ours.keys() - theirs.keys())} only built here, " \
            f"{len(theirs.keys() - ours.keys())} only caught up"
        assert ours == theirs, "index values differ"
    finally:
        kv.close()
    return took


def tally(counts: Counter[str], step: Step, tx: Transaction) -> None:
    """Count a committed transaction: by kind (``tx:<what>``), and into the histories
    of the escrow and of the busy account."""
    action = tx.action
    counts[f"tx:{step.what}"] += 1
    if type(action) is Call and action.contract == ESCROW_ADDRESS:
        counts["escrow_txs"] += 1
    if EXCHANGE.address in (tx.sender_address, getattr(action, "to", None)):
        counts["busy_account_txs"] += 1


def write_config(home: Home, rpc: Mapping[str, Any] | None = None,
                 idle_interval_ms: int = 1_000) -> str:
    """A validator's config on free 127.0.0.1 ports; the RPC listen address."""
    port = free_base_port(2)
    listen = f"127.0.0.1:{port + 1}"
    home.write_config(Config(
        node=NodeSection(mode="validator", moniker="bigchain"),
        p2p=P2PSection(listen=f"127.0.0.1:{port}", pex=False),
        rpc=RPCSection(listen=listen, **dict(rpc or {})),
        consensus=ConsensusSection(block_interval_ms=50, idle_interval_ms=idle_interval_ms,
                                   view_timeout_ms=1_000)))
    return listen


# ------------------------------------------------------------------ the node


@dataclass
class BigNode:
    node: Node
    url: str
    client: RPCClient


@asynccontextmanager
async def serve(chain: BigChain | Path, *, rpc: Mapping[str, Any] | None = None,
                idle_interval_ms: int = 1_000, timeout: float = 30.0
                ) -> AsyncIterator[BigNode]:
    """A real node (consensus, p2p, RPC on free 127.0.0.1 ports) on a built home; it
    goes on making blocks (empty ones every ``idle_interval_ms``). ``rpc``: more
    ``[rpc]`` settings (``max_page``, ...)."""
    home = Home(chain.home if isinstance(chain, BigChain) else chain)
    listen = write_config(home, rpc, idle_interval_ms)
    node = Node(home)
    await node.start()
    try:
        async with RPCClient(f"http://{listen}/", timeout=timeout) as client:
            yield BigNode(node, f"http://{listen}/", client)
    finally:
        await node.stop()
