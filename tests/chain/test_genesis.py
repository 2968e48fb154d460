"""The genesis file: loading, hashing, and errors that name the offending key."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from chain_helpers import ALICE, BOB, CAROL, validator_keys
from hypothesis import given, settings
from hypothesis import strategies as st

from chain.address import CHARSET, address_to_text
from chain.errors import InvalidGenesis, RemoteError
from chain.genesis import ConsensusParams, Genesis
from chain.validators import Validator

VKEYS = validator_keys(3)
MAX_AMOUNT = 2**256 - 1
CAROL_AMOUNT = MAX_AMOUNT - 10**21 - 500
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def base() -> dict:
    return {
        "chain_id": "agora-local",
        "genesis_time": "2026-01-01T00:00:00Z",
        "validators": [
            {"name": "v0", "public_key": VKEYS[0].public_key.hex(), "power": 10},
            {"name": "v1", "public_key": VKEYS[1].public_key.hex(), "power": 20},
            {"name": "v2", "public_key": VKEYS[2].public_key.hex(), "power": 30},
        ],
        "balances": [
            {"address": address_to_text(BOB.address), "amount": "1000000000000000000000"},
            {"address": address_to_text(ALICE.address), "amount": 500},
            # Carol brings the total supply to exactly 2**256 - 1, the most there can be.
            {"address": address_to_text(CAROL.address), "amount": str(CAROL_AMOUNT)},
        ],
        "consensus": {"max_block_txs": 1000, "min_gas_price": 2},
    }


def load(data: dict) -> Genesis:
    return Genesis.from_dict(data)


def test_a_valid_genesis_loads() -> None:
    g = load(base())
    assert g.chain_id == "agora-local"
    assert g.time_ms == 1_767_225_600_000
    assert [(v.public_key, v.power) for v in g.validators] == [
        (k.public_key, p) for k, p in zip(VKEYS, [10, 20, 30], strict=True)
    ]
    assert g.validators.total_power == 60
    assert g.validator_names == ("v0", "v1", "v2")
    expected = {BOB.address: 10**21, ALICE.address: 500, CAROL.address: CAROL_AMOUNT}
    assert dict(g.balances) == expected
    # Balances are sorted by address bytes, whatever the file order.
    assert [a for a, _ in g.balances] == sorted(expected)
    assert g.consensus.max_block_txs == 1000
    assert g.consensus.min_gas_price == 2
    assert g.consensus.max_block_gas == ConsensusParams().max_block_gas  # a default
    assert len(g.hash) == 32


def test_defaults_for_optional_sections() -> None:
    data = base()
    del data["balances"], data["consensus"]
    g = load(data)
    assert g.balances == ()
    assert g.consensus == ConsensusParams()


def test_a_genesis_file_loads_and_its_hash_is_stable(tmp_path: Path) -> None:
    path = tmp_path / "genesis.json"
    path.write_text(json.dumps(base(), indent=2))
    first = Genesis.load(path)
    second = Genesis.load(str(path))
    assert first.hash == second.hash == load(base()).hash
    assert first.balances == second.balances
    # Key order, balance order, whitespace and address case do not matter.
    shuffled = base()
    shuffled["balances"] = [
        {**b, "address": b["address"].upper()} for b in reversed(shuffled["balances"])
    ]
    path.write_text(json.dumps(dict(reversed(list(shuffled.items())))))
    assert Genesis.load(path).hash == first.hash


@pytest.mark.parametrize(
    "change",
    [
        lambda d: d["balances"][0].update(amount="999999999999999999999"),
        lambda d: d["balances"][1].update(amount=499),
        lambda d: d["balances"].pop(),
        lambda d: d["balances"][1].update(address=address_to_text(validator_keys(1, "x")[0].address)),
        lambda d: d["validators"][0].update(power=11),
        lambda d: d["validators"].reverse(),
        lambda d: d.update(chain_id="agora-local2"),
        lambda d: d.update(genesis_time="2026-01-01T00:00:00.001Z"),
        lambda d: d["consensus"].update(max_block_txs=1001),
        lambda d: d["consensus"].update(max_block_gas=12_345),
    ],
)
def test_the_hash_changes_when_anything_that_matters_changes(change) -> None:
    data = base()
    change(data)
    assert load(data).hash != load(base()).hash


def test_validator_names_are_not_part_of_the_hash() -> None:
    data = base()
    data["validators"][0]["name"] = "renamed"
    assert load(data).hash == load(base()).hash
    assert load(data).validator_names[0] == "renamed"


def test_to_dict_round_trips_to_the_same_hash() -> None:
    g = load(base())
    doc = g.to_dict()
    again = Genesis.from_dict(doc)
    assert again.hash == g.hash
    assert (again.chain_id, again.time_ms, again.balances, again.consensus, again.validator_names) == (
        g.chain_id, g.time_ms, g.balances, g.consensus, g.validator_names)
    assert again.validators.validators == g.validators.validators
    # Through JSON text, as a node would write and read it.
    assert Genesis.from_dict(json.loads(json.dumps(doc))).hash == g.hash
    assert doc["genesis_time"] == "2026-01-01T00:00:00.000Z"
    assert doc["balances"][0]["amount"] == str(g.balances[0][1])


@pytest.mark.parametrize(
    ("text", "time_ms"),
    [
        ("2026-01-01T00:00:00Z", 1_767_225_600_000),
        ("2026-01-01T02:00:00+02:00", 1_767_225_600_000),
        ("2025-12-31T19:00:00-05:00", 1_767_225_600_000),
        ("2026-01-01T00:00:00.5Z", 1_767_225_600_500),
        ("2026-01-01T00:00:00.123456Z", 1_767_225_600_123),  # sub-millisecond is cut
        ("1970-01-01T00:00:00Z", 0),
        # Milliseconds whose float seconds are just below the exact value.
        ("2004-06-01T13:17:20.909Z", 1_086_095_840_909),
    ],
)
def test_genesis_time_to_milliseconds(text: str, time_ms: int) -> None:
    data = base()
    data["genesis_time"] = text
    assert load(data).time_ms == time_ms


@settings(max_examples=300)
@given(time_ms=st.integers(0, 253_402_300_799_999))  # up to 9999-12-31T23:59:59.999Z
def test_genesis_time_is_exact_to_the_millisecond(time_ms: int) -> None:
    data = base()
    iso = (EPOCH + timedelta(milliseconds=time_ms)).isoformat(timespec="milliseconds")
    data["genesis_time"] = iso.replace("+00:00", "Z")
    g = load(data)
    assert g.time_ms == time_ms
    assert g.to_dict()["genesis_time"] == data["genesis_time"]
    assert Genesis.from_dict(g.to_dict()).time_ms == time_ms


# --- errors naming the key -------------------------------------------------------------------


def _bad_checksum_address() -> str:
    text = address_to_text(ALICE.address)
    last = text[-1]
    return text[:-1] + (CHARSET[0] if last != CHARSET[0] else CHARSET[1])


BAD = [
    (lambda d: d.update(extra=1), r"genesis: extra: unknown key"),
    (lambda d: d["consensus"].update(max_block_tx=5), r"genesis: consensus\.max_block_tx: unknown key"),
    (lambda d: d["validators"][1].update(pubkey="00"), r"genesis: validators\.1\.pubkey: unknown key"),
    (lambda d: d["balances"][0].update(note="x"), r"genesis: balances\.0\.note: unknown key"),
    (lambda d: d.update(chain_id="Agora"), r"genesis: chain_id: .*chain_id is 1-64 characters"),
    (lambda d: d.update(chain_id=""), r"genesis: chain_id:"),
    (lambda d: d.update(chain_id="a" * 65), r"genesis: chain_id:"),
    (lambda d: d.update(chain_id="-agora"), r"genesis: chain_id:"),
    (lambda d: d.update(chain_id="agora local"), r"genesis: chain_id:"),
    (lambda d: d.update(chain_id="agora\n"), r"genesis: chain_id:"),
    (lambda d: d.update(chain_id=5), r"genesis: chain_id:"),
    (lambda d: d.pop("chain_id"), r"genesis: chain_id: Field required"),
    (lambda d: d.update(genesis_time="2026-01-01T00:00:00"), r"genesis: genesis_time: .*needs a time zone"),
    (lambda d: d.update(genesis_time="yesterday"), r"genesis: genesis_time:"),
    (lambda d: d.update(genesis_time="1969-12-31T23:59:59Z"), r"genesis: genesis_time: before 1970"),
    (lambda d: d.update(genesis_time="1969-12-31T23:59:59.9995Z"), r"genesis: genesis_time: before 1970"),
    (lambda d: d["validators"][2].update(power=0), r"genesis: validators\.2\.power:"),
    (lambda d: d["validators"][2].update(power=-1), r"genesis: validators\.2\.power:"),
    (lambda d: d["validators"][2].update(power=2**60), r"genesis: validators\.2\.power:"),
    (lambda d: d["validators"][0].update(public_key="zz" * 32), r"genesis: validators\.0\.public_key: .*must be hex"),
    (lambda d: d["validators"][0].update(public_key="ab" * 31), r"genesis: validators\.0\.public_key: .*must be 32 bytes"),
    (lambda d: d["validators"][0].update(public_key="ab" * 33), r"genesis: validators\.0\.public_key: .*must be 32 bytes"),
    (lambda d: d["validators"][0].pop("public_key"), r"genesis: validators\.0\.public_key: Field required"),
    (lambda d: d["validators"][1].update(public_key=d["validators"][0]["public_key"].upper()),
     r"genesis: validators: validator .* is listed twice"),
    (lambda d: d.update(validators=[]), r"genesis: validators:"),
    (lambda d: d.pop("validators"), r"genesis: validators: Field required"),
    (lambda d: d["balances"].append(dict(d["balances"][1])), r"genesis: balances\.3\.address: .* listed twice"),
    (lambda d: d["balances"].append({**d["balances"][0], "address": d["balances"][0]["address"].upper()}),
     r"genesis: balances\.3\.address: .* listed twice"),
    (lambda d: d["balances"][1].update(address=_bad_checksum_address()), r"genesis: balances\.1\.address: .*checksum"),
    (lambda d: d["balances"][1].update(address="agora1xyz"), r"genesis: balances\.1\.address:"),
    (lambda d: d["balances"][0].update(amount=-1), r"genesis: balances\.0\.amount: .*256 bits"),
    (lambda d: d["balances"][0].update(amount="-1"), r"genesis: balances\.0\.amount: .*non-negative integer"),
    (lambda d: d["balances"][0].update(amount="1e3"), r"genesis: balances\.0\.amount: .*non-negative"),
    (lambda d: d["balances"][0].update(amount=2**256), r"genesis: balances\.0\.amount: .*256 bits"),
    (lambda d: d["balances"][0].update(amount=str(2**256)), r"genesis: balances\.0\.amount: .*256 bits"),
    (lambda d: d["balances"][0].update(amount=1.5), r"genesis: balances\.0\.amount\b"),
    (lambda d: d["balances"][0].update(amount=None), r"genesis: balances\.0\.amount\b"),
    (lambda d: d["consensus"].update(max_tx_bytes=0), r"genesis: consensus\.max_tx_bytes:"),
    (lambda d: d["consensus"].update(max_tx_bytes=10**9), r"genesis: consensus\.max_tx_bytes:"),
    (lambda d: d.update(consensus=[]), r"genesis: consensus:"),
]


@pytest.mark.parametrize(("change", "match"), BAD)
def test_bad_genesis_is_refused_naming_the_key(change, match: str) -> None:
    data = base()
    change(data)
    with pytest.raises(InvalidGenesis, match=match):
        Genesis.from_dict(data)


def test_every_problem_is_reported_at_once() -> None:
    data = base()
    data["extra"] = 1
    data["validators"][0]["power"] = 0
    with pytest.raises(InvalidGenesis) as info:
        Genesis.from_dict(data)
    assert "extra: unknown key" in str(info.value)
    assert "validators.0.power" in str(info.value)


@pytest.mark.parametrize("doc", [[], "genesis", None, 5])
def test_a_document_that_is_not_an_object_is_refused(doc) -> None:
    with pytest.raises(InvalidGenesis, match=r"genesis: \(top level\)"):
        Genesis.from_dict(doc)


def test_the_largest_amount_and_power_are_accepted() -> None:
    data = base()
    data["balances"] = [{"address": address_to_text(ALICE.address), "amount": MAX_AMOUNT}]
    data["validators"] = [{"public_key": VKEYS[0].public_key.hex(), "power": 2**60 - 1}]
    g = load(data)
    assert g.balances == ((ALICE.address, MAX_AMOUNT),)
    assert g.validators.validators == (Validator(VKEYS[0].public_key, 2**60 - 1),)
    assert g.validator_names == ("",)


def test_a_file_that_is_not_json(tmp_path: Path) -> None:
    path = tmp_path / "genesis.json"
    path.write_text("{ this is not json")
    with pytest.raises(InvalidGenesis, match=rf"{path}: not JSON"):
        Genesis.load(path)
    path.write_bytes(b"\xff\xfe{}")
    with pytest.raises(InvalidGenesis, match=rf"{path}: not UTF-8"):
        Genesis.load(path)


def test_a_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope" / "genesis.json"
    with pytest.raises(InvalidGenesis, match=rf"{path}: cannot read"):
        Genesis.load(path)
    with pytest.raises(InvalidGenesis, match="cannot read"):
        Genesis.load(tmp_path)  # a directory


def test_errors_in_a_file_name_the_file_and_the_key(tmp_path: Path) -> None:
    data = base()
    data["validators"][1]["power"] = 0
    path = tmp_path / "g.json"
    path.write_text(json.dumps(data))
    with pytest.raises(InvalidGenesis, match=rf"{path}: validators\.1\.power:"):
        Genesis.load(path)


def test_invalid_genesis_is_a_remote_error() -> None:
    assert issubclass(InvalidGenesis, RemoteError)


def test_from_dict_does_not_modify_its_input() -> None:
    data = base()
    snapshot = copy.deepcopy(data)
    load(data)
    assert data == snapshot


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda d: d["validators"][0].update(power=10.0), r"validators\.0\.power"),
        (lambda d: d["validators"][0].update(power="10"), r"validators\.0\.power"),
        (lambda d: d["validators"][0].update(power=True), r"validators\.0\.power"),
        (lambda d: d["consensus"].update(max_block_txs=1e3), r"consensus\.max_block_txs"),
        (lambda d: d["balances"][0].update(amount=True), r"balances\.0\.amount"),
        (lambda d: d["balances"][0].update(amount="\u0661\u0662\u0663"), r"balances\.0\.amount"),
        (lambda d: d.update(genesis_time=1_767_225_600), r"genesis_time"),
        (lambda d: d["validators"][0].update(public_key="00" * 32), "not a valid ed25519"),
        (lambda d: d["validators"][0].update(public_key=" " + "ab" * 31 + " a"), "public_key"),
    ],
)
def test_lax_values_are_refused(change, match: str) -> None:
    data = base()
    change(data)
    with pytest.raises(InvalidGenesis, match=match):
        load(data)


def test_deeply_nested_json_is_a_genesis_error(tmp_path) -> None:
    path = tmp_path / "genesis.json"
    path.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(InvalidGenesis, match="nested too deeply"):
        Genesis.load(path)


def test_the_total_supply_must_fit_in_256_bits() -> None:
    """Each balance may fit while their sum does not: one account could then come to
    hold more than 2**256 - 1, which no contract can represent."""
    data = base()
    data["balances"][1]["amount"] = 501  # one unit over the limit in total
    with pytest.raises(InvalidGenesis, match="total supply exceeds"):
        load(data)
