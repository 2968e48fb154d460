"""The commerce contracts as genesis places them, used through real blocks."""

from __future__ import annotations

from vm_helpers import ALICE, BOB, TestChain, make_genesis

from chain.system import ESCROW_ADDRESS, REVIEWS_ADDRESS, TOKEN_ADDRESS
from vm.compiler.abi import encode_value
from vm.contracts import genesis_contracts
from vm.interpreter import Status

HOUR = 3_600_000
NOBODY = bytes(20)


def u(n: int) -> bytes:
    return encode_value("uint", n)


def test_an_order_and_its_review_through_blocks_with_genesis_contracts() -> None:
    """Genesis writes the storage the constructors would have written: the escrow
    knows its token, the token lets escrow and reviews mint, reviews know both."""
    chain = TestChain(genesis=make_genesis(contracts=genesis_contracts(
        review_reward=7, token_balances={BOB.address: 3_000})))
    buyer, merchant = ALICE, BOB
    place = chain.call(buyer, ESCROW_ADDRESS, "place_order",
                       [merchant.address, NOBODY, u(0), NOBODY, u(HOUR), u(HOUR), u(HOUR),
                        u(HOUR)], value=10_000)
    (receipt,) = chain.run([place])
    assert receipt.status == Status.OK, receipt.reason
    order_id = int.from_bytes(receipt.return_data, "big")
    receipts = chain.run([chain.call(merchant, ESCROW_ADDRESS, "ship", [u(order_id)])])
    assert receipts[0].status == Status.OK, receipts[0].reason
    before = chain.balance(merchant.address)
    receipts = chain.run([chain.call(buyer, ESCROW_ADDRESS, "confirm",
                                     [u(order_id), encode_value("bool", True)])])
    assert receipts[0].status == Status.OK, receipts[0].reason
    fee = receipts[0].gas_used  # gas price 1
    assert chain.balance(merchant.address) == before + 10_000  # released to the merchant
    assert fee > 0
    receipts = chain.run([chain.call(buyer, REVIEWS_ADDRESS, "post_review",
                                     [u(order_id), u(5), b"great"])])
    assert receipts[0].status == Status.OK, receipts[0].reason
    status, data, _ = chain.executor.call_view(buyer.address, TOKEN_ADDRESS, "balance_of",
                                               [buyer.address])
    # the buyer reward (1% of 10,000) on completion, and the review reward
    assert (status, int.from_bytes(data, "big")) == (Status.OK, 100 + 7)
    # tokens genesis gave the merchant, and the supply that counts them
    for method, args, expected in (("balance_of", [merchant.address], 3_000),
                                   ("total_supply", [], 3_000 + 107)):
        status, data, _ = chain.executor.call_view(buyer.address, TOKEN_ADDRESS, method, args)
        assert (status, int.from_bytes(data, "big")) == (Status.OK, expected)
