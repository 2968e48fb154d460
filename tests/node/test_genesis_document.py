"""The one genesis builder: what it writes is a genesis the chain accepts, with the
validators, balances, time and commerce contracts asked for."""

from __future__ import annotations

import json

import pytest

from chain.genesis import Genesis
from chain.keys import PrivateKey
from chain.system import COMMERCE_CONTRACTS, GOVERNANCE_ADDRESS, SYSTEM_CONTRACTS
from node.genesis import FIXED_TIME_MS, GenesisValidator, format_time, genesis_document
from vm.contracts import Demo

VALIDATORS = [PrivateKey.from_seed_text(f"genesis-doc-{i}") for i in range(3)]
ALICE = PrivateKey.from_seed_text("genesis-doc-alice").address
BOB = PrivateKey.from_seed_text("genesis-doc-bob").address


def validators() -> list[GenesisValidator]:
    return [GenesisValidator(k.public_key, 10 + i, f"v{i}") for i, k in enumerate(VALIDATORS)]


def test_a_plain_genesis_has_its_validators_balances_and_time() -> None:
    doc = genesis_document("agora-doc", validators(), balances={ALICE: 5, BOB: 7})
    g = Genesis.from_dict(json.loads(json.dumps(doc)))
    assert g.chain_id == "agora-doc"
    assert g.time_ms == FIXED_TIME_MS
    assert [(v.public_key, v.power) for v in g.validators] == \
        [(k.public_key, 10 + i) for i, k in enumerate(VALIDATORS)]
    assert g.validator_names == ("v0", "v1", "v2")
    assert dict(g.balances) == {ALICE: 5, BOB: 7}
    # Every chain gets the validator set's governance; without it, a fixed set.
    assert [c.address for c in g.contracts] == [GOVERNANCE_ADDRESS]
    fixed = Genesis.from_dict(genesis_document("agora-doc", validators(), governance=False))
    assert fixed.contracts == ()


def test_the_commerce_contracts_with_a_demo_and_token_balances() -> None:
    doc = genesis_document("agora-doc", validators(), time_ms=FIXED_TIME_MS + 1_000,
                           commerce=True, token_balances={ALICE: 3},
                           demo=Demo(merchant=ALICE, arbiter=BOB))
    g = Genesis.from_dict(doc)
    assert {c.address for c in g.contracts} == set(SYSTEM_CONTRACTS.values())
    assert set(COMMERCE_CONTRACTS.values()) < set(SYSTEM_CONTRACTS.values())
    plain = Genesis.from_dict(genesis_document("agora-doc", validators(),
                                               time_ms=FIXED_TIME_MS + 1_000, commerce=True))
    assert plain.contracts != g.contracts  # the demo and the tokens are in the state


def test_token_balances_or_a_demo_without_the_contracts_are_refused() -> None:
    with pytest.raises(ValueError, match="commerce"):
        genesis_document("agora-doc", validators(), token_balances={ALICE: 1})
    with pytest.raises(ValueError, match="commerce"):
        genesis_document("agora-doc", validators(), demo=Demo(ALICE, BOB))


@pytest.mark.parametrize(("time_ms", "text"), [
    (FIXED_TIME_MS, "2026-01-01T00:00:00Z"),
    (FIXED_TIME_MS + 1, "2026-01-01T00:00:00.001Z"),
    (0, "1970-01-01T00:00:00Z"),
])
def test_genesis_time_reads_back_to_the_same_millisecond(time_ms: int, text: str) -> None:
    assert format_time(time_ms) == text
    doc = genesis_document("agora-doc", validators(), time_ms=time_ms)
    assert Genesis.from_dict(doc).time_ms == time_ms


def test_set_validators_rewrites_the_set_and_the_governance_members(tmp_path) -> None:
    """A testnet's genesis gets its validators after `agora init`: the governance
    contract's members must follow, or every node refuses the genesis."""
    from click.testing import CliRunner

    from cli import main
    from storage.kv import MemoryKV
    from vm.executor import Executor

    path = tmp_path / "genesis.json"
    path.write_text(json.dumps(genesis_document("agora-doc", validators()[:1], commerce=True)))
    keys = [PrivateKey.from_seed_text(f"genesis-doc-new-{i}") for i in range(4)]
    result = CliRunner().invoke(main, ["genesis", "set-validators", str(path),
                                       *[k.public_key.hex() for k in keys]])
    assert result.exit_code == 0, result.output
    g = Genesis.load(path)
    assert [v.public_key for v in g.validators] == [k.public_key for k in keys]
    assert g.validator_names == tuple(f"validator-{i}" for i in range(4))
    assert {c.address for c in g.contracts} == set(SYSTEM_CONTRACTS.values())
    executor = Executor(MemoryKV(), g)  # checks the governance members
    assert executor.validator_set(1).hash == g.validators.hash
    bad = CliRunner().invoke(main, ["genesis", "set-validators", str(path), "abc"])
    assert bad.exit_code != 0 and "64 hex digits" in bad.output
