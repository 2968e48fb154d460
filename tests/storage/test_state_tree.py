"""The state tree: roots that depend only on contents, versions, prepare/write/committed,
atomicity with the caller's batch, persistence across reopening, and pruning that keeps
exactly the configured versions.

Roots are checked against ``reference_root`` (storage_helpers), a from-the-spec
computation that shares no code with ``storage.state``; pruning is checked by walking
every kept root through the store and comparing what is reachable with what is stored.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from storage_helpers import (
    apply,
    random_changes,
    reachable_records,
    reference_root,
    stored_records,
)

from chain.hashing import EMPTY_HASH
from storage.errors import BatchError, OutOfOrder, VersionNotAvailable
from storage.kv import KVStore, LevelDBKV, MemoryKV
from storage.proof import verify_state_proof
from storage.state import StateTree

PREFIX = b"s"


@pytest.fixture(params=["memory", "leveldb"])
def kv(request: pytest.FixtureRequest, tmp_path: Path):
    kv = MemoryKV() if request.param == "memory" else LevelDBKV(tmp_path / "db")
    yield kv
    kv.close()


def snapshot(kv: KVStore) -> list[tuple[bytes, bytes]]:
    return list(kv.iterate())


def check_current(tree: StateTree, model: dict[bytes, bytes], probes: list[bytes]) -> None:
    """get(), iterate(), the root and proofs agree with ``model``."""
    assert tree.root_hash() == reference_root(model)
    assert list(tree.iterate()) == sorted(model.items())
    for k in probes:
        assert tree.get(k) == model.get(k)
        value, proof = tree.prove(k)
        assert value == model.get(k)
        assert verify_state_proof(tree.root_hash(), k, value, proof)


# ------------------------------------------------------------------- basics


def test_fresh_tree(kv: KVStore) -> None:
    tree = StateTree(kv)
    assert tree.version == -1
    assert tree.oldest_version == -1
    assert tree.root_hash() == EMPTY_HASH
    assert tree.get(b"k") is None
    assert list(tree.iterate()) == []
    for v in (0, -1, 1):
        with pytest.raises(VersionNotAvailable):
            tree.get_at(b"k", v)
        with pytest.raises(VersionNotAvailable):
            tree.prove(b"k", v)
    with pytest.raises(VersionNotAvailable):
        tree.prove(b"k")
    assert tree.commit({}) == EMPTY_HASH
    assert (tree.version, tree.oldest_version) == (0, 0)
    assert tree.root_hash(0) == EMPTY_HASH
    assert tree.get_at(b"k", 0) is None


def test_one_key_and_two_keys_match_the_spec(kv: KVStore) -> None:
    tree = StateTree(kv)
    root = tree.commit({b"alice": b"100"})
    assert root == reference_root({b"alice": b"100"})
    root = tree.commit({b"bob": b"5"})
    assert root == reference_root({b"alice": b"100", b"bob": b"5"})
    assert tree.get_at(b"alice", 0) == b"100"
    assert tree.get_at(b"bob", 0) is None
    assert tree.get_at(b"bob", 1) == b"5"
    assert tree.get(b"alice") == b"100"
    assert list(tree.iterate()) == [(b"alice", b"100"), (b"bob", b"5")]


def test_iterate_by_key_prefix(kv: KVStore) -> None:
    tree = StateTree(kv)
    model = {b"acct/alice": b"1", b"acct/bob": b"2", b"code/shop": b"3", b"acct": b"4",
             b"acct\xff": b"5", b"b": b"6"}
    tree.commit(model)
    assert list(tree.iterate(b"acct/")) == [(b"acct/alice", b"1"), (b"acct/bob", b"2")]
    assert [k for k, _ in tree.iterate(b"acct")] == [b"acct", b"acct/alice", b"acct/bob",
                                                      b"acct\xff"]
    assert list(tree.iterate(b"zzz")) == []
    assert list(tree.iterate()) == sorted(model.items())


def test_bad_keys_and_values_are_refused_before_anything_changes(kv: KVStore) -> None:
    tree = StateTree(kv)
    tree.commit({b"a": b"1"})
    before = snapshot(kv)
    for changes in ({b"": b"x"}, {b"k" * 1025: b"x"}, {"text": b"x"}, {b"k": "text"},
                    {b"k": b"x" * ((1 << 20) + 1)}):
        with pytest.raises(ValueError):
            tree.prepare(changes)  # type: ignore[arg-type]
    assert snapshot(kv) == before
    assert tree.version == 0
    # The limits themselves are fine.
    tree.commit({b"k" * 1024: b"x" * (1 << 20), b"e": b""})
    assert tree.get(b"k" * 1024) == b"x" * (1 << 20)
    assert tree.get(b"e") == b""
    assert tree.get_at(b"e", 1) == b""


# --------------------------------------------------------- root = f(contents)

keys_st = st.binary(min_size=1, max_size=6)
values_st = st.binary(max_size=6)


@settings(max_examples=60)
@given(
    final=st.dictionaries(keys_st, values_st, max_size=40),
    doomed=st.dictionaries(keys_st, values_st, max_size=15),
    interim=st.lists(values_st, min_size=1, max_size=3),
    rnd=st.randoms(use_true_random=False),
    blocks=st.integers(1, 6),
)
def test_root_does_not_depend_on_order_or_history(
    final: dict[bytes, bytes], doomed: dict[bytes, bytes], interim: list[bytes],
    rnd: random.Random, blocks: int,
) -> None:
    doomed = {k: v for k, v in doomed.items() if k not in final}
    # First every key gets an interim value, in a random order over random blocks; then
    # survivors get their final value and the doomed are deleted, again shuffled.
    first = [(k, interim[i % len(interim)]) for i, k in enumerate([*final, *doomed])]
    second: list[tuple[bytes, bytes | None]] = [*final.items(), *((k, None) for k in doomed)]
    second.append((b"never-inserted", None))
    rnd.shuffle(first)
    rnd.shuffle(second)
    tree = StateTree(MemoryKV())
    for ops in (first, second):
        cuts = sorted(rnd.randrange(len(ops) + 1) for _ in range(blocks - 1))
        for lo, hi in zip([0, *cuts], [*cuts, len(ops)], strict=True):
            tree.commit(dict(ops[lo:hi]))
    fresh = StateTree(MemoryKV())
    fresh.commit(final)
    assert tree.root_hash() == fresh.root_hash() == reference_root(final)
    assert list(tree.iterate()) == sorted(final.items())
    for k in doomed:
        assert tree.get(k) is None


def test_root_independent_of_order_on_leveldb(tmp_path: Path) -> None:
    rng = random.Random(11)
    items = {rng.randbytes(rng.randrange(1, 12)): rng.randbytes(rng.randrange(0, 20))
             for _ in range(400)}
    order = list(items.items())
    rng.shuffle(order)
    with LevelDBKV(tmp_path / "db") as kv:
        tree = StateTree(kv)
        for i in range(0, len(order), 37):
            tree.commit(dict(order[i : i + 37]))
        assert tree.root_hash() == reference_root(items)
    with LevelDBKV(tmp_path / "db2") as kv:
        tree = StateTree(kv)
        tree.commit(dict(reversed(order)))
        assert tree.root_hash() == reference_root(items)


@pytest.mark.parametrize("history", [1, 3])
def test_deleting_every_key_gives_the_empty_hash(kv: KVStore, history: int) -> None:
    rng = random.Random(5)
    keys = [b"key-%d" % i for i in range(300)]
    tree = StateTree(kv, history=history)
    for i in range(0, 300, 100):
        tree.commit({k: b"v" + k for k in keys[i : i + 100]})
    assert tree.root_hash() != EMPTY_HASH
    rng.shuffle(keys)
    for i in range(0, 300, 70):
        tree.commit({k: None for k in keys[i : i + 70]})
    assert tree.root_hash() == EMPTY_HASH
    assert list(tree.iterate()) == []
    assert tree.get(keys[0]) is None
    v, proof = tree.prove(keys[0])
    assert v is None and proof.steps == () and proof.leaf_key_hash == b""
    assert verify_state_proof(EMPTY_HASH, keys[0], None, proof)
    # Once the versions that had keys are pruned, no node or value record is left.
    for _ in range(history):
        tree.commit({})
    assert stored_records(kv, PREFIX) == set()
    assert tree.root_hash() == EMPTY_HASH


def test_setting_a_key_to_its_current_value_leaves_the_root_unchanged(kv: KVStore) -> None:
    tree = StateTree(kv, history=3)
    model = {b"k%d" % i: b"v%d" % i for i in range(50)}
    root = tree.commit(model)
    assert tree.commit({b"k7": b"v7"}) == root
    assert tree.commit(dict(model)) == root  # every key again
    assert tree.commit({b"k7": b"v7", b"absent": None}) == root
    assert tree.version == 3
    assert [tree.root_hash(v) for v in (1, 2, 3)] == [root] * 3
    for v in (1, 2, 3):
        for k in (b"k7", b"k0", b"absent"):
            assert tree.get_at(k, v) == model.get(k)
            value, proof = tree.prove(k, v)
            assert verify_state_proof(root, k, value, proof)
    # And a real change after that still works from the unchanged leaves.
    model[b"k7"] = b"new"
    assert tree.commit({b"k7": b"new"}) == reference_root(model)
    assert tree.get_at(b"k7", 3) == b"v7"
    kept = set().union(*(reachable_records(kv, PREFIX, v) for v in (2, 3, 4)))
    assert stored_records(kv, PREFIX) == kept


# ---------------------------------------------------- prepare / write / committed


def test_prepare_alone_changes_nothing(kv: KVStore) -> None:
    tree = StateTree(kv, history=2)
    model = {b"k%d" % i: b"v%d" % i for i in range(100)}
    tree.commit(model)
    tree.commit({b"k1": b"x"})
    model[b"k1"] = b"x"
    before = snapshot(kv)
    root = tree.root_hash()
    update = tree.prepare({b"k2": None, b"new": b"1", b"k3": b"changed"})
    assert update.root_hash != root
    assert update.version == 2
    assert snapshot(kv) == before
    assert (tree.version, tree.oldest_version, tree.root_hash()) == (1, 0, root)
    check_current(tree, model, [b"k2", b"new", b"k3", b"k1"])
    assert tree.get_at(b"k1", 0) == b"v1"
    with pytest.raises(VersionNotAvailable):
        tree.get_at(b"new", 2)
    # A reopened tree sees the same.
    again = StateTree(kv, history=2)
    assert (again.version, again.root_hash()) == (1, root)


def test_second_prepare_after_discarding_the_first(kv: KVStore) -> None:
    tree = StateTree(kv)
    model = {b"k%d" % i: b"v%d" % i for i in range(60)}
    tree.commit(model)
    discarded = tree.prepare({b"k1": b"a", b"k2": None, b"x": b"y"})
    update = tree.prepare({b"k3": b"b"})
    assert update.version == discarded.version == 1
    with kv.batch() as b:
        tree.write(update, b)
    tree.committed(update)
    model[b"k3"] = b"b"
    check_current(tree, model, [b"k1", b"k2", b"x", b"k3"])
    assert tree.get_at(b"k1", 1) == b"v1"
    # The discarded update is stale now.
    with kv.batch() as b, pytest.raises(OutOfOrder):
        tree.write(discarded, b)
    with pytest.raises(OutOfOrder):
        tree.committed(discarded)
    check_current(tree, model, [b"k1", b"k2", b"x"])


def test_stale_update_is_refused(kv: KVStore) -> None:
    tree = StateTree(kv)
    tree.commit({b"a": b"1"})
    early = tree.prepare({b"b": b"2"})
    tree.commit({b"c": b"3"})
    before = snapshot(kv)
    with kv.batch() as b:
        with pytest.raises(OutOfOrder):
            tree.write(early, b)
        assert len(b) == 0
    assert snapshot(kv) == before
    with pytest.raises(OutOfOrder):
        tree.committed(early)
    assert tree.version == 1
    assert tree.get(b"b") is None
    assert tree.root_hash() == reference_root({b"a": b"1", b"c": b"3"})


def test_prepare_refuses_a_version_out_of_sequence(kv: KVStore) -> None:
    tree = StateTree(kv)
    with pytest.raises(OutOfOrder):
        tree.prepare({b"a": b"1"}, version=1)
    tree.commit({b"a": b"1"}, version=0)
    for v in (0, 2, 5):
        with pytest.raises(OutOfOrder):
            tree.prepare({b"a": b"2"}, version=v)
    assert tree.prepare({b"a": b"2"}, version=1).version == 1


@pytest.mark.parametrize("history", [1, 2, 100])
def test_exception_inside_the_batch_keeps_the_previous_version(
    tmp_path: Path, history: int
) -> None:
    rng = random.Random(history)
    universe = [b"key-%d" % i for i in range(120)]
    kv = LevelDBKV(tmp_path / "db")
    tree = StateTree(kv, history=history)
    models: list[dict[bytes, bytes]] = []
    model: dict[bytes, bytes] = {}
    for _ in range(4):
        changes = random_changes(rng, universe, model, 60)
        tree.commit(changes)
        apply(model, changes)
        models.append(dict(model))
    roots = [tree.root_hash(v) for v in range(max(0, 3 - history + 1), 4)]
    changes = random_changes(rng, universe, model, 60)
    update = tree.prepare(changes)
    before = snapshot(kv)
    with pytest.raises(RuntimeError), kv.batch() as b:
        tree.write(update, b)  # includes the pruning of the oldest kept version
        raise RuntimeError("block execution failed")
    assert snapshot(kv) == before

    def check(t: StateTree) -> None:
        assert t.version == 3
        assert t.root_hash() == reference_root(models[3])
        kept = range(max(0, 3 - history + 1), 4)
        assert [t.root_hash(v) for v in kept] == roots
        check_current(t, models[3], universe[:40])
        for v in kept:
            for k in universe[::7]:
                value, proof = t.prove(k, v)
                assert value == models[v].get(k) == t.get_at(k, v)
                assert proof.verify(t.root_hash(v), k, value)
        with pytest.raises(VersionNotAvailable):
            t.get_at(universe[0], 4)

    check(tree)
    kv.close()
    kv = LevelDBKV(tmp_path / "db", create=False)
    tree = StateTree(kv, history=history)
    check(tree)
    # The same changes then commit normally, to the expected root.
    root = tree.commit(changes)
    apply(model, changes)
    assert root == reference_root(model)
    check_current(tree, model, universe[:40])
    kv.close()


def test_same_update_can_be_written_again_after_a_failed_batch(kv: KVStore) -> None:
    tree = StateTree(kv, history=2)
    tree.commit({b"a": b"1", b"b": b"2"})
    tree.commit({b"a": b"3"})
    update = tree.prepare({b"b": None, b"c": b"4"})
    with pytest.raises(KeyboardInterrupt), kv.batch() as b:
        tree.write(update, b)
        raise KeyboardInterrupt  # not only Exception subclasses
    assert tree.get(b"c") is None and tree.get(b"b") == b"2"
    with kv.batch() as b:
        tree.write(update, b)
    tree.committed(update)
    assert tree.root_hash() == reference_root({b"a": b"3", b"c": b"4"})
    assert tree.get_at(b"b", 1) == b"2"
    with pytest.raises(VersionNotAvailable):
        tree.get_at(b"b", 0)


def test_write_into_a_finished_batch_raises_batch_error(kv: KVStore) -> None:
    """A batch already written must not silently drop a version: WriteBatch refuses
    use after it is finished, and StateTree.write must not bypass that (else
    committed() would move the tree to a root that is not on disk)."""
    tree = StateTree(kv)
    tree.commit({b"a": b"1"})
    update = tree.prepare({b"b": b"2"})
    with kv.batch() as b:
        pass
    with pytest.raises(BatchError):
        tree.write(update, b)
    assert StateTree(kv).version == 0


# ------------------------------------------------------------------ persistence


def test_ten_thousand_updates_survive_reopening(tmp_path: Path) -> None:
    rng = random.Random(2024)
    universe = [b"acct/%05d" % i for i in range(2500)] + [rng.randbytes(20) for _ in range(500)]
    kv = LevelDBKV(tmp_path / "db")
    # A small node cache, so that eviction and reloading from disk are exercised too.
    tree = StateTree(kv, history=30, cache_nodes=300)
    model: dict[bytes, bytes] = {}
    models: list[dict[bytes, bytes]] = []
    total = 0
    while total < 10_000:
        n = rng.choice([1, 50, 400, 900])
        changes = random_changes(rng, universe, model, n)
        total += n
        tree.commit(changes)
        apply(model, changes)
        models.append(dict(model))
    version, root = tree.version, tree.root_hash()
    assert version == len(models) - 1 >= 15
    assert root == reference_root(model)
    kv.close()

    kv = LevelDBKV(tmp_path / "db", create=False)
    tree = StateTree(kv, history=30)
    assert tree.version == version
    assert tree.root_hash() == root
    assert tree.oldest_version == max(0, version - 29)
    for k in universe:
        assert tree.get(k) == model.get(k)
    assert list(tree.iterate()) == sorted(model.items())
    assert list(tree.iterate(b"acct/")) == sorted(i for i in model.items()
                                                  if i[0].startswith(b"acct/"))
    sample = rng.sample(universe, 150)
    for v in sorted({tree.oldest_version, version // 2, version - 1, version}):
        vroot = tree.root_hash(v)
        assert vroot == reference_root(models[v])
        for k in sample:
            value, proof = tree.prove(k, v)
            assert value == models[v].get(k) == tree.get_at(k, v)
            assert verify_state_proof(vroot, k, value, proof)
            assert not verify_state_proof(vroot, k, b"forged", proof)
    # And it carries on from there.
    changes = random_changes(rng, universe, model, 300)
    apply(model, changes)
    assert tree.commit(changes) == reference_root(model)
    kv.close()


# ---------------------------------------------------------------------- pruning


def check_versions(tree: StateTree, kv: KVStore, models: dict[int, dict[bytes, bytes]],
                   keep: range, probes: list[bytes]) -> None:
    """Exactly the versions in ``keep`` are readable, each as it was committed, and the
    store holds exactly the records reachable from their roots."""
    latest = tree.version
    assert tree.oldest_version == keep.start
    for v in range(0, latest + 3):
        if v in keep:
            assert tree.root_hash(v) == reference_root(models[v]), v
            for k in probes:
                value, proof = tree.prove(k, v)
                assert value == models[v].get(k) == tree.get_at(k, v), (k, v)
                assert verify_state_proof(tree.root_hash(v), k, value, proof)
        else:
            with pytest.raises(VersionNotAvailable):
                tree.root_hash(v)
            with pytest.raises(VersionNotAvailable):
                tree.get_at(probes[0], v)
            with pytest.raises(VersionNotAvailable):
                tree.prove(probes[0], v)
    reachable: set[bytes] = set()
    for v in keep:
        reachable |= reachable_records(kv, PREFIX, v)
    stored = stored_records(kv, PREFIX)
    assert not stored - reachable, f"{len(stored - reachable)} unreachable records kept"
    assert not reachable - stored
    # Root records exist for exactly the kept versions; stale lists only for versions
    # whose pruning is still to come.
    assert [k for k, _ in kv.iterate(PREFIX + b"R")] == [
        PREFIX + b"R" + v.to_bytes(8, "big") for v in keep
    ]
    for k, _ in kv.iterate(PREFIX + b"S"):
        assert keep.start < int.from_bytes(k[2:], "big") <= latest


@pytest.mark.parametrize("history", [1, 2, 5])
def test_pruning_keeps_exactly_the_configured_versions(tmp_path: Path, history: int) -> None:
    rng = random.Random(100 + history)
    universe = [b"k%d" % i for i in range(70)]
    probes = universe[:25] + [b"absent"]
    kv = LevelDBKV(tmp_path / "db")
    tree = StateTree(kv, history=history)
    models: dict[int, dict[bytes, bytes]] = {}
    model: dict[bytes, bytes] = {}
    for v in range(14):
        changes = {} if v == 6 else random_changes(rng, universe, model, rng.randrange(1, 30))
        tree.commit(changes)
        apply(model, changes)
        models[v] = dict(model)
        check_versions(tree, kv, models, range(max(0, v - history + 1), v + 1), probes)
    kv.close()

    # Reopening with another history: what is stored stays readable, and from the next
    # commit on the new history is kept, exactly.
    for new_history, steps in ((history + 3, 5), (1, 2), (4, 6)):
        kv = LevelDBKV(tmp_path / "db", create=False)
        tree = StateTree(kv, history=new_history)
        oldest = tree.oldest_version
        check_versions(tree, kv, models, range(oldest, tree.version + 1), probes)
        for _ in range(steps):
            changes = random_changes(rng, universe, model, rng.randrange(1, 30))
            tree.commit(changes)
            apply(model, changes)
            v = tree.version
            models[v] = dict(model)
            oldest = max(oldest, v - new_history + 1)
            check_versions(tree, kv, models, range(oldest, v + 1), probes)
        kv.close()


def test_pruning_on_memory_matches_leveldb(tmp_path: Path) -> None:
    """The same commits on both backends leave the same records (pruning included)."""
    rng = random.Random(9)
    universe = [b"k%d" % i for i in range(200)]
    mem, disk = MemoryKV(), LevelDBKV(tmp_path / "db")
    trees = [StateTree(mem, history=3), StateTree(disk, history=3)]
    model: dict[bytes, bytes] = {}
    for _ in range(12):
        changes = random_changes(rng, universe, model, 80)
        apply(model, changes)
        roots = {t.commit(changes) for t in trees}
        assert roots == {reference_root(model)}
    assert snapshot(mem) == snapshot(disk)
    disk.close()


# --------------------------------------------- write() and committed() go together


def test_committed_refuses_an_update_that_was_never_written(kv: KVStore) -> None:
    tree = StateTree(kv, history=3)
    tree.commit({b"a": b"1"})
    written = tree.prepare({b"a": b"2"})
    other = tree.prepare({b"a": b"3"})  # a competing proposal for the same version
    with kv.batch() as b:
        tree.write(written, b)
    with pytest.raises(OutOfOrder, match="never written"):
        tree.committed(other)
    assert tree.version == 0 and tree.get(b"a") == b"2"  # the store moved, memory not yet
    tree.committed(written)
    assert tree.version == 1
    assert tree.root_hash() == StateTree(kv, history=3).root_hash()


def test_write_refuses_when_the_store_is_ahead_of_the_tree(kv: KVStore) -> None:
    """A batch that became durable without committed() (say an exception after the
    write) leaves the store one version ahead; writing again must not corrupt it."""
    tree = StateTree(kv, history=3)
    tree.commit({b"a": b"1", b"b": b"1"})
    lost = tree.prepare({b"a": b"2"})
    with kv.batch() as b:
        tree.write(lost, b)
    retry = tree.prepare({b"b": b"2"})
    with (
        pytest.raises(OutOfOrder, match="the store holds state version 1, this tree is at 0"),
        kv.batch() as b,
    ):
        tree.write(retry, b)
    reopened = StateTree(kv, history=3)  # what the message tells the operator to do
    assert reopened.version == 1
    assert (reopened.get(b"a"), reopened.get(b"b")) == (b"2", b"1")
    assert reopened.commit({b"b": b"2"}) == reference_root({b"a": b"2", b"b": b"2"})


def test_hot_upper_nodes_survive_eviction(kv: KVStore) -> None:
    """The cache evicts by insertion order and dict.update keeps a rewritten node in
    its old place; the upper nodes rewritten by a version must move to the back when
    the cache is full, or the root would drift to the front and be evicted and read
    back again and again."""
    tree = StateTree(kv, history=2, cache_nodes=300)
    rng = random.Random(5)
    tree.commit({b"k%d" % i: b"v" for i in range(3000)})
    evictions = 0
    for _ in range(20):
        update = tree.prepare(
            {b"k%d" % rng.randrange(6000): b"v%d" % rng.randrange(9) for _ in range(40)}
        )
        with kv.batch() as b:
            tree.write(update, b)
        before = set(tree._cache)
        tree.committed(update)
        evictions += len(before - set(tree._cache))
        rewritten_upper = {p for p in update.nodes if p[0] <= 3}
        assert b"\x00" in rewritten_upper  # the root changes with every version
        assert rewritten_upper <= set(tree._cache)
        assert tree.cached_nodes <= 300
    assert evictions > 100  # the cache really was under pressure


def test_reads_of_older_versions_leave_the_node_cache_to_the_latest(kv: KVStore) -> None:
    """The node cache holds the newest node at each path and serves only the latest
    version. Reading and proving older versions (through a cache too small to hold the
    tree, so nodes are read from the store) must neither return newer nodes nor leave
    older ones behind for the next update to build on."""
    tree = StateTree(kv, history=6, cache_nodes=40)
    rng = random.Random(11)
    model: dict[bytes, bytes] = {}
    models = []
    for _ in range(6):
        changes = {b"k%d" % rng.randrange(400): b"v%d" % rng.randrange(10**6) for _ in range(80)}
        model.update(changes)
        tree.commit(changes)
        models.append(dict(model))
    for v, old in enumerate(models):
        for key in list(old)[::5]:
            assert tree.get_at(key, v) == old[key]
            value, proof = tree.prove(key, v)
            assert value == old[key]
            assert verify_state_proof(tree.root_hash(v), key, value, proof)
    for _ in range(3):
        changes = {b"k%d" % rng.randrange(400): b"w%d" % rng.randrange(10**6) for _ in range(80)}
        model.update(changes)
        tree.commit(changes)
        assert tree.root_hash() == reference_root(model)
