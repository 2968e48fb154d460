"""Escrow: orders and group deals, from payment to payout. The buyer's payment is held
here until the order ends, and leaves only to the parties the rules below name.

An order is for a listing of the catalog, a quantity, an arbiter the listing accepts (or
none, where it allows that) and an optional referrer. It copies its terms from the
listing when it is placed; nothing afterwards changes them.

States and transitions (who may take each, and until when). "Anyone" means any account:
what silence decides is decided, and whoever triggers it pays only the gas.

    (placed) ------------------------------------------------------------> PAID
    PAID     --ship(tracking)   merchant, until the ship deadline---------> SHIPPED
    PAID     --decline          merchant, until the ship deadline: full
                                refund (after it: as the miss it was) ----> DECLINED
    PAID     --cancel           buyer, any time (a filled group's order:
                                after the ship deadline): full refund ----> CANCELLED
    PAID     --claim            anyone, after the ship deadline: refund,
                                the merchant did not ship ----------------> CANCELLED
    SHIPPED  --confirm(waive)   buyer: the return window runs from now or
                                the confirm deadline, whichever is first --> DELIVERED
                                (waived, final sale, or window over) -----> COMPLETED
    SHIPPED  --claim            anyone, after the confirm deadline: as
                                confirmed at the deadline ----------------> DELIVERED / COMPLETED
    SHIPPED / DELIVERED --open_dispute  buyer, until the state's deadline, if
                                the order has an arbiter, depositing its
                                fee (the merchant's way to the arbiter is
                                contest, with the same deposit) ----------> DISPUTED
    DELIVERED --request_return  buyer, until the return window closes ----> RETURN_REQUESTED
    DELIVERED --claim           anyone, after the return window: paid ----> COMPLETED
    RETURN_REQUESTED --accept_return  merchant, within the answer window:
                                the buyer ships back within an answer
                                window from now (silence accepts: within
                                an answer window after the first one) ----> (accepted)
    RETURN_REQUESTED --contest  merchant, within the answer window, not
                                accepted: to the arbiter -----------------> DISPUTED
                                no arbiter: the return is refused --------> COMPLETED
    RETURN_REQUESTED --ship_back(tracking)  buyer, once accepted, until its
                                ship-back deadline ----------------------> RETURN_SHIPPED
    RETURN_REQUESTED --claim    anyone, after the ship-back deadline: the
                                return lapsed, the merchant is paid ------> COMPLETED
    RETURN_SHIPPED --confirm_receipt  merchant: full refund --------------> REFUNDED
    RETURN_SHIPPED --contest    merchant, within the answer window -------> DISPUTED / COMPLETED
    RETURN_SHIPPED --claim      anyone, after the answer window: refund --> REFUNDED
    DISPUTED --resolve(to_buyer) arbiter, until the ruling deadline: what is
                                held split by amount; the fee is the
                                deposit, paid back by the loser if the
                                side that brought the dispute won --------> RESOLVED
    DISPUTED --claim            anyone, after the ruling deadline: the
                                listing's default split, no fee, the
                                deposit back ----------------------------> RESOLVED
    SHIPPED..DISPUTED --settle(to_buyer)  buyer and merchant, once both
                                name the same amount --------------------> RESOLVED
    any state before an end --refund(amount)  merchant: in part (the order
                                goes on), or in full --------------------> REFUNDED

Group deals. A buyer starts a group of a listing with a group deal and is its first
member and leader; others join, each with an order of its own in state JOINED, paying
the group price into escrow (one membership per address). A member may leave (refund)
while the group is open. When
the N-th member joins the group is FILLED and, at that moment, every member's order is
an ordinary PAID order whose ship deadline runs from the fill: no loop over the members
-- an order in JOINED reads as PAID once its group has filled (``touch``). If the group
deadline passes first the group FAILED: anyone may ``claim`` each member's refund. A
leader who leaves stops being the default referrer of members who join after.

    JOINED   --leave_group      member, while the group is open ----------> CANCELLED
    JOINED   --decline          merchant, while the group is open --------> CANCELLED
    JOINED   (the group fills) ----------------------------------------------> PAID
    JOINED   --claim            anyone, after the group deadline unfilled --> CANCELLED

An order's money leaves through ``pay`` (in the order's currency) and ``reward`` (a
commission, in tokens); when an order ends, through ``end``, which states the reward
rule; a dispute's deposit through ``resolve`` (to the arbiter) or ``end`` (back). The
seven properties of DESIGN.md are kept here as follows:

1. Conservation: ``locked_coin`` / ``locked_tokens`` are what the escrow holds per
   currency: the sum of the open orders' ``held`` and the ended orders' unpaid
   ``bounty``, plus the dispute deposits (coin). Every payment moves exactly what it
   subtracts. (Coin reaches the escrow only through its payable methods -- a transfer
   transaction to a contract is refused -- unless another contract pushes it with
   ``send`` on purpose, which nobody can then claim: that is burning it.)
2. Nothing stuck: every state above has a deadline (its windows bounded by the
   catalog's deploy limits) after which ``claim`` moves it on, and ``claim`` ends every
   state but one in a single step (SHIPPED goes to DELIVERED, whose deadline is bounded
   too). A review bounty goes to the merchant after the review window.
3. Payouts are never blocked: amounts only shrink on the way out; shares are computed
   by ``share_of``, which cannot overflow; the sums kept for reputation (volume, fees)
   saturate, and each counter of outcomes counts an order at most once, so it never
   passes the order count; the catalog's put_back saturates; a mint is against coin
   held here (the supply can never overflow); every receiver was checked at placement
   to be an account the token pays.
4. No profitable self-dealing: nothing here creates value. A merchant cannot buy its
   own listing; a referrer is neither the buyer, the merchant nor the arbiter; every
   commission comes out of what the merchant keeps, at its own published rates.
5. Terms agreed and visible: the buyer orders the listing version it read; the terms
   are copied into the order (``order`` returns them) and carried by OrderPlaced.
6. Silence never beats action: see ``claim``; a late ``confirm`` cannot open a fresh
   return window and an arbiter cannot rule after its deadline (it loses its fee).
7. Reviews are earned: ``on_review`` lets only the buyer of an order that ended after
   it was shipped -- or that the merchant failed to ship -- review it (the reviews
   contract keeps it to once): a declined or cancelled order cost nothing, so it earns
   no review. Every outcome is counted per merchant and per listing, declined and
   not-shipped orders included.
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
RETURN_SHIPPED: constant(uint) = 11
JOINED: constant(uint) = 12

# Group states
GROUP_OPEN: constant(uint) = 1
GROUP_FILLED: constant(uint) = 2
GROUP_FAILED: constant(uint) = 3

BPS: constant(uint) = 10000
MAX_UINT: constant(uint) = 2**256 - 1
MAX_REFERENCE: constant(uint) = 128               # bytes of a tracking reference
MIN_REVIEW_WINDOW: constant(uint) = 86400000      # 1 day
MAX_REVIEW_WINDOW: constant(uint) = 31536000000   # 365 days
NOBODY: constant(Address) = "agora1qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqry2cu5"


class Order(Record):
    listing: uint
    quantity: uint
    buyer: Address
    merchant: Address
    arbiter: Address            # NOBODY: none
    referrer: Address           # NOBODY: none
    group: uint                 # 0: not a group order
    in_tokens: bool
    paid: uint                  # what the buyer paid
    held: uint                  # what is held for it now (paid, less refunds so far)
    bounty: uint                # a review bounty held after it ended
    state: uint
    deadline: uint              # the deadline of the current state (see the diagram)
    placed_at: uint
    ended_at: uint
    shipped_at: uint            # when the merchant shipped it (0: never)
    return_accepted: bool       # the merchant accepted a return explicitly
    not_shipped: bool           # it ended because the merchant missed the ship deadline
    deposit: uint               # the arbiter's fee, in coin, from whoever brought a dispute
    disputed_by: Address        # who brought the dispute (NOBODY: none)
    tracking: str               # the merchant's shipping reference
    return_tracking: str        # the buyer's, for a return
    buyer_offer: uint           # a settlement each side named (refund to the buyer) + 1
    merchant_offer: uint
    # the terms, copied from the listing and its arbiter when it was placed
    ship_window: uint
    confirm_window: uint
    return_window: uint         # 0: final sale
    answer_window: uint
    arbiter_fee_bps: uint
    ruling_window: uint
    default_refund_bps: uint
    referral_bps: uint
    cashback_bps: uint
    bounty_bps: uint


class Group(Record):
    listing: uint
    merchant: Address
    leader: Address             # the first member; the default referrer of the others
    price: uint                 # coin per unit, fixed when the group started
    size: uint                  # members it needs
    members: uint               # members now
    deadline: uint              # it fills by then, or fails
    filled_at: uint
    state: uint


class Stats(Record):
    """Outcomes of a merchant's (or a listing's) orders: its reputation beside reviews."""
    completed: uint
    refunded: uint
    declined: uint
    not_shipped: uint
    settled: uint
    disputes: uint              # decided by the arbiter or by its silence
    disputes_lost: uint         # of those, the buyer got more than the merchant
    volume: uint                # what the merchant kept, coin and tokens alike (1:1)


class Cases(Record):
    """An arbiter's record."""
    cases: uint
    ruled: uint
    for_buyer: uint
    for_merchant: uint
    split: uint                 # the two sides got the same
    missed: uint                # let the ruling deadline pass
    fees: uint


class Terms(Record):
    """What the catalog hands back when an order is placed (its Terms)."""
    merchant: Address
    price: uint
    token_price: uint
    ship_window: uint
    confirm_window: uint
    return_window: uint
    answer_window: uint
    arbiter_fee_bps: uint
    ruling_window: uint
    default_refund_bps: uint
    referral_bps: uint
    cashback_bps: uint
    bounty_bps: uint
    group_price: uint
    group_size: uint
    group_window: uint


class Counts(Record):
    orders: uint
    groups: uint
    locked_coin: uint           # held for open orders and unpaid bounties, in coin
    locked_tokens: uint         # the same, in reward tokens


class ReviewTicket(Record):
    """What the reviews contract learns of an order it lets its buyer review."""
    merchant: Address
    listing: uint


class OrderPlaced(Event):
    order_id: uint
    listing: uint
    quantity: uint
    buyer: Address
    merchant: Address
    arbiter: Address
    referrer: Address
    group: uint
    in_tokens: bool
    paid: uint
    ship_window: uint
    confirm_window: uint
    return_window: uint
    answer_window: uint
    arbiter_fee_bps: uint
    ruling_window: uint
    default_refund_bps: uint
    referral_bps: uint
    cashback_bps: uint
    bounty_bps: uint


class OrderChanged(Event):
    order_id: uint
    listing: uint
    buyer: Address
    merchant: Address
    state: uint
    actor: Address
    deadline: uint
    note: str                   # a tracking reference, where the step has one


class Payout(Event):
    order_id: uint
    receiver: Address
    amount: uint
    in_tokens: bool
    reason: str                 # refund, payment, arbiter fee, referral, cashback, bounty


class SettlementOffered(Event):
    order_id: uint
    party: Address
    to_buyer: uint


class GroupChanged(Event):
    group_id: uint
    listing: uint
    price: uint
    state: uint
    members: uint
    size: uint
    deadline: uint
    actor: Address


class Catalog(Interface):
    def take(listing_id: uint, version: uint, quantity: uint, arbiter: Address) -> Terms: ...
    def put_back(listing_id: uint, quantity: uint): ...


class Token(Interface):
    def transfer(receiver: Address, amount: uint) -> bool: ...
    def mint(receiver: Address, amount: uint): ...


orders: Map[uint, Order]
order_count: uint
groups: Map[uint, Group]
group_count: uint
members: Map[uint, Map[Address, uint]]   # group -> member -> its order in the group
merchant_stats: Map[Address, Stats]
listing_stats: Map[uint, Stats]
arbiter_cases: Map[Address, Cases]
locked_coin: uint
locked_tokens: uint
token: Address
catalog: Address
reviews: Address
review_window: uint


def __init__(token: Address, catalog: Address, reviews: Address, review_window: uint):
    assert review_window >= MIN_REVIEW_WINDOW and review_window <= MAX_REVIEW_WINDOW, \
        "review_window must be 1 to 365 days"
    self.token = token
    self.catalog = catalog
    self.reviews = reviews
    self.review_window = review_window


# ---------------------------------------------------------------- placing an order

@public
@payable
def place_order(listing_id: uint, version: uint, quantity: uint, arbiter: Address,
                referrer: Address) -> uint:
    # Pay exactly price x quantity in coin for the listing version read.
    t: Terms = Catalog(self.catalog).take(listing_id, version, quantity, arbiter)
    assert t.price > 0, "not sold for coin"
    return self.open(msg.sender, msg.value, False, listing_id, quantity, arbiter, referrer,
                     0, t.price, t)


@public
def on_token_received(sender: Address, amount: uint, data: bytes) -> bool:
    # Paying in reward tokens: token.transfer_and_call(escrow, amount, data) with data
    # = listing id, version, quantity (32 bytes each), arbiter, referrer (20 each).
    assert msg.sender == self.token, "only the reward token pays in tokens"
    assert len(data) == 136, "order data is 136 bytes: listing, version, quantity, " \
        "arbiter, referrer"
    listing_id: uint = to_uint(slice(data, 0, 32))
    quantity: uint = to_uint(slice(data, 64, 32))
    arbiter: Address = to_address(slice(data, 96, 20))
    t: Terms = Catalog(self.catalog).take(listing_id, to_uint(slice(data, 32, 32)), quantity,
                                          arbiter)
    assert t.token_price > 0, "not sold for reward tokens"
    self.open(sender, amount, True, listing_id, quantity, arbiter,
              to_address(slice(data, 116, 20)), 0, t.token_price, t)
    return True


def open(buyer: Address, paid: uint, in_tokens: bool, listing_id: uint, quantity: uint,
         arbiter: Address, referrer: Address, group_id: uint, unit_price: uint,
         t: Terms) -> uint:
    assert buyer != t.merchant, "a merchant cannot buy its own listing"
    assert arbiter != buyer, "the arbiter is a third party"
    if referrer != NOBODY:
        assert referrer != buyer and referrer != t.merchant and referrer != arbiter \
            and referrer != self.token and referrer != self.catalog \
            and referrer != self.reviews and referrer != self.address, \
            "the referrer is not the buyer, the merchant, the arbiter or a contract"
    assert paid == unit_price * quantity, "pay exactly the price times the quantity"
    self.order_count += 1
    order_id: uint = self.order_count
    state: uint = PAID
    deadline: uint = block.time + t.ship_window
    if group_id > 0:
        state = JOINED
        deadline = self.groups[group_id].deadline
    self.orders[order_id] = Order(
        listing=listing_id, quantity=quantity, buyer=buyer, merchant=t.merchant,
        arbiter=arbiter, referrer=referrer, group=group_id, in_tokens=in_tokens,
        paid=paid, held=paid, bounty=0, state=state, deadline=deadline,
        placed_at=block.time, ended_at=0, shipped_at=0, return_accepted=False,
        not_shipped=False, deposit=0, disputed_by=NOBODY,
        tracking="", return_tracking="", buyer_offer=0, merchant_offer=0,
        ship_window=t.ship_window, confirm_window=t.confirm_window,
        return_window=t.return_window, answer_window=t.answer_window,
        arbiter_fee_bps=t.arbiter_fee_bps, ruling_window=t.ruling_window,
        default_refund_bps=t.default_refund_bps, referral_bps=t.referral_bps,
        cashback_bps=t.cashback_bps, bounty_bps=t.bounty_bps)
    self.lock(in_tokens, paid)
    emit(OrderPlaced(order_id, listing_id, quantity, buyer, t.merchant, arbiter, referrer,
                     group_id, in_tokens, paid, t.ship_window, t.confirm_window,
                     t.return_window, t.answer_window, t.arbiter_fee_bps, t.ruling_window,
                     t.default_refund_bps, t.referral_bps, t.cashback_bps, t.bounty_bps))
    return order_id


# ---------------------------------------------------------------- group deals

@public
@payable
def start_group(listing_id: uint, version: uint, quantity: uint, arbiter: Address,
                referrer: Address) -> uint:
    # The first member: the group takes the listing's group price, size and window now.
    t: Terms = Catalog(self.catalog).take(listing_id, version, quantity, arbiter)
    assert t.group_price > 0, "this listing has no group deal"
    self.group_count += 1
    group_id: uint = self.group_count
    self.groups[group_id] = Group(listing_id, t.merchant, msg.sender, t.group_price,
                                  t.group_size, 0, block.time + t.group_window, 0, GROUP_OPEN)
    return self.join_as(group_id, msg.sender, msg.value, quantity, arbiter, referrer, t)


@public
@payable
def join_group(group_id: uint, version: uint, quantity: uint, arbiter: Address,
               referrer: Address) -> uint:
    assert self.groups[group_id].state == GROUP_OPEN, "the group is not open"
    assert block.time <= self.groups[group_id].deadline, "the group's deadline has passed"
    t: Terms = Catalog(self.catalog).take(self.groups[group_id].listing, version, quantity,
                                          arbiter)
    return self.join_as(group_id, msg.sender, msg.value, quantity, arbiter, referrer, t)


def join_as(group_id: uint, member: Address, paid: uint, quantity: uint, arbiter: Address,
            referrer: Address, t: Terms) -> uint:
    # A group is of N buyers: one membership per address (more units: a larger quantity).
    assert self.members[group_id][member] == 0, "already a member of this group"
    leader: Address = self.groups[group_id].leader
    if referrer == NOBODY and member != leader and leader != arbiter \
            and self.members[group_id][leader] != 0:
        referrer = leader  # the leader brought the group together (and is still in it)
    order_id: uint = self.open(member, paid, False, self.groups[group_id].listing, quantity,
                               arbiter, referrer, group_id, self.groups[group_id].price, t)
    self.members[group_id][member] = order_id
    self.groups[group_id].members += 1
    if self.groups[group_id].members == self.groups[group_id].size:
        # Filled: from now every member's order reads as PAID (see touch), no loop.
        self.groups[group_id].state = GROUP_FILLED
        self.groups[group_id].filled_at = block.time
    self.group_changed(group_id)
    return order_id


@public
def leave_group(order_id: uint):
    self.only_buyer(order_id)
    self.in_state(order_id, JOINED)
    group_id: uint = self.orders[order_id].group
    assert self.groups[group_id].state == GROUP_OPEN, "the group is no longer open"
    assert block.time <= self.groups[group_id].deadline, "the group's deadline has passed"
    self.groups[group_id].members -= 1
    self.members[group_id][msg.sender] = 0
    self.end_unsent(order_id, CANCELLED, False)
    self.group_changed(group_id)


@public
def close_group(group_id: uint):
    # Anyone, once a group's deadline passed unfilled; each member's refund is then
    # one claim away (also without this).
    assert self.groups[group_id].state == GROUP_OPEN, "the group is not open"
    assert block.time > self.groups[group_id].deadline, "the group's deadline has not passed"
    self.groups[group_id].state = GROUP_FAILED
    self.group_changed(group_id)


# ---------------------------------------------------------------- before shipping

@public
def ship(order_id: uint, tracking: str):
    self.touch(order_id)
    self.only_merchant(order_id)
    self.in_state(order_id, PAID)
    assert block.time <= self.orders[order_id].deadline, \
        "the ship deadline has passed: the buyer is refunded"
    assert len(tracking.encode()) <= MAX_REFERENCE, "a reference is at most 128 bytes"
    self.orders[order_id].tracking = tracking
    self.orders[order_id].shipped_at = block.time
    self.move(order_id, SHIPPED, block.time + self.orders[order_id].confirm_window, tracking)


@public
def decline(order_id: uint):
    # The merchant turns the order down: the buyer gets everything back, and the
    # merchant's record shows it (past the ship deadline, as the miss it already was).
    # A member of a group still open may be declined too, freeing its stock; that is no
    # order yet, so the record does not count it.
    self.touch(order_id)
    self.only_merchant(order_id)
    state: uint = self.orders[order_id].state
    if state == JOINED:
        group_id: uint = self.orders[order_id].group
        assert self.groups[group_id].state == GROUP_OPEN, "the group is no longer open"
        self.groups[group_id].members -= 1
        self.members[group_id][self.orders[order_id].buyer] = 0
        self.end_unsent(order_id, CANCELLED, False)
        self.group_changed(group_id)
        return
    self.in_state(order_id, PAID)
    self.end_unshipped(order_id, DECLINED)


@public
def cancel(order_id: uint):
    # Before shipping the buyer may walk away with a full refund. Past the ship deadline
    # it is the merchant's miss, and its record shows that. A member's order of a group
    # that filled is firm until then: the group price was for N buyers.
    self.touch(order_id)
    self.only_buyer(order_id)
    self.in_state(order_id, PAID)
    late: bool = block.time > self.orders[order_id].deadline
    assert late or self.orders[order_id].group == 0, \
        "an order of a filled group is cancelled only if it is not shipped in time"
    self.end_unsent(order_id, CANCELLED, late)


# ---------------------------------------------------------------- delivery

@public
def confirm(order_id: uint, waive_return: bool):
    # Delivered. The return window runs from now or from the confirm deadline, whichever
    # came first: confirming late never opens a fresh window.
    self.only_buyer(order_id)
    self.in_state(order_id, SHIPPED)
    start: uint = self.min_of(block.time, self.orders[order_id].deadline)
    self.delivered(order_id, start, waive_return)


def delivered(order_id: uint, start: uint, waive_return: bool):
    return_window: uint = self.orders[order_id].return_window
    if waive_return or return_window == 0 or block.time > start + return_window:
        self.end(order_id, COMPLETED, 0)
    else:
        self.move(order_id, DELIVERED, start + return_window, "")


# ---------------------------------------------------------------- returns

@public
def request_return(order_id: uint):
    # No reason needed, within the return window.
    self.only_buyer(order_id)
    self.in_state(order_id, DELIVERED)
    assert block.time <= self.orders[order_id].deadline, "the return window has closed"
    self.move(order_id, RETURN_REQUESTED, block.time + self.orders[order_id].answer_window,
              "")


@public
def accept_return(order_id: uint):
    # The buyer then ships the goods back within an answer window from now.
    self.only_merchant(order_id)
    self.in_state(order_id, RETURN_REQUESTED)
    assert not self.orders[order_id].return_accepted, "already accepted"
    assert block.time <= self.orders[order_id].deadline, \
        "the answer window has passed: the return is accepted already"
    self.orders[order_id].return_accepted = True
    self.move(order_id, RETURN_REQUESTED, block.time + self.orders[order_id].answer_window,
              "return accepted")


@public
def ship_back(order_id: uint, tracking: str):
    self.only_buyer(order_id)
    self.in_state(order_id, RETURN_REQUESTED)
    if not self.orders[order_id].return_accepted:
        assert block.time > self.orders[order_id].deadline, \
            "the merchant may still answer: ship back once it accepts or its window passes"
    assert block.time <= self.ship_back_deadline(order_id), \
        "the time to ship the goods back has passed"
    assert len(tracking.encode()) <= MAX_REFERENCE, "a reference is at most 128 bytes"
    self.orders[order_id].return_tracking = tracking
    self.move(order_id, RETURN_SHIPPED, block.time + self.orders[order_id].answer_window,
              tracking)


@public
def confirm_receipt(order_id: uint):
    # The goods came back: the buyer is refunded in full.
    self.only_merchant(order_id)
    self.in_state(order_id, RETURN_SHIPPED)
    self.end(order_id, REFUNDED, self.orders[order_id].held)


@public
@payable
def contest(order_id: uint):
    # The merchant refuses a return it has not accepted (within its answer window), or
    # what came back (within its answer window after the buyer shipped it). The order's
    # arbiter decides (the merchant deposits its fee, see dispute); with no arbiter the
    # merchant's word is final, as its listing said.
    self.only_merchant(order_id)
    state: uint = self.orders[order_id].state
    assert state == RETURN_REQUESTED or state == RETURN_SHIPPED, "nothing to contest"
    assert not (state == RETURN_REQUESTED and self.orders[order_id].return_accepted), \
        "the return was accepted"
    assert block.time <= self.orders[order_id].deadline, "the answer window has passed"
    if self.orders[order_id].arbiter == NOBODY:
        assert msg.value == 0, "no arbiter: nothing to deposit"
        self.end(order_id, COMPLETED, 0)
    else:
        self.dispute(order_id)


# ---------------------------------------------------------------- disputes and settling

@public
@payable
def open_dispute(order_id: uint):
    # The buyer, from shipping until the deadline of the state (after it the merchant
    # may already end the order). The merchant takes its side to the arbiter by
    # contesting a return: before that, silence pays it, and a dispute of its own could
    # only cut short the buyer's return window. The buyer deposits the arbiter's fee.
    self.only_buyer(order_id)
    state: uint = self.orders[order_id].state
    assert state == SHIPPED or state == DELIVERED, "no dispute in this state"
    assert self.orders[order_id].arbiter != NOBODY, "the order has no arbiter"
    assert block.time <= self.orders[order_id].deadline, "too late to dispute"
    self.dispute(order_id)


@public
def resolve(order_id: uint, to_buyer: uint):
    # The arbiter's ruling, before its deadline: what is held, split by amount (to the
    # buyer at most what is held: a refund the merchant slips in first must not make the
    # ruling fail). The arbiter's fee is the deposit of the side that brought the
    # dispute; if that side won, the other pays it back out of its share, as far as the
    # share goes -- so a dispute brought for nothing costs its bringer, never the other.
    assert msg.sender == self.orders[order_id].arbiter, "only the order's arbiter rules"
    self.in_state(order_id, DISPUTED)
    assert block.time <= self.orders[order_id].deadline, "the ruling deadline has passed"
    held: uint = self.orders[order_id].held
    to_buyer = self.min_of(to_buyer, held)
    to_merchant: uint = held - to_buyer
    fee: uint = self.orders[order_id].deposit
    by: Address = self.orders[order_id].disputed_by
    self.orders[order_id].deposit = 0
    self.locked_coin -= fee
    if fee > 0:
        send(msg.sender, fee)
        emit(Payout(order_id, msg.sender, fee, False, "arbiter fee"))
    self.arbiter_cases[msg.sender].ruled += 1
    self.arbiter_cases[msg.sender].fees = self.add_sat(self.arbiter_cases[msg.sender].fees, fee)
    if to_buyer > to_merchant:
        self.arbiter_cases[msg.sender].for_buyer += 1
    elif to_merchant > to_buyer:
        self.arbiter_cases[msg.sender].for_merchant += 1
    else:
        self.arbiter_cases[msg.sender].split += 1
    self.decided(order_id, to_buyer > to_merchant)
    if by == self.orders[order_id].buyer and to_buyer > to_merchant:
        to_buyer += self.min_of(fee, to_merchant)  # the merchant pays the fee back
    elif by == self.orders[order_id].merchant and to_merchant > to_buyer:
        to_buyer -= self.min_of(fee, to_buyer)     # the buyer pays the fee back
    self.end(order_id, RESOLVED, to_buyer)


@view
def dispute_deposit(order_id: uint) -> uint:
    # What opening a dispute (or contesting, for the merchant) deposits now, in coin.
    if self.orders[order_id].arbiter == NOBODY:
        return 0
    return self.share_of(self.orders[order_id].held, self.orders[order_id].arbiter_fee_bps)


@public
def settle(order_id: uint, to_buyer: uint):
    # Buyer and merchant may always agree on a refund of part of what is held: each
    # names an amount; when both name the same, the order ends with it (no arbiter fee).
    self.only_parties(order_id)
    state: uint = self.orders[order_id].state
    assert state == SHIPPED or state == DELIVERED or state == RETURN_REQUESTED \
        or state == RETURN_SHIPPED or state == DISPUTED, "nothing to settle in this state"
    assert to_buyer <= self.orders[order_id].held, "more than the order holds"
    if msg.sender == self.orders[order_id].buyer:
        self.orders[order_id].buyer_offer = to_buyer + 1
    if msg.sender == self.orders[order_id].merchant:
        self.orders[order_id].merchant_offer = to_buyer + 1
    emit(SettlementOffered(order_id, msg.sender, to_buyer))
    if self.orders[order_id].buyer_offer == self.orders[order_id].merchant_offer:
        self.merchant_stats[self.orders[order_id].merchant].settled += 1
        self.listing_stats[self.orders[order_id].listing].settled += 1
        self.end(order_id, RESOLVED, to_buyer)


@public
def refund(order_id: uint, amount: uint):
    # The merchant may refund in part or in full at any time before the order ends.
    self.touch(order_id)
    self.only_merchant(order_id)
    state: uint = self.orders[order_id].state
    assert state != JOINED, "a member of an open group is declined, not refunded"
    assert self.is_open(state), "the order has ended"
    held: uint = self.orders[order_id].held
    assert amount > 0 and amount <= held, "refund between 1 and what the order holds"
    if amount == held:
        if state == PAID:
            self.end_unshipped(order_id, REFUNDED)
        else:
            self.end(order_id, REFUNDED, held)
    else:
        self.orders[order_id].buyer_offer = 0  # offers named against the old amount
        self.orders[order_id].merchant_offer = 0
        self.pay(order_id, self.orders[order_id].buyer, amount, "refund")


# ---------------------------------------------------------------- silence

@public
def claim(order_id: uint):
    # What silence decides, once the deadline of the order's state has passed. Anyone
    # may apply it (property 6: the waiting party never needs the silent one).
    self.touch(order_id)
    state: uint = self.orders[order_id].state
    deadline: uint = self.orders[order_id].deadline
    if state == RETURN_REQUESTED:
        deadline = self.ship_back_deadline(order_id)
    assert self.is_open(state), "the order has ended"
    assert block.time > deadline, "the deadline has not passed"
    if state == PAID:                    # the merchant never shipped
        self.end_unsent(order_id, CANCELLED, True)
    elif state == JOINED:                # the group never filled
        group_id: uint = self.orders[order_id].group
        if self.groups[group_id].state == GROUP_OPEN:
            self.groups[group_id].state = GROUP_FAILED
            self.group_changed(group_id)
        self.end_unsent(order_id, CANCELLED, False)
    elif state == SHIPPED:               # the buyer never confirmed: delivered at the deadline
        self.delivered(order_id, deadline, False)
    elif state == DELIVERED:             # no return asked: the merchant is paid
        self.end(order_id, COMPLETED, 0)
    elif state == RETURN_REQUESTED:      # the goods never went back: the return lapsed
        self.end(order_id, COMPLETED, 0)
    elif state == RETURN_SHIPPED:        # the merchant never answered: refund
        self.end(order_id, REFUNDED, self.orders[order_id].held)
    else:                                # DISPUTED: the arbiter never ruled
        to_buyer: uint = self.share_of(self.orders[order_id].held,
                                  self.orders[order_id].default_refund_bps)
        arbiter: Address = self.orders[order_id].arbiter
        self.arbiter_cases[arbiter].missed += 1
        self.decided(order_id, to_buyer > self.orders[order_id].held - to_buyer)
        self.end(order_id, RESOLVED, to_buyer)


# ---------------------------------------------------------------- reviews and their bounty

@public
def on_review(order_id: uint, reviewer: Address) -> ReviewTicket:
    # The reviews contract asks before it records a review: only the buyer of an order
    # that has ended may review it. A review within the review window earns the buyer
    # the bounty the merchant set aside.
    assert msg.sender == self.reviews, "only the reviews contract asks"
    assert reviewer == self.orders[order_id].buyer, "only the order's buyer reviews it"
    state: uint = self.orders[order_id].state
    assert not self.is_open(state) and state != 0, "the order has not ended"
    assert self.orders[order_id].shipped_at > 0 or self.orders[order_id].not_shipped, \
        "only an order that was shipped (or that the merchant failed to ship) is reviewed"
    bounty: uint = self.orders[order_id].bounty
    if bounty > 0 and block.time <= self.orders[order_id].ended_at + self.review_window:
        self.orders[order_id].bounty = 0
        self.unlock(self.orders[order_id].in_tokens, bounty)
        self.reward(order_id, reviewer, bounty, "bounty")
    return ReviewTicket(self.orders[order_id].merchant, self.orders[order_id].listing)


@public
def release_bounty(order_id: uint):
    # Anyone, after the review window: an unearned bounty goes back to the merchant.
    bounty: uint = self.orders[order_id].bounty
    assert bounty > 0, "no bounty held"
    assert block.time > self.orders[order_id].ended_at + self.review_window, \
        "the review window is open"
    self.orders[order_id].bounty = 0
    self.unlock(self.orders[order_id].in_tokens, bounty)
    self.send_out(order_id, self.orders[order_id].merchant, bounty, "bounty returned")


# ---------------------------------------------------------------- reading

@view
def order(order_id: uint) -> Order:
    # As it stands now: a member's order of a filled group reads as PAID.
    o: Order = self.orders[order_id]
    if o.state == JOINED and self.groups[o.group].state == GROUP_FILLED:
        o.state = PAID
        o.deadline = self.groups[o.group].filled_at + o.ship_window
    return o


@view
def group(group_id: uint) -> Group:
    return self.groups[group_id]


@view
def merchant_record(merchant: Address) -> Stats:
    return self.merchant_stats[merchant]


@view
def listing_record(listing_id: uint) -> Stats:
    return self.listing_stats[listing_id]


@view
def arbiter_record(arbiter: Address) -> Cases:
    return self.arbiter_cases[arbiter]


@view
def counts() -> Counts:
    return Counts(self.order_count, self.group_count, self.locked_coin, self.locked_tokens)


# ---------------------------------------------------------------- ending an order

def end(order_id: uint, state: uint, to_buyer: uint):
    # Ends a shipped order: `to_buyer` of what is held goes back to the buyer and the
    # merchant keeps the rest. THE REWARD RULE (property 4): out of what it keeps, the
    # merchant pays the commissions its listing published when the order was placed,
    #     referral = kept x referral_bps / 10000  -> the referrer (none: the merchant keeps it)
    #     cashback = kept x cashback_bps / 10000  -> the buyer
    #     bounty   = kept x bounty_bps / 10000    -> held for the buyer's review (on_review),
    #                                                or back to the merchant (release_bounty)
    # paid in reward tokens minted against that very coin (or moved, for an order paid in
    # tokens). Nothing is minted from nothing; rates sum to at most the catalog's limit.
    held: uint = self.orders[order_id].held
    kept: uint = held - to_buyer
    buyer: Address = self.orders[order_id].buyer
    merchant: Address = self.orders[order_id].merchant
    referrer: Address = self.orders[order_id].referrer
    deposit: uint = self.orders[order_id].deposit
    if deposit > 0:  # a dispute ended without a ruling: its deposit goes back
        self.orders[order_id].deposit = 0
        self.locked_coin -= deposit
        send(self.orders[order_id].disputed_by, deposit)
        emit(Payout(order_id, self.orders[order_id].disputed_by, deposit, False,
                    "deposit returned"))
    self.pay(order_id, buyer, to_buyer, "refund")
    referral: uint = 0
    if referrer != NOBODY:
        referral = self.share_of(kept, self.orders[order_id].referral_bps)
    cashback: uint = self.share_of(kept, self.orders[order_id].cashback_bps)
    bounty: uint = self.share_of(kept, self.orders[order_id].bounty_bps)
    self.take_out(order_id, referral)
    self.reward(order_id, referrer, referral, "referral")
    self.take_out(order_id, cashback)
    self.reward(order_id, buyer, cashback, "cashback")
    self.orders[order_id].held -= bounty  # still locked: it waits for the review
    self.orders[order_id].bounty = bounty
    self.pay(order_id, merchant, kept - referral - cashback - bounty, "payment")
    self.orders[order_id].ended_at = block.time
    self.count(order_id, state, kept)
    self.move(order_id, state, 0, "")


def end_unshipped(order_id: uint, state: uint):
    # The merchant ends a PAID order (declined, or refunded in full). Past the ship
    # deadline silence had already decided it: the merchant did not ship.
    if block.time > self.orders[order_id].deadline:
        self.end_unsent(order_id, CANCELLED, True)
    else:
        self.end_unsent(order_id, state, False)


def end_unsent(order_id: uint, state: uint, not_shipped: bool):
    # Ends an order that never shipped (declined, cancelled, refunded, left, or its
    # group failed): everything back to the buyer, the stock back to the listing.
    self.pay(order_id, self.orders[order_id].buyer, self.orders[order_id].held, "refund")
    self.orders[order_id].not_shipped = not_shipped
    self.orders[order_id].ended_at = block.time
    Catalog(self.catalog).put_back(self.orders[order_id].listing,
                                   self.orders[order_id].quantity)
    if state != CANCELLED or not_shipped:  # a buyer's own cancel says nothing of the merchant
        self.count(order_id, state, 0)
    self.move(order_id, state, 0, "")


def count(order_id: uint, state: uint, kept: uint):
    # Every outcome goes on the merchant's record and the listing's.
    merchant: Address = self.orders[order_id].merchant
    listing_id: uint = self.orders[order_id].listing
    if state == COMPLETED:
        self.merchant_stats[merchant].completed += 1
        self.listing_stats[listing_id].completed += 1
    elif state == REFUNDED:
        self.merchant_stats[merchant].refunded += 1
        self.listing_stats[listing_id].refunded += 1
    elif state == DECLINED:
        self.merchant_stats[merchant].declined += 1
        self.listing_stats[listing_id].declined += 1
    elif state == CANCELLED:
        self.merchant_stats[merchant].not_shipped += 1
        self.listing_stats[listing_id].not_shipped += 1
    if kept > 0:
        self.merchant_stats[merchant].volume = self.add_sat(self.merchant_stats[merchant].volume,
                                                       kept)
        self.listing_stats[listing_id].volume = self.add_sat(self.listing_stats[listing_id].volume,
                                                        kept)


def dispute(order_id: uint):
    # Whoever brings a dispute deposits the arbiter's fee (its rate of what is held now),
    # in coin: it pays the arbiter if the ruling goes against it, and comes back if the
    # arbiter stays silent or the order ends another way. More is taken and the rest
    # sent back at once, so a refund the other side slips in first (which lowers the
    # fee) cannot make the dispute fail: the fee on what was paid is always enough.
    deposit: uint = self.share_of(self.orders[order_id].held,
                                  self.orders[order_id].arbiter_fee_bps)
    assert msg.value >= deposit, "deposit the arbiter's fee (see dispute_deposit)"
    if msg.value > deposit:
        send(msg.sender, msg.value - deposit)
    self.orders[order_id].deposit = deposit
    self.orders[order_id].disputed_by = msg.sender
    self.locked_coin += deposit
    self.arbiter_cases[self.orders[order_id].arbiter].cases += 1
    self.move(order_id, DISPUTED, block.time + self.orders[order_id].ruling_window, "")


def decided(order_id: uint, buyer_won: bool):
    merchant: Address = self.orders[order_id].merchant
    listing_id: uint = self.orders[order_id].listing
    self.merchant_stats[merchant].disputes += 1
    self.listing_stats[listing_id].disputes += 1
    if buyer_won:
        self.merchant_stats[merchant].disputes_lost += 1
        self.listing_stats[listing_id].disputes_lost += 1


# ---------------------------------------------------------------- money out

def pay(order_id: uint, receiver: Address, amount: uint, reason: str):
    # Out of what the order holds, in the order's currency, as it was paid.
    if amount == 0:
        return
    self.take_out(order_id, amount)
    self.send_out(order_id, receiver, amount, reason)


def take_out(order_id: uint, amount: uint):
    self.orders[order_id].held -= amount
    self.unlock(self.orders[order_id].in_tokens, amount)


def send_out(order_id: uint, receiver: Address, amount: uint, reason: str):
    if amount == 0:
        return
    in_tokens: bool = self.orders[order_id].in_tokens
    if in_tokens:
        assert Token(self.token).transfer(receiver, amount), "token transfer failed"
    else:
        send(receiver, amount)
    emit(Payout(order_id, receiver, amount, in_tokens, reason))


def reward(order_id: uint, receiver: Address, amount: uint, reason: str):
    # A commission, in reward tokens: minted against the coin of a coin order, moved
    # for an order paid in tokens.
    if amount == 0:
        return
    in_tokens: bool = self.orders[order_id].in_tokens
    if in_tokens:
        assert Token(self.token).transfer(receiver, amount), "token transfer failed"
    else:
        Token(self.token).mint(receiver, amount, value=amount)
    emit(Payout(order_id, receiver, amount, True, reason))


def lock(in_tokens: bool, amount: uint):
    if in_tokens:
        self.locked_tokens += amount
    else:
        self.locked_coin += amount


def unlock(in_tokens: bool, amount: uint):
    if in_tokens:
        self.locked_tokens -= amount
    else:
        self.locked_coin -= amount


# ---------------------------------------------------------------- small rules

def touch(order_id: uint):
    # A member's order of a group that has filled is an ordinary PAID order, its ship
    # deadline running from the fill.
    if self.orders[order_id].state == JOINED:
        group_id: uint = self.orders[order_id].group
        if self.groups[group_id].state == GROUP_FILLED:
            self.orders[order_id].state = PAID
            self.orders[order_id].deadline = self.groups[group_id].filled_at \
                + self.orders[order_id].ship_window


def ship_back_deadline(order_id: uint) -> uint:
    # Accepted: the deadline set then. Silent: an answer window after the answer window.
    if self.orders[order_id].return_accepted:
        return self.orders[order_id].deadline
    return self.orders[order_id].deadline + self.orders[order_id].answer_window


def move(order_id: uint, state: uint, deadline: uint, note: str):
    self.orders[order_id].state = state
    self.orders[order_id].deadline = deadline
    self.orders[order_id].buyer_offer = 0  # a settlement is named for the state it is in
    self.orders[order_id].merchant_offer = 0
    emit(OrderChanged(order_id, self.orders[order_id].listing, self.orders[order_id].buyer,
                      self.orders[order_id].merchant, state, msg.sender, deadline, note))


def group_changed(group_id: uint):
    emit(GroupChanged(group_id, self.groups[group_id].listing, self.groups[group_id].price,
                      self.groups[group_id].state,
                      self.groups[group_id].members, self.groups[group_id].size,
                      self.groups[group_id].deadline, msg.sender))


def is_open(state: uint) -> bool:
    return state == PAID or state == SHIPPED or state == DELIVERED \
        or state == RETURN_REQUESTED or state == RETURN_SHIPPED or state == DISPUTED \
        or state == JOINED


def only_buyer(order_id: uint):
    assert msg.sender == self.orders[order_id].buyer, "only the buyer may do this"


def only_merchant(order_id: uint):
    assert msg.sender == self.orders[order_id].merchant, "only the merchant may do this"


def only_parties(order_id: uint):
    assert msg.sender == self.orders[order_id].buyer \
        or msg.sender == self.orders[order_id].merchant, "only the buyer or the merchant"


def in_state(order_id: uint, state: uint):
    assert self.orders[order_id].state == state, "not allowed in the order's state"


def share_of(amount: uint, bps: uint) -> uint:
    # amount x bps / 10000, rounded down, without ever overflowing (bps <= 10000).
    return amount // BPS * bps + amount % BPS * bps // BPS


def add_sat(a: uint, b: uint) -> uint:
    # a + b, or the largest uint: a counter never makes a payout revert.
    if a > MAX_UINT - b:
        return MAX_UINT
    return a + b


def min_of(a: uint, b: uint) -> uint:
    if a < b:
        return a
    return b
