"""Peer policy, kept free of I/O so it is tested with an injected clock and seed:
addresses, reconnect backoff, bans, the address book, and which of two simultaneous
connections to keep.
"""

from __future__ import annotations

import random
from collections import OrderedDict
from dataclasses import dataclass

from chain.keys import ADDRESS_SIZE

from .errors import LocalError


@dataclass(frozen=True)
class PeerAddress:
    """``nodeid@host:port``: where to dial, and which node key must answer there."""

    node_id: bytes
    host: str
    port: int

    @classmethod
    def parse(cls, text: str) -> PeerAddress:
        """Parse ``<40 hex digits>@host:port`` (IPv6 hosts in brackets)."""
        node_hex, at, hostport = text.strip().partition("@")
        if not at:
            raise LocalError(f"peer address {text!r} is not of the form nodeid@host:port")
        try:
            node_id = bytes.fromhex(node_hex)
        except ValueError:
            node_id = b""
        if len(node_id) != ADDRESS_SIZE:
            raise LocalError(f"peer address {text!r}: the node id must be {ADDRESS_SIZE * 2} "
                             "hex digits")
        host, port = split_host_port(hostport, text)
        return cls(node_id, host, port)

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.node_id.hex()}@{host}:{self.port}"


def split_host_port(hostport: str, context: str | None = None) -> tuple[str, int]:
    """``host:port`` -> (host, port), refusing anything else with a clear message."""
    host, colon, port_text = hostport.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    # isascii(): str.isdigit() also accepts digits like "²" that int() refuses.
    if (not colon or not host or not port_text.isascii() or not port_text.isdigit()
            or not 0 < int(port_text) < 65536):
        raise LocalError(f"address {context or hostport!r} is not host:port with a port "
                         "in 1..65535")
    return host, int(port_text)


class Backoff:
    """Exponential reconnect delays with jitter: attempt k waits a uniform random time
    in [d/2, d] where d = min(cap, base * 2**k). The jitter spreads the redials of many
    nodes that lost the same peer at once; the cap keeps a long outage from making the
    node give up for hours."""

    def __init__(self, base: float, cap: float, rng: random.Random) -> None:
        if base <= 0 or cap < base:
            raise LocalError("backoff needs 0 < base <= cap")
        self.base = base
        self.cap = cap
        self.rng = rng
        self.attempts = 0

    def next_delay(self) -> float:
        ceiling = min(self.cap, self.base * 2 ** min(self.attempts, 32))
        self.attempts += 1
        return self.rng.uniform(ceiling / 2, ceiling)

    def reset(self) -> None:
        self.attempts = 0


class BanList:
    """Node ids banned until a deadline (``now`` is passed in, never read). Bounded:
    past ``capacity`` the oldest ban is forgotten (node ids cost nothing to make, so
    a ban is a speed bump, and memory must not be the price)."""

    def __init__(self, capacity: int = 10_000) -> None:
        self.capacity = capacity
        self._until: OrderedDict[bytes, float] = OrderedDict()

    def ban(self, node_id: bytes, now: float, seconds: float) -> None:
        until = max(self._until.pop(node_id, 0.0), now + seconds)
        self._until[node_id] = until
        while len(self._until) > self.capacity:
            self._until.popitem(last=False)

    def prune(self, now: float) -> None:
        """Forget expired bans (the upkeep loop calls this)."""
        for node_id in [n for n, until in self._until.items() if until <= now]:
            del self._until[node_id]

    def is_banned(self, node_id: bytes, now: float) -> bool:
        until = self._until.get(node_id)
        if until is None:
            return False
        if until <= now:
            del self._until[node_id]
            return False
        return True

    def __len__(self) -> int:
        return len(self._until)


class AddressBook:
    """Addresses learned from peer exchange and HELLOs, bounded, oldest forgotten first.
    Persistent peers from the config are not kept here: they are always redialled."""

    def __init__(self, capacity: int = 1000) -> None:
        self.capacity = capacity
        self._addresses: OrderedDict[bytes, PeerAddress] = OrderedDict()

    def add(self, address: PeerAddress) -> None:
        self._addresses.pop(address.node_id, None)
        self._addresses[address.node_id] = address
        while len(self._addresses) > self.capacity:
            self._addresses.popitem(last=False)

    def remove(self, node_id: bytes) -> None:
        self._addresses.pop(node_id, None)

    def get(self, node_id: bytes) -> PeerAddress | None:
        return self._addresses.get(node_id)

    def candidates(self, exclude: set[bytes], limit: int, rng: random.Random) -> list[PeerAddress]:
        """Up to ``limit`` addresses not in ``exclude``, in random order."""
        pool = [a for node_id, a in self._addresses.items() if node_id not in exclude]
        rng.shuffle(pool)
        return pool[:limit]

    def sample(self, limit: int, rng: random.Random) -> list[PeerAddress]:
        return self.candidates(set(), limit, rng)

    def __len__(self) -> int:
        return len(self._addresses)


def keeps_new_connection(local_id: bytes, remote_id: bytes, existing_outbound: bool,
                         new_outbound: bool) -> bool:
    """Two nodes that dial each other at once end up with two connections. Both must
    keep the same one, without talking about it: keep the connection dialled by the
    node with the smaller id. Returns True if the new connection replaces the old."""
    if existing_outbound == new_outbound:
        # The same direction twice: the peer redialled, so it no longer has the old
        # link (it crashed, or the old link is half-open). The new one is the live one.
        return True
    dialler_is_local = local_id < remote_id
    return new_outbound == dialler_is_local
