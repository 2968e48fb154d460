"""The mempool: transactions waiting for a block, each checked once and kept in nonce
order per sender.

Theory of operation
-------------------
Per sender, pooled transactions are kept by nonce. The *ready* ones are the contiguous
run starting at the sender's committed nonce: a proposer can put them in a block in
nonce order and every one of them will apply. The others are *queued* behind a gap —
gossip over several paths delivers nonce n+1 before n — and become ready when the gap
fills. What makes "every ready transaction applies" true:

* The pool keeps, for every sender, the sum of ``max_fee + value`` of all their pooled
  transactions within their committed balance. An account's balance only falls through
  its own transactions (fees and values are paid by the sender; contracts move only
  their own coin), so nothing else in a block can make a ready transaction
  unaffordable.
* The application's checks have passed for each of them (``check_stateless``: chain,
  the signature, the gas fields; ``check_recipient``), and the committed state only
  changes in a block, after which :meth:`Mempool.update` re-checks the senders it
  touched.

Admission (:meth:`Mempool.add`) runs the cheap lookups first — duplicate, size, and a
full pool with nothing to give up for the newcomer — so floods of pooled duplicates and
of transactions past a full pool cost no signature verification; then the stateless
checks (whose signature check the executor caches by hash), so a forged transaction or
one for another chain is told ``invalid`` rather than a code that invites a retry (a
replay of a committed transaction is verified before it is told ``nonce_too_low``,
unless the executor still remembers its hash); then
nonce, replacement, sender limit and balance; and only then makes room, so nothing is
evicted for a transaction that is then refused.

When a sender's transactions cannot all stay, the lower nonces win: the higher ones
depend on them. A gap filler or a costlier replacement that the balance cannot carry
together with the higher nonces drops those higher nonces, and a gap filler from a
sender at their limit displaces the sender's highest queued nonce. So a sender's
transactions end up as if gossip had delivered them in nonce order.

When the pool is full, the newcomer may evict the cheapest *tail* — a sender's highest
nonce, whose removal opens no gap — of another sender, if that tail is worth strictly
less than the newcomer. A tail is worth the lowest gas price among its sender's
transactions (it runs only after all of them); the newcomer likewise, counting its
sender's lower nonces. So a dear tail cannot shield a queue of cheap transactions.
Transactions queued behind a gap may never run (their sender need never fill it) and
so never pay: at most ``max_queued`` of them (a quarter of the pool by default) are
admitted, so parking them cannot take the room of transactions that can run.
Tails are found with a heap invalidated lazily (an item counts only while its entry is
still its sender's tail at the same worth), so admission never scans the pool.

Every refusal is a :class:`TxRejected` with a stable :class:`Code` and a reason for
people; every transaction the pool lets go of on its own is reported as a
:class:`Dropped`.
"""

from __future__ import annotations

import heapq
import itertools
import time
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from chain.tx import Transaction


class Application(Protocol):
    """What the mempool needs from the state machine (the executor satisfies it)."""

    def check_stateless(self, tx: Transaction) -> None:
        """Refuse ``tx`` by raising, the exception's text being the reason, for what no
        state changes: chain, size, signature (verified once per hash), gas fields."""

    def check_recipient(self, tx: Transaction) -> None:
        """Refuse ``tx`` likewise if what it acts on cannot take it (a transfer of value
        to a contract). Nonce and balance are the pool's to check."""

    def account(self, address: bytes) -> tuple[int, int]:
        """(nonce, balance) of ``address`` in the committed state."""


class Code(StrEnum):
    """Stable machine-readable tokens: why a transaction was refused or dropped.

    JSON-RPC maps a refusal to a -32000 error carrying the code and the reason. Only
    ``INVALID`` proves the submitter sent a bad transaction (a peer to penalise); the
    others are races and policy that an honest peer runs into.
    """

    INVALID = "invalid"  # the application refused it: signature, chain id, gas fields, size
    TOO_LARGE = "too_large"  # bigger than the whole pool may hold
    ALREADY_KNOWN = "already_known"
    NONCE_TOO_LOW = "nonce_too_low"  # the nonce is used in the committed state: a replay
    NONCE_GAP = "nonce_gap"  # too far ahead of the sender's next nonce
    UNDERPRICED_REPLACEMENT = "underpriced_replacement"
    INSUFFICIENT_BALANCE = "insufficient_balance"
    SENDER_LIMIT = "sender_limit"
    POOL_FULL = "pool_full"
    # Only ever in Dropped: the pool let go of a transaction it had admitted.
    REPLACED = "replaced"
    EVICTED = "evicted"


class MempoolError(Exception):
    """Base of every error raised by the mempool."""


class TxRejected(MempoolError):
    """A transaction was refused; ``str(exc)`` is the reason, ``code`` says which rule.

    Always the submitter's side (a client or a peer), never our bug: the pool is left
    exactly as it was.
    """

    def __init__(self, reason: str, code: Code) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code


@dataclass(frozen=True, slots=True)
class Dropped:
    """A transaction the pool let go of without it being committed, and why."""

    tx: Transaction
    code: Code
    reason: str


class _Entry:
    """A pooled transaction with the fields the pool orders by, read from it once."""

    __slots__ = ("tx", "hash", "sender", "nonce", "gas_price", "gas_limit", "cost", "size",
                 "seq", "at")

    def __init__(self, tx: Transaction, tx_hash: bytes, sender: _Sender, size: int,
                 seq: int, at: float = 0.0) -> None:
        self.at = at  # when it was admitted (the pool's clock)
        self.tx = tx
        self.hash = tx_hash
        self.sender = sender
        self.nonce = tx.nonce
        self.gas_price = tx.gas_price
        self.gas_limit = tx.gas_limit
        self.cost = tx.max_fee + tx.value  # the most it can take from the balance
        self.size = size
        self.seq = seq  # arrival order: breaks ties, so ordering is deterministic


class _Sender:
    """One sender's pooled transactions and the committed account they build on."""

    __slots__ = ("address", "nonce", "balance", "txs", "pending", "last", "cost",
                 "min_price")

    def __init__(self, address: bytes, nonce: int, balance: int) -> None:
        self.address = address
        self.nonce = nonce  # committed account nonce, as of the last update()
        self.balance = balance  # committed balance, likewise
        self.txs: dict[int, _Entry] = {}
        self.pending = nonce  # first nonce past the ready run
        self.last = -1  # highest pooled nonce (-1: none)
        self.cost = 0  # sum of the pooled transactions' costs
        self.min_price = 0  # lowest gas price among them (0: none pooled)

    def queued(self) -> int:
        """How many of its pooled transactions wait behind a gap."""
        return len(self.txs) - (self.pending - self.nonce) if self.txs else 0

    def keep_value(self) -> int:
        """What this sender's tail (its highest nonce, the one eviction takes) is worth
        keeping: the lowest gas price among the sender's transactions, since the tail
        runs only after all of them — a dear tail must not shield a queue of cheap
        ones."""
        return self.min_price

    def newcomer_value(self, nonce: int, price: int) -> int:
        """:meth:`keep_value` for a transaction not yet pooled, compared with it."""
        return min([price, *(e.gas_price for n, e in self.txs.items() if n < nonce)])

    def cost_below(self, nonce: int) -> int:
        """Cost of the pooled transactions with a lower nonce than ``nonce``."""
        if nonce > self.last:
            return self.cost
        return sum(e.cost for n, e in self.txs.items() if n < nonce)


class Mempool:
    """Pending transactions of one node. Not thread-safe: one event loop owns it.

    The pool reads each sender's account from ``app`` once and keeps it until
    :meth:`update`, which must be called after every committed block.
    """

    def __init__(
        self,
        app: Application,
        *,
        invalid_tx: type[Exception],
        max_txs: int = 5_000,
        max_bytes: int = 64 * 1024 * 1024,
        max_per_sender: int = 64,
        max_nonce_ahead: int = 16,
        replace_bump_percent: int = 10,
        max_queued: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """A pool over ``app``'s committed state.

        ``invalid_tx`` is the exception ``app``'s checks refuse with (the executor's
        ``InvalidTx``); anything else it raises is a bug and propagates rather than
        becoming a refusal.

        Limits: ``max_txs`` and ``max_bytes`` (encoded) for the whole pool;
        ``max_per_sender`` transactions per sender, so one account cannot fill it;
        ``max_nonce_ahead``: how far past the sender's next executable nonce a queued
        transaction may be, so gaps cannot park transactions that will likely never
        run; a replacement (same sender and nonce) must bid ``replace_bump_percent``
        more gas price than the one it replaces, so replacing is never free spam;
        ``max_queued`` (default a quarter of ``max_txs``): how many transactions may
        wait behind nonce gaps, pool-wide.
        """
        self.app = app
        self.invalid_tx = invalid_tx
        self.max_txs = max_txs
        self.max_bytes = max_bytes
        self.max_per_sender = max_per_sender
        self.max_nonce_ahead = max_nonce_ahead
        self.replace_bump_percent = replace_bump_percent
        self.max_queued = max(1, max_txs // 4) if max_queued is None else max_queued
        # Transactions behind a gap, pool-wide: kept exact by every change to a
        # sender's transactions, nonce or ready run (each bracketed by _Sender.queued).
        self._queued = 0
        self.clock = clock
        self._by_hash: dict[bytes, _Entry] = {}
        self._senders: dict[bytes, _Sender] = {}
        self._bytes = 0
        self._seq = 0
        # (keep value, -seq, push number, entry) of sender tails (_Sender.keep_value):
        # the cheapest first and, among equals, the newest. An item is stale once its
        # entry is no longer pooled, no longer its sender's highest nonce, or its
        # sender's value changed; the same entry may be pushed many times, so the push
        # number keeps tuples from ever comparing entries.
        self._tails: list[tuple[int, int, int, _Entry]] = []
        self._pushes = itertools.count()

    # ------------------------------------------------------------------ reads

    def __len__(self) -> int:
        return len(self._by_hash)

    def __contains__(self, tx_hash: bytes) -> bool:
        return tx_hash in self._by_hash

    def __iter__(self) -> Iterator[Transaction]:
        """Every pooled transaction, in no particular order (e.g. to offer a new peer)."""
        return (e.tx for e in list(self._by_hash.values()))

    @property
    def size_bytes(self) -> int:
        """Encoded size of all pooled transactions."""
        return self._bytes

    def get(self, tx_hash: bytes) -> Transaction | None:
        entry = self._by_hash.get(tx_hash)
        return entry.tx if entry is not None else None

    def pending_nonce(self, address: bytes) -> int:
        """The nonce a wallet should use next: the account's committed nonce plus its
        ready transactions here."""
        sender = self._senders.get(address)
        return sender.pending if sender is not None else self.app.account(address)[0]

    def status(self) -> dict[str, int]:
        """Counts for the ``mempool_status`` RPC."""
        ready = sum(s.pending - s.nonce for s in self._senders.values())
        return {"count": len(self._by_hash), "bytes": self._bytes, "ready": ready,
                "queued": len(self._by_hash) - ready, "senders": len(self._senders)}

    # ------------------------------------------------------------------ admission

    def add(self, tx: Transaction) -> list[Dropped]:
        """Admit ``tx`` or raise :class:`TxRejected`; returns what it displaced
        (a replaced transaction, unaffordable higher nonces, evicted ones)."""
        tx_hash = tx.hash
        if tx_hash in self._by_hash:
            raise TxRejected(f"transaction {tx_hash.hex()} is already in the mempool",
                             Code.ALREADY_KNOWN)
        size = len(tx.encode())
        if size > self.max_bytes:
            raise TxRejected(f"transaction is {size} bytes, the mempool holds at most "
                             f"{self.max_bytes}", Code.TOO_LARGE)
        address = tx.sender_address
        sender = self._senders.get(address)
        if sender is None:
            sender = _Sender(address, *self.app.account(address))
        nonce = tx.nonce
        price = tx.gas_price
        txs = sender.txs
        old = txs.get(nonce)
        if old is None and nonce >= sender.nonce and nonce > sender.last and (
                len(self._by_hash) >= self.max_txs or self._bytes + size > self.max_bytes):
            # Full, and it would need room: refuse before the signature check when
            # nothing pooled is worth less (as _make_room would), so a flood past a full
            # pool costs a lookup per transaction, not an ed25519 verification. (A
            # forged one is told pool_full for now, and invalid once there is room.)
            cheapest = self._cheapest_tail()
            if cheapest is None or cheapest[0] >= sender.newcomer_value(nonce, price):
                raise self._full(price)
        # What no state changes comes before what state decides: a forged transaction
        # or one for another chain is told "invalid", never a code that invites a retry.
        try:
            self.app.check_stateless(tx)
        except self.invalid_tx as exc:
            raise TxRejected(str(exc), Code.INVALID) from None
        if nonce < sender.nonce:
            raise TxRejected(f"nonce {nonce} is already used: the account's next nonce is "
                             f"{sender.nonce}", Code.NONCE_TOO_LOW)
        if old is not None:
            if price * 100 < old.gas_price * (100 + self.replace_bump_percent):
                raise TxRejected(
                    f"replacing nonce {nonce} needs a gas price of at least "
                    f"{-(-old.gas_price * (100 + self.replace_bump_percent) // 100)} "
                    f"({self.replace_bump_percent}% over {old.gas_price}), got {price}",
                    Code.UNDERPRICED_REPLACEMENT)
        else:
            if nonce > sender.pending + self.max_nonce_ahead:
                raise TxRejected(
                    f"nonce {nonce} is too far ahead: the sender's next nonce is "
                    f"{sender.pending} and at most {self.max_nonce_ahead} more may wait "
                    f"behind a gap", Code.NONCE_GAP)
            if nonce > sender.pending and self._queued >= self.max_queued:
                raise TxRejected(
                    f"nonce {nonce} would wait behind a gap (the sender's next nonce is "
                    f"{sender.pending}) and the mempool already holds its limit of "
                    f"{self.max_queued} such transactions: send the missing nonces first",
                    Code.NONCE_GAP)
            if len(txs) >= self.max_per_sender and nonce > sender.last:
                raise TxRejected(f"the sender already has {len(txs)} transactions in the "
                                 f"mempool, the limit", Code.SENDER_LIMIT)
        entry = _Entry(tx, tx_hash, sender, size, self._seq, self.clock())
        below = sender.cost_below(nonce)
        if below + entry.cost > sender.balance:
            raise TxRejected(
                f"balance {sender.balance} cannot pay up to {entry.cost} (max fee "
                f"{tx.max_fee} + value {tx.value}) on top of {below} for the sender's "
                f"pending transactions with lower nonces", Code.INSUFFICIENT_BALANCE)
        try:
            self.app.check_recipient(tx)
        except self.invalid_tx as exc:
            raise TxRejected(str(exc), Code.INVALID) from None

        dropped = self._displaced(entry, old)
        extra_txs = len(self._by_hash) + 1 - len(dropped) - self.max_txs
        extra_bytes = self._bytes + size - sum(d[0].size for d in dropped) - self.max_bytes
        if extra_txs > 0 or extra_bytes > 0:
            dropped += self._make_room(extra_txs, extra_bytes, entry)
        for victim, _, _ in dropped:
            if victim.sender is sender:  # evicted ones are unlinked already
                self._unlink(victim)
        self._seq += 1
        self._link(entry)
        self._compact_tails()
        return [Dropped(e.tx, code, reason) for e, code, reason in dropped]

    def _displaced(self, entry: _Entry, old: _Entry | None) -> list[tuple[_Entry, Code, str]]:
        """What admitting ``entry`` pushes out of its own sender: the transaction it
        replaces, higher nonces the balance can no longer carry, and the highest nonce
        if a gap filler would exceed the sender limit."""
        sender, nonce = entry.sender, entry.nonce
        out: list[tuple[_Entry, Code, str]] = []
        if old is not None:
            out.append((old, Code.REPLACED, f"replaced by {entry.hash.hex()} with gas price "
                                           f"{entry.gas_price}"))
        if nonce >= sender.last:  # the usual case: nothing above it
            return out
        spent = sender.cost_below(nonce) + entry.cost
        above = sorted(n for n in sender.txs if n > nonce)
        for i, n in enumerate(above):
            spent += sender.txs[n].cost
            if spent > sender.balance:
                out += [(sender.txs[m], Code.INSUFFICIENT_BALANCE,
                         f"balance {sender.balance} no longer covers it after nonce {nonce} "
                         f"was admitted") for m in above[i:]]
                return out
        if old is None and len(sender.txs) >= self.max_per_sender:
            out.append((sender.txs[sender.last], Code.SENDER_LIMIT,
                        f"displaced by the lower nonce {nonce}: the sender is at the limit "
                        f"of {self.max_per_sender} transactions"))
        return out

    def _make_room(self, extra_txs: int, extra_bytes: int,
                   entry: _Entry) -> list[tuple[_Entry, Code, str]]:
        """Evict the cheapest tails of other senders until ``extra_txs`` transactions and
        ``extra_bytes`` bytes are freed, each worth strictly less than ``entry``
        (:meth:`_Sender.keep_value`); if that is not possible, put everything back and
        refuse ``entry``."""
        value = entry.sender.newcomer_value(entry.nonce, entry.gas_price)
        victims: list[_Entry] = []
        own: list[tuple[int, int, int, _Entry]] = []  # the newcomer's sender: set aside
        heap = self._tails
        while extra_txs > 0 or extra_bytes > 0:
            item = self._cheapest_tail()
            if item is not None and item[3].sender is entry.sender:
                own.append(heapq.heappop(heap))
                continue
            if item is None or item[0] >= value:
                for victim in reversed(victims):
                    self._link(victim)
                for kept in own:
                    heapq.heappush(heap, kept)
                self._compact_tails()  # the relinked victims pushed their tails again
                raise self._full(entry.gas_price)
            victim = heapq.heappop(heap)[3]
            self._unlink(victim)
            victims.append(victim)
            extra_txs -= 1
            extra_bytes -= victim.size
        for kept in own:
            heapq.heappush(heap, kept)
        reason = (f"evicted for {entry.hash.hex()} with gas price {entry.gas_price}: the "
                  f"mempool is full")
        return [(v, Code.EVICTED, reason) for v in victims]

    def _full(self, price: int) -> TxRejected:
        return TxRejected(f"the mempool is full ({len(self._by_hash)} transactions, "
                          f"{self._bytes} bytes) and holds nothing evictable cheaper than "
                          f"gas price {price} (counting the sender's lower nonces)",
                          Code.POOL_FULL)

    def _cheapest_tail(self) -> tuple[int, int, int, _Entry] | None:
        """The top of the tail heap after discarding stale items."""
        heap = self._tails
        while heap:
            value, _, _, entry = heap[0]
            sender = entry.sender
            if (self._by_hash.get(entry.hash) is entry and sender.last == entry.nonce
                    and value == sender.keep_value()):
                return heap[0]
            heapq.heappop(heap)
        return None

    # ------------------------------------------------------------------ blocks

    def reap(self, *, max_bytes: int, max_gas: int, max_txs: int,
             settled: float = 0.0) -> list[Transaction]:
        """Ready transactions for a proposal: highest gas price first, each sender's in
        nonce order, ties by arrival. Takes what fits in the limits (encoded bytes, sum
        of gas limits, count); once one of a sender's transactions does not fit, none of
        their later nonces is taken. The pool is not changed.

        ``settled``: leave out transactions admitted less than this many seconds ago
        (and their sender's later nonces) — the other validators have likely not had
        them by gossip yet and would have to fetch them before voting — unless nothing
        older is ready: then the fresh ones are taken, so a lone transaction is never
        held back for a block of its own."""
        if settled > 0:
            out = self._reap(max_bytes, max_gas, max_txs, self.clock() - settled)
            if out:
                return out
        return self._reap(max_bytes, max_gas, max_txs, float("inf"))

    def _reap(self, max_bytes: int, max_gas: int, max_txs: int,
              admitted_by: float) -> list[Transaction]:
        heap = [(-e.gas_price, e.seq, e) for s in self._senders.values()
                if s.pending > s.nonce for e in (s.txs[s.nonce],)]
        heapq.heapify(heap)
        out: list[Transaction] = []
        while heap and len(out) < max_txs:
            entry = heapq.heappop(heap)[2]
            if entry.size > max_bytes or entry.gas_limit > max_gas or entry.at > admitted_by:
                continue  # and so are their later nonces, never pushed
            out.append(entry.tx)
            max_bytes -= entry.size
            max_gas -= entry.gas_limit
            sender, following = entry.sender, entry.nonce + 1
            if following < sender.pending:
                nxt = sender.txs[following]
                heapq.heappush(heap, (-nxt.gas_price, nxt.seq, nxt))
        return out

    def update(self, committed: Iterable[Transaction],
               changed: Collection[bytes] | None = None) -> list[Dropped]:
        """After a block commits: forget its transactions, then re-check senders
        against the committed state — nonces now used go, and from the first
        transaction the balance no longer covers, the rest of that sender's go too.
        ``changed`` names the accounts the block changed (the executor knows them from
        its state changes): only those senders can be affected, so only they are read
        again (with 2,000 senders pooled, reading all of them was 2,000 state reads per
        block). None re-checks every sender. Returns those dropped (not the committed
        ones)."""
        by_hash = self._by_hash
        for tx in committed:
            entry = by_hash.get(tx.hash)
            if entry is not None:
                self._unlink(entry)
        dropped: list[Dropped] = []
        senders = self._senders
        recheck = list(senders.values()) if changed is None else \
            [s for a, s in senders.items() if a in changed]
        for sender in recheck:
            nonce, balance = self.app.account(sender.address)
            if nonce == sender.nonce and balance == sender.balance:
                continue  # untouched by the block: still consistent
            queued = sender.queued()
            sender.nonce, sender.balance = nonce, balance
            self._queued += sender.queued() - queued
            spent = 0
            for n in sorted(sender.txs):
                entry = sender.txs[n]
                if n < nonce:
                    reason = f"nonce {n} is used: the account is at {nonce}"
                    code = Code.NONCE_TOO_LOW
                else:
                    spent += entry.cost
                    if spent <= balance:
                        continue
                    reason = (f"balance {balance} no longer covers it: {spent} for this and "
                              f"the lower nonces")
                    code = Code.INSUFFICIENT_BALANCE
                self._unlink(entry)
                dropped.append(Dropped(entry.tx, code, reason))
            pending = nonce
            while pending in sender.txs:
                pending += 1
            queued = sender.queued()
            sender.pending = pending
            self._queued += sender.queued() - queued
        self._compact_tails()
        return dropped

    def stamp(self, hashes: Iterable[bytes]) -> None:
        """Mark these pooled transactions as admitted now, for :meth:`reap`'s
        ``settled``: a batch is gossiped once all of it is in, so its first
        transactions are no older, as far as the other validators go, than its last."""
        now = self.clock()
        by_hash = self._by_hash
        for tx_hash in hashes:
            entry = by_hash.get(tx_hash)
            if entry is not None:
                entry.at = now

    def remove(self, hashes: Iterable[bytes]) -> int:
        """Take these transactions out (e.g. one found invalid while building a block);
        returns how many were pooled. A sender's higher nonces stay, queued."""
        removed = 0
        for tx_hash in hashes:
            entry = self._by_hash.get(tx_hash)
            if entry is not None:
                self._unlink(entry)
                removed += 1
        self._compact_tails()
        return removed

    # ------------------------------------------------------------------ bookkeeping

    def _link(self, entry: _Entry) -> None:
        sender = entry.sender
        queued = sender.queued()
        cheaper = not sender.txs or entry.gas_price < sender.min_price
        if not sender.txs:
            self._senders[sender.address] = sender
        if cheaper:
            sender.min_price = entry.gas_price
        nonce = entry.nonce
        self._by_hash[entry.hash] = entry
        sender.txs[nonce] = entry
        sender.cost += entry.cost
        self._bytes += entry.size
        if nonce == sender.pending:
            pending = nonce + 1
            while pending in sender.txs:
                pending += 1
            sender.pending = pending
        self._queued += sender.queued() - queued
        if nonce >= sender.last:
            sender.last = nonce
            self._push_tail(sender)
        elif cheaper:
            self._push_tail(sender)

    def _unlink(self, entry: _Entry) -> None:
        sender = entry.sender
        queued = sender.queued()
        nonce = entry.nonce
        del self._by_hash[entry.hash]
        del sender.txs[nonce]
        sender.cost -= entry.cost
        self._bytes -= entry.size
        if nonce < sender.pending:
            sender.pending = max(nonce, sender.nonce)
        self._queued += sender.queued() - queued
        if not sender.txs:
            sender.last = -1
            sender.min_price = 0
            del self._senders[sender.address]
            return
        dearer = entry.gas_price == sender.min_price and \
            sender.min_price != (min_price := min(e.gas_price for e in sender.txs.values()))
        if dearer:
            sender.min_price = min_price
        if nonce == sender.last:
            sender.last = max(sender.txs)
            self._push_tail(sender)
        elif dearer:
            self._push_tail(sender)

    def _push_tail(self, sender: _Sender) -> None:
        """(Re)enter ``sender``'s tail in the eviction heap at its current value."""
        tail = sender.txs[sender.last]
        heapq.heappush(self._tails, (sender.keep_value(), -tail.seq, next(self._pushes), tail))

    def _compact_tails(self) -> None:
        """Rebuild the tail heap once stale items outnumber live ones three to one, so
        it stays within a small multiple of the number of senders (each admission of a
        sender's next nonce pushes a new tail: rebuilding at one to one was 1.8% of a
        loaded node's time)."""
        if len(self._tails) > 4 * len(self._senders) + 256:
            self._tails = [(s.keep_value(), -s.txs[s.last].seq, next(self._pushes),
                            s.txs[s.last]) for s in self._senders.values()]
            heapq.heapify(self._tails)
