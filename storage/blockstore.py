"""The block store and its indexes.

Records, all CRC-sealed (see :mod:`storage.records`), under the store's namespace:

==========================================  ==========================================
``M``                                       latest height and its block hash
``B`` + height                              the block (header, txs, parent's cert)
``D`` + height                              its header alone (light nodes fetch these)
``C`` + height                              the certificate that committed it
``R`` + height                              its receipts, in transaction order
``N`` + block hash                          its height
``T`` + tx hash                             [height, index, tx, receipt]
``A`` + address + ~height + ~index          tx hash: the account history index
``V`` + height                              the validator set in force from that height
                                            on: [[public key, power, name, p2p], ...]
``P`` + height + name                       a chain parameter's value from that height on
==========================================  ==========================================

Heights and indexes are big-endian so keys sort by them; the history index stores them
bit-inverted so a forward scan yields the newest transaction first. Every write goes
into the caller's atomic batch — with the state of the same block — so a crash leaves
either all of a block or none of it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from chain.block import Block, CommitCertificate, Header, Receipt
from chain.codec import pack
from chain.errors import DecodeError
from chain.keys import ADDRESS_SIZE
from chain.merkle import InclusionProof, inclusion_proof
from chain.tx import Call, Transaction, Transfer

from .errors import Corruption, InvalidArgument, OutOfOrder
from .kv import KVStore, WriteBatch
from .records import R, load_plain, load_record, seal, unseal
from .records import be64 as _be64

_META = b"M"
_BLOCK = b"B"
_HEADER = b"D"
_COMMIT = b"C"
_RECEIPTS = b"R"
_BY_HASH = b"N"
_TX = b"T"
_ACCOUNT = b"A"
_VALIDATORS = b"V"
_PARAMS = b"P"
_MAX64 = (1 << 64) - 1
_MAX32 = (1 << 32) - 1


@dataclass(frozen=True)
class TxRecord:
    """Where a transaction was committed, the transaction and its receipt."""

    height: int
    index: int
    tx: Transaction
    receipt: Receipt


@dataclass(frozen=True)
class HistoryEntry:
    """One transaction that touched an account. (height, index) is also the cursor
    to pass as ``before`` for the next page."""

    height: int
    index: int
    tx_hash: bytes


def touched_addresses(tx: Transaction) -> set[bytes]:
    """The accounts a transaction touches as far as its fields tell: the sender and
    the transfer's recipient or the called contract. The executor adds more (a
    deployed contract's address, accounts its calls pay) when it knows them."""
    out = {tx.sender_address}
    action = tx.action
    if type(action) is Transfer:
        out.add(action.to)
    elif type(action) is Call:
        out.add(action.contract)
    return out


class BlockStore:
    """Blocks, headers and commit certificates by height and hash; tx and history
    indexes. Reads verify what they return; writes go into a caller's batch."""

    def __init__(self, kv: KVStore, *, prefix: bytes = b"b") -> None:
        self.kv = kv
        self.prefix = prefix

    # ----------------------------------------------------------------- reads

    def _get(self, key: bytes) -> tuple[bytes, bytes] | None:
        full = self.prefix + key
        raw = self.kv.get(full)
        return None if raw is None else (full, raw)

    @property
    def height(self) -> int:
        """The latest stored height (0 when the store is empty)."""
        got = self._get(_META)
        if got is None:
            return 0
        meta = load_plain(*got)
        if (type(meta) is not list or len(meta) != 2 or type(meta[0]) is not int
                or type(meta[1]) is not bytes):
            raise Corruption(got[0], "malformed block store metadata")
        return meta[0]

    def _at_height(self, kind: bytes, cls: type[R], height: int) -> R | None:
        """The record of type ``cls`` stored under ``kind`` + height, checked to be for
        that height."""
        got = self._get(kind + _be64(height))
        if got is None:
            return None
        record = load_record(cls, *got)
        if record.height != height:  # type: ignore[attr-defined]
            raise Corruption(got[0], f"{cls.__name__} record is for another height")
        return record

    def _by_hash(
        self, kind: bytes, cls: type[R], block_hash: bytes, hash_of: Callable[[R], bytes]
    ) -> R | None:
        """The record of type ``cls`` for the block with this hash, checked to be it."""
        height = self.height_of(block_hash)
        if height is None:
            return None
        record = self._at_height(kind, cls, height)
        if record is None or hash_of(record) != block_hash:
            raise Corruption(self.prefix + kind + _be64(height),
                             f"{cls.__name__} does not match the hash index")
        return record

    def block(self, height: int) -> Block | None:
        """The block at ``height``, or None."""
        return self._at_height(_BLOCK, Block, height)

    def header(self, height: int) -> Header | None:
        """The header at ``height``, or None."""
        return self._at_height(_HEADER, Header, height)

    def commit(self, height: int) -> CommitCertificate | None:
        """The certificate that committed the block at ``height``, or None."""
        return self._at_height(_COMMIT, CommitCertificate, height)

    def block_by_hash(self, block_hash: bytes) -> Block | None:
        return self._by_hash(_BLOCK, Block, block_hash, lambda b: b.hash)

    def header_by_hash(self, block_hash: bytes) -> Header | None:
        return self._by_hash(_HEADER, Header, block_hash, lambda h: h.hash)

    def commit_by_hash(self, block_hash: bytes) -> CommitCertificate | None:
        """The certificate that committed the block with this hash, or None."""
        return self._by_hash(_COMMIT, CommitCertificate, block_hash, lambda c: c.block_hash)

    def receipts(self, height: int) -> list[Receipt] | None:
        """The receipts of the block at ``height``, in transaction order, or None."""
        got = self._get(_RECEIPTS + _be64(height))
        if got is None:
            return None
        items = load_plain(*got)
        if type(items) is not list or not all(type(r) is bytes for r in items):
            raise Corruption(got[0], "malformed receipts record")
        try:
            return [Receipt.decode(r) for r in items]
        except DecodeError as exc:
            raise Corruption(got[0], f"undecodable receipt: {exc}") from None

    def receipt_proof(self, height: int, index: int) -> tuple[Receipt, InclusionProof] | None:
        """Receipt ``index`` of the block at ``height`` and its inclusion proof under
        that header's ``receipts_root`` (None if there is no such receipt)."""
        receipts = self.receipts(height)
        if receipts is None or not 0 <= index < len(receipts):
            return None
        proof = inclusion_proof([r.encode() for r in receipts], index)
        return receipts[index], proof

    def height_of(self, block_hash: bytes) -> int | None:
        """The height of the block with this hash, or None."""
        got = self._get(_BY_HASH + block_hash)
        if got is None:
            return None
        payload = unseal(*got)
        if len(payload) != 8:
            raise Corruption(got[0], "malformed height record")
        return int.from_bytes(payload, "big")

    def tx(self, tx_hash: bytes) -> TxRecord | None:
        """The committed transaction with this hash, where it is, and its receipt."""
        got = self._get(_TX + tx_hash)
        if got is None:
            return None
        key = got[0]
        rec = load_plain(*got)
        if (type(rec) is not list or len(rec) != 4 or type(rec[0]) is not int
                or type(rec[1]) is not int or type(rec[2]) is not bytes
                or type(rec[3]) is not bytes):
            raise Corruption(key, "malformed tx index record")
        try:
            tx = Transaction.decode(rec[2])
            receipt = Receipt.decode(rec[3])
        except DecodeError as exc:
            raise Corruption(key, f"undecodable tx index record: {exc}") from None
        if tx.hash != tx_hash:
            raise Corruption(key, "transaction does not match its hash")
        return TxRecord(rec[0], rec[1], tx, receipt)

    def history(
        self, address: bytes, *, limit: int = 50, before: tuple[int, int] | None = None
    ) -> list[HistoryEntry]:
        """Transactions that touched ``address``, newest first, at most ``limit``.

        For the next page pass the last entry's ``(height, index)`` as ``before``.
        """
        if limit <= 0:
            return []
        if type(address) is not bytes or len(address) != ADDRESS_SIZE:
            raise InvalidArgument(f"an address is {ADDRESS_SIZE} bytes")
        base = self.prefix + _ACCOUNT + address
        start = None
        if before is not None:
            h, i = before
            if not (0 <= h <= _MAX64 and 0 <= i <= _MAX32):
                raise InvalidArgument(f"history cursor {before!r} is out of range")
            # The entry after (h, i) in newest-first order: (h, i - 1) or (h - 1, last).
            if i > 0:
                start = base + _be64(_MAX64 - h) + (_MAX32 - (i - 1)).to_bytes(4, "big")
            elif h > 0:
                start = base + _be64(_MAX64 - (h - 1))
            else:
                return []
        out = []
        n = len(base)
        for key, raw in self.kv.iterate(base, start=start):
            suffix = key[n:]
            if len(suffix) != 12:
                raise Corruption(key, "malformed history key")
            tx_hash = unseal(key, raw)
            height = _MAX64 - int.from_bytes(suffix[:8], "big")
            index = _MAX32 - int.from_bytes(suffix[8:], "big")
            out.append(HistoryEntry(height, index, tx_hash))
            if len(out) >= limit:
                break
        return out

    def validator_sets(self) -> list[tuple[int, list[tuple[bytes, int, str, str]]]]:
        """Every stored validator set, oldest first: (the height it is in force from,
        [(public key, power, name, p2p address), ...] in order)."""
        out = []
        base = self.prefix + _VALIDATORS
        for key, raw in self.kv.iterate(base):
            if len(key) != len(base) + 8:
                raise Corruption(key, "malformed validator set key")
            rows = load_plain(key, raw)
            if type(rows) is not list or not rows or any(
                    type(r) is not list or len(r) != 4 or type(r[0]) is not bytes
                    or type(r[1]) is not int or type(r[2]) is not str or type(r[3]) is not str
                    for r in rows):
                raise Corruption(key, "malformed validator set record")
            out.append((int.from_bytes(key[len(base):], "big"),
                        [(r[0], r[1], r[2], r[3]) for r in rows]))
        return out

    def param_changes(self) -> list[tuple[int, str, int]]:
        """Every scheduled chain-parameter change: (from height, name, value), by height."""
        out = []
        base = self.prefix + _PARAMS
        for key, raw in self.kv.iterate(base):
            value = load_plain(key, raw)
            if len(key) <= len(base) + 8 or type(value) is not int:
                raise Corruption(key, "malformed parameter change record")
            try:
                name = key[len(base) + 8:].decode()
            except UnicodeDecodeError:
                raise Corruption(key, "malformed parameter change key") from None
            out.append((int.from_bytes(key[len(base):len(base) + 8], "big"), name, value))
        return out

    # ---------------------------------------------------------------- writes

    def put_validator_set(self, batch: WriteBatch, height: int,
                          rows: Sequence[tuple[bytes, int, str, str]]) -> None:
        """The validator set in force from ``height`` on, into ``batch``."""
        batch.check_open()
        batch.put(self.prefix + _VALIDATORS + _be64(height),
                  seal(pack([list(r) for r in rows])))

    def put_param_change(self, batch: WriteBatch, height: int, name: str, value: int) -> None:
        """Chain parameter ``name`` is ``value`` from ``height`` on, into ``batch``."""
        batch.check_open()
        batch.put(self.prefix + _PARAMS + _be64(height) + name.encode(), seal(pack(value)))

    def put_block(
        self,
        batch: WriteBatch,
        block: Block,
        commit: CommitCertificate,
        receipts: Sequence[Receipt],
        touched: Sequence[Iterable[bytes]] | None = None,
    ) -> None:
        """Add a committed block, its certificate, receipts and indexes to ``batch``.

        The block must extend the stored chain (height = latest + 1, prev_hash = the
        latest block's hash) and ``commit`` must certify it. ``touched[i]`` lists the
        accounts transaction i touched (default: :func:`touched_addresses`).
        """
        batch.check_open()
        height = block.height
        latest = self.height
        if height != latest + 1:
            raise OutOfOrder(f"block {height} does not follow stored height {latest}")
        if latest:
            prev = self.header(latest)
            if prev is None or prev.hash != block.header.prev_hash:
                raise OutOfOrder(f"block {height} does not extend the stored block {latest}")
        if commit.height != height or commit.block_hash != block.hash:
            raise OutOfOrder("the certificate is for another block")
        if len(receipts) != len(block.txs):
            raise InvalidArgument("one receipt per transaction is required")
        if touched is not None and len(touched) != len(block.txs):
            raise InvalidArgument("one touched-account list per transaction is required")
        account_lists = []
        for i, tx in enumerate(block.txs):
            accounts = touched_addresses(tx) if touched is None else set(touched[i])
            if any(type(a) is not bytes or len(a) != ADDRESS_SIZE for a in accounts):
                raise InvalidArgument(f"touched accounts of transaction {i} must be addresses")
            account_lists.append(accounts)
        # Every check is done: from here on the batch only grows.
        p = self.prefix
        hb = _be64(height)
        put, _ = batch.writers()
        n = 6
        put(p + _BLOCK + hb, seal(block.encode()))
        put(p + _HEADER + hb, seal(block.header.encode()))
        put(p + _COMMIT + hb, seal(commit.encode()))
        put(p + _RECEIPTS + hb, seal(pack([r.encode() for r in receipts])))
        put(p + _BY_HASH + block.hash, seal(hb))
        inv_height = _be64(_MAX64 - height)
        for i, (tx, receipt, accounts) in enumerate(
            zip(block.txs, receipts, account_lists, strict=True)
        ):
            tx_hash = tx.hash
            put(p + _TX + tx_hash, seal(pack([height, i, tx.encode(), receipt.encode()])))
            suffix = inv_height + (_MAX32 - i).to_bytes(4, "big")
            sealed_hash = seal(tx_hash)
            for address in accounts:
                put(p + _ACCOUNT + address + suffix, sealed_hash)
            n += 1 + len(accounts)
        put(p + _META, seal(pack([height, block.hash])))
        batch.added(n)
