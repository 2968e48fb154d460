"""The chain view's parsers of what clients type: addresses and hex."""

from __future__ import annotations

import pytest

from chain.address import address_to_text
from node.chainview import abi_from_json, abi_to_json, parse_address, parse_hex

RAW = bytes(range(20))


@pytest.mark.parametrize("text", [address_to_text(RAW), address_to_text(RAW).upper(),
                                  RAW.hex(), "0x" + RAW.hex(), "0X" + RAW.hex().upper()])
def test_an_address_is_read_in_every_form_a_client_types(text: str) -> None:
    assert parse_address(text) == RAW


@pytest.mark.parametrize("text", ["", "agora1", address_to_text(RAW)[:-1] + "q",
                                  RAW.hex()[:-2], "0x" + RAW.hex() + "00", "zz" * 20,
                                  "cosmos1" + address_to_text(RAW)[6:]])
def test_a_bad_address_is_refused_with_a_sentence(text: str) -> None:
    with pytest.raises(ValueError) as refused:
        parse_address(text)
    assert "address" in str(refused.value)


def test_hex_and_abi_values_follow_the_api_conventions() -> None:
    assert parse_hex("0xABcd") == b"\xab\xcd"
    with pytest.raises(ValueError, match="must be hex"):
        parse_hex("xyz", "tx")
    assert abi_to_json("uint", 2**255) == str(2**255)
    assert abi_to_json("Address", RAW) == address_to_text(RAW)
    assert abi_to_json("bytes", b"\x01") == "01"
    assert abi_from_json("uint", "12", "args.n") == b"\x0c"
    assert abi_from_json("Address", RAW.hex(), "args.a") == RAW
    with pytest.raises(Exception, match="args.n"):
        abi_from_json("uint", -1, "args.n")
