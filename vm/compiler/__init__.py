"""The contract language compiler: ``.agc`` source -> VM bytecode and an ABI.

Passes, each with its own data: the stdlib ``ast`` parses the source; the checker
(:mod:`.checker`) reads the declarations, checks and annotates the types of every
function and refuses what the language does not have, with file, line and column; the
code generator (:mod:`.codegen`) lowers the checked contract to VM assembly, which
:func:`vm.asm.assemble` turns into bytecode. A limit the assembler finds (code too
large for the VM, say) is reported at the source statement whose code crossed it.

Records live in storage and are read and written field by field (``SLOADR`` /
``SSTORER``: the fields share the record's one state key), or whole; a local may
hold a whole record and a method may return one (PACKed into one value). An interface
call ``Name(address).method(args)`` is a VM ``CALL`` (``STATICCALL`` for a ``@view``)
by the method's typed selector, whose failure reverts the caller with the callee's
reason.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

from ..asm import assemble
from ..errors import AssemblyError
from .checker import Contract, check_module
from .codegen import generate
from .errors import CompileError, error_at
from .types import ABI_NAMES, RecordType, Type, selector, signature


@dataclass(frozen=True)
class Compiled:
    """A compiled contract: bytecode, its ABI and the assembly it came from."""

    code: bytes
    abi: dict
    asm: str


def _abi_type(t: Type) -> str:
    return t.name if isinstance(t, RecordType) else ABI_NAMES[t]


def abi_of(contract: Contract) -> dict:
    """Methods (name, inputs, output, mutability, and the selector contracts call them
    by), events, and the records that methods return (by name: their fields)."""
    methods = []
    records: dict[str, list[dict]] = {}
    for fn in contract.functions.values():
        if fn.kind == "internal":
            continue
        entry = {
            "name": fn.name,
            "inputs": [{"name": n, "type": ABI_NAMES[t]} for n, t in fn.params],
            "output": None if fn.returns is None else _abi_type(fn.returns),
            "mutability": "view" if fn.kind == "view" else
                          "payable" if fn.payable else "nonpayable",
        }
        if fn.kind != "init":
            entry["signature"] = signature(fn.name, fn.params, fn.returns)
            entry["selector"] = selector(fn.name, fn.params, fn.returns)
        methods.append(entry)
        if isinstance(fn.returns, RecordType):
            records[fn.returns.name] = [{"name": n, "type": ABI_NAMES[t]}
                                        for n, t in fn.returns.fields]
    events = [{"name": ev.name, "fields": [{"name": n, "type": ABI_NAMES[t]}
                                           for n, t in ev.fields]}
              for ev in contract.events.values()]
    return {"methods": methods, "events": events, "records": records}


def compile_source(source: str, file: str = "<source>") -> Compiled:
    """Compile contract source text; raises CompileError naming file, line and column."""
    try:
        module = ast.parse(source, filename=file)
    except SyntaxError as exc:
        raise CompileError(file, exc.lineno or 1, exc.offset or 1,
                           f"syntax error: {exc.msg}") from None
    contract = check_module(module, file)
    asm, where = generate(contract)
    try:
        code = assemble(asm, f"{file} (generated assembly)")
    except AssemblyError as exc:  # e.g. a contract too large for the VM
        node = where[exc.line - 1] if 0 < exc.line <= len(where) else None
        hint = (": split the contract into contracts that call each other, or shorten it"
                if "limit" in exc.reason else "")
        raise error_at(file, node, f"the VM cannot hold this: {exc.reason}{hint}") from None
    return Compiled(code, abi_of(contract), asm)


def compile_file(path: str | Path) -> Compiled:
    path = Path(path)
    try:
        source = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CompileError(str(path), 1, 1, f"cannot read: {exc}") from None
    return compile_source(source, str(path))


__all__ = ["Compiled", "CompileError", "compile_file", "compile_source"]
