"""Records stored field by field, and calls into other contracts through interfaces."""

from __future__ import annotations

import pytest

from vm.compiler import CompileError, compile_source
from vm.testing import Env, Reverted

SHOP = '''
class Order(Record):
    buyer: Address
    amount: uint
    shipped: bool

orders: Map[uint, Order]
count: uint

@public
@payable
def place() -> uint:
    self.count += 1
    self.orders[self.count] = Order(msg.sender, msg.value, False)
    return self.count

@public
def ship(order_id: uint):
    assert self.orders[order_id].amount > 0, "no such order"
    self.orders[order_id].shipped = True

@view
def order_buyer(order_id: uint) -> Address:
    assert self.orders[order_id].amount > 0, "no such order"
    return self.orders[order_id].buyer

@view
def order_amount(order_id: uint) -> uint:
    return self.orders[order_id].amount

@view
def is_shipped(order_id: uint) -> bool:
    return self.orders[order_id].shipped
'''

REVIEWS = '''
class Shop(Interface):
    @view
    def order_buyer(order_id: uint) -> Address: ...
    def ship(order_id: uint): ...

shop: Address
reviewed: Map[uint, bool]

def __init__(shop: Address):
    self.shop = shop

@public
def review(order_id: uint):
    assert Shop(self.shop).order_buyer(order_id) == msg.sender, "only the buyer reviews"
    assert not self.reviewed[order_id], "already reviewed"
    self.reviewed[order_id] = True

@public
def ship_for(order_id: uint):
    Shop(self.shop).ship(order_id)

@view
def buyer_of(order_id: uint) -> Address:
    return Shop(self.shop).order_buyer(order_id)
'''
ALICE, BOB = b"\x01" * 20, b"\x02" * 20


def test_records_are_written_whole_or_by_field_and_read_by_field() -> None:
    env = Env()
    shop = env.loads(SHOP)
    assert shop.place(sender=ALICE, value=500) == 1
    assert shop.place(sender=BOB, value=7) == 2
    assert (shop.order_buyer(1), shop.order_amount(1), shop.is_shipped(1)) == (ALICE, 500, False)
    assert (shop.order_buyer(2), shop.order_amount(2)) == (BOB, 7)
    shop.ship(2)
    assert (shop.is_shipped(1), shop.is_shipped(2)) == (False, True)
    assert shop.order_amount(3) == 0  # a missing record reads as zero values
    with pytest.raises(Reverted, match="no such order"):
        shop.ship(3)


def test_interface_calls_return_decoded_values_and_pass_on_reverts() -> None:
    env = Env()
    shop = env.loads(SHOP)
    reviews = env.loads(REVIEWS, shop.address)
    shop.place(sender=ALICE, value=100)
    assert reviews.buyer_of(1) == ALICE
    with pytest.raises(Reverted, match="only the buyer reviews"):
        reviews.review(1, sender=BOB)
    reviews.review(1, sender=ALICE)
    with pytest.raises(Reverted, match="already reviewed"):
        reviews.review(1, sender=ALICE)
    with pytest.raises(Reverted, match="no such order"):  # the callee's reason comes through
        reviews.review(9, sender=ALICE)
    reviews.ship_for(1)  # a state-changing call through the interface
    assert shop.is_shipped(1)


def test_a_view_may_not_call_a_state_changing_interface_method() -> None:
    source = REVIEWS + "\n@view\ndef sneaky(order_id: uint) -> bool:\n" \
        "    Shop(self.shop).ship(order_id)\n    return True\n"
    with pytest.raises(CompileError, match="changes state"):
        compile_source(source, "reviews.agc")


@pytest.mark.parametrize("snippet, fragment", [
    ("x: uint = self.orders[1]", "fields one at a time"),
    ("self.orders[1] = 5", "Order(...)"),
    ("self.orders[1] = Order(msg.sender, 1)", "takes 3 fields"),
    ("self.orders[1].colour = 1", "no field colour"),
])
def test_misused_records_are_compile_errors(snippet: str, fragment: str) -> None:
    source = SHOP + f"\n@public\ndef bad():\n    {snippet}\n"
    with pytest.raises(CompileError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        compile_source(source, "shop.agc")
