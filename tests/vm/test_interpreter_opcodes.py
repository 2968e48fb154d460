"""The interpreter dispatches on opcode numbers written as literals (``op == 0x15``),
not on ``Op.LOAD``: an attribute lookup per instruction is too slow for the hottest
loop of the VM. These tests read vm/interpreter.py's source and hold every such
literal to vm/opcodes.py (and to vm/fusion.py for the internal fused opcodes):

* every number compared with ``op`` is an instruction that exists;
* every ``if``/``elif`` that tests ``op`` carries a comment naming the instructions it
  tests (``elif op == 0x15:  # LOAD``), and the names are those of the numbers;
* the two dispatch chains (the instructions, and the fused sequences) are followed
  branch by branch: each branch, ranges (``op <= 0x2D``) and ``else`` included, names
  exactly the instructions that reach it, so an instruction added inside a range, or
  a number that drifts, fails here instead of running the wrong code;
* a number tested inside a branch (or inside the helper method the branch calls) is
  one that can reach it: no unreachable cases.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from dataclasses import dataclass
from pathlib import Path

import pytest

import vm.fusion
import vm.interpreter
from vm.opcodes import Op

SOURCE = Path(vm.interpreter.__file__).read_text(encoding="utf-8")
TREE = ast.parse(SOURCE)
LINES = SOURCE.splitlines()

#: The comment on each line that has one.
COMMENTS = {tok.start[0]: tok.string.lstrip("#").strip()
            for tok in tokenize.generate_tokens(io.StringIO(SOURCE).readline)
            if tok.type == tokenize.COMMENT}

INSTRUCTIONS = {int(op): op.name for op in Op}
FUSED = {code: name for name, code in vars(vm.fusion).items()
         if name.isupper() and isinstance(code, int) and code in vm.fusion.FIRST}
NAMES = INSTRUCTIONS | FUSED

#: A comment's leading list of instruction names: "PUSHI, PUSHB" or "IFZ: ISZERO; ...".
_LABEL = re.compile(r"^([A-Z][A-Z0-9]*(?:, [A-Z][A-Z0-9]*)*)(?=$|[\s:;,(])")
_COMPARE = {ast.Eq: "==", ast.NotEq: "!=", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">",
            ast.GtE: ">="}


def label(line: int) -> set[str] | None:
    """The instruction names a line's comment starts with (None: no such comment). A
    list that ends with a comma goes on in the comment line below."""
    text = COMMENTS.get(line, "")
    while text.endswith(",") and LINES[line].strip().startswith("#"):
        line += 1
        text += " " + COMMENTS[line]
    match = _LABEL.match(text)
    return set(match.group(1).split(", ")) if match else None


def op_literals(node: ast.AST) -> list[tuple[str, int, int]]:
    """(operator, number, line) of every comparison of ``op`` with a number."""
    out = []
    for n in ast.walk(node):
        if isinstance(n, ast.Compare) and len(n.ops) == 1:
            left, right = n.left, n.comparators[0]
            if (isinstance(left, ast.Name) and left.id == "op"
                    and isinstance(right, ast.Constant) and type(right.value) is int):
                out.append((_COMPARE[type(n.ops[0])], right.value, n.lineno))
    return out


def is_pure(test: ast.expr, operators: tuple[str, ...] = ("==",)) -> bool:
    """Is ``test`` only comparisons of ``op`` with numbers (joined by ``or``)?"""
    if isinstance(test, ast.BoolOp) and isinstance(test.op, ast.Or):
        return all(is_pure(v, operators) for v in test.values)
    literals = op_literals(test)
    return (isinstance(test, ast.Compare) and len(literals) == 1
            and literals[0][0] in operators)


def catches(test: ast.expr, op: int) -> bool:
    return bool(eval(compile(ast.Expression(test), "<dispatch>", "eval"), {"op": op}))


def else_line(node: ast.If) -> int:
    """The line of ``node``'s ``else:`` (ast does not record it)."""
    line = node.orelse[0].lineno - 1
    while not LINES[line - 1].strip().startswith("else"):
        line -= 1
    return line


@dataclass
class Branch:
    line: int
    caught: set[int]
    body: list[ast.stmt]
    is_else: bool


def chain(node: ast.If, universe: set[int]) -> list[Branch]:
    """The branches of an ``if``/``elif``/``else`` chain on ``op`` and what each
    catches of ``universe``, in order."""
    left = set(universe)
    out = []
    while True:
        caught = {op for op in left if catches(node.test, op)}
        left -= caught
        out.append(Branch(node.lineno, caught, node.body, False))
        if len(node.orelse) == 1 and isinstance(node.orelse[0], ast.If) and \
                is_pure(node.orelse[0].test, tuple(_COMPARE.values())):
            node = node.orelse[0]
            continue
        if node.orelse:
            out.append(Branch(else_line(node), left, node.orelse, True))
        return out


def function(name: str) -> ast.FunctionDef:
    return next(n for n in ast.walk(TREE) if isinstance(n, ast.FunctionDef) and n.name == name)


def main_chain() -> ast.If:
    """The instruction dispatch: the ``if`` on ``op`` in ``Machine._run``'s loop."""
    loop = next(n for n in ast.walk(function("_run")) if isinstance(n, ast.While))
    return next(n for n in ast.walk(loop) if isinstance(n, ast.If)
                and op_literals(n.test) and is_pure(n.test, (">=",)))


def names(codes: set[int]) -> set[str]:
    return {NAMES[c] for c in codes}


# ---------------------------------------------------------------------- the tests


def test_every_number_compared_with_op_is_an_instruction() -> None:
    literals = op_literals(TREE)
    assert len(literals) > 60  # the parse found the dispatch
    for operator, number, line in literals:
        assert number in NAMES, f"vm/interpreter.py:{line}: op {operator} {number:#04x} " \
                                "is no instruction of vm/opcodes.py or vm/fusion.py"


def test_every_if_on_op_names_the_instructions_it_tests() -> None:
    checked = 0
    for node in ast.walk(TREE):
        if not isinstance(node, ast.If):
            continue
        equal = {n for o, n, _ in op_literals(node.test) if o == "=="}
        if not equal:
            continue
        named = label(node.lineno)
        where = f"vm/interpreter.py:{node.lineno}: {LINES[node.lineno - 1].strip()}"
        if is_pure(node.test):
            assert named is not None, f"{where} needs a comment naming {names(equal)}"
        if named is not None:
            assert named == names(equal), f"{where}: the comment names {named}, " \
                                          f"the numbers are {names(equal)}"
            checked += 1
    assert checked > 50


@pytest.mark.parametrize("which", ["instructions", "fused"])
def test_each_branch_of_the_dispatch_names_exactly_what_reaches_it(which: str) -> None:
    top = chain(main_chain(), set(NAMES))
    if which == "instructions":
        branches = top[1:]  # the first one is the fused sequences, checked below
    else:
        assert top[0].caught == set(FUSED)
        [fused] = [n for n in top[0].body if isinstance(n, ast.If)]
        branches = chain(fused, top[0].caught)
    reached: set[int] = set()
    for b in branches:
        where = f"vm/interpreter.py:{b.line}: {LINES[b.line - 1].strip()}"
        assert b.caught, f"{where}: no instruction reaches this branch"
        assert label(b.line) == names(b.caught), \
            f"{where}: the comment names {label(b.line)}, it is reached by {names(b.caught)}"
        reached |= b.caught
    assert reached == (set(INSTRUCTIONS) if which == "instructions" else set(FUSED))


def _helpers_called(body: list[ast.stmt]) -> set[str]:
    return {n.func.attr for s in body for n in ast.walk(s)
            if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
            and isinstance(n.func.value, ast.Name) and n.func.value.id == "self"
            and n.func.attr.startswith("_")}


def test_numbers_tested_inside_a_branch_can_reach_it() -> None:
    top = chain(main_chain(), set(NAMES))
    [fused] = [n for n in top[0].body if isinstance(n, ast.If)]
    branches = top[1:] + chain(fused, top[0].caught)
    helpers: dict[str, set[int]] = {}
    for b in branches:
        for statement in b.body:
            if statement is fused:
                continue
            for operator, number, line in op_literals(statement):
                assert number in b.caught, \
                    f"vm/interpreter.py:{line}: op {operator} {number:#04x} " \
                    f"({NAMES[number]}) is decided already: only {names(b.caught)} get here"
        for helper in _helpers_called(b.body):
            helpers.setdefault(helper, set()).update(b.caught)
    assert {"_arith", "_bits", "_bytes_op"} <= set(helpers)
    for helper, caught in helpers.items():
        for _, number, line in op_literals(function(helper)):
            assert number in caught, \
                f"vm/interpreter.py:{line}: {helper} tests {number:#04x} ({NAMES[number]}), " \
                f"but only {names(caught)} are handed to it"
