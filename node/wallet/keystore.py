"""The wallet keystore: one JSON file per key, ``NAME.json``, mode 0600, in a directory
made mode 0700 (``<home>/keys`` by default, beside the node's own keys).

A wallet key file holds the 32-byte ed25519 seed sealed with libsodium's SecretBox
(XSalsa20-Poly1305) under a key derived from the passphrase with Argon2id. Like
geth's keystore v3 keeps its scrypt parameters, the file carries everything needed
to open it again, so the cost can be raised later without breaking old files::

    {"version": 1, "name": "alice", "address": "agora1...", "public_key": hex,
     "crypto": {"cipher": "xsalsa20-poly1305", "ciphertext": hex, "nonce": hex,
                "kdf": "argon2id",
                "kdfparams": {"opslimit": 3, "memlimit": 268435456, "salt": hex}}}

The address and public key sit in the clear so that ``list``, ``show`` and "whose is
this" need no passphrase; after decrypting, the seed must give that very public key,
so an edited file cannot pass off someone else's address as ours.

A file is someone else's input: its size, its shape and its Argon2id cost are all
bounded before we spend anything on it (a hostile ``memlimit`` would otherwise make
us allocate whatever it says). Files in the plaintext format ``node.home.write_key``
writes (``{"type": "ed25519", "public_key", "seed"}``) are the passphrase-free
localnet demo and dev keys: they are read and listed, marked unencrypted, but this
module never writes one.
"""

from __future__ import annotations

import json
import os
import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nacl.exceptions
import nacl.pwhash.argon2id as argon2id
import nacl.secret
import nacl.utils

from chain.address import address_from_text, address_to_text
from chain.errors import InvalidAddress, LocalError
from chain.keys import PUBLIC_KEY_SIZE, SEED_SIZE, PrivateKey, address_of
from storage.files import write_atomic

VERSION = 1
CIPHER = "xsalsa20-poly1305"
KDF = "argon2id"

NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
# The node's own keys live in the same directory; they are not the wallet's to touch.
RESERVED_NAMES = frozenset({"node_key", "validator_key"})
PLAINTEXT_LABEL = "unencrypted (localnet/dev key)"

DEFAULT_OPSLIMIT = argon2id.OPSLIMIT_MODERATE
DEFAULT_MEMLIMIT = argon2id.MEMLIMIT_MODERATE
# What a file may make us spend. Nothing costlier than libsodium's own "sensitive"
# preset (1 GiB, 4 passes; a few seconds) is ever needed, so nothing costlier is read:
# a memlimit is an allocation, and a file's word must not be able to exhaust memory.
MAX_MEMLIMIT = argon2id.MEMLIMIT_SENSITIVE
MAX_OPSLIMIT = 32
MAX_WORK = argon2id.OPSLIMIT_SENSITIVE * argon2id.MEMLIMIT_SENSITIVE  # passes x bytes
# A key file is about 600 bytes; anything much larger is not one.
MAX_FILE_SIZE = 16 * 1024


class KeystoreError(Exception):
    """Base of the keystore's errors; the message is a sentence for the user."""


class KeystoreUsageError(KeystoreError):
    """The caller asked for something that cannot name a key (the CLI exits 2)."""


class BadName(KeystoreUsageError):
    """Not a usable key name: wrong characters, too long, or one of the node's keys."""


class UnknownKey(KeystoreUsageError):
    """No key of that name; the message lists the names that do exist."""


class KeyExists(KeystoreError):
    """A key of that name exists already; keys are never overwritten."""


class BadKeyFile(KeystoreError):
    """A key file cannot be read, is malformed, or asks for an unreasonable KDF cost."""


class UnsafePermissions(BadKeyFile):
    """A key file that group or others may read or write is refused, as ssh does."""


class WrongPassphrase(KeystoreError):
    """The passphrase does not open the key (or the ciphertext was altered)."""


class PassphraseNeeded(KeystoreError):
    """An encrypted key was to be unlocked without a passphrase."""


@dataclass(frozen=True)
class KdfParams:
    """Argon2id parameters as stored in a key file."""

    opslimit: int
    memlimit: int
    salt: bytes

    def to_json(self) -> dict[str, Any]:
        return {"opslimit": self.opslimit, "memlimit": self.memlimit, "salt": self.salt.hex()}


@dataclass(frozen=True)
class KeyInfo:
    """What can be known about a key without its passphrase."""

    name: str
    address: bytes
    public_key: bytes
    encrypted: bool
    path: Path
    kdf: KdfParams | None  # None for a plaintext (localnet/dev) key

    @property
    def address_text(self) -> str:
        return address_to_text(self.address)


@dataclass(frozen=True)
class _Sealed:
    nonce: bytes
    ciphertext: bytes


@dataclass(frozen=True)
class _Loaded:
    info: KeyInfo
    sealed: _Sealed | None  # encrypted keys
    seed: bytes | None  # plaintext keys
    text: str


def keystore_dir(keystore: str | None, home: str | None,
                 env: Mapping[str, str] | None = None) -> Path:
    """``--keystore DIR``, else ``<home>/keys`` where home is ``--home DIR``, else
    ``$AGORA_HOME``, else ``~/.agora``."""
    if keystore:
        return Path(keystore).expanduser()
    if not home:
        home = (os.environ if env is None else env).get("AGORA_HOME") or "~/.agora"
    return Path(home).expanduser() / "keys"


def check_name(name: str) -> None:
    """Raise BadName unless ``name`` can name a wallet key file."""
    if name in RESERVED_NAMES:
        raise BadName(f"{name!r} is the node's own key, not a wallet key; pick another name")
    if not NAME_RE.fullmatch(name):
        raise BadName(f"{name!r} is not a key name: use 1-64 characters of A-Z, a-z, 0-9, "
                      "'_', '.', '-', starting with a letter or digit")


def check_kdf_params(opslimit: int, memlimit: int) -> None:
    """Raise BadKeyFile unless the Argon2id cost is one we are willing to pay."""
    if type(opslimit) is not int or type(memlimit) is not int:
        raise BadKeyFile("the argon2id opslimit and memlimit must be integers")
    if not argon2id.OPSLIMIT_MIN <= opslimit <= MAX_OPSLIMIT:
        raise BadKeyFile(f"argon2id opslimit {opslimit} is outside "
                         f"{argon2id.OPSLIMIT_MIN}..{MAX_OPSLIMIT}")
    if not argon2id.MEMLIMIT_MIN <= memlimit <= MAX_MEMLIMIT:
        raise BadKeyFile(f"argon2id memlimit {memlimit} bytes is outside "
                         f"{argon2id.MEMLIMIT_MIN}..{MAX_MEMLIMIT} ({_mib(MAX_MEMLIMIT)})")
    if opslimit * memlimit > MAX_WORK:
        raise BadKeyFile(f"argon2id cost opslimit {opslimit} x memlimit {_mib(memlimit)} is "
                         "more than libsodium's 'sensitive' preset; refusing to spend it")


def _mib(n: int) -> str:
    """A byte count for people: ``256 MiB``, ``8 KiB``, ``1 GiB``."""
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size and n % size == 0:
            return f"{n // size} {unit}"
    return f"{n} bytes"


def describe_kdf(kdf: KdfParams) -> str:
    """``argon2id, opslimit 3, memlimit 256 MiB``."""
    return f"{KDF}, opslimit {kdf.opslimit}, memlimit {_mib(kdf.memlimit)}"


class Keystore:
    """The key files in one directory. ``opslimit``/``memlimit`` are the Argon2id cost
    of keys this keystore writes; reading always uses the cost stored in the file."""

    def __init__(self, directory: Path | str, *, opslimit: int = DEFAULT_OPSLIMIT,
                 memlimit: int = DEFAULT_MEMLIMIT) -> None:
        check_kdf_params(opslimit, memlimit)  # never write a file we would refuse to read
        self.directory = Path(directory).expanduser()
        self.opslimit = opslimit
        self.memlimit = memlimit

    # ------------------------------------------------------------------ reading

    def path(self, name: str) -> Path:
        check_name(name)
        return self.directory / f"{name}.json"

    def names(self) -> list[str]:
        """The names of the key files here (not checked), sorted."""
        try:
            entries = sorted(self.directory.glob("*.json"))
        except OSError:
            return []
        return [p.stem for p in entries
                if NAME_RE.fullmatch(p.stem) and p.stem not in RESERVED_NAMES]

    def scan(self) -> tuple[list[KeyInfo], list[BadKeyFile]]:
        """Every key here, and what is wrong with the files that could not be read."""
        keys: list[KeyInfo] = []
        problems: list[BadKeyFile] = []
        for name in self.names():
            try:
                keys.append(self.info(name))
            except BadKeyFile as exc:
                problems.append(exc)
            except UnknownKey:  # deleted while we looked
                pass
        return keys, problems

    def list(self) -> list[KeyInfo]:
        """Every readable key here, by name (see :meth:`scan` for the unreadable ones)."""
        return self.scan()[0]

    def info(self, name: str) -> KeyInfo:
        return self._load(name).info

    def address(self, name: str) -> bytes:
        """The key's address, without its passphrase."""
        return self._load(name).info.address

    def unlock(self, name: str, passphrase: str | None) -> PrivateKey:
        """The private key. An encrypted key needs its passphrase (PassphraseNeeded
        when it is None, WrongPassphrase when it does not open the key)."""
        loaded = self._load(name)
        info = loaded.info
        if loaded.seed is not None:
            return PrivateKey(loaded.seed)
        assert loaded.sealed is not None and info.kdf is not None
        if passphrase is None:
            raise PassphraseNeeded(f"key {name!r} is encrypted: its passphrase is needed")
        box = nacl.secret.SecretBox(_derive(passphrase, info.kdf))
        try:
            seed = box.decrypt(loaded.sealed.ciphertext, loaded.sealed.nonce)
        except nacl.exceptions.CryptoError:
            raise WrongPassphrase(f"wrong passphrase for key {name!r}") from None
        key = _key_from_seed(seed, info.path)
        if key.public_key != info.public_key:
            raise BadKeyFile(f"{info.path}: the decrypted key does not match the public key "
                             "and address in the file (the file was altered)")
        return key

    def export_file(self, name: str) -> str:
        """The key file's text, to back it up or move it (still encrypted)."""
        loaded = self._load(name)
        if not loaded.info.encrypted:
            raise KeystoreError(
                f"key {name!r} is {PLAINTEXT_LABEL}: its file holds the seed in clear, "
                "so there is no encrypted file to export; export its seed with "
                f"`agora keys export {name} --unsafe-plaintext`")
        return loaded.text

    def export_seed(self, name: str, passphrase: str | None) -> bytes:
        """The 32-byte seed in clear (handle with care)."""
        return self.unlock(name, passphrase).seed

    # ------------------------------------------------------------------ writing

    def new(self, name: str, passphrase: str) -> KeyInfo:
        """A fresh key, encrypted with ``passphrase``."""
        return self._write(name, PrivateKey.generate(), passphrase)

    def import_seed(self, name: str, seed: bytes, passphrase: str) -> KeyInfo:
        """Store an existing 32-byte seed, encrypted with ``passphrase``."""
        if type(seed) is not bytes or len(seed) != SEED_SIZE:
            raise KeystoreError(f"a seed is {SEED_SIZE} bytes ({2 * SEED_SIZE} hex digits)")
        return self._write(name, PrivateKey(seed), passphrase)

    def import_file(self, name: str, text: str) -> KeyInfo:
        """Store an exported (encrypted) key file under ``name``. Its encryption and KDF
        parameters are kept as they are; only its ``name`` field is changed."""
        path = self.check_new(name)
        body = _parse_json(text.encode(), "the key file to import")
        if "version" not in body and body.get("type") == "ed25519":
            raise KeystoreError(
                "that file holds an unencrypted key (the localnet/dev format); keys are "
                "only imported encrypted: import its seed instead, with "
                f"`agora keys import {name} --seed-file FILE`, and choose a passphrase")
        info, sealed = _parse_encrypted(body, path, "the key file to import")
        self._store(path, _render(name, info.public_key, info.kdf, sealed))
        return self.info(name)

    def delete(self, name: str) -> None:
        """Remove the key file. It is not read first: a broken file can be deleted too."""
        path = self.path(name)
        if not (path.exists() or path.is_symlink()):
            raise self._unknown(name)
        try:
            path.unlink()
        except FileNotFoundError:
            raise self._unknown(name) from None
        except OSError as exc:
            raise KeystoreError(f"cannot delete {path}: {exc.strerror}") from None

    def check_new(self, name: str) -> Path:
        """The path a new key ``name`` would take; KeyExists if it is taken."""
        path = self.path(name)
        if path.exists() or path.is_symlink():
            raise KeyExists(f"a key named {name!r} exists already ({path}); keys are never "
                            "overwritten: pick another name, or delete it first")
        return path

    # ------------------------------------------------------------------ inside

    def _write(self, name: str, key: PrivateKey, passphrase: str) -> KeyInfo:
        path = self.check_new(name)
        if not passphrase:
            raise KeystoreError("an empty passphrase is refused")
        kdf = KdfParams(self.opslimit, self.memlimit, nacl.utils.random(argon2id.SALTBYTES))
        nonce = nacl.utils.random(nacl.secret.SecretBox.NONCE_SIZE)
        box = nacl.secret.SecretBox(_derive(passphrase, kdf))
        sealed = _Sealed(nonce, box.encrypt(key.seed, nonce).ciphertext)
        self._store(path, _render(name, key.public_key, kdf, sealed))
        return self.info(name)

    def _store(self, path: Path, text: str) -> None:
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            write_atomic(path, text.encode(), mode=0o600)
        except OSError as exc:
            raise KeystoreError(f"cannot write {path}: {exc.strerror}") from None

    def _unknown(self, name: str) -> UnknownKey:
        names = self.names()
        there = f"the keys there are: {', '.join(names)}" if names else "it holds no keys"
        return UnknownKey(f"no key named {name!r} in {self.directory} ({there}); "
                          f"create one with `agora keys new {name}`")

    def _load(self, name: str) -> _Loaded:
        path = self.path(name)
        raw = _read_key_file(path)
        if raw is None:
            raise self._unknown(name)
        body = _parse_json(raw, str(path))
        text = raw.decode()  # _parse_json has decoded it already
        if "version" in body:
            info, sealed = _parse_encrypted(body, path, str(path), name)
            return _Loaded(info, sealed, None, text)
        if body.get("type") == "ed25519":
            key, public_key = _parse_plaintext(body, path)
            info = KeyInfo(name, key.address, public_key, False, path, None)
            return _Loaded(info, None, key.seed, text)
        raise BadKeyFile(f"{path} is not a key file (neither an encrypted wallet key with "
                         "'version' nor an ed25519 key with 'type')")


def _derive(passphrase: str, kdf: KdfParams) -> bytes:
    check_kdf_params(kdf.opslimit, kdf.memlimit)
    try:
        return argon2id.kdf(nacl.secret.SecretBox.KEY_SIZE, passphrase.encode(), kdf.salt,
                            opslimit=kdf.opslimit, memlimit=kdf.memlimit)
    except (MemoryError, nacl.exceptions.RuntimeError) as exc:
        raise KeystoreError(f"could not derive the key from the passphrase "
                            f"({describe_kdf(kdf)}): {exc or 'out of memory'}") from None


def _key_from_seed(seed: bytes, path: Path) -> PrivateKey:
    try:
        return PrivateKey(bytes(seed))
    except LocalError:
        raise BadKeyFile(f"{path}: the key inside is not a {SEED_SIZE}-byte seed") from None


def _read_key_file(path: Path) -> bytes | None:
    """The file's bytes, or None if there is none. Refuses a file others may read or
    write, anything but a regular file (a FIFO would block us), and a large file."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise BadKeyFile(f"cannot read key {path}: {exc.strerror}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise BadKeyFile(f"{path} is not a regular file")
        mode = st.st_mode & 0o777
        if mode & 0o077:
            raise UnsafePermissions(f"{path} is open to others (mode {oct(mode)}): anyone "
                                    "who can read it can try passphrases offline, and a key "
                                    f"file must be yours alone; run: chmod 600 {path}")
        if st.st_size > MAX_FILE_SIZE:
            raise BadKeyFile(f"{path} is {st.st_size} bytes: too large to be a key file")
        chunks: list[bytes] = []
        size = 0
        while size <= MAX_FILE_SIZE:
            chunk = os.read(fd, MAX_FILE_SIZE + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > MAX_FILE_SIZE:
            raise BadKeyFile(f"{path} is too large to be a key file")
        return b"".join(chunks)
    except OSError as exc:
        raise BadKeyFile(f"cannot read key {path}: {exc.strerror}") from None
    finally:
        os.close(fd)


def _parse_json(raw: bytes, where: str) -> dict[str, Any]:
    if len(raw) > MAX_FILE_SIZE:
        raise BadKeyFile(f"{where} is too large to be a key file")
    try:
        body = json.loads(raw.decode())
    except UnicodeDecodeError:
        raise BadKeyFile(f"{where} is not UTF-8 text") from None
    except (ValueError, RecursionError) as exc:
        raise BadKeyFile(f"{where} is not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise BadKeyFile(f"{where} is not a key file: expected a JSON object")
    return body


def _field(body: dict[str, Any], key: str, kind: type, where: str) -> Any:
    value = body.get(key)
    if type(value) is not kind:
        raise BadKeyFile(f"{where}: {key!r} is missing or not a {kind.__name__}")
    return value


def _hex(body: dict[str, Any], key: str, size: int, where: str) -> bytes:
    text = _field(body, key, str, where)
    try:
        value = bytes.fromhex(text)
    except ValueError:
        raise BadKeyFile(f"{where}: {key!r} is not hex") from None
    if len(value) != size:
        raise BadKeyFile(f"{where}: {key!r} is {len(value)} bytes, expected {size}")
    return value


def _parse_encrypted(body: dict[str, Any], path: Path, where: str,
                     name: str | None = None) -> tuple[KeyInfo, _Sealed]:
    version = body.get("version")
    if version != VERSION or type(version) is not int:
        raise BadKeyFile(f"{where}: key file version {version!r} is not one this agora reads "
                         f"(version {VERSION})")
    public_key = _hex(body, "public_key", PUBLIC_KEY_SIZE, where)
    address_text = _field(body, "address", str, where)
    try:
        address = address_from_text(address_text)
    except InvalidAddress as exc:
        raise BadKeyFile(f"{where}: 'address' {exc}") from None
    if address != address_of(public_key):
        raise BadKeyFile(f"{where}: the address is not the public key's")
    crypto = _field(body, "crypto", dict, where)
    if crypto.get("cipher") != CIPHER:
        raise BadKeyFile(f"{where}: cipher {crypto.get('cipher')!r} is not {CIPHER!r}")
    if crypto.get("kdf") != KDF:
        raise BadKeyFile(f"{where}: kdf {crypto.get('kdf')!r} is not {KDF!r}")
    params = _field(crypto, "kdfparams", dict, f"{where} crypto")
    ops, mem = params.get("opslimit"), params.get("memlimit")
    try:
        check_kdf_params(ops, mem)
    except BadKeyFile as exc:
        raise BadKeyFile(f"{where}: {exc}") from None
    salt = _hex(params, "salt", argon2id.SALTBYTES, f"{where} kdfparams")
    nonce = _hex(crypto, "nonce", nacl.secret.SecretBox.NONCE_SIZE, f"{where} crypto")
    ciphertext = _hex(crypto, "ciphertext", SEED_SIZE + nacl.secret.SecretBox.MACBYTES,
                      f"{where} crypto")
    info = KeyInfo(name or str(body.get("name", "")), address, public_key, True, path,
                   KdfParams(ops, mem, salt))
    return info, _Sealed(nonce, ciphertext)


def _parse_plaintext(body: dict[str, Any], path: Path) -> tuple[PrivateKey, bytes]:
    where = str(path)
    seed = _hex(body, "seed", SEED_SIZE, where)
    public_key = _hex(body, "public_key", PUBLIC_KEY_SIZE, where)
    key = _key_from_seed(seed, path)
    if key.public_key != public_key:
        raise BadKeyFile(f"{where}: the public key does not match the seed")
    return key, public_key


def _render(name: str, public_key: bytes, kdf: KdfParams | None, sealed: _Sealed) -> str:
    assert kdf is not None
    body = {
        "version": VERSION,
        "name": name,
        "address": address_to_text(address_of(public_key)),
        "public_key": public_key.hex(),
        "crypto": {
            "cipher": CIPHER,
            "ciphertext": sealed.ciphertext.hex(),
            "nonce": sealed.nonce.hex(),
            "kdf": KDF,
            "kdfparams": kdf.to_json(),
        },
    }
    return json.dumps(body, indent=2) + "\n"
