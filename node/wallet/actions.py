"""One function per wallet command. Each takes a :class:`~.session.Session` and the
command's arguments as typed, does the work through the session (reads over JSON-RPC;
changes through :meth:`Session.send`, which tries first, then signs, submits and
waits for the commit) and returns a :class:`Report`: one JSON object and the same
outcome in sentences. Refusals are raised as :class:`~.errors.Refused` sentences."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from chain.address import address_from_text, address_to_text
from chain.system import COIN_DECIMALS, COIN_SYMBOL, ESCROW_ADDRESS

from .amounts import (
    format_percent,
    parse_amount,
    parse_duration,
    parse_percent,
)
from .errors import BadInput, Refused
from .explain import (
    ENDED,
    NOBODY,
    group_sentence,
    next_steps,
    refused_transition,
    state_sentence,
    until,
    when,
    window,
)
from .session import Sent, Session, now_ms
from .text import one_line


@dataclass
class Report:
    """A command's outcome: ``data`` for ``--json``, ``lines`` for people."""

    data: dict[str, Any]
    lines: list[str] = field(default_factory=list)


def _tx_line(s: Session, sent: Sent) -> str:
    return f"Transaction {sent.hash} committed in block {sent.height}; fee {s.coin(sent.fee)}."


def _balance_lines(s: Session, addresses: list[bytes]) -> tuple[list[str], dict[str, Any]]:
    lines, data = [], {}
    seen: set[bytes] = set()
    for a in addresses:
        if a in seen or a == NOBODY:
            continue
        seen.add(a)
        b = s.balances(a)
        data[address_to_text(a)] = {"coin": str(b["coin"]), "tokens": str(b["tokens"])}
        lines.append(f"  {s.who(a)}: {s.coin(b['coin'])}, {s.tokens(b['tokens'])}")
    return (["Balances after:"] + lines if lines else []), data


# ---------------------------------------------------------------------- coin and tokens


def balance(s: Session, who: str) -> Report:
    address = s.address(who)
    text = address_to_text(address)
    account = s.rpc("account", address=text)
    tokens = s.rpc("token_balance", address=text)
    coin = int(account["balance"])
    tok = int(tokens["balance"])
    data = {"address": text, "name": s.name_of(address), "coin": str(coin),
            "tokens": str(tok), "coin_symbol": COIN_SYMBOL, "nonce": account["nonce"],
            "height": account["height"]}
    lines = [f"{s.who(address)} at height {account['height']}:",
             f"  {s.coin(coin)}",
             f"  {s.tokens(tok)} (reward tokens, each redeemable for one {COIN_SYMBOL})"]
    if account["pending_nonce"] != account["nonce"]:
        lines.append(f"  {account['pending_nonce'] - account['nonce']} transaction(s) "
                     "waiting in the mempool")
    return Report(data, lines)


def transfer(s: Session, sender: str, to: str, amount: str, *, token: bool = False,
             raw: bool = False, memo: str = "") -> Report:
    receiver = s.address(to, "recipient")
    if receiver == NOBODY:
        raise BadInput("the recipient is the zero address, which belongs to nobody: what is "
                       "sent there is lost for good")
    if token:
        symbol, decimals = s.token_unit()
        value = parse_amount(amount, decimals, raw=raw, symbol=symbol)
    else:
        value = parse_amount(amount, COIN_DECIMALS, raw=raw, symbol=COIN_SYMBOL)
    if value == 0:
        raise BadInput("the amount is zero: nothing to send")
    key = s.key(sender)
    if token:
        have = int(s.rpc("token_balance", address=address_to_text(key.address))["balance"])
        if have < value:
            raise Refused(f"Insufficient tokens: {s.who(key.address)} has {s.tokens(have)}, "
                          f"this needs {s.tokens(value)} ({s.tokens(value - have)} more).")
        sent = s.send(key, "token", "transfer", [receiver, value], memo=memo)
        what = s.tokens(value)
    else:
        if s.rpc("account", address=address_to_text(receiver))["is_contract"]:
            raise Refused(f"{s.who(receiver)} is a contract: coin reaches a contract only "
                          "through one of its payable methods, never by a transfer.")
        sent = s.send_transfer(key, receiver, value, memo=memo)
        what = s.coin(value)
    lines, balances = _balance_lines(s, [key.address, receiver])
    return Report({"action": "transfer", "from": address_to_text(key.address),
                   "to": address_to_text(receiver), "amount": str(value),
                   "token": token, "tx": sent.json(), "balances": balances},
                  [f"Sent {what} from {s.who(key.address)} to {s.who(receiver)}.",
                   _tx_line(s, sent), *lines])


def token_redeem(s: Session, sender: str, amount: str, *, raw: bool = False) -> Report:
    symbol, decimals = s.token_unit()
    key = s.key(sender)
    have = int(s.rpc("token_balance", address=address_to_text(key.address))["balance"])
    value = have if amount == "all" else parse_amount(amount, decimals, raw=raw, symbol=symbol)
    if value == 0:
        raise BadInput("the amount is zero: nothing to redeem")
    if have < value:
        raise Refused(f"Insufficient tokens: {s.who(key.address)} has {s.tokens(have)}, "
                      f"redeeming needs {s.tokens(value)} ({s.tokens(value - have)} more).")
    sent = s.send(key, "token", "redeem", [value])
    lines, balances = _balance_lines(s, [key.address])
    return Report({"action": "token.redeem", "from": address_to_text(key.address),
                   "amount": str(value), "tx": sent.json(), "balances": balances},
                  [f"Redeemed {s.tokens(value)} for {s.coin(value)}.", _tx_line(s, sent),
                   *lines])


# ---------------------------------------------------------------------- listings


@dataclass
class Terms:
    """Listing terms as typed (None: keep / the default)."""

    ship: str | None = None
    confirm: str | None = None
    return_window: str | None = None
    answer: str | None = None
    final_sale: bool = False
    arbiters: tuple[str, ...] = ()
    no_arbiter_ok: bool | None = None
    default_refund: str | None = None


def _listing(s: Session, listing_id: int) -> dict[str, Any]:
    return s.rpc("listing", listing_id=listing_id)


def _terms_args(s: Session, t: Terms, current: dict[str, Any] | None) -> list[Any]:
    def ms(text: str | None, name: str, default: int) -> int:
        if text is not None:
            return parse_duration(text, f"the {name} window")
        return int(current[f"{name}_window"]) if current else default

    day = 86_400_000
    ret = 0 if t.final_sale else ms(t.return_window, "return", 7 * day)
    arbiters = [s.address(a, "arbiter") for a in t.arbiters]
    if len(arbiters) > 3:
        raise BadInput("a listing names at most three arbiters")
    if not arbiters and current:
        arbiters = [address_from_text(current[f"arbiter_{i}"]) for i in (1, 2, 3)]
    arbiters += [NOBODY] * (3 - len(arbiters))
    no_arbiter = (t.no_arbiter_ok if t.no_arbiter_ok is not None
                  else bool(current["no_arbiter_ok"]) if current else arbiters[0] == NOBODY)
    refund = (parse_percent(t.default_refund, "the default refund")
              if t.default_refund is not None
              else int(current["default_refund_bps"]) if current else 5_000)
    return [ms(t.ship, "ship", 3 * day), ms(t.confirm, "confirm", 14 * day), ret,
            ms(t.answer, "answer", 2 * day), *arbiters, no_arbiter, refund]


def _listing_explain(what: str) -> Callable[[str], str]:
    return lambda reason: f"Cannot {what}: {reason.rstrip('.')}."


def _limits(s: Session) -> dict[str, Any]:
    """The catalog's deploy limits (it publishes them for wallets to check against)."""
    if "limits" not in s._cache:
        s._cache["limits"] = s.view("catalog", "limits") or {}
    return s._cache["limits"]


def _check_rates(s: Session, rates: list[int]) -> None:
    most = int(_limits(s).get("max_commission_bps", 10_000))
    if sum(rates) > most:
        raise BadInput(f"the commissions add up to {format_percent(sum(rates))}; together "
                       f"they may be at most {format_percent(most)} of a sale")


def _check_group(s: Session, size: int, window_ms: int) -> None:
    limits = _limits(s)
    most = int(limits.get("max_group_size", size))
    if not 2 <= size <= most:
        raise BadInput(f"a group is 2 to {most:,} buyers, not {size:,}")
    shortest = int(limits.get("min_window", window_ms))
    longest = int(limits.get("max_window", window_ms))
    if not shortest <= window_ms <= longest:
        raise BadInput(f"the group window is {window(window_ms)}; it may be "
                       f"{window(shortest)} to {window(longest)}")


def _group_args(s: Session, group_price: str | None, group_size: int | None,
                group_window: str | None, raw: bool) -> list[Any] | None:
    if not (group_price or group_size or group_window):
        return None
    if not (group_price and group_size and group_window):
        raise BadInput("a group deal needs --group-price, --group-size and --group-window")
    gp = parse_amount(group_price, COIN_DECIMALS, raw=raw, what="group price")
    gw = parse_duration(group_window, "the group window")
    _check_group(s, group_size, gw)
    return [gp, group_size, gw]


class _Steps:
    """Transactions sent one after another for one command: when a later one is
    refused, the refusal says which went through before it (they are committed, and
    final), so nobody believes a half-done command did nothing."""

    def __init__(self, s: Session, key: Any, listing_id: int | None = None) -> None:
        self.s, self.key, self.listing_id = s, key, listing_id
        self.txs: list[Sent] = []
        self.done: list[str] = []

    def send(self, done: str, method: str, args: list[Any],
             explain: Callable[[str], str]) -> Sent:
        try:
            sent = self.s.send(self.key, "catalog", method, args, explain=explain)
        except Refused as exc:
            if not self.done:
                raise
            done = "; ".join(self.done)
            raise Refused(f"{done[0].upper()}{done[1:]} (committed); then: {exc}",
                          listing_id=self.listing_id, txs=[t.json() for t in self.txs],
                          **exc.details) from None
        self.txs.append(sent)
        self.done.append(done)
        return sent


def listing_create(s: Session, sender: str, *, title: str, price: str | None,
                   token_price: str | None, stock: int, description: str,
                   terms: Terms, referral: str | None = None, cashback: str | None = None,
                   bounty: str | None = None, group_price: str | None = None,
                   group_size: int | None = None, group_window: str | None = None,
                   raw: bool = False) -> Report:
    # Everything typed is read and checked before the first transaction: a listing is
    # created, then its commissions and its group deal are set, each a transaction.
    symbol, decimals = s.token_unit()
    coin_price = parse_amount(price, COIN_DECIMALS, raw=raw, what="price") if price else 0
    tok_price = (parse_amount(token_price, decimals, raw=raw, what="token price")
                 if token_price else 0)
    if not coin_price and not tok_price:
        raise BadInput("give a --price (coin) or a --token-price (reward tokens), or both")
    rates = None
    if referral or cashback or bounty:
        rates = [parse_percent(r or "0", n) for r, n in ((referral, "referral"),
                                                         (cashback, "cashback"),
                                                         (bounty, "review bounty"))]
        _check_rates(s, rates)
    group = _group_args(s, group_price, group_size, group_window, raw)
    terms_args = _terms_args(s, terms, None)
    key = s.key(sender)
    digest = hashlib.sha256(description.encode()).digest()
    steps = _Steps(s, key)
    sent = steps.send("", "create_listing",
                      [title, digest, coin_price, tok_price, stock, *terms_args],
                      _listing_explain("create the listing"))
    listing_id = steps.listing_id = int(sent.return_value)
    steps.done[-1] = f"Listing {listing_id} was created"
    lines = [f"Listing {listing_id} created: {title!r}, "
             f"{_price_text(s, coin_price, tok_price)}, {stock} in stock."]
    fix = f"; set them with `agora listing edit {listing_id} ...`"
    if rates is not None:
        steps.send("its commissions were set", "set_commissions", [listing_id, *rates],
                   lambda r: _listing_explain("set the commissions")(r).rstrip(".") + fix)
        lines.append(f"Commissions: referral {format_percent(rates[0])}, cashback "
                     f"{format_percent(rates[1])}, review bounty {format_percent(rates[2])} "
                     "(paid in reward tokens out of your proceeds).")
    if group is not None:
        gp, size, gw = group
        steps.send("its group deal was set", "set_group_deal", [listing_id, *group],
                   lambda r: _listing_explain("set the group deal")(r).rstrip(".") + fix)
        lines.append(f"Group deal: {s.coin(gp)} each once {size} buyers join within "
                     f"{window(gw)}.")
    lines += [_tx_line(s, t) for t in steps.txs]
    view = _listing(s, listing_id)
    return Report({"action": "listing.create", "listing_id": listing_id,
                   "listing": view["listing"], "txs": [t.json() for t in steps.txs]},
                  lines + _listing_lines(s, listing_id, view, brief=True))


def _price_text(s: Session, coin_price: int, tok_price: int) -> str:
    parts = []
    if coin_price:
        parts.append(s.coin(coin_price))
    if tok_price:
        parts.append(s.tokens(tok_price))
    return " or ".join(parts)


def listing_edit(s: Session, sender: str, listing_id: int, *, price: str | None = None,
                 token_price: str | None = None, stock: int | None = None,
                 terms: Terms | None = None, referral: str | None = None,
                 cashback: str | None = None, bounty: str | None = None,
                 group_price: str | None = None, group_size: int | None = None,
                 group_window: str | None = None, resume: bool = False,
                 raw: bool = False) -> Report:
    current = _listing(s, listing_id)["listing"]
    _, decimals = s.token_unit()
    # Every change is read and checked first; then each is its own transaction.
    planned: list[tuple[str, str, list[Any], str]] = []  # (done, method, args, line)
    if price is not None or token_price is not None:
        cp = (parse_amount(price, COIN_DECIMALS, raw=raw, what="price") if price is not None
              else int(current["price"]))
        tp = (parse_amount(token_price, decimals, raw=raw, what="token price")
              if token_price is not None else int(current["token_price"]))
        planned.append(("the price was changed", "set_price", [listing_id, cp, tp],
                        f"Price now {_price_text(s, cp, tp)} (orders already placed keep "
                        "theirs)."))
    if stock is not None:
        planned.append(("the stock was changed", "set_stock", [listing_id, stock],
                        f"Stock now {stock}."))
    if terms is not None and terms != Terms():
        planned.append(("the terms were changed", "set_terms",
                        [listing_id, *_terms_args(s, terms, current)],
                        "Terms changed (orders already placed keep theirs)."))
    if referral is not None or cashback is not None or bounty is not None:
        rates = [parse_percent(r, n) if r is not None else int(current[f"{n}_bps"])
                 for r, n in ((referral, "referral"), (cashback, "cashback"),
                              (bounty, "bounty"))]
        _check_rates(s, rates)
        planned.append(("the commissions were changed", "set_commissions",
                        [listing_id, *rates], "Commissions changed."))
    if group_price is not None or group_size is not None or group_window is not None:
        gp = (parse_amount(group_price, COIN_DECIMALS, raw=raw, what="group price")
              if group_price is not None else int(current["group_price"]))
        gs = group_size if group_size is not None else int(current["group_size"])
        gw = (parse_duration(group_window, "the group window") if group_window is not None
              else int(current["group_window"]))
        if gp:
            _check_group(s, gs, gw)
        planned.append(("the group deal was changed", "set_group_deal",
                        [listing_id, gp, gs, gw], "Group deal changed."))
    if resume:
        if not current["paused"]:
            raise Refused(f"Listing {listing_id} is not paused: it already takes orders.")
        planned.append((f"listing {listing_id} was resumed", "resume", [listing_id],
                        f"Listing {listing_id} takes orders again."))
    if not planned:
        raise BadInput("nothing to change: give --price, --stock, a term, a commission, "
                       "a group deal option or --resume")
    steps = _Steps(s, s.key(sender), listing_id)
    explain = _listing_explain(f"edit listing {listing_id}")
    for done, method, args, _line in planned:
        steps.send(done, method, args, explain)
    view = _listing(s, listing_id)
    return Report({"action": "listing.edit", "listing_id": listing_id,
                   "listing": view["listing"], "txs": [t.json() for t in steps.txs]},
                  [line for *_, line in planned] + [_tx_line(s, t) for t in steps.txs])


def listing_pause(s: Session, sender: str, listing_id: int) -> Report:
    current = _listing(s, listing_id)["listing"]
    if current["paused"]:
        raise Refused(f"Listing {listing_id} is already paused. Resume it with "
                      f"`agora listing edit {listing_id} --resume`.")
    key = s.key(sender)
    sent = s.send(key, "catalog", "pause", [listing_id],
                  explain=_listing_explain(f"pause listing {listing_id}"))
    return Report({"action": "listing.pause", "listing_id": listing_id, "tx": sent.json()},
                  [f"Listing {listing_id} is paused: it takes no new orders (orders placed "
                   f"go on). Resume it with `agora listing edit {listing_id} --resume`.",
                   _tx_line(s, sent)])


def _listing_lines(s: Session, listing_id: int, view: dict[str, Any],
                   brief: bool = False) -> list[str]:
    L = view["listing"]
    arbiters = [a for a in (L["arbiter_1"], L["arbiter_2"], L["arbiter_3"])
                if address_from_text(a) != NOBODY]
    lines = [] if brief else [
        f"Listing {listing_id}: {L['title']!r} by {s.who(L['merchant'])}"
        + (" — PAUSED" if L["paused"] else ""),
        f"  price: {_price_text(s, int(L['price']), int(L['token_price']))}; "
        f"stock {L['stock']}; version {L['version']}",
        f"  description sha256: {L['description']}"]
    ret = int(L["return_window"])
    lines += [
        f"  ships within {window(int(L['ship_window']))}; the buyer confirms within "
        f"{window(int(L['confirm_window']))}; "
        + (f"returns: {window(ret)}, no reason needed" if ret else "FINAL SALE: no returns"),
        f"  arbiters: {', '.join(s.who(a) for a in arbiters) if arbiters else 'none'}"
        + ("; orders without an arbiter are allowed (a contested return is then final)"
           if L["no_arbiter_ok"] else "")
        + f"; a silent arbiter's default: {format_percent(int(L['default_refund_bps']))} "
          "back to the buyer",
        f"  commissions: referral {format_percent(int(L['referral_bps']))}, cashback "
        f"{format_percent(int(L['cashback_bps']))}, review bounty "
        f"{format_percent(int(L['bounty_bps']))}"]
    if int(L["group_size"]):
        lines.append(f"  group deal: {s.coin(int(L['group_price']))} each when "
                     f"{L['group_size']} buyers join within {window(int(L['group_window']))}")
    if not brief:
        rep = view["reputation"]
        stats = view["stats"]
        reviews = int(rep["reviews"])
        avg = f"{int(rep['rating_sum']) / reviews:.2f}/5 from {reviews}" if reviews else "no"
        lines.append(f"  reviews: {avg} review(s); orders completed {stats['completed']}, "
                     f"refunded {stats['refunded']}, declined {stats['declined']}, not "
                     f"shipped {stats['not_shipped']}, disputes {stats['disputes']}")
    return lines


def listing_show(s: Session, listing_id: int) -> Report:
    view = _listing(s, listing_id)
    return Report({k: v for k, v in view.items() if k != "raw"},
                  _listing_lines(s, listing_id, view))


def listing_list(s: Session, merchant: str, limit: int = 50) -> Report:
    address = s.address(merchant, "merchant")
    page = s.rpc("listings", merchant=address_to_text(address), limit=limit)
    lines = [f"{page['total']} listing(s) by {s.who(address)}:"]
    for item in page["items"]:
        L = item["listing"]
        lines.append(f"  {item['listing_id']}: {L['title']!r} — "
                     f"{_price_text(s, int(L['price']), int(L['token_price']))}, stock "
                     f"{L['stock']}" + (" (paused)" if L["paused"] else "")
                     + (" (group deal)" if int(L["group_size"]) else ""))
    if page.get("next"):
        lines.append(f"  ... more: raise --limit (at most {limit} shown)")
    return Report(page, lines)


# ---------------------------------------------------------------------- arbiters


def arbiter_register(s: Session, sender: str, name: str, fee: str, ruling_window: str
                     ) -> Report:
    key = s.key(sender)
    bps = parse_percent(fee, "the fee")
    ms = parse_duration(ruling_window, "the ruling window")
    sent = s.send(key, "catalog", "register_arbiter", [name, bps, ms],
                  explain=_listing_explain("register as an arbiter"))
    return Report({"action": "arbiter.register", "arbiter": address_to_text(key.address),
                   "fee_bps": bps, "ruling_window_ms": ms, "tx": sent.json()},
                  [f"{s.who(key.address)} is registered as arbiter {name!r}: fee "
                   f"{format_percent(bps)} of a disputed order, rulings within {window(ms)}.",
                   "Merchants can now name you in their listings (--arbiter).",
                   _tx_line(s, sent)])


def arbiter_show(s: Session, who: str) -> Report:
    address = s.address(who, "arbiter")
    view = s.rpc("arbiter", arbiter=address_to_text(address))
    reg, cases = view["registration"], view["cases"]
    if not int(reg.get("registered_at") or 0):
        return Report(view, [f"{s.who(address)} is not a registered arbiter."])
    return Report(view, [
        f"Arbiter {reg['name']!r}: {s.who(address)}"
        + ("" if reg["active"] else " (inactive: takes no new orders)"),
        f"  fee {format_percent(int(reg['fee_bps']))}; rules within "
        f"{window(int(reg['ruling_window']))}; registered {when(int(reg['registered_at']))}",
        f"  cases {cases['cases']}: ruled {cases['ruled']} (for the buyer {cases['for_buyer']}, "
        f"for the merchant {cases['for_merchant']}, split {cases['split']}), missed "
        f"{cases['missed']}; fees earned {s.coin(int(cases['fees']))}"])


# ---------------------------------------------------------------------- orders


def _order(s: Session, order_id: int) -> dict[str, Any]:
    return s.rpc("order", order_id=order_id, history_limit=50)


def _order_or_none(s: Session, order_id: int) -> dict[str, Any] | None:
    try:
        return _order(s, order_id)
    except Refused:
        return None


def _order_explain(s: Session, action: str, order_id: int) -> Callable[[str], str]:
    def explain(reason: str) -> str:
        return refused_transition(action, order_id, reason, _order_or_none(s, order_id),
                                  now_ms())
    return explain


def _reviewed(s: Session, order_id: int, view: dict[str, Any]) -> bool | None:
    """Whether an ended order has its review (None while it has not ended)."""
    if view["state"] not in ENDED:
        return None
    review = s.view("reviews", "review", order_id)
    return isinstance(review, dict) and int(review.get("rating", 0)) > 0


def _unit(s: Session, in_tokens: bool) -> tuple[str, int]:
    return s.token_unit() if in_tokens else (COIN_SYMBOL, COIN_DECIMALS)


def _money(s: Session, value: int, in_tokens: bool) -> str:
    return s.tokens(value) if in_tokens else s.coin(value)


def _payout_lines(s: Session, sent: Sent) -> tuple[list[str], list[dict[str, Any]], list[bytes]]:
    lines, data, who = [], [], []
    for p in sent.events_named("Payout"):
        receiver = address_from_text(p["receiver"])
        amount = int(p["amount"])
        lines.append(f"  {_money(s, amount, bool(p['in_tokens']))} to {s.who(receiver)} "
                     f"({one_line(str(p['reason']))})")
        data.append(p)
        who.append(receiver)
    return (["Paid out:"] + lines if lines else []), data, who


def order_place(s: Session, sender: str, listing_id: int, *, quantity: int = 1,
                arbiter: str | None = None, no_arbiter: bool = False,
                referrer: str | None = None, max_total: str | None = None,
                tokens: bool = False, raw: bool = False) -> Report:
    view = _listing(s, listing_id)
    L = view["listing"]
    if L["paused"]:
        raise Refused(f"Listing {listing_id} is paused by its merchant: it takes no orders now.")
    if quantity < 1:
        raise BadInput("the quantity is at least 1")
    if quantity > int(L["stock"]):
        raise Refused(f"Listing {listing_id} has {L['stock']} in stock; you asked for "
                      f"{quantity}.")
    unit_price = int(L["token_price"] if tokens else L["price"])
    if unit_price == 0:
        raise Refused(f"Listing {listing_id} is not sold for "
                      f"{'reward tokens' if tokens else COIN_SYMBOL}"
                      + ("; pay in coin (drop --tokens)." if tokens else
                         "; pay in reward tokens (--tokens)."))
    total = unit_price * quantity
    symbol, decimals = _unit(s, tokens)
    if max_total is not None:
        cap = parse_amount(max_total, decimals, raw=raw, what="--max-total", symbol=symbol)
        if total > cap:
            raise Refused(f"The order costs {_money(s, total, tokens)}, more than your "
                          f"--max-total {_money(s, cap, tokens)}: the price may have changed.")
    if no_arbiter:
        chosen = NOBODY
    elif arbiter is not None:
        chosen = s.address(arbiter, "arbiter")
    else:
        first = address_from_text(L["arbiter_1"])
        chosen = first if first != NOBODY else NOBODY
    ref = s.address(referrer, "referrer") if referrer else NOBODY
    key = s.key(sender)
    version = int(L["version"])
    explain = _listing_explain(f"order from listing {listing_id}")
    if tokens:
        data = (listing_id.to_bytes(32, "big") + version.to_bytes(32, "big")
                + quantity.to_bytes(32, "big") + chosen + ref)
        have = int(s.rpc("token_balance", address=address_to_text(key.address))["balance"])
        if have < total:
            raise Refused(f"Insufficient tokens: {s.who(key.address)} has {s.tokens(have)}, "
                          f"the order costs {s.tokens(total)} ({s.tokens(total - have)} more).")
        sent = s.send(key, "token", "transfer_and_call", [ESCROW_ADDRESS, total, data],
                      explain=explain)
    else:
        sent = s.send(key, "escrow", "place_order",
                      [listing_id, version, quantity, chosen, ref], value=total,
                      explain=explain)
    placed = sent.events_named("OrderPlaced")
    if not placed:
        raise Refused(f"transaction {sent.hash} committed but placed no order")
    order_id = int(placed[0]["order_id"])
    order = _order(s, order_id)
    o = order["order"]
    lines = [f"Order {order_id} placed: {quantity} x {L['title']!r} for "
             f"{_money(s, total, tokens)}, held in escrow until it ends.",
             f"  merchant {s.who(L['merchant'])} ships by {when(int(o['deadline']))}; "
             f"until then you can cancel for a full refund (agora order cancel {order_id}).",
             f"  arbiter: {s.who(chosen)}" + (f", fee {format_percent(int(o['arbiter_fee_bps']))}"
                                               if chosen != NOBODY else "")
             + (f"; referrer {s.who(ref)}" if ref != NOBODY else ""),
             _tx_line(s, sent)]
    bal_lines, balances = _balance_lines(s, [key.address])
    return Report({"action": "order.place", "order_id": order_id, "state": order["state"],
                   "order": o, "tx": sent.json(), "balances": balances}, lines + bal_lines)


#: command -> (escrow method, label for sentences, takes a tracking reference)
ORDER_ACTIONS: dict[str, tuple[str, str]] = {
    "ship": ("ship", "ship"),
    "decline": ("decline", "decline"),
    "cancel": ("cancel", "cancel"),
    "confirm": ("confirm", "confirm delivery of"),
    "release": ("release_bounty", "release the review bounty of"),
    "claim": ("claim", "claim"),
    "return": ("request_return", "ask to return"),
    "accept-return": ("accept_return", "accept the return of"),
    "ship-back": ("ship_back", "ship back"),
    "confirm-receipt": ("confirm_receipt", "confirm receipt of"),
    "contest": ("contest", "contest the return of"),
    "refund": ("refund", "refund"),
    "settle": ("settle", "settle"),
    "dispute": ("open_dispute", "open a dispute on"),
    "resolve": ("resolve", "resolve"),
}


def order_act(s: Session, action: str, sender: str, order_id: int, *,
              tracking: str = "", waive_return: bool = False, amount: str | None = None,
              raw: bool = False) -> Report:
    """Every order transition but placing: ``action`` is a key of :data:`ORDER_ACTIONS`."""
    method, label = ORDER_ACTIONS[action]
    before = _order_or_none(s, order_id)
    if before is None:
        count = s.view("escrow", "counts")
        n = count.get("orders", "?") if isinstance(count, dict) else "?"
        raise Refused(f"There is no order {order_id} (orders so far: {n}).")
    o = before["order"]
    in_tokens = bool(o["in_tokens"])
    key = s.key(sender)
    args: list[Any] = [order_id]
    value = 0
    if method in ("ship", "ship_back"):
        args.append(tracking)
    elif method == "confirm":
        args.append(waive_return)
    elif method in ("refund", "settle", "resolve"):
        if amount is None:
            raise BadInput(f"order {action} needs an amount: "
                           + ("--amount" if method == "refund" else "--to-buyer"))
        held = int(o["held"])
        if amount.strip().endswith("%"):
            value_bps = parse_percent(amount, "the share")
            part = held * value_bps // 10_000
        elif amount == "all":
            part = held
        else:
            symbol, decimals = _unit(s, in_tokens)
            part = parse_amount(amount, decimals, raw=raw, symbol=symbol)
        args.append(part)
    elif method in ("contest", "open_dispute") and address_from_text(o["arbiter"]) != NOBODY:
        value = int(s.view("escrow", "dispute_deposit", order_id) or 0)
    sent = s.send(key, "escrow", method, args, value=value,
                  explain=_order_explain(s, label, order_id))
    after = _order(s, order_id)
    now = now_ms()
    lines = []
    if method == "settle" and after["state"] == before["state"]:
        lines.append(f"Your settlement offer on order {order_id} is recorded; it takes "
                     "effect when the other party offers the same amount "
                     f"(agora order settle {order_id} --to-buyer ...).")
    else:
        lines.append(f"Order {order_id} is now {after['state'].replace('_', ' ')}.")
    if value:
        lines.append(f"Deposited {s.coin(value)} (the arbiter's fee, returned if you win).")
    pay_lines, payouts, paid = _payout_lines(s, sent)
    lines += pay_lines
    lines.append(state_sentence(order_id, after, now))
    steps = next_steps(order_id, after, now, _reviewed(s, order_id, after))
    if steps:
        lines.append("Next: " + "; ".join(steps) + ".")
    lines.append(_tx_line(s, sent))
    bal_lines, balances = _balance_lines(s, [key.address, *paid])
    return Report({"action": f"order.{action}", "order_id": order_id,
                   "state": after["state"], "previous_state": before["state"],
                   "payouts": payouts, "order": after["order"], "tx": sent.json(),
                   "balances": balances}, lines + bal_lines)


def order_show(s: Session, order_id: int) -> Report:
    view = _order_or_none(s, order_id)
    if view is None:
        raise Refused(f"There is no order {order_id}.")
    o = view["order"]
    in_tokens = bool(o["in_tokens"])
    now = now_ms()
    lines = [state_sentence(order_id, view, now),
             f"  listing {o['listing']} x {o['quantity']}; paid "
             f"{_money(s, int(o['paid']), in_tokens)}, held {_money(s, int(o['held']), in_tokens)}",
             f"  buyer {s.who(o['buyer'])}; merchant {s.who(o['merchant'])}",
             f"  arbiter {s.who(o['arbiter'])}; referrer {s.who(o['referrer'])}",
             f"  placed {when(int(o['placed_at']))}"
             + (f"; tracking {o['tracking']!r}" if o["tracking"] else "")
             + (f"; return tracking {o['return_tracking']!r}" if o["return_tracking"] else "")]
    steps = next_steps(order_id, view, now, _reviewed(s, order_id, view))
    if steps:
        lines.append("  now: " + "; ".join(steps))
    if view["history"]:
        lines.append("  history:")
        for e in view["history"]:
            f = e.get("fields") or {}
            note = one_line(str(f.get("note") or f.get("reason") or ""))
            lines.append(f"    {when(e['time_ms'])}  block {e['height']}  {e['name']}"
                         + (f": {note}" if note else ""))
    return Report({k: v for k, v in view.items() if k != "raw"}, lines)


def order_list(s: Session, *, buyer: str | None, merchant: str | None,
               state: str | None, limit: int = 50) -> Report:
    if (buyer is None) == (merchant is None):
        raise BadInput("name one of --buyer or --merchant")
    params: dict[str, Any] = {"limit": limit}
    who = s.address(buyer or merchant or "", "buyer" if buyer else "merchant")
    params["buyer" if buyer else "merchant"] = address_to_text(who)
    if state:
        params["state"] = state.replace("-", "_")
    page = s.rpc("orders", **params)
    lines = [f"Orders {'placed by' if buyer else 'received by'} {s.who(who)}"
             + (f" in state {state}" if state else "") + f": {len(page['items'])}"
             + (" (more: raise --limit)" if page.get("next") else "")]
    for o in page["items"]:
        lines.append(f"  {o['order_id']}: listing {o['listing_id']}, "
                     f"{_money(s, int(o['paid']), o['in_tokens'])}, {o['state']}, updated "
                     f"{when(o['updated_time_ms'])}")
    return Report(page, lines)


# ---------------------------------------------------------------------- group deals


def group_join(s: Session, sender: str, *, group_id: int | None, listing_id: int | None,
               quantity: int = 1, arbiter: str | None = None, no_arbiter: bool = False,
               referrer: str | None = None) -> Report:
    if (group_id is None) == (listing_id is None):
        raise BadInput("give a GROUP id to join, or --listing ID to start a new group")
    if group_id is not None:
        g = s.rpc("group", group_id=group_id, limit=1)
        listing_id = int(g["group"]["listing"])
        if g["state"] != "open":
            raise Refused(f"Group {group_id} is {g['state']}: it takes no new members.")
    assert listing_id is not None
    L = _listing(s, listing_id)["listing"]
    if not int(L["group_size"]) and group_id is None:
        raise Refused(f"Listing {listing_id} has no group deal.")
    price = int(s.rpc("group", group_id=group_id, limit=1)["group"]["price"]
                if group_id is not None else L["group_price"])
    chosen = (NOBODY if no_arbiter else s.address(arbiter, "arbiter") if arbiter
              else address_from_text(L["arbiter_1"]))
    ref = s.address(referrer, "referrer") if referrer else NOBODY
    key = s.key(sender)
    version = int(L["version"])
    total = price * quantity
    if group_id is None:
        sent = s.send(key, "escrow", "start_group", [listing_id, version, quantity, chosen, ref],
                      value=total, explain=_listing_explain(f"start a group of listing "
                                                            f"{listing_id}"))
    else:
        sent = s.send(key, "escrow", "join_group", [group_id, version, quantity, chosen, ref],
                      value=total, explain=_listing_explain(f"join group {group_id}"))
    placed = sent.events_named("OrderPlaced")
    order_id = int(placed[0]["order_id"]) if placed else 0
    gid = int(placed[0]["group"]) if placed else group_id or 0
    g = s.rpc("group", group_id=gid, limit=1)
    grp = g["group"]
    lines = [f"{'Started' if group_id is None else 'Joined'} group {gid} of listing "
             f"{listing_id} ({L['title']!r}): your order {order_id}, "
             f"{s.coin(total)} held in escrow."]
    if g["state"] == "filled":
        lines.append(f"The group filled with {grp['members']} members: every member's order "
                     "is now paid and the merchant ships it.")
    else:
        lines.append(f"{grp['members']} of {grp['size']} members; it must fill by "
                     f"{when(int(grp['deadline']))} ({until(int(grp['deadline']), now_ms())}), "
                     "or every member is refunded. You may leave while it is open "
                     f"(agora group leave {gid}).")
    lines.append(_tx_line(s, sent))
    bal_lines, balances = _balance_lines(s, [key.address])
    return Report({"action": "group.join", "group_id": gid, "order_id": order_id,
                   "state": g["state"], "group": grp, "tx": sent.json(),
                   "balances": balances}, lines + bal_lines)


def _member_order(s: Session, group_id: int, member: bytes) -> int | None:
    text = address_to_text(member)
    for m in s.client.pages("group", key="members", group_id=group_id, limit=100):
        if m["buyer"] == text and m["state"] in ("joined", "paid", None):
            return int(m["order_id"])
    return None


def group_leave(s: Session, sender: str, group_id: int) -> Report:
    key = s.key(sender)
    order_id = _member_order(s, group_id, key.address)
    if order_id is None:
        raise Refused(f"{s.who(key.address)} is not a member of group {group_id}.")
    sent = s.send(key, "escrow", "leave_group", [order_id],
                  explain=_order_explain(s, "leave the group with", order_id))
    pay_lines, payouts, _ = _payout_lines(s, sent)
    bal_lines, balances = _balance_lines(s, [key.address])
    return Report({"action": "group.leave", "group_id": group_id, "order_id": order_id,
                   "payouts": payouts, "tx": sent.json(), "balances": balances},
                  [f"Left group {group_id}: order {order_id} is cancelled and refunded.",
                   *pay_lines, _tx_line(s, sent), *bal_lines])


def group_close(s: Session, sender: str, group_id: int, *, refunds: bool = True,
                progress: Callable[[str], None] | None = None) -> Report:
    """Close an unfilled group past its deadline, then claim every member's refund."""
    key = s.key(sender)
    g = s.rpc("group", group_id=group_id, limit=1)
    txs: list[Sent] = []
    lines: list[str] = []
    if g["state"] == "open":
        deadline = int(g["group"]["deadline"])

        def explain(reason: str) -> str:
            text = f"Cannot close group {group_id}: {reason.rstrip('.')}."
            if "not passed" in reason:
                text += (f" It may fill until {when(deadline)} ({until(deadline, now_ms())}); "
                         "close it after that.")
            return text
        txs.append(s.send(key, "escrow", "close_group", [group_id], explain=explain))
        lines.append(f"Group {group_id} failed to fill by {when(deadline)} and is closed.")
    elif g["state"] != "failed":
        raise Refused(f"Group {group_id} is {g['state']}: only an open group past its "
                      "deadline can be closed.")
    payouts: list[dict[str, Any]] = []
    if refunds:
        members = [m for m in s.client.pages("group", key="members", group_id=group_id,
                                             limit=100) if m["state"] == "joined"]
        for i, m in enumerate(members, 1):
            if progress:
                progress(f"refunding member {i} of {len(members)} (order {m['order_id']})")
            sent = s.send(key, "escrow", "claim", [int(m["order_id"])],
                          explain=_order_explain(s, "claim", int(m["order_id"])))
            txs.append(sent)
            pl, pd, _ = _payout_lines(s, sent)
            payouts += pd
            lines += pl[1:]
        if members:
            lines.insert(1 if lines else 0, f"Refunded {len(members)} member(s):")
    return Report({"action": "group.close", "group_id": group_id, "payouts": payouts,
                   "txs": [t.json() for t in txs]}, lines + [_tx_line(s, t) for t in txs])


def group_show(s: Session, group_id: int) -> Report:
    g = s.rpc("group", group_id=group_id, limit=100)
    grp = g["group"]
    lines = [f"Group {group_id} of listing {grp['listing']}: {g['state']}; "
             f"{grp['members']} of {grp['size']} members at {s.coin(int(grp['price']))} each; "
             f"leader {s.who(grp['leader'])}",
             "  " + group_sentence(group_id, g["state"], grp, now_ms())]
    for m in g["members"]:
        lines.append(f"  order {m['order_id']}: {s.who(m['buyer'])} ({m['state']})")
    return Report({k: v for k, v in g.items() if k != "raw"}, lines)


# ---------------------------------------------------------------------- reviews


def review_post(s: Session, sender: str, order_id: int, rating: int, text: str) -> Report:
    if not 1 <= rating <= 5:
        raise BadInput("a rating is 1 to 5")
    key = s.key(sender)
    sent = s.send(key, "reviews", "post_review", [order_id, rating, text],
                  explain=_order_explain(s, "review", order_id))
    pay_lines, payouts, paid = _payout_lines(s, sent)
    bal_lines, balances = _balance_lines(s, [key.address, *paid])
    return Report({"action": "review.post", "order_id": order_id, "rating": rating,
                   "payouts": payouts, "tx": sent.json(), "balances": balances},
                  [f"Review of order {order_id} posted: {rating}/5 {text!r}.", *pay_lines,
                   _tx_line(s, sent), *bal_lines])


def review_reply(s: Session, sender: str, order_id: int, text: str) -> Report:
    key = s.key(sender)
    sent = s.send(key, "reviews", "reply", [order_id, text],
                  explain=lambda r: f"Cannot reply to the review of order {order_id}: "
                                    f"{r.rstrip('.')}.")
    return Report({"action": "review.reply", "order_id": order_id, "tx": sent.json()},
                  [f"Reply to the review of order {order_id} posted: {text!r}.",
                   _tx_line(s, sent)])


def review_list(s: Session, *, merchant: str | None, listing_id: int | None,
                order_id: int | None, limit: int = 50) -> Report:
    given = [x for x in (merchant, listing_id, order_id) if x is not None]
    if len(given) != 1:
        raise BadInput("name one of --merchant, --listing or --order")
    params: dict[str, Any] = {"limit": limit}
    if merchant is not None:
        params["merchant"] = address_to_text(s.address(merchant, "merchant"))
    elif listing_id is not None:
        params["listing_id"] = listing_id
    else:
        params["order_id"] = order_id
    page = s.rpc("reviews", **params)
    lines = [f"{len(page['items'])} review(s)" + (" (more: raise --limit)"
                                                   if page.get("next") else "") + ":"]
    for r in page["items"]:
        lines.append(f"  order {r['order_id']} (listing {r['listing_id']}): {r['rating']}/5 "
                     f"{r['text']!r} — {s.who(r['buyer'])}, {when(r['time_ms'])}")
        if r.get("reply"):
            lines.append(f"    merchant replied: {r['reply']['text']!r}")
    if merchant is not None:
        m = s.rpc("merchant", merchant=params["merchant"])
        avg = m["average_rating"]
        lines.append(f"Reputation: {m['reputation']['reviews']} review(s)"
                     + (f", average {avg}/5" if avg is not None else "")
                     + f"; orders completed {m['stats']['completed']}, refunded "
                     f"{m['stats']['refunded']}, declined {m['stats']['declined']}, not "
                     f"shipped {m['stats']['not_shipped']}, disputes {m['stats']['disputes']}")
    return Report(page, lines)
