"""Compile errors: each names the file, line and column and says what is wrong."""

from __future__ import annotations

import ast

from ..errors import RemoteError


class CompileError(RemoteError):
    """A contract source does not compile. ``line`` is 1-based, ``col`` 1-based."""

    def __init__(self, file: str, line: int, col: int, message: str) -> None:
        super().__init__(f"{file}:{line}:{col}: {message}")
        self.file = file
        self.line = line
        self.col = col
        self.message = message


def error_at(file: str, node: ast.AST | None, message: str) -> CompileError:
    line = getattr(node, "lineno", 1) or 1
    col = (getattr(node, "col_offset", 0) or 0) + 1
    return CompileError(file, line, col, message)
