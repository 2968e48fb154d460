"""The light node against a real node after a real market (the commerce RPC tests'
lifecycle: orders completed, returned, disputed, declined, paid in tokens, a group deal,
reviews with a reply): every verified answer equals the full node's, and, through a
tampering proxy in front of the primary, every lie is caught, reported in
``light_status``, the liar dropped and the answer taken from an honest node -- never
from the liar.

One node (module-scoped); each lie gets a fresh light node (in-memory store) whose
primary is the proxy and whose witness is the node itself.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web
from rpc_helpers import ARBITER, BUYER_1, BUYER_2, MERCHANT, TEA, WAIT, commerce_node
from test_rpc_commerce import CHAIN, Market, lifecycle, text

from chain.block import Header
from chain.keys import PrivateKey
from node.light.client import Options
from node.light.service import LightNode, LightSettings
from node.localnet import free_base_port
from node.rpc.client import RPCClient, RPCFailed
from storage.kv import MemoryKV

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def market(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Market]:
    async with commerce_node(tmp_path_factory.mktemp("light-market"), CHAIN) as net:
        m = Market(net, __import__("rpc_helpers").Calls(CHAIN))
        await lifecycle(m)
        yield m


Tamper = Callable[[dict[str, Any], dict[str, Any]], dict[str, Any] | None]


class Proxy:
    """A full node's RPC with a hand on every answer: ``tamper(request, answer)``
    returns the answer to send (or None: unchanged). Batches are tampered item by item."""

    def __init__(self, upstream: str, tamper: Tamper = lambda q, a: None,
                 raw: Callable[[Any], Any] | None = None) -> None:
        self.upstream = upstream
        self.tamper = tamper
        #: ``await raw(body)``: a response to send instead of forwarding (None: forward).
        self.raw = raw
        self.port = free_base_port(1)
        self.url = f"http://127.0.0.1:{self.port}/"
        self.runner: web.AppRunner | None = None
        self.session: aiohttp.ClientSession | None = None

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        assert self.session is not None
        if self.raw is not None:
            instead = await self.raw(body)
            if instead is not None:
                return instead
        async with self.session.post(self.upstream, json=body) as resp:
            answer = await resp.json()
        if isinstance(body, list):
            answer = [self.tamper(q, a) or a for q, a in zip(body, answer, strict=True)]
        else:
            answer = self.tamper(body, answer) or answer
        return web.json_response(answer)

    async def __aenter__(self) -> Proxy:
        self.session = aiohttp.ClientSession()
        app = web.Application()
        app.router.add_post("/", self._handle)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.runner is not None and self.session is not None
        await self.runner.cleanup()
        await self.session.close()


@asynccontextmanager
async def light(market: Market, primary: str, witnesses: list[str] = (),
                report_key: PrivateKey | None = None
                ) -> AsyncIterator[tuple[LightNode, RPCClient]]:
    port = free_base_port(1)
    settings = LightSettings(primary=primary, witnesses=list(witnesses),
                             rpc_listen=f"127.0.0.1:{port}", poll_interval_ms=100,
                             options=Options(stale_after_ms=500), report_key=report_key)
    genesis = market.net.node.executor.genesis  # the test trusts the node it started
    node = LightNode(genesis, MemoryKV(), settings)
    await node.start()
    try:
        async with RPCClient(f"http://127.0.0.1:{port}/", timeout=WAIT) as client:
            yield node, client
    finally:
        await node.stop()


async def verified(node: LightNode, height: int) -> None:
    """Wait (bounded) until the light node has verified ``height``, on its head event."""
    reached = asyncio.Event()

    def on_head(head: Any) -> None:
        if head.height >= height:
            reached.set()

    node.client.listeners.append(on_head)
    try:
        if node.client.height < height:
            async with asyncio.timeout(WAIT):
                await reached.wait()
    finally:
        node.client.listeners.remove(on_head)


def same(a: Any, b: Any, ignore: tuple[str, ...] = ("height",)) -> None:
    """Equal answers apart from the height read (the light node's head may trail)."""
    def strip(x: Any) -> Any:
        if isinstance(x, dict):
            return {k: strip(v) for k, v in x.items() if k not in ignore}
        if isinstance(x, list):
            return [strip(v) for v in x]
        return x
    assert strip(a) == strip(b)


# ---------------------------------------------------------------- honest answers


async def test_light_answers_equal_the_full_node(market: Market) -> None:
    full = market.client
    async with light(market, market.net.url) as (node, lc):
        st = await lc.status()
        assert st["mode"] == "light" and st["height"] >= 1
        o = market.orders
        for oid in o.values():
            same(await lc.order(oid), await full.order(oid))
        for lid in (market.board, TEA):
            same(await lc.listing(lid), await full.listing(lid))
        same(await lc.group(1), await full.group(1))
        same(await lc.merchant(MERCHANT.address), await full.merchant(MERCHANT.address))
        same(await lc.arbiter(ARBITER.address), await full.arbiter(ARBITER.address))
        for params in ({"merchant": text(MERCHANT)}, {"listing_id": market.board},
                       {"order_id": o["1"]}):
            same(await lc.call("reviews", **params), await full.call("reviews", **params))
        for who in (BUYER_1, BUYER_2, MERCHANT):
            same(await lc.account(who.address), await full.account(who.address))
            same(await lc.token_balance(who.address), await full.token_balance(who.address))
        tx_hash = market.steps["review_1"]["hash"]
        same(await lc.tx(tx_hash), await full.tx(tx_hash))
        same(await lc.tx(tx_hash, prove=True), await full.tx(tx_hash, prove=True))
        same(await lc.call_contract("escrow", "order", [o["2"]]),
             await full.call_contract("escrow", "order", [o["2"]]))
        status = await lc.call("light_status")
        assert status["caught"] == [] and status["primary"] == market.net.url


async def test_light_follows_new_blocks_and_proves_a_new_transaction(market: Market) -> None:
    async with light(market, market.net.url) as (node, lc):
        before = node.client.height
        answer = await market.net.commit(market.calls(BUYER_1, "token", "approve",
                                                      MERCHANT.address, 7))
        await verified(node, answer["height"])
        assert node.client.height > before
        proven = await lc.tx(answer["hash"])
        assert proven["height"] == answer["height"] and proven["receipt"]["status"] == "ok"


async def test_broadcast_tx_commit_answers_the_proven_receipt(market: Market) -> None:
    async with light(market, market.net.url) as (node, lc):
        tx = market.calls(BUYER_2, "token", "approve", MERCHANT.address, 3)
        answer = await lc.broadcast_tx_commit(tx)
        assert answer["hash"] == tx.hash.hex() and answer["receipt"]["status"] == "ok"
        assert answer["height"] <= node.client.height


# ---------------------------------------------------------------- lies


def _results(method: str) -> Callable[[dict[str, Any]], bool]:
    return lambda q: q.get("method") == method


async def caught(market: Market, tamper: Tamper, ask: Callable[[RPCClient], Any],
                 what: str) -> tuple[Any, dict[str, Any]]:
    """Ask through a lying primary with an honest witness; the liar must be caught
    (``what`` in its report) and the answer must be the honest node's."""
    async with Proxy(market.net.url, tamper) as proxy, \
            light(market, proxy.url, [market.net.url]) as (node, lc):
        answer = await ask(lc)
        status = await lc.call("light_status")
        reports = [r for r in status["caught"] if r["node"] == proxy.url]
        assert reports, f"the proxy's lie was not caught: {status}"
        assert any(what in (r["what"] + " " + r["detail"]) for r in reports), reports
        assert status["primary"] == market.net.url
        return answer, status


def _flip(hex_text: str) -> str:
    raw = bytearray(bytes.fromhex(hex_text))
    raw[-1] ^= 1
    return raw.hex()


async def test_a_forged_header_is_caught(market: Market) -> None:
    def forge(q: dict[str, Any], a: dict[str, Any]) -> dict[str, Any] | None:
        if q.get("method") == "header" and "result" in a:
            h = Header.decode(bytes.fromhex(a["result"]["raw"]))
            import dataclasses
            forged = dataclasses.replace(h, state_root=b"\x42" * 32)
            return {**a, "result": {**a["result"], "raw": forged.encode().hex(),
                                    "hash": forged.hash.hex()}}
        return None

    answer, _ = await caught(market, forge, lambda lc: lc.header(), "invalid header")
    honest = await market.client.header(answer["height"])
    assert answer == honest


async def test_a_certificate_short_of_quorum_is_caught(market: Market) -> None:
    # A single validator: a certificate without its signature is short of quorum.
    def short(q: dict[str, Any], a: dict[str, Any]) -> dict[str, Any] | None:
        if q.get("method") == "commit" and "result" in a:
            from chain.block import CommitCertificate
            c = CommitCertificate.decode(bytes.fromhex(a["result"]["raw"]))
            cut = CommitCertificate(c.height, c.view, c.block_hash, ())
            return {**a, "result": {**a["result"], "raw": cut.encode().hex()}}
        return None

    await caught(market, short, lambda lc: lc.status(), "more than 2/3")


async def test_a_certificate_signed_by_the_wrong_set_is_caught(market: Market) -> None:
    evil = PrivateKey.from_seed_text("light-evil-validator")

    def wrong(q: dict[str, Any], a: dict[str, Any]) -> dict[str, Any] | None:
        if q.get("method") == "validators" and "result" in a:
            vs = a["result"]["validators"]
            return {**a, "result": {**a["result"], "validators": [
                {**vs[0], "public_key": evil.public_key.hex()}]}}
        if q.get("method") == "commit" and "result" in a:
            from chain.block import CommitCertificate, CommitSig, Vote, VoteKind
            c = CommitCertificate.decode(bytes.fromhex(a["result"]["raw"]))
            v = Vote.create(evil, CHAIN, VoteKind.COMMIT, c.height, c.view, c.block_hash)
            forged = CommitCertificate(c.height, c.view, c.block_hash,
                                       (CommitSig(v.validator, v.signature),))
            return {**a, "result": {**a["result"], "raw": forged.encode().hex()}}
        return None

    await caught(market, wrong, lambda lc: lc.status(), "not the one its header commits to")


async def test_a_value_that_does_not_match_its_proof_is_caught(market: Market) -> None:
    def lie(q: dict[str, Any], a: dict[str, Any]) -> dict[str, Any] | None:
        if q.get("method") == "proof" and "result" in a and a["result"]["state"]:
            items = [{**s, "value": _flip(s["value"]) if s["value"] else "01"}
                     for s in a["result"]["state"]]
            return {**a, "result": {**a["result"], "state": items}}
        return None

    answer, _ = await caught(market, lie, lambda lc: lc.account(BUYER_1.address), "proof")
    honest = await market.client.account(BUYER_1.address)
    assert answer["balance"] == honest["balance"]


class AnotherKeyProxy(Proxy):
    """Answers every state proof with the (valid) proof of another key: the merchant's
    account, at the same height."""

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        assert self.session is not None
        items = body if isinstance(body, list) else [body]
        decoy = "61" + MERCHANT.address.hex()
        asked: dict[Any, list[str]] = {}
        for q in items:
            if q.get("method") == "proof" and q.get("params", {}).get("keys"):
                asked[q["id"]] = q["params"]["keys"]
                q["params"]["keys"] = [decoy] * len(q["params"]["keys"])
        async with self.session.post(self.upstream, json=body) as resp:
            answer = await resp.json()
        answers = answer if isinstance(answer, list) else [answer]
        for q, a in zip(items, answers, strict=True):
            if q.get("method") == "proof" and "result" in a:
                # the decoy's value and valid proof, claimed for the key asked
                for s, key in zip(a["result"]["state"], asked[q["id"]], strict=True):
                    s["key"] = key
        return web.json_response(answer)


async def test_a_proof_for_another_key_is_caught(market: Market) -> None:
    async with AnotherKeyProxy(market.net.url, lambda q, a: None) as proxy, \
            light(market, proxy.url, [market.net.url]) as (node, lc):
        answer = await lc.order(market.orders["1"])
        status = await lc.call("light_status")
        assert [r["node"] for r in status["caught"]] == [proxy.url]
        assert "proof" in status["caught"][0]["detail"]
    same(answer, await market.client.order(market.orders["1"]))


async def test_absent_for_a_key_that_exists_is_caught(market: Market) -> None:
    def absent(q: dict[str, Any], a: dict[str, Any]) -> dict[str, Any] | None:
        if q.get("method") == "proof" and "result" in a and a["result"]["state"]:
            return {**a, "result": {**a["result"], "state": [
                {**s, "value": None} for s in a["result"]["state"]]}}
        return None

    answer, _ = await caught(market, absent, lambda lc: lc.listing(market.board), "absent")
    same(answer, await market.client.listing(market.board))


async def test_a_tx_that_does_not_match_its_proof_is_caught(market: Market) -> None:
    tx_hash = market.steps["review_1"]["hash"]

    def lie(q: dict[str, Any], a: dict[str, Any]) -> dict[str, Any] | None:
        if q.get("method") == "proof" and "result" in a and a["result"].get("tx"):
            t = a["result"]["tx"]
            return {**a, "result": {**a["result"], "tx": {**t, "receipt": _flip(t["receipt"])}}}
        return None

    answer, _ = await caught(market, lie, lambda lc: lc.tx(tx_hash), "receipt")
    same(answer, await market.client.tx(tx_hash))


async def test_a_primary_that_withholds_new_headers_is_dropped(market: Market) -> None:
    stuck: dict[str, int] = {}

    def stale(q: dict[str, Any], a: dict[str, Any]) -> dict[str, Any] | None:
        if q.get("method") == "status" and "result" in a:
            stuck.setdefault("h", a["result"]["height"])
            return {**a, "result": {**a["result"], "height": stuck["h"]}}
        return None

    async with Proxy(market.net.url, stale) as proxy, \
            light(market, proxy.url, [market.net.url]) as (node, lc):
        # New blocks while the proxy claims the old head.
        for n in range(4):
            await market.net.commit(market.calls(BUYER_1, "token", "approve",
                                                 MERCHANT.address, 100 + n))
        async with asyncio.timeout(WAIT):
            while node.client.primary is None or node.client.primary.url != market.net.url:
                await asyncio.sleep(0.05)
        status = await lc.call("light_status")
        assert status["caught"][0]["what"] == "stale"
        await verified(node, market.net.node.executor.height - 1)


async def test_a_witness_with_a_conflicting_header_is_caught(market: Market) -> None:
    def forge(q: dict[str, Any], a: dict[str, Any]) -> dict[str, Any] | None:
        if q.get("method") == "header" and "result" in a:
            import dataclasses
            h = Header.decode(bytes.fromhex(a["result"]["raw"]))
            forged = dataclasses.replace(h, state_root=b"\x43" * 32)
            return {**a, "result": {**a["result"], "raw": forged.encode().hex(),
                                    "hash": forged.hash.hex()}}
        return None

    async with Proxy(market.net.url, forge) as proxy, \
            light(market, market.net.url, [proxy.url]) as (node, lc):
        status = await lc.call("light_status")
        assert [r["what"] for r in status["caught"]] == ["conflicting header"]
        assert status["caught"][0]["node"] == proxy.url and status["witnesses"] == []
        assert status["primary"] == market.net.url


async def test_a_hidden_review_is_caught(market: Market) -> None:
    def hide(q: dict[str, Any], a: dict[str, Any]) -> dict[str, Any] | None:
        if q.get("method") == "reviews" and "result" in a:
            return {**a, "result": {**a["result"], "items": a["result"]["items"][1:]}}
        return None

    answer, _ = await caught(market, hide,
                             lambda lc: lc.reviews(merchant=MERCHANT.address), "counts")
    same(answer, await market.client.reviews(merchant=MERCHANT.address))


async def test_every_node_lying_means_a_clear_refusal(market: Market) -> None:
    def lie(q: dict[str, Any], a: dict[str, Any]) -> dict[str, Any] | None:
        if q.get("method") == "proof" and "result" in a and a["result"]["state"]:
            return {**a, "result": {**a["result"], "state": [
                {**s, "value": None} for s in a["result"]["state"]]}}
        return None

    async with Proxy(market.net.url, lie) as proxy, light(market, proxy.url) as (node, lc):
        with pytest.raises(RPCFailed) as info:
            await lc.account(BUYER_1.address)
        assert "caught lying" in str(info.value)
        assert json.dumps(await lc.call("light_status")).count(proxy.url) >= 2


async def test_subscribers_get_verified_headers_and_proven_events(market: Market) -> None:
    async with light(market, market.net.url) as (node, lc), aiohttp.ClientSession() as http:
        ws_url = f"http://{node.settings.rpc_listen}/websocket"
        async with http.ws_connect(ws_url) as ws:
            await ws.send_json({"jsonrpc": "2.0", "id": 1, "method": "subscribe",
                                "params": {"kind": "blocks"}})
            await ws.send_json({"jsonrpc": "2.0", "id": 2, "method": "subscribe",
                                "params": {"kind": "events", "contract": "token",
                                           "event": "Approval"}})
            ids = {}
            while len(ids) < 2:
                msg = await asyncio.wait_for(ws.receive_json(), WAIT)
                if "id" in msg:
                    ids[msg["id"]] = msg["result"]["subscription"]
            answer = await market.net.commit(market.calls(BUYER_2, "token", "approve",
                                                          MERCHANT.address, 4242))
            headers, events = [], []
            async with asyncio.timeout(WAIT):
                while not events or not headers or headers[-1]["height"] < answer["height"]:
                    msg = await ws.receive_json()
                    if msg.get("method") != "subscription":
                        continue
                    result = msg["params"]["result"]
                    (headers if msg["params"]["subscription"] == ids[1] else events).append(
                        result)
            heights = [h["height"] for h in headers]
            assert heights == list(range(heights[0], heights[-1] + 1))  # none skipped
            for h in headers[-3:]:
                assert h == await market.client.header(h["height"])
            assert events[-1]["fields"]["amount"] == "4242"
            assert events[-1]["tx_hash"] == answer["hash"]


async def test_subscribers_are_not_told_a_forged_block(market: Market) -> None:
    def forge(q: dict[str, Any], a: dict[str, Any]) -> dict[str, Any] | None:
        if q.get("method") == "block_results" and "result" in a and a["result"]["receipts"]:
            return {**a, "result": {**a["result"], "receipts": [
                _flip(r) for r in a["result"]["receipts"]]}}
        return None

    async with Proxy(market.net.url, forge) as proxy, \
            light(market, proxy.url, [market.net.url]) as (node, lc), \
            aiohttp.ClientSession() as http, \
            http.ws_connect(f"http://{node.settings.rpc_listen}/websocket") as ws:
        await ws.send_json({"jsonrpc": "2.0", "id": 1, "method": "subscribe",
                            "params": {"kind": "events", "contract": "token"}})
        sub = (await asyncio.wait_for(ws.receive_json(), WAIT))["result"]["subscription"]
        answer = await market.net.commit(market.calls(BUYER_2, "token", "approve",
                                                      MERCHANT.address, 4343))
        async with asyncio.timeout(WAIT):
            while True:
                msg = await ws.receive_json()
                if msg.get("params", {}).get("subscription") == sub:
                    event = msg["params"]["result"]
                    if event["tx_hash"] == answer["hash"]:
                        break
        # told only once the honest node proved it, and the liar is out
        assert event["fields"]["amount"] == "4343"
        status = await lc.call("light_status")
        assert [r["node"] for r in status["caught"]] == [proxy.url]
        assert status["caught"][0]["what"] == "invalid block"


async def test_a_fork_signed_by_the_validators_is_reported_on_chain(market: Market) -> None:
    """The primary serves a header the (single) validator really signed twice: both it
    and the witnesses' verify, so the light node turns the two certificates into
    DoubleSign evidence, submits it with its report key to a witness (the side two
    nodes stand by), the chain records it, and the primary (standing alone) is
    dropped."""
    import dataclasses

    from chain.block import CommitCertificate, CommitSig, Vote, VoteKind
    validator = market.net.node.validator_key
    assert validator is not None
    forged_at: dict[str, Any] = {}

    def fork(q: dict[str, Any], a: dict[str, Any]) -> dict[str, Any] | None:
        if "result" not in a or q.get("method") not in ("header", "commit"):
            return None
        height = q["params"].get("height")
        if q["method"] == "header":
            h = Header.decode(bytes.fromhex(a["result"]["raw"]))
            f = dataclasses.replace(h, state_root=b"\x44" * 32)
            forged_at[f.height] = f
            return {**a, "result": {**a["result"], "raw": f.encode().hex(),
                                    "hash": f.hash.hex()}}
        f = forged_at.get(height)
        if f is None:
            return None
        c = CommitCertificate.decode(bytes.fromhex(a["result"]["raw"]))
        v = Vote.create(validator, CHAIN, VoteKind.COMMIT, c.height, c.view, f.hash)
        signed = CommitCertificate(c.height, c.view, f.hash,
                                   (CommitSig(v.validator, v.signature),))
        return {**a, "result": {**a["result"], "raw": signed.encode().hex(),
                                "block_hash": f.hash.hex()}}

    reporter = __import__("rpc_helpers").BUYER_3
    async with Proxy(market.net.url, fork) as proxy, \
            Proxy(market.net.url, lambda q, a: None) as second, \
            light(market, proxy.url, [market.net.url, second.url],
                  report_key=reporter) as (node, lc):
        status = await lc.call("light_status")
        report = next(r for r in status["caught"] if r["node"] == proxy.url)
        assert report["what"] == "conflicting header" and len(report["evidence"]) == 1
        assert report["evidence"][0]["validator"] == validator.address.hex()
        assert status["primary"] == market.net.url

        async def recorded() -> list[Any]:
            return (await market.client.evidence())["items"]
        async with asyncio.timeout(WAIT):
            while not await recorded():
                await asyncio.sleep(0.05)
        item = (await recorded())[0]
        assert item["signed_height"] == report["evidence"][0]["height"]
    # the reporter spent a nonce outside the module's Calls
    market.calls.nonces[reporter.address] = market.calls.nonces.get(reporter.address, 0) + 1


async def test_the_light_nodes_explorer_shows_what_it_proved(market: Market) -> None:
    """/explorer/ on a light node reads the light node's own API: the facts shown are
    the proven ones; what it cannot prove (a block's body) is said, not invented."""
    from test_explorer_pages import Browser

    tip = (await market.client.status())["height"]
    async with light(market, market.net.url, [market.net.url]) as (node, _):
        await verified(node, tip)
        b = Browser(f"http://{node.settings.rpc_listen}")
        try:
            order = await b.text(f"/order/{market.orders['1']}")
            assert "This order has ended: the merchant was paid." in order
            assert "Lovely board, quick delivery" in order
            merchant = await b.text(f"/merchant/{text(MERCHANT)}")
            assert "Completed orders\n1" in merchant and "4.0 of 5 from 2 reviews" in merchant
            home = await b.text("/")
            assert "Latest blocks" in home and f"\n{tip}" in home
            block = await b.text(f"/block/{tip}")
            assert f"Block {tip}" in block
            account = await b.text(f"/account/{text(BUYER_1)}")
            assert "Coin balance" in account
            assert "does not serve account history" in account
        finally:
            await b.close()
