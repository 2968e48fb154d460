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
    parse_amount,
    parse_duration,
    parse_percent,
)
from node.wallet.errors import BadInput, Refused
from node.wallet.explain import next_steps, refused_transition
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
    for bad in ("101%", "0.001%", "x"):
        with pytest.raises(BadInput):
            parse_percent(bad)


# ---------------------------------------------------------------------- next steps


def _order(state: str, deadline: int, bounty: int = 0) -> dict[str, Any]:
    return {"state": state, "order": {"deadline": str(deadline), "bounty": str(bounty)}}


def test_what_each_party_can_do_follows_the_deadline() -> None:
    before = next_steps(7, _order("paid", 10 * DAY), now_ms=DAY)
    assert any("agora order ship 7" in s for s in before)
    assert any("agora order decline 7" in s for s in before)
    assert any(s.startswith("anyone") and "after" in s and "agora order claim 7" in s
               for s in before)
    after = next_steps(7, _order("paid", 10 * DAY), now_ms=11 * DAY)
    assert not any("order ship" in s or "order decline" in s for s in after)
    assert any("agora order claim 7" in s and "after" not in s for s in after)
    ended = next_steps(7, _order("completed", 0, bounty=5), now_ms=DAY)
    assert any("agora review post 7" in s for s in ended)
    text = refused_transition("ship", 7, "the deadline has not passed",
                              _order("paid", 3 * DAY), now_ms=DAY)
    assert "Order 7 is paid" in text and "The deadline passes at" in text
    assert "(in 2 days)" in text


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
