"""The explorer in a real browser (Debian's headless Chromium through ChromeDriver)
against a real ``agora localnet`` of four validators, after a scripted commerce session
through the ``agora`` wallet (tests/explorer/localnet_session.py): an order completed,
one returned and refunded, one disputed and resolved by the arbiter, one declined, one
still waiting to be shipped, a group deal of three, reviews in English and Chinese with
the merchant's replies.

Each page is checked on the text a person reads (``innerText``), never on markup; the
console must stay free of errors (a request to any other host fails and would show
there); every page is written as a screenshot at desktop and at phone width (and the
main ones in Chinese) to ``build/screenshots/explorer/`` (or $AGORA_SCREENSHOTS); at
phone width nothing is wider than the screen. Search finds each kind of subject; a new
block and a change of an order arrive without a reload (a marker set in the page
survives the update); the language switch works and is remembered, and the browser's
own language is honoured; the page is usable from the keyboard (skip link, search)."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from browser import browser, console_errors, screenshot, text, wait_for_text
from localnet_session import (
    LISTING_TITLE,
    REPLIES,
    RETURN_TRACKING,
    REVIEWS,
    TRACKING,
    SessionFacts,
    scripted_localnet_in_thread,
)
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait
from test_governance_localnet import cli_ok

from node.rpc.client import SyncClient

REPO = Path(__file__).resolve().parents[2]
SHOTS = Path(os.environ.get("AGORA_SCREENSHOTS", REPO / "build" / "screenshots" / "explorer"))
DESKTOP = (1280, 800)
PHONE = (390, 844)

pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SessionFacts]:
    with scripted_localnet_in_thread(tmp_path_factory.mktemp("explorer-browser")) as facts:
        yield facts


def pages(f: SessionFacts) -> list[tuple[str, str, list[str]]]:
    """(name, path, facts a person must read there) for every kind of page."""
    o = {role: fact.order_id for role, fact in f.orders.items()}
    a = f.addresses
    title = LISTING_TITLE
    return [
        ("home", "", ["The chain now", "Latest blocks", "Latest transactions",
                      "Who proposed the last blocks"]),
        ("block", f"block/{f.place_tx.height}",
         [f"Block {f.place_tx.height}", f"Placed order #{o['completed']} for 1 × “{title}” "
          "at 12.50.", "validators signed this block's commit certificate"]),
        ("tx", f"tx/{f.place_tx.hash}",
         [f"Placed order #{o['completed']} for 1 × “{title}” at 12.50.", "Fee", "Gas used",
          "Placed the order and paid 12.50 AGO into escrow."]),
        ("account", f"account/{a['buyer']}",
         ["Coin balance", "Reward tokens", f"Confirmed delivery of order #{o['completed']} "
          "and waived the return window."]),
        ("merchant", f"merchant/{a['merchant']}",
         ["Completed orders", "Refunded orders", "Disputed orders", "Declined orders",
          "Orders not shipped in time", "Sales volume", "Distinct reviewers",
          REVIEWS["A"][2], REVIEWS["B"][2], REPLIES["A"], REPLIES["B"], title,
          "Order outcomes over the last 14 days"]),
        ("listing", f"listing/{f.listing_id}",
         [title, "Price: 12.50 AGO each.", "Returns: within", "no reason needed",
          "Arbiters a buyer may choose", REVIEWS["C"][2]]),
        ("order-completed", f"order/{o['completed']}",
         ["This order has ended: the merchant was paid.", f"Tracking: {TRACKING['A']}",
          "(referral commission)", f"Reviewed it: ★★★★★ “{REVIEWS['A'][2]}”"]),
        ("order-returned", f"order/{o['returned']}",
         ["Asked to return it.", "Accepted the return.",
          f"Sent it back. Tracking: {RETURN_TRACKING}",
          "This order has ended: the buyer was refunded.", REVIEWS["B"][2]]),
        ("order-disputed", f"order/{o['disputed']}",
         ["Opened a dispute before the arbiter.", "The dispute was resolved.",
          "(arbiter's fee)", "resolved by the arbiter"]),
        ("order-declined", f"order/{o['declined']}",
         ["This order has ended: the merchant declined it and the buyer was refunded."]),
        ("order-open", f"order/{o['open']}",
         ["paid, waiting to ship", "The merchant must ship by",
          "after that the buyer may cancel and is refunded in full.", "Quantity\n2"]),
        ("group", f"group/{f.group_id}", ["3 of 3 joined", "filled", "Members"]),
        ("arbiter", f"arbiter/{a['arbiter']}", ["Cases", "For the buyer", "Fees earned"]),
        ("validators", "validators", ["4 validators", "Governance proposals"]),
        ("search", "search?q=1", ["“1” may mean:", "Block 1"]),
    ]


def check_page(d, url: str, facts: list[str]) -> str:
    d.get(url)
    shown = wait_for_text(d, facts[0])
    for fact in facts[1:]:
        assert fact in shown, f"{url}: {fact!r} is not on the page:\n{shown[:3000]}"
    assert console_errors(d) == [], url
    return shown


def test_every_page_says_its_facts_at_desktop_and_phone_width(chain: SessionFacts) -> None:
    for width, height in (DESKTOP, PHONE):
        kind = "desktop" if width == DESKTOP[0] else "phone"
        with browser(width, height) as d:
            for name, path, facts in pages(chain):
                check_page(d, chain.explorer_url(0, path), facts)
                if kind == "phone":  # readable on a phone: nothing wider than the screen
                    over = d.execute_script(
                        "return document.documentElement.scrollWidth - innerWidth")
                    assert over <= 1, f"{path}: {over} px wider than a {width} px screen"
                screenshot(d, SHOTS / f"{name}-{kind}.png")
    with browser(*DESKTOP, lang="zh-CN") as d:
        o = chain.orders
        for name, path, needle in (("home", "", "链的当前状态"),
                                   ("order-open", f"order/{o['open'].order_id}", "商家必须在"),
                                   ("merchant", f"merchant/{chain.addresses['merchant']}",
                                    "信誉"),
                                   ("order-returned", f"order/{o['returned'].order_id}",
                                    "接受了退货。")):
            d.get(chain.explorer_url(0, path))
            wait_for_text(d, needle)
            assert console_errors(d) == []
            screenshot(d, SHOTS / f"{name}-desktop-zh-CN.png")
    assert len(list(SHOTS.glob("*.png"))) >= 2 * len(pages(chain))


def test_search_finds_each_kind_of_subject(chain: SessionFacts) -> None:
    with SyncClient(chain.rpc_urls[0]) as rpc:
        block_hash = rpc.header(chain.place_tx.height)["hash"]
        height = rpc.status()["height"]
    o = chain.orders
    cases = [(str(height), f"Block {height}"),
             (block_hash, f"Block {chain.place_tx.height}"),
             (chain.place_tx.hash, "Transaction"),
             (chain.addresses["referrer"], "Coin balance"),
             ("merchant", "Account “merchant”"),
             (f"order {o['disputed'].order_id}", f"Order #{o['disputed'].order_id}"),
             (f"listing {chain.listing_id}", "Price: 12.50 AGO each."),
             (f"group {chain.group_id}", "3 of 3 joined")]
    with browser(*DESKTOP) as d:
        for query, needle in cases:
            d.get(chain.explorer_url(0, ""))
            box = d.find_element(By.ID, "q")  # labelled "Search the chain"
            box.send_keys(query + Keys.ENTER)
            shown = wait_for_text(d, needle)
            assert "/search" not in d.current_url, (query, d.current_url, shown[:500])
            assert console_errors(d) == []


def test_a_new_block_and_an_order_change_arrive_without_a_reload(chain: SessionFacts) -> None:
    net = chain.net
    with browser(*DESKTOP) as d:
        d.get(chain.explorer_url(0, ""))
        wait_for_text(d, "Latest blocks")
        d.execute_script("window.agoraMarker = 'still here'")
        before = int(d.find_element(By.ID, "height").text)
        cli_ok(net.agora("transfer", "--from", "referrer", "--to", "arbiter", "--amount", "1"))
        WebDriverWait(d, 20, poll_frequency=0.1).until(
            lambda drv: int(drv.find_element(By.ID, "height").text) > before)
        assert d.execute_script("return window.agoraMarker") == "still here"  # no reload
        assert console_errors(d) == []

        order = chain.orders["open"].order_id
        d.get(chain.explorer_url(0, f"order/{order}"))
        wait_for_text(d, "The merchant must ship by")
        d.execute_script("window.agoraMarker = 'still here'")
        cli_ok(net.agora("order", "ship", str(order), "--from", "merchant", "--tracking",
                         "SF-LIVE-1"))
        shown = wait_for_text(d, "Tracking: SF-LIVE-1", timeout=20)
        assert "The buyer must confirm delivery or open a dispute by" in shown
        assert d.execute_script("return window.agoraMarker") == "still here"
        assert console_errors(d) == []


def test_the_language_switch_works_and_is_remembered(chain: SessionFacts) -> None:
    with browser(*DESKTOP, lang="en-US") as d:
        d.get(chain.explorer_url(0, ""))
        wait_for_text(d, "The chain now")
        d.find_element(By.LINK_TEXT, "中文").click()
        wait_for_text(d, "链的当前状态")
        # Remembered: a page opened afterwards, without ?lang, is in Chinese too.
        d.get(chain.explorer_url(0, f"order/{chain.orders['completed'].order_id}"))
        shown = wait_for_text(d, "此订单已结束：货款已支付给商家。")
        assert re.search(r"\d{4}年\d{1,2}月\d{1,2}日", shown), "times in the reader's locale"
        d.find_element(By.LINK_TEXT, "English").click()
        wait_for_text(d, "This order has ended: the merchant was paid.")
        assert console_errors(d) == []
    with browser(*DESKTOP, lang="zh-CN") as d:  # the browser's own language
        d.get(chain.explorer_url(0, "validators"))
        wait_for_text(d, "验证者与提案")
        assert console_errors(d) == []


def test_the_keyboard_reaches_the_content_and_the_search(chain: SessionFacts) -> None:
    with browser(*DESKTOP) as d:
        d.get(chain.explorer_url(0, f"merchant/{chain.addresses['merchant']}"))
        wait_for_text(d, "Reputation")
        ActionChains(d).send_keys(Keys.TAB).perform()
        active = d.switch_to.active_element
        assert active.text == "Skip to the content"
        active.send_keys(Keys.ENTER)
        assert d.switch_to.active_element.get_attribute("id") == "main"
        # Every control is named for a screen reader.
        assert d.find_element(By.CSS_SELECTOR, "label[for=q]").get_attribute(
            "textContent") == "Search the chain"
        unnamed = d.execute_script(
            "return [...document.querySelectorAll('a, button, input')].filter(e => "
            "!(e.innerText || e.getAttribute('aria-label') || e.labels?.length || "
            "e.type === 'hidden')).map(e => e.outerHTML)")
        assert unnamed == []
        assert "Order outcomes" in text(d)
        assert console_errors(d) == []
