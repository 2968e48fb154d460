"""What an order's state means and what each party can do next, in sentences: the
wallet's answer when a transition is refused (the escrow's lifecycle, escrow.agc)."""

from __future__ import annotations

import time
from typing import Any

from chain.address import address_to_text

from .amounts import format_duration

#: the address of no one: an order's arbiter when it has none, a listing never made
NOBODY = bytes(20)
NOBODY_TEXT = address_to_text(NOBODY)

#: state -> (what it means, [(who, command, until/after, what it does)])
#: ``when``: "by" (until the deadline), "after" (once it has passed) or "" (any time).
STEPS: dict[str, tuple[str, list[tuple[str, str, str, str]]]] = {
    "joined": ("a member of an open group deal, waiting for the group to fill", [
        ("buyer", "group leave", "by", "leave the group (full refund)"),
        ("merchant", "order decline", "by", "decline it (full refund)"),
        ("anyone", "group close", "after", "close the unfilled group (refunds)"),
    ]),
    "paid": ("paid into escrow, waiting for the merchant to ship", [
        ("merchant", "order ship", "by", "ship it (with a tracking reference)"),
        ("merchant", "order decline", "by", "decline it (full refund)"),
        ("buyer", "order cancel", "", "cancel it (full refund)"),
        ("anyone", "order claim", "after", "refund the buyer: the merchant did not ship"),
    ]),
    "shipped": ("shipped, waiting for the buyer to confirm delivery", [
        ("buyer", "order confirm", "", "confirm delivery (add --waive-return to pay the "
                                        "merchant at once)"),
        ("buyer", "order dispute", "by", "open a dispute before the arbiter"),
        ("anyone", "order claim", "after", "count it as delivered at the deadline"),
        ("merchant", "order refund", "", "refund the buyer in part or in full"),
        ("buyer and merchant", "order settle", "", "settle on a partial refund"),
    ]),
    "delivered": ("delivered; the return window is open", [
        ("buyer", "order return", "by", "ask to return it (no reason needed)"),
        ("buyer", "order dispute", "by", "open a dispute before the arbiter"),
        ("anyone", "order claim", "after", "pay the merchant once the window has closed"),
        ("merchant", "order refund", "", "refund the buyer in part or in full"),
    ]),
    "return_requested": ("the buyer asked to return it", []),  # see _return_steps
    "return_shipped": ("the buyer shipped it back", [
        ("merchant", "order confirm-receipt", "", "confirm receipt (full refund)"),
        ("merchant", "order contest", "by", "contest the return before the arbiter"),
        ("anyone", "order claim", "after", "refund the buyer: the merchant was silent"),
    ]),
    "disputed": ("before the arbiter", [
        ("arbiter", "order resolve", "by", "rule how the held amount is split"),
        ("buyer and merchant", "order settle", "", "settle on a partial refund"),
        ("anyone", "order claim", "after", "end it by the listing's default split (the "
                                           "arbiter earns no fee)"),
    ]),
}
ENDED = {"completed": "completed: the merchant was paid",
         "declined": "declined by the merchant: the buyer was refunded",
         "cancelled": "cancelled: the buyer was refunded",
         "refunded": "refunded",
         "resolved": "resolved: the held amount was split"}


def when(ms: int) -> str:
    """A time for a sentence: ``2026-12-05 21:03 UTC``."""
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(ms // 1000))


def until(ms: int, now_ms: int) -> str:
    """``in 2 days 5 hours`` / ``3 hours ago``: the largest unit and the one after it,
    never rounded up (47 hours away is ``in 1 day 23 hours``, not ``in 1 day``)."""
    delta = ms - now_ms
    rest = abs(delta)
    parts: list[str] = []
    for unit, size in (("day", 86_400_000), ("hour", 3_600_000), ("minute", 60_000),
                       ("second", 1_000)):
        n, rest = divmod(rest, size)
        if n:
            parts.append(f"{n} {unit}{'s' if n != 1 else ''}")
        if parts and (len(parts) == 2 or not n):
            break  # the next unit after the largest, and no smaller one
    text = " ".join(parts) or "0 seconds"
    return f"in {text}" if delta >= 0 else f"{text} ago"


def state_sentence(order_id: int, view: dict[str, Any], now_ms: int) -> str:
    state = view["state"]
    if state in ENDED:
        return f"Order {order_id} has ended: {ENDED[state]}."
    meaning = STEPS.get(state, (state, []))[0]
    deadline = int(view["order"]["deadline"])
    return (f"Order {order_id} is {state.replace('_', ' ')} ({meaning}); its current deadline "
            f"is {when(deadline)} ({until(deadline, now_ms)}).")


def next_steps(order_id: int, view: dict[str, Any], now_ms: int,
               reviewed: bool | None = None) -> list[str]:
    """What each party can do now, as commands (``reviewed``: whether the order has its
    review, when the caller knows)."""
    state = view["state"]
    if state in ENDED:
        order = view["order"]
        # Only an order that was shipped (or that its merchant failed to ship) earns a
        # review, once.
        reviewable = (int(order.get("shipped_at", 0)) > 0 or bool(order.get("not_shipped"))
                      ) and not reviewed
        bounty = int(order.get("bounty", 0))
        steps = []
        if reviewable:
            steps.append(f"the buyer can review it once (agora review post {order_id})"
                         + ("; a review within the review window earns the bounty" if bounty
                            else ""))
        if bounty:
            steps.append("once the review window has ended, anyone can return the unearned "
                         f"review bounty to the merchant (agora order release {order_id})")
        return steps
    deadline = int(view["order"]["deadline"])
    if state == "return_requested":
        return _return_steps(order_id, view["order"], now_ms)
    passed = now_ms > deadline
    out = []
    for who, command, time_rule, does in STEPS.get(state, ("", []))[1]:
        if time_rule == "by" and passed:
            continue
        if time_rule == "after" and not passed:
            out.append(f"{who}: {does} after {when(deadline)} (agora {command} {order_id})")
            continue
        out.append(f"{who}: {does} (agora {command} {order_id})")
    return out


def _return_steps(order_id: int, order: dict[str, Any], now_ms: int) -> list[str]:
    """A requested return has three times (escrow.agc): the merchant answers within its
    answer window; an accepted return must be shipped back by the deadline set on
    accepting, a return met with silence within one answer window more; after that the
    return lapses and a claim pays the merchant."""
    deadline = int(order["deadline"])
    accepted = bool(order["return_accepted"])
    ship_by = deadline if accepted else deadline + int(order["answer_window"])
    out = []
    if not accepted and now_ms <= deadline:
        out.append(f"merchant: accept the return by {when(deadline)} "
                   f"(agora order accept-return {order_id})")
        if order["arbiter"] != NOBODY_TEXT:
            out.append(f"merchant: contest the return before the arbiter by {when(deadline)} "
                       f"(agora order contest {order_id})")
        else:
            out.append(f"merchant: refuse the return by {when(deadline)}; with no arbiter "
                       f"its word is final and it is paid (agora order contest {order_id})")
        out.append(f"buyer: ship it back once the merchant accepts, or after {when(deadline)} "
                   f"if it stays silent, until {when(ship_by)} (agora order ship-back {order_id})")
    elif now_ms <= ship_by:
        out.append(f"buyer: ship it back by {when(ship_by)} ({until(ship_by, now_ms)}) "
                   f"(agora order ship-back {order_id})")
    if now_ms <= ship_by:
        out.append(f"anyone: pay the merchant after {when(ship_by)} if nothing was shipped "
                   f"back (agora order claim {order_id})")
    else:
        out.append(f"anyone: pay the merchant: the return lapsed unshipped "
                   f"(agora order claim {order_id})")
    return out


def group_sentence(group_id: int, state: str, grp: dict[str, Any], now: int) -> str:
    """Where a group deal stands in time, in a sentence."""
    deadline = int(grp["deadline"])
    if state == "filled":
        filled = int(grp["filled_at"])
        return (f"Filled {when(filled)} ({until(filled, now)}): each member's order is an "
                "ordinary paid order from then, its ship deadline counted from the fill.")
    if state == "failed":
        return (f"Failed: it did not fill by {when(deadline)}; a member still joined is "
                f"refunded in full by a claim (agora group close {group_id} claims them all).")
    missing = int(grp["size"]) - int(grp["members"])
    if now <= deadline:
        return (f"Needs {missing} more member(s) by {when(deadline)} ({until(deadline, now)}); "
                "if it does not fill by then, every member is refunded.")
    return (f"Did not fill by {when(deadline)} ({until(deadline, now)}): anyone can close it "
            f"and refund its members (agora group close {group_id}).")


def refused_transition(action: str, order_id: int, reason: str, view: dict[str, Any] | None,
                       now_ms: int) -> str:
    """Why ``action`` on an order was refused, what state it is in, and what can be
    done now."""
    head = f"Cannot {action} order {order_id}: {reason.rstrip('.')}."
    if view is None:
        return head
    lines = [head, state_sentence(order_id, view, now_ms)]
    if "deadline has not passed" in reason or "not passed" in reason:
        deadline = int(view["order"]["deadline"])
        lines.append(f"The deadline passes at {when(deadline)} ({until(deadline, now_ms)}); "
                     "try again after that.")
    steps = next_steps(order_id, view, now_ms)
    if steps:
        lines.append("What can be done now: " + "; ".join(steps) + ".")
    return "\n".join(lines)


def window(ms: int) -> str:
    return format_duration(ms) if ms else "none"
