"""What the API's values mean, in words a shopper reads: amounts in the token's
decimals, durations, times, order states and the deadline now running, a listing's
terms, and a transaction's action ("placed order #12 for 2 × 'Tea set' at 45.00").

Everything here is pure: values in (as the JSON-RPC API gives them), text out, in the
language of the :class:`~node.explorer.i18n.Translator` handed in.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from .i18n import Translator

NOBODY = "agora1qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqry2cu5"

#: escrow.agc's order and group states, as its OrderChanged / GroupChanged events number
#: them (the API names them in ``order`` and ``group``).
ORDER_STATES = {1: "paid", 2: "shipped", 3: "delivered", 4: "completed", 5: "declined",
                6: "cancelled", 7: "return_requested", 8: "refunded", 9: "disputed",
                10: "resolved", 11: "return_shipped", 12: "joined"}
GROUP_STATES = {1: "open", 2: "filled", 3: "failed"}
OPEN_STATES = ("joined", "paid", "shipped", "delivered", "return_requested",
               "return_shipped", "disputed")


def state_name(t: Translator, state: str) -> str:
    return t({
        "joined": "waiting for the group to fill", "paid": "paid, waiting to ship",
        "shipped": "shipped", "delivered": "delivered", "completed": "completed",
        "declined": "declined", "cancelled": "cancelled",
        "return_requested": "return requested", "refunded": "refunded",
        "disputed": "disputed", "resolved": "resolved by the arbiter",
        "return_shipped": "sent back", "open": "open", "filled": "filled",
        "failed": "failed"}.get(state, state))


# ---------------------------------------------------------------- numbers


@dataclass(frozen=True)
class Money:
    """A token's decimals and symbol."""

    decimals: int
    symbol: str

    def __call__(self, units: Any, *, symbol: bool = True) -> str:
        """``45000000000000000000`` -> ``45.00 AGO``: at least two decimals, no more
        than the value needs, thousands grouped."""
        try:
            value = int(units)
        except (TypeError, ValueError):
            return str(units)
        sign = "-" if value < 0 else ""
        whole, frac = divmod(abs(value), 10 ** self.decimals) if self.decimals else \
            (abs(value), 0)
        digits = str(frac).rjust(self.decimals, "0").rstrip("0") if self.decimals else ""
        digits = digits.ljust(2, "0")
        text = f"{sign}{whole:,}.{digits}"
        return f"{text} {self.symbol}" if symbol else text


def percent(bps: Any) -> str:
    """Basis points as a percentage: 250 -> ``2.5%``."""
    try:
        n = int(bps)
    except (TypeError, ValueError):
        return str(bps)
    whole, rest = divmod(n, 100)
    return f"{whole}.{rest:02d}".rstrip("0").rstrip(".") + "%"


def duration(t: Translator, ms: Any) -> str:
    """``7 days``, ``36 hours``, ``90 minutes``: the largest unit that divides evenly,
    rounded down past a day."""
    try:
        n = int(ms)
    except (TypeError, ValueError):
        return str(ms)
    for size, one, many in ((86_400_000, "{n} day", "{n} days"),
                            (3_600_000, "{n} hour", "{n} hours"),
                            (60_000, "{n} minute", "{n} minutes"),
                            (1_000, "{n} second", "{n} seconds")):
        if n >= size and (n % size == 0 or size == 86_400_000 and n >= 3 * size):
            k = n // size
            return t(one if k == 1 else many, n=k)
    return t("{n} seconds", n=max(0, n // 1000))


def relative(t: Translator, ms: int, now_ms: int) -> str:
    """``in 2 days`` / ``3 minutes ago``."""
    delta = ms - now_ms
    span = abs(delta)
    for size, one, many in ((86_400_000, "{n} day", "{n} days"),
                            (3_600_000, "{n} hour", "{n} hours"),
                            (60_000, "{n} minute", "{n} minutes")):
        if span >= size:
            k = span // size
            text = t(one if k == 1 else many, n=k)
            break
    else:
        text = t("{n} seconds", n=span // 1000)
    return t("in {span}", span=text) if delta >= 0 else t("{span} ago", span=text)


def utc(ms: Any) -> str:
    """A time for the page without JavaScript (the script shows it in local time)."""
    try:
        return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(int(ms) / 1000))
    except (TypeError, ValueError, OverflowError, OSError):
        return str(ms)


def iso(ms: Any) -> str:
    try:
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(ms) / 1000))
    except (TypeError, ValueError, OverflowError, OSError):
        return ""


def short(address: str) -> str:
    if not isinstance(address, str) or len(address) < 20:
        return str(address)
    return f"{address[:10]}…{address[-6:]}"


def is_nobody(address: Any) -> bool:
    return not address or address == NOBODY


# ---------------------------------------------------------------- orders


def deadline_sentence(t: Translator, order: dict[str, Any], state: str, when: str,
                      default_refund: str = "") -> str:
    """What the deadline now running means, with what happens after it (the escrow's
    ``claim``: what silence decides)."""
    if state == "joined":
        return t("The group must fill by {when}; after that anyone may close it and "
                 "every member is refunded.", when=when)
    if state == "paid":
        return t("The merchant must ship by {when}; after that the buyer may cancel and "
                 "is refunded in full.", when=when)
    if state == "shipped":
        return t("The buyer must confirm delivery or open a dispute by {when}; after "
                 "that the order counts as delivered.", when=when)
    if state == "delivered":
        return t("The buyer may return it without giving a reason until {when}; after "
                 "that the merchant is paid.", when=when)
    if state == "return_requested":
        if order.get("return_accepted"):
            return t("The merchant accepted the return: the buyer must send it back by "
                     "{when}; after that the return lapses and the merchant is paid.",
                     when=when)
        return t("The merchant must accept or contest the return by {when}; after "
                 "that the buyer may send it back.", when=when)
    if state == "return_shipped":
        return t("The merchant must confirm receiving it back, or contest, by {when}; "
                 "after that the buyer is refunded in full.", when=when)
    if state == "disputed":
        return t("The arbiter must rule by {when}; after that the listing's default "
                 "split applies ({share} back to the buyer).", when=when,
                 share=default_refund or "?")
    return ""


def ended_sentence(t: Translator, state: str) -> str:
    return t({
        "completed": "This order has ended: the merchant was paid.",
        "declined": "This order has ended: the merchant declined it and the buyer was "
                    "refunded.",
        "cancelled": "This order has ended: it was cancelled and the buyer was refunded.",
        "refunded": "This order has ended: the buyer was refunded.",
        "resolved": "This order has ended: the arbiter's ruling (or a settlement) split "
                    "the held amount."}.get(state, "This order has ended."))


def transition(t: Translator, event: dict[str, Any], money: Money,
               tokens: Money, names: dict[str, str] | None = None) -> str:
    """One entry of an order's timeline, in words (``names``: address -> a name to
    show for it)."""
    f = event.get("fields") or {}
    names = names or {}

    def who(address: Any) -> str:
        return names.get(str(address)) or short(str(address))
    name = event.get("name")
    paid_in = tokens if f.get("in_tokens") else money
    if name == "OrderPlaced":
        if f.get("group") not in (None, "0", 0):
            return t("Joined group deal #{group} and paid {paid} into escrow.",
                     group=f.get("group"), paid=paid_in(f.get("paid")))
        return t("Placed the order and paid {paid} into escrow.",
                 paid=paid_in(f.get("paid")))
    if name == "OrderChanged":
        try:
            state = ORDER_STATES.get(int(f.get("state", 0)), "")
        except (TypeError, ValueError):
            state = ""
        note = str(f.get("note") or "")
        text = t({
            "shipped": "Shipped it.", "delivered": "Confirmed delivery.",
            "completed": "The order completed: the merchant was paid.",
            "declined": "Declined the order; the buyer was refunded.",
            "cancelled": "Cancelled the order; the buyer was refunded.",
            "return_requested": "Asked to return it.",
            "refunded": "The buyer was refunded.",
            "disputed": "Opened a dispute before the arbiter.",
            "resolved": "The dispute was resolved.",
            "return_shipped": "Sent it back.",
            "paid": "The group filled: the order is paid.",
            "joined": "Joined the group."}.get(state, "Changed the order."))
        if note and state in ("shipped", "return_shipped"):
            text += ("" if t.zh else " ") + t("Tracking: {note}", note=note)
        elif note and state == "return_requested":
            text = t("Accepted the return.") if note == "return accepted" else text
        return text
    if name == "Payout":
        reason = str(f.get("reason") or "")
        return t("Paid {amount} to {receiver} ({reason}).",
                 amount=(tokens if f.get("in_tokens") else money)(f.get("amount")),
                 receiver=who(f.get("receiver", "")), reason=t(payout_reason(reason)))
    if name == "SettlementOffered":
        return t("Offered to settle with {amount} back to the buyer.",
                 amount=money(f.get("to_buyer")))
    if name == "GroupChanged":
        try:
            gstate = GROUP_STATES.get(int(f.get("state", 0)), "")
        except (TypeError, ValueError):
            gstate = ""
        return t("Group deal #{group}: {members} of {size} joined ({state}).",
                 group=f.get("group_id"), members=f.get("members"), size=f.get("size"),
                 state=state_name(t, gstate))
    if name == "Transfer":
        return t("Moved {amount} from {sender} to {receiver}.", amount=tokens(f.get("amount")),
                 sender=who(f.get("sender", "")), receiver=who(f.get("receiver", "")))
    if name == "Approval":
        return t("{owner} allowed {spender} to spend {amount}.",
                 owner=who(f.get("owner", "")), spender=who(f.get("spender", "")),
                 amount=tokens(f.get("amount")))
    if name == "ListingCreated":
        return t("A listing was created.")
    if name == "ListingChanged":
        return t("A listing changed.")
    if name == "Reviewed":
        return t("Reviewed it: {stars} “{text}”", stars=stars(f.get("rating")),
                 text=f.get("text", ""))
    if name == "Replied":
        return t("The merchant replied: “{text}”", text=f.get("text", ""))
    return str(name)


def payout_reason(reason: str) -> str:
    return {"payment": "payment", "refund": "refund", "referral": "referral commission",
            "cashback": "cashback", "bounty": "review bounty", "arbiter fee": "arbiter's fee",
            "deposit returned": "dispute deposit returned"}.get(reason, reason)


def stars(rating: Any) -> str:
    try:
        n = max(0, min(5, int(rating)))
    except (TypeError, ValueError):
        return str(rating)
    return "★" * n + "☆" * (5 - n)


# ---------------------------------------------------------------- transactions


def action_sentence(t: Translator, tx: dict[str, Any], receipt: dict[str, Any] | None,
                    money: Money, tokens: Money, titles: dict[str, str],
                    names: dict[str, str]) -> str:
    """A transaction's action, decoded by the ABI, as a sentence."""
    action = tx.get("action") or {}
    kind = action.get("type")

    def who(address: Any) -> str:
        text = str(address)
        return names.get(text) or short(text)

    if kind == "transfer":
        return t("Sent {amount} to {to}.",
                 amount=money(action.get("amount", action.get("value"))),
                 to=who(action.get("to")))
    if kind == "deploy":
        return t("Deployed a contract ({n} bytes of code).", n=action.get("code_bytes"))
    if kind != "call":
        return t("An action of an unknown kind.")
    contract = action.get("contract_name") or ""
    method = action.get("method") or ""
    a = action.get("decoded_args") or {}
    events = (receipt or {}).get("events") or []

    def event(name: str) -> dict[str, Any]:
        return next((e.get("fields") or {} for e in events if e.get("name") == name), {})

    def title(listing: Any) -> str:
        return titles.get(str(listing), t("listing #{id}", id=listing))

    order = a.get("order_id")
    value = action.get("value", "0")
    if contract == "escrow":
        if method in ("place_order", "start_group", "join_group"):
            placed = event("OrderPlaced")
            qty = placed.get("quantity", a.get("quantity", "1"))
            listing = placed.get("listing", a.get("listing_id"))
            try:
                each = money(int(value) // max(1, int(qty)), symbol=False)
            except (TypeError, ValueError):
                each = money(value, symbol=False)
            oid = placed.get("order_id", "?")
            if method == "place_order":
                return t("Placed order #{order} for {qty} × “{title}” at {each}.",
                         order=oid, qty=qty, title=title(listing), each=each)
            if method == "start_group":
                return t("Started group deal #{group} with order #{order} for {qty} × "
                         "“{title}” at {each}.", group=placed.get("group", "?"), order=oid,
                         qty=qty, title=title(listing), each=each)
            return t("Joined group deal #{group} with order #{order} for {qty} × "
                     "“{title}” at {each}.", group=a.get("group_id"), order=oid, qty=qty,
                     title=title(listing), each=each)
        simple = {
            "ship": "Shipped order #{order} (tracking {tracking}).",
            "decline": "Declined order #{order}.",
            "cancel": "Cancelled order #{order}.",
            "request_return": "Asked to return order #{order}.",
            "accept_return": "Accepted the return of order #{order}.",
            "ship_back": "Sent order #{order} back (tracking {tracking}).",
            "confirm_receipt": "Confirmed receiving order #{order} back.",
            "contest": "Contested the return of order #{order} before the arbiter.",
            "open_dispute": "Opened a dispute on order #{order}.",
            "claim": "Applied the passed deadline of order #{order}.",
            "release_bounty": "Returned the unearned review bounty of order #{order}.",
            "leave_group": "Left the group deal with order #{order}.",
        }
        if method in simple:
            return t(simple[method], order=order, tracking=a.get("tracking", ""))
        if method == "confirm":
            return t("Confirmed delivery of order #{order} and waived the return window."
                     if a.get("waive_return") else "Confirmed delivery of order #{order}.",
                     order=order)
        if method == "resolve":
            return t("Ruled on order #{order}: {amount} back to the buyer.", order=order,
                     amount=money(a.get("to_buyer")))
        if method == "settle":
            return t("Offered to settle order #{order} with {amount} back to the buyer.",
                     order=order, amount=money(a.get("to_buyer")))
        if method == "refund":
            return t("Refunded {amount} of order #{order}.", order=order,
                     amount=money(a.get("amount")))
        if method == "close_group":
            return t("Closed group deal #{group}.", group=a.get("group_id"))
    if contract == "catalog":
        lid = a.get("listing_id")
        if method == "create_listing":
            created = event("ListingCreated")
            return t("Listed “{title}” (listing #{id}) at {price}.", title=a.get("title"),
                     id=created.get("listing_id", "?"), price=money(a.get("price")))
        if method == "register_arbiter":
            return t("Registered as the arbiter “{name}” with a fee of {fee}.",
                     name=a.get("name"), fee=percent(a.get("fee_bps")))
        if method == "set_arbiter_active":
            return t("Took arbiter cases again." if a.get("active") else
                     "Stopped taking arbiter cases.")
        catalog = {
            "set_price": "Changed the price of “{title}” to {price}.",
            "set_stock": "Set the stock of “{title}” to {stock}.",
            "set_terms": "Changed the terms of “{title}”.",
            "set_commissions": "Changed the commissions of “{title}”.",
            "set_group_deal": "Set a group deal on “{title}”.",
            "pause": "Paused “{title}”.",
            "resume": "Resumed “{title}”.",
        }
        if method in catalog:
            return t(catalog[method], title=title(lid), price=money(a.get("price", "0")),
                     stock=a.get("stock", ""))
    if contract == "reviews":
        if method == "post_review":
            return t("Reviewed order #{order}: {stars} “{text}”", order=order,
                     stars=stars(a.get("rating")), text=a.get("text", ""))
        if method == "reply":
            return t("Replied to the review of order #{order}: “{text}”", order=order,
                     text=a.get("text", ""))
    if contract == "token":
        if method == "transfer":
            return t("Sent {amount} to {to}.", amount=tokens(a.get("amount")),
                     to=who(a.get("receiver")))
        if method == "transfer_and_call":
            placed = event("OrderPlaced")
            if placed:
                return t("Placed order #{order} for {qty} × “{title}”, paying {amount}.",
                         order=placed.get("order_id"), qty=placed.get("quantity"),
                         title=title(placed.get("listing")),
                         amount=tokens(a.get("amount")))
            return t("Sent {amount} to {to}.", amount=tokens(a.get("amount")),
                     to=who(a.get("receiver")))
        if method in ("approve", "increase_allowance", "decrease_allowance"):
            return t("Allowed {spender} to spend {amount}.", spender=who(a.get("spender")),
                     amount=tokens(a.get("amount", a.get("added", a.get("removed")))))
        if method == "redeem":
            return t("Redeemed {amount}.", amount=tokens(a.get("amount")))
        if method == "mint":
            return t("Funded {amount} of reward tokens for {to}.",
                     amount=tokens(a.get("amount")), to=who(a.get("receiver")))
    if contract == "governance":
        if method == "vote":
            return t("Voted yes on proposal #{id}." if a.get("yes") else
                     "Voted no on proposal #{id}.", id=a.get("proposal_id"))
        if method == "propose_add":
            return t("Proposed adding the validator “{name}” with power {power}.",
                     name=a.get("name"), power=a.get("power"))
        if method == "propose_remove":
            return t("Proposed removing the validator {validator}.",
                     validator=who(a.get("validator")))
        if method == "propose_power":
            return t("Proposed giving {validator} power {power}.",
                     validator=who(a.get("validator")), power=a.get("power"))
        if method == "propose_removal_by_evidence":
            return t("Reported a validator's double signing: {validator}.",
                     validator=who(a.get("validator")))
        if method == "propose_param":
            return t("Proposed setting {name} to {value}.", name=a.get("name"),
                     value=a.get("value"))
    return t("Called {method} on the {contract} contract.", method=method,
             contract=contract or short(str(action.get("contract"))))


def listing_terms(t: Translator, listing: dict[str, Any], money: Money,
                  tokens: Money) -> list[str]:
    """A listing's terms in plain words."""
    out = [t("Price: {price} each.", price=money(listing.get("price")))]
    if int(listing.get("token_price", 0) or 0):
        out.append(t("Or {price} in reward tokens.", price=tokens(listing.get("token_price"))))
    out.append(t("{n} in stock.", n=listing.get("stock")))
    if listing.get("paused"):
        out.append(t("Paused: the merchant takes no orders now."))
    out.append(t("The merchant ships within {d} of payment, or the buyer may cancel.",
                 d=duration(t, listing.get("ship_window"))))
    out.append(t("The buyer has {d} after shipping to confirm delivery.",
                 d=duration(t, listing.get("confirm_window"))))
    rw = int(listing.get("return_window", 0) or 0)
    out.append(t("Returns: within {d} of delivery, no reason needed.", d=duration(t, rw))
               if rw else t("No returns: this listing has no return window."))
    out.append(t("The merchant answers a return within {d}.",
                 d=duration(t, listing.get("answer_window"))))
    out.append(t("If an arbiter does not rule in time, {share} of the held amount goes "
                 "back to the buyer.", share=percent(listing.get("default_refund_bps"))))
    if listing.get("no_arbiter_ok"):
        out.append(t("Orders without an arbiter are accepted."))
    commissions = [(listing.get("referral_bps"), "referral"),
                   (listing.get("cashback_bps"), "cashback"),
                   (listing.get("bounty_bps"), "review bounty")]
    paid = [t("{rate} {what}", rate=percent(bps), what=t(what))
            for bps, what in commissions if int(bps or 0)]
    if paid:
        out.append(t("The merchant pays, in reward tokens: {list}.", list=", ".join(paid)))
    if int(listing.get("group_size", 0) or 0):
        out.append(t("Group deal: {price} each when {size} buyers join within {d}.",
                     price=money(listing.get("group_price")), size=listing.get("group_size"),
                     d=duration(t, listing.get("group_window"))))
    return out


def proposal_sentence(t: Translator, p: dict[str, Any]) -> str:
    kind = p.get("kind")
    name = p.get("validator_name") or p.get("name") or short(str(p.get("validator") or ""))
    if kind == "add":
        return t("Add the validator “{name}” with power {power}.", name=name,
                 power=p.get("power"))
    if kind == "remove":
        return t("Remove the validator “{name}”.", name=name)
    if kind == "power":
        return t("Give the validator “{name}” power {power}.", name=name,
                 power=p.get("power"))
    if kind == "param":
        return t("Set {param} to {value} from height {h}.", param=p.get("param"),
                 value=p.get("value"), h=p.get("effective"))
    return str(kind)


def proposal_status(t: Translator, status: str) -> str:
    return t({"open": "open for votes", "passed": "passed", "rejected": "rejected",
              "expired": "expired"}.get(status, status))
