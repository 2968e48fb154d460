"""The assembler and disassembler: readable ``.asm`` <-> bytecode.

Syntax, one instruction per line::

    ; a comment (so is anything after '#')
    .const LIMIT 10          ; a named constant: an integer, "text" or 0xhex bytes
    start:                   ; a label: assembles to JUMPDEST, a jump target
        PUSHI LIMIT          ; integers: 42, 0x2a, -1 (two's complement), or a constant
        PUSHB "counter"      ; byte strings: "text" (Python escapes), 0xdeadbeef, or a constant
        JUMPI start          ; jumps name labels
        CALLI helper 2       ; internal call: label and number of arguments

Mnemonics are case-insensitive. Errors name the line. The disassembler prints code
back in this syntax with a label ``L<offset>`` at every JUMPDEST, so
``assemble(disassemble(code)) == code`` for any valid code.
"""

from __future__ import annotations

import ast
import re

from .errors import AssemblyError, InvalidCode
from .opcodes import BY_NAME, INT_MAX, INT_MIN, MAX_CODE_SIZE, UINT_MAX, Op
from .program import decode

_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[^\s]+')
_LABEL = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*$")


def _strip_comment(line: str) -> str:
    out = []
    quoted = False
    escaped = False
    for ch in line:
        if quoted:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                quoted = False
        elif ch == '"':
            quoted = True
        elif ch in ";#":
            break
        out.append(ch)
    return "".join(out)


def _literal(token: str, line: int, source: str) -> int | bytes:
    if token.startswith('"'):
        try:
            text = ast.literal_eval(token)
        except (ValueError, SyntaxError):
            raise AssemblyError(line, f"bad string literal {token}", source) from None
        try:
            return text.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate such as "\ud800"
            raise AssemblyError(line, f"string is not valid Unicode: {token}", source) from None
    try:
        return int(token, 0)
    except ValueError:
        raise AssemblyError(line, f"not a number, string or known name: {token}", source) from None


def assemble(text: str, source: str = "<asm>") -> bytes:
    """Assemble ``text``; raises AssemblyError naming the line."""
    constants: dict[str, str] = {}
    labels: dict[str, int] = {}
    # Pass 1: constants, labels and sizes (every instruction's size is known from its
    # operands alone, so label offsets are fixed before any is used).
    offset = 0
    too_big_at = 0  # the first line whose code ends past MAX_CODE_SIZE
    pending: list[tuple[int, str, list[str], int]] = []  # line, mnemonic, operands, offset
    for n, raw in enumerate(text.splitlines(), 1):
        tokens = _TOKEN.findall(_strip_comment(raw))
        if not tokens:
            continue
        head = tokens[0]
        if head.lower() == ".const":
            if len(tokens) != 3 or not _LABEL.match(tokens[1]):
                raise AssemblyError(n, ".const takes a name and a value", source)
            if tokens[1] in constants:
                raise AssemblyError(n, f"constant {tokens[1]} defined twice", source)
            _literal(tokens[2], n, source)  # refuse a bad value where it is defined
            # Kept as written: 0x... is an integer to PUSHI and bytes to PUSHB.
            constants[tokens[1]] = tokens[2]
            continue
        if head.endswith(":"):
            name = head[:-1]
            if not _LABEL.match(name):
                raise AssemblyError(n, f"bad label name {name!r}", source)
            if name in labels:
                raise AssemblyError(n, f"label {name} defined twice", source)
            labels[name] = offset
            pending.append((n, "JUMPDEST", [], offset))
            offset += 1
            tokens = tokens[1:]
            if not tokens:
                continue
            head = tokens[0]
        info = BY_NAME.get(head.upper())
        if info is None:
            raise AssemblyError(n, f"unknown instruction {head}", source)
        operands = tokens[1:]
        if len(operands) != len(info.immediates):
            raise AssemblyError(
                n, f"{info.name} takes {len(info.immediates)} operand(s), got {len(operands)}",
                source,
            )
        pending.append((n, info.name, operands, offset))
        offset += 1 + sum(_size(kind, tok, constants, n, source)
                          for kind, tok in zip(info.immediates, operands, strict=True))
        if offset > MAX_CODE_SIZE and not too_big_at:
            too_big_at = n
    if too_big_at:
        raise AssemblyError(too_big_at, f"code passes the {MAX_CODE_SIZE}-byte limit here "
                                        f"({offset} bytes in all)", source)
    # Pass 2: encode.
    out = bytearray()
    for n, name, operands, _ in pending:
        info = BY_NAME[name]
        out.append(info.op)
        for kind, tok in zip(info.immediates, operands, strict=True):
            out += _encode(kind, tok, constants, labels, n, source)
    return bytes(out)


def _value(tok: str, constants: dict[str, str], line: int, source: str) -> int | bytes:
    return _literal(constants.get(tok, tok), line, source)


def _int_bytes(value: int | bytes, line: int, source: str) -> bytes:
    if type(value) is not int:
        raise AssemblyError(line, "PUSHI takes an integer", source)
    if not INT_MIN <= value <= UINT_MAX:
        raise AssemblyError(line, f"integer {value} does not fit in 256 bits", source)
    if value < 0:
        value &= UINT_MAX  # two's complement
    return value.to_bytes((value.bit_length() + 7) >> 3, "big")


def _bytes_value(value: int | bytes, line: int, source: str) -> bytes:
    if not isinstance(value, bytes):  # 0x... given to PUSHB means those bytes
        raise AssemblyError(line, "PUSHB takes \"text\" or 0x-hex bytes", source)
    return value


def _size(kind: str, tok: str, constants: dict[str, str], line: int, source: str) -> int:
    if kind == "u8":
        return 1
    if kind == "u16":
        return 2
    if kind == "int":
        return 1 + len(_int_bytes(_value(tok, constants, line, source), line, source))
    return 2 + len(_pushb_value(tok, constants, line, source))


def _pushb_value(tok: str, constants: dict[str, str], line: int, source: str) -> bytes:
    tok = constants.get(tok, tok)
    if tok.lower().startswith("0x"):
        try:
            return bytes.fromhex(tok[2:])
        except ValueError:
            raise AssemblyError(line, f"bad hex bytes {tok}", source) from None
    return _bytes_value(_literal(tok, line, source), line, source)


def _encode(kind: str, tok: str, constants: dict[str, str], labels: dict[str, int],
            line: int, source: str) -> bytes:
    if kind in ("u8", "u16"):
        if kind == "u16" and tok in labels:
            if labels[tok] > 0xFFFF:
                raise AssemblyError(line, f"label {tok} is past offset 65535, out of jump "
                                          "range", source)
            return labels[tok].to_bytes(2, "big")
        if kind == "u16" and tok not in constants and _LABEL.match(tok):
            raise AssemblyError(line, f"unknown label {tok}", source)
        value = _value(tok, constants, line, source)
        limit = 0xFF if kind == "u8" else 0xFFFF
        if type(value) is not int or not 0 <= value <= limit:
            raise AssemblyError(line, f"operand {tok} must be 0..{limit}", source)
        return value.to_bytes(1 if kind == "u8" else 2, "big")
    if kind == "int":
        raw = _int_bytes(_value(tok, constants, line, source), line, source)
        return bytes([len(raw)]) + raw
    raw = _pushb_value(tok, constants, line, source)
    if len(raw) > 0xFFFF:
        raise AssemblyError(line, "byte string longer than 65,535 bytes", source)
    return len(raw).to_bytes(2, "big") + raw


def disassemble(code: bytes) -> str:
    """``code`` as ``.asm`` text; raises InvalidCode for code that does not decode."""
    instructions = decode(code)
    lines = []
    for off, op, imms in instructions:
        if op is Op.JUMPDEST:
            lines.append(f"L{off}:")
            continue
        operands = []
        for kind, value in zip(BY_NAME[op.name].immediates, imms, strict=True):
            if op in (Op.JUMP, Op.JUMPI, Op.CALLI) and kind == "u16":
                operands.append(f"L{value}")
            elif kind == "int":
                operands.append(str(value) if value <= INT_MAX else hex(value))
            elif kind == "bytes":
                operands.append("0x" + value.hex())
            else:
                operands.append(str(value))
        lines.append("    " + " ".join([op.name, *operands]))
    return "\n".join(lines) + "\n"


__all__ = ["assemble", "disassemble", "AssemblyError", "InvalidCode"]
