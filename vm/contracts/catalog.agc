"""The catalog: merchants' listings with the terms they publish, and the arbiters.

A listing is what an order agrees to. Its merchant publishes, and may edit at any time:

* a short title and the SHA-256 of its full description (kept off chain);
* a price in coin and, optionally, in reward tokens; and its stock;
* windows, each within the limits fixed at deploy: ship (the merchant ships by then),
  confirm (the buyer confirms delivery by then), return (the no-reason return window
  after delivery: at least 7 days, or 0 for FINAL SALE, shown plainly) and answer (the
  time each side has to answer the other during a return);
* the arbiters it accepts (up to three registered ones), or that it takes orders
  without one (then a contested return is final: there is no one to rule), and the
  share of a dispute a silent arbiter's default gives the buyer;
* its commission rates, paid out of its own proceeds: referral (to the buyer's
  referrer), cashback (to the buyer) and review bounty (to the buyer who reviews);
* optionally a group deal: a group price for a group of at least N buyers that fills
  within a window.

Every edit of anything an order agrees to (price and terms, not stock or pausing)
raises the listing's ``version``. A buyer orders the version it read, so an edit made
in between makes the order revert instead of binding the buyer to terms it never saw
(property 5). An order copies the terms when it is placed: a later edit never touches
it. The escrow takes terms and stock through ``take``, and gives stock back through
``put_back`` when an order is declined, cancelled or its group fails; nobody else can.

Arbiters register once, with their fee (a share of the order, at most the deploy
limit) and the time they take to rule; they may retire (no new orders name them) and
return. Their record of cases and rulings is kept by the escrow, where the cases are.
"""

BPS: constant(uint) = 10000
MIN_WINDOW: constant(uint) = 60000                # one minute: none so short it cannot be used
MAX_WINDOW_LIMIT: constant(uint) = 31536000000    # 365 days: the bound on the deploy limit
MIN_RETURN_WINDOW: constant(uint) = 604800000     # 7 days of no-reason returns
MAX_FEE_LIMIT: constant(uint) = 5000              # an arbiter takes at most half
MAX_COMMISSION_LIMIT: constant(uint) = 5000       # commissions take at most half
MAX_GROUP_LIMIT: constant(uint) = 100000
MAX_TITLE: constant(uint) = 120                   # bytes of UTF-8
MAX_NAME: constant(uint) = 64
NOBODY: constant(Address) = "agora1qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqry2cu5"
MAX_UINT: constant(uint) = 2**256 - 1


class Listing(Record):
    merchant: Address
    version: uint            # raised by every edit of what an order agrees to
    title: str
    description: bytes       # SHA-256 of the full description, kept off chain
    price: uint              # coin per unit; 0: not sold for coin
    token_price: uint        # reward tokens per unit; 0: not sold for tokens
    stock: uint
    paused: bool
    ship_window: uint
    confirm_window: uint
    return_window: uint      # 0: final sale
    answer_window: uint
    arbiter_1: Address
    arbiter_2: Address
    arbiter_3: Address
    no_arbiter_ok: bool      # orders may name no arbiter (contested returns are final)
    default_refund_bps: uint # what a silent arbiter's dispute gives the buyer
    referral_bps: uint
    cashback_bps: uint
    bounty_bps: uint
    group_price: uint        # coin per unit in a group; 0: no group deal
    group_size: uint         # members a group needs
    group_window: uint       # a group fills within this, or fails
    created_at: uint


class Arbiter(Record):
    name: str
    fee_bps: uint            # of what the order holds when it rules
    ruling_window: uint      # it rules within this of a dispute opening
    active: bool
    registered_at: uint      # block time; an arbiter is registered when ruling_window > 0


class Terms(Record):
    """What an order copies from its listing (and its arbiter) when it is placed."""
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


class Limits(Record):
    """The limits fixed at deploy (and the fixed ones), for wallets to check against."""
    min_window: uint
    max_window: uint
    min_return_window: uint
    max_fee_bps: uint
    max_commission_bps: uint
    max_group_size: uint
    max_title_bytes: uint


class ListingCreated(Event):
    listing_id: uint
    merchant: Address
    title: str
    price: uint
    token_price: uint
    stock: uint


class ListingChanged(Event):
    listing_id: uint
    merchant: Address
    version: uint
    what: str                # "price", "stock", "terms", "commissions", "group deal",
                             # "paused", "resumed"


class ArbiterRegistered(Event):
    arbiter: Address
    name: str
    fee_bps: uint
    ruling_window: uint


class ArbiterChanged(Event):
    arbiter: Address
    active: bool


listings: Map[uint, Listing]
listing_count: uint
arbiters: Map[Address, Arbiter]
escrow: Address
max_window: uint
max_fee_bps: uint
max_commission_bps: uint
max_group_size: uint


def __init__(escrow: Address, max_window: uint, max_fee_bps: uint, max_commission_bps: uint,
             max_group_size: uint):
    assert max_window >= MIN_RETURN_WINDOW and max_window <= MAX_WINDOW_LIMIT, \
        "max_window must be 7 to 365 days"
    assert max_fee_bps <= MAX_FEE_LIMIT, "max_fee_bps over 50%"
    assert max_commission_bps <= MAX_COMMISSION_LIMIT, "max_commission_bps over 50%"
    assert max_group_size >= 2 and max_group_size <= MAX_GROUP_LIMIT, \
        "max_group_size must be 2 to 100,000"
    self.escrow = escrow
    self.max_window = max_window
    self.max_fee_bps = max_fee_bps
    self.max_commission_bps = max_commission_bps
    self.max_group_size = max_group_size


# ---------------------------------------------------------------- arbiters

@public
def register_arbiter(name: str, fee_bps: uint, ruling_window: uint):
    # Once per address, with a fee and a ruling time that never change afterwards.
    assert self.arbiters[msg.sender].ruling_window == 0, "already registered"
    assert len(name.encode()) > 0 and len(name.encode()) <= MAX_NAME, "a name of 1 to 64 bytes"
    assert fee_bps <= self.max_fee_bps, "fee over the limit"
    self.check_window(ruling_window)
    self.arbiters[msg.sender] = Arbiter(name, fee_bps, ruling_window, True, block.time)
    emit(ArbiterRegistered(msg.sender, name, fee_bps, ruling_window))


@public
def set_arbiter_active(active: bool):
    # Retire (no new order may name this arbiter) or come back. Orders that name it
    # already keep it.
    assert self.arbiters[msg.sender].ruling_window > 0, "not a registered arbiter"
    self.arbiters[msg.sender].active = active
    emit(ArbiterChanged(msg.sender, active))


# ---------------------------------------------------------------- listings

@public
def create_listing(title: str, description: bytes, price: uint, token_price: uint,
                   stock: uint, ship_window: uint, confirm_window: uint, return_window: uint,
                   answer_window: uint, arbiter_1: Address, arbiter_2: Address,
                   arbiter_3: Address, no_arbiter_ok: bool, default_refund_bps: uint) -> uint:
    # Commissions start at zero and there is no group deal: set_commissions and
    # set_group_deal add them.
    assert len(title.encode()) > 0 and len(title.encode()) <= MAX_TITLE, \
        "a title of 1 to 120 bytes"
    assert len(description) == 32, "description is the SHA-256 of the full text"
    self.check_prices(price, token_price)
    self.check_terms(msg.sender, ship_window, confirm_window, return_window, answer_window,
                     arbiter_1, arbiter_2, arbiter_3, no_arbiter_ok, default_refund_bps)
    self.listing_count += 1
    listing_id: uint = self.listing_count
    self.listings[listing_id] = Listing(
        merchant=msg.sender, version=1, title=title, description=description, price=price,
        token_price=token_price, stock=stock, paused=False, ship_window=ship_window,
        confirm_window=confirm_window, return_window=return_window,
        answer_window=answer_window, arbiter_1=arbiter_1, arbiter_2=arbiter_2,
        arbiter_3=arbiter_3, no_arbiter_ok=no_arbiter_ok,
        default_refund_bps=default_refund_bps, referral_bps=0, cashback_bps=0, bounty_bps=0,
        group_price=0, group_size=0, group_window=0, created_at=block.time)
    emit(ListingCreated(listing_id, msg.sender, title, price, token_price, stock))
    return listing_id


@public
def set_price(listing_id: uint, price: uint, token_price: uint):
    self.only_merchant(listing_id)
    self.check_prices(price, token_price)
    self.listings[listing_id].price = price
    self.listings[listing_id].token_price = token_price
    self.changed(listing_id, "price")


@public
def set_stock(listing_id: uint, stock: uint):
    # Not part of the terms: the version stays (every order moves the stock).
    self.only_merchant(listing_id)
    self.listings[listing_id].stock = stock
    emit(ListingChanged(listing_id, msg.sender, self.listings[listing_id].version, "stock"))


@public
def set_terms(listing_id: uint, ship_window: uint, confirm_window: uint,
              return_window: uint, answer_window: uint, arbiter_1: Address,
              arbiter_2: Address, arbiter_3: Address, no_arbiter_ok: bool,
              default_refund_bps: uint):
    self.only_merchant(listing_id)
    self.check_terms(msg.sender, ship_window, confirm_window, return_window, answer_window,
                     arbiter_1, arbiter_2, arbiter_3, no_arbiter_ok, default_refund_bps)
    self.listings[listing_id].ship_window = ship_window
    self.listings[listing_id].confirm_window = confirm_window
    self.listings[listing_id].return_window = return_window
    self.listings[listing_id].answer_window = answer_window
    self.listings[listing_id].arbiter_1 = arbiter_1
    self.listings[listing_id].arbiter_2 = arbiter_2
    self.listings[listing_id].arbiter_3 = arbiter_3
    self.listings[listing_id].no_arbiter_ok = no_arbiter_ok
    self.listings[listing_id].default_refund_bps = default_refund_bps
    self.changed(listing_id, "terms")


@public
def set_commissions(listing_id: uint, referral_bps: uint, cashback_bps: uint,
                    bounty_bps: uint):
    # Paid by the merchant out of what it keeps of each order: together at most the
    # deploy limit, so the merchant always keeps something of a sale.
    self.only_merchant(listing_id)
    assert referral_bps + cashback_bps + bounty_bps <= self.max_commission_bps, \
        "commissions over the limit"
    self.listings[listing_id].referral_bps = referral_bps
    self.listings[listing_id].cashback_bps = cashback_bps
    self.listings[listing_id].bounty_bps = bounty_bps
    self.changed(listing_id, "commissions")


@public
def set_group_deal(listing_id: uint, group_price: uint, group_size: uint,
                   group_window: uint):
    # group_price 0 ends the deal for new groups; groups already open keep theirs.
    self.only_merchant(listing_id)
    if group_price == 0:
        assert group_size == 0 and group_window == 0, "no deal: size and window are 0 too"
    else:
        assert group_size >= 2 and group_size <= self.max_group_size, "group size out of limits"
        self.check_window(group_window)
    self.listings[listing_id].group_price = group_price
    self.listings[listing_id].group_size = group_size
    self.listings[listing_id].group_window = group_window
    self.changed(listing_id, "group deal")


@public
def pause(listing_id: uint):
    self.only_merchant(listing_id)
    self.listings[listing_id].paused = True
    emit(ListingChanged(listing_id, msg.sender, self.listings[listing_id].version, "paused"))


@public
def resume(listing_id: uint):
    self.only_merchant(listing_id)
    self.listings[listing_id].paused = False
    emit(ListingChanged(listing_id, msg.sender, self.listings[listing_id].version, "resumed"))


# ---------------------------------------------------------------- the escrow's side

@public
def take(listing_id: uint, version: uint, quantity: uint, arbiter: Address) -> Terms:
    # An order is placed: check the buyer's choices against the listing, take the
    # stock, and hand back the terms the order copies (the escrow picks the price: coin,
    # tokens or the group's).
    assert msg.sender == self.escrow, "only the escrow takes stock"
    assert self.listings[listing_id].merchant != NOBODY, "no such listing"
    assert not self.listings[listing_id].paused, "the listing is paused"
    assert version == self.listings[listing_id].version, \
        "the listing changed since you read it: read it again and order the new version"
    assert quantity > 0, "order at least one"
    assert self.listings[listing_id].stock >= quantity, "not enough stock"
    fee: uint = 0
    ruling_window: uint = 0
    if arbiter == NOBODY:
        assert self.listings[listing_id].no_arbiter_ok, "this listing needs an arbiter"
    else:
        assert arbiter == self.listings[listing_id].arbiter_1 \
            or arbiter == self.listings[listing_id].arbiter_2 \
            or arbiter == self.listings[listing_id].arbiter_3, \
            "the listing does not accept this arbiter"
        assert self.arbiters[arbiter].active, "the arbiter has retired"
        fee = self.arbiters[arbiter].fee_bps
        ruling_window = self.arbiters[arbiter].ruling_window
    self.listings[listing_id].stock -= quantity
    return Terms(
        merchant=self.listings[listing_id].merchant,
        price=self.listings[listing_id].price,
        token_price=self.listings[listing_id].token_price,
        ship_window=self.listings[listing_id].ship_window,
        confirm_window=self.listings[listing_id].confirm_window,
        return_window=self.listings[listing_id].return_window,
        answer_window=self.listings[listing_id].answer_window,
        arbiter_fee_bps=fee,
        ruling_window=ruling_window,
        default_refund_bps=self.listings[listing_id].default_refund_bps,
        referral_bps=self.listings[listing_id].referral_bps,
        cashback_bps=self.listings[listing_id].cashback_bps,
        bounty_bps=self.listings[listing_id].bounty_bps,
        group_price=self.listings[listing_id].group_price,
        group_size=self.listings[listing_id].group_size,
        group_window=self.listings[listing_id].group_window)


@public
def put_back(listing_id: uint, quantity: uint):
    # An order that never went out gives its stock back. It saturates rather than
    # overflow: a refund must never revert here (property 3).
    assert msg.sender == self.escrow, "only the escrow puts stock back"
    stock: uint = self.listings[listing_id].stock
    if stock > MAX_UINT - quantity:
        self.listings[listing_id].stock = MAX_UINT
    else:
        self.listings[listing_id].stock = stock + quantity


# ---------------------------------------------------------------- reading

@view
def listing(listing_id: uint) -> Listing:
    return self.listings[listing_id]


@view
def arbiter(account: Address) -> Arbiter:
    return self.arbiters[account]


@view
def limits() -> Limits:
    return Limits(MIN_WINDOW, self.max_window, MIN_RETURN_WINDOW, self.max_fee_bps,
                  self.max_commission_bps, self.max_group_size, MAX_TITLE)


# ---------------------------------------------------------------- helpers

def only_merchant(listing_id: uint):
    assert self.listings[listing_id].merchant == msg.sender, "only the listing's merchant"


def changed(listing_id: uint, what: str):
    self.listings[listing_id].version += 1
    emit(ListingChanged(listing_id, msg.sender, self.listings[listing_id].version, what))


def check_window(window: uint):
    assert window >= MIN_WINDOW and window <= self.max_window, "window out of limits"


def check_prices(price: uint, token_price: uint):
    assert price > 0 or token_price > 0, "a listing has a price in coin or in tokens"


def check_terms(merchant: Address, ship_window: uint, confirm_window: uint,
                return_window: uint, answer_window: uint, arbiter_1: Address,
                arbiter_2: Address, arbiter_3: Address, no_arbiter_ok: bool,
                default_refund_bps: uint):
    self.check_window(ship_window)
    self.check_window(confirm_window)
    self.check_window(answer_window)
    if return_window != 0:  # 0 is final sale; otherwise the 7-day no-reason return at least
        assert return_window >= MIN_RETURN_WINDOW and return_window <= self.max_window, \
            "the return window is 0 (final sale) or 7 days to the limit"
    self.check_arbiter(merchant, arbiter_1)
    self.check_arbiter(merchant, arbiter_2)
    self.check_arbiter(merchant, arbiter_3)
    assert arbiter_1 == NOBODY or (arbiter_1 != arbiter_2 and arbiter_1 != arbiter_3), \
        "an arbiter is named twice"
    assert arbiter_2 == NOBODY or arbiter_2 != arbiter_3, "an arbiter is named twice"
    if arbiter_1 == NOBODY and arbiter_2 == NOBODY and arbiter_3 == NOBODY:
        assert no_arbiter_ok, "name an arbiter, or say orders go without one"
    assert default_refund_bps <= BPS, "default refund over 100%"


def check_arbiter(merchant: Address, arbiter: Address):
    if arbiter != NOBODY:
        assert arbiter != merchant, "the arbiter is a third party"
        assert self.arbiters[arbiter].ruling_window > 0, "not a registered arbiter"
        assert self.arbiters[arbiter].active, "the arbiter has retired"
