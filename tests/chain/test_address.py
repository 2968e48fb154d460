"""Checksummed address text: BIP-350 Bech32m vectors and typo detection."""

from __future__ import annotations

import pytest
from chain_helpers import ALICE, BOB
from hypothesis import given
from hypothesis import strategies as st

from chain.address import (
    CHARSET,
    HRP,
    address_from_text,
    address_to_text,
    bech32_hrp_expand,
    bech32_polymod,
    bech32m_decode,
    bech32m_encode,
    convertbits,
)
from chain.errors import InvalidAddress

# BIP-350 "Test vectors for Bech32m": valid strings.
VALID_BECH32M = [
    "A1LQFN3A",
    "a1lqfn3a",
    "an83characterlonghumanreadablepartthatcontainsthetheexcludedcharactersbioandnumber11sg7hg6",
    "abcdef1l7aum6echk45nj3s0wdvt2fg8x9yrzpqzd3ryx",
    "11llllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllludsr8",
    "split1checkupstagehandshakeupstreamerranterredcaperredlc445v",
    "?1v759aa",
]

# BIP-350 invalid Bech32m strings, with the reason the BIP gives.
INVALID_BECH32M = [
    ("\x201xj0phk", "outside printable ASCII"),  # HRP character out of range
    ("\x7f1g6xzxy", "outside printable ASCII"),
    ("\x801vctc34", "outside printable ASCII"),
    (
        "an84characterslonghumanreadablepartthatcontainsthetheexcludedcharactersbioandnumber11d6pts4",
        "too long",
    ),
    ("qyrz8wqd2c9m", "no separator"),
    ("1qyrz8wqd2c9m", "no separator"),  # empty HRP
    ("y1b0jsk6g", "invalid character 'b'"),
    ("lt1igcx5c0", "invalid character 'i'"),
    ("in1muywd", "too short"),  # too short checksum
    ("mm1crxm3i", "invalid character 'i'"),  # invalid character in checksum
    ("au1s5cgom", "invalid character 'o'"),
    ("M1VUXWEZ", "checksum"),  # checksum calculated with uppercase form of HRP
    ("16plkw9", "too short"),  # empty HRP
    ("1p2gdwpf", "no separator"),  # empty HRP
]


@pytest.mark.parametrize("text", VALID_BECH32M)
def test_bip350_valid_strings_decode(text: str) -> None:
    hrp, data = bech32m_decode(text)
    assert hrp == text.lower()[: text.lower().rfind("1")]
    # Re-encoding gives the same string (lower case).
    assert bech32m_encode(hrp, data) == text.lower()


def test_bip350_vector_payloads() -> None:
    # The "abcdef" vector carries the charset values 31, 30, ..., 0 in order.
    assert bech32m_decode("abcdef1l7aum6echk45nj3s0wdvt2fg8x9yrzpqzd3ryx") == (
        "abcdef", list(range(31, -1, -1)),
    )
    hrp, data = bech32m_decode(VALID_BECH32M[4])
    assert hrp == "1"
    assert data == [31] * 82
    assert bech32m_decode("A1LQFN3A") == ("a", [])


@pytest.mark.parametrize(("text", "match"), INVALID_BECH32M)
def test_bip350_invalid_strings_are_refused(text: str, match: str) -> None:
    with pytest.raises(InvalidAddress, match=match):
        bech32m_decode(text)


def test_a_bech32_string_is_not_a_bech32m_string() -> None:
    # BIP-173 (Bech32, constant 1) test strings; the Bech32m constant differs.
    for text in ("A12UEL5L", "a12uel5l", "abcdef1qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxw"):
        hrp, _, body = text.lower().rpartition("1")
        values = [CHARSET.index(c) for c in body]
        assert bech32_polymod(bech32_hrp_expand(hrp) + values) == 1  # valid Bech32
        with pytest.raises(InvalidAddress, match="checksum"):
            bech32m_decode(text)


@given(address=st.binary(min_size=20, max_size=20))
def test_address_text_round_trips(address: bytes) -> None:
    text = address_to_text(address)
    assert text.startswith(HRP + "1")
    assert len(text) == len(HRP) + 1 + 32 + 6  # 160 bits = 32 characters, 6 checksum
    assert text == text.lower()
    assert address_from_text(text) == address
    assert address_from_text(text.upper()) == address


def test_known_address_text() -> None:
    assert address_to_text(bytes(20)) == bech32m_encode(HRP, [0] * 32)
    assert address_to_text(bytes(20)).startswith("agora1qqqqqqqq")
    assert address_from_text(address_to_text(ALICE.address)) == ALICE.address
    assert address_to_text(ALICE.address) != address_to_text(BOB.address)


def test_every_single_character_substitution_is_caught() -> None:
    text = address_to_text(ALICE.address)
    start = len(HRP) + 1
    tried = 0
    for i in range(start, len(text)):
        for c in CHARSET:
            if c == text[i]:
                continue
            typo = text[:i] + c + text[i + 1 :]
            with pytest.raises(InvalidAddress, match="checksum"):
                address_from_text(typo)
            tried += 1
    assert tried == (len(text) - start) * 31


def test_typos_in_the_prefix_and_separator_are_caught() -> None:
    text = address_to_text(ALICE.address)
    for i in range(len(HRP) + 1):
        for c in "abcdefghijklmnopqrstuvwxyz0123456789":
            if c == text[i]:
                continue
            with pytest.raises(InvalidAddress):
                address_from_text(text[:i] + c + text[i + 1 :])


def test_adjacent_transpositions_are_caught() -> None:
    text = address_to_text(ALICE.address)
    for i in range(len(HRP) + 1, len(text) - 1):
        if text[i] != text[i + 1]:
            swapped = text[:i] + text[i + 1] + text[i] + text[i + 2 :]
            with pytest.raises(InvalidAddress):
                address_from_text(swapped)


def test_mixed_case_is_refused() -> None:
    text = address_to_text(ALICE.address)
    i = next(i for i in range(len(text) - 1, 0, -1) if text[i].isalpha())
    mixed = text[:i] + text[i].upper() + text[i + 1 :]
    assert mixed.lower() == text
    assert mixed not in (text, text.upper())
    with pytest.raises(InvalidAddress, match="mixes upper and lower case"):
        address_from_text(mixed)
    with pytest.raises(InvalidAddress, match="mixes upper and lower case"):
        address_from_text("Agora" + text[5:])


def test_wrong_hrp_is_refused() -> None:
    data = convertbits(ALICE.address, 8, 5, True)
    for hrp in ("bc", "agor", "agoraa", "tagora"):
        with pytest.raises(InvalidAddress, match=f"address is for '{hrp}', expected 'agora'"):
            address_from_text(bech32m_encode(hrp, data))


@pytest.mark.parametrize("size", [0, 1, 19, 21, 32])
def test_wrong_payload_length_is_refused(size: int) -> None:
    text = bech32m_encode(HRP, convertbits(bytes(range(size)), 8, 5, True))
    with pytest.raises(InvalidAddress, match=f"payload is {size} bytes, expected 20"):
        address_from_text(text)


def test_bad_padding_is_refused() -> None:
    # 33 five-bit groups = 165 bits: 5 bits of padding, more than the 4 allowed.
    with pytest.raises(InvalidAddress, match="payload is malformed"):
        address_from_text(bech32m_encode(HRP, [0] * 33))
    # 31 groups = 155 bits: 19 bytes and 3 padding bits, which must be zero.
    with pytest.raises(InvalidAddress, match="payload is malformed"):
        address_from_text(bech32m_encode(HRP, [0] * 30 + [1]))


def test_other_malformed_inputs_are_refused() -> None:
    text = address_to_text(ALICE.address)
    for bad in ("", "agora1", text[:-1], text + "q", text.replace("1", "b", 1), "agora1" + "q" * 90):
        with pytest.raises(InvalidAddress):
            address_from_text(bad)
    with pytest.raises(InvalidAddress, match="must be a string"):
        address_from_text(ALICE.address)  # type: ignore[arg-type]
    for bad_bytes in (bytes(19), bytes(21), b"", bytearray(20)):
        with pytest.raises(InvalidAddress, match="20 bytes"):
            address_to_text(bad_bytes)  # type: ignore[arg-type]


def test_surrounding_whitespace_is_tolerated() -> None:
    text = address_to_text(ALICE.address)
    assert address_from_text(f"  {text}\n") == ALICE.address


def test_convertbits_round_trip() -> None:
    data = bytes(range(20))
    five = convertbits(data, 8, 5, True)
    assert all(0 <= v < 32 for v in five)
    assert bytes(convertbits(five, 5, 8, False)) == data
    with pytest.raises(ValueError):
        convertbits([32], 5, 8, False)
    with pytest.raises(ValueError):
        convertbits([-1], 5, 8, True)
