"""The wallet's two kinds of failure, each a sentence for the person at the keyboard:
:class:`Refused` (exit 1: the node, the keystore or a contract said no, or nothing
could be reached) and :class:`BadInput` (exit 2: what was typed cannot be used)."""

from __future__ import annotations

from typing import Any


class Refused(Exception):
    """The action was refused or reverted; ``details`` go into ``--json`` output."""

    exit_code = 1

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.details = details


class BadInput(Refused):
    """An argument cannot be used as given (a bad address, amount, key name...)."""

    exit_code = 2
