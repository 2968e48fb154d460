"""How a wallet command runs: open the session, call the action, print its report in
sentences (or one JSON object with ``--json``), and turn every refusal into a sentence
and an exit code — 0 done, 1 refused or reverted, 2 usage — never a traceback."""

from __future__ import annotations

import importlib
import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .errors import BadInput, Refused
from .keystore import KeystoreError, KeystoreUsageError
from .text import printable

#: What a node's malformed answer raises when the wallet reads it.
_UNREADABLE = (KeyError, TypeError, ValueError, AttributeError, IndexError, OverflowError)


@dataclass(frozen=True)
class Invocation:
    """``module.function(session, *args, **kwargs)`` of node.wallet, named so the CLI
    imports nothing heavy before it runs."""

    function: str
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    module: str = "actions"


def invoke(function: str, *args: Any, module: str = "actions", **kwargs: Any) -> Invocation:
    return Invocation(function, args, kwargs, module)


def run(invocation: Invocation, *, node: str | None, home: str | None,
        keystore: str | None, passphrase_file: str | None = None, as_json: bool = False,
        timeout: float = 60.0,
        prompt: Callable[[str], str] | None = None,
        echo: Callable[[str], None] = print,
        err: Callable[[str], None] = lambda t: print(t, file=sys.stderr)) -> int:
    from .passphrase import PassphraseSource
    from .session import open_session

    source = PassphraseSource(file=passphrase_file, env=os.environ,
                              prompt=prompt if prompt is not None and sys.stdin.isatty()
                              else None, warn=err)
    session = None
    try:
        _check_text(invocation)
        session = open_session(node=node, home=home, keystore=keystore,
                               passphrase=source.for_key, timeout=timeout)
        module = importlib.import_module(f"node.wallet.{invocation.module}")
        kwargs = dict(invocation.kwargs)
        if "progress" in kwargs and kwargs["progress"] is True:
            kwargs["progress"] = None if as_json else err
        report = getattr(module, invocation.function)(session, *invocation.args, **kwargs)
    except Refused as exc:
        return _fail(str(exc), exc.exit_code, exc.details, as_json, echo, err)
    except KeystoreUsageError as exc:
        return _fail(str(exc), BadInput.exit_code, {}, as_json, echo, err)
    except KeystoreError as exc:
        return _fail(str(exc), Refused.exit_code, {}, as_json, echo, err)
    except _UNREADABLE as exc:
        # Every answer the wallet reads comes from the node; one it cannot read (a
        # field missing or of the wrong type) ends the command with a sentence.
        url = session.node_url if session is not None else "the node"
        return _fail(f"The node at {url} gave an answer this wallet cannot read "
                     f"({type(exc).__name__}: {exc}); is it an Agora node of this version?"
                     + _submitted(session), Refused.exit_code, {}, as_json, echo, err)
    except Exception as exc:  # noqa: BLE001 -- the last line: a sentence, not a traceback
        return _fail(f"The wallet stopped on an unexpected error ({type(exc).__name__}: "
                     f"{exc}). This is a bug in the wallet; please report it."
                     + _submitted(session), Refused.exit_code, {}, as_json, echo, err)
    finally:
        if session is not None:
            session.close()
    if as_json:
        echo(json.dumps({"ok": True, **report.data}, indent=2, default=str))
    else:
        for line in report.lines:
            echo(printable(line))
    return 0


def _check_text(invocation: Invocation) -> None:
    """Text that is not Unicode (bytes the terminal's encoding could not decode) is
    refused before anything happens: it cannot be signed as a string."""
    named = [("an argument", a) for a in invocation.args] + list(invocation.kwargs.items())
    for name, value in named:
        if isinstance(value, str):
            try:
                value.encode()
            except UnicodeEncodeError:
                what = name if name == "an argument" else "--" + name.replace("_", "-")
                raise BadInput(f"{what} holds bytes that are not UTF-8 text; type it again "
                               "in a UTF-8 terminal") from None


def _submitted(session: Any) -> str:
    sent = getattr(session, "submitted", None) or []
    if not sent:
        return " Nothing was sent."
    return "".join(f" Transaction {h} was submitted: check it with `agora query tx {h}`."
                   for h in sent)


def _fail(message: str, code: int, details: dict[str, Any], as_json: bool,
          echo: Callable[[str], None], err: Callable[[str], None]) -> int:
    if as_json:
        echo(json.dumps({"ok": False, "error": message, "exit_code": code, **details},
                        indent=2, default=str))
    else:
        err(printable(f"Error: {message}", limit=4_000))
    return code
