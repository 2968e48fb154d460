"""A node's home directory: layout, key files (0600, checked on read), `agora init`."""

from __future__ import annotations

import contextlib
import json
import os
import stat
from pathlib import Path

import pytest

from chain.keys import PrivateKey
from node.config import Config, NodeSection
from node.home import Home, HomeError, init_home, read_key, write_key

KEY = PrivateKey.from_seed_text("home-test-key")
OTHER = PrivateKey.from_seed_text("home-test-other")


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def key_body(key: PrivateKey, **changes: object) -> dict[str, object]:
    return {"type": "ed25519", "public_key": key.public_key.hex(), "seed": key.seed.hex(),
            **changes}


def write_raw_key(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(0o600)


def key_files(home: Home) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in (home.path / "keys").iterdir()
            if p.suffix == ".json"}


# ---------------------------------------------------------------------- key files


def test_write_key_then_read_key(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "k.json"
    write_key(path, KEY)
    assert mode_of(path) == 0o600
    assert json.loads(path.read_text()) == key_body(KEY)
    assert read_key(path).seed == KEY.seed
    assert [p.name for p in path.parent.iterdir()] == ["k.json"]  # no temporary left


def test_write_key_replaces_a_readable_file_with_a_private_one(tmp_path: Path) -> None:
    path = tmp_path / "k.json"
    path.write_text("old")
    path.chmod(0o644)
    write_key(path, KEY)
    assert mode_of(path) == 0o600


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660, 0o610, 0o644])
def test_read_key_refuses_a_file_others_can_read(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "k.json"
    write_key(path, KEY)
    path.chmod(mode)
    with pytest.raises(HomeError) as info:
        read_key(path)
    assert f"run: chmod 600 {path}" in str(info.value)
    assert oct(mode) in str(info.value)


def test_read_key_refuses_a_public_key_that_does_not_match_the_seed(tmp_path: Path) -> None:
    path = tmp_path / "k.json"
    write_raw_key(path, json.dumps(key_body(KEY, public_key=OTHER.public_key.hex())))
    with pytest.raises(HomeError, match="the public key does not match the seed"):
        read_key(path)


@pytest.mark.parametrize("text", [
    "garbage",
    "",
    "[]",
    "null",
    '"seed"',
    json.dumps({"public_key": KEY.public_key.hex()}),
    json.dumps(key_body(KEY, seed="zz" * 32)),
    json.dumps(key_body(KEY, seed=7)),
    json.dumps(key_body(KEY, seed=KEY.seed.hex()[:-2])),  # a truncated seed
    json.dumps(key_body(KEY, seed=KEY.seed.hex() + "00")),
], ids=["not-json", "empty", "list", "null", "string", "no-seed", "seed-not-hex",
        "seed-a-number", "seed-31-bytes", "seed-33-bytes"])
def test_read_key_refuses_garbage(tmp_path: Path, text: str) -> None:
    path = tmp_path / "k.json"
    write_raw_key(path, text)
    with pytest.raises(HomeError, match=f"^{path} is not a key file"):
        read_key(path)


def test_read_key_refuses_bytes_that_are_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "k.json"
    path.write_bytes(b"\xff\xfe{")
    path.chmod(0o600)
    with pytest.raises(HomeError, match="is not a key file"):
        read_key(path)


def test_read_key_on_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(HomeError, match="cannot read key .*: No such file or directory"):
        read_key(tmp_path / "missing.json")


# ---------------------------------------------------------------------- Home.init


def test_init_creates_the_layout(tmp_path: Path) -> None:
    home = Home(tmp_path / "node")
    config = Config(node=NodeSection(mode="validator", moniker="m"))
    home.init(config, validator=True, node_key=KEY, validator_key=OTHER)
    assert home.exists()
    assert home.config() == config
    assert sorted(key_files(home)) == ["node_key.json", "validator_key.json"]
    for path in (home.node_key_path, home.validator_key_path, home.signlog_path):
        assert mode_of(path) == 0o600
    # The validator's empty sign log sits beside its key (wiping data/ keeps it).
    assert home.signlog_path.parent == home.validator_key_path.parent
    assert home.signlog_path.read_bytes() == b""
    assert home.node_key().seed == KEY.seed
    assert home.validator_key().seed == OTHER.seed
    assert home.data_dir.is_dir() and not any(home.data_dir.iterdir())
    assert not home.genesis_path.exists()


def test_init_of_a_full_node_writes_no_validator_key(tmp_path: Path) -> None:
    home = Home(tmp_path)
    home.init(Config(), validator=False)
    assert sorted(key_files(home)) == ["node_key.json"]


def test_init_refuses_an_existing_home_and_keeps_its_keys(tmp_path: Path) -> None:
    home = Home(tmp_path)
    home.init(Config(), validator=True)
    before = key_files(home)
    with pytest.raises(HomeError, match="already holds a node"):
        home.init(Config(), validator=True)
    with pytest.raises(HomeError, match="already holds a node"):
        init_home(tmp_path, chain_id="agora-test", validator=True)
    assert key_files(home) == before
    assert not home.genesis_path.exists()


def test_init_never_overwrites_keys_even_without_a_config(tmp_path: Path) -> None:
    # A user who deleted config.toml to get fresh defaults and ran `agora init` again
    # must not lose the validator's identity: keys are never overwritten.
    home = Home(tmp_path)
    home.init(Config(), validator=True)
    before = key_files(home)
    home.config_path.unlink()
    with contextlib.suppress(HomeError):  # refusing is fine; replacing the keys is not
        home.init(Config(), validator=True)
    assert key_files(home) == before


def test_config_and_genesis_of_an_empty_home_say_what_to_do(tmp_path: Path) -> None:
    home = Home(tmp_path / "empty")
    with pytest.raises(HomeError, match=r"no config at .*: run `agora init --home "):
        home.config()
    with pytest.raises(HomeError, match="cannot read .*genesis.json"):
        home.genesis()
    with pytest.raises(HomeError, match="cannot read key"):
        home.node_key()


def test_a_bad_config_in_a_home_is_a_home_error_naming_the_key(tmp_path: Path) -> None:
    home = Home(tmp_path)
    home.init(Config(), validator=False)
    home.config_path.write_text("[p2p]\nmax_inbound = -1\n")
    with pytest.raises(HomeError, match=r"config.toml: p2p.max_inbound: "):
        home.config()


def test_a_bad_genesis_in_a_home_is_a_home_error(tmp_path: Path) -> None:
    home = Home(tmp_path)
    home.genesis_path.write_text("{not json")
    with pytest.raises(HomeError, match="genesis.json is not JSON"):
        home.genesis()
    home.genesis_path.write_text('{"chain_id": "x"}')
    with pytest.raises(HomeError, match="genesis.json: "):
        home.genesis()


# ---------------------------------------------------------------------- agora init


def test_init_home_as_validator_writes_a_single_validator_genesis(tmp_path: Path) -> None:
    lines = init_home(tmp_path / "v", chain_id="agora-test.1", validator=True)
    home = Home(tmp_path / "v")
    config = home.config()
    assert config.node.mode == "validator"
    genesis = home.genesis()
    key = home.validator_key()
    assert genesis.chain_id == "agora-test.1"
    assert [v.public_key for v in genesis.validators] == [key.public_key]
    assert genesis.balances == ()
    assert key.address.hex() in "\n".join(lines)
    node_id = home.node_key().address.hex()
    assert f"{node_id}@{config.p2p.listen}" in lines[-1]
    assert all(mode_of(p) == 0o600 for p in (home.path / "keys").iterdir())


def test_init_home_as_full_node_leaves_the_genesis_to_the_user(tmp_path: Path) -> None:
    lines = init_home(tmp_path, chain_id="agora-test", validator=False)
    home = Home(tmp_path)
    assert home.config().node.mode == "full"
    assert sorted(key_files(home)) == ["node_key.json"]
    assert not home.genesis_path.exists()
    assert any("genesis.json" in line for line in lines)


@pytest.mark.parametrize("chain_id", ["", "Agora", "agora test", "-agora", "a" * 65,
                                      "agora\n", "agora/1"])
def test_a_bad_chain_id_is_refused_before_anything_is_created(tmp_path: Path,
                                                              chain_id: str) -> None:
    path = tmp_path / "node"
    with pytest.raises(HomeError, match="chain id"):
        init_home(path, chain_id=chain_id, validator=True)
    assert not path.exists()


def test_keys_are_private_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        init_home(tmp_path, chain_id="agora-test", validator=True)
    finally:
        os.umask(old)
    home = Home(tmp_path)
    assert mode_of(home.node_key_path) == mode_of(home.validator_key_path) == 0o600
    home.validator_key()
