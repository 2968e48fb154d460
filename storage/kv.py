"""One small key-value interface, two backends.

:class:`KVStore` is what every store in Agora is written against: point reads, ordered
iteration over a prefix, and atomic write batches. :class:`MemoryKV` keeps everything
in a dict (tests, ``agora contract run``); :class:`LevelDBKV` is plyvel over LevelDB.
Both pass the same contract suite (``tests/storage/test_kv_contract.py``).

Atomicity is the point of the batch: ``with kv.batch() as b: ...`` writes every put and
delete at once when the block exits normally, and *nothing* when it raises. On LevelDB
the operations go straight into LevelDB's own batch buffer, which is written with one
``DB::Write`` on exit or cleared on an exception (plyvel's own context manager would
write a partial batch unless given ``transaction=True``). Reads never see a batch's
writes before it is written.
"""

from __future__ import annotations

import bisect
import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType

import plyvel

from .errors import BatchError, Corruption, StorageError, StoreClosed


def prefix_upper_bound(prefix: bytes) -> bytes | None:
    """The smallest key greater than every key starting with ``prefix`` (None: no bound)."""
    stripped = prefix.rstrip(b"\xff")
    if not stripped:
        return None
    return stripped[:-1] + bytes([stripped[-1] + 1])


class WriteBatch(ABC):
    """Puts and deletes collected for one atomic write. Later operations on the same
    key win. Obtained from :meth:`KVStore.batch`; not reusable once written.

    Each backend buffers the operations its own way (a dict, a LevelDB batch, the
    parent's batch); ``len()`` counts the operations added."""

    __slots__ = ("_count", "_done")

    def __init__(self) -> None:
        self._count = 0
        self._done = False

    def check_open(self) -> None:
        """Raise BatchError if the batch was already written or discarded."""
        if self._done:
            raise BatchError("write batch already finished")

    def put(self, key: bytes, value: bytes) -> None:
        self.check_open()
        self._put(key, value)
        self._count += 1

    def delete(self, key: bytes) -> None:
        self.check_open()
        self._delete(key)
        self._count += 1

    def writers(self) -> tuple[Callable[[bytes, bytes], None], Callable[[bytes], None]]:
        """The raw ``(put, delete)`` of this batch, for loops that add tens of thousands
        of operations per block (the state tree, the block store): no per-call checks.
        The caller reports how many operations it added with :meth:`added`."""
        self.check_open()
        return self._put, self._delete

    def added(self, n: int) -> None:
        """Count ``n`` operations added through :meth:`writers`."""
        self._count += n

    def __len__(self) -> int:
        return self._count

    @abstractmethod
    def _put(self, key: bytes, value: bytes) -> None: ...

    @abstractmethod
    def _delete(self, key: bytes) -> None: ...

    @abstractmethod
    def _write(self) -> None:
        """Apply every operation atomically."""

    @abstractmethod
    def _discard(self) -> None:
        """Drop the operations (the batch's block raised)."""


class _DictBatch(WriteBatch):
    """Operations buffered in a dict (key -> value, None to delete), applied by a
    callback: MemoryKV's batch."""

    __slots__ = ("ops", "_apply")

    def __init__(self, apply: Callable[[dict[bytes, bytes | None]], None]) -> None:
        super().__init__()
        self.ops: dict[bytes, bytes | None] = {}
        self._apply = apply

    def writers(self) -> tuple[Callable[[bytes, bytes], None], Callable[[bytes], None]]:
        self.check_open()
        return self.ops.__setitem__, self._delete

    def _put(self, key: bytes, value: bytes) -> None:
        self.ops[key] = value

    def _delete(self, key: bytes) -> None:
        self.ops[key] = None

    def _write(self) -> None:
        if self.ops:
            self._apply(self.ops)

    def _discard(self) -> None:
        self.ops.clear()


class KVStore(ABC):
    """The interface: bytes keys to bytes values, ordered by key."""

    @abstractmethod
    def get(self, key: bytes) -> bytes | None:
        """The value at ``key``, or None."""

    @abstractmethod
    def iterate(
        self,
        prefix: bytes = b"",
        *,
        start: bytes | None = None,
        reverse: bool = False,
    ) -> Iterator[tuple[bytes, bytes]]:
        """(key, value) pairs whose key starts with ``prefix``, in key order (or reverse).

        ``start`` (a full key) skips keys before it — or, in reverse, after it; the
        start key itself is included if present.
        """

    @abstractmethod
    def _new_batch(self, sync: bool) -> WriteBatch:
        """An empty batch of this store, to be written with or without fsync (raises
        StoreClosed once closed)."""

    @abstractmethod
    def close(self) -> None:
        """Release the store; further use raises StoreClosed."""

    def compact(self) -> None:
        """Give back the space of deleted and overwritten keys now (a no-op where the
        backend has nothing to compact)."""
        return None

    def put(self, key: bytes, value: bytes) -> None:
        """Write one key (atomically)."""
        with self.batch() as b:
            b.put(key, value)

    def delete(self, key: bytes) -> None:
        """Delete one key (atomically); deleting a missing key is not an error."""
        with self.batch() as b:
            b.delete(key)

    @contextmanager
    def batch(self, *, sync: bool = False) -> Iterator[WriteBatch]:
        """An atomic write batch: all of it is written when the block exits normally,
        none of it when the block raises. ``sync`` waits for the disk (fsync) before
        returning — used for commits that must survive a power cut."""
        b = self._new_batch(sync)
        try:
            yield b
        except BaseException:
            b._done = True
            b._discard()
            raise
        b._done = True
        b._write()

    def __enter__(self) -> KVStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class MemoryKV(KVStore):
    """A dict-backed store with a lazily sorted key list for ordered iteration."""

    def __init__(self) -> None:
        self._data: dict[bytes, bytes] = {}
        self._sorted: list[bytes] | None = []
        self._closed = False

    def _check(self) -> None:
        if self._closed:
            raise StoreClosed("memory store is closed")

    def get(self, key: bytes) -> bytes | None:
        self._check()
        return self._data.get(key)

    def _keys(self) -> list[bytes]:
        if self._sorted is None:
            self._sorted = sorted(self._data)
        return self._sorted

    def iterate(
        self,
        prefix: bytes = b"",
        *,
        start: bytes | None = None,
        reverse: bool = False,
    ) -> Iterator[tuple[bytes, bytes]]:
        self._check()
        # Snapshot the matching keys first so writes during iteration cannot disturb it
        # (LevelDB iterators see a snapshot too).
        keys = self._keys()
        lo = bisect.bisect_left(keys, prefix)
        upper = prefix_upper_bound(prefix)
        hi = len(keys) if upper is None else bisect.bisect_left(keys, upper)
        if start is not None:
            if reverse:
                hi = min(hi, bisect.bisect_right(keys, start))
            else:
                lo = max(lo, bisect.bisect_left(keys, start))
        selected = keys[lo:hi]
        if reverse:
            selected.reverse()
        data = self._data
        snapshot = [(k, data[k]) for k in selected]
        yield from snapshot

    def _new_batch(self, sync: bool) -> WriteBatch:
        self._check()
        return _DictBatch(self._apply)

    def _apply(self, ops: dict[bytes, bytes | None]) -> None:
        self._check()
        data = self._data
        for key, value in ops.items():
            if type(key) is not bytes or (value is not None and type(value) is not bytes):
                raise TypeError("keys and values are bytes")
        for key, value in ops.items():
            if value is None:
                if data.pop(key, None) is not None:
                    self._sorted = None
            else:
                if key not in data:
                    self._sorted = None
                data[key] = value

    def close(self) -> None:
        self._closed = True


class LevelDBKV(KVStore):
    """LevelDB through plyvel. Opening a damaged database raises :class:`Corruption`.

    The defaults suit a node's write pattern — each block writes megabytes of state
    tree nodes in one batch. They were chosen by measurement (``bench/state_tree.py``
    with ``--write-buffer-mb``, ``--max-file-mb`` and ``--compression``): table files
    of 16 MiB instead of LevelDB's 2 MiB mean fewer files and compactions; a memtable
    larger than 32 MiB made every insert slower. No compression: the state is mostly
    hashes, which do not compress, and snappy's work in LevelDB's single compaction
    thread let compaction fall behind under sustained load (60 blocks of 10,000
    updates at a million keys: write stalls of 4-7 s with snappy, none without).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        create: bool = True,
        cache_mb: int = 64,
        write_buffer_mb: int = 32,
        max_file_mb: int = 16,
        compression: str | None = None,
    ) -> None:
        self.path = Path(path)
        try:
            if create:
                self.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot create LevelDB directory {self.path}: {exc}") from None
        try:
            self._db = plyvel.DB(
                str(self.path),
                create_if_missing=create,
                paranoid_checks=True,
                lru_cache_size=cache_mb * 1024 * 1024,
                write_buffer_size=write_buffer_mb * 1024 * 1024,
                max_file_size=max_file_mb * 1024 * 1024,
                bloom_filter_bits=10,
                compression=compression,
            )
        except plyvel.CorruptionError as exc:
            raise Corruption(b"", f"LevelDB at {self.path}: {exc}") from None
        except plyvel.IOError as exc:
            raise StorageError(f"cannot open LevelDB at {self.path}: {exc}") from None
        except plyvel.Error as exc:
            raise StorageError(f"cannot open LevelDB at {self.path}: {exc}") from None
        self._closed = False

    def _db_or_raise(self) -> plyvel.DB:
        if self._closed:
            raise StoreClosed(f"LevelDB at {self.path} is closed")
        return self._db

    def get(self, key: bytes) -> bytes | None:
        try:
            return self._db_or_raise().get(key)
        except plyvel.CorruptionError as exc:
            raise Corruption(key, f"LevelDB: {exc}") from None
        except plyvel.Error as exc:
            raise StorageError(f"LevelDB read at {self.path} failed: {exc}") from None

    def iterate(
        self,
        prefix: bytes = b"",
        *,
        start: bytes | None = None,
        reverse: bool = False,
    ) -> Iterator[tuple[bytes, bytes]]:
        db = self._db_or_raise()
        lo: bytes | None = prefix or None
        hi = prefix_upper_bound(prefix) if prefix else None
        include_stop = False
        if start is not None:
            if reverse:
                if hi is None or start < hi:
                    hi, include_stop = start, True
            elif lo is None or start > lo:
                lo = start
        try:
            if reverse:
                # plyvel 1.5's reverse iteration drops the range's lower bound when it
                # is the first key it reaches, so the lower bound is enforced here.
                it = db.iterator(stop=hi, include_stop=include_stop, reverse=True)
            else:
                it = db.iterator(start=lo, stop=hi, include_stop=include_stop)
        except plyvel.CorruptionError as exc:
            raise Corruption(prefix, f"LevelDB iteration: {exc}") from None
        except plyvel.Error as exc:
            raise StorageError(f"LevelDB iteration at {self.path} failed: {exc}") from None
        try:
            for key, value in it:
                if reverse and lo is not None and key < lo:
                    break
                yield key, value
        except plyvel.CorruptionError as exc:
            raise Corruption(prefix, f"LevelDB iteration: {exc}") from None
        except plyvel.Error as exc:
            raise StorageError(f"LevelDB iteration at {self.path} failed: {exc}") from None
        except RuntimeError:
            # plyvel closes live iterators when the database is closed under them.
            if self._closed:
                raise StoreClosed(f"LevelDB at {self.path} was closed during iteration") from None
            raise
        finally:
            it.close()

    def _new_batch(self, sync: bool) -> WriteBatch:
        return _LevelDBBatch(self, sync)

    def compact(self) -> None:
        # plyvel's compact_range() without bounds compacts nothing (plyvel 1.5.1,
        # LevelDB 1.22): bound it by every key.
        if self._closed:
            raise StoreClosed(f"LevelDB store {self.path} is closed")
        self._db.compact_range(start=b"\x00", stop=b"\xff" * 64)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._db.close()


class _LevelDBBatch(WriteBatch):
    """A plyvel write batch: operations go straight into LevelDB's own batch buffer
    (no Python-side copy), which is written with one ``DB::Write`` or dropped."""

    __slots__ = ("_store", "_wb")

    def __init__(self, store: LevelDBKV, sync: bool) -> None:
        super().__init__()
        self._store = store
        self._wb = store._db_or_raise().write_batch(sync=sync)

    def writers(self) -> tuple[Callable[[bytes, bytes], None], Callable[[bytes], None]]:
        self.check_open()
        return self._wb.put, self._wb.delete

    def _put(self, key: bytes, value: bytes) -> None:
        self._wb.put(key, value)

    def _delete(self, key: bytes) -> None:
        self._wb.delete(key)

    def _write(self) -> None:
        self._store._db_or_raise()  # a closed store raises StoreClosed
        try:
            self._wb.write()
        except plyvel.Error as exc:
            raise StorageError(f"LevelDB write at {self._store.path} failed: {exc}") from None
        except RuntimeError:
            if self._store._closed:
                raise StoreClosed(f"LevelDB at {self._store.path} is closed") from None
            raise

    def _discard(self) -> None:
        self._wb.clear()


class _PrefixedBatch(WriteBatch):
    """A namespace's batch: every key prefixed, into a batch of the parent store."""

    __slots__ = ("_outer", "_prefix")

    def __init__(self, outer: WriteBatch, prefix: bytes) -> None:
        super().__init__()
        self._outer = outer
        self._prefix = prefix

    def _put(self, key: bytes, value: bytes) -> None:
        self._outer._put(self._prefix + key, value)

    def _delete(self, key: bytes) -> None:
        self._outer._delete(self._prefix + key)

    def _write(self) -> None:
        self._outer._done = True
        self._outer._write()

    def _discard(self) -> None:
        self._outer._done = True
        self._outer._discard()


class PrefixedKV(KVStore):
    """A view of another store under a key prefix (a namespace).

    Its own batches write to the parent atomically; :meth:`put_in` / :meth:`delete_in`
    add namespaced operations to a batch of the parent, so several namespaces can be
    written in one atomic batch.
    """

    def __init__(self, parent: KVStore, prefix: bytes) -> None:
        if not prefix:
            raise ValueError("a namespace needs a non-empty prefix")
        self.parent = parent
        self.prefix = prefix

    def get(self, key: bytes) -> bytes | None:
        return self.parent.get(self.prefix + key)

    def iterate(
        self,
        prefix: bytes = b"",
        *,
        start: bytes | None = None,
        reverse: bool = False,
    ) -> Iterator[tuple[bytes, bytes]]:
        n = len(self.prefix)
        full_start = None if start is None else self.prefix + start
        for key, value in self.parent.iterate(self.prefix + prefix, start=full_start,
                                              reverse=reverse):
            yield key[n:], value

    def put_in(self, batch: WriteBatch, key: bytes, value: bytes) -> None:
        batch.put(self.prefix + key, value)

    def delete_in(self, batch: WriteBatch, key: bytes) -> None:
        batch.delete(self.prefix + key)

    def _new_batch(self, sync: bool) -> WriteBatch:
        return _PrefixedBatch(self.parent._new_batch(sync), self.prefix)

    def close(self) -> None:
        """A view does not own its parent; closing it does nothing."""
