"""The wallet as a user types it: `agora localnet` with four validators, and every
commerce step through the `agora` command (a subprocess each, run from the localnet's
directory so it finds the node and the demo keys by itself).

Balances are checked to the base unit: every command's ``--json`` output carries the
fee it paid, so each party's coin is its start, minus what it paid and its fees, plus
what it was paid (the Payout events the escrow emitted).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from node.localnet import free_base_port

WAIT = 90.0  # the most any wait may take on a loaded 2-core CI machine
COIN = 10**18
REPO = Path(__file__).resolve().parents[2]


@dataclass
class Agora:
    """Runs `agora ...` in the localnet's directory."""

    cwd: Path
    env: dict[str, str]
    fees: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def run(self, *args: str, env: dict[str, str] | None = None,
            timeout: float = WAIT) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "cli", *args], cwd=self.cwd,
                              env={**self.env, **(env or {})}, capture_output=True,
                              text=True, timeout=timeout)

    def ok(self, *args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
        """Run with --json; it must succeed. Fees paid are added to the sender's."""
        proc = self.run(*args, "--json", env=env)
        assert proc.returncode == 0, f"agora {' '.join(args)}: {proc.stderr}{proc.stdout}"
        out = json.loads(proc.stdout)
        assert out["ok"] is True
        sender = _option(args, "--from")
        if sender is not None:
            for tx in out.get("txs") or ([out["tx"]] if "tx" in out else []):
                self.fees[sender] += int(tx["fee"])
        return out

    def text(self, *args: str) -> str:
        proc = self.run(*args)
        assert proc.returncode == 0, f"agora {' '.join(args)}: {proc.stderr}{proc.stdout}"
        return proc.stdout

    def fails(self, code: int, *args: str, env: dict[str, str] | None = None) -> str:
        """Run (in sentences); it must fail with exit ``code``; its message, on one
        string, with no traceback."""
        proc = self.run(*args, env=env)
        assert proc.returncode == code, (f"agora {' '.join(args)} exited {proc.returncode}, "
                                         f"not {code}: {proc.stderr}{proc.stdout}")
        assert "Traceback" not in proc.stderr + proc.stdout
        return " ".join((proc.stderr + proc.stdout).split())

    def balances(self, who: str) -> tuple[int, int]:
        out = self.ok("balance", who)
        return int(out["coin"]), int(out["tokens"])


def _option(args: tuple[str, ...], name: str) -> str | None:
    return args[args.index(name) + 1] if name in args else None


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Agora]:
    home = tmp_path_factory.mktemp("wallet") / "localnet"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGORA_")}
    env["PYTHONPATH"] = str(REPO)
    base = free_base_port(8)
    log = open(home.parent / "localnet.log", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen([sys.executable, "-m", "cli", "localnet", "--home", str(home),
                             "--base-port", str(base)], cwd=REPO, env=env, stdout=log,
                            stderr=subprocess.STDOUT)
    agora = Agora(home, env)
    try:
        deadline = time.monotonic() + WAIT
        while True:
            if (home / "localnet.json").exists():
                proc_out = agora.run("query", "status", "--json", timeout=10)
                if proc_out.returncode == 0 and json.loads(proc_out.stdout)["height"] >= 1:
                    break
            assert proc.poll() is None, (home.parent / "localnet.log").read_text()
            assert time.monotonic() < deadline, "the localnet did not start"
            time.sleep(0.2)
        yield agora
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        # Whatever happened to the localnet process, no node outlives the test.
        manifest = home / "localnet.json"
        if manifest.exists():
            for node in json.loads(manifest.read_text())["nodes"]:
                if node.get("pid"):
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(node["pid"], signal.SIGKILL)
        log.close()


def _payouts(out: dict[str, Any], address: str) -> tuple[int, int]:
    """(coin, tokens) an action's Payout events paid ``address``."""
    coin = tokens = 0
    for p in out.get("payouts", []):
        if p["receiver"] == address:
            if p["in_tokens"]:
                tokens += int(p["amount"])
            else:
                coin += int(p["amount"])
    return coin, tokens


def test_a_shopper_and_a_merchant_run_the_whole_commerce_flow_from_the_cli(net: Agora) -> None:
    a = net
    addr = {n: a.ok("balance", n)["address"] for n in ("buyer", "merchant", "arbiter",
                                                      "referrer")}
    start = {n: a.balances(n) for n in addr}

    # A group deal that will not fill: it starts first, so its one-minute window has
    # run out by the time the rest is done.
    deal = a.ok("listing", "create", "--from", "merchant", "--title", "Sourdough starter",
                "--price", "9", "--stock", "50", "--arbiter", "arbiter", "--final-sale",
                "--group-price", "6", "--group-size", "5", "--group-window", "1m")
    assert deal["listing"]["return_window"] == "0"  # final sale, shown plainly
    lonely = a.ok("group", "join", "--listing", str(deal["listing_id"]), "--from", "buyer")
    lonely_group, lonely_order = lonely["group_id"], lonely["order_id"]
    assert lonely["state"] == "open"

    # A transfer, in decimals.
    sent = a.ok("transfer", "--from", "buyer", "--to", "arbiter", "--amount", "12.5")
    assert sent["amount"] == str(12_500_000_000_000_000_000)

    # A listing with commissions; an order placed, shipped, confirmed with the
    # return waived, reviewed and replied to.
    made = a.ok("listing", "create", "--from", "merchant", "--title", "Linen apron",
                "--price", "18", "--stock", "30", "--arbiter", "arbiter",
                "--referral", "2%", "--cashback", "1%", "--bounty", "1%",
                "--description", "Natural linen, one size.")
    apron = made["listing_id"]
    shown = a.ok("listing", "show", str(apron))["listing"]
    assert (shown["price"], shown["stock"], shown["referral_bps"]) == (str(18 * COIN), "30",
                                                                        "200")
    placed = a.ok("order", "place", str(apron), "--from", "buyer", "--referrer", "referrer")
    first = str(placed["order_id"])
    assert placed["state"] == "paid"
    assert a.ok("order", "ship", first, "--from", "merchant",
                "--tracking", "POST 123")["state"] == "shipped"
    done = a.ok("order", "confirm", first, "--from", "buyer", "--waive-return")
    assert done["state"] == "completed"
    price = 18 * COIN
    referral, cashback, bounty = price * 200 // 10_000, price * 100 // 10_000, price * 100 // 10_000
    assert _payouts(done, addr["merchant"]) == (price - referral - cashback - bounty, 0)
    assert _payouts(done, addr["referrer"]) == (0, referral)
    assert _payouts(done, addr["buyer"]) == (0, cashback)
    reviewed = a.ok("review", "post", first, "--from", "buyer", "--rating", "5",
                    "--text", "Lovely apron")
    assert _payouts(reviewed, addr["buyer"]) == (0, bounty)
    a.ok("review", "reply", first, "--from", "merchant", "--text", "Thank you!")
    reviews = a.ok("review", "list", "--order", first)["items"]
    assert [(r["rating"], r["text"], r["reply"]["text"]) for r in reviews] == [
        (5, "Lovely apron", "Thank you!")]
    rep = a.ok("query", "merchant", "merchant")
    assert rep["reputation"]["reviews"] == "1" and rep["average_rating"] == 5.0
    assert rep["stats"]["completed"] == "1"

    # A second order returned: asked, accepted, shipped back, received: refunded.
    second = str(a.ok("order", "place", str(apron), "--from", "buyer")["order_id"])
    a.ok("order", "ship", second, "--from", "merchant", "--tracking", "POST 124")
    assert a.ok("order", "confirm", second, "--from", "buyer")["state"] == "delivered"
    assert a.ok("order", "return", second, "--from", "buyer")["state"] == "return_requested"
    a.ok("order", "accept-return", second, "--from", "merchant")
    # Accepted: the buyer is told to ship it back; nobody is offered accepting again.
    steps = a.text("order", "show", second)
    assert "buyer: ship it back by" in steps and f"agora order ship-back {second}" in steps
    assert "accept-return" not in steps and "order contest" not in steps
    assert a.ok("order", "ship-back", second, "--from", "buyer",
                "--tracking", "RET 9")["state"] == "return_shipped"
    refunded = a.ok("order", "confirm-receipt", second, "--from", "merchant")
    assert refunded["state"] == "refunded"
    assert _payouts(refunded, addr["buyer"]) == (price, 0)

    # A third: the merchant refunds part, the buyer disputes, the arbiter splits.
    third = str(a.ok("order", "place", str(apron), "--from", "buyer")["order_id"])
    a.ok("order", "ship", third, "--from", "merchant", "--tracking", "POST 125")
    part = a.ok("order", "refund", third, "--from", "merchant", "--amount", "2")
    assert part["state"] == "shipped" and _payouts(part, addr["buyer"]) == (2 * COIN, 0)
    disputed = a.ok("order", "dispute", third, "--from", "buyer")
    assert disputed["state"] == "disputed"
    held = int(disputed["order"]["held"])
    assert held == price - 2 * COIN
    deposit = int(disputed["order"]["deposit"])
    assert deposit > 0  # the arbiter's fee, deposited by the side that brought it
    ruled = a.ok("order", "resolve", third, "--from", "arbiter", "--to-buyer", "50%")
    assert ruled["state"] == "resolved"
    buyer_share = held // 2
    assert _payouts(ruled, addr["buyer"])[0] >= buyer_share
    assert _payouts(ruled, addr["arbiter"])[0] == deposit

    # A group deal filled by three buyers (the demo tea box: three at 30).
    joined = a.ok("group", "join", "--listing", "2", "--from", "buyer")
    gid = str(joined["group_id"])
    a.ok("group", "join", gid, "--from", "referrer")
    filled = a.ok("group", "join", gid, "--from", "arbiter", "--no-arbiter")
    assert filled["state"] == "filled"
    shown_group = a.text("group", "show", gid)
    assert "Filled " in shown_group and "Needs" not in shown_group
    assert a.ok("order", "show", str(joined["order_id"]))["state"] == "paid"

    # The lonely group's window has passed: closing it refunds its one member.
    deadline = int(a.ok("group", "show", str(lonely_group))["group"]["deadline"])
    until = time.monotonic() + WAIT
    while int(a.ok("query", "status")["latest_block_time_ms"]) <= deadline:
        assert time.monotonic() < until, "no block after the group's deadline"
        time.sleep(0.5)
    closed = a.ok("group", "close", str(lonely_group), "--from", "buyer")
    assert _payouts(closed, addr["buyer"]) == (6 * COIN, 0)
    assert a.ok("order", "show", str(lonely_order))["state"] == "cancelled"

    # Tokens redeemed for the coin that backs them.
    redeemed = a.ok("token", "redeem", "--from", "referrer", "--amount", "1")
    assert redeemed["amount"] == str(COIN)

    # Every party's balances, to the base unit.
    end = {n: a.balances(n) for n in addr}
    spent = {  # coin each paid into escrow and to others (fees are counted apart)
        "buyer": 12_500_000_000_000_000_000 + 3 * price + deposit + 6 * COIN + 30 * COIN,
        "merchant": 0, "arbiter": 30 * COIN, "referrer": 30 * COIN}
    received = {"buyer": price + 2 * COIN + _payouts(ruled, addr["buyer"])[0] + 6 * COIN,
                "merchant": (price - referral - cashback - bounty)
                + _payouts(ruled, addr["merchant"])[0],
                "arbiter": 12_500_000_000_000_000_000 + deposit,
                "referrer": COIN}
    # The ruling paid the merchant its share, and its cashback out of that share.
    tokens = {"buyer": cashback + bounty + _payouts(ruled, addr["buyer"])[1], "merchant": 0,
              "arbiter": 0,
              "referrer": referral - COIN}
    for n in addr:
        assert end[n][0] == start[n][0] - spent[n] - a.fees[n] + received[n], n
        assert end[n][1] == start[n][1] + tokens[n], n


def test_wallet_errors_are_sentences_with_exit_codes(net: Agora, tmp_path: Path) -> None:
    a = net
    # A node that cannot be reached: which URL, and how to start one.
    msg = a.fails(1, "balance", "buyer", "--node", "http://127.0.0.1:9")
    assert "Cannot reach an Agora node at http://127.0.0.1:9" in msg
    assert "agora localnet" in msg
    # An unknown key name: usage (2), naming the keys there are.
    msg = a.fails(2, "transfer", "--from", "nobody-here", "--to", "buyer", "--amount", "1")
    assert "no key named 'nobody-here'" in msg and "buyer" in msg
    # An address with a bad checksum: usage (2).
    good = a.ok("balance", "merchant")["address"]
    bad = good[:-1] + ("q" if good[-1] != "q" else "p")
    msg = a.fails(2, "transfer", "--from", "buyer", "--to", bad, "--amount", "1")
    assert "not a valid address" in msg and "checksum" in msg.lower()
    # Insufficient funds: how much is missing.
    msg = a.fails(1, "transfer", "--from", "buyer", "--to", "merchant", "--amount",
                  "99999999")
    assert "Insufficient funds" in msg and "more" in msg
    # A transition from the wrong state: the state, and what can be done now.
    order = str(a.ok("order", "place", "1", "--from", "buyer")["order_id"])
    msg = a.fails(1, "order", "confirm", order, "--from", "buyer")
    assert f"Cannot confirm delivery of order {order}" in msg
    assert f"Order {order} is paid" in msg and f"agora order ship {order}" in msg
    # A deadline that has not passed: when it will.
    msg = a.fails(1, "order", "claim", order, "--from", "buyer")
    assert "deadline has not passed" in msg and "The deadline passes at" in msg
    # An amount that is not a number: usage (2).
    msg = a.fails(2, "transfer", "--from", "buyer", "--to", "merchant", "--amount", "1.2.3")
    assert "not a number" in msg
    # A wrong passphrase: refused (1), cleanly.
    store = tmp_path / "keys"
    good_env = {"AGORA_PASSPHRASE": "correct horse"}
    a.ok("keys", "new", "saver", "--keystore", str(store), env=good_env)
    saver = a.ok("keys", "show", "saver", "--keystore", str(store))["address"]
    a.ok("transfer", "--from", "buyer", "--to", saver, "--amount", "1")
    msg = a.fails(1, "transfer", "--from", "saver", "--keystore", str(store), "--to", "buyer",
                  "--amount", "0.5", env={"AGORA_PASSPHRASE": "wrong"})
    assert "wrong passphrase" in msg.lower()
    moved = a.ok("transfer", "--from", "saver", "--keystore", str(store), "--to", "buyer",
                 "--amount", "0.5", env=good_env)
    assert moved["amount"] == str(COIN // 2)
    # --json failures are one JSON object too.
    proc = a.run("order", "claim", order, "--from", "buyer", "--json")
    assert proc.returncode == 1
    out = json.loads(proc.stdout)
    assert out["ok"] is False and "deadline has not passed" in out["error"]


def test_hostile_input_is_refused_before_anything_is_signed(net: Agora) -> None:
    """Regressions from the hostile test: each refusal below once came after a
    transaction had been committed (or let one through that should not have been)."""
    a = net
    nonce = {n: a.ok("balance", n)["nonce"] for n in ("merchant", "buyer")}
    # A bad option of a listing's later steps: the listing was created, then "usage".
    msg = a.fails(2, "listing", "create", "--from", "merchant", "--title", "T1", "--price",
                  "1", "--stock", "1", "--referral", "abc")
    assert "not a percentage" in msg
    # Commissions over the catalog's limit: checked against its published limits first.
    msg = a.fails(2, "listing", "create", "--from", "merchant", "--title", "T2", "--price",
                  "1", "--stock", "1", "--referral", "40%", "--cashback", "20%")
    assert "add up to 60%" in msg and "at most 30%" in msg  # the localnet's deploy limit
    # A group deal with a missing part, and a group of one.
    msg = a.fails(2, "listing", "create", "--from", "merchant", "--title", "T3", "--price",
                  "1", "--stock", "1", "--group-price", "1", "--group-size", "2")
    assert "--group-window" in msg
    msg = a.fails(2, "listing", "create", "--from", "merchant", "--title", "T4", "--price",
                  "1", "--stock", "1", "--group-price", "1", "--group-size", "1",
                  "--group-window", "1h")
    assert "a group is 2 to" in msg
    # An edit whose second change is bad: the first (the price) is not sent either.
    msg = a.fails(2, "listing", "edit", "1", "--from", "merchant", "--price", "7",
                  "--referral", "xyz")
    assert a.ok("listing", "show", "1")["listing"]["price"] != str(7 * COIN)
    # A decimal comma is not a thousands separator ("0,5" sent 5).
    msg = a.fails(2, "transfer", "--from", "buyer", "--to", "merchant", "--amount", "0,5")
    assert "use a point for decimals" in msg
    # The zero address belongs to nobody.
    msg = a.fails(2, "transfer", "--from", "buyer", "--to",
                  "agora1qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqry2cu5", "--amount", "1")
    assert "zero address" in msg
    # A memo too long to sign.
    msg = a.fails(2, "transfer", "--from", "buyer", "--to", "merchant", "--amount", "1",
                  "--memo", "m" * 300)
    assert "at most 256" in msg
    assert {n: a.ok("balance", n)["nonce"] for n in nonce} == nonce  # nothing was sent

    # Pausing a paused listing is refused, not paid for.
    made = a.ok("listing", "create", "--from", "merchant", "--title", "Pausable", "--price",
                "1", "--stock", "3")
    listing = str(made["listing_id"])
    a.ok("listing", "pause", listing, "--from", "merchant")
    assert "already paused" in a.fails(1, "listing", "pause", listing, "--from", "merchant")
    a.ok("listing", "edit", listing, "--from", "merchant", "--resume")
    assert "not paused" in a.fails(1, "listing", "edit", listing, "--from", "merchant",
                                   "--resume")

    # A merchant's tracking note reaches the buyer's screen escaped, never as a command.
    order = str(a.ok("order", "place", listing, "--from", "buyer")["order_id"])
    a.ok("order", "ship", order, "--from", "merchant", "--tracking",
         "\x1b]0;HACKED\x07\x1b[2J\nRefunded!")
    shown = a.text("order", "show", order)
    assert "\x1b" not in shown and "\x07" not in shown
    assert "\\x1b[2J\\nRefunded!" in shown


def test_commands_from_one_key_at_once_all_go_through(net: Agora) -> None:
    """Five transfers from one key started together: they take turns with the key's
    nonce, and each is committed (they once collided: "Transaction rejected")."""
    a = net
    before = a.balances("referrer")[0]
    procs = [subprocess.Popen([sys.executable, "-m", "cli", "transfer", "--from", "buyer",
                               "--to", "referrer", "--amount", "0.25", "--json"],
                              cwd=a.cwd, env=a.env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(5)]
    outs = []
    for proc in procs:
        stdout, stderr = proc.communicate(timeout=WAIT)
        assert proc.returncode == 0, stderr + stdout
        outs.append(json.loads(stdout))
    assert len({o["tx"]["hash"] for o in outs}) == 5  # five payments, none merged
    assert a.balances("referrer")[0] == before + 5 * COIN // 4
