"""The wallet keystore (node/wallet/keystore.py) and where passphrases come from
(node/wallet/passphrase.py). Argon2id runs at libsodium's minimum cost here, so
every derivation is instant; the CLI tests use the real default."""

from __future__ import annotations

import json
import os
import stat
import time
from pathlib import Path

import nacl.pwhash.argon2id as argon2id
import pytest

from chain.address import address_to_text
from chain.keys import PrivateKey
from node.home import write_key
from node.wallet.keystore import (
    DEFAULT_MEMLIMIT,
    DEFAULT_OPSLIMIT,
    PLAINTEXT_LABEL,
    BadKeyFile,
    BadName,
    KeyExists,
    Keystore,
    KeystoreError,
    PassphraseNeeded,
    UnknownKey,
    UnsafePermissions,
    WrongPassphrase,
    keystore_dir,
)
from node.wallet.passphrase import ENV_VAR, PassphraseError, PassphraseSource

CHEAP = {"opslimit": argon2id.OPSLIMIT_MIN, "memlimit": argon2id.MEMLIMIT_MIN}
PW = "correct horse battery staple"


@pytest.fixture
def store(tmp_path: Path) -> Keystore:
    return Keystore(tmp_path / "keys", **CHEAP)


def _body(store: Keystore, name: str) -> dict:
    return json.loads((store.directory / f"{name}.json").read_text())


def _rewrite(store: Keystore, name: str, body: dict) -> None:
    path = store.directory / f"{name}.json"
    path.write_text(json.dumps(body))
    path.chmod(0o600)


# ---------------------------------------------------------------------- files


def test_default_cost_is_at_least_moderate() -> None:
    assert DEFAULT_OPSLIMIT >= argon2id.OPSLIMIT_MODERATE
    assert DEFAULT_MEMLIMIT >= argon2id.MEMLIMIT_MODERATE


def test_new_key_file_format_modes_and_unlock(store: Keystore) -> None:
    info = store.new("alice", PW)
    path = store.directory / "alice.json"
    assert info.path == path and info.encrypted and info.name == "alice"
    assert stat.S_IMODE(store.directory.stat().st_mode) == 0o700
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    body = _body(store, "alice")
    assert body["version"] == 1 and body["name"] == "alice"
    assert body["address"] == address_to_text(info.address)
    assert body["public_key"] == info.public_key.hex()
    crypto = body["crypto"]
    assert crypto["cipher"] == "xsalsa20-poly1305" and crypto["kdf"] == "argon2id"
    assert len(bytes.fromhex(crypto["nonce"])) == 24
    assert len(bytes.fromhex(crypto["ciphertext"])) == 48  # the seed and its MAC
    assert crypto["kdfparams"]["opslimit"] == argon2id.OPSLIMIT_MIN
    assert crypto["kdfparams"]["memlimit"] == argon2id.MEMLIMIT_MIN
    assert len(bytes.fromhex(crypto["kdfparams"]["salt"])) == 16

    key = store.unlock("alice", PW)
    assert key.address == info.address == store.address("alice")
    assert key.public_key == info.public_key


def test_the_file_never_holds_the_key_in_clear(store: Keystore) -> None:
    store.new("alice", PW)
    seed = store.export_seed("alice", PW)
    raw = (store.directory / "alice.json").read_bytes()
    assert seed not in raw
    assert seed.hex().encode() not in raw.lower()
    assert seed.hex().upper().encode() not in raw


def test_wrong_passphrase_and_missing_passphrase(store: Keystore) -> None:
    store.new("alice", PW)
    with pytest.raises(WrongPassphrase, match=r"^wrong passphrase for key 'alice'$"):
        store.unlock("alice", "not it")
    with pytest.raises(PassphraseNeeded, match="'alice' is encrypted"):
        store.unlock("alice", None)
    with pytest.raises(KeystoreError, match="empty passphrase"):
        store.new("bob", "")


def test_the_files_own_kdf_params_are_honoured(tmp_path: Path) -> None:
    writer = Keystore(tmp_path, opslimit=2, memlimit=argon2id.MEMLIMIT_MIN * 2)
    made = writer.new("alice", PW)
    reader = Keystore(tmp_path, opslimit=argon2id.OPSLIMIT_MIN, memlimit=argon2id.MEMLIMIT_MIN)
    info = reader.info("alice")
    assert info.kdf is not None
    assert (info.kdf.opslimit, info.kdf.memlimit) == (2, argon2id.MEMLIMIT_MIN * 2)
    assert reader.unlock("alice", PW).address == made.address
    # And they are what the key is derived with: other params give another key.
    body = json.loads((tmp_path / "alice.json").read_text())
    body["crypto"]["kdfparams"]["opslimit"] = 1
    _rewrite(reader, "alice", body)
    with pytest.raises(WrongPassphrase):
        reader.unlock("alice", PW)


HOSTILE = [
    ({"memlimit": 1 << 40}, "memlimit"),
    ({"memlimit": 4 * (1 << 30) + 1}, "memlimit"),
    ({"memlimit": argon2id.MEMLIMIT_MIN - 1}, "memlimit"),
    ({"opslimit": 10**9}, "opslimit"),
    ({"opslimit": 0}, "opslimit"),
    ({"opslimit": -3}, "opslimit"),
    ({"opslimit": 16, "memlimit": argon2id.MEMLIMIT_SENSITIVE}, "sensitive"),
    ({"opslimit": True}, "integers"),
    ({"memlimit": "1024"}, "integers"),
    ({"memlimit": 1e9}, "integers"),
    ({"salt": "00" * 8}, "'salt' is 8 bytes, expected 16"),
    ({"salt": "zz" * 16}, "'salt' is not hex"),
]


@pytest.mark.parametrize(("change", "said"), HOSTILE)
def test_hostile_kdf_params_are_refused_quickly(store: Keystore, change: dict,
                                                said: str) -> None:
    store.new("alice", PW)
    body = _body(store, "alice")
    body["crypto"]["kdfparams"].update(change)
    _rewrite(store, "alice", body)
    started = time.monotonic()
    for attempt in (lambda: store.info("alice"), lambda: store.unlock("alice", PW)):
        with pytest.raises(BadKeyFile, match=said):
            attempt()
    with pytest.raises(BadKeyFile, match=said):
        Keystore(store.directory).import_file("copy", json.dumps(body))
    assert time.monotonic() - started < 1.0
    keys, problems = store.scan()
    assert keys == [] and len(problems) == 1


def test_a_keystore_never_writes_params_it_would_refuse(tmp_path: Path) -> None:
    with pytest.raises(BadKeyFile, match="memlimit"):
        Keystore(tmp_path, memlimit=1 << 40)
    with pytest.raises(BadKeyFile, match="opslimit"):
        Keystore(tmp_path, opslimit=0)


@pytest.mark.parametrize(("change", "said"), [
    (lambda b: b["crypto"].update(cipher="aes-128-ctr"), "cipher"),
    (lambda b: b["crypto"].update(kdf="scrypt"), "kdf"),
    (lambda b: b["crypto"].update(nonce="00" * 12), "'nonce' is 12 bytes"),
    (lambda b: b["crypto"].update(ciphertext="00" * 32), "'ciphertext' is 32 bytes"),
    (lambda b: b.update(version=2), "version 2"),
    (lambda b: b.update(version=True), "version True"),
    (lambda b: b.update(address="agora1qqqq"), "'address'"),
    (lambda b: b.pop("public_key"), "'public_key' is missing"),
    (lambda b: b.update(crypto=[]), "'crypto' is missing or not a dict"),
])
def test_malformed_files_are_refused_with_a_sentence(store: Keystore, change, said) -> None:
    store.new("alice", PW)
    body = _body(store, "alice")
    change(body)
    _rewrite(store, "alice", body)
    with pytest.raises(BadKeyFile, match=said):
        store.info("alice")


@pytest.mark.parametrize("raw", [b"", b"not json", b"[1, 2]", b"\xff\xfe", b"[" * 100_000,
                                 b"{}", b" " * 20_000 + b"{}"])
def test_junk_files_are_refused(store: Keystore, raw: bytes) -> None:
    store.directory.mkdir(parents=True)
    path = store.directory / "junk.json"
    path.write_bytes(raw)
    path.chmod(0o600)
    with pytest.raises(BadKeyFile):
        store.info("junk")


def test_a_fifo_is_refused_not_waited_on(store: Keystore) -> None:
    store.directory.mkdir(parents=True)
    os.mkfifo(store.directory / "pipe.json", 0o600)
    with pytest.raises(BadKeyFile, match="not a regular file"):
        store.info("pipe")


def test_the_address_must_be_the_keys(store: Keystore) -> None:
    """Someone else's address and public key pasted into our file: listed as theirs,
    but unlocking finds out."""
    store.new("alice", PW)
    other = PrivateKey.from_seed_text("mallory")
    body = _body(store, "alice")
    body["public_key"] = other.public_key.hex()
    body["address"] = address_to_text(other.address)
    _rewrite(store, "alice", body)
    assert store.address("alice") == other.address
    with pytest.raises(BadKeyFile, match="does not match"):
        store.unlock("alice", PW)
    body["address"] = address_to_text(PrivateKey.from_seed_text("eve").address)
    _rewrite(store, "alice", body)
    with pytest.raises(BadKeyFile, match="address is not the public key's"):
        store.info("alice")


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o620, 0o644, 0o660])
def test_a_file_open_to_others_is_refused_with_the_chmod_hint(store: Keystore,
                                                              mode: int) -> None:
    store.new("alice", PW)
    path = store.directory / "alice.json"
    path.chmod(mode)
    for attempt in (lambda: store.info("alice"), lambda: store.unlock("alice", PW)):
        with pytest.raises(UnsafePermissions, match=f"run: chmod 600 {path}$"):
            attempt()
    keys, problems = store.scan()
    assert keys == [] and "chmod 600" in str(problems[0])
    path.chmod(0o600)
    assert store.unlock("alice", PW).address == store.address("alice")


# ---------------------------------------------------------------------- names


@pytest.mark.parametrize("name", ["", ".hidden", "../alice", "a/b", "-x", "_x", "a" * 65,
                                  "al ice", "ålice", "a\x00"])
def test_bad_names_are_refused(store: Keystore, name: str) -> None:
    with pytest.raises(BadName, match="is not a key name"):
        store.new(name, PW)
    with pytest.raises(BadName):
        store.info(name)


@pytest.mark.parametrize("name", ["node_key", "validator_key"])
def test_the_nodes_own_keys_are_not_wallet_keys(tmp_path: Path, name: str) -> None:
    store = Keystore(tmp_path, **CHEAP)
    write_key(tmp_path / f"{name}.json", PrivateKey.generate())
    with pytest.raises(BadName, match="node's own key"):
        store.new(name, PW)
    with pytest.raises(BadName, match="node's own key"):
        store.info(name)
    assert store.list() == []


def test_good_names(store: Keystore) -> None:
    for name in ("a", "Alice.2", "x" * 64, "9_lives-v1.0"):
        store.import_seed(name, PrivateKey.from_seed_text(name).seed, PW)
    assert [k.name for k in store.list()] == sorted(["a", "Alice.2", "x" * 64, "9_lives-v1.0"])


def test_unknown_key_lists_the_known_ones(store: Keystore) -> None:
    with pytest.raises(UnknownKey) as empty:
        store.info("carol")
    assert "it holds no keys" in str(empty.value)
    store.new("alice", PW)
    store.new("bob", PW)
    for attempt in (lambda: store.info("carol"), lambda: store.unlock("carol", PW),
                    lambda: store.delete("carol"), lambda: store.export_file("carol")):
        with pytest.raises(UnknownKey) as exc:
            attempt()
        assert str(exc.value) == (f"no key named 'carol' in {store.directory} (the keys "
                                  "there are: alice, bob); create one with "
                                  "`agora keys new carol`")


def test_keys_are_never_overwritten(store: Keystore) -> None:
    store.new("alice", PW)
    before = (store.directory / "alice.json").read_bytes()
    with pytest.raises(KeyExists, match="'alice' exists already"):
        store.new("alice", PW)
    with pytest.raises(KeyExists):
        store.import_seed("alice", PrivateKey.generate().seed, PW)
    with pytest.raises(KeyExists):
        store.import_file("alice", store.export_file("alice"))
    assert (store.directory / "alice.json").read_bytes() == before


# ---------------------------------------------------------------------- moving keys


def test_export_and_import_the_encrypted_file(store: Keystore, tmp_path: Path) -> None:
    made = store.new("alice", PW)
    text = store.export_file("alice")
    other = Keystore(tmp_path / "elsewhere")  # default (costly) params: not used to read
    info = other.import_file("alice2", text)
    assert info.address == made.address and info.name == "alice2"
    assert json.loads((other.directory / "alice2.json").read_text())["name"] == "alice2"
    assert info.kdf == made.kdf  # the encryption travels as it is
    assert stat.S_IMODE((other.directory / "alice2.json").stat().st_mode) == 0o600
    assert other.unlock("alice2", PW).seed == store.unlock("alice", PW).seed


def test_export_and_import_the_seed(store: Keystore) -> None:
    made = store.new("alice", PW)
    seed = store.export_seed("alice", PW)
    info = store.import_seed("copy", seed, "another passphrase")
    assert info.address == made.address
    assert store.unlock("copy", "another passphrase").seed == seed
    with pytest.raises(KeystoreError, match="32 bytes"):
        store.import_seed("short", seed[:31], PW)


def test_import_refuses_a_plaintext_file_and_junk(store: Keystore, tmp_path: Path) -> None:
    write_key(tmp_path / "dev.json", PrivateKey.generate())
    with pytest.raises(KeystoreError, match="unencrypted key.*--seed-file"):
        store.import_file("dev", (tmp_path / "dev.json").read_text())
    with pytest.raises(BadKeyFile, match="not JSON"):
        store.import_file("x", "hello")
    assert store.list() == []


def test_plaintext_dev_keys_are_read_without_a_passphrase(store: Keystore) -> None:
    store.new("alice", PW)
    dev = PrivateKey.from_seed_text("dev")
    write_key(store.directory / "dev.json", dev)
    info = store.info("dev")
    assert not info.encrypted and info.kdf is None and info.address == dev.address
    assert store.unlock("dev", None).seed == dev.seed
    assert store.export_seed("dev", None) == dev.seed
    assert [(k.name, k.encrypted) for k in store.list()] == [("alice", True), ("dev", False)]
    with pytest.raises(KeystoreError, match=PLAINTEXT_LABEL.replace("(", r"\(").replace(")", r"\)")):
        store.export_file("dev")


def test_delete(store: Keystore) -> None:
    store.new("alice", PW)
    store.delete("alice")
    assert not (store.directory / "alice.json").exists()
    with pytest.raises(UnknownKey):
        store.delete("alice")
    (store.directory / "broken.json").write_text("junk")  # mode 0644, and not a key
    store.delete("broken")
    assert list(store.directory.iterdir()) == []


def test_keystore_dir_precedence(tmp_path: Path) -> None:
    env = {"AGORA_HOME": str(tmp_path / "env")}
    assert keystore_dir(str(tmp_path / "ks"), str(tmp_path / "h"), env) == tmp_path / "ks"
    assert keystore_dir(None, str(tmp_path / "h"), env) == tmp_path / "h" / "keys"
    assert keystore_dir(None, None, env) == tmp_path / "env" / "keys"
    assert keystore_dir(None, None, {}) == Path("~/.agora/keys").expanduser()


# ---------------------------------------------------------------------- passphrases


class Typist:
    def __init__(self, *answers: str) -> None:
        self.answers = list(answers)
        self.asked: list[str] = []

    def __call__(self, text: str) -> str:
        self.asked.append(text)
        return self.answers.pop(0)


def test_passphrase_file_first_line_wins(tmp_path: Path) -> None:
    path = tmp_path / "pass.txt"
    path.write_text("  spaced pass \r\nsecond line\n")
    path.chmod(0o600)
    warned: list[str] = []
    source = PassphraseSource(file=str(path), env={ENV_VAR: "from env"}, prompt=Typist(),
                              warn=warned.append)
    assert source.get("alice", new=True) == "  spaced pass "
    assert warned == []


def test_passphrase_file_readable_by_others_warns(tmp_path: Path) -> None:
    path = tmp_path / "pass.txt"
    path.write_text("pw")
    path.chmod(0o644)
    warned: list[str] = []
    assert PassphraseSource(file=str(path), warn=warned.append).get("alice") == "pw"
    assert len(warned) == 1 and f"chmod 600 {path}" in warned[0]


def test_passphrase_file_problems(tmp_path: Path) -> None:
    with pytest.raises(PassphraseError, match="cannot read passphrase file"):
        PassphraseSource(file=str(tmp_path / "missing")).get("alice")
    empty = tmp_path / "empty"
    empty.write_text("\nsecond\n")
    with pytest.raises(PassphraseError, match="first line .* is empty"):
        PassphraseSource(file=str(empty)).get("alice")


def test_env_then_prompt() -> None:
    typist = Typist()
    assert PassphraseSource(env={ENV_VAR: "e"}, prompt=typist).get("alice") == "e"
    assert typist.asked == []
    with pytest.raises(PassphraseError, match="set but empty"):
        PassphraseSource(env={ENV_VAR: ""}, prompt=typist).get("alice")
    assert PassphraseSource(prompt=Typist("typed")).get("alice") == "typed"


def test_a_new_passphrase_is_asked_twice() -> None:
    typist = Typist("one", "one")
    assert PassphraseSource(prompt=typist).get("alice", new=True) == "one"
    assert len(typist.asked) == 2
    with pytest.raises(PassphraseError, match="do not match"):
        PassphraseSource(prompt=Typist("one", "two")).get("alice", new=True)
    with pytest.raises(PassphraseError, match="empty passphrase"):
        PassphraseSource(prompt=Typist("", "")).get("alice", new=True)


def test_no_terminal_and_no_passphrase_fails_with_a_sentence() -> None:
    with pytest.raises(PassphraseError) as exc:
        PassphraseSource(env={}).get("alice")
    assert "set AGORA_PASSPHRASE or use --passphrase-file" in str(exc.value)
