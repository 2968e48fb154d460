"""Validator sets: the rules they enforce, their hash, and the quorum threshold."""

from __future__ import annotations

from fractions import Fraction

import pytest
from chain_helpers import validator_keys, validator_set
from hypothesis import given
from hypothesis import strategies as st

from chain.errors import RemoteError
from chain.keys import address_of
from chain.merkle import merkle_root
from chain.validators import (
    MAX_TOTAL_POWER,
    MAX_VALIDATORS,
    InvalidValidatorSet,
    Validator,
    ValidatorSet,
)

KEYS = validator_keys(4)


def test_a_valid_set() -> None:
    vset = validator_set(KEYS, [3, 1, 1, 1])
    assert len(vset) == 4
    assert vset.total_power == 6
    assert [v.public_key for v in vset] == [k.public_key for k in KEYS]
    for k, power in zip(KEYS, [3, 1, 1, 1], strict=True):
        assert vset.get(k.address) == Validator(k.public_key, power)
        assert Validator(k.public_key, power).address == address_of(k.public_key) == k.address
    assert vset.get(validator_keys(1, "outsider")[0].address) is None
    assert vset.get(KEYS[0].public_key) is None  # looked up by address, not key


def test_hash_is_the_merkle_root_of_the_encoded_validators_in_order() -> None:
    vset = validator_set(KEYS, [3, 1, 1, 1])
    assert vset.hash == merkle_root([Validator(k.public_key, p).encode()
                                     for k, p in zip(KEYS, [3, 1, 1, 1], strict=True)])
    assert validator_set(KEYS, [3, 1, 1, 1]).hash == vset.hash
    assert validator_set(KEYS[::-1], [1, 1, 1, 3]).hash != vset.hash  # order matters
    assert validator_set(KEYS, [3, 1, 1, 2]).hash != vset.hash  # power matters
    assert validator_set(KEYS[:3], [3, 1, 1]).hash != vset.hash


def test_empty_set_is_invalid() -> None:
    with pytest.raises(InvalidValidatorSet, match="at least one validator"):
        ValidatorSet([])
    with pytest.raises(InvalidValidatorSet):
        ValidatorSet(iter(()))


def test_duplicate_key_is_invalid() -> None:
    with pytest.raises(InvalidValidatorSet, match=f"validator {KEYS[1].public_key.hex()} is listed twice"):
        ValidatorSet([Validator(KEYS[0].public_key, 1), Validator(KEYS[1].public_key, 1),
                      Validator(KEYS[1].public_key, 5)])


def test_zero_power_is_invalid() -> None:
    with pytest.raises(InvalidValidatorSet, match=f"validator {KEYS[2].public_key.hex()} has no voting power"):
        validator_set(KEYS[:3], [1, 1, 0])


def test_total_power_is_bounded() -> None:
    validator_set(KEYS[:2], [MAX_TOTAL_POWER - 1, 1])
    with pytest.raises(InvalidValidatorSet, match="too large"):
        validator_set(KEYS[:2], [MAX_TOTAL_POWER, 1])


def test_number_of_validators_is_bounded() -> None:
    many = [Validator(i.to_bytes(32, "big"), 1) for i in range(MAX_VALIDATORS + 1)]
    assert len(ValidatorSet(many[:MAX_VALIDATORS])) == MAX_VALIDATORS
    with pytest.raises(InvalidValidatorSet, match=f"more than {MAX_VALIDATORS} validators"):
        ValidatorSet(many)


def test_invalid_validator_set_is_a_remote_error() -> None:
    assert issubclass(InvalidValidatorSet, RemoteError)


@pytest.mark.parametrize(
    ("powers", "quorum"),
    [([1], 1), ([1, 1], 2), ([1, 1, 1], 3), ([1, 1, 1, 1], 3), ([3, 1, 1, 1], 5), ([1] * 7, 5),
     ([1] * 100, 67), ([1] * 99, 67), ([1] * 98, 66)],
)
def test_quorum_power_examples(powers: list[int], quorum: int) -> None:
    vset = ValidatorSet(Validator(i.to_bytes(32, "big"), p) for i, p in enumerate(powers))
    assert vset.quorum_power == quorum
    assert vset.has_quorum(quorum)
    assert not vset.has_quorum(quorum - 1)


@given(powers=st.lists(st.integers(1, 2**40), min_size=1, max_size=20), data=st.data())
def test_has_quorum_iff_at_least_quorum_power(powers: list[int], data: st.DataObject) -> None:
    vset = ValidatorSet(Validator(i.to_bytes(32, "big"), p) for i, p in enumerate(powers))
    total = sum(powers)
    assert vset.total_power == total
    q = vset.quorum_power
    # q is the least power that is strictly more than two thirds of the total.
    assert Fraction(q, total) > Fraction(2, 3)
    assert Fraction(q - 1, total) <= Fraction(2, 3)
    for p in (0, q - 1, q, q + 1, total, data.draw(st.integers(0, total))):
        assert vset.has_quorum(p) == (p >= q) == (Fraction(p, total) > Fraction(2, 3))


@given(st.lists(st.integers(1, 1_000), min_size=1, max_size=7), st.integers(0, 7_000))
def test_exceeds_one_third_is_exactly_more_than_a_third(powers: list[int], power: int) -> None:
    vset = validator_set(validator_keys(len(powers)), powers)
    assert vset.exceeds_one_third(power) == (Fraction(power, vset.total_power) > Fraction(1, 3))


def test_one_third_at_four_equal_validators() -> None:
    vset = validator_set(validator_keys(4), [1, 1, 1, 1])
    assert not vset.exceeds_one_third(1)  # f = 1 may be Byzantine
    assert vset.exceeds_one_third(2)  # f + 1: at least one honest among them
