"""Every path an order can take, end to end, with every party's coin and tokens checked
to the unit after each end (escrow.agc; DESIGN.md "The commerce contracts").

Each test walks one path in a fresh :class:`Market` and compares what every party holds
before and after with what the rules say, written out here independently of the
contract (``split``): the refund, the arbiter's fee, the referral and cashback minted
as tokens against the merchant's proceeds, the bounty held until a review, and the
merchant's payment. The escrow's books are checked after every path too.
"""

from __future__ import annotations

import pytest
from commerce_helpers import (
    ANSWER_W,
    ARBITER,
    ARBITER_2,
    BOUNTY_BPS,
    BUYER,
    CANCELLED,
    CASHBACK_BPS,
    COMPLETED,
    CONFIRM_W,
    DECLINED,
    DEFAULT_REFUND_BPS,
    DELIVERED,
    DISPUTED,
    FEE_BPS,
    MERCHANT,
    NOBODY,
    PAID,
    PRICE,
    REFERRAL_BPS,
    REFERRER,
    REFUNDED,
    RESOLVED,
    RETURN_SHIPPED,
    RETURN_W,
    REVIEW_W,
    RULING_W,
    SHIP_W,
    SHIPPED,
    STRANGER,
    TOKEN_PRICE,
    Market,
    reverts,
    share,
    split,
)

PARTIES = (BUYER, MERCHANT, REFERRER, ARBITER, STRANGER)


class Books:
    """Coin and tokens of every party before a path; ``expect`` checks the change."""

    def __init__(self, m: Market) -> None:
        self.m = m
        self.before = m.wealths(*PARTIES)

    def expect(self, **changes: tuple[int, int]) -> None:
        """changes: party name -> (coin delta, token delta); unnamed parties: (0, 0)."""
        names = {"buyer": BUYER, "merchant": MERCHANT, "referrer": REFERRER,
                 "arbiter": ARBITER, "stranger": STRANGER}
        for name, who in names.items():
            coin0, tok0 = self.before[who]
            coin1, tok1 = self.m.wealth(who)
            assert (coin1 - coin0, tok1 - tok0) == changes.get(name, (0, 0)), name
        self.m.assert_conserved()


def shipped(m: Market, lid: int | None = None, **order) -> int:
    oid = m.order(m.listing() if lid is None else lid, **order)
    m.ship(oid)
    return oid


# ---------------------------------------------------------------- completion


def test_confirmed_and_waived_completes_at_once_and_pays_every_commission() -> None:
    m = Market()
    lid = m.listing()
    books = Books(m)
    oid = m.order(lid, quantity=3)
    m.ship(oid)
    m.escrow.confirm(oid, True, sender=BUYER)
    paid = 3 * PRICE
    s = split(paid, 0)
    books.expect(buyer=(-paid, s.cashback), merchant=(s.merchant, 0), referrer=(0, s.referral))
    o = m.get(oid)
    assert (o["state"], o["held"], o["bounty"], o["ended_at"]) == (COMPLETED, 0, s.bounty,
                                                                   m.now)
    assert s.referral == share(paid, REFERRAL_BPS) > 0 and s.cashback > 0 and s.bounty > 0
    # the review earns the bounty, in tokens minted against the bounty's coin
    m.reviews.post_review(oid, 5, "as described", sender=BUYER)
    books.expect(buyer=(-paid, s.cashback + s.bounty), merchant=(s.merchant, 0),
                 referrer=(0, s.referral))
    assert m.get(oid)["bounty"] == 0


def test_delivered_then_the_return_window_passes_then_anyone_completes_it() -> None:
    m = Market()
    books = Books(m)
    oid = shipped(m)
    m.advance(1_000)
    m.escrow.confirm(oid, False, sender=BUYER)
    o = m.get(oid)
    assert (o["state"], o["deadline"]) == (DELIVERED, m.now + RETURN_W)
    m.at(o["deadline"])
    reverts(m.escrow.claim, oid, sender=STRANGER, match="deadline has not passed")
    m.advance(1)
    m.escrow.claim(oid, sender=STRANGER)
    s = split(PRICE, 0)
    books.expect(buyer=(-PRICE, s.cashback), merchant=(s.merchant, 0), referrer=(0, s.referral))
    assert m.state(oid) == COMPLETED


def test_a_late_confirm_runs_the_return_window_from_the_confirm_deadline() -> None:
    m = Market()
    oid = shipped(m)
    confirm_deadline = m.get(oid)["deadline"]
    m.at(confirm_deadline + 3 * 86_400_000)
    m.escrow.confirm(oid, False, sender=BUYER)
    assert m.get(oid)["deadline"] == confirm_deadline + RETURN_W  # not now + RETURN_W


def test_a_confirm_after_the_whole_return_window_completes_at_once() -> None:
    m = Market()
    books = Books(m)
    oid = shipped(m)
    m.at(m.get(oid)["deadline"] + RETURN_W + 1)
    m.escrow.confirm(oid, False, sender=BUYER)
    assert m.state(oid) == COMPLETED
    s = split(PRICE, 0)
    books.expect(buyer=(-PRICE, s.cashback), merchant=(s.merchant, 0), referrer=(0, s.referral))


def test_a_silent_buyer_is_delivered_at_the_confirm_deadline_and_the_merchant_is_paid() -> None:
    m = Market()
    books = Books(m)
    oid = shipped(m)
    confirm_deadline = m.get(oid)["deadline"]
    m.at(confirm_deadline + 1)
    m.escrow.claim(oid, sender=MERCHANT)
    o = m.get(oid)
    assert (o["state"], o["deadline"]) == (DELIVERED, confirm_deadline + RETURN_W)
    m.at(o["deadline"] + 1)
    m.escrow.claim(oid, sender=MERCHANT)
    s = split(PRICE, 0)
    books.expect(buyer=(-PRICE, s.cashback), merchant=(s.merchant, 0), referrer=(0, s.referral))


def test_final_sale_completes_on_confirmation_and_has_no_return() -> None:
    m = Market()
    lid = m.listing(returns=0)
    oid = shipped(m, lid)
    m.escrow.confirm(oid, False, sender=BUYER)
    assert m.state(oid) == COMPLETED
    oid = shipped(m, lid)
    m.at(m.get(oid)["deadline"] + 1)
    m.escrow.claim(oid, sender=STRANGER)  # silent buyer: completed at the confirm deadline
    assert m.state(oid) == COMPLETED


def test_no_referrer_leaves_the_referral_with_the_merchant() -> None:
    m = Market()
    books = Books(m)
    oid = shipped(m, referrer=NOBODY)
    m.escrow.confirm(oid, True, sender=BUYER)
    s = split(PRICE, 0, referrer=False)
    books.expect(buyer=(-PRICE, s.cashback), merchant=(s.merchant, 0))
    assert s.merchant == PRICE - s.cashback - s.bounty


def test_commissions_are_on_what_the_merchant_kept_after_a_partial_refund() -> None:
    m = Market()
    books = Books(m)
    oid = shipped(m, quantity=2)
    paid = 2 * PRICE
    m.escrow.refund(oid, 333_333, sender=MERCHANT)
    assert (m.state(oid), m.get(oid)["held"]) == (SHIPPED, paid - 333_333)
    m.escrow.confirm(oid, True, sender=BUYER)
    s = split(paid - 333_333, 0)
    books.expect(buyer=(-paid + 333_333, s.cashback), merchant=(s.merchant, 0),
                 referrer=(0, s.referral))


# ---------------------------------------------------------------- before shipping


def test_declined_refunds_in_full_returns_the_stock_and_counts_against_the_merchant() -> None:
    m = Market()
    lid = m.listing(stock=5)
    books = Books(m)
    oid = m.order(lid, quantity=2)
    assert m.catalog.listing(lid)["stock"] == 3
    m.escrow.decline(oid, sender=MERCHANT)
    books.expect()
    assert m.state(oid) == DECLINED
    assert m.catalog.listing(lid)["stock"] == 5
    assert m.escrow.merchant_record(MERCHANT)["declined"] == 1
    assert m.escrow.listing_record(lid)["declined"] == 1


def test_a_buyer_cancels_before_the_deadline_at_no_cost_to_either_reputation() -> None:
    m = Market()
    lid = m.listing()
    books = Books(m)
    oid = m.order(lid)
    m.at(m.get(oid)["deadline"])
    m.escrow.cancel(oid, sender=BUYER)
    books.expect()
    o = m.get(oid)
    assert (o["state"], o["not_shipped"]) == (CANCELLED, False)
    assert m.escrow.merchant_record(MERCHANT)["not_shipped"] == 0
    reverts(m.reviews.post_review, oid, 1, "changed my mind", sender=BUYER,
            match="only an order that was shipped")


@pytest.mark.parametrize("who", [BUYER, STRANGER])
def test_past_the_ship_deadline_the_buyer_is_refunded_and_the_miss_is_recorded(
        who: bytes) -> None:
    m = Market()
    lid = m.listing(stock=1)
    books = Books(m)
    oid = m.order(lid)
    m.at(m.get(oid)["deadline"] + 1)
    reverts(m.escrow.ship, oid, "late", sender=MERCHANT, match="ship deadline has passed")
    if who == BUYER:
        m.escrow.cancel(oid, sender=BUYER)
    else:
        m.escrow.claim(oid, sender=STRANGER)
    books.expect()
    o = m.get(oid)
    assert (o["state"], o["not_shipped"]) == (CANCELLED, True)
    assert m.escrow.merchant_record(MERCHANT)["not_shipped"] == 1
    assert m.escrow.listing_record(lid)["not_shipped"] == 1
    assert m.catalog.listing(lid)["stock"] == 1
    m.reviews.post_review(oid, 1, "never shipped", sender=BUYER)  # the buyer may say so


def test_a_decline_or_full_refund_after_the_ship_deadline_is_recorded_as_not_shipped(
        ) -> None:
    """Past the ship deadline silence has decided: the merchant did not ship. Acting
    late with a decline or a refund cannot turn that into a better-looking record."""
    m = Market()
    lid = m.listing()
    late = [m.order(lid), m.order(lid)]
    m.at(m.get(late[0])["deadline"] + 1)
    m.escrow.decline(late[0], sender=MERCHANT)
    m.escrow.refund(late[1], PRICE, sender=MERCHANT)
    for oid in late:
        o = m.get(oid)
        assert (o["state"], o["not_shipped"]) == (CANCELLED, True)
    record = m.escrow.merchant_record(MERCHANT)
    assert (record["not_shipped"], record["declined"], record["refunded"]) == (2, 0, 0)


def test_a_full_refund_by_the_merchant_before_shipping() -> None:
    m = Market()
    lid = m.listing(stock=1)
    books = Books(m)
    oid = m.order(lid)
    m.escrow.refund(oid, PRICE, sender=MERCHANT)
    books.expect()
    assert m.state(oid) == REFUNDED
    assert m.catalog.listing(lid)["stock"] == 1


# ---------------------------------------------------------------- returns


def delivered(m: Market, **order) -> int:
    oid = shipped(m, **order)
    m.escrow.confirm(oid, False, sender=BUYER)
    assert m.state(oid) == DELIVERED
    return oid


def test_return_accepted_shipped_back_and_received_refunds_in_full() -> None:
    m = Market()
    books = Books(m)
    oid = delivered(m)
    m.escrow.request_return(oid, sender=BUYER)
    assert m.get(oid)["deadline"] == m.now + ANSWER_W
    m.advance(1_000)
    m.escrow.accept_return(oid, sender=MERCHANT)
    assert m.get(oid)["deadline"] == m.now + ANSWER_W
    m.escrow.ship_back(oid, "RET-9", sender=BUYER)
    o = m.get(oid)
    assert (o["state"], o["return_tracking"], o["deadline"]) == (RETURN_SHIPPED, "RET-9",
                                                                 m.now + ANSWER_W)
    m.escrow.confirm_receipt(oid, sender=MERCHANT)
    books.expect()
    assert m.state(oid) == REFUNDED
    assert m.escrow.merchant_record(MERCHANT)["refunded"] == 1


def test_a_silent_merchant_accepts_the_return_and_then_refunds_it() -> None:
    m = Market()
    books = Books(m)
    oid = delivered(m)
    m.escrow.request_return(oid, sender=BUYER)
    answer_deadline = m.get(oid)["deadline"]
    reverts(m.escrow.ship_back, oid, "R", sender=BUYER, match="may still answer")
    m.at(answer_deadline + 1)
    reverts(m.escrow.accept_return, oid, sender=MERCHANT, match="accepted already")
    reverts(m.escrow.contest, oid, sender=MERCHANT, match="answer window has passed")
    m.escrow.ship_back(oid, "R", sender=BUYER)
    m.at(m.get(oid)["deadline"] + 1)
    m.escrow.claim(oid, sender=BUYER)
    books.expect()
    assert m.state(oid) == REFUNDED


def test_a_return_never_shipped_back_lapses_and_the_merchant_is_paid() -> None:
    m = Market()
    books = Books(m)
    oid = delivered(m)
    m.escrow.request_return(oid, sender=BUYER)
    m.escrow.accept_return(oid, sender=MERCHANT)
    ship_back_by = m.get(oid)["deadline"]
    m.at(ship_back_by)
    reverts(m.escrow.claim, oid, sender=MERCHANT, match="deadline has not passed")
    m.advance(1)
    reverts(m.escrow.ship_back, oid, "late", sender=BUYER, match="ship the goods back has passed")
    m.escrow.claim(oid, sender=MERCHANT)
    s = split(PRICE, 0)
    books.expect(buyer=(-PRICE, s.cashback), merchant=(s.merchant, 0), referrer=(0, s.referral))
    assert m.state(oid) == COMPLETED


def test_a_silent_return_never_shipped_back_lapses_an_answer_window_after_the_answer() -> None:
    m = Market()
    oid = delivered(m)
    m.escrow.request_return(oid, sender=BUYER)
    answer_deadline = m.get(oid)["deadline"]
    m.at(answer_deadline + ANSWER_W)
    reverts(m.escrow.claim, oid, sender=MERCHANT, match="deadline has not passed")
    m.advance(1)
    m.escrow.claim(oid, sender=MERCHANT)
    assert m.state(oid) == COMPLETED


def test_a_contested_return_without_an_arbiter_is_final_and_pays_the_merchant() -> None:
    m = Market()
    lid = m.listing(arbiters=(), no_arbiter_ok=True)
    books = Books(m)
    oid = m.order(lid, arbiter=NOBODY)
    m.ship(oid)
    m.escrow.confirm(oid, False, sender=BUYER)
    m.escrow.request_return(oid, sender=BUYER)
    m.escrow.contest(oid, sender=MERCHANT)
    s = split(PRICE, 0)  # (the merchant reaches no arbiter: there is none)
    books.expect(buyer=(-PRICE, s.cashback), merchant=(s.merchant, 0), referrer=(0, s.referral))
    assert m.state(oid) == COMPLETED
    reverts(m.escrow.open_dispute, m.order(lid, arbiter=NOBODY), sender=BUYER,
            match="no dispute in this state")


def test_what_came_back_contested_goes_to_the_arbiter_who_splits_it() -> None:
    m = Market()
    books = Books(m)
    oid = delivered(m)
    m.escrow.request_return(oid, sender=BUYER)
    m.escrow.accept_return(oid, sender=MERCHANT)
    m.escrow.ship_back(oid, "R", sender=BUYER)
    fee = m.dispute(oid, MERCHANT)  # the merchant brings it: it deposits the fee
    assert fee == share(PRICE, FEE_BPS) > 0
    o = m.get(oid)
    assert (o["state"], o["deadline"], o["deposit"]) == (DISPUTED, m.now + RULING_W, fee)
    m.escrow.resolve(oid, 400_000, sender=ARBITER)
    # the merchant won (it keeps more): the buyer pays the fee back out of its share
    s = split(PRICE, 400_000 - fee)
    books.expect(buyer=(-PRICE + 400_000 - fee, s.cashback), merchant=(s.merchant - fee, 0),
                 referrer=(0, s.referral), arbiter=(fee, 0))
    assert m.state(oid) == RESOLVED
    assert m.escrow.arbiter_record(ARBITER) == {"cases": 1, "ruled": 1, "for_buyer": 0,
                                                 "for_merchant": 1, "split": 0, "missed": 0,
                                                 "fees": fee}
    record = m.escrow.merchant_record(MERCHANT)
    assert (record["disputes"], record["disputes_lost"]) == (1, 0)


# ---------------------------------------------------------------- disputes and settling


def test_a_dispute_ruled_wholly_for_the_buyer() -> None:
    m = Market()
    books = Books(m)
    oid = shipped(m)
    fee = m.dispute(oid)
    m.escrow.resolve(oid, PRICE, sender=ARBITER)
    books.expect(buyer=(-fee, 0), arbiter=(fee, 0))  # it won, but the merchant kept nothing
    assert fee == share(PRICE, FEE_BPS)
    assert m.escrow.arbiter_record(ARBITER)["for_buyer"] == 1
    assert m.escrow.merchant_record(MERCHANT)["disputes_lost"] == 1


def test_a_refund_slipped_in_before_a_ruling_cannot_make_it_fail() -> None:
    """A merchant may refund at any time; slipped in ahead of the arbiter's ruling it
    used to make "everything to the buyer" revert (more than held), and with the ruling
    deadline near, silence -- the listing's default -- decided instead. The ruling now
    gives the buyer at most what is held after the fee."""
    m = Market()
    books = Books(m)
    oid = shipped(m)
    m.dispute(oid)
    fee = share(PRICE, FEE_BPS)  # deposited when the dispute opened
    m.escrow.refund(oid, 1, sender=MERCHANT)
    m.escrow.resolve(oid, PRICE, sender=ARBITER)  # meant as "all of it"
    books.expect(buyer=(-fee, 0), arbiter=(fee, 0))
    assert m.state(oid) == RESOLVED


def test_a_silent_arbiter_earns_nothing_and_the_listings_default_decides() -> None:
    m = Market()
    books = Books(m)
    oid = shipped(m)
    m.dispute(oid)
    m.at(m.get(oid)["deadline"])
    reverts(m.escrow.claim, oid, sender=MERCHANT, match="deadline has not passed")
    m.advance(1)
    reverts(m.escrow.resolve, oid, 0, sender=ARBITER, match="ruling deadline has passed")
    m.escrow.claim(oid, sender=MERCHANT)
    to_buyer = share(PRICE, DEFAULT_REFUND_BPS)
    s = split(PRICE, to_buyer)
    books.expect(buyer=(-PRICE + to_buyer, s.cashback), merchant=(s.merchant, 0),
                 referrer=(0, s.referral))
    assert m.escrow.arbiter_record(ARBITER)["missed"] == 1
    assert m.escrow.arbiter_record(ARBITER)["fees"] == 0
    assert m.escrow.merchant_record(MERCHANT)["disputes_lost"] == 1  # 60% to the buyer


def test_both_parties_settle_on_one_amount_without_an_arbiter_fee() -> None:
    m = Market()
    books = Books(m)
    oid = shipped(m)
    m.dispute(oid)
    m.escrow.settle(oid, 300_000, sender=BUYER)
    assert m.escrow.last_events == [("SettlementOffered", {"order_id": oid, "party": BUYER,
                                                            "to_buyer": 300_000})]
    m.escrow.settle(oid, 200_000, sender=MERCHANT)  # not the same: nothing yet
    assert m.state(oid) == DISPUTED
    m.escrow.settle(oid, 200_000, sender=BUYER)
    s = split(PRICE, 200_000)
    books.expect(buyer=(-PRICE + 200_000, s.cashback), merchant=(s.merchant, 0),
                 referrer=(0, s.referral))
    assert m.state(oid) == RESOLVED
    assert m.escrow.merchant_record(MERCHANT)["settled"] == 1
    assert m.escrow.arbiter_record(ARBITER)["ruled"] == 0


def test_settling_a_delivered_order_needs_no_dispute() -> None:
    m = Market()
    books = Books(m)
    oid = delivered(m)
    m.escrow.settle(oid, 1, sender=MERCHANT)
    m.escrow.settle(oid, 1, sender=BUYER)
    s = split(PRICE, 1)
    books.expect(buyer=(-PRICE + 1, s.cashback), merchant=(s.merchant, 0),
                 referrer=(0, s.referral))


def test_an_offer_made_before_a_partial_refund_no_longer_counts() -> None:
    m = Market()
    oid = shipped(m)
    m.escrow.settle(oid, 500, sender=BUYER)
    m.escrow.refund(oid, 10, sender=MERCHANT)
    m.escrow.settle(oid, 500, sender=MERCHANT)  # would have matched the stale offer
    assert m.state(oid) == SHIPPED


def test_a_full_refund_by_the_merchant_in_a_dispute_ends_it_without_a_fee() -> None:
    m = Market()
    books = Books(m)
    oid = shipped(m)
    m.dispute(oid)
    m.escrow.refund(oid, PRICE, sender=MERCHANT)
    books.expect()
    assert m.state(oid) == REFUNDED


# ---------------------------------------------------------------- paid in tokens


def test_an_order_paid_in_tokens_pays_out_in_tokens_to_the_unit() -> None:
    m = Market()
    lid = m.listing()
    m.give_tokens(BUYER, 2 * TOKEN_PRICE)
    books = Books(m)
    oid = m.order(lid, quantity=2, tokens=True)
    assert m.get(oid)["in_tokens"] is True
    m.ship(oid)
    m.escrow.refund(oid, 5, sender=MERCHANT)
    m.escrow.confirm(oid, True, sender=BUYER)
    paid = 2 * TOKEN_PRICE
    s = split(paid - 5, 0)
    books.expect(buyer=(0, -paid + 5 + s.cashback), merchant=(0, s.merchant),
                 referrer=(0, s.referral))
    m.reviews.post_review(oid, 4, "good", sender=BUYER)
    books.expect(buyer=(0, -paid + 5 + s.cashback + s.bounty), merchant=(0, s.merchant),
                 referrer=(0, s.referral))


def test_tokens_sent_with_bad_order_data_are_refused_and_stay_with_the_sender() -> None:
    m = Market()
    lid = m.listing()
    m.give_tokens(BUYER, TOKEN_PRICE)
    books = Books(m)
    reverts(m.token.transfer_and_call, m.escrow.address, TOKEN_PRICE, b"\x01" * 100,
            sender=BUYER, match="order data is 136 bytes")
    reverts(m.order, lid, tokens=True, pay=TOKEN_PRICE - 1, match="pay exactly")
    reverts(m.token.transfer, m.escrow.address, TOKEN_PRICE, sender=BUYER,
            match="only through transfer_and_call")
    books.expect()


def test_a_listing_not_sold_for_tokens_refuses_them() -> None:
    m = Market()
    lid = m.listing(token_price=0)
    reverts(m.order, lid, tokens=True, pay=10, match="not sold for reward tokens")


# ---------------------------------------------------------------- the review bounty


def test_an_unreviewed_bounty_goes_back_to_the_merchant_after_the_review_window() -> None:
    m = Market()
    books = Books(m)
    oid = shipped(m)
    m.escrow.confirm(oid, True, sender=BUYER)
    s = split(PRICE, 0)
    ended = m.get(oid)["ended_at"]
    m.at(ended + REVIEW_W)
    reverts(m.escrow.release_bounty, oid, sender=STRANGER, match="review window is open")
    m.advance(1)
    m.escrow.release_bounty(oid, sender=STRANGER)
    books.expect(buyer=(-PRICE, s.cashback), merchant=(s.merchant + s.bounty, 0),
                 referrer=(0, s.referral))
    reverts(m.escrow.release_bounty, oid, sender=STRANGER, match="no bounty held")
    # a late review is still a review, and earns nothing
    m.reviews.post_review(oid, 3, "late", sender=BUYER)
    books.expect(buyer=(-PRICE, s.cashback), merchant=(s.merchant + s.bounty, 0),
                 referrer=(0, s.referral))


def test_a_review_at_the_last_millisecond_of_the_window_earns_the_bounty() -> None:
    m = Market()
    oid = shipped(m)
    m.escrow.confirm(oid, True, sender=BUYER)
    bounty = m.get(oid)["bounty"]
    m.at(m.get(oid)["ended_at"] + REVIEW_W)
    before = m.tokens(BUYER)
    m.reviews.post_review(oid, 5, "", sender=BUYER)
    assert m.tokens(BUYER) == before + bounty == before + share(PRICE, BOUNTY_BPS)


# ---------------------------------------------------------------- placement


def test_the_order_copies_every_term_and_the_event_carries_it() -> None:
    m = Market()
    lid = m.listing()
    oid = m.escrow.place_order(lid, m.version(lid), 2, ARBITER, REFERRER, sender=BUYER,
                               value=2 * PRICE)
    (name, placed), = m.escrow.last_events
    o = m.get(oid)
    terms = {"ship_window": SHIP_W, "confirm_window": CONFIRM_W, "return_window": RETURN_W,
             "answer_window": ANSWER_W, "arbiter_fee_bps": FEE_BPS, "ruling_window": RULING_W,
             "default_refund_bps": DEFAULT_REFUND_BPS, "referral_bps": REFERRAL_BPS,
             "cashback_bps": CASHBACK_BPS, "bounty_bps": BOUNTY_BPS}
    parties = {"listing": lid, "quantity": 2, "buyer": BUYER, "merchant": MERCHANT,
               "arbiter": ARBITER, "referrer": REFERRER, "group": 0, "in_tokens": False,
               "paid": 2 * PRICE}
    assert name == "OrderPlaced"
    assert placed == {"order_id": oid, **parties, **terms}
    assert {k: o[k] for k in (*terms, *parties)} == {**terms, **parties}
    assert (o["state"], o["deadline"], o["held"]) == (PAID, m.now + SHIP_W, 2 * PRICE)


def test_a_second_arbiter_of_the_listing_brings_its_own_fee_and_ruling_window() -> None:
    m = Market()
    lid = m.listing(arbiters=(ARBITER, ARBITER_2))
    oid = m.order(lid, arbiter=ARBITER_2)
    assert (m.get(oid)["arbiter_fee_bps"], m.get(oid)["ruling_window"]) == (0, 86_400_000)


@pytest.mark.parametrize(("change", "reason"), [
    (dict(buyer=MERCHANT), "cannot buy its own listing"),
    (dict(referrer=BUYER), "the referrer is not"),
    (dict(referrer=MERCHANT), "the referrer is not"),
    (dict(referrer=ARBITER), "the referrer is not"),
    (dict(arbiter=STRANGER), "does not accept this arbiter"),
    (dict(arbiter=NOBODY), "needs an arbiter"),
    (dict(pay=PRICE - 1), "pay exactly"),
    (dict(pay=PRICE + 1), "pay exactly"),
    (dict(quantity=0, pay=0), "at least one"),
    (dict(quantity=1_001), "not enough stock"),
    (dict(version=99), "the listing changed since you read it"),
])
def test_an_order_the_listing_does_not_allow_is_refused_and_costs_nothing(
        change: dict, reason: str) -> None:
    m = Market()
    lid = m.listing()
    books = Books(m)
    reverts(m.order, lid, **change, match=reason)
    books.expect()
    assert m.catalog.listing(lid)["stock"] == 1_000


def test_the_arbiter_cannot_be_the_buyer_and_a_contract_cannot_be_the_referrer() -> None:
    m = Market()
    lid = m.listing(arbiters=(ARBITER,))
    m.env.fund(ARBITER)
    reverts(m.order, lid, buyer=ARBITER, match="arbiter is a third party")
    for contract in (m.token.address, m.catalog.address, m.escrow.address,
                     m.reviews.address):
        reverts(m.order, lid, referrer=contract, match="the referrer is not")


def test_an_edit_between_reading_and_ordering_makes_the_order_revert() -> None:
    m = Market()
    lid = m.listing()
    read = m.version(lid)
    m.catalog.set_terms(lid, SHIP_W, CONFIRM_W, 0, ANSWER_W, ARBITER, NOBODY, NOBODY, False,
                        DEFAULT_REFUND_BPS, sender=MERCHANT)  # now final sale
    reverts(m.order, lid, version=read, match="changed since you read it")
    m.catalog.set_stock(lid, 7, sender=MERCHANT)  # stock is no term: the version stays
    oid = m.order(lid, version=read + 1)
    assert m.get(oid)["return_window"] == 0


def test_later_edits_of_the_listing_never_touch_a_placed_order() -> None:
    m = Market()
    lid = m.listing()
    oid = m.order(lid)
    before = m.get(oid)
    m.catalog.set_price(lid, 5, 5, sender=MERCHANT)
    m.catalog.set_commissions(lid, 3_000, 0, 0, sender=MERCHANT)
    m.catalog.set_terms(lid, 60_000, 60_000, 0, 60_000, ARBITER_2, NOBODY, NOBODY, True, 0,
                        sender=MERCHANT)
    m.catalog.pause(lid, sender=MERCHANT)
    assert m.get(oid) == before


def test_a_merchant_cannot_be_both_sides_and_a_stranger_cannot_act_for_either() -> None:
    m = Market()
    oid = shipped(m)
    for method, args in (("confirm", (True,)), ("request_return", ()),
                         ("open_dispute", ()), ("settle", (0,))):
        reverts(getattr(m.escrow, method), oid, *args, sender=STRANGER, match="only the")
    for method, args in (("ship", ("x",)), ("decline", ()), ("refund", (1,)),
                         ("accept_return", ()), ("contest", ()), ("confirm_receipt", ())):
        reverts(getattr(m.escrow, method), oid, *args, sender=STRANGER, match="only the")
    reverts(m.escrow.resolve, oid, 0, sender=STRANGER, match="only the order's arbiter")
    reverts(m.escrow.claim, 999, sender=STRANGER)


def test_values_that_would_have_been_lost_are_refused() -> None:
    m = Market()
    lid = m.listing()
    reverts(m.escrow.ship, m.order(lid), "x" * 129, sender=MERCHANT, match="at most 128 bytes")
    assert m.order(lid, quantity=3) > 0
    assert m.get(2)["paid"] == PRICE * 3


def test_a_refund_slipped_in_before_a_dispute_cannot_make_it_fail() -> None:
    """The deposit is the fee on what is held; a merchant's 1-unit refund slipped in just
    before the buyer's dispute lowers it. The buyer sends the fee on what it paid
    (always enough), and the rest comes straight back."""
    m = Market()
    books = Books(m)
    oid = shipped(m)
    offered = share(PRICE, FEE_BPS)
    m.escrow.refund(oid, 10_000, sender=MERCHANT)  # slipped in first
    m.escrow.open_dispute(oid, sender=BUYER, value=offered)
    deposit = m.get(oid)["deposit"]
    assert deposit == share(PRICE - 10_000, FEE_BPS) < offered
    books.expect(buyer=(-PRICE + 10_000 - deposit, 0))
    reverts(m.escrow.open_dispute, m.order(m.listing()), sender=BUYER, value=0,
            match="no dispute in this state")
    shipped_again = shipped(m)
    reverts(m.escrow.open_dispute, shipped_again, sender=BUYER, value=offered - 1,
            match="deposit the arbiter's fee")


def test_a_contest_that_ends_without_a_ruling_gives_the_merchant_its_deposit_back() -> None:
    m = Market()
    books = Books(m)
    oid = delivered(m)
    m.escrow.request_return(oid, sender=BUYER)
    fee = m.dispute(oid, MERCHANT)
    assert m.get(oid)["disputed_by"] == MERCHANT
    m.escrow.settle(oid, 100_000, sender=BUYER)
    m.escrow.settle(oid, 100_000, sender=MERCHANT)
    s = split(PRICE, 100_000)
    books.expect(buyer=(-PRICE + 100_000, s.cashback), merchant=(s.merchant, 0),
                 referrer=(0, s.referral))
    assert fee > 0 and m.get(oid)["deposit"] == 0
