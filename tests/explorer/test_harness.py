"""The explorer tests' own tools work: the browser (browser.py) renders a page, reads its
text, catches its console errors and failed requests, and screenshots it whole; the
scripted localnet (localnet_session.py) leaves on chain what its facts say."""

from __future__ import annotations

import asyncio
import socket
import struct
import time
from pathlib import Path

import pytest
from aiohttp import web
from browser import browser, console_errors, screenshot, text, wait_for_text
from localnet_session import SessionFacts, scripted_localnet_in_thread

from node.rpc.client import RPCClient

PAGE = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>测试页</title></head>
<body>
<h1>区块浏览器 Block explorer</h1>
<p>Accept-Language: {accept}</p>
<p id="fetch">fetching ...</p>
<div style="height: 2500px">a tall page</div>
<p>页尾 The end</p>
<script>
console.error("harness: an error on purpose");
fetch("http://fonts.example.com/agora.css")
  .then(() => {{ document.getElementById("fetch").textContent = "fetch reached the internet"; }})
  .catch(() => {{ document.getElementById("fetch").textContent = "fetch failed, offline"; }});
</script>
</body></html>
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    return struct.unpack(">II", head[16:24])


async def test_the_browser_renders_reads_catches_errors_and_screenshots(tmp_path: Path
                                                                        ) -> None:
    async def page(request: web.Request) -> web.Response:
        accept = request.headers.get("Accept-Language", "(none)")
        return web.Response(text=PAGE.format(accept=accept), content_type="text/html")

    app = web.Application()
    app.router.add_get("/", page)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()

    def look() -> None:  # Selenium blocks: it runs in a thread, the server on our loop
        with browser(390, 844, lang="zh-CN") as driver:
            driver.get(f"http://127.0.0.1:{port}/")
            wait_for_text(driver, "区块浏览器")
            wait_for_text(driver, "fetch failed, offline")
            shown = text(driver)
            assert "Accept-Language: zh-CN" in shown
            assert "页尾 The end" in shown
            assert driver.execute_script("return [innerWidth, innerHeight]") == [390, 844]
            errors = console_errors(driver)
            assert any("harness: an error on purpose" in e for e in errors), errors
            assert any("fonts.example.com" in e for e in errors), errors  # no internet
            assert console_errors(driver) == []  # each entry is handed out once
            shot = screenshot(driver, tmp_path / "shots" / "page.png")
            width, height = png_size(shot)
            assert width == 390
            full = driver.execute_script("return document.documentElement.scrollHeight")
            assert height == full > 2500  # the whole page, not the viewport
            assert driver.execute_script("return innerHeight") == 844  # put back
        with pytest.raises(AssertionError, match="did not appear"), browser(1280, 800) as driver:
            driver.get(f"http://127.0.0.1:{port}/")
            wait_for_text(driver, "words that are not there", timeout=0.5)

    try:
        async with asyncio.timeout(90):
            await asyncio.to_thread(look)
    finally:
        await runner.cleanup()


async def _check(facts: SessionFacts) -> None:
    """Every fact, read back over JSON-RPC from every node."""
    a = facts.addresses
    for url in facts.rpc_urls:
        async with RPCClient(url, timeout=10.0) as rpc:
            assert (await rpc.status())["height"] >= facts.height
            listing = await rpc.listing(facts.listing_id)
            assert listing["listing"]["title"] == facts.listing_title
            assert listing["listing"]["merchant"] == a["merchant"]
            group_listing = await rpc.listing(facts.group_listing_id)
            assert group_listing["listing"]["title"] == facts.group_listing_title
            assert int(group_listing["listing"]["group_size"]) == 3

            for fact in facts.orders.values():
                view = await rpc.order(fact.order_id, history_limit=100)
                o = view["order"]
                assert view["state"] == fact.state, fact
                assert int(o["listing"]) == fact.listing_id
                assert o["buyer"] == a[fact.buyer]
                assert o["merchant"] == a["merchant"]
                assert int(o["quantity"]) == fact.quantity
                assert int(o["group"]) == fact.group_id
                assert o["tracking"] == fact.tracking
                assert o["return_tracking"] == fact.return_tracking
                if fact.referrer:
                    assert o["referrer"] == a[fact.referrer]
                if fact.deadline_ms:
                    assert int(o["deadline"]) == fact.deadline_ms > time.time() * 1000
                # each step's transaction is in the order's history, at its height
                history = {(e["tx_hash"], e["height"]) for e in view["history"]}
                for step, tx in fact.txs.items():
                    assert (tx.hash, tx.height) in history, (fact.role, step)

            group = await rpc.group(facts.group_id)
            assert group["state"] == facts.group_state == "filled"
            assert int(group["group"]["listing"]) == facts.group_listing_id
            members = {m["order_id"]: m["buyer"] for m in group["members"]}
            assert members == {o.order_id: a[o.buyer] for o in facts.orders.values()
                               if o.group_id}

            for review in facts.reviews.values():
                items = (await rpc.reviews(order_id=review.order_id))["items"]
                assert len(items) == 1
                got = items[0]
                assert (got["rating"], got["text"], got["buyer"]) == \
                    (review.rating, review.text, a[review.author])
                assert (got["tx_hash"], got["height"]) == (review.tx.hash, review.tx.height)
                if review.reply is None:
                    assert got["reply"] is None
                else:
                    assert review.reply_tx is not None
                    assert (got["reply"]["text"], got["reply"]["tx_hash"]) == \
                        (review.reply, review.reply_tx.hash)
            by_merchant = await rpc.reviews(merchant=a["merchant"])
            assert {r["order_id"] for r in by_merchant["items"]} == set(facts.reviews)

            sent = await rpc.tx(facts.transfer_tx.hash)
            assert (sent["height"], sent["tx"]["memo"]) == \
                (facts.transfer_tx.height, facts.transfer_memo)
            assert sent["tx"]["sender"] == a["buyer"]
            placed = await rpc.tx(facts.place_tx.hash)
            assert placed["height"] == facts.place_tx.height
            assert placed["tx"]["sender"] == a["buyer"]
            assert [(await rpc.tx(t.hash))["height"] for t in facts.listing_txs] == \
                [t.height for t in facts.listing_txs]


@pytest.mark.timeout(300)
def test_the_scripted_session_leaves_what_its_facts_say(tmp_path: Path) -> None:
    started = time.monotonic()
    with scripted_localnet_in_thread(tmp_path) as facts:
        assert set(facts.orders) >= {"completed", "returned", "disputed", "declined", "open"}
        assert len(set(facts.order_states)) == len(facts.orders)  # distinct orders
        asyncio.run(_check(facts))
        timings = ", ".join(f"{k} {v:.1f} s" for k, v in facts.timings.items())
        print(f"\nscripted localnet: {timings}; {len(facts.outputs)} agora commands; "
              f"height {facts.height}")
        for step, (start, end) in sorted(facts.step_spans.items(), key=lambda kv: kv[1]):
            print(f"  {start:5.2f} -> {end:5.2f}  {step}")
    # every process is gone once the block ends
    assert facts.net.proc is None or facts.net.proc.poll() is not None
    assert time.monotonic() - started < 300
