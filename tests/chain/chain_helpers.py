"""Shared builders and hypothesis strategies for the chain tests.

Keys come from ``PrivateKey.from_seed_text`` so every run signs the same bytes. The
strategies produce *valid* instances of every record type (field sizes and ranges as
declared in the schemas), including the extremes: amounts up to 2**256 - 1, u64 maxima,
multi-byte UTF-8 text at the byte limit.
"""

from __future__ import annotations

from collections.abc import Iterator

from hypothesis import strategies as st

from chain.block import (
    Block,
    CommitCertificate,
    CommitSig,
    Event,
    Header,
    Receipt,
    Vote,
    VoteKind,
)
from chain.codec import pack
from chain.errors import DecodeError
from chain.hashing import sha256
from chain.keys import PrivateKey
from chain.merkle import InclusionProof
from chain.tx import Call, Deploy, Transaction, Transfer
from chain.validators import Validator, ValidatorSet

CHAIN = "agora-test"
OTHER_CHAIN = "agora-other"

MAX_U8 = 2**8 - 1
MAX_U32 = 2**32 - 1
MAX_U64 = 2**64 - 1
MAX_AMOUNT = 2**256 - 1


def key(name: str) -> PrivateKey:
    """A deterministic key for tests."""
    return PrivateKey.from_seed_text(name)


ALICE = key("alice")
BOB = key("bob")
CAROL = key("carol")


def transfer_tx(
    sender: PrivateKey = ALICE,
    chain_id: str = CHAIN,
    nonce: int = 0,
    amount: int = 1_000,
    *,
    gas_limit: int = 21_000,
    gas_price: int = 2,
    memo: str = "",
) -> Transaction:
    """A signed transfer from ``sender`` to Bob."""
    return Transaction.create(
        sender, chain_id, nonce, Transfer(BOB.address, amount),
        gas_limit=gas_limit, gas_price=gas_price, memo=memo,
    )


def validator_keys(n: int, prefix: str = "validator") -> list[PrivateKey]:
    return [key(f"{prefix}-{i}") for i in range(n)]


def validator_set(keys: list[PrivateKey], powers: list[int]) -> ValidatorSet:
    return ValidatorSet(Validator(k.public_key, p) for k, p in zip(keys, powers, strict=True))


def commit_votes(
    keys: list[PrivateKey], height: int, view: int, block_hash: bytes, chain_id: str = CHAIN
) -> list[Vote]:
    return [Vote.create(k, chain_id, VoteKind.COMMIT, height, view, block_hash) for k in keys]


def check_mutant(cls: type, original: bytes, mutated: bytes) -> bool:
    """The "rejected or re-canonical" rule for one mutated encoding.

    Returns False when decode raised DecodeError (any other exception propagates and
    fails the test). When it decodes, the value must re-encode from its fields (not from
    the cached input bytes) to exactly the mutated bytes, so its hash differs from the
    original's. Returns True in that case.
    """
    assert mutated != original
    try:
        value = cls.decode(mutated)
    except DecodeError:
        return False
    assert pack(value.to_raw()) == mutated
    # A fresh copy (no cached encoding) must agree too.
    assert type(value)(*(getattr(value, name) for name, _ in cls.SCHEMA)).encode() == mutated
    assert value != cls.decode(original)
    assert sha256(mutated) != sha256(original)
    # Transactions and headers are identified by the hash of their own encoding. (A
    # block's hash is its header's: a mutated transaction shows up as a tx_root
    # mismatch in validate_basic instead, see test_block.py.)
    if cls in (Transaction, Header):
        assert value.hash != cls.decode(original).hash
    return True


def mutations(data: bytes, xors: tuple[int, ...] | None = None) -> Iterator[bytes]:
    """Every single-byte replacement (by all 255 other values, or by ``data[i] ^ x`` for
    each x in ``xors``), every insertion of one byte (0x00, 0xc0, 0xff), every deletion,
    every truncation and a few appended tails."""
    n = len(data)
    for i in range(n):
        replacements = range(256) if xors is None else (data[i] ^ x for x in xors)
        for v in replacements:
            if v != data[i]:
                yield data[:i] + bytes([v]) + data[i + 1 :]
    for i in range(n + 1):
        for v in (0x00, 0xC0, 0xFF):
            yield data[:i] + bytes([v]) + data[i:]
    for i in range(n):
        yield data[:i] + data[i + 1 :]
    for i in range(n):
        yield data[:i]
    for tail in (b"\x00", b"\xc0", b"\x90", data):
        yield data + tail


# --- strategies ------------------------------------------------------------------

u8 = st.integers(0, MAX_U8)
u32 = st.integers(0, MAX_U32)
u64 = st.integers(0, MAX_U64)
amounts = st.one_of(st.integers(0, MAX_AMOUNT), st.sampled_from([0, 1, 2**64, MAX_AMOUNT]))
addresses = st.binary(min_size=20, max_size=20)
hashes = st.binary(min_size=32, max_size=32)
public_keys = st.binary(min_size=32, max_size=32)
signatures = st.binary(min_size=64, max_size=64)


def texts(max_bytes: int) -> st.SearchStrategy[str]:
    """Any text (all of Unicode but surrogates) of at most ``max_bytes`` UTF-8 bytes."""
    return st.one_of(
        st.text(max_size=max_bytes // 4),  # a character is at most 4 bytes
        # Exactly at the byte limit, with 1-, 2- and 4-byte characters.
        st.sampled_from(["a" * max_bytes, "\u00e9" * (max_bytes // 2), "\U0001f600" * (max_bytes // 4)]),
    )


def blobs(max_len: int) -> st.SearchStrategy[bytes]:
    return st.binary(max_size=min(max_len, 200))


transfers = st.builds(Transfer, addresses, amounts)
calls = st.builds(Call, addresses, texts(64), blobs(64 * 1024), amounts)
deploys = st.builds(Deploy, blobs(64 * 1024), blobs(64 * 1024), amounts)
actions = st.one_of(transfers, calls, deploys)


def transactions_with(action: st.SearchStrategy) -> st.SearchStrategy[Transaction]:
    return st.builds(
        Transaction, texts(64), public_keys, u64, u64, u64, action, texts(256), signatures
    )


transactions = transactions_with(actions)
headers = st.builds(
    Header, texts(64), u64, u64, hashes, hashes, hashes, hashes, hashes, hashes, addresses,
    u32, hashes
)
votes = st.builds(Vote, u8, u64, u32, hashes, addresses, signatures)
commit_sigs = st.builds(CommitSig, addresses, signatures)
certificates = st.builds(
    CommitCertificate, u64, u32, hashes, st.lists(commit_sigs, max_size=5).map(tuple)
)
events = st.builds(Event, addresses, texts(64), blobs(16 * 1024))
receipts = st.builds(
    Receipt, u8, u64, blobs(64 * 1024), texts(256), st.lists(events, max_size=3).map(tuple)
)
blocks = st.builds(
    Block,
    headers,
    st.lists(transactions, max_size=3).map(tuple),
    st.none() | certificates,
)
validators = st.builds(Validator, public_keys, u64)
inclusion_proofs = st.builds(
    InclusionProof, u32, u32, st.lists(hashes, max_size=64).map(tuple)
)

#: Every record type and a strategy for valid instances of it.
RECORD_STRATEGIES: dict[type, st.SearchStrategy] = {
    Transfer: transfers,
    Call: calls,
    Deploy: deploys,
    Transaction: transactions,
    Header: headers,
    Vote: votes,
    CommitSig: commit_sigs,
    CommitCertificate: certificates,
    Event: events,
    Receipt: receipts,
    Block: blocks,
    Validator: validators,
    InclusionProof: inclusion_proofs,
}
