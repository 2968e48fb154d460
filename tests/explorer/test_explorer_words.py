"""The explorer's pure parts: amounts, durations and times in words, the outcome
chart's counting, the Chinese catalog's placeholders, and that the pages read only
methods the public API has."""

from __future__ import annotations

import json
import re

from node.explorer.catalog import ZH
from node.explorer.i18n import Translator
from node.explorer.pages import outcome_chart
from node.explorer.words import Money, duration, percent, relative

DAY = 86_400_000


def test_the_catalog_keeps_every_placeholder() -> None:
    for english, chinese in ZH.items():
        assert set(re.findall(r"{(\w+)}", english)) == set(re.findall(r"{(\w+)}", chinese)), \
            english


def test_words() -> None:
    t = Translator("en")
    coin = Money(18, "AGO")
    assert coin(45 * 10**18) == "45.00 AGO"
    assert coin(12_345_678 * 10**15) == "12,345.678 AGO"
    assert coin(1) == "0.000000000000000001 AGO"
    assert coin("x") == "x"
    assert Money(0, "PTS")(7) == "7.00 PTS"
    assert percent(250) == "2.5%" and percent(200) == "2%" and percent(5_000) == "50%"
    assert duration(t, 7 * DAY) == "7 days" and duration(t, DAY) == "1 day"
    assert duration(t, 36 * 3_600_000) == "36 hours" and duration(t, 90_000) == "90 seconds"
    assert relative(t, 2 * DAY + 5, 0) == "in 2 days" and relative(t, 0, 180_000) == \
        "3 minutes ago"
    zh = Translator("zh-CN")
    assert duration(zh, 7 * DAY) == "7 天" and relative(zh, 0, 180_000) == "3 分钟前"


def test_the_outcome_chart_counts_by_day() -> None:
    now = 100 * DAY + 5
    orders = [{"state": "completed", "updated_time_ms": now}, {"state": "refunded",
              "updated_time_ms": now - DAY}, {"state": "paid", "updated_time_ms": now},
              {"state": "resolved", "updated_time_ms": now - 30 * DAY},
              {"state": "x", "updated_time_ms": "bad"}]
    chart = outcome_chart(orders, now)
    assert chart["total"] == 3
    assert chart["buckets"][-1]["completed"] == 1 and chart["buckets"][-1]["open"] == 1
    assert chart["buckets"][-2]["refunded"] == 1


def test_page_json_shapes_are_what_the_api_documents() -> None:
    # The explorer reads only these methods; each must exist in the API's table.
    from node.rpc.methods import method_table
    used = {"status", "validators", "mempool_status", "block", "header", "commit", "tx",
            "account", "token_balance", "account_history", "merchant", "arbiter", "listings",
            "reviews", "orders", "listing", "events", "order", "group", "proposals",
            "evidence", "contracts", "call", "block_by_hash"}
    assert used <= set(method_table())
    assert json.dumps(sorted(used))
