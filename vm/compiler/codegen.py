"""Pass 2: turn a checked :class:`Contract` into VM assembly (then :mod:`vm.asm` makes
the bytecode).

Layout of the generated code:

* a dispatcher at offset 0 compares ``METHOD`` with each public method (and
  ``__init__``, which the executor runs only at deploy), checks the call's value and
  argument count, decodes the arguments by type, ``CALLI``s the function and encodes
  its result for ``RETURN``; an unknown method reverts;
* each function is a ``CALLI`` target: its parameters arrive in locals 0..n-1, its
  return value is left on the stack at ``RETI``.

Values on the stack and in storage follow :mod:`vm.compiler.types`. Storage keys are
the variable's length-prefixed name, then for a map each key: integers as 32 bytes,
addresses as 20, byte strings and text by their SHA-256 (fixed widths, so nested keys
never run together).
"""

from __future__ import annotations

import ast

from .checker import _BINOPS, _COMPARE, Contract, Function
from .types import ADDRESS, BOOL, BYTES, INT, STR, UINT, MapType, RecordType, Type, name_key

_ARITH = {("+", False): "ADD", ("-", False): "SUB", ("*", False): "MUL", ("//", False): "DIV",
          ("%", False): "MOD", ("**", False): "EXP", ("+", True): "SADD", ("-", True): "SSUB",
          ("*", True): "SMUL", ("//", True): "SDIV", ("%", True): "SMOD"}


def _bytes_lit(data: bytes) -> str:
    return "0x" + data.hex()


class CodeGen:
    def __init__(self, contract: Contract) -> None:
        self.c = contract
        self.lines: list[str] = []
        self.n = 0
        self.fn: Function | None = None
        self.loop_labels: list[tuple[str, str]] = []  # (continue, break)

    def label(self, hint: str) -> str:
        self.n += 1
        return f"{hint}_{self.n}"

    def emit(self, *parts: object) -> None:
        self.lines.append("    " + " ".join(str(p) for p in parts))

    def place(self, label: str) -> None:
        self.lines.append(f"{label}:")

    def revert(self, reason: str) -> None:
        self.emit("PUSHB", _bytes_lit(reason.encode()))
        self.emit("REVERT")

    # ------------------------------------------------------------ the module

    def generate(self) -> str:
        entries = [f for f in self.c.functions.values() if f.kind in ("public", "view", "init")]
        for fn in entries:
            self.emit("METHOD")
            self.emit("PUSHB", _bytes_lit(fn.name.encode()))
            self.emit("EQ")
            self.emit("JUMPI", f"m_{fn.name}")
        if "__init__" not in self.c.functions:
            self.emit("METHOD")
            self.emit("PUSHB", _bytes_lit(b"__init__"))
            self.emit("EQ")
            self.emit("JUMPI", "m___init___default")
        self.revert("unknown method")
        if "__init__" not in self.c.functions:
            self.place("m___init___default")
            ok = self.label("novalue")
            self.emit("CALLVALUE")
            self.emit("ISZERO")
            self.emit("JUMPI", ok)
            self.revert("__init__ does not take a value")
            self.place(ok)
            self.emit("STOP")
        for fn in entries:
            self._entry(fn)
        for fn in self.c.functions.values():
            self._function(fn)
        return "\n".join(self.lines) + "\n"

    def _entry(self, fn: Function) -> None:
        self.place(f"m_{fn.name}")
        if not fn.payable:
            ok = self.label("novalue")
            self.emit("CALLVALUE")
            self.emit("ISZERO")
            self.emit("JUMPI", ok)
            self.revert(f"{fn.name} does not take a value")
            self.place(ok)
        ok = self.label("nargs")
        self.emit("NARGS")
        self.emit("PUSHI", len(fn.params))
        self.emit("EQ")
        self.emit("JUMPI", ok)
        self.revert(f"{fn.name} takes {len(fn.params)} argument(s)")
        self.place(ok)
        for i, (name, t) in enumerate(fn.params):
            self.emit("PUSHI", i)
            self.emit("ARG")
            self._decode_arg(t, f"{fn.name}: bad argument {name}")
        self.emit("CALLI", f"f_{fn.name}", len(fn.params))
        if fn.returns is None:
            self.emit("STOP")
        else:
            self._to_bytes(fn.returns)
            self.emit("RETURN")

    def _decode_arg(self, t: Type, reason: str) -> None:
        """bytes (an argument) -> the value of type ``t``, reverting on a bad encoding."""
        if t in (UINT, INT, BOOL):
            ok = self.label("arg")
            self.emit("DUP", 0)
            self.emit("LEN")
            self.emit("PUSHI", 1 if t is BOOL else 32)
            self.emit("GT")
            self.emit("ISZERO")
            self.emit("JUMPI", ok)
            self.revert(reason)
            self.place(ok)
            self.emit("BTOI")
            if t is BOOL:  # only 0 or 1
                ok = self.label("bool")
                self.emit("DUP", 0)
                self.emit("PUSHI", 2)
                self.emit("LT")
                self.emit("JUMPI", ok)
                self.revert(reason)
                self.place(ok)
        elif t is ADDRESS:
            ok = self.label("addr")
            self.emit("DUP", 0)
            self.emit("LEN")
            self.emit("PUSHI", 20)
            self.emit("EQ")
            self.emit("JUMPI", ok)
            self.revert(reason)
            self.place(ok)
        # bytes and str arrive as they are

    def _to_bytes(self, t: Type) -> None:
        if t in (UINT, INT, BOOL):
            self.emit("ITOB")

    def _from_storage(self, t: Type) -> None:
        """Stored bytes -> value (a missing key is the zero value)."""
        if t in (UINT, INT, BOOL):
            self.emit("BTOI")
        elif t is ADDRESS:
            ok = self.label("addr0")
            self.emit("DUP", 0)
            self.emit("LEN")
            self.emit("JUMPI", ok)
            self.emit("POP")
            self.emit("PUSHB", _bytes_lit(bytes(20)))
            self.place(ok)

    # ------------------------------------------------------------ functions

    def _function(self, fn: Function) -> None:
        self.fn = fn
        self.place(f"f_{fn.name}")
        for slot, t in fn.locals.values():  # zero values of the byte-string kinds
            if slot >= len(fn.params) and t in (ADDRESS, BYTES, STR):
                self.emit("PUSHB", _bytes_lit(bytes(20) if t is ADDRESS else b""))
                self.emit("STORE", slot)
        self._block(fn.node.body)
        if fn.returns is None:
            self.emit("RETI")
        self.fn = None

    def _block(self, body: list[ast.stmt]) -> None:
        for stmt in body:
            self._stmt(stmt)

    def _local(self, name: str) -> int:
        assert self.fn is not None
        return self.fn.locals[name][0]

    def _stmt(self, node: ast.stmt) -> None:  # noqa: C901 - one branch per statement kind
        if isinstance(node, ast.AnnAssign):
            self._expr(node.value)  # type: ignore[arg-type]
            self.emit("STORE", self._local(node.target.id))  # type: ignore[attr-defined]
        elif isinstance(node, ast.Assign):
            self._assign(node.targets[0], node.value)
        elif isinstance(node, ast.AugAssign):
            self._augassign(node)
        elif isinstance(node, ast.If):
            orelse = self.label("else")
            end = self.label("endif")
            self._expr(node.test)
            self.emit("ISZERO")
            self.emit("JUMPI", orelse)
            self._block(node.body)
            self.emit("JUMP", end)
            self.place(orelse)
            self._block(node.orelse)
            self.place(end)
        elif isinstance(node, ast.While):
            top = self.label("while")
            end = self.label("wend")
            self.place(top)
            self._expr(node.test)
            self.emit("ISZERO")
            self.emit("JUMPI", end)
            self.loop_labels.append((top, end))
            self._block(node.body)
            self.loop_labels.pop()
            self.emit("JUMP", top)
            self.place(end)
        elif isinstance(node, ast.For):
            self._for(node)
        elif isinstance(node, ast.Break):
            self.emit("JUMP", self.loop_labels[-1][1])
        elif isinstance(node, ast.Continue):
            self.emit("JUMP", self.loop_labels[-1][0])
        elif isinstance(node, ast.Return):
            if node.value is not None:
                self._expr(node.value)
            self.emit("RETI")
        elif isinstance(node, ast.Assert):
            ok = self.label("assert")
            self._expr(node.test)
            self.emit("JUMPI", ok)
            reason = node.msg.value if node.msg is not None else "assertion failed"  # type: ignore[attr-defined]
            self.revert(reason)
            self.place(ok)
        elif isinstance(node, ast.Expr):
            self._expr_statement(node.value)
        # ast.Pass: nothing

    def _for(self, node: ast.For) -> None:
        var = self._local(node.target.id)  # type: ignore[attr-defined]
        bound = self._local(f" bound{id(node)}")
        top = self.label("for")
        step = self.label("fstep")
        end = self.label("fend")
        counter = self._local(f" counter{id(node)}")
        self._expr(node.iter.args[0])  # type: ignore[attr-defined]
        self.emit("STORE", bound)
        self.emit("PUSHI", 0)
        self.emit("STORE", counter)
        self.place(top)
        self.emit("LOAD", counter)
        self.emit("LOAD", bound)
        self.emit("LT")
        self.emit("ISZERO")
        self.emit("JUMPI", end)
        self.emit("LOAD", counter)
        self.emit("STORE", var)
        self.loop_labels.append((step, end))
        self._block(node.body)
        self.loop_labels.pop()
        self.place(step)
        self.emit("LOAD", counter)
        self.emit("PUSHI", 1)
        self.emit("ADD")
        self.emit("STORE", counter)
        self.emit("JUMP", top)
        self.place(end)

    def _storage_key(self, node: ast.expr) -> None:
        """Push the storage key of self.var, self.map[k]...[k], or a record field of
        either (the record's key, then the field's length-prefixed name)."""
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            self.emit("PUSHB", _bytes_lit(self.c.storage[node.attr].key))
            return
        if isinstance(node, ast.Attribute):
            self._storage_key(node.value)
            self.emit("PUSHB", _bytes_lit(name_key(node.attr)))
            self.emit("CONCAT")
            return
        assert isinstance(node, ast.Subscript)
        self._storage_key(node.value)
        map_type = self._map_type(node.value)
        self._expr(node.slice)
        k = map_type.key
        if k in (UINT, INT, BOOL):
            self.emit("ITOB32")
        elif k in (BYTES, STR):
            self.emit("SHA256")
        self.emit("CONCAT")

    def _map_type(self, node: ast.expr) -> MapType:
        if isinstance(node, ast.Attribute):
            t = self.c.storage[node.attr].type
        else:
            t = self._map_type(node.value).value  # type: ignore[attr-defined]
        assert isinstance(t, MapType)
        return t

    def _assign(self, target: ast.expr, value: ast.expr) -> None:
        if isinstance(target, ast.Name):
            self._expr(value)
            self.emit("STORE", self._local(target.id))
            return
        t = self.c.types[target]
        self._storage_key(target)
        if isinstance(t, RecordType):  # field by field, under one key
            for arg, (name, field_type) in zip(value.args, t.fields, strict=True):  # type: ignore[attr-defined]
                self.emit("DUP", 0)
                self.emit("PUSHB", _bytes_lit(name_key(name)))
                self.emit("CONCAT")
                self._expr(arg)
                self._to_bytes(field_type)
                self.emit("SSTORE")
            self.emit("POP")
            return
        self._expr(value)
        self._to_bytes(t)
        self.emit("SSTORE")

    def _augassign(self, node: ast.AugAssign) -> None:
        target = node.target
        op = _ARITH[(_BINOPS[type(node.op)], self.c.types[node.value] is INT)]
        if isinstance(target, ast.Name):
            slot = self._local(target.id)
            self.emit("LOAD", slot)
            self._expr(node.value)
            self.emit(op)
            self.emit("STORE", slot)
            return
        t = self.c.types[target]
        self._storage_key(target)
        self.emit("DUP", 0)
        self.emit("SLOAD")
        self._from_storage(t)
        self._expr(node.value)
        self.emit(op)
        self._to_bytes(t)
        self.emit("SSTORE")

    def _expr_statement(self, node: ast.expr) -> None:
        if isinstance(node, ast.Constant):
            return  # a docstring
        assert isinstance(node, ast.Call)
        func = node.func
        if isinstance(func, ast.Name) and func.id == "emit":
            ev_call = node.args[0]
            ev = self.c.events[ev_call.func.id]  # type: ignore[attr-defined]
            self.emit("PUSHB", _bytes_lit(ev.name.encode()))
            for arg, (_, t) in zip(ev_call.args, ev.fields, strict=True):  # type: ignore[attr-defined]
                self._expr(arg)
                self._to_bytes(t)
            self.emit("EMIT", len(ev.fields))
            return
        if isinstance(func, ast.Name) and func.id == "send":
            self._expr(node.args[0])
            self._expr(node.args[1])
            self.emit("TRANSFER")
            return
        self._expr(node)
        if self.c.types[node].name != "None":
            self.emit("POP")

    # ------------------------------------------------------------ expressions

    def _expr(self, node: ast.expr) -> None:  # noqa: C901 - one branch per expression kind
        t = self.c.types[node]
        if isinstance(node, ast.Constant):
            v = node.value
            if type(v) is bool:
                self.emit("PUSHI", int(v))
            elif type(v) is int:
                self.emit("PUSHI", v)
            elif type(v) is str:
                self.emit("PUSHB", _bytes_lit(v.encode()))
            else:
                self.emit("PUSHB", _bytes_lit(v))
        elif isinstance(node, ast.Name):
            fn = self.fn
            assert fn is not None
            if node.id in fn.locals:
                self.emit("LOAD", fn.locals[node.id][0])
            else:
                ctype, v = self.c.constants[node.id]
                if ctype in (UINT, INT, BOOL):
                    self.emit("PUSHI", int(v))  # type: ignore[call-overload]
                else:
                    self.emit("PUSHB", _bytes_lit(v.encode() if isinstance(v, str) else v))  # type: ignore[union-attr]
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) \
                and (node.value.id, node.attr) in _ENV:
            for op in _ENV[(node.value.id, node.attr)]:
                self.emit(op)
        elif isinstance(node, ast.Attribute | ast.Subscript):
            self._storage_key(node)
            self.emit("SLOAD")
            self._from_storage(t)
        elif isinstance(node, ast.BinOp):
            self._expr(node.left)
            self._expr(node.right)
            if t in (BYTES, STR):
                self.emit("CONCAT")
            else:
                self.emit(_ARITH[(_BINOPS[type(node.op)], t is INT)])
        elif isinstance(node, ast.UnaryOp):
            self._expr(node.operand)
            self.emit("ISZERO" if isinstance(node.op, ast.Not) else "SNEG")
        elif isinstance(node, ast.BoolOp):
            end = self.label("bool")
            is_and = isinstance(node.op, ast.And)
            for i, v in enumerate(node.values):
                self._expr(v)
                if i < len(node.values) - 1:
                    self.emit("DUP", 0)
                    if is_and:
                        self.emit("ISZERO")
                    self.emit("JUMPI", end)
                    self.emit("POP")
            self.place(end)
        elif isinstance(node, ast.Compare):
            self._compare(node)
        elif isinstance(node, ast.Call):
            self._call(node)
        else:  # the checker refused everything else
            raise AssertionError(f"unchecked expression {ast.dump(node)}")

    def _compare(self, node: ast.Compare) -> None:
        op = _COMPARE[type(node.ops[0])]
        signed = self.c.types[node.left] is INT
        self._expr(node.left)
        self._expr(node.comparators[0])
        lt, gt = ("SLT", "SGT") if signed else ("LT", "GT")
        if op == "==":
            self.emit("EQ")
        elif op == "!=":
            self.emit("EQ")
            self.emit("ISZERO")
        elif op == "<":
            self.emit(lt)
        elif op == ">":
            self.emit(gt)
        elif op == "<=":
            self.emit(gt)
            self.emit("ISZERO")
        else:
            self.emit(lt)
            self.emit("ISZERO")

    def _call(self, node: ast.Call) -> None:
        func = node.func
        if isinstance(func, ast.Name):
            for arg in node.args:
                self._expr(arg)
            if func.id == "to_uint":
                self._decode_arg(UINT, "to_uint: more than 32 bytes")
            elif func.id == "to_address":
                self._decode_arg(ADDRESS, "to_address: not 20 bytes")
            else:
                self.emit({"sha256": "SHA256", "len": "LEN", "slice": "SLICE"}[func.id])
            return
        assert isinstance(func, ast.Attribute)
        if isinstance(func.value, ast.Call):  # Interface(address).method(args)
            self._external_call(node, func)
            return
        for arg in node.args:
            self._expr(arg)
        self.emit("CALLI", f"f_{func.attr}", len(node.args))

    def _external_call(self, node: ast.Call, func: ast.Attribute) -> None:
        """CALL another contract; its failure reverts this call with its reason."""
        wrap = func.value
        method = self.c.interfaces[wrap.func.id][func.attr]  # type: ignore[attr-defined]
        self._expr(wrap.args[0])  # type: ignore[attr-defined]
        self.emit("PUSHI", 0)
        self.emit("PUSHB", _bytes_lit(func.attr.encode()))
        for arg, (_, t) in zip(node.args, method.params, strict=True):
            self._expr(arg)
            self._to_bytes(t)
        self.emit("CALL", len(node.args))
        ok = self.label("called")
        self.emit("JUMPI", ok)
        self.emit("REVERT")  # the callee's reason
        self.place(ok)
        if method.returns is None:
            self.emit("POP")
        else:
            self._decode_arg(method.returns, f"{func.attr} returned a bad value")


_ENV = {("msg", "sender"): ["CALLER"], ("msg", "value"): ["CALLVALUE"],
        ("block", "height"): ["HEIGHT"], ("block", "time"): ["TIME"],
        ("self", "address"): ["SELF"], ("self", "balance"): ["SELF", "BALANCE"]}


def generate(contract: Contract) -> str:
    return CodeGen(contract).generate()
