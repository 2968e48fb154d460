"""Transaction gossip bookkeeping, sans-I/O: who knows which transaction.

Two bounded sets do the work. ``seen`` holds every transaction hash this node has
received or published, so a transaction that arrives again over another link is not
handed to the mempool twice. ``known[peer]`` holds the hashes a peer is known to have
— because it sent them to us or we sent them to it — so nothing is sent twice over a
link and nothing is echoed back to the peer it came from. Outgoing transactions wait in
a per-peer outbox until the connection layer takes them as one batch.

Both sets forget their oldest entries when full: forgetting only risks a duplicate
send, never a lost transaction.
"""

from __future__ import annotations

from chain.hashing import sha256


class BoundedSet:
    """A set of the most recent members, at most ``capacity`` of them, the oldest
    forgotten first — in halves: two generations of plain sets, and when the newer one
    holds half the capacity it becomes the older and the older is dropped whole. Every
    operation is one or two set lookups (an OrderedDict kept exact order at three times
    the cost, on every transaction of gossip); a member is kept for at least half the
    capacity's worth of newer ones."""

    __slots__ = ("capacity", "_half", "_new", "_old")

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._half = max(1, capacity // 2)
        self._new: set[bytes] = set()
        self._old: set[bytes] = set()

    def add(self, item: bytes) -> bool:
        """Add ``item``; True if it was not there."""
        new = self._new
        if item in new or item in self._old:
            return False
        if len(new) >= self._half:
            self._old = new
            new = self._new = set()
        new.add(item)
        return True

    def __contains__(self, item: bytes) -> bool:
        return item in self._new or item in self._old

    def __len__(self) -> int:
        return len(self._new) + len(self._old)


class TxGossip:
    """The seen-set, the per-peer known-sets and the outboxes."""

    def __init__(self, *, seen_capacity: int = 200_000, known_capacity: int = 50_000) -> None:
        self.seen = BoundedSet(seen_capacity)
        self.known_capacity = known_capacity
        self.known: dict[bytes, BoundedSet] = {}
        self.outbox: dict[bytes, list[bytes]] = {}

    def add_peer(self, peer: bytes) -> None:
        self.known[peer] = BoundedSet(self.known_capacity)
        self.outbox[peer] = []

    def remove_peer(self, peer: bytes) -> None:
        self.known.pop(peer, None)
        self.outbox.pop(peer, None)

    def received(self, peer: bytes, txs: tuple[bytes, ...] | list[bytes]) -> list[tuple[bytes, bytes]]:
        """``peer`` sent these encoded transactions. Returns (hash, bytes) of those not
        seen yet, for the mempool; all of them are now known to ``peer``.

        They are not marked seen here: the mempool's verdict decides (see
        :meth:`mark_seen`). Marking on arrival would let a peer that sends a valid
        transaction in a batch it gets banned for, or one refused for a passing reason
        (a full pool), keep every honest copy of it out for good."""
        known = self.known.get(peer)
        seen = self.seen
        fresh: list[tuple[bytes, bytes]] = []
        for raw in txs:
            tx_hash = sha256(raw)
            if known is not None:
                known.add(tx_hash)
            if tx_hash not in seen:
                fresh.append((tx_hash, raw))
        return fresh

    def mark_seen(self, tx_hash: bytes) -> None:
        """Settled for good (refused for a reason that will not pass): ignore copies."""
        self.seen.add(tx_hash)

    def publish(self, txs: list[tuple[bytes, bytes]], origin: bytes | None = None) -> None:
        """Queue (hash, bytes) pairs for every peer that does not have them yet.
        ``origin`` is the peer they came from (None: submitted locally)."""
        for tx_hash, _ in txs:
            self.seen.add(tx_hash)
        for peer, known in self.known.items():
            if peer == origin:
                continue
            box = self.outbox[peer]
            add = known.add
            for tx_hash, raw in txs:
                if add(tx_hash):
                    box.append(raw)

    def publish_to(self, peer: bytes, txs: list[tuple[bytes, bytes]]) -> None:
        """Queue (hash, bytes) pairs for one peer (a new link catching up)."""
        known = self.known.get(peer)
        if known is None:
            return
        box = self.outbox[peer]
        for tx_hash, raw in txs:
            if known.add(tx_hash):
                box.append(raw)

    def take(self, peer: bytes) -> list[bytes]:
        """Empty ``peer``'s outbox and return what was in it."""
        box = self.outbox.get(peer)
        if not box:
            return []
        self.outbox[peer] = []
        return box

    def pending_peers(self) -> list[bytes]:
        return [peer for peer, box in self.outbox.items() if box]
