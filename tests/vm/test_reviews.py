"""Reviews (reviews.agc), tied to real purchases through the escrow's on_review.

Read as its specification: only the buyer of an order that has ended reviews it (not
one it cancelled itself before the ship deadline), once, rated 1 to 5 with at most 280
bytes of UTF-8; the merchant replies once, in at most 280 bytes; reputation per
merchant and per listing counts reviews, their ratings and distinct reviewers, beside
the escrow's record of outcomes; a review within the review window earns the bounty.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from commerce_helpers import (
    ARBITER,
    BOUNTY_BPS,
    BUYER,
    BUYER_2,
    BUYER_3,
    COMPLETED,
    DECLINED,
    DELIVERED,
    DISPUTED,
    MERCHANT,
    MERCHANT_2,
    PAID,
    PRICE,
    REFERRER,
    REFUNDED,
    RESOLVED,
    RETURN_REQUESTED,
    RETURN_SHIPPED,
    SHIPPED,
    STRANGER,
    Market,
    reverts,
    share,
)

CANCELLED, JOINED = 6, 12
NOT_ENDED = "the order has not ended"
NEVER_SHIPPED = "only an order that was shipped (or that the merchant failed to ship) is reviewed"


@pytest.fixture
def m() -> Market:
    return Market()


def completed(m: Market, lid: int | None = None, *, buyer: bytes = BUYER,
              merchant: bytes = MERCHANT) -> int:
    oid = m.order(m.listing() if lid is None else lid, buyer=buyer)
    m.escrow.ship(oid, "TRK", sender=merchant)
    m.escrow.confirm(oid, True, sender=buyer)
    assert m.state(oid) == COMPLETED
    return oid


def reviewed(order_id: int, listing: int, rating: int, text: str, *,
             merchant: bytes = MERCHANT, buyer: bytes = BUYER) -> tuple[str, dict]:
    return ("Reviewed", {"order_id": order_id, "listing": listing, "merchant": merchant,
                         "buyer": buyer, "rating": rating, "text": text})


def reputation(reviews: int, rating_sum: int, reviewers: int) -> dict:
    return {"reviews": reviews, "rating_sum": rating_sum, "reviewers": reviewers}


NO_REVIEW = {"listing": 0, "merchant": bytes(20), "buyer": bytes(20), "rating": 0, "text": "",
             "reply": "", "replied": False, "at": 0}


# ---------------------------------------------------------------- how an order ended


def end_completed(m: Market, lid: int) -> int:
    return completed(m, lid)


def end_declined(m: Market, lid: int) -> int:
    oid = m.order(lid)
    m.escrow.decline(oid, sender=MERCHANT)
    return oid


def end_refunded_before_shipping(m: Market, lid: int) -> int:
    oid = m.order(lid)
    m.escrow.refund(oid, PRICE, sender=MERCHANT)
    return oid


def end_refunded_after_a_return(m: Market, lid: int) -> int:
    oid = m.order(lid)
    m.ship(oid)
    m.escrow.confirm(oid, False, sender=BUYER)
    m.escrow.request_return(oid, sender=BUYER)
    m.escrow.accept_return(oid, sender=MERCHANT)
    m.escrow.ship_back(oid, "RET", sender=BUYER)
    m.escrow.confirm_receipt(oid, sender=MERCHANT)
    return oid


def end_resolved_by_the_arbiter(m: Market, lid: int) -> int:
    oid = m.order(lid)
    m.ship(oid)
    m.dispute(oid)
    m.escrow.resolve(oid, 1_000, sender=ARBITER)
    return oid


def end_resolved_by_settling(m: Market, lid: int) -> int:
    oid = m.order(lid)
    m.ship(oid)
    m.escrow.settle(oid, 500, sender=BUYER)
    m.escrow.settle(oid, 500, sender=MERCHANT)
    return oid


def end_cancelled_by_the_buyer_after_the_missed_ship_deadline(m: Market, lid: int) -> int:
    oid = m.order(lid)
    m.at(m.get(oid)["deadline"] + 1)
    m.escrow.cancel(oid, sender=BUYER)
    return oid


def end_not_shipped_claimed_by_anyone(m: Market, lid: int) -> int:
    oid = m.order(lid)
    m.at(m.get(oid)["deadline"] + 1)
    m.escrow.claim(oid, sender=STRANGER)
    return oid


ENDINGS: list[tuple[Callable[[Market, int], int], int]] = [
    (end_completed, COMPLETED),
    (end_refunded_after_a_return, REFUNDED),
    (end_resolved_by_the_arbiter, RESOLVED),
    (end_resolved_by_settling, RESOLVED),
    (end_cancelled_by_the_buyer_after_the_missed_ship_deadline, CANCELLED),
    (end_not_shipped_claimed_by_anyone, CANCELLED),
]


@pytest.mark.parametrize(("end", "state"), ENDINGS, ids=[e.__name__[4:] for e, _ in ENDINGS])
def test_the_buyer_reviews_an_order_however_it_ended(m: Market, end, state: int) -> None:
    lid = m.listing()
    oid = end(m, lid)
    assert m.state(oid) == state
    m.advance(777)
    m.reviews.post_review(oid, 2, "how it went", sender=BUYER)
    assert m.reviews.last_events == [reviewed(oid, lid, 2, "how it went")]
    assert m.reviews.review(oid) == {"listing": lid, "merchant": MERCHANT, "buyer": BUYER,
                                     "rating": 2, "text": "how it went", "reply": "",
                                     "replied": False, "at": m.now}
    assert m.reviews.merchant_reviews(MERCHANT) == reputation(1, 2, 1)
    assert m.reviews.listing_reviews(lid) == reputation(1, 2, 1)
    m.assert_conserved()


@pytest.mark.parametrize(("end", "state"), [(end_declined, DECLINED),
                                             (end_refunded_before_shipping, REFUNDED)],
                         ids=["declined", "refunded_before_shipping"])
def test_an_order_that_ended_before_shipping_costs_nothing_and_earns_no_review(
        m: Market, end, state: int) -> None:
    """A stranger placed orders a merchant declined (or refunded at once) and posted a
    one-star review of each, for nothing: the buyer got every coin back. Reviews are
    earned by a purchase that went out (or that the merchant failed to send)."""
    lid = m.listing()
    oid = end(m, lid)
    assert m.state(oid) == state
    reverts(m.reviews.post_review, oid, 1, "never bought anything", sender=BUYER,
            match=NEVER_SHIPPED)
    assert m.reviews.merchant_reviews(MERCHANT) == reputation(0, 0, 0)
    record = m.escrow.merchant_record(MERCHANT)  # the outcome is still on the record
    assert record["declined" if state == DECLINED else "refunded"] == 1


# ---------------------------------------------------------------- who and when


@pytest.mark.parametrize("who", [STRANGER, MERCHANT, ARBITER, REFERRER, BUYER_2])
def test_only_the_orders_buyer_reviews_it(m: Market, who: bytes) -> None:
    oid = completed(m)
    reverts(m.reviews.post_review, oid, 5, "great", sender=who,
            match="only the order's buyer reviews it")
    assert m.reviews.review(oid) == NO_REVIEW
    assert m.reviews.merchant_reviews(MERCHANT) == reputation(0, 0, 0)


def test_an_order_that_does_not_exist_is_not_reviewed(m: Market) -> None:
    completed(m)
    reverts(m.reviews.post_review, 2, 5, "phantom", sender=BUYER,
            match="only the order's buyer reviews it")
    assert m.reviews.review(2) == NO_REVIEW


def test_the_escrow_answers_only_the_reviews_contract(m: Market) -> None:
    oid = completed(m)
    bounty = m.get(oid)["bounty"]
    for who in (BUYER, STRANGER, MERCHANT):
        reverts(m.escrow.on_review, oid, BUYER, sender=who,
                match="only the reviews contract asks")
    assert m.get(oid)["bounty"] == bounty > 0  # nobody took the bounty that way


def open_order(m: Market, state: int) -> int:
    """An order of a fresh listing, left open in ``state``."""
    if state == JOINED:
        lid = m.listing(group=(PRICE - 1, 3, 2 * 86_400_000))
        oid = m.escrow.start_group(lid, m.version(lid), 1, ARBITER, REFERRER, sender=BUYER,
                                   value=PRICE - 1)
        assert m.state(oid) == JOINED
        return oid
    oid = m.order(m.listing())
    if state == PAID:
        return oid
    m.ship(oid)
    if state == DISPUTED:
        m.dispute(oid)
    elif state != SHIPPED:
        m.escrow.confirm(oid, False, sender=BUYER)
        if state != DELIVERED:
            m.escrow.request_return(oid, sender=BUYER)
            if state == RETURN_SHIPPED:
                m.escrow.accept_return(oid, sender=MERCHANT)
                m.escrow.ship_back(oid, "RET", sender=BUYER)
    assert m.state(oid) == state
    return oid


@pytest.mark.parametrize("state", [PAID, SHIPPED, DELIVERED, RETURN_REQUESTED, RETURN_SHIPPED,
                                   DISPUTED, JOINED])
def test_an_order_still_open_is_not_reviewed(m: Market, state: int) -> None:
    oid = open_order(m, state)
    reverts(m.reviews.post_review, oid, 1, "too early", sender=BUYER, match=NOT_ENDED)
    assert m.reviews.review(oid) == NO_REVIEW


@pytest.mark.parametrize("when", ["at once", "at the ship deadline"])
def test_an_order_the_buyer_cancelled_before_the_ship_deadline_is_not_reviewed(
        m: Market, when: str) -> None:
    oid = m.order(m.listing())
    if when == "at the ship deadline":
        m.at(m.get(oid)["deadline"])  # still in time: the merchant missed nothing
    m.escrow.cancel(oid, sender=BUYER)
    assert (m.state(oid), m.get(oid)["not_shipped"]) == (CANCELLED, False)
    reverts(m.reviews.post_review, oid, 1, "changed my mind", sender=BUYER,
            match=NEVER_SHIPPED)
    assert m.reviews.merchant_reviews(MERCHANT) == reputation(0, 0, 0)


def test_an_order_whose_buyer_left_its_group_is_not_reviewed(m: Market) -> None:
    oid = open_order(m, JOINED)
    m.escrow.leave_group(oid, sender=BUYER)
    assert m.state(oid) == CANCELLED
    reverts(m.reviews.post_review, oid, 1, "left", sender=BUYER, match=NEVER_SHIPPED)


def test_an_order_is_reviewed_once_and_the_review_stands(m: Market) -> None:
    oid = completed(m)
    m.reviews.post_review(oid, 4, "good", sender=BUYER)
    first = m.reviews.review(oid)
    for rating, text in ((4, "good"), (1, "actually bad"), (5, "")):
        reverts(m.reviews.post_review, oid, rating, text, sender=BUYER,
                match="the order is already reviewed")
    assert m.reviews.review(oid) == first
    assert m.reviews.merchant_reviews(MERCHANT) == reputation(1, 4, 1)


# ---------------------------------------------------------------- what a review says


@pytest.mark.parametrize("rating", [0, 6, 10, 2**256 - 1])
def test_a_rating_outside_1_to_5_is_refused(m: Market, rating: int) -> None:
    oid = completed(m)
    reverts(m.reviews.post_review, oid, rating, "x", sender=BUYER, match="a rating is 1 to 5")
    assert m.reviews.review(oid) == NO_REVIEW


def test_every_rating_from_1_to_5_is_taken(m: Market) -> None:
    lid = m.listing()
    for rating in range(1, 6):
        oid = completed(m, lid)
        m.reviews.post_review(oid, rating, "", sender=BUYER)
        assert m.reviews.review(oid)["rating"] == rating
    assert m.reviews.listing_reviews(lid) == reputation(5, 15, 1)


TEXTS = [
    ("", True),
    ("x" * 280, True),
    ("x" * 281, False),
    ("é" * 140, True),             # 140 characters, 280 bytes
    ("é" * 140 + "x", False),      # 141 characters, 281 bytes
    ("€" * 94, False),             # 94 characters, 282 bytes
    ("😀" * 70, True),             # 70 characters, 280 bytes
    ("😀" * 70 + "x", False),
]


@pytest.mark.parametrize(("text", "ok"), TEXTS)
def test_a_review_is_at_most_280_bytes_of_utf8(m: Market, text: str, ok: bool) -> None:
    oid = completed(m)
    if ok:
        m.reviews.post_review(oid, 3, text, sender=BUYER)
        assert m.reviews.review(oid)["text"] == text
    else:
        reverts(m.reviews.post_review, oid, 3, text, sender=BUYER,
                match="a review is at most 280 bytes")
        assert m.reviews.review(oid) == NO_REVIEW


# ---------------------------------------------------------------- the merchant's reply


def test_the_merchant_replies_once(m: Market) -> None:
    lid = m.listing()
    oid = completed(m, lid)
    m.reviews.post_review(oid, 2, "slow", sender=BUYER)
    m.advance(1_000)
    m.reviews.reply(oid, "sorry, the post was on strike", sender=MERCHANT)
    assert m.reviews.last_events == [("Replied", {
        "order_id": oid, "listing": lid, "merchant": MERCHANT,
        "text": "sorry, the post was on strike"})]
    review = m.reviews.review(oid)
    assert (review["reply"], review["replied"], review["text"], review["rating"]) == (
        "sorry, the post was on strike", True, "slow", 2)
    reverts(m.reviews.reply, oid, "edited", sender=MERCHANT,
            match="the merchant has already replied")
    assert m.reviews.review(oid) == review
    assert m.reviews.merchant_reviews(MERCHANT) == reputation(1, 2, 1)  # a reply is no review


def test_an_empty_reply_is_still_the_one_reply(m: Market) -> None:
    oid = completed(m)
    m.reviews.post_review(oid, 5, "great", sender=BUYER)
    m.reviews.reply(oid, "", sender=MERCHANT)
    assert (m.reviews.review(oid)["reply"], m.reviews.review(oid)["replied"]) == ("", True)
    reverts(m.reviews.reply, oid, "thanks!", sender=MERCHANT,
            match="the merchant has already replied")


@pytest.mark.parametrize("who", [BUYER, STRANGER, ARBITER, MERCHANT_2])
def test_only_the_orders_merchant_replies(m: Market, who: bytes) -> None:
    oid = completed(m)
    m.reviews.post_review(oid, 1, "broken", sender=BUYER)
    reverts(m.reviews.reply, oid, "it was not", sender=who, match="only the merchant replies")
    assert (m.reviews.review(oid)["reply"], m.reviews.review(oid)["replied"]) == ("", False)


def test_there_is_no_reply_without_a_review(m: Market) -> None:
    oid = completed(m)
    reverts(m.reviews.reply, oid, "thanks in advance", sender=MERCHANT,
            match="there is no review to reply to")
    reverts(m.reviews.reply, 99, "to nothing", sender=MERCHANT,
            match="there is no review to reply to")
    m.reviews.post_review(oid, 5, "", sender=BUYER)
    m.reviews.reply(oid, "thanks", sender=MERCHANT)  # now there is


@pytest.mark.parametrize(("text", "ok"), TEXTS)
def test_a_reply_is_at_most_280_bytes_of_utf8(m: Market, text: str, ok: bool) -> None:
    oid = completed(m)
    m.reviews.post_review(oid, 3, "ok", sender=BUYER)
    if ok:
        m.reviews.reply(oid, text, sender=MERCHANT)
        assert m.reviews.review(oid)["reply"] == text
    else:
        reverts(m.reviews.reply, oid, text, sender=MERCHANT, match="a reply is at most 280 bytes")
        assert m.reviews.review(oid)["replied"] is False


# ---------------------------------------------------------------- reputation


def stats(**counts: int) -> dict:
    zero = dict.fromkeys(("completed", "refunded", "declined", "not_shipped", "settled",
                          "disputes", "disputes_lost", "volume"), 0)
    return {**zero, **counts}


def test_reputation_per_merchant_and_per_listing_counts_distinct_reviewers_once(
        m: Market) -> None:
    mug, cup = m.listing(), m.listing()
    vase = m.listing(merchant=MERCHANT_2)
    o1 = completed(m, mug)
    o2 = completed(m, mug)
    o3 = completed(m, cup)
    o4 = completed(m, mug, buyer=BUYER_2)
    m.escrow.decline(m.order(mug, buyer=BUYER_2), sender=MERCHANT)  # counted, not reviewed
    o5 = completed(m, vase, merchant=MERCHANT_2)
    o6 = m.order(mug, buyer=BUYER_3)
    m.at(m.get(o6)["deadline"] + 1)
    m.escrow.claim(o6, sender=STRANGER)  # never shipped, and never reviewed
    records = {who: m.escrow.merchant_record(who) for who in (MERCHANT, MERCHANT_2)}
    listings = {lid: m.escrow.listing_record(lid) for lid in (mug, cup, vase)}

    for oid, rating, buyer in ((o1, 5, BUYER), (o2, 3, BUYER), (o3, 4, BUYER),
                               (o4, 1, BUYER_2), (o5, 2, BUYER)):
        m.reviews.post_review(oid, rating, "", sender=buyer)

    # BUYER reviewed MERCHANT three times (twice for the mug): one reviewer, three reviews
    assert m.reviews.merchant_reviews(MERCHANT) == reputation(4, 5 + 3 + 4 + 1, 2)
    assert m.reviews.listing_reviews(mug) == reputation(3, 5 + 3 + 1, 2)
    assert m.reviews.listing_reviews(cup) == reputation(1, 4, 1)
    # ... and counts again, once, as a reviewer of another merchant
    assert m.reviews.merchant_reviews(MERCHANT_2) == reputation(1, 2, 1)
    assert m.reviews.listing_reviews(vase) == reputation(1, 2, 1)
    assert m.reviews.merchant_reviews(STRANGER) == reputation(0, 0, 0)

    # beside them, the escrow's record of every outcome, reviewed or not
    assert m.escrow.merchant_record(MERCHANT) == stats(completed=4, declined=1, not_shipped=1,
                                                       volume=4 * PRICE)
    assert m.escrow.listing_record(mug) == stats(completed=3, declined=1, not_shipped=1,
                                                 volume=3 * PRICE)
    assert m.escrow.listing_record(cup) == stats(completed=1, volume=PRICE)
    assert m.escrow.merchant_record(MERCHANT_2) == stats(completed=1, volume=PRICE)
    assert m.escrow.listing_record(vase) == stats(completed=1, volume=PRICE)
    # reviewing changes none of them
    assert {who: m.escrow.merchant_record(who) for who in (MERCHANT, MERCHANT_2)} == records
    assert {lid: m.escrow.listing_record(lid) for lid in (mug, cup, vase)} == listings


def test_outcomes_a_buyer_cancelled_in_time_do_not_count_against_the_merchant(
        m: Market) -> None:
    lid = m.listing()
    m.escrow.cancel(m.order(lid), sender=BUYER)
    end_refunded_before_shipping(m, lid)
    end_resolved_by_settling(m, lid)
    assert m.escrow.merchant_record(MERCHANT) == stats(refunded=1, settled=1,
                                                       volume=PRICE - 500)
    assert m.escrow.listing_record(lid) == m.escrow.merchant_record(MERCHANT)


# ---------------------------------------------------------------- the bounty


def test_a_review_within_the_window_earns_the_bounty(m: Market) -> None:
    oid = completed(m)
    bounty = share(PRICE, BOUNTY_BPS)
    assert m.get(oid)["bounty"] == bounty > 0
    m.advance(86_400_000)
    tokens, coin = m.tokens(BUYER), m.coin(BUYER)
    m.reviews.post_review(oid, 5, "worth it", sender=BUYER)
    assert (m.tokens(BUYER), m.coin(BUYER)) == (tokens + bounty, coin)
    assert m.get(oid)["bounty"] == 0
    m.assert_conserved()
