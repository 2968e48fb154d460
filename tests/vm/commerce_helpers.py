"""A market to test the commerce contracts in: the whole set deployed by the harness at
its genesis addresses, funded actors, listings with sensible defaults, a movable clock,
and the checks every commerce test leans on (what each party holds in coin and tokens,
and that the escrow holds exactly what its open orders are owed).

    m = Market()
    lid = m.listing()                       # by MERCHANT, arbiter ARBITER accepted
    oid = m.order(lid)                      # by BUYER, paying price x 1 in coin
    m.call("escrow", "ship", oid, "TRK", sender=MERCHANT)
    m.advance(CONFIRM_W + 1)
    m.escrow.claim(oid, sender=STRANGER)
    m.assert_conserved()
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from vm.contracts import Commerce, CommerceLimits
from vm.testing import Env, Reverted

MINUTE, HOUR, DAY = 60_000, 3_600_000, 86_400_000
NOBODY = bytes(20)

MERCHANT, BUYER, ARBITER = b"\x3e" * 20, b"\xb1" * 20, b"\xa8" * 20
REFERRER, STRANGER, ARBITER_2 = b"\x5e" * 20, b"\x57" * 20, b"\xa9" * 20
BUYER_2, BUYER_3, MERCHANT_2 = b"\xb2" * 20, b"\xb3" * 20, b"\x3f" * 20
ACTORS = (MERCHANT, BUYER, ARBITER, REFERRER, STRANGER, ARBITER_2, BUYER_2, BUYER_3,
          MERCHANT_2)

# States (escrow.agc)
PAID, SHIPPED, DELIVERED, COMPLETED, DECLINED, CANCELLED = 1, 2, 3, 4, 5, 6
RETURN_REQUESTED, REFUNDED, DISPUTED, RESOLVED, RETURN_SHIPPED, JOINED = 7, 8, 9, 10, 11, 12
OPEN_STATES = {PAID, SHIPPED, DELIVERED, RETURN_REQUESTED, RETURN_SHIPPED, DISPUTED, JOINED}
ENDED_STATES = {COMPLETED, DECLINED, CANCELLED, REFUNDED, RESOLVED}
GROUP_OPEN, GROUP_FILLED, GROUP_FAILED = 1, 2, 3
STATE_NAMES = {1: "PAID", 2: "SHIPPED", 3: "DELIVERED", 4: "COMPLETED", 5: "DECLINED",
               6: "CANCELLED", 7: "RETURN_REQUESTED", 8: "REFUNDED", 9: "DISPUTED",
               10: "RESOLVED", 11: "RETURN_SHIPPED", 12: "JOINED"}

# Distinct windows, so a deadline computed from the wrong one shows.
SHIP_W, CONFIRM_W, RETURN_W, ANSWER_W, RULING_W = (2 * DAY, 5 * DAY, 8 * DAY, 3 * DAY,
                                                   4 * DAY)
GROUP_W = 6 * DAY
REVIEW_W = 30 * DAY
PRICE = 1_000_003           # odd, so rounding of every share shows
TOKEN_PRICE = 700_001
FEE_BPS = 250               # the arbiter's
REFERRAL_BPS, CASHBACK_BPS, BOUNTY_BPS = 150, 75, 100
DEFAULT_REFUND_BPS = 6_000
DESCRIPTION = hashlib.sha256(b"a description kept off chain").digest()
BPS = 10_000


def share(amount: int, bps: int) -> int:
    return amount * bps // BPS


@dataclass(frozen=True)
class Split:
    """Where an order's money went when it ended with `to_buyer` refunded."""

    refund: int
    kept: int
    referral: int
    cashback: int
    bounty: int
    merchant: int


def split(held: int, to_buyer: int, *, referral_bps: int = REFERRAL_BPS,
          cashback_bps: int = CASHBACK_BPS, bounty_bps: int = BOUNTY_BPS,
          referrer: bool = True) -> Split:
    """The reward rule, written out independently of the contract."""
    kept = held - to_buyer
    referral = share(kept, referral_bps) if referrer else 0
    cashback = share(kept, cashback_bps)
    bounty = share(kept, bounty_bps)
    return Split(to_buyer, kept, referral, cashback, bounty,
                 kept - referral - cashback - bounty)


class Market:
    """The commerce set in a fresh in-memory chain state, with funded actors."""

    def __init__(self, limits: CommerceLimits | None = None, *, arbiters: bool = True,
                 funding: int = 10**30) -> None:
        self.env = Env()
        self.commerce: Commerce = self.env.deploy_commerce(
            limits=limits or CommerceLimits(max_window_ms=60 * DAY, max_fee_bps=1_000,
                                            max_commission_bps=3_000, max_group_size=10_000,
                                            review_window_ms=REVIEW_W))
        for actor in ACTORS:
            self.env.fund(actor, funding)
        self.token = self.commerce.token
        self.catalog = self.commerce.catalog
        self.escrow = self.commerce.escrow
        self.reviews = self.commerce.reviews
        if arbiters:
            self.catalog.register_arbiter("Ann the arbiter", FEE_BPS, RULING_W, sender=ARBITER)
            self.catalog.register_arbiter("Bo the arbiter", 0, DAY, sender=ARBITER_2)

    # ------------------------------------------------------------ time

    @property
    def now(self) -> int:
        return self.env.time_ms

    def advance(self, ms: int) -> None:
        self.env.time_ms += ms

    def at(self, time_ms: int) -> None:
        assert time_ms >= self.env.time_ms, "time never runs backwards"
        self.env.time_ms = time_ms

    # ------------------------------------------------------------ listings and orders

    def listing(self, *, merchant: bytes = MERCHANT, price: int = PRICE,
                token_price: int = TOKEN_PRICE, stock: int = 1_000, ship: int = SHIP_W,
                confirm: int = CONFIRM_W, returns: int = RETURN_W, answer: int = ANSWER_W,
                arbiters: tuple[bytes, ...] = (ARBITER,), no_arbiter_ok: bool = False,
                default_refund_bps: int = DEFAULT_REFUND_BPS,
                commissions: tuple[int, int, int] | None = (REFERRAL_BPS, CASHBACK_BPS,
                                                            BOUNTY_BPS),
                group: tuple[int, int, int] | None = None, title: str = "A mug") -> int:
        a = (*arbiters, NOBODY, NOBODY, NOBODY)[:3]
        lid = self.catalog.create_listing(title, DESCRIPTION, price, token_price, stock, ship,
                                          confirm, returns, answer, a[0], a[1], a[2],
                                          no_arbiter_ok, default_refund_bps, sender=merchant)
        if commissions is not None:
            self.catalog.set_commissions(lid, *commissions, sender=merchant)
        if group is not None:
            self.catalog.set_group_deal(lid, *group, sender=merchant)
        return lid

    def version(self, lid: int) -> int:
        return self.catalog.listing(lid)["version"]

    def price(self, lid: int, tokens: bool = False) -> int:
        listing = self.catalog.listing(lid)
        return listing["token_price"] if tokens else listing["price"]

    def order(self, lid: int, *, buyer: bytes = BUYER, quantity: int = 1,
              arbiter: bytes = ARBITER, referrer: bytes = REFERRER, tokens: bool = False,
              pay: int | None = None, version: int | None = None) -> int:
        """Place an order paying price x quantity (or ``pay``) in coin or tokens."""
        version = self.version(lid) if version is None else version
        amount = self.price(lid, tokens) * quantity if pay is None else pay
        if not tokens:
            return self.escrow.place_order(lid, version, quantity, arbiter, referrer,
                                           sender=buyer, value=amount)
        self.give_tokens(buyer, amount)
        before = self.escrow.counts()["orders"]
        self.token.transfer_and_call(self.escrow.address, amount,
                                     order_data(lid, version, quantity, arbiter, referrer),
                                     sender=buyer)
        return before + 1

    def give_tokens(self, who: bytes, amount: int) -> None:
        """Tokens for ``who``, backed like any: minted by the escrow against coin. (The
        harness calls the token as the escrow, which no transaction can do.)"""
        have = self.token.balance_of(who)
        if have < amount:
            self.env.fund(self.escrow.address, amount - have)
            self.token.mint(who, amount - have, sender=self.escrow.address,
                            value=amount - have)
        # the escrow's coin went straight into the reserve: its own books are untouched

    def ship(self, oid: int, tracking: str = "TRK-1") -> None:
        self.escrow.ship(oid, tracking, sender=MERCHANT)

    def dispute(self, oid: int, who: bytes = BUYER) -> int:
        """Open a dispute (the buyer) or contest (the merchant), depositing the fee."""
        deposit = self.escrow.dispute_deposit(oid)
        method = self.escrow.open_dispute if who == BUYER else self.escrow.contest
        method(oid, sender=who, value=deposit)
        return deposit

    def get(self, oid: int) -> dict:
        return self.escrow.order(oid)

    def state(self, oid: int) -> int:
        return self.escrow.order(oid)["state"]

    # ------------------------------------------------------------ money

    def coin(self, who: bytes) -> int:
        return self.env.balance(who)

    def tokens(self, who: bytes) -> int:
        return self.token.balance_of(who)

    def wealth(self, who: bytes) -> tuple[int, int]:
        return self.coin(who), self.tokens(who)

    def wealths(self, *who: bytes) -> dict[bytes, tuple[int, int]]:
        return {w: self.wealth(w) for w in who}

    def assert_conserved(self) -> None:
        """Property 1, per currency: the escrow holds exactly the open orders' `held`
        plus the unpaid bounties; the token's supply equals its coin reserve."""
        counts = self.escrow.counts()
        coin = tokens = 0
        for oid in range(1, counts["orders"] + 1):
            o = self.escrow.order(oid)
            owed = o["held"] + o["bounty"]
            coin += o["deposit"]  # a dispute's deposit is coin, whatever the order's currency
            if o["state"] != DISPUTED:
                assert o["deposit"] == 0, (oid, o)
            if o["state"] in ENDED_STATES:
                assert o["held"] == 0, (oid, o)
            if o["in_tokens"]:
                tokens += owed
            else:
                coin += owed
        assert counts["locked_coin"] == coin == self.coin(self.escrow.address)
        assert counts["locked_tokens"] == tokens == self.tokens(self.escrow.address)
        assert self.token.total_supply() == self.coin(self.token.address) \
            == self.token.reserve()


def order_data(lid: int, version: int, quantity: int, arbiter: bytes,
               referrer: bytes) -> bytes:
    """What on_token_received reads: listing, version, quantity (32 bytes each), arbiter,
    referrer (20 each)."""
    return (lid.to_bytes(32, "big") + version.to_bytes(32, "big") + quantity.to_bytes(32, "big")
            + arbiter + referrer)


def reverts(fn, *args, match: str = "", **kw) -> Reverted:
    """Call and expect a revert whose reason contains ``match``."""
    try:
        fn(*args, **kw)
    except Reverted as exc:
        assert match in exc.reason, f"reverted with {exc.reason!r}, expected {match!r}"
        return exc
    raise AssertionError(f"{getattr(fn, '__name__', fn)} did not revert (expected {match!r})")
