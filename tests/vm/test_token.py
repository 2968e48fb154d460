"""The reward token (vm/contracts/token.agc), through the contract test harness."""

from __future__ import annotations

from pathlib import Path

import pytest

from vm.testing import Env, Reverted

TOKEN = Path(__file__).resolve().parents[2] / "vm" / "contracts" / "token.agc"
ESCROW, REVIEWS, HOLDER = b"\xe5" * 20, b"\x7e" * 20, b"\x90" * 20
ALICE, BOB, CAROL = b"\x01" * 20, b"\x02" * 20, b"\x03" * 20
NOBODY = bytes(20)

RECEIVER = '''
got_from: Address
got: uint
accept: bool

def __init__(accept: bool):
    self.accept = accept

@public
def on_token_received(sender: Address, amount: uint, data: bytes) -> bool:
    self.got_from = sender
    self.got += amount
    return self.accept

@view
def received() -> uint:
    return self.got
'''


@pytest.fixture
def env() -> Env:
    return Env()


@pytest.fixture
def token(env: Env):
    t = env.load_contract(TOKEN, ESCROW, REVIEWS, HOLDER, 1_000)
    t.transfer(ALICE, 600, sender=HOLDER)
    return t


def test_metadata_and_initial_supply(env: Env) -> None:
    t = env.load_contract(TOKEN, ESCROW, REVIEWS, HOLDER, 1_000)
    assert (t.name(), t.symbol(), t.decimals()) == ("Agora Reward", "AGR", 18)
    assert (t.total_supply(), t.balance_of(HOLDER)) == (1_000, 1_000)
    assert (t.is_minter(ESCROW), t.is_minter(REVIEWS), t.is_minter(HOLDER)) == (True, True,
                                                                                False)


def test_transfer_moves_tokens_and_over_balance_fails(token) -> None:
    assert token.transfer(BOB, 250, sender=ALICE) is True
    assert token.last_events == [("Transfer", {"sender": ALICE, "receiver": BOB, "amount": 250})]
    assert (token.balance_of(ALICE), token.balance_of(BOB)) == (350, 250)
    with pytest.raises(Reverted, match="insufficient balance"):
        token.transfer(CAROL, 251, sender=BOB)
    assert (token.balance_of(BOB), token.balance_of(CAROL)) == (250, 0)
    assert token.total_supply() == 1_000  # transfers never create or destroy


def test_approve_and_transfer_from_spend_the_allowance(token) -> None:
    token.approve(BOB, 300, sender=ALICE)
    assert token.last_events == [("Approval", {"owner": ALICE, "spender": BOB, "amount": 300})]
    assert token.allowance(ALICE, BOB) == 300
    token.transfer_from(ALICE, CAROL, 120, sender=BOB)
    assert token.allowance(ALICE, BOB) == 180  # the allowance decreases
    assert (token.balance_of(ALICE), token.balance_of(CAROL)) == (480, 120)
    with pytest.raises(Reverted, match="allowance exceeded"):
        token.transfer_from(ALICE, CAROL, 181, sender=BOB)
    with pytest.raises(Reverted, match="allowance exceeded"):
        token.transfer_from(ALICE, CAROL, 1, sender=CAROL)  # no allowance at all
    token.approve(BOB, 10_000, sender=ALICE)
    with pytest.raises(Reverted, match="insufficient balance"):  # over the owner's balance
        token.transfer_from(ALICE, CAROL, 481, sender=BOB)
    assert token.allowance(ALICE, BOB) == 10_000  # a failed transfer spends nothing


def test_only_escrow_and_reviews_mint(token) -> None:
    for outsider in (ALICE, HOLDER, token.address):
        with pytest.raises(Reverted, match="only the escrow and reviews contracts mint"):
            token.mint(outsider, 5, sender=outsider)
    token.mint(BOB, 40, sender=ESCROW)
    token.mint(BOB, 2, sender=REVIEWS)
    assert token.last_events == [("Transfer", {"sender": NOBODY, "receiver": BOB, "amount": 2})]
    assert (token.balance_of(BOB), token.total_supply()) == (42, 1_042)


def test_transfer_and_call_tells_the_receiver_in_the_same_call(env: Env, token) -> None:
    shop = env.loads(RECEIVER, True)
    token.transfer_and_call(shop.address, 70, b"order 7", sender=ALICE)
    assert shop.received() == 70
    assert token.balance_of(shop.address) == 70
    refusing = env.loads(RECEIVER, False)
    with pytest.raises(Reverted, match="refused the tokens"):
        token.transfer_and_call(refusing.address, 5, b"", sender=ALICE)
    assert token.balance_of(refusing.address) == 0  # refused: the transfer is undone
    with pytest.raises(Reverted):  # not a contract at all
        token.transfer_and_call(CAROL, 5, b"", sender=ALICE)
    assert token.balance_of(ALICE) == 530
