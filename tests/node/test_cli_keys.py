"""`agora keys ...` run as a real command: exit codes, sentences, files, and no
tracebacks. Keys the tests only read are made through the API at libsodium's minimum
Argon2id cost (a file's own parameters are what reading uses); `keys new` and a seed
import use the default cost, so there are only a few of those."""

from __future__ import annotations

import json
import os
import select
import stat
import subprocess
import sys
import time
from pathlib import Path

import nacl.pwhash.argon2id as argon2id
import pytest

from chain.address import address_to_text
from chain.keys import PrivateKey
from node.home import write_key
from node.wallet.keystore import Keystore

REPO = Path(__file__).resolve().parent.parent
CHEAP = {"opslimit": argon2id.OPSLIMIT_MIN, "memlimit": argon2id.MEMLIMIT_MIN}
PW = "pass phrase"


def agora(*args: str, home: Path, passphrase: str | None = None,
          timeout: float = 30) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("AGORA_PASSPHRASE", "AGORA_HOME")}
    env["AGORA_HOME"] = str(home)
    if passphrase is not None:
        env["AGORA_PASSPHRASE"] = passphrase
    result = subprocess.run([sys.executable, "-m", "cli", "keys", *args], cwd=REPO, env=env,
                            stdin=subprocess.DEVNULL, capture_output=True, text=True,
                            timeout=timeout)
    assert "Traceback" not in result.stderr, result.stderr
    return result


def cheap_key(home: Path, name: str, passphrase: str = PW) -> PrivateKey:
    store = Keystore(home / "keys", **CHEAP)
    store.new(name, passphrase)
    return store.unlock(name, passphrase)


def secret_file(path: Path, text: str) -> str:
    path.write_text(text)
    path.chmod(0o600)
    return str(path)


def test_new_writes_an_encrypted_file_at_the_default_cost(tmp_path: Path) -> None:
    home = tmp_path / "home"
    pass_file = secret_file(tmp_path / "pass.txt", PW + "\n")
    made = agora("new", "alice", "--json", "--passphrase-file", pass_file, home=home)
    assert made.returncode == 0, made.stderr
    info = json.loads(made.stdout)
    path = home / "keys" / "alice.json"
    assert info["name"] == "alice" and info["encrypted"] and info["path"] == str(path)
    assert info["address"].startswith("agora1")
    assert info["kdf"]["opslimit"] >= argon2id.OPSLIMIT_MODERATE
    assert info["kdf"]["memlimit"] >= argon2id.MEMLIMIT_MODERATE
    assert json.loads(path.read_text())["crypto"]["kdfparams"] == {
        k: info["kdf"][k] for k in ("opslimit", "memlimit", "salt")}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE((home / "keys").stat().st_mode) == 0o700
    again = agora("new", "alice", home=home, passphrase=PW)
    assert again.returncode == 1 and "'alice' exists already" in again.stderr


def test_export_the_seed_and_import_it(tmp_path: Path) -> None:
    key = cheap_key(tmp_path, "alice")
    seed = agora("export", "alice", "--unsafe-plaintext", "--yes", home=tmp_path,
                 passphrase=PW)
    assert seed.returncode == 0, seed.stderr
    assert seed.stdout.strip() == key.seed.hex()
    assert "in clear" in seed.stderr  # the warning

    seed_file = secret_file(tmp_path / "seed.txt", seed.stdout)
    imported = agora("import", "copy", "--seed-file", seed_file, home=tmp_path,
                     passphrase="other pass")
    assert imported.returncode == 0, imported.stderr
    assert f"imported key 'copy': {address_to_text(key.address)}" in imported.stdout
    assert "note: key 'alice'" in imported.stderr  # the same key twice
    shown = json.loads(agora("show", "copy", "--json", home=tmp_path).stdout)
    assert shown["address"] == address_to_text(key.address) and shown["encrypted"]
    assert shown["kdf"]["memlimit"] >= argon2id.MEMLIMIT_MODERATE
    raw = (tmp_path / "keys" / "copy.json").read_bytes()
    assert key.seed not in raw and key.seed.hex().encode() not in raw.lower()


def test_export_and_import_the_encrypted_file(tmp_path: Path) -> None:
    home, other = tmp_path / "a", tmp_path / "b"
    key = cheap_key(home, "alice")
    exported = agora("export", "alice", home=home)
    assert exported.returncode == 0, exported.stderr
    assert json.loads(exported.stdout)["address"] == address_to_text(key.address)
    assert key.seed.hex() not in exported.stdout
    backup = tmp_path / "alice.json"
    backup.write_text(exported.stdout)

    imported = agora("import", "bob", "--file", str(backup), home=other)
    assert imported.returncode == 0, imported.stderr
    assert f"imported key 'bob': {address_to_text(key.address)}" in imported.stdout
    assert stat.S_IMODE((other / "keys" / "bob.json").stat().st_mode) == 0o600
    seed = agora("export", "bob", "--unsafe-plaintext", "--yes", "--json", home=other,
                 passphrase=PW)
    assert seed.returncode == 0, seed.stderr
    assert json.loads(seed.stdout)["seed"] == key.seed.hex()

    again = agora("import", "bob", "--file", str(backup), home=other)
    assert again.returncode == 1
    assert "Error: a key named 'bob' exists already" in again.stderr


def test_wrong_passphrase_fails_cleanly(tmp_path: Path) -> None:
    cheap_key(tmp_path, "alice")
    result = agora("export", "alice", "--unsafe-plaintext", "--yes", home=tmp_path,
                   passphrase="not it")
    assert result.returncode == 1
    assert result.stderr.strip() == "Error: wrong passphrase for key 'alice'"
    assert result.stdout == ""


def test_a_key_file_open_to_others_is_refused(tmp_path: Path) -> None:
    cheap_key(tmp_path, "alice")
    path = tmp_path / "keys" / "alice.json"
    path.chmod(0o644)
    for args in (["show", "alice"], ["export", "alice"]):
        result = agora(*args, home=tmp_path)
        assert result.returncode == 1
        assert result.stderr.strip().endswith(f"run: chmod 600 {path}")
    listed = agora("list", home=tmp_path)
    assert listed.returncode == 0
    assert f"chmod 600 {path}" in listed.stderr
    deleted = agora("delete", "alice", "--yes", home=tmp_path)  # but it can be deleted
    assert deleted.returncode == 0 and deleted.stdout.strip() == f"deleted {path}"


def test_hostile_kdf_params_are_refused_quickly(tmp_path: Path) -> None:
    cheap_key(tmp_path, "alice")
    path = tmp_path / "keys" / "alice.json"
    body = json.loads(path.read_text())
    body["crypto"]["kdfparams"]["memlimit"] = 1 << 42
    path.write_text(json.dumps(body))
    started = time.monotonic()
    result = agora("export", "alice", "--unsafe-plaintext", "--yes", home=tmp_path,
                   passphrase=PW, timeout=10)
    assert time.monotonic() - started < 5
    assert result.returncode == 1
    assert "argon2id memlimit 4398046511104 bytes is outside" in result.stderr


def test_unknown_and_bad_names_are_usage_errors(tmp_path: Path) -> None:
    cheap_key(tmp_path, "alice")
    cheap_key(tmp_path, "bob")
    unknown = agora("show", "carol", home=tmp_path)
    assert unknown.returncode == 2
    assert (f"Error: no key named 'carol' in {tmp_path / 'keys'} (the keys there are: "
            "alice, bob); create one with `agora keys new carol`") in unknown.stderr
    bad = agora("new", "../etc/x", home=tmp_path, passphrase=PW)
    assert bad.returncode == 2 and "'../etc/x' is not a key name" in bad.stderr
    reserved = agora("new", "node_key", home=tmp_path, passphrase=PW)
    assert reserved.returncode == 2 and "node's own key" in reserved.stderr
    both = agora("import", "x", "--file", "a", "--seed-file", "b", home=tmp_path)
    assert both.returncode == 2


def test_list_and_show_with_a_plaintext_dev_key(tmp_path: Path) -> None:
    key = cheap_key(tmp_path, "alice")
    dev = PrivateKey.from_seed_text("dev")
    write_key(tmp_path / "keys" / "dev.json", dev)
    write_key(tmp_path / "keys" / "node_key.json", PrivateKey.from_seed_text("node"))
    listed = agora("list", home=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.splitlines()[1:] == [
        f"  alice  {address_to_text(key.address)}  encrypted",
        f"  dev    {address_to_text(dev.address)}  unencrypted (localnet/dev key)"]
    data = json.loads(agora("list", "--json", home=tmp_path).stdout)
    assert [k["name"] for k in data["keys"]] == ["alice", "dev"]
    shown = agora("show", "alice", home=tmp_path).stdout
    assert f"address:     {address_to_text(key.address)}" in shown
    assert f"public key:  {key.public_key.hex()}" in shown
    assert "argon2id, opslimit 1, memlimit 8 KiB" in shown
    assert f"file:        {tmp_path / 'keys' / 'alice.json'}" in shown
    # A dev key needs no passphrase, and has no encrypted file to export.
    seed = agora("export", "dev", "--unsafe-plaintext", "--yes", home=tmp_path)
    assert seed.returncode == 0 and seed.stdout.strip() == dev.seed.hex()
    refused = agora("export", "dev", home=tmp_path)
    assert refused.returncode == 1 and "unencrypted" in refused.stderr


def test_without_a_terminal_nothing_waits_for_input(tmp_path: Path) -> None:
    cheap_key(tmp_path, "alice")
    new = agora("new", "bob", home=tmp_path, timeout=10)
    assert new.returncode == 1
    assert ("Error: key 'bob' needs a passphrase and there is no terminal to ask for it on; "
            "set AGORA_PASSPHRASE or use --passphrase-file FILE") in new.stderr
    delete = agora("delete", "alice", home=tmp_path, timeout=10)
    assert delete.returncode == 1 and "add --yes" in delete.stderr
    export = agora("export", "alice", "--unsafe-plaintext", home=tmp_path, timeout=10)
    assert export.returncode == 1 and "add --yes" in export.stderr
    deleted = agora("delete", "alice", "--yes", home=tmp_path)
    assert deleted.returncode == 0, deleted.stderr
    assert deleted.stdout.startswith("deleted key 'alice' (agora1")
    assert not (tmp_path / "keys" / "alice.json").exists()


def test_a_passphrase_file_others_can_read_is_used_with_a_warning(tmp_path: Path) -> None:
    key = cheap_key(tmp_path, "alice")
    pass_file = tmp_path / "pass.txt"
    pass_file.write_text(PW + "\n")
    pass_file.chmod(0o644)
    result = agora("export", "alice", "--unsafe-plaintext", "--yes", "--passphrase-file",
                   str(pass_file), home=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == key.seed.hex()
    assert f"consider: chmod 600 {pass_file}" in result.stderr


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a pseudo-terminal")
def test_new_asks_twice_on_a_terminal_and_refuses_a_mismatch(tmp_path: Path) -> None:
    master, slave = os.openpty()
    env = {k: v for k, v in os.environ.items() if k != "AGORA_PASSPHRASE"}
    env["AGORA_HOME"] = str(tmp_path)
    proc = subprocess.Popen([sys.executable, "-m", "cli", "keys", "new", "alice"], cwd=REPO,
                            env=env, stdin=slave, stdout=slave, stderr=slave,
                            start_new_session=True)
    os.close(slave)
    seen = b""

    def wait_for(text: bytes) -> None:
        nonlocal seen
        deadline = time.monotonic() + 10
        while text not in seen and time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.1)
            if ready:
                try:
                    seen += os.read(master, 4096)
                except OSError:  # the child closed the terminal
                    break
        assert text in seen, seen

    try:
        wait_for(b"Choose a passphrase for key 'alice'")
        os.write(master, b"first\n")
        wait_for(b"Repeat the passphrase")
        os.write(master, b"second\n")
        wait_for(b"do not match")
        assert proc.wait(timeout=10) == 1
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    assert b"Error: the two passphrases do not match; nothing was written" in seen
    assert b"first" not in seen and b"second" not in seen  # never echoed
    assert not (tmp_path / "keys" / "alice.json").exists()


def _cli(*args: str, env: dict[bytes, bytes] | None = None
         ) -> subprocess.CompletedProcess[bytes]:
    base = {k: v for k, v in os.environb.items() if k != b"AGORA_PASSPHRASE"}
    result = subprocess.run([sys.executable, "-m", "cli", *args], cwd=REPO,
                            env={**base, **(env or {})}, stdin=subprocess.DEVNULL,
                            capture_output=True, timeout=30)
    assert b"Traceback" not in result.stderr, result.stderr
    return result


def test_with_json_every_failure_is_one_json_object(tmp_path: Path) -> None:
    home = tmp_path / "home"
    cheap_key(home, "alice")
    # A keys command's refusal (wrong passphrase: 1) and usage (no such key: 2) ...
    for args, code, words in ((("export", "alice", "--unsafe-plaintext", "--yes"), 1,
                               "wrong passphrase"),
                              (("show", "nobody"), 2, "no key named")):
        failed = agora(*args, "--json", home=home, passphrase="not it")
        assert failed.returncode == code, failed
        out = json.loads(failed.stdout)
        assert out["ok"] is False and out["exit_code"] == code
        assert words in out["error"].lower()
    # ... and an argument refused while parsing (an order id of 0), before anything runs.
    parsed = _cli("order", "show", "0", "--json")
    assert parsed.returncode == 2
    out = json.loads(parsed.stdout)
    assert out["ok"] is False and out["exit_code"] == 2 and "0" in out["error"]


def test_a_passphrase_variable_that_is_not_utf8_is_a_sentence(tmp_path: Path) -> None:
    home = tmp_path / "home"
    cheap_key(home, "alice")
    failed = _cli("keys", "export", "alice", "--unsafe-plaintext", "--yes",
                  env={b"AGORA_HOME": str(home).encode(), b"AGORA_PASSPHRASE": b"pw\xff"})
    assert failed.returncode == 1
    assert b"AGORA_PASSPHRASE holds bytes that are not UTF-8" in failed.stderr
