"""Pass 2: turn a checked :class:`Contract` into VM assembly (then :mod:`vm.asm` makes
the bytecode).

Layout of the generated code:

* a dispatcher at offset 0 finds ``METHOD`` among the public methods (and
  ``__init__``, which the executor runs only at deploy) by a binary search over their
  names and their typed selectors (:func:`vm.compiler.types.selector`, what contracts
  call each other by), checks the call's value and argument count, decodes the
  arguments by type, ``CALLI``s the function and encodes its result for ``RETURN``; an
  unknown method reverts;
* each function is a ``CALLI`` target: its parameters arrive in locals 0..n-1, its
  return value is left on the stack at ``RETI`` (a whole record as one PACKed value).

Values on the stack and in storage follow :mod:`vm.compiler.types`. Storage keys are
the variable's length-prefixed name, then for a map each key: integers as 32 bytes,
addresses as 20, byte strings and text by their SHA-256 (fixed widths, so nested keys
never run together); a record field adds its length-prefixed name.

Evaluation order is Python's: an assignment evaluates its value (every field of a whole
record) before the keys of its target, and stores nothing until all are evaluated;
``x[k] += v`` evaluates ``k`` first; arguments go left to right, keywords after
positionals.

Each line of assembly remembers the source statement it came from, so a limit the
assembler finds is reported at that statement.
"""

from __future__ import annotations

import ast

from .checker import _BINOPS, _COMPARE, Contract, Function
from .types import (
    ADDRESS,
    BOOL,
    BYTES,
    INT,
    STR,
    UINT,
    MapType,
    RecordType,
    Type,
    name_key,
    selector,
)

_ARITH = {("+", False): "ADD", ("-", False): "SUB", ("*", False): "MUL", ("//", False): "DIV",
          ("%", False): "MOD", ("**", False): "EXP", ("+", True): "SADD", ("-", True): "SSUB",
          ("*", True): "SMUL", ("//", True): "SDIV", ("%", True): "SMOD"}
_LINEAR = 4  # method keys compared one by one at the leaves of the dispatch search


def _bytes_lit(data: bytes) -> str:
    return "0x" + data.hex()


class CodeGen:
    def __init__(self, contract: Contract) -> None:
        self.c = contract
        self.lines: list[str] = []
        #: for each line, the source node it was generated for
        self.where: list[ast.AST | None] = []
        self.at: ast.AST | None = None
        self.n = 0
        self.fn: Function | None = None
        self.loop_labels: list[tuple[str, str]] = []  # (continue, break)

    def label(self, hint: str) -> str:
        self.n += 1
        return f"{hint}_{self.n}"

    def emit(self, *parts: object) -> None:
        self.lines.append("    " + " ".join(str(p) for p in parts))
        self.where.append(self.at)

    def place(self, label: str) -> None:
        self.lines.append(f"{label}:")
        self.where.append(self.at)

    def revert(self, reason: str) -> None:
        self.emit("PUSHB", _bytes_lit(reason.encode()))
        self.emit("REVERT")

    def _hidden(self, node: ast.AST, what: str) -> int:
        assert self.fn is not None
        return self.fn.locals[f" {what}{id(node)}"][0]

    # ------------------------------------------------------------ the module

    def generate(self) -> str:
        entries = [f for f in self.c.functions.values() if f.kind in ("public", "view", "init")]
        keys: list[tuple[bytes, str]] = []
        for fn in entries:
            keys.append((fn.name.encode(), f"m_{fn.name}"))
            if fn.kind != "init":
                keys.append((selector(fn.name, fn.params, fn.returns).encode(),
                             f"m_{fn.name}"))
        if "__init__" not in self.c.functions:
            keys.append((b"__init__", "m___init___default"))
        keys.sort()
        self._dispatch(keys, 0, len(keys))
        self.place("unknown_method")
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

    def _dispatch(self, keys: list[tuple[bytes, str]], lo: int, hi: int) -> None:
        """A binary search for METHOD among keys[lo:hi] (sorted): a few byte-string
        comparisons whatever the number of methods."""
        if hi - lo <= _LINEAR:
            for key, target in keys[lo:hi]:
                self.emit("METHOD")
                self.emit("PUSHB", _bytes_lit(key))
                self.emit("EQ")
                self.emit("JUMPI", target)
            self.emit("JUMP", "unknown_method")
            return
        mid = (lo + hi) // 2
        upper = self.label("upper")
        self.emit("METHOD")
        self.emit("PUSHB", _bytes_lit(keys[mid][0]))
        self.emit("LT")
        self.emit("ISZERO")
        self.emit("JUMPI", upper)  # METHOD >= keys[mid]
        self._dispatch(keys, lo, mid)
        self.place(upper)
        self._dispatch(keys, mid, hi)

    def _entry(self, fn: Function) -> None:
        self.at = fn.node
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
            if not isinstance(fn.returns, RecordType):  # a record comes back PACKed
                self._to_bytes(fn.returns)
            self.emit("RETURN")

    def _decode_arg(self, t: Type, reason: str) -> None:
        """bytes (an argument, or a value another contract returned) -> the value of
        type ``t``, reverting on a bad encoding."""
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
        self.at = fn.node
        self.place(f"f_{fn.name}")
        params = {name for name, _ in fn.params}
        for (var, name), slot in fn.cached_keys.items():
            if name in params:  # a parameter's keys at entry; a local's after it is set
                self._key_into(var, name, slot)
        self._block(fn.node.body)
        if fn.returns is None:
            self.at = fn.node
            self.emit("RETI")
        self.fn = None

    def _block(self, body: list[ast.stmt]) -> None:
        for stmt in body:
            self.at = stmt
            self._stmt(stmt)

    def _local(self, name: str) -> int:
        assert self.fn is not None
        return self.fn.locals[name][0]

    def _stmt(self, node: ast.stmt) -> None:  # noqa: C901 - one branch per statement kind
        assert self.fn is not None
        if isinstance(node, ast.AnnAssign):
            assert isinstance(node.target, ast.Name) and node.value is not None
            self._assign_local(node.target.id, node.value)
            for (var, name), slot in self.fn.cached_keys.items():
                if name == node.target.id:  # its only assignment: its keys now
                    self._key_into(var, name, slot)
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
            self.at = node
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
            self.at = node
            self.emit("JUMP", top)
            self.place(end)
        elif isinstance(node, ast.For):
            self._for(node)
        elif isinstance(node, ast.Break):
            self.emit("JUMP", self.loop_labels[-1][1])
        elif isinstance(node, ast.Continue):
            self.emit("JUMP", self.loop_labels[-1][0])
        elif isinstance(node, ast.Return):
            returns = self.fn.returns
            if isinstance(returns, RecordType):
                assert node.value is not None
                self._push_record(node.value, returns, as_bytes=True)
                self.emit("PACK", len(returns.fields))
            elif node.value is not None:
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
        bound = self._hidden(node, "bound")
        counter = self._hidden(node, "counter")
        top = self.label("for")
        step = self.label("fstep")
        end = self.label("fend")
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
        self.at = node
        self.place(step)
        self.emit("LOAD", counter)
        self.emit("PUSHI", 1)
        self.emit("ADD")
        self.emit("STORE", counter)
        self.emit("JUMP", top)
        self.place(end)

    # ------------------------------------------------------------ storage

    def _key_into(self, var: str, name: str, slot: int) -> None:
        """The storage key of self.var[name] into ``slot`` (see Checker._find_cached_keys)."""
        assert self.fn is not None
        self.emit("PUSHB", _bytes_lit(self.c.storage[var].key))
        self.emit("LOAD", self.fn.locals[name][0])
        self._key_bytes(self._map_type_of(var).key)
        self.emit("CONCAT")
        self.emit("STORE", slot)

    def _map_type_of(self, var: str) -> MapType:
        t = self.c.storage[var].type
        assert isinstance(t, MapType)
        return t

    def _key_bytes(self, k: Type) -> None:
        """A map key's value (on the stack) -> its fixed-width part of a storage key."""
        if k in (UINT, INT, BOOL):
            self.emit("ITOB32")
        elif k in (BYTES, STR):
            self.emit("SHA256")

    def _storage_key(self, node: ast.expr) -> None:
        """Push the storage key of self.var, self.map[k]...[k], or a record field of
        either (the record's key, then the field's length-prefixed name)."""
        assert self.fn is not None
        if (isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Name)
                and isinstance(node.value, ast.Attribute)
                and isinstance(node.value.value, ast.Name)):
            slot = self.fn.cached_keys.get((node.value.attr, node.slice.id))
            if slot is not None:
                self.emit("LOAD", slot)
                return
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
        self._key_bytes(map_type.key)
        self.emit("CONCAT")

    @staticmethod
    def _is_field(node: ast.expr) -> bool:
        """A field of a stored record (self.r.f, self.m[k].f): it lives inside the
        record's one state key, reached by the record's key and the field's name."""
        return isinstance(node, ast.Attribute) and not isinstance(node.value, ast.Name)

    def _load(self, node: ast.expr) -> None:
        """Push the stored bytes of self.var, self.map[k]... or a stored record's field."""
        if self._is_field(node):
            assert isinstance(node, ast.Attribute)
            self._storage_key(node.value)
            self.emit("PUSHB", _bytes_lit(name_key(node.attr)))
            self.emit("SLOADR")
        else:
            self._storage_key(node)
            self.emit("SLOAD")

    def _map_type(self, node: ast.expr) -> MapType:
        if isinstance(node, ast.Attribute):
            t = self.c.storage[node.attr].type
        else:
            t = self._map_type(node.value).value  # type: ignore[attr-defined]
        assert isinstance(t, MapType)
        return t

    # ------------------------------------------------------------ records

    def _push_record(self, node: ast.expr, record: RecordType, *, as_bytes: bool) -> None:
        """Push each field of a whole-record value, in field order: as values of their
        types, or (``as_bytes``) as the byte strings storage and PACK take."""
        fn = self.fn
        assert fn is not None
        fields = record.fields
        if isinstance(node, ast.Call):  # Name(...)
            self._push_field_args(node, list(fields), as_bytes=as_bytes)
        elif isinstance(node, ast.Name):  # a local
            base = self._local(node.id)
            for i, (_, t) in enumerate(fields):
                self.emit("LOAD", base + i)
                if as_bytes:
                    self._to_bytes(t)
        else:  # stored: the key once, then each field under it
            key = self._hidden(node, "key")
            self._storage_key(node)
            self.emit("STORE", key)
            for fname, t in fields:
                self.emit("LOAD", key)
                self.emit("PUSHB", _bytes_lit(name_key(fname)))
                self.emit("SLOADR")
                if t is ADDRESS or not as_bytes:  # a missing address reads as 20 zeros
                    self._from_storage(t)

    def _push_field_args(self, node: ast.Call, fields: list[tuple[str, Type]], *,
                         as_bytes: bool) -> None:
        """The arguments of Name(...) (a record or an event) in field order; evaluated
        in source order, through slots when keywords come out of field order."""
        in_order = self.c.field_args[node]
        source = [*node.args, *(kw.value for kw in node.keywords)]
        if source != in_order:
            slots = {fname: self._hidden(node, f"arg_{fname}_") for fname, _ in fields}
            by_arg = {id(a): f for f, a in zip((f for f, _ in fields), in_order, strict=True)}
            for arg in source:
                self._expr(arg)
                self.emit("STORE", slots[by_arg[id(arg)]])
            for fname, t in fields:
                self.emit("LOAD", slots[fname])
                if as_bytes:
                    self._to_bytes(t)
            return
        for arg, (_, t) in zip(in_order, fields, strict=True):
            self._expr(arg)
            if as_bytes:
                self._to_bytes(t)

    def _store_record(self, target: ast.expr, record: RecordType) -> None:
        """Fields (as bytes) on the stack, first field lowest: compute the target's key
        now (after the value, as Python does), keep it in a slot, then store each field
        in the record under it, the last field first."""
        key = self._hidden(target, "target_key")
        self._storage_key(target)
        self.emit("STORE", key)
        for i in reversed(range(len(record.fields))):
            self.emit("LOAD", key)                                # .. v_i K
            self.emit("PUSHB", _bytes_lit(name_key(record.fields[i][0])))
            self.emit("SSTORER")                                  # ..

    # ------------------------------------------------------------ assignment

    def _assign_local(self, name: str, value: ast.expr) -> None:
        assert self.fn is not None
        base, t = self.fn.locals[name]
        if isinstance(t, RecordType):
            if isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute) \
                    and isinstance(value.func.value, ast.Call):  # Iface(a).m(...)
                self._external_call(value, value.func, into=base)
                return
            self._push_record(value, t, as_bytes=False)
            for i in reversed(range(len(t.fields))):
                self.emit("STORE", base + i)
            return
        self._expr(value)
        self.emit("STORE", base)

    def _assign(self, target: ast.expr, value: ast.expr) -> None:
        fn = self.fn
        assert fn is not None
        if isinstance(target, ast.Name):
            self._assign_local(target.id, value)
            return
        if isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name) \
                and target.value.id in fn.locals:  # a field of a record local
            base, record = fn.locals[target.value.id]
            assert isinstance(record, RecordType)
            self._expr(value)
            self.emit("STORE", base + record.index(target.attr))
            return
        t = self.c.types[target]
        if isinstance(t, RecordType):
            self._push_record(value, t, as_bytes=True)
            self._store_record(target, t)
            return
        self._expr(value)
        self._to_bytes(t)
        if self._is_field(target):
            assert isinstance(target, ast.Attribute)
            self._storage_key(target.value)
            self.emit("PUSHB", _bytes_lit(name_key(target.attr)))
            self.emit("SSTORER")
            return
        self._storage_key(target)
        self.emit("SWAP", 1)
        self.emit("SSTORE")

    def _augassign(self, node: ast.AugAssign) -> None:
        fn = self.fn
        assert fn is not None
        target = node.target
        op = _ARITH[(_BINOPS[type(node.op)], self.c.types[node.value] is INT)]
        slot = None
        if isinstance(target, ast.Name):
            slot = self._local(target.id)
        elif isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name) \
                and target.value.id in fn.locals:
            base, record = fn.locals[target.value.id]
            assert isinstance(record, RecordType)
            slot = base + record.index(target.attr)
        if slot is not None:
            self.emit("LOAD", slot)
            self._expr(node.value)
            self.emit(op)
            self.emit("STORE", slot)
            return
        t = self.c.types[target]
        if self._is_field(target):  # the key first, as Python does for x[k] += v
            assert isinstance(target, ast.Attribute)
            self._storage_key(target.value)
            self.emit("PUSHB", _bytes_lit(name_key(target.attr)))
            self.emit("DUP", 1)
            self.emit("DUP", 1)
            self.emit("SLOADR")                                   # K f old
            self._from_storage(t)
            self._expr(node.value)
            self.emit(op)
            self._to_bytes(t)                                     # K f new
            self.emit("SWAP", 2)
            self.emit("SWAP", 1)                                  # new K f
            self.emit("SSTORER")
            return
        self._storage_key(target)  # the key first, as Python does for x[k] += v
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
            assert isinstance(ev_call, ast.Call) and isinstance(ev_call.func, ast.Name)
            ev = self.c.events[ev_call.func.id]
            self.emit("PUSHB", _bytes_lit(ev.name.encode()))
            self._push_field_args(ev_call, ev.fields, as_bytes=True)
            self.emit("EMIT", len(ev.fields))
            return
        if isinstance(func, ast.Name) and func.id == "send":
            self._expr(node.args[0])
            self._expr(node.args[1])
            self.emit("TRANSFER")
            return
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Call) \
                and isinstance(func.value.func, ast.Name) \
                and func.value.func.id in self.c.interfaces:
            self._external_call(node, func, into=None)
            returns = self.c.interfaces[func.value.func.id][func.attr].returns
            if returns is not None and not isinstance(returns, RecordType):
                self.emit("POP")  # a result nobody reads (a record's was dropped whole)
            return
        self._expr(node)
        if self.c.types[node].name != "None":
            self.emit("POP")

    # ------------------------------------------------------------ expressions

    def _expr(self, node: ast.expr) -> None:  # noqa: C901 - one branch per expression kind
        fn = self.fn
        assert fn is not None
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
                assert type(v) is bytes  # the checker allows no other literal
                self.emit("PUSHB", _bytes_lit(v))
        elif isinstance(node, ast.Name):
            if node.id in fn.locals:
                self.emit("LOAD", fn.locals[node.id][0])
            else:
                ctype, value = self.c.constants[node.id]
                if ctype in (UINT, INT, BOOL):
                    assert isinstance(value, int)
                    self.emit("PUSHI", int(value))
                else:
                    assert isinstance(value, str | bytes)
                    self.emit("PUSHB", _bytes_lit(value.encode() if isinstance(value, str)
                                                  else value))
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) \
                and (node.value.id, node.attr) in _ENV:
            for op in _ENV[(node.value.id, node.attr)]:
                self.emit(op)
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) \
                and node.value.id in fn.locals:  # a field of a record local
            base, record = fn.locals[node.value.id]
            assert isinstance(record, RecordType)
            self.emit("LOAD", base + record.index(node.attr))
        elif isinstance(node, ast.Attribute | ast.Subscript):
            self._load(node)
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
            for i, operand in enumerate(node.values):
                self._expr(operand)
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
        if isinstance(func.value, ast.Call) and isinstance(func.value.func, ast.Name) \
                and func.value.func.id in self.c.interfaces:  # Interface(address).method(args)
            self._external_call(node, func, into=None)
            return
        if func.attr == "encode":  # str.encode(): the same bytes
            self._expr(func.value)
            return
        callee = self.c.functions[func.attr]
        width = 0
        for arg, (_, t) in zip(node.args, callee.params, strict=True):
            if isinstance(t, RecordType):  # a whole record: its fields, one slot each
                self._push_record(arg, t, as_bytes=False)
                width += len(t.fields)
            else:
                self._expr(arg)
                width += 1
        self.emit("CALLI", f"f_{func.attr}", width)

    def _external_call(self, node: ast.Call, func: ast.Attribute, *, into: int | None) -> None:
        """Call another contract by the typed selector of the interface's method: a
        @view read-only (STATICCALL), others with CALL (and ``value=``). Its failure
        reverts this call with its reason. The result is decoded by the declared type
        (a bad encoding reverts); a record result is unpacked into the local at slot
        ``into`` — or, as a statement, dropped."""
        wrap = func.value
        assert isinstance(wrap, ast.Call) and isinstance(wrap.func, ast.Name)
        method = self.c.interfaces[wrap.func.id][func.attr]
        value = next((kw.value for kw in node.keywords if kw.arg == "value"), None)
        self._expr(wrap.args[0])
        if value is not None:  # the arguments wait in slots: Python evaluates them first
            slots = [self._hidden(node, f"arg_{i}_") for i in range(len(node.args))]
            for arg, slot in zip(node.args, slots, strict=True):
                self._expr(arg)
                self.emit("STORE", slot)
            self._expr(value)
        elif not method.view:
            self.emit("PUSHI", 0)
        self.emit("PUSHB", _bytes_lit(selector(method.name, method.params,
                                               method.returns).encode()))
        for i, (arg, (_, t)) in enumerate(zip(node.args, method.params, strict=True)):
            if value is not None:
                self.emit("LOAD", self._hidden(node, f"arg_{i}_"))
            else:
                self._expr(arg)
            self._to_bytes(t)
        self.emit("STATICCALL" if method.view else "CALL", len(node.args))
        ok = self.label("called")
        self.emit("JUMPI", ok)
        self.emit("REVERT")  # the callee's reason
        self.place(ok)
        returns = method.returns
        if returns is None:
            self.emit("POP")
        elif isinstance(returns, RecordType):
            if into is None:
                self.emit("POP")
                return
            self.emit("UNPACK", len(returns.fields))
            for i in reversed(range(len(returns.fields))):
                self._decode_arg(returns.fields[i][1], f"{func.attr} returned a bad value")
                self.emit("STORE", into + i)
        else:
            self._decode_arg(returns, f"{func.attr} returned a bad value")


_ENV = {("msg", "sender"): ["CALLER"], ("msg", "value"): ["CALLVALUE"],
        ("block", "height"): ["HEIGHT"], ("block", "time"): ["TIME"],
        ("self", "address"): ["SELF"], ("self", "balance"): ["SELF", "BALANCE"]}


def generate(contract: Contract) -> tuple[str, list[ast.AST | None]]:
    """The assembly, and for each of its lines the source node it came from."""
    gen = CodeGen(contract)
    return gen.generate(), gen.where
