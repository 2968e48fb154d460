"""The KVStore contract, one suite for every backend.

Like py-evm's ``DatabaseAPITestSuite``, every test here runs against MemoryKV,
LevelDBKV, and a PrefixedKV namespace over each of them (the parent holding other keys
just outside the namespace, so a leak across the boundary shows up). A stateful
hypothesis test then drives MemoryKV and LevelDBKV side by side against a dict.
"""

from __future__ import annotations

import shutil
import tempfile
from contextlib import nullcontext, suppress
from pathlib import Path

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from storage.errors import BatchError, StorageError, StoreClosed
from storage.kv import KVStore, LevelDBKV, MemoryKV, PrefixedKV, prefix_upper_bound

#: The namespace of the PrefixedKV variants ends in 0xff, and the parent holds keys
#: right next to it on both sides.
NAMESPACE = b"p\xff"
NEIGHBOURS = {
    b"p": b"n0",
    b"p\xfe\xff\xff": b"n1",
    b"q": b"n2",
    b"p\x00": b"n3",
    b"\xff\xff\xff": b"n4",
    b"": b"n5",
}

#: Keys chosen to sit around prefix and 0xff boundaries.
BOUNDARY_KEYS = [
    b"",
    b"\x00",
    b"a",
    b"a\x00",
    b"a\xfe\xff",
    b"a\xff",
    b"a\xff\x00",
    b"a\xff\xff",
    b"a\xff\xff\xff",
    b"ab",
    b"b",
    b"\xfe",
    b"\xff",
    b"\xff\x00",
    b"\xff\xff",
    b"\xff\xff\xff",
]
PREFIXES = [b"", b"a", b"a\xff", b"a\xff\xff", b"\xff", b"\xff\xff", b"\xff\xff\xff\xff",
            b"ab", b"c", b"\x00"]
#: Start keys: every stored key plus absent ones between, before and after them.
STARTS = [None, *BOUNDARY_KEYS, b"a\x01", b"a\xff\x01", b"aa", b"c", b"\x00\x00",
          b"\xff\xff\xff\xff", b"\xfe\xff"]


class Backend:
    """A store under test, and what backs it: the LevelDB (or memory) store itself,
    or for a PrefixedKV variant the parent holding the namespace."""

    def __init__(self, name: str, path: Path) -> None:
        self.name = name
        self.path = path / "db"
        self.persistent = name.endswith("leveldb")
        self.base: KVStore = LevelDBKV(self.path) if self.persistent else MemoryKV()
        self.prefixed = name.startswith("prefixed")
        if self.prefixed:
            for k, v in NEIGHBOURS.items():
                self.base.put(k, v)
        self.kv = self._view()

    def _view(self) -> KVStore:
        return PrefixedKV(self.base, NAMESPACE) if self.prefixed else self.base

    def close(self) -> None:
        """Close the underlying store (closing a PrefixedKV view does nothing)."""
        self.base.close()

    def reopen(self) -> KVStore:
        """Close and reopen the LevelDB; returns the new store (or view) to use."""
        assert self.persistent
        self.base.close()
        self.base = LevelDBKV(self.path, create=False)
        self.kv = self._view()
        return self.kv

    def check_neighbours(self) -> None:
        """The parent's keys around the namespace were never touched through it."""
        if self.prefixed:
            for k, v in NEIGHBOURS.items():
                assert self.base.get(k) == v


BACKENDS = ["memory", "leveldb", "prefixed-memory", "prefixed-leveldb"]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path):
    b = Backend(request.param, tmp_path)
    yield b
    with suppress(StoreClosed):  # unless the test closed it
        b.check_neighbours()
    b.close()


@pytest.fixture
def kv(backend: Backend) -> KVStore:
    return backend.kv


def fill(kv: KVStore, keys: list[bytes]) -> dict[bytes, bytes]:
    model = {k: b"value of " + k for k in keys}
    with kv.batch() as b:
        for k, v in model.items():
            b.put(k, v)
    return model


def expected(model: dict[bytes, bytes], prefix: bytes = b"", start: bytes | None = None,
             reverse: bool = False) -> list[tuple[bytes, bytes]]:
    """The contract of ``iterate`` written out over a dict."""
    keys = sorted(k for k in model if k.startswith(prefix))
    if start is not None:
        keys = [k for k in keys if (k <= start if reverse else k >= start)]
    if reverse:
        keys.reverse()
    return [(k, model[k]) for k in keys]


# ------------------------------------------------------------------ point ops


def test_put_get_overwrite(kv: KVStore) -> None:
    kv.put(b"k", b"v1")
    assert kv.get(b"k") == b"v1"
    kv.put(b"k", b"v2")
    assert kv.get(b"k") == b"v2"
    kv.put(b"empty", b"")
    assert kv.get(b"empty") == b""  # an empty value is a value, not a missing key


def test_missing_key_is_none(kv: KVStore) -> None:
    assert kv.get(b"nope") is None
    kv.put(b"nope2", b"x")
    assert kv.get(b"nope") is None
    assert kv.get(b"nope2\x00") is None
    assert kv.get(b"nope"[:3]) is None


def test_delete(kv: KVStore) -> None:
    kv.put(b"a", b"1")
    kv.put(b"b", b"2")
    kv.delete(b"a")
    assert kv.get(b"a") is None
    assert kv.get(b"b") == b"2"
    assert list(kv.iterate()) == [(b"b", b"2")]


def test_delete_missing_key_is_fine(kv: KVStore) -> None:
    kv.delete(b"never-there")
    kv.put(b"x", b"1")
    kv.delete(b"x")
    kv.delete(b"x")
    with kv.batch() as b:
        b.delete(b"also-never-there")
    assert kv.get(b"x") is None
    assert list(kv.iterate()) == []


def test_binary_keys_and_values(kv: KVStore) -> None:
    model = {bytes([i, 255 - i, 0]): bytes((i + j) % 256 for j in range(40)) for i in range(0, 256, 17)}
    model[b"\x00"] = b"\x00" * 3
    model[b"\xff" * 40] = b"\xff"
    with kv.batch() as b:
        for k, v in model.items():
            b.put(k, v)
    for k, v in model.items():
        assert kv.get(k) == v
    assert list(kv.iterate()) == expected(model)


# ------------------------------------------------------------------ iteration


def test_iteration_is_ordered_by_unsigned_bytes(kv: KVStore) -> None:
    # Inserted out of order; 0x80.. must sort after 0x7f (unsigned comparison) and a
    # key before its extensions.
    keys = [b"\x80", b"\x7f", b"b", b"a\x00", b"a", b"\xff", b"\x00", b"ab", b"\x7f\xff"]
    model = fill(kv, keys)
    assert list(kv.iterate()) == expected(model)
    assert [k for k, _ in kv.iterate()] == [
        b"\x00", b"a", b"a\x00", b"ab", b"b", b"\x7f", b"\x7f\xff", b"\x80", b"\xff"
    ]


@pytest.mark.parametrize("prefix", PREFIXES)
def test_prefix_iteration(kv: KVStore, prefix: bytes) -> None:
    model = fill(kv, BOUNDARY_KEYS)
    assert list(kv.iterate(prefix)) == expected(model, prefix)
    assert list(kv.iterate(prefix, reverse=True)) == expected(model, prefix, reverse=True)


def test_prefix_iteration_boundaries_written_out(kv: KVStore) -> None:
    fill(kv, BOUNDARY_KEYS)
    assert [k for k, _ in kv.iterate(b"a\xff")] == [
        b"a\xff", b"a\xff\x00", b"a\xff\xff", b"a\xff\xff\xff"
    ]
    assert [k for k, _ in kv.iterate(b"a\xff\xff")] == [b"a\xff\xff", b"a\xff\xff\xff"]
    assert [k for k, _ in kv.iterate(b"\xff")] == [b"\xff", b"\xff\x00", b"\xff\xff",
                                                   b"\xff\xff\xff"]
    assert [k for k, _ in kv.iterate(b"\xff\xff", reverse=True)] == [b"\xff\xff\xff",
                                                                     b"\xff\xff"]
    assert list(kv.iterate(b"\xff\xff\xff\xff")) == []
    assert len(list(kv.iterate(b""))) == len(BOUNDARY_KEYS)


def test_reverse_iteration_of_a_range_holding_only_its_lower_bound(kv: KVStore) -> None:
    """The one key of the range is the prefix itself (or the forward-start bound):
    reverse iteration must still yield it."""
    kv.put(b"a", b"1")
    kv.put(b"ab", b"2")
    kv.put(b"b", b"3")
    assert list(kv.iterate(b"ab", reverse=True)) == [(b"ab", b"2")]
    assert list(kv.iterate(b"b", reverse=True)) == [(b"b", b"3")]
    assert list(kv.iterate(b"a", start=b"a", reverse=True)) == [(b"a", b"1")]
    assert list(kv.iterate(start=b"a", reverse=True)) == [(b"a", b"1")]
    # With a second key in the range the bound key is yielded (the control case).
    assert list(kv.iterate(b"a", reverse=True)) == [(b"ab", b"2"), (b"a", b"1")]


@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
def test_start_in_both_directions(kv: KVStore, reverse: bool) -> None:
    model = fill(kv, BOUNDARY_KEYS)
    for prefix in PREFIXES:
        for start in STARTS:
            got = list(kv.iterate(prefix, start=start, reverse=reverse))
            assert got == expected(model, prefix, start, reverse), (prefix, start)


def test_start_written_out(kv: KVStore) -> None:
    model = fill(kv, [b"k1", b"k3", b"k5", b"k7"])
    keys = lambda **kw: [k for k, _ in kv.iterate(b"k", **kw)]  # noqa: E731
    assert keys(start=b"k3") == [b"k3", b"k5", b"k7"]  # present: included
    assert keys(start=b"k4") == [b"k5", b"k7"]  # absent: the next one
    assert keys(start=b"k3", reverse=True) == [b"k3", b"k1"]
    assert keys(start=b"k4", reverse=True) == [b"k3", b"k1"]
    assert keys(start=b"k8") == []
    assert keys(start=b"k0", reverse=True) == []
    assert keys(start=b"a") == [b"k1", b"k3", b"k5", b"k7"]  # before the prefix
    assert keys(start=b"z", reverse=True) == [b"k7", b"k5", b"k3", b"k1"]  # after it
    assert keys(start=b"a", reverse=True) == []
    assert keys(start=b"z") == []
    assert len(model) == 4


def test_iteration_is_a_snapshot(kv: KVStore) -> None:
    model = fill(kv, [b"k%d" % i for i in range(10)])
    it = kv.iterate(b"k")
    first = next(it)
    kv.put(b"k55", b"inserted during iteration")
    kv.delete(b"k7")
    kv.put(b"k8", b"overwritten during iteration")
    with kv.batch() as b:
        b.put(b"k99", b"x")
        b.delete(b"k9")
    rest = list(it)
    assert [first, *rest] == expected(model, b"k")
    # A new iterator sees the writes.
    assert [k for k, _ in kv.iterate(b"k")] == [b"k0", b"k1", b"k2", b"k3", b"k4", b"k5",
                                               b"k55", b"k6", b"k8", b"k99"]
    assert kv.get(b"k8") == b"overwritten during iteration"


def test_reverse_iteration_is_a_snapshot(kv: KVStore) -> None:
    model = fill(kv, [b"k%d" % i for i in range(6)])
    it = kv.iterate(b"k", reverse=True)
    first = next(it)
    kv.delete(b"k0")
    kv.put(b"k00", b"x")
    assert [first, *it] == expected(model, b"k", reverse=True)


def test_empty_store_iterates_nothing(kv: KVStore) -> None:
    assert list(kv.iterate()) == []
    assert list(kv.iterate(b"\xff", reverse=True)) == []
    assert list(kv.iterate(start=b"a")) == []


# -------------------------------------------------------------------- batches


def test_batch_writes_everything_on_normal_exit(kv: KVStore) -> None:
    kv.put(b"old", b"1")
    with kv.batch() as b:
        b.put(b"a", b"1")
        b.put(b"b", b"2")
        b.delete(b"old")
        assert len(b) == 3
    assert kv.get(b"a") == b"1"
    assert kv.get(b"b") == b"2"
    assert kv.get(b"old") is None


def test_batch_writes_nothing_when_the_block_raises(kv: KVStore) -> None:
    kv.put(b"keep", b"kept")
    kv.put(b"also", b"kept too")
    before = list(kv.iterate())

    class Boom(Exception):
        pass

    with pytest.raises(Boom), kv.batch() as b:
        b.put(b"new1", b"x")  # written earlier in the batch
        b.put(b"keep", b"overwritten")
        b.delete(b"also")
        for i in range(100):
            b.put(b"bulk%03d" % i, b"y" * 100)
        raise Boom
    assert kv.get(b"new1") is None
    assert kv.get(b"bulk000") is None
    assert kv.get(b"keep") == b"kept"
    assert kv.get(b"also") == b"kept too"  # the delete did not happen either
    assert list(kv.iterate()) == before


def test_batch_with_a_bad_value_writes_nothing(kv: KVStore) -> None:
    kv.put(b"keep", b"kept")
    with pytest.raises(TypeError), kv.batch() as b:
        b.put(b"first", b"x")
        b.delete(b"keep")
        b.put(b"second", "not bytes")  # type: ignore[arg-type]
    assert kv.get(b"first") is None
    assert kv.get(b"keep") == b"kept"


def test_later_ops_on_the_same_key_win(kv: KVStore) -> None:
    kv.put(b"d", b"existing")
    with kv.batch() as b:
        b.put(b"a", b"1")
        b.put(b"a", b"2")  # put, put
        b.put(b"b", b"1")
        b.delete(b"b")  # put, delete
        b.delete(b"c")
        b.put(b"c", b"3")  # delete, put
        b.delete(b"d")
        b.put(b"d", b"4")
        b.delete(b"d")  # delete, put, delete of an existing key
    assert kv.get(b"a") == b"2"
    assert kv.get(b"b") is None
    assert kv.get(b"c") == b"3"
    assert kv.get(b"d") is None
    assert list(kv.iterate()) == [(b"a", b"2"), (b"c", b"3")]


def test_reads_do_not_see_a_batch_before_it_is_written(kv: KVStore) -> None:
    kv.put(b"x", b"old")
    with kv.batch() as b:
        b.put(b"x", b"new")
        b.put(b"y", b"1")
        b.delete(b"x")
        b.put(b"x", b"newer")
        assert kv.get(b"x") == b"old"
        assert kv.get(b"y") is None
        assert list(kv.iterate()) == [(b"x", b"old")]
    assert kv.get(b"x") == b"newer"
    assert kv.get(b"y") == b"1"


def test_batch_is_not_usable_after_it_is_written(kv: KVStore) -> None:
    with kv.batch() as b:
        b.put(b"a", b"1")
    with pytest.raises(BatchError):
        b.put(b"b", b"2")
    with pytest.raises(BatchError):
        b.delete(b"a")
    assert isinstance(BatchError("x"), StorageError)
    assert kv.get(b"a") == b"1"
    assert kv.get(b"b") is None


def test_batch_is_not_usable_after_it_is_discarded(kv: KVStore) -> None:
    with pytest.raises(RuntimeError), kv.batch() as b:
        b.put(b"a", b"1")
        raise RuntimeError
    with pytest.raises(BatchError):
        b.put(b"b", b"2")
    with pytest.raises(BatchError):
        b.delete(b"a")
    assert kv.get(b"a") is None
    assert kv.get(b"b") is None


def test_empty_batch_changes_nothing(kv: KVStore) -> None:
    kv.put(b"a", b"1")
    with kv.batch(sync=True):
        pass
    assert list(kv.iterate()) == [(b"a", b"1")]


def test_sync_batch_writes(kv: KVStore) -> None:
    with kv.batch(sync=True) as b:
        b.put(b"s", b"synced")
    assert kv.get(b"s") == b"synced"


# ------------------------------------------------------------------ lifecycle


def test_use_after_close_raises_store_closed(backend: Backend) -> None:
    kv = backend.kv
    kv.put(b"a", b"1")
    backend.close()
    with pytest.raises(StoreClosed):
        kv.get(b"a")
    with pytest.raises(StoreClosed):
        kv.put(b"b", b"2")
    with pytest.raises(StoreClosed):
        kv.delete(b"a")
    with pytest.raises(StoreClosed):
        list(kv.iterate())
    with pytest.raises(StoreClosed):
        list(kv.iterate(b"a", reverse=True))
    with pytest.raises(StoreClosed), kv.batch() as b:
        b.put(b"c", b"3")
    backend.close()  # closing twice is harmless


def test_iterator_open_at_close_never_leaks_a_foreign_exception(backend: Backend) -> None:
    """An iterator still running when the store closes (a shutdown racing a history
    query) either finishes its snapshot or raises StoreClosed: nothing from outside the
    storage error hierarchy."""
    model = fill(backend.kv, [b"k%d" % i for i in range(5)])
    it = backend.kv.iterate()
    first = next(it)
    backend.close()
    try:
        rest = list(it)
    except StoreClosed:
        return
    except Exception as exc:  # the failure this test is about
        pytest.fail(f"{backend.name}: continuing an iterator after close raised "
                    f"{type(exc).__module__}.{type(exc).__name__}: {exc}")
    assert [first, *rest] == expected(model)


@pytest.mark.parametrize("name", ["leveldb", "prefixed-leveldb"])
def test_leveldb_data_survives_close_and_reopen(name: str, tmp_path: Path) -> None:
    backend = Backend(name, tmp_path)
    model = fill(backend.kv, BOUNDARY_KEYS)
    backend.kv.delete(b"a")
    del model[b"a"]
    with pytest.raises(RuntimeError), backend.kv.batch() as b:
        b.put(b"lost", b"x")
        raise RuntimeError
    kv = backend.reopen()
    assert list(kv.iterate()) == expected(model)
    assert kv.get(b"a") is None
    assert kv.get(b"lost") is None
    kv.put(b"after", b"reopen")
    kv = backend.reopen()
    assert kv.get(b"after") == b"reopen"
    backend.check_neighbours()
    backend.close()


def test_leveldb_open_twice_is_a_storage_error(tmp_path: Path) -> None:
    kv = LevelDBKV(tmp_path / "db")
    try:
        with pytest.raises(StorageError):
            LevelDBKV(tmp_path / "db")
    finally:
        kv.close()


def test_leveldb_missing_without_create_is_a_storage_error(tmp_path: Path) -> None:
    with pytest.raises(StorageError):
        LevelDBKV(tmp_path / "absent", create=False)


def test_stores_are_context_managers(tmp_path: Path) -> None:
    with LevelDBKV(tmp_path / "db") as db:
        db.put(b"a", b"1")
    with pytest.raises(StoreClosed):
        db.get(b"a")
    with MemoryKV() as mem:
        mem.put(b"a", b"1")
    with pytest.raises(StoreClosed):
        mem.get(b"a")


# ----------------------------------------------------------------- namespaces


@pytest.fixture(params=["memory", "leveldb"])
def parent(request: pytest.FixtureRequest, tmp_path: Path):
    kv = MemoryKV() if request.param == "memory" else LevelDBKV(tmp_path / "db")
    yield kv
    kv.close()


def test_namespaces_do_not_see_each_others_keys(parent: KVStore) -> None:
    one, two = PrefixedKV(parent, b"ns1/"), PrefixedKV(parent, b"ns2/")
    parent.put(b"ns1", b"parent key next to ns1")
    parent.put(b"ns1.", b"parent key after ns1/")
    one.put(b"k", b"one")
    two.put(b"k", b"two")
    one.put(b"only-one", b"1")
    assert one.get(b"k") == b"one"
    assert two.get(b"k") == b"two"
    assert two.get(b"only-one") is None
    assert list(one.iterate()) == [(b"k", b"one"), (b"only-one", b"1")]
    assert list(two.iterate()) == [(b"k", b"two")]
    assert list(two.iterate(reverse=True)) == [(b"k", b"two")]
    assert list(one.iterate(b"o")) == [(b"only-one", b"1")]
    assert list(one.iterate(start=b"l")) == [(b"only-one", b"1")]
    assert list(one.iterate(start=b"l", reverse=True)) == [(b"k", b"one")]
    one.delete(b"k")
    assert two.get(b"k") == b"two"
    assert parent.get(b"ns1/only-one") == b"1"
    assert parent.get(b"ns2/k") == b"two"
    assert parent.get(b"ns1/k") is None
    assert [k for k, _ in parent.iterate()] == [b"ns1", b"ns1.", b"ns1/only-one", b"ns2/k"]
    with pytest.raises(ValueError):
        PrefixedKV(parent, b"")


def test_namespace_batch_is_atomic(parent: KVStore) -> None:
    one = PrefixedKV(parent, b"ns1/")
    one.put(b"keep", b"1")
    with pytest.raises(RuntimeError), one.batch() as b:
        b.put(b"a", b"1")
        b.delete(b"keep")
        raise RuntimeError
    assert list(parent.iterate()) == [(b"ns1/keep", b"1")]
    with one.batch() as b:
        b.put(b"a", b"1")
        b.delete(b"keep")
    assert list(parent.iterate()) == [(b"ns1/a", b"1")]


def test_put_in_and_delete_in_write_atomically_across_namespaces(parent: KVStore) -> None:
    one, two = PrefixedKV(parent, b"ns1/"), PrefixedKV(parent, b"ns2/")
    two.put(b"doomed", b"x")
    with pytest.raises(RuntimeError), parent.batch() as b:
        one.put_in(b, b"k", b"1")
        two.delete_in(b, b"doomed")
        two.put_in(b, b"k", b"2")
        b.put(b"top", b"3")
        raise RuntimeError
    assert one.get(b"k") is None
    assert two.get(b"k") is None
    assert two.get(b"doomed") == b"x"
    assert parent.get(b"top") is None
    assert list(parent.iterate()) == [(b"ns2/doomed", b"x")]
    with parent.batch() as b:
        one.put_in(b, b"k", b"1")
        two.delete_in(b, b"doomed")
        two.put_in(b, b"k", b"2")
        b.put(b"top", b"3")
        assert one.get(b"k") is None  # not before the batch is written
    assert one.get(b"k") == b"1"
    assert two.get(b"k") == b"2"
    assert two.get(b"doomed") is None
    assert list(parent.iterate()) == [(b"ns1/k", b"1"), (b"ns2/k", b"2"), (b"top", b"3")]
    with pytest.raises(BatchError):
        one.put_in(b, b"late", b"x")
    with pytest.raises(BatchError):
        one.delete_in(b, b"k")


def test_namespace_close_does_not_close_the_parent(parent: KVStore) -> None:
    one = PrefixedKV(parent, b"ns1/")
    one.put(b"k", b"v")
    one.close()
    assert parent.get(b"ns1/k") == b"v"
    assert one.get(b"k") == b"v"


@pytest.mark.parametrize(
    ("prefix", "bound"),
    [(b"a", b"b"), (b"a\xff", b"b"), (b"a\xfe\xff", b"a\xff"), (b"\xff", None),
     (b"\xff\xff", None), (b"", None), (b"\x00", b"\x01")],
)
def test_prefix_upper_bound(prefix: bytes, bound: bytes | None) -> None:
    assert prefix_upper_bound(prefix) == bound


# ------------------------------------------------------- stateful model check

KEY_BYTES = [0x00, 0x01, 0x7F, 0xFE, 0xFF]
keys_st = st.lists(st.sampled_from(KEY_BYTES), max_size=3).map(bytes)
values_st = st.binary(max_size=8)
ops_st = st.lists(st.tuples(keys_st, st.none() | values_st), max_size=8)


class KVModelMachine(RuleBasedStateMachine):
    """MemoryKV and LevelDBKV, driven by the same operations, must agree with a dict."""

    def __init__(self) -> None:
        super().__init__()
        self.dir = tempfile.mkdtemp(prefix="kv-model-")
        self.stores: list[KVStore] = [MemoryKV(), LevelDBKV(Path(self.dir) / "db")]
        self.model: dict[bytes, bytes] = {}

    def teardown(self) -> None:
        for s in self.stores:
            s.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    @rule(k=keys_st, v=values_st)
    def put(self, k: bytes, v: bytes) -> None:
        for s in self.stores:
            s.put(k, v)
        self.model[k] = v

    @rule(k=keys_st)
    def delete(self, k: bytes) -> None:
        for s in self.stores:
            s.delete(k)
        self.model.pop(k, None)

    @rule(ops=ops_st, fail=st.booleans())
    def batch(self, ops: list[tuple[bytes, bytes | None]], fail: bool) -> None:
        for s in self.stores:
            with pytest.raises(RuntimeError) if fail else nullcontext(), s.batch() as b:
                for k, v in ops:
                    if v is None:
                        b.delete(k)
                    else:
                        b.put(k, v)
                if fail:
                    raise RuntimeError
        if not fail:
            for k, v in ops:
                if v is None:
                    self.model.pop(k, None)
                else:
                    self.model[k] = v

    @rule(k=keys_st)
    def get(self, k: bytes) -> None:
        for s in self.stores:
            assert s.get(k) == self.model.get(k)

    @rule(prefix=keys_st, start=st.none() | keys_st, reverse=st.booleans())
    def iterate(self, prefix: bytes, start: bytes | None, reverse: bool) -> None:
        want = expected(self.model, prefix, start, reverse)
        for s in self.stores:
            assert list(s.iterate(prefix, start=start, reverse=reverse)) == want, (
                type(s).__name__, prefix, start, reverse)

    @rule(data=st.data(), reverse=st.booleans())
    def iterate_at_stored_keys(self, data: st.DataObject, reverse: bool) -> None:
        """Prefixes and start keys that are stored keys themselves: the bounds."""
        stored = sorted(self.model) or [b""]
        prefix = data.draw(st.sampled_from(stored).map(lambda k: k[: len(k) // 2]) | st.sampled_from(stored))
        start = data.draw(st.none() | st.sampled_from(stored))
        want = expected(self.model, prefix, start, reverse)
        for s in self.stores:
            assert list(s.iterate(prefix, start=start, reverse=reverse)) == want, (
                type(s).__name__, prefix, start, reverse)

    @rule()
    def reopen_leveldb(self) -> None:
        self.stores[1].close()
        self.stores[1] = LevelDBKV(Path(self.dir) / "db", create=False)

    @invariant()
    def contents_agree(self) -> None:
        want = sorted(self.model.items())
        for s in self.stores:
            assert list(s.iterate()) == want


TestKVModel = KVModelMachine.TestCase
TestKVModel.settings = settings(max_examples=30, stateful_step_count=25, deadline=None)
