"""Parameter types shared by the method modules, and the mapping of chain-view errors
to JSON-RPC errors. A parameter is checked and converted once, by pydantic, at the edge:
a handler receives bytes for a hash or an address, never text to parse again."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

from pydantic import AfterValidator, Field, StrictInt, StrictStr

from ...chainview import NotFound, NotKept, ViewError, parse_address, parse_hex
from ..protocol import cannot_answer, not_found


def _hash32(text: str) -> bytes:
    raw = parse_hex(text, "a hash")
    if len(raw) != 32:
        raise ValueError("a hash is 32 bytes of hex")
    return raw


def _address(text: str) -> bytes:
    return parse_address(text)


def _hex(text: str) -> bytes:
    return parse_hex(text, "this value")


#: A 32-byte hash as hex (``0x`` optional); the handler gets bytes.
Hash = Annotated[StrictStr, Field(max_length=66, json_schema_extra={"pattern": "^(0x)?[0-9a-fA-F]{64}$"}),
                 AfterValidator(_hash32)]
#: An address as ``agora1...`` text or 20 bytes of hex; the handler gets bytes.
AddressText = Annotated[StrictStr, Field(max_length=90, examples=["agora1..."]),
                        AfterValidator(_address)]
#: Hex bytes; the handler gets bytes.
HexBytes = Annotated[StrictStr, AfterValidator(_hex)]
#: A height whose state is asked for (0: the genesis state).
Height = Annotated[StrictInt, Field(ge=0, lt=1 << 63)]
#: A block's height (the first block is 1).
BlockHeight = Annotated[StrictInt, Field(ge=1, lt=1 << 63)]
#: A page size.
Limit = Annotated[StrictInt, Field(ge=1, le=1000)]


def page_size(requested: int | None, maximum: int, default: int = 20) -> int:
    """The page size to use: the request's, bounded by the node's ``max_page``."""
    if requested is None:
        return min(default, maximum)
    if requested > maximum:
        raise cannot_answer(f"a page holds at most {maximum} items on this node; "
                            f"asked for {requested}")
    return requested


@contextmanager
def answering() -> Iterator[None]:
    """Turn the chain view's refusals into JSON-RPC errors."""
    try:
        yield
    except NotFound as exc:
        raise not_found(str(exc)) from None
    except (NotKept, ViewError) as exc:
        raise cannot_answer(str(exc)) from None
