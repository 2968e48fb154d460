"""Escrow orders: the buyer's payment is locked here from the order until the goods are
delivered and the return window has passed, or until the order ends otherwise.

The seller can always get paid and the buyer can always get out: every state below has
a way forward that its waiting party can take alone once a deadline passes, so no order
stays stuck and no funds stay locked.

    PAID --ship--> SHIPPED --confirm--> DELIVERED --(window passes)--> COMPLETED
    PAID --decline--> DECLINED            PAID --cancel--> CANCELLED
    SHIPPED --(confirm timeout) claim--> COMPLETED
    DELIVERED --request_return--> RETURN_REQUESTED --accept_return--> REFUNDED
    SHIPPED / DELIVERED / RETURN_REQUESTED --open_dispute--> DISPUTED --resolve--> RESOLVED
    DISPUTED --(arbiter silent) settle_default--> RESOLVED (the buyer is refunded)
    any open state --refund (whole)--> REFUNDED; DISPUTED --settle (both agree)--> RESOLVED

Times are block times in milliseconds; each order picks its windows within the limits
fixed at deploy. Payment is native coin (place_order) or reward tokens
(token.transfer_and_call to this contract, with the order in the call's data).
"""

# Order states
PAID: constant(uint) = 1
SHIPPED: constant(uint) = 2
DELIVERED: constant(uint) = 3
COMPLETED: constant(uint) = 4
DECLINED: constant(uint) = 5
CANCELLED: constant(uint) = 6
RETURN_REQUESTED: constant(uint) = 7
REFUNDED: constant(uint) = 8
DISPUTED: constant(uint) = 9
RESOLVED: constant(uint) = 10

BPS: constant(uint) = 10000
MIN_WINDOW: constant(uint) = 60000  # one minute: no window so short it cannot be used
NOBODY: constant(Address) = "agora1qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqry2cu5"


class Order(Record):
    buyer: Address
    merchant: Address
    arbiter: Address
    arbiter_fee_bps: uint
    referrer: Address
    amount: uint         # what is still held for this order
    paid: uint           # what the buyer paid
    in_tokens: bool
    state: uint
    ship_window: uint
    confirm_window: uint
    return_window: uint
    dispute_window: uint
    deadline: uint       # the one deadline of the current state (see each transition)
    buyer_offer: uint    # a settlement each party agreed to (refund to the buyer) + 1
    merchant_offer: uint


orders: Map[uint, Order]
order_count: uint
token: Address
max_window: uint
referral_bps: uint
buyer_bps: uint
max_arbiter_fee_bps: uint
locked_coin: uint
locked_tokens: uint
completed_orders: Map[Address, uint]   # per merchant, for reputation
refunded_orders: Map[Address, uint]
disputed_orders: Map[Address, uint]


class OrderPlaced(Event):
    order_id: uint
    buyer: Address
    merchant: Address
    amount: uint
    in_tokens: bool


class OrderChanged(Event):
    order_id: uint
    state: uint
    actor: Address


class Payout(Event):
    order_id: uint
    receiver: Address
    amount: uint


class Token(Interface):
    def transfer(receiver: Address, amount: uint) -> bool: ...
    def mint(receiver: Address, amount: uint): ...


def __init__(token: Address, max_window: uint, referral_bps: uint, buyer_bps: uint,
             max_arbiter_fee_bps: uint):
    assert max_window >= MIN_WINDOW, "max_window below one minute"
    assert referral_bps <= BPS and buyer_bps <= BPS and max_arbiter_fee_bps <= BPS, "bps over 100%"
    self.token = token
    self.max_window = max_window
    self.referral_bps = referral_bps
    self.buyer_bps = buyer_bps
    self.max_arbiter_fee_bps = max_arbiter_fee_bps


# ---------------------------------------------------------------- placing an order

@public
@payable
def place_order(merchant: Address, arbiter: Address, arbiter_fee_bps: uint,
                referrer: Address, ship_window: uint, confirm_window: uint,
                return_window: uint, dispute_window: uint) -> uint:
    assert msg.value > 0, "an order pays something"
    return self.open(msg.sender, msg.value, False, merchant, arbiter, arbiter_fee_bps,
                     referrer, ship_window, confirm_window, return_window, dispute_window)


@public
def on_token_received(sender: Address, amount: uint, data: bytes) -> bool:
    # Paying in reward tokens: token.transfer_and_call(escrow, amount, data) with data =
    # merchant, arbiter, referrer (20 bytes each), then the arbiter fee and the four
    # windows (32 bytes each).
    assert msg.sender == self.token, "only the reward token pays in tokens"
    assert amount > 0, "an order pays something"
    assert len(data) == 220, "order data is 220 bytes"
    self.open(sender, amount, True, to_address(slice(data, 0, 20)),
              to_address(slice(data, 20, 20)), to_uint(slice(data, 60, 32)),
              to_address(slice(data, 40, 20)), to_uint(slice(data, 92, 32)),
              to_uint(slice(data, 124, 32)), to_uint(slice(data, 156, 32)),
              to_uint(slice(data, 188, 32)))
    return True


def open(buyer: Address, amount: uint, in_tokens: bool, merchant: Address, arbiter: Address,
         arbiter_fee_bps: uint, referrer: Address, ship_window: uint, confirm_window: uint,
         return_window: uint, dispute_window: uint) -> uint:
    assert merchant != NOBODY, "an order names its merchant"
    assert arbiter != buyer and arbiter != merchant, "the arbiter is a third party"
    assert arbiter_fee_bps <= self.max_arbiter_fee_bps, "arbiter fee over the limit"
    self.check_window(ship_window)
    self.check_window(confirm_window)
    self.check_window(return_window)
    self.check_window(dispute_window)
    self.order_count += 1
    order_id: uint = self.order_count
    self.orders[order_id] = Order(buyer, merchant, arbiter, arbiter_fee_bps, referrer, amount,
                                  amount, in_tokens, PAID, ship_window, confirm_window,
                                  return_window, dispute_window, block.time + ship_window,
                                  0, 0)
    if in_tokens:
        self.locked_tokens += amount
    else:
        self.locked_coin += amount
    emit(OrderPlaced(order_id, buyer, merchant, amount, in_tokens))
    return order_id


def check_window(window: uint):
    assert window >= MIN_WINDOW and window <= self.max_window, "window out of limits"


# ---------------------------------------------------------------- before shipping

@public
def decline(order_id: uint):
    # The merchant turns the order down: the buyer gets everything back.
    self.only_merchant(order_id)
    self.in_state(order_id, PAID)
    self.pay(order_id, self.orders[order_id].buyer, self.orders[order_id].amount)
    self.move(order_id, DECLINED)


@public
def cancel(order_id: uint):
    # Before shipping the buyer may always walk away with a full refund (also after the
    # ship deadline, when the merchant has missed it).
    self.only_buyer(order_id)
    self.in_state(order_id, PAID)
    self.pay(order_id, self.orders[order_id].buyer, self.orders[order_id].amount)
    self.move(order_id, CANCELLED)


@public
def ship(order_id: uint):
    self.only_merchant(order_id)
    self.in_state(order_id, PAID)
    assert block.time <= self.orders[order_id].deadline, "the ship deadline has passed"
    self.orders[order_id].deadline = block.time + self.orders[order_id].confirm_window
    self.move(order_id, SHIPPED)


# ---------------------------------------------------------------- delivery

@public
def confirm(order_id: uint, waive_return: bool):
    # Delivered. The money goes to the merchant when the return window passes, or now
    # if the buyer waives it.
    self.only_buyer(order_id)
    self.in_state(order_id, SHIPPED)
    self.orders[order_id].deadline = block.time + self.orders[order_id].return_window
    self.move(order_id, DELIVERED)
    if waive_return:
        self.complete(order_id)


@public
def release(order_id: uint):
    # Anyone may release a delivered order once its return window has passed.
    self.in_state(order_id, DELIVERED)
    assert block.time > self.orders[order_id].deadline, "the return window is still open"
    self.complete(order_id)


@public
def claim(order_id: uint):
    # A buyer who never confirms cannot hold the merchant's money: after the confirm
    # timeout the merchant claims it.
    self.only_merchant(order_id)
    self.in_state(order_id, SHIPPED)
    assert block.time > self.orders[order_id].deadline, "the confirm timeout has not passed"
    self.complete(order_id)


# ---------------------------------------------------------------- returns and refunds

@public
def request_return(order_id: uint):
    # Within the return window, no reason needed.
    self.only_buyer(order_id)
    self.in_state(order_id, DELIVERED)
    assert block.time <= self.orders[order_id].deadline, "the return window has closed"
    self.orders[order_id].deadline = block.time + self.orders[order_id].dispute_window
    self.move(order_id, RETURN_REQUESTED)


@public
def accept_return(order_id: uint):
    # The merchant confirms the goods came back: the buyer is refunded.
    self.only_merchant(order_id)
    self.in_state(order_id, RETURN_REQUESTED)
    self.refund_all(order_id)


@public
def refund(order_id: uint, amount: uint):
    # The merchant may refund in full or in part at any time before the order ends.
    self.only_merchant(order_id)
    assert self.is_open(order_id), "the order has ended"
    assert amount > 0 and amount <= self.orders[order_id].amount, "refund out of range"
    if amount == self.orders[order_id].amount:
        self.refund_all(order_id)
    else:
        self.pay(order_id, self.orders[order_id].buyer, amount)


# ---------------------------------------------------------------- disputes

@public
def open_dispute(order_id: uint):
    # Either party, before the dispute deadline of the state the order is in. A
    # merchant who ignores a return request past its deadline lets the buyer dispute.
    state: uint = self.orders[order_id].state
    is_buyer: bool = msg.sender == self.orders[order_id].buyer
    assert is_buyer or msg.sender == self.orders[order_id].merchant, "only buyer or merchant"
    assert self.orders[order_id].arbiter != NOBODY, "the order has no arbiter"
    if state == RETURN_REQUESTED and is_buyer:
        assert block.time > self.orders[order_id].deadline, "the merchant may still accept"
    else:
        assert state == SHIPPED or state == DELIVERED or state == RETURN_REQUESTED, \
            "no dispute in this state"
        assert block.time <= self.orders[order_id].deadline, "the dispute deadline has passed"
    self.orders[order_id].deadline = block.time + self.orders[order_id].dispute_window
    self.disputed_orders[self.orders[order_id].merchant] += 1
    self.move(order_id, DISPUTED)


@public
def resolve(order_id: uint, to_buyer: uint):
    # The arbiter's ruling: its fee first, then the rest split by amount.
    assert msg.sender == self.orders[order_id].arbiter, "only the arbiter resolves"
    self.in_state(order_id, DISPUTED)
    held: uint = self.orders[order_id].amount
    fee: uint = held * self.orders[order_id].arbiter_fee_bps // BPS
    assert to_buyer <= held - fee, "more than the order holds after the fee"
    self.pay(order_id, msg.sender, fee)
    self.pay(order_id, self.orders[order_id].buyer, to_buyer)
    self.pay(order_id, self.orders[order_id].merchant, held - fee - to_buyer)
    self.move(order_id, RESOLVED)


@public
def settle(order_id: uint, to_buyer: uint):
    # Buyer and merchant can end a dispute by agreeing on a partial refund: each
    # states the same amount.
    self.in_state(order_id, DISPUTED)
    assert to_buyer <= self.orders[order_id].amount, "more than the order holds"
    is_buyer: bool = msg.sender == self.orders[order_id].buyer
    is_merchant: bool = msg.sender == self.orders[order_id].merchant
    assert is_buyer or is_merchant, "only buyer or merchant"
    if is_buyer:  # (one address may be both: then it agrees with itself)
        self.orders[order_id].buyer_offer = to_buyer + 1
    if is_merchant:
        self.orders[order_id].merchant_offer = to_buyer + 1
    if self.orders[order_id].buyer_offer == self.orders[order_id].merchant_offer:
        held: uint = self.orders[order_id].amount
        self.pay(order_id, self.orders[order_id].buyer, to_buyer)
        self.pay(order_id, self.orders[order_id].merchant, held - to_buyer)
        self.move(order_id, RESOLVED)


@public
def settle_default(order_id: uint):
    # Nobody waits forever: an arbiter silent past the ruling timeout, or a return
    # request with no arbiter left unanswered, ends with the default outcome: the
    # buyer is refunded. Either party may trigger it.
    state: uint = self.orders[order_id].state
    assert state == DISPUTED or (state == RETURN_REQUESTED
                                 and self.orders[order_id].arbiter == NOBODY), \
        "no default outcome in this state"
    assert block.time > self.orders[order_id].deadline, "the deadline has not passed"
    assert msg.sender == self.orders[order_id].buyer \
        or msg.sender == self.orders[order_id].merchant, "only buyer or merchant"
    if state == DISPUTED:
        self.pay(order_id, self.orders[order_id].buyer, self.orders[order_id].amount)
        self.move(order_id, RESOLVED)
    else:
        self.refund_all(order_id)


# ---------------------------------------------------------------- reading

@view
def order_state(order_id: uint) -> uint:
    return self.orders[order_id].state


@view
def order_buyer(order_id: uint) -> Address:
    return self.orders[order_id].buyer


@view
def order_merchant(order_id: uint) -> Address:
    return self.orders[order_id].merchant


@view
def order_amount(order_id: uint) -> uint:
    return self.orders[order_id].amount


@view
def order_paid(order_id: uint) -> uint:
    return self.orders[order_id].paid


@view
def order_deadline(order_id: uint) -> uint:
    return self.orders[order_id].deadline


@view
def order_ended(order_id: uint) -> bool:
    state: uint = self.orders[order_id].state
    return state == COMPLETED or state == REFUNDED or state == RESOLVED


@view
def order_completed(order_id: uint) -> bool:
    return self.orders[order_id].state == COMPLETED


@view
def locked(in_tokens: bool) -> uint:
    if in_tokens:
        return self.locked_tokens
    return self.locked_coin


@view
def merchant_counts(merchant: Address, kind: uint) -> uint:
    # kind 0: completed, 1: refunded, 2: disputed
    if kind == 0:
        return self.completed_orders[merchant]
    if kind == 1:
        return self.refunded_orders[merchant]
    return self.disputed_orders[merchant]


# ---------------------------------------------------------------- helpers

def complete(order_id: uint):
    # Only a completed order earns rewards: the referrer and the buyer get reward tokens
    # (none when buyer and merchant are one address).
    merchant: Address = self.orders[order_id].merchant
    buyer: Address = self.orders[order_id].buyer
    paid: uint = self.orders[order_id].paid
    self.pay(order_id, merchant, self.orders[order_id].amount)
    self.completed_orders[merchant] += 1
    self.move(order_id, COMPLETED)
    if buyer != merchant:
        referrer: Address = self.orders[order_id].referrer
        if referrer != NOBODY and self.referral_bps > 0:
            Token(self.token).mint(referrer, paid * self.referral_bps // BPS)
        if self.buyer_bps > 0:
            Token(self.token).mint(buyer, paid * self.buyer_bps // BPS)


def refund_all(order_id: uint):
    self.pay(order_id, self.orders[order_id].buyer, self.orders[order_id].amount)
    self.refunded_orders[self.orders[order_id].merchant] += 1
    self.move(order_id, REFUNDED)


def pay(order_id: uint, receiver: Address, amount: uint):
    # Every coin or token leaves the escrow through here.
    if amount == 0:
        return
    self.orders[order_id].amount -= amount
    if self.orders[order_id].in_tokens:
        self.locked_tokens -= amount
        assert Token(self.token).transfer(receiver, amount), "token transfer failed"
    else:
        self.locked_coin -= amount
        send(receiver, amount)
    emit(Payout(order_id, receiver, amount))


def move(order_id: uint, state: uint):
    self.orders[order_id].state = state
    emit(OrderChanged(order_id, state, msg.sender))


def is_open(order_id: uint) -> bool:
    state: uint = self.orders[order_id].state
    return state == PAID or state == SHIPPED or state == DELIVERED \
        or state == RETURN_REQUESTED or state == DISPUTED


def only_buyer(order_id: uint):
    assert msg.sender == self.orders[order_id].buyer, "only the buyer may do this"


def only_merchant(order_id: uint):
    assert msg.sender == self.orders[order_id].merchant, "only the merchant may do this"


def in_state(order_id: uint, state: uint):
    assert self.orders[order_id].state == state, "not allowed in the order's state"
