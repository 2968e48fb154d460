"""``agora light --watch ADDRESS``: a merchant's open orders, what to do about each and
by when, printed on start and whenever one changes -- read through the light node's own
proven ``order`` method, so a lying full node cannot make a merchant ship an order that
was never paid.

The list of a merchant's orders comes from the primary's index (``orders``); each order
named is then read by proof. An order the primary leaves out cannot be noticed here
(the index is not under the state root), which is why witnesses matter.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from chain.address import address_to_text
from chain.system import COIN_DECIMALS, COIN_SYMBOL

from ..rpc.client import RPCFailed
from ..wallet.amounts import format_amount
from ..wallet.explain import ENDED, next_steps, state_sentence
from . import methods
from .errors import LightError
from .methods import LightContext

log = logging.getLogger("agora.light")

#: Open orders followed per merchant.
MAX_WATCHED = 500
_OPEN = ("joined", "paid", "shipped", "delivered", "return_requested", "return_shipped",
         "disputed")


class Watcher:
    def __init__(self, ctx: LightContext, merchants: list[bytes],
                 out: Callable[[str], None]) -> None:
        self.ctx = ctx
        self.merchants = merchants
        self.out = out
        #: order id -> (state, deadline) last printed
        self.seen: dict[int, tuple[str, str]] = {}
        self.first = True

    async def refresh(self) -> None:
        for merchant in self.merchants:
            try:
                await self._merchant(merchant)
            except (LightError, RPCFailed) as exc:
                log.warning("watch %s: %s", address_to_text(merchant), exc)
            except Exception as exc:  # noqa: BLE001 - JSON-RPC errors of the methods
                log.warning("watch %s: %s", address_to_text(merchant), exc)
        self.first = False

    async def _merchant(self, merchant: bytes) -> None:
        text = address_to_text(merchant)
        ids: list[int] = []
        before = None
        for _ in range(MAX_WATCHED // 100 + 1):  # bounded, whatever the primary says
            primary = self.ctx.client.need_primary()
            page = await primary.call("orders", merchant=text, limit=100,
                                      **({"before": before} if before else {}))
            items = page.get("items", []) if isinstance(page, dict) else []
            for item in items[:100]:
                if not isinstance(item, dict) or not isinstance(item.get("order_id"), int):
                    continue
                if item.get("state") in _OPEN or item.get("order_id") in self.seen:
                    ids.append(int(item["order_id"]))
            before = page.get("next") if isinstance(page, dict) else None
            if not before or not items or len(ids) >= MAX_WATCHED:
                break
        views = []
        for order_id in ids[:MAX_WATCHED]:
            view = await methods.order(self.ctx, methods.C.OrderParams(order_id=order_id,
                                                                      history_limit=1))
            views.append(view.model_dump(mode="json"))
        now = time.time_ns() // 1_000_000
        open_views = [v for v in views if v["state"] not in ENDED]
        if self.first:
            self.out(f"Merchant {text}: {len(open_views)} open order(s) at verified height "
                     f"{self.ctx.client.height}.")
        for v in views:
            key = (v["state"], v["order"]["deadline"])
            oid = v["order_id"]
            if self.seen.get(oid) == key:
                continue
            self.seen[oid] = key
            self.out(line(v, now))
        for oid in [o for o, (s, _) in self.seen.items() if s in ENDED]:
            del self.seen[oid]


def line(view: dict[str, Any], now_ms: int) -> str:
    """An order in a merchant's words: its state, what to do and by when."""
    oid = view["order_id"]
    text = state_sentence(oid, view, now_ms)
    steps = [s for s in next_steps(oid, view, now_ms)
             if s.startswith(("merchant", "anyone", "the buyer"))]
    paid = format_amount(int(view["order"]["paid"]), COIN_DECIMALS)
    head = (f"[verified] {text} Paid {paid} "
            f"{'in reward tokens' if view['order']['in_tokens'] else COIN_SYMBOL}.")
    return head + (" Next: " + "; ".join(steps) + "." if steps else "")
