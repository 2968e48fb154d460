"""The contract language's sharp edges, each with the small contract that showed it.

An adversarial review compiled small contracts and found: a whole-record assignment
that swapped fields wrongly, an evaluation order that was not Python's, ``@view`` that
did not hold across contracts, interface results decoded as garbage, locals that could
be read unassigned, ``len`` of a ``str`` that counted bytes, and unclear errors. Each
test here is one of those contracts, now right, plus the records-as-values and typed
selectors that fixing them brought.
"""

from __future__ import annotations

import hashlib
import textwrap

import pytest

from vm.asm import assemble
from vm.compiler import CompileError, compile_source
from vm.compiler.types import BY_NAME, selector
from vm.interpreter import Status
from vm.testing import Env, Reverted

ALICE, BOB = b"\x01" * 20, b"\x02" * 20
FILE = "edge.agc"


def src(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def compile_error(source: str) -> CompileError:
    with pytest.raises(CompileError) as info:
        compile_source(src(source), FILE)
    return info.value


# ---------------------------------------------------------------- records, whole


SWAP = '''
class Pair(Record):
    a: uint
    b: uint

p: Pair

@public
def set(a: uint, b: uint):
    self.p = Pair(a, b)

@public
def swap():
    self.p = Pair(self.p.b, self.p.a)

@public
def swap_local():
    q: Pair = self.p
    q = Pair(q.b, q.a)
    self.p = q

@view
def get() -> Pair:
    return self.p
'''


def test_a_whole_record_assignment_evaluates_every_field_before_storing_any() -> None:
    c = Env().loads(src(SWAP))
    c.set(1, 2)
    c.swap()
    assert c.get() == {"a": 2, "b": 1}
    c.swap_local()
    assert c.get() == {"a": 1, "b": 2}


def test_records_copy_between_storage_locals_and_results() -> None:
    c = Env().loads(src('''
        class Item(Record):
            owner: Address
            price: uint
            name: str
            live: bool

        items: Map[uint, Item]

        @public
        def put(i: uint, owner: Address, price: uint, name: str):
            self.items[i] = Item(owner, price, name, True)

        @public
        def copy(src: uint, dst: uint):
            self.items[dst] = self.items[src]

        @public
        def discount(i: uint, off: uint) -> Item:
            it: Item = self.items[i]
            it.price -= off
            it.name = it.name + " (sale)"
            self.items[i] = it
            return it

        @view
        def item(i: uint) -> Item:
            return self.items[i]
    '''))
    c.put(1, ALICE, 100, "lamp")
    c.copy(1, 2)
    assert c.discount(2, 30) == {"owner": ALICE, "price": 70, "name": "lamp (sale)",
                                 "live": True}
    assert c.item(1) == {"owner": ALICE, "price": 100, "name": "lamp", "live": True}
    assert c.item(2)["price"] == 70
    # a record never stored reads as zero values, the address as 20 zero bytes
    assert c.item(9) == {"owner": bytes(20), "price": 0, "name": "", "live": False}
    with pytest.raises(Reverted, match="uint underflow"):
        c.discount(1, 101)


def test_records_and_events_are_built_with_keywords_in_any_order_as_python_binds_them() -> None:
    c = Env().loads(src('''
        class P(Record):
            a: uint
            b: uint
            c: uint

        class Seen(Event):
            first: uint
            second: uint

        p: P
        n: uint

        def next() -> uint:
            self.n += 1
            return self.n

        @public
        def build():
            # keywords out of order: evaluated as written (c, then a), stored by name
            self.p = P(self.next(), c=self.next(), b=self.next())
            emit(Seen(second=self.next(), first=self.next()))

        @view
        def get() -> P:
            return self.p
    '''))
    c.build()
    assert c.last_events == [("Seen", {"second": 4, "first": 5})]
    assert c.get() == {"a": 1, "c": 2, "b": 3}


def test_a_whole_record_is_passed_to_an_internal_function_field_by_field() -> None:
    c = Env().loads(src('''
        class Box(Record):
            w: uint
            h: uint
            label: str

        boxes: Map[uint, Box]

        def area(b: Box, scale: uint) -> uint:
            return b.w * b.h * scale

        @public
        def put(i: uint, w: uint, h: uint):
            self.boxes[i] = Box(w, h, "box")

        @view
        def stored_area(i: uint) -> uint:
            return self.area(self.boxes[i], 1)

        @view
        def built_area(w: uint) -> uint:
            local: Box = Box(w, w + 1, "local")
            return self.area(local, 2) + self.area(Box(1, 1, "one"), 10)
    '''))
    c.put(3, 4, 5)
    assert c.stored_area(3) == 20
    assert c.built_area(2) == 2 * 3 * 2 + 10


def test_an_event_with_no_fields_is_declared_with_pass() -> None:
    c = Env().loads(src('''
        class Ping(Event):
            pass

        @public
        def ping():
            emit(Ping())
    '''))
    c.ping()
    assert c.last_events == [("Ping", {})]


# ---------------------------------------------------------------- evaluation order


ORDER = '''
m: Map[uint, uint]
k: uint

def bump() -> uint:
    self.k += 1
    return 7

@public
def assign():
    self.m[self.k] = self.bump()

@public
def add():
    self.m[self.k] += self.bump()

@view
def at(i: uint) -> uint:
    return self.m[i]
'''


def test_assignment_evaluates_the_value_before_the_key_as_python_does() -> None:
    # Python: the right-hand side first, then the target's subscript. bump() moves k
    # from 0 to 1, so the value lands under key 1.
    c = Env().loads(src(ORDER))
    c.assign()
    assert (c.at(0), c.at(1)) == (0, 7)


def test_augmented_assignment_evaluates_the_key_first_as_python_does() -> None:
    # Python: x[k] += v evaluates x[k]'s key, reads it, then v. k is 0 when read.
    c = Env().loads(src(ORDER))
    c.add()
    assert (c.at(0), c.at(1)) == (7, 0)


def test_arguments_of_an_interface_call_with_value_are_evaluated_before_the_value() -> None:
    env = Env()
    sink = env.loads(src('''
        got: Map[uint, uint]

        @public
        @payable
        def take(tag: uint):
            self.got[tag] = msg.value

        @view
        def seen(tag: uint) -> uint:
            return self.got[tag]
    '''))
    payer = env.loads(src('''
        class Sink(Interface):
            def take(tag: uint): ...

        n: uint

        def tick() -> uint:
            self.n += 1
            return self.n

        @public
        @payable
        def pay(sink: Address):
            Sink(sink).take(self.tick(), value=self.tick())
    '''))
    payer.pay(sink.address, value=10)
    assert (sink.seen(1), sink.seen(2)) == (2, 0)  # tag 1 (first), value 2 (second)
    assert env.balance(sink.address) == 2


# ---------------------------------------------------------------- @view across contracts


READER = '''
class Store(Interface):
    @view
    def peek() -> uint: ...

store: Address

def __init__(store: Address):
    self.store = store

@view
def look() -> uint:
    return Store(self.store).peek()

@public
def look_and_note() -> uint:
    return Store(self.store).peek()
'''

# A callee whose `peek` writes: a careless or hostile contract behind a @view interface.
WRITING_PEEK = '''
n: uint

@public
def peek() -> uint:
    self.n += 1
    return self.n
'''


def test_a_view_that_calls_a_writing_callee_fails_the_vm_enforces_read_only() -> None:
    env = Env()
    store = env.loads(src(WRITING_PEEK))
    reader = env.loads(src(READER), store.address)
    for method in ("look", "look_and_note"):
        with pytest.raises(Reverted, match="read-only call") as info:
            getattr(reader, method)()
        assert info.value.status == Status.REVERTED
    assert store.peek() == 1  # called directly, it may write; nothing was written before


def test_a_view_reads_through_a_read_only_callee() -> None:
    env = Env()
    store = env.loads(src('''
        n: uint

        @public
        def set(v: uint):
            self.n = v

        @view
        def peek() -> uint:
            return self.n
    '''))
    reader = env.loads(src(READER), store.address)
    store.set(41)
    assert reader.look() == 41


# ---------------------------------------------------------------- interface results


def test_an_interface_that_declares_other_types_than_the_callee_reverts_never_misreads() -> None:
    env = Env()
    callee = env.loads(src('''
        @view
        def name() -> str:
            return "abc"

        @view
        def count(who: Address) -> uint:
            return 5
    '''))
    caller = env.loads(src('''
        class Callee(Interface):
            @view
            def name() -> uint: ...
            @view
            def count(who: uint) -> uint: ...

        @view
        def name_as_number(c: Address) -> uint:
            return Callee(c).name()

        @view
        def count_of(c: Address, who: uint) -> uint:
            return Callee(c).count(who)
    '''))
    with pytest.raises(Reverted, match="unknown method"):
        caller.name_as_number(callee.address)  # was: int.from_bytes(b"abc") = 6382179
    with pytest.raises(Reverted, match="unknown method"):
        caller.count_of(callee.address, 7)


def test_a_result_that_does_not_decode_as_the_declared_type_reverts() -> None:
    """A hand-written callee answering the right selector with a 40-byte "uint" or a
    non-record: the caller reverts instead of decoding it."""
    env = Env()
    caller = env.loads(src('''
        class Rec(Record):
            a: uint
            b: Address

        class Odd(Interface):
            @view
            def big() -> uint: ...
            @view
            def flag() -> bool: ...
            @view
            def rec() -> Rec: ...

        @view
        def big(c: Address) -> uint:
            return Odd(c).big()

        @view
        def flag(c: Address) -> bool:
            return Odd(c).flag()

        @view
        def rec(c: Address) -> uint:
            r: Rec = Odd(c).rec()
            return r.a
    '''))
    uint, boolean = BY_NAME["uint"], BY_NAME["bool"]
    big, flag = selector("big", (), uint), selector("flag", (), boolean)
    odd = b"\x0a" * 20
    code = assemble(f'''
        METHOD
        PUSHB "{big}"
        EQ
        JUMPI big
        METHOD
        PUSHB "{flag}"
        EQ
        JUMPI flag
        PUSHB 0x{"c4" + "01" + "aa"}   ; anything else: a packed array of ONE value
        RETURN
    big:
        PUSHB 0x{"ff" * 40}
        RETURN
    flag:
        PUSHI 2
        RETURN
    ''')
    env.world.set_code(odd, code)
    with pytest.raises(Reverted, match="big returned a bad value"):
        caller.big(odd)
    with pytest.raises(Reverted, match="flag returned a bad value"):
        caller.flag(odd)
    with pytest.raises(Reverted, match="UNPACK"):
        caller.rec(odd)


def test_a_record_comes_back_through_an_interface_into_a_local() -> None:
    env = Env()
    shop = env.loads(src('''
        class Terms(Record):
            seller: Address
            price: uint
            note: str

        terms: Map[uint, Terms]

        @public
        def offer(i: uint, price: uint, note: str):
            self.terms[i] = Terms(msg.sender, price, note)

        @view
        def terms_of(i: uint) -> Terms:
            return self.terms[i]
    '''))
    buyer = env.loads(src('''
        class Deal(Record):        # another name, the same fields: the shape is the type
            seller: Address
            price: uint
            note: str

        class Shop(Interface):
            @view
            def terms_of(i: uint) -> Deal: ...

        @view
        def total(shop: Address, i: uint, n: uint) -> uint:
            d: Deal = Shop(shop).terms_of(i)
            return d.price * n

        @view
        def seller(shop: Address, i: uint) -> Address:
            d: Deal = Shop(shop).terms_of(i)
            return d.seller
    '''))
    shop.offer(3, 250, "fresh", sender=BOB)
    assert buyer.total(shop.address, 3, 4) == 1_000
    assert buyer.seller(shop.address, 3) == BOB


def test_selectors_are_the_name_and_a_hash_of_the_full_signature() -> None:
    assert selector("take", (("x", BY_NAME["uint"]), ("y", BY_NAME["Address"])), None) == \
        "take/" + hashlib.sha256(b"take(uint,Address)->").hexdigest()[:8]
    abi = compile_source(src(SWAP), FILE).abi
    get = next(m for m in abi["methods"] if m["name"] == "get")
    assert get["signature"] == "get()->(a:uint,b:uint)"
    assert get["output"] == "Pair"
    assert abi["records"] == {"Pair": [{"name": "a", "type": "uint"},
                                       {"name": "b", "type": "uint"}]}


# ---------------------------------------------------------------- locals


def test_a_local_first_assigned_in_both_branches_is_allowed() -> None:
    c = Env().loads(src('''
        @view
        def pick(c: bool) -> uint:
            if c:
                x: uint = 1
            else:
                x: uint = 2
            return x

        @view
        def label(n: uint) -> str:
            if n == 0:
                s: str = "none"
            elif n == 1:
                s = "one"
            else:
                return "many"
            return s
    '''))
    assert (c.pick(True), c.pick(False)) == (1, 2)
    assert [c.label(n) for n in (0, 1, 2)] == ["none", "one", "many"]


@pytest.mark.parametrize(("source", "line", "fragment"), [
    ('''
     @view
     def f(c: bool) -> uint:
         if c:
             x: uint = 1
         return x
     ''', 5, "some paths"),
    ('''
     @view
     def f(n: uint) -> uint:
         for i in range(n):
             pass
         return i
     ''', 5, "some paths"),
    ('''
     @view
     def f(c: bool) -> uint:
         while c:
             y: uint = 1
             c = False
         return y
     ''', 6, "some paths"),
    ('''
     @view
     def f(c: bool) -> uint:
         if c:
             x: uint = 1
         x: uint = 2
         return x
     ''', 5, "already declared"),
    ('''
     @view
     def f(c: bool) -> uint:
         if c:
             x: uint = 1
         else:
             x: bool = True
         return 0
     ''', 6, "already declared"),
    ('''
     @view
     def f(c: bool) -> uint:
         if c:
             x: uint = 1
         else:
             return x
         return x
     ''', 6, "read before it is assigned"),
])
def test_reading_a_local_that_may_be_unassigned_is_a_compile_error(
        source: str, line: int, fragment: str) -> None:
    err = compile_error(source)
    assert err.line == line
    assert fragment in err.message


def test_a_branch_that_returns_does_not_leave_its_locals_unassigned_after_it() -> None:
    c = Env().loads(src('''
        @view
        def f(c: bool) -> uint:
            if c:
                return 9
            else:
                x: uint = 4
            return x
    '''))
    assert (c.f(True), c.f(False)) == (9, 4)


# ---------------------------------------------------------------- len, str


def test_len_of_a_str_is_a_compile_error_that_says_to_measure_bytes() -> None:
    err = compile_error('''
        @view
        def f(s: str) -> uint:
            return len(s)
    ''')
    assert (err.line, err.col) == (3, 12)
    assert "len(text.encode())" in err.message


def test_encode_measures_utf8_bytes_as_python_does() -> None:
    c = Env().loads(src('''
        @view
        def size(s: str) -> uint:
            return len(s.encode())

        @view
        def raw(s: str) -> bytes:
            return s.encode()
    '''))
    for text in ("", "agora", "h\u00e9", "\u4e2d\u6587"):
        assert c.size(text) == len(text.encode())
        assert c.raw(text) == text.encode()


# ---------------------------------------------------------------- clearer errors


@pytest.mark.parametrize(("source", "line", "col", "fragment"), [
    ('''
     b: bytes
     @public
     def f():
         self.b[0:2] = b"xy"
     ''', 4, 5, "slice assignment is not supported"),
    ('''
     @view
     def f(b: bytes) -> bytes:
         return b[1:3]
     ''', 3, 12, "slice(b, start, length)"),
    ('''
     class R(Record):
         a: uint
         m: Map[uint, uint]
     ''', 3, 8, "cannot hold a Map"),
    ('''
     class R(Record):
         a: uint
     class S(Record):
         r: R
     ''', 4, 8, "cannot hold another record"),
    ('''
     class R(Record):
         a: uint
         b: uint
     r: R
     @public
     def f():
         self.r = R(1, a=2)
     ''', 7, 19, "field a twice"),
    ('''
     class R(Record):
         a: uint
         b: uint
     r: R
     @public
     def f():
         self.r = R(a=1)
     ''', 7, 14, "missing field(s) b"),
    ('''
     class R(Record):
         a: uint
     @public
     def f(r: R):
         pass
     ''', 4, 10, "a method's arguments are plain values"),
    ('''
     class R(Record):
         a: uint
     r: R
     def f() -> R:
         return self.r
     ''', 4, 12, "internal function returns one plain value"),
    ('''
     class R(Record):
         a: uint
     r: R
     @view
     def f() -> bool:
         return self.r == self.r
     ''', 6, 12, "whole record"),
    ('''
     class Sink(Interface):
         @view
         def peek() -> uint: ...
     @public
     def f(a: Address) -> uint:
         return Sink(a).peek(value=1)
     ''', 6, 25, "called read-only"),
])
def test_clear_errors_at_the_right_place(source: str, line: int, col: int,
                                         fragment: str) -> None:
    err = compile_error(source)
    assert (err.line, err.col) == (line, col), err
    assert fragment in err.message


def test_too_many_parameters_is_reported_at_the_function_not_by_the_assembler() -> None:
    params = ", ".join(f"p{i}: uint" for i in range(70))
    err = compile_error(f"@public\ndef f({params}):\n    pass\n")
    assert (err.line, err.col) == (2, 1)
    assert "at most 64" in err.message


def test_an_event_with_too_many_fields_is_reported_at_the_event() -> None:
    fields = "".join(f"    f{i}: uint\n" for i in range(70))
    err = compile_error(f"x: uint\nclass Big(Event):\n{fields}")
    assert (err.line, err.col) == (2, 1)
    assert "at most 64 fields" in err.message


def test_code_too_large_for_the_vm_is_reported_at_the_statement_that_crosses_the_limit() -> None:
    body = "".join(f"    self.x = {i} + {i} + {i} + {i} + {i} + {i} + {i}\n"
                   for i in range(3_000))
    source = f"x: uint\n@public\ndef f():\n{body}"
    with pytest.raises(CompileError) as info:
        compile_source(source, FILE)
    err = info.value
    assert 4 < err.line < 3_004  # a statement inside f, not line 1
    assert "65536-byte limit" in err.message and "split the contract" in err.message


def test_a_string_literal_the_vm_cannot_push_is_a_compile_error_at_the_literal() -> None:
    text = "x" * 70_000
    err = compile_error(f'''
        @view
        def f() -> str:
            return "{text}"
    ''')
    assert (err.line, err.col) == (3, 12)
    assert "at most 65,535 bytes" in err.message
