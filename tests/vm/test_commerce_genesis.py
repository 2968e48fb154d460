"""The commerce contracts as genesis places them, used through real blocks.

Genesis storage is what the real constructors (and, for a demo chain, the real calls
that register an arbiter and publish listings) write: these tests run a listing, an
order, its shipping, confirmation and review as transactions, with every fee paid, and
check the books of the token (backed by genesis coin) and the escrow.
"""

from __future__ import annotations

import hashlib
import json

from vm_helpers import ALICE, BOB, CAROL, RICH, TestChain, key, make_genesis

from chain.address import address_from_text
from chain.block import Receipt
from chain.genesis import Genesis
from chain.keys import PrivateKey
from chain.system import (
    CATALOG_ADDRESS,
    COMMERCE_CONTRACTS,
    ESCROW_ADDRESS,
    REVIEWS_ADDRESS,
    SYSTEM_CONTRACTS,
    TOKEN_ADDRESS,
)
from chain.tx import Call, Transaction
from node.home import init_home
from node.localnet import init as localnet_init
from vm.contracts import Demo, decode_result, encode_call, genesis_contracts
from vm.executor import decode_args
from vm.interpreter import Status

DAY = 86_400_000
NOBODY = bytes(20)
NAMES = {TOKEN_ADDRESS: "token", CATALOG_ADDRESS: "catalog", ESCROW_ADDRESS: "escrow",
         REVIEWS_ADDRESS: "reviews"}


DAVE = key("dave")


def send(chain: TestChain, who: PrivateKey, address: bytes, method: str, *args: object,
         value: int = 0) -> Transaction:
    """A signed call of a commerce method, its arguments encoded by the ABI."""
    action = Call(address, method, encode_call(NAMES[address], method, *args), value)
    return chain.tx(who, action, gas_limit=2_000_000)


def view(chain: TestChain, address: bytes, method: str, *args: object) -> object:
    """A read of the committed state, decoded by the ABI."""
    call_args = decode_args(encode_call(NAMES[address], method, *args))
    status, data, reason = chain.executor.call_view(bytes(20), address, method, call_args)
    assert status == Status.OK, reason
    return decode_result(NAMES[address], method, data)


def ok(receipts: list[Receipt]) -> list[Receipt]:
    for r in receipts:
        assert r.status == Status.OK, r.reason
    return receipts


def test_list_order_ship_confirm_review_through_blocks_with_every_fee_paid() -> None:
    merchant, buyer, arbiter, referrer = ALICE, BOB, CAROL, DAVE
    funded = {k.address: RICH for k in (merchant, buyer, arbiter)}
    chain = TestChain(genesis=make_genesis(funded, contracts=genesis_contracts(
        token_balances={buyer.address: 3_000, referrer.address: 7})))
    # the genesis tokens are backed by as much genesis coin, held by the token
    assert view(chain, TOKEN_ADDRESS, "total_supply") == 3_007
    assert view(chain, TOKEN_ADDRESS, "reserve") == chain.balance(TOKEN_ADDRESS) == 3_007
    assert view(chain, TOKEN_ADDRESS, "balance_of", buyer.address) == 3_000

    ok(chain.run([send(chain, arbiter, CATALOG_ADDRESS, "register_arbiter", "Carol", 100,
                       3 * DAY)]))
    (listed,) = ok(chain.run([send(
        chain, merchant, CATALOG_ADDRESS, "create_listing", "Tea", hashlib.sha256(b"t").digest(),
        10_000, 9_000, 5, DAY, DAY, 7 * DAY, DAY, arbiter.address, NOBODY, NOBODY, False,
        5_000)]))
    lid = decode_result("catalog", "create_listing", listed.return_data)
    ok(chain.run([send(chain, merchant, CATALOG_ADDRESS, "set_commissions", lid, 100, 200, 300)]))
    version = view(chain, CATALOG_ADDRESS, "listing", lid)["version"]

    before = {k.address: chain.balance(k.address) for k in (merchant, buyer)}
    (placed,) = ok(chain.run([send(chain, buyer, ESCROW_ADDRESS, "place_order", lid, version,
                                   2, arbiter.address, referrer.address, value=20_000)]))
    oid = decode_result("escrow", "place_order", placed.return_data)
    assert [e.name for e in placed.events] == ["OrderPlaced"]
    assert view(chain, CATALOG_ADDRESS, "listing", lid)["stock"] == 3
    (shipped,) = ok(chain.run([send(chain, merchant, ESCROW_ADDRESS, "ship", oid, "TRK-42")]))
    (confirmed,) = ok(chain.run([send(chain, buyer, ESCROW_ADDRESS, "confirm", oid, True)]))
    (reviewed,) = ok(chain.run([send(chain, buyer, REVIEWS_ADDRESS, "post_review", oid, 5,
                                     "lovely tea")]))
    fees = {merchant.address: shipped.gas_used,  # gas price 1
            buyer.address: placed.gas_used + confirmed.gas_used + reviewed.gas_used}
    # 20,000 paid: referral 1% and cashback 2% and the bounty 3% in tokens, 94% in coin
    assert chain.balance(merchant.address) == before[merchant.address] + 18_800 \
        - fees[merchant.address]
    assert chain.balance(buyer.address) == before[buyer.address] - 20_000 - fees[buyer.address]
    assert view(chain, TOKEN_ADDRESS, "balance_of", buyer.address) == 3_000 + 400 + 600
    assert view(chain, TOKEN_ADDRESS, "balance_of", referrer.address) == 7 + 200
    assert view(chain, TOKEN_ADDRESS, "total_supply") == chain.balance(TOKEN_ADDRESS) == 4_207
    assert view(chain, ESCROW_ADDRESS, "counts")["locked_coin"] == chain.balance(
        ESCROW_ADDRESS) == 0
    order = view(chain, ESCROW_ADDRESS, "order", oid)
    assert (order["state"], order["tracking"], order["paid"]) == (4, "TRK-42", 20_000)
    assert view(chain, REVIEWS_ADDRESS, "review", oid)["text"] == "lovely tea"
    assert view(chain, REVIEWS_ADDRESS, "merchant_reviews", merchant.address) == {
        "reviews": 1, "rating_sum": 5, "reviewers": 1}
    assert view(chain, ESCROW_ADDRESS, "merchant_record", merchant.address)["completed"] == 1


def test_genesis_is_what_the_constructors_write_and_changes_with_the_token_balances() -> None:
    a = genesis_contracts()
    assert [address_from_text(e["address"]) for e in a] == list(COMMERCE_CONTRACTS.values())
    assert genesis_contracts() == a  # deterministic
    b = genesis_contracts(token_balances={ALICE.address: 5})
    assert a != b
    assert next(e for e in b if address_from_text(e["address"]) == TOKEN_ADDRESS)["balance"] \
        == "5"
    g = Genesis.from_dict(json.loads(json.dumps({
        "chain_id": "t", "genesis_time": "2026-01-01T00:00:00Z",
        "validators": [{"public_key": ALICE.public_key.hex(), "power": 1}],
        "contracts": b})))
    assert {c.address for c in g.contracts} == set(COMMERCE_CONTRACTS.values())


def test_a_demo_genesis_has_a_registered_arbiter_and_two_listings_one_a_group_deal() -> None:
    merchant, arbiter = ALICE, CAROL
    chain = TestChain(genesis=make_genesis(contracts=genesis_contracts(
        demo=Demo(merchant.address, arbiter.address))))
    assert view(chain, CATALOG_ADDRESS, "arbiter", arbiter.address)["active"] is True
    mug = view(chain, CATALOG_ADDRESS, "listing", 1)
    tea = view(chain, CATALOG_ADDRESS, "listing", 2)
    assert mug["merchant"] == tea["merchant"] == merchant.address
    assert mug["group_size"] == 0 and mug["return_window"] >= 7 * DAY
    assert tea["group_size"] == 3 and tea["group_price"] < tea["price"]
    assert mug["arbiter_1"] == tea["arbiter_1"] == arbiter.address
    assert view(chain, CATALOG_ADDRESS, "listing", 3)["merchant"] == NOBODY


def test_agora_init_puts_the_commerce_contracts_in_a_validators_genesis(tmp_path) -> None:
    init_home(tmp_path / "v", chain_id="solo", validator=True)
    genesis = Genesis.load(tmp_path / "v" / "genesis.json")
    assert {c.address for c in genesis.contracts} == set(SYSTEM_CONTRACTS.values())


def test_the_localnet_genesis_has_the_demo_accounts_listings_and_contract_addresses(
        tmp_path) -> None:
    infos = localnet_init(tmp_path / "net", validators=1, base_port=30_000)
    manifest = json.loads((tmp_path / "net" / "localnet.json").read_text())
    assert {n: address_from_text(a) for n, a in manifest["contracts"].items()} == \
        SYSTEM_CONTRACTS
    accounts = {a["name"]: address_from_text(a["address"]) for a in manifest["accounts"]}
    assert set(accounts) == {"buyer", "merchant", "arbiter", "referrer"}
    genesis = Genesis.load(infos[0].home / "genesis.json")
    chain = TestChain(genesis=genesis)
    mug = view(chain, CATALOG_ADDRESS, "listing", 1)
    assert mug["merchant"] == accounts["merchant"]
    assert view(chain, CATALOG_ADDRESS, "arbiter", accounts["arbiter"])["ruling_window"] > 0
    assert view(chain, TOKEN_ADDRESS, "balance_of", accounts["buyer"]) > 0
    assert view(chain, TOKEN_ADDRESS, "total_supply") == chain.balance(TOKEN_ADDRESS)
