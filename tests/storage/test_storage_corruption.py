"""Damage on disk is reported as ``storage.errors.Corruption`` naming the damaged key,
and never returned as data: bit flips, truncation, swapped and deleted records in the
block store and the state tree, damaged LevelDB table files, and directories of
garbage.

Records are damaged through the raw LevelDBKV underneath, as a failing disk would,
and read back through a fresh BlockStore / StateTree (nothing cached) and after
reopening the database.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable
from pathlib import Path

import pytest
from storage_helpers import (
    ALICE,
    CHAIN,
    ChainBlock,
    flip,
    make_block,
    make_chain,
    node_records_on_path,
    reference_root,
)

from chain.hashing import sha256
from chain.tx import Transaction, Transfer
from storage.blockstore import BlockStore
from storage.errors import Corruption, StorageError
from storage.kv import LevelDBKV
from storage.state import StateTree, meta_offset, node_children

N = 5
CHAIN_BLOCKS = make_chain(N, seed=2)


def be64(n: int) -> bytes:
    return n.to_bytes(8, "big")


def expect_corruption(read: Callable[[], object], key: bytes, what: str = "") -> None:
    """``read`` raises Corruption naming ``key`` (it does not return anything)."""
    try:
        got = read()
    except Corruption as exc:
        assert exc.key == key, f"{what}: Corruption names {exc.key!r}, the damage is at {key!r}"
        assert isinstance(exc, StorageError)
        return
    pytest.fail(f"{what}: damaged record at {key!r} was returned as data: {got!r:.120}")


# ------------------------------------------------------------------ block store


@pytest.fixture
def db(tmp_path: Path):
    """A LevelDB holding the chain; yields a callable that reopens it."""
    path = tmp_path / "db"
    state = {"kv": LevelDBKV(path)}
    store = BlockStore(state["kv"])
    for cb in CHAIN_BLOCKS:
        with state["kv"].batch() as b:
            store.put_block(b, cb.block, cb.commit, cb.receipts)

    def reopen() -> LevelDBKV:
        state["kv"].close()
        state["kv"] = LevelDBKV(path, create=False)
        return state["kv"]

    reopen.kv = lambda: state["kv"]  # type: ignore[attr-defined]
    yield reopen
    state["kv"].close()


def block_with_txs() -> ChainBlock:
    return next(cb for cb in CHAIN_BLOCKS if len(cb.block.txs) >= 2)


def readers(store: BlockStore) -> dict[bytes, list[tuple[str, Callable[[], object]]]]:
    """Damaged key -> the reads that must report it."""
    cb = block_with_txs()
    h, bh = cb.block.height, cb.block.hash
    tx = cb.block.txs[1]
    sender = tx.sender_address
    history_key = next(k for k, _ in store.kv.iterate(b"bA" + sender))
    return {
        b"bB" + be64(h): [("block", lambda: store.block(h)),
                          ("block_by_hash", lambda: store.block_by_hash(bh))],
        b"bD" + be64(h): [("header", lambda: store.header(h)),
                          ("header_by_hash", lambda: store.header_by_hash(bh))],
        b"bC" + be64(h): [("commit", lambda: store.commit(h))],
        b"bN" + bh: [("height_of", lambda: store.height_of(bh)),
                     ("block_by_hash via index", lambda: store.block_by_hash(bh))],
        b"bT" + tx.hash: [("tx", lambda: store.tx(tx.hash))],
        b"bM": [("height", lambda: store.height)],
        history_key: [("history", lambda: store.history(sender, limit=1000))],
    }


def test_every_read_is_covered(db) -> None:
    store = BlockStore(db.kv())
    rs = readers(store)
    for key, reads in rs.items():
        assert db.kv().get(key) is not None, key
        for _, read in reads:
            assert read() not in (None, [], 0)


def test_flipped_bytes_in_block_store_records(db) -> None:
    kv = db.kv()
    store = BlockStore(kv)
    rng = random.Random(1)
    for key, reads in readers(store).items():
        raw = kv.get(key)
        assert raw is not None
        positions = sorted({0, 1, 2, 3, 4, 5, len(raw) - 1, *rng.sample(range(len(raw)), min(25, len(raw)))})
        for i in positions:
            for mask in (0x01, 0x80, 0xFF):
                kv.put(key, flip(raw, i, mask))
                for what, read in reads:
                    expect_corruption(read, key, f"{what}, byte {i} ^ {mask:#x}")
        kv.put(key, raw)
    # Undamaged again: everything reads.
    for reads in readers(store).values():
        for _, read in reads:
            read()


def test_truncated_block_store_records(db) -> None:
    kv = db.kv()
    store = BlockStore(kv)
    for key, reads in readers(store).items():
        raw = kv.get(key)
        assert raw is not None
        for length in sorted({0, 1, 3, 4, 5, len(raw) // 2, len(raw) - 1}):
            kv.put(key, raw[:length])
            for what, read in reads:
                expect_corruption(read, key, f"{what}, truncated to {length}")
        kv.put(key, raw + b"\x00")  # a trailing byte is damage too
        for what, read in reads:
            expect_corruption(read, key, f"{what}, one byte appended")
        kv.put(key, raw)


def test_damage_is_reported_after_reopening(db) -> None:
    keys = list(readers(BlockStore(db.kv())))
    for key in keys:
        kv = db.kv()
        raw = kv.get(key)
        assert raw is not None
        for damaged in (flip(raw, len(raw) // 2, 0x10), raw[:-3]):
            kv.put(key, damaged)
            kv = db()
            for what, read in readers(BlockStore(kv))[key]:
                expect_corruption(read, key, f"{what} after reopening")
        kv.put(key, raw)


def test_records_swapped_between_keys_are_corruption(db) -> None:
    """A record that passes its checksum but sits under the wrong key (a misdirected
    write) is not returned either."""
    kv = db.kv()
    store = BlockStore(kv)
    a, b = CHAIN_BLOCKS[1], CHAIN_BLOCKS[2]
    for kind in (b"bB", b"bD", b"bC"):
        ka, kb = kind + be64(a.block.height), kind + be64(b.block.height)
        kv.put(ka, kv.get(kb))  # type: ignore[arg-type]
    expect_corruption(lambda: store.block(a.block.height), b"bB" + be64(a.block.height), "block")
    expect_corruption(lambda: store.header(a.block.height), b"bD" + be64(a.block.height), "header")
    expect_corruption(lambda: store.commit(a.block.height), b"bC" + be64(a.block.height), "commit")
    txs = [tx for cb in CHAIN_BLOCKS for tx in cb.block.txs]
    t1, t2 = txs[0], txs[1]
    kv.put(b"bT" + t1.hash, kv.get(b"bT" + t2.hash))  # type: ignore[arg-type]
    expect_corruption(lambda: store.tx(t1.hash), b"bT" + t1.hash, "tx")
    # The hash index pointing at another height.
    c = CHAIN_BLOCKS[3]
    kv.put(b"bN" + c.block.hash, kv.get(b"bN" + CHAIN_BLOCKS[4].block.hash))  # type: ignore[arg-type]
    # Either record may be the damaged one; what matters is that block 5 is not
    # returned as block 4.
    with pytest.raises(Corruption) as info:
        store.block_by_hash(c.block.hash)
    assert info.value.key in (b"bN" + c.block.hash, b"bB" + be64(5))


def test_put_block_on_a_damaged_store_is_refused(db) -> None:
    kv = db.kv()
    store = BlockStore(kv)
    nxt = make_block(N + 1, CHAIN_BLOCKS[-1], [
        Transaction.create(ALICE, CHAIN, 77, Transfer(ALICE.address, 1), gas_limit=50_000,
                           gas_price=1)])
    for key in (b"bM", b"bD" + be64(N)):
        raw = kv.get(key)
        assert raw is not None
        kv.put(key, flip(raw, 6))
        with kv.batch() as b:
            with pytest.raises(Corruption) as info:
                store.put_block(b, nxt.block, nxt.commit, nxt.receipts)
            assert info.value.key == key
            assert len(b) == 0
        kv.put(key, raw)
    with kv.batch() as b:
        store.put_block(b, nxt.block, nxt.commit, nxt.receipts)
    assert store.height == N + 1


# ------------------------------------------------------------------ state tree

KEYS = [b"acct/%d" % i for i in range(40)]


@pytest.fixture
def tree_db(tmp_path: Path):
    """A LevelDB with a state tree at version 2 (history 3); yields (kv, models)."""
    kv = LevelDBKV(tmp_path / "db")
    tree = StateTree(kv, history=3)
    models = []
    model: dict[bytes, bytes] = {}
    for changes in ({k: b"v0-" + k for k in KEYS},
                    {k: b"v1-" + k for k in KEYS[::3]},
                    {KEYS[1]: None, b"acct/new": b"v2"}):
        tree.commit(changes)
        for k, v in changes.items():
            if v is None:
                model.pop(k, None)
            else:
                model[k] = v
        models.append(dict(model))
    yield kv, models
    kv.close()


def value_key(key: bytes, version: int) -> bytes:
    return b"sV" + sha256(key) + be64(version)


def test_flat_value_record_damage(tree_db) -> None:
    kv, models = tree_db
    key = KEYS[4]
    fk = b"sF" + key
    raw = kv.get(fk)
    assert raw is not None
    for damaged in [flip(raw, i, m) for i in range(len(raw)) for m in (0x01, 0x80)] + [
            raw[:n] for n in range(len(raw))]:
        kv.put(fk, damaged)
        tree = StateTree(kv, history=3)
        expect_corruption(lambda: tree.get(key), fk, "get")  # noqa: B023
        expect_corruption(lambda: list(tree.iterate()), fk, "iterate")  # noqa: B023
    kv.put(fk, raw)
    assert StateTree(kv, history=3).get(key) == models[2][key]


def test_versioned_value_record_damage(tree_db) -> None:
    kv, models = tree_db
    key = KEYS[3]  # set at version 1 (KEYS[::3])
    vk = value_key(key, 1)
    raw = kv.get(vk)
    assert raw == models[1][key]
    probe = StateTree(kv, history=3)
    absent = next(b"absent-%d" % i for i in range(20_000)
                  if probe.prove(b"absent-%d" % i)[1].leaf_key_hash == sha256(key))
    damaged = [flip(raw, i, m) for i in range(len(raw)) for m in (0x01, 0x80)]
    damaged += [raw[:n] for n in range(len(raw))] + [raw + b"\x00"]
    for bad in damaged:
        kv.put(vk, bad)
        for v in (1, 2):
            tree = StateTree(kv, history=3)
            expect_corruption(lambda: tree.get_at(key, v), vk, f"get_at v{v}")  # noqa: B023
            expect_corruption(lambda: tree.prove(key, v), vk, f"prove v{v}")  # noqa: B023
            # A non-membership proof that ends at this leaf needs its value hash too.
            expect_corruption(lambda: tree.prove(absent, v), vk, "prove absent")  # noqa: B023
    kv.delete(vk)
    tree = StateTree(kv, history=3)
    expect_corruption(lambda: tree.get_at(key, 2), vk, "get_at, value deleted")
    kv.put(vk, raw)
    assert StateTree(kv, history=3).get_at(key, 2) == raw


def test_deleted_node_record(tree_db) -> None:
    kv, models = tree_db
    # The key with the deepest path, so that inner nodes are covered too.
    key = max(models[2], key=lambda k: len(node_records_on_path(kv, b"s", 2, sha256(k))))
    path = node_records_on_path(kv, b"s", 2, sha256(key))
    assert len(path) >= 2
    for nk in path:
        raw = kv.get(nk)
        assert raw is not None
        kv.delete(nk)
        tree = StateTree(kv, history=3)
        expect_corruption(lambda: tree.get_at(key, 2), nk, "get_at")  # noqa: B023
        expect_corruption(lambda: tree.prove(key), nk, "prove")  # noqa: B023
        expect_corruption(lambda: tree.prepare({key: b"x"}), nk, "prepare")  # noqa: B023
        kv.put(nk, raw)
    assert StateTree(kv, history=3).get_at(key, 2) == models[2][key]


def test_flipped_bytes_in_a_node_record_are_reported_with_its_key(tree_db) -> None:
    """Every byte of a node record is damage when flipped: the child bitmap, the child
    hashes, the leaf bitmap, the per-child metadata (version, a leaf's key hash) and
    the CRC. Reading through the damaged node must raise Corruption naming that node."""
    kv, models = tree_db
    root_nk = node_records_on_path(kv, b"s", 2, sha256(KEYS[0]))[0]
    raw = kv.get(root_nk)
    assert raw is not None
    # bitmap, hashes, leaf bitmap, metadata, then a 4-byte CRC
    children = node_children(raw)
    present = [n for n in range(16) if children[n] is not None]
    hashed = 2 + 32 * len(present)
    metadata_end = len(raw) - 4
    owner = {}  # metadata byte -> the child it describes
    for n in present:
        start = meta_offset(raw, n)
        for i in range(start, start + (40 if children[n][32] else 8)):  # type: ignore[index]
            owner[i] = n
    assert sorted(owner) == list(range(hashed + 2, metadata_end))
    failures: dict[int, str] = {}
    for i in range(len(raw)):
        if i in owner:
            affected = [k for k in models[2] if sha256(k)[0] >> 4 == owner[i]][:2]
        else:  # the hashed part, the leaf bitmap or the CRC
            affected = list(models[2])[:2]
        kv.put(root_nk, flip(raw, i))
        for key in affected:
            tree = StateTree(kv, history=3)
            try:
                got = tree.get_at(key, 2)
            except Corruption as exc:
                if exc.key != root_nk:
                    failures[i] = (f"byte {i}: Corruption names {exc.key[:2]!r} record "
                                   f"{exc.key.hex()[:20]}.. ({exc.reason})")
                continue
            failures[i] = (f"byte {i}: damage not detected, get_at returned "
                           f"{'the right value' if got == models[2][key] else repr(got)}")
    kv.put(root_nk, raw)
    in_hashed_part = [i for i in failures if i < hashed or i >= metadata_end]
    assert not failures, (
        f"{len(failures)} of {len(raw)} flipped bytes misreported ({len(in_hashed_part)} "
        f"in the CRC and hashed part, {len(failures) - len(in_hashed_part)} in the "
        f"metadata part); first: {list(failures.values())[:3]}")


@pytest.mark.parametrize("part", ["child hash", "child key hash"])
def test_commit_over_a_damaged_node_record_is_refused(tree_db, part: str) -> None:
    """A damaged node must never be built upon: preparing the next version over it
    raises Corruption instead of committing a wrong root."""
    kv, models = tree_db
    root_nk = node_records_on_path(kv, b"s", 2, sha256(KEYS[0]))[0]
    raw = kv.get(root_nk)
    assert raw is not None
    children = node_children(raw)
    present = [n for n in range(16) if children[n] is not None]
    nib = next(n for n in present if children[n][32] == 1)  # type: ignore[index]
    j = present.index(nib)
    victim = next(k for k in models[2] if sha256(k) == children[nib][41:])  # type: ignore[index]
    # A byte of the child's hash, or the first byte of the leaf's key hash (in the
    # node's metadata part).
    pos = 2 + 32 * j + 5 if part == "child hash" else meta_offset(raw, nib) + 8
    kv.put(root_nk, flip(raw, pos))
    newcomer = next(b"new-%d" % i for i in range(10_000) if sha256(b"new-%d" % i)[0] >> 4 == nib)
    tree = StateTree(kv, history=3)
    try:
        update = tree.prepare({newcomer: b"x"})
    except Corruption as exc:
        assert exc.key == root_nk
        assert tree.version == 2
        return
    with kv.batch() as b:
        tree.write(update, b)
    tree.committed(update)
    honest = reference_root({**models[2], newcomer: b"x"})
    pytest.fail(
        f"damaged node {root_nk.hex()[:24]}.. ({part} of child {nib}) was built upon: "
        f"committed root {update.root_hash.hex()[:16]} (honest {honest.hex()[:16]}); "
        f"afterwards get({victim!r}) = {tree.get(victim)!r} but "
        f"get_at({victim!r}, 3) = {tree.get_at(victim, 3)!r}")


def test_damaged_root_and_meta_records(tree_db) -> None:
    kv, _ = tree_db
    for key in (b"sM", b"sR" + be64(2)):
        raw = kv.get(key)
        assert raw is not None
        for damaged in (flip(raw, 0), flip(raw, len(raw) - 1), raw[:3], raw[:-1]):
            kv.put(key, damaged)
            expect_corruption(lambda: StateTree(kv, history=3), key, "open")  # noqa: B023
        kv.put(key, raw)
    old = b"sR" + be64(1)
    raw = kv.get(old)
    assert raw is not None
    kv.put(old, flip(raw, 10))
    tree = StateTree(kv, history=3)
    expect_corruption(lambda: tree.root_hash(1), old, "root_hash(1)")
    expect_corruption(lambda: tree.get_at(KEYS[0], 1), old, "get_at(.., 1)")
    kv.delete(old)
    expect_corruption(lambda: tree.prove(KEYS[0], 1), old, "prove(.., 1), root deleted")
    assert tree.get_at(KEYS[0], 2) is not None  # the latest version does not need it


def test_damaged_stale_list_stops_the_commit(tree_db) -> None:
    kv, models = tree_db
    tree = StateTree(kv, history=3)
    tree.commit({KEYS[2]: b"v3"})  # version 3: pruning of version 0 reads S(1)
    stale_key = b"sS" + be64(2)
    raw = kv.get(stale_key)
    assert raw is not None
    kv.put(stale_key, flip(raw, len(raw) // 2))
    before = list(kv.iterate())
    with pytest.raises(Corruption) as info:
        tree.commit({KEYS[5]: b"v4"})  # version 4 prunes what S(2) lists
    assert info.value.key == stale_key
    assert list(kv.iterate()) == before
    assert tree.version == 3


def test_damage_in_the_tree_is_reported_after_reopening(tmp_path: Path) -> None:
    kv = LevelDBKV(tmp_path / "db")
    tree = StateTree(kv)
    tree.commit({k: b"v-" + k for k in KEYS})
    key = KEYS[9]
    nk = node_records_on_path(kv, b"s", 0, sha256(key))[-1]
    vk = value_key(key, 0)
    fk = b"sF" + key
    for k in (nk, vk, fk):
        kv.put(k, flip(kv.get(k), 3))  # type: ignore[arg-type]
    kv.close()
    kv = LevelDBKV(tmp_path / "db", create=False)
    try:
        tree = StateTree(kv)
        expect_corruption(lambda: tree.get(key), fk, "get")
        expect_corruption(lambda: tree.get_at(key, 0), nk, "get_at")
        expect_corruption(lambda: tree.prove(key), nk, "prove")
    finally:
        kv.close()


# ----------------------------------------------------------- LevelDB's own files


def test_damaged_table_file_is_reported_as_corruption(db) -> None:
    """A LevelDB table file that fails its own checks surfaces as Corruption through
    every read path (point reads and iteration), not as a plyvel exception."""
    kv = db()  # reopening writes the log out as a table file
    path = kv.path
    kv.close()
    tables = sorted(p for p in os.listdir(path) if p.endswith(".ldb"))
    assert tables
    for name in tables:
        data = (path / name).read_bytes()
        (path / name).write_bytes(data[:-8] + bytes(8))  # the footer's magic number
    kv = LevelDBKV(path, create=False)
    try:
        store = BlockStore(kv)
        expect_corruption(lambda: store.block(1), b"bB" + be64(1), "block")
        for what, read in (("height", lambda: store.height),
                           ("history", lambda: store.history(ALICE.address)),
                           ("iterate", lambda: list(kv.iterate(b"bB"))),
                           ("tree iterate", lambda: list(StateTree(kv).iterate()))):
            try:
                read()
            except Corruption:
                continue
            except Exception as exc:
                pytest.fail(f"{what}: {type(exc).__module__}.{type(exc).__name__}: {exc}")
            pytest.fail(f"{what}: a damaged table was read as data")
    finally:
        kv.close()


def garbage_dirs(tmp_path: Path) -> dict[str, Path]:
    rng = random.Random(4)
    out = {}
    d = tmp_path / "garbage-current"
    d.mkdir()
    (d / "CURRENT").write_bytes(b"this is not a manifest name\n")
    out["garbage CURRENT"] = d
    d = tmp_path / "empty-current"
    d.mkdir()
    (d / "CURRENT").write_bytes(b"")
    out["empty CURRENT"] = d
    d = tmp_path / "garbage-manifest"
    d.mkdir()
    (d / "CURRENT").write_bytes(b"MANIFEST-000001\n")
    (d / "MANIFEST-000001").write_bytes(rng.randbytes(300))
    out["garbage MANIFEST"] = d
    # A real database, then every one of its files overwritten with random bytes.
    d = tmp_path / "all-garbage"
    kv = LevelDBKV(d)
    for i in range(50):
        kv.put(b"k%d" % i, b"v" * 100)
    kv.close()
    for name in os.listdir(d):
        size = max((d / name).stat().st_size, 16)
        (d / name).write_bytes(rng.randbytes(size))
    out["every file random"] = d
    # A real database whose MANIFEST is truncated.
    d = tmp_path / "truncated-manifest"
    kv = LevelDBKV(d)
    kv.put(b"k", b"v")
    kv.close()
    manifest = next(p for p in os.listdir(d) if p.startswith("MANIFEST"))
    (d / manifest).write_bytes((d / manifest).read_bytes()[:5])
    out["truncated MANIFEST"] = d
    return out


def test_opening_a_directory_of_garbage(tmp_path: Path) -> None:
    for what, d in garbage_dirs(tmp_path).items():
        for create in (True, False):
            try:
                kv = LevelDBKV(d, create=create)
            except StorageError:  # Corruption is one
                continue
            except Exception as exc:
                pytest.fail(f"{what}: {type(exc).__module__}.{type(exc).__name__}: {exc}")
            kv.close()
            pytest.fail(f"{what}: opened as if it were a database")


def test_opening_a_regular_file_is_a_storage_error(tmp_path: Path) -> None:
    """A data directory path that names a file (a configuration slip) is reported as
    a StorageError like any other unusable database, whether or not create is set."""
    f = tmp_path / "not-a-dir"
    f.write_bytes(b"some file")
    for create in (False, True):
        with pytest.raises(StorageError):
            LevelDBKV(f, create=create)
