"""Headers, blocks and receipts: hashes, roots, proofs and validate_basic."""

from __future__ import annotations

import dataclasses

import pytest
from chain_helpers import (
    ALICE,
    BOB,
    CAROL,
    CHAIN,
    OTHER_CHAIN,
    commit_votes,
    transfer_tx,
    validator_keys,
)

from chain.block import (
    Block,
    CommitCertificate,
    Event,
    Header,
    InvalidBlock,
    Receipt,
    ReceiptStatus,
    receipts_root,
    tx_root,
)
from chain.codec import pack
from chain.errors import DecodeError, RemoteError
from chain.hashing import EMPTY_HASH, sha256
from chain.merkle import InclusionProof, merkle_root
from chain.tx import Call, Transaction

KEYS = validator_keys(3)


def make_header(height: int = 1, txs: tuple[Transaction, ...] = (), prev_hash: bytes = bytes(32),
                chain_id: str = CHAIN, last_commit: CommitCertificate | None = None) -> Header:
    lc_hash = bytes(32) if last_commit is None else sha256(last_commit.encode())
    return Header(chain_id, height, 1_767_225_600_000 + height, prev_hash, tx_root(txs),
                  b"\x03" * 32, b"\x04" * 32, b"\x05" * 32, b"\x06" * 32, KEYS[0].address,
                  len(txs), lc_hash)


def make_block(height: int = 1, txs: tuple[Transaction, ...] = (), parent: Header | None = None,
               last_commit: CommitCertificate | None = None) -> Block:
    prev = parent.hash if parent is not None else bytes(32)
    if parent is not None and last_commit is None:
        last_commit = CommitCertificate.from_votes(commit_votes(KEYS, parent.height, 0, parent.hash))
    return Block(make_header(height, txs, prev, last_commit=last_commit), txs, last_commit)


TXS = tuple(transfer_tx(nonce=i, amount=i + 1) for i in range(5))


# --- header hash ---------------------------------------------------------------------------


def test_header_hash_is_sha256_of_its_encoding() -> None:
    header = make_header()
    assert header.hash == sha256(header.encode())
    assert Header.decode(header.encode()).hash == header.hash
    assert make_header().hash == header.hash


def test_header_hash_changes_when_any_field_changes() -> None:
    header = make_header(height=5)
    changes = {
        "chain_id": OTHER_CHAIN,
        "height": 6,
        "time_ms": header.time_ms + 1,
        "prev_hash": b"\x01" * 32,
        "tx_root": b"\x02" * 32,
        "receipts_root": b"\x13" * 32,
        "state_root": b"\x14" * 32,
        "validators_hash": b"\x15" * 32,
        "next_validators_hash": b"\x16" * 32,
        "proposer": BOB.address,
        "tx_count": header.tx_count + 1,
        "last_commit_hash": b"\x17" * 32,
    }
    assert set(changes) == {name for name, _ in Header.SCHEMA}
    hashes = {header.hash}
    for field, value in changes.items():
        assert getattr(header, field) != value
        changed = dataclasses.replace(header, **{field: value})
        assert changed.hash != header.hash, field
        hashes.add(changed.hash)
    assert len(hashes) == len(changes) + 1


def test_swapping_two_hash_fields_changes_the_hash() -> None:
    header = make_header()
    swapped = dataclasses.replace(header, state_root=header.receipts_root,
                                  receipts_root=header.state_root)
    assert swapped.hash != header.hash


# --- roots and proofs -------------------------------------------------------------------------


def test_roots_are_merkle_roots_of_the_encodings() -> None:
    assert tx_root(()) == EMPTY_HASH
    assert tx_root(TXS) == merkle_root([t.encode() for t in TXS])
    assert tx_root(TXS) != tx_root(TXS[::-1])  # order matters
    receipts = (
        Receipt(ReceiptStatus.OK, 21_000, b"", "", ()),
        Receipt(ReceiptStatus.REVERTED, 500, b"\x01", "out of stock",
                (Event(CAROL.address, "Refund", b"\x02"),)),
    )
    assert receipts_root(receipts) == merkle_root([r.encode() for r in receipts])
    assert receipts_root(()) == EMPTY_HASH
    assert Receipt.decode(receipts[1].encode()) == receipts[1]
    assert ReceiptStatus.NAMES[ReceiptStatus.OUT_OF_GAS] == "out_of_gas"


@pytest.mark.parametrize("n", [1, 2, 3, 5])
def test_tx_proof_verifies_each_transaction_against_the_header(n: int) -> None:
    block = make_block(txs=TXS[:n])
    root = block.header.tx_root
    for i, tx in enumerate(block.txs):
        proof = block.tx_proof(i)
        assert isinstance(proof, InclusionProof)
        assert (proof.index, proof.size) == (i, n)
        assert proof.verify(tx.encode(), root)
        assert InclusionProof.decode(proof.encode()).verify(tx.encode(), root)
        # Not a proof for another transaction, nor for another root.
        other = TXS[(i + 1) % len(TXS)]
        assert not proof.verify(other.encode(), root)
        assert not proof.verify(tx.encode(), sha256(root))


def test_tx_proof_out_of_range() -> None:
    with pytest.raises(IndexError):
        make_block().tx_proof(0)
    with pytest.raises(IndexError):
        make_block(txs=TXS[:2]).tx_proof(2)


# --- validate_basic -----------------------------------------------------------------------------


def test_well_formed_blocks_validate() -> None:
    first = make_block(1, TXS[:2])
    first.validate_basic(CHAIN)
    second = make_block(2, TXS[2:], parent=first.header)
    second.validate_basic(CHAIN)
    assert second.height == 2
    assert second.hash == second.header.hash
    assert Block.decode(second.encode()) == second
    make_block(1).validate_basic(CHAIN)  # empty block


def test_wrong_chain_id_is_rejected() -> None:
    block = make_block(1, TXS[:1])
    with pytest.raises(InvalidBlock, match=f"block is for chain '{CHAIN}', this is chain '{OTHER_CHAIN}'"):
        block.validate_basic(OTHER_CHAIN)


def test_wrong_tx_root_is_rejected() -> None:
    block = make_block(1, TXS[:3])
    for txs in (TXS[:3][::-1], (TXS[0], TXS[1], TXS[3])):  # same count, other txs or order
        with pytest.raises(InvalidBlock, match="tx root does not match"):
            dataclasses.replace(block, txs=txs).validate_basic(CHAIN)
    bad_header = dataclasses.replace(block.header, tx_root=EMPTY_HASH)
    with pytest.raises(InvalidBlock, match="tx root does not match"):
        dataclasses.replace(block, header=bad_header).validate_basic(CHAIN)


def test_wrong_tx_count_is_rejected() -> None:
    block = make_block(1, TXS[:3])
    for txs in (TXS[:2], TXS[:4], ()):
        with pytest.raises(InvalidBlock, match="header counts 3 transactions"):
            dataclasses.replace(block, txs=txs).validate_basic(CHAIN)


def test_a_transaction_twice_in_one_block_is_rejected() -> None:
    txs = (TXS[0], TXS[1], TXS[0])
    with pytest.raises(InvalidBlock, match="transaction 2 appears twice"):
        make_block(1, txs).validate_basic(CHAIN)


def test_last_commit_must_match_the_header_hash_of_it() -> None:
    parent = make_block(1, TXS[:1]).header
    block = make_block(2, TXS[1:2], parent=parent)
    block.validate_basic(CHAIN)
    # Another valid certificate for the same parent (other signers) but the header
    # commits to the first one: one block hash, one set of bytes.
    other = CommitCertificate.from_votes(commit_votes(KEYS[1:], parent.height, 0, parent.hash))
    assert other != block.last_commit
    with pytest.raises(InvalidBlock, match="last_commit_hash"):
        dataclasses.replace(block, last_commit=other).validate_basic(CHAIN)
    first = make_block(1, TXS[:1])
    bad = dataclasses.replace(first.header, last_commit_hash=b"\x01" * 32)
    with pytest.raises(InvalidBlock, match="no parent to certify"):
        dataclasses.replace(first, header=bad).validate_basic(CHAIN)


def test_the_first_block_must_follow_the_genesis() -> None:
    genesis_hash = b"\x42" * 32
    good = make_block(1, TXS[:1])
    good = dataclasses.replace(good, header=dataclasses.replace(good.header, prev_hash=genesis_hash))
    good.validate_basic(CHAIN, genesis_hash)
    with pytest.raises(InvalidBlock, match="does not follow this genesis"):
        good.validate_basic(CHAIN, b"\x43" * 32)


def test_a_mutated_transaction_inside_a_block_is_caught_by_the_tx_root() -> None:
    block = make_block(1, TXS[:2])
    data = block.encode()
    tx_bytes = TXS[1].encode()
    start = data.index(tx_bytes)
    caught = 0
    for i in range(start, start + len(tx_bytes)):
        mutated = data[:i] + bytes([data[i] ^ 0x01]) + data[i + 1 :]
        try:
            decoded = Block.decode(mutated)
        except DecodeError:
            continue
        assert decoded.hash == block.hash  # the header is untouched ...
        with pytest.raises(InvalidBlock, match="tx root does not match"):  # ... but the root is not
            decoded.validate_basic(CHAIN)
        caught += 1
    assert caught > 50


def test_a_transaction_for_another_chain_is_rejected() -> None:
    foreign = transfer_tx(chain_id=OTHER_CHAIN)
    txs = (TXS[0], foreign)
    block = make_block(1, txs)
    with pytest.raises(InvalidBlock, match=f"transaction 1 is for chain '{OTHER_CHAIN}'"):
        block.validate_basic(CHAIN)


def test_height_zero_is_rejected() -> None:
    block = Block(make_header(height=0), (), None)
    with pytest.raises(InvalidBlock, match="block height starts at 1"):
        block.validate_basic(CHAIN)


def test_first_block_with_a_last_commit_is_rejected() -> None:
    cert = CommitCertificate.from_votes(commit_votes(KEYS, 0, 0, bytes(32)))
    block = make_block(1, last_commit=cert)
    with pytest.raises(InvalidBlock, match="the first block has no parent to certify"):
        block.validate_basic(CHAIN)


def test_later_block_without_last_commit_is_rejected() -> None:
    parent = make_block(1).header
    block = dataclasses.replace(make_block(2, parent=parent), last_commit=None)
    with pytest.raises(InvalidBlock, match="missing the parent's commit certificate"):
        block.validate_basic(CHAIN)


def test_later_block_with_a_last_commit_for_the_wrong_parent_is_rejected() -> None:
    parent = make_block(1).header
    good = make_block(2, parent=parent)
    good.validate_basic(CHAIN)
    wrong_height = CommitCertificate.from_votes(commit_votes(KEYS, 2, 0, parent.hash))
    wrong_hash = CommitCertificate.from_votes(commit_votes(KEYS, 1, 0, b"\xee" * 32))
    for cert in (wrong_height, wrong_hash):
        with pytest.raises(InvalidBlock, match="last commit does not certify the parent block"):
            dataclasses.replace(good, last_commit=cert).validate_basic(CHAIN)
    # The header's prev_hash must name the certified block too.
    moved = dataclasses.replace(good, header=dataclasses.replace(good.header, prev_hash=b"\xee" * 32))
    with pytest.raises(InvalidBlock, match="last commit does not certify"):
        moved.validate_basic(CHAIN)


def test_invalid_block_is_a_remote_error() -> None:
    assert issubclass(InvalidBlock, RemoteError)


def test_block_size_limit_and_strict_decoding() -> None:
    block = make_block(1, TXS[:2])
    data = block.encode()
    assert Block.decode(data, max_size=len(data)) == block
    with pytest.raises(DecodeError, match="exceeds the limit"):
        Block.decode(data, max_size=len(data) - 1)
    raw = block.to_raw()
    with pytest.raises(DecodeError, match=r"Block\.txs\[0\]"):
        Block.decode(pack([raw[0], [[1, 2]], None]))
    with pytest.raises(DecodeError, match=r"Block\.last_commit"):
        Block.decode(pack([raw[0], raw[1], [1]]))


def test_block_with_a_call_transaction_round_trips() -> None:
    call = Transaction.create(ALICE, CHAIN, 0, Call(CAROL.address, "buy", b"\x05", 3),
                              gas_limit=90_000, gas_price=1)
    block = make_block(1, (call,))
    block.validate_basic(CHAIN)
    assert Block.decode(block.encode()).txs[0] == call
