"""Reviews tied to real purchases (property 7: reviews are earned).

Only the buyer of an order that ended after it was shipped, or that its merchant failed
to ship, reviews it -- the escrow says who that is and whether that is so (a declined
or cancelled order cost its buyer nothing, so it earns no review; a merchant can never
be the buyer of its own listing) -- once, with a rating from 1 to 5 and a text of at
most 280 bytes of UTF-8. The merchant may reply once, in at most 280 bytes. Neither can
be edited or removed.

    (no review) --post_review  the order's buyer, once it has ended --> REVIEWED
    REVIEWED    --reply        the order's merchant, once ----------> REPLIED

A review within the escrow's review window earns the buyer the bounty the merchant set
aside for it; the escrow pays it, out of the order's proceeds (property 4).

Reputation, per merchant and per listing: the number of reviews, the sum of their
ratings and the number of distinct reviewers here; the outcomes of every order
(completed, refunded, declined, not shipped, settled, disputed, volume) in the escrow,
with each arbiter's record beside them.
"""

MAX_TEXT: constant(uint) = 280   # bytes of UTF-8


class ReviewTicket(Record):
    merchant: Address
    listing: uint


class Escrow(Interface):
    def on_review(order_id: uint, reviewer: Address) -> ReviewTicket: ...


class Review(Record):
    listing: uint
    merchant: Address
    buyer: Address
    rating: uint         # 1..5; 0: no review yet
    text: str
    reply: str
    replied: bool
    at: uint             # block time of the review


class Reputation(Record):
    reviews: uint
    rating_sum: uint
    reviewers: uint      # distinct buyers who reviewed


class Reviewed(Event):
    order_id: uint
    listing: uint
    merchant: Address
    buyer: Address
    rating: uint
    text: str


class Replied(Event):
    order_id: uint
    listing: uint
    merchant: Address
    text: str


reviews: Map[uint, Review]
merchant_reputation: Map[Address, Reputation]
listing_reputation: Map[uint, Reputation]
reviewed_merchant: Map[Address, Map[Address, bool]]   # merchant -> buyer -> reviewed once
reviewed_listing: Map[uint, Map[Address, bool]]
escrow: Address


def __init__(escrow: Address):
    self.escrow = escrow


@public
def post_review(order_id: uint, rating: uint, text: str):
    assert self.reviews[order_id].rating == 0, "the order is already reviewed"
    assert rating >= 1 and rating <= 5, "a rating is 1 to 5"
    assert len(text.encode()) <= MAX_TEXT, "a review is at most 280 bytes"
    # Reverts unless msg.sender bought this order, it was shipped (or the merchant failed
    # to) and it has ended; pays the bounty.
    ticket: ReviewTicket = Escrow(self.escrow).on_review(order_id, msg.sender)
    self.reviews[order_id] = Review(ticket.listing, ticket.merchant, msg.sender, rating, text,
                                    "", False, block.time)
    self.merchant_reputation[ticket.merchant].reviews += 1
    self.merchant_reputation[ticket.merchant].rating_sum += rating
    if not self.reviewed_merchant[ticket.merchant][msg.sender]:
        self.reviewed_merchant[ticket.merchant][msg.sender] = True
        self.merchant_reputation[ticket.merchant].reviewers += 1
    self.listing_reputation[ticket.listing].reviews += 1
    self.listing_reputation[ticket.listing].rating_sum += rating
    if not self.reviewed_listing[ticket.listing][msg.sender]:
        self.reviewed_listing[ticket.listing][msg.sender] = True
        self.listing_reputation[ticket.listing].reviewers += 1
    emit(Reviewed(order_id, ticket.listing, ticket.merchant, msg.sender, rating, text))


@public
def reply(order_id: uint, text: str):
    assert self.reviews[order_id].rating > 0, "there is no review to reply to"
    assert self.reviews[order_id].merchant == msg.sender, "only the merchant replies"
    assert not self.reviews[order_id].replied, "the merchant has already replied"
    assert len(text.encode()) <= MAX_TEXT, "a reply is at most 280 bytes"
    self.reviews[order_id].reply = text
    self.reviews[order_id].replied = True
    emit(Replied(order_id, self.reviews[order_id].listing, msg.sender, text))


@view
def review(order_id: uint) -> Review:
    return self.reviews[order_id]


@view
def merchant_reviews(merchant: Address) -> Reputation:
    return self.merchant_reputation[merchant]


@view
def listing_reviews(listing_id: uint) -> Reputation:
    return self.listing_reputation[listing_id]
