"""Every permission rule and every deadline of an order, at the millisecond on both sides
(escrow.agc, the state diagram in its docstring; group orders have a file of their own).

Tables, each read as the rule it states:

* PERMISSIONS -- for every method that changes an order: the order is put in a state
  where the method applies, every party that may not take it is refused with the
  contract's reason (and the order is left exactly as it was), then the party that may
  takes it and the order is where the diagram says.
* WRONG_STATES -- each method, taken by the party allowed to, is refused in a state it
  does not apply to.
* UNTIL / AFTER -- every deadline: what may be done "until" it is done at the deadline
  and refused one millisecond later; what silence decides "after" it is refused at the
  deadline and done one millisecond later, by a stranger.
* NO_DEADLINE -- the steps the diagram gives no deadline stay open after the state's.

Between them, tests of what each window is counted from (the step that set it, the
confirm deadline for a late confirm, the acceptance or the silence for a ship-back).

The escrow's books (property 1) are checked after every test by the ``m`` fixture.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest
from commerce_helpers import (
    ANSWER_W,
    ARBITER,
    ARBITER_2,
    BUYER,
    CANCELLED,
    COMPLETED,
    CONFIRM_W,
    DAY,
    DECLINED,
    DEFAULT_REFUND_BPS,
    DELIVERED,
    DISPUTED,
    ENDED_STATES,
    FEE_BPS,
    HOUR,
    MERCHANT,
    NOBODY,
    PAID,
    PRICE,
    REFERRER,
    REFUNDED,
    RESOLVED,
    RETURN_REQUESTED,
    RETURN_SHIPPED,
    RETURN_W,
    REVIEW_W,
    RULING_W,
    SHIP_W,
    SHIPPED,
    STATE_NAMES,
    STRANGER,
    TOKEN_PRICE,
    Market,
    order_data,
    reverts,
    share,
)

PARTIES = (BUYER, MERCHANT, ARBITER, REFERRER, STRANGER)
NAMES = {BUYER: "buyer", MERCHANT: "merchant", ARBITER: "arbiter", REFERRER: "referrer",
         STRANGER: "stranger", ARBITER_2: "another arbiter"}

ONLY_MERCHANT = "only the merchant may do this"
ONLY_BUYER = "only the buyer may do this"
ONLY_PARTIES = "only the buyer or the merchant"
ONLY_ARBITER = "only the order's arbiter rules"
WRONG_STATE = "not allowed in the order's state"
ENDED = "the order has ended"
NOT_YET = "the deadline has not passed"


@pytest.fixture
def m():
    """A fresh market; whatever a test did, the escrow's books balance afterwards."""
    market = Market()
    yield market
    market.assert_conserved()


# ---------------------------------------------------------------- bringing an order into a state
#
# Each step waits an hour first, so a deadline counted from the wrong moment shows, and
# checks the state and deadline the step must leave.


def expect(m: Market, oid: int, state: int, deadline: int) -> None:
    o = m.get(oid)
    assert (STATE_NAMES[o["state"]], o["deadline"]) == (STATE_NAMES[state], deadline)


def no_arbiter_listing(m: Market) -> int:
    return m.listing(arbiters=(), no_arbiter_ok=True)


def paid(m: Market, *, no_arbiter: bool = False) -> int:
    lid = no_arbiter_listing(m) if no_arbiter else m.listing()
    oid = m.order(lid, arbiter=NOBODY if no_arbiter else ARBITER)
    expect(m, oid, PAID, m.now + SHIP_W)
    return oid


def shipped(m: Market, **kw) -> int:
    oid = paid(m, **kw)
    m.advance(HOUR)
    m.ship(oid)
    expect(m, oid, SHIPPED, m.now + CONFIRM_W)
    return oid


def delivered(m: Market, **kw) -> int:
    oid = shipped(m, **kw)
    m.advance(HOUR)
    m.escrow.confirm(oid, False, sender=BUYER)
    expect(m, oid, DELIVERED, m.now + RETURN_W)
    return oid


def return_requested(m: Market, **kw) -> int:
    oid = delivered(m, **kw)
    m.advance(HOUR)
    m.escrow.request_return(oid, sender=BUYER)
    expect(m, oid, RETURN_REQUESTED, m.now + ANSWER_W)
    assert m.get(oid)["return_accepted"] is False
    return oid


def return_accepted(m: Market, **kw) -> int:
    oid = return_requested(m, **kw)
    m.advance(HOUR)
    m.escrow.accept_return(oid, sender=MERCHANT)
    expect(m, oid, RETURN_REQUESTED, m.now + ANSWER_W)
    assert m.get(oid)["return_accepted"] is True
    return oid


def return_silently_accepted(m: Market, **kw) -> int:
    """The merchant let its answer window pass: the return stands accepted."""
    oid = return_requested(m, **kw)
    m.at(m.get(oid)["deadline"] + 1)
    return oid


def return_shipped(m: Market, **kw) -> int:
    oid = return_accepted(m, **kw)
    m.advance(HOUR)
    m.escrow.ship_back(oid, "RET-1", sender=BUYER)
    expect(m, oid, RETURN_SHIPPED, m.now + ANSWER_W)
    return oid


def disputed(m: Market, **kw) -> int:
    oid = shipped(m, **kw)
    m.advance(HOUR)
    m.dispute(oid)
    expect(m, oid, DISPUTED, m.now + RULING_W)
    return oid


def completed(m: Market, **kw) -> int:
    """Confirmed with the return waived: ended, with a review bounty held."""
    oid = shipped(m, **kw)
    m.advance(HOUR)
    m.escrow.confirm(oid, True, sender=BUYER)
    expect(m, oid, COMPLETED, 0)
    assert m.get(oid)["ended_at"] == m.now and m.get(oid)["bounty"] > 0
    return oid


def declined(m: Market) -> int:
    oid = paid(m)
    m.escrow.decline(oid, sender=MERCHANT)
    expect(m, oid, DECLINED, 0)
    return oid


def cancelled(m: Market) -> int:
    oid = paid(m)
    m.escrow.cancel(oid, sender=BUYER)
    expect(m, oid, CANCELLED, 0)
    return oid


def not_shipped(m: Market) -> int:
    oid = paid(m)
    m.at(m.get(oid)["deadline"] + 1)
    m.escrow.claim(oid, sender=STRANGER)
    expect(m, oid, CANCELLED, 0)
    return oid


def refunded(m: Market) -> int:
    oid = return_shipped(m)
    m.escrow.confirm_receipt(oid, sender=MERCHANT)
    expect(m, oid, REFUNDED, 0)
    return oid


def resolved(m: Market) -> int:
    oid = disputed(m)
    m.escrow.resolve(oid, 0, sender=ARBITER)
    expect(m, oid, RESOLVED, 0)
    return oid


def call(m: Market, method: str, oid: int, args: tuple, sender: bytes):
    """A step by ``sender``; a dispute or a contest brings the arbiter's fee as deposit."""
    value = m.escrow.dispute_deposit(oid) if method in ("open_dispute", "contest") else 0
    return getattr(m.escrow, method)(oid, *args, sender=sender, value=value)


# ---------------------------------------------------------------- 1. who may take each step


@dataclass(frozen=True)
class Permission:
    setup: Callable[[Market], int]
    method: str
    args: tuple
    allowed: bytes
    refused: tuple[bytes, ...]
    reason: str
    then: int                    # the state the allowed party's step leaves
    to_buyer: int = 0            # the coin it gives the buyer back (ALL: all that is held)


ALL = -1


def not_the(*allowed: bytes) -> tuple[bytes, ...]:
    return tuple(p for p in PARTIES if p not in allowed)


PERMISSIONS = [
    Permission(paid, "ship", ("TRK",), MERCHANT, not_the(MERCHANT), ONLY_MERCHANT, SHIPPED),
    Permission(paid, "decline", (), MERCHANT, not_the(MERCHANT), ONLY_MERCHANT, DECLINED, ALL),
    Permission(paid, "cancel", (), BUYER, not_the(BUYER), ONLY_BUYER, CANCELLED, ALL),
    Permission(shipped, "confirm", (False,), BUYER, not_the(BUYER), ONLY_BUYER, DELIVERED),
    Permission(shipped, "confirm", (True,), BUYER, not_the(BUYER), ONLY_BUYER, COMPLETED),
    Permission(delivered, "request_return", (), BUYER, not_the(BUYER), ONLY_BUYER,
               RETURN_REQUESTED),
    Permission(return_requested, "accept_return", (), MERCHANT, not_the(MERCHANT),
               ONLY_MERCHANT, RETURN_REQUESTED),
    Permission(return_requested, "contest", (), MERCHANT, not_the(MERCHANT), ONLY_MERCHANT,
               DISPUTED),
    Permission(return_accepted, "ship_back", ("RET",), BUYER, not_the(BUYER), ONLY_BUYER,
               RETURN_SHIPPED),
    Permission(return_silently_accepted, "ship_back", ("RET",), BUYER, not_the(BUYER),
               ONLY_BUYER, RETURN_SHIPPED),
    Permission(return_shipped, "confirm_receipt", (), MERCHANT, not_the(MERCHANT),
               ONLY_MERCHANT, REFUNDED, ALL),
    Permission(return_shipped, "contest", (), MERCHANT, not_the(MERCHANT), ONLY_MERCHANT,
               DISPUTED),
    # the merchant reaches the arbiter by contesting a return, not by a dispute of its own
    Permission(shipped, "open_dispute", (), BUYER, not_the(BUYER), ONLY_BUYER, DISPUTED),
    Permission(delivered, "open_dispute", (), BUYER, not_the(BUYER), ONLY_BUYER, DISPUTED),
    Permission(disputed, "resolve", (1_000,), ARBITER, (*not_the(ARBITER), ARBITER_2),
               ONLY_ARBITER, RESOLVED, 1_000),
    Permission(paid, "refund", (PRICE,), MERCHANT, not_the(MERCHANT), ONLY_MERCHANT, REFUNDED,
               ALL),
    Permission(paid, "refund", (1,), MERCHANT, not_the(MERCHANT), ONLY_MERCHANT, PAID, 1),
    Permission(shipped, "refund", (1,), MERCHANT, not_the(MERCHANT), ONLY_MERCHANT, SHIPPED,
               1),
    Permission(disputed, "refund", (PRICE,), MERCHANT, not_the(MERCHANT), ONLY_MERCHANT,
               REFUNDED, ALL),
]


def permission_id(p: Permission) -> str:
    return f"{p.method}{p.args}-in-{p.setup.__name__}-by-{NAMES[p.allowed]}"


@pytest.mark.parametrize("rule", PERMISSIONS, ids=permission_id)
def test_only_the_party_the_diagram_names_takes_the_step(m: Market, rule: Permission) -> None:
    oid = rule.setup(m)
    before = m.get(oid)
    for party in rule.refused:
        reverts(getattr(m.escrow, rule.method), oid, *rule.args, sender=party,
                match=rule.reason)
        assert m.get(oid) == before, NAMES[party]
    buyer_coin = m.coin(BUYER)
    deposit = m.escrow.dispute_deposit(oid) if rule.method == "open_dispute" else 0
    call(m, rule.method, oid, rule.args, rule.allowed)
    assert STATE_NAMES[m.state(oid)] == STATE_NAMES[rule.then]
    refund = before["held"] if rule.to_buyer == ALL else rule.to_buyer
    if rule.then in ENDED_STATES and rule.method != "resolve":
        refund += before["deposit"]  # a dispute that ends unruled gives its deposit back
    assert m.coin(BUYER) - buyer_coin == refund - deposit
    if rule.then not in ENDED_STATES:
        assert m.get(oid)["held"] == before["held"] - refund


@pytest.mark.parametrize("setup", [shipped, delivered, return_requested, return_shipped,
                                   disputed], ids=lambda f: f.__name__)
def test_only_buyer_and_merchant_settle_and_it_ends_when_both_name_one_amount(
        m: Market, setup: Callable[[Market], int]) -> None:
    oid = setup(m)
    state = m.state(oid)
    for party in (ARBITER, REFERRER, STRANGER):
        reverts(m.escrow.settle, oid, 100, sender=party, match=ONLY_PARTIES)
    m.escrow.settle(oid, 100, sender=BUYER)
    assert m.state(oid) == state  # one side's offer decides nothing
    refund_before = m.coin(BUYER)
    deposit = m.get(oid)["deposit"]  # a dispute settled gives the deposit back
    m.escrow.settle(oid, 100, sender=MERCHANT)
    assert m.state(oid) == RESOLVED
    assert m.coin(BUYER) == refund_before + 100 + deposit


@pytest.mark.parametrize("who", PARTIES, ids=NAMES.get)
def test_anyone_may_claim_what_silence_decided(m: Market, who: bytes) -> None:
    oid = paid(m)
    m.at(m.get(oid)["deadline"] + 1)
    buyer_before = m.coin(BUYER)
    m.escrow.claim(oid, sender=who)
    o = m.get(oid)
    assert (o["state"], o["not_shipped"], o["held"]) == (CANCELLED, True, 0)
    assert m.coin(BUYER) == buyer_before + PRICE


@pytest.mark.parametrize("who", PARTIES, ids=NAMES.get)
def test_anyone_may_return_an_unearned_bounty_to_the_merchant(m: Market, who: bytes) -> None:
    oid = completed(m)
    bounty = m.get(oid)["bounty"]
    m.at(m.get(oid)["ended_at"] + REVIEW_W + 1)
    merchant_before = m.coin(MERCHANT)
    m.escrow.release_bounty(oid, sender=who)
    assert m.get(oid)["bounty"] == 0
    assert m.coin(MERCHANT) == merchant_before + bounty


def test_only_the_reviews_contract_asks_and_only_for_the_orders_buyer(m: Market) -> None:
    oid = completed(m)
    before = m.get(oid)
    for party in PARTIES:
        reverts(m.escrow.on_review, oid, BUYER, sender=party,
                match="only the reviews contract asks")
    for party in not_the(BUYER):
        reverts(m.reviews.post_review, oid, 5, "fine", sender=party,
                match="only the order's buyer reviews it")
    assert m.get(oid) == before
    tokens_before = m.tokens(BUYER)
    m.reviews.post_review(oid, 5, "fine", sender=BUYER)
    assert m.tokens(BUYER) == tokens_before + before["bounty"]
    assert m.get(oid)["bounty"] == 0
    assert m.reviews.review(oid)["rating"] == 5


def test_only_the_reward_token_pays_for_an_order_in_tokens(m: Market) -> None:
    lid = m.listing()
    data = order_data(lid, m.version(lid), 1, ARBITER, REFERRER)
    for party in PARTIES:
        reverts(m.escrow.on_token_received, BUYER, TOKEN_PRICE, data, sender=party,
                match="only the reward token pays in tokens")
    assert m.escrow.counts()["orders"] == 0
    oid = m.order(lid, tokens=True)  # token.transfer_and_call -> on_token_received
    o = m.get(oid)
    assert (o["state"], o["buyer"], o["in_tokens"], o["paid"]) == (PAID, BUYER, True,
                                                                    TOKEN_PRICE)


# ---------------------------------------------------------------- 2. where each step applies


@dataclass(frozen=True)
class Misplaced:
    setup: Callable[[Market], int]
    method: str
    args: tuple
    sender: bytes                # the party allowed to take it where it does apply
    reason: str


def no_arbiter_shipped(m: Market) -> int:
    return shipped(m, no_arbiter=True)


def no_arbiter_delivered(m: Market) -> int:
    return delivered(m, no_arbiter=True)


WRONG_STATES = [
    Misplaced(shipped, "ship", ("TRK",), MERCHANT, WRONG_STATE),
    Misplaced(delivered, "ship", ("TRK",), MERCHANT, WRONG_STATE),
    Misplaced(shipped, "decline", (), MERCHANT, WRONG_STATE),
    Misplaced(shipped, "cancel", (), BUYER, WRONG_STATE),
    Misplaced(disputed, "cancel", (), BUYER, WRONG_STATE),
    Misplaced(paid, "confirm", (False,), BUYER, WRONG_STATE),
    Misplaced(delivered, "confirm", (False,), BUYER, WRONG_STATE),
    Misplaced(disputed, "confirm", (True,), BUYER, WRONG_STATE),
    Misplaced(shipped, "request_return", (), BUYER, WRONG_STATE),
    Misplaced(return_requested, "request_return", (), BUYER, WRONG_STATE),
    Misplaced(disputed, "request_return", (), BUYER, WRONG_STATE),
    Misplaced(delivered, "accept_return", (), MERCHANT, WRONG_STATE),
    Misplaced(return_accepted, "accept_return", (), MERCHANT, "already accepted"),
    Misplaced(return_shipped, "accept_return", (), MERCHANT, WRONG_STATE),
    Misplaced(delivered, "ship_back", ("RET",), BUYER, WRONG_STATE),
    Misplaced(return_requested, "ship_back", ("RET",), BUYER, "the merchant may still answer"),
    Misplaced(return_shipped, "ship_back", ("RET",), BUYER, WRONG_STATE),
    Misplaced(return_accepted, "confirm_receipt", (), MERCHANT, WRONG_STATE),
    Misplaced(delivered, "confirm_receipt", (), MERCHANT, WRONG_STATE),
    Misplaced(delivered, "contest", (), MERCHANT, "nothing to contest"),
    Misplaced(disputed, "contest", (), MERCHANT, "nothing to contest"),
    Misplaced(return_accepted, "contest", (), MERCHANT, "the return was accepted"),
    Misplaced(paid, "open_dispute", (), BUYER, "no dispute in this state"),
    Misplaced(return_requested, "open_dispute", (), BUYER, "no dispute in this state"),
    Misplaced(return_shipped, "open_dispute", (), BUYER, "no dispute in this state"),
    Misplaced(disputed, "open_dispute", (), BUYER, "no dispute in this state"),
    Misplaced(no_arbiter_shipped, "open_dispute", (), BUYER, "the order has no arbiter"),
    Misplaced(no_arbiter_delivered, "open_dispute", (), BUYER, "the order has no arbiter"),
    Misplaced(shipped, "resolve", (0,), ARBITER, WRONG_STATE),
    Misplaced(return_shipped, "resolve", (0,), ARBITER, WRONG_STATE),
    Misplaced(paid, "settle", (0,), BUYER, "nothing to settle in this state"),
    Misplaced(paid, "settle", (0,), MERCHANT, "nothing to settle in this state"),
    Misplaced(shipped, "claim", (), STRANGER, NOT_YET),
    Misplaced(shipped, "release_bounty", (), STRANGER, "no bounty held"),
    Misplaced(shipped, "refund", (0,), MERCHANT, "refund between 1 and what the order holds"),
    Misplaced(shipped, "refund", (PRICE + 1,), MERCHANT,
              "refund between 1 and what the order holds"),
    Misplaced(shipped, "settle", (PRICE + 1,), BUYER, "more than the order holds"),
]


def misplaced_id(r: Misplaced) -> str:
    return f"{r.method}{r.args}-in-{r.setup.__name__}"


@pytest.mark.parametrize("rule", WRONG_STATES, ids=misplaced_id)
def test_a_step_is_refused_where_the_diagram_does_not_have_it(m: Market,
                                                               rule: Misplaced) -> None:
    oid = rule.setup(m)
    before = m.get(oid)
    reverts(getattr(m.escrow, rule.method), oid, *rule.args, sender=rule.sender,
            match=rule.reason)
    assert m.get(oid) == before


# Once an order has ended, nothing changes it (a review and its bounty aside).
AFTER_THE_END = [
    ("ship", ("TRK",), MERCHANT, WRONG_STATE),
    ("decline", (), MERCHANT, WRONG_STATE),
    ("cancel", (), BUYER, WRONG_STATE),
    ("confirm", (False,), BUYER, WRONG_STATE),
    ("request_return", (), BUYER, WRONG_STATE),
    ("accept_return", (), MERCHANT, WRONG_STATE),
    ("ship_back", ("RET",), BUYER, WRONG_STATE),
    ("confirm_receipt", (), MERCHANT, WRONG_STATE),
    ("contest", (), MERCHANT, "nothing to contest"),
    ("open_dispute", (), BUYER, "no dispute in this state"),
    ("resolve", (0,), ARBITER, WRONG_STATE),
    ("settle", (0,), BUYER, "nothing to settle in this state"),
    ("refund", (1,), MERCHANT, ENDED),
    ("claim", (), STRANGER, ENDED),
]


@pytest.mark.parametrize("setup", [completed, declined, cancelled, not_shipped, refunded,
                                   resolved], ids=lambda f: f.__name__)
def test_an_ended_order_refuses_every_step(m: Market, setup: Callable[[Market], int]) -> None:
    oid = setup(m)
    m.advance(100 * DAY)  # no deadline reopens anything
    before = m.get(oid)
    for method, args, sender, reason in AFTER_THE_END:
        reverts(getattr(m.escrow, method), oid, *args, sender=sender, match=reason)
    assert m.get(oid) == before


def test_a_buyers_own_cancel_is_not_reviewed_and_an_open_order_is_not_either(
        m: Market) -> None:
    oid = cancelled(m)
    reverts(m.reviews.post_review, oid, 1, "x", sender=BUYER,
            match="only an order that was shipped")
    oid = shipped(m)
    reverts(m.reviews.post_review, oid, 5, "x", sender=BUYER, match="the order has not ended")
    assert m.reviews.review(oid)["rating"] == 0


# ---------------------------------------------------------------- 3. every deadline


def deadline(m: Market, oid: int) -> int:
    return m.get(oid)["deadline"]


def silent_ship_back_deadline(m: Market, oid: int) -> int:
    """Silence accepts: the goods go back within an answer window after the first one."""
    return m.get(oid)["deadline"] + ANSWER_W


def review_window_end(m: Market, oid: int) -> int:
    return m.get(oid)["ended_at"] + REVIEW_W


@dataclass(frozen=True)
class Timed:
    name: str
    setup: Callable[[Market], int]
    deadline: Callable[[Market, int], int]
    method: str
    args: tuple
    sender: bytes
    then: int                                    # the state the step leaves
    next_deadline: Callable[[int, int], int]     # (the old deadline, now) -> the new one
    reason: str                                  # why it is refused on the wrong side


def ended(_deadline: int, _now: int) -> int:
    return 0


# Allowed at the deadline, refused one millisecond after it.
UNTIL = [
    Timed("merchant ships until the ship deadline", paid, deadline, "ship", ("TRK",),
          MERCHANT, SHIPPED, lambda d, t: t + CONFIRM_W, "the ship deadline has passed"),
    Timed("buyer disputes a shipped order until the confirm deadline", shipped, deadline,
          "open_dispute", (), BUYER, DISPUTED, lambda d, t: t + RULING_W, "too late to dispute"),
    Timed("buyer requests a return until the return window closes", delivered, deadline,
          "request_return", (), BUYER, RETURN_REQUESTED, lambda d, t: t + ANSWER_W,
          "the return window has closed"),
    Timed("buyer disputes a delivered order until the return window closes", delivered,
          deadline, "open_dispute", (), BUYER, DISPUTED, lambda d, t: t + RULING_W,
          "too late to dispute"),
    Timed("merchant accepts a return within the answer window", return_requested, deadline,
          "accept_return", (), MERCHANT, RETURN_REQUESTED, lambda d, t: t + ANSWER_W,
          "the return is accepted already"),
    Timed("merchant contests a return within the answer window", return_requested, deadline,
          "contest", (), MERCHANT, DISPUTED, lambda d, t: t + RULING_W,
          "the answer window has passed"),
    Timed("buyer ships back an accepted return until the deadline set at acceptance",
          return_accepted, deadline, "ship_back", ("RET",), BUYER, RETURN_SHIPPED,
          lambda d, t: t + ANSWER_W, "the time to ship the goods back has passed"),
    Timed("buyer ships back a silently accepted return until an answer window after the "
          "answer deadline", return_requested, silent_ship_back_deadline, "ship_back",
          ("RET",), BUYER, RETURN_SHIPPED, lambda d, t: t + ANSWER_W,
          "the time to ship the goods back has passed"),
    Timed("merchant contests what came back within the answer window", return_shipped,
          deadline, "contest", (), MERCHANT, DISPUTED, lambda d, t: t + RULING_W,
          "the answer window has passed"),
    Timed("arbiter rules until the ruling deadline", disputed, deadline, "resolve", (1_000,),
          ARBITER, RESOLVED, ended, "the ruling deadline has passed"),
]

# Refused at the deadline, allowed one millisecond after it (by anyone, for a claim).
AFTER = [
    Timed("an unshipped order is refunded after the ship deadline", paid, deadline, "claim",
          (), STRANGER, CANCELLED, ended, NOT_YET),
    Timed("an unconfirmed order is delivered after the confirm deadline, as of it", shipped,
          deadline, "claim", (), STRANGER, DELIVERED, lambda d, t: d + RETURN_W, NOT_YET),
    Timed("a delivered order completes after the return window", delivered, deadline,
          "claim", (), STRANGER, COMPLETED, ended, NOT_YET),
    Timed("an unanswered return may be shipped back after the answer deadline",
          return_requested, deadline, "ship_back", ("RET",), BUYER, RETURN_SHIPPED,
          lambda d, t: t + ANSWER_W, "the merchant may still answer"),
    Timed("an accepted return not shipped back lapses after its ship-back deadline",
          return_accepted, deadline, "claim", (), STRANGER, COMPLETED, ended, NOT_YET),
    Timed("a silently accepted return not shipped back lapses an answer window after the "
          "answer deadline", return_requested, silent_ship_back_deadline, "claim", (),
          STRANGER, COMPLETED, ended, NOT_YET),
    Timed("what came back unanswered is refunded after the answer window", return_shipped,
          deadline, "claim", (), STRANGER, REFUNDED, ended, NOT_YET),
    Timed("a dispute the arbiter let lapse takes the default split after the ruling "
          "deadline", disputed, deadline, "claim", (), STRANGER, RESOLVED, ended, NOT_YET),
    Timed("an unearned bounty goes back to the merchant after the review window", completed,
          review_window_end, "release_bounty", (), STRANGER, COMPLETED, ended,
          "the review window is open"),
]


def timed_id(r: Timed) -> str:
    return r.name.replace(" ", "_")


def take(m: Market, rule: Timed, oid: int) -> None:
    old = m.get(oid)["deadline"]
    call(m, rule.method, oid, rule.args, rule.sender)
    expect(m, oid, rule.then, rule.next_deadline(old, m.now))


def refuse(m: Market, rule: Timed, oid: int) -> None:
    before = m.get(oid)
    reverts(getattr(m.escrow, rule.method), oid, *rule.args, sender=rule.sender,
            match=rule.reason)
    assert m.get(oid) == before


@pytest.mark.parametrize("rule", UNTIL, ids=timed_id)
def test_allowed_at_the_deadline(m: Market, rule: Timed) -> None:
    oid = rule.setup(m)
    m.at(rule.deadline(m, oid))
    take(m, rule, oid)


@pytest.mark.parametrize("rule", UNTIL, ids=timed_id)
def test_refused_one_millisecond_after_the_deadline(m: Market, rule: Timed) -> None:
    oid = rule.setup(m)
    m.at(rule.deadline(m, oid) + 1)
    refuse(m, rule, oid)


@pytest.mark.parametrize("rule", AFTER, ids=timed_id)
def test_refused_at_the_deadline(m: Market, rule: Timed) -> None:
    oid = rule.setup(m)
    m.at(rule.deadline(m, oid))
    refuse(m, rule, oid)


@pytest.mark.parametrize("rule", AFTER, ids=timed_id)
def test_allowed_one_millisecond_after_the_deadline(m: Market, rule: Timed) -> None:
    oid = rule.setup(m)
    m.at(rule.deadline(m, oid) + 1)
    take(m, rule, oid)


# ------------------------------------------ the windows themselves, and what each decides


def test_each_deadline_runs_from_the_step_that_set_it(m: Market) -> None:
    placed = m.now
    oid = m.order(m.listing())
    assert m.get(oid)["deadline"] == placed + SHIP_W
    m.advance(3 * HOUR)
    m.ship(oid)
    assert m.get(oid)["deadline"] == placed + 3 * HOUR + CONFIRM_W
    m.advance(5 * HOUR)
    m.escrow.confirm(oid, False, sender=BUYER)
    assert m.get(oid)["deadline"] == placed + 8 * HOUR + RETURN_W
    m.advance(7 * HOUR)
    m.escrow.request_return(oid, sender=BUYER)
    assert m.get(oid)["deadline"] == placed + 15 * HOUR + ANSWER_W
    m.advance(11 * HOUR)
    m.dispute(oid, MERCHANT)
    assert m.get(oid)["deadline"] == placed + 26 * HOUR + RULING_W


def test_an_early_acceptance_sets_the_ship_back_deadline_from_itself_not_from_silence(
        m: Market) -> None:
    oid = return_requested(m)
    answer_deadline = m.get(oid)["deadline"]
    m.advance(HOUR)
    m.escrow.accept_return(oid, sender=MERCHANT)
    ship_back_by = m.now + ANSWER_W
    assert m.get(oid)["deadline"] == ship_back_by < answer_deadline + ANSWER_W
    m.at(ship_back_by + 1)
    reverts(m.escrow.ship_back, oid, "RET", sender=BUYER, match="ship the goods back has passed")
    m.escrow.claim(oid, sender=STRANGER)
    assert m.state(oid) == COMPLETED


def test_an_acceptance_at_the_last_millisecond_gives_a_full_answer_window_to_ship_back(
        m: Market) -> None:
    oid = return_requested(m)
    answer_deadline = m.get(oid)["deadline"]
    m.at(answer_deadline)
    m.escrow.accept_return(oid, sender=MERCHANT)
    m.at(answer_deadline + ANSWER_W)
    reverts(m.escrow.claim, oid, sender=STRANGER, match=NOT_YET)
    m.escrow.ship_back(oid, "RET", sender=BUYER)
    expect(m, oid, RETURN_SHIPPED, m.now + ANSWER_W)


@pytest.mark.parametrize(("late", "state", "window_end"), [
    (0, DELIVERED, RETURN_W),                    # on time: the window runs from now
    (1, DELIVERED, RETURN_W),                    # late: it still runs from the deadline
    (RETURN_W, DELIVERED, RETURN_W),             # its last millisecond: still open
    (RETURN_W + 1, COMPLETED, None),             # after it: nothing left to return
], ids=["at-the-confirm-deadline", "1ms-late", "at-the-end-of-the-return-window",
        "after-the-return-window"])
def test_a_late_confirm_never_opens_a_fresh_return_window(
        m: Market, late: int, state: int, window_end: int | None) -> None:
    oid = shipped(m)
    confirm_deadline = m.get(oid)["deadline"]
    m.at(confirm_deadline + late)
    m.escrow.confirm(oid, False, sender=BUYER)
    expect(m, oid, state, 0 if window_end is None else confirm_deadline + window_end)


@pytest.mark.parametrize(("late", "state"), [(RETURN_W, DELIVERED), (RETURN_W + 1, COMPLETED)],
                         ids=["at-the-end-of-the-return-window", "after-the-return-window"])
def test_a_claim_on_a_shipped_order_delivers_it_as_of_the_confirm_deadline(
        m: Market, late: int, state: int) -> None:
    oid = shipped(m)
    confirm_deadline = m.get(oid)["deadline"]
    m.at(confirm_deadline + late)
    m.escrow.claim(oid, sender=STRANGER)
    expect(m, oid, state, confirm_deadline + RETURN_W if state == DELIVERED else 0)


def test_a_return_requested_at_the_last_millisecond_gets_a_full_answer_window(
        m: Market) -> None:
    oid = delivered(m)
    m.at(m.get(oid)["deadline"])
    m.escrow.request_return(oid, sender=BUYER)
    expect(m, oid, RETURN_REQUESTED, m.now + ANSWER_W)
    m.at(m.now + ANSWER_W)
    m.dispute(oid, MERCHANT)
    expect(m, oid, DISPUTED, m.now + RULING_W)


@pytest.mark.parametrize("setup", [return_requested, return_shipped], ids=lambda f: f.__name__)
def test_a_contest_without_an_arbiter_at_the_answer_deadline_is_final(
        m: Market, setup: Callable[..., int]) -> None:
    oid = setup(m, no_arbiter=True)
    m.at(m.get(oid)["deadline"])
    m.escrow.contest(oid, sender=MERCHANT)
    expect(m, oid, COMPLETED, 0)


def test_a_claim_after_an_unanswered_return_refunds_the_buyer_in_full(m: Market) -> None:
    oid = return_shipped(m)
    m.at(m.get(oid)["deadline"] + 1)
    before = m.coin(BUYER)
    m.escrow.claim(oid, sender=STRANGER)
    assert m.coin(BUYER) == before + PRICE


def test_a_lapsed_ruling_pays_the_default_split_and_no_fee(m: Market) -> None:
    oid = disputed(m)
    m.at(m.get(oid)["deadline"] + 1)
    buyer, arbiter = m.coin(BUYER), m.coin(ARBITER)
    deposit = m.get(oid)["deposit"]
    assert deposit == share(PRICE, FEE_BPS) > 0
    m.escrow.claim(oid, sender=STRANGER)
    assert m.coin(BUYER) == buyer + share(PRICE, DEFAULT_REFUND_BPS) + deposit  # fee back
    assert m.coin(ARBITER) == arbiter
    assert m.escrow.arbiter_record(ARBITER)["missed"] == 1


# Steps the diagram gives no deadline: still open long after every window has passed.
NO_DEADLINE = [
    Timed("merchant declines after the ship deadline: recorded as the miss it was", paid,
          deadline, "decline", (), MERCHANT, CANCELLED, ended, ""),
    Timed("buyer cancels after the ship deadline", paid, deadline, "cancel", (), BUYER,
          CANCELLED, ended, ""),
    Timed("buyer confirms after the confirm deadline", shipped, deadline, "confirm", (True,),
          BUYER, COMPLETED, ended, ""),
    Timed("merchant confirms receipt after the answer window", return_shipped, deadline,
          "confirm_receipt", (), MERCHANT, REFUNDED, ended, ""),
    Timed("merchant refunds in full after the ruling deadline", disputed, deadline, "refund",
          (PRICE,), MERCHANT, REFUNDED, ended, ""),
]


@pytest.mark.parametrize("rule", NO_DEADLINE, ids=timed_id)
def test_a_step_without_a_deadline_is_still_open_after_the_states_deadline(
        m: Market, rule: Timed) -> None:
    oid = rule.setup(m)
    m.at(rule.deadline(m, oid) + 1)
    take(m, rule, oid)


def test_settling_is_open_after_the_ruling_deadline_until_someone_claims(m: Market) -> None:
    oid = disputed(m)
    m.at(m.get(oid)["deadline"] + 1)
    m.escrow.settle(oid, 500, sender=MERCHANT)
    m.escrow.settle(oid, 500, sender=BUYER)
    expect(m, oid, RESOLVED, 0)


def test_a_buyers_cancel_after_the_ship_deadline_counts_as_not_shipped(m: Market) -> None:
    oid = paid(m)
    m.at(m.get(oid)["deadline"])
    m.escrow.cancel(oid, sender=BUYER)
    assert m.get(oid)["not_shipped"] is False  # on time: the buyer's own choice
    oid = paid(m)
    m.at(m.get(oid)["deadline"] + 1)
    m.escrow.cancel(oid, sender=BUYER)
    assert m.get(oid)["not_shipped"] is True
    assert m.escrow.merchant_record(MERCHANT)["not_shipped"] == 1


@pytest.mark.parametrize(("late", "earns"), [(0, True), (1, False)],
                         ids=["review-at-the-end-of-the-window", "review-1ms-after"])
def test_a_review_earns_the_bounty_until_the_review_window_closes(
        m: Market, late: int, earns: bool) -> None:
    oid = completed(m)
    bounty = m.get(oid)["bounty"]
    m.at(m.get(oid)["ended_at"] + REVIEW_W + late)
    before = m.tokens(BUYER)
    m.reviews.post_review(oid, 4, "ok", sender=BUYER)
    assert m.reviews.review(oid)["rating"] == 4  # reviewed either way
    assert m.tokens(BUYER) == before + (bounty if earns else 0)
    assert m.get(oid)["bounty"] == (0 if earns else bounty)
