"""The explorer's pages on a real node after a real market (the same lifecycle as the
commerce API's tests: orders completed, returned and refunded, disputed and resolved,
declined, paid in tokens, a group deal of three, reviews with a reply), read over HTTP
as a browser would, and each page's facts checked on its text: English and Chinese
(every text translated), language negotiation and the remembered choice, bad input
(400 / 404 with a sentence, never a stack trace), hostile text escaped, nothing
fetched from elsewhere, the page's main region alone for live updates, the explorer
off by config, ``agora explorer`` against the node (its WebSocket relay too) and a
light node's explorer, which shows only what the light node proved."""

from __future__ import annotations

import asyncio
import html
import json
import random
import re
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web
from rpc_helpers import ARBITER, BUYER_1, BUYER_2, BUYER_3, MERCHANT, NOBODY, Calls, commerce_node
from test_rpc_commerce import CHAIN, PRICE, Market, lifecycle, text

from chain.tx import Transaction, Transfer
from node.explorer import i18n
from node.explorer.i18n import Translator, from_accept_language, negotiate
from node.explorer.pages import Explorer
from node.explorer.server import Relay, start_standalone
from node.explorer.source import HttpSource
from node.localnet import free_base_port

pytestmark = pytest.mark.asyncio(loop_scope="module")

DAY = 86_400_000
HOSTILE = '<script>alert("x")</script> & <b>bold</b>'


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def market(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Market]:
    async with commerce_node(tmp_path_factory.mktemp("explorer"), CHAIN) as net:
        m = Market(net, Calls(CHAIN))
        await lifecycle(m)
        await m.step(hostile=m.calls(MERCHANT, "catalog", "create_listing", HOSTILE,
                                     bytes(32), PRICE, 0, 3, 3 * DAY, 14 * DAY, 7 * DAY,
                                     2 * DAY, ARBITER.address, NOBODY, NOBODY, False, 5_000))
        yield m


class _Text(HTMLParser):
    """The text a person reads (no script or style), and every link's target."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self.urls: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style", "title"):
            self._skip += 1
        for name, value in attrs:
            if name in ("href", "src", "action") and value is not None:
                self.urls.append(value)

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style", "title"):
            self._skip -= 1
        if tag in ("p", "li", "tr", "h1", "h2", "dd", "dt", "div", "td", "th", "blockquote"):
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)

    @property
    def text(self) -> str:
        return re.sub(r"[ \t]+", " ", "".join(self.parts))


def read(body: str) -> _Text:
    parser = _Text()
    parser.feed(body)
    return parser


class Browser:
    """GETs pages of a node's explorer like a browser without JavaScript."""

    def __init__(self, base: str) -> None:
        self.base = base.rstrip("/") + "/explorer"
        self.session = aiohttp.ClientSession()

    async def get(self, path: str, *, status: int = 200, **kwargs: Any) -> tuple[str, Any]:
        async with self.session.get(self.base + path, **kwargs) as r:
            body = await r.text()
            assert r.status == status, f"{path}: HTTP {r.status}\n{body[:2000]}"
            return body, r

    async def text(self, path: str, **kwargs: Any) -> str:
        body, _ = await self.get(path, **kwargs)
        return read(body).text

    async def close(self) -> None:
        await self.session.close()


@pytest_asyncio.fixture(loop_scope="module")
async def browser(market: Market) -> AsyncIterator[Browser]:
    b = Browser(market.net.url)
    yield b
    await b.close()


def pages(m: Market) -> list[str]:
    o = m.orders
    return ["/", "/block/3", f"/tx/{m.steps['place_1']['hash']}",
            f"/account/{text(BUYER_1)}", f"/merchant/{text(MERCHANT)}",
            f"/listing/{m.board}", *[f"/order/{o[k]}" for k in o], "/group/1",
            f"/arbiter/{text(ARBITER)}", "/validators", "/search?q=3"]


async def test_each_page_says_its_facts(market: Market, browser: Browser) -> None:
    m, o = market, market.orders
    home = await browser.text("/")
    assert "The chain now" in home and "Latest blocks" in home
    assert f"Shipped order #{o['group_1']} (tracking G-1)." in home
    assert "validator-0" in home  # who proposed the last blocks

    block = await browser.text("/block/3")
    assert "Block 3" in block and "Placed order #1 for 1 × “Walnut cutting board” at " \
        "10.00." in block
    assert "1 validators signed this block's commit certificate" in block

    tx = await browser.text(f"/tx/{m.steps['place_1']['hash']}")
    assert "Placed order #1 for 1 × “Walnut cutting board” at 10.00." in tx
    assert "Sent with it\n10.00 AGO" in tx and "Fee" in tx and "Gas used" in tx
    assert "Placed the order and paid 10.00 AGO into escrow." in tx  # its event

    review_tx = await browser.text(f"/tx/{m.steps['review_1']['hash']}")
    assert "Reviewed order #1: ★★★★★ “Lovely board, quick delivery”" in review_tx
    assert "(review bounty)" in review_tx

    account = await browser.text(f"/account/{text(BUYER_1)}")
    assert "Coin balance" in account and "Reward tokens" in account
    assert "Confirmed delivery of order #1 and waived the return window." in account

    merchant = await browser.text(f"/merchant/{text(MERCHANT)}")
    for fact in ("4.0 of 5 from 2 reviews", "Distinct reviewers\n2", "Completed orders\n1",
                 "Refunded orders\n1", "Disputed orders\n1 (1 lost by the merchant)",
                 "Declined orders\n1", "Orders not shipped in time\n0",
                 "Sales volume\n12.80 AGO", "Walnut cutting board", "Lovely board, quick "
                 "delivery", "The merchant replied: Thank you!", "Fine, but I sent it back",
                 "Order outcomes over the last 14 days"):
        assert fact in merchant, fact

    listing = await browser.text(f"/listing/{m.board}")
    for fact in ("Walnut cutting board", "Price: 10.00 AGO each.",
                 "Returns: within 7 days of delivery, no reason needed.",
                 "The merchant ships within 3 days of payment",
                 "“Community arbiter”, fee 2%, rules within 3 days; 1 cases, 1 ruled, 0 missed",
                 "2% referral, 1% cashback, 1% review bounty", "Lovely board, quick delivery"):
        assert fact in listing, fact

    tea = await browser.text("/listing/2")
    assert "Group deal: 30.00 AGO each when 3 buyers join within 2 days." in tea
    assert "Group deal #1: 3 of 3 joined" in tea

    completed = await browser.text(f"/order/{o['1']}")
    assert "This order has ended: the merchant was paid." in completed
    assert "Shipped it. Tracking: TRK-1" in completed
    assert "(referral commission)" in completed and "The merchant replied: “Thank you!”" \
        in completed
    returned = await browser.text(f"/order/{o['2']}")
    for fact in ("Asked to return it.", "Accepted the return.", "Sent it back. Tracking: "
                 "RET-2", "This order has ended: the buyer was refunded."):
        assert fact in returned, fact
    disputed = await browser.text(f"/order/{o['3']}")
    assert "Opened a dispute before the arbiter." in disputed
    assert "Offered to settle with 6.00 AGO back to the buyer." in disputed
    assert "(arbiter's fee)" in disputed and "resolved by the arbiter" in disputed
    declined = await browser.text(f"/order/{o['4']}")
    assert "This order has ended: the merchant declined it and the buyer was refunded." \
        in declined
    in_tokens = await browser.text(f"/order/{o['tokens']}")
    assert "paid, waiting to ship" in in_tokens
    assert "The merchant must ship by" in in_tokens and "after that the buyer may cancel" \
        in in_tokens
    shipped = await browser.text(f"/order/{o['group_1']}")
    assert re.search(r"The buyer must confirm delivery or open a dispute by \d{4}-\d\d-\d\d "
                     r"\d\d:\d\d:\d\d UTC ?; after that the order counts as delivered\. "
                     r"\(in 9 days\)", shipped), shipped

    group = await browser.text("/group/1")
    assert "3 of 3 joined" in group and "filled" in group
    for k in ("group_1", "group_2", "group_3"):
        assert f"Order #{o[k]}" in group

    arbiter = await browser.text(f"/arbiter/{text(ARBITER)}")
    assert "“Community arbiter”" in arbiter and "For the buyer\n1" in arbiter
    assert "Fees earned\n0.20 AGO" in arbiter

    validators = await browser.text("/validators")
    assert "1 validators with 10 voting power" in validators and "validator-0" in validators


async def test_search_finds_each_kind_of_subject(market: Market, browser: Browser) -> None:
    m = market

    async def lands(q: str) -> str:
        async with browser.session.get(browser.base + "/search", params={"q": q},
                                       allow_redirects=False) as r:
            assert r.status == 303, (q, r.status, (await r.text())[:500])
            return r.headers["Location"]

    assert await lands("order 3") == "/explorer/order/3"
    assert await lands(f"listing {m.board}") == f"/explorer/listing/{m.board}"
    assert await lands("订单 2") == "/explorer/order/2"
    assert await lands("block 2") == "/explorer/block/2"
    tx = m.steps["place_1"]["hash"]
    assert await lands(tx.upper()) == f"/explorer/tx/{tx}"
    header = await m.client.header(4)
    assert await lands(header["hash"]) == "/explorer/block/4"
    assert await lands(text(MERCHANT)) == f"/explorer/account/{text(MERCHANT)}"
    assert await lands("validator-0") == \
        f"/explorer/account/{(await m.client.validators())['validators'][0]['address']}"
    assert await lands("group 1") == "/explorer/group/1"
    several = await browser.text("/search?q=3")
    assert "“3” may mean:" in several
    for kind in ("Block 3", "Order #3", "Listing #3"):
        assert kind in several
    nothing = await browser.text("/search?q=no+such+thing")
    assert "Nothing on this chain matches “no such thing”." in nothing
    assert "Nothing on this chain matches" in await browser.text("/search?q=order+99999")


async def test_every_page_in_chinese_and_every_text_translated(market: Market,
                                                                browser: Browser) -> None:
    i18n.MISSES = set()
    try:
        for path in pages(market):
            sep = "&" if "?" in path else "?"
            body, response = await browser.get(path + sep + "lang=zh-CN")
            assert response.headers["Content-Language"] == "zh-CN"
            assert '<html lang="zh-CN">' in body
        for path, status in (("/order/999?", 404), ("/block/x?", 400), ("/account/bad?", 400),
                             ("/search?q=zzz&", 200), ("/search?q=3&", 200)):
            await browser.get(path + "lang=zh-CN", status=status)
        assert set() == i18n.MISSES, sorted(i18n.MISSES)
    finally:
        i18n.MISSES = None
    order = await browser.text(f"/order/{market.orders['group_1']}?lang=zh-CN")
    assert "买家须在" in order and "此后订单视为已送达" in order
    assert "状态：" in order and "已发货" in order
    home = await browser.text("/?lang=zh-CN")
    assert "最新区块" in home and "链的当前状态" in home and "发货" in home


async def test_the_language_is_negotiated_switched_and_remembered(market: Market) -> None:
    base = market.net.url.rstrip("/") + "/explorer/"
    # unsafe: keep cookies of an IP address host, as browsers do
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as s:
        async with s.get(base, headers={"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.8"}) as r:
            assert r.headers["Content-Language"] == "zh-CN"
        async with s.get(base, headers={"Accept-Language": "fr-FR, en;q=0.5"}) as r:
            assert r.headers["Content-Language"] == "en"
        async with s.get(base + "?lang=zh-CN", headers={"Accept-Language": "en"}) as r:
            assert r.headers["Content-Language"] == "zh-CN"
            body = await r.text()
        # The switch links keep the page and change only the language.
        assert 'href="/explorer/?lang=en"' in body and 'aria-current="true">中文' in body
        # Remembered: the next page without ?lang is Chinese, whatever the browser says.
        async with s.get(base + "validators", headers={"Accept-Language": "en"}) as r:
            assert r.headers["Content-Language"] == "zh-CN"
        async with s.get(base + "validators?lang=en") as r:
            assert r.headers["Content-Language"] == "en"
        async with s.get(base + "validators") as r:
            assert r.headers["Content-Language"] == "en"
    assert negotiate("xx", None, None) == "en"
    assert from_accept_language("en;q=0.1, zh-TW;q=0.9") == "zh-CN"
    assert from_accept_language("de, fr;q=0.5") is None


async def test_bad_input_is_a_sentence_never_a_stack_trace(market: Market,
                                                          browser: Browser) -> None:
    cases = [("/block/abc", 400, "A height must be a whole number"),
             ("/block/99999999", 404, "There is no block 99999999 yet."),
             ("/block/" + "9" * 30, 400, "must be a whole number"),
             ("/tx/zz", 400, "That is not a hash"),
             ("/tx/" + "ab" * 32, 404, "No transaction with this hash is on the chain"),
             ("/account/agora1xyz", 400, "That is not an address"),
             ("/order/999999", 404, "There is no order #999999."),
             ("/order/-1", 400, "must be a whole number"),
             ("/listing/99999", 404, "There is no listing #99999."),
             ("/group/77", 404, "There is no group deal #77."),
             ("/account/" + text(BUYER_2) + "?before=%00%01", 200, "Coin balance"),
             ("/block/3?page=99999999999", 200, "Block 3"),
             ("/search?q=" + "9" * 5000, 200, "Nothing on this chain matches")]
    for path, status, sentence in cases:
        body, _ = await browser.get(path, status=status)
        assert sentence in read(body).text, (path, read(body).text[:500])
        assert "Traceback" not in body
    async with browser.session.get(browser.base + "/static/../../config.toml") as r:
        assert r.status == 404
    async with browser.session.get(browser.base + "/static/secret.py") as r:
        assert r.status == 404


async def test_hostile_text_is_shown_as_text(market: Market, browser: Browser) -> None:
    listing_id = int(market.steps["hostile"]["receipt"]["return_value"])
    body, _ = await browser.get(f"/listing/{listing_id}")
    assert "<script>alert" not in body and "<b>bold" not in body
    assert html.escape(HOSTILE, quote=False) in body.replace("&#34;", '"')
    assert HOSTILE in read(body).text  # a person reads the title as it was written
    tx = await browser.text(f"/tx/{market.steps['hostile']['hash']}")
    assert f"Listed “{HOSTILE}”" in tx


async def test_nothing_is_fetched_from_elsewhere_and_scripts_are_our_own(
        market: Market, browser: Browser) -> None:
    for path in pages(market):
        body, response = await browser.get(path)
        policy = response.headers["Content-Security-Policy"]
        assert "default-src 'self'" in policy and "script-src 'self'" in policy
        for url in read(body).urls:
            assert url.startswith(("/explorer/", "?", "#")), (path, url)
        assert "<script>" not in body  # no inline script: only our own file
        assert not re.search(r"<[^>]+\son[a-z]+=", body), path  # no inline handlers
    for name, kind in (("explorer.css", "text/css"), ("explorer.js", "application/javascript"),
                       ("favicon.svg", "image/svg+xml")):
        body, response = await browser.get(f"/static/{name}")
        assert response.headers["Content-Type"].startswith(kind)
        body = body.replace('xmlns="http://www.w3.org/2000/svg"', "")  # a name, not a fetch
        assert "http://" not in body and "https://" not in body


async def test_the_main_region_alone_for_live_updates(market: Market,
                                                      browser: Browser) -> None:
    body, _ = await browser.get(f"/order/{market.orders['1']}?part=main")
    assert "<html" not in body and "<header" not in body
    assert "This order has ended: the merchant was paid." in read(body).text
    full, _ = await browser.get(f"/order/{market.orders['1']}")
    assert 'data-live="order:1"' in full


async def test_the_explorer_can_be_switched_off(tmp_path: Path) -> None:
    async with commerce_node(tmp_path / "off", "explorer-off", explorer=False) as net:
        async with aiohttp.ClientSession() as s, s.get(net.url + "explorer/") as r:
            assert r.status == 404
        assert (await net.client.status())["height"] >= 0  # the API stays


async def test_agora_explorer_serves_the_pages_for_another_node(market: Market) -> None:
    listen = f"127.0.0.1:{free_base_port(1)}"
    runner, explorer, relay = await start_standalone(market.net.url, listen)
    b = Browser(f"http://{listen}")
    try:
        order = await b.text(f"/order/{market.orders['2']}")
        assert "This order has ended: the buyer was refunded." in order
        home = await b.text("/")
        assert "The chain now" in home and market.net.url in home  # names its node
        async with b.session.get(f"http://{listen}/", allow_redirects=False) as r:
            assert r.status == 302 and r.headers["Location"] == "/explorer/"
        # The relay: a browser's subscription reaches the node and its notes come back.
        async with b.session.ws_connect(f"http://{listen}/websocket") as ws:
            await ws.send_json({"jsonrpc": "2.0", "id": 1, "method": "subscribe",
                                "params": {"kind": "events", "account": text(BUYER_3)}})
            answer = await asyncio.wait_for(ws.receive_json(), 10)
            assert "subscription" in answer["result"]
            await market.net.commit(market.calls(BUYER_3, "token", "approve",
                                                 MERCHANT.address, 5))
            note = await asyncio.wait_for(ws.receive_json(), 10)
            assert note["method"] == "subscription"
            assert note["params"]["result"]["name"] == "Approval"
        # A node that does not answer: the page says so.
        gone = Explorer(HttpSource(f"http://127.0.0.1:{free_base_port(1)}", timeout=2))
        try:
            with pytest.raises(Exception) as info:
                await gone.home(None, Translator("en"))  # type: ignore[arg-type]
            assert "did not answer" in str(info.value) or "cannot reach" in str(info.value)
        finally:
            await gone.source.close()
    finally:
        await b.close()
        await runner.cleanup()
        await relay.close()
        await explorer.source.close()


async def test_the_relay_is_bounded() -> None:
    class Asking:
        remote = "192.0.2.7"

    with pytest.raises(web.HTTPServiceUnavailable) as info:
        await Relay("http://127.0.0.1:1", max_clients=0).handle(Asking())  # type: ignore[arg-type]
    assert "at most 0 live pages" in info.value.text
    with pytest.raises(web.HTTPServiceUnavailable) as info:
        await Relay("http://127.0.0.1:1", max_per_ip=0).handle(Asking())  # type: ignore[arg-type]
    assert "to one address" in info.value.text


# ---------------------------------------------------------------- regressions of the
# hostile review (each failed on the code before its fix)


@asynccontextmanager
async def liar(real: str, corrupt: Callable[[str, Any], Any]) -> AsyncIterator[str]:
    """A node that passes each batch to ``real`` and corrupts each call's answer with
    ``corrupt(method, answer)`` (a dict answer to put in its place, or a whole raw body
    as bytes)."""
    async def handle(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        calls = json.loads(body)
        async with aiohttp.ClientSession() as s, s.post(real, data=body,
                          headers={"Content-Type": "application/json"}) as r:
            answers = await r.json()
        out = []
        for call, answer in zip(calls, answers, strict=True):
            bad = corrupt(call["method"], answer)
            if isinstance(bad, bytes):
                return web.Response(body=bad, content_type="application/json")
            out.append(bad)
        return web.json_response(out)

    app = web.Application()
    app.router.add_post("/", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_base_port(1)
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        await runner.cleanup()


async def test_answers_of_the_wrong_shape_are_said_never_a_crash(market: Market) -> None:
    """A lying node behind agora explorer: every answer corrupted in turn (a result
    replaced by null, a list, a string, a number; one field of it replaced; error codes
    that are not numbers; nesting past the parser's limit; a token with 10**7
    decimals): each page is a sentence (never a 500), within seconds."""
    m = market
    rng = random.Random(18)
    junk: list[Any] = [None, [], "x", 5, 1e300, True, {}, {"registration": None}, "1" * 400]

    def mutate(value: Any) -> Any:
        if isinstance(value, dict) and value and rng.random() < 0.7:
            key = rng.choice(sorted(value))
            return {**value, key: mutate(value[key])}
        if isinstance(value, list) and value and rng.random() < 0.7:
            i = rng.randrange(len(value))
            return [*value[:i], mutate(value[i]), *value[i + 1:]]
        return rng.choice(junk)

    lies: list[Callable[[str, Any], Any]] = [
        lambda method, a: {**a, "result": mutate(a.get("result"))},
        lambda method, a: {**a, "id": a["id"] + 1},
        lambda method, a: {"jsonrpc": "2.0", "id": a["id"], "error": {"code": "abc",
                                                                     "data": "d" * 200_000}},
        lambda method, a: b"[" * 100_000,
        lambda method, a: {**a, "result": {"value": 10_000_000}} if method == "call" else a,
    ]
    paths = [p for p in pages(m) if not p.startswith("/search")]
    served: list[int] = []
    for n, lie in enumerate(lies):
        rounds = 12 if n == 0 else 1
        for _ in range(rounds):
            async with liar(m.net.url, lie) as url:
                listen = f"127.0.0.1:{free_base_port(1)}"
                runner, explorer, relay = await start_standalone(url, listen)
                b = Browser(f"http://{listen}")
                try:
                    for path in paths:
                        started = time.monotonic()
                        async with b.session.get(b.base + path) as r:
                            body = await r.text()
                        assert r.status != 500, (n, path, read(body).text[:600])
                        assert time.monotonic() - started < 8, (n, path)
                        assert len(body) < 1_000_000, (n, path)
                        served.append(r.status)
                finally:
                    await b.close()
                    await runner.cleanup()
                    await relay.close()
                    await explorer.source.close()
    assert 502 in served


async def test_a_large_answer_is_read_whole(market: Market) -> None:
    source = HttpSource(market.net.url)
    try:
        answers = await source.batch([("block", {"height": 3})] * 100)
        assert all(isinstance(a, dict) and a["header"]["height"] == 3 for a in answers)
        assert len(json.dumps(answers)) > 256 * 1024  # more than one read of the socket
    finally:
        await source.close()


async def test_aborted_handshakes_leave_the_relay_usable(market: Market) -> None:
    listen = f"127.0.0.1:{free_base_port(1)}"
    runner, explorer, relay = await start_standalone(market.net.url, listen)
    host, port = listen.split(":")
    try:
        for _ in range(150):  # an upgrade asked for, then the connection reset
            reader, writer = await asyncio.open_connection(host, int(port))
            writer.write(b"GET /websocket HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                         b"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                         b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
            await writer.drain()
            writer.transport.abort()
        async with aiohttp.ClientSession() as s, \
                s.ws_connect(f"http://{listen}/websocket") as ws:
            await ws.send_json({"jsonrpc": "2.0", "id": 1, "method": "subscribe",
                                "params": {"kind": "blocks"}})
            answer = await asyncio.wait_for(ws.receive_json(), 5)
            assert "subscription" in answer["result"]
        await asyncio.wait_for(relay.idle.wait(), 5)  # every slot is given back
        assert relay.by_ip == {}
    finally:
        await runner.cleanup()
        await relay.close()
        await explorer.source.close()


async def test_odd_input_found_by_the_review(market: Market, browser: Browser) -> None:
    await browser.get("/block/3?page=%C2%B2")  # "²" is a digit to str.isdigit
    for path in ("/block/12%0A", f"/account/{text(BUYER_1)}%0A", f"/merchant/{text(MERCHANT)}%0A"):
        await browser.get(path, status=400)
    # A native coin transfer says how much it sent.
    nonce = market.calls.nonces.get(BUYER_2.address, 0)
    market.calls.nonces[BUYER_2.address] = nonce + 1
    sent = await market.net.commit(Transaction.create(
        BUYER_2, CHAIN, nonce, Transfer(MERCHANT.address, 7 * 10**18), gas_limit=100_000,
        gas_price=1))
    tx = await browser.text(f"/tx/{sent['hash']}")
    assert "Sent 7.00 AGO to" in tx and "Sent with it\n7.00 AGO" in tx


async def test_text_from_the_chain_cannot_change_how_the_page_reads() -> None:
    env = Explorer(HttpSource("http://127.0.0.1:1")).env
    assert env.from_string("{{ x }}").render(x="Tea\u202eset\x00<b>") == "Teaset&lt;b&gt;"
