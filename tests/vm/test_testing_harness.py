"""The contract test harness (vm.testing): deploy from source, call by ABI, see reverts."""

from __future__ import annotations

import pytest

from vm.interpreter import Status
from vm.testing import Env, Reverted

TOKEN = '''
SUPPLY: constant(uint) = 10**6
balances: Map[Address, uint]
opened: uint

class Transfer(Event):
    sender: Address
    receiver: Address
    amount: uint

def __init__(owner: Address):
    self.balances[owner] = SUPPLY
    self.opened = block.time

@public
def transfer(receiver: Address, amount: uint) -> bool:
    self.balances[msg.sender] -= amount
    self.balances[receiver] += amount
    emit(Transfer(msg.sender, receiver, amount))
    return True

@view
def balance_of(owner: Address) -> uint:
    return self.balances[owner]

@view
def age() -> uint:
    return block.time - self.opened
'''
ALICE, BOB = b"\x01" * 20, b"\x02" * 20


def test_calls_decode_results_and_events_and_raise_reverts() -> None:
    env = Env()
    token = env.loads(TOKEN, ALICE)
    assert token.balance_of(ALICE) == 10**6
    assert token.transfer(BOB, 250, sender=ALICE) is True
    assert token.last_events == [("Transfer", {"sender": ALICE, "receiver": BOB, "amount": 250})]
    assert (token.balance_of(ALICE), token.balance_of(BOB)) == (10**6 - 250, 250)
    with pytest.raises(Reverted, match="uint underflow") as info:
        token.transfer(ALICE, 251, sender=BOB)
    assert info.value.status == Status.REVERTED
    assert token.balance_of(BOB) == 250  # the failed call left nothing behind


def test_block_time_moves_and_arguments_are_checked() -> None:
    env = Env()
    token = env.loads(TOKEN, ALICE)
    env.time_ms += 7 * 24 * 3600 * 1000
    assert token.age() == 7 * 24 * 3600 * 1000
    with pytest.raises(TypeError, match="takes 2 argument"):
        token.transfer(BOB)
    with pytest.raises(ValueError, match="uint"):
        token.transfer(BOB, -1, sender=ALICE)
