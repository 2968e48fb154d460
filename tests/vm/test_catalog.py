"""The catalog (catalog.agc): the arbiter registry and merchants' listings.

Read as its specification: arbiters register once within the deploy limits and may
retire and return; a listing is created only with valid terms, every edit of what an
order agrees to raises its version by exactly one (stock and pausing do not), only its
merchant edits it, only the escrow takes and puts back stock, put_back saturates, and
the constructor refuses limits outside the fixed bounds.
"""

from __future__ import annotations

import pytest
from commerce_helpers import (
    ANSWER_W,
    ARBITER,
    ARBITER_2,
    BUYER,
    CONFIRM_W,
    DAY,
    DECLINED,
    DEFAULT_REFUND_BPS,
    DESCRIPTION,
    MERCHANT,
    MERCHANT_2,
    MINUTE,
    NOBODY,
    PRICE,
    REFERRER,
    RESOLVED,
    RETURN_W,
    SHIP_W,
    STRANGER,
    TOKEN_PRICE,
    Market,
    order_data,
    reverts,
)

from vm.contracts import compiled
from vm.testing import Env

ARBITER_3 = b"\xaa" * 20
MAX_W = 60 * DAY            # the Market's deploy limit on every window
MAX_FEE, MAX_COMMISSION, MAX_GROUP = 1_000, 3_000, 10_000
MAX_UINT = 2**256 - 1
WEEK = 7 * DAY
YEAR = 365 * DAY


@pytest.fixture
def m() -> Market:
    return Market()


def create(m: Market, *, title: str = "A mug", description: bytes = DESCRIPTION,
           price: int = PRICE, token_price: int = TOKEN_PRICE, stock: int = 10,
           ship: int = SHIP_W, confirm: int = CONFIRM_W, returns: int = RETURN_W,
           answer: int = ANSWER_W, arbiters: tuple[bytes, bytes, bytes] = (ARBITER, NOBODY,
                                                                           NOBODY),
           no_arbiter_ok: bool = False, default_refund_bps: int = DEFAULT_REFUND_BPS,
           sender: bytes = MERCHANT) -> int:
    """create_listing with every argument named and a sensible default."""
    return m.catalog.create_listing(title, description, price, token_price, stock, ship,
                                    confirm, returns, answer, *arbiters, no_arbiter_ok,
                                    default_refund_bps, sender=sender)


def terms(m: Market, lid: int, *, ship: int = SHIP_W, confirm: int = CONFIRM_W,
          returns: int = RETURN_W, answer: int = ANSWER_W,
          arbiters: tuple[bytes, bytes, bytes] = (ARBITER, NOBODY, NOBODY),
          no_arbiter_ok: bool = False, default_refund_bps: int = DEFAULT_REFUND_BPS,
          sender: bytes = MERCHANT) -> None:
    m.catalog.set_terms(lid, ship, confirm, returns, answer, *arbiters, no_arbiter_ok,
                        default_refund_bps, sender=sender)


def changed(lid: int, version: int, what: str, merchant: bytes = MERCHANT) -> list:
    return [("ListingChanged", {"listing_id": lid, "merchant": merchant, "version": version,
                                "what": what})]


def no_listing_yet(m: Market) -> bool:
    """A refused create left nothing behind: the first id is still free."""
    return m.catalog.listing(1)["merchant"] == NOBODY and create(m) == 1


# ---------------------------------------------------------------- limits


def test_limits_reports_the_deploy_limits_and_the_fixed_ones(m: Market) -> None:
    assert m.catalog.limits() == {"min_window": MINUTE, "max_window": MAX_W,
                                  "min_return_window": WEEK, "max_fee_bps": MAX_FEE,
                                  "max_commission_bps": MAX_COMMISSION,
                                  "max_group_size": MAX_GROUP, "max_title_bytes": 120}


def deploy_catalog(max_window: int = MAX_W, fee: int = MAX_FEE,
                   commission: int = MAX_COMMISSION, group: int = MAX_GROUP):
    env = Env()
    return env.deploy(compiled("catalog"), b"\xe5" * 20, max_window, fee, commission, group)


@pytest.mark.parametrize(("limits", "reason"), [
    (dict(max_window=WEEK - 1), "max_window must be 7 to 365 days"),
    (dict(max_window=YEAR + 1), "max_window must be 7 to 365 days"),
    (dict(max_window=0), "max_window must be 7 to 365 days"),
    (dict(fee=5_001), "max_fee_bps over 50%"),
    (dict(commission=5_001), "max_commission_bps over 50%"),
    (dict(group=1), "max_group_size must be 2 to 100,000"),
    (dict(group=0), "max_group_size must be 2 to 100,000"),
    (dict(group=100_001), "max_group_size must be 2 to 100,000"),
])
def test_a_catalog_with_limits_out_of_bounds_is_not_deployed(limits: dict, reason: str) -> None:
    reverts(deploy_catalog, **limits, match=reason)


@pytest.mark.parametrize("limits", [
    dict(max_window=WEEK, fee=0, commission=0, group=2),
    dict(max_window=YEAR, fee=5_000, commission=5_000, group=100_000),
])
def test_a_catalog_at_the_bounds_is_deployed_and_reports_them(limits: dict) -> None:
    catalog = deploy_catalog(**limits)
    got = catalog.limits()
    assert (got["max_window"], got["max_fee_bps"], got["max_commission_bps"],
            got["max_group_size"]) == (limits["max_window"], limits["fee"],
                                       limits["commission"], limits["group"])


def test_the_deploy_limit_on_windows_binds_listings() -> None:
    catalog = deploy_catalog(max_window=WEEK)  # return window: exactly 7 days or final sale
    args = ("t", DESCRIPTION, 1, 0, 1, MINUTE, WEEK, WEEK, MINUTE, NOBODY, NOBODY, NOBODY,
            True, 0)
    assert catalog.create_listing(*args, sender=MERCHANT) == 1
    reverts(catalog.create_listing, *args[:6], WEEK + 1, *args[7:], sender=MERCHANT,
            match="window out of limits")
    reverts(catalog.create_listing, *args[:7], WEEK + 1, *args[8:], sender=MERCHANT,
            match="the return window is 0 (final sale) or 7 days to the limit")


# ---------------------------------------------------------------- arbiters


def test_an_arbiter_registers_with_its_name_fee_and_ruling_window(m: Market) -> None:
    m.advance(1_234)
    m.catalog.register_arbiter("Cy", 75, 2 * DAY, sender=ARBITER_3)
    assert m.catalog.last_events == [("ArbiterRegistered", {
        "arbiter": ARBITER_3, "name": "Cy", "fee_bps": 75, "ruling_window": 2 * DAY})]
    assert m.catalog.arbiter(ARBITER_3) == {"name": "Cy", "fee_bps": 75,
                                            "ruling_window": 2 * DAY, "active": True,
                                            "registered_at": m.now}


def test_an_unregistered_account_has_no_arbiter_record(m: Market) -> None:
    assert m.catalog.arbiter(STRANGER) == {"name": "", "fee_bps": 0, "ruling_window": 0,
                                           "active": False, "registered_at": 0}


def test_an_arbiter_registers_once_and_its_terms_never_change(m: Market) -> None:
    before = m.catalog.arbiter(ARBITER)
    reverts(m.catalog.register_arbiter, "Ann again", 0, DAY, sender=ARBITER,
            match="already registered")
    m.catalog.set_arbiter_active(False, sender=ARBITER)
    reverts(m.catalog.register_arbiter, "Ann", 0, DAY, sender=ARBITER,  # retired: still
            match="already registered")
    assert m.catalog.arbiter(ARBITER) == {**before, "active": False}


@pytest.mark.parametrize(("name", "ok"), [
    ("", False),
    ("x", True),
    ("x" * 64, True),
    ("x" * 65, False),
    ("é" * 32, True),              # 32 characters, 64 bytes
    ("é" * 32 + "x", False),       # 33 characters, 65 bytes
    ("€" * 22, False),             # 22 characters, 66 bytes
])
def test_an_arbiters_name_is_1_to_64_bytes_of_utf8(m: Market, name: str, ok: bool) -> None:
    if ok:
        m.catalog.register_arbiter(name, 0, DAY, sender=ARBITER_3)
        assert m.catalog.arbiter(ARBITER_3)["name"] == name
    else:
        reverts(m.catalog.register_arbiter, name, 0, DAY, sender=ARBITER_3,
                match="a name of 1 to 64 bytes")
        assert m.catalog.arbiter(ARBITER_3)["ruling_window"] == 0


@pytest.mark.parametrize(("fee", "ruling", "reason"), [
    (MAX_FEE + 1, DAY, "fee over the limit"),
    (10_000, DAY, "fee over the limit"),
    (0, MINUTE - 1, "window out of limits"),
    (0, 0, "window out of limits"),
    (0, MAX_W + 1, "window out of limits"),
])
def test_an_arbiters_fee_and_ruling_window_are_within_the_limits(
        m: Market, fee: int, ruling: int, reason: str) -> None:
    reverts(m.catalog.register_arbiter, "Cy", fee, ruling, sender=ARBITER_3, match=reason)
    assert m.catalog.arbiter(ARBITER_3)["ruling_window"] == 0  # not registered


@pytest.mark.parametrize(("fee", "ruling"), [(MAX_FEE, MINUTE), (0, MAX_W)])
def test_an_arbiter_at_the_limits_registers(m: Market, fee: int, ruling: int) -> None:
    m.catalog.register_arbiter("Cy", fee, ruling, sender=ARBITER_3)
    got = m.catalog.arbiter(ARBITER_3)
    assert (got["fee_bps"], got["ruling_window"], got["active"]) == (fee, ruling, True)


def test_an_arbiter_retires_and_returns(m: Market) -> None:
    lid = m.listing(arbiters=(ARBITER, ARBITER_2))
    m.catalog.set_arbiter_active(False, sender=ARBITER)
    assert m.catalog.last_events == [("ArbiterChanged", {"arbiter": ARBITER, "active": False})]
    assert m.catalog.arbiter(ARBITER)["active"] is False
    reverts(m.order, lid, arbiter=ARBITER, match="the arbiter has retired")
    assert m.state(m.order(lid, arbiter=ARBITER_2)) == 1  # the listing's other arbiter
    reverts(create, m, arbiters=(ARBITER, NOBODY, NOBODY), match="the arbiter has retired")
    m.catalog.set_arbiter_active(True, sender=ARBITER)
    assert m.catalog.last_events == [("ArbiterChanged", {"arbiter": ARBITER, "active": True})]
    assert m.catalog.arbiter(ARBITER)["active"] is True
    assert m.get(m.order(lid, arbiter=ARBITER))["arbiter"] == ARBITER


def test_a_retiring_arbiter_keeps_the_orders_that_name_it(m: Market) -> None:
    lid = m.listing()
    oid = m.order(lid)
    m.catalog.set_arbiter_active(False, sender=ARBITER)
    m.ship(oid)
    m.dispute(oid)
    m.escrow.resolve(oid, 0, sender=ARBITER)
    assert m.state(oid) == RESOLVED  # by the retired arbiter


def test_only_a_registered_arbiter_retires(m: Market) -> None:
    reverts(m.catalog.set_arbiter_active, False, sender=STRANGER,
            match="not a registered arbiter")
    reverts(m.catalog.set_arbiter_active, True, sender=STRANGER,
            match="not a registered arbiter")
    assert m.catalog.arbiter(STRANGER)["active"] is False


# ---------------------------------------------------------------- creating a listing


def test_a_listing_is_created_with_its_terms_at_version_one(m: Market) -> None:
    m.advance(5_000)
    lid = create(m, arbiters=(ARBITER, ARBITER_2, NOBODY), stock=7)
    assert lid == 1
    assert m.catalog.last_events == [("ListingCreated", {
        "listing_id": 1, "merchant": MERCHANT, "title": "A mug", "price": PRICE,
        "token_price": TOKEN_PRICE, "stock": 7})]
    assert m.catalog.listing(lid) == {
        "merchant": MERCHANT, "version": 1, "title": "A mug", "description": DESCRIPTION,
        "price": PRICE, "token_price": TOKEN_PRICE, "stock": 7, "paused": False,
        "ship_window": SHIP_W, "confirm_window": CONFIRM_W, "return_window": RETURN_W,
        "answer_window": ANSWER_W, "arbiter_1": ARBITER, "arbiter_2": ARBITER_2,
        "arbiter_3": NOBODY, "no_arbiter_ok": False, "default_refund_bps": DEFAULT_REFUND_BPS,
        "referral_bps": 0, "cashback_bps": 0, "bounty_bps": 0, "group_price": 0,
        "group_size": 0, "group_window": 0, "created_at": m.now}
    assert create(m, sender=MERCHANT_2) == 2  # ids count up, across merchants


def test_an_unknown_listing_reads_as_empty(m: Market) -> None:
    got = m.catalog.listing(99)
    assert (got["merchant"], got["version"], got["stock"]) == (NOBODY, 0, 0)


@pytest.mark.parametrize(("title", "ok"), [
    ("", False),
    ("x", True),
    ("x" * 120, True),
    ("x" * 121, False),
    ("€" * 40, True),              # 40 characters, 120 bytes
    ("€" * 40 + "x", False),       # 41 characters, 121 bytes
    ("🍵" * 31, False),            # 31 characters, 124 bytes
])
def test_a_title_is_1_to_120_bytes_of_utf8(m: Market, title: str, ok: bool) -> None:
    if ok:
        assert m.catalog.listing(create(m, title=title))["title"] == title
    else:
        reverts(create, m, title=title, match="a title of 1 to 120 bytes")
        assert no_listing_yet(m)


@pytest.mark.parametrize("length", [0, 31, 33, 64])
def test_the_description_is_a_32_byte_hash(m: Market, length: int) -> None:
    reverts(create, m, description=b"\x11" * length,
            match="description is the SHA-256 of the full text")
    assert no_listing_yet(m)


@pytest.mark.parametrize(("price", "token_price"), [(1, 0), (0, 1), (5, 7)])
def test_a_listing_has_a_price_in_coin_or_tokens_or_both(m: Market, price: int,
                                                         token_price: int) -> None:
    got = m.catalog.listing(create(m, price=price, token_price=token_price))
    assert (got["price"], got["token_price"]) == (price, token_price)


def test_a_listing_without_any_price_is_refused(m: Market) -> None:
    reverts(create, m, price=0, token_price=0, match="a listing has a price in coin or in tokens")
    assert no_listing_yet(m)


@pytest.mark.parametrize("window", ["ship", "confirm", "answer"])
@pytest.mark.parametrize(("value", "ok"), [(0, False), (MINUTE - 1, False), (MINUTE, True),
                                           (MAX_W, True), (MAX_W + 1, False)])
def test_each_window_is_a_minute_to_the_deploy_limit(m: Market, window: str, value: int,
                                                     ok: bool) -> None:
    if ok:
        assert m.catalog.listing(create(m, **{window: value}))[f"{window}_window"] == value
    else:
        reverts(create, m, **{window: value}, match="window out of limits")
        assert no_listing_yet(m)


@pytest.mark.parametrize(("value", "ok"), [(0, True), (1, False), (MINUTE, False),
                                           (WEEK - 1, False), (WEEK, True), (MAX_W, True),
                                           (MAX_W + 1, False)])
def test_the_return_window_is_final_sale_or_7_days_to_the_limit(m: Market, value: int,
                                                                ok: bool) -> None:
    if ok:
        assert m.catalog.listing(create(m, returns=value))["return_window"] == value
    else:
        reverts(create, m, returns=value,
                match="the return window is 0 (final sale) or 7 days to the limit")
        assert no_listing_yet(m)


def register_third(m: Market) -> None:
    m.catalog.register_arbiter("Cy", 0, DAY, sender=ARBITER_3)


def test_a_listing_names_up_to_three_distinct_arbiters(m: Market) -> None:
    register_third(m)
    for arbiters in [(ARBITER, ARBITER_2, ARBITER_3), (NOBODY, ARBITER_2, NOBODY),
                     (NOBODY, NOBODY, ARBITER_3)]:
        got = m.catalog.listing(create(m, arbiters=arbiters))
        assert (got["arbiter_1"], got["arbiter_2"], got["arbiter_3"]) == arbiters


@pytest.mark.parametrize("arbiters", [
    (ARBITER, ARBITER, NOBODY),
    (ARBITER, NOBODY, ARBITER),
    (NOBODY, ARBITER, ARBITER),
    (ARBITER, ARBITER_2, ARBITER),
    (ARBITER_2, ARBITER, ARBITER),
])
def test_an_arbiter_named_twice_is_refused(m: Market, arbiters: tuple) -> None:
    reverts(create, m, arbiters=arbiters, match="an arbiter is named twice")
    assert no_listing_yet(m)


@pytest.mark.parametrize("slot", [0, 1, 2])
def test_every_arbiter_named_is_registered(m: Market, slot: int) -> None:
    arbiters = [NOBODY, NOBODY, NOBODY]
    arbiters[slot] = STRANGER
    reverts(create, m, arbiters=tuple(arbiters), no_arbiter_ok=True,
            match="not a registered arbiter")
    assert no_listing_yet(m)


@pytest.mark.parametrize("slot", [0, 1, 2])
def test_a_retired_arbiter_cannot_be_named(m: Market, slot: int) -> None:
    arbiters = [NOBODY, NOBODY, NOBODY]
    arbiters[slot] = ARBITER_2
    m.catalog.set_arbiter_active(False, sender=ARBITER_2)
    reverts(create, m, arbiters=tuple(arbiters), no_arbiter_ok=True,
            match="the arbiter has retired")


@pytest.mark.parametrize("slot", [0, 1, 2])
def test_the_merchant_cannot_be_its_own_arbiter(m: Market, slot: int) -> None:
    m.catalog.register_arbiter("Me", 0, DAY, sender=MERCHANT)  # registered, even so
    arbiters = [NOBODY, NOBODY, NOBODY]
    arbiters[slot] = MERCHANT
    reverts(create, m, arbiters=tuple(arbiters), no_arbiter_ok=True,
            match="the arbiter is a third party")
    create(m, sender=MERCHANT_2, arbiters=tuple(arbiters))  # another merchant may name it


def test_no_arbiter_at_all_needs_no_arbiter_ok(m: Market) -> None:
    reverts(create, m, arbiters=(NOBODY, NOBODY, NOBODY), no_arbiter_ok=False,
            match="name an arbiter, or say orders go without one")
    lid = create(m, arbiters=(NOBODY, NOBODY, NOBODY), no_arbiter_ok=True)
    got = m.catalog.listing(lid)
    assert (got["arbiter_1"], got["no_arbiter_ok"]) == (NOBODY, True)
    assert m.get(m.order(lid, arbiter=NOBODY))["arbiter"] == NOBODY


@pytest.mark.parametrize(("bps", "ok"), [(0, True), (10_000, True), (10_001, False)])
def test_the_default_refund_is_at_most_everything(m: Market, bps: int, ok: bool) -> None:
    if ok:
        assert m.catalog.listing(create(m, default_refund_bps=bps))["default_refund_bps"] == bps
    else:
        reverts(create, m, default_refund_bps=bps, match="default refund over 100%")


# ---------------------------------------------------------------- editing


def test_set_price_raises_the_version_by_one(m: Market) -> None:
    lid = create(m)
    m.catalog.set_price(lid, 11, 0, sender=MERCHANT)
    assert m.catalog.last_events == changed(lid, 2, "price")
    got = m.catalog.listing(lid)
    assert (got["version"], got["price"], got["token_price"]) == (2, 11, 0)
    m.catalog.set_price(lid, 0, 12, sender=MERCHANT)
    got = m.catalog.listing(lid)
    assert (got["version"], got["price"], got["token_price"]) == (3, 0, 12)
    reverts(m.catalog.set_price, lid, 0, 0, sender=MERCHANT,
            match="a listing has a price in coin or in tokens")
    assert m.catalog.listing(lid) == got


def test_set_terms_raises_the_version_by_one(m: Market) -> None:
    lid = create(m)
    before = m.catalog.listing(lid)
    terms(m, lid, ship=MINUTE, confirm=MAX_W, returns=0, answer=2 * MINUTE,
          arbiters=(NOBODY, ARBITER_2, NOBODY), no_arbiter_ok=True, default_refund_bps=10_000)
    assert m.catalog.last_events == changed(lid, 2, "terms")
    assert m.catalog.listing(lid) == {
        **before, "version": 2, "ship_window": MINUTE, "confirm_window": MAX_W,
        "return_window": 0, "answer_window": 2 * MINUTE, "arbiter_1": NOBODY,
        "arbiter_2": ARBITER_2, "arbiter_3": NOBODY, "no_arbiter_ok": True,
        "default_refund_bps": 10_000}


@pytest.mark.parametrize(("change", "reason"), [
    (dict(ship=MINUTE - 1), "window out of limits"),
    (dict(confirm=MAX_W + 1), "window out of limits"),
    (dict(answer=0), "window out of limits"),
    (dict(returns=WEEK - 1), "the return window is 0 (final sale) or 7 days"),
    (dict(arbiters=(ARBITER, ARBITER, NOBODY)), "named twice"),
    (dict(arbiters=(STRANGER, NOBODY, NOBODY)), "not a registered arbiter"),
    (dict(arbiters=(NOBODY, NOBODY, NOBODY)), "name an arbiter"),
    (dict(default_refund_bps=10_001), "default refund over 100%"),
])
def test_set_terms_checks_as_create_does_and_a_refused_edit_changes_nothing(
        m: Market, change: dict, reason: str) -> None:
    lid = create(m)
    before = m.catalog.listing(lid)
    reverts(terms, m, lid, **change, match=reason)
    assert m.catalog.listing(lid) == before


def test_set_commissions_raises_the_version_within_the_limit(m: Market) -> None:
    lid = create(m)
    m.catalog.set_commissions(lid, 1_000, 1_500, 500, sender=MERCHANT)  # exactly the limit
    assert m.catalog.last_events == changed(lid, 2, "commissions")
    got = m.catalog.listing(lid)
    assert (got["version"], got["referral_bps"], got["cashback_bps"], got["bounty_bps"]) == (
        2, 1_000, 1_500, 500)
    for over in [(MAX_COMMISSION + 1, 0, 0), (0, MAX_COMMISSION + 1, 0),
                 (0, 0, MAX_COMMISSION + 1), (1_000, 1_000, 1_001)]:
        reverts(m.catalog.set_commissions, lid, *over, sender=MERCHANT,
                match="commissions over the limit")
    assert m.catalog.listing(lid) == got
    m.catalog.set_commissions(lid, 0, 0, 0, sender=MERCHANT)
    assert m.catalog.listing(lid)["version"] == 3


def test_set_group_deal_raises_the_version_and_zero_ends_it(m: Market) -> None:
    lid = create(m)
    m.catalog.set_group_deal(lid, 900, 2, MINUTE, sender=MERCHANT)
    assert m.catalog.last_events == changed(lid, 2, "group deal")
    got = m.catalog.listing(lid)
    assert (got["version"], got["group_price"], got["group_size"], got["group_window"]) == (
        2, 900, 2, MINUTE)
    m.catalog.set_group_deal(lid, 800, MAX_GROUP, MAX_W, sender=MERCHANT)
    got = m.catalog.listing(lid)
    assert (got["version"], got["group_size"], got["group_window"]) == (3, MAX_GROUP, MAX_W)
    m.catalog.set_group_deal(lid, 0, 0, 0, sender=MERCHANT)
    assert m.catalog.last_events == changed(lid, 4, "group deal")
    got = m.catalog.listing(lid)
    assert (got["version"], got["group_price"], got["group_size"], got["group_window"]) == (
        4, 0, 0, 0)
    reverts(m.escrow.start_group, lid, 4, 1, ARBITER, NOBODY, sender=BUYER, value=800,
            match="this listing has no group deal")


@pytest.mark.parametrize(("deal", "reason"), [
    ((900, 1, DAY), "group size out of limits"),
    ((900, 0, DAY), "group size out of limits"),
    ((900, MAX_GROUP + 1, DAY), "group size out of limits"),
    ((900, 3, MINUTE - 1), "window out of limits"),
    ((900, 3, 0), "window out of limits"),
    ((900, 3, MAX_W + 1), "window out of limits"),
    ((0, 3, 0), "no deal: size and window are 0 too"),
    ((0, 0, DAY), "no deal: size and window are 0 too"),
])
def test_a_group_deal_out_of_the_limits_is_refused(m: Market, deal: tuple, reason: str) -> None:
    lid = create(m)
    before = m.catalog.listing(lid)
    reverts(m.catalog.set_group_deal, lid, *deal, sender=MERCHANT, match=reason)
    assert m.catalog.listing(lid) == before


def test_stock_pause_and_resume_leave_the_version_alone(m: Market) -> None:
    lid = create(m)
    m.catalog.set_price(lid, 5, 5, sender=MERCHANT)  # version 2
    before = m.catalog.listing(lid)
    m.catalog.set_stock(lid, 0, sender=MERCHANT)
    assert m.catalog.last_events == changed(lid, 2, "stock")
    assert m.catalog.listing(lid) == {**before, "stock": 0}
    m.catalog.pause(lid, sender=MERCHANT)
    assert m.catalog.last_events == changed(lid, 2, "paused")
    assert m.catalog.listing(lid) == {**before, "stock": 0, "paused": True}
    m.catalog.resume(lid, sender=MERCHANT)
    assert m.catalog.last_events == changed(lid, 2, "resumed")
    m.catalog.set_stock(lid, 3, sender=MERCHANT)
    assert m.catalog.listing(lid) == {**before, "stock": 3}


def test_every_edit_of_the_terms_counts_once(m: Market) -> None:
    lid = create(m)
    edits = [
        lambda: m.catalog.set_price(lid, 1, 1, sender=MERCHANT),
        lambda: m.catalog.set_stock(lid, 1, sender=MERCHANT),
        lambda: terms(m, lid),
        lambda: m.catalog.pause(lid, sender=MERCHANT),
        lambda: m.catalog.set_commissions(lid, 1, 1, 1, sender=MERCHANT),
        lambda: m.catalog.resume(lid, sender=MERCHANT),
        lambda: m.catalog.set_group_deal(lid, 1, 2, DAY, sender=MERCHANT),
        lambda: m.catalog.set_price(lid, 1, 1, sender=MERCHANT),  # the same price again
    ]
    versions = []
    for edit in edits:
        edit()
        versions.append(m.version(lid))
    assert versions == [2, 2, 3, 3, 4, 4, 5, 6]


@pytest.mark.parametrize("who", [STRANGER, BUYER, MERCHANT_2, ARBITER])
def test_only_the_merchant_edits_its_listing(m: Market, who: bytes) -> None:
    lid = create(m)
    before = m.catalog.listing(lid)
    for method, args in (("set_price", (1, 1)), ("set_stock", (1,)),
                         ("set_terms", (SHIP_W, CONFIRM_W, 0, ANSWER_W, ARBITER, NOBODY,
                                        NOBODY, False, 0)),
                         ("set_commissions", (1, 1, 1)), ("set_group_deal", (1, 2, DAY)),
                         ("pause", ()), ("resume", ())):
        reverts(getattr(m.catalog, method), lid, *args, sender=who,
                match="only the listing's merchant")
    assert m.catalog.listing(lid) == before


def test_nobody_edits_a_listing_that_does_not_exist(m: Market) -> None:
    for who in (MERCHANT, STRANGER):
        reverts(m.catalog.set_stock, 7, 5, sender=who, match="only the listing's merchant")
        reverts(m.catalog.pause, 7, sender=who, match="only the listing's merchant")
    assert m.catalog.listing(7)["merchant"] == NOBODY


# ---------------------------------------------------------------- pausing and ordering


def test_a_paused_listing_refuses_orders_until_it_resumes(m: Market) -> None:
    lid = m.listing(group=(PRICE - 1, 3, DAY))
    read = m.version(lid)
    m.catalog.pause(lid, sender=MERCHANT)
    reverts(m.order, lid, match="the listing is paused")
    reverts(m.order, lid, tokens=True, match="the listing is paused")
    reverts(m.escrow.start_group, lid, read, 1, ARBITER, NOBODY, sender=BUYER,
            value=PRICE - 1, match="the listing is paused")
    assert m.escrow.counts()["orders"] == 0
    assert m.catalog.listing(lid)["stock"] == 1_000
    m.catalog.resume(lid, sender=MERCHANT)
    oid = m.order(lid, version=read)  # the version read before the pause still holds
    assert m.get(oid)["listing"] == lid
    assert m.catalog.listing(lid)["stock"] == 999


def test_orders_take_stock_and_an_empty_listing_refuses_them(m: Market) -> None:
    lid = m.listing(stock=3)
    m.order(lid, quantity=2)
    assert m.catalog.listing(lid)["stock"] == 1
    reverts(m.order, lid, quantity=2, match="not enough stock")
    m.order(lid)
    reverts(m.order, lid, match="not enough stock")
    m.catalog.set_stock(lid, 1, sender=MERCHANT)
    assert m.state(m.order(lid)) == 1


def test_an_order_copies_the_terms_of_the_version_it_read(m: Market) -> None:
    lid = m.listing()
    m.catalog.set_group_deal(lid, PRICE - 5, 4, 2 * DAY, sender=MERCHANT)
    m.catalog.set_commissions(lid, 10, 20, 30, sender=MERCHANT)
    terms(m, lid, ship=MINUTE, confirm=2 * MINUTE, returns=0, answer=3 * MINUTE,
          arbiters=(ARBITER_2, NOBODY, NOBODY), default_refund_bps=1_234)
    o = m.get(m.order(lid, arbiter=ARBITER_2))
    assert {k: o[k] for k in ("ship_window", "confirm_window", "return_window",
                              "answer_window", "default_refund_bps", "referral_bps",
                              "cashback_bps", "bounty_bps", "arbiter_fee_bps",
                              "ruling_window")} == {
        "ship_window": MINUTE, "confirm_window": 2 * MINUTE, "return_window": 0,
        "answer_window": 3 * MINUTE, "default_refund_bps": 1_234, "referral_bps": 10,
        "cashback_bps": 20, "bounty_bps": 30, "arbiter_fee_bps": 0, "ruling_window": DAY}


# ---------------------------------------------------------------- the escrow's side


@pytest.mark.parametrize("who", [STRANGER, MERCHANT, BUYER, "token", "reviews", "catalog"])
def test_only_the_escrow_takes_and_puts_back_stock(m: Market, who) -> None:
    caller = getattr(m, who).address if isinstance(who, str) else who
    lid = m.listing(stock=5)
    reverts(m.catalog.take, lid, m.version(lid), 1, ARBITER, sender=caller,
            match="only the escrow takes stock")
    reverts(m.catalog.put_back, lid, 1, sender=caller, match="only the escrow puts stock back")
    assert m.catalog.listing(lid)["stock"] == 5


def test_the_escrow_takes_stock_and_gets_the_terms(m: Market) -> None:
    lid = m.listing(stock=5)
    got = m.catalog.take(lid, m.version(lid), 2, ARBITER,
                         sender=m.escrow.address)
    assert (got["merchant"], got["price"], got["token_price"], got["arbiter_fee_bps"],
            got["ruling_window"]) == (MERCHANT, PRICE, TOKEN_PRICE, 250, 4 * DAY)
    assert m.catalog.listing(lid)["stock"] == 3
    m.catalog.put_back(lid, 2, sender=m.escrow.address)
    assert m.catalog.listing(lid)["stock"] == 5


def test_put_back_saturates_so_a_decline_never_reverts(m: Market) -> None:
    lid = m.listing(stock=5)
    oid = m.order(lid, quantity=3)
    m.catalog.set_stock(lid, MAX_UINT, sender=MERCHANT)
    paid_back = m.coin(BUYER)
    m.escrow.decline(oid, sender=MERCHANT)  # puts 3 back onto the largest stock there is
    assert m.state(oid) == DECLINED
    assert m.catalog.listing(lid)["stock"] == MAX_UINT
    assert m.coin(BUYER) == paid_back + 3 * PRICE
    m.assert_conserved()


def test_put_back_adds_exactly_up_to_the_maximum(m: Market) -> None:
    lid = m.listing(stock=5)
    escrow = m.escrow.address
    m.catalog.set_stock(lid, MAX_UINT - 3, sender=MERCHANT)
    m.catalog.put_back(lid, 3, sender=escrow)  # exactly to the top: no saturation needed
    assert m.catalog.listing(lid)["stock"] == MAX_UINT
    m.catalog.set_stock(lid, MAX_UINT - 3, sender=MERCHANT)
    m.catalog.put_back(lid, 2, sender=escrow)
    assert m.catalog.listing(lid)["stock"] == MAX_UINT - 1
    m.catalog.put_back(lid, MAX_UINT, sender=escrow)
    assert m.catalog.listing(lid)["stock"] == MAX_UINT


def test_tokens_paid_for_a_paused_listing_stay_with_the_buyer(m: Market) -> None:
    lid = m.listing()
    m.give_tokens(BUYER, TOKEN_PRICE)
    m.catalog.pause(lid, sender=MERCHANT)
    reverts(m.token.transfer_and_call, m.escrow.address, TOKEN_PRICE,
            order_data(lid, m.version(lid), 1, ARBITER, REFERRER), sender=BUYER,
            match="the listing is paused")
    assert m.tokens(BUYER) == TOKEN_PRICE
