"""The big chain the explorer's performance tests stand on (tests/explorer/bigchain.py,
the session fixture ``big_chain``): it is a valid chain -- every certificate checks,
every block executed again from genesis gives the roots its header names, its commerce
index is exactly the one a node catching up from genesis builds -- and a real node
started on it serves it over JSON-RPC with the long lists the explorer pages through:
the busy account's history, the escrow's, the main merchant's orders and reviews, an
order's long timeline, a group, the events.

It prints the build time and, for each method the explorer leans on, the latency of
20 calls (of different subjects where there are: the node caches decoded blocks and
rendered answers), in the server (the dispatcher's ``handle_text``: parse, run,
serialize) and round trip (aiohttp on 127.0.0.1); each median must be inside the
explorer's 200 ms page budget.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from bigchain import BigChain, serve, verify_chain

from chain.address import address_to_text
from chain.system import ESCROW_ADDRESS

BUDGET_MS = 200.0
CALLS = 20


async def every(client: Any, method: str, **params: Any) -> list[dict[str, Any]]:
    """Every item of a paged list, page after page (the node's largest page)."""
    return [item async for item in client.pages(method, limit=100, **params)]


async def test_big_chain_is_valid_and_served(big_chain: BigChain,
                                             monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    big = big_chain
    full = big.height >= 10_000
    assert big.height == int(os.environ.get("AGORA_BIGCHAIN_BLOCKS", "10000"))
    took = verify_chain(big.home)
    report = [f"big chain: {big.height:,} blocks, {big.counts['txs']:,} transactions, "
              f"built in {big.build_seconds:.1f} s; replayed in {took['replay']:.1f} s, "
              f"index caught up from genesis in {took['index_catch_up']:.1f} s"]
    started = time.perf_counter()
    async with serve(big) as n:
        report.append(f"node started in {time.perf_counter() - started:.2f} s")
        c = n.client
        status = await c.status()
        assert status["height"] >= big.height
        assert status["chain_id"] == big.chain_id

        # The lists are long, and hold exactly what was built.
        history = await every(c, "account_history", address=address_to_text(big.busy_account))
        assert len(history) == big.counts["busy_account_txs"]
        assert history[0]["height"] == big.new_tx_height
        escrow = await every(c, "account_history", address=address_to_text(ESCROW_ADDRESS))
        assert len(escrow) == big.counts["escrow_txs"]
        orders = await every(c, "orders", merchant=address_to_text(big.merchant))
        assert len(orders) == big.counts["merchant_orders"]
        states = {o["state"] for o in orders}
        merchant = await c.merchant(big.merchant)
        assert merchant["orders"] == len(orders)
        assert sum(merchant["orders_by_state"].values()) == len(orders)
        reviews = await every(c, "reviews", merchant=address_to_text(big.merchant))
        assert len(reviews) == big.counts["merchant_reviews"]
        replied = [r for r in reviews if r["reply"] is not None]
        listings = await c.listings(big.merchant, limit=100)
        order = await c.order(big.order, history_limit=100)
        timeline = [e["name"] for e in order["history"]]
        assert timeline[0] == "OrderPlaced"
        if big.group:
            group = await c.group(big.group)
            assert group["state"] == "filled"
        assert (await c.tx(big.old_tx))["height"] == big.old_tx_height
        assert (await c.tx(big.new_tx))["height"] == big.new_tx_height == big.height
        busy_block = await c.block(big.busy_block)
        assert len(busy_block["txs"]) == big.busy_block_txs
        events = await c.events("escrow", limit=100)
        assert events["items"]
        arbiter = await c.arbiter(big.arbiter)
        if full:
            assert order["state"] == "resolved" and len(timeline) >= 15
            assert timeline.count("SettlementOffered") == 3 and big.group
            assert len(history) >= 3_000 and len(escrow) >= 1_000
            assert len(orders) >= 250 and len(reviews) >= 100 and len(replied) >= 40
            assert {"paid", "shipped", "completed", "declined", "cancelled", "refunded",
                    "resolved", "disputed"} <= states
            assert listings["total"] >= 20 and big.counts["listings"] >= 35
            assert big.counts["transfers"] >= 3_000 and big.counts["orders"] >= 400
            assert big.busy_block_txs >= 250
            assert len(events["items"]) == 100 and events["next"]
            assert int(arbiter["cases"]["ruled"]) >= 1
        report.append(f"lists: busy account {len(history):,}, escrow {len(escrow):,}, "
                      f"merchant's orders {len(orders)} in {len(states)} states, reviews "
                      f"{len(reviews)} ({len(replied)} replied), listings "
                      f"{listings['total']}, order {big.order}'s timeline {len(timeline)}")

        # Latency: in the server (the dispatcher) and round trip.
        served: list[float] = []
        handle_text = n.node.dispatcher.handle_text

        async def timed(*args: Any, **kwargs: Any) -> Any:
            t = time.perf_counter()
            try:
                return await handle_text(*args, **kwargs)
            finally:
                served.append((time.perf_counter() - t) * 1000)

        monkeypatch.setattr(n.node.dispatcher, "handle_text", timed)
        # Each call asks for another subject where there are others (the node caches
        # decoded blocks and rendered answers): a different height, cursor, order,
        # merchant.
        h = big.height
        heights = [1 + i * (h - 1) // (CALLS - 1) for i in range(CALLS)]
        cursors = [history[(i + 1) * len(history) // (CALLS + 1)] for i in range(CALLS)]
        order_ids = [o["order_id"] for o in orders][::max(1, len(orders) // CALLS)]
        merchants = big.merchants
        calls: dict[str, Callable[[int], Awaitable[Any]]] = {
            f"block (busiest, {big.busy_block_txs} txs)": lambda i: c.block(big.busy_block),
            "block (20 heights)": lambda i: c.block(heights[i]),
            "account_history (busy, newest 100)":
                lambda i: c.account_history(big.busy_account, limit=100),
            "account_history (busy, 20 deep pages)":
                lambda i: c.account_history(big.busy_account, limit=100,
                                            before=f"{cursors[i]['height']}:{cursors[i]['index']}"),
            "orders (main merchant, 100)":
                lambda i: c.orders(merchant=big.merchant, limit=100),
            "orders (main merchant, 20 pages)":
                lambda i: c.orders(merchant=big.merchant, limit=100,
                                   before=str(order_ids[i % len(order_ids)])),
            "merchant (4 merchants)": lambda i: c.merchant(merchants[i % len(merchants)]),
            "reviews (4 merchants, 100)":
                lambda i: c.reviews(merchant=merchants[i % len(merchants)], limit=100),
            "order (20 orders)": lambda i: c.order(order_ids[i % len(order_ids)]),
            "order (the long timeline)": lambda i: c.order(big.order),
            "events (escrow, 100, 20 ranges)":
                lambda i: c.events("escrow", limit=100, to_height=heights[i]),
        }
        slow = []
        report.append(f"{'method (20 calls each)':40} {'server ms: median':>18} {'max':>6} "
                      f"{'round trip: median':>19} {'max':>6}")
        for name, fn in calls.items():
            served.clear()
            trips = []
            for i in range(CALLS):
                t = time.perf_counter()
                await fn(i)
                trips.append((time.perf_counter() - t) * 1000)
            assert len(served) == CALLS
            report.append(f"{name:40} {statistics.median(served):18.1f} {max(served):6.1f} "
                          f"{statistics.median(trips):19.1f} {max(trips):6.1f}")
            if statistics.median(served) > BUDGET_MS:
                slow.append(name)
    with capsys.disabled():
        print("\n" + "\n".join(report))
    assert not slow, f"slower than {BUDGET_MS} ms (median, in the server): {slow}"
