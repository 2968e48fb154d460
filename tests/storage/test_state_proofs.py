"""State proofs: membership and both kinds of non-membership verify against the root;
every tampering is refused; encode/decode round-trips; garbage never raises."""

from __future__ import annotations

import dataclasses
import functools
import random
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from storage_helpers import reference_root

from chain.errors import DecodeError
from chain.hashing import EMPTY_HASH, sha256
from storage.kv import KVStore, LevelDBKV, MemoryKV
from storage.proof import MAX_DEPTH, ProofStep, StateProof, verify_state_proof
from storage.state import StateTree

N_KEYS = 600
KEYS = [b"account/%d" % i for i in range(N_KEYS)]
VALUES = {k: b"balance:" + k[::-1] for k in KEYS}
ABSENT = [b"nobody/%d" % i for i in range(400)]


@pytest.fixture(params=["memory", "leveldb"])
def kv(request: pytest.FixtureRequest, tmp_path: Path):
    kv = MemoryKV() if request.param == "memory" else LevelDBKV(tmp_path / "db")
    yield kv
    kv.close()


def built(kv: KVStore) -> StateTree:
    tree = StateTree(kv)
    items = list(VALUES.items())
    for i in range(0, len(items), 150):
        tree.commit(dict(items[i : i + 150]))
    assert tree.root_hash() == reference_root(VALUES)
    return tree


@functools.cache
def shared_tree() -> StateTree:
    """A tree built once for the property tests (reads never change it)."""
    return built(MemoryKV())


def absent_kind(proof: StateProof, key: bytes) -> str:
    if proof.leaf_key_hash == b"":
        assert proof.leaf_value_hash == b""
        return "empty-slot"
    assert proof.leaf_key_hash != sha256(key)
    return "other-leaf"


# ------------------------------------------------------------ valid proofs verify


def test_present_keys_verify(kv: KVStore) -> None:
    tree = built(kv)
    root = tree.root_hash()
    depths = Counter()
    for k in KEYS:
        value, proof = tree.prove(k)
        assert value == VALUES[k]
        assert proof.leaf_key_hash == sha256(k)
        assert proof.leaf_value_hash == sha256(VALUES[k])
        assert verify_state_proof(root, k, value, proof)
        assert proof.verify(root, k, value)
        depths[len(proof.steps)] += 1
    assert len(depths) >= 2  # leaves at several depths


def test_absent_keys_verify_with_both_kinds_of_proof(kv: KVStore) -> None:
    tree = built(kv)
    root = tree.root_hash()
    kinds = Counter()
    for k in ABSENT:
        value, proof = tree.prove(k)
        assert value is None
        assert tree.get_at(k, tree.version) is None
        assert verify_state_proof(root, k, None, proof)
        kinds[absent_kind(proof, k)] += 1
    assert kinds["empty-slot"] >= 10
    assert kinds["other-leaf"] >= 10


def test_empty_tree_proofs(kv: KVStore) -> None:
    tree = StateTree(kv)
    tree.commit({})
    value, proof = tree.prove(b"anything")
    assert value is None
    assert proof == StateProof((), b"", b"")
    assert verify_state_proof(EMPTY_HASH, b"anything", None, proof)
    assert not verify_state_proof(EMPTY_HASH, b"anything", b"", proof)
    assert not verify_state_proof(sha256(b"x"), b"anything", None, proof)
    # An emptied tree (keys added, then all deleted) proves the same way.
    tree.commit({b"a": b"1", b"b": b"2"})
    tree.commit({b"a": None, b"b": None})
    assert tree.root_hash() == EMPTY_HASH
    assert tree.prove(b"a") == (None, StateProof((), b"", b""))


def test_one_key_tree_proofs(kv: KVStore) -> None:
    tree = StateTree(kv)
    root = tree.commit({b"only": b"one"})
    assert root == sha256(b"\x00" + sha256(b"only") + sha256(b"one"))
    value, proof = tree.prove(b"only")
    assert value == b"one" and proof.steps == ()
    assert verify_state_proof(root, b"only", b"one", proof)
    assert not verify_state_proof(root, b"only", None, proof)
    assert not verify_state_proof(root, b"only", b"two", proof)
    value, proof = tree.prove(b"other")
    assert value is None and proof.steps == ()
    assert proof.leaf_key_hash == sha256(b"only")  # ends at the other key's leaf
    assert verify_state_proof(root, b"other", None, proof)
    assert not verify_state_proof(root, b"other", b"one", proof)
    assert not verify_state_proof(EMPTY_HASH, b"other", None, proof)


def test_proofs_at_older_versions(kv: KVStore) -> None:
    tree = StateTree(kv)
    tree.commit({b"a": b"1", b"b": b"2"})
    tree.commit({b"a": b"3", b"c": b"4"})
    tree.commit({b"b": None})
    old_root = tree.root_hash(0)
    assert old_root == reference_root({b"a": b"1", b"b": b"2"})
    for k, want in ((b"a", b"1"), (b"b", b"2"), (b"c", None)):
        value, proof = tree.prove(k, 0)
        assert value == want
        assert verify_state_proof(old_root, k, want, proof)
        assert not verify_state_proof(tree.root_hash(), k, want, proof)
    assert tree.prove(b"a")[0] == b"3"
    assert tree.prove(b"b")[0] is None


# -------------------------------------------------------- tampered claims fail


def test_tampered_claims_fail(kv: KVStore) -> None:
    tree = built(kv)
    root = tree.root_hash()
    other_root = reference_root({**VALUES, KEYS[0]: b"changed"})
    for k in KEYS[:150]:
        value, proof = tree.prove(k)
        assert value is not None
        assert not verify_state_proof(root, k, value + b"\x00", proof)  # tampered value
        assert not verify_state_proof(root, k, b"", proof)
        assert not verify_state_proof(root, k, None, proof)  # present claimed absent
        assert not verify_state_proof(other_root, k, value, proof)  # wrong root
        assert not verify_state_proof(EMPTY_HASH, k, value, proof)
    for k in ABSENT[:150]:
        _, proof = tree.prove(k)
        assert not verify_state_proof(root, k, b"", proof)  # absent claimed present
        assert not verify_state_proof(root, k, VALUES[KEYS[0]], proof)
        assert not verify_state_proof(other_root, k, None, proof)


def test_proof_of_another_key_fails(kv: KVStore) -> None:
    tree = built(kv)
    root = tree.root_hash()
    rng = random.Random(3)
    for _ in range(200):
        a, b = rng.sample(KEYS, 2)
        _, proof_a = tree.prove(a)
        assert not verify_state_proof(root, b, VALUES[b], proof_a)
        assert not verify_state_proof(root, b, VALUES[a], proof_a)
        assert not verify_state_proof(root, b, None, proof_a)  # b is present
        absent = rng.choice(ABSENT)
        _, proof_absent = tree.prove(absent)
        assert not verify_state_proof(root, b, None, proof_absent)
        assert not verify_state_proof(root, b, VALUES[b], proof_absent)


def single_field_mutations(proof: StateProof) -> Iterator[tuple[str, StateProof]]:
    """Every proof that differs from ``proof`` in exactly one field: each bit of each
    bitmap, a bit in each byte of each sibling hash and leaf hash, a leaf hash emptied
    or filled in, a step removed, duplicated or added."""
    steps = list(proof.steps)
    for d, step in enumerate(steps):
        for bit in range(16):
            s = ProofStep(step.bitmap ^ (1 << bit), step.siblings)
            yield f"step {d} bitmap bit {bit}", dataclasses.replace(
                proof, steps=tuple(steps[:d] + [s] + steps[d + 1 :]))
        for j, sib in enumerate(step.siblings):
            for i in range(0, 32, 5):
                sibs = list(step.siblings)
                sibs[j] = sib[:i] + bytes([sib[i] ^ 0x80]) + sib[i + 1 :]
                s = ProofStep(step.bitmap, tuple(sibs))
                yield f"step {d} sibling {j} byte {i}", dataclasses.replace(
                    proof, steps=tuple(steps[:d] + [s] + steps[d + 1 :]))
        if step.siblings:
            s = ProofStep(step.bitmap, step.siblings[:-1])
            yield f"step {d} sibling dropped", dataclasses.replace(
                proof, steps=tuple(steps[:d] + [s] + steps[d + 1 :]))
        yield f"step {d} removed", dataclasses.replace(
            proof, steps=tuple(steps[:d] + steps[d + 1 :]))
        yield f"step {d} duplicated", dataclasses.replace(
            proof, steps=tuple(steps[: d + 1] + steps[d:]))
    yield "step added", dataclasses.replace(
        proof, steps=(*steps, ProofStep(1, ())))
    for name in ("leaf_key_hash", "leaf_value_hash"):
        field = getattr(proof, name)
        if field:
            for i in range(0, 32, 3):
                yield f"{name} byte {i}", dataclasses.replace(
                    proof, **{name: field[:i] + bytes([field[i] ^ 1]) + field[i + 1 :]})
            yield f"{name} emptied", dataclasses.replace(proof, **{name: b""})
            yield f"{name} truncated", dataclasses.replace(proof, **{name: field[:31]})
        else:
            yield f"{name} filled", dataclasses.replace(proof, **{name: sha256(b"x")})
    if proof.leaf_key_hash:
        yield "both leaf hashes emptied", dataclasses.replace(
            proof, leaf_key_hash=b"", leaf_value_hash=b"")


def test_every_single_field_mutation_fails(kv: KVStore) -> None:
    tree = built(kv)
    root = tree.root_hash()
    kinds = Counter()
    cases = [(k, VALUES[k]) for k in KEYS[:25]] + [(k, None) for k in ABSENT[:60]]
    for k, value in cases:
        got, proof = tree.prove(k)
        assert got == value
        assert verify_state_proof(root, k, value, proof)
        kinds["present" if value is not None else absent_kind(proof, k)] += 1
        for what, mutant in single_field_mutations(proof):
            assert mutant != proof
            assert not verify_state_proof(root, k, value, mutant), (k, what)
            assert not verify_state_proof(root, k, b"v", mutant), (k, what)
            if value is not None:
                assert not verify_state_proof(root, k, None, mutant), (k, what)
    assert kinds["present"] and kinds["empty-slot"] and kinds["other-leaf"]


# ----------------------------------------------------------------- encoding


def test_proofs_round_trip_through_encode_decode(kv: KVStore) -> None:
    tree = built(kv)
    root = tree.root_hash()
    for k in KEYS[:100] + ABSENT[:100]:
        value, proof = tree.prove(k)
        data = proof.encode()
        again = StateProof.decode(data)
        assert again == proof
        assert again.encode() == data
        assert verify_state_proof(root, k, value, again)
    empty = StateProof((), b"", b"")
    assert StateProof.decode(empty.encode()) == empty


def test_truncated_or_extended_encodings_do_not_decode() -> None:
    tree = shared_tree()
    _, proof = tree.prove(KEYS[5])
    data = proof.encode()
    for cut in range(len(data)):
        with pytest.raises(DecodeError):
            StateProof.decode(data[:cut])
    with pytest.raises(DecodeError):
        StateProof.decode(data + b"\x00")


# -------------------------------------------------------------- never raises

hashes = st.binary(min_size=32, max_size=32)
loose_bytes = st.one_of(hashes, st.binary(max_size=40))
steps_st = st.builds(
    ProofStep,
    st.integers(0, 0xFFFF),
    st.lists(loose_bytes, max_size=16).map(tuple),
)
garbage_proofs = st.builds(
    StateProof,
    st.lists(steps_st, max_size=70).map(tuple),
    loose_bytes,
    loose_bytes,
)


@st.composite
def mutated_real_proofs(draw: st.DrawFn) -> tuple[bytes, StateProof]:
    """A real proof with random changes: deep and nearly valid."""
    tree = shared_tree()
    key = draw(st.sampled_from(KEYS[:50] + ABSENT[:50]))
    _, proof = tree.prove(key)
    steps = list(proof.steps)
    for _ in range(draw(st.integers(1, 4))):
        choice = draw(st.integers(0, 4))
        if choice == 0 and steps:
            d = draw(st.integers(0, len(steps) - 1))
            steps[d] = ProofStep(draw(st.integers(0, 0xFFFF)), steps[d].siblings)
        elif choice == 1 and steps:
            d = draw(st.integers(0, len(steps) - 1))
            steps[d] = ProofStep(steps[d].bitmap, tuple(draw(st.lists(loose_bytes, max_size=16))))
        elif choice == 2:
            steps.insert(draw(st.integers(0, len(steps))), draw(steps_st))
        elif choice == 3 and steps:
            del steps[draw(st.integers(0, len(steps) - 1))]
        else:
            proof = dataclasses.replace(proof, leaf_key_hash=draw(loose_bytes))
    return key, dataclasses.replace(proof, steps=tuple(steps))


@settings(max_examples=100)
@given(proof=garbage_proofs, key=st.binary(max_size=20), value=st.none() | st.binary(max_size=8),
       real_root=st.booleans())
def test_verify_never_raises_on_garbage(proof: StateProof, key: bytes, value: bytes | None,
                                        real_root: bool) -> None:
    root = shared_tree().root_hash() if real_root else sha256(key)
    assert verify_state_proof(root, key, value, proof) in (True, False)
    assert verify_state_proof(EMPTY_HASH, key, value, proof) in (True, False)


@settings(max_examples=100)
@given(case=mutated_real_proofs(), value=st.none() | st.binary(max_size=8))
def test_verify_never_raises_on_mutated_proofs(case: tuple[bytes, StateProof],
                                               value: bytes | None) -> None:
    key, proof = case
    tree = shared_tree()
    result = verify_state_proof(tree.root_hash(), key, value, proof)
    assert result in (True, False)
    if result:  # only the true claim can verify, with the proof unchanged in effect
        assert value == VALUES.get(key)


@settings(max_examples=100)
@given(data=st.binary(max_size=300))
def test_decoded_garbage_never_raises(data: bytes) -> None:
    try:
        proof = StateProof.decode(data)
    except DecodeError:
        return
    assert verify_state_proof(shared_tree().root_hash(), b"k", None, proof) in (True, False)


def test_too_deep_proofs_are_refused() -> None:
    deep = StateProof(tuple(ProofStep(1, ()) for _ in range(MAX_DEPTH + 1)), b"", b"")
    assert verify_state_proof(EMPTY_HASH, b"k", None, deep) is False


@pytest.mark.parametrize("extra", [1 << 16, 0xFFFF | (1 << 16), 1 << 70, -1])
def test_out_of_range_bitmap_returns_false_instead_of_raising(extra: int) -> None:
    """verify_state_proof promises never to raise for a malformed proof. A StateProof
    built in Python (not decoded) can carry a bitmap that does not fit 16 bits."""
    tree = shared_tree()
    key = KEYS[0]
    value, proof = tree.prove(key)
    step = proof.steps[0]
    bitmap = extra if extra < 0 else extra | (1 << (sha256(key)[0] >> 4))  # our bit is set
    # Keep the sibling count consistent with the bitmap so the check reaches hashing.
    count = abs(bitmap).bit_count()
    siblings = (tuple(step.siblings) + (sha256(b"pad"),) * 17)[: count - 1]
    bad = dataclasses.replace(proof, steps=(ProofStep(bitmap, siblings), *proof.steps[1:]))
    assert verify_state_proof(tree.root_hash(), key, value, bad) is False
