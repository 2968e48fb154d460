"""Text from elsewhere, made safe to print: a node's answers, a contract's revert
reason and a counterparty's tracking note all reach the user's terminal, and none of
them may drive it (escape sequences that clear the screen, retitle the window or
forge lines), flood it, or reorder it (bidirectional overrides)."""

from __future__ import annotations

import re

# C0 and C1 controls, DEL, bidirectional embeddings/overrides/isolates, and lone
# surrogates (what undecodable bytes become).
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
_UNSAFE_OR_NEWLINE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    if code in (0x0A, 0x0D, 0x09):
        return {0x0A: "\\n", 0x0D: "\\r", 0x09: "\\t"}[code]
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str, limit: int = 20_000) -> str:
    """``text`` with every control character escaped except newlines and tabs, cut to
    ``limit`` characters."""
    if len(text) > limit:
        text = text[:limit] + f"... ({len(text) - limit:,} more characters not shown)"
    return _UNSAFE.sub(_escape, text)


def one_line(text: str, limit: int = 300) -> str:
    """Someone else's text for inside one of our sentences: controls and newlines
    escaped, cut to ``limit`` characters."""
    if len(text) > limit:
        text = text[:limit] + "..."
    return _UNSAFE_OR_NEWLINE.sub(_escape, text)
