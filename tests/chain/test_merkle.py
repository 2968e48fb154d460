"""RFC 6962 Merkle trees: known answers, the transparency-dev inclusion probes, and
proofs generated for every leaf checked against an independent recursive reference."""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chain.hashing import EMPTY_HASH
from chain.merkle import (
    InclusionProof,
    inclusion_proof,
    leaf_hash,
    merkle_root,
    node_hash,
    root_of_leaf_hashes,
    verify_inclusion,
)

VECTORS = json.loads(
    (Path(__file__).resolve().parents[1] / "vectors" / "merkle-rfc6962.json").read_text()
)
LEAVES = [bytes.fromhex(x) for x in VECTORS["leaf_inputs"]]
ROOTS = [bytes.fromhex(x) for x in VECTORS["root_hashes"]]
NODES = [[bytes.fromhex(x) for x in level] for level in VECTORS["node_hashes"]]
PROBES = VECTORS["inclusion_probes"]


# --- an independent reference: RFC 6962 §2.1 MTH and §2.1.1 PATH, written recursively ---


def _split(n: int) -> int:
    """The largest power of two smaller than n (n > 1)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def ref_mth(d: list[bytes]) -> bytes:
    if not d:
        return hashlib.sha256(b"").digest()
    if len(d) == 1:
        return hashlib.sha256(b"\x00" + d[0]).digest()
    k = _split(len(d))
    return hashlib.sha256(b"\x01" + ref_mth(d[:k]) + ref_mth(d[k:])).digest()


def ref_path(m: int, d: list[bytes]) -> list[bytes]:
    if len(d) == 1:
        return []
    k = _split(len(d))
    if m < k:
        return ref_path(m, d[:k]) + [ref_mth(d[k:])]
    return ref_path(m - k, d[k:]) + [ref_mth(d[:k])]


# --- known answers ----------------------------------------------------------------------


def test_vector_file_shape() -> None:
    assert VECTORS["hash"] == "SHA-256"
    assert len(LEAVES) == 8
    assert len(ROOTS) == 9
    assert [len(level) for level in NODES] == [8, 4, 2, 1]
    assert len(PROBES) == 98


def test_leaf_and_node_hashes_match_the_vectors() -> None:
    for i, leaf in enumerate(LEAVES):
        assert leaf_hash(leaf) == NODES[0][i]
    for level in range(1, 4):
        for i, expected in enumerate(NODES[level]):
            left, right = NODES[level - 1][2 * i], NODES[level - 1][2 * i + 1]
            assert node_hash(left, right) == expected


@pytest.mark.parametrize("n", range(9))
def test_root_of_the_first_n_leaves_matches_the_vectors(n: int) -> None:
    assert merkle_root(LEAVES[:n]) == ROOTS[n]
    assert root_of_leaf_hashes([leaf_hash(x) for x in LEAVES[:n]]) == ROOTS[n]
    assert ref_mth(LEAVES[:n]) == ROOTS[n]


def test_empty_tree_and_domain_separation() -> None:
    assert merkle_root([]) == EMPTY_HASH == ROOTS[0]
    assert leaf_hash(b"") != EMPTY_HASH
    # A leaf whose data is the concatenation of two child hashes is not that node.
    a, b = leaf_hash(b"a"), leaf_hash(b"b")
    assert merkle_root([a + b]) != merkle_root([b"a", b"b"])
    assert leaf_hash(a + b) != node_hash(a, b)


@pytest.mark.parametrize("probe", PROBES, ids=lambda p: p["file"].removeprefix("testdata/inclusion/"))
def test_inclusion_probes(probe: dict) -> None:
    proof = None if probe["proof"] is None else [bytes.fromhex(p) for p in probe["proof"]]
    got = verify_inclusion(
        bytes.fromhex(probe["leafHash"]), probe["leafIdx"], probe["treeSize"], proof,
        bytes.fromhex(probe["root"]),
    )
    assert got is (not probe["wantErr"])


def test_generated_proofs_match_the_happy_path_probes() -> None:
    happy = [p for p in PROBES if p["file"].endswith("/happy-path.json")]
    assert len(happy) == 5
    for probe in happy:
        size, index = probe["treeSize"], probe["leafIdx"]
        proof = inclusion_proof(LEAVES[:size], index)
        assert list(proof.path) == [bytes.fromhex(p) for p in probe["proof"] or []]
        assert (proof.index, proof.size) == (index, size)
        assert leaf_hash(LEAVES[index]) == bytes.fromhex(probe["leafHash"])
        assert merkle_root(LEAVES[:size]) == bytes.fromhex(probe["root"])


# --- generated proofs -------------------------------------------------------------------


def _check_all_proofs(leaves: list[bytes]) -> None:
    root = merkle_root(leaves)
    assert root == ref_mth(leaves)
    for i, leaf in enumerate(leaves):
        proof = inclusion_proof(leaves, i)
        assert list(proof.path) == ref_path(i, leaves)
        assert proof.verify(leaf, root)
        assert verify_inclusion(leaf_hash(leaf), i, len(leaves), proof.path, root)
        assert InclusionProof.decode(proof.encode()) == proof
        # The same proof does not prove anything else.
        assert not proof.verify(leaf + b"x", root)
        assert not proof.verify(leaf, leaf_hash(leaf + b"x"))
        assert not verify_inclusion(leaf, i, len(leaves), proof.path, root)  # raw, not hashed
        if len(leaves) > 1:
            other = (i + 1) % len(leaves)
            assert not verify_inclusion(leaf_hash(leaf), other, len(leaves), proof.path, root)
        assert not verify_inclusion(leaf_hash(leaf), i, i, proof.path, root)  # index >= size
        assert not verify_inclusion(leaf_hash(leaf), -1, len(leaves), proof.path, root)
        if proof.path:
            assert not verify_inclusion(leaf_hash(leaf), i, len(leaves), proof.path[:-1], root)
        assert not verify_inclusion(
            leaf_hash(leaf), i, len(leaves), (*proof.path, leaf_hash(leaf)), root
        )


@pytest.mark.parametrize("size", range(1, 9))
def test_proofs_for_every_leaf_of_the_vector_trees(size: int) -> None:
    _check_all_proofs(LEAVES[:size])


def test_proofs_for_every_leaf_of_larger_trees() -> None:
    rng = random.Random(6962)
    sizes = [9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100] + [rng.randint(2, 100) for _ in range(5)]
    for size in sizes:
        leaves = [rng.randbytes(rng.randint(0, 40)) for _ in range(size)]
        _check_all_proofs(leaves)


def test_every_bit_flip_in_a_proof_is_caught() -> None:
    leaves = [bytes([i]) * i for i in range(13)]
    root = merkle_root(leaves)
    for i in (0, 5, 12):
        proof = inclusion_proof(leaves, i)
        for j, step in enumerate(proof.path):
            for bit in range(256):
                bad = bytearray(step)
                bad[bit // 8] ^= 1 << (bit % 8)
                path = (*proof.path[:j], bytes(bad), *proof.path[j + 1 :])
                assert not verify_inclusion(leaf_hash(leaves[i]), i, len(leaves), path, root)


def test_inclusion_proof_index_out_of_range() -> None:
    for index in (-1, 3):
        with pytest.raises(IndexError):
            inclusion_proof([b"a", b"b", b"c"], index)
    with pytest.raises(IndexError):
        inclusion_proof([], 0)


def test_single_leaf_tree_has_an_empty_proof() -> None:
    proof = inclusion_proof([b"only"], 0)
    assert proof == InclusionProof(0, 1, ())
    assert proof.verify(b"only", leaf_hash(b"only"))
    # A missing (None) proof for a one-leaf tree is the empty proof (RFC 9162 probe).
    assert verify_inclusion(leaf_hash(b"only"), 0, 1, None, leaf_hash(b"only"))
    assert not verify_inclusion(leaf_hash(b"only"), 0, 2, None, leaf_hash(b"only"))


@settings(max_examples=200)
@given(
    leaf=st.binary(max_size=40),
    index=st.integers(-(2**70), 2**70),
    size=st.integers(-(2**70), 2**70),
    proof=st.none() | st.lists(st.binary(max_size=40), max_size=70),
    root=st.binary(max_size=40),
)
def test_verify_inclusion_never_raises(leaf, index, size, proof, root) -> None:
    assert verify_inclusion(leaf, index, size, proof, root) in (True, False)


@settings(max_examples=100)
@given(leaves=st.lists(st.binary(max_size=8), min_size=1, max_size=40), data=st.data())
def test_generated_proofs_verify_property(leaves: list[bytes], data: st.DataObject) -> None:
    index = data.draw(st.integers(0, len(leaves) - 1))
    root = merkle_root(leaves)
    proof = inclusion_proof(leaves, index)
    assert proof.verify(leaves[index], root)
    assert list(proof.path) == ref_path(index, leaves)
