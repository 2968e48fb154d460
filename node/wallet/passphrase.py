"""Where a key's passphrase comes from, in this order:

1. ``--passphrase-file FILE``: its first line, without the line ending;
2. the ``AGORA_PASSPHRASE`` environment variable (for scripts and CI);
3. a hidden prompt on the terminal, injected by the CLI (asked twice for a new key).

With none of them and no terminal to ask on, it fails with a sentence instead of
waiting on a stdin nobody types into. An empty passphrase is refused from any source.

A passphrase file that group or others can read is used, with a warning, not refused:
secrets mounted by container runtimes and CI systems are commonly mode 0444 or 0644,
and the key file the passphrase opens is itself refused unless it is mode 0600.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from .keystore import KeystoreError

ENV_VAR = "AGORA_PASSPHRASE"
MAX_FILE_READ = 64 * 1024

Prompt = Callable[[str], str]  # shows the text, returns what was typed (hidden)


class PassphraseError(KeystoreError):
    """No usable passphrase: none given, empty, unreadable, or the two entries differ."""


def _ignore(message: str) -> None:
    pass


@dataclass(frozen=True)
class PassphraseSource:
    """One command's way to a passphrase. ``prompt`` is None when there is no terminal;
    ``warn`` receives warnings (the CLI prints them on stderr)."""

    file: str | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    prompt: Prompt | None = None
    warn: Callable[[str], None] = _ignore

    def get(self, name: str, *, new: bool = False) -> str:
        """The passphrase for key ``name``; ``new``: one being chosen for it, so a
        prompt asks twice and the two must match."""
        if self.file is not None:
            return self._from_file(self.file)
        if ENV_VAR in self.env:
            value = self.env[ENV_VAR]
            if not value:
                raise PassphraseError(f"{ENV_VAR} is set but empty; an empty passphrase is "
                                      "refused")
            try:
                value.encode()
            except UnicodeEncodeError:
                raise PassphraseError(f"{ENV_VAR} holds bytes that are not UTF-8 text; set "
                                      "it again from a UTF-8 terminal, or use "
                                      "--passphrase-file") from None
            return value
        if self.prompt is None:
            raise PassphraseError(
                f"key {name!r} needs a passphrase and there is no terminal to ask for it "
                f"on; set {ENV_VAR} or use --passphrase-file FILE")
        if not new:
            return _nonempty(self.prompt(f"Passphrase for key {name!r}"))
        first = _nonempty(self.prompt(f"Choose a passphrase for key {name!r}"))
        if self.prompt("Repeat the passphrase") != first:
            raise PassphraseError("the two passphrases do not match; nothing was written")
        return first

    def for_key(self, name: str) -> str:
        """The passphrase to unlock key ``name`` (a callable for wallet sessions)."""
        return self.get(name)

    def _from_file(self, path: str) -> str:
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError as exc:
            raise PassphraseError(f"cannot read passphrase file {path}: {exc.strerror}"
                                  ) from None
        try:
            st = os.fstat(fd)
            if stat.S_ISREG(st.st_mode) and st.st_mode & 0o077:
                self.warn(f"warning: passphrase file {path} can be read by others (mode "
                          f"{oct(st.st_mode & 0o777)}); consider: chmod 600 {path}")
            data = b""
            # Only the first line is wanted: stop there (the file may be a pipe).
            while b"\n" not in data and len(data) < MAX_FILE_READ:
                chunk = os.read(fd, MAX_FILE_READ - len(data))
                if not chunk:
                    break
                data += chunk
        except OSError as exc:
            raise PassphraseError(f"cannot read passphrase file {path}: {exc.strerror}"
                                  ) from None
        finally:
            os.close(fd)
        if b"\n" not in data and len(data) >= MAX_FILE_READ:
            raise PassphraseError(f"the first line of passphrase file {path} is longer than "
                                  f"{MAX_FILE_READ} bytes; is it the right file?")
        line = data.split(b"\n", 1)[0].removesuffix(b"\r")
        try:
            text = line.decode()
        except UnicodeDecodeError:
            raise PassphraseError(f"passphrase file {path} is not UTF-8 text") from None
        if not text:
            raise PassphraseError(f"the first line of passphrase file {path} is empty; put "
                                  "the passphrase on it (an empty passphrase is refused)")
        return text


def _nonempty(value: str) -> str:
    if not value:
        raise PassphraseError("an empty passphrase is refused")
    return value
