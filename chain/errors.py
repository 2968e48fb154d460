"""Exceptions of the chain package.

As everywhere in Agora, errors are split by whose fault they are: a
:class:`RemoteError` means the bytes or objects we were handed are bad (penalise the
peer, answer the client with the reason); a :class:`LocalError` means our own code
asked for something impossible (a bug to fix, never a peer to blame).
"""

from __future__ import annotations


class ChainError(Exception):
    """Base of every error raised by the chain package."""


class RemoteError(ChainError):
    """Input from outside (a peer, a client, a file) is invalid."""


class LocalError(ChainError):
    """Our own code misused the chain package."""


class _FieldPath:
    """Mixin for codec errors that name the offending field.

    ``path`` (``Transaction.action<Transfer>.amount``) is assembled on the way out:
    each enclosing record, list or union adds its part with :meth:`at`, so encoding or
    decoding valid values never builds a path string.
    """

    def __init__(self, message: str, path: str = "") -> None:
        super().__init__(f"{path}: {message}" if path else message)  # type: ignore[call-arg]
        self.message = message
        self.path = path

    def at(self, prefix: str):  # -> the same error type
        """The same error, one level further out."""
        return type(self)(self.message, prefix + self.path)


class DecodeError(_FieldPath, RemoteError):
    """Bytes are not the canonical encoding of the expected type: truncated, trailing
    bytes, wrong types, out-of-range values, non-minimal encodings or oversize input."""


class InvalidTransaction(RemoteError):
    """A transaction fails a stateless check (size, chain id, signature, fields)."""


class InvalidAddress(RemoteError):
    """An address text is malformed or its checksum does not match."""


class InvalidCertificate(RemoteError):
    """A commit certificate does not prove a quorum for the claimed block."""


class InvalidGenesis(RemoteError):
    """The genesis file is malformed or breaks a rule; the message names the key."""


class EncodeError(_FieldPath, LocalError):
    """We tried to encode a value that does not fit its declared type."""
