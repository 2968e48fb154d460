"""Shared builders for the storage tests.

Keys come from ``PrivateKey.from_seed_text`` and every random choice from a seeded
``random.Random``, so every run builds the same chains, trees and damage.

Besides builders for real signed chains, this module knows the state tree's record
layout from the outside (``storage.state.node_key`` / ``node_children`` and the
``V`` + key hash + version key of a value) so the tests can walk every kept root and
compare what is reachable with what is stored.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from chain.block import (
    Block,
    CommitCertificate,
    Event,
    Header,
    Receipt,
    Vote,
    VoteKind,
    receipts_root,
    tx_root,
)
from chain.hashing import ZERO_HASH, sha256
from chain.keys import PrivateKey
from chain.tx import Call, Deploy, Transaction, Transfer
from chain.validators import Validator, ValidatorSet
from storage.kv import KVStore
from storage.records import unseal
from storage.state import node_children, node_key

CHAIN = "agora-storage-test"


def key(name: str) -> PrivateKey:
    """A deterministic key for tests."""
    return PrivateKey.from_seed_text(name)


ALICE = key("alice")
BOB = key("bob")
CAROL = key("carol")
DAVE = key("dave")
ACCOUNTS = (ALICE, BOB, CAROL, DAVE)
#: A contract address that only ever appears as a Call target.
SHOP = sha256(b"shop contract")[:20]

VALIDATOR_KEYS = [key(f"validator-{i}") for i in range(4)]
VALIDATORS = ValidatorSet(Validator(k.public_key, 1) for k in VALIDATOR_KEYS)


def flip(raw: bytes, index: int, mask: int = 0x01) -> bytes:
    """``raw`` with the byte at ``index`` XORed with ``mask``."""
    return raw[:index] + bytes([raw[index] ^ mask]) + raw[index + 1 :]


# --------------------------------------------------------------------- chains


@dataclass(frozen=True)
class ChainBlock:
    """One block ready for ``BlockStore.put_block``."""

    block: Block
    commit: CommitCertificate
    receipts: tuple[Receipt, ...]


def certify(height: int, block_hash: bytes, view: int = 0) -> CommitCertificate:
    """A real certificate: COMMIT votes of three of the four validators (a quorum)."""
    votes = [
        Vote.create(k, CHAIN, VoteKind.COMMIT, height, view, block_hash)
        for k in VALIDATOR_KEYS[:3]
    ]
    cert = CommitCertificate.from_votes(votes)
    cert.verify(CHAIN, VALIDATORS, height=height, block_hash=block_hash)
    return cert


def receipt_for(tx: Transaction, i: int) -> Receipt:
    """A receipt that differs per transaction (so a swapped receipt is noticed)."""
    events: tuple[Event, ...] = ()
    if type(tx.action) is Call:
        events = (Event(tx.action.contract, "Ordered", tx.hash[:8]),)
    return Receipt(i % 4, 21_000 + i, tx.hash[:4], "" if i % 4 == 0 else f"status {i % 4}",
                   events)


def make_header(height: int, prev_hash: bytes, txs: Sequence[Transaction],
                receipts: Sequence[Receipt], proposer: PrivateKey,
                last_commit: CommitCertificate | None = None) -> Header:
    return Header(
        CHAIN,
        height,
        1_700_000_000_000 + 1_000 * height,
        prev_hash,
        tx_root(txs),
        receipts_root(receipts),
        sha256(b"state %d" % height),
        VALIDATORS.hash,
        VALIDATORS.hash,
        proposer.address,
        len(txs),
        ZERO_HASH if last_commit is None else sha256(last_commit.encode()),
    )


def make_block(height: int, parent: ChainBlock | None, txs: Sequence[Transaction]) -> ChainBlock:
    """A block at ``height`` on ``parent`` (None: the first block), with its
    certificate and one receipt per transaction."""
    receipts = tuple(receipt_for(tx, i) for i, tx in enumerate(txs))
    prev_hash = ZERO_HASH if parent is None else parent.block.hash
    last_commit = None if parent is None else parent.commit
    header = make_header(height, prev_hash, txs, receipts,
                         VALIDATOR_KEYS[height % len(VALIDATOR_KEYS)], last_commit)
    block = Block(header, tuple(txs), last_commit)
    block.validate_basic(CHAIN)
    return ChainBlock(block, certify(height, block.hash), receipts)


def chain_txs(height: int, rng: random.Random, nonces: dict[bytes, int]) -> list[Transaction]:
    """A varied list of 0..5 transactions: transfers (also to oneself), contract calls
    and deploys, from the four accounts."""
    txs = []
    for _ in range(rng.choice([0, 1, 2, 3, 3, 4, 5])):
        sender = rng.choice(ACCOUNTS)
        kind = rng.random()
        if kind < 0.6:
            action: Transfer | Call | Deploy = Transfer(rng.choice(ACCOUNTS).address,
                                                        rng.randrange(1, 10_000))
        elif kind < 0.85:
            action = Call(SHOP, "order", bytes([height]), rng.randrange(0, 100))
        else:
            action = Deploy(b"\x00code" + bytes([height]), b"", 0)
        nonce = nonces.get(sender.address, 0)
        nonces[sender.address] = nonce + 1
        txs.append(Transaction.create(sender, CHAIN, nonce, action,
                                      gas_limit=50_000, gas_price=1, memo=f"h{height}"))
    return txs


def make_chain(n: int, seed: int = 1) -> list[ChainBlock]:
    """Blocks 1..n, each on the previous one, with varied transactions."""
    rng = random.Random(seed)
    nonces: dict[bytes, int] = {}
    out: list[ChainBlock] = []
    for height in range(1, n + 1):
        txs = chain_txs(height, rng, nonces)
        out.append(make_block(height, out[-1] if out else None, txs))
    return out


def expected_touched(tx: Transaction) -> set[bytes]:
    """What the history index should record for a transaction, written out here
    independently of ``storage.blockstore.touched_addresses``."""
    action = tx.action
    out = {tx.sender_address}
    if type(action) is Transfer:
        out.add(action.to)
    elif type(action) is Call:
        out.add(action.contract)
    return out


def history_model(
    chain: Iterable[ChainBlock],
    touched: dict[int, Sequence[Iterable[bytes]]] | None = None,
) -> dict[bytes, list[tuple[int, int, bytes]]]:
    """address -> [(height, index, tx hash)], newest first."""
    out: dict[bytes, list[tuple[int, int, bytes]]] = {}
    for cb in chain:
        h = cb.block.height
        custom = None if touched is None else touched.get(h)
        for i, tx in enumerate(cb.block.txs):
            accounts = expected_touched(tx) if custom is None else set(custom[i])
            for address in accounts:
                out.setdefault(address, []).append((h, i, tx.hash))
    for entries in out.values():
        entries.sort(key=lambda e: (e[0], e[1]), reverse=True)
    return out


# ----------------------------------------------------------------- state tree


def random_changes(
    rng: random.Random, universe: Sequence[bytes], model: dict[bytes, bytes], n: int
) -> dict[bytes, bytes | None]:
    """``n`` changes over ``universe``: inserts, overwrites, deletes (also of absent
    keys) and sets to the current value, as a block would make them."""
    changes: dict[bytes, bytes | None] = {}
    for _ in range(n):
        k = rng.choice(universe)
        r = rng.random()
        if r < 0.25:
            changes[k] = None
        elif r < 0.35 and k in model:
            changes[k] = model[k]  # the same value again
        else:
            changes[k] = rng.randbytes(rng.choice([0, 1, 5, 32, 70]))
    return changes


def apply(model: dict[bytes, bytes], changes: dict[bytes, bytes | None]) -> None:
    for k, v in changes.items():
        if v is None:
            model.pop(k, None)
        else:
            model[k] = v


def _path_bytes(nibbles: Sequence[int]) -> bytes:
    """A 32-byte key hash whose first nibbles are ``nibbles`` (the rest zero)."""
    out = bytearray(32)
    for i, n in enumerate(nibbles):
        out[i >> 1] |= n if i & 1 else n << 4
    return bytes(out)


def root_entry(kv: KVStore, prefix: bytes, version: int) -> bytes | None:
    """The root entry of ``version`` read straight from the store (None: empty)."""
    raw = kv.get(prefix + b"R" + version.to_bytes(8, "big"))
    assert raw is not None, f"root record of version {version} is missing"
    payload = unseal(prefix + b"R", raw)
    return payload or None


def reachable_records(kv: KVStore, prefix: bytes, version: int) -> set[bytes]:
    """Full keys of every node record (``N``) and value record (``V``) reachable from
    the root of ``version``, by walking the tree through the store."""
    out: set[bytes] = set()
    root = root_entry(kv, prefix, version)
    if root is None:
        return out
    stack: list[tuple[bytes, tuple[int, ...]]] = [(root, ())]
    while stack:
        entry, nibbles = stack.pop()
        if entry[32] == 1:  # a leaf: its value record
            out.add(prefix + b"V" + entry[41:] + entry[33:41])
            continue
        nk = prefix + node_key(int.from_bytes(entry[33:41], "big"), len(nibbles),
                               _path_bytes(nibbles))
        raw = kv.get(nk)
        assert raw is not None, f"node {nk.hex()} of version {version} is missing"
        record = raw  # a node record ends in its own CRC; node_children ignores it
        out.add(nk)
        for nib, child in enumerate(node_children(record)):
            if child is not None:
                stack.append((child, (*nibbles, nib)))
    return out


def stored_records(kv: KVStore, prefix: bytes) -> set[bytes]:
    """Full keys of every node and value record stored under the tree's namespace."""
    return {k for k, _ in kv.iterate(prefix + b"N")} | {k for k, _ in kv.iterate(prefix + b"V")}


def node_records_on_path(kv: KVStore, prefix: bytes, version: int,
                         key_hash: bytes) -> list[bytes]:
    """Full keys of the internal nodes on ``key_hash``'s path in ``version``, root first."""
    entry = root_entry(kv, prefix, version)
    out = []
    depth = 0
    while entry is not None and entry[32] == 0:
        nk = prefix + node_key(int.from_bytes(entry[33:41], "big"), depth, key_hash)
        out.append(nk)
        raw = kv.get(nk)
        assert raw is not None
        record = raw
        nib = key_hash[depth >> 1] & 15 if depth & 1 else key_hash[depth >> 1] >> 4
        entry = node_children(record)[nib]
        depth += 1
    return out


def reference_root(items: dict[bytes, bytes]) -> bytes:
    """The state root of ``items`` computed straight from the specification in
    ``storage.proof``'s docstring, independently of the tree's code: each key sits at
    SHA-256(key) in a 16-ary trie, a leaf at the shallowest depth where its prefix is
    unique, ``leaf = SHA-256(0x00 || key_hash || value_hash)``, ``node = SHA-256(0x01 ||
    bitmap (2 bytes, big-endian) || child hashes in nibble order)``, empty = SHA-256("")."""

    def nib(h: bytes, depth: int) -> int:
        b = h[depth // 2]
        return b & 15 if depth % 2 else b >> 4

    def build(depth: int, leaves: list[tuple[bytes, bytes]]) -> bytes:
        if len(leaves) == 1:
            kh, vh = leaves[0]
            return sha256(b"\x00" + kh + vh)
        groups: dict[int, list[tuple[bytes, bytes]]] = {}
        for leaf in leaves:
            groups.setdefault(nib(leaf[0], depth), []).append(leaf)
        bitmap = sum(1 << n for n in groups)
        children = [build(depth + 1, groups[n]) for n in sorted(groups)]
        return sha256(b"\x01" + bitmap.to_bytes(2, "big") + b"".join(children))

    if not items:
        return sha256(b"")
    return build(0, [(sha256(k), sha256(v)) for k, v in items.items()])
