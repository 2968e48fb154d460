"""The consensus package's exceptions: the remote side sent something bad versus
something is wrong on our side."""

from __future__ import annotations

from chain.errors import RemoteError


class ConsensusError(Exception):
    """Base of every consensus error."""


class InvalidMessage(ConsensusError, RemoteError):
    """A consensus message is malformed, badly signed, from a non-validator, for
    another chain, or breaks the protocol (a NEW-VIEW without its justification).

    ``blameless``: refused, but an honest node could have sent it (a proposal whose
    time is ahead of our clock); the peer is not penalised."""

    def __init__(self, message: str, *, blameless: bool = False) -> None:
        super().__init__(message)
        self.blameless = blameless


class InvalidProposal(ConsensusError, RemoteError):
    """A proposed block is not valid (the application refused it, or it breaks a
    consensus rule: wrong proposer, height, parent or certificate). ``blameless`` as
    for :class:`InvalidMessage`."""

    def __init__(self, message: str, *, blameless: bool = False) -> None:
        super().__init__(message)
        self.blameless = blameless


class LocalError(ConsensusError):
    """The driver used the core wrongly (our bug, not a peer's)."""


class SignLogCorrupt(ConsensusError):
    """The write-ahead sign log is damaged in the middle (not just a torn tail). The
    validator must not sign anything until an operator looks at it."""

