"""The authenticated state: a versioned radix-16 Merkle tree with a flat value index.

Theory of operation
-------------------
The state is a map from byte keys to byte values. Each key sits at
``SHA-256(key)`` in a 16-ary trie (one level per nibble of the hash), compressed the
way Jellyfish Merkle trees are: a leaf hangs at the shallowest depth where its prefix
is unique, and an internal node exists at a path exactly when two or more keys share
it. That shape depends only on the set of keys, so the root depends only on the
contents — never on insertion order or history.

Each committed *version* (the block height) has a root. Nodes are immutable and stored
under ``(version, path)``: an update writes new nodes along the changed paths at the new
version and leaves the old ones in place, so the roots of older versions stay readable
(and provable) until they are pruned. A node's record describes its children fully —
hash, version and, for a leaf, its key hash — so an update never reads a leaf, and no
leaf has a record of its own.

A node is one ``bytes`` object, the same in memory and on disk: a 2-byte child bitmap,
then the present children's hashes (32 bytes each), then a 2-byte bitmap of which
children are leaves, then each child's metadata (its version, 8 bytes, and for a leaf
its key hash, 32 more), then a CRC-32 of everything after the hashes. The node hash
covers the child bitmap and the hashes, one contiguous prefix of the record, so
changing one child is a splice; the CRC makes damage to the rest detectable too, as
every stored record must. Compared with a list of per-child objects this makes a
block's ~20,000 node rewrites (10,000 updates at a million keys) roughly twice as fast
and keeps the node cache compact and
invisible to the garbage collector. Values live beside the tree:

* ``F`` + key -> the current value (CRC-sealed): current reads never walk the tree;
* ``V`` + key hash + version -> the value set at that version, for reads and proofs at
  older versions (checked against the leaf hash when read).

Pruning: every update lists the node and value records it made stale (replaced or
deleted) in one ``S`` record for its version. Keeping the last ``history`` versions,
committing version v deletes everything listed as stale since v - history + 1: those
records were last live at a version no longer kept.

Writes go through :meth:`StateTree.prepare`, which computes the new root and every
record to write *without touching the store*, then :meth:`StateTree.write`, which adds
them to the caller's atomic batch (with the block and its indexes), and
:meth:`StateTree.committed`, which moves the in-memory view forward once that batch is
durably written. If anything fails in between, nothing moved: the previous version's
state and root are intact.
"""

from __future__ import annotations

import gc
import hashlib
import zlib
from bisect import bisect_left
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from itertools import islice
from operator import itemgetter

import msgpack

from chain.codec import pack
from chain.hashing import EMPTY_HASH, sha256

from .errors import Corruption, InvalidArgument, OutOfOrder, VersionNotAvailable
from .kv import KVStore, WriteBatch
from .proof import LEAF_PREFIX, MAX_DEPTH, NODE_PREFIX, ProofStep, StateProof, leaf_hash, nibble
from .records import be64 as _be64
from .records import load_plain, seal, unseal

# Record kinds under the tree's namespace.
_FLAT = b"F"
_VALUE = b"V"
_NODE = b"N"
_ROOT = b"R"
_STALE = b"S"
_META = b"M"

#: A child *entry* describes a child in memory: hash (32) || kind (1) || version (8),
#: then for a leaf its key hash (32). Kind 0 is an internal node (41 bytes; version =
#: the node's version), kind 1 a leaf (73 bytes; version = the version its value was
#: written at). In a node record the hashes and the *metadata* (version, and a leaf's
#: key hash) are stored apart, with the kinds as one bitmap.
Entry = bytes
LEAF_ENTRY_SIZE = 73
NODE_ENTRY_SIZE = 41
_INTERNAL = b"\x00"
_LEAF = b"\x01"

MAX_KEY = 1024
MAX_VALUE = 1 << 20
_first = itemgetter(0)
_sha256 = hashlib.sha256
_crc32 = zlib.crc32
_DEPTH = [bytes([d]) for d in range(MAX_DEPTH + 1)]
_HIGH_NIBBLE = [bytes([b & 0xF0]) for b in range(256)]
#: [odd depth?][byte] -> the byte starting the next run of that nibble (nibble < 15)
_NEXT_NIBBLE = (
    [bytes([min(((b >> 4) + 1) << 4, 255)]) for b in range(256)],
    [bytes([min(b + 1, 255)]) for b in range(256)],
)


def _drain(it: Iterable[object]) -> None:
    """Run an iterator to its end, keeping nothing."""
    deque(it, maxlen=0)


def node_path(depth: int, key_hash: bytes) -> bytes:
    """The position of the node at ``depth`` on ``key_hash``'s path: the depth, then the
    first ``depth`` nibbles of the key hash (a trailing half byte zero-filled)."""
    half = depth >> 1
    if depth & 1:
        return _DEPTH[depth] + key_hash[:half] + _HIGH_NIBBLE[key_hash[half]]
    return _DEPTH[depth] + key_hash[:half]


def node_key(version: int, depth: int, key_hash: bytes) -> bytes:
    """Store key of the internal node at ``depth`` on ``key_hash``'s path, at ``version``."""
    return _NODE + _be64(version) + node_path(depth, key_hash)


def meta_offset(record: bytes, nib: int) -> int:
    """Where the metadata of child ``nib`` starts in a node record (the child must be
    present): after the hashes and the leaf bitmap, 8 bytes per earlier child and 32
    more per earlier leaf. The hot loops of :class:`StateTree` inline this."""
    bitmap = record[0] << 8 | record[1]
    meta0 = 2 + 32 * bitmap.bit_count()
    leafmap = record[meta0] << 8 | record[meta0 + 1]
    below = (1 << nib) - 1
    return meta0 + 2 + 8 * (bitmap & below).bit_count() + 32 * (leafmap & below).bit_count()


def child_entry(record: bytes, nib: int) -> Entry | None:
    """The entry of child ``nib`` of a node record, or None if that slot is empty."""
    bitmap = record[0] << 8 | record[1]
    if not bitmap >> nib & 1:
        return None
    j = (bitmap & ((1 << nib) - 1)).bit_count()
    meta0 = 2 + 32 * bitmap.bit_count()
    m = meta_offset(record, nib)
    child_hash = record[2 + 32 * j : 34 + 32 * j]
    if (record[meta0] << 8 | record[meta0 + 1]) >> nib & 1:
        return child_hash + _LEAF + record[m : m + 40]
    return child_hash + _INTERNAL + record[m : m + 8]


def node_children(record: bytes) -> list[Entry | None]:
    """The 16 child slots of a node record (for inspection and tests; the trailing CRC
    is not checked here, see :func:`check_node`)."""
    return [child_entry(record, nib) for nib in range(16)]


def check_node(key: bytes, record: bytes, expected_hash: bytes) -> None:
    """Raise Corruption unless ``record`` is a well-formed node with that hash.

    The hash covers the bitmap and the child hashes; the trailing CRC covers the
    metadata (the leaf bitmap, the children's versions and the leaves' key hashes),
    which a damaged record would otherwise carry into the next version."""
    bitmap = record[0] << 8 | record[1] if len(record) >= 2 else 0
    k = bitmap.bit_count()
    meta0 = 2 + 32 * k
    if k == 0 or len(record) < meta0 + 2 + 8 * k + 4:
        raise Corruption(key, "tree node is truncated")
    if zlib.crc32(record[meta0:-4]).to_bytes(4, "big") != record[-4:]:
        raise Corruption(key, "tree node checksum mismatch")
    leafmap = record[meta0] << 8 | record[meta0 + 1]
    if leafmap & ~bitmap:
        raise Corruption(key, "tree node has a leaf in an empty slot")
    if len(record) != meta0 + 2 + 8 * k + 32 * leafmap.bit_count() + 4:
        raise Corruption(key, "tree node has the wrong length")
    if _sha256(NODE_PREFIX + record[:meta0]).digest() != expected_hash:
        raise Corruption(key, "tree node does not match its hash")


def _decode_root(key: bytes, raw: bytes) -> Entry | None:
    if raw == b"":
        return None
    if len(raw) == (LEAF_ENTRY_SIZE if raw[32:33] == _LEAF else NODE_ENTRY_SIZE):
        return raw
    raise Corruption(key, "malformed root entry")


def _groups(items: list, depth: int) -> Iterator[tuple[int, list]]:
    """Split items sorted by key hash into runs sharing the nibble at ``depth``."""
    i, n = 0, len(items)
    byte = depth >> 1
    if n > 48:
        # Long runs (the top levels of a big block): find each run's end by binary
        # search instead of looking at every item.
        while i < n:
            b = items[i][0][: byte + 1]
            nib = b[byte] & 15 if depth & 1 else b[byte] >> 4
            if nib == 15:
                j = n  # every item left shares the prefix, so has this nibble
            else:
                # the smallest key hash whose nibble at ``depth`` is the next one
                bound = b[:byte] + _NEXT_NIBBLE[depth & 1][b[byte]]
                j = bisect_left(items, bound, i + 1, n, key=_first)
            yield nib, items[i:j]
            i = j
    elif depth & 1:
        while i < n:
            nib = items[i][0][byte] & 15
            j = i + 1
            while j < n and items[j][0][byte] & 15 == nib:
                j += 1
            yield nib, items[i:j]
            i = j
    else:
        while i < n:
            nib = items[i][0][byte] >> 4
            j = i + 1
            while j < n and items[j][0][byte] >> 4 == nib:
                j += 1
            yield nib, items[i:j]
            i = j


@dataclass
class StateUpdate:
    """Everything one version changes, computed by :meth:`StateTree.prepare`."""

    version: int
    base_version: int
    root: Entry | None
    changes: dict[bytes, bytes | None]
    #: node path -> record of every new internal node, in the form the node cache
    #: keeps, so committing is one dict update
    nodes: dict[bytes, bytes] = field(default_factory=dict)
    #: full store keys of the node and value records this update makes stale
    stale: list[bytes] = field(default_factory=list)
    #: key hashes whose value was set to what it already was
    unchanged: set[bytes] = field(default_factory=set)
    key_hashes: dict[bytes, bytes] = field(default_factory=dict)
    #: set by StateTree.write; committed() accepts only an update that was written
    written: bool = False
    #: paths of the upper nodes (depth <= 3) this update rewrites: the hot ones
    hot: list[bytes] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.version_bytes = _be64(self.version)

    @property
    def root_hash(self) -> bytes:
        return EMPTY_HASH if self.root is None else self.root[:32]


class StateTree:
    """The authenticated key/value state, persisted in a :class:`KVStore` namespace.

    ``history`` is how many most recent versions stay readable with proofs;
    ``cache_nodes`` bounds the in-memory cache of internal nodes. A node is one bytes
    object of 100 to 650 bytes; a million keys make about 360,000 nodes, ~135 MB
    cached. The cache only grows as large as the tree, and a tree that outgrows it
    still works, more slowly: at a million keys, 42k updates/s with every node
    cached, 30k with 100,000 (``python -m bench.state_tree --cache-nodes N``).
    """

    def __init__(
        self,
        kv: KVStore,
        *,
        prefix: bytes = b"s",
        history: int = 100,
        cache_nodes: int = 400_000,
    ) -> None:
        if history < 1:
            raise ValueError("history must keep at least the latest version")
        self.kv = kv
        self.prefix = prefix
        self.history = history
        self.cache_nodes = cache_nodes
        #: node path -> record of the newest committed node at that position, which is
        #: the one the latest version uses wherever it has a node at that path (a path
        #: rewritten later holds the later node). So a hit needs no version check,
        #: a newer node simply replaces its path's entry, and stale nodes never need
        #: evicting one by one. Only reads of the latest version use the cache.
        #: Eviction is by insertion order.
        self._cache: dict[bytes, bytes] = {}
        self._np = prefix + _NODE
        self._vp = prefix + _VALUE
        meta_key = prefix + _META
        raw = kv.get(meta_key)
        if raw is None:
            self._version, self._oldest, self._root = -1, 0, None
        else:
            meta = load_plain(meta_key, raw)
            if (type(meta) is not list or len(meta) != 2
                    or not all(type(x) is int for x in meta)):
                raise Corruption(meta_key, "malformed state metadata")
            self._version, self._oldest = meta
            self._root = self._root_entry(self._version)

    # ----------------------------------------------------------------- reads

    @property
    def version(self) -> int:
        """The latest committed version (-1 before the first commit)."""
        return self._version

    @property
    def cached_nodes(self) -> int:
        """How many internal nodes the in-memory cache holds now."""
        return len(self._cache)

    @property
    def oldest_version(self) -> int:
        """The oldest version still readable (-1 before the first commit)."""
        return self._oldest if self._version >= 0 else -1

    def root_hash(self, version: int | None = None) -> bytes:
        """The root at ``version`` (default: latest); EMPTY_HASH for an empty state."""
        if version is None or version == self._version:
            return EMPTY_HASH if self._root is None else self._root[:32]
        e = self._root_entry(self._check_version(version))
        return EMPTY_HASH if e is None else e[:32]

    def get(self, key: bytes) -> bytes | None:
        """The current value of ``key`` (from the flat index, no tree walk)."""
        fk = self.prefix + _FLAT + key
        raw = self.kv.get(fk)
        return None if raw is None else unseal(fk, raw)

    def iterate(self, key_prefix: bytes = b"") -> Iterator[tuple[bytes, bytes]]:
        """Current (key, value) pairs whose key starts with ``key_prefix``, in key order."""
        base = self.prefix + _FLAT
        n = len(base)
        for k, raw in self.kv.iterate(base + key_prefix):
            yield k[n:], unseal(k, raw)

    def get_at(self, key: bytes, version: int) -> bytes | None:
        """The value of ``key`` as of ``version`` (walks that version's tree)."""
        return self._walk(key, version, want_proof=False)[0]

    def prove(self, key: bytes, version: int | None = None) -> tuple[bytes | None, StateProof]:
        """The value of ``key`` at ``version`` (default latest) and a proof of it."""
        value, proof = self._walk(key, self._version if version is None else version, True)
        assert proof is not None
        return value, proof

    def _check_version(self, version: int) -> int:
        if self._version < 0 or not self._oldest <= version <= self._version:
            raise VersionNotAvailable(
                f"state version {version} is not readable (kept: "
                f"{self.oldest_version}..{self._version})"
            )
        return version

    def _root_entry(self, version: int) -> Entry | None:
        rk = self.prefix + _ROOT + _be64(version)
        raw = self.kv.get(rk)
        if raw is None:
            raise Corruption(rk, f"root of version {version} is missing")
        return _decode_root(rk, unseal(rk, raw))

    def _walk(
        self, key: bytes, version: int, want_proof: bool
    ) -> tuple[bytes | None, StateProof | None]:
        self._check_version(version)
        entry = self._root if version == self._version else self._root_entry(version)
        key_hash = sha256(key)
        steps = []
        depth = 0
        latest = version == self._version
        while entry is not None and not entry[32]:
            path = node_path(depth, key_hash)
            record = (self._cache.get(path) if latest else None) or self._load_key(
                entry[33:41], path, entry, remember=latest
            )
            nib = nibble(key_hash, depth)
            if want_proof:
                bitmap = record[0] << 8 | record[1]
                hashes = [record[2 + 32 * i : 34 + 32 * i] for i in range(bitmap.bit_count())]
                if bitmap >> nib & 1:
                    del hashes[(bitmap & ((1 << nib) - 1)).bit_count()]
                steps.append(ProofStep(bitmap, tuple(hashes)))
            entry = child_entry(record, nib)
            depth += 1
        if entry is None:
            value = None
            leaf_kh = leaf_vh = b""
        else:
            leaf_kh = entry[41:]
            stored = self._load_value(entry)
            leaf_vh = sha256(stored)
            value = stored if leaf_kh == key_hash else None
        proof = StateProof(tuple(steps), leaf_kh, leaf_vh) if want_proof else None
        return value, proof

    def _load_key(
        self, vb: bytes, path: bytes, expected_hash: bytes, *, remember: bool = True
    ) -> bytes:
        """Read (and check) the node at ``path`` and version ``vb`` from the store;
        ``expected_hash`` is its hash (or a child entry, which starts with it). A node
        of the latest version is remembered in the cache."""
        full = self._np + vb + path
        record = self.kv.get(full)
        if record is None:
            raise Corruption(full, "tree node is missing")
        check_node(full, record, expected_hash[:32])
        if remember:
            self._cache[path] = record
            self._trim()
        return record

    def _load_value(self, entry: Entry) -> bytes:
        vk = self._vp + entry[41:] + entry[33:41]
        value = self.kv.get(vk)
        if value is None:
            raise Corruption(vk, "state value is missing")
        if leaf_hash(entry[41:], sha256(value)) != entry[:32]:
            raise Corruption(vk, "state value does not match its leaf hash")
        return value

    def _trim(self) -> None:
        """Evict the oldest-inserted nodes until the cache is within its bound.

        By insertion order rather than LRU: the hot upper nodes are re-inserted at the
        back whenever a version rewrites them (see committed()), so insertion order
        approximates recency at no cost per read. Evicting at least 1/16 of the bound
        at a time keeps the cost amortized."""
        cache = self._cache
        excess = len(cache) - self.cache_nodes
        if excess > 0:
            excess = min(len(cache), max(excess, self.cache_nodes // 16))
            for key in list(islice(cache, excess)):
                del cache[key]

    # ---------------------------------------------------------------- writes

    def prepare(
        self, changes: Mapping[bytes, bytes | None], version: int | None = None
    ) -> StateUpdate:
        """Compute the next version from ``changes`` (None deletes) without writing.

        The result can be thrown away (a block that is not committed) or passed to
        :meth:`write` and then :meth:`committed`.
        """
        v = self._version + 1 if version is None else version
        if v != self._version + 1:
            raise OutOfOrder(f"state version {v} does not follow {self._version}")
        # No reference cycles are made below, so the cyclic collector has nothing to
        # find; pausing it keeps it from walking the heap mid-block.
        gc_was_enabled = gc.isenabled()
        gc.disable()
        try:
            return self._prepare(changes, v)
        finally:
            if gc_was_enabled:
                gc.enable()

    def _prepare(self, changes: Mapping[bytes, bytes | None], v: int) -> StateUpdate:
        update = StateUpdate(v, self._version, None, dict(changes))
        items: list[tuple[bytes, bytes | None]] = []
        leaf_meta = _LEAF + update.version_bytes
        key_hashes = update.key_hashes
        h = _sha256
        for key, value in update.changes.items():
            if type(key) is not bytes or not 0 < len(key) <= MAX_KEY:
                raise InvalidArgument(f"state keys are 1..{MAX_KEY} bytes")
            kh = h(key).digest()
            key_hashes[key] = kh
            if value is None:
                items.append((kh, None))
            else:
                if type(value) is not bytes or len(value) > MAX_VALUE:
                    raise InvalidArgument(f"state values are bytes of at most {MAX_VALUE}")
                lh = h(LEAF_PREFIX + kh + h(value).digest()).digest()
                items.append((kh, lh + leaf_meta + kh))
        items.sort(key=_first)
        update.root = self._update(self._root, 0, items, update) if items else self._root
        return update

    def _update(self, entry: Entry | None, depth: int, items: list, up: StateUpdate) -> Entry | None:
        """The new entry for the subtree at ``depth`` that ``entry`` describes, after
        applying ``items`` (sorted (key hash, new leaf entry | None) pairs, all on this
        subtree's path). Returns ``entry`` itself when nothing changed."""
        if entry is None:
            return self._build(depth, [it for it in items if it[1] is not None], up)
        if entry[32]:
            return self._merge_leaf(entry, depth, items, up)
        # The hot path of every block: it runs once per touched internal node, so the
        # common single-key slots are handled inline rather than by recursion.
        kh0 = items[0][0]
        half = depth >> 1
        if depth & 1:
            path = _DEPTH[depth] + kh0[:half] + _HIGH_NIBBLE[kh0[half]]
            nib0 = kh0[half] & 15
        else:
            path = _DEPTH[depth] + kh0[:half]
            nib0 = kh0[half] >> 4
        vb = entry[33:41]
        record = self._cache.get(path) or self._load_key(vb, path, entry)
        bitmap = record[0] << 8 | record[1]
        meta0 = 2 + 32 * bitmap.bit_count()
        leafmap = record[meta0] << 8 | record[meta0 + 1]
        changed = []
        groups: Iterable[tuple[int, list]] = (
            ((nib0, items),) if len(items) == 1 else _groups(items, depth)
        )
        for nib, group in groups:
            bit = 1 << nib
            if bitmap & bit:  # child_entry, inlined
                below = bit - 1
                j = (bitmap & below).bit_count()
                m = meta0 + 2 + 8 * j + 32 * (leafmap & below).bit_count()
                if leafmap & bit:
                    child = record[2 + 32 * j : 34 + 32 * j] + _LEAF + record[m : m + 40]
                else:
                    child = record[2 + 32 * j : 34 + 32 * j] + _INTERNAL + record[m : m + 8]
            else:
                child = None
            if len(group) == 1 and (child is None or (child[32] and child[41:] == group[0][0])):
                kh, updated = group[0]
                if child is not None:
                    # The one key whose leaf sits here: overwrite or delete it.
                    if updated is not None and updated[:32] == child[:32]:
                        up.unchanged.add(kh)
                        continue
                    up.stale.append(self._vp + kh + child[33:41])
                elif updated is None:
                    continue  # deleting a key that is not there
            else:
                if len(group) == 1 and child is not None and not child[32]:
                    updated = self._update_single(child, depth + 1, group[0][0], group[0][1], up)
                else:
                    updated = self._update(child, depth + 1, group, up)
                if updated is child:
                    continue
            changed.append((nib, updated))
        if not changed:
            return entry
        up.stale.append(self._np + vb + path)
        if depth <= 3:
            up.hot.append(path)
        if len(changed) == 1:
            return self._splice(path, record, bitmap, meta0, changed[0][0], changed[0][1], up)
        # Several children changed (the upper levels): copy the unchanged runs between
        # them. ``changed`` is in nibble order, as _groups yields it.
        hs = []
        ms = []
        new_bitmap, new_leafmap = bitmap, leafmap
        h_prev, m_prev = 2, meta0 + 2  # where the next unchanged run starts
        for nib, e in changed:
            bit = 1 << nib
            below = bit - 1
            j = (bitmap & below).bit_count()
            h0 = 2 + 32 * j
            m0 = meta0 + 2 + 8 * j + 32 * (leafmap & below).bit_count()
            hs.append(record[h_prev:h0])
            ms.append(record[m_prev:m0])
            if bitmap & bit:
                h_prev, m_prev = h0 + 32, m0 + (40 if leafmap & bit else 8)
            else:
                h_prev, m_prev = h0, m0
            if e is None:
                new_bitmap &= ~bit
                new_leafmap &= ~bit
            else:
                new_bitmap |= bit
                new_leafmap = new_leafmap | bit if e[32] else new_leafmap & ~bit
                hs.append(e[:32])
                ms.append(e[33:])
        hs.append(record[h_prev:meta0])
        ms.append(record[m_prev:-4])
        hashes = b"".join(hs)
        metas = b"".join(ms)
        if not new_bitmap:
            return None
        if not new_bitmap & (new_bitmap - 1) and new_leafmap:
            return hashes + _LEAF + metas  # a lone leaf moves up to take this node's place
        return self._store(path, new_bitmap, new_leafmap, hashes, metas, up)

    def _update_single(
        self, entry: Entry, depth: int, kh: bytes, new: Entry | None, up: StateUpdate
    ) -> Entry | None:
        """:meth:`_update` for one key below an internal node: an iterative walk down
        the key's path, then one splice per node on the way back up."""
        top = entry
        frames = []
        cache = self._cache
        np = self._np
        vb = entry[33:41]
        # The hash the node must have, should it be read from the store: ``above``
        # holds it at ``at`` (a child entry is only built when a leaf needs one).
        above, at = entry, 0
        while True:
            half = depth >> 1
            b = kh[half]
            if depth & 1:
                path = _DEPTH[depth] + kh[:half] + _HIGH_NIBBLE[b]
                nib = b & 15
            else:
                path = _DEPTH[depth] + kh[:half]
                nib = b >> 4
            record = cache.get(path) or self._load_key(vb, path, above[at : at + 32])
            bitmap = record[0] << 8 | record[1]
            meta0 = 2 + 32 * bitmap.bit_count()
            frames.append((np + vb + path, path, record, bitmap, meta0, nib))
            bit = 1 << nib
            if not bitmap & bit:
                if new is None:
                    return top  # deleting a key that is not there
                result: Entry | None = new
                break
            below = bit - 1
            j = (bitmap & below).bit_count()
            leafmap = record[meta0] << 8 | record[meta0 + 1]
            m = meta0 + 2 + 8 * j + 32 * (leafmap & below).bit_count()  # meta_offset()
            if not leafmap & bit:
                vb = record[m : m + 8]
                above, at = record, 2 + 32 * j
                depth += 1
                continue
            if record[m + 8 : m + 40] == kh:
                if new is not None and new[:32] == record[2 + 32 * j : 34 + 32 * j]:
                    up.unchanged.add(kh)
                    return top  # same value again
                up.stale.append(self._vp + kh + record[m : m + 8])
                result = new
            elif new is None:
                return top  # deleting a key that is not there
            else:
                # Another key's leaf holds the slot: both move into a new subtree.
                child = record[2 + 32 * j : 34 + 32 * j] + _LEAF + record[m : m + 40]
                pair = [(kh, new), (child[41:], child)]
                pair.sort(key=_first)
                result = self._build(depth + 1, pair, up)
            break
        for nk, path, record, bitmap, meta0, nib in reversed(frames):
            up.stale.append(nk)
            if path[0] <= 3:
                up.hot.append(path)
            result = self._splice(path, record, bitmap, meta0, nib, result, up)
        return result

    def _splice(
        self, path: bytes, record: bytes, bitmap: int, meta0: int, nib: int,
        e: Entry | None, up: StateUpdate,
    ) -> Entry | None:
        """The node ``record`` (at ``path``; ``meta0`` = where its leaf bitmap starts)
        with child ``nib`` set to ``e`` (None: removed), stored; or what replaces the
        node when it ends up empty or with a lone leaf."""
        bit = 1 << nib
        below = bit - 1
        j = (bitmap & below).bit_count()
        leafmap = record[meta0] << 8 | record[meta0 + 1]
        h0 = 2 + 32 * j
        m0 = meta0 + 2 + 8 * j + 32 * (leafmap & below).bit_count()
        if bitmap & bit:
            was_leaf = leafmap & bit
            h1, m1 = h0 + 32, m0 + (40 if was_leaf else 8)
            if e is not None and (
                (e[32] if was_leaf else not e[32]) and (bitmap & (bitmap - 1) or not was_leaf)
            ):
                # Overwriting a child with one of its kind, the commonest case by far:
                # one pass, _store inlined. (Not when a lone child turns into a leaf:
                # that leaf moves up.)
                head = b"".join((record[:h0], e[:32], record[h1:meta0]))
                tail = b"".join((record[meta0:m0], e[33:], record[m1:-4]))
                vb = up.version_bytes
                up.nodes[path] = b"".join((head, tail, _crc32(tail).to_bytes(4, "big")))
                return _sha256(NODE_PREFIX + head).digest() + _INTERNAL + vb
        else:
            h1, m1 = h0, m0
        if e is None:
            bitmap &= ~bit
            leafmap &= ~bit
            hashes = record[2:h0] + record[h1:meta0]
            metas = record[meta0 + 2 : m0] + record[m1:-4]
        else:
            bitmap |= bit
            leafmap = leafmap | bit if e[32] else leafmap & ~bit
            hashes = b"".join((record[2:h0], e[:32], record[h1:meta0]))
            metas = b"".join((record[meta0 + 2 : m0], e[33:], record[m1:-4]))
        if not bitmap:
            return None
        if not bitmap & (bitmap - 1) and leafmap:
            return hashes + _LEAF + metas  # a lone leaf moves up to take this node's place
        return self._store(path, bitmap, leafmap, hashes, metas, up)

    def _merge_leaf(self, entry: Entry, depth: int, items: list, up: StateUpdate) -> Entry | None:
        """Items landing on a slot held by a leaf: update it, or split the slot."""
        old_kh = entry[41:]
        old_hash = entry[:32]
        live = []
        replaced = False
        for kh, e in items:
            if kh == old_kh:
                replaced = True
                if e is not None and e[:32] == old_hash:
                    up.unchanged.add(kh)  # same value again: keep the old leaf
                    live.append((kh, entry))
                    continue
                up.stale.append(self._vp + old_kh + entry[33:41])
                if e is not None:
                    live.append((kh, e))
            elif e is not None:
                live.append((kh, e))
        if not replaced:
            live.append((old_kh, entry))
            live.sort(key=_first)
        return self._build(depth, live, up)

    def _build(self, depth: int, live: list, up: StateUpdate) -> Entry | None:
        """A fresh subtree at ``depth`` holding exactly the leaves ``live``."""
        if not live:
            return None
        if len(live) == 1:
            return live[0][1]
        if depth >= MAX_DEPTH:  # two distinct keys with one SHA-256: not in this universe
            raise AssertionError("key hash collision")
        bitmap = leafmap = 0
        hs = []
        ms = []
        for nib, group in _groups(live, depth):
            e = self._build(depth + 1, group, up)
            assert e is not None  # a group is never empty
            bitmap |= 1 << nib
            if e[32]:
                leafmap |= 1 << nib
            hs.append(e[:32])
            ms.append(e[33:])
        return self._store(
            node_path(depth, live[0][0]), bitmap, leafmap, b"".join(hs), b"".join(ms), up
        )

    @staticmethod
    def _store(
        path: bytes, bitmap: int, leafmap: int, hashes: bytes, metas: bytes, up: StateUpdate
    ) -> Entry:
        """Record the node at ``path`` in ``up`` and return its entry."""
        b2 = bitmap.to_bytes(2, "big")
        tail = leafmap.to_bytes(2, "big") + metas
        vb = up.version_bytes
        # The node hash covers the bitmap and the hashes; the CRC covers the rest.
        up.nodes[path] = b"".join((b2, hashes, tail, _crc32(tail).to_bytes(4, "big")))
        return _sha256(NODE_PREFIX + b2 + hashes).digest() + _INTERNAL + vb

    def write(self, update: StateUpdate, batch: WriteBatch) -> None:
        """Add every record of ``update`` (and the pruning it allows) to ``batch``."""
        if update.base_version != self._version:
            raise OutOfOrder(
                f"update was prepared on version {update.base_version}, state is at "
                f"{self._version}"
            )
        p = self.prefix
        v = update.version
        batch.check_open()
        # The store must be where this tree believes it is: if an earlier batch became
        # durable but committed() never ran, writing again would corrupt the state.
        meta_key = self.prefix + _META
        raw = self.kv.get(meta_key)
        on_disk = -1 if raw is None else load_plain(meta_key, raw)[0]  # type: ignore[index]
        if on_disk != self._version:
            raise OutOfOrder(
                f"the store holds state version {on_disk}, this tree is at {self._version}: "
                "reopen the store"
            )
        update.written = True
        put, delete = batch.writers()  # raw: these loops run per changed key and node
        node_prefix = self._np + update.version_bytes
        nodes = update.nodes
        # (map() drives these two loops from C: tens of thousands of calls per block)
        _drain(map(put, map(node_prefix.__add__, nodes), nodes.values()))
        n = len(nodes)
        flat = p + _FLAT
        vprefix = p + _VALUE
        vsuffix = update.version_bytes
        unchanged = update.unchanged
        key_hashes = update.key_hashes
        crc32 = _crc32
        for key, value in update.changes.items():
            if value is None:
                delete(flat + key)
                n += 1
            else:
                kh = key_hashes[key]
                if kh not in unchanged:
                    put(vprefix + kh + vsuffix, value)
                    put(flat + key, crc32(value).to_bytes(4, "big") + value)  # seal()
                    n += 2
        put(p + _ROOT + vsuffix, seal(update.root or b""))
        oldest = v if self._version < 0 else self._oldest
        new_oldest = max(oldest, v - self.history + 1)
        for s in range(oldest + 1, new_oldest + 1):
            if s == v:
                stale = update.stale
            else:
                sk = p + _STALE + _be64(s)
                raw = self.kv.get(sk)
                stale = [] if raw is None else self._stale_list(sk, raw)
                delete(sk)
                n += 1
            _drain(map(delete, stale))
            delete(p + _ROOT + _be64(s - 1))
            n += len(stale) + 1
        if new_oldest < v and update.stale:
            # A plain msgpack list of bytes: our own sealed record, so pack()'s checks
            # for untrusted shapes are not needed (and cost ~10 ms per block here).
            put(p + _STALE + vsuffix, seal(msgpack.packb(update.stale, use_bin_type=True)))
            n += 1
        put(p + _META, seal(pack([v, new_oldest])))
        batch.added(n + 2)

    @staticmethod
    def _stale_list(key: bytes, raw: bytes) -> list[bytes]:
        payload = unseal(key, raw)
        try:
            stale = msgpack.unpackb(payload, raw=False)
        except (ValueError, msgpack.UnpackException) as exc:
            raise Corruption(key, f"undecodable stale list: {exc}") from None
        if type(stale) is not list or not set(map(type, stale)) <= {bytes}:  # C-speed check
            raise Corruption(key, "malformed stale list")
        return stale

    def committed(self, update: StateUpdate) -> None:
        """Move the in-memory view to ``update`` once its batch has been written."""
        if update.base_version != self._version:
            raise OutOfOrder("committed() out of order")
        if not update.written:
            raise OutOfOrder("committed() of an update that was never written")
        if self._version < 0:
            self._oldest = update.version
        self._version = update.version
        self._oldest = max(self._oldest, update.version - self.history + 1)
        self._root = update.root
        nodes = update.nodes
        cache = self._cache
        # dict.update keeps an existing key's place in the eviction order; the few hot
        # upper nodes (rewritten every version) are moved to the back when an eviction
        # may follow (until then the order does not matter, and popping costs ~3 ms).
        if len(cache) + len(nodes) > self.cache_nodes:
            for path in update.hot:
                cache.pop(path, None)
        cache.update(nodes)
        self._trim()

    def commit(
        self, changes: Mapping[bytes, bytes | None], version: int | None = None, *,
        sync: bool = False,
    ) -> bytes:
        """prepare + write in its own atomic batch + committed; returns the new root."""
        update = self.prepare(changes, version)
        with self.kv.batch(sync=sync) as batch:
            self.write(update, batch)
        self.committed(update)
        return update.root_hash
