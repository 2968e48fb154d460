"""The write-ahead sign log: what this validator signed, on disk before it is sent.

A validator that signs two different blocks for the same (height, view, phase) is
what breaks BFT safety, and a crash between "signed" and "remembered that I signed"
is how an honest validator does it by accident. So every signature first passes
:meth:`SignLog.permit`, which refuses a conflict with anything signed before and
appends (and fsyncs) the new record before the caller may sign and send. The prepared
certificate, with its block, is logged the same way: after a restart it goes into the
validator's VIEW-CHANGE, which is what keeps a block that may have committed from
being replaced.

File format: a sequence of records, each ``length (4 bytes, big endian) || CRC-32 of
the payload (4 bytes) || payload`` where the payload is the canonical encoding of
``[kind, height, view, phase, block_hash, extra]``. A torn last record (a crash
mid-append) fails its length or CRC and is cut off on open; a bad record anywhere
else is corruption and refuses to open. The log is compacted (rewritten atomically
with only the current height's records) once it grows past a size bound.
"""

from __future__ import annotations

import os
import zlib
from pathlib import Path
from typing import Protocol

from chain.block import Block
from chain.codec import pack, unpack
from chain.errors import DecodeError
from storage.files import write_atomic

from .errors import SignLogCorrupt
from .messages import PreparedCertificate

#: Phases a validator signs, beside chain.block.VoteKind's PREPARE (1) and COMMIT (2).
PROPOSE = 0
PREPARE = 1
COMMIT = 2
VIEW_CHANGE = 3

_SIGNED = 0
_PREPARED = 1
_HEADER = 8
_COMPACT_BYTES = 64 * 1024 * 1024


class LogStorage(Protocol):
    """Where the log's bytes live: a file (the node) or memory (simulations)."""

    def read(self) -> bytes: ...

    def append(self, data: bytes) -> None:
        """Append and make durable before returning."""

    def replace(self, data: bytes) -> None:
        """Atomically replace the whole content."""

    def truncate(self, size: int) -> None: ...


class FileStorage:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)

    def read(self) -> bytes:
        with open(self.path, "rb") as f:
            return f.read()

    def append(self, data: bytes) -> None:
        os.write(self._fd, data)
        os.fsync(self._fd)

    def truncate(self, size: int) -> None:
        os.ftruncate(self._fd, size)
        os.fsync(self._fd)

    def replace(self, data: bytes) -> None:
        write_atomic(self.path, data)
        os.close(self._fd)
        self._fd = os.open(self.path, os.O_RDWR | os.O_APPEND)

    def close(self) -> None:
        os.close(self._fd)


class MemoryStorage:
    """Keeps the bytes in memory; survives a simulated restart if the test keeps it."""

    def __init__(self) -> None:
        self.data = bytearray()

    def read(self) -> bytes:
        return bytes(self.data)

    def append(self, data: bytes) -> None:
        self.data += data

    def truncate(self, size: int) -> None:
        del self.data[size:]

    def replace(self, data: bytes) -> None:
        self.data = bytearray(data)


def _frame(payload: bytes) -> bytes:
    return len(payload).to_bytes(4, "big") + zlib.crc32(payload).to_bytes(4, "big") + payload


def _frame_after(data: bytes, start: int) -> bool:
    """Does a whole, valid record start anywhere at or after ``start``? (Only asked on
    the rare path of a bad record, to tell a torn tail from damage in the middle.)"""
    for q in range(start, len(data) - _HEADER + 1):
        size = int.from_bytes(data[q:q + 4], "big")
        payload = data[q + _HEADER:q + _HEADER + size]
        if size and len(payload) == size and zlib.crc32(payload) == int.from_bytes(
                data[q + 4:q + 8], "big"):
            return True
    return False


class SignLog:
    """The record of what was signed, per height."""

    def __init__(self, storage: LogStorage, *, compact_bytes: int = _COMPACT_BYTES) -> None:
        self.storage = storage
        self.compact_bytes = compact_bytes
        #: (height, view, phase) -> block hash signed (for a view change, a digest of
        #: what it says).
        self.signed: dict[tuple[int, int, int], bytes] = {}
        #: height -> the highest prepared certificate and its block.
        self.prepared: dict[int, tuple[PreparedCertificate, Block]] = {}
        self._size = 0
        self._load()

    @classmethod
    def open(cls, path: Path) -> SignLog:
        return cls(FileStorage(path))

    @classmethod
    def in_memory(cls, storage: MemoryStorage | None = None) -> SignLog:
        return cls(storage or MemoryStorage())

    def close(self) -> None:
        """Release the file (nothing is buffered: every append is synced)."""
        close = getattr(self.storage, "close", None)
        if close is not None:
            close()

    def _load(self) -> None:
        data = self.storage.read()
        pos = 0
        while pos < len(data):
            if len(data) - pos < _HEADER:
                break  # a torn header at the end
            size = int.from_bytes(data[pos:pos + 4], "big")
            crc = int.from_bytes(data[pos + 4:pos + 8], "big")
            payload = data[pos + _HEADER:pos + _HEADER + size]
            if not size or len(payload) < size or zlib.crc32(payload) != crc:
                # A crash mid-append leaves a cut-off last record, or a file grown with
                # zeros whose data never reached the disk: nothing in it was signed.
                # Anything else (a whole, valid record further on) is damage.
                if not any(data[pos:]) or (pos + _HEADER + size >= len(data)
                                           and not _frame_after(data, pos + 1)):
                    break
                raise SignLogCorrupt(f"sign log record at byte {pos} is damaged")
            try:
                self._apply(unpack(payload, len(payload), "sign log record"))
            except (DecodeError, ValueError, TypeError) as exc:
                raise SignLogCorrupt(f"sign log record at byte {pos} is unreadable: "
                                     f"{exc}") from None
            pos += _HEADER + size
        #: Bytes of a torn last record cut off on open (the caller says so, loudly).
        self.dropped_tail = len(data) - pos
        if pos < len(data):
            self.storage.truncate(pos)
        self._size = pos

    def _apply(self, record: list) -> None:
        kind, height, view, phase, block_hash, extra = record
        if kind == _SIGNED:
            self.signed[(height, view, phase)] = block_hash
        elif kind == _PREPARED:
            cert_bytes, block_bytes = extra
            self.prepared[height] = (PreparedCertificate.decode(cert_bytes),
                                     Block.decode(block_bytes))
        else:
            raise ValueError(f"unknown record kind {kind}")

    def _append(self, record: list) -> None:
        frame = _frame(pack(record))
        self.storage.append(frame)
        self._size += len(frame)

    # ------------------------------------------------------------------ the rules

    def permit(self, height: int, view: int, phase: int, block_hash: bytes) -> bool:
        """May this validator sign ``block_hash`` for (height, view, phase)? True if
        it is new (now logged durably) or exactly what was signed before; False if it
        conflicts with an earlier signature, which must then not be made."""
        key = (height, view, phase)
        before = self.signed.get(key)
        if before is not None:
            return before == block_hash
        self._append([_SIGNED, height, view, phase, block_hash, []])
        self.signed[key] = block_hash
        return True

    def record_prepared(self, height: int, certificate: PreparedCertificate, block: Block) -> None:
        """Log the prepared certificate (durably) before the COMMIT vote is signed."""
        self._append([_PREPARED, height, certificate.view, 0, certificate.block_hash,
                      [certificate.encode(), block.encode()]])
        self.prepared[height] = (certificate, block)

    def highest_height(self) -> int:
        """The highest height anything was signed at (0 if none)."""
        heights = [h for (h, _, _) in self.signed] + list(self.prepared)
        return max(heights, default=0)

    def highest_view(self, height: int) -> int | None:
        """The highest view this validator signed anything in at ``height``."""
        views = [v for (h, v, _) in self.signed if h == height]
        return max(views) if views else None

    def signed_view_change(self, height: int, view: int) -> bool:
        return (height, view, VIEW_CHANGE) in self.signed

    def voted_in(self, height: int, view: int) -> bool:
        """Did this validator propose or vote in (height, view)?"""
        return any((height, view, phase) in self.signed for phase in (PROPOSE, PREPARE, COMMIT))

    def forget_below(self, height: int) -> None:
        """Drop what is below ``height`` (committed: never signed again); rewrite the
        file once it has grown past the bound."""
        self.signed = {k: v for k, v in self.signed.items() if k[0] >= height}
        self.prepared = {h: p for h, p in self.prepared.items() if h >= height}
        if self._size < self.compact_bytes:
            return
        out = bytearray()
        for (h, v, phase), block_hash in self.signed.items():
            out += _frame(pack([_SIGNED, h, v, phase, block_hash, []]))
        for h, (cert, block) in self.prepared.items():
            out += _frame(pack([_PREPARED, h, cert.view, 0, cert.block_hash,
                                [cert.encode(), block.encode()]]))
        self.storage.replace(bytes(out))
        self._size = len(out)
