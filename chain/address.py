"""Addresses and their checksummed text form.

An address is the first 20 bytes of SHA-256 of an ed25519 public key. People see it as
a Bech32m string (BIP-350) with the human-readable part ``agora``, e.g.
``agora1...``: the BCH checksum detects any error in up to 4 characters and most other
typos, so a mistyped address is refused before anything is signed. The functions below
follow BIP-173/BIP-350 and keep their names.
"""

from __future__ import annotations

from functools import lru_cache

from .errors import InvalidAddress
from .keys import ADDRESS_SIZE

HRP = "agora"
CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
BECH32M_CONST = 0x2BC830A3
_CHARSET_REV = {c: i for i, c in enumerate(CHARSET)}
MAX_LENGTH = 90


_GENERATOR = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)
#: For each 5-bit ``top``, the XOR of the generator terms its bits select (BIP-173's
#: inner loop, done once here instead of per character).
_GEN_BY_TOP = tuple(
    _GENERATOR[0] * (t & 1) ^ _GENERATOR[1] * (t >> 1 & 1) ^ _GENERATOR[2] * (t >> 2 & 1)
    ^ _GENERATOR[3] * (t >> 3 & 1) ^ _GENERATOR[4] * (t >> 4 & 1) for t in range(32))


def bech32_polymod(values: list[int]) -> int:
    """BIP-173 checksum polynomial over GF(32)."""
    table = _GEN_BY_TOP
    chk = 1
    for value in values:
        chk = ((chk & 0x1FFFFFF) << 5 ^ value) ^ table[chk >> 25]
    return chk


def bech32_hrp_expand(hrp: str) -> list[int]:
    """The human-readable part as checksummed values (BIP-173)."""
    return [ord(x) >> 5 for x in hrp] + [0] + [ord(x) & 31 for x in hrp]


def bech32m_create_checksum(hrp: str, data: list[int]) -> list[int]:
    """Six checksum characters for ``data`` (BIP-350, Bech32m constant)."""
    values = bech32_hrp_expand(hrp) + data
    polymod = bech32_polymod(values + [0] * 6) ^ BECH32M_CONST
    return [(polymod >> 5 * (5 - i)) & 31 for i in range(6)]


def bech32m_verify_checksum(hrp: str, data: list[int]) -> bool:
    """True iff ``data`` (with its 6 checksum values) is a valid Bech32m string body."""
    return bech32_polymod(bech32_hrp_expand(hrp) + data) == BECH32M_CONST


def convertbits(data: bytes | list[int], frombits: int, tobits: int, pad: bool) -> list[int]:
    """Regroup bits (BIP-173 reference); raises ValueError on invalid padding."""
    acc = 0
    bits = 0
    ret: list[int] = []
    maxv = (1 << tobits) - 1
    for value in data:
        if value < 0 or value >> frombits:
            raise ValueError("value out of range")
        acc = (acc << frombits) | value
        bits += frombits
        while bits >= tobits:
            bits -= tobits
            ret.append((acc >> bits) & maxv)
    if pad:
        if bits:
            ret.append((acc << (tobits - bits)) & maxv)
    elif bits >= frombits or ((acc << (tobits - bits)) & maxv):
        raise ValueError("invalid padding")
    return ret


def bech32m_encode(hrp: str, data: list[int]) -> str:
    """Encode 5-bit values with a human-readable part as a Bech32m string."""
    combined = data + bech32m_create_checksum(hrp, data)
    return hrp + "1" + "".join(CHARSET[d] for d in combined)


def bech32m_decode(text: str) -> tuple[str, list[int]]:
    """Split and check a Bech32m string; returns (hrp, 5-bit data without checksum)."""
    if any(ord(c) < 33 or ord(c) > 126 for c in text):
        raise InvalidAddress("address contains characters outside printable ASCII")
    if text.lower() != text and text.upper() != text:
        raise InvalidAddress("address mixes upper and lower case")
    if len(text) > MAX_LENGTH:
        raise InvalidAddress("address is too long")
    text = text.lower()
    pos = text.rfind("1")
    if pos < 1 or pos + 7 > len(text):
        raise InvalidAddress("address has no separator '1' or is too short")
    hrp = text[:pos]
    try:
        data = [_CHARSET_REV[c] for c in text[pos + 1 :]]
    except KeyError as exc:
        raise InvalidAddress(f"address contains the invalid character {exc.args[0]!r}") from None
    if not bech32m_verify_checksum(hrp, data):
        raise InvalidAddress("address checksum does not match (mistyped?)")
    return hrp, data[:-6]


def address_to_text(address: bytes) -> str:
    """The checksummed text form (``agora1...``) of a 20-byte address."""
    if type(address) is not bytes or len(address) != ADDRESS_SIZE:
        raise InvalidAddress(f"an address is {ADDRESS_SIZE} bytes")
    return _to_text(address)


@lru_cache(maxsize=16_384)  # the RPC API names the same accounts over and over
def _to_text(address: bytes) -> str:
    return bech32m_encode(HRP, convertbits(address, 8, 5, True))


def address_from_text(text: str) -> bytes:
    """Parse and checksum-verify an address text; raises InvalidAddress."""
    if not isinstance(text, str):
        raise InvalidAddress("an address text must be a string")
    return _from_text(text.strip())


@lru_cache(maxsize=16_384)  # only answers are kept: a refusal raises, every time
def _from_text(text: str) -> bytes:
    hrp, data = bech32m_decode(text)
    if hrp != HRP:
        raise InvalidAddress(f"address is for {hrp!r}, expected {HRP!r}")
    try:
        raw = bytes(convertbits(data, 5, 8, False))
    except ValueError as exc:
        raise InvalidAddress(f"address payload is malformed: {exc}") from None
    if len(raw) != ADDRESS_SIZE:
        raise InvalidAddress(f"address payload is {len(raw)} bytes, expected {ADDRESS_SIZE}")
    return raw
