"""Reviews tied to real purchases.

Only the buyer of an order that has ended (completed, refunded or resolved) may review
it, once, with a rating from 1 to 5 and a short text; the merchant may reply once.
Neither can be edited or removed. Each merchant's reputation is kept on chain: the
number of reviews and the sum of their ratings here, the completed, refunded and
disputed orders in the escrow. A review of a completed order earns the reviewer reward
tokens, once per order.
"""

MAX_TEXT: constant(uint) = 280


class Escrow(Interface):
    @view
    def order_buyer(order_id: uint) -> Address: ...
    @view
    def order_merchant(order_id: uint) -> Address: ...
    @view
    def order_ended(order_id: uint) -> bool: ...
    @view
    def order_completed(order_id: uint) -> bool: ...
    @view
    def merchant_counts(merchant: Address, kind: uint) -> uint: ...


class Token(Interface):
    def mint(receiver: Address, amount: uint): ...


class Review(Record):
    rating: uint         # 1..5; 0 means no review yet
    text: str
    reply: str
    replied: bool


class Reviewed(Event):
    order_id: uint
    merchant: Address
    buyer: Address
    rating: uint
    text: str


class Replied(Event):
    order_id: uint
    merchant: Address
    text: str


reviews: Map[uint, Review]
review_count: Map[Address, uint]
rating_sum: Map[Address, uint]
rewarded: Map[uint, bool]
escrow: Address
token: Address
reward: uint


def __init__(escrow: Address, token: Address, reward: uint):
    self.escrow = escrow
    self.token = token
    self.reward = reward


@public
def post_review(order_id: uint, rating: uint, text: str):
    assert Escrow(self.escrow).order_buyer(order_id) == msg.sender, "only the buyer reviews"
    assert Escrow(self.escrow).order_ended(order_id), "the order has not ended"
    assert self.reviews[order_id].rating == 0, "the order is already reviewed"
    assert rating >= 1 and rating <= 5, "a rating is 1 to 5"
    assert len(text.encode()) <= MAX_TEXT, "the text is too long"
    merchant: Address = Escrow(self.escrow).order_merchant(order_id)
    self.reviews[order_id].rating = rating
    self.reviews[order_id].text = text
    self.review_count[merchant] += 1
    self.rating_sum[merchant] += rating
    emit(Reviewed(order_id, merchant, msg.sender, rating, text))
    # Rewarded once per order, and only for a purchase that went through.
    if self.reward > 0 and not self.rewarded[order_id] \
            and Escrow(self.escrow).order_completed(order_id):
        self.rewarded[order_id] = True
        Token(self.token).mint(msg.sender, self.reward)


@public
def reply(order_id: uint, text: str):
    assert Escrow(self.escrow).order_merchant(order_id) == msg.sender, \
        "only the merchant replies"
    assert self.reviews[order_id].rating > 0, "there is no review to reply to"
    assert not self.reviews[order_id].replied, "the merchant has already replied"
    assert len(text.encode()) <= MAX_TEXT, "the text is too long"
    self.reviews[order_id].reply = text
    self.reviews[order_id].replied = True
    emit(Replied(order_id, msg.sender, text))


@view
def review_rating(order_id: uint) -> uint:
    return self.reviews[order_id].rating


@view
def review_text(order_id: uint) -> str:
    return self.reviews[order_id].text


@view
def review_reply(order_id: uint) -> str:
    return self.reviews[order_id].reply


@view
def reputation(merchant: Address, kind: uint) -> uint:
    # kind 0: reviews, 1: sum of ratings, 2: completed, 3: refunded, 4: disputed orders
    if kind == 0:
        return self.review_count[merchant]
    if kind == 1:
        return self.rating_sum[merchant]
    return Escrow(self.escrow).merchant_counts(merchant, kind - 2)
