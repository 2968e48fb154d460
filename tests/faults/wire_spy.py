"""A silent observer on the validators' own protocol, to catch double signs on the wire.

:class:`WireSpy` is a p2p peer (a fresh node key, not a validator) that dials every
validator directly — not through the chaos proxy, so it sees both sides of a
partition, and it relays nothing — with the node's own :class:`p2p.peers.PeerManager`.
Validators broadcast consensus messages to every peer, so it receives their proposals,
PREPAREs, COMMITs, VIEW-CHANGEs and NEW-VIEWs, and the certificates inside blocks and
decisions. It checks each signature against the genesis validator set and records, per
(signer, kind, height, view), every distinct thing signed; two of them are a double
sign, whatever the nodes themselves noticed.

Kinds: ``proposal`` (the block hash), ``prepare`` and ``commit`` (the block hash) and
``view-change`` (the prepared certificate's (view, hash) it carries, or none).
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Iterable

from side_peer import SidePeer

from chain.block import Block, CommitCertificate, Vote, VoteKind
from chain.validators import ValidatorSet
from consensus.errors import InvalidMessage
from consensus.messages import (
    CompactProposal,
    Decision,
    NewView,
    Proposal,
    ViewChange,
    ViewChangeMessage,
    VoteMessage,
    decode_message,
)
from p2p.peers import PeerManager

Key = tuple[bytes, str, int, int]  # (signer, kind, height, view)


class WireSpy(SidePeer):
    """``WireSpy(chain_id, validators, peers)``; ``start()``, read, ``close()``."""

    def __init__(self, chain_id: str, validators: ValidatorSet, peers: Iterable[str]) -> None:
        super().__init__(chain_id, peers, "wire-spy")
        self.validators = validators
        self._lock = threading.Lock()
        self._signed: dict[Key, set[bytes]] = defaultdict(set)
        #: (monotonic time, signer, kind, height, view) of each signed thing, first sight.
        self.timeline: list[tuple[float, bytes, str, int, int]] = []
        self.messages = 0
        self.forged = 0
    def configure(self, network: PeerManager) -> None:
        network.on_consensus = self._received

    # ------------------------------------------------------------------ reading

    def connected(self) -> int:
        network = self._network
        return len(network.peers) if network is not None else 0

    def signed(self, signer: bytes) -> dict[Key, set[bytes]]:
        with self._lock:
            return {k: set(v) for k, v in self._signed.items() if k[0] == signer}

    def conflicts(self, signer: bytes | None = None) -> dict[Key, set[bytes]]:
        """Every (signer, kind, height, view) signed two different ways."""
        with self._lock:
            return {k: set(v) for k, v in self._signed.items()
                    if len(v) > 1 and (signer is None or k[0] == signer)}

    def saw(self, signer: bytes, kind: str, height: int, view: int | None = None) -> bool:
        with self._lock:
            return any(k[0] == signer and k[1] == kind and k[2] == height
                       and (view is None or k[3] == view) for k in self._signed)

    def heights(self, signer: bytes, kind: str, above: int = 0) -> list[int]:
        """The heights above ``above`` at which ``signer`` was seen signing ``kind``."""
        with self._lock:
            return sorted({k[2] for k in self._signed
                           if k[0] == signer and k[1] == kind and k[2] > above})

    # ------------------------------------------------------------------ recording

    def _received(self, _peer: bytes, body: bytes) -> None:
        try:
            message = decode_message(body)
        except InvalidMessage:
            return
        self.messages += 1
        if type(message) is Proposal:
            self._proposal(message.block.header.proposer, message, message.block.height,
                           message.view, message.block.hash)
            self._certificate(message.block.last_commit)
        elif type(message) is CompactProposal:
            self._proposal(message.header.proposer, message, message.header.height,
                           message.view, message.header.hash)
            self._certificate(message.last_commit)
        elif type(message) is VoteMessage:
            self._vote(message.vote)
        elif type(message) is ViewChangeMessage:
            self._view_change(message.view_change)
        elif type(message) is NewView:
            for vc in message.view_changes:
                self._view_change(vc)
            proposal = message.proposal
            self._proposal(proposal.block.header.proposer, proposal, proposal.block.height,
                           proposal.view, proposal.block.hash)
            self._certificate(proposal.block.last_commit)
        elif type(message) is Decision:
            self._certificate(message.certificate)
            self._block(message.block)

    def _public_key(self, signer: bytes) -> bytes | None:
        entry = self.validators.get(signer)
        return entry.public_key if entry is not None else None

    def _record(self, signer: bytes, kind: str, height: int, view: int, what: bytes) -> None:
        with self._lock:
            seen = self._signed[(signer, kind, height, view)]
            if what not in seen:
                self.timeline.append((time.monotonic(), signer, kind, height, view))
            seen.add(what)

    def _proposal(self, claimed: bytes, message: Proposal | CompactProposal, height: int,
                  view: int, block_hash: bytes) -> None:
        """A proposal is signed by the proposer of its (height, view), which is not
        always the block's own proposer (a NEW-VIEW re-proposes a block prepared in an
        earlier view): the signer is whichever validator's key verifies it."""
        candidates = [claimed] + [v.address for v in self.validators.validators
                                  if v.address != claimed]
        for signer in candidates:
            key = self._public_key(signer)
            if key is not None and message.verify(self.chain_id, key):
                self._record(signer, "proposal", height, view, block_hash)
                return
        self.forged += 1

    def _vote(self, vote: Vote) -> None:
        key = self._public_key(vote.validator)
        if key is None or not vote.verify(self.chain_id, key):
            self.forged += 1
            return
        kind = "prepare" if vote.kind == VoteKind.PREPARE else "commit"
        self._record(vote.validator, kind, vote.height, vote.view, vote.block_hash)

    def _view_change(self, vc: ViewChange) -> None:
        key = self._public_key(vc.validator)
        if key is None or not vc.verify(self.chain_id, key):
            self.forged += 1
            return
        summary = b"none" if vc.prepared is None else (
            vc.prepared.view.to_bytes(4, "big") + vc.prepared.block_hash)
        self._record(vc.validator, "view-change", vc.height, vc.view, summary)
        if vc.prepared is not None:
            for vote in vc.prepared.votes:
                self._vote(vote)

    def _certificate(self, certificate: CommitCertificate | None) -> None:
        if certificate is None:
            return
        for sig in certificate.signatures:
            self._vote(Vote(VoteKind.COMMIT, certificate.height, certificate.view,
                            certificate.block_hash, sig.validator, sig.signature))

    def _block(self, block: Block) -> None:
        self._certificate(block.last_commit)
