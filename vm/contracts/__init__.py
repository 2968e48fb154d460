"""The commerce contracts, and their genesis entries.

Genesis contracts are placed with code and storage; their constructors do not run. So
:func:`genesis_contracts` compiles each contract and writes the storage its constructor
would have written, at the keys the compiler uses (a variable's length-prefixed name,
then each map key: integers as 32 bytes, addresses as 20).
"""

from __future__ import annotations

from pathlib import Path

from chain.address import address_to_text
from chain.system import ESCROW_ADDRESS, REVIEWS_ADDRESS, TOKEN_ADDRESS

from ..compiler import compile_file
from ..compiler.types import name_key

HERE = Path(__file__).resolve().parent
DAY_MS = 24 * 3600 * 1000


def storage_key(variable: str, *map_keys: bytes) -> bytes:
    """The key the compiled code uses for ``variable`` (indexed by ``map_keys``)."""
    return name_key(variable) + b"".join(map_keys)


def _uint(n: int) -> bytes:
    return n.to_bytes((n.bit_length() + 7) >> 3, "big")


def genesis_contracts(
    *,
    max_window_ms: int = 60 * DAY_MS,
    referral_bps: int = 100,
    buyer_bps: int = 100,
    max_arbiter_fee_bps: int = 1_000,
    review_reward: int = 10**18,
    token_balances: dict[bytes, int] | None = None,
) -> list[dict]:
    """The ``contracts`` entries of a genesis file: token, escrow and reviews at their
    fixed addresses (chain.system), configured as their constructors would be, with
    ``token_balances`` minted by genesis (the one minter besides escrow and reviews)."""
    token_balances = token_balances or {}
    token = compile_file(HERE / "token.agc")
    escrow = compile_file(HERE / "escrow.agc")
    reviews = compile_file(HERE / "reviews.agc")
    true = b"\x01"
    entries = [
        (TOKEN_ADDRESS, token.code, {
            storage_key("minters", ESCROW_ADDRESS): true,
            storage_key("minters", REVIEWS_ADDRESS): true,
            storage_key("supply"): _uint(sum(token_balances.values())),
            **{storage_key("balances", a): _uint(v) for a, v in token_balances.items()},
        }),
        (ESCROW_ADDRESS, escrow.code, {
            storage_key("token"): TOKEN_ADDRESS,
            storage_key("max_window"): _uint(max_window_ms),
            storage_key("referral_bps"): _uint(referral_bps),
            storage_key("buyer_bps"): _uint(buyer_bps),
            storage_key("max_arbiter_fee_bps"): _uint(max_arbiter_fee_bps),
        }),
        (REVIEWS_ADDRESS, reviews.code, {
            storage_key("escrow"): ESCROW_ADDRESS,
            storage_key("token"): TOKEN_ADDRESS,
            storage_key("reward"): _uint(review_reward),
        }),
    ]
    return [
        {"address": address_to_text(addr), "code": code.hex(),
         "storage": {k.hex(): v.hex() for k, v in storage.items() if v}}
        for addr, code, storage in entries
    ]
