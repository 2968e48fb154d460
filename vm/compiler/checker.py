"""Pass 1: read the module's declarations, check every function's types, annotate.

The input is the tree the stdlib ``ast`` parses from the source; the output is a
:class:`Contract`: constants, storage variables, events, functions with their locals
and the type of every expression node (``Contract.types``, by node). Nothing here
emits code. Every construct outside the language is refused here, with its position.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field

from chain.address import address_from_text
from chain.errors import InvalidAddress

from .errors import CompileError, error_at
from .types import (
    ADDRESS,
    BOOL,
    BY_NAME,
    BYTES,
    INT,
    NONE,
    STR,
    UINT,
    InterfaceMethod,
    MapType,
    RecordType,
    Type,
    name_key,
)

MAX_LOCALS = 256
_DECORATORS = {"public", "view", "payable"}
_BINOPS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.FloorDiv: "//", ast.Mod: "%",
           ast.Pow: "**"}
_COMPARE = {ast.Eq: "==", ast.NotEq: "!=", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">",
            ast.GtE: ">="}
UINT_MAX = (1 << 256) - 1


@dataclass
class StorageVar:
    name: str
    type: Type
    key: bytes  # storage key prefix: length-prefixed name


@dataclass
class EventDef:
    name: str
    fields: list[tuple[str, Type]]


@dataclass
class Function:
    name: str
    node: ast.FunctionDef
    params: list[tuple[str, Type]]
    returns: Type | None
    kind: str  # "public", "view", "internal", "init"
    payable: bool
    locals: dict[str, tuple[int, Type]] = field(default_factory=dict)
    writes: bool = False  # stores, emits, sends or calls out (directly)
    calls: set[str] = field(default_factory=set)

    def slot(self, name: str, type_: Type, file: str, node: ast.AST) -> int:
        if len(self.locals) >= MAX_LOCALS:
            raise error_at(file, node, f"more than {MAX_LOCALS} local variables")
        n = len(self.locals)
        self.locals[name] = (n, type_)
        return n


@dataclass
class Contract:
    file: str
    constants: dict[str, tuple[Type, object]] = field(default_factory=dict)
    storage: dict[str, StorageVar] = field(default_factory=dict)
    events: dict[str, EventDef] = field(default_factory=dict)
    records: dict[str, RecordType] = field(default_factory=dict)
    interfaces: dict[str, dict[str, InterfaceMethod]] = field(default_factory=dict)
    functions: dict[str, Function] = field(default_factory=dict)
    types: dict[ast.AST, Type] = field(default_factory=dict)


class Checker:
    """Builds a :class:`Contract` from a parsed module, or raises CompileError."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.contract = Contract(file)
        self.fn: Function | None = None
        self.loops = 0

    def error(self, node: ast.AST | None, message: str) -> CompileError:
        return error_at(self.file, node, message)

    # ------------------------------------------------------------ declarations

    def check(self, module: ast.Module) -> Contract:
        body = module.body
        if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                and isinstance(body[0].value.value, str):
            body = body[1:]  # the module docstring
        for node in body:
            if isinstance(node, ast.AnnAssign):
                self._declare_variable(node)
            elif isinstance(node, ast.ClassDef):
                self._declare_class(node)
            elif isinstance(node, ast.FunctionDef):
                self._declare_function(node)
            elif isinstance(node, ast.Import | ast.ImportFrom):
                raise self.error(node, "imports are not supported: a contract stands alone")
            else:
                raise self.error(node, f"{type(node).__name__} is not supported at module "
                                       "level (only declarations, events and functions)")
        for fn in self.contract.functions.values():
            self._check_function(fn)
        self._check_views()
        return self.contract

    def _type(self, node: ast.expr, *, storage: bool = False) -> Type:
        if isinstance(node, ast.Name) and node.id in BY_NAME:
            return BY_NAME[node.id]
        if isinstance(node, ast.Name) and node.id in self.contract.records:
            if not storage:
                raise self.error(node, "records live in storage: read and write their fields")
            return self.contract.records[node.id]
        if (isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name)
                and node.value.id == "Map"):
            if not storage:
                raise self.error(node, "Map is only for storage variables")
            args = node.slice
            if not isinstance(args, ast.Tuple) or len(args.elts) != 2:
                raise self.error(node, "Map takes a key type and a value type: Map[K, V]")
            key = self._type(args.elts[0])
            if isinstance(key, MapType):
                raise self.error(args.elts[0], "a map key cannot be a map")
            return MapType("Map", key, self._type(args.elts[1], storage=True))
        raise self.error(node, f"unknown type {ast.unparse(node)!r} (types: uint, int, bool, "
                               "Address, bytes, str, Map[K, V])")

    def _declare_variable(self, node: ast.AnnAssign) -> None:
        if not isinstance(node.target, ast.Name):
            raise self.error(node, "module-level declarations name one variable")
        name = node.target.id
        self._fresh_name(name, node)
        ann = node.annotation
        if isinstance(ann, ast.Call) and isinstance(ann.func, ast.Name) \
                and ann.func.id == "constant":
            if len(ann.args) != 1 or node.value is None:
                raise self.error(node, "a constant is NAME: constant(T) = value")
            type_ = self._type(ann.args[0])
            value = self._constant_value(node.value)
            if type_ is ADDRESS and isinstance(value, str):  # "agora1..." text
                try:
                    value = address_from_text(value)
                except InvalidAddress as exc:
                    raise self.error(node.value, f"not an address: {exc}") from None
            if not self._fits(value, type_):
                raise self.error(node.value, f"{value!r} is not a {type_}")
            self.contract.constants[name] = (type_, value)
            return
        if node.value is not None:
            raise self.error(node, "storage variables start at their zero value: set them "
                                   "in __init__")
        type_ = self._type(ann, storage=True)
        raw = name.encode()
        if len(raw) > 255:
            raise self.error(node, "a storage variable's name is at most 255 bytes")
        if name in ("address", "balance"):
            raise self.error(node, f"self.{name} is reserved (the contract's {name})")
        self.contract.storage[name] = StorageVar(name, type_, name_key(name))

    def _constant_value(self, node: ast.expr) -> object:
        """Evaluate a constant expression of literals and earlier constants."""
        if isinstance(node, ast.Constant) and type(node.value) in (int, bool, str, bytes):
            return node.value
        if isinstance(node, ast.Name) and node.id in self.contract.constants:
            return self.contract.constants[node.id][1]
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            v = self._constant_value(node.operand)
            if type(v) is int:
                return -v
        if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
            a, b = self._constant_value(node.left), self._constant_value(node.right)
            if type(a) is int and type(b) is int:
                op = _BINOPS[type(node.op)]
                if op in ("//", "%") and b == 0:
                    raise self.error(node, "division by zero in a constant")
                if op == "**" and (b < 0 or b > 256 * 8):
                    raise self.error(node, "exponent out of range in a constant")
                r = eval(f"a {op} b", {"a": a, "b": b})  # ints only: checked above
                if r.bit_length() > 512:
                    raise self.error(node, "constant out of range")
                return r
        raise self.error(node, "a constant's value must be literals and other constants")

    @staticmethod
    def _fits(value: object, type_: Type) -> bool:
        if type_ is UINT:
            return type(value) is int and 0 <= value <= UINT_MAX
        if type_ is INT:
            return type(value) is int and -(1 << 255) <= value < (1 << 255)
        if type_ is BOOL:
            return type(value) is bool
        if type_ is STR:
            return type(value) is str
        if type_ is BYTES:
            return type(value) is bytes
        if type_ is ADDRESS:
            return type(value) is bytes and len(value) == 20
        return False

    def _declare_class(self, node: ast.ClassDef) -> None:
        bases = [b.id for b in node.bases if isinstance(b, ast.Name)]
        if (bases not in (["Event"], ["Record"], ["Interface"]) or node.keywords
                or node.decorator_list):
            raise self.error(node, "classes are events, records or interfaces: class "
                                   "X(Event), X(Record) or X(Interface)")
        self._fresh_name(node.name, node)
        if bases == ["Interface"]:
            self._declare_interface(node)
            return
        if len(node.name.encode()) > 64:
            raise self.error(node, "an event or record name is at most 64 bytes")
        fields = []
        for item in node.body:
            if isinstance(item, ast.Expr) and isinstance(item.value, ast.Constant):
                continue  # docstring
            if not (isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name)
                    and item.value is None):
                raise self.error(item, "an event lists its fields as name: type")
            if any(item.target.id == f for f, _ in fields):
                raise self.error(item, f"field {item.target.id} is already declared")
            fields.append((item.target.id, self._type(item.annotation)))
        if bases == ["Record"]:
            if not fields:
                raise self.error(node, "a record has at least one field")
            self.contract.records[node.name] = RecordType(node.name, tuple(fields))
        else:
            self.contract.events[node.name] = EventDef(node.name, fields)

    def _declare_interface(self, node: ast.ClassDef) -> None:
        methods: dict[str, InterfaceMethod] = {}
        for item in node.body:
            if isinstance(item, ast.Expr) and isinstance(item.value, ast.Constant):
                continue  # docstring
            if not isinstance(item, ast.FunctionDef) or len(item.body) != 1 \
                    or not isinstance(item.body[0], ast.Expr) \
                    or not isinstance(item.body[0].value, ast.Constant) \
                    or item.body[0].value.value is not Ellipsis:
                raise self.error(item, "an interface lists methods as def name(args) -> T: ...")
            decorators = [d.id for d in item.decorator_list if isinstance(d, ast.Name)]
            if decorators not in ([], ["view"]) or len(decorators) != len(item.decorator_list):
                raise self.error(item, "an interface method may only be marked @view")
            params = []
            for arg in item.args.args:
                if arg.annotation is None:
                    raise self.error(arg, f"parameter {arg.arg} needs a type")
                params.append((arg.arg, self._type(arg.annotation)))
            returns = None if item.returns is None else self._type(item.returns)
            if item.name in methods:
                raise self.error(item, f"method {item.name} is already declared")
            methods[item.name] = InterfaceMethod(item.name, tuple(params), returns,
                                                 bool(decorators))
        self.contract.interfaces[node.name] = methods

    def _declare_function(self, node: ast.FunctionDef) -> None:
        self._fresh_name(node.name, node)
        decorators = []
        for d in node.decorator_list:
            if not isinstance(d, ast.Name) or d.id not in _DECORATORS:
                raise self.error(d, f"unknown decorator {ast.unparse(d)!r} (@public, @view, "
                                    "@payable)")
            decorators.append(d.id)
        a = node.args
        if a.vararg or a.kwarg or a.kwonlyargs or a.defaults or a.posonlyargs:
            raise self.error(node, "parameters are plain name: type pairs")
        params = []
        for arg in a.args:
            if arg.annotation is None:
                raise self.error(arg, f"parameter {arg.arg} needs a type")
            params.append((arg.arg, self._type(arg.annotation)))
        returns = None if node.returns is None else self._type(node.returns)
        if node.name == "__init__":
            if decorators and decorators != ["payable"]:
                raise self.error(node, "__init__ takes no decorator but @payable")
            if returns is not None:
                raise self.error(node, "__init__ returns nothing")
            kind = "init"
        elif "view" in decorators:
            if "public" in decorators or "payable" in decorators:
                raise self.error(node, "@view cannot be combined with @public or @payable")
            kind = "view"
        elif "public" in decorators:
            kind = "public"
        elif decorators:
            raise self.error(node, "@payable needs @public")
        else:
            kind = "internal"
        self.contract.functions[node.name] = Function(node.name, node, params, returns, kind,
                                                      "payable" in decorators)

    def _fresh_name(self, name: str, node: ast.AST) -> None:
        c = self.contract
        if name in c.constants or name in c.storage or name in c.events or name in c.functions:
            raise self.error(node, f"{name} is already declared")
        if name in BY_NAME or name in ("msg", "block", "self", "Map", "Event", "send",
                                       "emit", "sha256", "len", "range", "slice", "to_uint",
                                       "to_address", "Record", "Interface"):
            raise self.error(node, f"{name} is a reserved name")

    # ------------------------------------------------------------ functions

    def _check_function(self, fn: Function) -> None:
        self.fn = fn
        for name, type_ in fn.params:
            if name in fn.locals:
                raise self.error(fn.node, f"parameter {name} given twice")
            fn.slot(name, type_, self.file, fn.node)
        self._block(fn.node.body)
        if fn.returns is not None and not self._always_returns(fn.node.body):
            raise self.error(fn.node, f"{fn.name} must end in a return of {fn.returns}")
        self.fn = None

    def _always_returns(self, body: list[ast.stmt]) -> bool:
        if not body:
            return False
        last = body[-1]
        if isinstance(last, ast.Return):
            return True
        if isinstance(last, ast.If):
            return self._always_returns(last.body) and self._always_returns(last.orelse)
        return isinstance(last, ast.Assert) and isinstance(last.test, ast.Constant) \
            and last.test.value is False

    def _check_views(self) -> None:
        fns = self.contract.functions
        changed = True
        while changed:  # a function writes if it calls one that does
            changed = False
            for fn in fns.values():
                if not fn.writes and any(fns[c].writes for c in fn.calls):
                    fn.writes = changed = True
        for fn in fns.values():
            if fn.kind == "view" and fn.writes:
                raise self.error(fn.node, f"@view {fn.name} changes state (stores, emits, "
                                          "sends or calls a function that does)")

    def _block(self, body: list[ast.stmt]) -> None:
        for stmt in body:
            self._stmt(stmt)

    def _stmt(self, node: ast.stmt) -> None:  # noqa: C901 - one branch per statement kind
        fn = self.fn
        assert fn is not None
        if isinstance(node, ast.AnnAssign):
            if not isinstance(node.target, ast.Name) or node.value is None:
                raise self.error(node, "a local is declared as name: type = value")
            name = node.target.id
            if name in fn.locals or name in self.contract.constants:
                raise self.error(node, f"{name} is already declared")
            type_ = self._type(node.annotation)
            self._expect(node.value, type_)
            fn.slot(name, type_, self.file, node)
        elif isinstance(node, ast.Assign):
            if len(node.targets) != 1:
                raise self.error(node, "assign one target at a time")
            target = self._target(node.targets[0])
            if isinstance(target, RecordType):
                self._record_value(node.value, target)
            else:
                self._expect(node.value, target)
        elif isinstance(node, ast.AugAssign):
            target = self._target(node.target)
            if type(node.op) not in _BINOPS or not target.is_integer:
                raise self.error(node, "augmented assignment is for integers (+=, -=, *=, "
                                       "//=, %=)")
            if isinstance(node.op, ast.Pow) and target is INT:
                raise self.error(node, "** is for uint")
            self._expect(node.value, target)
        elif isinstance(node, ast.If):
            self._expect(node.test, BOOL)
            self._block(node.body)
            self._block(node.orelse)
        elif isinstance(node, ast.While):
            if node.orelse:
                raise self.error(node, "while ... else is not supported")
            self._expect(node.test, BOOL)
            self._loop(node.body)
        elif isinstance(node, ast.For):
            self._for(node)
        elif isinstance(node, ast.Break | ast.Continue):
            if not self.loops:
                raise self.error(node, f"{type(node).__name__.lower()} outside a loop")
        elif isinstance(node, ast.Return):
            if fn.returns is None:
                if node.value is not None:
                    raise self.error(node, f"{fn.name} returns nothing")
            elif node.value is None:
                raise self.error(node, f"{fn.name} must return a {fn.returns}")
            else:
                self._expect(node.value, fn.returns)
        elif isinstance(node, ast.Assert):
            self._expect(node.test, BOOL)
            if node.msg is not None and not (isinstance(node.msg, ast.Constant)
                                             and isinstance(node.msg.value, str)):
                raise self.error(node.msg, "an assert's reason is a string literal")
        elif isinstance(node, ast.Expr):
            self._expr_statement(node.value)
        elif isinstance(node, ast.Pass):
            pass
        else:
            raise self.error(node, f"{type(node).__name__} statements are not supported")

    def _loop(self, body: list[ast.stmt]) -> None:
        self.loops += 1
        self._block(body)
        self.loops -= 1

    def _for(self, node: ast.For) -> None:
        fn = self.fn
        assert fn is not None
        it = node.iter
        if (node.orelse or not isinstance(node.target, ast.Name) or not isinstance(it, ast.Call)
                or not isinstance(it.func, ast.Name) or it.func.id != "range"
                or len(it.args) != 1 or it.keywords):
            raise self.error(node, "loops are for NAME in range(n)")
        self._expect(it.args[0], UINT)
        name = node.target.id
        if name in fn.locals:
            if fn.locals[name][1] is not UINT:
                raise self.error(node.target, f"{name} is not a uint")
        else:
            fn.slot(name, UINT, self.file, node.target)
        # two hidden slots: the bound and the counter
        fn.slot(f" bound{id(node)}", UINT, self.file, node)
        fn.slot(f" counter{id(node)}", UINT, self.file, node)
        self._loop(node.body)

    def _target(self, node: ast.expr) -> Type:
        fn = self.fn
        assert fn is not None
        if isinstance(node, ast.Name):
            if node.id not in fn.locals:
                raise self.error(node, f"{node.id} is not a local variable (declare it as "
                                       f"{node.id}: type = value)")
            return fn.locals[node.id][1]
        type_ = self._storage_ref(node)
        if isinstance(type_, MapType):
            raise self.error(node, "a whole map cannot be assigned")
        fn.writes = True
        self.contract.types[node] = type_
        return type_

    def _record_value(self, node: ast.expr, record: RecordType) -> None:
        """A whole record written at once: Name(field values, in order)."""
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                and node.func.id == record.name) or node.keywords:
            raise self.error(node, f"assign a whole {record.name} as {record.name}(...)")
        if len(node.args) != len(record.fields):
            raise self.error(node, f"{record.name} takes {len(record.fields)} fields, in order")
        for arg, (_, t) in zip(node.args, record.fields, strict=True):
            self._expect(arg, t)
        self.contract.types[node] = record

    def _storage_ref(self, node: ast.expr) -> Type:
        """The type of self.var, self.map[k]...[k] or a record field of either (keys
        checked)."""
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) \
                and node.value.id == "self":
            var = self.contract.storage.get(node.attr)
            if var is None:
                raise self.error(node, f"no storage variable {node.attr}")
            return var.type
        if isinstance(node, ast.Attribute):
            outer = self._storage_ref(node.value)
            if not isinstance(outer, RecordType):
                raise self.error(node, f"{ast.unparse(node.value)} has no fields")
            t = outer.field(node.attr)
            if t is None:
                raise self.error(node, f"{outer.name} has no field {node.attr}")
            return t
        if isinstance(node, ast.Subscript):
            outer = self._storage_ref(node.value)
            if not isinstance(outer, MapType):
                raise self.error(node, "only maps can be indexed")
            self._expect(node.slice, outer.key)
            return outer.value
        raise self.error(node, f"cannot assign to {ast.unparse(node)}")

    def _expr_statement(self, node: ast.expr) -> None:
        fn = self.fn
        assert fn is not None
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return  # a docstring
        if not isinstance(node, ast.Call):
            raise self.error(node, "an expression statement must be a call")
        func = node.func
        if isinstance(func, ast.Name) and func.id == "emit":
            if len(node.args) != 1 or not isinstance(node.args[0], ast.Call) \
                    or not isinstance(node.args[0].func, ast.Name):
                raise self.error(node, "emit takes one event: emit(Name(...))")
            ev_call = node.args[0]
            ev = self.contract.events.get(ev_call.func.id)  # type: ignore[attr-defined]
            if ev is None:
                raise self.error(ev_call, f"no event {ast.unparse(ev_call.func)}")
            if len(ev_call.args) != len(ev.fields) or ev_call.keywords:
                raise self.error(ev_call, f"{ev.name} takes {len(ev.fields)} fields, in order")
            for arg, (_, t) in zip(ev_call.args, ev.fields, strict=True):
                self._expect(arg, t)
            fn.writes = True
            self.contract.types[node] = NONE
            return
        if isinstance(func, ast.Name) and func.id == "send":
            if len(node.args) != 2 or node.keywords:
                raise self.error(node, "send takes an address and an amount: send(to, amount)")
            self._expect(node.args[0], ADDRESS)
            self._expect(node.args[1], UINT)
            fn.writes = True
            self.contract.types[node] = NONE
            return
        self.contract.types[node] = self._expr(node)

    # ------------------------------------------------------------ expressions

    def _expect(self, node: ast.expr, want: Type) -> None:
        got = self._expr(node, want)
        if got != want:
            raise self.error(node, f"expected {want}, got {got}")

    def _expr(self, node: ast.expr, hint: Type | None = None) -> Type:
        t = self._expr_type(node, hint)
        self.contract.types[node] = t
        return t

    def _expr_type(self, node: ast.expr, hint: Type | None) -> Type:  # noqa: C901
        fn = self.fn
        assert fn is not None
        c = self.contract
        if isinstance(node, ast.Constant):
            v = node.value
            if type(v) is bool:
                return BOOL
            if type(v) is int:
                t = hint if hint in (UINT, INT) else UINT
                if not self._fits(v, t):
                    raise self.error(node, f"{v} does not fit in {t}")
                return t
            if type(v) is str:
                return STR
            if type(v) is bytes:
                return BYTES
            raise self.error(node, f"{type(v).__name__} literals are not supported")
        if isinstance(node, ast.Name):
            if node.id in fn.locals:
                return fn.locals[node.id][1]
            if node.id in c.constants:
                return c.constants[node.id][0]
            raise self.error(node, f"unknown name {node.id}")
        if isinstance(node, ast.Attribute):
            base = node.value
            if isinstance(base, ast.Name):
                known = {("msg", "sender"): ADDRESS, ("msg", "value"): UINT,
                         ("block", "height"): UINT, ("block", "time"): UINT,
                         ("self", "address"): ADDRESS, ("self", "balance"): UINT}
                if (base.id, node.attr) in known:
                    return known[(base.id, node.attr)]
                if base.id != "self":
                    raise self.error(node, f"unknown attribute {ast.unparse(node)}")
            t = self._storage_ref(node)
            if isinstance(t, MapType):
                raise self.error(node, "a map is used by indexing it")
            if isinstance(t, RecordType):
                raise self.error(node, "read a record's fields one at a time")
            return t
        if isinstance(node, ast.Subscript):
            t = self._storage_ref(node)
            if isinstance(t, MapType):
                raise self.error(node, "index the map down to a value")
            if isinstance(t, RecordType):
                raise self.error(node, "read a record's fields one at a time")
            return t
        if isinstance(node, ast.BinOp):
            if type(node.op) not in _BINOPS:
                if isinstance(node.op, ast.Div):
                    raise self.error(node, "/ is not supported: use // (floor division)")
                raise self.error(node, f"operator {type(node.op).__name__} is not supported")
            left = self._expr(node.left, hint)
            right = self._expr(node.right, left if left.is_integer else hint)
            if left is UINT and right is INT and hint is None and _literal_only(node.left):
                left = self._expr(node.left, INT)
            if isinstance(node.op, ast.Add) and left == right and left in (BYTES, STR):
                return left
            if not left.is_integer or left != right:
                raise self.error(node, f"{_BINOPS[type(node.op)]} needs two integers of one "
                                       f"type, got {left} and {right}")
            if isinstance(node.op, ast.Pow) and left is INT:
                raise self.error(node, "** is for uint")
            return left
        if isinstance(node, ast.UnaryOp):
            if isinstance(node.op, ast.Not):
                self._expect(node.operand, BOOL)
                return BOOL
            if isinstance(node.op, ast.USub):
                t = self._expr(node.operand, INT)
                if t is not INT:
                    raise self.error(node, "unary minus is for int")
                return INT
            raise self.error(node, f"operator {type(node.op).__name__} is not supported")
        if isinstance(node, ast.BoolOp):
            for v in node.values:
                self._expect(v, BOOL)
            return BOOL
        if isinstance(node, ast.Compare):
            if len(node.ops) != 1:
                raise self.error(node, "chained comparisons are not supported")
            op = type(node.ops[0])
            if op not in _COMPARE:
                raise self.error(node, f"comparison {op.__name__} is not supported")
            left = self._expr(node.left)
            right = self._expr(node.comparators[0], left)
            if left is UINT and right is INT and _literal_only(node.left):
                left = self._expr(node.left, INT)
            if left != right:
                raise self.error(node, f"cannot compare {left} with {right}")
            if op not in (ast.Eq, ast.NotEq) and not left.is_integer:
                raise self.error(node, f"{_COMPARE[op]} compares integers")
            return BOOL
        if isinstance(node, ast.Call):
            return self._call(node)
        if isinstance(node, ast.IfExp):
            raise self.error(node, "conditional expressions are not supported: use if")
        raise self.error(node, f"{type(node).__name__} expressions are not supported")

    def _call(self, node: ast.Call) -> Type:
        fn = self.fn
        assert fn is not None
        func = node.func
        if node.keywords:
            raise self.error(node, "keyword arguments are not supported")
        if isinstance(func, ast.Name):
            if func.id == "sha256":
                if len(node.args) != 1:
                    raise self.error(node, "sha256 takes one bytes value")
                self._expect(node.args[0], BYTES)
                return BYTES
            if func.id == "len":
                if len(node.args) != 1:
                    raise self.error(node, "len takes one value")
                t = self._expr(node.args[0])
                if t not in (BYTES, STR):
                    raise self.error(node, "len is for bytes and str")
                return UINT
            if func.id == "slice":
                if len(node.args) != 3:
                    raise self.error(node, "slice takes bytes, a start and a length")
                self._expect(node.args[0], BYTES)
                self._expect(node.args[1], UINT)
                self._expect(node.args[2], UINT)
                return BYTES
            if func.id in ("to_uint", "to_address"):
                if len(node.args) != 1:
                    raise self.error(node, f"{func.id} takes one bytes value")
                self._expect(node.args[0], BYTES)
                return UINT if func.id == "to_uint" else ADDRESS
            if func.id in ("emit", "send"):
                raise self.error(node, f"{func.id}(...) is a statement, not a value")
            raise self.error(node, f"unknown function {func.id}")
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) \
                and func.value.id == "self":
            callee = self.contract.functions.get(func.attr)
            if callee is None or callee.kind not in ("internal",):
                raise self.error(node, f"self.{func.attr} is not an internal function "
                                       "(public methods are called from outside)")
            if len(node.args) != len(callee.params):
                raise self.error(node, f"{callee.name} takes {len(callee.params)} arguments")
            for arg, (_, t) in zip(node.args, callee.params, strict=True):
                self._expect(arg, t)
            fn.calls.add(callee.name)
            return callee.returns or NONE
        if (isinstance(func, ast.Attribute) and isinstance(func.value, ast.Call)
                and isinstance(func.value.func, ast.Name)
                and func.value.func.id in self.contract.interfaces):
            wrap = func.value
            iface = self.contract.interfaces[func.value.func.id]  # type: ignore[attr-defined]
            if len(wrap.args) != 1 or wrap.keywords:
                raise self.error(wrap, "an interface wraps one address: Name(address)")
            self._expect(wrap.args[0], ADDRESS)
            method = iface.get(func.attr)
            if method is None:
                raise self.error(node, f"the interface has no method {func.attr}")
            if len(node.args) != len(method.params):
                raise self.error(node, f"{func.attr} takes {len(method.params)} arguments")
            for arg, (_, t) in zip(node.args, method.params, strict=True):
                self._expect(arg, t)
            if not method.view:
                fn.writes = True  # the callee may change state
            return method.returns or NONE
        raise self.error(node, f"cannot call {ast.unparse(func)}")


def _literal_only(node: ast.expr) -> bool:
    if isinstance(node, ast.Constant):
        return type(node.value) is int
    if isinstance(node, ast.BinOp):
        return _literal_only(node.left) and _literal_only(node.right)
    return False


def check_module(module: ast.Module, file: str) -> Contract:
    return Checker(file).check(module)


__all__ = ["Checker", "Contract", "Function", "CompileError", "check_module"]
