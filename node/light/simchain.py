"""A deterministic chain of signed headers without a node: for the light node's tests
and its benchmark. Validators are keys from fixed seeds; the set changes where asked
(the header of h commits to the set of h + 1 in ``next_validators_hash``, as the real
chain does); every certificate is signed by the whole set of its height unless a test
says otherwise. :class:`SimProvider` serves it as a full node's RPC would, through the
same :class:`~node.light.provider.Provider` interface, with hooks for lies.
:class:`LazySimChain` is the same chain for lengths too long to sign in full (the
benchmark's 100,000 heights): each height's certificate is signed only when asked for.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from chain.block import CommitCertificate, CommitSig, Header, Vote, VoteKind
from chain.genesis import ConsensusParams, Genesis
from chain.hashing import ZERO_HASH, sha256
from chain.keys import PrivateKey
from chain.validators import Validator, ValidatorSet

from ..rpc.client import RPCFailed
from .errors import Unreachable
from .provider import Provider
from .verifier import LightBlock

CHAIN_ID = "light-sim"
BLOCK_MS = 1_000


def keys(prefix: str, n: int) -> list[PrivateKey]:
    return [PrivateKey.from_seed_text(f"{prefix}-{i}") for i in range(n)]


def vset(ks: Sequence[PrivateKey], power: int = 10) -> ValidatorSet:
    return ValidatorSet(Validator(k.public_key, power) for k in ks)


def sign(header: Header, signers: Sequence[PrivateKey], view: int = 0) -> CommitCertificate:
    votes = [Vote.create(k, header.chain_id, VoteKind.COMMIT, header.height, view, header.hash)
             for k in signers]
    return CommitCertificate(header.height, view, header.hash,
                             tuple(CommitSig(v.validator, v.signature) for v in votes))


@dataclass
class SimChain:
    """Heights 1..n; ``sets[h]`` are the signing keys of height h."""

    genesis: Genesis
    first: list[PrivateKey]
    blocks: list[LightBlock] = field(default_factory=list)
    signers: list[list[PrivateKey]] = field(default_factory=list)

    @property
    def height(self) -> int:
        return len(self.blocks)

    def block(self, height: int) -> LightBlock:
        return self.blocks[height - 1]


def make_genesis(validators: Sequence[PrivateKey], time_ms: int,
                 chain_id: str = CHAIN_ID) -> Genesis:
    return Genesis(chain_id, time_ms, vset(validators), tuple(f"v{i}" for i in
                                                             range(len(validators))),
                   (), ConsensusParams())


def build(n: int, *, start_ms: int, validators: Sequence[PrivateKey] | None = None,
          changes: dict[int, Sequence[PrivateKey]] | None = None,
          chain_id: str = CHAIN_ID, block_ms: int = BLOCK_MS) -> SimChain:
    """A chain of ``n`` heights; ``changes[h]``: the keys that form the set from h on."""
    first = list(validators if validators is not None else keys("sim", 4))
    genesis = make_genesis(first, start_ms, chain_id)
    chain = SimChain(genesis, first)
    return extend(chain, n, changes=changes, block_ms=block_ms)


def extend(chain: SimChain, n: int, *, changes: dict[int, Sequence[PrivateKey]] | None = None,
           block_ms: int = BLOCK_MS) -> SimChain:
    changes = dict(changes or {})
    g = chain.genesis
    current = list(chain.signers[-1]) if chain.signers else list(chain.first)
    prev_hash = chain.blocks[-1].hash if chain.blocks else g.hash
    time_ms = chain.blocks[-1].header.time_ms if chain.blocks else g.time_ms
    for height in range(chain.height + 1, chain.height + n + 1):
        if height in changes:
            current = list(changes[height])
        nxt = list(changes.get(height + 1, current))
        time_ms += block_ms
        this_set, next_set = vset(current), vset(nxt)
        header = Header(g.chain_id, height, time_ms, prev_hash, ZERO_HASH, ZERO_HASH,
                        sha256(b"state" + height.to_bytes(8, "big")), this_set.hash,
                        next_set.hash, current[height % len(current)].address, 0, ZERO_HASH)
        chain.blocks.append(LightBlock(header, sign(header, current), this_set))
        chain.signers.append(current)
        prev_hash = header.hash
    return chain


class LazySimChain:
    """The chain :func:`build` makes (the same headers, hashes and certificates for the
    same arguments), with certificates signed only for the heights asked for: a light
    client skipping ahead asks for a few dozen of 100,000. Every header hash is worked
    out up front (the ``prev_hash`` links: ~5 us a height, no signatures); headers and
    certificates are made on demand and the signed ones kept. ``signed`` counts the
    heights signed so far."""

    def __init__(self, n: int, *, start_ms: int,
                 validators: Sequence[PrivateKey] | None = None,
                 changes: dict[int, Sequence[PrivateKey]] | None = None,
                 chain_id: str = CHAIN_ID, block_ms: int = BLOCK_MS) -> None:
        self.first = list(validators if validators is not None else keys("sim", 4))
        self.genesis = make_genesis(self.first, start_ms, chain_id)
        self.block_ms = block_ms
        self._n = n
        # The set in force from each change on (build's rule: changes[h] from h on).
        self._starts = [0] + sorted(h for h in (changes or {}) if h >= 1)
        self._keys = [self.first] + [list((changes or {})[h]) for h in self._starts[1:]]
        self._sets = [vset(ks) for ks in self._keys]
        self._hashes = [self.genesis.hash]
        for height in range(1, n + 1):
            self._hashes.append(self.header(height).hash)
        self._blocks: dict[int, LightBlock] = {}
        self.signed = 0

    @property
    def height(self) -> int:
        return self._n

    def _era(self, height: int) -> int:
        return bisect.bisect_right(self._starts, height) - 1

    def signers(self, height: int) -> list[PrivateKey]:
        return self._keys[self._era(height)]

    def header(self, height: int) -> Header:
        """Header ``height`` (1..n; its parent's hash must be known: heights are worked
        out in order once, in the constructor)."""
        era = self._era(height)
        current = self._keys[era]
        this_set, next_set = self._sets[era], self._sets[self._era(height + 1)]
        return Header(self.genesis.chain_id, height,
                      self.genesis.time_ms + height * self.block_ms, self._hashes[height - 1],
                      ZERO_HASH, ZERO_HASH, sha256(b"state" + height.to_bytes(8, "big")),
                      this_set.hash, next_set.hash, current[height % len(current)].address, 0,
                      ZERO_HASH)

    def block(self, height: int) -> LightBlock:
        if not 1 <= height <= self._n:
            raise IndexError(f"height {height} is outside 1..{self._n}")
        found = self._blocks.get(height)
        if found is None:
            header = self.header(height)
            found = LightBlock(header, sign(header, self.signers(height)),
                               self._sets[self._era(height)])
            self._blocks[height] = found
            self.signed += 1
        return found


class SimProvider(Provider):
    """A full node serving a :class:`SimChain` (or lying about it through ``tamper``:
    a function of a light block that returns the block to send)."""

    def __init__(self, chain: SimChain | LazySimChain, url: str = "sim://primary", *,
                 head: int | None = None,
                 tamper: Callable[[LightBlock], LightBlock] | None = None) -> None:
        super().__init__(url)
        self.chain = chain
        self.head = head
        self.tamper = tamper
        self.down = False
        self.requests = 0

    async def latest_height(self) -> int:
        self.requests += 1
        if self.down:
            raise Unreachable(f"{self.url} is down")
        return self.chain.height if self.head is None else self.head

    async def light_blocks(self, heights: Sequence[int]) -> list[LightBlock]:
        self.requests += 1
        if self.down:
            raise Unreachable(f"{self.url} is down")
        top = self.chain.height if self.head is None else self.head
        out = []
        for h in heights:
            if not 1 <= h <= top:
                raise RPCFailed("header", {"code": -32001, "message": f"no header at {h}"})
            block = self.chain.block(h)
            out.append(self.tamper(block) if self.tamper is not None else block)
        return out
