"""A Byzantine validator, for the fault tests only (never a production flag).

    python tests/faults/byzantine_node.py --home HOME

runs the ordinary node of ``HOME`` (its config, its validator key, real sockets, the
node's own p2p protocol), but everything consensus broadcasts goes through
:class:`ByzantinePeerManager`, which lies, signing with the validator's real key:

* its own proposal for (height, view 0) goes, as built, to a third of the validators
  it is connected to; the others get a different valid block for the same (height, view) — same parent
  and certificate, one millisecond later, no transactions — with a PREPARE and a
  COMMIT for it, so that block can gather a quorum among them;
* every PREPARE it signs is paired with a conflicting one (for that other block, or
  for a hash of nothing), which some peers see first and others second;
* every COMMIT it signs is followed by a conflicting COMMIT to two thirds of them;
* peers that are not validators (the test's observer) get both sides of every lie.

Each lie is logged (``BYZANTINE: equivocated proposal ...`` / ``double vote ...``) so
the test can tell the attack happened. Everything else (sync, transactions, serving
blocks, RPC) is the honest node's.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import node.daemon as daemon  # noqa: E402 - after the path is set
from chain.block import Block, Vote, VoteKind  # noqa: E402
from chain.hashing import sha256  # noqa: E402
from consensus.errors import InvalidMessage  # noqa: E402
from consensus.messages import (  # noqa: E402
    CompactProposal,
    Proposal,
    VoteMessage,
    decode_message,
    encode_message,
)
from node.home import Home  # noqa: E402
from p2p.peers import PeerManager  # noqa: E402

log = logging.getLogger("agora.byzantine")


class ByzantinePeerManager(PeerManager):
    """The node's peer manager, with a lying ``broadcast`` (consensus only)."""

    node: daemon.Node | None = None

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        #: (height, view) -> the hash of the other block proposed there.
        self.alternatives: dict[tuple[int, int], bytes] = {}
        self.observers: list[bytes] = []
        self.lies = 0

    def broadcast(self, body: bytes, *, validators_only: bool = False) -> int:
        node = self.node
        key = node.validator_key if node is not None else None
        peers = sorted(i for i, p in self.peers.items() if p.is_validator)
        #: Peers that do not vote (an observer in the test) get both sides of each lie.
        self.observers = [i for i, p in self.peers.items() if not p.is_validator]
        if key is None or len(peers) < 2:
            return super().broadcast(body, validators_only=validators_only)
        try:
            message = decode_message(body)
        except InvalidMessage:
            return super().broadcast(body, validators_only=validators_only)
        first = peers[:max(1, len(peers) // 3)]
        rest = peers[len(first):]
        if type(message) in (Proposal, CompactProposal) and message.view == 0:
            header = (message.block.header if type(message) is Proposal
                      else message.header)  # type: ignore[union-attr]
            if header.proposer == key.address:
                alternative = self._alternative(message)
                if alternative is not None:
                    return self._equivocate(body, message.view, alternative, first, rest)
        if type(message) is VoteMessage and message.vote.validator == key.address:
            return self._double_vote(body, message.vote, first, rest)
        return super().broadcast(body, validators_only=validators_only)

    def _alternative(self, message: Proposal | CompactProposal) -> Block | None:
        """Another valid block for the same height: empty, one millisecond later."""
        assert self.node is not None
        if type(message) is Proposal:
            header, last_commit = message.block.header, message.block.last_commit
        else:
            header, last_commit = message.header, message.last_commit  # type: ignore[union-attr]
        executor = self.node.executor
        if executor.height + 1 != header.height:
            return None
        return executor.build_block(
            [], time_ms=header.time_ms + 1, proposer=header.proposer,
            validators_hash=header.validators_hash,
            next_validators_hash=header.next_validators_hash, last_commit=last_commit)

    def _equivocate(self, body: bytes, view: int, block: Block, first: list[bytes],
                    rest: list[bytes]) -> int:
        assert self.node is not None and self.node.validator_key is not None
        key, chain_id = self.node.validator_key, self.chain_id
        height = block.height
        self.alternatives[(height, view)] = block.hash
        other = [encode_message(Proposal.create(key, chain_id, view, block))] + [
            encode_message(VoteMessage(Vote.create(key, chain_id, kind, height, view,
                                                   block.hash)))
            for kind in (VoteKind.PREPARE, VoteKind.COMMIT)]
        for peer in first:
            self.send(peer, body)
        for peer in rest:
            for part in other:
                self.send(peer, part)
        for peer in self.observers:
            for part in [body, *other]:
                self.send(peer, part)
        self.lies += 1
        log.warning("BYZANTINE: equivocated proposal at height %d view %d: the block built "
                    "to %d peer(s), block %s to %d (lie %d)", height, view, len(first),
                    block.hash.hex()[:12], len(rest), self.lies)
        return len(first) + len(rest)

    def _double_vote(self, body: bytes, vote: Vote, first: list[bytes],
                     rest: list[bytes]) -> int:
        assert self.node is not None and self.node.validator_key is not None
        key = self.node.validator_key
        other_hash = (self.alternatives.get((vote.height, vote.view))
                      or sha256(b"byzantine" + vote.block_hash))
        conflicting = encode_message(VoteMessage(Vote.create(
            key, self.chain_id, vote.kind, vote.height, vote.view, other_hash)))
        if vote.kind == VoteKind.PREPARE:
            for peer in rest:  # they see the conflicting one first
                self.send(peer, conflicting)
                self.send(peer, body)
            for peer in first:
                self.send(peer, body)
                self.send(peer, conflicting)
        else:
            for peer in first + rest:
                self.send(peer, body)
            for peer in rest:
                self.send(peer, conflicting)
        for peer in self.observers:
            self.send(peer, body)
            self.send(peer, conflicting)
        self.lies += 1
        log.warning("BYZANTINE: double vote (%s) at height %d view %d: %s and %s (lie %d)",
                    "PREPARE" if vote.kind == VoteKind.PREPARE else "COMMIT", vote.height,
                    vote.view, vote.block_hash.hex()[:12], other_hash.hex()[:12], self.lies)
        return len(first) + len(rest)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", required=True, type=Path)
    args = parser.parse_args()
    daemon.PeerManager = ByzantinePeerManager  # type: ignore[misc]
    node = daemon.Node(Home(args.home))
    ByzantinePeerManager.node = node
    logging.basicConfig(level=node.config.log.level.upper(),
                        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s")
    log.warning("BYZANTINE harness: validator %s lies from here on",
                node.validator_key.address.hex() if node.validator_key else "?")
    asyncio.run(node.run())


if __name__ == "__main__":
    main()
