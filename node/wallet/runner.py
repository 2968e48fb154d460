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
        prompt: Callable[[str], str] | None = None,
        echo: Callable[[str], None] = print,
        err: Callable[[str], None] = lambda t: print(t, file=sys.stderr)) -> int:
    from .passphrase import PassphraseSource
    from .session import open_session

    source = PassphraseSource(file=passphrase_file, env=os.environ,
                              prompt=prompt if prompt is not None and sys.stdin.isatty()
                              else None, warn=err)
    try:
        session = open_session(node=node, home=home, keystore=keystore,
                               passphrase=source.for_key)
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
    if as_json:
        echo(json.dumps({"ok": True, **report.data}, indent=2, default=str))
    else:
        for line in report.lines:
            echo(line)
    return 0


def _fail(message: str, code: int, details: dict[str, Any], as_json: bool,
          echo: Callable[[str], None], err: Callable[[str], None]) -> int:
    if as_json:
        echo(json.dumps({"ok": False, "error": message, "exit_code": code, **details},
                        indent=2, default=str))
    else:
        err(f"Error: {message}")
    return code
