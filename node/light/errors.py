"""What can go wrong in a light node, split as everywhere in Agora into "the remote side
sent something bad" (a node that lied or broke: :class:`InvalidLightBlock`,
:class:`BadProof`) and the rest."""

from __future__ import annotations


class LightError(Exception):
    """Base of the light node's errors; the message is a sentence for people."""


class TrustExpired(LightError):
    """The header trust starts from is older than the trusting period."""


class NotEnoughTrust(LightError):
    """Too little of a trusted set signed a header further ahead: bisect (nobody lied)."""


class InvalidLightBlock(LightError):
    """A header, certificate or validator set that does not verify: who sent it lied
    (or is broken; the light node cannot tell the two apart and trusts neither)."""


class BadProof(LightError):
    """A value, transaction or receipt that does not match its Merkle proof, or an
    answer shaped so that it cannot be checked."""


class Unreachable(LightError):
    """A node did not answer (down, slow, or not speaking JSON-RPC)."""


class NoHonestNode(LightError):
    """Every node the light node was given has been caught lying or is unreachable."""


class CannotProve(LightError):
    """What was asked cannot be proved from a verified root (the light node says so
    instead of answering unproven)."""
