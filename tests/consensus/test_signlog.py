"""The write-ahead sign log: what a validator signed survives a crash, a torn last
record is cut off, damage anywhere else refuses to open, and compaction keeps what
is current.

Every behaviour runs against both storages (py-evm's one-suite-for-every-backend
style): the file the node uses and the memory the simulations use.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

import pytest
from consensus_sim import CHAIN, FakeApp, keys

import consensus.signlog
from chain.block import Block, Vote, VoteKind
from chain.validators import Validator, ValidatorSet
from consensus.errors import SignLogCorrupt
from consensus.messages import PreparedCertificate
from consensus.signlog import (
    COMMIT,
    PREPARE,
    PROPOSE,
    VIEW_CHANGE,
    FileStorage,
    MemoryStorage,
    SignLog,
)

KEYS = keys(4)
VSET = ValidatorSet(Validator(k.public_key, 1) for k in KEYS)
A, B = b"\xaa" * 32, b"\xbb" * 32


def block_one(salt: int = 0) -> Block:
    return FakeApp(VSET).propose(1, 0, None, salt=salt)


def prepared(block: Block, view: int = 0) -> PreparedCertificate:
    return PreparedCertificate(view, block.hash, tuple(
        Vote.create(k, CHAIN, VoteKind.PREPARE, block.height, view, block.hash) for k in KEYS[:3]))


# ---------------------------------------------------------------------- backends


class Backend(Protocol):
    """Opens sign logs over one storage, and reads and writes its raw bytes."""

    def open(self, **kwargs) -> SignLog: ...

    def read(self) -> bytes: ...

    def write(self, data: bytes) -> None: ...


class FileBackend:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.storages: list[FileStorage] = []

    def open(self, **kwargs) -> SignLog:
        storage = FileStorage(self.path)
        self.storages.append(storage)
        return SignLog(storage, **kwargs)

    def read(self) -> bytes:
        return self.path.read_bytes()

    def write(self, data: bytes) -> None:
        self.path.write_bytes(data)

    def close(self) -> None:
        for storage in self.storages:
            storage.close()


class MemoryBackend:
    def __init__(self) -> None:
        self.storage = MemoryStorage()

    def open(self, **kwargs) -> SignLog:
        return SignLog(self.storage, **kwargs)

    def read(self) -> bytes:
        return bytes(self.storage.data)

    def write(self, data: bytes) -> None:
        self.storage.data = bytearray(data)


@pytest.fixture(params=["file", "memory"])
def backend(request, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "memory":
        yield MemoryBackend()
        return
    file_backend = FileBackend(tmp_path / "node" / "signlog")
    yield file_backend
    file_backend.close()


def three_records(backend: Backend) -> tuple[bytes, list[int]]:
    """A log of three PREPAREs at height 1, views 0..2; its bytes and record offsets."""
    log = backend.open()
    offsets = []
    for view in range(3):
        offsets.append(len(backend.read()))
        assert log.permit(1, view, PREPARE, bytes([view]) * 32)
    return backend.read(), offsets


# ---------------------------------------------------------------------- the rules


def test_permit_new_same_and_conflicting(backend: Backend) -> None:
    log = backend.open()
    assert log.permit(5, 0, PREPARE, A)  # new: logged
    size = len(backend.read())
    assert size > 0
    assert log.permit(5, 0, PREPARE, A)  # the same again: allowed, not logged twice
    assert len(backend.read()) == size
    assert not log.permit(5, 0, PREPARE, B)  # a conflict
    assert len(backend.read()) == size
    # Another phase, view or height is another slot.
    assert log.permit(5, 0, COMMIT, B)
    assert log.permit(5, 1, PREPARE, B)
    assert log.permit(6, 0, PREPARE, B)
    assert log.signed[(5, 0, PREPARE)] == A


def test_highest_view_and_view_changes(backend: Backend) -> None:
    log = backend.open()
    assert log.highest_view(3) is None
    log.permit(3, 0, PREPARE, A)
    log.permit(3, 2, VIEW_CHANGE, b"")
    log.permit(4, 7, PROPOSE, B)
    assert log.highest_view(3) == 2
    assert log.signed_view_change(3, 2) and not log.signed_view_change(3, 0)
    assert not log.permit(3, 2, VIEW_CHANGE, A)


def test_log_survives_reopen(backend: Backend) -> None:
    log = backend.open()
    log.permit(2, 0, PREPARE, A)
    log.permit(2, 0, COMMIT, A)
    log.permit(2, 1, VIEW_CHANGE, b"")
    block = block_one()
    log.record_prepared(2, prepared(block), block)
    reopened = backend.open()
    assert reopened.signed == log.signed
    assert not reopened.permit(2, 0, PREPARE, B)
    assert reopened.permit(2, 0, COMMIT, A)
    assert reopened.highest_view(2) == 1


def test_prepared_certificate_and_block_round_trip(backend: Backend) -> None:
    log = backend.open()
    first, second = block_one(), block_one(salt=1)
    log.record_prepared(1, prepared(first), first)
    log.record_prepared(1, prepared(second, view=1), second)  # a later view's
    log.record_prepared(2, prepared(first), first)
    reopened = backend.open()
    assert reopened.prepared == log.prepared
    assert reopened.prepared[1] == (prepared(second, view=1), second)
    certificate, block = reopened.prepared[2]
    assert block == first and block.hash == first.hash
    assert certificate.votes == prepared(first).votes


# ---------------------------------------------------------------------- crashes


@pytest.mark.parametrize("cut", [1, 5, 8, 9, -1], ids=["1 byte", "in the length",
                                                      "after the crc", "1 payload byte",
                                                      "all but 1 byte"])
def test_torn_last_record_is_cut_off(backend: Backend, cut: int) -> None:
    data, offsets = three_records(backend)
    end = offsets[2] + cut if cut > 0 else len(data) + cut
    backend.write(data[:end])
    log = backend.open()
    assert set(log.signed) == {(1, 0, PREPARE), (1, 1, PREPARE)}
    assert backend.read() == data[:offsets[2]]
    # The log keeps working: the torn slot is free again, and the next append is
    # readable after another reopen.
    assert log.permit(1, 2, PREPARE, B)
    assert backend.open().signed[(1, 2, PREPARE)] == B


@pytest.mark.parametrize("garbage", [b"\x01", b"\xff" * 7, b"garbage bytes after the log"],
                         ids=["1 byte", "a short header", "text"])
def test_garbage_after_the_last_record_is_cut_off(backend: Backend, garbage: bytes) -> None:
    data, _ = three_records(backend)
    backend.write(data + garbage)
    log = backend.open()
    assert len(log.signed) == 3
    assert backend.read() == data
    assert log.permit(1, 3, PREPARE, A)
    assert len(backend.open().signed) == 4


def test_zero_filled_tail_is_a_torn_tail(backend: Backend) -> None:
    """BUG: a crash can leave a file extended with zeros (the size reached the disk,
    the data did not). A zero header reads as an empty record with a matching CRC
    (crc32(b"") == 0), whose empty payload does not decode, so the log refuses to
    open with SignLogCorrupt instead of cutting the tail off. Nothing was signed in
    those bytes; the validator should start."""
    data, _ = three_records(backend)
    backend.write(data + bytes(16))
    log = backend.open()
    assert len(log.signed) == 3
    assert backend.read() == data


@pytest.mark.parametrize("where", [4, 8, -1], ids=["crc", "first payload byte",
                                                    "last payload byte"])
def test_damaged_record_in_the_middle_refuses_to_open(backend: Backend, where: int) -> None:
    data, offsets = three_records(backend)
    damaged = bytearray(data)
    damaged[offsets[1] + where if where >= 0 else offsets[2] + where] ^= 0x01
    backend.write(bytes(damaged))
    with pytest.raises(SignLogCorrupt):
        backend.open()
    assert backend.read() == bytes(damaged)  # refused, not repaired


def test_damaged_length_in_the_middle_refuses_to_open(backend: Backend) -> None:
    """BUG: a flipped high bit in a middle record's length makes it claim to run
    past the end of the file, which ``_load`` takes for a torn last record: it
    truncates the file there, silently dropping that record and every later one. The
    validator then forgets votes it signed and can sign conflicting ones."""
    data, offsets = three_records(backend)
    damaged = bytearray(data)
    damaged[offsets[1]] ^= 0x80
    backend.write(bytes(damaged))
    with pytest.raises(SignLogCorrupt):
        backend.open()
    assert backend.read() == bytes(damaged)


def test_well_framed_but_unreadable_record_refuses_to_open(backend: Backend) -> None:
    data, _ = three_records(backend)
    bogus = consensus.signlog._frame(consensus.signlog.pack([9, 1, 0, 0, A, []]))
    backend.write(bogus + data)
    with pytest.raises(SignLogCorrupt):
        backend.open()


# ---------------------------------------------------------------------- compaction


def test_forget_below_without_compaction_keeps_the_file(backend: Backend) -> None:
    log = backend.open()
    log.permit(1, 0, PREPARE, A)
    log.permit(2, 0, PREPARE, B)
    before = backend.read()
    log.forget_below(2)
    assert set(log.signed) == {(2, 0, PREPARE)}
    assert backend.read() == before  # under the bound: no rewrite
    assert log.permit(1, 0, PREPARE, B)  # a decided height is never signed again anyway


def test_forget_below_compacts_to_the_current_records(backend: Backend) -> None:
    log = backend.open(compact_bytes=1)
    old, current = block_one(), block_one(salt=1)
    for view in range(3):
        log.permit(1, view, PREPARE, A)
    log.record_prepared(1, prepared(old), old)
    log.permit(2, 0, PREPARE, B)
    log.permit(2, 1, VIEW_CHANGE, b"")
    log.record_prepared(2, prepared(current), current)
    before = len(backend.read())
    log.forget_below(2)
    assert len(backend.read()) < before
    reopened = backend.open()
    assert set(reopened.signed) == {(2, 0, PREPARE), (2, 1, VIEW_CHANGE)}
    assert reopened.prepared == {2: (prepared(current), current)}
    # Appends after compaction go to the new content.
    log.permit(2, 1, COMMIT, B)
    assert backend.open().signed[(2, 1, COMMIT)] == B


def test_compaction_replaces_the_file_atomically(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "signlog"
    log = SignLog(FileStorage(path), compact_bytes=1)
    log.permit(1, 0, PREPARE, A)
    log.permit(2, 0, PREPARE, B)
    before = path.read_bytes()

    def crash(src, dst) -> None:
        raise OSError("crash before the rename")

    monkeypatch.setattr(consensus.signlog.os, "replace", crash)
    with pytest.raises(OSError):
        log.forget_below(2)
    assert path.read_bytes() == before  # the old log is whole
    monkeypatch.undo()
    log.forget_below(2)  # retried: the stale temporary file does not get in the way
    assert sorted(p.name for p in tmp_path.iterdir()) == ["signlog"]
    assert set(SignLog(FileStorage(path)).signed) == {(2, 0, PREPARE)}


def test_log_file_is_private(tmp_path: Path) -> None:
    path = tmp_path / "signlog"
    log = SignLog.open(path)
    log.permit(1, 0, PREPARE, A)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    compacting = SignLog(FileStorage(path), compact_bytes=1)
    compacting.forget_below(2)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
