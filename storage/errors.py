"""Exceptions of the storage package.

Storage has no remote party: its errors are either damage found on disk
(:class:`Corruption`, which names the key so an operator can find it) or a request for
something the store does not hold in the form asked (:class:`StorageError` subclasses).
"""

from __future__ import annotations


class StorageError(Exception):
    """Base of every error raised by the storage package."""


class Corruption(StorageError):
    """A stored record fails its integrity check: truncated, bit-flipped, undecodable or
    not matching the hash that refers to it. It is never returned as data."""

    def __init__(self, key: bytes, reason: str) -> None:
        super().__init__(f"corrupted record at key {key.hex()}: {reason}")
        self.key = key
        self.reason = reason


class StoreClosed(StorageError):
    """The store was used after ``close()``."""


class BatchError(StorageError):
    """A write batch was misused (used after it was written or discarded)."""


class VersionNotAvailable(StorageError):
    """A state version was asked for that is pruned or not yet committed."""


class OutOfOrder(StorageError):
    """A block or state version was written out of sequence (not latest + 1), or an
    update was committed that is not the one written."""


class InvalidArgument(StorageError, ValueError):
    """A caller passed something a store cannot hold (a key too long, a cursor out of
    range, receipts that do not match the block)."""
