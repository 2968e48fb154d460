"""Transactions: signing, stateless validation, replay protection across chains and
message kinds, and tamper detection."""

from __future__ import annotations

import dataclasses

import pytest
from chain_helpers import (
    ALICE,
    BOB,
    CAROL,
    CHAIN,
    MAX_AMOUNT,
    OTHER_CHAIN,
    actions,
    texts,
    transfer_tx,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from chain.block import Vote, VoteKind
from chain.codec import pack
from chain.errors import DecodeError, InvalidTransaction, RemoteError
from chain.hashing import Domain, sha256
from chain.keys import signing_bytes, verify
from chain.tx import MAX_TX_SIZE, Call, Deploy, Transaction, Transfer


def test_a_signed_transaction_validates() -> None:
    tx = transfer_tx(memo="hello")
    tx.validate(CHAIN)
    assert tx.has_valid_signature()
    assert Transaction.decode_and_validate(tx.encode(), CHAIN) == tx
    assert tx.sender == ALICE.public_key
    assert tx.sender_address == ALICE.address
    assert tx.hash == sha256(tx.encode())
    assert len(tx.hash) == 32


def test_signature_covers_every_field_but_itself() -> None:
    tx = transfer_tx()
    body = tx.signing_body()
    assert body == tx.to_raw()[:-1]
    assert len(body) == len(Transaction.SCHEMA) - 1
    assert verify(ALICE.public_key, signing_bytes(Domain.TX, CHAIN, body), tx.signature)


@settings(max_examples=200)
@given(action=actions, memo=texts(256), nonce=st.integers(0, 2**64 - 1),
       chain=st.sampled_from([CHAIN, OTHER_CHAIN, "c" * 64, "ü"]))
def test_the_signed_message_cut_from_the_encoding_is_the_signing_bytes(
        action, memo: str, nonce: int, chain: str) -> None:
    """has_valid_signature cuts the signed bytes out of the encoding (no re-encoding per
    check); they must be signing_bytes(TX, chain, signing_body()) exactly, also for a
    transaction decoded from the wire."""
    tx = Transaction.create(ALICE, chain, nonce, action, gas_limit=1, gas_price=1, memo=memo)
    expected = signing_bytes(Domain.TX, chain, tx.signing_body())
    assert tx.signed_message() == expected
    wire = Transaction.decode(tx.encode())
    assert wire.signed_message() == expected and wire.has_valid_signature()


def test_fee_and_value_of_each_action() -> None:
    t = Transaction.create(ALICE, CHAIN, 0, Transfer(BOB.address, 17), gas_limit=10, gas_price=3)
    c = Transaction.create(ALICE, CHAIN, 0, Call(BOB.address, "m", b"", 19), gas_limit=10, gas_price=3)
    d = Transaction.create(ALICE, CHAIN, 0, Deploy(b"code", b"", 23), gas_limit=10, gas_price=3)
    assert (t.value, c.value, d.value) == (17, 19, 23)
    assert t.max_fee == c.max_fee == d.max_fee == 30
    big = Transaction.create(ALICE, CHAIN, 0, Transfer(BOB.address, MAX_AMOUNT),
                             gas_limit=2**64 - 1, gas_price=2**64 - 1)
    assert big.max_fee == (2**64 - 1) ** 2
    assert big.value == MAX_AMOUNT
    big.validate(CHAIN)


def test_signing_is_deterministic_and_the_hash_identifies_the_content() -> None:
    assert transfer_tx().encode() == transfer_tx().encode()
    assert transfer_tx().hash == transfer_tx().hash
    assert transfer_tx(nonce=1).hash != transfer_tx(nonce=2).hash
    assert transfer_tx(memo="a").hash != transfer_tx(memo="b").hash


# --- replay across chains ----------------------------------------------------------------


def test_a_transaction_for_chain_a_is_rejected_on_chain_b() -> None:
    tx = transfer_tx(chain_id=CHAIN)
    tx.validate(CHAIN)
    with pytest.raises(InvalidTransaction, match=f"is for chain '{CHAIN}', this is chain '{OTHER_CHAIN}'"):
        tx.validate(OTHER_CHAIN)
    with pytest.raises(InvalidTransaction, match="is for chain"):
        Transaction.decode_and_validate(tx.encode(), OTHER_CHAIN)


def test_a_transaction_relabelled_to_another_chain_has_an_invalid_signature() -> None:
    tx = transfer_tx(chain_id=CHAIN)
    relabelled = dataclasses.replace(tx, chain_id=OTHER_CHAIN)
    assert not relabelled.has_valid_signature()
    with pytest.raises(InvalidTransaction, match="signature does not verify"):
        relabelled.validate(OTHER_CHAIN)
    with pytest.raises(InvalidTransaction, match="signature does not verify"):
        Transaction.decode_and_validate(relabelled.encode(), OTHER_CHAIN)


def test_every_single_field_change_breaks_the_signature() -> None:
    tx = Transaction.create(ALICE, CHAIN, 5, Call(BOB.address, "buy", b"\x01", 9),
                            gas_limit=100, gas_price=2, memo="m")
    changes = {
        "sender": BOB.public_key,
        "nonce": 6,
        "gas_limit": 101,
        "gas_price": 3,
        "action": Call(BOB.address, "buy", b"\x01", 10),
        "memo": "n",
    }
    for field, value in changes.items():
        changed = dataclasses.replace(tx, **{field: value})
        with pytest.raises(InvalidTransaction, match="signature does not verify"):
            changed.validate(CHAIN)
    for action in (
        Call(CAROL.address, "buy", b"\x01", 9),
        Call(BOB.address, "sell", b"\x01", 9),
        Call(BOB.address, "buy", b"\x02", 9),
        Transfer(BOB.address, 9),
        Deploy(b"", b"\x01", 9),
    ):
        with pytest.raises(InvalidTransaction, match="signature does not verify"):
            dataclasses.replace(tx, action=action).validate(CHAIN)


def test_flipping_any_byte_of_a_signed_transaction_makes_it_invalid() -> None:
    tx = Transaction.create(ALICE, CHAIN, 3, Call(BOB.address, "buy", b"\x01\x02", 10**18),
                            gas_limit=70_000, gas_price=5, memo="pay \u00e9")
    data = tx.encode()
    decoded_but_invalid = 0
    for i in range(len(data)):
        for xor in (0x01, 0x02, 0x40, 0x80, 0xFF):
            mutated = data[:i] + bytes([data[i] ^ xor]) + data[i + 1 :]
            try:
                candidate = Transaction.decode(mutated)
            except DecodeError:
                pass
            else:
                decoded_but_invalid += 1
                with pytest.raises(InvalidTransaction):
                    candidate.validate(CHAIN)
            with pytest.raises(InvalidTransaction):
                Transaction.decode_and_validate(mutated, CHAIN)
    # Many flips (hash, key, signature, nonce bytes) decode fine and fail on signature.
    assert decoded_but_invalid > 300


# --- domain separation and wrong keys ------------------------------------------------------


def _unsigned(tx: Transaction) -> list:
    return tx.signing_body()


def test_a_vote_domain_signature_is_not_a_transaction_signature() -> None:
    tx = transfer_tx()
    vote_sig = ALICE.sign(Domain.VOTE, CHAIN, _unsigned(tx))
    forged = dataclasses.replace(tx, signature=vote_sig)
    assert forged.signature != tx.signature
    with pytest.raises(InvalidTransaction, match="signature does not verify"):
        forged.validate(CHAIN)
    for domain in (Domain.PROPOSAL, Domain.NODE_KEY, "agora/tx/v2", ""):
        sig = ALICE.sign(domain, CHAIN, _unsigned(tx))
        with pytest.raises(InvalidTransaction, match="signature does not verify"):
            dataclasses.replace(tx, signature=sig).validate(CHAIN)


def test_a_transaction_domain_signature_is_not_a_vote_signature() -> None:
    block_hash = b"\x42" * 32
    good = Vote.create(ALICE, CHAIN, VoteKind.COMMIT, 3, 0, block_hash)
    assert good.verify(CHAIN, ALICE.public_key)
    body = Vote.signing_body(VoteKind.COMMIT, 3, 0, block_hash)
    tx_sig = ALICE.sign(Domain.TX, CHAIN, body)
    forged = dataclasses.replace(good, signature=tx_sig)
    assert not forged.verify(CHAIN, ALICE.public_key)
    # The raw message signed for a vote is never the raw message of a transaction.
    assert signing_bytes(Domain.VOTE, CHAIN, body) != signing_bytes(Domain.TX, CHAIN, body)


def test_a_signature_by_another_key_fails() -> None:
    tx = transfer_tx(sender=ALICE)
    by_bob = BOB.sign(Domain.TX, CHAIN, _unsigned(tx))
    with pytest.raises(InvalidTransaction, match="signature does not verify"):
        dataclasses.replace(tx, signature=by_bob).validate(CHAIN)
    # Claiming Bob as sender with Alice's signature fails too.
    with pytest.raises(InvalidTransaction, match="signature does not verify"):
        dataclasses.replace(tx, sender=BOB.public_key).validate(CHAIN)
    # A signature copied from another transaction of the same sender fails.
    other = transfer_tx(sender=ALICE, nonce=1)
    with pytest.raises(InvalidTransaction, match="signature does not verify"):
        dataclasses.replace(tx, signature=other.signature).validate(CHAIN)
    for junk in (bytes(64), b"\xff" * 64):
        with pytest.raises(InvalidTransaction, match="signature does not verify"):
            dataclasses.replace(tx, signature=junk).validate(CHAIN)


def test_signature_errors_are_remote_errors() -> None:
    tx = dataclasses.replace(transfer_tx(), signature=bytes(64))
    with pytest.raises(RemoteError):
        tx.validate(CHAIN)


# --- other stateless checks --------------------------------------------------------------


def test_gas_limit_zero_is_rejected() -> None:
    tx = transfer_tx(gas_limit=0)
    assert tx.has_valid_signature()
    with pytest.raises(InvalidTransaction, match="gas limit must be positive"):
        tx.validate(CHAIN)
    with pytest.raises(InvalidTransaction, match="gas limit must be positive"):
        Transaction.decode_and_validate(tx.encode(), CHAIN)
    transfer_tx(gas_limit=1).validate(CHAIN)
    transfer_tx(gas_price=0).validate(CHAIN)  # the price floor is a genesis rule


def test_oversize_transaction_is_rejected_with_max_size() -> None:
    tx = Transaction.create(ALICE, CHAIN, 0, Deploy(bytes(1000), b"", 0), gas_limit=1, gas_price=1)
    size = len(tx.encode())
    tx.validate(CHAIN, max_size=size)
    assert Transaction.decode_and_validate(tx.encode(), CHAIN, max_size=size) == tx
    with pytest.raises(InvalidTransaction, match=f"transaction is {size} bytes, over the limit of {size - 1}"):
        tx.validate(CHAIN, max_size=size - 1)
    with pytest.raises(InvalidTransaction, match="exceeds the limit"):
        Transaction.decode_and_validate(tx.encode(), CHAIN, max_size=size - 1)


def test_the_largest_transaction_fits_the_default_limit() -> None:
    tx = Transaction.create(
        ALICE, "c" * 64, 2**64 - 1, Deploy(bytes(64 * 1024), bytes(64 * 1024), MAX_AMOUNT),
        gas_limit=2**64 - 1, gas_price=2**64 - 1, memo="\u00e9" * 128,
    )
    assert len(tx.encode()) <= MAX_TX_SIZE
    assert Transaction.decode_and_validate(tx.encode(), "c" * 64) == tx


@pytest.mark.parametrize(
    "data",
    [b"", b"\x00", b"\x98", b"\xc1", b"\x90", b"\x88" + b"\x00" * 16, b"\xff" * 100,
     bytes(MAX_TX_SIZE + 1), "not bytes", None, 12345],
)
def test_decode_and_validate_turns_garbage_into_invalid_transaction(data: object) -> None:
    with pytest.raises(InvalidTransaction, match="malformed transaction"):
        Transaction.decode_and_validate(data, CHAIN)  # type: ignore[arg-type]


@settings(max_examples=300)
@given(data=st.binary(max_size=300))
def test_decode_and_validate_never_raises_anything_else(data: bytes) -> None:
    with pytest.raises(InvalidTransaction):
        Transaction.decode_and_validate(data, CHAIN)


def test_garbage_inside_a_well_formed_array_is_invalid() -> None:
    raw = transfer_tx().to_raw()
    cases = [
        raw[:-1],  # no signature
        [*raw, b""],  # extra field
        [raw[0], raw[1][:31], *raw[2:]],  # short key
        [raw[0], raw[1], -1, *raw[3:]],  # negative nonce
        [*raw[:5], [9], *raw[6:]],  # unknown action tag
        [*raw[:7], raw[7] + b"\x00"],  # 65-byte signature
    ]
    for case in cases:
        with pytest.raises(InvalidTransaction, match="malformed transaction"):
            Transaction.decode_and_validate(pack(case), CHAIN)


@settings(max_examples=50)
@given(
    action=actions,
    nonce=st.integers(0, 2**64 - 1),
    gas_limit=st.integers(1, 2**64 - 1),
    gas_price=st.integers(0, 2**64 - 1),
    memo=texts(256),
)
def test_any_well_formed_signed_transaction_validates(action, nonce, gas_limit, gas_price, memo) -> None:
    tx = Transaction.create(ALICE, CHAIN, nonce, action, gas_limit=gas_limit, gas_price=gas_price,
                            memo=memo)
    decoded = Transaction.decode_and_validate(tx.encode(), CHAIN)
    assert decoded == tx
    assert decoded.hash == tx.hash
    with pytest.raises(InvalidTransaction):
        decoded.validate(OTHER_CHAIN)
