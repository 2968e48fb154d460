"""The explorer's pages: each handler reads what its page needs from the node's public
JSON-RPC API (a :class:`~node.explorer.source.Source`, in one to three batches) and
renders a Jinja2 template on the server, so every fact of a page is there without
JavaScript; the script (``static/explorer.js``) adds local times and live updates.

Routes, under ``/explorer``: ``/`` (home), ``/block/{height}``, ``/tx/{hash}``,
``/account/{address}``, ``/merchant/{address}``, ``/listing/{id}``, ``/order/{id}``,
``/group/{id}``, ``/arbiter/{address}``, ``/validators``, ``/search?q=``, and
``/static/...``. Any page takes ``?lang=en|zh-CN`` (remembered in a cookie) and
``?part=main`` (only the page's main region: what the script swaps in live).

Bad input is answered 400 with a sentence, an unknown subject 404, a node that does
not answer 502 -- each as a page in the reader's language, never a stack trace.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
from aiohttp import web
from markupsafe import Markup, escape

from . import words
from .i18n import COOKIE, LANGS, Translator, negotiate
from .source import ApiError, Call, Source
from .words import Money

log = logging.getLogger("agora.explorer")

BASE = "/explorer"
STATIC = Path(__file__).parent / "static"
COIN = Money(18, "AGO")
#: Rows of a list page.
PAGE = 20
#: Orders read for a merchant's outcome chart (two pages of the API's largest).
CHART_ORDERS = 200
#: Blocks on the home page (their transactions are the latest transactions).
HOME_BLOCKS = 10
#: Transactions of a block shown per page.
BLOCK_TXS = 50
#: Listing titles looked up per page for sentences.
MAX_TITLES = 30
#: How long the token's symbol and decimals and the contracts' addresses are kept.
META_TTL = 60.0
#: Pages rendered at once (each asks the node for up to ~60 reads); more wait their
#: turn for PAGE_WAIT seconds, then are told the explorer is busy (503).
MAX_PAGES = 8
PAGE_WAIT = 5.0
#: A token's decimals and symbol beyond these are not believed (10**decimals is work).
MAX_DECIMALS = 36
MAX_SYMBOL = 12
#: Seconds a token that could not be read waits before it is asked again.
META_RETRY = 5.0

_HASH = re.compile(r"(0x)?[0-9a-fA-F]{64}")
_ADDRESS = re.compile(r"agora1[02-9ac-hj-np-z]{38}")
_DIGITS = re.compile(r"[0-9]{1,19}")
_CURSOR = re.compile(r"[0-9]{1,19}(:[0-9]{1,10}){0,2}")
_PAGE_NUMBER = re.compile(r"[0-9]{1,6}")
#: What a node's answer of the wrong shape raises in a page (or its template).
_SHAPE_ERRORS = (TypeError, KeyError, ValueError, AttributeError, IndexError,
                 OverflowError, RecursionError, jinja2.UndefinedError)
#: Characters that text from the chain may not bring into a page: controls (NUL...)
#: and the bidirectional overrides and isolates that make text read as it is not.
_UNSHOWN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u202a-\u202e\u2066-\u2069]")


def _shown(value: Any) -> Any:
    """Every value a template prints passes here (Jinja2's ``finalize``)."""
    if isinstance(value, str) and not isinstance(value, Markup):  # Markup: made of
        return _UNSHOWN.sub("", value)  # printed values, each passed here already
    return value

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class PageError(Exception):
    """A page that cannot be shown: the status and the sentence to show."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class Meta:
    tokens: Money
    contracts: dict[str, str]  # name -> address
    chain_id: str
    read_at: float


def _q(t: Translator, text: str, **values: Any) -> Markup:
    """A translated sentence with Markup (a <time>, a link) filled in; the rest escaped."""
    return Markup(escape(t(text))).format(**values)


@functools.cache
def _templates() -> jinja2.Environment:
    """The pages' templates, every one compiled once per process when the first explorer
    is made (~80 ms), so that no reader's first visit to a kind of page pays for it."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("node.explorer", "templates"),
        autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True,
        lstrip_blocks=True, finalize=_shown, cache_size=-1)
    for name in env.list_templates(extensions=["html"]):
        env.get_template(name)
    return env


class Explorer:
    """The pages over one source. ``names`` maps names a reader may search for (a
    wallet's or a localnet's accounts) to addresses."""

    def __init__(self, source: Source, *, names: dict[str, str] | None = None,
                 node_label: str = "", clock: Callable[[], float] = time.time) -> None:
        self.source = source
        self.names = dict(names or {})
        self.node_label = node_label
        self.clock = clock
        self.env = _templates()
        self._meta: Meta | None = None
        self._meta_lock = asyncio.Lock()
        self._pages = asyncio.Semaphore(MAX_PAGES)
        self._names_by_address: dict[str, str] = {}
        self._names_seen = -1
        #: Pages refused because MAX_PAGES were being rendered for PAGE_WAIT.
        self.busy = 0

    # ------------------------------------------------------------ routes

    def routes(self) -> list[tuple[str, str, Handler]]:
        pages: list[tuple[str, Callable[..., Awaitable[tuple[str, dict[str, Any]]]]]] = [
            ("/", self.home), ("/block/{height}", self.block), ("/tx/{hash}", self.tx),
            ("/account/{address}", self.account), ("/merchant/{address}", self.merchant),
            ("/listing/{id}", self.listing), ("/order/{id}", self.order),
            ("/group/{id}", self.group), ("/arbiter/{address}", self.arbiter),
            ("/validators", self.validators), ("/search", self.search)]
        out: list[tuple[str, str, Handler]] = [("GET", BASE, self._to_home)]
        for path, page in pages:
            out.append(("GET", BASE + path, self._page(page)))
        out.append(("GET", BASE + "/static/{name}", self._static))
        return out

    async def _to_home(self, request: web.Request) -> web.StreamResponse:
        raise web.HTTPMovedPermanently(BASE + "/" + (f"?{request.query_string}"
                                                     if request.query_string else ""))

    async def _static(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        types = {"explorer.css": "text/css", "explorer.js": "application/javascript",
                 "favicon.svg": "image/svg+xml"}
        if name not in types:
            raise web.HTTPNotFound(text="no such file\n")
        return web.Response(body=(STATIC / name).read_bytes(), content_type=types[name],
                            headers={"Cache-Control": "public, max-age=300"})

    def _page(self, page: Callable[..., Awaitable[tuple[str, dict[str, Any]]]]) -> Handler:
        async def handler(request: web.Request) -> web.StreamResponse:
            started = time.perf_counter()
            lang = negotiate(request.query.get("lang"), request.cookies.get(COOKIE),
                             request.headers.get("Accept-Language"))
            t = Translator(lang)
            status = 200
            try:
                try:
                    await asyncio.wait_for(self._pages.acquire(), PAGE_WAIT)
                except TimeoutError:
                    self.busy += 1
                    raise PageError(503, t("The explorer is busy; try again in a moment.")
                                    ) from None
                try:
                    template, context = await page(request, t)
                    html = self._render(request, t, template, context)
                finally:
                    self._pages.release()
            except PageError as exc:
                status, html = exc.status, self._error(request, t, exc.message)
            except web.HTTPException as exc:  # a search's redirect
                exc.headers["Server-Timing"] = \
                    f"page;dur={(time.perf_counter() - started) * 1000:.1f}"
                raise
            except _SHAPE_ERRORS as exc:
                # The node answered something other than what the API documents (a
                # lying or broken node behind ``agora explorer``): say so, never crash.
                log.warning("explorer page %s: the node's answer was not understood "
                            "(%s: %.200s)", request.path, type(exc).__name__, exc)
                status, html = 502, self._error(request, t, t(
                    "The node's answer to this page was not understood: it does not have "
                    "the shape the API documents."))
            except Exception:  # noqa: BLE001 - a page never shows a stack trace
                log.exception("explorer page %s failed", request.path)
                status, html = 500, self._error(request, t, t(
                    "This page could not be shown because of an error in the explorer; the "
                    "node's log has the details."))
            response = web.Response(text=html, status=status, content_type="text/html",
                                    charset="utf-8")
            response.headers["Content-Language"] = lang
            response.headers["Cache-Control"] = "no-store"
            response.headers["Content-Security-Policy"] = (
                "default-src 'self'; img-src 'self' data:; style-src 'self'; "
                "script-src 'self'; connect-src 'self' ws: wss:; base-uri 'none'; "
                "form-action 'self'; frame-ancestors 'none'")
            response.headers["X-Content-Type-Options"] = "nosniff"
            if status == 503:
                response.headers["Retry-After"] = "5"
            response.headers["Server-Timing"] = \
                f"page;dur={(time.perf_counter() - started) * 1000:.1f}"
            if request.query.get("lang") in LANGS:
                response.set_cookie(COOKIE, lang, max_age=365 * 86_400, path=BASE,
                                    samesite="Lax")
            return response
        return handler

    def _error(self, request: web.Request, t: Translator, message: str) -> str:
        return self._render(request, t, "error.html", {"title": t("Not shown"),
                                                       "message": message, "live": ""})

    def _render(self, request: web.Request, t: Translator, template: str,
                context: dict[str, Any]) -> str:
        now_ms = int(self.clock() * 1000)
        meta = self._meta
        tokens = meta.tokens if meta is not None else Money(18, "?")

        def link_lang(lang: str) -> str:
            query = {k: v for k, v in request.query.items() if k not in ("lang", "part")}
            query["lang"] = lang
            return str(request.rel_url.with_query(query))

        def when(ms: Any) -> Markup:
            return Markup('<time datetime="{}" data-ms="{}">{}</time>').format(
                words.iso(ms), ms, words.utc(ms))

        def name_of(address: Any) -> str | None:
            return self._label(str(address))

        part = request.query.get("part") == "main"
        tpl = self.env.get_template(template)
        return tpl.render(
            t=t, q=lambda text, **kw: _q(t, text, **kw), lang=t.lang, base=BASE,
            money=COIN, tokens=tokens, w=words, when=when, now_ms=now_ms,
            rel=lambda ms: words.relative(t, int(ms), now_ms), name_of=name_of,
            short=words.short, nobody=words.is_nobody, link_lang=link_lang,
            node_label=self.node_label, part=part, path=request.path, **context)

    def _label(self, address: str) -> str | None:
        return self._by_address().get(address)

    def _by_address(self) -> dict[str, str]:
        """Address -> the name shown for it (the first name it has)."""
        if self._names_seen != len(self.names):  # names are only ever added
            self._names_seen = len(self.names)
            self._names_by_address = {}
            for name, address in self.names.items():
                self._names_by_address.setdefault(address, name)
        return self._names_by_address

    # ------------------------------------------------------------ reading

    async def _ask(self, calls: Sequence[Call]) -> list[Any]:
        return await self.source.batch(list(calls))

    @staticmethod
    def _must(t: Translator, answer: Any, missing: str) -> Any:
        """The answer, or the page that says why not."""
        if isinstance(answer, ApiError):
            if answer.not_found:
                raise PageError(404, missing)
            if answer.unsupported:
                raise PageError(501, t("The node this explorer reads does not serve this "
                                       "(a light node cannot prove it)."))
            if answer.unreachable:
                raise PageError(502, t("The node did not answer: {reason}",
                                       reason=answer.message))
            raise PageError(400, t("The node refused the question: {reason}",
                                   reason=str(answer)))
        return answer

    @staticmethod
    def _may(answer: Any) -> Any:
        """The answer, or None where the node could not give it."""
        return None if isinstance(answer, ApiError) else answer

    async def meta(self) -> Meta:
        async with self._meta_lock:
            if self._meta is not None and self.clock() - self._meta.read_at < META_TTL:
                return self._meta
            contracts, symbol, decimals, status, validators = await self._ask([
                ("contracts", {}), ("call", {"contract": "token", "method": "symbol"}),
                ("call", {"contract": "token", "method": "decimals"}), ("status", {}),
                ("validators", {})])
            addresses = {c["name"]: c["address"] for c in self._may(contracts) or []
                         if isinstance(c, dict) and isinstance(c.get("name"), str)
                         and isinstance(c.get("address"), str)}
            sym = (self._may(symbol) or {}).get("value")
            raw_decimals = str((self._may(decimals) or {}).get("value"))
            dec = int(raw_decimals) if _DIGITS.fullmatch(raw_decimals) else -1
            understood = isinstance(sym, str) and 0 < len(sym) <= MAX_SYMBOL and \
                0 <= dec <= MAX_DECIMALS
            for v in (self._may(validators) or {}).get("validators", []):
                if isinstance(v, dict) and isinstance(v.get("name"), str) and v["name"] \
                        and isinstance(v.get("address"), str):
                    self.names.setdefault(v["name"][:64], v["address"])
            chain_id = str((self._may(status) or {}).get("chain_id", ""))
            if not understood:  # shown with a placeholder, asked again on the next page
                self._meta = Meta(Money(18, "?"), addresses, chain_id,
                                  self.clock() - META_TTL + META_RETRY)
                return self._meta
            self._meta = Meta(Money(dec, _shown(sym)), addresses, chain_id, self.clock())
            return self._meta

    async def titles(self, ids: Sequence[Any]) -> dict[str, str]:
        wanted = list(dict.fromkeys(str(i) for i in ids if _DIGITS.fullmatch(str(i))))[:MAX_TITLES]
        answers = await self._ask([("listing", {"listing_id": int(i)}) for i in wanted])
        return {i: a["listing"]["title"] for i, a in zip(wanted, answers, strict=True)
                if isinstance(a, dict)}

    @staticmethod
    def listing_ids(txs: Sequence[dict[str, Any]]) -> list[Any]:
        ids: list[Any] = []
        for item in txs:
            args = ((item.get("tx") or item).get("action") or {}).get("decoded_args") or {}
            if "listing_id" in args:
                ids.append(args["listing_id"])
            for e in (item.get("receipt") or {}).get("events") or []:
                if e.get("name") == "OrderPlaced":
                    ids.append((e.get("fields") or {}).get("listing"))
        return ids

    async def sentences(self, t: Translator, items: Sequence[dict[str, Any]]) -> list[str]:
        """Each tx (a ``tx`` answer) as a sentence."""
        meta = await self.meta()
        titles = await self.titles(self.listing_ids(items))
        names = self._by_address()
        return [words.action_sentence(t, i["tx"], i.get("receipt"), COIN, meta.tokens,
                                      titles, names) for i in items]

    # ------------------------------------------------------------ checks of input

    @staticmethod
    def _int(t: Translator, text: str, what: str) -> int:
        if not _DIGITS.fullmatch(text):
            raise PageError(400, t("{what} must be a whole number, like 12.", what=t(what)))
        return int(text)

    @staticmethod
    def _address(t: Translator, text: str) -> str:
        if not _ADDRESS.fullmatch(text):
            raise PageError(400, t("That is not an address: an address starts with "
                                   "agora1 and has 44 characters."))
        return text

    @staticmethod
    def _hash(t: Translator, text: str) -> str:
        if not _HASH.fullmatch(text):
            raise PageError(400, t("That is not a hash: a hash has 64 hexadecimal "
                                   "characters."))
        return text.lower().removeprefix("0x")

    @staticmethod
    def _cursor(request: web.Request) -> str | None:
        before = request.query.get("before")
        return before if before and _CURSOR.fullmatch(before) else None

    # ------------------------------------------------------------ pages

    async def home(self, request: web.Request, t: Translator) -> tuple[str, dict[str, Any]]:
        await self.meta()
        status, validators, mempool = await self._ask([
            ("status", {}), ("validators", {}), ("mempool_status", {})])
        status = self._must(t, status, t("The node has no chain yet."))
        height = int(status["height"])
        heights = list(range(height, max(0, height - HOME_BLOCKS), -1))
        blocks = [self._may(b) for b in await self._ask(
            [("block", {"height": h}) for h in heights])]
        blocks = [b for b in blocks if isinstance(b, dict)]
        if not blocks:  # a light node serves headers, not blocks
            headers = await self._ask([("header", {"height": h}) for h in heights])
            blocks = [{"header": h, "txs": []} for h in headers if isinstance(h, dict)]
        latest = [(b["header"], tx) for b in blocks for tx in b.get("txs", [])][:10]
        txs = [self._may(a) for a in await self._ask(
            [("tx", {"hash": tx["hash"]}) for _, tx in latest])]
        txs = [x for x in txs if isinstance(x, dict)]
        said = await self.sentences(t, txs)
        rate = None
        if len(blocks) >= 2:
            span = blocks[0]["header"]["time_ms"] - blocks[-1]["header"]["time_ms"]
            count = sum(b["header"]["tx_count"] for b in blocks[:-1])
            rate = count * 1000 / span if span > 0 else None
        proposers: dict[str, int] = {}
        for b in blocks:
            p = b["header"]["proposer"]
            proposers[p] = proposers.get(p, 0) + 1
        return "home.html", {
            "title": t("Agora explorer"), "live": "blocks", "status": status,
            "validators": self._may(validators), "mempool": self._may(mempool) or
            status.get("mempool") or {}, "blocks": blocks, "rate": rate,
            "txs": list(zip(txs, said, strict=True)), "proposers": proposers}

    async def block(self, request: web.Request, t: Translator) -> tuple[str, dict[str, Any]]:
        await self.meta()
        height = self._int(t, request.match_info["height"], "A height")
        block, commit, status = await self._ask([
            ("block", {"height": height}), ("commit", {"height": height}), ("status", {})])
        if isinstance(block, ApiError) and block.unsupported:
            header = self._must(t, (await self._ask([("header", {"height": height})]))[0],
                                t("There is no block {height} yet.", height=height))
            block = {"header": header, "txs": [], "hash": header["hash"]}
        block = self._must(t, block, t("There is no block {height} yet.", height=height))
        number = request.query.get("page", "")
        page = int(number) if _PAGE_NUMBER.fullmatch(number) else 0
        chosen = block["txs"][page * BLOCK_TXS:(page + 1) * BLOCK_TXS]
        txs = [self._may(a) for a in await self._ask(
            [("tx", {"hash": x["hash"]}) for x in chosen])]
        txs = [x for x in txs if isinstance(x, dict)]
        said = await self.sentences(t, txs)
        more = len(block["txs"]) > (page + 1) * BLOCK_TXS
        return "block.html", {
            "title": t("Block {height}", height=height), "live": "", "block": block,
            "commit": self._may(commit), "status": self._may(status),
            "txs": list(zip(txs, said, strict=True)), "page": page, "more": more}

    async def tx(self, request: web.Request, t: Translator) -> tuple[str, dict[str, Any]]:
        meta = await self.meta()
        tx_hash = self._hash(t, request.match_info["hash"])
        answer, = await self._ask([("tx", {"hash": tx_hash})])
        answer = self._must(t, answer, t("No transaction with this hash is on the chain "
                                         "(it may still be waiting in a node's pool)."))
        said, = await self.sentences(t, [answer])
        receipt = answer.get("receipt") or {}
        fee = int(receipt.get("gas_used", 0)) * int(answer["tx"].get("gas_price", 0))
        events = [(e, words.transition(t, e, COIN, meta.tokens, self._by_address())) for e in
                  receipt.get("events") or []]
        return "tx.html", {"title": t("Transaction"), "live": "", "item": answer,
                           "sentence": said, "fee": fee, "events": events}

    async def account(self, request: web.Request, t: Translator
                      ) -> tuple[str, dict[str, Any]]:
        await self.meta()
        address = self._address(t, request.match_info["address"])
        params: dict[str, Any] = {"address": address, "limit": PAGE}
        if (before := self._cursor(request)) is not None:
            params["before"] = before
        account, tokens, history, merchant, arbiter = await self._ask([
            ("account", {"address": address}), ("token_balance", {"address": address}),
            ("account_history", params), ("merchant", {"merchant": address}),
            ("arbiter", {"arbiter": address})])
        account = self._must(t, account, t("No such account."))
        history = self._may(history)
        txs: list[Any] = []
        if history is not None:
            txs = [self._may(a) for a in await self._ask(
                [("tx", {"hash": i["hash"]}) for i in history["items"]])]
            txs = [x for x in txs if isinstance(x, dict)]
        said = await self.sentences(t, txs)
        merchant = self._may(merchant)
        arbiter = self._may(arbiter)
        return "account.html", {
            "title": t("Account"), "live": f"account:{address}", "address": address,
            "account": account, "token_balance": self._may(tokens), "history": history,
            "txs": list(zip(txs, said, strict=True)),
            "is_merchant": bool(merchant and merchant.get("listings")),
            "is_arbiter": bool(arbiter and (arbiter.get("registration") or {}).get("name")),
            "label": self._label(address)}

    async def merchant(self, request: web.Request, t: Translator
                       ) -> tuple[str, dict[str, Any]]:
        await self.meta()
        address = self._address(t, request.match_info["address"])
        merchant, listings, reviews, orders = await self._ask([
            ("merchant", {"merchant": address}),
            ("listings", {"merchant": address, "limit": 50}),
            ("reviews", {"merchant": address, "limit": PAGE}),
            ("orders", {"merchant": address, "limit": 100})])
        merchant = self._must(t, merchant, t("No such merchant."))
        orders = self._may(orders)
        items = list(orders["items"]) if orders else []
        if orders and orders.get("next") and len(items) < CHART_ORDERS:
            more, = await self._ask([("orders", {"merchant": address, "limit": 100,
                                                 "before": orders["next"]})])
            if isinstance(more, dict):
                items += more["items"]
        return "merchant.html", {
            "title": t("Merchant"), "live": f"events-account:{address}",
            "address": address, "merchant": merchant, "listings": self._may(listings),
            "reviews": self._may(reviews), "orders": items,
            "chart": outcome_chart(items, int(self.clock() * 1000)),
            "label": self._label(address)}

    async def listing(self, request: web.Request, t: Translator
                      ) -> tuple[str, dict[str, Any]]:
        meta = await self.meta()
        listing_id = self._int(t, request.match_info["id"], "A listing id")
        listing, reviews, groups = await self._ask([
            ("listing", {"listing_id": listing_id}),
            ("reviews", {"listing_id": listing_id, "limit": PAGE}),
            ("events", {"contract": "escrow", "name": "GroupChanged", "limit": 100})])
        listing = self._must(t, listing, t("There is no listing #{id}.", id=listing_id))
        terms = listing["listing"]
        arbiter_addresses = [terms.get(f"arbiter_{i}") for i in (1, 2, 3)]
        arbiter_addresses = [a for a in arbiter_addresses if not words.is_nobody(a)]
        arbiters = await self._ask([("arbiter", {"arbiter": a}) for a in arbiter_addresses])
        group_list: dict[str, dict[str, Any]] = {}
        for e in (self._may(groups) or {}).get("items", []):
            f = e.get("fields") or {}
            if str(f.get("listing")) == str(listing_id) and f.get("group_id") not in group_list:
                group_list[str(f.get("group_id"))] = f
        return "listing.html", {
            "title": terms.get("title") or t("Listing"), "live":
            f"events-account:{terms.get('merchant')}", "id": listing_id, "item": listing,
            "terms": words.listing_terms(t, terms, COIN, meta.tokens),
            "arbiters": list(zip(arbiter_addresses, [self._may(a) for a in arbiters],
                                 strict=True)),
            "reviews": self._may(reviews), "groups": list(group_list.values())[:10]}

    async def order(self, request: web.Request, t: Translator) -> tuple[str, dict[str, Any]]:
        meta = await self.meta()
        order_id = self._int(t, request.match_info["id"], "An order id")
        order, review = await self._ask([
            ("order", {"order_id": order_id, "history_limit": 100}),
            ("reviews", {"order_id": order_id})])
        order = self._must(t, order, t("There is no order #{id}.", id=order_id))
        record = order["order"]
        listing, arbiter = await self._ask([
            ("listing", {"listing_id": int(record["listing"])}),
            ("arbiter", {"arbiter": record["arbiter"]})])
        timeline = []
        names = self._by_address()
        for e in order.get("history") or []:
            f = e.get("fields") or {}
            actor = f.get("actor") or f.get("party") or (
                f.get("buyer") if e.get("name") == "OrderPlaced" else None)
            timeline.append({"event": e, "actor": actor,
                             "text": words.transition(t, e, COIN, meta.tokens, names)})
        review_item = next(iter((self._may(review) or {}).get("items", [])), None)
        state = order["state"]
        now_ms = int(self.clock() * 1000)
        deadline = int(record.get("deadline", 0) or 0)
        running = None
        if state in words.OPEN_STATES and deadline:
            when = Markup('<time datetime="{}" data-ms="{}">{}</time>').format(
                words.iso(deadline), deadline, words.utc(deadline))
            sentence = words.deadline_sentence(t, record, state, "\x00",
                                               words.percent(record.get("default_refund_bps")))
            before, _, after = sentence.partition("\x00")
            running = {"sentence": Markup(escape(before)) + when + Markup(escape(after)),
                       "relative": words.relative(t, deadline, now_ms),
                       "passed": deadline < now_ms}
        money = meta.tokens if record.get("in_tokens") else COIN
        return "order.html", {
            "title": t("Order #{id}", id=order_id), "live": f"order:{order_id}",
            "id": order_id, "item": order, "record": record, "state": state,
            "listing": self._may(listing), "arbiter": self._may(arbiter),
            "timeline": timeline, "review": review_item, "running": running,
            "ended": words.ended_sentence(t, state) if state not in words.OPEN_STATES
            else "", "paid_in": money}

    async def group(self, request: web.Request, t: Translator) -> tuple[str, dict[str, Any]]:
        group_id = self._int(t, request.match_info["id"], "A group id")
        await self.meta()
        group, = await self._ask([("group", {"group_id": group_id, "limit": 50})])
        group = self._must(t, group, t("There is no group deal #{id}.", id=group_id))
        listing, = await self._ask([("listing", {"listing_id": int(group["group"]["listing"])})])
        return "group.html", {"title": t("Group deal #{id}", id=group_id),
                              "live": f"events-account:{group['group']['merchant']}",
                              "id": group_id, "item": group, "listing": self._may(listing)}

    async def arbiter(self, request: web.Request, t: Translator
                      ) -> tuple[str, dict[str, Any]]:
        await self.meta()
        address = self._address(t, request.match_info["address"])
        arbiter, = await self._ask([("arbiter", {"arbiter": address})])
        arbiter = self._must(t, arbiter, t("No such arbiter."))
        return "arbiter.html", {"title": t("Arbiter"), "live": f"events-account:{address}",
                                "address": address, "item": arbiter,
                                "label": self._label(address)}

    async def validators(self, request: web.Request, t: Translator
                         ) -> tuple[str, dict[str, Any]]:
        await self.meta()
        validators, proposals, status, evidence = await self._ask([
            ("validators", {}), ("proposals", {"limit": 50}), ("status", {}),
            ("evidence", {"limit": 20})])
        validators = self._must(t, validators, t("The node has no validator set."))
        status = self._must(t, status, t("The node has no chain yet."))
        height = int(status["height"])
        headers = await self._ask([("header", {"height": h})
                                   for h in range(height, max(0, height - 50), -1)])
        proposed: dict[str, int] = {}
        last: dict[str, int] = {}
        for h in headers:
            if isinstance(h, dict):
                proposed[h["proposer"]] = proposed.get(h["proposer"], 0) + 1
                last.setdefault(h["proposer"], h["height"])
        return "validators.html", {
            "title": t("Validators and proposals"), "live": "blocks-slow",
            "set": validators, "proposals": self._may(proposals),
            "evidence": self._may(evidence), "proposed": proposed, "last": last,
            "window": len([h for h in headers if isinstance(h, dict)])}

    async def search(self, request: web.Request, t: Translator
                     ) -> tuple[str, dict[str, Any]]:
        raw = request.query.get("q", "")[:200].strip()
        found = await self.find(raw)
        if len(found) == 1:
            raise web.HTTPSeeOther(found[0][1] + _keep_lang(request))
        return "search.html", {"title": t("Search"), "live": "", "query": raw,
                               "found": [(t(kind, id=ident), url + _keep_lang(request))
                                         for kind, url, ident in found]}

    async def find(self, raw: str) -> list[tuple[str, str, str]]:
        """What ``raw`` may name: (kind sentence, page URL, identifier) for each subject
        that exists on the chain."""
        text = raw.strip()
        lowered = text.lower()
        if not text:
            return []
        if _ADDRESS.fullmatch(text):
            return [("Account {id}", f"{BASE}/account/{text}", text)]
        if _HASH.fullmatch(text):
            h = lowered.removeprefix("0x")
            tx, block = await self._ask([("tx", {"hash": h}), ("block_by_hash", {"hash": h})])
            out = []
            if isinstance(tx, dict):
                out.append(("Transaction {id}", f"{BASE}/tx/{h}", h[:16] + "…"))
            if isinstance(block, dict):
                height = block["header"]["height"]
                out.append(("Block {id}", f"{BASE}/block/{height}", str(height)))
            return out
        kinds = {"block": "block", "height": "block", "区块": "block", "高度": "block",
                 "order": "order", "订单": "order", "listing": "listing", "商品": "listing",
                 "group": "group", "团购": "group"}
        m = re.match(r"^(?:([a-z]+|[\u4e00-\u9fff]+)\s*)?#?\s*([0-9]{1,19})$", lowered)
        if m:
            want = kinds.get(m.group(1) or "")
            if m.group(1) and want is None:
                return []
            n = int(m.group(2))
            checks = [("block", ("header", {"height": n}), "Block {id}", f"{BASE}/block/{n}"),
                      ("order", ("order", {"order_id": n, "history_limit": 1}), "Order #{id}",
                       f"{BASE}/order/{n}"),
                      ("listing", ("listing", {"listing_id": n}), "Listing #{id}",
                       f"{BASE}/listing/{n}"),
                      ("group", ("group", {"group_id": n, "limit": 1}), "Group deal #{id}",
                       f"{BASE}/group/{n}")]
            checks = [c for c in checks if want in (None, c[0])]
            answers = await self._ask([c[1] for c in checks])
            return [(c[2], c[3], str(n)) for c, a in zip(checks, answers, strict=True)
                    if isinstance(a, dict)]
        await self.meta()
        for name, address in self.names.items():
            if name.lower() == lowered:
                return [("Account {id}", f"{BASE}/account/{address}", name)]
        return []


def _keep_lang(request: web.Request) -> str:
    lang = request.query.get("lang")
    return f"?lang={lang}" if lang in LANGS else ""


#: The outcomes a merchant's chart counts, in the order its bars stack.
OUTCOMES = ("completed", "refunded", "resolved", "declined", "cancelled", "open")


def outcome_chart(orders: Sequence[dict[str, Any]], now_ms: int, days: int = 14
                  ) -> dict[str, Any]:
    """A merchant's orders by outcome per day, over the last ``days`` days up to now
    (an order counts on the day it last changed; open ones as open)."""
    day = 86_400_000
    end = now_ms // day
    buckets = [{o: 0 for o in OUTCOMES} for _ in range(days)]
    for o in orders:
        try:
            d = int(o.get("updated_time_ms", 0)) // day
        except (TypeError, ValueError):
            continue
        i = days - 1 - (end - d)
        if not 0 <= i < days:
            continue
        state = o.get("state")
        outcome = state if state in OUTCOMES else "open"
        buckets[i][outcome] += 1
    top = max([sum(b.values()) for b in buckets] + [1])
    return {"days": [(end - days + 1 + i) * day for i in range(days)], "buckets": buckets,
            "top": top, "outcomes": OUTCOMES, "total": sum(sum(b.values()) for b in buckets)}


def render_json(value: Any) -> str:
    return json.dumps(value, indent=1, sort_keys=True)[:20_000]
