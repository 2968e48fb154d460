"""`agora contract compile` and `agora contract run`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from chain.address import address_to_text
from cli import main
from vm.testing import DEFAULT_SENDER

TOKEN = '''
balances: Map[Address, uint]

class Transfer(Event):
    sender: Address
    receiver: Address
    amount: uint

def __init__():
    self.balances[msg.sender] = 1000

@public
def transfer(receiver: Address, amount: uint) -> bool:
    assert self.balances[msg.sender] >= amount, "insufficient balance"
    self.balances[msg.sender] -= amount
    self.balances[receiver] += amount
    emit(Transfer(msg.sender, receiver, amount))
    return True

@view
def balance_of(owner: Address) -> uint:
    return self.balances[owner]

@view
def neg(x: int) -> int:
    return -x
'''
BOB = address_to_text(b"\x0b" * 20)
ME = address_to_text(DEFAULT_SENDER)


@pytest.fixture
def token(tmp_path: Path) -> Path:
    path = tmp_path / "token.agc"
    path.write_text(TOKEN)
    return path


def agora(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def test_compile_prints_code_and_abi_or_writes_files(token: Path, tmp_path: Path) -> None:
    code, out = agora("contract", "compile", str(token))
    assert code == 0, out
    hex_line, abi_text = out.split("\n", 1)
    assert bytes.fromhex(hex_line)
    assert {m["name"] for m in json.loads(abi_text)["methods"]} >= {"transfer", "balance_of"}
    code, out = agora("contract", "compile", str(token), "-o", str(tmp_path / "out"))
    assert code == 0, out
    assert (tmp_path / "out" / "token.bin").read_text().strip() == hex_line
    assert json.loads((tmp_path / "out" / "token.abi.json").read_text()) == json.loads(abi_text)


def test_a_compile_error_names_file_line_and_column(tmp_path: Path) -> None:
    bad = tmp_path / "bad.agc"
    bad.write_text("x: uint\n\n@public\ndef f() -> uint:\n    return 1.5\n")
    code, out = agora("contract", "compile", str(bad))
    assert code != 0
    assert f"{bad}:5:12:" in out
    code, out = agora("contract", "run", str(bad), "f")
    assert code != 0 and f"{bad}:5:12:" in out


def test_run_prints_the_outcome_as_json(token: Path) -> None:
    code, out = agora("contract", "run", str(token), "transfer", BOB, "250", "--json")
    assert code == 0, out
    assert json.loads(out) == {
        "status": "ok", "return": True, "gas_used": json.loads(out)["gas_used"],
        "events": [{"name": "Transfer",
                    "args": {"sender": ME, "receiver": BOB, "amount": 250}}],
        "reason": "",
    }
    assert json.loads(out)["gas_used"] > 0


def test_a_failing_call_exits_1_with_its_reason(token: Path) -> None:
    code, out = agora("contract", "run", str(token), "transfer", BOB, "5000", "--json")
    assert code == 1
    result = json.loads(out)
    assert (result["status"], result["reason"], result["events"]) == (
        "reverted", "insufficient balance", [])


def test_arguments_are_read_by_type_and_bad_ones_are_clear_errors(token: Path) -> None:
    code, out = agora("contract", "run", str(token), "neg", "--", "-7")
    assert code == 0, out
    assert "return: 7" in out
    code, out = agora("contract", "run", str(token), "balance_of", "not-an-address")
    assert code != 0 and "not an address" in out
    code, out = agora("contract", "run", str(token), "transfer", BOB)
    assert code != 0 and "takes 2 argument(s)" in out
    code, out = agora("contract", "run", str(token), "nope")
    assert code != 0 and "no method 'nope'" in out


def test_calls_run_in_order_against_one_state(token: Path, tmp_path: Path) -> None:
    calls = tmp_path / "calls.json"
    calls.write_text(json.dumps([
        {"method": "transfer", "args": [BOB, 300]},
        {"method": "transfer", "args": [ME, 100], "sender": BOB},
        {"method": "balance_of", "args": [BOB]},
    ]))
    code, out = agora("contract", "run", str(token), "--calls", str(calls), "--json")
    assert code == 0, out
    results = json.loads(out)
    assert [r["status"] for r in results] == ["ok", "ok", "ok"]
    assert results[2]["return"] == 200


SHOP = '''
class Item(Record):
    owner: Address
    price: uint
    name: str

items: Map[uint, Item]
fee: uint

def __init__(fee: uint, name: str):
    self.fee = fee
    self.items[1] = Item(msg.sender, fee * 2, name)

@view
def item(i: uint) -> Item:
    return self.items[i]
'''


def test_run_passes_constructor_arguments_and_prints_records(tmp_path: Path) -> None:
    path = tmp_path / "shop.agc"
    path.write_text(SHOP)
    code, out = agora("contract", "run", str(path), "item", "1", "--init", "21",
                      "--init", "lamp", "--json")
    assert code == 0, out
    assert json.loads(out)["return"] == {"owner": ME, "price": 42, "name": "lamp"}
    code, out = agora("contract", "run", str(path), "item", "1", "--init", "21",
                      "--init", "lamp")
    assert code == 0, out
    assert "return:\n  owner: " + ME + "\n  price: 42\n  name: lamp\n" in out
    code, out = agora("contract", "run", str(path), "item", "1")
    assert code != 0
    assert "constructor takes 2 argument(s) (fee: uint, name: str)" in out
    code, out = agora("contract", "run", str(path), "item", "1", "--init", "x",
                      "--init", "lamp")
    assert code != 0 and "constructor argument fee: expected a whole number" in out


def test_every_bundled_commerce_contract_runs_with_its_constructor(tmp_path: Path) -> None:
    """The bundled contracts all take constructor arguments (`contract run` refused
    every one of them before --init)."""
    contracts = Path(__file__).resolve().parents[1] / "vm" / "contracts"
    someone = address_to_text(b"\x0c" * 20)
    runs = {
        "token.agc": (["--init", someone] * 4, "name", "Agora Reward"),
        "catalog.agc": (["--init", someone, "--init", str(30 * 86_400_000), "--init", "500",
                         "--init", "1000", "--init", "50"], "limits", None),
        "escrow.agc": (["--init", someone] * 3 + ["--init", str(86_400_000)], "counts", None),
        "reviews.agc": (["--init", someone], "merchant_reviews", None),
    }
    for name, (init, method, expected) in runs.items():
        args = [someone] if method == "merchant_reviews" else []
        code, out = agora("contract", "run", str(contracts / name), method, *args, *init,
                          "--json")
        assert code == 0, (name, out)
        result = json.loads(out)
        assert result["status"] == "ok"
        if expected is not None:
            assert result["return"] == expected
        else:
            assert isinstance(result["return"], dict)
