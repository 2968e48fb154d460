"""`agora contract compile` and `agora contract run`: the logic behind the commands.

``run`` deploys a contract into a fresh in-memory state (:mod:`vm.testing`), with its
constructor's arguments if it takes any, calls one method or a sequence of calls
against that one state, and reports each outcome as a
plain dict: ``status`` (ok, reverted, out_of_gas, error), ``return``, ``gas_used``,
``events`` (``{"name", "args"}``) and ``reason``. Arguments given as text on the
command line are read by the method's ABI types.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from chain.address import address_to_text
from chain.block import ReceiptStatus
from vm.compiler import Compiled, compile_file
from vm.compiler.abi import AbiError
from vm.testing import DEFAULT_SENDER, Contract, Env, Reverted

from . import chainview


class ToolError(Exception):
    """A mistake in what the user asked for (an argument, a file): says which."""


def compile_to(path: str | Path, out_dir: str | Path | None) -> tuple[Compiled, list[Path]]:
    """Compile; with ``out_dir`` also write NAME.bin (hex) and NAME.abi.json there."""
    compiled = compile_file(path)
    written = []
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        stem = Path(path).stem
        for name, text in ((f"{stem}.bin", compiled.code.hex() + "\n"),
                           (f"{stem}.abi.json", json.dumps(compiled.abi, indent=2) + "\n")):
            target = out / name
            tmp = target.with_suffix(target.suffix + ".tmp")
            tmp.write_text(text, encoding="utf-8")
            tmp.replace(target)  # atomic: no half-written file left behind
            written.append(target)
    return compiled, written


def parse_address(text: str) -> bytes:
    """An address from the command line or a --calls file, read by the node's one
    address parser (:func:`node.chainview.parse_address`: ``agora1...`` text or 20
    bytes of hex, with or without ``0x``); ToolError says which text and why not."""
    try:
        return chainview.parse_address(text)
    except ValueError as exc:
        raise ToolError(f"not an address: {text!r} ({exc})") from None


def parse_value(type_name: str, raw: Any, what: str) -> object:
    """A command-line text (or a JSON value from --calls) as a value of ``type_name``."""
    try:
        if type_name in ("uint", "int"):
            if type(raw) is int:
                return raw
            if isinstance(raw, str):
                return int(raw, 0)
        elif type_name == "bool":
            if type(raw) is bool:
                return raw
            if isinstance(raw, str) and raw.lower() in ("true", "false"):
                return raw.lower() == "true"
        elif type_name == "Address" and isinstance(raw, str):
            return parse_address(raw)
        elif type_name == "bytes" and isinstance(raw, str):
            if raw.startswith("0x"):
                return bytes.fromhex(raw[2:])
        elif type_name == "str" and isinstance(raw, str):
            return raw
    except ValueError:
        pass
    hint = {"uint": "a whole number", "int": "a whole number", "bool": "true or false",
            "Address": "an agora1... address", "bytes": "0x-prefixed hex",
            "str": "text"}.get(type_name, type_name)
    raise ToolError(f"{what}: expected {hint}, got {raw!r}")


def _json_value(value: object) -> object:
    if isinstance(value, bytes):
        return address_to_text(value) if len(value) == 20 else "0x" + value.hex()
    if isinstance(value, dict):  # a record a method returned: its fields
        return {k: _json_value(v) for k, v in value.items()}
    return value


def _report(contract: Contract, method: dict, args: list, sender: bytes, value: int,
            gas: int | None) -> dict:
    typed = tuple(parse_value(i["type"], a, f"{method['name']} argument {i['name']}")
                  for i, a in zip(method["inputs"], args, strict=True))
    try:
        r = contract.invoke(method, typed, sender=sender, value=value, gas=gas)
    except AbiError as exc:
        raise ToolError(f"{method['name']}: {exc}") from None
    return {
        "status": ReceiptStatus.NAMES[r.status],
        "return": _json_value(r.value) if method["output"] is not None else None,
        "gas_used": r.gas_used,
        "events": [{"name": name, "args": {k: _json_value(v) for k, v in fields.items()}}
                   for name, fields in r.events],
        "reason": r.reason,
    }


def run(path: str | Path, calls: list[dict], *, sender: bytes = DEFAULT_SENDER,
        gas: int | None = None, init_args: list | tuple = (), init_value: int = 0
        ) -> list[dict]:
    """Deploy ``path`` with constructor arguments ``init_args`` (text or JSON values,
    read by the constructor's types) and make ``calls`` (dicts with method, args,
    sender, value)."""
    compiled = compile_file(path)
    init = next((m for m in compiled.abi["methods"] if m["name"] == "__init__"), None)
    inputs = init["inputs"] if init is not None else []
    if len(init_args) != len(inputs):
        wanted = ", ".join(f"{i['name']}: {i['type']}" for i in inputs) or "nothing"
        raise ToolError(f"the constructor takes {len(inputs)} argument(s) ({wanted}); "
                        f"give each with --init, in order"
                        + (f" (got {len(init_args)})" if init_args else ""))
    typed = [parse_value(i["type"], a, f"constructor argument {i['name']}")
             for i, a in zip(inputs, init_args, strict=True)]
    env = Env()
    try:
        contract = env.deploy(compiled, *typed, sender=sender, value=init_value)
    except AbiError as exc:
        raise ToolError(f"constructor: {exc}") from None
    except Reverted as exc:
        raise ToolError(f"deploying the contract failed: {exc.reason}") from None
    results = []
    for i, call in enumerate(calls):
        name = call.get("method")
        where = f"call {i}" if len(calls) > 1 else "the call"
        if not isinstance(name, str):
            raise ToolError(f"{where}: needs a method name")
        try:
            method = contract.method_abi(name)
        except KeyError:
            names = ", ".join(m["name"] for m in compiled.abi["methods"]
                              if m["name"] != "__init__")
            raise ToolError(f"{where}: no method {name!r} (methods: {names})") from None
        args = call.get("args", [])
        if not isinstance(args, list) or len(args) != len(method["inputs"]):
            raise ToolError(f"{name} takes {len(method['inputs'])} argument(s): "
                            + ", ".join(f"{i['name']}: {i['type']}" for i in method["inputs"]))
        who = call.get("sender")
        value = call.get("value", 0)
        if type(value) is not int or value < 0:
            raise ToolError(f"{where}: value must be a non-negative whole number")
        results.append(_report(contract, method, args,
                               parse_address(who) if isinstance(who, str) else sender,
                               value, gas))
    return results


def load_calls(path: str | Path) -> list[dict]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ToolError(f"{path}: {exc}") from None
    if not isinstance(data, list) or not all(isinstance(c, dict) for c in data):
        raise ToolError(f"{path}: expected a JSON list of {{\"method\", \"args\", \"sender\", "
                        "\"value\"}} objects")
    return data
