"""The seven properties of the commerce contracts (DESIGN.md), each checked by a
hypothesis state machine over random actions by buyers, merchants, arbiters, referrers,
reviewers, group members and strangers, with random jumps of time -- to the
millisecond around the deadlines that matter.

* ConservationMachine — property 1: the escrow holds exactly the sum of what its open
  orders and groups are owed, per currency; the token's supply equals its reserve.
* NothingStuckMachine — property 2: at the end of every run every open order, group
  and bounty is brought to an end by `claim` / `release_bounty` alone, within the
  bounded deadlines, and the escrow holds nothing.
* ExtremesMachine — property 3: with prices, quantities, rates, fees, stock and
  counters at their extremes, every payout and refund the rules allow succeeds.
* CoalitionMachine — property 4: 2 to 5 addresses in every role, trading only among
  themselves, end (every order ended) with no more coin plus tokens than they started
  with.
* TermsMachine — property 5: whatever the merchants edit, an order's terms are the ones
  of the listing version it ordered, and never change.

Properties 6 (silence never beats action) and 7 (reviews are earned) are rules about
who may do what when: test_escrow_rules.py and test_reviews.py check them at the
millisecond. The machines also never let a transition happen that the state diagram
does not allow (every state change is checked against it).
"""

from __future__ import annotations

import pytest
from commerce_helpers import (
    ACTORS,
    ARBITER,
    ARBITER_2,
    COMPLETED,
    DAY,
    DELIVERED,
    DISPUTED,
    ENDED_STATES,
    GROUP_FAILED,
    GROUP_FILLED,
    GROUP_OPEN,
    JOINED,
    MERCHANT,
    MERCHANT_2,
    MINUTE,
    NOBODY,
    OPEN_STATES,
    PAID,
    REFERRER,
    RESOLVED,
    RETURN_REQUESTED,
    RETURN_SHIPPED,
    REVIEW_W,
    SHIPPED,
    STATE_NAMES,
    STRANGER,
    Market,
    order_data,
)
from hypothesis import HealthCheck, Phase, event, settings
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from vm.compiler.types import name_key
from vm.contracts import CommerceLimits
from vm.testing import Reverted

UINT_MAX = 2**256 - 1
TERMS = ("ship_window", "confirm_window", "return_window", "answer_window",
         "arbiter_fee_bps", "ruling_window", "default_refund_bps", "referral_bps",
         "cashback_bps", "bounty_bps")

#: the transitions the state diagram allows (from -> to); a machine fails on any other
ALLOWED = {
    JOINED: {PAID, 6},
    PAID: {SHIPPED, 5, 6, 8},
    SHIPPED: {DELIVERED, COMPLETED, DISPUTED, RESOLVED, 8},
    DELIVERED: {RETURN_REQUESTED, COMPLETED, DISPUTED, RESOLVED, 8},
    RETURN_REQUESTED: {RETURN_SHIPPED, DISPUTED, COMPLETED, RESOLVED, 8},
    RETURN_SHIPPED: {8, DISPUTED, COMPLETED, RESOLVED},
    DISPUTED: {RESOLVED, 8},
}

# Windows small enough that random time jumps reach every deadline.
WINDOWS = st.sampled_from([MINUTE, 2 * MINUTE, 3_600_000, DAY])
RETURN_WINDOWS = st.sampled_from([0, 7 * DAY, 8 * DAY])
BPS = st.integers(0, 10_000)
JUMPS = st.sampled_from([1, 999, MINUTE, 3_600_000, DAY, 7 * DAY + 1, 9 * DAY])

#: paths through the diagram: (method, who takes it: buyer / merchant / arbiter, args)
_SHIPPED_BACK = [("ship", "m", ("T",)), ("confirm", "b", (False,)), ("request_return", "b", ()),
                 ("accept_return", "m", ()), ("ship_back", "b", ("R",))]
PATHS = [
    _SHIPPED_BACK,
    [*_SHIPPED_BACK, ("confirm_receipt", "m", ())],
    [*_SHIPPED_BACK, ("contest", "m", ()), ("resolve", "a", "amount")],
    [("ship", "m", ("T",)), ("open_dispute", "b", ()), ("resolve", "a", "amount")],
    [("ship", "m", ("T",)), ("confirm", "b", (False,)), ("request_return", "b", ()),
     ("contest", "m", ()), ("settle", "b", "amount"), ("settle", "m", "amount")],
    [("ship", "m", ("T",)), ("confirm", "b", (True,))],
    [("ship", "m", ("T",)), ("confirm", "b", (False,)), ("open_dispute", "b", ()),
     ("refund", "m", "amount")],
]

_LISTING = dict(
    who=st.integers(0, 99), ship=WINDOWS, confirm=WINDOWS, ret=RETURN_WINDOWS,
    answer=WINDOWS, arbiters=st.lists(st.integers(0, 99), max_size=3, unique=True),
    no_arbiter=st.booleans(), default=BPS, price=st.integers(1, 10**6),
    token_price=st.integers(0, 10**6), stock=st.integers(0, 50),
    commissions=st.tuples(st.integers(0, 1_000), st.integers(0, 1_000), st.integers(0, 1_000)),
    group=st.none() | st.tuples(st.integers(1, 10**6), st.integers(2, 4), WINDOWS))

# No shrinking: a failing run of these machines takes minutes to shrink, past the
# suite's per-test timeout, which would report it as a timeout instead of the failure.
# The steps of the failing run are printed as they were (and replayed from the example
# database on the next run).
FAST = settings(max_examples=40, stateful_step_count=50, deadline=None,
                phases=[Phase.explicit, Phase.reuse, Phase.generate],
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


class CommerceMachine(RuleBasedStateMachine):
    """Random commerce among ``self.people``: listings, orders in coin and tokens, group
    deals, every order transition, reviews, edits and time. Each action that the rules
    refuse simply reverts (and must change nothing: the invariants say so)."""

    limits = CommerceLimits(max_window_ms=30 * DAY, max_fee_bps=1_000,
                            max_commission_bps=3_000, max_group_size=10_000,
                            review_window_ms=REVIEW_W)
    funding = 10**24
    top_up = True  # buyers paying in tokens are given them first (backed by outside coin)

    def __init__(self) -> None:
        super().__init__()
        self.m = Market(self.limits, arbiters=False, funding=self.funding)
        self.people: list[bytes] = list(ACTORS)
        self.listings: list[int] = []
        self.groups: list[int] = []
        self.seen_state: dict[int, int] = {}
        self.reverts = 0
        self.seed(MERCHANT, MERCHANT_2, ARBITER, ARBITER_2)

    def seed(self, merchant: bytes, merchant_2: bytes, arbiter: bytes, arbiter_2: bytes
             ) -> None:
        """Two arbiters and three listings to start from (random ones come on top): a
        returnable one with both arbiters, commissions and a group deal; a final-sale
        one without an arbiter, sold for tokens too; one with minute-long windows."""
        c = self.m.catalog
        c.register_arbiter("a", 250, DAY, sender=arbiter)
        c.register_arbiter("b", 0, 2 * MINUTE, sender=arbiter_2)
        lid = c.create_listing("returnable", b"\x00" * 32, 100_003, 70_001, 100, DAY, DAY,
                               7 * DAY, 3_600_000, arbiter, arbiter_2, NOBODY, False, 6_000,
                               sender=merchant)
        c.set_commissions(lid, 150, 75, 100, sender=merchant)
        c.set_group_deal(lid, 80_001, 3, DAY, sender=merchant)
        self.listings.append(lid)
        lid = c.create_listing("final sale", b"\x00" * 32, 50_000, 40_000, 100, DAY, DAY, 0,
                               3_600_000, NOBODY, NOBODY, NOBODY, True, 0, sender=merchant_2)
        c.set_commissions(lid, 1_000, 1_000, 1_000, sender=merchant_2)
        self.listings.append(lid)
        lid = c.create_listing("quick", b"\x00" * 32, 9_999, 0, 100, MINUTE, MINUTE,
                               7 * DAY, MINUTE, arbiter_2, NOBODY, NOBODY, True, 10_000,
                               sender=merchant)
        c.set_commissions(lid, 0, 2_000, 1_000, sender=merchant)
        c.set_group_deal(lid, 5_000, 2, 2 * MINUTE, sender=merchant)
        self.listings.append(lid)

    # ------------------------------------------------------------ helpers

    def pick(self, items: list, i: int):
        return items[i % len(items)]

    def orders(self) -> list[int]:
        return list(range(1, self.m.escrow.counts()["orders"] + 1))

    def try_(self, fn, *args, **kw) -> bool:
        try:
            fn(*args, **kw)
        except Reverted:
            self.reverts += 1
            return False
        return True

    def check_transitions(self, only: int | None = None) -> None:
        for oid in self.orders() if only is None else [only]:
            now = self.m.escrow.order(oid)["state"]
            before = self.seen_state.get(oid)
            if before is not None and before != now:
                assert now in ALLOWED.get(before, set()), \
                    f"order {oid}: {STATE_NAMES[before]} -> {STATE_NAMES[now]}"
                if currently_in_test_context():
                    event(f"an order reached {STATE_NAMES[now]}")
            self.seen_state[oid] = now

    # ------------------------------------------------------------ the catalog

    @rule(what=st.integers(0, 9), data=st.data())
    def merchants_and_arbiters(self, what: int, data: st.DataObject) -> None:
        """Now and then an arbiter registers, a listing is published or edited."""
        if what == 0:
            self.register_arbiter(data.draw(st.integers(0, 99)), data.draw(st.integers(0, 1_000)),
                                  data.draw(WINDOWS))
        elif what <= 3:
            self.create_listing(**{k: data.draw(v) for k, v in _LISTING.items()})
        elif self.listings:
            self.edit_listing(data.draw(st.integers(0, 99)), data.draw(st.integers(0, 5)),
                              data.draw(st.integers(0, 10**6)), data.draw(WINDOWS))

    def register_arbiter(self, who: int, fee: int, ruling: int) -> None:
        self.try_(self.m.catalog.register_arbiter, "arb", fee, ruling,
                  sender=self.pick(self.people, who))

    def create_listing(self, who, ship, confirm, ret, answer, arbiters, no_arbiter, default,
                       price, token_price, stock, commissions, group) -> None:
        merchant = self.pick(self.people, who)
        named = [self.pick(self.people, a) for a in arbiters]
        named = [a for i, a in enumerate(named) if a not in named[:i]]
        a = (*named, NOBODY, NOBODY, NOBODY)[:3]
        try:
            lid = self.m.catalog.create_listing("item", b"\x00" * 32, price, token_price,
                                                stock, ship, confirm, ret, answer, a[0], a[1],
                                                a[2], no_arbiter, default, sender=merchant)
        except Reverted:
            return
        self.listings.append(lid)
        self.try_(self.m.catalog.set_commissions, lid, *commissions, sender=merchant)
        if group is not None:
            self.try_(self.m.catalog.set_group_deal, lid, *group, sender=merchant)

    def edit_listing(self, i: int, what: int, x: int, w: int) -> None:
        lid = self.pick(self.listings, i)
        listing = self.m.catalog.listing(lid)
        merchant = listing["merchant"]
        c = self.m.catalog
        if what == 0:
            self.try_(c.set_price, lid, x, x // 2, sender=merchant)
        elif what == 1:
            self.try_(c.set_stock, lid, x % 20, sender=merchant)
        elif what == 2:
            self.try_(c.set_terms, lid, w, w, 0 if x % 2 else 7 * DAY, w, listing["arbiter_1"],
                      listing["arbiter_2"], listing["arbiter_3"], True, x % 10_001,
                      sender=merchant)
        elif what == 3:
            self.try_(c.set_commissions, lid, x % 1_000, x % 777, x % 555, sender=merchant)
        elif what == 4:
            self.try_(c.pause if x % 2 else c.resume, lid, sender=merchant)
        else:
            self.try_(c.set_group_deal, lid, 1 + x, 2 + x % 3, w, sender=merchant)

    # ------------------------------------------------------------ placing

    @precondition(lambda self: self.listings)
    @rule(kind=st.integers(0, 5), data=st.data())
    def buy(self, kind: int, data: st.DataObject) -> None:
        """An order in coin or tokens, or a group started or joined."""
        i, who, arb, ref = (data.draw(st.integers(0, 99)), data.draw(st.integers(0, 99)),
                            data.draw(st.integers(0, 3)), data.draw(st.integers(0, 99)))
        if kind <= 3:
            self.place(i, who, arb, ref, data.draw(st.integers(1, 3)), kind == 3,
                       data.draw(st.integers(0, 9)) == 0)
        elif kind == 4:
            self.start_group(i, who, arb, data.draw(st.integers(1, 2)))
        elif self.groups:
            self.join_group(i, who, arb, ref)

    def place(self, i, who, arb, ref, q, tokens, stale) -> None:
        lid = self.pick(self.listings, i)
        listing = self.m.catalog.listing(lid)
        buyer = self.pick(self.people, who)
        arbiter = (listing["arbiter_1"], listing["arbiter_2"], listing["arbiter_3"],
                   NOBODY)[arb]
        referrer = NOBODY if ref % 3 == 0 else self.pick(self.people, ref)
        version = listing["version"] - (1 if stale else 0)
        if tokens:
            amount = listing["token_price"] * q
            if self.top_up:
                self.m.give_tokens(buyer, amount)
            ok = self.try_(self.m.token.transfer_and_call, self.m.escrow.address, amount,
                           order_data(lid, version, q, arbiter, referrer), sender=buyer)
        else:
            ok = self.try_(self.m.escrow.place_order, lid, version, q, arbiter, referrer,
                           sender=buyer, value=listing["price"] * q)
        if ok:
            self.placed(self.orders()[-1], listing)

    def placed(self, oid: int, listing: dict) -> None:
        """A hook: an order was placed from ``listing`` as read before."""

    def start_group(self, i, who, arb, q) -> None:
        lid = self.pick(self.listings, i)
        listing = self.m.catalog.listing(lid)
        arbiter = (listing["arbiter_1"], listing["arbiter_2"], listing["arbiter_3"],
                   NOBODY)[arb]
        if self.try_(self.m.escrow.start_group, lid, listing["version"], q, arbiter, NOBODY,
                     sender=self.pick(self.people, who), value=listing["group_price"] * q):
            self.groups.append(self.m.escrow.counts()["groups"])
            self.placed(self.orders()[-1], listing)

    def join_group(self, g, who, arb, ref) -> None:
        gid = self.pick(self.groups, g)
        group = self.m.escrow.group(gid)
        listing = self.m.catalog.listing(group["listing"])
        arbiter = (listing["arbiter_1"], listing["arbiter_2"], listing["arbiter_3"],
                   NOBODY)[arb]
        referrer = NOBODY if ref % 2 else self.pick(self.people, ref)
        if self.try_(self.m.escrow.join_group, gid, listing["version"], 1, arbiter, referrer,
                     sender=self.pick(self.people, who), value=group["price"]):
            self.placed(self.orders()[-1], listing)

    @precondition(lambda self: self.groups)
    @rule(g=st.integers(0, 99), who=st.integers(0, 99))
    def close_a_group(self, g, who) -> None:
        self.try_(self.m.escrow.close_group, self.pick(self.groups, g),
                  sender=self.pick(self.people, who))

    # ------------------------------------------------------------ order transitions

    @precondition(lambda self: self.m.escrow.counts()["orders"] > 0)
    @rule(i=st.integers(0, 999), step=st.integers(0, 99), x=st.integers(0, 10**6),
          wrong=st.integers(0, 19))
    def act_on_an_order(self, i: int, step: int, x: int, wrong: int) -> None:
        self.act(i, step, x, wrong)

    @precondition(lambda self: self.m.escrow.counts()["orders"] > 0)
    @rule(i=st.integers(0, 999), step=st.integers(0, 99), x=st.integers(0, 10**6),
          wrong=st.integers(0, 19))
    def act_on_the_newest_orders(self, i: int, step: int, x: int, wrong: int) -> None:
        self.act(-1 - i % 3, step, x, wrong)

    @precondition(lambda self: self.m.escrow.counts()["orders"] > 0)
    @rule(i=st.integers(0, 999), steps=st.lists(st.tuples(st.integers(0, 99),
                                                          st.integers(0, 10**6),
                                                          st.sampled_from([0, 1, 60_001])),
                                                min_size=2, max_size=6))
    def drive_an_order(self, i: int, steps: list[tuple[int, int, int]]) -> None:
        """Several moves on one order in a row, with a little time between: the deep
        states (returns shipped back, disputes, rulings) come up in a short run."""
        oid = self.pick(self.orders(), i)
        for step, x, pause in steps:
            self.act(oid - 1, step, x, 1)
            self.check_transitions(oid)
            self.m.advance(pause)

    @rule(who=st.integers(0, 99), path=st.integers(0, len(PATHS) - 1), stop=st.integers(1, 6),
          x=st.integers(0, 10**6))
    def walk_a_new_order(self, who: int, path: int, stop: int, x: int) -> None:
        """A new order of the first (returnable, arbitrated) listing taken along one of
        the diagram's paths and stopped anywhere on it: every state is reached often,
        and left for the other rules (and time) to meet."""
        e = self.m.escrow
        listing = self.m.catalog.listing(self.listings[0])
        buyer = self.pick(self.people, who)
        arbiter = listing["arbiter_1"]
        if buyer == arbiter:
            arbiter = listing["arbiter_2"] if listing["arbiter_2"] != NOBODY else NOBODY
        if not self.try_(e.place_order, self.listings[0], listing["version"], 1, arbiter,
                         NOBODY, sender=buyer, value=listing["price"]):
            return
        oid = self.orders()[-1]
        self.placed(oid, listing)
        for method, who, args in PATHS[path][:stop]:
            o = e.order(oid)
            party = {"b": o["buyer"], "m": o["merchant"], "a": o["arbiter"]}[who]
            value = e.dispute_deposit(oid) if method in ("open_dispute", "contest") else 0
            amount = (x % (o["held"] + 1),) if args == "amount" else args
            if not self.try_(getattr(e, method), oid, *amount, sender=party, value=value):
                break
            self.check_transitions(oid)

    def act(self, i: int, step: int, x: int, wrong: int) -> None:
        """An action that fits the order's state, by the party who may take it (and now
        and then by someone who may not)."""
        oid = self.pick(self.orders(), i)
        o = self.m.escrow.order(oid)
        e = self.m.escrow
        buyer, merchant, arbiter = o["buyer"], o["merchant"], o["arbiter"]
        state = o["state"]
        part = (1 + x % max(1, o["held"]),)       # a refund of part (or all)
        offer = (x % (o["held"] + 1),)             # a split of what is held
        # Moves that keep the order going come up more often than the ones that end it.
        options = {
            JOINED: [(e.leave_group, (), buyer), (e.claim, (), STRANGER)],
            PAID: [(e.ship, ("TRK",), merchant)] * 5 + [
                (e.decline, (), merchant), (e.cancel, (), buyer), (e.claim, (), STRANGER),
                (e.refund, part, merchant)],
            SHIPPED: [(e.confirm, (False,), buyer)] * 3 + [(e.open_dispute, (), buyer)] * 2 + [
                (e.confirm, (True,), buyer), (e.open_dispute, (), merchant),
                (e.claim, (), merchant), (e.settle, offer, buyer), (e.settle, offer, merchant),
                (e.refund, part, merchant)],
            DELIVERED: [(e.request_return, (), buyer)] * 4 + [
                (e.open_dispute, (), merchant), (e.claim, (), STRANGER),
                (e.settle, offer, buyer), (e.settle, offer, merchant)],
            RETURN_REQUESTED: [(e.accept_return, (), merchant), (e.contest, (), merchant),
                               (e.ship_back, ("RET",), buyer), (e.ship_back, ("RET",), buyer),
                               (e.claim, (), merchant), (e.settle, offer, buyer),
                               (e.refund, part, merchant)],
            RETURN_SHIPPED: [(e.confirm_receipt, (), merchant), (e.contest, (), merchant),
                             (e.claim, (), buyer), (e.settle, offer, merchant)],
            DISPUTED: [(e.resolve, offer, arbiter)] * 2 + [
                (e.claim, (), buyer), (e.settle, offer, buyer), (e.settle, offer, merchant),
                (e.refund, part, merchant)],
        }.get(state)
        if state in ENDED_STATES:
            if o["bounty"]:
                if step % 2:
                    self.try_(self.m.reviews.post_review, oid, 1 + x % 5, "ok", sender=buyer)
                else:
                    self.try_(e.release_bounty, oid, sender=STRANGER)
            else:
                self.try_(self.m.reviews.post_review, oid, 1 + x % 5, "", sender=buyer)
            return
        assert options is not None, state
        fn, args, who = self.pick(options, step)
        if wrong == 0:  # the wrong party: must revert and change nothing
            who = self.pick(self.people, x)
        value = 0
        if fn.__name__ in ("open_dispute", "contest"):  # the arbiter's fee, deposited
            value = e.dispute_deposit(oid) + (1 if wrong == 1 else 0)  # (or one too many)
        self.try_(fn, oid, *args, sender=who, value=value)

    # ------------------------------------------------------------ time

    @rule(jump=JUMPS)
    def wait(self, jump: int) -> None:
        self.m.advance(jump)

    @precondition(lambda self: self.m.escrow.counts()["orders"] > 0)
    @rule(i=st.integers(0, 999), delta=st.sampled_from([0, 1]))
    def to_deadline(self, i: int, delta: int) -> None:
        """To the millisecond of an order's deadline, or just past it."""
        deadline = self.m.escrow.order(self.pick(self.orders(), i))["deadline"]
        if deadline + delta > self.m.now:
            self.m.at(deadline + delta)

    @invariant()
    def transitions_follow_the_diagram(self) -> None:
        self.check_transitions()

    # ------------------------------------------------------------ ending everything

    def end_everything(self) -> None:
        """Property 2: anyone, by claim and release_bounty alone, ends every open order
        and group and frees every bounty, within the bounded deadlines."""
        e = self.m.escrow
        for _ in range(4):  # JOINED -> CANCELLED, SHIPPED -> DELIVERED -> COMPLETED ...
            self.m.advance(self.limits.max_window_ms * 3 + 1)
            for oid in self.orders():
                if e.order(oid)["state"] in OPEN_STATES:
                    e.claim(oid, sender=STRANGER)  # must not revert: silence decides
            self.check_transitions()
        self.m.advance(REVIEW_W + 1)
        for oid in self.orders():
            o = e.order(oid)
            assert o["state"] in ENDED_STATES, (oid, STATE_NAMES[o["state"]])
            if o["bounty"]:
                e.release_bounty(oid, sender=STRANGER)
        for gid in self.groups:
            assert e.group(gid)["state"] in (GROUP_FILLED, GROUP_FAILED, GROUP_OPEN)
            if e.group(gid)["state"] == GROUP_OPEN:  # every member left: close it
                e.close_group(gid, sender=STRANGER)
        counts = e.counts()
        assert (counts["locked_coin"], counts["locked_tokens"]) == (0, 0)
        self.m.assert_conserved()


# -------------------------------------------------------------------- property 1


class ConservationMachine(CommerceMachine):
    @invariant()
    def escrow_holds_exactly_what_open_orders_are_owed(self) -> None:
        self.m.assert_conserved()


TestConservation = ConservationMachine.TestCase
TestConservation.settings = FAST


# -------------------------------------------------------------------- property 2


class NothingStuckMachine(CommerceMachine):
    @precondition(lambda self: self.m.escrow.counts()["orders"] > 0)
    @rule(i=st.integers(0, 999))
    def silence_decides_once_the_deadline_passed(self, i: int) -> None:
        """Mid-run, not only at the end: an open order past the deadline of its state
        is always moved on by claim, by anyone -- it never reverts."""
        oid = self.pick(self.orders(), i)
        o = self.m.escrow.order(oid)  # (a filled group's member reads as PAID)
        deadline = o["deadline"]
        if o["state"] == RETURN_REQUESTED and not o["return_accepted"]:
            deadline += o["answer_window"]  # silence accepted: then the ship-back window
        if o["state"] in OPEN_STATES and self.m.now > deadline:
            self.m.escrow.claim(oid, sender=STRANGER)
            self.check_transitions(oid)

    def teardown(self) -> None:
        self.end_everything()


TestNothingStuck = NothingStuckMachine.TestCase
TestNothingStuck.settings = FAST


# -------------------------------------------------------------------- property 3


class ExtremesMachine(CommerceMachine):
    """Amounts, quantities, rates and fees at their extremes, and the counters a payout
    touches started next to 2**256: every payout or refund the rules allow succeeds.
    The world holds less than 2**256 coin in all (as genesis guarantees)."""

    limits = CommerceLimits(max_window_ms=365 * DAY, max_fee_bps=5_000,
                            max_commission_bps=5_000, max_group_size=100_000,
                            review_window_ms=REVIEW_W)
    funding = 2**252  # nine actors: under 2**256 in all

    def seed(self, merchant: bytes, merchant_2: bytes, arbiter: bytes, arbiter_2: bytes
             ) -> None:
        huge = 2**250
        for who in (arbiter, arbiter_2):
            self.m.catalog.register_arbiter("max", 5_000, 365 * DAY, sender=who)
        for merchant in (MERCHANT, MERCHANT_2):
            lid = self.m.catalog.create_listing(
                "huge", b"\x00" * 32, huge, huge, 1_000, MINUTE, MINUTE, 365 * DAY, MINUTE,
                ARBITER, ARBITER_2, NOBODY, True, 10_000, sender=merchant)
            self.m.catalog.set_commissions(lid, 5_000, 0, 0, sender=merchant)
            self.listings.append(lid)
            lid = self.m.catalog.create_listing(
                "huge", b"\x00" * 32, huge // 3 + 1, 1, UINT_MAX, 365 * DAY, MINUTE, 0,
                MINUTE, ARBITER, NOBODY, NOBODY, True, 1, sender=merchant)
            self.m.catalog.set_commissions(lid, 1_700, 1_600, 1_700, sender=merchant)
            self.m.catalog.set_group_deal(lid, huge // 5, 2, MINUTE, sender=merchant)
            self.listings.append(lid)

    def __init__(self) -> None:
        super().__init__()
        # The sums a payout adds to, started 2 below their maximum. (The counters of
        # outcomes count each order at most once: they never pass the order count.)
        esc = self.m.escrow.address
        for who in self.people:
            self.preset(esc, "merchant_stats", who, "volume", UINT_MAX - 2)
            self.preset(esc, "arbiter_cases", who, "fees", UINT_MAX - 2)
            assert self.m.escrow.merchant_record(who)["volume"] == UINT_MAX - 2

    def preset(self, contract: bytes, variable: str, key: bytes, field: str, value: int) -> None:
        """Set a field of a stored record (a record is one state key; vm/world.py)."""
        self.m.env.world.sstore_field(contract, name_key(variable) + key, name_key(field),
                                      value.to_bytes(32, "big"))

    @precondition(lambda self: self.m.escrow.counts()["orders"] > 0)
    @rule(i=st.integers(0, 999), x=st.integers(0, UINT_MAX))
    def every_allowed_payout_succeeds(self, i: int, x: int) -> None:
        """Whatever the amounts: a refund of any part, a ruling of any split, a
        settlement, and what silence decides never revert when the rules allow them."""
        e = self.m.escrow
        disputed = [oid for oid in self.orders() if e.order(oid)["state"] == DISPUTED]
        # a dispute, when there is one, half the time: rulings are the rarest payouts
        oid = self.pick(disputed, i) if disputed and i % 2 else self.pick(self.orders(), i)
        o = e.order(oid)
        state, held = o["state"], o["held"]
        if state == DISPUTED and self.m.now <= o["deadline"] and x % 3:
            e.resolve(oid, x % (held + 2), sender=o["arbiter"])  # (more than held: capped)
        elif state in (PAID, SHIPPED, DELIVERED, RETURN_REQUESTED, DISPUTED) and held:
            e.refund(oid, 1 + x % held, sender=o["merchant"])
        elif state in (SHIPPED, DELIVERED, RETURN_SHIPPED):
            e.settle(oid, x % (held + 1), sender=o["buyer"])
            e.settle(oid, x % (held + 1), sender=o["merchant"])
            assert e.order(oid)["state"] == RESOLVED
        if e.order(oid)["state"] in OPEN_STATES and x % 5 == 0:  # (time passes for all)
            self.m.advance(3 * 365 * DAY)
            e.claim(oid, sender=STRANGER)
        self.check_transitions()

    @rule(who=st.integers(0, 99), by_merchant=st.booleans(), x=st.integers(0, UINT_MAX))
    def every_ruling_succeeds(self, who: int, by_merchant: bool, x: int) -> None:
        """A new order at the extremes disputed (by the buyer) or contested (by the
        merchant, after a return request), then ruled with any split at all: the ruling,
        its fee and the fee paid back by the loser always go through."""
        e = self.m.escrow
        lid = self.listings[0]
        listing = self.m.catalog.listing(lid)
        buyer = self.pick(self.people, who)
        if buyer in (listing["merchant"], listing["arbiter_1"]) \
                or self.m.coin(buyer) < 2 * listing["price"] \
                or self.m.coin(listing["merchant"]) < listing["price"]:
            return  # (the price, and a deposit of up to half of it: it cannot pay them)
        if not self.try_(e.place_order, lid, listing["version"], 1, listing["arbiter_1"],
                         NOBODY, sender=buyer, value=listing["price"]):
            return  # (paused, out of stock or edited by the other rules: no matter)
        oid = self.orders()[-1]
        e.ship(oid, "T", sender=listing["merchant"])
        if by_merchant and listing["return_window"]:
            e.confirm(oid, False, sender=buyer)
            e.request_return(oid, sender=buyer)
            e.contest(oid, sender=listing["merchant"], value=e.dispute_deposit(oid))
        else:
            e.open_dispute(oid, sender=buyer, value=e.dispute_deposit(oid))
        held = e.order(oid)["held"]
        e.resolve(oid, x % (held + 2), sender=listing["arbiter_1"])
        assert e.order(oid)["state"] == RESOLVED
        self.check_transitions(oid)

    def teardown(self) -> None:
        self.end_everything()


TestExtremes = ExtremesMachine.TestCase
TestExtremes.settings = FAST


# -------------------------------------------------------------------- property 4


class CoalitionMachine(CommerceMachine):
    """2 to 5 addresses that play every role -- merchant, buyer, referrer, reviewer,
    arbiter, group leader and members -- and trade only among themselves. Whatever
    they do, once every order has ended they hold no more coin plus tokens than at the
    start (no gas is charged here, so the bound is exact)."""

    top_up = False  # the coalition spends only the tokens it started with

    @initialize(k=st.integers(2, 5))
    def coalition(self, k: int) -> None:
        self.people = [bytes([0xC0 + i]) * 20 for i in range(k)]
        for who in self.people:
            self.m.env.fund(who, self.funding)
            self.m.give_tokens(who, 10**6)
        # the coalition's own listings and arbiters, instead of the outsiders'
        self.listings = []
        c, p = self.m.catalog, self.people
        for who in p:
            c.register_arbiter("ours", 300, DAY, sender=who)
        for merchant, arbiters, ret, window in ((p[0], p[1:3], 7 * DAY, DAY),
                                                (p[1], p[2:3], 0, 3_600_000),
                                                (p[-1], p[:1], 7 * DAY, MINUTE)):
            a = (*arbiters, NOBODY, NOBODY, NOBODY)[:3]
            lid = c.create_listing("ours", b"\x00" * 32, 100_003, 70_001, 100, window,
                                   window, ret, window, a[0], a[1], a[2], True, 5_000,
                                   sender=merchant)
            c.set_commissions(lid, 1_000, 1_000, 1_000, sender=merchant)
            c.set_group_deal(lid, 60_001, 2, window, sender=merchant)
            self.listings.append(lid)
        self.start = sum(sum(self.m.wealth(w)) for w in self.people)
        self.m.assert_conserved()

    def teardown(self) -> None:
        if not hasattr(self, "start"):
            return
        self.end_everything()
        end = sum(sum(self.m.wealth(w)) for w in self.people)
        assert end <= self.start, f"the coalition gained {end - self.start}"
        # and nothing of theirs is left anywhere else: what they hold is all there is
        assert self.m.token.total_supply() == sum(self.m.tokens(w) for w in self.people)


TestCoalition = CoalitionMachine.TestCase
TestCoalition.settings = FAST


# -------------------------------------------------------------------- property 5


class TermsMachine(CommerceMachine):
    """An order's terms are those of the listing version it ordered (and its arbiter's
    registered fee and ruling time), whatever the merchant edits before or after."""

    def __init__(self) -> None:
        super().__init__()
        self.terms: dict[int, dict] = {}
        self.m.catalog.register_arbiter("c", 1_000, 3_600_000, sender=REFERRER)

    def placed(self, oid: int, listing: dict) -> None:
        o = self.m.escrow.order(oid)
        arbiter = self.m.catalog.arbiter(o["arbiter"]) if o["arbiter"] != NOBODY else None
        expected = {
            "ship_window": listing["ship_window"], "confirm_window": listing["confirm_window"],
            "return_window": listing["return_window"], "answer_window": listing["answer_window"],
            "arbiter_fee_bps": arbiter["fee_bps"] if arbiter else 0,
            "ruling_window": arbiter["ruling_window"] if arbiter else 0,
            "default_refund_bps": listing["default_refund_bps"],
            "referral_bps": listing["referral_bps"], "cashback_bps": listing["cashback_bps"],
            "bounty_bps": listing["bounty_bps"],
        }
        assert {t: o[t] for t in TERMS} == expected, oid
        assert o["merchant"] == listing["merchant"]
        unit = o["paid"] // o["quantity"]
        if o["group"]:
            assert unit == self.m.escrow.group(o["group"])["price"]
        else:
            assert unit == (listing["token_price"] if o["in_tokens"] else listing["price"])
        self.terms[oid] = {t: o[t] for t in (*TERMS, "buyer", "merchant", "arbiter",
                                              "referrer", "listing", "quantity", "paid",
                                              "in_tokens", "group")}

    @invariant()
    def terms_never_change(self) -> None:
        for oid, terms in self.terms.items():
            o = self.m.escrow.order(oid)
            assert {t: o[t] for t in terms} == terms, oid


TestTerms = TermsMachine.TestCase
TestTerms.settings = FAST


def test_the_machines_reach_the_interesting_states() -> None:
    """The action mix is not all reverts: a fixed run of each kind of step reaches
    shipped, delivered, returned, disputed and ended orders."""
    machine = ConservationMachine()
    machine.register_arbiter(2, 100, DAY)  # ARBITER
    machine.create_listing(0, MINUTE, MINUTE, 7 * DAY, MINUTE, [2], False, 5_000, 100, 50, 20,
                           (100, 100, 100), (60, 2, DAY))
    reached = set()
    for step in range(150):
        if step % 5 == 0:
            machine.place(0, 1 + step % 3, 0, 3, 1, step % 2 == 0, False)
        machine.act(step * 7, step, step * 13 + 1, 1)
        if step % 9 == 0:
            machine.wait(MINUTE if step % 2 else 3_600_000)
        for oid in machine.orders()[-5:]:
            reached.add(machine.m.escrow.order(oid)["state"])
            machine.check_transitions(oid)
    machine.escrow_holds_exactly_what_open_orders_are_owed()
    assert {SHIPPED, DELIVERED, RETURN_REQUESTED, DISPUTED, COMPLETED} <= reached, reached


# -------------------------------------------------------------------- longer runs (-m slow)

LONG = settings(FAST, max_examples=400, stateful_step_count=100)
for _machine in (ConservationMachine, NothingStuckMachine, ExtremesMachine, CoalitionMachine,
                 TermsMachine):
    _name = f"Test{_machine.__name__.removesuffix('Machine')}Long"
    globals()[_name] = type(_name, (_machine.TestCase,),  # (TestCase is one shared class)
                            {"settings": LONG,
                             "pytestmark": [pytest.mark.slow, pytest.mark.timeout(3_600)]})
