"""Votes and commit certificates: > 2/3 of the power, each signer once, only members,
only COMMIT signatures for exactly this (chain, height, view, block)."""

from __future__ import annotations

import dataclasses
from fractions import Fraction
from itertools import combinations

import pytest
from chain_helpers import CHAIN, OTHER_CHAIN, commit_votes, key, validator_keys, validator_set

from chain.block import CommitCertificate, CommitSig, Vote, VoteKind
from chain.errors import InvalidCertificate
from chain.hashing import Domain

HEIGHT = 7
VIEW = 2
BLOCK = b"\xb1" * 32
KEYS = validator_keys(5)
OUTSIDER = key("outsider")


def check(cert: CommitCertificate, vset, chain_id: str = CHAIN) -> None:
    """Verify ``cert`` for the height and block it claims, so that what is tested is
    its signers, power and signatures."""
    cert.verify(chain_id, vset, height=cert.height, block_hash=cert.block_hash)


def cert_of(keys, height=HEIGHT, view=VIEW, block_hash=BLOCK, chain_id=CHAIN) -> CommitCertificate:
    return CommitCertificate.from_votes(commit_votes(keys, height, view, block_hash, chain_id))


def with_sigs(cert: CommitCertificate, sigs) -> CommitCertificate:
    return dataclasses.replace(cert, signatures=tuple(sigs))


def sig_of(vote: Vote) -> CommitSig:
    return CommitSig(vote.validator, vote.signature)


# --- votes --------------------------------------------------------------------------------


def test_vote_create_and_verify() -> None:
    vote = Vote.create(KEYS[0], CHAIN, VoteKind.COMMIT, HEIGHT, VIEW, BLOCK)
    assert (vote.kind, vote.height, vote.view, vote.block_hash) == (VoteKind.COMMIT, HEIGHT, VIEW, BLOCK)
    assert vote.validator == KEYS[0].address
    assert vote.verify(CHAIN, KEYS[0].public_key)
    assert not vote.verify(OTHER_CHAIN, KEYS[0].public_key)
    assert not vote.verify(CHAIN, KEYS[1].public_key)
    for change in ({"kind": VoteKind.PREPARE}, {"height": HEIGHT + 1}, {"view": VIEW + 1},
                   {"block_hash": b"\xb2" * 32}):
        assert not dataclasses.replace(vote, **change).verify(CHAIN, KEYS[0].public_key)
    assert Vote.decode(vote.encode()) == vote


def test_vote_of_unknown_kind_never_verifies() -> None:
    for kind in (0, 3, 255):
        # Even when correctly signed for that kind.
        vote = Vote.create(KEYS[0], CHAIN, kind, HEIGHT, VIEW, BLOCK)
        assert not vote.verify(CHAIN, KEYS[0].public_key)
    prepare = Vote.create(KEYS[0], CHAIN, VoteKind.PREPARE, HEIGHT, VIEW, BLOCK)
    assert prepare.verify(CHAIN, KEYS[0].public_key)


# --- quorum threshold ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("powers", "signers", "ok"),
    [
        ([1, 1, 1], [0, 1], False),  # exactly 2/3
        ([1, 1, 1], [0, 1, 2], True),
        ([1, 1, 1, 1], [0, 1, 2], True),  # 3/4
        ([1, 1, 1, 1], [0, 1], False),
        ([3, 1, 1, 1], [0, 1], False),  # power 4 of 6: exactly 2/3
        ([3, 1, 1, 1], [0, 1, 2], True),  # power 5 of 6
        ([3, 1, 1, 1], [1, 2, 3], False),  # power 3 of 6
        ([1], [0], True),
        ([2, 1], [0], False),  # exactly 2/3 again
        ([5, 1], [0], True),
    ],
)
def test_quorum_threshold(powers: list[int], signers: list[int], ok: bool) -> None:
    keys = KEYS[: len(powers)]
    vset = validator_set(keys, powers)
    cert = cert_of([keys[i] for i in signers])
    if ok:
        check(cert, vset)
        cert.verify(CHAIN, vset, height=HEIGHT, block_hash=BLOCK)
    else:
        power = sum(powers[i] for i in signers)
        with pytest.raises(InvalidCertificate, match=f"signers hold {power} of {sum(powers)} power; need more than 2/3"):
            check(cert, vset)


@pytest.mark.parametrize("powers", [[1, 1, 1], [1, 1, 1, 1], [3, 1, 1, 1], [5, 4, 3, 2, 1], [2, 2, 2]])
def test_every_subset_of_signers(powers: list[int]) -> None:
    keys = KEYS[: len(powers)]
    vset = validator_set(keys, powers)
    votes = commit_votes(keys, HEIGHT, VIEW, BLOCK)
    total = sum(powers)
    for r in range(1, len(keys) + 1):
        for subset in combinations(range(len(keys)), r):
            cert = CommitCertificate.from_votes(votes[i] for i in subset)
            power = sum(powers[i] for i in subset)
            if Fraction(power, total) > Fraction(2, 3):
                check(cert, vset)
            else:
                with pytest.raises(InvalidCertificate, match="need more than 2/3"):
                    check(cert, vset)


def test_signature_order_does_not_matter() -> None:
    vset = validator_set(KEYS[:4], [1, 1, 1, 1])
    cert = cert_of([KEYS[2], KEYS[0], KEYS[3]])
    check(cert, vset)


def test_empty_certificate_is_rejected() -> None:
    vset = validator_set(KEYS[:1], [1])
    cert = with_sigs(cert_of(KEYS[:1]), [])
    with pytest.raises(InvalidCertificate, match="signers hold 0 of 1 power"):
        check(cert, vset)


# --- duplicates and outsiders -------------------------------------------------------------------


def test_duplicate_signer_is_rejected_even_if_it_would_reach_quorum() -> None:
    vset = validator_set(KEYS[:3], [1, 1, 1])
    cert = cert_of(KEYS[:2])
    duplicated = with_sigs(cert, [*cert.signatures, cert.signatures[0]])
    with pytest.raises(InvalidCertificate, match=f"signer {KEYS[0].address.hex()} appears twice"):
        check(duplicated, vset)
    # Also when the certificate already has a quorum without the duplicate.
    full = cert_of(KEYS[:3])
    check(full, vset)
    with pytest.raises(InvalidCertificate, match="appears twice"):
        check(with_sigs(full, [*full.signatures, full.signatures[2]]), vset)
    # And for a heavy validator counted twice: [3, 1, 1, 1] with 3 + 3 = 6 "power".
    heavy = validator_set(KEYS[:4], [3, 1, 1, 1])
    one = cert_of(KEYS[:1])
    with pytest.raises(InvalidCertificate, match="appears twice"):
        check(with_sigs(one, [one.signatures[0], one.signatures[0]]), heavy)


def test_unknown_signer_is_rejected_even_with_a_valid_signature() -> None:
    vset = validator_set(KEYS[:3], [1, 1, 1])
    outsider_vote = Vote.create(OUTSIDER, CHAIN, VoteKind.COMMIT, HEIGHT, VIEW, BLOCK)
    assert outsider_vote.verify(CHAIN, OUTSIDER.public_key)
    cert = cert_of(KEYS[:2])
    with pytest.raises(InvalidCertificate, match=f"signer {OUTSIDER.address.hex()} is not a validator"):
        check(with_sigs(cert, [*cert.signatures, sig_of(outsider_vote)]), vset)
    full = cert_of(KEYS[:3])
    with pytest.raises(InvalidCertificate, match="is not a validator"):
        check(with_sigs(full, [*full.signatures, sig_of(outsider_vote)]), vset)


def test_a_member_address_with_another_members_signature_is_rejected() -> None:
    vset = validator_set(KEYS[:3], [1, 1, 1])
    cert = cert_of(KEYS[:3])
    sigs = list(cert.signatures)
    sigs[2] = CommitSig(KEYS[2].address, sigs[1].signature)
    with pytest.raises(InvalidCertificate, match=f"signature of {KEYS[2].address.hex()} does not verify"):
        check(with_sigs(cert, sigs), vset)
    sigs[2] = CommitSig(KEYS[2].address, bytes(64))
    with pytest.raises(InvalidCertificate, match="does not verify"):
        check(with_sigs(cert, sigs), vset)


# --- signatures made for something else ----------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "height", "view", "block_hash", "chain_id"),
    [
        (VoteKind.COMMIT, HEIGHT + 1, VIEW, BLOCK, CHAIN),  # another height
        (VoteKind.COMMIT, HEIGHT - 1, VIEW, BLOCK, CHAIN),
        (VoteKind.COMMIT, HEIGHT, VIEW + 1, BLOCK, CHAIN),  # another view
        (VoteKind.COMMIT, HEIGHT, 0, BLOCK, CHAIN),
        (VoteKind.COMMIT, HEIGHT, VIEW, b"\xb2" * 32, CHAIN),  # another block
        (VoteKind.PREPARE, HEIGHT, VIEW, BLOCK, CHAIN),  # PREPARE, not COMMIT
        (VoteKind.COMMIT, HEIGHT, VIEW, BLOCK, OTHER_CHAIN),  # another chain
    ],
    ids=["height+1", "height-1", "view+1", "view0", "block", "prepare", "chain"],
)
def test_a_signature_for_anything_else_is_rejected(kind, height, view, block_hash, chain_id) -> None:
    # Four equal validators: three honest COMMITs are a quorum, so the certificate
    # with the fourth, foreign signature fails only because of that signature.
    vset = validator_set(KEYS[:4], [1, 1, 1, 1])
    good = commit_votes(KEYS[:3], HEIGHT, VIEW, BLOCK)
    wrong = Vote.create(KEYS[3], chain_id, kind, height, view, block_hash)
    assert wrong.verify(chain_id, KEYS[3].public_key)  # valid for what it was made for
    cert = CommitCertificate.from_votes(good)
    check(cert, vset)
    bad = with_sigs(cert, [*cert.signatures, sig_of(wrong)])
    with pytest.raises(InvalidCertificate, match=f"signature of {KEYS[3].address.hex()} does not verify"):
        check(bad, vset)


def test_a_tx_domain_signature_is_not_a_commit_signature() -> None:
    vset = validator_set(KEYS[:3], [1, 1, 1])
    cert = cert_of(KEYS[:2])
    body = Vote.signing_body(VoteKind.COMMIT, HEIGHT, VIEW, BLOCK)
    forged = CommitSig(KEYS[2].address, KEYS[2].sign(Domain.TX, CHAIN, body))
    with pytest.raises(InvalidCertificate, match="does not verify"):
        check(with_sigs(cert, [*cert.signatures, forged]), vset)


def test_a_certificate_for_one_chain_fails_on_another() -> None:
    vset = validator_set(KEYS[:3], [1, 1, 1])
    cert = cert_of(KEYS[:3])
    check(cert, vset)
    with pytest.raises(InvalidCertificate, match="does not verify"):
        check(cert, vset, OTHER_CHAIN)


def test_relabelled_certificate_fields_are_rejected() -> None:
    vset = validator_set(KEYS[:3], [1, 1, 1])
    cert = cert_of(KEYS[:3])
    for change in ({"height": HEIGHT + 1}, {"view": VIEW + 1}, {"block_hash": b"\x00" * 32}):
        with pytest.raises(InvalidCertificate, match="does not verify"):
            check(dataclasses.replace(cert, **change), vset)


def test_a_certificate_against_another_validator_set() -> None:
    cert = cert_of(KEYS[:3])
    check(cert, validator_set(KEYS[:3], [1, 1, 1]))
    # Same signers, but the set gives the others more power.
    with pytest.raises(InvalidCertificate, match="need more than 2/3"):
        check(cert, validator_set(KEYS[:5], [1, 1, 1, 1, 1]))
    with pytest.raises(InvalidCertificate, match="is not a validator"):
        check(cert, validator_set(KEYS[3:5], [1, 1]))


def test_expected_height_and_block_hash_must_match() -> None:
    vset = validator_set(KEYS[:3], [1, 1, 1])
    cert = cert_of(KEYS[:3])
    cert.verify(CHAIN, vset, height=HEIGHT, block_hash=BLOCK)
    with pytest.raises(InvalidCertificate, match=f"certificate is for height {HEIGHT}, expected {HEIGHT + 1}"):
        cert.verify(CHAIN, vset, height=HEIGHT + 1, block_hash=BLOCK)
    with pytest.raises(InvalidCertificate, match="certificate is for another block"):
        cert.verify(CHAIN, vset, height=HEIGHT, block_hash=b"\xb2" * 32)
    with pytest.raises(InvalidCertificate, match="expected 0"):
        cert.verify(CHAIN, vset, height=0, block_hash=BLOCK)


# --- from_votes -----------------------------------------------------------------------------------


def test_from_votes_builds_the_certificate() -> None:
    votes = commit_votes(KEYS[:3], HEIGHT, VIEW, BLOCK)
    cert = CommitCertificate.from_votes(votes)
    assert (cert.height, cert.view, cert.block_hash) == (HEIGHT, VIEW, BLOCK)
    assert cert.signatures == tuple(CommitSig(v.validator, v.signature) for v in votes)
    assert CommitCertificate.decode(cert.encode()) == cert
    assert CommitCertificate.from_votes(iter(votes)) == cert


def test_from_votes_refuses_mixed_or_missing_votes() -> None:
    votes = commit_votes(KEYS[:2], HEIGHT, VIEW, BLOCK)
    with pytest.raises(InvalidCertificate, match="no votes"):
        CommitCertificate.from_votes([])
    others = [
        Vote.create(KEYS[2], CHAIN, VoteKind.PREPARE, HEIGHT, VIEW, BLOCK),
        Vote.create(KEYS[2], CHAIN, VoteKind.COMMIT, HEIGHT + 1, VIEW, BLOCK),
        Vote.create(KEYS[2], CHAIN, VoteKind.COMMIT, HEIGHT, VIEW + 1, BLOCK),
        Vote.create(KEYS[2], CHAIN, VoteKind.COMMIT, HEIGHT, VIEW, b"\xb2" * 32),
    ]
    for other in others:
        with pytest.raises(InvalidCertificate, match="not COMMITs for one height, view and block"):
            CommitCertificate.from_votes([*votes, other])
        with pytest.raises(InvalidCertificate, match="not COMMITs"):
            CommitCertificate.from_votes([other, *votes])


def test_a_certificate_short_of_quorum_costs_no_signature_verification(monkeypatch) -> None:
    import chain.block

    calls = []
    real = chain.block.verify
    monkeypatch.setattr(chain.block, "verify", lambda *a: calls.append(a) or real(*a))
    vset = validator_set(KEYS[:4], [1, 1, 1, 1])
    junk = with_sigs(cert_of(KEYS[:2]), [CommitSig(k.address, b"\x00" * 64) for k in KEYS[:2]])
    with pytest.raises(InvalidCertificate, match="need more than 2/3"):
        check(junk, vset)
    assert calls == []
    check(cert_of(KEYS[:3]), vset)
    assert len(calls) == 3
