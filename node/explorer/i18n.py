"""Languages: English and Simplified Chinese.

A page's language is, in order: ``?lang=`` (which is then remembered in a cookie), the
cookie, the browser's ``Accept-Language``, English. Texts are written in English in the
code and templates (``t("Latest blocks")``) and looked up in :data:`catalog.ZH`; a
test checks that every text the explorer can show has its Chinese.
"""

from __future__ import annotations

from typing import Any

from .catalog import ZH

LANGS = ("en", "zh-CN")
DEFAULT = "en"
COOKIE = "agora_lang"
#: When a set (tests), every text asked for in Chinese that has no translation is added.
MISSES: set[str] | None = None


def parse(tag: str | None) -> str | None:
    """One of LANGS for a language tag (``zh``, ``zh-cn``, ``zh-Hans``, ``en-GB``...)."""
    if not tag:
        return None
    tag = tag.strip().lower()
    if tag.startswith("zh"):
        return "zh-CN"
    if tag.startswith("en"):
        return "en"
    return None


def from_accept_language(header: str | None) -> str | None:
    """The first of the browser's languages (by weight) that we speak."""
    if not header:
        return None
    choices: list[tuple[float, int, str]] = []
    for i, part in enumerate(header.split(",")[:20]):
        tag, _, params = part.strip().partition(";")
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        lang = parse(tag)
        if lang is not None and q > 0:
            choices.append((-q, i, lang))
    return min(choices)[2] if choices else None


def negotiate(query: str | None, cookie: str | None, accept: str | None) -> str:
    return parse(query) or parse(cookie) or from_accept_language(accept) or DEFAULT


class Translator:
    """``t(text, **values)``: ``text`` in this language, with ``{name}`` filled in."""

    def __init__(self, lang: str) -> None:
        self.lang = lang if lang in LANGS else DEFAULT
        self.zh = self.lang == "zh-CN"

    def __call__(self, text: str, /, **values: Any) -> str:
        if self.zh:
            found = ZH.get(text)
            if found is None and MISSES is not None:
                MISSES.add(text)
            text = found if found is not None else text
        return text.format(**values) if values else text
