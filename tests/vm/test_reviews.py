"""Reviews (vm/contracts/reviews.agc) tied to real purchases in the escrow."""

from __future__ import annotations

from pathlib import Path

import pytest

from vm.executor import contract_address
from vm.testing import Env, Reverted

CONTRACTS = Path(__file__).resolve().parents[2] / "vm" / "contracts"
DEPLOYER = b"\xd0" * 20
BUYER, MERCHANT, STRANGER, ARBITER = b"\x01" * 20, b"\x02" * 20, b"\x03" * 20, b"\x04" * 20
NOBODY = bytes(20)
HOUR = 3_600_000
REWARD = 50


@pytest.fixture
def shop():
    """Token, escrow and reviews deployed together; the token mints for the other two."""
    env = Env()
    escrow_at = contract_address(DEPLOYER, 2)
    reviews_at = contract_address(DEPLOYER, 3)
    token = env.load_contract(CONTRACTS / "token.agc", escrow_at, reviews_at, DEPLOYER, 0,
                              sender=DEPLOYER)
    escrow = env.load_contract(CONTRACTS / "escrow.agc", token.address, 30 * 24 * HOUR, 0, 0,
                               500, sender=DEPLOYER)
    reviews = env.load_contract(CONTRACTS / "reviews.agc", escrow.address, token.address,
                                REWARD, sender=DEPLOYER)
    assert (escrow.address, reviews.address) == (escrow_at, reviews_at)
    return env, token, escrow, reviews


def order(escrow, arbiter: bytes = NOBODY) -> int:
    return escrow.place_order(MERCHANT, arbiter, 0, NOBODY, HOUR, HOUR, HOUR, HOUR,
                              sender=BUYER, value=1_000)


def completed(escrow) -> int:
    oid = order(escrow)
    escrow.ship(oid, sender=MERCHANT)
    escrow.confirm(oid, True, sender=BUYER)
    return oid


def test_the_buyer_of_a_completed_order_reviews_once_and_is_rewarded_once(shop) -> None:
    _, token, escrow, reviews = shop
    oid = completed(escrow)
    reviews.post_review(oid, 4, "fast and friendly", sender=BUYER)
    assert reviews.last_events == [("Reviewed", {"order_id": oid, "merchant": MERCHANT,
                                                 "buyer": BUYER, "rating": 4,
                                                 "text": "fast and friendly"})]
    assert (reviews.review_rating(oid), reviews.review_text(oid)) == (4, "fast and friendly")
    assert token.balance_of(BUYER) == REWARD
    with pytest.raises(Reverted, match="already reviewed"):
        reviews.post_review(oid, 5, "again", sender=BUYER)
    assert token.balance_of(BUYER) == REWARD
    assert [reviews.reputation(MERCHANT, k) for k in range(5)] == [1, 4, 1, 0, 0]


def test_who_may_review_and_when(shop) -> None:
    env, token, escrow, reviews = shop
    open_order = order(escrow)
    with pytest.raises(Reverted, match="has not ended"):
        reviews.post_review(open_order, 3, "too early", sender=BUYER)
    done = completed(escrow)
    for who in (MERCHANT, STRANGER):
        with pytest.raises(Reverted, match="only the buyer reviews"):
            reviews.post_review(done, 5, "fake", sender=who)
    for rating in (0, 6):
        with pytest.raises(Reverted, match="1 to 5"):
            reviews.post_review(done, rating, "x", sender=BUYER)
    with pytest.raises(Reverted, match="too long"):
        reviews.post_review(done, 3, "x" * 281, sender=BUYER)
    # A refunded order may be reviewed, but earns no reward.
    refunded = order(escrow)
    escrow.decline(refunded, sender=MERCHANT)  # declined: not an ended purchase
    with pytest.raises(Reverted, match="has not ended"):
        reviews.post_review(refunded, 2, "declined", sender=BUYER)
    returned = order(escrow)
    escrow.refund(returned, 1_000, sender=MERCHANT)
    reviews.post_review(returned, 2, "refunded", sender=BUYER)
    assert token.balance_of(BUYER) == 0


def test_the_merchant_replies_once(shop) -> None:
    _, _, escrow, reviews = shop
    oid = completed(escrow)
    with pytest.raises(Reverted, match="no review to reply to"):
        reviews.reply(oid, "thanks", sender=MERCHANT)
    reviews.post_review(oid, 5, "great", sender=BUYER)
    with pytest.raises(Reverted, match="only the merchant replies"):
        reviews.reply(oid, "thanks", sender=BUYER)
    reviews.reply(oid, "thank you!", sender=MERCHANT)
    assert reviews.review_reply(oid) == "thank you!"
    with pytest.raises(Reverted, match="already replied"):
        reviews.reply(oid, "edited", sender=MERCHANT)
    assert reviews.review_reply(oid) == "thank you!"
