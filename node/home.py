"""A node's home directory (DESIGN.md "The node"):

    config.toml     the config (node/config.py)
    genesis.json    the chain's genesis
    keys/           node_key.json, validator_key.json — mode 0600; signlog, the
                    validator's record of what it signed (consensus/signlog.py). It lives
                    beside the key, not with the chain data, so an operator who wipes
                    data/ to re-sync does not wipe the validator's memory of its votes
    data/           LevelDB (state, blocks, indexes); node.lock, held (flock) by the node
                    running on the home, its pid inside

Key files are JSON ``{"type": "ed25519", "public_key": hex, "seed": hex}``, written
atomically with mode 0600 from the first byte; a key file others can read is refused,
as ssh does.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable
from pathlib import Path

from chain.address import address_to_text
from chain.errors import InvalidGenesis, LocalError
from chain.genesis import CHAIN_ID_RE, Genesis
from chain.keys import PrivateKey
from storage.files import write_atomic
from vm.contracts import Demo

from .config import Config, ConfigError, NodeSection, render
from .genesis import DEMO_COINS, DEMO_TOKENS, GenesisValidator, genesis_document, now_ms

try:
    import fcntl
except ImportError:  # not POSIX: LevelDB's own lock still keeps a second node out
    fcntl = None  # type: ignore[assignment]

#: ``agora init --validator --dev``: the funded keys it writes (``dev`` to try the
#: wallet with; the demo merchant, with two listings, and the demo arbiter).
DEV_ACCOUNTS = ("dev", "dev-merchant", "dev-arbiter")


class HomeError(Exception):
    """The home directory is missing something, or something in it is wrong."""


class HomeInUse(HomeError):
    """Another node is running on this home (it holds ``data/node.lock``)."""


class LockHeld(Exception):
    """Another process holds the lock file at ``path`` (``pid``: its pid, 0 if it has
    not written it yet)."""

    def __init__(self, path: Path, pid: int) -> None:
        super().__init__(f"{path} is held by pid {pid or '?'}")
        self.path = path
        self.pid = pid


def take_lock(path: Path) -> Callable[[], None]:
    """Hold ``path`` for this process: an exclusive ``flock`` with our pid written
    inside. Returns the function that lets it go (closing the file; the kernel also
    lets go when the process dies, however it dies). Raises :class:`LockHeld`."""
    if fcntl is None:
        return lambda: None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise HomeError(f"cannot open {path}: {exc.strerror}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise LockHeld(path, lock_holder(path) or 0) from None
    except BaseException:
        os.close(fd)
        raise
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    return lambda: os.close(fd)


def lock_holder(path: Path) -> int | None:
    """The pid of the process holding ``path`` (:func:`take_lock`): 0 if it holds it
    but has not written its pid yet, None if nobody holds it."""
    if fcntl is None:
        return None
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            text = os.read(fd, 32).decode("ascii", "replace").strip()
            return int(text) if text.isdigit() else 0
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def _not_utf8(path: Path, exc: UnicodeDecodeError) -> HomeError:
    return HomeError(f"{path} is not UTF-8 text ({exc.reason} at byte {exc.start}): "
                     "write it again as UTF-8, or copy the original back")


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
        return self.path / "keys" / "signlog"

    @property
    def legacy_signlog_path(self) -> Path:
        """Where homes made before the sign log moved beside the key kept it."""
        return self.data_dir / "signlog"

    def adopt_legacy_signlog(self) -> bool:
        """Move a sign log from ``data/`` (older homes) to ``keys/``; True if moved.
        A home holding both keeps the one in keys/ (the newer) and leaves the other."""
        old, new = self.legacy_signlog_path, self.signlog_path
        if new.exists() or not old.is_file():
            return False
        new.parent.mkdir(parents=True, exist_ok=True)
        os.replace(old, new)
        return True

    @property
    def lock_path(self) -> Path:
        return self.data_dir / "node.lock"

    def lock(self) -> Callable[[], None]:
        """Take this home for the running node (:func:`take_lock` on
        ``data/node.lock``); returns the function that lets it go. Raises
        :class:`HomeInUse` naming the node that holds it."""
        try:
            return take_lock(self.lock_path)
        except LockHeld as held:
            raise HomeInUse(self._in_use_message(held.pid)) from None

    def running_pid(self) -> int | None:
        """The pid of the node running on this home: 0 if one runs but its pid is not
        written yet, None if none runs."""
        return lock_holder(self.lock_path)

    def _in_use_message(self, pid: int | None) -> str:
        who = f"pid {pid}" if pid else "its pid not known yet"
        stop = f"`kill {pid}`" if pid else "Ctrl-C or kill"
        return (f"another node is already running on this home ({self.path}, {who}; it "
                f"holds {self.lock_path}): stop it first ({stop}), or start this one on "
                "a home of its own")

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
        except UnicodeDecodeError as exc:
            raise _not_utf8(self.config_path, exc) from None

    def genesis(self) -> Genesis:
        try:
            data = json.loads(self.genesis_path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise HomeError(f"cannot read {self.genesis_path}: {exc.strerror}") from None
        except UnicodeDecodeError as exc:
            raise _not_utf8(self.genesis_path, exc) from None
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
        for existing in (self.config_path, self.node_key_path, self.validator_key_path,
                         self.signlog_path):
            if existing.exists():
                raise HomeError(f"{self.path} already holds a node ({existing.name} exists); "
                                "keys are never overwritten")
        self.write_config(config)
        write_key(self.node_key_path, node_key or PrivateKey.generate())
        if validator:
            write_key(self.validator_key_path, validator_key or PrivateKey.generate())
            # An empty sign log says "this key has signed nothing yet"; a validator
            # that finds none at start has lost it and waits before signing
            # (node/daemon.py, the double-sign guard).
            fd = os.open(self.signlog_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            os.close(fd)
        self.data_dir.mkdir(parents=True, exist_ok=True)


def init_home(path: Path | str, *, chain_id: str, validator: bool,
              dev: bool = False) -> list[str]:
    """``agora init``: a home with fresh keys; a validator also gets a genesis in which
    it is the only validator. With ``dev`` (a validator's only) that genesis also funds
    passphrase-free keys in the home's ``keys/``: ``dev`` to try the wallet with, and
    the demo merchant (two listings) and arbiter. Returns lines telling the user what
    was made."""
    if dev and not validator:
        raise HomeError("--dev needs --validator: the dev key is funded in the genesis a "
                        "validator's home is made with (a full node copies its chain's "
                        "genesis instead)")
    if not CHAIN_ID_RE.fullmatch(chain_id):
        raise HomeError(f"chain id {chain_id!r}: use 1-64 characters of a-z, 0-9, '.', '_', '-'")
    home = Home(path)
    config = Config(node=NodeSection(mode="validator" if validator else "full"))
    home.init(config, validator=validator)
    lines = [f"created {home.path}: config.toml, keys/node_key.json"]
    node_key = home.node_key()
    if validator:
        key = home.validator_key()
        dev_keys = {name: PrivateKey.generate() for name in DEV_ACCOUNTS} if dev else {}
        for name, dev_key in dev_keys.items():
            write_key(home.path / "keys" / f"{name}.json", dev_key)
        funded = [k.address for k in dev_keys.values()]
        home.write_genesis(genesis_document(
            chain_id, [GenesisValidator(key.public_key, 10, "validator-0")],
            time_ms=now_ms(), commerce=True,
            balances={a: DEMO_COINS for a in funded},
            token_balances={a: DEMO_TOKENS for a in funded},
            demo=(Demo(merchant=dev_keys["dev-merchant"].address,
                       arbiter=dev_keys["dev-arbiter"].address) if dev else None)))
        lines.append(f"validator {address_to_text(key.address)} (key address "
                     f"{key.address.hex()}); genesis.json for chain {chain_id!r} with it as "
                     "the only validator and the commerce contracts")
        if dev:
            coins, tokens = DEMO_COINS // 10**18, DEMO_TOKENS // 10**18  # 18 decimals
            lines.append(
                f"dev key {address_to_text(dev_keys['dev'].address)} in "
                f"{home.path / 'keys' / 'dev.json'} (no passphrase: for trying things "
                f"only), funded with {coins:,} coins and {tokens:,} reward tokens")
            lines.append(
                f"demo merchant {address_to_text(dev_keys['dev-merchant'].address)} "
                "(keys/dev-merchant.json, two listings) and arbiter "
                f"{address_to_text(dev_keys['dev-arbiter'].address)} "
                "(keys/dev-arbiter.json), funded the same")
    else:
        lines.append("copy the chain's genesis.json into the home before `agora start`")
    lines.append(f"node id {node_key.address.hex()} (peers dial "
                 f"{node_key.address.hex()}@{config.p2p.listen})")
    return lines
