"""The light node's store: verified light blocks only, small on disk.

Keys (one :class:`~storage.kv.KVStore`, LevelDB in a light home's ``data/``)::

    m                  meta: [chain id, genesis hash, trusted root height, root hash]
    h <height:8>       [header bytes, certificate bytes, validator-set hash]
    s <set hash:32>    the validator set, as a list of encoded validators (sets change
                       rarely: stored once, shared by every header of theirs)

A header and its certificate of 4 validators take ~700 bytes; sets are shared. Only
the ``keep`` newest headers are kept (the first trusted one always: it anchors
verification of older heights), so the store stays bounded whatever the chain's
length. Everything written is verified first; on reopening, the newest stored header
is where verification resumes.
"""

from __future__ import annotations

import msgpack

from chain.block import CommitCertificate, Header
from chain.validators import Validator, ValidatorSet
from storage.kv import KVStore

from .errors import LightError
from .verifier import LightBlock

_META = b"m"
_HEADER = b"h"
_SET = b"s"
#: Newest headers kept by default.
KEEP_HEADERS = 10_000


class StoreMismatch(LightError):
    """The store belongs to another chain."""


def _height_key(height: int) -> bytes:
    return _HEADER + height.to_bytes(8, "big")


class LightStore:
    def __init__(self, kv: KVStore, *, keep: int = KEEP_HEADERS) -> None:
        self.kv = kv
        self.keep = max(2, keep)
        self._sets: dict[bytes, ValidatorSet] = {}
        self._count = sum(1 for _ in kv.iterate(_HEADER))
        self._pruned = 0

    # ------------------------------------------------------------ meta

    def meta(self) -> tuple[str, bytes, int, bytes] | None:
        raw = self.kv.get(_META)
        if raw is None:
            return None
        chain_id, genesis_hash, root_height, root_hash = msgpack.unpackb(raw)
        return chain_id, genesis_hash, root_height, root_hash

    def check_chain(self, chain_id: str, genesis_hash: bytes) -> None:
        found = self.meta()
        if found is not None and (found[0], found[1]) != (chain_id, genesis_hash):
            raise StoreMismatch(
                f"this light home holds headers of chain {found[0]!r} (genesis "
                f"{found[1].hex()[:16]}…), not of {chain_id!r} ({genesis_hash.hex()[:16]}…): "
                "use another --home, or delete its data/ to start again")

    def set_meta(self, chain_id: str, genesis_hash: bytes, root_height: int,
                 root_hash: bytes) -> None:
        self.kv.put(_META, msgpack.packb([chain_id, genesis_hash, root_height, root_hash]))

    # ------------------------------------------------------------ blocks

    def __len__(self) -> int:
        return self._count

    def save(self, blocks: list[LightBlock]) -> None:
        """Store verified blocks in one synced write, then drop the oldest past ``keep``
        (never the root)."""
        if not blocks:
            return
        added = 0
        with self.kv.batch(sync=True) as b:
            for block in blocks:
                key = _height_key(block.height)
                if self.kv.get(key) is None:
                    added += 1
                set_hash = block.validators.hash
                if set_hash not in self._sets and self.kv.get(_SET + set_hash) is None:
                    b.put(_SET + set_hash, msgpack.packb([v.encode() for v in block.validators]))
                self._sets[set_hash] = block.validators
                b.put(key, msgpack.packb([block.header.encode(), block.commit.encode(),
                                          set_hash]))
        self._count += added
        self._prune()

    def _prune(self) -> None:
        excess = self._count - self.keep
        if excess <= 0:
            return
        meta = self.meta()
        root = meta[2] if meta is not None else -1
        doomed: list[bytes] = []
        for key, _ in self.kv.iterate(_HEADER):
            if len(doomed) >= excess:
                break
            if int.from_bytes(key[1:], "big") != root:
                doomed.append(key)
        with self.kv.batch() as b:
            for key in doomed:
                b.delete(key)
        self._count -= len(doomed)
        # LevelDB keeps deleted headers' space until a compaction reaches them: give it
        # back every tenth of the store, so the disk stays near the headers kept.
        self._pruned += len(doomed)
        if self._pruned >= max(100, self.keep // 10):
            self._pruned = 0
            self.kv.compact()

    def _decode(self, raw: bytes) -> LightBlock:
        header_raw, commit_raw, set_hash = msgpack.unpackb(raw)
        vset = self._sets.get(set_hash)
        if vset is None:
            stored = self.kv.get(_SET + set_hash)
            if stored is None:
                raise LightError(f"the light store lost validator set {set_hash.hex()}")
            vset = ValidatorSet(Validator.decode(v) for v in msgpack.unpackb(stored))
            self._sets[set_hash] = vset
        return LightBlock(Header.decode(header_raw), CommitCertificate.decode(commit_raw), vset)

    def get(self, height: int) -> LightBlock | None:
        raw = self.kv.get(_height_key(height))
        return None if raw is None else self._decode(raw)

    def latest(self) -> LightBlock | None:
        for _, raw in self.kv.iterate(_HEADER, reverse=True):
            return self._decode(raw)
        return None

    def at_or_below(self, height: int) -> LightBlock | None:
        """The highest stored block at or below ``height``."""
        for _, raw in self.kv.iterate(_HEADER, start=_height_key(height), reverse=True):
            return self._decode(raw)
        return None

    def at_or_above(self, height: int) -> LightBlock | None:
        for _, raw in self.kv.iterate(_HEADER, start=_height_key(height)):
            return self._decode(raw)
        return None

    def heights(self) -> list[int]:
        return [int.from_bytes(k[1:], "big") for k, _ in self.kv.iterate(_HEADER)]
