"""The assembler and disassembler: ``.asm`` text <-> bytecode.

Contracts, tests and benchmarks are written in this assembly, so the assembler must
produce exactly the bytes the source means, say which line is wrong when it cannot,
and the disassembler must print any valid code back into source that assembles to the
same bytes (what an explorer shows for a deployed contract).
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vm.asm import assemble, disassemble
from vm.errors import AssemblyError, InvalidCode, RemoteError
from vm.opcodes import INT_MIN, MAX_CODE_SIZE, OPS, UINT_MAX, Op
from vm.program import load_program


def b(*parts: int | bytes) -> bytes:
    """Bytes from opcodes, small numbers and byte strings."""
    out = bytearray()
    for part in parts:
        out += part if isinstance(part, bytes) else bytes([part])
    return bytes(out)


def pushi(value: int) -> bytes:
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return b(Op.PUSHI, len(raw), raw)


def pushb(data: bytes) -> bytes:
    return b(Op.PUSHB, len(data).to_bytes(2, "big"), data)


def error_line(src: str) -> AssemblyError:
    with pytest.raises(AssemblyError) as info:
        assemble(src)
    return info.value


# ---------------------------------------------------------------------------- encoding


def test_every_instruction_encodes_as_documented() -> None:
    src = """
    top:
        PUSHI 5
        PUSHB "ab"
        DUP 3
        SWAP 2
        LOAD 255
        STORE 0
        EMIT 2
        CALL 1
        JUMP top
        JUMPI top
        CALLI top 4
        ADD
        STOP
    """
    assert assemble(src) == b(
        Op.JUMPDEST, pushi(5), pushb(b"ab"), Op.DUP, 3, Op.SWAP, 2, Op.LOAD, 255,
        Op.STORE, 0, Op.EMIT, 2, Op.CALL, 1, Op.JUMP, 0, 0, Op.JUMPI, 0, 0,
        Op.CALLI, 0, 0, 4, Op.ADD, Op.STOP,
    )


def test_empty_source_assembles_to_empty_code() -> None:
    assert assemble("") == b""
    assert assemble("\n  ; only a comment\n# and another\n\n") == b""


def test_labels_are_jumpdests_at_their_offsets() -> None:
    """A label assembles to a JUMPDEST; jumps name it by its byte offset, forward or
    backward, and a label may share its line with an instruction."""
    src = """
        JUMP end          ; forward reference
    loop: PUSHI 1
        JUMPI loop
    end:
        CALLI loop 0
    """
    code = assemble(src)
    assert code == b(Op.JUMP, 0, 10, Op.JUMPDEST, pushi(1), Op.JUMPI, 0, 3, Op.JUMPDEST,
                     Op.CALLI, 0, 3, 0)
    load_program(code)  # every jump lands on a JUMPDEST


def test_label_names_may_have_digits_dots_and_underscores() -> None:
    assert assemble("_a.b_1:\nJUMP _a.b_1") == b(Op.JUMPDEST, Op.JUMP, 0, 0)


def test_a_jump_may_take_a_numeric_offset() -> None:
    assert assemble("JUMPDEST\nJUMP 0\nJUMPI 0x0000") == b(Op.JUMPDEST, Op.JUMP, 0, 0,
                                                           Op.JUMPI, 0, 0)


@pytest.mark.parametrize(("value", "encoded"), [
    ("0", b(Op.PUSHI, 0)),
    ("1", b(Op.PUSHI, 1, 1)),
    ("255", b(Op.PUSHI, 1, 255)),
    ("256", b(Op.PUSHI, 2, 1, 0)),
    ("0x2a", b(Op.PUSHI, 1, 42)),
    ("0X2A", b(Op.PUSHI, 1, 42)),
    ("-1", b(Op.PUSHI, 32, b"\xff" * 32)),
    ("-5", b(Op.PUSHI, 32, b"\xff" * 31 + b"\xfb")),
    (str(INT_MIN), b(Op.PUSHI, 32, b"\x80" + bytes(31))),
    (str(UINT_MAX), b(Op.PUSHI, 32, b"\xff" * 32)),
])
def test_pushi_integers(value: str, encoded: bytes) -> None:
    """Decimal or hex; negative numbers as their 256-bit two's complement; always the
    minimal encoding (so the validator accepts it)."""
    code = assemble(f"PUSHI {value}")
    assert code == encoded
    load_program(code)


@pytest.mark.parametrize(("text", "data"), [
    ('""', b""),
    ('"counter"', b"counter"),
    ('"two words"', b"two words"),
    (r'"tab\there"', b"tab\there"),
    (r'"nul\x00"', b"nul\x00"),
    (r'"quote\"d"', b'quote"d'),
    (r'"back\\slash"', b"back\\slash"),
    ('"é€"', "é€".encode()),
    ("0xdeadbeef", b"\xde\xad\xbe\xef"),
    ("0x00ff", b"\x00\xff"),  # hex bytes keep their leading zeros
    ("0x", b""),
])
def test_pushb_byte_strings(text: str, data: bytes) -> None:
    """Text (Python escapes, encoded as UTF-8) or 0x-hex bytes."""
    assert assemble(f"PUSHB {text}") == pushb(data)


def test_mnemonics_are_case_insensitive() -> None:
    assert assemble("pushi 1\nPushB \"x\"\nadd\n.CONST K 2\nDup K") == b(
        pushi(1), pushb(b"x"), Op.ADD, Op.DUP, 2)


def test_labels_are_case_sensitive() -> None:
    assert assemble("a:\nA:\nJUMP A\nJUMP a") == b(Op.JUMPDEST, Op.JUMPDEST, Op.JUMP, 0, 1,
                                                   Op.JUMP, 0, 0)


# ---------------------------------------------------------------------------- constants


def test_const_int_text_and_hex() -> None:
    src = """
    .const LIMIT 10
    .const BIG 0x0100
    .const NAME "counter"
    .const SLOT 3
        PUSHI LIMIT
        PUSHI BIG
        PUSHB NAME
        STORE SLOT
        DUP SLOT
    """
    assert assemble(src) == b(pushi(10), pushi(256), pushb(b"counter"), Op.STORE, 3,
                              Op.DUP, 3)


def test_const_negative_int() -> None:
    assert assemble(".const M -2\nPUSHI M") == assemble("PUSHI -2")


def test_const_hex_bytes_work_with_pushb() -> None:
    """The module documents a constant as "an integer, "text" or 0xhex bytes", and PUSHB
    takes "a constant": a 0x-hex constant must push those bytes, the same as writing the
    hex inline."""
    assert assemble(".const MAGIC 0xdeadbeef\nPUSHB MAGIC") == assemble("PUSHB 0xdeadbeef")


def test_const_text_with_spaces_and_comment_chars() -> None:
    assert assemble('.const T "a b ; c # d"  ; comment\nPUSHB T') == pushb(b"a b ; c # d")


# ---------------------------------------------------------------------------- comments


@pytest.mark.parametrize("src", [
    "PUSHI 1 ; comment",
    "PUSHI 1 # comment",
    "PUSHI 1;comment",
    "PUSHI 1#comment PUSHI 2",
    "  PUSHI 1\t; with a tab",
    "; whole line\nPUSHI 1\n# whole line",
])
def test_comments(src: str) -> None:
    assert assemble(src) == pushi(1)


@pytest.mark.parametrize(("text", "data"), [
    ('"a;b"', b"a;b"),
    ('"a#b"', b"a#b"),
    ('";"', b";"),
    ('"# not a comment ; either"', b"# not a comment ; either"),
    (r'"x\\"', b"x\\"),  # an escaped backslash, then the string ends
])
def test_comment_characters_inside_strings_are_text(text: str, data: bytes) -> None:
    assert assemble(f"PUSHB {text} ; a real comment") == pushb(data)


def test_comment_characters_after_an_escaped_quote_are_text() -> None:
    """``\\"`` does not end a string, so a ';' after it is still inside the string."""
    assert assemble(r'PUSHB "say \"hi; there\"" ; comment') == pushb(b'say "hi; there"')


# ---------------------------------------------------------------------------- errors

ERRORS: list[tuple[str, str, int, str]] = [
    # (what, source, line, a fragment of the reason)
    ("unknown instruction", "PUSHI 1\n\nFROB 2", 3, "unknown instruction FROB"),
    ("unknown after a label", "x: FROB", 1, "unknown instruction"),
    ("too many operands", "STOP\nADD 1", 2, "takes 0 operand(s), got 1"),
    ("too few operands", "PUSHI", 1, "takes 1 operand(s), got 0"),
    ("CALLI needs two", "f:\nCALLI f", 2, "takes 2 operand(s), got 1"),
    ("undefined label", "JUMP nowhere", 1, "nowhere"),
    ("undefined label in CALLI", "; c\nCALLI nowhere 0", 2, "nowhere"),
    ("duplicate label", "a:\nSTOP\na:", 3, "label a defined twice"),
    ("bad label name", "9lives:", 1, "bad label name"),
    ("duplicate constant", ".const K 1\n.const K 2", 2, "constant K defined twice"),
    ("bad .const", ".const K", 1, ".const takes a name and a value"),
    ("bad .const name", ".const 1K 1", 1, ".const takes a name and a value"),
    ("u8 too big", "DUP 256", 1, "must be 0..255"),
    ("u8 negative", "LOAD -1", 1, "must be 0..255"),
    ("u8 of CALLI", "f:\nCALLI f 256", 2, "must be 0..255"),
    ("u16 too big", "JUMP 65536", 1, "must be 0..65535"),
    ("u8 given text", 'EMIT "x"', 1, "must be 0..255"),
    ("int too big", f"PUSHI {UINT_MAX + 1}", 1, "does not fit in 256 bits"),
    ("int too negative", f"PUSHI {INT_MIN - 1}", 1, "does not fit in 256 bits"),
    ("PUSHI of text", 'PUSHI "1"', 1, "PUSHI takes an integer"),
    ("PUSHB of a number", "PUSHB 5", 1, "PUSHB takes"),
    ("not a number", "PUSHI five", 1, "not a number"),
    ("unterminated string", 'PUSHB "abc', 1, "bad string literal"),
    ("bad escape", r'PUSHB "\x4"', 1, "bad string literal"),
    ("bad hex", "PUSHB 0xzz", 1, "bad hex bytes"),
    ("odd hex", "PUSHB 0xabc", 1, "bad hex bytes"),
]


@pytest.mark.parametrize(("src", "line", "fragment"), [e[1:] for e in ERRORS],
                         ids=[e[0] for e in ERRORS])
def test_errors_name_the_line(src: str, line: int, fragment: str) -> None:
    """Every mistake is an AssemblyError (a RemoteError: the source's fault) whose line is
    1-based, counting blank and comment lines, and whose reason says what is wrong."""
    error = error_line(src)
    assert isinstance(error, RemoteError)
    assert error.line == line
    assert fragment in error.reason
    assert f"<asm>:{line}:" in str(error)


def test_an_undefined_label_is_reported_as_one() -> None:
    """The assembler has a message for this case ("unknown label ..."): a jump to a name
    that is no label should say so, not that the name is "not a number"."""
    error = error_line("STOP\nJUMP nowhere")
    assert (error.line, error.reason) == (2, "unknown label nowhere")


def test_error_names_the_source() -> None:
    with pytest.raises(AssemblyError, match=r"^token\.asm:2: "):
        assemble("STOP\nBOGUS", source="token.asm")


def test_oversize_code_is_refused() -> None:
    fits = "JUMPDEST\n" * MAX_CODE_SIZE
    assert len(assemble(fits)) == MAX_CODE_SIZE
    error = error_line(fits + "STOP\n")
    assert error.line == MAX_CODE_SIZE + 1
    assert "limit" in error.reason


# ---------------------------------------------------------------------------- disassembler

PROGRAMS: list[str] = [
    "",
    "STOP",
    'PUSHB "k"\nPUSHB "v"\nSSTORE',
    f"PUSHI 0\nPUSHI -1\nPUSHI {UINT_MAX}\nPUSHI {INT_MIN}\nPUSHI 0x7f\nADD",
    'PUSHB ""\nPUSHB 0x00\nPUSHB "\\n\\x00é"\nCONCAT',
    """
    .const N 10
        PUSHI N
        STORE 0
    loop:
        LOAD 0
        ISZERO
        JUMPI done
        LOAD 0
        PUSHI 1
        SUB
        STORE 0
        CALLI helper 0
        JUMP loop
    helper:
        PUSHB "Tick"
        PUSHI 7
        EMIT 1
        RETI
    done:
        PUSHB 0x{callee}
        PUSHI 0
        PUSHB "get"
        PUSHB "arg"
        CALL 1
        POP
        RETURN
    """.replace("{callee}", "ce" * 20),
]


@pytest.mark.parametrize("src", PROGRAMS)
def test_disassemble_round_trips(src: str) -> None:
    code = assemble(src)
    load_program(code)
    text = disassemble(code)
    assert assemble(text) == code
    assert disassemble(assemble(text)) == text  # and the text is stable


def test_disassembly_format() -> None:
    """Labels are ``L<offset>``; large ints print in hex; byte strings as 0x-hex."""
    code = assemble('top:\nPUSHI 5\nPUSHI -1\nPUSHB "hi"\nDUP 2\nCALLI top 1\nJUMP top')
    assert disassemble(code) == (
        "L0:\n"
        "    PUSHI 5\n"
        f"    PUSHI {hex(UINT_MAX)}\n"
        "    PUSHB 0x6869\n"
        "    DUP 2\n"
        "    CALLI L0 1\n"
        "    JUMP L0\n"
    )


def test_disassembling_invalid_code_raises_invalid_code() -> None:
    with pytest.raises(InvalidCode) as info:
        disassemble(b(Op.POP, 0xFF))
    assert info.value.offset == 1


# A valid random program: instructions drawn from the opcode table, their immediates
# drawn by kind, and static jumps aimed at the JUMPDESTs the program contains.
_NO_JUMPS = [info for info in OPS.values() if info.op not in (Op.JUMP, Op.JUMPI, Op.CALLI)]


@st.composite
def valid_code(draw: st.DrawFn) -> bytes:
    infos = draw(st.lists(st.sampled_from(list(OPS.values())), max_size=30))
    if not any(info.op is Op.JUMPDEST for info in infos):
        infos = [info for info in infos if info.op not in (Op.JUMP, Op.JUMPI, Op.CALLI)]
    # the size of each instruction does not depend on its jump target: draw the rest first
    parts: list[tuple[Op, list[object]]] = []
    for info in infos:
        values: list[object] = []
        for kind in info.immediates:
            if kind == "u8":
                values.append(draw(st.integers(1 if info.op is Op.SWAP else 0, 255)))
            elif kind == "u16":
                values.append(None)  # a jump target, filled in below
            elif kind == "int":
                values.append(draw(st.integers(0, 255) | st.integers(0, UINT_MAX)))
            else:
                values.append(draw(st.binary(max_size=40)))
        parts.append((info.op, values))
    offsets, pos = [], 0
    for op, values in parts:
        if op is Op.JUMPDEST:
            offsets.append(pos)
        pos += 1 + sum(len(_imm(kind, v if v is not None else 0))
                       for kind, v in zip(OPS[op].immediates, values, strict=True))
    out = bytearray()
    for op, values in parts:
        out.append(op)
        for kind, value in zip(OPS[op].immediates, values, strict=True):
            out += _imm(kind, draw(st.sampled_from(offsets)) if value is None else value)
    return bytes(out)


def _imm(kind: str, value: object) -> bytes:
    if kind == "u8":
        return bytes([value])  # type: ignore[list-item]
    if kind == "u16":
        return value.to_bytes(2, "big")  # type: ignore[attr-defined]
    if kind == "int":
        raw = value.to_bytes((value.bit_length() + 7) // 8, "big")  # type: ignore[attr-defined]
        return bytes([len(raw)]) + raw
    return len(value).to_bytes(2, "big") + value  # type: ignore[arg-type, operator]


@settings(max_examples=200)
@given(valid_code())
def test_disassemble_round_trips_any_valid_code(code: bytes) -> None:
    """assemble(disassemble(code)) == code for every valid program the table allows."""
    load_program(code)  # the generator only makes valid code
    assert assemble(disassemble(code)) == code


@settings(max_examples=100)
@given(st.lists(st.sampled_from(_NO_JUMPS), max_size=20), st.integers(INT_MIN, UINT_MAX))
def test_assembled_source_is_always_valid_code(infos: list, number: int) -> None:
    """Whatever instructions a source names (with in-range operands), the assembler makes
    code the validator accepts: the assembler never emits a non-canonical encoding."""
    lines = []
    for info in infos:
        operands = []
        for kind in info.immediates:
            operands.append({"u8": "1", "u16": "0", "int": str(number),
                             "bytes": '"x"'}[kind])
        lines.append(" ".join([info.name.lower(), *operands]))
    code = assemble("\n".join(lines))
    load_program(code)
    assert assemble(disassemble(code)) == code
