"""The wallet's parts without a node: amounts in decimals, durations and rates, what
an order's state lets each party do, and the session's rules — a revert found by the
read-only try is reported before anything is signed, the transaction goes to Agora's
fixed contract address with the arguments and coin asked, and a node that names
another address for a commerce contract is not believed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chain.address import address_to_text
from chain.keys import PrivateKey
from chain.system import COMMERCE_CONTRACTS, ESCROW_ADDRESS
from chain.tx import Call, Transaction
from node.wallet.amounts import (
    format_amount,
    format_duration,
    format_percent,
    parse_amount,
    parse_duration,
    parse_percent,
)
from node.wallet.errors import BadInput, Refused
from node.wallet.explain import (
    NOBODY_TEXT,
    group_sentence,
    next_steps,
    refused_transition,
    until,
)
from node.wallet.keystore import Keystore
from node.wallet.session import Session
from vm.contracts import compiled

DAY = 86_400_000


# ---------------------------------------------------------------------- amounts


def test_amounts_read_as_people_write_them() -> None:
    assert parse_amount("12.5", 18) == 12_500_000_000_000_000_000
    assert parse_amount("1,000", 18) == 1000 * 10**18
    assert parse_amount(".5", 2) == 50
    assert parse_amount("250", 18, raw=True) == 250
    for bad, why in (("1.2.3", "not a number"), ("-1", "not a number"),
                     ("1e5", "not a number"), ("nan", "not a number"),
                     ("１２", "not a number"), ("0.0000001", "more than 6 decimals")):
        with pytest.raises(BadInput, match=why):
            parse_amount(bad, 6)
    with pytest.raises(BadInput, match="with --raw give whole base units"):
        parse_amount("1.5", 18, raw=True)
    for huge in ("9" * 80, "9" * 5000, "1." + "0" * 5000):
        with pytest.raises(BadInput, match="larger than any balance"):
            parse_amount(huge, 18)
    with pytest.raises(BadInput, match="whole base units"):
        parse_amount("１２", 18, raw=True)


@given(st.integers(min_value=0, max_value=2**256 - 1), st.integers(0, 30))
def test_an_amount_printed_reads_back_the_same(value: int, decimals: int) -> None:
    text = format_amount(value, decimals, grouped=False)
    if value <= 2**256 - 1:
        assert parse_amount(text, decimals) == value
    assert parse_amount(format_amount(value, decimals), decimals) == value  # with commas


def test_durations_and_rates() -> None:
    assert parse_duration("3d") == 3 * DAY
    assert parse_duration("36h") == 36 * 3_600_000
    assert parse_duration("90m") == 90 * 60_000
    assert parse_duration("2w") == 14 * DAY
    assert parse_duration("7") == 7 * DAY
    assert format_duration(3 * DAY) == "3 days"
    assert format_duration(60_000) == "1 minute"
    with pytest.raises(BadInput, match="not a duration"):
        parse_duration("soon")
    assert parse_percent("2.5%") == 250
    assert parse_percent("100") == 10_000
    for bad in ("101%", "0.001%", "x", "1e999999999", "1e-99999999999", "-1", "\u0663",
                "NaN", "inf"):
        with pytest.raises(BadInput):
            parse_percent(bad)
    # Whole percentages keep their zeros (50% was printed "5%").
    assert [format_percent(b) for b in (5_000, 1_000, 10_000, 0, 250, 5)] == [
        "50%", "10%", "100%", "0%", "2.5%", "0.05%"]
    for bad in ("9" * 5_000, "1e3d", "\u0663d", "-1d"):
        with pytest.raises(BadInput, match="not a duration"):
            parse_duration(bad)


def test_a_decimal_comma_is_never_read_as_a_thousands_separator() -> None:
    # "0,5" sent 5 AGO: a comma counts only between groups of three digits.
    for bad in ("0,5", "12,50", "1,,,0", "1,0000", ",5", "1_0", "1__000", "1,000_000"):
        with pytest.raises(BadInput, match="not a number"):
            parse_amount(bad, 18)
    assert parse_amount("1,250.5", 2) == 125_050
    assert parse_amount("1_000_000", 0) == 1_000_000
    assert parse_amount("12,345,678", 0) == 12_345_678
    with pytest.raises(BadInput, match="--raw"):
        parse_amount("1,000", 0, raw=True)


# ---------------------------------------------------------------------- next steps


def _order(state: str, deadline: int, bounty: int = 0, shipped_at: int = 0) -> dict[str, Any]:
    return {"state": state, "order": {"deadline": str(deadline), "bounty": str(bounty),
                                      "shipped_at": str(shipped_at), "not_shipped": False}}


def test_what_each_party_can_do_follows_the_deadline() -> None:
    before = next_steps(7, _order("paid", 10 * DAY), now_ms=DAY)
    assert any("agora order ship 7" in s for s in before)
    assert any("agora order decline 7" in s for s in before)
    assert any(s.startswith("anyone") and "after" in s and "agora order claim 7" in s
               for s in before)
    after = next_steps(7, _order("paid", 10 * DAY), now_ms=11 * DAY)
    assert not any("order ship" in s or "order decline" in s for s in after)
    assert any("agora order claim 7" in s and "after" not in s for s in after)
    ended = next_steps(7, _order("completed", 0, bounty=5, shipped_at=DAY), now_ms=DAY)
    assert any("agora review post 7" in s for s in ended)
    assert any("agora order release 7" in s for s in ended)
    # Reviewed already: no review offered again; the bounty is still to be returned.
    done = next_steps(7, _order("completed", 0, bounty=5, shipped_at=DAY), now_ms=DAY,
                      reviewed=True)
    assert not any("review post" in s for s in done)
    assert any("agora order release 7" in s for s in done)
    # Cancelled before shipping: it cost the buyer nothing, so it earns no review.
    assert next_steps(7, _order("cancelled", 0), now_ms=DAY) == []
    text = refused_transition("ship", 7, "the deadline has not passed",
                              _order("paid", 3 * DAY), now_ms=DAY)
    assert "Order 7 is paid" in text and "The deadline passes at" in text
    assert "(in 2 days)" in text


def _return(accepted: bool, arbiter: str = "agora1arbiter") -> dict[str, Any]:
    # a return requested; the deadline at day 10, an answer window of 2 days
    return {"state": "return_requested",
            "order": {"deadline": str(10 * DAY), "return_accepted": accepted,
                      "answer_window": str(2 * DAY), "arbiter": arbiter}}


def test_a_requested_return_offers_what_its_answer_allows() -> None:
    # The merchant has not answered: it may accept or contest until day 10; the buyer
    # ships back once accepted or after the silence, until day 12; a claim after that.
    open_ = next_steps(7, _return(False), now_ms=DAY)
    assert [s.split(":")[0] for s in open_] == ["merchant", "merchant", "buyer", "anyone"]
    assert "agora order accept-return 7" in open_[0]
    assert "before the arbiter" in open_[1] and "agora order contest 7" in open_[1]
    assert "1970-01-11 00:00 UTC" in open_[2] and "until 1970-01-13 00:00 UTC" in open_[2]
    assert "after 1970-01-13 00:00 UTC" in open_[3]
    # No arbiter: contesting is a refusal that pays the merchant.
    alone = next_steps(7, _return(False, NOBODY_TEXT), now_ms=DAY)
    assert "refuse the return" in alone[1] and "its word is final" in alone[1]
    # Silence past the answer window accepts: only shipping back remains, then a claim.
    silent = next_steps(7, _return(False), now_ms=11 * DAY)
    assert len(silent) == 2
    assert "buyer: ship it back by 1970-01-13 00:00 UTC (in 1 day)" in silent[0]
    assert "accept-return" not in " ".join(silent) and "contest" not in " ".join(silent)
    # Accepted: no more accepting or contesting; the buyer ships back by the deadline.
    accepted = next_steps(7, _return(True), now_ms=DAY)
    assert len(accepted) == 2 and "accept-return" not in " ".join(accepted)
    assert "contest" not in " ".join(accepted)
    assert "ship it back by 1970-01-11 00:00 UTC (in 9 days)" in accepted[0]
    assert "after 1970-01-11 00:00 UTC" in accepted[1]
    # Lapsed (accepted and past its deadline, or silent past both windows): a claim.
    for lapsed in (next_steps(7, _return(True), now_ms=11 * DAY),
                   next_steps(7, _return(False), now_ms=13 * DAY)):
        assert lapsed == ["anyone: pay the merchant: the return lapsed unshipped "
                          "(agora order claim 7)"]


def test_times_away_name_two_units_and_never_round_up() -> None:
    hour = 3_600_000
    assert until(47 * hour, 0) == "in 1 day 23 hours"
    assert until(2 * DAY, 0) == "in 2 days"
    assert until(2 * DAY + 5 * 60_000, 0) == "in 2 days"  # no hours: no minutes either
    assert until(0, 3 * hour + 5 * 60_000) == "3 hours 5 minutes ago"
    assert until(61_000, 0) == "in 1 minute 1 second"
    assert until(500, 0) == "in 0 seconds"


def test_a_group_deal_says_where_it_stands_in_time() -> None:
    grp = {"deadline": str(10 * DAY), "filled_at": str(4 * DAY), "size": "3", "members": "1"}
    filling = group_sentence(5, "open", grp, DAY)
    assert filling.startswith("Needs 2 more member(s) by 1970-01-11 00:00 UTC (in 9 days)")
    late = group_sentence(5, "open", grp, 11 * DAY)
    assert "Did not fill" in late and "agora group close 5" in late
    filled = group_sentence(5, "filled", grp, 5 * DAY)
    assert filled.startswith("Filled 1970-01-05 00:00 UTC (1 day ago)")
    assert "fills by" not in filled and "Needs" not in filled
    assert group_sentence(5, "failed", grp, 11 * DAY).startswith(
        "Failed: it did not fill by 1970-01-11 00:00 UTC")


# ---------------------------------------------------------------------- the session


class FakeNode:
    """A node's answers, scripted: ``call_status`` is what the read-only try says."""

    def __init__(self, call_status: str = "ok", escrow_at: bytes = ESCROW_ADDRESS) -> None:
        self.url = "http://fake"
        self.call_status = call_status
        self.escrow_at = escrow_at
        self.sent: list[Transaction] = []

    def call(self, method: str, /, **params: Any) -> Any:
        if method == "status":
            return {"chain_id": "fake-chain", "latest_block_time_ms": 1}
        if method == "contracts":
            out = []
            for name, address in COMMERCE_CONTRACTS.items():
                at = self.escrow_at if name == "escrow" else address
                out.append({"name": name, "address": address_to_text(at),
                            "abi": compiled(name).abi})
            return out
        if method == "account":
            return {"balance": str(10**24), "pending_nonce": 3, "nonce": 3}
        if method == "call":
            return {"status": self.call_status, "gas_used": 50_000,
                    "reason": "not allowed in the order's state" if self.call_status != "ok"
                    else ""}
        if method == "order":
            return _order("shipped", 10 * DAY)
        raise AssertionError(f"unexpected {method}")

    def broadcast_tx_commit(self, tx: Transaction) -> dict[str, Any]:
        self.sent.append(tx)
        return {"hash": tx.hash.hex(), "height": 9, "index": 0,
                "receipt": {"status": "ok", "gas_used": 60_000, "return_value": None,
                            "reason": "", "events": []}}


def _session(node: FakeNode, tmp_path: Path) -> Session:
    return Session(node, Keystore(tmp_path / "keys"))  # type: ignore[arg-type]


def test_a_revert_is_reported_before_anything_is_signed(tmp_path: Path) -> None:
    node = FakeNode(call_status="reverted")
    with pytest.raises(Refused, match="Not allowed in the order's state"):
        _session(node, tmp_path).send(PrivateKey.generate(), "escrow", "ship", [1, "T"])
    assert node.sent == []


def test_the_transaction_is_what_was_asked_at_the_fixed_address(tmp_path: Path) -> None:
    node = FakeNode()
    key = PrivateKey.generate()
    sent = _session(node, tmp_path).send(key, "escrow", "place_order",
                                         [1, 2, 3, bytes(20), bytes(20)], value=75)
    (tx,) = node.sent
    assert sent.height == 9
    assert tx.nonce == 3 and tx.chain_id == "fake-chain" and tx.sender == key.public_key
    action = tx.action
    assert type(action) is Call
    assert (action.contract, action.method, action.value) == (ESCROW_ADDRESS, "place_order",
                                                              75)
    assert tx.gas_limit > 50_000  # what the try used, plus the margin and intrinsic gas


def test_a_node_that_moves_a_commerce_contract_is_not_believed(tmp_path: Path) -> None:
    node = FakeNode(escrow_at=bytes(range(20)))
    with pytest.raises(Refused, match="refusing to sign"):
        _session(node, tmp_path).send(PrivateKey.generate(), "escrow", "ship", [1, "T"])
    assert node.sent == []


# ---------------------------------------------------------------------- a node's word


class LyingNode(FakeNode):
    """A node whose answer to the commit is scripted by ``answer(tx)``; ``refuse``: the
    JSON-RPC errors it raises first, one per submission."""

    def __init__(self, answer: Any = None, refuse: list[dict[str, Any]] | None = None) -> None:
        super().__init__()
        self.answer = answer
        self.refuse = list(refuse or [])
        self.nonce = 3

    def call(self, method: str, /, **params: Any) -> Any:
        if method == "account":
            return {"balance": str(10**24), "pending_nonce": self.nonce, "nonce": self.nonce}
        return super().call(method, **params)

    def broadcast_tx_commit(self, tx: Transaction) -> dict[str, Any]:
        from node.rpc.client import RPCFailed

        if self.refuse:
            self.sent.append(tx)
            self.nonce += 1  # another wallet's transaction took the nonce meanwhile
            raise RPCFailed("broadcast_tx_commit", self.refuse.pop(0))
        if self.answer is not None:
            self.sent.append(tx)
            return self.answer(tx)
        return super().broadcast_tx_commit(tx)


@pytest.fixture(autouse=True)
def _private_locks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))


def _place(node: FakeNode, tmp_path: Path, key: PrivateKey | None = None) -> Any:
    return _session(node, tmp_path).send(key or PrivateKey.generate(), "escrow", "place_order",
                                         [1, 2, 3, bytes(20), bytes(20)], value=75)


def test_a_commit_answer_about_another_transaction_is_not_believed(tmp_path: Path) -> None:
    node = LyingNode(answer=lambda tx: {
        "hash": "ab" * 32, "height": 999_999,
        "receipt": {"status": "ok", "gas_used": 1, "events": [], "reason": ""}})
    with pytest.raises(Refused, match="not to be trusted") as caught:
        _place(node, tmp_path)
    assert caught.value.details["hash"] == node.sent[0].hash.hex()


@pytest.mark.parametrize("receipt", [None, {"status": "ok"}, {"status": "ok", "gas_used": -1,
                                                                "events": []},
                                     {"status": 7, "gas_used": 1, "events": []},
                                     {"status": "ok", "gas_used": "x" * 5_000, "events": []}])
def test_an_unreadable_commit_answer_names_the_transaction_to_check(
        tmp_path: Path, receipt: Any) -> None:
    node = LyingNode(answer=lambda tx: {"hash": tx.hash.hex(), "height": 5, "receipt": receipt})
    with pytest.raises(Refused, match="was submitted, but the node's answer") as caught:
        _place(node, tmp_path)
    assert f"agora query tx {node.sent[0].hash.hex()}" in str(caught.value)


def test_a_nonce_another_wallet_took_is_read_again(tmp_path: Path) -> None:
    taken = {"code": -32000, "message": "Transaction rejected",
             "data": {"code": "already_known", "reason": "already in the mempool"}}
    node = LyingNode(refuse=[taken, taken])
    sent = _place(node, tmp_path)
    assert [tx.nonce for tx in node.sent] == [3, 4, 5] and sent.height == 9
    # Taken every time: a sentence with the node's reason, not "Transaction rejected".
    node = LyingNode(refuse=[taken] * 3)
    with pytest.raises(Refused, match="already in the mempool.*Another wallet"):
        _place(node, tmp_path)


def test_a_refusal_says_the_nodes_reason(tmp_path: Path) -> None:
    node = LyingNode(refuse=[{"code": -32000, "message": "Transaction rejected",
                              "data": {"code": "sender_limit",
                                       "reason": "the sender has 64 transactions pending"}}])
    with pytest.raises(Refused, match="the sender has 64 transactions pending"):
        _place(node, tmp_path)


def test_a_memo_that_cannot_be_signed_is_refused_before_anything_is_sent(tmp_path: Path) -> None:
    node = LyingNode()
    s = _session(node, tmp_path)
    for memo, why in (("x" * 257, "at most 256"), ("\udcff", "not UTF-8")):
        with pytest.raises(BadInput, match=why):
            s.send_transfer(PrivateKey.generate(), bytes(range(20)), 1, memo=memo)
    assert node.sent == []


def test_one_key_sends_one_transaction_at_a_time(tmp_path: Path) -> None:
    import threading

    from node.wallet.session import sender_lock

    key = PrivateKey.generate()
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with sender_lock(key.address):
            held.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert held.wait(10)
        with pytest.raises(Refused, match="Another agora command"), \
                sender_lock(key.address, wait=0.2):
            pass
        with sender_lock(PrivateKey.generate().address, wait=0.2):  # another key: free
            pass
    finally:
        release.set()
        holder.join(10)
    with sender_lock(key.address, wait=0.2):  # released with its holder
        pass
