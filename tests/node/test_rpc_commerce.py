"""The commerce API of a real node after a real market's worth of blocks: one
single-validator node (module-scoped: the lifecycle runs once), the localnet demo's
listings in genesis, and every step sent as a signed transaction through
broadcast_tx_commit:

* a listing created with commissions, then four orders of it: one shipped, confirmed
  and reviewed (with a reply), one returned (request, accept, ship back, receipt:
  refunded) and reviewed, one disputed (a settlement offered, the arbiter rules for
  the buyer), one declined;
* an order of a genesis listing paid in reward tokens; a token approval;
* a group deal of three on the genesis tea listing, the last two joining in one
  block (the group fills), the leader's order shipped.

Then ``order`` / ``orders`` / ``listing(s)`` / ``group`` / ``merchant`` / ``arbiter`` /
``reviews`` / ``events`` / ``token_balance`` / ``call`` (every view of the four
contracts) are checked against values worked out here from the contracts' rules,
every answer against its OpenRPC result schema, and a WebSocket subscriber to one
order sees exactly its events. Waits are on the node's commits, bounded; no sleeps.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from jsonschema import Draft202012Validator
from rpc_helpers import (
    ARBITER,
    BUYER_1,
    BUYER_2,
    BUYER_3,
    COIN,
    GENESIS_TOKENS,
    MERCHANT,
    MUG,
    MUG_PRICE,
    MUG_VERSION,
    NOBODY,
    REFERRER,
    TEA,
    TEA_GROUP_PRICE,
    TEA_VERSION,
    WAIT,
    Calls,
    CommerceNode,
    commerce_node,
    order_data,
)

from chain.address import address_to_text
from chain.system import ESCROW_ADDRESS, TOKEN_ADDRESS
from node.chainview import ChainView
from node.rpc import openrpc
from node.rpc.client import RPCFailed
from node.rpc.methods import method_table
from node.rpc.protocol import Codes

pytestmark = pytest.mark.asyncio(loop_scope="module")

CHAIN = "agora-commerce-test"
DAY = 86_400_000
PRICE = 10 * COIN  # the board's
FEE = PRICE * 200 // 10_000  # the demo arbiter's 2%


def share(amount: int, bps: int) -> int:
    return amount * bps // 10_000


def text(key: Any) -> str:
    return address_to_text(key.address)


@dataclass
class Market:
    """The node and what the lifecycle left: ids, and the commit answer of each step."""

    net: CommerceNode
    calls: Calls
    board: int = 0
    orders: dict[str, int] = field(default_factory=dict)
    steps: dict[str, dict[str, Any]] = field(default_factory=dict)
    checks: dict[str, Draft202012Validator] = field(default_factory=dict)

    @property
    def client(self) -> Any:
        return self.net.client

    async def step(self, **txs: Any) -> None:
        """Commit the named transactions together (they may share a block)."""
        answers = await self.net.commit_all(list(txs.values()))
        self.steps.update(zip(txs, answers, strict=True))

    def placed(self, step: str) -> int:
        """The order id the OrderPlaced event of ``step`` carries."""
        events = self.steps[step]["receipt"]["events"]
        return int(next(e for e in events if e["name"] == "OrderPlaced")["fields"]["order_id"])

    def check(self, method: str, answer: Any) -> Any:
        """``answer`` must match ``method``'s result schema in rpc.discover."""
        errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message[:200]}"
                  for e in self.checks[method].iter_errors(answer)]
        assert errors == [], f"{method}: the answer does not match its schema"
        return answer


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def market(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Market]:
    async with commerce_node(tmp_path_factory.mktemp("commerce"), CHAIN) as net:
        m = Market(net, Calls(CHAIN))
        document = openrpc.document(method_table())
        for method in document["methods"]:
            root = {**method["result"]["schema"], "components": document["components"]}
            m.checks[method["name"]] = Draft202012Validator(root)
        await lifecycle(m)
        yield m


async def lifecycle(m: Market) -> None:
    c = m.calls
    description = hashlib.sha256(b"A walnut board, oiled, 40 x 25 cm.").digest()
    await m.step(listed=c(MERCHANT, "catalog", "create_listing", "Walnut cutting board",
                          description, PRICE, 0, 10, 3 * DAY, 14 * DAY, 7 * DAY, 2 * DAY,
                          ARBITER.address, NOBODY, NOBODY, False, 5_000))
    m.board = int(m.steps["listed"]["receipt"]["return_value"])
    await m.step(commissions=c(MERCHANT, "catalog", "set_commissions", m.board, 200, 100, 100))
    # Four orders of the board (version 2), one of the mug paid in tokens, an approval.
    await m.step(
        place_1=c(BUYER_1, "escrow", "place_order", m.board, 2, 1, ARBITER.address,
                  REFERRER.address, value=PRICE),
        place_2=c(BUYER_2, "escrow", "place_order", m.board, 2, 1, ARBITER.address, NOBODY,
                  value=PRICE),
        place_3=c(BUYER_3, "escrow", "place_order", m.board, 2, 1, ARBITER.address, NOBODY,
                  value=PRICE),
        place_4=c(BUYER_1, "escrow", "place_order", m.board, 2, 1, ARBITER.address, NOBODY,
                  value=PRICE),
        place_tokens=c(BUYER_1, "token", "transfer_and_call", ESCROW_ADDRESS, MUG_PRICE,
                       order_data(MUG, MUG_VERSION, 1, ARBITER.address, NOBODY)),
        approve=c(BUYER_1, "token", "approve", MERCHANT.address, 5 * COIN))
    o = m.orders
    for name in ("1", "2", "3", "4", "tokens"):
        o[name] = m.placed(f"place_{name}")
    await m.step(ship_1=c(MERCHANT, "escrow", "ship", o["1"], "TRK-1"),
                 ship_2=c(MERCHANT, "escrow", "ship", o["2"], "TRK-2"),
                 ship_3=c(MERCHANT, "escrow", "ship", o["3"], "TRK-3"),
                 decline_4=c(MERCHANT, "escrow", "decline", o["4"]))
    await m.step(confirm_1=c(BUYER_1, "escrow", "confirm", o["1"], True),
                 confirm_2=c(BUYER_2, "escrow", "confirm", o["2"], False),
                 dispute_3=c(BUYER_3, "escrow", "open_dispute", o["3"], value=FEE))
    await m.step(review_1=c(BUYER_1, "reviews", "post_review", o["1"], 5,
                            "Lovely board, quick delivery"),
                 return_2=c(BUYER_2, "escrow", "request_return", o["2"]),
                 offer_3=c(BUYER_3, "escrow", "settle", o["3"], 6 * COIN))
    await m.step(reply_1=c(MERCHANT, "reviews", "reply", o["1"], "Thank you!"),
                 accept_2=c(MERCHANT, "escrow", "accept_return", o["2"]),
                 resolve_3=c(ARBITER, "escrow", "resolve", o["3"], 7 * COIN))
    await m.step(ship_back_2=c(BUYER_2, "escrow", "ship_back", o["2"], "RET-2"))
    await m.step(receipt_2=c(MERCHANT, "escrow", "confirm_receipt", o["2"]))
    await m.step(review_2=c(BUYER_2, "reviews", "post_review", o["2"], 3,
                            "Fine, but I sent it back"))
    # The group deal: the leader starts it; the other two join in one block and fill it.
    await m.step(group_1=c(BUYER_1, "escrow", "start_group", TEA, TEA_VERSION, 1, NOBODY,
                           NOBODY, value=TEA_GROUP_PRICE))
    await m.step(group_2=c(BUYER_2, "escrow", "join_group", 1, TEA_VERSION, 1, NOBODY, NOBODY,
                           value=TEA_GROUP_PRICE),
                 group_3=c(BUYER_3, "escrow", "join_group", 1, TEA_VERSION, 1, NOBODY, NOBODY,
                           value=TEA_GROUP_PRICE))
    for name in ("group_1", "group_2", "group_3"):
        o[name] = m.placed(name)
    await m.step(ship_g=c(MERCHANT, "escrow", "ship", o["group_1"], "G-1"))


# What the contracts' rules give (escrow.agc ``end``, ``resolve``):
# order 1: kept PRICE; referral 2%, cashback 1%, bounty 1% (paid on review), payment.
# order 3: disputed by the buyer, ruled 7 coin to the buyer, who won: the merchant pays
#   the fee back (to_buyer 7 + 0.2), kept 2.8: cashback and bounty 1% each.
KEPT_3 = PRICE - 7 * COIN - FEE
MINTED = share(PRICE, 200) + share(PRICE, 100) + share(PRICE, 100) + share(KEPT_3, 100)


async def rpc_error(call: Any) -> RPCFailed:
    with pytest.raises(RPCFailed) as info:
        await call
    return info.value


def history_of(answer: dict[str, Any]) -> list[tuple[str, str]]:
    """(event, the state it moved to / why money moved / '') of an order's history."""
    out = []
    for e in answer["history"]:
        f = e["fields"]
        detail = {"OrderChanged": f.get("state"), "Payout": f.get("reason"),
                  "GroupChanged": f.get("state")}.get(e["name"], "")
        out.append((e["name"], detail))
    return out


# ---------------------------------------------------------------------- orders


async def test_order_has_its_terms_and_its_history_in_order(market: Market) -> None:
    m, o = market, market.orders
    answer = m.check("order", await m.client.order(o["1"]))
    assert answer["order_id"] == o["1"] and answer["state"] == "completed"
    record = answer["order"]
    assert record["buyer"] == text(BUYER_1) and record["merchant"] == text(MERCHANT)
    assert record["referrer"] == text(REFERRER) and record["arbiter"] == text(ARBITER)
    assert (record["paid"], record["held"], record["bounty"]) == (str(PRICE), "0", "0")
    assert record["tracking"] == "TRK-1" and record["state"] == "4"
    assert answer["terms"] == {
        "listing": str(m.board), "quantity": "1", "buyer": text(BUYER_1),
        "merchant": text(MERCHANT), "arbiter": text(ARBITER), "referrer": text(REFERRER),
        "group": "0", "in_tokens": False, "paid": str(PRICE),
        "ship_window": str(3 * DAY), "confirm_window": str(14 * DAY),
        "return_window": str(7 * DAY), "answer_window": str(2 * DAY),
        "arbiter_fee_bps": "200", "ruling_window": str(3 * DAY), "default_refund_bps": "5000",
        "referral_bps": "200", "cashback_bps": "100", "bounty_bps": "100"}
    assert history_of(answer) == [
        ("OrderPlaced", ""), ("OrderChanged", "2"), ("Payout", "referral"),
        ("Payout", "cashback"), ("Payout", "payment"), ("OrderChanged", "4"),
        ("Payout", "bounty")]
    payouts = {e["fields"]["reason"]: e["fields"] for e in answer["history"]
               if e["name"] == "Payout"}
    assert payouts["referral"]["receiver"] == text(REFERRER)
    assert payouts["referral"]["amount"] == str(share(PRICE, 200))
    assert payouts["payment"]["amount"] == str(PRICE - share(PRICE, 200)
                                               - 2 * share(PRICE, 100))
    # Each entry is where its transaction committed, at that block's time.
    steps = ["place_1", "ship_1", "confirm_1", "confirm_1", "confirm_1", "confirm_1",
             "review_1"]
    for entry, step in zip(answer["history"], steps, strict=True):
        assert entry["tx_hash"] == m.steps[step]["hash"]
        assert (entry["height"], entry["tx_index"]) == (m.steps[step]["height"],
                                                        m.steps[step]["index"])
        assert entry["contract_name"] == "escrow" and entry["fields"]["order_id"] == str(o["1"])
    first = answer["history"][0]
    assert first["time_ms"] == (await m.client.header(first["height"]))["time_ms"]
    assert answer["height"] >= m.steps["review_1"]["height"]
    assert bytes.fromhex(answer["raw"])  # the escrow's return data, beside


async def test_the_return_and_the_dispute_paths(market: Market) -> None:
    m, o = market, market.orders
    returned = m.check("order", await m.client.order(o["2"]))
    assert returned["state"] == "refunded"
    assert returned["order"]["return_tracking"] == "RET-2"
    assert returned["order"]["return_accepted"] is True
    assert history_of(returned) == [
        ("OrderPlaced", ""), ("OrderChanged", "2"), ("OrderChanged", "3"),
        ("OrderChanged", "7"), ("OrderChanged", "7"), ("OrderChanged", "11"),
        ("Payout", "refund"), ("OrderChanged", "8")]
    assert returned["history"][4]["fields"]["note"] == "return accepted"

    disputed = m.check("order", await m.client.order(o["3"]))
    assert disputed["state"] == "resolved"
    assert history_of(disputed) == [
        ("OrderPlaced", ""), ("OrderChanged", "2"), ("OrderChanged", "9"),
        ("SettlementOffered", ""), ("Payout", "arbiter fee"), ("Payout", "refund"),
        ("Payout", "cashback"), ("Payout", "payment"), ("OrderChanged", "10")]
    amounts = [e["fields"].get("amount") or e["fields"].get("to_buyer")
               for e in disputed["history"][3:8]]
    assert amounts == [str(6 * COIN), str(FEE), str(7 * COIN + FEE), str(share(KEPT_3, 100)),
                       str(KEPT_3 - 2 * share(KEPT_3, 100))]
    declined = m.check("order", await m.client.order(o["4"]))
    assert declined["state"] == "declined"
    assert history_of(declined) == [("OrderPlaced", ""), ("Payout", "refund"),
                                    ("OrderChanged", "5")]


async def test_order_history_pages(market: Market) -> None:
    m, o = market, market.orders
    whole = (await m.client.order(o["3"]))["history"]
    seen: list[dict[str, Any]] = []
    after = None
    for _ in range(10):
        answer = m.check("order", await m.client.order(o["3"], history_limit=4,
                                                       history_after=after))
        seen += answer["history"]
        after = answer["history_next"]
        if after is None:
            break
    assert seen == whole and len(whole) == 9


async def test_orders_by_buyer_merchant_and_state(market: Market) -> None:
    m, o = market, market.orders
    mine = m.check("orders", await m.client.orders(buyer=BUYER_1.address))
    assert [i["order_id"] for i in mine["items"]] == sorted(
        [o["1"], o["4"], o["tokens"], o["group_1"]], reverse=True)
    assert mine["next"] is None and mine["merchant"] is None
    by_id = {i["order_id"]: i for i in mine["items"]}
    assert by_id[o["tokens"]]["in_tokens"] is True
    assert by_id[o["tokens"]]["paid"] == str(MUG_PRICE)
    assert by_id[o["tokens"]]["listing_id"] == MUG and by_id[o["tokens"]]["state"] == "paid"
    assert by_id[o["group_1"]]["group_id"] == 1 and by_id[o["group_1"]]["state"] == "shipped"
    assert by_id[o["1"]]["state"] == "completed"
    assert by_id[o["1"]]["placed_height"] == m.steps["place_1"]["height"]
    assert by_id[o["1"]]["updated_height"] == m.steps["confirm_1"]["height"]

    sold = m.check("orders", await m.client.orders(merchant=MERCHANT.address))
    assert [i["order_id"] for i in sold["items"]] == sorted(o.values(), reverse=True)
    expected_states = {"1": "completed", "2": "refunded", "3": "resolved", "4": "declined",
                       "tokens": "paid", "group_1": "shipped", "group_2": "paid",
                       "group_3": "paid"}
    assert {i["order_id"]: i["state"] for i in sold["items"]} == {
        o[k]: s for k, s in expected_states.items()}
    for state in ("paid", "completed", "refunded", "shipped", "joined"):
        answer = m.check("orders", await m.client.orders(merchant=MERCHANT.address,
                                                         state=state))
        assert [i["order_id"] for i in answer["items"]] == sorted(
            (o[k] for k, s in expected_states.items() if s == state), reverse=True)
        assert answer["state"] == state
    paid_by_2 = await m.client.orders(buyer=BUYER_2.address, state="paid")
    assert [i["order_id"] for i in paid_by_2["items"]] == [o["group_2"]]

    # pages of 3: newest first, no order twice, none left out
    pages, before = [], None
    while True:
        page = m.check("orders", await m.client.orders(merchant=MERCHANT.address, limit=3,
                                                       before=before))
        pages.append([i["order_id"] for i in page["items"]])
        before = page["next"]
        if before is None:
            break
    assert pages == [[i["order_id"] for i in sold["items"]][k:k + 3] for k in (0, 3, 6)]


async def test_orders_parameters_are_checked(market: Market) -> None:
    c = market.client
    for params in ({}, {"buyer": text(BUYER_1), "merchant": text(MERCHANT)}):
        error = await rpc_error(c.call("orders", **params))
        assert error.code == Codes.INVALID_PARAMS and "either buyer or merchant" in error.data
    error = await rpc_error(c.orders(buyer=BUYER_1.address, state="lost"))
    assert error.code == Codes.INVALID_PARAMS and "state" in error.data
    error = await rpc_error(c.orders(buyer=BUYER_1.address, limit=500))
    assert error.code == Codes.NOT_ANSWERABLE and "at most 100" in error.data
    error = await rpc_error(c.orders(buyer=BUYER_1.address, before="next page"))
    assert error.code == Codes.INVALID_PARAMS and "before" in error.data
    for method, params in (("order", {"order_id": 999}), ("listing", {"listing_id": 999}),
                           ("group", {"group_id": 99})):
        error = await rpc_error(c.call(method, **params))
        assert error.code == Codes.NOT_FOUND
        assert error.data == f"no {method} {next(iter(params.values()))}"
    error = await rpc_error(c.order(0))
    assert error.code == Codes.INVALID_PARAMS
    # a forged cursor is named by its parameter
    error = await rpc_error(c.order(market.orders["1"], history_after="9999999999999999999:0:0"))
    assert error.code == Codes.NOT_ANSWERABLE
    assert error.data == "history_after: not a cursor of this list"
    error = await rpc_error(c.orders(buyer=BUYER_1.address, before="99999999999999999999"))
    assert error.data == "before: not a cursor of this list"


# ---------------------------------------------------------------------- listings, groups


async def test_listing_and_listings_of_a_merchant(market: Market) -> None:
    m = market
    answer = m.check("listing", await m.client.listing(m.board))
    board = answer["listing"]
    assert board["title"] == "Walnut cutting board" and board["merchant"] == text(MERCHANT)
    assert (board["price"], board["version"], board["stock"]) == (str(PRICE), "2", "7")
    assert (board["referral_bps"], board["cashback_bps"], board["bounty_bps"]) == (
        "200", "100", "100")
    assert board["arbiter_1"] == text(ARBITER) and board["arbiter_2"] == address_to_text(NOBODY)
    assert answer["stats"] == {"completed": "1", "refunded": "1", "declined": "1",
                               "not_shipped": "0", "settled": "0", "disputes": "1",
                               "disputes_lost": "1", "volume": str(PRICE + KEPT_3)}
    assert answer["reputation"] == {"reviews": "2", "rating_sum": "8", "reviewers": "2"}

    listed = m.check("listings", await m.client.listings(MERCHANT.address))
    assert listed["total"] == 3  # the two of genesis too
    assert [i["listing_id"] for i in listed["items"]] == [m.board, TEA, MUG]
    assert [i["listing"]["title"] for i in listed["items"]][1:] == [
        "Organic green tea, family box", "Handmade ceramic mug"]
    first = m.check("listings", await m.client.listings(MERCHANT.address, limit=2))
    rest = m.check("listings", await m.client.listings(MERCHANT.address, limit=2,
                                                       before=first["next"]))
    assert [i["listing_id"] for i in first["items"] + rest["items"]] == [m.board, TEA, MUG]
    assert rest["next"] is None
    nobody = await m.client.listings(BUYER_1.address)
    assert nobody["items"] == [] and nobody["total"] == 0
    # read from the state, each is what the catalog's view answers
    for item in listed["items"]:
        assert item["listing"] == (await m.client.listing(item["listing_id"]))["listing"]


async def test_listings_answers_current_values_without_running_the_vm(
        market: Market, monkeypatch: pytest.MonkeyPatch) -> None:
    """``listings`` reads each listing's record from the state (no catalog view run per
    item): after edits of stock, price and paused, its page says what the catalog's
    view says, field for field."""
    m, c = market, market.calls
    # A merchant of its own (the other tests count the demo merchant's listings).
    digest = hashlib.sha256(b"stool").digest()
    await m.step(stool=c(REFERRER, "catalog", "create_listing", "Stool", digest, 4 * COIN,
                         0, 5, 3 * DAY, 14 * DAY, 0, 2 * DAY, ARBITER.address, NOBODY,
                         NOBODY, True, 5_000))
    await m.step(lamp=c(REFERRER, "catalog", "create_listing", "Lamp \u00e9", digest,
                        6 * COIN, 2 * COIN, 9, 3 * DAY, 14 * DAY, 7 * DAY, 2 * DAY,
                        NOBODY, NOBODY, NOBODY, True, 0))
    stool, lamp = (int(m.steps[k]["receipt"]["return_value"]) for k in ("stool", "lamp"))

    calls = 0
    vm_call = ChainView.call

    def counted(self: ChainView, *args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        return vm_call(self, *args, **kwargs)

    monkeypatch.setattr(ChainView, "call", counted)

    async def both() -> list[tuple[int, dict[str, Any]]]:
        nonlocal calls
        calls = 0
        page = m.check("listings", await m.client.listings(REFERRER.address))
        assert calls == 0  # no VM run for a page
        out = [(i["listing_id"], i["listing"]) for i in page["items"]]
        for listing_id, listing in out:  # the view's answer (this runs the VM)
            assert listing == (await m.client.listing(listing_id))["listing"]
        return out

    before = dict(await both())
    assert list(before) == [lamp, stool]
    assert (before[stool]["stock"], before[stool]["price"], before[stool]["paused"],
            before[stool]["version"], before[stool]["return_window"]) == (
        "5", str(4 * COIN), False, "1", "0")
    assert before[lamp]["title"] == "Lamp \u00e9"
    assert before[lamp]["token_price"] == str(2 * COIN)
    assert before[lamp]["arbiter_1"] == address_to_text(NOBODY)
    assert before[lamp]["merchant"] == text(REFERRER)

    await m.step(stock=c(REFERRER, "catalog", "set_stock", stool, 2),
                 price=c(REFERRER, "catalog", "set_price", lamp, 7 * COIN, 0),
                 pause=c(REFERRER, "catalog", "pause", stool))
    after = dict(await both())
    assert (after[stool]["stock"], after[stool]["paused"], after[stool]["version"]) == (
        "2", True, "1")
    assert (after[lamp]["price"], after[lamp]["token_price"], after[lamp]["version"]) == (
        str(7 * COIN), "0", "2")
    await m.step(resume=c(REFERRER, "catalog", "resume", stool),
                 restock=c(REFERRER, "catalog", "set_stock", lamp, 0))
    again = dict(await both())
    assert (again[stool]["paused"], again[lamp]["stock"]) == (False, "0")


async def test_group_deal_and_its_members(market: Market) -> None:
    m, o = market, market.orders
    answer = m.check("group", await m.client.group(1))
    assert answer["state"] == "filled"
    assert answer["group"]["leader"] == text(BUYER_1)
    assert (answer["group"]["members"], answer["group"]["size"], answer["group"]["price"]) == (
        "3", "3", str(TEA_GROUP_PRICE))
    assert [(x["order_id"], x["buyer"], x["state"]) for x in answer["members"]] == [
        (o["group_3"], text(BUYER_3), "paid"), (o["group_2"], text(BUYER_2), "paid"),
        (o["group_1"], text(BUYER_1), "shipped")]
    page = m.check("group", await m.client.group(1, limit=2))
    more = await m.client.group(1, limit=2, before=page["next"])
    assert [x["order_id"] for x in page["members"] + more["members"]] == [
        x["order_id"] for x in answer["members"]]
    # Both joins were in one block, the second filling the group: every member's
    # history ends with the fill (the escrow's view reads them as paid too).
    member = m.check("order", await m.client.order(o["group_2"]))
    assert history_of(member) == [("OrderPlaced", ""), ("GroupChanged", "2")]
    assert member["state"] == "paid" and member["order"]["group"] == "1"
    assert member["history"][1]["tx_hash"] == m.steps["group_3"]["hash"]


# ---------------------------------------------------------------------- people


async def test_merchant_reputation_and_counts(market: Market) -> None:
    m = market
    answer = m.check("merchant", await m.client.merchant(MERCHANT.address))
    assert answer["stats"] == {"completed": "1", "refunded": "1", "declined": "1",
                               "not_shipped": "0", "settled": "0", "disputes": "1",
                               "disputes_lost": "1", "volume": str(PRICE + KEPT_3)}
    assert answer["reputation"] == {"reviews": "2", "rating_sum": "8", "reviewers": "2"}
    assert answer["average_rating"] == 4.0
    assert answer["listings"] == 3 and answer["orders"] == 8
    assert answer["orders_by_state"] == {"paid": 3, "shipped": 1, "completed": 1,
                                         "declined": 1, "refunded": 1, "resolved": 1}
    newcomer = m.check("merchant", await m.client.merchant(REFERRER.address))
    assert newcomer["orders"] == 0 and newcomer["average_rating"] is None
    assert newcomer["stats"]["completed"] == "0"


async def test_arbiter_record(market: Market) -> None:
    m = market
    answer = m.check("arbiter", await m.client.arbiter(ARBITER.address))
    assert answer["registration"] == {"name": "Community arbiter", "fee_bps": "200",
                                      "ruling_window": str(3 * DAY), "active": True,
                                      "registered_at": answer["registration"]["registered_at"]}
    assert int(answer["registration"]["registered_at"]) > 0  # registered in genesis
    assert answer["cases"] == {"cases": "1", "ruled": "1", "for_buyer": "1",
                               "for_merchant": "0", "split": "0", "missed": "0",
                               "fees": str(FEE)}
    error = await rpc_error(m.client.arbiter(BUYER_1.address))
    assert error.code == Codes.NOT_FOUND and "is not a registered arbiter" in error.data


async def test_reviews_by_merchant_listing_and_order(market: Market) -> None:
    m, o = market, market.orders
    by_merchant = m.check("reviews", await m.client.reviews(merchant=MERCHANT.address))
    assert [(r["order_id"], r["rating"], r["buyer"]) for r in by_merchant["items"]] == [
        (o["2"], 3, text(BUYER_2)), (o["1"], 5, text(BUYER_1))]
    second, first = by_merchant["items"]
    assert second["reply"] is None and second["text"] == "Fine, but I sent it back"
    assert first["reply"]["text"] == "Thank you!"
    assert first["reply"]["tx_hash"] == m.steps["reply_1"]["hash"]
    assert first["tx_hash"] == m.steps["review_1"]["hash"]
    assert first["height"] == m.steps["review_1"]["height"]
    assert first["listing_id"] == m.board and first["merchant"] == text(MERCHANT)
    by_listing = m.check("reviews", await m.client.reviews(listing_id=m.board))
    assert by_listing["items"] == by_merchant["items"]
    one = m.check("reviews", await m.client.reviews(order_id=o["1"]))
    assert one["items"] == [first] and one["next"] is None
    none = await m.client.reviews(order_id=o["3"])
    assert none["items"] == []
    page = await m.client.reviews(merchant=MERCHANT.address, limit=1)
    assert page["items"] == [second] and page["next"]
    rest = await m.client.reviews(merchant=MERCHANT.address, limit=1, before=page["next"])
    assert rest["items"] == [first] and rest["next"] is None
    error = await rpc_error(m.client.call("reviews", merchant=text(MERCHANT), order_id=1))
    assert error.code == Codes.INVALID_PARAMS


# ---------------------------------------------------------------------- events


async def test_events_by_contract_name_and_range(market: Market) -> None:
    m, o = market, market.orders
    placed = m.check("events", await m.client.events("escrow", name="OrderPlaced",
                                                     from_height=1))
    assert [int(e["fields"]["order_id"]) for e in placed["items"]] == sorted(
        o.values(), reverse=True)
    assert placed["contract"] == address_to_text(ESCROW_ADDRESS)
    assert placed["contract_name"] == "escrow" and placed["from_height"] == 1
    assert placed["to_height"] == placed["height"]
    by_order = {m.placed(step): m.steps[step] for step in m.steps if step.startswith(
        ("place_", "group_"))}
    for e in placed["items"]:
        step = by_order[int(e["fields"]["order_id"])]
        assert (e["tx_hash"], e["height"], e["tx_index"]) == (step["hash"], step["height"],
                                                              step["index"])

    # pages of 3 cover the same, newest first
    seen: list[dict[str, Any]] = []
    before = None
    while True:
        page = m.check("events", await m.client.events("escrow", name="OrderPlaced",
                                                       from_height=1, limit=3, before=before))
        seen += page["items"]
        before = page["next"]
        if before is None:
            break
    assert seen == placed["items"]

    # one block's events, all of a contract (no name): what its receipt says, newest first
    confirm = m.steps["confirm_1"]
    height = confirm["height"]
    block = await m.client.events(ESCROW_ADDRESS, from_height=height, to_height=height)
    mine = [e for e in reversed(block["items"]) if e["tx_index"] == confirm["index"]]
    receipt_events = [e for e in confirm["receipt"]["events"]
                      if e["contract_name"] == "escrow"]
    assert [(e["name"], e["fields"], e["data"]) for e in mine] == [
        (e["name"], e["fields"], e["data"]) for e in receipt_events]
    tokens = await m.client.events("token", name="Transfer", from_height=height,
                                   to_height=height)
    assert {e["fields"]["receiver"] for e in tokens["items"]} >= {text(REFERRER),
                                                                 text(BUYER_1)}

    # a height range is bounded, and must be a range
    error = await rpc_error(m.client.events("escrow", from_height=0, to_height=10_000))
    assert error.code == Codes.NOT_ANSWERABLE
    assert error.data.endswith("10001 heights; this node searches at most 10000 in one "
                               "request: ask in narrower ranges")
    assert (await m.client.events("escrow", from_height=1, to_height=10_000))["items"]
    error = await rpc_error(m.client.events("escrow", from_height=9, to_height=8))
    assert error.code == Codes.NOT_ANSWERABLE and "above to_height" in error.data
    # from a height not reached yet (a poller ahead of the chain): an empty page, that
    # says how far the chain is (docstring of events)
    for ahead in (placed["height"] + 1_000, 2**63 - 1):
        later = m.check("events", await m.client.events("escrow", from_height=ahead))
        assert later["items"] == [] and later["next"] is None
        assert later["from_height"] == ahead and later["to_height"] == later["height"] < ahead
        later = await m.client.events("escrow", from_height=ahead,
                                      to_height=min(ahead + 5, 2**63 - 1))
        assert later["items"] == [] and later["to_height"] == later["height"]
    error = await rpc_error(m.client.events("shop"))
    assert error.code == Codes.NOT_FOUND and "no known contract 'shop'" in error.data
    unknown = await m.client.events(BUYER_1.address, from_height=1)  # nobody's events
    assert unknown["items"] == [] and unknown["contract_name"] is None


# ---------------------------------------------------------------------- contract views


async def test_token_balance_and_every_token_view(market: Market) -> None:
    m = market

    async def view(method: str, *args: Any) -> Any:
        answer = m.check("call", await m.client.call_contract("token", method, list(args)))
        assert answer["status"] == "ok", answer["reason"]
        return answer["value"]

    b1 = GENESIS_TOKENS - MUG_PRICE + share(PRICE, 100) + share(PRICE, 100)
    balance = m.check("token_balance", await m.client.token_balance(BUYER_1.address))
    assert balance["balance"] == str(b1) and balance["token"] == address_to_text(TOKEN_ADDRESS)
    assert await view("balance_of", text(BUYER_1)) == str(b1)
    assert await view("balance_of", address_to_text(ESCROW_ADDRESS)) == str(MUG_PRICE)
    assert await view("balance_of", text(REFERRER)) == str(share(PRICE, 200))
    assert await view("balance_of", text(BUYER_3)) == str(share(KEPT_3, 100))
    assert await view("name") == "Agora Reward"
    assert await view("symbol") == "AGR"
    assert await view("decimals") == "18"
    assert await view("total_supply") == str(GENESIS_TOKENS + MINTED)
    assert await view("reserve") == str(GENESIS_TOKENS + MINTED)  # backed one to one
    assert await view("allowance", text(BUYER_1), text(MERCHANT)) == str(5 * COIN)
    assert await view("allowance", text(MERCHANT), text(BUYER_1)) == "0"
    assert await view("is_minter", address_to_text(ESCROW_ADDRESS)) is True
    assert await view("is_minter", text(BUYER_1)) is False


async def test_every_catalog_escrow_and_reviews_view(market: Market) -> None:
    m, o = market, market.orders

    async def view(contract: str, method: str, *args: Any) -> Any:
        answer = m.check("call", await m.client.call_contract(contract, method, list(args)))
        assert answer["status"] == "ok", answer["reason"]
        return answer["value"]

    tested = set()

    def seen(contract: str, method: str) -> None:
        tested.add((contract, method))

    # catalog
    seen("catalog", "listing")
    mug = await view("catalog", "listing", MUG)
    assert (mug["title"], mug["price"], mug["token_price"], mug["stock"]) == (
        "Handmade ceramic mug", str(MUG_PRICE), str(MUG_PRICE), "39")
    seen("catalog", "arbiter")
    assert (await view("catalog", "arbiter", text(ARBITER)))["fee_bps"] == "200"
    seen("catalog", "limits")
    assert await view("catalog", "limits") == {
        "min_window": "60000", "max_window": str(60 * DAY),
        "min_return_window": str(7 * DAY), "max_fee_bps": "1000",
        "max_commission_bps": "3000", "max_group_size": "10000", "max_title_bytes": "120"}
    # escrow
    seen("escrow", "order")
    order = await view("escrow", "order", o["tokens"])
    assert (order["in_tokens"], order["state"], order["held"]) == (True, "1", str(MUG_PRICE))
    seen("escrow", "dispute_deposit")
    assert await view("escrow", "dispute_deposit", o["tokens"]) == str(share(MUG_PRICE, 200))
    assert await view("escrow", "dispute_deposit", o["group_2"]) == "0"  # no arbiter
    seen("escrow", "group")
    assert (await view("escrow", "group", 1))["state"] == "2"
    seen("escrow", "merchant_record")
    assert (await view("escrow", "merchant_record", text(MERCHANT)))["disputes_lost"] == "1"
    seen("escrow", "listing_record")
    assert await view("escrow", "listing_record", MUG) == {
        k: "0" for k in ("completed", "refunded", "declined", "not_shipped", "settled",
                         "disputes", "disputes_lost", "volume")}
    assert (await view("escrow", "listing_record", m.board))["volume"] == str(PRICE + KEPT_3)
    seen("escrow", "arbiter_record")
    assert (await view("escrow", "arbiter_record", text(ARBITER)))["fees"] == str(FEE)
    seen("escrow", "counts")
    assert await view("escrow", "counts") == {
        "orders": "8", "groups": "1",
        # the group's three orders, and order 3's bounty (never reviewed)
        "locked_coin": str(3 * TEA_GROUP_PRICE + share(KEPT_3, 100)),
        "locked_tokens": str(MUG_PRICE)}
    # reviews
    seen("reviews", "review")
    review = await view("reviews", "review", o["1"])
    assert (review["rating"], review["text"], review["reply"], review["replied"]) == (
        "5", "Lovely board, quick delivery", "Thank you!", True)
    assert review["buyer"] == text(BUYER_1) and review["listing"] == str(m.board)
    seen("reviews", "merchant_reviews")
    assert await view("reviews", "merchant_reviews", text(MERCHANT)) == {
        "reviews": "2", "rating_sum": "8", "reviewers": "2"}
    seen("reviews", "listing_reviews")
    assert await view("reviews", "listing_reviews", m.board) == {
        "reviews": "2", "rating_sum": "8", "reviewers": "2"}

    contracts = {c["name"]: c for c in await m.client.contracts()}
    every_view = {(name, x["name"]) for name in ("catalog", "escrow", "reviews")
                  for x in contracts[name]["abi"]["methods"] if x.get("mutability") == "view"}
    assert tested == every_view


# ---------------------------------------------------------------------- WebSocket (last:
# it places and moves orders of its own)


async def notifications(ws: aiohttp.ClientWebSocketResponse, subscription: str,
                        count: int) -> list[dict[str, Any]]:
    """The results of the next ``count`` notifications (waited for, bounded)."""
    out: list[dict[str, Any]] = []
    async with asyncio.timeout(WAIT):
        while len(out) < count:
            message = await ws.receive()
            assert message.type == aiohttp.WSMsgType.TEXT, message
            body = json.loads(message.data)
            for note in body if isinstance(body, list) else [body]:
                assert note["method"] == "subscription"
                assert note["params"]["subscription"] == subscription
                out.append(note["params"]["result"])
    return out


async def test_a_subscriber_to_an_order_gets_exactly_its_events_in_order(
        market: Market) -> None:
    m, c = market, market.calls
    new_order = int((await m.client.call_contract("escrow", "counts"))["value"]["orders"]) + 1
    ws_url = m.net.url + "websocket"
    async with aiohttp.ClientSession() as session, session.ws_connect(ws_url) as ws:
        await ws.send_json({"jsonrpc": "2.0", "id": 1, "method": "subscribe",
                            "params": {"kind": "events", "order_id": new_order}})
        answer = await asyncio.wait_for(ws.receive_json(), WAIT)
        subscription = answer["result"]["subscription"]
        # Its order goes from placement to completion, while another order moves too.
        await m.step(ws_place=c(BUYER_2, "escrow", "place_order", m.board, 2, 1,
                                ARBITER.address, REFERRER.address, value=PRICE))
        assert m.placed("ws_place") == new_order
        await m.step(ws_ship=c(MERCHANT, "escrow", "ship", new_order, "TRK-WS"),
                     other=c(MERCHANT, "escrow", "ship", m.orders["tokens"], "TRK-T"))
        await m.step(ws_confirm=c(BUYER_2, "escrow", "confirm", new_order, True))
        history = (await m.client.order(new_order))["history"]
        assert history_of({"history": history}) == [
            ("OrderPlaced", ""), ("OrderChanged", "2"), ("Payout", "referral"),
            ("Payout", "cashback"), ("Payout", "payment"), ("OrderChanged", "4")]
        received = await notifications(ws, subscription, len(history))
        assert received == history
        # and nothing of the other order arrived: the next message is about ours
        await m.step(ws_review=c(BUYER_2, "reviews", "post_review", new_order, 4, "ok"))
        await m.step(other_confirm=c(BUYER_1, "escrow", "confirm", m.orders["tokens"], True))
        await m.step(ws_reply=c(MERCHANT, "reviews", "reply", new_order, "thanks"))
        rest = await notifications(ws, subscription, 3)
        # the review paid the bounty (escrow Payout) and the reviews contract's
        # Reviewed and Replied events carry the order id too
        assert [(e["contract_name"], e["name"]) for e in rest] == [
            ("escrow", "Payout"), ("reviews", "Reviewed"), ("reviews", "Replied")]
        assert all(e["fields"]["order_id"] == str(new_order) for e in rest)
