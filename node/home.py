"""A node's home directory (DESIGN.md "The node"):

    config.toml     the config (node/config.py)
    genesis.json    the chain's genesis
    keys/           node_key.json, validator_key.json — mode 0600
    data/           LevelDB (state, blocks, indexes) and the consensus sign log

Key files are JSON ``{"type": "ed25519", "public_key": hex, "seed": hex}``, written
atomically with mode 0600 from the first byte; a key file others can read is refused,
as ssh does.
"""

from __future__ import annotations

import json
import stat
from pathlib import Path

from chain.errors import InvalidGenesis, LocalError
from chain.genesis import CHAIN_ID_RE, Genesis
from chain.keys import PrivateKey
from storage.files import write_atomic

from .config import Config, ConfigError, NodeSection, render
from .genesis import GenesisValidator, genesis_document, now_ms


class HomeError(Exception):
    """The home directory is missing something, or something in it is wrong."""


def write_key(path: Path, key: PrivateKey) -> None:
    body = {"type": "ed25519", "public_key": key.public_key.hex(), "seed": key.seed.hex()}
    write_atomic(path, (json.dumps(body, indent=2) + "\n").encode())


def read_key(path: Path) -> PrivateKey:
    try:
        mode = path.stat().st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise HomeError(f"{path} can be read by others (mode {oct(mode & 0o777)}); "
                            f"run: chmod 600 {path}")
        body = json.loads(path.read_text())
        key = PrivateKey(bytes.fromhex(body["seed"]))
    except OSError as exc:
        raise HomeError(f"cannot read key {path}: {exc.strerror}") from None
    except (ValueError, KeyError, TypeError, LocalError) as exc:
        raise HomeError(f"{path} is not a key file: {exc}") from None
    if key.public_key.hex() != body.get("public_key"):
        raise HomeError(f"{path}: the public key does not match the seed")
    return key


class Home:
    def __init__(self, path: Path | str) -> None:
        self.path = Path(path).expanduser()

    @property
    def config_path(self) -> Path:
        return self.path / "config.toml"

    @property
    def genesis_path(self) -> Path:
        return self.path / "genesis.json"

    @property
    def node_key_path(self) -> Path:
        return self.path / "keys" / "node_key.json"

    @property
    def validator_key_path(self) -> Path:
        return self.path / "keys" / "validator_key.json"

    @property
    def data_dir(self) -> Path:
        return self.path / "data"

    @property
    def signlog_path(self) -> Path:
        return self.data_dir / "signlog"

    def exists(self) -> bool:
        return self.config_path.exists()

    def config(self) -> Config:
        if not self.config_path.exists():
            raise HomeError(f"no config at {self.config_path}: run `agora init --home "
                            f"{self.path}` first")
        try:
            return Config.load(self.config_path)
        except ConfigError as exc:
            raise HomeError(str(exc)) from None

    def genesis(self) -> Genesis:
        try:
            data = json.loads(self.genesis_path.read_text())
        except OSError as exc:
            raise HomeError(f"cannot read {self.genesis_path}: {exc.strerror}") from None
        except json.JSONDecodeError as exc:
            raise HomeError(f"{self.genesis_path} is not JSON: {exc}") from None
        try:
            return Genesis.from_dict(data, str(self.genesis_path))
        except InvalidGenesis as exc:
            raise HomeError(str(exc)) from None

    def node_key(self) -> PrivateKey:
        return read_key(self.node_key_path)

    def validator_key(self) -> PrivateKey:
        return read_key(self.validator_key_path)

    def write_config(self, config: Config) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(render(config))

    def write_genesis(self, genesis: dict) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        self.genesis_path.write_text(json.dumps(genesis, indent=2) + "\n")

    def init(self, config: Config, *, validator: bool, node_key: PrivateKey | None = None,
             validator_key: PrivateKey | None = None) -> None:
        """Create the layout with fresh keys (or the ones given). Refuses to touch a
        home that already has a config: keys are never overwritten."""
        for existing in (self.config_path, self.node_key_path, self.validator_key_path):
            if existing.exists():
                raise HomeError(f"{self.path} already holds a node ({existing.name} exists); "
                                "keys are never overwritten")
        self.write_config(config)
        write_key(self.node_key_path, node_key or PrivateKey.generate())
        if validator:
            write_key(self.validator_key_path, validator_key or PrivateKey.generate())
        self.data_dir.mkdir(parents=True, exist_ok=True)


def init_home(path: Path | str, *, chain_id: str, validator: bool,
              dev: bool = False) -> list[str]:
    """``agora init``: a home with fresh keys; a validator also gets a genesis in which
    it is the only validator. Returns lines telling the user what was made."""
    if not CHAIN_ID_RE.fullmatch(chain_id):
        raise HomeError(f"chain id {chain_id!r}: use 1-64 characters of a-z, 0-9, '.', '_', '-'")
    home = Home(path)
    config = Config(node=NodeSection(mode="validator" if validator else "full"))
    home.init(config, validator=validator)
    lines = [f"created {home.path}: config.toml, keys/node_key.json"]
    node_key = home.node_key()
    if validator:
        key = home.validator_key()
        home.write_genesis(genesis_document(
            chain_id, [GenesisValidator(key.public_key, 10, "validator-0")],
            time_ms=now_ms(), commerce=True))
        lines.append(f"validator address {key.address.hex()}; genesis.json for chain "
                     f"{chain_id!r} with it as the only validator and the commerce "
                     "contracts")
    else:
        lines.append("copy the chain's genesis.json into the home before `agora start`")
    lines.append(f"node id {node_key.address.hex()} (peers dial "
                 f"{node_key.address.hex()}@{config.p2p.listen})")
    return lines
