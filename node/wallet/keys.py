"""``agora keys new|list|show|import|export|delete``: one function per command, each
returning a :class:`Report` (sentences for people, one JSON object for scripts). The
CLI parses the arguments and injects what needs a terminal: the passphrase source,
a hidden prompt for a seed, and a yes/no question (None where there is no terminal,
so that we refuse with a sentence instead of waiting on stdin)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chain.address import address_to_text
from chain.keys import SEED_SIZE

from .keystore import (
    CIPHER,
    KDF,
    MAX_FILE_SIZE,
    PLAINTEXT_LABEL,
    BadKeyFile,
    KeyInfo,
    Keystore,
    KeystoreError,
    describe_kdf,
    keystore_dir,
)
from .passphrase import PassphraseSource, Prompt

Confirm = Callable[[str], bool]  # asks a yes/no question, True for yes


@dataclass(frozen=True)
class Report:
    """What a command did: ``lines`` for a person, ``data`` for ``--json``, and
    ``warnings`` for stderr either way."""

    lines: list[str]
    data: dict[str, Any]
    warnings: tuple[str, ...] = ()

    def render(self, as_json: bool) -> str:
        # "ok" first, as every wallet command's JSON has it
        return (json.dumps({"ok": True, **self.data}, indent=2) if as_json
                else "\n".join(self.lines))


def info_json(info: KeyInfo) -> dict[str, Any]:
    kdf = None
    if info.kdf is not None:
        kdf = {"name": KDF, **info.kdf.to_json()}
    return {"name": info.name, "address": info.address_text,
            "public_key": info.public_key.hex(), "encrypted": info.encrypted,
            "cipher": CIPHER if info.encrypted else None, "kdf": kdf,
            "path": str(info.path)}


def _protection(info: KeyInfo) -> str:
    if info.kdf is None:
        return f"no: {PLAINTEXT_LABEL}"
    return f"yes: {CIPHER}, its key derived from the passphrase by {describe_kdf(info.kdf)}"


def _info_lines(info: KeyInfo) -> list[str]:
    return [f"name:        {info.name}",
            f"address:     {info.address_text}",
            f"public key:  {info.public_key.hex()}",
            f"encrypted:   {_protection(info)}",
            f"file:        {info.path}"]


def _same_key(store: Keystore, info: KeyInfo) -> tuple[str, ...]:
    twins = [k.name for k in store.list() if k.address == info.address and k.name != info.name]
    if not twins:
        return ()
    return (f"note: key {twins[0]!r} in {store.directory} holds the same address",)


def new_key(store: Keystore, name: str, passphrase: PassphraseSource) -> Report:
    store.check_new(name)  # before asking for a passphrase twice
    info = store.new(name, passphrase.get(name, new=True))
    assert info.kdf is not None
    return Report([f"created key {name!r}: {info.address_text}",
                   f"  in {info.path} (mode 0600), encrypted with your passphrase "
                   f"({describe_kdf(info.kdf)})",
                   "  without the passphrase the key can neither be used nor recovered; "
                   f"back the file up with `agora keys export {name} > {name}.json`"],
                  info_json(info))


def list_keys(store: Keystore) -> Report:
    keys, problems = store.scan()
    warnings = tuple(f"skipped a key file: {exc}" for exc in problems)
    data = {"keystore": str(store.directory), "keys": [info_json(k) for k in keys],
            "problems": [str(exc) for exc in problems]}
    if not keys:
        return Report([f"no keys in {store.directory}; create one with "
                       "`agora keys new NAME`"], data, warnings)
    width = max(len(k.name) for k in keys)
    lines = [f"keys in {store.directory}:"]
    lines += [f"  {k.name:<{width}}  {k.address_text}  "
              f"{'encrypted' if k.encrypted else PLAINTEXT_LABEL}" for k in keys]
    return Report(lines, data, warnings)


def show_key(store: Keystore, name: str) -> Report:
    info = store.info(name)
    return Report(_info_lines(info), info_json(info))


def import_key(store: Keystore, name: str, *, file: str | None, seed_file: str | None,
               seed_prompt: Prompt | None, passphrase: PassphraseSource) -> Report:
    """From an exported key file (kept encrypted as it is) or from a seed (encrypted
    with a new passphrase): ``file``, else ``seed_file``, else ``seed_prompt``."""
    store.check_new(name)
    if file is not None:
        info = store.import_file(name, _read_text(file, "key file"))
        how = "its own passphrase and KDF parameters, as exported"
    else:
        seed = _parse_seed(_seed_text(seed_file, seed_prompt))
        info = store.import_seed(name, seed, passphrase.get(name, new=True))
        how = "your new passphrase"
    return Report([f"imported key {name!r}: {info.address_text}",
                   f"  in {info.path} (mode 0600), encrypted with {how}"],
                  info_json(info), _same_key(store, info))


def export_key(store: Keystore, name: str) -> Report:
    """The encrypted key file, as it is (``--json`` gives the same object)."""
    text = store.export_file(name)
    return Report([text.rstrip("\n")], json.loads(text))


def export_seed(store: Keystore, name: str, passphrase: PassphraseSource,
                confirm: Confirm | None) -> Report:
    """The seed in clear, only after a yes (``confirm``; None: no terminal)."""
    info = store.info(name)
    question = (f"Print the seed of key {name!r} ({info.address_text}) in clear? Anyone "
                "who sees it can spend from this address")
    if confirm is None:
        raise KeystoreError("not printing a seed in clear without confirmation, and there "
                            "is no terminal to ask on; add --yes to confirm")
    if not confirm(question):
        raise KeystoreError("nothing was exported")
    key = store.unlock(name, passphrase.get(name) if info.encrypted else None)
    return Report([key.seed.hex()],
                  {"name": name, "address": address_to_text(key.address),
                   "public_key": key.public_key.hex(), "seed": key.seed.hex()},
                  (f"warning: that is the seed of {name!r} in clear: whoever sees it can "
                   "spend from its address; do not leave it in a shell history or a log",))


def delete_key(store: Keystore, name: str, confirm: Confirm | None) -> Report:
    """Delete key ``name`` after a yes; a file that cannot be read can be deleted too."""
    path = store.path(name)
    address: str | None = None
    try:
        address = store.info(name).address_text
        what = f"key {name!r} ({address})"
    except BadKeyFile as exc:
        what = f"the key file {path}, which cannot be used ({exc})"
    if confirm is None:
        raise KeystoreError(f"not deleting key {name!r} without confirmation, and there is "
                            "no terminal to ask on; add --yes to confirm")
    if not confirm(f"Delete {what}? Without a backup it is gone for good"):
        raise KeystoreError(f"key {name!r} was not deleted")
    store.delete(name)
    return Report([f"deleted {what}: {path}" if address else f"deleted {path}"],
                  {"deleted": name, "address": address, "path": str(path)})


def _read_text(path: str, what: str) -> str:
    try:
        with Path(path).expanduser().open("rb") as f:
            raw = f.read(MAX_FILE_SIZE + 1)
    except OSError as exc:
        raise KeystoreError(f"cannot read {what} {path}: {exc.strerror}") from None
    if len(raw) > MAX_FILE_SIZE:
        raise KeystoreError(f"{path} is too large to be a {what}")
    try:
        return raw.decode()
    except UnicodeDecodeError:
        raise KeystoreError(f"{what} {path} is not UTF-8 text") from None


def _seed_text(seed_file: str | None, seed_prompt: Prompt | None) -> str:
    if seed_file is not None:
        lines = _read_text(seed_file, "seed file").splitlines()
        return lines[0] if lines else ""
    if seed_prompt is None:
        raise KeystoreError("no seed to import, and there is no terminal to ask for it on; "
                            "give --seed-file FILE (or --file EXPORTED.json)")
    return seed_prompt(f"Seed to import ({2 * SEED_SIZE} hex digits)")


def _parse_seed(text: str) -> bytes:
    text = text.strip()
    body = text[2:] if text[:2].lower() == "0x" else text
    try:
        seed = bytes.fromhex(body)
    except ValueError:
        seed = b""
    if len(seed) != SEED_SIZE:
        raise KeystoreError(f"a seed is {2 * SEED_SIZE} hex digits ({SEED_SIZE} bytes); "
                            "that is not one")
    return seed


def open_keystore(keystore: str | None, home: str | None) -> Keystore:
    """The keystore named by ``--keystore`` / ``--home`` (see :func:`keystore_dir`)."""
    return Keystore(keystore_dir(keystore, home))


def passphrase_source(file: str | None, *, prompt: Prompt | None,
                      warn: Callable[[str], None]) -> PassphraseSource:
    """``--passphrase-file``, else ``AGORA_PASSPHRASE``, else ``prompt`` (None: no
    terminal)."""
    return PassphraseSource(file=file, env=os.environ, prompt=prompt, warn=warn)
