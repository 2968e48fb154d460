"""Pass 1: read the module's declarations, check every function's types, annotate.

The input is the tree the stdlib ``ast`` parses from the source; the output is a
:class:`Contract`: constants, storage variables, events, records, interfaces, functions
with their locals, and the type of every expression node (``Contract.types``, by node).
Nothing here emits code. Every construct outside the language is refused here, with its
position, and so is every limit of the VM the generated code would break.

Locals follow Python's rules for a function: a name is the function's from its first
(annotated) assignment on, with one type. A name may be declared in each branch of an
``if``; reading one that is not assigned on every path to the read is an error, found
by following which names are surely (and which possibly) assigned through the body.

Records are values as well as storage: a local may hold a whole record (one slot per
field), a method may return one, and an interface method may return one. A whole
record is only assigned, stored or returned; everything else reads its fields.
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
    MAX_FIELDS,
    MAX_LITERAL,
    MAX_PARAMS,
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
_RESERVED = ("msg", "block", "self", "Map", "Event", "send", "emit", "sha256", "len",
             "range", "slice", "to_uint", "to_address", "Record", "Interface")


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
    #: name -> (first slot, type); a record local takes one slot per field
    locals: dict[str, tuple[int, Type]] = field(default_factory=dict)
    slots: int = 0
    writes: bool = False  # stores, emits, sends or calls out (directly)
    calls: set[str] = field(default_factory=set)
    #: (map variable, key name) -> the slot its storage key is kept in (see
    #: Checker._find_cached_keys)
    cached_keys: dict[tuple[str, str], int] = field(default_factory=dict)

    def slot(self, name: str, type_: Type, file: str, node: ast.AST) -> int:
        width = len(type_.fields) if isinstance(type_, RecordType) else 1
        if self.slots + width > MAX_LOCALS:
            raise error_at(file, node, f"more than {MAX_LOCALS} local slots (a record "
                                       "local takes one per field)")
        n = self.slots
        self.locals[name] = (n, type_)
        self.slots += width
        return n

    def hidden(self, node: ast.AST, what: str, type_: Type, file: str) -> int:
        """A slot the generated code needs for ``node`` (never a name in the source)."""
        return self.slot(f" {what}{id(node)}", type_, file, node)


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
    #: for each record or event construction, the argument expressions in field order
    #: (positional and keyword arguments both allowed, as in Python)
    field_args: dict[ast.AST, list[ast.expr]] = field(default_factory=dict)


class Checker:
    """Builds a :class:`Contract` from a parsed module, or raises CompileError."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.contract = Contract(file)
        self.fn: Function | None = None
        self.loops = 0
        #: names surely assigned here (None: this point is unreachable), and names
        #: assigned on at least one path to here
        self.must: set[str] | None = set()
        self.may: set[str] = set()

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

    def _type(self, node: ast.expr, *, storage: bool = False, record: bool = False,
              no_record: str = "a whole record is not a value here") -> Type:
        """The type ``node`` names. ``storage``: maps and records allowed (a storage
        variable); ``record``: records allowed (a local, a method's result); otherwise
        a record is refused with ``no_record``."""
        if isinstance(node, ast.Name) and node.id in BY_NAME:
            return BY_NAME[node.id]
        if isinstance(node, ast.Name) and node.id in self.contract.records:
            if not (storage or record):
                raise self.error(node, no_record)
            return self.contract.records[node.id]
        if (isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name)
                and node.value.id == "Map"):
            if not storage:
                raise self.error(node, "Map is only for storage variables")
            args = node.slice
            if not isinstance(args, ast.Tuple) or len(args.elts) != 2:
                raise self.error(node, "Map takes a key type and a value type: Map[K, V]")
            key = self._type(args.elts[0], no_record="a record cannot be a map key: key the "
                                                     "map by the record's id")
            return MapType("Map", key, self._type(args.elts[1], storage=True))
        raise self.error(node, f"unknown type {ast.unparse(node)!r} (types: uint, int, bool, "
                               "Address, bytes, str, Map[K, V], and records)")

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
            type_ = self._type(ann.args[0], no_record="a constant cannot be a record")
            value = self._constant_value(node.value)
            if type_ is ADDRESS and isinstance(value, str):  # "agora1..." text
                try:
                    value = address_from_text(value)
                except InvalidAddress as exc:
                    raise self.error(node.value, f"not an address: {exc}") from None
            if not self._fits(value, type_):
                raise self.error(node.value, f"{value!r} is not a {type_}")
            if isinstance(value, str | bytes) and len(
                    value.encode() if isinstance(value, str) else value) > MAX_LITERAL:
                raise self.error(node.value, f"a constant holds at most {MAX_LITERAL:,} bytes")
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
        kind = "event" if bases == ["Event"] else "record"
        if len(node.name.encode()) > 64:
            raise self.error(node, f"an {kind} name is at most 64 bytes")
        fields: list[tuple[str, Type]] = []
        for item in node.body:
            if isinstance(item, ast.Expr) and isinstance(item.value, ast.Constant):
                continue  # docstring
            if isinstance(item, ast.Pass):
                continue
            if not (isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name)
                    and item.value is None):
                raise self.error(item, f"an {kind} lists its fields as name: type")
            if any(item.target.id == f for f, _ in fields):
                raise self.error(item, f"field {item.target.id} is already declared")
            ann = item.annotation
            if isinstance(ann, ast.Subscript) and isinstance(ann.value, ast.Name) \
                    and ann.value.id == "Map":
                raise self.error(ann, f"an {kind} cannot hold a Map: declare a Map of its "
                                      f"own beside it, keyed by the {kind}'s id (e.g. "
                                      "members: Map[uint, Map[Address, bool]])")
            if isinstance(ann, ast.Name) and ann.id in self.contract.records:
                raise self.error(ann, f"an {kind}'s fields are plain values: a record "
                                      "cannot hold another record")
            fields.append((item.target.id, self._type(ann, no_record=f"an {kind}'s fields are "
                                                                       "plain values")))
        if len(fields) > MAX_FIELDS:
            raise self.error(node, f"an {kind} has at most {MAX_FIELDS} fields")
        if kind == "record":
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
            params = self._params(item)
            returns = None if item.returns is None else self._type(item.returns, record=True)
            if item.name in methods:
                raise self.error(item, f"method {item.name} is already declared")
            methods[item.name] = InterfaceMethod(item.name, tuple(params), returns,
                                                 bool(decorators))
        self.contract.interfaces[node.name] = methods

    def _params(self, node: ast.FunctionDef, *, records: bool = False
                ) -> list[tuple[str, Type]]:
        """The parameters; ``records``: a whole record may be one (an internal
        function's: the caller passes its fields, one slot each)."""
        a = node.args
        if a.vararg or a.kwarg or a.kwonlyargs or a.defaults or a.posonlyargs:
            raise self.error(node, "parameters are plain name: type pairs")
        if len(a.args) > MAX_PARAMS:
            raise self.error(node, f"{node.name} takes {len(a.args)} parameters, at most "
                                   f"{MAX_PARAMS}")
        params = []
        for arg in a.args:
            if arg.annotation is None:
                raise self.error(arg, f"parameter {arg.arg} needs a type")
            params.append((arg.arg, self._type(
                arg.annotation, record=records,
                no_record="a method's arguments are plain values: a whole record is passed "
                          "only to an internal function")))
        width = sum(len(t.fields) if isinstance(t, RecordType) else 1 for _, t in params)
        if width > 255:
            raise self.error(node, f"{node.name}'s parameters take {width} slots (a record one "
                                   "per field), at most 255")
        return params

    def _declare_function(self, node: ast.FunctionDef) -> None:
        self._fresh_name(node.name, node)
        decorators = []
        for d in node.decorator_list:
            if not isinstance(d, ast.Name) or d.id not in _DECORATORS:
                raise self.error(d, f"unknown decorator {ast.unparse(d)!r} (@public, @view, "
                                    "@payable)")
            decorators.append(d.id)
        if node.name == "__init__":
            if decorators and decorators != ["payable"]:
                raise self.error(node, "__init__ takes no decorator but @payable")
            if node.returns is not None:
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
        params = self._params(node, records=kind == "internal")
        returns = None
        if node.returns is not None:
            returns = self._type(node.returns, record=kind != "internal",
                                 no_record="an internal function returns one plain value: "
                                           "return the id the record is stored under (a "
                                           "method may return a whole record)")
        self.contract.functions[node.name] = Function(node.name, node, params, returns, kind,
                                                      "payable" in decorators)

    def _fresh_name(self, name: str, node: ast.AST) -> None:
        c = self.contract
        if (name in c.constants or name in c.storage or name in c.events or name in c.functions
                or name in c.records or name in c.interfaces):
            raise self.error(node, f"{name} is already declared")
        if name in BY_NAME or name in _RESERVED:
            raise self.error(node, f"{name} is a reserved name")

    # ------------------------------------------------------------ functions

    def _check_function(self, fn: Function) -> None:
        self.fn = fn
        for name, type_ in fn.params:
            if name in fn.locals:
                raise self.error(fn.node, f"parameter {name} given twice")
            fn.slot(name, type_, self.file, fn.node)
        self.must = {name for name, _ in fn.params}
        self.may = set(self.must)
        self._block(fn.node.body)
        if fn.returns is not None and not self._always_returns(fn.node.body):
            raise self.error(fn.node, f"{fn.name} must end in a return of {fn.returns}")
        self._find_cached_keys(fn)
        self.fn = None

    def _find_cached_keys(self, fn: Function) -> None:
        """Map entries the function reads or writes at least twice under a key that is
        a parameter never assigned, or a local assigned exactly once (``self.orders
        [order_id]`` ...): the code computes such a key once -- at entry, or right after
        the local's assignment -- and loads it from a slot at every use. The key cannot
        change in between, so this changes nothing but the work done."""
        assigned: dict[str, int] = {}
        for node in ast.walk(fn.node):
            targets: list[ast.expr] = []
            if isinstance(node, ast.Assign):
                targets = node.targets
            elif isinstance(node, ast.AugAssign | ast.AnnAssign | ast.For):
                targets = [node.target]
            for t in targets:
                if isinstance(t, ast.Name):
                    assigned[t.id] = assigned.get(t.id, 0) + 1
        params = {name for name, _ in fn.params}
        uses: dict[tuple[str, str], int] = {}
        for node in ast.walk(fn.node):
            if isinstance(node, ast.Subscript) and _keyed_by_name(node, self.contract):
                name = node.slice.id  # type: ignore[attr-defined]
                fixed = (name in params and name not in assigned) or \
                    (name not in params and assigned.get(name) == 1)
                if fixed:
                    pair = (node.value.attr, name)  # type: ignore[attr-defined]
                    uses[pair] = uses.get(pair, 0) + 1
        for (var, name), count in sorted(uses.items()):
            if count >= 2:
                fn.cached_keys[(var, name)] = fn.slot(f" key {var}[{name}]", BYTES, self.file,
                                                      fn.node)

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

    # ------------------------------------------------------------ flow of assignments

    def _assigned(self, name: str) -> None:
        if self.must is not None:
            self.must.add(name)
        self.may.add(name)

    def _diverge(self) -> None:
        """The rest of this block is never reached (return, break, continue, raise)."""
        self.must = None

    @staticmethod
    def _meet(a: set[str] | None, b: set[str] | None) -> set[str] | None:
        if a is None:
            return b
        if b is None:
            return a
        return a & b

    def _read_local(self, node: ast.Name) -> Type:
        fn = self.fn
        assert fn is not None
        if self.must is not None and node.id not in self.must:
            if node.id in self.may:
                raise self.error(node, f"{node.id} is assigned on some paths to here but not "
                                       "all: give it a value on every path (or before the "
                                       "branch) before reading it")
            raise self.error(node, f"{node.id} is read before it is assigned")
        return fn.locals[node.id][1]

    def _block(self, body: list[ast.stmt]) -> None:
        for stmt in body:
            self._stmt(stmt)

    def _stmt(self, node: ast.stmt) -> None:  # noqa: C901 - one branch per statement kind
        fn = self.fn
        assert fn is not None
        if isinstance(node, ast.AnnAssign):
            self._declare_local(node)
        elif isinstance(node, ast.Assign):
            if len(node.targets) != 1:
                raise self.error(node, "assign one target at a time")
            target = node.targets[0]
            if isinstance(target, ast.Subscript) and isinstance(target.slice, ast.Slice):
                raise self.error(target, "slice assignment is not supported: build the new "
                                         "value with slice(b, start, length) and +")
            if isinstance(target, ast.Tuple | ast.List):
                raise self.error(target, "assign one target at a time (no unpacking)")
            # Python evaluates the value first, then the target's keys.
            want = self._target_type(target)
            if isinstance(want, RecordType):
                self._record_value(node.value, want,
                                   into_local=isinstance(target, ast.Name))
                if not isinstance(target, ast.Name):  # the stored target's key, kept once
                    fn.hidden(target, "target_key", BYTES, self.file)
            else:
                self._expect(node.value, want)
            self._target(target)
        elif isinstance(node, ast.AugAssign):
            want = self._target_type(node.target)
            if isinstance(node.target, ast.Name):
                self._read_local(node.target)
            if type(node.op) not in _BINOPS or not want.is_integer:
                raise self.error(node, "augmented assignment is for integers (+=, -=, *=, "
                                       "//=, %=)")
            if isinstance(node.op, ast.Pow) and want is INT:
                raise self.error(node, "** is for uint")
            self._target(node.target)
            self._expect(node.value, want)
        elif isinstance(node, ast.If):
            self._expect(node.test, BOOL)
            must0, may0 = (None if self.must is None else set(self.must)), set(self.may)
            self._block(node.body)
            must1, may1 = self.must, self.may
            self.must, self.may = must0, may0
            self._block(node.orelse)
            self.must = self._meet(must1, self.must)
            self.may = may1 | self.may
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
            self._diverge()
        elif isinstance(node, ast.Return):
            if fn.returns is None:
                if node.value is not None:
                    raise self.error(node, f"{fn.name} returns nothing")
            elif node.value is None:
                raise self.error(node, f"{fn.name} must return a {fn.returns}")
            elif isinstance(fn.returns, RecordType):
                self._record_value(node.value, fn.returns, into_local=False)
            else:
                self._expect(node.value, fn.returns)
            self._diverge()
        elif isinstance(node, ast.Assert):
            self._expect(node.test, BOOL)
            if node.msg is not None and not (isinstance(node.msg, ast.Constant)
                                             and isinstance(node.msg.value, str)):
                raise self.error(node.msg, "an assert's reason is a string literal")
            if isinstance(node.test, ast.Constant) and node.test.value is False:
                self._diverge()
        elif isinstance(node, ast.Expr):
            self._expr_statement(node.value)
        elif isinstance(node, ast.Pass):
            pass
        else:
            raise self.error(node, f"{type(node).__name__} statements are not supported")

    def _declare_local(self, node: ast.AnnAssign) -> None:
        fn = self.fn
        assert fn is not None
        if not isinstance(node.target, ast.Name) or node.value is None:
            raise self.error(node, "a local is declared as name: type = value")
        name = node.target.id
        if name in self.contract.constants:
            raise self.error(node, f"{name} is already declared (a constant)")
        type_ = self._type(node.annotation, record=True)
        if isinstance(type_, RecordType):
            self._record_value(node.value, type_, into_local=True)
        else:
            self._expect(node.value, type_)
        known = fn.locals.get(name)
        if known is not None:
            # Declared before in the text: only in another branch that cannot have run
            # on the way here (the same name in the `if` and in the `else`).
            if name in self.may or known[1] != type_:
                raise self.error(node, f"{name} is already declared (as {known[1]}): assign "
                                       f"it with {name} = ...")
        else:
            fn.slot(name, type_, self.file, node)
        self.contract.types[node.target] = type_
        self._assigned(name)

    def _loop(self, body: list[ast.stmt]) -> None:
        """A loop body may run any number of times: afterwards only what was assigned
        before it is sure."""
        must0 = None if self.must is None else set(self.must)
        self.loops += 1
        self._block(body)
        self.loops -= 1
        self.must = must0

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
        fn.hidden(node, "bound", UINT, self.file)
        fn.hidden(node, "counter", UINT, self.file)
        must0 = None if self.must is None else set(self.must)
        self._assigned(name)  # inside the body only: range(0) never assigns it
        self._loop(node.body)
        self.must = must0

    # ------------------------------------------------------------ assignment targets

    def _target_type(self, node: ast.expr) -> Type:
        """The type an assignment target holds (checks nothing that reads it)."""
        fn = self.fn
        assert fn is not None
        if isinstance(node, ast.Name):
            if node.id not in fn.locals:
                raise self.error(node, f"{node.id} is not a local variable (declare it as "
                                       f"{node.id}: type = value)")
            return fn.locals[node.id][1]
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) \
                and node.value.id in fn.locals:
            record = fn.locals[node.value.id][1]
            if not isinstance(record, RecordType):
                raise self.error(node, f"{node.value.id} has no fields")
            t = record.field(node.attr)
            if t is None:
                raise self.error(node, f"{record.name} has no field {node.attr}")
            return t
        if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Slice):
            raise self.error(node, "slice assignment is not supported: build the new value "
                                   "with slice(b, start, length) and +")
        type_ = self._storage_type(node)
        if isinstance(type_, MapType):
            raise self.error(node, "a whole map cannot be assigned")
        return type_

    def _target(self, node: ast.expr) -> None:
        """Check and annotate an assignment target (its keys are evaluated after the
        value, as in Python)."""
        fn = self.fn
        assert fn is not None
        if isinstance(node, ast.Name):
            self._assigned(node.id)
            return
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) \
                and node.value.id in fn.locals:
            self._read_local(node.value)  # a field of a record local: the local must be set
            return
        type_ = self._storage_ref(node)
        fn.writes = True
        self.contract.types[node] = type_

    def _record_value(self, node: ast.expr, record: RecordType, *, into_local: bool) -> None:
        """A whole ``record`` value: Name(fields...), a stored one, a local one, or (into
        a local only) the result of an interface call."""
        fn = self.fn
        assert fn is not None
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
                and node.func.id in self.contract.records:
            if node.func.id != record.name:
                raise self.error(node, f"expected a {record.name}, got a {node.func.id}")
            self._field_args(node, record.name, list(record.fields))
            self.contract.types[node] = record
            return
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                and isinstance(node.func.value, ast.Call):
            got = self._call(node)
            if got != record:
                raise self.error(node, f"expected a {record.name}, got {got}")
            if not into_local:
                raise self.error(node, "assign an interface call's record to a local first")
            self.contract.types[node] = record
            return
        if isinstance(node, ast.Name) and node.id in fn.locals:
            got = self._read_local(node)
            if got != record:
                raise self.error(node, f"expected a {record.name}, got {got}")
            self.contract.types[node] = record
            return
        if isinstance(node, ast.Attribute | ast.Subscript) and _on_self(node):
            got = self._storage_ref(node)
            if got != record:
                raise self.error(node, f"expected a {record.name}, got {got}")
            self.contract.types[node] = record
            fn.hidden(node, "key", BYTES, self.file)
            return
        raise self.error(node, f"assign a whole {record.name} as {record.name}(...), a stored "
                               f"{record.name} or a local {record.name}")

    def _field_args(self, node: ast.Call, name: str, fields: list[tuple[str, Type]]) -> None:
        """Check ``Name(...)`` for a record or event: positional arguments first, then
        keywords, each field exactly once (as Python binds them); records its argument
        expressions in field order."""
        if len(node.args) > len(fields):
            raise self.error(node, f"{name} takes {len(fields)} fields, in order")
        given: dict[str, ast.expr] = {}
        for arg, (fname, _) in zip(node.args, fields, strict=False):
            if isinstance(arg, ast.Starred):
                raise self.error(arg, "*arguments are not supported")
            given[fname] = arg
        names = [f for f, _ in fields]
        for kw in node.keywords:
            if kw.arg is None:
                raise self.error(kw, "**arguments are not supported")
            if kw.arg not in names:
                raise self.error(kw, f"{name} has no field {kw.arg}")
            if kw.arg in given:
                raise self.error(kw, f"{name} is given field {kw.arg} twice")
            given[kw.arg] = kw.value
        missing = [f for f in names if f not in given]
        if missing:
            if not node.keywords:
                raise self.error(node, f"{name} takes {len(fields)} fields, in order")
            raise self.error(node, f"{name} is missing field(s) {', '.join(missing)}")
        # Checked in source order (that is the order they are evaluated in).
        source_order = [*node.args, *(kw.value for kw in node.keywords)]
        for arg in source_order:
            fname = next(f for f, a in given.items() if a is arg)
            self._expect(arg, dict(fields)[fname])
        in_order = [given[f] for f in names]
        self.contract.field_args[node] = in_order
        if source_order != in_order:  # keywords out of order: evaluated into slots first
            assert self.fn is not None
            for fname, ftype in fields:
                self.fn.hidden(node, f"arg_{fname}_", ftype, self.file)

    def _storage_type(self, node: ast.expr) -> Type:
        """The type of a storage reference, without annotating or checking keys."""
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) \
                and node.value.id == "self":
            var = self.contract.storage.get(node.attr)
            if var is None:
                raise self.error(node, f"no storage variable {node.attr}")
            return var.type
        if isinstance(node, ast.Attribute):
            outer = self._storage_type(node.value)
            if not isinstance(outer, RecordType):
                raise self.error(node, f"{ast.unparse(node.value)} has no fields")
            t = outer.field(node.attr)
            if t is None:
                raise self.error(node, f"{outer.name} has no field {node.attr}")
            return t
        if isinstance(node, ast.Subscript):
            if isinstance(node.slice, ast.Slice):
                raise self.error(node, "slices are not supported: use slice(b, start, length)")
            outer = self._storage_type(node.value)
            if not isinstance(outer, MapType):
                raise self.error(node, "only maps can be indexed")
            return outer.value
        raise self.error(node, f"cannot assign to {ast.unparse(node)}")

    def _storage_ref(self, node: ast.expr) -> Type:
        """The type of self.var, self.map[k]...[k] or a record field of either (keys
        checked)."""
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) \
                and node.value.id == "self":
            return self._storage_type(node)
        if isinstance(node, ast.Attribute):
            self._storage_ref(node.value)
            return self._storage_type(node)
        if isinstance(node, ast.Subscript):
            type_ = self._storage_type(node)  # refuses slices and indexing a non-map
            self._storage_ref(node.value)     # the keys inside first, as Python goes
            outer = self._storage_type(node.value)
            assert isinstance(outer, MapType)
            self._expect(node.slice, outer.key)
            return type_
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
            if len(node.args) != 1 or node.keywords or not isinstance(node.args[0], ast.Call) \
                    or not isinstance(node.args[0].func, ast.Name):
                raise self.error(node, "emit takes one event: emit(Name(...))")
            ev_call = node.args[0]
            ev = self.contract.events.get(ev_call.func.id)  # type: ignore[attr-defined]
            if ev is None:
                raise self.error(ev_call, f"no event {ast.unparse(ev_call.func)}")
            self._field_args(ev_call, ev.name, ev.fields)
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
        self.contract.types[node] = self._call(node)  # a result nobody reads is dropped

    # ------------------------------------------------------------ expressions

    def _expect(self, node: ast.expr, want: Type) -> None:
        got = self._expr(node, want)
        if got != want:
            raise self.error(node, f"expected {want}, got {got}")

    def _expr(self, node: ast.expr, hint: Type | None = None) -> Type:
        t = self._expr_type(node, hint)
        if isinstance(t, RecordType):
            raise self.error(node, f"a whole record ({t.name}) cannot be used here: read its "
                                   "fields one at a time, or assign it to a local "
                                   f"{t.name}")
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
            if isinstance(v, str | bytes):
                size = len(v.encode()) if isinstance(v, str) else len(v)
                if size > MAX_LITERAL:
                    raise self.error(node, f"a literal holds at most {MAX_LITERAL:,} bytes")
                return STR if type(v) is str else BYTES
            raise self.error(node, f"{type(v).__name__} literals are not supported")
        if isinstance(node, ast.Name):
            if node.id in fn.locals:
                return self._read_local(node)
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
                if base.id in fn.locals:
                    record = self._read_local(base)
                    if not isinstance(record, RecordType):
                        raise self.error(node, f"{base.id} is a {record}: it has no fields")
                    field_type = record.field(node.attr)
                    if field_type is None:
                        raise self.error(node, f"{record.name} has no field {node.attr}")
                    return field_type
                if base.id != "self":
                    raise self.error(node, f"unknown attribute {ast.unparse(node)}")
            t = self._storage_ref(node)
            if isinstance(t, MapType):
                raise self.error(node, "a map is used by indexing it")
            return t
        if isinstance(node, ast.Subscript):
            if isinstance(node.slice, ast.Slice):
                raise self.error(node, "slices are not supported: use slice(b, start, length)")
            t = self._storage_ref(node)
            if isinstance(t, MapType):
                raise self.error(node, "index the map down to a value")
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
            for operand in node.values:
                self._expect(operand, BOOL)
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

    def _call(self, node: ast.Call) -> Type:  # noqa: C901 - one branch per kind of call
        fn = self.fn
        assert fn is not None
        func = node.func
        if isinstance(func, ast.Name):
            if func.id in self.contract.records:
                raise self.error(node, f"a whole {func.id} is only assigned, stored or "
                                       "returned: read or set its fields one at a time")
            if func.id in self.contract.events:
                raise self.error(node, f"{func.id} is an event: emit({func.id}(...))")
            if node.keywords:
                raise self.error(node, "keyword arguments are not supported")
            if func.id == "sha256":
                if len(node.args) != 1:
                    raise self.error(node, "sha256 takes one bytes value")
                self._expect(node.args[0], BYTES)
                return BYTES
            if func.id == "len":
                if len(node.args) != 1:
                    raise self.error(node, "len takes one value")
                t = self._expr(node.args[0])
                if t is STR:
                    raise self.error(node, "len of a str would count characters in Python, "
                                           "but a contract sees bytes: measure its UTF-8 "
                                           "bytes with len(text.encode())")
                if t is not BYTES:
                    raise self.error(node, "len is for bytes")
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
            if node.keywords:
                raise self.error(node, "keyword arguments are not supported")
            callee = self.contract.functions.get(func.attr)
            if callee is None or callee.kind not in ("internal",):
                raise self.error(node, f"self.{func.attr} is not an internal function "
                                       "(public methods are called from outside)")
            if len(node.args) != len(callee.params):
                raise self.error(node, f"{callee.name} takes {len(callee.params)} arguments")
            for arg, (_, t) in zip(node.args, callee.params, strict=True):
                if isinstance(t, RecordType):
                    self._record_value(arg, t, into_local=False)
                else:
                    self._expect(arg, t)
            fn.calls.add(callee.name)
            return callee.returns or NONE
        if (isinstance(func, ast.Attribute) and isinstance(func.value, ast.Call)
                and isinstance(func.value.func, ast.Name)
                and func.value.func.id in self.contract.interfaces):
            return self._interface_call(node, func)
        if isinstance(func, ast.Attribute) and func.attr == "encode" and not node.args \
                and not node.keywords and not (isinstance(func.value, ast.Name)
                                               and func.value.id == "self"):
            self._expect(func.value, STR)  # str.encode(): the same bytes, typed as bytes
            return BYTES
        raise self.error(node, f"cannot call {ast.unparse(func)}")

    def _interface_call(self, node: ast.Call, func: ast.Attribute) -> Type:
        fn = self.fn
        assert fn is not None
        wrap = func.value
        assert isinstance(wrap, ast.Call) and isinstance(wrap.func, ast.Name)
        iface = self.contract.interfaces[wrap.func.id]
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
        for kw in node.keywords:
            if kw.arg != "value":
                raise self.error(kw, "an interface call takes one keyword: value= (the coin "
                                     "it sends)")
            if method.view:
                raise self.error(kw, f"{func.attr} is a @view: it is called read-only and "
                                     "takes no value")
            self._expect(kw.value, UINT)
            # Python evaluates the value after the arguments; the VM wants it below
            # them on the stack, so the arguments wait in slots.
            for i, (_, t) in enumerate(method.params):
                fn.hidden(node, f"arg_{i}_", t, self.file)
        if not method.view:
            fn.writes = True  # the callee may change state
        return method.returns or NONE


def _keyed_by_name(node: ast.Subscript, contract: Contract) -> bool:
    """``self.var[name]``, var a storage map."""
    base = node.value
    return (isinstance(node.slice, ast.Name) and isinstance(base, ast.Attribute)
            and isinstance(base.value, ast.Name) and base.value.id == "self"
            and base.attr in contract.storage
            and isinstance(contract.storage[base.attr].type, MapType))


def _on_self(node: ast.expr) -> bool:
    """``node`` is a storage reference: self.x, self.m[k], self.m[k].f ..."""
    while isinstance(node, ast.Attribute | ast.Subscript):
        node = node.value
    return isinstance(node, ast.Name) and node.id == "self"


def _literal_only(node: ast.expr) -> bool:
    if isinstance(node, ast.Constant):
        return type(node.value) is int
    if isinstance(node, ast.BinOp):
        return _literal_only(node.left) and _literal_only(node.right)
    return False


def check_module(module: ast.Module, file: str) -> Contract:
    return Checker(file).check(module)


__all__ = ["Checker", "Contract", "Function", "CompileError", "check_module"]
