"""The escrow orders contract (vm/contracts/escrow.agc), through the contract test harness.

Each order path is walked end to end with every balance checked to the unit (native coin
and reward tokens), every permission and deadline rule is tried from the wrong side, and a
stateful hypothesis machine checks that the escrow never holds more or less than its open
orders and that no open order can stay stuck (DESIGN.md, "The commerce contracts").
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from hypothesis import Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from vm.compiler import Compiled, compile_file
from vm.executor import contract_address
from vm.testing import Contract, Env, Reverted

CONTRACTS = Path(__file__).resolve().parents[2] / "vm" / "contracts"
ESCROW_SRC, TOKEN_SRC = CONTRACTS / "escrow.agc", CONTRACTS / "token.agc"

DEPLOYER, REVIEWS, HOLDER = b"\xd0" * 20, b"\x7e" * 20, b"\x90" * 20
BUYER, MERCHANT, ARBITER = b"\xb1" * 20, b"\x3e" * 20, b"\xa8" * 20
REFERRER, STRANGER = b"\x5e" * 20, b"\x57" * 20
NOBODY = bytes(20)

PAID, SHIPPED, DELIVERED, COMPLETED, DECLINED = 1, 2, 3, 4, 5
CANCELLED, RETURN_REQUESTED, REFUNDED, DISPUTED, RESOLVED = 6, 7, 8, 9, 10
OPEN_STATES = {PAID, SHIPPED, DELIVERED, RETURN_REQUESTED, DISPUTED}
ENDED_STATES = {COMPLETED, DECLINED, CANCELLED, REFUNDED, RESOLVED}

MINUTE, HOUR = 60_000, 3_600_000
MAX_WINDOW = 30 * 24 * HOUR
REFERRAL_BPS, BUYER_BPS, MAX_FEE_BPS = 150, 75, 1_000
# Distinct windows, so a deadline computed from the wrong window shows up.
SHIP_W, CONFIRM_W, RETURN_W, DISPUTE_W = 1 * HOUR, 2 * HOUR, 3 * HOUR, 5 * HOUR
WINDOWS = (SHIP_W, CONFIRM_W, RETURN_W, DISPUTE_W)
PRICE = 1_000_003  # odd, so basis-point rounding is exercised
TOKENS_FOR_BUYER = 10**9
ACTORS = (BUYER, MERCHANT, ARBITER, REFERRER, STRANGER)


@cache
def compiled(path: Path) -> Compiled:
    """Compile each contract once per session: the stateful test deploys many times."""
    return compile_file(path)


@dataclass
class System:
    """One chain state with the reward token and the escrow deployed together."""

    env: Env
    token: Contract
    escrow: Contract


def deploy(referral_bps: int = REFERRAL_BPS, buyer_bps: int = BUYER_BPS) -> System:
    """Deploy token then escrow from one deployer; the token must name the escrow as a
    minter, so the escrow's address (the deployer's 2nd deploy) is computed up front."""
    env = Env()
    for actor in ACTORS:  # fund before any snapshot: first use would fund mid-test
        env.fund(actor)
    escrow_address = contract_address(DEPLOYER, 2)
    token = env.deploy(compiled(TOKEN_SRC), escrow_address, REVIEWS, HOLDER, 10**12,
                       sender=DEPLOYER)
    escrow = env.deploy(compiled(ESCROW_SRC), token.address, MAX_WINDOW, referral_bps,
                        buyer_bps, MAX_FEE_BPS, sender=DEPLOYER)
    assert escrow.address == escrow_address
    token.transfer(BUYER, TOKENS_FOR_BUYER, sender=HOLDER)
    return System(env, token, escrow)


@pytest.fixture
def s() -> System:
    return deploy()


def place(s: System, amount: int = PRICE, *, arbiter: bytes = NOBODY, fee_bps: int = 0,
          referrer: bytes = NOBODY, buyer: bytes = BUYER, merchant: bytes = MERCHANT,
          windows: tuple[int, int, int, int] = WINDOWS) -> int:
    """Place a native-coin order and return its id."""
    return s.escrow.place_order(merchant, arbiter, fee_bps, referrer, *windows, sender=buyer,
                                value=amount)


def token_order_data(merchant: bytes = MERCHANT, arbiter: bytes = NOBODY,
                     referrer: bytes = NOBODY, fee_bps: int = 0,
                     windows: tuple[int, int, int, int] = WINDOWS) -> bytes:
    """The 220-byte order description carried by token.transfer_and_call."""
    words = b"".join(w.to_bytes(32, "big") for w in (fee_bps, *windows))
    return merchant + arbiter + referrer + words


class Ledger:
    """Snapshots native and token balances of every party and the escrow, so a step can
    assert the exact change of each one (anything not named must not have moved)."""

    def __init__(self, s: System) -> None:
        self.s = s
        self.who = (*ACTORS, s.escrow.address)
        self.snap = self._read()

    def _read(self) -> dict[tuple[str, bytes], int]:
        out = {}
        for a in self.who:
            out["coin", a] = self.s.env.balance(a)
            out["token", a] = self.s.token.balance_of(a)
        return out

    def check(self, coin: dict[bytes, int] | None = None,
              tokens: dict[bytes, int] | None = None) -> None:
        now = self._read()
        want = {k: 0 for k in now}
        for a, d in (coin or {}).items():
            want["coin", a] = d
        for a, d in (tokens or {}).items():
            want["token", a] = d
        got = {k: now[k] - self.snap[k] for k in now}
        assert got == want
        self.snap = now


def changed(c: Contract) -> list[tuple[int, int, bytes]]:
    """The OrderChanged events of the last call as (order_id, state, actor)."""
    return [(f["order_id"], f["state"], f["actor"]) for n, f in c.last_events
            if n == "OrderChanged"]


def payouts(c: Contract) -> list[tuple[bytes, int]]:
    return [(f["receiver"], f["amount"]) for n, f in c.last_events if n == "Payout"]


def reward(amount: int, bps: int) -> int:
    return amount * bps // 10_000


def assert_order(s: System, oid: int, state: int, amount: int) -> None:
    assert (s.escrow.order_state(oid), s.escrow.order_amount(oid)) == (state, amount)
    total = s.escrow.locked(False)
    assert total == s.env.balance(s.escrow.address)


# ---------------------------------------------------------------- order paths


def test_place_order_locks_the_payment(s: System) -> None:
    """Placing moves the coin from buyer to escrow and records the order as PAID."""
    led = Ledger(s)
    oid = place(s)
    assert oid == 1
    assert s.escrow.last_events == [("OrderPlaced", {"order_id": 1, "buyer": BUYER,
                                                     "merchant": MERCHANT, "amount": PRICE,
                                                     "in_tokens": False})]
    led.check(coin={BUYER: -PRICE, s.escrow.address: PRICE})
    assert_order(s, oid, PAID, PRICE)
    assert s.escrow.order_paid(oid) == PRICE
    assert s.escrow.order_deadline(oid) == s.env.time_ms + SHIP_W
    assert s.escrow.locked(False) == PRICE


def test_decline_refunds_the_buyer_in_full(s: System) -> None:
    oid = place(s)
    led = Ledger(s)
    s.escrow.decline(oid, sender=MERCHANT)
    assert changed(s.escrow) == [(oid, DECLINED, MERCHANT)]
    assert payouts(s.escrow) == [(BUYER, PRICE)]
    led.check(coin={BUYER: PRICE, s.escrow.address: -PRICE})
    assert_order(s, oid, DECLINED, 0)


def test_cancel_before_shipping_refunds_the_buyer(s: System) -> None:
    oid = place(s, referrer=REFERRER)
    led = Ledger(s)
    s.escrow.cancel(oid, sender=BUYER)
    assert changed(s.escrow) == [(oid, CANCELLED, BUYER)]
    led.check(coin={BUYER: PRICE, s.escrow.address: -PRICE})  # and no reward tokens
    assert_order(s, oid, CANCELLED, 0)


def test_cancel_after_the_ship_deadline_when_the_merchant_missed_it(s: System) -> None:
    """A merchant who misses the ship deadline cannot ship any more; the buyer walks away."""
    oid = place(s)
    s.env.time_ms += SHIP_W + 1
    with pytest.raises(Reverted, match="ship deadline has passed"):
        s.escrow.ship(oid, sender=MERCHANT)
    led = Ledger(s)
    s.escrow.cancel(oid, sender=BUYER)
    led.check(coin={BUYER: PRICE, s.escrow.address: -PRICE})
    assert_order(s, oid, CANCELLED, 0)


def test_ship_on_the_deadline_itself_is_allowed(s: System) -> None:
    """The ship deadline is inclusive: the last millisecond still counts."""
    oid = place(s)
    s.env.time_ms += SHIP_W
    s.escrow.ship(oid, sender=MERCHANT)
    assert s.escrow.order_state(oid) == SHIPPED


def test_ship_confirm_release_after_the_return_window(s: System) -> None:
    """The happy path: money is held through delivery and the return window, then paid to
    the merchant, and the referrer and buyer earn their rewards on the full price."""
    oid = place(s, referrer=REFERRER)
    led = Ledger(s)
    s.env.time_ms += 10 * MINUTE
    s.escrow.ship(oid, sender=MERCHANT)
    assert changed(s.escrow) == [(oid, SHIPPED, MERCHANT)]
    assert s.escrow.order_deadline(oid) == s.env.time_ms + CONFIRM_W
    s.env.time_ms += HOUR
    s.escrow.confirm(oid, False, sender=BUYER)
    assert changed(s.escrow) == [(oid, DELIVERED, BUYER)]
    deadline = s.env.time_ms + RETURN_W
    assert s.escrow.order_deadline(oid) == deadline
    led.check()  # nothing has moved yet
    s.env.time_ms = deadline
    with pytest.raises(Reverted, match="return window is still open"):
        s.escrow.release(oid, sender=STRANGER)
    s.env.time_ms = deadline + 1
    s.escrow.release(oid, sender=STRANGER)  # anyone may release
    assert changed(s.escrow) == [(oid, COMPLETED, STRANGER)]
    led.check(coin={MERCHANT: PRICE, s.escrow.address: -PRICE},
              tokens={REFERRER: reward(PRICE, REFERRAL_BPS), BUYER: reward(PRICE, BUYER_BPS)})
    assert_order(s, oid, COMPLETED, 0)
    assert s.escrow.order_completed(oid) and s.escrow.order_ended(oid)
    assert s.escrow.merchant_counts(MERCHANT, 0) == 1


def test_confirm_with_waive_return_completes_at_once(s: System) -> None:
    oid = place(s, referrer=REFERRER)
    s.escrow.ship(oid, sender=MERCHANT)
    led = Ledger(s)
    s.escrow.confirm(oid, True, sender=BUYER)
    assert changed(s.escrow) == [(oid, DELIVERED, BUYER), (oid, COMPLETED, BUYER)]
    led.check(coin={MERCHANT: PRICE, s.escrow.address: -PRICE},
              tokens={REFERRER: reward(PRICE, REFERRAL_BPS), BUYER: reward(PRICE, BUYER_BPS)})
    assert_order(s, oid, COMPLETED, 0)
    with pytest.raises(Reverted, match="not allowed in the order's state"):
        s.escrow.release(oid, sender=STRANGER)


def test_merchant_claims_after_the_confirm_timeout(s: System) -> None:
    """A buyer who never confirms cannot hold the merchant's money."""
    oid = place(s)
    s.escrow.ship(oid, sender=MERCHANT)
    deadline = s.escrow.order_deadline(oid)
    s.env.time_ms = deadline
    with pytest.raises(Reverted, match="confirm timeout has not passed"):
        s.escrow.claim(oid, sender=MERCHANT)
    s.env.time_ms = deadline + 1
    led = Ledger(s)
    s.escrow.claim(oid, sender=MERCHANT)
    assert changed(s.escrow) == [(oid, COMPLETED, MERCHANT)]
    led.check(coin={MERCHANT: PRICE, s.escrow.address: -PRICE},
              tokens={BUYER: reward(PRICE, BUYER_BPS)})  # no referrer named: no referral
    assert_order(s, oid, COMPLETED, 0)


def test_request_return_then_accept_return_refunds_the_buyer(s: System) -> None:
    oid = place(s, referrer=REFERRER)
    s.escrow.ship(oid, sender=MERCHANT)
    s.escrow.confirm(oid, False, sender=BUYER)
    s.env.time_ms += RETURN_W  # the last moment of the window still counts
    s.escrow.request_return(oid, sender=BUYER)
    assert changed(s.escrow) == [(oid, RETURN_REQUESTED, BUYER)]
    assert s.escrow.order_deadline(oid) == s.env.time_ms + DISPUTE_W
    led = Ledger(s)
    s.escrow.accept_return(oid, sender=MERCHANT)
    assert changed(s.escrow) == [(oid, REFUNDED, MERCHANT)]
    led.check(coin={BUYER: PRICE, s.escrow.address: -PRICE})  # no rewards on a refund
    assert_order(s, oid, REFUNDED, 0)
    assert s.escrow.merchant_counts(MERCHANT, 1) == 1


def test_partial_refund_then_completion(s: System) -> None:
    """A partial refund pays the buyer at once, keeps the order open, and the rest goes to
    the merchant on completion; rewards are on the order value (what was paid)."""
    oid = place(s, referrer=REFERRER)
    s.escrow.ship(oid, sender=MERCHANT)
    led = Ledger(s)
    s.escrow.refund(oid, 300_000, sender=MERCHANT)
    assert changed(s.escrow) == []  # not a transition
    assert payouts(s.escrow) == [(BUYER, 300_000)]
    led.check(coin={BUYER: 300_000, s.escrow.address: -300_000})
    assert_order(s, oid, SHIPPED, PRICE - 300_000)
    s.escrow.confirm(oid, True, sender=BUYER)
    led.check(coin={MERCHANT: PRICE - 300_000, s.escrow.address: -(PRICE - 300_000)},
              tokens={REFERRER: reward(PRICE, REFERRAL_BPS), BUYER: reward(PRICE, BUYER_BPS)})
    assert_order(s, oid, COMPLETED, 0)
    assert s.escrow.order_paid(oid) == PRICE


def test_full_refund_ends_the_order(s: System) -> None:
    """Refunding everything that is held (after a partial refund) is a full refund."""
    oid = place(s)
    s.escrow.refund(oid, 1, sender=MERCHANT)
    led = Ledger(s)
    with pytest.raises(Reverted, match="refund out of range"):
        s.escrow.refund(oid, PRICE, sender=MERCHANT)
    with pytest.raises(Reverted, match="refund out of range"):
        s.escrow.refund(oid, 0, sender=MERCHANT)
    s.escrow.refund(oid, PRICE - 1, sender=MERCHANT)
    assert changed(s.escrow) == [(oid, REFUNDED, MERCHANT)]
    led.check(coin={BUYER: PRICE - 1, s.escrow.address: -(PRICE - 1)})
    assert_order(s, oid, REFUNDED, 0)
    with pytest.raises(Reverted, match="the order has ended"):
        s.escrow.refund(oid, 1, sender=MERCHANT)


def open_disputed(s: System, fee_bps: int = 500, **kw: Any) -> int:
    """An order with an arbiter, shipped and put in dispute by the buyer."""
    oid = place(s, arbiter=ARBITER, fee_bps=fee_bps, **kw)
    s.escrow.ship(oid, sender=MERCHANT)
    s.escrow.open_dispute(oid, sender=BUYER)
    assert changed(s.escrow) == [(oid, DISPUTED, BUYER)]
    assert s.escrow.order_deadline(oid) == s.env.time_ms + DISPUTE_W
    return oid


def test_dispute_resolved_by_the_arbiter_with_its_fee(s: System) -> None:
    oid = open_disputed(s, fee_bps=777, referrer=REFERRER)
    assert s.escrow.merchant_counts(MERCHANT, 2) == 1
    fee = PRICE * 777 // 10_000
    with pytest.raises(Reverted, match="more than the order holds after the fee"):
        s.escrow.resolve(oid, PRICE - fee + 1, sender=ARBITER)
    led = Ledger(s)
    to_buyer = 400_000
    s.escrow.resolve(oid, to_buyer, sender=ARBITER)
    assert changed(s.escrow) == [(oid, RESOLVED, ARBITER)]
    assert payouts(s.escrow) == [(ARBITER, fee), (BUYER, to_buyer),
                                 (MERCHANT, PRICE - fee - to_buyer)]
    led.check(coin={ARBITER: fee, BUYER: to_buyer, MERCHANT: PRICE - fee - to_buyer,
                    s.escrow.address: -PRICE})  # no rewards on a ruling
    assert_order(s, oid, RESOLVED, 0)


def test_dispute_resolved_after_a_partial_refund_takes_the_fee_on_what_is_held(
        s: System) -> None:
    """fee = held * bps // 10000, on what is still held, not on the original price."""
    oid = open_disputed(s, fee_bps=1_000)
    s.escrow.refund(oid, 3, sender=MERCHANT)
    held = PRICE - 3
    fee = held * 1_000 // 10_000
    led = Ledger(s)
    s.escrow.resolve(oid, 0, sender=ARBITER)
    led.check(coin={ARBITER: fee, MERCHANT: held - fee, s.escrow.address: -held})
    assert_order(s, oid, RESOLVED, 0)


def test_dispute_settled_by_agreement(s: System) -> None:
    """Different amounts settle nothing; once both state the same amount it is paid out."""
    oid = open_disputed(s)
    led = Ledger(s)
    s.escrow.settle(oid, 100, sender=BUYER)
    s.escrow.settle(oid, 50, sender=MERCHANT)
    assert changed(s.escrow) == []
    with pytest.raises(Reverted, match="only buyer or merchant"):
        s.escrow.settle(oid, 50, sender=ARBITER)
    with pytest.raises(Reverted, match="more than the order holds"):
        s.escrow.settle(oid, PRICE + 1, sender=BUYER)
    led.check()
    assert_order(s, oid, DISPUTED, PRICE)
    s.escrow.settle(oid, 50, sender=BUYER)
    assert changed(s.escrow) == [(oid, RESOLVED, BUYER)]
    led.check(coin={BUYER: 50, MERCHANT: PRICE - 50, s.escrow.address: -PRICE})
    assert_order(s, oid, RESOLVED, 0)


def test_dispute_settled_at_zero_by_agreement(s: System) -> None:
    """Agreeing on a refund of 0 is a real agreement (offers are stored + 1)."""
    oid = open_disputed(s)
    s.escrow.settle(oid, 0, sender=MERCHANT)
    assert s.escrow.order_state(oid) == DISPUTED
    led = Ledger(s)
    s.escrow.settle(oid, 0, sender=BUYER)
    led.check(coin={MERCHANT: PRICE, s.escrow.address: -PRICE})
    assert_order(s, oid, RESOLVED, 0)


def test_silent_arbiter_lets_settle_default_refund_the_buyer(s: System) -> None:
    oid = open_disputed(s)
    deadline = s.escrow.order_deadline(oid)
    s.env.time_ms = deadline
    with pytest.raises(Reverted, match="deadline has not passed"):
        s.escrow.settle_default(oid, sender=BUYER)
    s.env.time_ms = deadline + 1
    with pytest.raises(Reverted, match="only buyer or merchant"):
        s.escrow.settle_default(oid, sender=STRANGER)
    led = Ledger(s)
    s.escrow.settle_default(oid, sender=MERCHANT)  # either party may trigger it
    assert changed(s.escrow) == [(oid, RESOLVED, MERCHANT)]
    led.check(coin={BUYER: PRICE, s.escrow.address: -PRICE})  # arbiter gets no fee
    assert_order(s, oid, RESOLVED, 0)


def test_ignored_return_with_no_arbiter_settles_by_default(s: System) -> None:
    oid = place(s)
    s.escrow.ship(oid, sender=MERCHANT)
    s.escrow.confirm(oid, False, sender=BUYER)
    s.escrow.request_return(oid, sender=BUYER)
    with pytest.raises(Reverted, match="the order has no arbiter"):
        s.escrow.open_dispute(oid, sender=BUYER)
    deadline = s.escrow.order_deadline(oid)
    s.env.time_ms = deadline
    with pytest.raises(Reverted, match="deadline has not passed"):
        s.escrow.settle_default(oid, sender=BUYER)
    s.env.time_ms = deadline + 1
    led = Ledger(s)
    s.escrow.settle_default(oid, sender=BUYER)
    assert changed(s.escrow) == [(oid, REFUNDED, BUYER)]
    led.check(coin={BUYER: PRICE, s.escrow.address: -PRICE})
    assert_order(s, oid, REFUNDED, 0)


def test_ignored_return_with_an_arbiter_lets_the_buyer_dispute(s: System) -> None:
    """With an arbiter the way out of an ignored return is a dispute, not settle_default;
    the buyer may dispute only once the merchant's time to accept has passed."""
    oid = place(s, arbiter=ARBITER, fee_bps=100)
    s.escrow.ship(oid, sender=MERCHANT)
    s.escrow.confirm(oid, False, sender=BUYER)
    s.escrow.request_return(oid, sender=BUYER)
    with pytest.raises(Reverted, match="merchant may still accept"):
        s.escrow.open_dispute(oid, sender=BUYER)
    s.env.time_ms = s.escrow.order_deadline(oid) + 1
    with pytest.raises(Reverted, match="no default outcome"):
        s.escrow.settle_default(oid, sender=BUYER)
    with pytest.raises(Reverted, match="dispute deadline has passed"):
        s.escrow.open_dispute(oid, sender=MERCHANT)
    s.escrow.open_dispute(oid, sender=BUYER)
    assert changed(s.escrow) == [(oid, DISPUTED, BUYER)]
    s.env.time_ms = s.escrow.order_deadline(oid) + 1
    led = Ledger(s)
    s.escrow.settle_default(oid, sender=BUYER)
    led.check(coin={BUYER: PRICE, s.escrow.address: -PRICE})
    assert_order(s, oid, RESOLVED, 0)


def test_token_paid_order_end_to_end(s: System) -> None:
    """Paying in reward tokens: one transfer_and_call opens the order; tokens are locked in
    the escrow, paid out on completion, and rewards are minted on top."""
    led = Ledger(s)
    amount = 50_000
    data = token_order_data(referrer=REFERRER)
    assert len(data) == 220
    assert s.token.transfer_and_call(s.escrow.address, amount, data, sender=BUYER) is True
    led.check(tokens={BUYER: -amount, s.escrow.address: amount})
    oid = 1  # the first order of this escrow
    assert (s.escrow.locked(True), s.escrow.locked(False)) == (amount, 0)
    assert (s.escrow.order_state(oid), s.escrow.order_amount(oid)) == (PAID, amount)
    assert (s.escrow.order_buyer(oid), s.escrow.order_merchant(oid)) == (BUYER, MERCHANT)
    assert s.escrow.order_deadline(oid) == s.env.time_ms + SHIP_W
    s.escrow.ship(oid, sender=MERCHANT)
    s.escrow.refund(oid, 1_000, sender=MERCHANT)
    led.check(tokens={BUYER: 1_000, s.escrow.address: -1_000})
    s.escrow.confirm(oid, True, sender=BUYER)
    led.check(tokens={MERCHANT: amount - 1_000, s.escrow.address: -(amount - 1_000),
                      REFERRER: reward(amount, REFERRAL_BPS), BUYER: reward(amount, BUYER_BPS)})
    assert (s.escrow.order_state(oid), s.escrow.order_amount(oid)) == (COMPLETED, 0)
    assert s.escrow.locked(True) == 0


def test_token_paid_order_with_arbiter_resolved(s: System) -> None:
    """The arbiter fee and the split are paid in tokens for a token order."""
    amount = 10_000
    data = token_order_data(arbiter=ARBITER, fee_bps=250)
    s.token.transfer_and_call(s.escrow.address, amount, data, sender=BUYER)
    oid = 1
    s.escrow.ship(oid, sender=MERCHANT)
    s.escrow.open_dispute(oid, sender=MERCHANT)
    led = Ledger(s)
    s.escrow.resolve(oid, 7_000, sender=ARBITER)
    led.check(tokens={ARBITER: 250, BUYER: 7_000, MERCHANT: 2_750,
                      s.escrow.address: -amount})
    assert s.escrow.locked(True) == 0


def test_token_payment_with_bad_data_is_undone(s: System) -> None:
    """A refused token payment reverts the transfer too: the buyer keeps its tokens."""
    led = Ledger(s)
    with pytest.raises(Reverted, match="220 bytes"):
        s.token.transfer_and_call(s.escrow.address, 5, token_order_data()[:-1], sender=BUYER)
    with pytest.raises(Reverted, match="window out of limits"):
        s.token.transfer_and_call(s.escrow.address, 5,
                                  token_order_data(windows=(1, *WINDOWS[1:])), sender=BUYER)
    led.check()
    assert s.escrow.locked(True) == 0


def test_on_token_received_refuses_callers_other_than_the_token(s: System) -> None:
    """Otherwise anyone could open a 'token-paid' order without paying any tokens."""
    for caller in (BUYER, MERCHANT, STRANGER):
        with pytest.raises(Reverted, match="only the reward token pays in tokens"):
            s.escrow.on_token_received(caller, 1_000, token_order_data(), sender=caller)
    assert s.escrow.locked(True) == 0


# ---------------------------------------------------------------- rewards


def test_no_rewards_when_buyer_is_the_merchant(s: System) -> None:
    oid = place(s, buyer=MERCHANT, referrer=REFERRER)
    s.escrow.ship(oid, sender=MERCHANT)
    led = Ledger(s)
    s.escrow.confirm(oid, True, sender=MERCHANT)
    assert s.escrow.order_state(oid) == COMPLETED
    led.check(coin={MERCHANT: PRICE, s.escrow.address: -PRICE})


def test_no_rewards_when_bps_are_zero() -> None:
    s = deploy(referral_bps=0, buyer_bps=0)
    oid = place(s, referrer=REFERRER)
    s.escrow.ship(oid, sender=MERCHANT)
    led = Ledger(s)
    s.escrow.confirm(oid, True, sender=BUYER)
    led.check(coin={MERCHANT: PRICE, s.escrow.address: -PRICE})


def test_rewards_only_on_completion_never_on_refund_cancel_or_ruling(s: System) -> None:
    """Across every non-completing end the token supply must not move."""
    supply = s.token.total_supply()
    a = place(s, referrer=REFERRER)
    s.escrow.cancel(a, sender=BUYER)
    b = place(s, referrer=REFERRER)
    s.escrow.decline(b, sender=MERCHANT)
    c = place(s, referrer=REFERRER)
    s.escrow.refund(c, PRICE, sender=MERCHANT)
    d = open_disputed(s, referrer=REFERRER)
    s.escrow.resolve(d, 0, sender=ARBITER)  # all to the merchant, still no reward
    e = open_disputed(s, referrer=REFERRER)
    s.escrow.settle(e, 0, sender=BUYER)
    s.escrow.settle(e, 0, sender=MERCHANT)
    assert s.token.total_supply() == supply
    assert (s.token.balance_of(REFERRER), s.token.balance_of(BUYER)) == (0, TOKENS_FOR_BUYER)


# ---------------------------------------------------------------- placing: validation


@pytest.mark.parametrize(("kw", "value", "reason"), [
    ({}, 0, "an order pays something"),
    ({"merchant": NOBODY}, PRICE, "an order names its merchant"),
    ({"arbiter": BUYER}, PRICE, "the arbiter is a third party"),
    ({"arbiter": MERCHANT}, PRICE, "the arbiter is a third party"),
    ({"arbiter": ARBITER, "fee_bps": MAX_FEE_BPS + 1}, PRICE, "arbiter fee over the limit"),
    ({"windows": (MINUTE - 1, HOUR, HOUR, HOUR)}, PRICE, "window out of limits"),
    ({"windows": (HOUR, MAX_WINDOW + 1, HOUR, HOUR)}, PRICE, "window out of limits"),
    ({"windows": (HOUR, HOUR, 0, HOUR)}, PRICE, "window out of limits"),
    ({"windows": (HOUR, HOUR, HOUR, MINUTE - 1)}, PRICE, "window out of limits"),
])
def test_place_order_rejects_bad_orders(s: System, kw: dict, value: int, reason: str) -> None:
    led = Ledger(s)
    with pytest.raises(Reverted, match=reason):
        place(s, value, **kw)
    led.check()
    assert s.escrow.locked(False) == 0


def test_window_limits_are_inclusive(s: System) -> None:
    oid = place(s, windows=(MINUTE, MAX_WINDOW, MINUTE, MAX_WINDOW))
    assert s.escrow.order_state(oid) == PAID


# ---------------------------------------------------------------- permissions and states


def to_state(s: System, state: int, arbiter: bytes = ARBITER) -> int:
    """A fresh order brought to ``state`` by its rightful parties (within all windows)."""
    oid = place(s, arbiter=arbiter, fee_bps=100 if arbiter != NOBODY else 0)
    steps = {
        PAID: [],
        SHIPPED: [("ship", MERCHANT)],
        DELIVERED: [("ship", MERCHANT), ("confirm", BUYER, False)],
        RETURN_REQUESTED: [("ship", MERCHANT), ("confirm", BUYER, False),
                           ("request_return", BUYER)],
        DISPUTED: [("ship", MERCHANT), ("open_dispute", BUYER)],
        COMPLETED: [("ship", MERCHANT), ("confirm", BUYER, True)],
        DECLINED: [("decline", MERCHANT)],
        CANCELLED: [("cancel", BUYER)],
        REFUNDED: [("refund", MERCHANT, PRICE)],
        RESOLVED: [("ship", MERCHANT), ("open_dispute", BUYER), ("resolve", ARBITER, 0)],
    }[state]
    for name, who, *args in steps:
        getattr(s.escrow, name)(oid, *args, sender=who)
    assert s.escrow.order_state(oid) == state
    return oid


# (method, extra args, state where the rightful party may call it, rightful party)
GUARDED = [
    ("confirm", (False,), SHIPPED, BUYER, "only the buyer"),
    ("cancel", (), PAID, BUYER, "only the buyer"),
    ("request_return", (), DELIVERED, BUYER, "only the buyer"),
    ("ship", (), PAID, MERCHANT, "only the merchant"),
    ("decline", (), PAID, MERCHANT, "only the merchant"),
    ("accept_return", (), RETURN_REQUESTED, MERCHANT, "only the merchant"),
    ("refund", (1,), SHIPPED, MERCHANT, "only the merchant"),
    ("resolve", (0,), DISPUTED, ARBITER, "only the arbiter resolves"),
]


@pytest.mark.parametrize(("method", "args", "state", "party", "reason"), GUARDED,
                         ids=[g[0] for g in GUARDED])
def test_only_the_rightful_party_may_act(s: System, method: str, args: tuple, state: int,
                                         party: bytes, reason: str) -> None:
    """Everyone else is refused with nothing moved; then the rightful party succeeds."""
    oid = to_state(s, state)
    led = Ledger(s)
    for who in (BUYER, MERCHANT, ARBITER, STRANGER):
        if who == party:
            continue
        with pytest.raises(Reverted, match=reason):
            getattr(s.escrow, method)(oid, *args, sender=who)
    led.check()
    assert s.escrow.order_state(oid) == state
    getattr(s.escrow, method)(oid, *args, sender=party)


def test_claim_is_for_the_merchant_only(s: System) -> None:
    oid = to_state(s, SHIPPED)
    s.env.time_ms = s.escrow.order_deadline(oid) + 1
    for who in (BUYER, ARBITER, STRANGER):
        with pytest.raises(Reverted, match="only the merchant"):
            s.escrow.claim(oid, sender=who)
    s.escrow.claim(oid, sender=MERCHANT)


def test_only_buyer_or_merchant_open_a_dispute(s: System) -> None:
    oid = to_state(s, SHIPPED)
    for who in (ARBITER, STRANGER):
        with pytest.raises(Reverted, match="only buyer or merchant"):
            s.escrow.open_dispute(oid, sender=who)


ALL_STATES = [PAID, SHIPPED, DELIVERED, RETURN_REQUESTED, DISPUTED, COMPLETED, DECLINED,
              CANCELLED, REFUNDED, RESOLVED]
# method -> (args, party, states it is allowed in)
TRANSITIONS: dict[str, tuple[tuple, bytes, set[int]]] = {
    "ship": ((), MERCHANT, {PAID}),
    "decline": ((), MERCHANT, {PAID}),
    "cancel": ((), BUYER, {PAID}),
    "confirm": ((False,), BUYER, {SHIPPED}),
    "request_return": ((), BUYER, {DELIVERED}),
    "accept_return": ((), MERCHANT, {RETURN_REQUESTED}),
    "resolve": ((0,), ARBITER, {DISPUTED}),
    "settle": ((0,), BUYER, {DISPUTED}),
    "refund": ((1,), MERCHANT, OPEN_STATES),
    "open_dispute": ((), MERCHANT, {SHIPPED, DELIVERED, RETURN_REQUESTED}),
}
WRONG = [(m, st_) for m, (_, _, ok) in TRANSITIONS.items() for st_ in ALL_STATES
         if st_ not in ok]


@pytest.mark.parametrize(("method", "state"), WRONG, ids=[f"{m}-{st_}" for m, st_ in WRONG])
def test_no_transition_from_a_wrong_state(s: System, method: str, state: int) -> None:
    """The rightful party, in time, is still refused when the order is in the wrong state."""
    args, party, _ = TRANSITIONS[method]
    oid = to_state(s, state)
    led = Ledger(s)
    with pytest.raises(Reverted):
        getattr(s.escrow, method)(oid, *args, sender=party)
    led.check()
    assert s.escrow.order_state(oid) == state


@pytest.mark.parametrize("state", [PAID, DELIVERED, RETURN_REQUESTED, *sorted(ENDED_STATES)])
def test_claim_release_settle_default_from_wrong_states(s: System, state: int) -> None:
    """Time-driven exits only work in their own state, however late it is."""
    oid = to_state(s, state)
    s.env.time_ms += 10 * MAX_WINDOW
    if state != SHIPPED:
        with pytest.raises(Reverted, match="not allowed"):
            s.escrow.claim(oid, sender=MERCHANT)
    if state != DELIVERED:
        with pytest.raises(Reverted, match="not allowed"):
            s.escrow.release(oid, sender=STRANGER)
    with pytest.raises(Reverted, match="no default outcome"):  # has an arbiter
        s.escrow.settle_default(oid, sender=BUYER)
    assert s.escrow.order_state(oid) == state


def test_passed_windows_are_closed(s: System) -> None:
    """Ship after its deadline, return after the window, dispute after its deadline."""
    a = to_state(s, PAID)
    s.env.time_ms = s.escrow.order_deadline(a) + 1
    with pytest.raises(Reverted, match="ship deadline has passed"):
        s.escrow.ship(a, sender=MERCHANT)

    b = to_state(s, DELIVERED)
    s.env.time_ms = s.escrow.order_deadline(b) + 1
    with pytest.raises(Reverted, match="return window has closed"):
        s.escrow.request_return(b, sender=BUYER)
    for who in (BUYER, MERCHANT):
        with pytest.raises(Reverted, match="dispute deadline has passed"):
            s.escrow.open_dispute(b, sender=who)

    c = to_state(s, SHIPPED)
    s.env.time_ms = s.escrow.order_deadline(c) + 1
    for who in (BUYER, MERCHANT):
        with pytest.raises(Reverted, match="dispute deadline has passed"):
            s.escrow.open_dispute(c, sender=who)


def test_too_early_exits_are_refused(s: System) -> None:
    """Claim before the confirm timeout, release inside the return window, settle_default
    before the ruling timeout."""
    a = to_state(s, SHIPPED)
    with pytest.raises(Reverted, match="confirm timeout has not passed"):
        s.escrow.claim(a, sender=MERCHANT)
    b = to_state(s, DELIVERED)
    with pytest.raises(Reverted, match="return window is still open"):
        s.escrow.release(b, sender=MERCHANT)
    c = to_state(s, DISPUTED)
    with pytest.raises(Reverted, match="deadline has not passed"):
        s.escrow.settle_default(c, sender=BUYER)


def test_dispute_in_time_from_delivered_and_by_merchant_on_return(s: System) -> None:
    """Inside the window either party may dispute a delivered order; the merchant may
    dispute a return request before its deadline."""
    a = to_state(s, DELIVERED)
    s.env.time_ms = s.escrow.order_deadline(a)
    s.escrow.open_dispute(a, sender=MERCHANT)
    assert changed(s.escrow) == [(a, DISPUTED, MERCHANT)]
    b = to_state(s, RETURN_REQUESTED)
    s.escrow.open_dispute(b, sender=MERCHANT)
    assert s.escrow.order_state(b) == DISPUTED


def test_only_the_named_arbiter_resolves_not_another_arbiter(s: System) -> None:
    """An arbiter of one order has no power over another order."""
    other = b"\xa9" * 20
    oid = place(s, arbiter=other, fee_bps=0)
    s.escrow.ship(oid, sender=MERCHANT)
    s.escrow.open_dispute(oid, sender=BUYER)
    with pytest.raises(Reverted, match="only the arbiter resolves"):
        s.escrow.resolve(oid, 0, sender=ARBITER)
    s.escrow.resolve(oid, PRICE, sender=other)
    assert s.escrow.order_state(oid) == RESOLVED


@pytest.mark.parametrize("state", ALL_STATES)
def test_order_ended_means_completed_refunded_or_resolved(s: System, state: int) -> None:
    """order_ended is what the reviews contract relies on: DESIGN lets only completed,
    refunded or resolved orders be reviewed; order_completed only the completed one."""
    oid = to_state(s, state)
    assert s.escrow.order_ended(oid) is (state in {COMPLETED, REFUNDED, RESOLVED})
    assert s.escrow.order_completed(oid) is (state == COMPLETED)


def test_token_order_data_must_be_exactly_220_bytes(s: System) -> None:
    with pytest.raises(Reverted, match="220 bytes"):
        s.token.transfer_and_call(s.escrow.address, 5, token_order_data() + b"\0", sender=BUYER)
    with pytest.raises(Reverted, match="an order pays something"):
        s.token.transfer_and_call(s.escrow.address, 0, token_order_data(), sender=BUYER)


# ---------------------------------------------------------------- stateful


def bring_to_end(s: System, oid: int) -> None:
    """Apply the documented way out of an open order, as the party that is waiting, after
    moving time past the relevant deadline (never backwards)."""
    e = s.escrow
    buyer, merchant = e.order_buyer(oid), e.order_merchant(oid)

    def past_deadline() -> None:
        s.env.time_ms = max(s.env.time_ms, e.order_deadline(oid) + 1)

    for _ in range(4):
        state = e.order_state(oid)
        if state in ENDED_STATES:
            break
        if state == PAID:
            e.cancel(oid, sender=buyer)
        elif state == SHIPPED:
            past_deadline()
            e.claim(oid, sender=merchant)
        elif state == DELIVERED:
            past_deadline()
            e.release(oid, sender=STRANGER)
        elif state == RETURN_REQUESTED:
            past_deadline()
            try:
                e.settle_default(oid, sender=buyer)  # no arbiter
            except Reverted:
                e.open_dispute(oid, sender=buyer)  # arbiter: dispute, then its timeout
        elif state == DISPUTED:
            past_deadline()
            e.settle_default(oid, sender=buyer)
    assert e.order_state(oid) in ENDED_STATES
    assert e.order_amount(oid) == 0


METHODS = ["ship", "decline", "cancel", "confirm", "release", "claim", "request_return",
           "accept_return", "refund", "open_dispute", "resolve", "settle", "settle_default"]
TAKES_AMOUNT = {"refund", "resolve", "settle"}


class EscrowMachine(RuleBasedStateMachine):
    """Random actions by random actors over a few native-coin orders and random time jumps:
    the coin held must always equal what the open orders hold, and every open order must
    still have a way to end."""

    def __init__(self) -> None:
        super().__init__()
        self.s = deploy()
        self.orders: list[int] = []

    @rule(arbiter=st.booleans(), amount=st.integers(1, 10**6),
          fee=st.integers(0, MAX_FEE_BPS), buyer_is_merchant=st.booleans())
    def place(self, arbiter: bool, amount: int, fee: int, buyer_is_merchant: bool) -> None:
        if len(self.orders) >= 4:
            return
        buyer = MERCHANT if buyer_is_merchant and not arbiter else BUYER
        oid = place(self.s, amount, arbiter=ARBITER if arbiter else NOBODY,
                    fee_bps=fee if arbiter else 0, referrer=REFERRER, buyer=buyer)
        self.orders.append(oid)

    @rule(pick=st.integers(0, 3), method=st.sampled_from(METHODS),
          actor=st.sampled_from([BUYER, MERCHANT, ARBITER, STRANGER]),
          amount=st.integers(0, 10**6), flag=st.booleans())
    def act(self, pick: int, method: str, actor: bytes, amount: int, flag: bool) -> None:
        if not self.orders:
            return
        oid = self.orders[pick % len(self.orders)]
        args: tuple = (amount,) if method in TAKES_AMOUNT else (flag,) if method == "confirm" \
            else ()
        e = self.s.escrow
        before = e.order_state(oid)
        with contextlib.suppress(Reverted):
            getattr(e, method)(oid, *args, sender=actor)
            # Every state change is announced, in order, with its actor (read the events
            # first: any later call, views included, replaces last_events).
            events = changed(e)
            after = e.order_state(oid)
            if after != before:
                assert events and events[-1][:2] == (oid, after)
                assert all(a == actor for _, _, a in events)
            else:
                assert events == []

    @rule(jump=st.sampled_from([0, 1, MINUTE, HOUR, 2 * HOUR, 3 * HOUR + 1, 6 * HOUR]))
    def wait(self, jump: int) -> None:
        self.s.env.time_ms += jump

    @invariant()
    def coin_held_matches_open_orders(self) -> None:
        e = self.s.escrow
        open_sum = sum(e.order_amount(o) for o in self.orders if e.order_state(o) in OPEN_STATES)
        ended_sum = sum(e.order_amount(o) for o in self.orders
                        if e.order_state(o) in ENDED_STATES)
        assert self.s.env.balance(e.address) == e.locked(False) == open_sum
        assert ended_sum == 0

    def teardown(self) -> None:
        for oid in self.orders:
            bring_to_end(self.s, oid)
        assert self.s.escrow.locked(False) == 0
        assert self.s.env.balance(self.s.escrow.address) == 0


EscrowMachine.TestCase.settings = settings(max_examples=25, stateful_step_count=20,
                                           deadline=None, database=None,
                                           # no explain phase: its tracing is slow here
                                           phases=[Phase.explicit, Phase.reuse,
                                                   Phase.generate, Phase.shrink])
TestEscrowMachine = EscrowMachine.TestCase


def test_one_address_as_buyer_and_merchant_can_settle_with_itself() -> None:
    """Settlement needs both parties' word; when one address is both, its one call is
    both words (otherwise the order could only end by ruling or timeout)."""
    from vm.testing import Env

    env = Env()
    escrow_at = contract_address(DEPLOYER, 2)
    token = env.load_contract(CONTRACTS / "token.agc", escrow_at, escrow_at, DEPLOYER, 0,
                              sender=DEPLOYER)
    escrow = env.load_contract(CONTRACTS / "escrow.agc", token.address, 30 * 24 * HOUR, 0, 0,
                               500, sender=DEPLOYER)
    oid = escrow.place_order(BUYER, ARBITER, 100, NOBODY, HOUR, HOUR, HOUR, HOUR,
                             sender=BUYER, value=1_000)
    escrow.ship(oid, sender=BUYER)
    escrow.open_dispute(oid, sender=BUYER)
    escrow.settle(oid, 400, sender=BUYER)
    assert escrow.order_state(oid) == 10  # RESOLVED
    assert escrow.order_amount(oid) == 0
