"""Regressions of the hostile review of the light node (a helper playing a lying full
node, with executed scripts): each attack that once worked, now caught or refused --
and an honest node never accused. Same set-up as test_light_node.py: one real node
after a real market, a tampering proxy, a fresh light node per attack."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import web
from rpc_helpers import ARBITER, BUYER_1, BUYER_2, MERCHANT, Calls, commerce_node
from test_light_node import Proxy, light, same, verified
from test_rpc_commerce import CHAIN, PRICE, Market, lifecycle, text

from chain.address import address_to_text

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def market(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Market]:
    async with commerce_node(tmp_path_factory.mktemp("light-hostile"), CHAIN) as net:
        m = Market(net, Calls(CHAIN))
        await lifecycle(m)
        yield m


async def caught_and_honest(market: Market, tamper: Any, ask: Any) -> tuple[Any, dict]:
    async with Proxy(market.net.url, tamper) as proxy, \
            light(market, proxy.url, [market.net.url]) as (node, lc):
        answer = await ask(lc)
        status = await lc.call("light_status")
        assert [r["node"] for r in status["caught"]] == [proxy.url], status["caught"]
        assert status["primary"] == market.net.url
        return answer, status


async def test_an_index_ahead_of_the_verified_head_is_no_lie(market: Market) -> None:
    """The primary's index lists an order committed after the light node's last poll:
    the light node catches up instead of accusing the honest node."""
    async with light(market, market.net.url, [market.net.url]) as (node, lc):
        node.settings.poll_interval_ms = 60_000  # no help from the follow loop
        await market.net.commit(market.calls(BUYER_2, "escrow", "place_order", market.board,
                                             2, 1, ARBITER.address, bytes(20), value=PRICE))
        same(await lc.merchant(MERCHANT.address), await market.client.merchant(
            MERCHANT.address))
        assert (await lc.call("light_status"))["caught"] == []


async def test_a_deeply_nested_answer_does_not_stop_the_light_node(market: Market) -> None:
    evil = {"on": False}

    async def raw(body: Any) -> Any:
        if evil["on"]:
            return web.Response(body=b"[" * 200_000, content_type="application/json")
        return None

    async with Proxy(market.net.url, raw=raw) as proxy, \
            light(market, proxy.url, [market.net.url]) as (node, lc):
        evil["on"] = True
        answer = await lc.account(BUYER_1.address)  # the witness answers instead
        same(answer, await market.client.account(BUYER_1.address))
        tip = (await market.net.commit(market.calls(BUYER_1, "token", "approve",
                                                    MERCHANT.address, 77)))["height"]
        await verified(node, tip)
        assert node._task is not None and not node._task.done()


async def test_pages_that_never_end_are_a_lie(market: Market) -> None:
    def endless(q: dict, a: dict) -> dict | None:
        if q.get("method") in ("listings", "orders") and "result" in a:
            return {**a, "result": {**a["result"], "items": [], "next": "5"}}
        return None

    started = time.monotonic()
    answer, status = await caught_and_honest(market, endless,
                                             lambda lc: lc.merchant(MERCHANT.address))
    assert time.monotonic() - started < 10
    same(answer, await market.client.merchant(MERCHANT.address))
    assert "do not end" in status["caught"][0]["detail"]


def _entry(market: Market, step: str, name: str) -> dict:
    s = market.steps[step]
    i, e = next((i, e) for i, e in enumerate(s["receipt"]["events"]) if e["name"] == name)
    return {**e, "height": s["height"], "tx_index": s["index"], "event_index": i,
            "tx_hash": s["hash"], "time_ms": 0}


@pytest.mark.parametrize("extra", [("approve", "Approval"), ("group_2", "GroupChanged"),
                                   None])
async def test_a_padded_order_history_is_caught(market: Market, extra: Any) -> None:
    oid = market.orders["1"]

    def pad(q: dict, a: dict) -> dict | None:
        if q.get("method") == "order" and "result" in a:
            history = a["result"]["history"]
            more = [_entry(market, *extra)] if extra else history[-1:]  # None: a repeat
            return {**a, "result": {**a["result"], "history": history + more}}
        return None

    answer, _ = await caught_and_honest(market, pad, lambda lc: lc.order(oid))
    same(answer, await market.client.order(oid))


async def test_a_stranger_is_no_member_of_a_group(market: Market) -> None:
    c = market.calls
    await market.step(place_x=c(BUYER_2, "escrow", "place_order", market.board, 2, 1,
                                ARBITER.address, bytes(20), value=PRICE))
    oid = market.placed("place_x")
    await market.step(cancel_x=c(BUYER_2, "escrow", "cancel", oid))
    stranger = address_to_text(bytes.fromhex("ab" * 20))

    def pad(q: dict, a: dict) -> dict | None:
        if q.get("method") == "group" and "result" in a:
            return {**a, "result": {**a["result"], "members": a["result"]["members"] + [
                {"order_id": oid, "buyer": stranger, "state": "cancelled"}]}}
        return None

    answer, _ = await caught_and_honest(market, pad, lambda lc: lc.group(1))
    same(answer, await market.client.group(1))


@pytest.mark.parametrize("how", ["next set", "duplicate"])
async def test_a_hidden_bad_review_is_caught(market: Market, how: str) -> None:
    params = {"merchant": text(MERCHANT)}
    honest = await market.client.call("reviews", **params)
    assert len(honest["items"]) >= 2

    def hide(q: dict, a: dict) -> dict | None:
        if q.get("method") == "reviews" and "result" in a and a["result"]["items"]:
            items = a["result"]["items"]
            bad = min(range(len(items)), key=lambda i: items[i]["rating"])
            good = [i for j, i in enumerate(items) if j != bad]
            if how == "next set":
                return {**a, "result": {**a["result"], "items": good, "next": "1:0:0"}}
            return {**a, "result": {**a["result"], "items": good + good[:1]}}
        return None

    answer, _ = await caught_and_honest(market, hide, lambda lc: lc.call("reviews", **params))
    same(answer, honest)


async def test_a_transaction_placed_above_every_header_is_a_lie(market: Market) -> None:
    tx_hash = market.steps["review_1"]["hash"]

    def future(q: dict, a: dict) -> dict | None:
        if q.get("method") == "proof" and "result" in a and a["result"].get("tx"):
            return {**a, "result": {**a["result"], "tx": {**a["result"]["tx"],
                                                         "height": 10**12}}}
        return None

    answer, _ = await caught_and_honest(market, future, lambda lc: lc.tx(tx_hash))
    same(answer, await market.client.tx(tx_hash))


async def test_a_slow_primary_is_passed_over(market: Market) -> None:
    slow = {"on": False}

    async def raw(body: Any) -> Any:
        if slow["on"]:
            await asyncio.sleep(9)
        return None

    async with Proxy(market.net.url, raw=raw) as proxy, \
            light(market, proxy.url, [market.net.url]) as (node, lc):
        slow["on"] = True
        started = time.monotonic()
        answer = await lc.order(market.orders["1"])
        assert time.monotonic() - started < 12
        same(answer, await market.client.order(market.orders["1"]))
        status = await lc.call("light_status")
        assert status["primary"] == market.net.url and status["caught"] == []
        assert proxy.url in status["witnesses"]  # demoted, not accused
